//! Recordings at rest, end to end: `verbatim srs` encrypts a real call's recording to the
//! recordings key, and `verbatim recordings list|verify|export|key` read it back, report a
//! flipped byte and a cut file, and refuse to export without the key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{
    Audio, Peer, find_wav, read_recorded, recorded_call_args, start_recorder, start_sipp_far_end,
    start_verbatim, test_key_file, write_tone_wav,
};

const CALL_TIMEOUT: Duration = Duration::from_secs(40);

fn recordings(args: &[&str]) -> Output {
    recordings_with_env(args, &[])
}

fn recordings_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(support::verbatim_bin())
        .arg("recordings")
        .args(args)
        // Neither the user's keyring nor their settings.
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_CONFIG_HOME", support::temp_config_home())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A 3 s recorded call playing 1 kHz, through a recorder started with `recorder_args`;
/// returns its session folder once the recorder has closed it.
fn record_a_call(name: &str, dir: &Path, recorder_args: &[&str]) -> (PathBuf, Peer) {
    let (srs, srs_port) = start_recorder(&format!("{name}-srs"), dir, recorder_args);
    record_with(name, dir, srs, srs_port)
}

/// The same through a recorder already listening on `srs_port`.
fn record_with(name: &str, dir: &Path, mut srs: Peer, srs_port: u16) -> (PathBuf, Peer) {
    let (mut far_end, far_port) = start_sipp_far_end(&format!("{name}-far-end"));
    let mut phone = Peer::new(name);
    let tone = phone.path("tone.wav");
    write_tone_wav(&tone, 8000, 5000, 1000.0);
    start_verbatim(
        &mut phone,
        recorded_call_args(
            &format!("sip:service@127.0.0.1:{far_port}"),
            &tone,
            3,
            &format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"),
        ),
    );
    phone.expect_success(CALL_TIMEOUT);
    far_end.expect_success(CALL_TIMEOUT);
    // The recorder prints each recording it has finished.
    let output = srs.wait_for_output("srs: recorded ", Duration::from_secs(10));
    srs.stop();
    let folders = verbatim::archive::session::session_folders(dir);
    assert_eq!(folders.len(), 1, "{output}");
    (folders[0].clone(), srs)
}

#[test]
fn an_encrypted_recording_is_listed_verified_exported_and_its_damage_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, srs) = record_a_call("rec-encrypted", dir.path(), &[]);
    assert!(
        srs.stderr().contains("recordings are encrypted to age1"),
        "{}",
        srs.stderr()
    );
    let key_file = test_key_file();
    let key = key_file.to_str().unwrap();
    let at = dir.path().to_str().unwrap();
    let name = folder.file_name().unwrap().to_str().unwrap().to_owned();

    // Nothing readable on disk: every file is sealed, and none holds the plain text.
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        assert!(
            path.to_string_lossy().ends_with(".age"),
            "{}",
            path.display()
        );
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            bytes.starts_with(b"age-encryption.org/v1\n"),
            "{}",
            path.display()
        );
        let plain = String::from_utf8_lossy(&bytes);
        assert!(
            !plain.contains("RIFF") && !plain.contains("<recording"),
            "{}",
            path.display()
        );
    }

    let listed = recordings(&["list", "--dir", at, "--key-file", key]);
    let (stdout, stderr) = text(&listed);
    assert!(listed.status.success(), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("encrypted") && line.contains("complete"),
        "{line}"
    );
    assert!(line.contains("sip:"), "participants named: {line}");

    let verified = recordings(&["verify", "--dir", at, "--key-file", key]);
    let (stdout, stderr) = text(&verified);
    assert!(verified.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("all intact"), "{stdout}");

    // Exported: standard WAVs any player opens, with the call's audio, and plain metadata.
    let out = tempfile::tempdir().unwrap();
    let exported = recordings(&[
        "export",
        &name,
        "--to",
        out.path().to_str().unwrap(),
        "--dir",
        at,
        "--key-file",
        key,
    ]);
    let (stdout, stderr) = text(&exported);
    assert!(exported.status.success(), "{stdout}{stderr}");
    let copy = out.path().join(&name);
    let label1 = Audio::read_wav(&find_wav(&copy, "label-1-"));
    assert!(
        (2.5..=5.0).contains(&label1.seconds()),
        "{} s",
        label1.seconds()
    );
    assert!(label1.tone(1000.0) > 0.1, "the call's tone");
    let spec = hound::WavReader::open(find_wav(&copy, "label-1-")).unwrap();
    assert_eq!(
        spec.duration() as usize,
        label1.samples.len(),
        "the header says the length"
    );
    let metadata = std::fs::read_to_string(copy.join("metadata-1.xml")).unwrap();
    assert_eq!(metadata, read_recorded(&folder, "metadata-1.xml"));
    assert!(copy.join("summary.json").is_file());

    // Without the key: a clear refusal, and nothing written.
    let keyless = tempfile::tempdir().unwrap();
    let missing = keyless.path().join("no.key");
    let refused = recordings(&[
        "export",
        "--to",
        keyless.path().join("out").to_str().unwrap(),
        "--dir",
        at,
        "--key-file",
        missing.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no recordings key") && stderr.contains("no.key"),
        "{stderr}"
    );
    assert!(!keyless.path().join("out").exists());

    // A flipped byte in one file, the end cut off another: each named, exit code 1.
    let label1 = find_wav(&folder, "label-1-");
    let mut bytes = std::fs::read(&label1).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&label1, bytes).unwrap();
    let label2 = find_wav(&folder, "label-2-");
    let bytes = std::fs::read(&label2).unwrap();
    std::fs::write(&label2, &bytes[..bytes.len() - 700]).unwrap();
    let verified = recordings(&["verify", "--dir", at, "--key-file", key]);
    let (stdout, stderr) = text(&verified);
    assert_eq!(verified.status.code(), Some(1), "{stdout}{stderr}");
    let said = |path: &Path| {
        stdout
            .lines()
            .find(|l| l.starts_with(path.to_str().unwrap()))
            .unwrap_or_else(|| panic!("{stdout}"))
            .to_owned()
    };
    assert!(said(&label1).contains(": altered"), "{stdout}");
    assert!(said(&label2).contains("truncated"), "{stdout}");
    assert!(stderr.contains("2 of"), "{stderr}");

    let shown = recordings(&["key", "--key-file", key]);
    let (stdout, _) = text(&shown);
    assert!(stdout.contains("public key: age1"), "{stdout}");
    assert!(
        !stdout.contains("AGE-SECRET-KEY"),
        "the secret only when asked: {stdout}"
    );
}

