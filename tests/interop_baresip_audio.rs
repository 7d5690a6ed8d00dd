#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Audio and DTMF interop with baresip 1.0 (Debian package baresip-core), all on 127.0.0.1.
//!
//! Audio: baresip auto-answers and plays a 440 Hz WAV (aufile) while recording what it
//! hears (sndfile, `rec/dump-*-dec.wav` in its dir); `verbatim call` plays 1000 Hz and
//! saves what it hears. Each side must hear the other's tone, checked by frequency
//! (Goertzel), for each codec with and without SDES-SRTP (G.722 with tones above 4 kHz,
//! which only a wideband path carries). baresip ends a call when its WAV
//! ends, so its WAV outlasts the call and verbatim hangs up after `--duration`.
//!
//! DTMF: verbatim's `--dtmf` digits must show up in baresip's log as "received event: 'X'
//! (end=0|1)" (baresip's core prints that for each RFC 4733 event start and end, no `-v`
//! needed); baresip's digits, typed on its menu through the cons module's UDP console,
//! must show up on verbatim's stderr as "dtmf received: X".

mod support;

use std::time::Duration;

use support::{
    Audio, Baresip, BaresipMedia, Peer, Proto, START_TIMEOUT, baresip_recording, baresip_send_dtmf,
    free_port, start_baresip_with, start_verbatim, tone_amplitude, write_tone_wav,
    write_tone_wav_channels,
};

/// How long verbatim may take for a call of `--duration 3`.
const VERBATIM_TIMEOUT: Duration = Duration::from_secs(15);
/// How long baresip may take to print something after verbatim is done.
const BARESIP_TIMEOUT: Duration = Duration::from_secs(5);
/// `--duration` of the audio calls.
const CALL_SECS: u32 = 3;
/// What baresip plays, and verbatim must hear.
const BARESIP_TONE: f64 = 440.0;
/// What verbatim plays, and baresip must hear.
const VERBATIM_TONE: f64 = 1000.0;
/// What baresip plays over G.722: above G.711's 4 kHz band.
const WIDEBAND_BARESIP_TONE: f64 = 5000.0;
/// What verbatim plays over G.722.
const WIDEBAND_VERBATIM_TONE: f64 = 6500.0;
/// The tones are written at 0.3 of full scale; a codec may change that a little.
const MIN_TONE: f64 = 0.1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codec {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

impl Codec {
    /// verbatim's `--codec`.
    fn flag(self) -> &'static str {
        match self {
            Codec::Pcmu => "pcmu",
            Codec::Pcma => "pcma",
            Codec::G722 => "g722",
            Codec::Opus => "opus",
        }
    }

    /// baresip's `audio_codecs`.
    fn baresip(self) -> &'static str {
        match self {
            Codec::Pcmu => "pcmu",
            Codec::Pcma => "pcma",
            Codec::G722 => "g722",
            Codec::Opus => "opus/48000/2",
        }
    }

    /// The rate and channels baresip's aufile insists on for this codec: anything else
    /// and it fails to start its source ("input file (...) must have channels = 2") and
    /// the call fails.
    fn baresip_wav(self) -> (u32, u16) {
        match self {
            Codec::Pcmu | Codec::Pcma => (8000, 1),
            Codec::G722 => (16000, 1),
            Codec::Opus => (48000, 2),
        }
    }

    /// What baresip and verbatim play: for G.722, tones that a narrowband leg anywhere
    /// would have cut.
    fn tones(self) -> (f64, f64) {
        match self {
            Codec::G722 => (WIDEBAND_BARESIP_TONE, WIDEBAND_VERBATIM_TONE),
            _ => (BARESIP_TONE, VERBATIM_TONE),
        }
    }

    /// The encoding name in the SDP and in `--stats`.
    fn encoding(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }
}

/// verbatim's `--srtp` in these tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Srtp {
    Off,
    Mandatory,
}

impl Srtp {
    fn flag(self) -> &'static str {
        match self {
            Srtp::Off => "off",
            Srtp::Mandatory => "mandatory",
        }
    }

    /// baresip's `mediaenc`: `srtp-mand` takes and offers only RTP/SAVP with a=crypto.
    fn baresip(self) -> Option<&'static str> {
        match self {
            Srtp::Off => None,
            Srtp::Mandatory => Some("srtp-mand"),
        }
    }
}

