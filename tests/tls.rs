//! SIP over TLS between two `verbatim` processes on 127.0.0.1, with certificates made by the
//! test: verification against a CA file, refusal of an untrusted or wrongly named server, and
//! mutual TLS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, a server certificate for `server_names`, and a client certificate.
    fn new(server_names: &[&str]) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        for (name, sans) in [
            (
                "server",
                server_names
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            ),
            ("client", vec!["alice.client".to_string()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 1)).is_ok()
        {
            return port;
        }
    }
}

fn verbatim(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn finish(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    panic!(
        "process did not finish in {limit:?}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn wait_for_listener(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `verbatim answer` with a TLS listener; returns it and the TLS port.
fn answerer(pki: &Pki, client_ca: Option<&Path>) -> (Child, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let tls_listen = format!("127.0.0.1:{}", port + 1);
    let cert = pki.path("server.pem");
    let key = pki.path("server.key");
    let mut args = vec![
        "answer",
        "--listen",
        &listen,
        "--calls",
        "1",
        "--tls-listen",
        &tls_listen,
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let ca;
    if let Some(path) = client_ca {
        ca = path.to_str().unwrap().to_owned();
        args.extend(["--tls-client-ca", &ca]);
    }
    let child = verbatim(&args).spawn().unwrap();
    wait_for_listener(port + 1);
    (child, port + 1)
}

fn call(tls_port: u16, extra: &[&str]) -> Output {
    let target = format!("sips:bob@127.0.0.1:{tls_port}");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["call", &target, "--listen", &listen, "--duration", "1"];
    args.extend_from_slice(extra);
    finish(verbatim(&args).spawn().unwrap(), Duration::from_secs(30))
}

#[test]
fn call_over_tls_to_a_server_trusted_through_a_ca_file() {
    let pki = Pki::new(&["127.0.0.1"]);
    let (answer, port) = answerer(&pki, None);
    let ca = pki.path("ca.pem");
    let out = call(port, &["--tls-ca", ca.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "call failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answered = finish(answer, Duration::from_secs(20));
    assert!(
        answered.status.success(),
        "{}",
        String::from_utf8_lossy(&answered.stderr)
    );
}

#[test]
fn untrusted_server_certificate_is_refused() {
    let pki = Pki::new(&["127.0.0.1"]);
    let (mut answer, port) = answerer(&pki, None);
    // No CA file: the system's roots do not know the test CA.
    let out = call(port, &[]);
    let _ = answer.kill();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("call failed") && stderr.contains("certificate"),
        "{stderr}"
    );
}

#[test]
fn certificate_for_another_host_is_refused() {
    let pki = Pki::new(&["sip.other.example"]);
    let (mut answer, port) = answerer(&pki, None);
    let ca = pki.path("ca.pem");
    let out = call(port, &["--tls-ca", ca.to_str().unwrap()]);
    let _ = answer.kill();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let pki = Pki::new(&["127.0.0.1"]);
    let ca = pki.path("ca.pem");
    let (answer, port) = answerer(&pki, Some(&ca));
    let without = call(port, &["--tls-ca", ca.to_str().unwrap()]);
    assert!(
        !without.status.success(),
        "a client without certificate got through"
    );
    let cert = pki.path("client.pem");
    let key = pki.path("client.key");
    let with = call(
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
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let answered = finish(answer, Duration::from_secs(20));
    assert!(
        answered.status.success(),
        "{}",
        String::from_utf8_lossy(&answered.stderr)
    );
}
