//! The audible recording notice with real peers on 127.0.0.1: baresip, which knows nothing of
//! SIP recording indications, hears the announcement and the warning tone, and so does the
//! recorder on our side's stream; a record-aware peer (verbatim itself) hears neither when
//! the setting says so; an account's own notice is heard on its calls only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use support::{
    Audio, Baresip, BaresipMedia, Peer, Proto, START_TIMEOUT, baresip_recording, find_wav,
    free_port, start_baresip_with, start_recorder, start_verbatim, tone_amplitude, write_tone_wav,
    write_tone_wav_channels,
};

const ANNOUNCEMENT_HZ: f64 = 500.0;
const WARNING_HZ: f64 = 1400.0;

/// The strongest `frequency` over half-second windows, and where each window above
/// `threshold` starts (seconds).
fn bursts(audio: &Audio, frequency: f64, threshold: f64) -> (f64, Vec<f64>) {
    let window = (audio.sample_rate / 2) as usize;
    let mut strongest: f64 = 0.0;
    let mut loud = Vec::new();
    for (index, chunk) in audio.samples.chunks(window).enumerate() {
        if chunk.len() < window {
            break;
        }
        let level = tone_amplitude(chunk, audio.sample_rate, frequency);
        strongest = strongest.max(level);
        if level > threshold {
            loud.push(index as f64 * 0.5);
        }
    }
    (strongest, loud)
}

/// A config that announces with a 500 Hz "voice" (so it can be measured) and sounds the
/// warning tone every 3 s.
fn notice_config(peer: &Peer, skip_for_record_aware: bool) -> std::path::PathBuf {
    let announcement = peer.path("announcement.wav");
    write_tone_wav(&announcement, 48000, 1000, ANNOUNCEMENT_HZ);
    peer.write_file(
        "config.toml",
        format!(
            "[recording.notice]\nannouncement = true\nannouncement_file = {:?}\n\
             tone = true\ntone_every_seconds = 3\ntone_hz = 1400\n\
             skip_for_record_aware = {skip_for_record_aware}\n",
            announcement.to_str().unwrap()
        ),
    )
}

#[test]
fn baresip_hears_the_announcement_and_the_warning_tone_and_so_does_the_recorder() {
    let recordings = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) = start_recorder("notice-srs", recordings.path(), &[]);

    let baresip_port = free_port();
    let mut baresip = Peer::new("notice-baresip");
    let baresip_wav = baresip.path("tone440.wav");
    write_tone_wav_channels(&baresip_wav, 8000, 1, 15_000, 440.0);
    start_baresip_with(
        &mut baresip,
        &Baresip {
            port: baresip_port,
            user: "peer",
            auto_answer: true,
            wav: &baresip_wav,
            quit_after_secs: 25,
            commands: &[],
        },
        &BaresipMedia {
            audio_codecs: "pcmu",
            mediaenc: None,
            console_port: None,
            sound_card: false,
        },
    );

    let mut phone = Peer::new("notice-phone");
    let config = notice_config(&phone, true);
    start_verbatim(
        &mut phone,
        [
            "call",
            &format!("sip:peer@127.0.0.1:{baresip_port}"),
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--config",
            config.to_str().unwrap(),
            "--codec",
            "pcmu",
            "--srtp",
            "off",
            "--duration",
            "8",
            "--record",
            "--srs",
            &format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"),
        ],
    );
    phone.expect_success(Duration::from_secs(40));
    baresip.wait_for_output("terminated", Duration::from_secs(30));
    srs.stop();

    // baresip is not record-aware: it gets the notice although the setting skips it for
    // peers that are.
    let heard = baresip_recording(&mut baresip, "dec", Duration::from_secs(10));
    let (announced, _) = bursts(&heard, ANNOUNCEMENT_HZ, 0.1);
    assert!(
        announced > 0.2,
        "baresip heard the announcement at {announced:.3}"
    );
    let (_, tones) = bursts(&heard, WARNING_HZ, 0.03);
    assert!(tones.len() >= 2, "baresip heard the tone at {tones:?}");
    assert!(
        tones.windows(2).any(|pair| pair[1] - pair[0] >= 2.5),
        "the tone repeats every 3 s: {tones:?}"
    );

    let folders = verbatim::archive::session::session_folders(recordings.path());
    assert_eq!(folders.len(), 1);
    let ours = Audio::read_wav(&find_wav(&folders[0], "label-1-"));
    let (announced, _) = bursts(&ours, ANNOUNCEMENT_HZ, 0.1);
    assert!(announced > 0.2, "our recorded side has the announcement");
    let (_, tones) = bursts(&ours, WARNING_HZ, 0.03);
    assert!(
        tones.len() >= 2,
        "our recorded side has the tone: {tones:?}"
    );
    let theirs = Audio::read_wav(&find_wav(&folders[0], "label-2-"));
    let (leak, _) = bursts(&theirs, WARNING_HZ, 0.03);
    assert!(leak < 0.01, "the far end's stream has no tone: {leak:.4}");
}

