//! The built-in Session Recording Server against the phone's own SIPREC client: the SRS runs
//! in this process, `verbatim call --record --srs` records a call to a sipp far end into it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::{
    Audio, Baresip, BaresipMedia, Peer, Pki, Scenario, find_wav, free_port, read_recorded,
    recorded_call_args, start_baresip_with, start_recorder, start_sipp_far_end, start_sipp_uas,
    start_verbatim, write_tone_wav,
};
use verbatim::recording::metadata;
use verbatim::srs::{SrsConfig, SrsEvent, SrsHandle};

const VERBATIM_TIMEOUT: Duration = Duration::from_secs(25);
const SIPP_TIMEOUT: Duration = Duration::from_secs(25);

async fn start_srs(dir: &Path) -> SrsHandle {
    let listen = "127.0.0.1:0".parse().unwrap();
    verbatim::srs::run(SrsConfig::new(listen, dir))
        .await
        .unwrap()
}

/// Waits (on a blocking thread) for `peer` to exit and returns its status.
async fn wait_peer(mut peer: Peer, timeout: Duration) -> (Peer, std::process::ExitStatus) {
    tokio::task::spawn_blocking(move || {
        let status = peer.wait_with_timeout(timeout);
        (peer, status)
    })
    .await
    .unwrap()
}

async fn next_event(handle: &mut SrsHandle) -> SrsEvent {
    tokio::time::timeout(Duration::from_secs(15), handle.next_event())
        .await
        .expect("an SRS event in time")
        .expect("the SRS is running")
}

