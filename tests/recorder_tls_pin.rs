//! A recorder with a self-signed certificate made the common way (`openssl req -x509`, which
//! marks it as a CA): pinned by its SHA-256 fingerprint it records; trusted as a CA file
//! instead, webpki refuses it as a server's certificate and the phone says, in words, what to
//! do; pinned with the wrong fingerprint, the phone says which one the recorder presented.
//! The recorder is `verbatim srs --transport tls` as a process of its own, the call goes to
//! the built-in echo.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Peer, find_wav, start_recorder, start_verbatim_with_env};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A self-signed certificate for 127.0.0.1 and its key, made by openssl as people make
/// them, in `dir`; returns the two files and the fingerprint as openssl prints it.
fn openssl_self_signed(dir: &Path) -> (PathBuf, PathBuf, String) {
    let certificate = dir.join("recorder.pem");
    let key = dir.join("recorder.key");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&certificate)
        .args(["-days", "30", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // What openssl's own configuration adds to -x509 anyway; said here so the test does
        // not depend on the machine's openssl.cnf.
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .output()
        .expect("openssl (the openssl package) makes the recorder's certificate");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let printed = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&certificate)
        .output()
        .unwrap();
    assert!(printed.status.success());
    // "sha256 Fingerprint=AB:CD:..." (older openssl: "SHA256 Fingerprint=").
    let printed = String::from_utf8(printed.stdout).unwrap();
    let fingerprint = printed
        .trim()
        .split_once('=')
        .map(|(_, value)| value.to_owned())
        .unwrap_or_else(|| panic!("no fingerprint in {printed:?}"));
    assert_eq!(fingerprint.len(), 95, "{fingerprint}");
    (certificate, key, fingerprint)
}

/// The recorder, with TLS and the self-signed certificate, writing plain files into `dir`.
fn start_tls_recorder(name: &str, dir: &Path, certificate: &Path, key: &Path) -> (Peer, u16) {
    start_recorder(
        name,
        dir,
        &[
            "--transport",
            "tls",
            "--tls-cert",
            certificate.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--plain",
        ],
    )
}

/// A 3 s recorded call to the echo, with `[recording]` naming the recorder over TLS and
/// `tls_lines`; returns the phone, exited, for its stderr.
fn recorded_echo_call(name: &str, srs_port: u16, tls_lines: &str) -> Peer {
    let mut phone = Peer::new(name);
    let config = phone.write_file(
        "config.toml",
        format!("[recording]\nsrs = \"sips:srs@127.0.0.1:{srs_port}\"\n{tls_lines}"),
    );
    let data = phone.path("data");
    start_verbatim_with_env(
        &mut phone,
        [
            "call",
            "sip:echo@verbatim.invalid",
            "--config",
            config.to_str().unwrap(),
            "--duration",
            "3",
            "--record",
        ],
        &[("XDG_DATA_HOME", data.to_str().unwrap())],
    );
    // The policy is optional: the call itself succeeds whatever the recording does.
    phone.expect_success(CALL_TIMEOUT);
    phone
}