/// verbatim calls an auto-answering baresip with `codec` and `srtp`; each plays a tone;
/// each must hear the other's; `--stats` must tell the codec and SRTP.
fn audio_call(codec: Codec, srtp: Srtp) {
    let baresip_port = free_port();
    let verbatim_port = free_port();
    let name = format!("{}-{}", codec.flag(), srtp.flag());

    let mut baresip = Peer::new(&format!("baresip-{name}"));
    let baresip_wav = baresip.path("tone440.wav");
    let (rate, channels) = codec.baresip_wav();
    let (baresip_tone, verbatim_tone) = codec.tones();
    // Longer than the call: verbatim hangs up, not baresip.
    write_tone_wav_channels(&baresip_wav, rate, channels, 10_000, baresip_tone);
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
            audio_codecs: codec.baresip(),
            mediaenc: srtp.baresip(),
            console_port: None,
            sound_card: false,
        },
    );

    let mut verbatim = Peer::new(&format!("verbatim-{name}"));
    let play = verbatim.path("tone1000.wav");
    // Any rate goes for --play; 48 kHz makes verbatim resample it to the codec's. Longer than
    // the call, so that it never falls back to silence.
    write_tone_wav(&play, 48000, 8000, verbatim_tone);
    let got = verbatim.path("got.wav");
    start_verbatim(
        &mut verbatim,
        [
            "call",
            &format!("sip:peer@127.0.0.1:{baresip_port}"),
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--codec",
            codec.flag(),
            "--srtp",
            srtp.flag(),
            "--play",
            &play.display().to_string(),
            "--save-received",
            &got.display().to_string(),
            "--duration",
            &CALL_SECS.to_string(),
            "--stats",
        ],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    baresip.wait_for_output("terminated", BARESIP_TIMEOUT);

    // What verbatim heard: baresip's 440 Hz.
    let heard = Audio::read_wav(&got);
    assert_eq!(heard.sample_rate, 48000, "--save-received is 48 kHz");
    assert_tone(
        &heard,
        baresip_tone,
        verbatim_tone,
        &format!("{name}: verbatim's --save-received"),
    );

    // What baresip heard: verbatim's 1000 Hz.
    let recorded = baresip_recording(&mut baresip, "dec", BARESIP_TIMEOUT);
    assert_tone(
        &recorded,
        verbatim_tone,
        baresip_tone,
        &format!("{name}: baresip's dec recording"),
    );

    let stats = call_stats(&verbatim.stdout());
    let rtp = &stats["rtp"];
    assert_eq!(stats["call"], 1, "--stats: {stats}");
    let reported = rtp["codec"].as_str().unwrap_or_default();
    assert!(
        reported.eq_ignore_ascii_case(codec.encoding()),
        "--stats codec {reported:?}, expected {}: {stats}",
        codec.encoding()
    );
    assert_eq!(
        rtp["srtp"].as_bool(),
        Some(srtp == Srtp::Mandatory),
        "--stats srtp: {stats}"
    );
    let received = rtp["packets_received"].as_u64().unwrap_or_default();
    assert!(
        received > 50,
        "--stats packets_received {received}: {stats}"
    );
}

/// `audio` holds `wanted` clearly (over its middle half), and `other` much less.
fn assert_tone(audio: &Audio, wanted: f64, other: f64, what: &str) {
    let seconds = audio.seconds();
    assert!(
        seconds >= 1.5,
        "{what}: only {seconds:.2} s of audio (a {CALL_SECS} s call)"
    );
    let level = audio.tone(wanted);
    let leak = audio.tone(other);
    // Shown with --nocapture: how far the levels are from the bounds.
    eprintln!("{what}: {seconds:.2} s, {wanted} Hz reads {level:.3}, {other} Hz {leak:.4}");
    assert!(
        level > MIN_TONE && level > 4.0 * leak,
        "{what} ({seconds:.2} s at {} Hz): {wanted} Hz reads {level:.3} (want > {MIN_TONE}), \
         {other} Hz reads {leak:.3} (want < a quarter of it)",
        audio.sample_rate
    );
}

/// The `--stats` JSON line of call 1 in verbatim's stdout.
fn call_stats(stdout: &str) -> serde_json::Value {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line.trim()).ok())
        .find(|value| value.get("rtp").is_some())
        .unwrap_or_else(|| panic!("no --stats JSON line in verbatim's stdout:\n{stdout}"))
}

#[test]
fn pcmu_audio_both_ways() {
    audio_call(Codec::Pcmu, Srtp::Off);
}

#[test]
fn pcmu_srtp_audio_both_ways() {
    audio_call(Codec::Pcmu, Srtp::Mandatory);
}

#[test]
fn pcma_audio_both_ways() {
    audio_call(Codec::Pcma, Srtp::Off);
}

#[test]
fn pcma_srtp_audio_both_ways() {
    audio_call(Codec::Pcma, Srtp::Mandatory);
}

#[test]
fn g722_wideband_audio_both_ways() {
    audio_call(Codec::G722, Srtp::Off);
}

#[test]
fn g722_srtp_wideband_audio_both_ways() {
    audio_call(Codec::G722, Srtp::Mandatory);
}

#[test]
fn opus_audio_both_ways() {
    audio_call(Codec::Opus, Srtp::Off);
}

#[test]
fn opus_srtp_audio_both_ways() {
    audio_call(Codec::Opus, Srtp::Mandatory);
}

