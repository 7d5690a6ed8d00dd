//! SIP over TLS between two `verbatim` processes on 127.0.0.1, with certificates made by the
//! test: verification against a CA file, refusal of an untrusted or wrongly named server, and
//! mutual TLS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::{Peer, Pki, Proto, START_TIMEOUT, free_port, start_verbatim};

/// Starts `verbatim answer` with a TLS listener on the port after its UDP/TCP one; returns
/// the TLS port.
fn start_answerer(peer: &mut Peer, pki: &Pki, client_ca: Option<&Path>) -> u16 {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let tls_listen = format!("127.0.0.1:{}", port + 1);
    let cert = pki.path("server.pem");
    let key = pki.path("server.key");
    let mut args = vec![
        "answer".to_owned(),
        "--listen".into(),
        listen,
        "--calls".into(),
        "1".into(),
        "--tls-listen".into(),
        tls_listen,
        "--tls-cert".into(),
        cert.to_string_lossy().into_owned(),
        "--tls-key".into(),
        key.to_string_lossy().into_owned(),
    ];
    if let Some(path) = client_ca {
        args.extend([
            "--tls-client-ca".to_owned(),
            path.to_string_lossy().into_owned(),
        ]);
    }
    start_verbatim(peer, args);
    peer.wait_until_listening(Proto::Tcp, port + 1, START_TIMEOUT);
    port + 1
}

/// Runs `verbatim call` to the TLS port with `extra` flags and waits for it to end.
fn call(tls_port: u16, extra: &[&str]) -> Peer {
    let mut caller = Peer::new("verbatim-call-tls");
    let target = format!("sips:bob@127.0.0.1:{tls_port}");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["call", &target, "--listen", &listen, "--duration", "1"];
    args.extend_from_slice(extra);
    start_verbatim(&mut caller, args);
    caller.wait_with_timeout(CALL_TIMEOUT);
    caller
}

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn call_over_tls_to_a_server_trusted_through_a_ca_file() {
    let pki = Pki::new(&["127.0.0.1"]);
    let mut answer = Peer::new("verbatim-answer-tls");
    let port = start_answerer(&mut answer, &pki, None);
    let ca = pki.path("ca.pem");
    let mut caller = call(port, &["--tls-ca", ca.to_str().unwrap()]);
    caller.expect_success(CALL_TIMEOUT);
    answer.expect_success(CALL_TIMEOUT);
}

#[test]
fn untrusted_server_certificate_is_refused() {
    let pki = Pki::new(&["127.0.0.1"]);
    let mut answer = Peer::new("verbatim-answer-tls");
    let port = start_answerer(&mut answer, &pki, None);
    // No CA file: the system's roots do not know the test CA.
    let mut caller = call(port, &[]);
    caller.expect_failure(CALL_TIMEOUT);
    let stderr = caller.stderr();
    assert!(
        stderr.contains("call failed") && stderr.contains("certificate"),
        "{stderr}"
    );
}

#[test]
fn certificate_for_another_host_is_refused() {
    let pki = Pki::new(&["sip.other.example"]);
    let mut answer = Peer::new("verbatim-answer-tls");
    let port = start_answerer(&mut answer, &pki, None);
    let ca = pki.path("ca.pem");
    let mut caller = call(port, &["--tls-ca", ca.to_str().unwrap()]);
    caller.expect_failure(CALL_TIMEOUT);
    let stderr = caller.stderr();
    assert!(stderr.contains("not valid for name"), "{stderr}");
}

/// TLS was asked for and could not be had: the phone says so and never sends the call in the
/// clear, though the same port would have taken it over TCP or UDP.
#[test]
fn a_failed_tls_connection_is_never_retried_in_the_clear() {
    let pki = Pki::new(&["127.0.0.1"]);
    let mut answer = Peer::new("verbatim-answer-plain");
    let plain_port = start_answerer(&mut answer, &pki, None) - 1;
    let ca = pki.path("ca.pem");
    let mut caller = Peer::new("verbatim-call-tls-to-plain");
    let target = format!("sip:bob@127.0.0.1:{plain_port}");
    let listen = format!("127.0.0.1:{}", free_port());
    start_verbatim(
        &mut caller,
        [
            "call",
            &target,
            "--transport",
            "tls",
            "--tls-ca",
            ca.to_str().unwrap(),
            "--listen",
            &listen,
            "--duration",
            "1",
        ],
    );
    caller.expect_failure(CALL_TIMEOUT);
    let stderr = caller.stderr();
    assert!(
        stderr.contains("call failed") && stderr.contains("TLS handshake"),
        "{stderr}"
    );
    std::thread::sleep(Duration::from_secs(1));
    answer.stop();
    let answered = answer.stderr();
    assert!(
        !answered.contains("incoming call"),
        "the call went out unencrypted:\n{answered}"
    );
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let pki = Pki::new(&["127.0.0.1"]);
    let ca = pki.path("ca.pem");
    let mut answer = Peer::new("verbatim-answer-mtls");
    let port = start_answerer(&mut answer, &pki, Some(&ca));
    let mut without = call(port, &["--tls-ca", ca.to_str().unwrap()]);
    without.expect_failure(CALL_TIMEOUT);
    let cert = pki.path("client.pem");
    let key = pki.path("client.key");
    let mut with = call(
        port,
        &[
            "--tls-ca",
            ca.to_str().unwrap(),
            "--tls-client-cert",
            cert.to_str().unwrap(),
            "--tls-client-key",
            key.to_str().unwrap(),
        ],
    );
    with.expect_success(CALL_TIMEOUT);
    answer.expect_success(CALL_TIMEOUT);
}
