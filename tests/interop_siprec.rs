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
    let verbatim = record_a_call_to_sipp(
        "basic",
        "srs_basic.xml",
        &[],
        // No transport parameter: recording sessions default to TCP.
        "",
        &["--pause-at", "1", "--resume-at", "2"],
    );
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
    let verbatim = record_a_call_to_sipp("pauses", "srs_pauses.xml", &[], ";transport=tcp", &[]);
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

/// Verbatim calls a sipp far end for 4 s (PCMU, no SRTP, `verbatim_extra` flags) and
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
    start_sipp_uas(
        &mut far_end,
        &Scenario::Builtin("uas"),
        peer_port,
        "u1",
        &[],
    );
    let mut srs = Peer::new(&format!("sipp-srs-{name}"));
    start_sipp_uas(
        &mut srs,
        &Scenario::File(sipp_scenario(srs_scenario)),
        srs_port,
        "t1",
        srs_extra,
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
        "--duration".to_owned(),
        "4".to_owned(),
        "--record".to_owned(),
        "--srs".to_owned(),
        format!("sip:srs@127.0.0.1:{srs_port}{srs_uri_params}"),
    ];
    start_verbatim(
        &mut verbatim,
        call.into_iter()
            .chain(verbatim_extra.iter().map(|flag| (*flag).to_owned())),
    );
    verbatim.expect_success(VERBATIM_TIMEOUT);
    srs.expect_success(SIPP_TIMEOUT);
    far_end.expect_success(SIPP_TIMEOUT);
    verbatim
}

/// Counts the RTP packets a socket receives, with when each came, until `stop` is set.
fn rtp_arrivals(
    socket: std::net::UdpSocket,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<std::time::Instant>> {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    std::thread::spawn(move || {
        let mut arrivals = Vec::new();
        let mut buffer = [0u8; 2048];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(len) = socket.recv(&mut buffer) {
                // RTP version 2, payload type 0 (PCMU): the recording's copy of the call.
                if len > 12 && buffer[0] >> 6 == 2 && buffer[1] & 0x7f == 0 {
                    arrivals.push(std::time::Instant::now());
                }
            }
        }
        arrivals
    })
}

/// A recorder that moves both streams to new ports by re-INVITE, as a recorder cluster does
/// on fail-over: once its re-INVITE is answered, no RTP goes to the old ports any more and
/// our side's voice arrives at the new one.
#[test]
fn recorder_that_moves_its_streams_gets_the_rtp_at_the_new_ports() {
    let sockets: Vec<std::net::UdpSocket> = (0..4)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<String> = sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port().to_string())
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listeners: Vec<_> = sockets
        .into_iter()
        .map(|socket| rtp_arrivals(socket, stop.clone()))
        .collect();
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
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let arrivals: Vec<Vec<std::time::Instant>> =
        listeners.into_iter().map(|l| l.join().unwrap()).collect();
    let (old_local, old_remote, new_local) = (&arrivals[0], &arrivals[1], &arrivals[2]);
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
    let moved_at = new_local[0];
    let late: Vec<_> = old_local
        .iter()
        .chain(old_remote.iter())
        .filter(|at| **at > moved_at + Duration::from_millis(40))
        .collect();
    assert!(
        late.is_empty(),
        "{} packets went to the old ports after the move",
        late.len()
    );
}