/// The Goertzel check itself, on tones of known amplitude (no peers).
#[test]
fn tone_amplitude_reads_known_tones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tone.wav");
    write_tone_wav_channels(&path, 48000, 2, 1000, 440.0);
    let audio = Audio::read_wav(&path);
    assert_eq!((audio.sample_rate, audio.samples.len()), (48000, 48000));
    let level = audio.tone(440.0);
    assert!((level - 0.3).abs() < 0.01, "440 Hz at 0.3 reads {level}");
    assert!(audio.tone(1000.0) < 0.001);
    let full: Vec<f64> = (0..8000)
        .map(|n| (2.0 * std::f64::consts::PI * 1000.0 * f64::from(n) / 8000.0).sin())
        .collect();
    let level = tone_amplitude(&full, 8000, 1000.0);
    assert!(
        (level - 1.0).abs() < 0.01,
        "a full-scale sine reads {level}"
    );
    assert!(tone_amplitude(&full, 8000, 440.0) < 0.001);
}

/// The digits of "received event: 'X' (end=E)" lines in baresip's output: (starts, ends).
fn baresip_received_events(log: &str) -> (String, String) {
    let (mut starts, mut ends) = (String::new(), String::new());
    for line in log.lines() {
        let Some(rest) = line.split("received event: '").nth(1) else {
            continue;
        };
        let mut chars = rest.chars();
        let (Some(digit), Some('\'')) = (chars.next(), chars.next()) else {
            continue;
        };
        if rest.contains("(end=1)") {
            ends.push(digit);
        } else if rest.contains("(end=0)") {
            starts.push(digit);
        }
    }
    (starts, ends)
}

/// verbatim calls baresip with `--dtmf 1234#`; baresip reports each event's start and end,
/// in order.
#[test]
fn dtmf_from_verbatim_to_baresip() {
    let baresip_port = free_port();
    let verbatim_port = free_port();
    let mut baresip = Peer::new("baresip-dtmf-in");
    let wav = baresip.path("tone440.wav");
    write_tone_wav(&wav, 8000, 10_000, BARESIP_TONE);
    start_baresip_with(
        &mut baresip,
        &Baresip {
            port: baresip_port,
            user: "peer",
            auto_answer: true,
            wav: &wav,
            quit_after_secs: 25,
            commands: &[],
        },
        &BaresipMedia::default(),
    );

    let mut verbatim = Peer::new("verbatim-dtmf-out");
    start_verbatim(
        &mut verbatim,
        [
            "call",
            &format!("sip:peer@127.0.0.1:{baresip_port}"),
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--codec",
            "pcmu",
            "--dtmf",
            "1234#",
            "--duration",
            &CALL_SECS.to_string(),
        ],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    let log = baresip.wait_for_output("terminated", BARESIP_TIMEOUT);
    let (starts, ends) = baresip_received_events(&log);
    assert_eq!(
        (starts.as_str(), ends.as_str()),
        ("1234#", "1234#"),
        "baresip's received telephone-events (starts, ends)"
    );
}

/// baresip calls `verbatim answer` and, once the call is up, gets "1234#" typed on its
/// console: verbatim prints "dtmf received: X" for each, in order.
#[test]
fn dtmf_from_baresip_to_verbatim() {
    let verbatim_port = free_port();
    let baresip_port = free_port();
    let console_port = free_port();
    let mut verbatim = Peer::new("verbatim-dtmf-in");
    start_verbatim(
        &mut verbatim,
        [
            "answer",
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--calls",
            "1",
            "--codec",
            "pcmu",
        ],
    );
    verbatim.wait_until_listening(Proto::Udp, verbatim_port, START_TIMEOUT);

    let mut baresip = Peer::new("baresip-dtmf-out");
    let wav = baresip.path("tone440.wav");
    // baresip hangs up when this ends: time enough for the digits (~0.25 s each).
    write_tone_wav(&wav, 8000, 5000, BARESIP_TONE);
    let dial = format!("/dial sip:verbatim@127.0.0.1:{verbatim_port}");
    start_baresip_with(
        &mut baresip,
        &Baresip {
            port: baresip_port,
            user: "baresip",
            auto_answer: false,
            wav: &wav,
            quit_after_secs: 25,
            commands: &[&dial],
        },
        &BaresipMedia {
            console_port: Some(console_port),
            ..BaresipMedia::default()
        },
    );
    baresip.wait_for_output("Call established", START_TIMEOUT);
    baresip_send_dtmf(console_port, "1234#");

    verbatim.expect_success(VERBATIM_TIMEOUT);
    let received: String = verbatim
        .stderr()
        .lines()
        .filter_map(|line| line.trim().strip_prefix("dtmf received: "))
        .collect();
    assert_eq!(
        received, "1234#",
        "verbatim's \"dtmf received\" lines, in order"
    );
    let log = baresip.wait_for_output("terminated", BARESIP_TIMEOUT);
    assert!(
        log.contains("send DTMF digit end: '#'"),
        "baresip did not send the digits"
    );
}
