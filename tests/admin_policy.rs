//! The recording policy an administrator fixes (`/etc/verbatim/policy.toml`, here the file
//! `VERBATIM_POLICY_FILE` names): the command line refuses flags that would undo it, a
//! broken policy stops the phone with the reason, and a policy that records every call
//! records a call placed without `--record`, to the recorder it names (a real far end,
//! sipp, and the built-in recorder as a process of its own).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use support::{Peer, start_recorder, start_sipp_far_end, start_verbatim_with_env};

/// Runs `verbatim call` with the policy `policy` and these flags; its exit status and
/// stderr once it ended.
fn call_under_policy(name: &str, policy: &str, flags: &[&str]) -> (Peer, Option<i32>, String) {
    let mut phone = Peer::new(name);
    let file = phone.write_file("policy.toml", policy);
    let args: Vec<String> = ["call", "sip:nobody@127.0.0.1:9", "--duration", "1"]
        .iter()
        .chain(flags)
        .map(|s| (*s).to_owned())
        .collect();
    start_verbatim_with_env(
        &mut phone,
        args,
        &[("VERBATIM_POLICY_FILE", file.to_str().unwrap())],
    );
    let status = phone.wait_with_timeout(Duration::from_secs(20));
    let stderr = phone.stderr();
    (phone, status.code(), stderr)
}

/// `verbatim call` to the far end on `far_port` for 3 s (PCMU, plain RTP) under the policy
/// in `policy_file`, with `flags`; it must succeed.
fn call_far_end_under(
    phone: &mut Peer,
    far_port: u16,
    policy_file: &std::path::Path,
    flags: &[&str],
) {
    let target = format!("sip:service@127.0.0.1:{far_port}");
    let mut args = vec![
        "call",
        &target,
        "--codec",
        "pcmu",
        "--srtp",
        "off",
        "--duration",
        "3",
    ];
    args.extend_from_slice(flags);
    start_verbatim_with_env(
        phone,
        args,
        &[("VERBATIM_POLICY_FILE", policy_file.to_str().unwrap())],
    );
    phone.expect_success(Duration::from_secs(30));
}

const MANDATORY: &str = "[recording]\npolicy = \"mandatory\"\nmode = \"separate\"\n";

#[test]
fn flags_that_would_undo_the_administrators_policy_are_refused_with_the_reason() {
    for (flags, said) in [
        (
            &["--record", "--record-policy", "optional"][..],
            "--record-policy: recording.policy is set by your administrator",
        ),
        (
            &["--record", "--record-mode", "mixed"][..],
            "--record-mode: recording.mode is set by your administrator",
        ),
        (
            &["--record", "--pause-at", "1"][..],
            "--pause-at: a mandatory recording cannot be paused",
        ),
    ] {
        let (_phone, code, stderr) = call_under_policy("verbatim-policy-refuses", MANDATORY, flags);
        assert_eq!(code, Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(said), "{flags:?}: {stderr}");
        assert!(stderr.contains("policy.toml"), "names the file: {stderr}");
    }
}

#[test]
fn a_policy_that_cannot_be_understood_stops_the_phone() {
    let (_phone, code, stderr) = call_under_policy(
        "verbatim-policy-broken",
        "[recording]\npolicy = \"when convenient\"\n",
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("the recording policy") && stderr.contains("recording.policy"),
        "{stderr}"
    );
}

#[test]
fn a_policy_that_records_every_call_records_one_placed_without_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) = start_recorder("policy-srs", dir.path(), &[]);
    let (mut far_end, far_port) = start_sipp_far_end("sipp-uas-policy");
    let mut phone = Peer::new("verbatim-under-policy");
    let policy = format!(
        "[recording]\nauto = \"all\"\nsrs = \"sip:srs@127.0.0.1:{srs_port};transport=tcp\"\n"
    );
    let file = phone.write_file("policy.toml", policy);
    call_far_end_under(&mut phone, far_port, &file, &[]);
    far_end.expect_success(Duration::from_secs(30));
    srs.stop();
    let stderr = phone.stderr();
    assert!(stderr.contains("recording: recording"), "{stderr}");
    let folders = verbatim::archive::session::session_folders(dir.path());
    assert_eq!(
        folders.len(),
        1,
        "the policy's recorder has the call\n{stderr}"
    );
}

/// The policy fixes the built-in recorder and its folder: a call recorded by the user's own
/// choice of recorder (in their settings) goes to the built-in one, into the folder the
/// policy names; `--srs` on the command line is refused.
#[test]
fn a_policy_that_fixes_the_built_in_recorder_keeps_recordings_in_its_folder() {
    let folder = tempfile::tempdir().unwrap();
    let policy = format!(
        "[recording]\nbuiltin_recorder = true\nfolder = \"{}\"\nkeep_days = 30\n",
        folder.path().display()
    );
    let (_refused, code, stderr) = call_under_policy(
        "verbatim-policy-builtin-refuses",
        &policy,
        &["--record", "--srs", "sip:elsewhere@127.0.0.1:9"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--srs: recording.srs is set by your administrator"),
        "{stderr}"
    );
    // Nor may a recorder of the network's start recording calls.
    let (_refused, code, stderr) = call_under_policy(
        "verbatim-policy-builtin-refuses-recorders",
        &policy,
        &["--allow-recorder", "127.0.0.9"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--allow-recorder"), "{stderr}");

    let (mut far_end, far_port) = start_sipp_far_end("sipp-uas-policy-builtin");
    let mut phone = Peer::new("verbatim-policy-builtin");
    let file = phone.write_file("policy.toml", &policy);
    // The user's own settings name another recorder, which nobody runs.
    let config = phone.write_file(
        "config.toml",
        "[recording]\nsrs = \"sip:mine@127.0.0.1:9;transport=tcp\"\n",
    );
    call_far_end_under(
        &mut phone,
        far_port,
        &file,
        &["--config", config.to_str().unwrap(), "--record"],
    );
    far_end.expect_success(Duration::from_secs(30));
    let stderr = phone.stderr();
    let folders = verbatim::archive::session::session_folders(folder.path());
    assert_eq!(
        folders.len(),
        1,
        "the built-in recorder kept the call in the policy's folder\n{stderr}"
    );
}
