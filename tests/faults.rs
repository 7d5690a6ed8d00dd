//! Faults on the recorder's side, with real processes on 127.0.0.1: a recorder killed in the
//! middle of a call and started again, and a recorder that can no longer write. In each, the
//! call goes on (the policy is optional), the phone says what happened, and what was
//! recorded stays playable.
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
    Audio, Peer, Proto, START_TIMEOUT, find_wav, free_port, read_recorded, recorded_call_args,
    start_sipp_far_end, start_verbatim, write_tone_wav,
};

const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// `verbatim srs` on `port`, writing into `dir`; `shell` wraps it (resource limits).
fn recorder(name: &str, port: u16, dir: &Path, limit_file_kib: Option<u32>) -> Peer {
    let mut srs = Peer::new(name);
    let listen = format!("127.0.0.1:{port}");
    let bin = support::verbatim_bin();
    let key_file = support::test_key_file();
    let args = [
        "srs",
        "--listen",
        &listen,
        "--dir",
        dir.to_str().unwrap(),
        "--key-file",
        key_file.to_str().unwrap(),
    ];
    match limit_file_kib {
        None => start_verbatim(&mut srs, args),
        Some(kib) => {
            // A file-size limit makes writes fail mid-recording as a full disk does
            // (EFBIG instead of ENOSPC); the signal it would raise is ignored so the write
            // returns the error instead of killing the process.
            let mut command = srs.command("bash");
            command
                .arg("-c")
                .arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" \"$@\""))
                .arg(bin)
                .args(args)
                .env("RUST_LOG", "info,verbatim=debug");
            srs.start(command);
        }
    }
    srs.wait_until_listening(Proto::Tcp, port, START_TIMEOUT);
    srs
}

/// A recorded call of `seconds` to sipp's UAS, sending a 1 kHz tone, recorded over TCP.
fn recorded_call(name: &str, srs_port: u16, seconds: u32) -> (Peer, Peer) {
    let srs = format!("sip:srs@127.0.0.1:{srs_port};transport=tcp");
    recorded_call_to(name, &srs, seconds)
}

/// A recorded call of `seconds` to sipp's UAS, sending a 1 kHz tone, recorded to `srs`.
fn recorded_call_to(name: &str, srs: &str, seconds: u32) -> (Peer, Peer) {
    let (far_end, peer_port) = start_sipp_far_end(&format!("{name}-far-end"));
    let mut phone = Peer::new(name);
    let tone = phone.path("tone.wav");
    write_tone_wav(&tone, 8000, (seconds + 2) * 1000, 1000.0);
    start_verbatim(
        &mut phone,
        recorded_call_args(
            &format!("sip:service@127.0.0.1:{peer_port}"),
            &tone,
            seconds,
            srs,
        ),
    );
    (phone, far_end)
}

fn session_folders(dir: &Path) -> Vec<std::path::PathBuf> {
    verbatim::archive::session::session_folders(dir)
}

#[test]
fn a_recorder_killed_mid_call_and_started_again_records_the_rest_with_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut first = recorder("faults-srs-killed", port, dir.path(), None);
    let (mut phone, _far_end) = recorded_call("faults-call-killed", port, 14);
    phone.wait_for_output("recording: recording", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    let pid = first.pid().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = first.try_status();
    phone.wait_for_output("recording: retrying", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(2));
    let mut second = recorder("faults-srs-restarted", port, dir.path(), None);
    phone.wait_for_output("recording: recording with gaps", Duration::from_secs(20));
    phone.expect_success(CALL_TIMEOUT);
    second.stop();

    let stderr = phone.stderr();
    assert!(stderr.contains("call ended"), "{stderr}");
    let folders = session_folders(dir.path());
    assert_eq!(folders.len(), 2, "{folders:?}\n{}", phone.report());
    // The killed recorder's files play, up to the moment it died.
    let before = Audio::read_wav(&find_wav(&folders[0], "label-1-"));
    assert!(before.seconds() > 2.0, "{} s", before.seconds());
    assert!(before.tone(1000.0) > 0.1);
    // The new session says what is missing, and records the rest.
    let metadata = read_recorded(&folders[1], "metadata-1.xml");
    let parsed = verbatim::recording::metadata::parse(&metadata).unwrap();
    assert_eq!(parsed.gaps.len(), 1, "{metadata}");
    assert!(parsed.gaps[0].to.is_some(), "{metadata}");
    let after = Audio::read_wav(&find_wav(&folders[1], "label-1-"));
    assert!(after.seconds() > 2.0, "{} s", after.seconds());
    assert!(after.tone(1000.0) > 0.1);
}

