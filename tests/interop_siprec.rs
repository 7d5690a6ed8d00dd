//! Recording with real peers: sipp plays the Session Recording Server and checks what the
//! SIPREC INVITE carries; another sipp is the far end of the recorded call.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use support::{
    Peer, Scenario, arrivals_at, free_port, recorder_ports, sipp_scenario, start_sipp,
    start_sipp_far_end, start_sipp_uas, start_verbatim, start_verbatim_with_env,
};

/// Deployed recorders answer the OPTIONS Verbatim probes them with every few seconds (RFC
/// 3261 11): sipp's `-aa` answers the ones a scenario does not script with 200.
const RECORDER_ANSWERS_PROBES: &str = "-aa";

const VERBATIM_TIMEOUT: Duration = Duration::from_secs(20);
const SIPP_TIMEOUT: Duration = Duration::from_secs(25);

/// The recording session opens beside the call with Require: siprec, +sip.src and a
/// multipart body whose SDP and metadata agree on the labels; pausing and resuming are
/// re-INVITEs with inactive and sendonly streams; the call's end ends the recording with BYE.
#[test]
fn call_recorded_to_sipp_srs_with_pause_and_resume() {
    let verbatim = record_a_call_to_sipp(
        "basic",
        "srs_basic.xml",
        &[],
        // No transport parameter: recording sessions default to TCP.
        "",
        &["--pause-at", "1", "--resume-at", "2"],
    );
    let stderr = verbatim.stderr();
    let states = recording_states(&verbatim);
    assert_eq!(
        states,
        vec!["starting", "recording", "paused", "recording", "off"],
        "{stderr}"
    );
}

/// The recorder pauses the recording by re-INVITE (every stream inactive) and resumes it
/// with a metadata request: the phone answers inactive, then sendonly with a fresh snapshot,
/// and its indicator says who paused.
#[test]
fn recorder_pauses_and_resumes_and_asks_for_metadata() {
    let verbatim = record_a_call_to_sipp("pauses", "srs_pauses.xml", &[], ";transport=tcp", &[]);
    let stderr = verbatim.stderr();
    let states = recording_states(&verbatim);
    assert_eq!(
        states,
        vec![
            "starting",
            "recording",
            "paused by the recorder",
            "recording",
            "off"
        ],
        "{stderr}"
    );
}

