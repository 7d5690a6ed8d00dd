//! Registration against a registrar the test plays: digest, refresh, failures, keep-alive.

use super::*;

/// A registrar played by the test: challenges with digest (SHA-256 and MD5), checks the
/// answer against `password`, grants `expires` seconds.
struct TestRegistrar {
    password: &'static str,
    expires: u32,
    registers: Vec<(Duration, Message)>,
    /// Where a NAT in between makes our requests come from, as the registrar sees them
    /// (it says so in `received` and `rport`, RFC 3581).
    nat: Option<core::net::SocketAddr>,
}

impl TestRegistrar {
    fn answer(&mut self, at: Duration, request: &Message) -> Message {
        use crate::sip::auth::{Authorization, Challenge, DigestAlgorithm};
        self.registers.push((at, request.clone()));
        let tag = "reg1";
        match request
            .headers
            .get("Authorization")
            .map(Authorization::parse)
        {
            Some(Ok(auth)) if auth.verify(self.password, "REGISTER", &[]) => {
                let mut ok = request.response(200, "OK", Some(tag));
                if let Some(nat) = self.nat {
                    let via = ok.headers.get("Via").unwrap_or("").replace(
                        ";rport",
                        &format!(";received={};rport={}", nat.ip(), nat.port()),
                    );
                    ok.headers.set("Via", via);
                }
                let contact = request.headers.get("Contact").unwrap_or("");
                let expires = request.headers.get("Expires").unwrap_or("0");
                let granted = if expires == "0" { 0 } else { self.expires };
                ok.headers
                    .push("Contact", format!("{contact};expires={granted}"));
                ok
            }
            _ => {
                let mut challenge = request.response(401, "Unauthorized", Some(tag));
                for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Md5] {
                    let c = Challenge::new("verbatim.test", "nonce-1", algorithm);
                    challenge.headers.push("WWW-Authenticate", c.to_string());
                }
                challenge
            }
        }
    }
}

/// Runs one engine against the test registrar for `duration` of virtual time.
fn run_against_registrar(
    engine: &mut Engine,
    registrar: &mut TestRegistrar,
    start: Instant,
    duration: Duration,
) -> (Vec<Event>, Vec<(Duration, Vec<u8>)>) {
    let mut events = Vec::new();
    let mut raw = Vec::new();
    let mut now = start;
    let server = Destination::new(Transport::Udp, "127.0.0.9:5060".parse().unwrap());
    loop {
        let wake = loop {
            match engine.poll_output() {
                Output::Transmit { data, .. } => {
                    raw.push((now - start, data.clone()));
                    if let Ok(request) = Message::parse(&data)
                        && request.method() == Some(&Method::Register)
                    {
                        let response = registrar.answer(now - start, &request);
                        engine.handle_input(
                            now,
                            Input::Datagram {
                                source: server,
                                data: response.to_bytes(),
                            },
                        );
                    }
                }
                Output::Event(event) => events.push(event),
                Output::Media { .. } | Output::Playback { .. } | Output::BindMedia { .. } => {}
                Output::Timeout(at) => break at,
            }
        };
        if wake > start + duration {
            return (events, raw);
        }
        now = wake;
        engine.handle_input(now, Input::Timeout);
    }
}

fn account(transport: Transport, password: &str) -> AccountConfig {
    AccountConfig {
        aor: NameAddr::parse("\"Alice\" <sip:alice@verbatim.test>").unwrap(),
        registrar: Uri::parse("sip:verbatim.test").unwrap(),
        destination: Destination::new(transport, "127.0.0.9:5060".parse().unwrap()),
        credentials: Some(crate::sip::auth::Credentials::new("alice", password)),
        expires: 3600,
        route: None,
    }
}

/// An engine asked to register account 1 over `transport` with `password`, and a registrar
/// that takes "secret" and grants `expires` seconds.
fn registering(
    transport: Transport,
    password: &str,
    expires: u32,
) -> (Instant, Engine, TestRegistrar) {
    let start = Instant::now();
    let mut engine = registering_engine(start);
    engine.handle_input(
        start,
        Input::Command(Command::Register {
            account: AccountId(1),
            config: account(transport, password),
        }),
    );
    let registrar = TestRegistrar {
        password: "secret",
        expires,
        registers: Vec::new(),
        nat: None,
    };
    (start, engine, registrar)
}

fn registering_engine(start: Instant) -> Engine {
    Engine::new(
        EngineConfig {
            listeners: vec![
                Destination::new(Transport::Udp, "127.0.0.1:5060".parse().unwrap()),
                Destination::new(Transport::Tcp, "127.0.0.1:5060".parse().unwrap()),
            ],
            ..config(4)
        },
        start,
    )
}

#[test]
fn registers_with_sha256_digest_and_refreshes_before_expiry() {
    let (start, mut engine, mut registrar) = registering(Transport::Udp, "secret", 120);
    let (events, _) =
        run_against_registrar(&mut engine, &mut registrar, start, Duration::from_secs(200));
    assert!(events.contains(&Event::Registration {
        account: AccountId(1),
        state: RegistrationState::Registered { expires: 120 }
    }));
    let auth = registrar.registers[1]
        .1
        .headers
        .get("Authorization")
        .unwrap()
        .to_owned();
    assert!(auth.contains("algorithm=SHA-256"), "{auth}");
    // Refreshes at 90 s (30 s before expiry), and again 90 s later, reusing the nonce with
    // a growing nonce count.
    let times: Vec<u64> = registrar
        .registers
        .iter()
        .map(|(t, _)| t.as_secs())
        .collect();
    assert_eq!(times, vec![0, 0, 90, 180]);
    let third = registrar.registers[2]
        .1
        .headers
        .get("Authorization")
        .unwrap()
        .to_owned();
    assert!(third.contains("nc=00000002"), "{third}");
    let cseqs: Vec<u32> = registrar
        .registers
        .iter()
        .map(|(_, m)| m.cseq().unwrap().number)
        .collect();
    assert_eq!(cseqs, vec![1, 2, 3, 4]);
}