/// Sends `signal` (STOP, CONT) to `peer`'s process.
fn signal(peer: &Peer, signal: &str) {
    let pid = peer.pid().unwrap();
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// A recorder frozen mid-call (SIGSTOP: no reset, no ICMP, no answers, as a host without
/// power) is noticed within seconds; thawed, it takes a new session whose metadata lists
/// the gap from the moment it was last heard.
fn a_frozen_recorder_is_noticed_and_its_gap_recorded(transport: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut srs = recorder(
        &format!("faults-srs-frozen-{transport}"),
        port,
        dir.path(),
        None,
    );
    let uri = format!("sip:srs@127.0.0.1:{port};transport={transport}");
    let (mut phone, _far_end) = recorded_call_to(&format!("faults-frozen-{transport}"), &uri, 24);
    phone.wait_for_output("recording: recording", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    signal(&srs, "STOP");
    let frozen_at = std::time::SystemTime::now();
    let frozen = std::time::Instant::now();
    let said = phone.wait_for_output("recording: retrying", Duration::from_secs(15));
    let noticed_after = frozen.elapsed();
    eprintln!("{transport}: a frozen recorder was noticed after {noticed_after:?}");
    assert!(
        noticed_after <= Duration::from_secs(10),
        "{transport}: noticed after {noticed_after:?}"
    );
    assert!(said.contains("has not answered since"), "{said}");
    std::thread::sleep(Duration::from_secs(3));
    signal(&srs, "CONT");
    phone.wait_for_output("recording: recording with gaps", Duration::from_secs(40));
    phone.expect_success(CALL_TIMEOUT);
    srs.stop();

    let folders = session_folders(dir.path());
    let last = folders.last().unwrap();
    let metadata = read_recorded(last, "metadata-1.xml");
    let parsed = verbatim::recording::metadata::parse(&metadata).unwrap();
    assert_eq!(parsed.gaps.len(), 1, "{metadata}");
    let gap = &parsed.gaps[0];
    let from = verbatim::recording::metadata::parse_time(&gap.from).unwrap();
    let frozen_unix = frozen_at.duration_since(std::time::UNIX_EPOCH).unwrap();
    assert!(
        from <= frozen_unix + Duration::from_millis(200)
            && from + Duration::from_secs(3) >= frozen_unix,
        "{transport}: the gap starts when the recorder was last heard ({}), not when it was \
         missed: {metadata}",
        gap.from
    );
    assert!(gap.to.is_some(), "{metadata}");
    let after = Audio::read_wav(&find_wav(last, "label-1-"));
    assert!(after.tone(1000.0) > 0.1);
}

#[test]
fn a_recorder_frozen_mid_call_over_tcp_is_noticed_and_its_gap_recorded() {
    a_frozen_recorder_is_noticed_and_its_gap_recorded("tcp");
}

#[test]
fn a_recorder_frozen_mid_call_over_udp_is_noticed_and_its_gap_recorded() {
    a_frozen_recorder_is_noticed_and_its_gap_recorded("udp");
}

/// A recorder frozen mid-call with a live secondary: the recording moves to the secondary
/// within seconds while the first stays frozen, and the secondary's metadata lists the gap.
#[test]
fn a_recorder_frozen_mid_call_fails_over_to_a_live_secondary() {
    let first_dir = tempfile::tempdir().unwrap();
    let second_dir = tempfile::tempdir().unwrap();
    let (first_port, second_port) = (free_port(), free_port());
    let first = recorder(
        "faults-srs-frozen-first",
        first_port,
        first_dir.path(),
        None,
    );
    let mut second = recorder("faults-srs-second", second_port, second_dir.path(), None);
    let (far_end, peer_port) = start_sipp_far_end("faults-failover-far-end");
    let mut phone = Peer::new("faults-failover");
    let tone = phone.path("tone.wav");
    write_tone_wav(&tone, 8000, 20_000, 1000.0);
    let mut args = recorded_call_args(
        &format!("sip:service@127.0.0.1:{peer_port}"),
        &tone,
        18,
        &format!("sip:srs@127.0.0.1:{first_port};transport=tcp"),
    );
    args.push("--srs-secondary".into());
    args.push(format!("sip:srs@127.0.0.1:{second_port};transport=tcp"));
    start_verbatim(&mut phone, args);
    phone.wait_for_output("recording: recording", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    signal(&first, "STOP");
    phone.wait_for_output("recording: recording with gaps", Duration::from_secs(30));
    phone.expect_success(CALL_TIMEOUT);
    second.stop();
    drop(far_end);

    let taken_over = session_folders(second_dir.path());
    assert_eq!(taken_over.len(), 1, "{taken_over:?}\n{}", phone.report());
    let metadata = read_recorded(&taken_over[0], "metadata-1.xml");
    let parsed = verbatim::recording::metadata::parse(&metadata).unwrap();
    assert_eq!(parsed.gaps.len(), 1, "{metadata}");
    assert!(
        parsed.gaps[0].reason.contains("has not answered since"),
        "{metadata}"
    );
    let after = Audio::read_wav(&find_wav(&taken_over[0], "label-1-"));
    assert!(after.seconds() > 5.0, "{} s", after.seconds());
    assert!(after.tone(1000.0) > 0.1);
    signal(&first, "CONT");
}

/// A recorder whose process dies (over UDP: no connection to lose) closes its media ports;
/// the ICMP port unreachable our next packet meets fails the recording at once, well before
/// a probe would miss its deadline.
#[test]
fn a_recorder_killed_mid_call_over_udp_is_noticed_by_its_closed_media_port() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut srs = recorder("faults-srs-gone-udp", port, dir.path(), None);
    let uri = format!("sip:srs@127.0.0.1:{port};transport=udp");
    let (mut phone, _far_end) = recorded_call_to("faults-gone-udp", &uri, 10);
    phone.wait_for_output("recording: recording", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    signal(&srs, "KILL");
    let _ = srs.try_status();
    let killed = std::time::Instant::now();
    let said = phone.wait_for_output("recording: retrying", Duration::from_secs(10));
    let noticed_after = killed.elapsed();
    eprintln!("udp: a killed recorder was noticed after {noticed_after:?}");
    assert!(said.contains("ICMP port unreachable"), "{said}");
    assert!(
        noticed_after < Duration::from_secs(2),
        "noticed after {noticed_after:?}"
    );
    phone.expect_success(CALL_TIMEOUT);
}

#[test]
fn a_recorder_that_cannot_write_ends_the_recording_saying_why_and_keeps_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // 160 KiB per file: about 1.7 s of 48 kHz 16-bit audio.
    let mut srs = recorder("faults-srs-full", port, dir.path(), Some(160));
    let (mut phone, _far_end) = recorded_call("faults-call-full", port, 6);
    phone.expect_success(CALL_TIMEOUT);
    srs.stop();

    let stderr = phone.stderr();
    assert!(stderr.contains("call ended"), "the call went on: {stderr}");
    assert!(
        stderr.contains("recording: retrying")
            && stderr.contains("the recorder cannot store the recording"),
        "the phone says why: {stderr}"
    );
    let srs_log = srs.stderr();
    assert!(
        srs_log.contains("cannot store the recording"),
        "the recorder logs it: {srs_log}"
    );
    // What reached the disk is a WAV that plays, with the call's tone in it.
    let folders = session_folders(dir.path());
    assert!(!folders.is_empty(), "{}", phone.report());
    let label = find_wav(&folders[0], "label-1-");
    // Encrypted, the file reads as cut short where the disk filled, never as altered.
    let integrity = verbatim::archive::sealed::check(&label, &support::test_keys()).unwrap();
    assert!(
        matches!(
            integrity,
            verbatim::archive::sealed::Integrity::Damaged(
                verbatim::archive::sealed::Damage::Truncated { .. }
                    | verbatim::archive::sealed::Damage::TruncatedOrAlteredEnd { .. }
            )
        ),
        "{integrity:?}"
    );
    let partial = Audio::read_wav(&label);
    assert!(
        partial.seconds() > 1.0 && partial.seconds() < 2.0,
        "{} s",
        partial.seconds()
    );
    assert!(partial.tone(1000.0) > 0.1);
}