/// The recording folders in `dir` once the recorder has written their summaries.
fn finished_sessions(dir: &Path, timeout: Duration) -> Vec<PathBuf> {
    let deadline = Instant::now() + timeout;
    loop {
        let folders = verbatim::archive::session::session_folders(dir);
        let written = !folders.is_empty()
            && folders
                .iter()
                .all(|folder| folder.join("summary.json").is_file());
        if written || Instant::now() > deadline {
            return folders;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_pinned_self_signed_recorder_certificate_records_the_call() {
    let certificates = tempfile::tempdir().unwrap();
    let (certificate, key, fingerprint) = openssl_self_signed(certificates.path());
    let recordings = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) =
        start_tls_recorder("pin-srs-pinned", recordings.path(), &certificate, &key);

    // As openssl prints it; lower case without colons is the same pin.
    for (round, pin) in [
        fingerprint.clone(),
        fingerprint.replace(':', "").to_ascii_lowercase(),
    ]
    .into_iter()
    .enumerate()
    {
        let mut phone = recorded_echo_call(
            &format!("pin-call-pinned-{round}"),
            srs_port,
            &format!("tls_certificate_sha256 = \"{pin}\"\n"),
        );
        let stderr = phone.stderr();
        assert!(
            stderr.contains("recording: recording"),
            "{}",
            phone.report()
        );
        assert!(!stderr.contains("TLS handshake"), "{stderr}");
    }

    let folders = finished_sessions(recordings.path(), Duration::from_secs(10));
    assert_eq!(folders.len(), 2, "{}", srs.report());
    for folder in &folders {
        let summary = std::fs::read_to_string(folder.join("summary.json")).unwrap();
        let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
        let labels = summary["labels"].as_array().unwrap();
        assert_eq!(labels.len(), 2, "{summary}");
        let heard = support::Audio::read_wav(&find_wav(folder, "label-1-"));
        assert!(heard.seconds() > 1.5, "{} s", heard.seconds());
    }
    srs.stop();
}

#[test]
fn a_self_signed_recorder_certificate_without_a_pin_is_refused_saying_what_to_do() {
    let certificates = tempfile::tempdir().unwrap();
    let (certificate, key, fingerprint) = openssl_self_signed(certificates.path());
    let recordings = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) =
        start_tls_recorder("pin-srs-unpinned", recordings.path(), &certificate, &key);

    // Trusting the certificate as its own CA is what people try first; webpki still refuses
    // a CA certificate as the server's own.
    let mut phone = recorded_echo_call(
        "pin-call-unpinned",
        srs_port,
        &format!("tls_ca_file = {:?}\n", certificate.to_str().unwrap()),
    );
    let stderr = phone.stderr();
    assert!(
        !stderr.contains("recording: recording"),
        "{}",
        phone.report()
    );
    let told = stderr
        .lines()
        .find(|line| {
            line.starts_with("recording: retrying") || line.starts_with("recording: failed")
        })
        .unwrap_or_else(|| panic!("no recording failure in {stderr}"));
    for words in [
        "the recorder's certificate is a CA certificate (as self-signed ones made with \
         openssl req -x509 are), which is not accepted as a server's certificate.",
        "Give the recorder a certificate issued by a CA and set tls_ca_file to that CA",
        &format!("or pin this certificate with tls_certificate_sha256 = \"{fingerprint}\""),
    ] {
        assert!(told.contains(words), "{words:?} not in {told}");
    }
    // The debugging form rustls would give on its own is not what the user reads.
    assert!(!told.contains("CaUsedAsEndEntity"), "{told}");
    assert!(
        verbatim::archive::session::session_folders(recordings.path()).is_empty(),
        "{}",
        srs.report()
    );
    srs.stop();
}

#[test]
fn a_wrong_pin_is_refused_showing_the_fingerprint_the_recorder_presented() {
    let certificates = tempfile::tempdir().unwrap();
    let (certificate, key, fingerprint) = openssl_self_signed(certificates.path());
    let recordings = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) =
        start_tls_recorder("pin-srs-wrong", recordings.path(), &certificate, &key);
    // Another certificate's fingerprint: the one of a second certificate openssl made.
    let other = tempfile::tempdir().unwrap();
    let (_, _, other_fingerprint) = openssl_self_signed(other.path());

    let mut phone = recorded_echo_call(
        "pin-call-wrong",
        srs_port,
        &format!("tls_certificate_sha256 = \"{other_fingerprint}\"\n"),
    );
    let stderr = phone.stderr();
    assert!(
        !stderr.contains("recording: recording"),
        "{}",
        phone.report()
    );
    let expected = format!(
        "the recorder's certificate does not match tls_certificate_sha256: the recorder \
         presented SHA-256 {fingerprint}, the pin is {other_fingerprint}"
    );
    assert!(stderr.contains(&expected), "{expected}\nnot in\n{stderr}");
    assert!(
        verbatim::archive::session::session_folders(recordings.path()).is_empty(),
        "{}",
        srs.report()
    );
    srs.stop();
}