/// A recorder that asks for digest authentication gets the INVITE again with credentials
/// (the password from the environment, never the command line), and records.
#[test]
fn recorder_that_challenges_gets_credentials() {
    let (mut far_end, peer_port) = start_sipp_far_end("sipp-uas");
    let srs_port = free_port();
    let mut srs = Peer::new("sipp-srs-digest");
    start_sipp_uas(
        &mut srs,
        &Scenario::File(sipp_scenario("srs_digest.xml")),
        srs_port,
        "t1",
        &[
            RECORDER_ANSWERS_PROBES,
            "-set",
            "auth_user",
            "src-phone",
            "-set",
            "auth_pass",
            "rec-secret",
        ],
    );
    let mut verbatim = Peer::new("verbatim-call-recorded-digest");
    start_verbatim_with_env(
        &mut verbatim,
        [
            "call",
            &format!("sip:service@127.0.0.1:{peer_port}"),
            "--codec",
            "pcmu",
            "--srtp",
            "off",
            "--duration",
            "2",
            "--record",
            "--srs",
            &format!("sip:srs@127.0.0.1:{srs_port}"),
            "--srs-user",
            "src-phone",
        ],
        &[("VERBATIM_SRS_PASSWORD", "rec-secret")],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    srs.expect_success(SIPP_TIMEOUT);
    far_end.expect_success(SIPP_TIMEOUT);
    let stderr = verbatim.stderr();
    assert!(stderr.contains("recording: recording"), "{stderr}");
    assert!(
        !stderr.contains("rec-secret"),
        "the password is never printed"
    );
}

/// A recorder the policy allows starts the recording itself (SRS-initiated, no offer): the
/// phone answers with its offer and the metadata, takes the recorder's answer from the ACK,
/// records, and takes the recorder's BYE as the end of the recording, not of the call.
#[test]
fn recorder_starts_the_recording_itself() {
    let (mut far_end, peer_port) = start_sipp_far_end("sipp-uas");
    let srs_port = free_port();
    let verbatim_port = free_port();
    let mut verbatim = Peer::new("verbatim-call-srs-initiated");
    start_verbatim(
        &mut verbatim,
        [
            "call",
            &format!("sip:service@127.0.0.1:{peer_port}"),
            "--listen",
            &format!("127.0.0.1:{verbatim_port}"),
            "--codec",
            "pcmu",
            "--srtp",
            "off",
            "--duration",
            "5",
            "--allow-recorder",
            "127.0.0.1",
        ],
    );
    verbatim.wait_until_listening(support::Proto::Tcp, verbatim_port, support::START_TIMEOUT);
    let mut srs = Peer::new("sipp-srs-initiated");
    start_sipp(
        &mut srs,
        &Scenario::File(sipp_scenario("srs_initiated.xml")),
        srs_port,
        "t1",
        &[RECORDER_ANSWERS_PROBES],
        Some(&format!("127.0.0.1:{verbatim_port}")),
    );
    srs.expect_success(SIPP_TIMEOUT);
    verbatim.expect_success(VERBATIM_TIMEOUT);
    far_end.expect_success(SIPP_TIMEOUT);
    let stderr = verbatim.stderr();
    assert!(
        stderr.contains("recording asked by sip:srs@127.0.0.1"),
        "{stderr}"
    );
    assert_eq!(
        recording_states(&verbatim),
        vec!["starting", "recording", "off"],
        "{stderr}"
    );
}

/// Verbatim calls a sipp far end for 4 s unless `verbatim_extra` says otherwise (PCMU, no SRTP, `verbatim_extra` flags) and
/// records the call to sipp playing `srs_scenario` over TCP (with `srs_extra` arguments; the
/// recorder's URI ends in `srs_uri_params`); returns Verbatim once all three finished as
/// they should.
fn record_a_call_to_sipp(
    name: &str,
    srs_scenario: &str,
    srs_extra: &[&str],
    srs_uri_params: &str,
    verbatim_extra: &[&str],
) -> Peer {
    let peer_port = free_port();
    let srs_port = free_port();
    let verbatim_port = free_port();
    let mut far_end = Peer::new(&format!("sipp-uas-{name}"));
    // The far end talks: it sends our own RTP back, so the recording's second stream
    // carries packets whose every move the tests can check.
    start_sipp_uas(
        &mut far_end,
        &Scenario::Builtin("uas"),
        peer_port,
        "u1",
        &["-rtp_echo"],
    );
    let mut srs = Peer::new(&format!("sipp-srs-{name}"));
    let srs_args: Vec<&str> = std::iter::once(RECORDER_ANSWERS_PROBES)
        .chain(srs_extra.iter().copied())
        .collect();
    start_sipp_uas(
        &mut srs,
        &Scenario::File(sipp_scenario(srs_scenario)),
        srs_port,
        "t1",
        &srs_args,
    );
    let mut verbatim = Peer::new(&format!("verbatim-recorded-{name}"));
    let call = [
        "call".to_owned(),
        format!("sip:service@127.0.0.1:{peer_port}"),
        "--listen".to_owned(),
        format!("127.0.0.1:{verbatim_port}"),
        "--codec".to_owned(),
        "pcmu".to_owned(),
        "--srtp".to_owned(),
        "off".to_owned(),
        "--record".to_owned(),
        "--srs".to_owned(),
        format!("sip:srs@127.0.0.1:{srs_port}{srs_uri_params}"),
    ];
    let duration = if verbatim_extra.contains(&"--duration") {
        vec![]
    } else {
        vec!["--duration".to_owned(), "4".to_owned()]
    };
    start_verbatim(
        &mut verbatim,
        call.into_iter()
            .chain(duration)
            .chain(verbatim_extra.iter().map(|flag| (*flag).to_owned())),
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    srs.expect_success(SIPP_TIMEOUT);
    far_end.expect_success(SIPP_TIMEOUT);
    verbatim
}

/// The indicator's states as the CLI printed them.
fn recording_states(verbatim: &Peer) -> Vec<String> {
    verbatim
        .stderr()
        .lines()
        .filter_map(|l| l.strip_prefix("recording: "))
        .map(str::to_owned)
        .collect()
}

/// A recorder that moves both streams to new ports by re-INVITE, as a recorder cluster does
/// on fail-over: once its re-INVITE is answered, no RTP goes to the old ports any more and
/// our side's voice arrives at the new one.
#[test]
fn recorder_that_moves_its_streams_gets_the_rtp_at_the_new_ports() {
    let (ports, stop, listeners) = recorder_ports(4);
    record_a_call_to_sipp(
        "moves",
        "srs_moves.xml",
        &[
            "-key", "old1", &ports[0], "-key", "old2", &ports[1], "-key", "new1", &ports[2],
            "-key", "new2", &ports[3],
        ],
        ";transport=tcp",
        &[],
    );
    let arrivals = arrivals_at(&stop, listeners);
    assert_moved(&arrivals[0], &arrivals[1], &arrivals[2]);
}

/// Our voice reached the recorder's first port, then the port it moved it to, and after the
/// move nothing went to either old port.
fn assert_moved(
    old_local: &[(std::time::Instant, u8)],
    old_remote: &[(std::time::Instant, u8)],
    new_local: &[(std::time::Instant, u8)],
) {
    assert!(
        old_local.len() >= 20,
        "our voice reached the recorder's first ports: {} packets",
        old_local.len()
    );
    assert!(
        new_local.len() >= 50,
        "our voice reaches the ports the recorder moved it to: {} packets ({} went on to the old port)",
        new_local.len(),
        old_local.len()
    );
    let moved_at = new_local[0].0;
    let late = old_local
        .iter()
        .chain(old_remote.iter())
        .filter(|(at, _)| *at > moved_at + Duration::from_millis(40))
        .count();
    assert_eq!(late, 0, "packets went to the old ports after the move");
}

/// A recorder that refreshes the session by UPDATE, asks for a metadata snapshot by UPDATE
/// and re-INVITEs without an offer (answering ours in the ACK, with the streams moved): the
/// recording goes on through all three, and the RTP follows the answer in the ACK.
#[test]
fn recorder_that_updates_and_reinvites_without_an_offer_keeps_recording() {
    let (ports, stop, listeners) = recorder_ports(4);
    let verbatim = record_a_call_to_sipp(
        "updates",
        "srs_update.xml",
        &[
            "-key", "p1", &ports[0], "-key", "p2", &ports[1], "-key", "n1", &ports[2], "-key",
            "n2", &ports[3],
        ],
        ";transport=tcp",
        &[],
    );
    let arrivals = arrivals_at(&stop, listeners);
    assert_eq!(
        recording_states(&verbatim),
        vec!["starting", "recording", "off"],
        "{}",
        verbatim.stderr()
    );
    assert_moved(&arrivals[0], &arrivals[1], &arrivals[2]);
}

/// A recorder that re-offers the first stream in PCMA and refuses the second with port 0:
/// the call (PCMU) reaches it transcoded to PCMA on the first port, nothing more goes to the
/// second, and the indicator says only our side is recorded.
#[test]
fn recorder_that_recodes_one_stream_and_refuses_the_other_gets_what_it_asked() {
    let (ports, stop, listeners) = recorder_ports(2);
    let verbatim = record_a_call_to_sipp(
        "recodes",
        "srs_recodes.xml",
        &["-key", "p1", &ports[0], "-key", "p2", &ports[1]],
        ";transport=tcp",
        &[],
    );
    let arrivals = arrivals_at(&stop, listeners);
    assert_eq!(
        recording_states(&verbatim),
        vec!["starting", "recording", "recording our side only", "off"],
        "{}",
        verbatim.stderr()
    );
    let (local, remote) = (&arrivals[0], &arrivals[1]);
    let first_pcma = local
        .iter()
        .find(|(_, pt)| *pt == 8)
        .map(|(at, _)| *at)
        .expect("our voice reaches the recorder in PCMA after its re-offer");
    assert!(
        local.iter().filter(|(_, pt)| *pt == 0).count() >= 20,
        "PCMU came first"
    );
    assert!(
        local.iter().filter(|(_, pt)| *pt == 8).count() >= 50,
        "our voice goes on in PCMA"
    );
    let late = |packets: &[(std::time::Instant, u8)], pt: Option<u8>| {
        packets
            .iter()
            .filter(|(at, p)| {
                *at > first_pcma + Duration::from_millis(40) && pt.is_none_or(|pt| pt == *p)
            })
            .count()
    };
    assert_eq!(late(local, Some(0)), 0, "no PCMU after the re-offer");
    assert_eq!(late(remote, None), 0, "nothing to the refused stream");
    assert!(
        remote.len() >= 20,
        "the far end's voice went to the second stream first"
    );
}

/// Our pause refused with 491 (the recorder's re-INVITE crossed ours) is sent again after
/// the RFC 3261 14.1 wait, and the recording pauses then.
#[test]
fn pause_refused_with_491_is_retried() {
    let verbatim = record_a_call_to_sipp(
        "glare",
        "srs_glare.xml",
        &[],
        ";transport=tcp",
        &["--pause-at", "1", "--duration", "7"],
    );
    assert_eq!(
        recording_states(&verbatim),
        vec!["starting", "recording", "paused", "off"],
        "{}",
        verbatim.stderr()
    );
}
