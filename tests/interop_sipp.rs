//! Interop with sipp (Debian package sip-tester), all on 127.0.0.1.
//!
//! sipp's built-in `uas`/`uac` scenarios and our own in `tests/data/sipp/` play the other
//! side of a call placed or answered by the `verbatim` binary. Both processes must exit 0
//! (sipp exits 0 only when its call went through the whole scenario).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use support::{
    Account, Peer, Proto, START_TIMEOUT, Scenario, free_port, sipp_scenario, start_sipp,
    start_sipp_uas, start_verbatim,
};

/// Bound on a verbatim run: call setup, a 1 s call, hang-up.
const VERBATIM_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound on a sipp run; the built-in uas waits 4 s after the BYE before it exits.
const SIPP_TIMEOUT: Duration = Duration::from_secs(20);

/// verbatim calls sipp's built-in UAS over UDP (the default transport).
#[test]
fn call_to_sipp_uas_over_udp() {
    let sipp_port = free_port();
    let verbatim_port = free_port();
    let mut sipp = Peer::new("sipp-uas");
    start_sipp_uas(&mut sipp, &Scenario::Builtin("uas"), sipp_port, "u1", &[]);

    let mut verbatim = Peer::new("verbatim-call");
    start_verbatim(
        &mut verbatim,
        [
            "call",
            &format!("sip:service@127.0.0.1:{sipp_port}"),
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--duration",
            "1",
        ],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    sipp.expect_success(SIPP_TIMEOUT);
}

/// sipp's built-in UAC calls `verbatim answer`, which answers, and sipp hangs up after 1 s.
#[test]
fn answer_call_from_sipp_uac() {
    let verbatim_port = free_port();
    let sipp_port = free_port();
    let mut verbatim = Peer::new("verbatim-answer");
    start_verbatim(
        &mut verbatim,
        [
            "answer",
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--calls",
            "1",
        ],
    );
    verbatim.wait_until_listening(Proto::Udp, verbatim_port, START_TIMEOUT);

    let mut sipp = Peer::new("sipp-uac");
    start_sipp(
        &mut sipp,
        &Scenario::Builtin("uac"),
        sipp_port,
        "u1",
        &["-s", "verbatim", "-d", "1000"],
        Some(&format!("127.0.0.1:{verbatim_port}")),
    );
    sipp.expect_success(SIPP_TIMEOUT);
    verbatim.expect_success(VERBATIM_TIMEOUT);
}

/// The UAS ignores the first INVITE: the call only works if verbatim retransmits it over
/// UDP (Timer A) with the same branch. `-nr` lets sipp see the retransmission.
#[test]
fn invite_is_retransmitted_over_udp() {
    let sipp_port = free_port();
    let verbatim_port = free_port();
    let mut sipp = Peer::new("sipp-uas-retransmit");
    start_sipp_uas(
        &mut sipp,
        &Scenario::File(sipp_scenario("uas_retransmit.xml")),
        sipp_port,
        "u1",
        &["-nr"],
    );

    let mut verbatim = Peer::new("verbatim-call");
    start_verbatim(
        &mut verbatim,
        [
            "call",
            &format!("sip:service@127.0.0.1:{sipp_port}"),
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--transport",
            "udp",
            "--duration",
            "1",
        ],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    sipp.expect_success(SIPP_TIMEOUT);
    let actions = std::fs::read_to_string(sipp.path("sipp_actions.log")).unwrap_or_default();
    assert!(
        actions.contains("INVITE retransmission received"),
        "sipp did not log the retransmission:\n{}",
        sipp.report()
    );
}

/// sipp answers INVITEs (`verbatim answer`) but does not ACK the first 200 OK: the call
/// only works if verbatim retransmits the 200 until the ACK comes (RFC 3261 13.3.1.4).
#[test]
fn ok_is_retransmitted_until_ack() {
    let verbatim_port = free_port();
    let sipp_port = free_port();
    let mut verbatim = Peer::new("verbatim-answer");
    start_verbatim(
        &mut verbatim,
        [
            "answer",
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--calls",
            "1",
        ],
    );
    verbatim.wait_until_listening(Proto::Udp, verbatim_port, START_TIMEOUT);

    let mut sipp = Peer::new("sipp-uac-retransmit");
    start_sipp(
        &mut sipp,
        &Scenario::File(sipp_scenario("uac_retransmit.xml")),
        sipp_port,
        "u1",
        &["-nr", "-s", "verbatim", "-d", "1000"],
        Some(&format!("127.0.0.1:{verbatim_port}")),
    );
    sipp.expect_success(SIPP_TIMEOUT);
    verbatim.expect_success(VERBATIM_TIMEOUT);
}

/// The UAS challenges the INVITE with 401 (realm "sipp"); verbatim answers the challenge
/// with the password of the account in its config (the account has no registrar), and
/// sipp checks the digest (`verifyauth`): a wrong one fails the scenario.
#[test]
fn invite_digest_challenge_is_answered() {
    let sipp_port = free_port();
    let verbatim_port = free_port();
    let mut sipp = Peer::new("sipp-uas-digest");
    start_sipp_uas(
        &mut sipp,
        &Scenario::File(sipp_scenario("uas_digest.xml")),
        sipp_port,
        "u1",
        &[
            "-set",
            "auth_user",
            "alice",
            "-set",
            "auth_pass",
            "sipp-secret",
        ],
    );

    let mut verbatim = Peer::new("verbatim-call");
    let config = Account::new("alice", "sipp-secret").write_config(&verbatim, "alice.toml");
    start_verbatim(
        &mut verbatim,
        [
            "call",
            &format!("sip:service@127.0.0.1:{sipp_port}"),
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--duration",
            "1",
        ],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    sipp.expect_success(SIPP_TIMEOUT);
}

/// verbatim calls a basic sipp UAS over TCP. Not the built-in `uas`: over TCP it counts
/// the call as failed when the caller closes the connection within a few ms of the 200 to
/// the BYE (see `uas_tcp.xml`).
#[test]
fn call_to_sipp_uas_over_tcp() {
    let sipp_port = free_port();
    let verbatim_port = free_port();
    let mut sipp = Peer::new("sipp-uas-tcp");
    start_sipp_uas(
        &mut sipp,
        &Scenario::File(sipp_scenario("uas_tcp.xml")),
        sipp_port,
        "t1",
        &[],
    );

    let mut verbatim = Peer::new("verbatim-call");
    start_verbatim(
        &mut verbatim,
        [
            "call",
            &format!("sip:service@127.0.0.1:{sipp_port}"),
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--transport",
            "tcp",
            "--duration",
            "1",
        ],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    sipp.expect_success(SIPP_TIMEOUT);
}

/// The UAS answers 486: verbatim ACKs it, exits non-zero and says why on stderr.
#[test]
fn busy_callee_fails_the_call() {
    let sipp_port = free_port();
    let verbatim_port = free_port();
    let mut sipp = Peer::new("sipp-uas-busy");
    start_sipp_uas(
        &mut sipp,
        &Scenario::File(sipp_scenario("uas_busy.xml")),
        sipp_port,
        "u1",
        &[],
    );

    let mut verbatim = Peer::new("verbatim-call");
    start_verbatim(
        &mut verbatim,
        [
            "call",
            &format!("sip:service@127.0.0.1:{sipp_port}"),
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--duration",
            "1",
        ],
    );
    verbatim.expect_failure(VERBATIM_TIMEOUT);
    let stderr = verbatim.stderr();
    if !stderr.contains("486") {
        verbatim.fail("verbatim's stderr does not give the 486 as the reason");
    }
    sipp.expect_success(SIPP_TIMEOUT);
}

/// Listening on all interfaces, verbatim still advertises the address that routes to the
/// peer (127.0.0.1 here) in Via, Contact and SDP; sipp's scenario checks each.
#[test]
fn caller_on_all_interfaces_advertises_a_routable_address() {
    let sipp_port = free_port();
    let verbatim_port = free_port();
    let mut sipp = Peer::new("sipp-uas-address");
    start_sipp_uas(
        &mut sipp,
        &Scenario::File(sipp_scenario("uas_advertised_address.xml")),
        sipp_port,
        "u1",
        &[],
    );
    let mut verbatim = Peer::new("verbatim-call-any");
    start_verbatim(
        &mut verbatim,
        [
            "call",
            &format!("sip:service@127.0.0.1:{sipp_port}"),
            "--listen",
            &format!("0.0.0.0:{verbatim_port}"),
            "--duration",
            "1",
        ],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    sipp.expect_success(SIPP_TIMEOUT);
}

/// While the far end rings, the caller hears ringback (425 Hz, 1 s on, 4 s off); it stops
/// when the call is answered.
#[test]
fn caller_hears_ringback_until_the_answer() {
    let sipp_port = free_port();
    let verbatim_port = free_port();
    let mut sipp = Peer::new("sipp-uas-ring");
    start_sipp_uas(
        &mut sipp,
        &Scenario::File(sipp_scenario("uas_ring_then_answer.xml")),
        sipp_port,
        "u1",
        &[],
    );
    let mut verbatim = Peer::new("verbatim-call-ringback");
    let heard = verbatim.path("heard.wav");
    start_verbatim(
        &mut verbatim,
        [
            "call",
            &format!("sip:service@127.0.0.1:{sipp_port}"),
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--duration",
            "1",
            "--save-received",
            heard.to_str().unwrap(),
        ],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    sipp.expect_success(SIPP_TIMEOUT);
    let audio = support::Audio::read_wav(&heard);
    let rate = audio.sample_rate as usize;
    // The first second of ringing is the tone's "on" part.
    let ringing = &audio.samples[rate / 10..rate * 9 / 10];
    let tone = support::tone_amplitude(ringing, audio.sample_rate, 425.0);
    assert!(tone > 0.1, "no ringback: 425 Hz at {tone:.3}");
    // After the answer sipp sends no media: silence, not ringback.
    let answered = &audio.samples[audio.samples.len() - rate / 2..];
    let after = support::tone_amplitude(answered, audio.sample_rate, 425.0);
    assert!(after < 0.01, "ringback after the answer: {after:.3}");
}