#[test]
fn wrong_password_is_reported_once_and_not_retried() {
    let (start, mut engine, mut registrar) = registering(Transport::Udp, "guess", 120);
    let (events, _) = run_against_registrar(
        &mut engine,
        &mut registrar,
        start,
        Duration::from_secs(3600),
    );
    assert_eq!(
        registrar.registers.len(),
        2,
        "one try without and one with credentials"
    );
    let failed = events.iter().find_map(|e| match e {
        Event::Registration {
            state: RegistrationState::Failed { reason },
            ..
        } => Some(reason.clone()),
        _ => None,
    });
    assert!(failed.unwrap().starts_with("authentication failed"));
}

#[test]
fn tcp_registration_sends_crlf_keepalives_and_shutdown_unregisters() {
    let (start, mut engine, mut registrar) = registering(Transport::Tcp, "secret", 3600);
    let (_, raw) =
        run_against_registrar(&mut engine, &mut registrar, start, Duration::from_secs(65));
    let pings: Vec<u64> = raw
        .iter()
        .filter(|(_, d)| d == b"\r\n\r\n")
        .map(|(t, _)| t.as_secs())
        .collect();
    assert_eq!(pings, vec![30, 60]);
    let later = start + Duration::from_secs(65);
    engine.handle_input(later, Input::Command(Command::Shutdown));
    let (events, _) =
        run_against_registrar(&mut engine, &mut registrar, later, Duration::from_secs(10));
    let last = &registrar.registers.last().unwrap().1;
    assert_eq!(last.headers.get("Expires"), Some("0"));
    assert!(events.contains(&Event::ShutdownComplete));
}

/// Behind a NAT (the registrar sees our REGISTER come from 203.0.113.7:40123): the phone
/// registers again with that address in its Contact, removing the binding to its private
/// one, keeps the NAT's binding open with keep-alives on UDP, and gives calls that take the
/// same hop the public Contact, so that requests in them reach it.
#[test]
fn behind_a_nat_the_binding_and_calls_carry_the_public_address_and_udp_is_kept_open() {
    let (start, mut engine, mut registrar) = registering(Transport::Udp, "secret", 3600);
    registrar.nat = Some("203.0.113.7:40123".parse().unwrap());
    let (events, raw) =
        run_against_registrar(&mut engine, &mut registrar, start, Duration::from_secs(65));
    let contacts: Vec<Vec<String>> = registrar
        .registers
        .iter()
        .map(|(_, m)| {
            m.headers
                .all("Contact")
                .into_iter()
                .map(str::to_owned)
                .collect()
        })
        .collect();
    assert_eq!(
        contacts,
        vec![
            vec!["<sip:alice@127.0.0.1:5060>".to_owned()],
            vec!["<sip:alice@127.0.0.1:5060>".to_owned()],
            vec![
                "<sip:alice@203.0.113.7:40123>".to_owned(),
                "<sip:alice@127.0.0.1:5060>;expires=0".to_owned()
            ],
        ],
        "challenged, then bound with the private address, then again with the public one"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(
                e,
                Event::Registration {
                    state: RegistrationState::Registered { .. },
                    ..
                }
            ))
            .count(),
        1,
        "registered once, with the binding that works"
    );
    let pings: Vec<u64> = raw
        .iter()
        .filter(|(_, d)| d == b"\r\n\r\n")
        .map(|(t, _)| t.as_secs())
        .collect();
    assert_eq!(pings, vec![30, 60], "the NAT's binding is kept open");

    let now = start + Duration::from_secs(65);
    engine.handle_input(
        now,
        Input::Command(Command::Dial {
            call: CallId(720),
            request: DialRequest {
                target: Uri::parse("sip:bob@verbatim.test").unwrap(),
                from: NameAddr::parse("<sip:alice@verbatim.test>").unwrap(),
                destination: Destination::new(Transport::Udp, "127.0.0.9:5060".parse().unwrap()),
                route: None,
                credentials: None,
                media_port: 40000,
                record: None,
                srtp: None,
                notice: None,
            },
        }),
    );
    let invite = loop {
        match engine.poll_output() {
            Output::Transmit { data, .. } => {
                if let Ok(m) = Message::parse(&data)
                    && m.method() == Some(&Method::Invite)
                {
                    break m;
                }
            }
            Output::Timeout(_) => panic!("no INVITE"),
            _ => {}
        }
    };
    assert_eq!(
        invite.headers.get("Contact"),
        Some("<sip:alice@203.0.113.7:40123>"),
        "a call through the registrar's hop has the public Contact"
    );
}

#[test]
fn without_a_nat_nothing_is_registered_twice_and_udp_sends_no_keepalives() {
    let (start, mut engine, mut registrar) = registering(Transport::Udp, "secret", 3600);
    registrar.nat = Some("127.0.0.1:5060".parse().unwrap());
    let (_, raw) =
        run_against_registrar(&mut engine, &mut registrar, start, Duration::from_secs(65));
    assert_eq!(registrar.registers.len(), 2, "challenge, then bound");
    assert!(!raw.iter().any(|(_, d)| d == b"\r\n\r\n"));
}