#[test]
fn a_record_aware_peer_gets_no_audio_notice_when_the_setting_says_so() {
    let recordings = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) = start_recorder("notice-srs-aware", recordings.path(), &[]);
    let far_port = free_port();
    let mut far = Peer::new("notice-record-aware");
    let heard = far.path("heard.wav");
    start_verbatim(
        &mut far,
        [
            "answer",
            "--listen",
            &format!("127.0.0.1:{far_port}"),
            "--save-received",
            heard.to_str().unwrap(),
        ],
    );
    far.wait_until_listening(Proto::Udp, far_port, START_TIMEOUT);

    let mut phone = Peer::new("notice-phone-aware");
    let config = notice_config(&phone, true);
    start_verbatim(
        &mut phone,
        [
            "call",
            &format!("sip:far@127.0.0.1:{far_port}"),
            "--config",
            config.to_str().unwrap(),
            "--codec",
            "pcmu",
            "--duration",
            "5",
            "--record",
            "--srs",
            &format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"),
        ],
    );
    phone.expect_success(Duration::from_secs(30));
    far.expect_success(Duration::from_secs(20));
    srs.stop();
    assert!(
        phone.stderr().contains("recording: recording"),
        "{}",
        phone.report()
    );

    let heard = Audio::read_wav(&heard);
    assert!(heard.seconds() > 4.0);
    let (announced, _) = bursts(&heard, ANNOUNCEMENT_HZ, 0.1);
    let (tone, _) = bursts(&heard, WARNING_HZ, 0.03);
    assert!(
        announced < 0.02 && tone < 0.02,
        "a record-aware peer heard {announced:.3} at 500 Hz, {tone:.3} at 1400 Hz"
    );
}

/// A phone with two accounts answers baresip's calls: a call to "desk", whose own
/// `[account.notice]` announces, is announced; a call to "home", under the phone's notice
/// (none), is not. Both are recorded.
#[test]
fn baresip_hears_the_notice_of_the_account_it_called_and_no_other() {
    let recordings = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) = start_recorder("notice-srs-accounts", recordings.path(), &[]);
    let phone_port = free_port();
    let mut phone = Peer::new("notice-accounts-phone");
    let announcement = phone.path("announcement.wav");
    write_tone_wav(&announcement, 48000, 1000, ANNOUNCEMENT_HZ);
    let config = phone.write_file(
        "config.toml",
        format!(
            "[recording]\nsrs = \"sip:srs@127.0.0.1:{srs_port};transport=tcp\"\n\n\
             [[account]]\nname = \"desk\"\nuri = \"sip:desk@127.0.0.1\"\nrecord = true\n\
             [account.notice]\nannouncement = true\nannouncement_file = {:?}\n\
             skip_for_record_aware = false\n\n\
             [[account]]\nname = \"home\"\nuri = \"sip:home@127.0.0.1\"\nrecord = true\n",
            announcement.to_str().unwrap()
        ),
    );
    start_verbatim(
        &mut phone,
        [
            "answer",
            "--listen",
            &format!("127.0.0.1:{phone_port}"),
            "--config",
            config.to_str().unwrap(),
            "--codec",
            "pcmu",
            "--calls",
            "2",
        ],
    );
    phone.wait_until_listening(Proto::Udp, phone_port, START_TIMEOUT);

    let mut heard = Vec::new();
    for user in ["desk", "home"] {
        let mut caller = Peer::new(&format!("notice-accounts-{user}"));
        let wav = caller.path("tone440.wav");
        write_tone_wav_channels(&wav, 8000, 1, 5_000, 440.0);
        let dial = format!("/dial sip:{user}@127.0.0.1:{phone_port}");
        start_baresip_with(
            &mut caller,
            &Baresip {
                port: free_port(),
                user: "caller",
                auto_answer: false,
                wav: &wav,
                quit_after_secs: 15,
                commands: &[&dial],
            },
            &BaresipMedia {
                audio_codecs: "pcmu",
                mediaenc: None,
                console_port: None,
                sound_card: false,
            },
        );
        caller.wait_for_output("terminated", Duration::from_secs(25));
        heard.push(baresip_recording(
            &mut caller,
            "dec",
            Duration::from_secs(10),
        ));
    }
    phone.expect_success(Duration::from_secs(30));
    srs.stop();
    let log = phone.stderr();
    assert!(
        log.contains("for account desk") && log.contains("for account home"),
        "{}",
        phone.report()
    );

    let (desk, _) = bursts(&heard[0], ANNOUNCEMENT_HZ, 0.1);
    assert!(desk > 0.2, "the call to desk was announced: {desk:.3}");
    let (home, _) = bursts(&heard[1], ANNOUNCEMENT_HZ, 0.1);
    assert!(home < 0.02, "the call to home was not: {home:.3}");
    let folders = verbatim::archive::session::session_folders(recordings.path());
    assert_eq!(folders.len(), 2, "both calls were recorded");
}
