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
    Peer, Scenario, free_port, sipp_scenario, start_sipp, start_sipp_far_end, start_sipp_uas,
    start_verbatim, start_verbatim_with_env,
};

const VERBATIM_TIMEOUT: Duration = Duration::from_secs(20);
const SIPP_TIMEOUT: Duration = Duration::from_secs(25);

/// The recording session opens beside the call with Require: siprec, +sip.src and a
/// multipart body whose SDP and metadata agree on the labels; pausing and resuming are
/// re-INVITEs with inactive and sendonly streams; the call's end ends the recording with BYE.
#[test]
fn call_recorded_to_sipp_srs_with_pause_and_resume() {
    let peer_port = free_port();
    let srs_port = free_port();
    let verbatim_port = free_port();
    let mut far_end = Peer::new("sipp-uas");
    start_sipp_uas(
        &mut far_end,
        &Scenario::Builtin("uas"),
        peer_port,
        "u1",
        &[],
    );
    let mut srs = Peer::new("sipp-srs");
    start_sipp_uas(
        &mut srs,
        &Scenario::File(sipp_scenario("srs_basic.xml")),
        srs_port,
        "t1",
        &[],
    );
    let mut verbatim = Peer::new("verbatim-call-recorded");
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
            "4",
            "--record",
            // No transport parameter: recording sessions default to TCP.
            "--srs",
            &format!("sip:srs@127.0.0.1:{srs_port}"),
            "--pause-at",
            "1",
            "--resume-at",
            "2",
        ],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    srs.expect_success(SIPP_TIMEOUT);
    far_end.expect_success(SIPP_TIMEOUT);
    let stderr = verbatim.stderr();
    let states: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("recording: "))
        .collect();
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
    let peer_port = free_port();
    let srs_port = free_port();
    let verbatim_port = free_port();
    let mut far_end = Peer::new("sipp-uas-2");
    start_sipp_uas(
        &mut far_end,
        &Scenario::Builtin("uas"),
        peer_port,
        "u1",
        &[],
    );
    let mut srs = Peer::new("sipp-srs-pausing");
    start_sipp_uas(
        &mut srs,
        &Scenario::File(sipp_scenario("srs_pauses.xml")),
        srs_port,
        "t1",
        &[],
    );
    let mut verbatim = Peer::new("verbatim-call-recorder-pauses");
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
            "4",
            "--record",
            "--srs",
            &format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"),
        ],
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    srs.expect_success(SIPP_TIMEOUT);
    far_end.expect_success(SIPP_TIMEOUT);
    let stderr = verbatim.stderr();
    let states: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("recording: "))
        .collect();
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
        &[],
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
    let states: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("recording: "))
        .collect();
    assert_eq!(states, vec!["starting", "recording", "off"], "{stderr}");
}