/// A 3 s call playing a 1 kHz tone is recorded: one folder, the tone on label 1 for about
/// the call's length, silence on label 2 (sipp's uas sends no audio), the metadata and a
/// summary naming both labels.
#[test]
fn phone_records_call_into_builtin_srs() {
    let out = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    rt.block_on(async {
        let mut srs = start_srs(out.path()).await;
        let srs_port = srs.local_addr().port();
        let peer_port = free_port();
        let mut far_end = Peer::new("srs-sipp-uas");
        start_sipp_uas(
            &mut far_end,
            &Scenario::Builtin("uas"),
            peer_port,
            "u1",
            &[],
        );
        let mut phone = Peer::new("srs-verbatim-call");
        let tone = phone.path("tone1000.wav");
        write_tone_wav(&tone, 8000, 6000, 1000.0);
        start_verbatim(
            &mut phone,
            recorded_call_args(
                &format!("sip:service@127.0.0.1:{peer_port}"),
                &tone,
                3,
                &format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"),
            ),
        );
        let (mut phone, status) = wait_peer(phone, VERBATIM_TIMEOUT).await;
        if !status.success() {
            phone.fail(&format!("verbatim failed: {status}"));
        }
        let (mut far_end, status) = wait_peer(far_end, SIPP_TIMEOUT).await;
        if !status.success() {
            far_end.fail(&format!("sipp failed: {status}"));
        }
        let started = next_event(&mut srs).await;
        let SrsEvent::SessionStarted { folder, .. } = started else {
            panic!("expected a started session, got {started:?}");
        };
        let ended = loop {
            match next_event(&mut srs).await {
                SrsEvent::SessionEnded { folder, .. } => break folder,
                SrsEvent::SessionPaused { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(folder, ended);
        srs.stop().await;

        let folders = verbatim::archive::session::session_folders(out.path());
        assert_eq!(folders, vec![folder.clone()]);

        let label1 = Audio::read_wav(&find_wav(&folder, "label-1-"));
        let seconds = label1.seconds();
        assert!((2.5..=5.0).contains(&seconds), "label 1 lasts {seconds} s");
        let amplitude = label1.tone(1000.0);
        assert!(amplitude > 0.1, "1 kHz on label 1 at {amplitude}");
        let label2 = Audio::read_wav(&find_wav(&folder, "label-2-"));
        assert!(
            label2.tone(1000.0) < 0.02,
            "label 2 should not carry the tone"
        );
        assert!((label2.seconds() - seconds).abs() < 0.5, "labels aligned");

        let xml = read_recorded(&folder, "metadata-1.xml");
        let parsed = metadata::parse(&xml).unwrap();
        parsed
            .validate_against_labels(&["1".to_owned(), "2".to_owned()])
            .unwrap();

        let summary: serde_json::Value =
            serde_json::from_str(&read_recorded(&folder, "summary.json")).unwrap();
        let labels: Vec<&str> = summary["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["label"].as_str().unwrap())
            .collect();
        assert_eq!(labels, vec!["1", "2"]);
        eprintln!("label 1: {seconds:.2} s, 1 kHz at {amplitude:.3}; summary {summary}");
        assert!(summary["end"].is_string());
        assert!(
            summary["labels"][0]["packets_received"].as_u64().unwrap() > 50,
            "{summary}"
        );
    });
}

/// An ordinary call (no --record) sent straight to the SRS is refused with a status that
/// says why, and the caller reports it.
#[test]
fn plain_invite_to_srs_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    rt.block_on(async {
        let mut srs = start_srs(out.path()).await;
        let srs_port = srs.local_addr().port();
        let mut phone = Peer::new("srs-plain-call");
        start_verbatim(
            &mut phone,
            [
                "call",
                &format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"),
                "--codec",
                "pcmu",
                "--srtp",
                "off",
                "--duration",
                "1",
            ],
        );
        let (mut phone, status) = wait_peer(phone, VERBATIM_TIMEOUT).await;
        if status.success() {
            phone.fail("a plain call to the SRS should fail");
        }
        let stderr = phone.stderr();
        eprintln!("caller stderr: {stderr}");
        assert!(stderr.contains("488"), "{stderr}");
        match next_event(&mut srs).await {
            SrsEvent::Rejected { status, reason } => {
                assert_eq!(status, 488);
                assert!(reason.contains("Not a recording session"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
        srs.stop().await;
        assert!(verbatim::archive::session::session_folders(out.path()).is_empty());
    });
}

/// Pausing and resuming (re-INVITEs with inactive, then sendonly streams) shows in the
/// summary, and the paused second is silence in place, so the file keeps the call's timing.
#[test]
fn paused_recording_keeps_time_alignment() {
    let out = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    rt.block_on(async {
        let mut srs = start_srs(out.path()).await;
        let srs_port = srs.local_addr().port();
        let peer_port = free_port();
        let mut far_end = Peer::new("srs-pause-sipp-uas");
        start_sipp_uas(
            &mut far_end,
            &Scenario::Builtin("uas"),
            peer_port,
            "u1",
            &[],
        );
        let mut phone = Peer::new("srs-pause-verbatim-call");
        let tone = phone.path("tone1000.wav");
        write_tone_wav(&tone, 8000, 8000, 1000.0);
        start_verbatim(
            &mut phone,
            [
                "call",
                &format!("sip:service@127.0.0.1:{peer_port}"),
                "--codec",
                "pcmu",
                "--srtp",
                "off",
                "--play",
                tone.to_str().unwrap(),
                "--duration",
                "4",
                "--record",
                "--srs",
                &format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"),
                "--pause-at",
                "1",
                "--resume-at",
                "2",
            ],
        );
        let (mut phone, status) = wait_peer(phone, VERBATIM_TIMEOUT).await;
        if !status.success() {
            phone.fail(&format!("verbatim failed: {status}"));
        }
        let (mut far_end, status) = wait_peer(far_end, SIPP_TIMEOUT).await;
        if !status.success() {
            far_end.fail(&format!("sipp failed: {status}"));
        }
        let mut pauses = Vec::new();
        let folder = loop {
            match next_event(&mut srs).await {
                SrsEvent::SessionEnded { folder, .. } => break folder,
                SrsEvent::SessionPaused { paused, .. } => pauses.push(paused),
                SrsEvent::SessionStarted { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        };
        srs.stop().await;
        assert_eq!(pauses, vec![true, false]);

        let summary: serde_json::Value =
            serde_json::from_str(&read_recorded(&folder, "summary.json")).unwrap();
        let recorded_pauses = summary["pauses"].as_array().unwrap();
        assert_eq!(recorded_pauses.len(), 1, "{summary}");
        assert!(recorded_pauses[0]["end"].is_string(), "{summary}");

        let label1 = Audio::read_wav(&find_wav(&folder, "label-1-"));
        let rate = label1.sample_rate as usize;
        let seconds = label1.seconds();
        assert!((3.5..=6.0).contains(&seconds), "label 1 lasts {seconds} s");
        let window = |from: f64, to: f64| {
            let a = (from * rate as f64) as usize;
            let b = ((to * rate as f64) as usize).min(label1.samples.len());
            support::tone_amplitude(&label1.samples[a..b], label1.sample_rate, 1000.0)
        };
        let before = window(0.3, 0.8);
        let during = window(1.3, 1.7);
        let after = window(2.6, 3.4);
        eprintln!("1 kHz before {before:.3}, paused {during:.3}, after {after:.3}");
        assert!(before > 0.1, "tone before the pause: {before}");
        assert!(during < 0.02, "silence during the pause: {during}");
        assert!(after > 0.1, "tone after the resume: {after}");
    });
}

/// baresip answers playing 440 Hz; verbatim calls it playing 1000 Hz and records to the
/// built-in recorder: label 1 (the local user) holds 1000 Hz, label 2 (the far end) 440 Hz,
/// and the metadata's labels match the SDP's.
#[test]
fn baresip_call_recorded_by_label_into_builtin_srs() {
    let summary = record_baresip_call(false, &NARROWBAND);
    assert_eq!(summary["labels"][0]["srtp"], false);
}

/// A G.722 call is recorded as G.722 and the recorder decodes it at its full band: tones
/// above 4 kHz (5 kHz from baresip, 6.5 kHz from the phone) are on their labels.
#[test]
fn g722_call_is_recorded_wideband() {
    let summary = record_baresip_call(false, &WIDEBAND);
    let labels = summary["labels"].as_array().unwrap();
    assert!(labels.iter().all(|l| l["codec"] == "G722"), "{summary}");
}

/// The same with SRTP mandatory on the call (baresip `srtp-mand`): the recording session is
/// then SRTP too, with keys of its own, and still carries each side on its label.
#[test]
fn srtp_call_is_recorded_over_srtp() {
    let summary = record_baresip_call(true, &NARROWBAND);
    let labels = summary["labels"].as_array().unwrap();
    assert!(labels.iter().all(|l| l["srtp"] == true), "{summary}");
}

/// The codec of a call [`record_baresip_call`] records, and the tones each side plays.
struct RecordedCodec {
    /// verbatim's `--codec` and baresip's `audio_codecs`.
    name: &'static str,
    /// The rate of baresip's WAV, which aufile wants to match the codec's.
    baresip_rate: u32,
    phone_tone: f64,
    baresip_tone: f64,
}

const NARROWBAND: RecordedCodec = RecordedCodec {
    name: "pcmu",
    baresip_rate: 8000,
    phone_tone: 1000.0,
    baresip_tone: 440.0,
};

const WIDEBAND: RecordedCodec = RecordedCodec {
    name: "g722",
    baresip_rate: 16000,
    phone_tone: 6500.0,
    baresip_tone: 5000.0,
};

/// Records a call from the phone to baresip into the built-in recorder, each playing its
/// tone of `codec`, checks each label carries its side, and returns the recording's summary.
fn record_baresip_call(srtp: bool, codec: &RecordedCodec) -> serde_json::Value {
    let out = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    rt.block_on(async {
        let mut srs = start_srs(out.path()).await;
        let srs_port = srs.local_addr().port();
        let baresip_port = free_port();
        let mut baresip = Peer::new("srs-baresip");
        let far_tone = baresip.path("far-tone.wav");
        write_tone_wav(&far_tone, codec.baresip_rate, 8000, codec.baresip_tone);
        start_baresip_with(
            &mut baresip,
            &Baresip {
                port: baresip_port,
                user: "peer",
                auto_answer: true,
                wav: &far_tone,
                quit_after_secs: 20,
                commands: &[],
            },
            &BaresipMedia {
                audio_codecs: codec.name,
                mediaenc: srtp.then_some("srtp-mand"),
                ..BaresipMedia::default()
            },
        );
        let mut phone = Peer::new("srs-verbatim-call-baresip");
        let tone = phone.path("tone.wav");
        write_tone_wav(&tone, 48000, 6000, codec.phone_tone);
        start_verbatim(
            &mut phone,
            [
                "call",
                &format!("sip:peer@127.0.0.1:{baresip_port}"),
                "--codec",
                codec.name,
                "--srtp",
                if srtp { "mandatory" } else { "off" },
                "--play",
                tone.to_str().unwrap(),
                "--duration",
                "3",
                "--record",
                "--srs",
                &format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"),
            ],
        );
        let (mut phone, status) = wait_peer(phone, VERBATIM_TIMEOUT).await;
        if !status.success() {
            phone.fail(&format!("verbatim failed: {status}"));
        }
        let folder = loop {
            match next_event(&mut srs).await {
                SrsEvent::SessionEnded { folder, .. } => break folder,
                SrsEvent::Rejected { status, reason } => panic!("refused: {status} {reason}"),
                _ => {}
            }
        };
        srs.stop().await;
        baresip.stop();
        let local = Audio::read_wav(&find_wav(&folder, "label-1-"));
        let far = Audio::read_wav(&find_wav(&folder, "label-2-"));
        let (phone_tone, baresip_tone) = (codec.phone_tone, codec.baresip_tone);
        let (local_own, local_other) = (local.tone(phone_tone), local.tone(baresip_tone));
        let (far_own, far_other) = (far.tone(baresip_tone), far.tone(phone_tone));
        eprintln!(
            "label 1: {phone_tone} Hz {local_own:.3}, {baresip_tone} Hz {local_other:.3}; \
             label 2: {baresip_tone} Hz {far_own:.3}, {phone_tone} Hz {far_other:.3}"
        );
        assert!(
            local_own > 0.1 && local_other < local_own / 4.0,
            "label 1 must be the local user's {phone_tone} Hz"
        );
        assert!(
            far_own > 0.1 && far_other < far_own / 4.0,
            "label 2 must be the far end's {baresip_tone} Hz"
        );
        let xml = read_recorded(&folder, "metadata-1.xml");
        metadata::parse(&xml)
            .unwrap()
            .validate_against_labels(&["1".to_owned(), "2".to_owned()])
            .unwrap();
        serde_json::from_str(&read_recorded(&folder, "summary.json")).unwrap()
    })
}

/// With --record and no --srs, the phone starts its built-in recorder itself and the
/// recording lands in the data directory: recording works with zero setup.
#[test]
fn record_without_a_recorder_uses_the_builtin_one() {
    let data = tempfile::tempdir().unwrap();
    let peer_port = free_port();
    let mut far_end = Peer::new("builtin-sipp-uas");
    start_sipp_uas(
        &mut far_end,
        &Scenario::Builtin("uas"),
        peer_port,
        "u1",
        &[],
    );
    let mut phone = Peer::new("builtin-verbatim-call");
    let tone = phone.path("tone1000.wav");
    write_tone_wav(&tone, 8000, 4000, 1000.0);
    // The built-in recorder encrypts to the key the settings name: the test's.
    let config = phone.write_file(
        "config.toml",
        format!("[recording]\nkey_file = {:?}\n", support::test_key_file()),
    );
    let mut command = phone.command(support::verbatim_bin());
    command
        .env("XDG_DATA_HOME", data.path())
        .env("RUST_LOG", "info,verbatim=debug")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .args([
            "call",
            "--config",
            config.to_str().unwrap(),
            &format!("sip:service@127.0.0.1:{peer_port}"),
            "--codec",
            "pcmu",
            "--play",
            tone.to_str().unwrap(),
            "--duration",
            "2",
            "--record",
        ]);
    phone.start(command);
    phone.expect_success(VERBATIM_TIMEOUT);
    far_end.expect_success(SIPP_TIMEOUT);
    let recordings = data.path().join("verbatim").join("recordings");
    let folders = verbatim::archive::session::session_folders(&recordings);
    assert_eq!(folders.len(), 1, "{}", phone.stderr());
    let local = Audio::read_wav(&find_wav(&folders[0], "label-1-"));
    assert!(
        local.tone(1000.0) > 0.1,
        "label 1 should hold the 1 kHz we sent"
    );
    assert!(
        phone.stderr().contains("recording: recording"),
        "{}",
        phone.stderr()
    );
}

/// Starts the built-in recorder with SIP over TLS too, using the PKI's server certificate.
async fn start_tls_srs(dir: &Path, pki: &Pki) -> SrsHandle {
    let mut config = SrsConfig::new("127.0.0.1:0".parse().unwrap(), dir);
    config.tls = Some(verbatim::driver::tls::TlsServerSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        certificate: pki.path("server.pem"),
        key: pki.path("server.key"),
        client_ca: None,
    });
    verbatim::srs::run(config).await.unwrap()
}

/// Records a short call to `srs_uri`, trusting the PKI's CA; returns verbatim's stderr.
async fn record_over_tls(srs_uri: &str, pki: &Pki) -> String {
    let (far_end, peer_port) = start_sipp_far_end("srs-tls-sipp-uas");
    let mut phone = Peer::new("srs-tls-verbatim-call");
    start_verbatim(
        &mut phone,
        [
            "call",
            &format!("sip:service@127.0.0.1:{peer_port}"),
            "--codec",
            "pcmu",
            "--srtp",
            "off",
            "--duration",
            "2",
            "--tls-ca",
            pki.path("ca.pem").to_str().unwrap(),
            "--record",
            "--srs",
            srs_uri,
        ],
    );
    let (mut phone, status) = wait_peer(phone, VERBATIM_TIMEOUT).await;
    if !status.success() {
        phone.fail(&format!("verbatim failed: {status}"));
    }
    let (_far_end, _) = wait_peer(far_end, SIPP_TIMEOUT).await;
    phone.stderr()
}

/// The recording session runs over TLS to the built-in recorder, whose certificate is
/// checked against the recorder's host: a certificate for another host means no recording
/// (the call itself goes on, the policy being optional), and the reason is shown.
#[test]
fn recording_over_tls_checks_the_recorders_certificate() {
    let out = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    rt.block_on(async {
        let good = Pki::new(&["127.0.0.1"]);
        let mut srs = start_tls_srs(out.path(), &good).await;
        let tls_port = srs.tls_addr().unwrap().port();
        let stderr = record_over_tls(&format!("sips:srs@127.0.0.1:{tls_port}"), &good).await;
        assert!(stderr.contains("recording: recording"), "{stderr}");
        let folder = loop {
            if let SrsEvent::SessionEnded { folder, .. } = next_event(&mut srs).await {
                break folder;
            }
        };
        srs.stop().await;
        let label1 = Audio::read_wav(&find_wav(&folder, "label-1-"));
        assert!(label1.seconds() > 1.0);

        let wrong_host = Pki::new(&["recorder.example"]);
        let srs = start_tls_srs(out.path(), &wrong_host).await;
        let tls_port = srs.tls_addr().unwrap().port();
        let stderr = record_over_tls(&format!("sips:srs@127.0.0.1:{tls_port}"), &wrong_host).await;
        srs.stop().await;
        assert!(!stderr.contains("recording: recording"), "{stderr}");
        assert!(
            stderr.contains("recording: retrying") && stderr.contains("TLS"),
            "{stderr}"
        );

        let expired = Pki::with_expired_server(&["127.0.0.1"]);
        let srs = start_tls_srs(out.path(), &expired).await;
        let tls_port = srs.tls_addr().unwrap().port();
        let stderr = record_over_tls(&format!("sips:srs@127.0.0.1:{tls_port}"), &expired).await;
        srs.stop().await;
        assert!(!stderr.contains("recording: recording"), "{stderr}");
        assert!(
            stderr.contains("recording: retrying") && stderr.contains("expired"),
            "{stderr}"
        );
    });
}

/// `[recording] auto = "all"` in the configuration records every call without --record,
/// to the recorder the file names.
#[test]
fn the_configuration_records_every_call_without_the_flag() {
    let out = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    rt.block_on(async {
        let mut srs = start_srs(out.path()).await;
        let srs_port = srs.local_addr().port();
        let (far_end, peer_port) = start_sipp_far_end("srs-config-sipp-uas");
        let mut phone = Peer::new("srs-config-verbatim-call");
        let config = phone.path("config.toml");
        std::fs::write(
            &config,
            format!(
                "[recording]\nauto = \"all\"\nsrs = \"sip:srs@127.0.0.1:{srs_port};transport=tcp\"\n"
            ),
        )
        .unwrap();
        start_verbatim(
            &mut phone,
            [
                "call",
                &format!("sip:service@127.0.0.1:{peer_port}"),
                "--config",
                config.to_str().unwrap(),
                "--codec",
                "pcmu",
                "--srtp",
                "off",
                "--duration",
                "2",
            ],
        );
        let (mut phone, status) = wait_peer(phone, VERBATIM_TIMEOUT).await;
        if !status.success() {
            phone.fail(&format!("verbatim failed: {status}"));
        }
        let _ = wait_peer(far_end, SIPP_TIMEOUT).await;
        assert!(
            matches!(next_event(&mut srs).await, SrsEvent::SessionStarted { .. }),
            "{}",
            phone.stderr()
        );
        srs.stop().await;
    });
}

/// `--keep-days`: recordings older than that are deleted when the recorder starts, and the
/// log says which; newer ones and folders that are not recordings stay.
#[test]
fn the_recorder_deletes_recordings_past_their_retention_and_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let day = Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    let make = |name: &str, age: Duration| {
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("metadata-1.xml"), "<recording/>").unwrap();
        std::fs::File::create(folder.join("summary.json"))
            .unwrap()
            .set_modified(now - age)
            .unwrap();
        folder
    };
    let old = make("20251001T090000Z-0a0b0c0d", 40 * day);
    let recent = make("20261120T090000Z-1a1b1c1d", 2 * day);
    let mine = make("my-notes", 400 * day);

    let (mut srs, _) = start_recorder("srs-retention", dir.path(), &["--keep-days", "30"]);
    srs.wait_for_output("past its retention", Duration::from_secs(10));
    srs.stop();
    assert!(!old.exists(), "{}", srs.report());
    assert!(recent.exists() && mine.exists());
    assert!(srs.stderr().contains("20251001T090000Z-0a0b0c0d"));
}
