//! A dialog set up over TLS never leaves it. The far end and the recorder here are a TLS peer
//! whose every message the test writes, shaped like a misconfigured server or SBC: its 2xx
//! names a plain `sip:`/`transport=tcp` Contact or Record-Route. A plain TCP (and UDP)
//! socket waits at the address it names; not one byte may reach it, the session must end with
//! its reason, and the ACK and BYE must still come over TLS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::{Peer, Pki, Proto, START_TIMEOUT, free_port, start_verbatim};

const RUN_TIMEOUT: Duration = Duration::from_secs(40);

/// Our own SRTP key in the peer's answers (30 bytes, base64).
const PEER_KEY: &str = "dGxzLWRpYWxvZy10ZXN0LWtleS1vZi0zMC1ieXRl";

/// What the peer puts in its 2xx to an INVITE besides the SDP answer.
#[derive(Clone)]
struct Answer {
    contact: String,
    record_route: Option<String>,
}

/// A SIP-over-TLS server that answers INVITE with `answer`, and ACK, BYE and anything else
/// as a plain UAS would. It keeps every request line it read, in order.
struct TlsSipPeer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TlsSipPeer {
    fn start(pki: &Pki, answer: Answer) -> TlsSipPeer {
        let chain = CertificateDer::pem_file_iter(pki.path("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (config, seen, answer) = (config.clone(), seen.clone(), answer.clone());
                thread::spawn(move || serve(stream, config, &seen, &answer));
            }
        });
        TlsSipPeer { port, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until a request line starting with `method` has come (or the time is up).
    fn wait_for(&self, method: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.requests().iter().any(|r| r.starts_with(method)) {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    seen: &Mutex<Vec<String>>,
    answer: &Answer,
) {
    let Ok(connection) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        while let Some((head, body)) = next_message(&mut buffer) {
            let request_line = head.lines().next().unwrap_or_default().to_owned();
            if request_line.starts_with("SIP/2.0") {
                continue;
            }
            seen.lock().unwrap().push(request_line.clone());
            if let Some(response) = respond(&request_line, &head, &body, answer)
                && tls.write_all(response.as_bytes()).is_err()
            {
                return;
            }
        }
        match tls.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Takes one whole message (head, body) off the front of `buffer`, by Content-Length.
fn next_message(buffer: &mut Vec<u8>) -> Option<(String, String)> {
    while buffer.starts_with(b"\r\n") {
        buffer.drain(..2);
    }
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let length: usize = header(&head, "Content-Length")
        .or_else(|| header(&head, "l"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let total = end + 4 + length;
    if buffer.len() < total {
        return None;
    }
    let body = String::from_utf8_lossy(&buffer[end + 4..total]).into_owned();
    buffer.drain(..total);
    Some((head, body))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

fn headers<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .skip(1)
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
        .collect()
}

fn respond(request_line: &str, head: &str, body: &str, answer: &Answer) -> Option<String> {
    let method = request_line.split(' ').next().unwrap_or_default();
    if method == "ACK" {
        return None;
    }
    let mut response = String::from("SIP/2.0 200 OK\r\n");
    for via in headers(head, "Via") {
        response.push_str(&format!("Via: {via}\r\n"));
    }
    let to = header(head, "To").unwrap_or_default();
    let to = if to.contains(";tag=") {
        to.to_owned()
    } else {
        format!("{to};tag=peer1")
    };
    for (name, value) in [
        ("From", header(head, "From").unwrap_or_default()),
        ("To", to.as_str()),
        ("Call-ID", header(head, "Call-ID").unwrap_or_default()),
        ("CSeq", header(head, "CSeq").unwrap_or_default()),
    ] {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    let sdp = if method == "INVITE" {
        response.push_str(&format!("Contact: {}\r\n", answer.contact));
        if let Some(route) = &answer.record_route {
            response.push_str(&format!("Record-Route: {route}\r\n"));
        }
        answer_to(&sdp_of(head, body))
    } else {
        String::new()
    };
    if sdp.is_empty() {
        response.push_str("Content-Length: 0\r\n\r\n");
    } else {
        response.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ));
    }
    Some(response)
}

/// The SDP in a body that is SDP alone or the first part of a multipart/mixed one.
fn sdp_of(head: &str, body: &str) -> String {
    let content_type = header(head, "Content-Type").unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("multipart/") {
        return body.to_owned();
    }
    let start = body.find("v=0").unwrap_or(0);
    let rest = &body[start..];
    let end = rest.find("\r\n--").unwrap_or(rest.len());
    format!("{}\r\n", &rest[..end])
}

/// Answers each offered stream with its first format, the mirrored direction, its label and
/// (when it offered SRTP) a key of ours with its first crypto suite.
fn answer_to(offer: &str) -> String {
    let mut sdp = String::from(
        "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n",
    );
    let sections: Vec<&str> = offer.split("m=").skip(1).collect();
    for (n, section) in sections.iter().enumerate() {
        let line = section.lines().next().unwrap_or_default();
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (proto, format) = (fields.get(2).copied().unwrap_or("RTP/AVP"), fields[3]);
        sdp.push_str(&format!("m=audio {} {proto} {format}\r\n", 40_000 + 2 * n));
        let attribute = |name: &str| {
            section
                .lines()
                .find_map(|l| l.strip_prefix(&format!("a={name}")))
                .map(str::to_owned)
        };
        if let Some(rtpmap) = attribute(&format!("rtpmap:{format} ")) {
            sdp.push_str(&format!("a=rtpmap:{format} {rtpmap}\r\n"));
        }
        let direction = ["sendonly", "recvonly", "inactive"]
            .into_iter()
            .find(|d| section.lines().any(|l| l == format!("a={d}")))
            .map_or("sendrecv", |d| match d {
                "sendonly" => "recvonly",
                "recvonly" => "sendonly",
                other => other,
            });
        sdp.push_str(&format!("a={direction}\r\n"));
        if let Some(label) = attribute("label:") {
            sdp.push_str(&format!("a=label:{label}\r\n"));
        }
        if let Some(crypto) = attribute("crypto:") {
            let mut parts = crypto.split_whitespace();
            let (tag, suite) = (parts.next().unwrap(), parts.next().unwrap());
            sdp.push_str(&format!("a=crypto:{tag} {suite} inline:{PEER_KEY}\r\n"));
        }
    }
    sdp
}

/// A plain TCP listener and UDP socket on one port, counting what reaches them.
struct PlainTrap {
    port: u16,
    received: Arc<AtomicUsize>,
}

impl PlainTrap {
    fn start() -> PlainTrap {
        let port = free_port();
        let tcp = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let udp = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let count = received.clone();
        thread::spawn(move || {
            for stream in tcp.incoming() {
                let Ok(mut stream) = stream else { return };
                // A connection alone is a byte too many: it means the phone tried.
                count.fetch_add(1, Ordering::SeqCst);
                let count = count.clone();
                thread::spawn(move || {
                    let mut chunk = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut chunk) {
                        count.fetch_add(n, Ordering::SeqCst);
                    }
                });
            }
        });
        let count = received.clone();
        thread::spawn(move || {
            let mut datagram = [0u8; 65_536];
            while let Ok((n, _)) = udp.recv_from(&mut datagram) {
                count.fetch_add(n.max(1), Ordering::SeqCst);
            }
        });
        PlainTrap { port, received }
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

/// Runs `verbatim call` with `args` (plus a listen address and the test CA).
fn run_call(pki: &Pki, name: &str, args: &[&str]) -> Peer {
    let mut caller = Peer::new(name);
    let listen = format!("127.0.0.1:{}", free_port());
    let ca = pki.path("ca.pem");
    let mut all = vec![
        "call",
        "--listen",
        &listen,
        "--tls-ca",
        ca.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    start_verbatim(&mut caller, all);
    caller
}

/// The call's own far end answers over TLS but names a plain Contact: the call ends with
/// the reason, its ACK and BYE over TLS, and the SRTP keys never reach the plain socket.
fn call_refuses_to_leave_tls(answer: impl Fn(&PlainTrap) -> Answer) {
    let pki = Pki::new(&["127.0.0.1"]);
    let trap = PlainTrap::start();
    let peer = TlsSipPeer::start(&pki, answer(&trap));
    let target = format!("sips:bob@127.0.0.1:{}", peer.port);
    let mut caller = run_call(
        &pki,
        "verbatim-call-leaving-tls",
        &[
            &target,
            "--srtp",
            "mandatory",
            "--codec",
            "pcmu",
            "--duration",
            "5",
        ],
    );
    caller.expect_failure(RUN_TIMEOUT);
    let stderr = caller.stderr();
    assert!(
        stderr.contains("would move the call off TLS") && stderr.contains(&trap.port.to_string()),
        "{stderr}"
    );
    assert!(
        peer.wait_for("BYE ", Duration::from_secs(5)),
        "{:?}",
        peer.requests()
    );
    let requests = peer.requests();
    assert!(
        requests.iter().any(|r| r.starts_with("ACK ")),
        "the 2xx was not ACKed over TLS: {requests:?}"
    );
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        trap.received(),
        0,
        "bytes of the dialog went out in the clear"
    );
}

#[test]
fn a_far_end_whose_contact_leaves_tls_gets_its_call_ended_over_tls() {
    call_refuses_to_leave_tls(|trap| Answer {
        contact: format!("<sip:bob@127.0.0.1:{};transport=tcp>", trap.port),
        record_route: None,
    });
}

#[test]
fn a_plain_record_route_in_a_sips_dialog_ends_the_call_over_tls() {
    call_refuses_to_leave_tls(|trap| Answer {
        contact: "<sips:bob@127.0.0.1>".into(),
        record_route: Some(format!("<sip:127.0.0.1:{};lr>", trap.port)),
    });
}

/// The recorder answers over TLS with a plain Contact: the recording session ends with the
/// reason (its keys would otherwise go out in the clear with the next re-INVITE), a gap is
/// recorded and retried, and the call itself goes on to its end.
#[test]
fn a_recorder_whose_contact_leaves_tls_fails_the_recording_not_the_call() {
    let pki = Pki::new(&["127.0.0.1"]);
    let trap = PlainTrap::start();
    let recorder = TlsSipPeer::start(
        &pki,
        Answer {
            contact: format!("<sip:srs@127.0.0.1:{};transport=tcp>", trap.port),
            record_route: None,
        },
    );
    let mut far_end = Peer::new("verbatim-answer-srtp");
    let far_port = free_port();
    let far_listen = format!("127.0.0.1:{far_port}");
    start_verbatim(
        &mut far_end,
        [
            "answer",
            "--listen",
            &far_listen,
            "--calls",
            "1",
            "--srtp",
            "mandatory",
        ],
    );
    far_end.wait_until_listening(Proto::Udp, far_port, START_TIMEOUT);
    let target = format!("sip:bob@{far_listen}");
    let srs = format!("sips:srs@127.0.0.1:{}", recorder.port);
    let mut caller = run_call(
        &pki,
        "verbatim-call-recorded-leaving-tls",
        &[
            &target,
            "--srtp",
            "mandatory",
            "--codec",
            "pcmu",
            "--duration",
            "4",
            "--record",
            "--srs",
            &srs,
        ],
    );
    caller.expect_success(RUN_TIMEOUT);
    far_end.expect_success(RUN_TIMEOUT);
    let stderr = caller.stderr();
    assert!(
        stderr.contains("would move the recording session off TLS")
            && stderr.contains(&trap.port.to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("recording gap:"), "{stderr}");
    let requests = recorder.requests();
    let invite = requests.iter().position(|r| r.starts_with("INVITE "));
    let ack = requests.iter().position(|r| r.starts_with("ACK "));
    let bye = requests.iter().position(|r| r.starts_with("BYE "));
    assert!(
        invite < ack && ack < bye && invite.is_some(),
        "INVITE, ACK and BYE over TLS: {requests:?}"
    );
    assert_eq!(
        trap.received(),
        0,
        "bytes of the recording session went out in the clear"
    );
}