#[test]
fn plain_files_when_asked_for_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, srs) = record_a_call("rec-plain", dir.path(), &["--plain"]);
    assert!(srs.stderr().contains("plain files"), "{}", srs.stderr());
    let label1 = find_wav(&folder, "label-1-");
    assert!(label1.to_string_lossy().ends_with(".wav"));
    assert!(Audio::read_wav(&label1).tone(1000.0) > 0.1);
    assert!(folder.join("summary.json").is_file());
    let verified = recordings(&["verify", "--dir", dir.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&verified);
    assert!(verified.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("cannot be checked"), "{stderr}");
    // Where the administrator's policy keeps recordings, they are listed without --dir.
    let policy_dir = tempfile::tempdir().unwrap();
    let policy = policy_dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!("[recording]\nfolder = \"{}\"\n", dir.path().display()),
    )
    .unwrap();
    let listed = recordings_with_env(
        &["list"],
        &[("VERBATIM_POLICY_FILE", policy.to_str().unwrap())],
    );
    let (stdout, stderr) = text(&listed);
    assert!(listed.status.success(), "{stdout}{stderr}");
    let session = folder.file_name().unwrap().to_string_lossy().into_owned();
    assert!(stdout.contains(&session), "{session} not in:\n{stdout}");
}

/// Runs `verbatim ARGS` inside a D-Bus session of its own with GNOME Keyring running and
/// unlocked, HOME and the XDG folders in `home` (the keyring's file persists there between
/// sessions, as a login keyring does).
fn in_keyring_session(command: &mut Command, home: &Path, args: &[&str]) {
    command
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_RUNTIME_DIR", home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .args(["--", "sh", "-c"])
        .arg(
            "printf verbatim-test | gnome-keyring-daemon --unlock --components=secrets \
             >/dev/null && exec \"$0\" \"$@\"",
        )
        .arg(support::verbatim_bin())
        .args(args);
}

/// Where a keyring service runs, the recordings key goes there and nowhere on disk, and a
/// later session (after a "reboot": every process gone) opens the recordings with it.
#[test]
fn the_recordings_key_lives_in_the_keyring_where_one_runs() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("recordings");
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut srs = Peer::new("rec-keyring-srs");
    let mut command = srs.command("dbus-run-session");
    in_keyring_session(
        &mut command,
        home.path(),
        &["srs", "--listen", &listen, "--dir", dir.to_str().unwrap()],
    );
    srs.start(command);
    srs.wait_until_listening(support::Proto::Tcp, port, support::START_TIMEOUT);
    let (folder, srs) = record_with("rec-keyring", &dir, srs, port);
    assert!(
        srs.stderr().contains("new key kept in the system keyring"),
        "{}",
        srs.stderr()
    );
    assert!(!home.path().join("config/verbatim/recordings.key").exists());
    assert!(
        find_wav(&folder, "label-1-")
            .to_string_lossy()
            .ends_with(".age")
    );

    let mut verify = Command::new("dbus-run-session");
    in_keyring_session(
        &mut verify,
        home.path(),
        &["recordings", "verify", "--dir", dir.to_str().unwrap()],
    );
    let verified = verify.output().unwrap();
    let (stdout, stderr) = text(&verified);
    assert!(verified.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("all intact"), "{stdout}");

    // Outside the keyring's session there is no key: a clear refusal.
    let outside = recordings(&["verify", "--dir", dir.to_str().unwrap()]);
    let (_, stderr) = text(&outside);
    assert_eq!(outside.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no recordings key"), "{stderr}");
}
