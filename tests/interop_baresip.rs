//! Interop with baresip 1.0 (Debian package baresip-core), all on 127.0.0.1, PCMU.
//!
//! baresip plays a WAV made by the test (aufile) and records what it hears (sndfile, in
//! its dir's rec/). It ends a call itself when its WAV ends ("audio error (0,end of
//! file)" then BYE), so the WAV length decides who hangs up: longer than the call when
//! verbatim must hang up, 1 s when baresip must.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use support::{
    Baresip, Peer, Proto, START_TIMEOUT, free_port, start_baresip, start_verbatim, write_tone_wav,
};

const VERBATIM_TIMEOUT: Duration = Duration::from_secs(15);

/// baresip auto-answers (`answermode=auto`); verbatim calls it, keeps the call up 1 s and
/// hangs up. baresip's WAV lasts 5 s so that it does not hang up first.
#[test]
fn call_to_baresip_auto_answer() {
    let baresip_port = free_port();
    let verbatim_port = free_port();
    let mut baresip = baresip_answering("baresip-answer", baresip_port, 5000);

    let mut verbatim = Peer::new("verbatim-call");
    // baresip takes only calls to its account's user ("UA not found: ..." otherwise).
    let uri = format!("sip:peer@127.0.0.1:{baresip_port}");
    let listen = format!("127.0.0.1:{verbatim_port}");
    start_verbatim(
        &mut verbatim,
        ["call", &uri, "--listen", &listen, "--duration", "1"],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    let log = baresip.wait_for_output("terminated", Duration::from_secs(5));
    assert!(
        log.contains("Call established"),
        "baresip did not establish the call:\n{}",
        baresip.report()
    );
}

/// baresip as user "peer" on `port`, answering every call and playing a 440 Hz WAV of
/// `wav_ms` (it hangs up when the WAV ends).
fn baresip_answering(name: &str, port: u16, wav_ms: u32) -> Peer {
    let mut baresip = Peer::new(name);
    let wav = baresip.path("tone.wav");
    write_tone_wav(&wav, 8000, wav_ms, 440.0);
    start_baresip(
        &mut baresip,
        &Baresip {
            port,
            user: "peer",
            auto_answer: true,
            wav: &wav,
            quit_after_secs: 20,
            commands: &[],
        },
    );
    baresip
}

/// `verbatim answer` for one call on `port`, once it listens.
fn verbatim_answering(name: &str, port: u16) -> Peer {
    let mut verbatim = Peer::new(name);
    start_verbatim(
        &mut verbatim,
        [
            "answer",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--calls",
            "1",
        ],
    );
    verbatim.wait_until_listening(Proto::Udp, port, START_TIMEOUT);
    verbatim
}

/// baresip calls `verbatim answer` (`-e "/dial ..."` at start); verbatim answers; baresip
/// hangs up when its 1 s WAV ends; verbatim exits 0 after that BYE.
#[test]
fn answer_call_from_baresip() {
    let verbatim_port = free_port();
    let baresip_port = free_port();
    let mut verbatim = verbatim_answering("verbatim-answer", verbatim_port);

    let mut baresip = Peer::new("baresip-dial");
    let wav = baresip.path("tone.wav");
    write_tone_wav(&wav, 8000, 1000, 440.0);
    let dial = format!("/dial sip:verbatim@127.0.0.1:{verbatim_port}");
    start_baresip(
        &mut baresip,
        &Baresip {
            port: baresip_port,
            user: "baresip",
            auto_answer: false,
            wav: &wav,
            // A bound, not the way the call ends: the end of the WAV ends it.
            quit_after_secs: 15,
            commands: &[&dial],
        },
    );

    verbatim.expect_success(VERBATIM_TIMEOUT);
    let log = baresip.wait_for_output("terminated", Duration::from_secs(5));
    assert!(
        log.contains("Call established"),
        "baresip did not establish the call:\n{}",
        baresip.report()
    );
}

/// Blind transfer with a real transferee: verbatim calls baresip and, a second in, asks it
/// (REFER) to call a `verbatim answer` instead. baresip calls the target, tells verbatim
/// by NOTIFY (message/sipfrag) that it answered, and verbatim leaves the call ("call
/// transferred"). The target hears baresip's call and its end.
#[test]
fn baresip_follows_a_blind_transfer() {
    let baresip_port = free_port();
    let target_port = free_port();
    let mut target = verbatim_answering("verbatim-transfer-target", target_port);

    // Its WAV keeps it in the call with the target for a few seconds.
    let _baresip = baresip_answering("baresip-transferee", baresip_port, 4000);

    let mut transferor = Peer::new("verbatim-transferor");
    let uri = format!("sip:peer@127.0.0.1:{baresip_port}");
    start_verbatim(
        &mut transferor,
        [
            "call",
            &uri,
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--duration",
            "10",
            "--transfer-to",
            &format!("sip:carol@127.0.0.1:{target_port}"),
            "--transfer-at",
            "1",
        ],
    );
    transferor.expect_success(VERBATIM_TIMEOUT);
    let log = transferor.report();
    assert!(log.contains("transfer: accepted"), "{log}");
    assert!(log.contains("transfer: the target answered"), "{log}");
    assert!(log.contains("call transferred"), "{log}");
    // baresip's call to the target came in, and ended when its WAV did.
    target.expect_success(VERBATIM_TIMEOUT);
    assert!(
        target.report().contains("incoming call from"),
        "{}",
        target.report()
    );
}
