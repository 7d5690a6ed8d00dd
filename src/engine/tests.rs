//! Engine behaviour between simulated peers, in virtual time.

use core::time::Duration;

use super::*;
use crate::media::codec::CodecKind;
use crate::sim::{LinkConfig, NodeId, SimNet};

fn config(seed: u64) -> EngineConfig {
    EngineConfig {
        seed,
        ..EngineConfig::default()
    }
}

fn dial(net: &mut SimNet, from: NodeId, to: NodeId, transport: Transport) -> CallId {
    let destination = net.address(to, transport).unwrap();
    let target = Uri::parse(&format!("sip:bob@{}", destination.address)).unwrap();
    let call = CallId::new();
    net.command(
        from,
        Command::Dial {
            call,
            request: DialRequest {
                target,
                from: NameAddr::parse("\"Alice\" <sip:alice@127.0.0.1>").unwrap(),
                destination,
                route: None,
                credentials: None,
                media_port: 40000,
                record: None,
            },
        },
    );
    call
}

fn incoming(net: &SimNet, node: NodeId) -> Option<CallId> {
    net.events(node).iter().find_map(|e| match e {
        Event::IncomingCall { call, .. } => Some(*call),
        _ => None,
    })
}

fn ended(net: &SimNet, node: NodeId) -> Option<EndReason> {
    net.events(node).iter().find_map(|e| match e {
        Event::CallEnded { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

fn connected(net: &SimNet, node: NodeId) -> bool {
    net.events(node).iter().any(|e| {
        matches!(
            e,
            Event::CallState {
                state: CallState::Connected { .. },
                ..
            }
        )
    })
}

fn answer_when_ringing(net: &mut SimNet, node: NodeId) -> CallId {
    assert!(net.run_until(Duration::from_secs(5), |n| incoming(n, node).is_some()));
    let call = incoming(net, node).unwrap();
    net.command(
        node,
        Command::Answer {
            call,
            media_port: 41000,
            record: None,
        },
    );
    call
}

fn establish(net: &mut SimNet, transport: Transport) -> (CallId, CallId) {
    let a = dial(net, 0, 1, transport);
    let b = answer_when_ringing(net, 1);
    assert!(net.run_until(Duration::from_secs(5), |n| connected(n, 0)
        && connected(n, 1)));
    (a, b)
}

fn two_phones(link: LinkConfig) -> SimNet {
    let mut net = SimNet::new(1, link);
    net.add_node(config(10));
    net.add_node(config(20));
    net
}

#[test]
fn call_connects_negotiates_media_and_ends_with_bye() {
    let mut net = two_phones(LinkConfig::default());
    let (a, _) = establish(&mut net, Transport::Udp);
    assert!(net.events(0).iter().any(|e| matches!(e, Event::Media { negotiated, .. } if negotiated.codec.encoding.eq_ignore_ascii_case("opus"))));
    assert!(net.events(1).iter().any(
        |e| matches!(e, Event::Media { negotiated, .. } if negotiated.remote_rtp_port == 40000)
    ));
    net.command(0, Command::Hangup { call: a });
    assert!(
        net.run_until(Duration::from_secs(5), |n| ended(n, 0).is_some()
            && ended(n, 1).is_some())
    );
    let caller = ended(&net, 0).unwrap();
    assert_eq!((caller.by, caller.was_connected), (Party::Local, true));
    assert_eq!(ended(&net, 1).unwrap().by, Party::Remote);
    assert_eq!(net.engine(0).unwrap().active_calls(), 0);
    assert_eq!(net.engine(1).unwrap().active_calls(), 0);
}

#[test]
fn call_over_tcp_connects() {
    let mut net = two_phones(LinkConfig::default());
    establish(&mut net, Transport::Tcp);
    assert!(
        net.trace
            .iter()
            .all(|(_, _, to, _)| to.transport == Transport::Tcp)
    );
}

#[test]
fn busy_callee_ends_the_call_with_486() {
    let mut net = two_phones(LinkConfig::default());
    dial(&mut net, 0, 1, Transport::Udp);
    assert!(net.run_until(Duration::from_secs(5), |n| incoming(n, 1).is_some()));
    let call = incoming(&net, 1).unwrap();
    net.command(1, Command::Reject { call, status: 486 });
    assert!(net.run_until(Duration::from_secs(5), |n| ended(n, 0).is_some()));
    let reason = ended(&net, 0).unwrap();
    assert_eq!(reason.status, Some(486));
    assert_eq!(reason.text, "486 Busy Here");
    assert!(!reason.was_connected);
}

#[test]
fn caller_hanging_up_while_ringing_cancels() {
    let mut net = two_phones(LinkConfig::default());
    let a = dial(&mut net, 0, 1, Transport::Udp);
    assert!(
        net.run_until(Duration::from_secs(5), |n| n.events(0).iter().any(
            |e| matches!(
                e,
                Event::CallState {
                    state: CallState::Ringing,
                    ..
                }
            )
        ))
    );
    net.command(0, Command::Hangup { call: a });
    assert!(
        net.run_until(Duration::from_secs(5), |n| ended(n, 0).is_some()
            && ended(n, 1).is_some())
    );
    assert_eq!(ended(&net, 1).unwrap().status, Some(487));
    assert_eq!(ended(&net, 0).unwrap().text, "cancelled");
    let cancels = net
        .trace
        .iter()
        .filter(|(_, _, _, d)| d.starts_with(b"CANCEL "))
        .count();
    assert_eq!(cancels, 1);
}

#[test]
fn unanswered_invite_retransmits_seven_times_then_times_out_at_32_s() {
    let mut net = SimNet::new(3, LinkConfig::default());
    net.add_node(config(1));
    let call = CallId::new();
    let nowhere = Destination::new(Transport::Udp, "127.0.0.9:5060".parse().unwrap());
    net.command(
        0,
        Command::Dial {
            call,
            request: DialRequest {
                target: Uri::parse("sip:nobody@127.0.0.9").unwrap(),
                from: NameAddr::parse("<sip:alice@127.0.0.1>").unwrap(),
                destination: nowhere,
                route: None,
                credentials: None,
                media_port: 40000,
                record: None,
            },
        },
    );
    assert!(net.run_until(Duration::from_secs(60), |n| ended(n, 0).is_some()));
    assert_eq!(net.elapsed(), Duration::from_secs(32));
    assert_eq!(net.trace.len(), 7);
    let reason = ended(&net, 0).unwrap();
    assert_eq!(reason.status, Some(408));
}

#[test]
fn hold_and_resume_use_reinvite_directions() {
    let mut net = two_phones(LinkConfig::default());
    let (a, b) = establish(&mut net, Transport::Udp);
    net.take_events(1);
    net.command(0, Command::Hold { call: a });
    assert!(net.run_until(Duration::from_secs(5), |n| n.events(1).iter().any(|e| matches!(e, Event::CallState { call, state: CallState::Connected { remote_hold: true, .. } } if *call == b))));
    assert!(
        net.trace
            .iter()
            .any(|(_, _, _, d)| d.starts_with(b"INVITE ")
                && String::from_utf8_lossy(d).contains("a=sendonly"))
    );
    net.command(0, Command::Resume { call: a });
    assert!(net.run_until(Duration::from_secs(5), |n| n.events(1).iter().any(|e| matches!(e, Event::CallState { call, state: CallState::Connected { remote_hold: false, .. } } if *call == b))));
}

#[test]
fn glare_is_resolved_with_491_and_a_retry() {
    let mut net = two_phones(LinkConfig::default());
    let (a, b) = establish(&mut net, Transport::Udp);
    net.command(0, Command::Hold { call: a });
    net.command(1, Command::Hold { call: b });
    net.run_for(Duration::from_secs(10));
    let glares = net
        .trace
        .iter()
        .filter(|(_, _, _, d)| d.starts_with(b"SIP/2.0 491"))
        .count();
    assert!(glares >= 1, "both re-INVITEs crossed, so at least one 491");
    let last_state = |node| {
        net.events(node).iter().rev().find_map(|e| match e {
            Event::CallState { state, .. } => Some(*state),
            _ => None,
        })
    };
    assert_eq!(
        last_state(0),
        Some(CallState::Connected {
            local_hold: true,
            remote_hold: true
        })
    );
    assert_eq!(
        last_state(1),
        Some(CallState::Connected {
            local_hold: true,
            remote_hold: true
        })
    );
}

#[test]
fn calls_survive_loss_jitter_and_duplication() {
    for seed in 0..20 {
        let mut net = SimNet::new(
            seed,
            LinkConfig {
                latency: Duration::from_millis(30),
                jitter: Duration::from_millis(80),
                loss: 0.2,
                duplicate: 0.1,
            },
        );
        net.add_node(config(seed * 2));
        net.add_node(config(seed * 2 + 1));
        let a = dial(&mut net, 0, 1, Transport::Udp);
        assert!(
            net.run_until(Duration::from_secs(20), |n| incoming(n, 1).is_some()),
            "seed {seed}: never rang"
        );
        let b = incoming(&net, 1).unwrap();
        net.command(
            1,
            Command::Answer {
                call: b,
                media_port: 41000,
                record: None,
            },
        );
        assert!(
            net.run_until(Duration::from_secs(20), |n| connected(n, 0)),
            "seed {seed}: never connected"
        );
        net.command(0, Command::Hangup { call: a });
        assert!(
            net.run_until(Duration::from_secs(40), |n| ended(n, 0).is_some()
                && ended(n, 1).is_some()),
            "seed {seed}: did not end cleanly"
        );
        assert!(ended(&net, 1).unwrap().was_connected, "seed {seed}");
    }
}

#[test]
fn silent_call_is_ended_after_the_media_timeout() {
    let mut net = two_phones(LinkConfig::default());
    let (a, _) = establish(&mut net, Transport::Udp);
    // Only the caller sends: the callee hears it, the caller hears nothing.
    net.attach_media(0, a, Some(440.0));
    net.run_for(Duration::from_secs(40));
    let reason = ended(&net, 0).expect("caller ended the silent call");
    assert_eq!(reason.text, "no media received for 30 s");
    assert_eq!(ended(&net, 1).unwrap().by, Party::Remote);
}

#[test]
fn same_seed_same_bytes() {
    let run = || {
        let mut net = two_phones(LinkConfig {
            jitter: Duration::from_millis(50),
            loss: 0.1,
            ..LinkConfig::default()
        });
        let (a, _) = establish(&mut net, Transport::Udp);
        net.command(0, Command::Hangup { call: a });
        net.run_for(Duration::from_secs(40));
        net.trace
            .iter()
            .map(|(t, _, _, d)| (*t, d.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn large_request_moves_from_udp_to_tcp() {
    let mut net = two_phones(LinkConfig::default());
    let destination = net.address(1, Transport::Udp).unwrap();
    let long_name = "x".repeat(1400);
    net.command(
        0,
        Command::Dial {
            call: CallId::new(),
            request: DialRequest {
                target: Uri::parse(&format!("sip:bob@{}", destination.address)).unwrap(),
                from: NameAddr::parse(&format!("\"{long_name}\" <sip:alice@127.0.0.1>")).unwrap(),
                destination,
                route: None,
                credentials: None,
                media_port: 40000,
                record: None,
            },
        },
    );
    assert!(net.run_until(Duration::from_secs(5), |n| incoming(n, 1).is_some()));
    let (_, _, to, data) = &net.trace[0];
    assert!(data.starts_with(b"INVITE "));
    assert_eq!(to.transport, Transport::Tcp);
    assert!(String::from_utf8_lossy(data).contains("SIP/2.0/TCP"));
}

#[test]
fn unknown_dialog_requests_get_481_and_bad_requests_400() {
    let mut net = two_phones(LinkConfig::default());
    let from = net.address(0, Transport::Udp).unwrap();
    let bye = "BYE sip:bob@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKzzz\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.2>;tag=2\r\nCall-ID: nope\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n";
    net.input(
        1,
        Input::Datagram {
            source: from,
            data: bye.as_bytes().to_vec(),
        },
    );
    let no_cseq = "OPTIONS sip:bob@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKyyy\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.2>\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";
    net.input(
        1,
        Input::Datagram {
            source: from,
            data: no_cseq.as_bytes().to_vec(),
        },
    );
    let replies: Vec<String> = net
        .trace
        .iter()
        .map(|(_, _, _, d)| {
            String::from_utf8_lossy(d)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(replies[0], "SIP/2.0 481 Call/Transaction Does Not Exist");
    assert!(replies[1].starts_with("SIP/2.0 400 Bad Request (missing mandatory header CSeq"));
}

/// A registrar played by the test: challenges with digest (SHA-256 and MD5), checks the
/// answer against `password`, grants `expires` seconds.
struct TestRegistrar {
    password: &'static str,
    expires: u32,
    registers: Vec<(Duration, Message)>,
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
                Output::Media { .. } | Output::Playback { .. } => {}
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
    let start = Instant::now();
    let mut engine = registering_engine(start);
    let mut registrar = TestRegistrar {
        password: "secret",
        expires: 120,
        registers: Vec::new(),
    };
    engine.handle_input(
        start,
        Input::Command(Command::Register {
            account: AccountId(1),
            config: account(Transport::Udp, "secret"),
        }),
    );
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
    let start = Instant::now();
    let mut engine = registering_engine(start);
    let mut registrar = TestRegistrar {
        password: "secret",
        expires: 120,
        registers: Vec::new(),
    };
    engine.handle_input(
        start,
        Input::Command(Command::Register {
            account: AccountId(1),
            config: account(Transport::Udp, "guess"),
        }),
    );
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
    let start = Instant::now();
    let mut engine = registering_engine(start);
    let mut registrar = TestRegistrar {
        password: "secret",
        expires: 3600,
        registers: Vec::new(),
    };
    engine.handle_input(
        start,
        Input::Command(Command::Register {
            account: AccountId(1),
            config: account(Transport::Tcp, "secret"),
        }),
    );
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

/// Builds a request inside the call's dialog as the callee (node 1) would send it, from what
/// the trace shows of the INVITE and its 200.
fn callee_request(net: &SimNet, method: &str, cseq: u32, body: &str) -> Vec<u8> {
    let invite = net
        .trace
        .iter()
        .map(|(_, _, _, d)| Message::parse(d).unwrap())
        .find(|m| m.method() == Some(&Method::Invite))
        .unwrap();
    let ok = net
        .trace
        .iter()
        .map(|(_, _, _, d)| Message::parse(d).unwrap())
        .find(|m| m.status() == Some(200))
        .unwrap();
    let caller_contact = invite.contacts().unwrap()[0].uri.to_string();
    let content = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_owned()
    };
    format!(
        "{method} {caller_contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK{method}{cseq}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:bob@127.0.0.2:5060>\r\n{content}Content-Length: {}\r\n\r\n{body}",
        ok.headers.get("To").unwrap(),
        ok.headers.get("From").unwrap(),
        ok.call_id().unwrap(),
        body.len()
    )
    .into_bytes()
}

fn callee_source(net: &SimNet) -> Destination {
    net.address(1, Transport::Udp).unwrap()
}

#[test]
fn offerless_reinvite_gets_an_offer_in_200_and_the_answer_from_ack() {
    let mut net = two_phones(LinkConfig::default());
    establish(&mut net, Transport::Udp);
    net.take_events(0);
    let reinvite = callee_request(&net, "INVITE", 100, "");
    net.input(
        0,
        Input::Datagram {
            source: callee_source(&net),
            data: reinvite,
        },
    );
    let offer = net
        .trace
        .iter()
        .rev()
        .find(|(_, _, _, d)| d.starts_with(b"SIP/2.0 200"))
        .map(|(_, _, _, d)| Message::parse(d).unwrap())
        .unwrap();
    assert_eq!(offer.cseq().unwrap().number, 100);
    let sdp = String::from_utf8(offer.body.clone()).unwrap();
    assert!(sdp.contains("m=audio 40000"), "{sdp}");
    // Without the ACK the 2xx is retransmitted.
    net.run_for(Duration::from_millis(600));
    let retransmitted = net
        .trace
        .iter()
        .filter(|(_, _, _, d)| {
            d.starts_with(b"SIP/2.0 200") && String::from_utf8_lossy(d).contains("CSeq: 100 INVITE")
        })
        .count();
    assert!(retransmitted >= 2, "2xx not retransmitted before the ACK");
    let answer = "v=0\r\no=bob 1 2 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 42000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n";
    let ack = callee_request(&net, "ACK", 100, answer);
    net.input(
        0,
        Input::Datagram {
            source: callee_source(&net),
            data: ack,
        },
    );
    let media = net.events(0).iter().find_map(|e| match e {
        Event::Media { negotiated, .. } => Some(negotiated.clone()),
        _ => None,
    });
    let media = media.expect("answer in ACK applied");
    assert_eq!(media.remote_rtp_port, 42000);
    assert!(
        media.remote_on_hold,
        "the peer answered sendonly: it holds us"
    );
    let sent_before = net.trace.len();
    net.run_for(Duration::from_secs(5));
    assert_eq!(
        net.trace.len(),
        sent_before,
        "retransmissions stop after the ACK"
    );
}

#[test]
fn update_with_sdp_is_answered_and_out_of_dialog_update_gets_481() {
    let mut net = two_phones(LinkConfig::default());
    establish(&mut net, Transport::Udp);
    net.take_events(0);
    let offer = "v=0\r\no=bob 1 3 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 43000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    let update = callee_request(&net, "UPDATE", 101, offer);
    net.input(
        0,
        Input::Datagram {
            source: callee_source(&net),
            data: update,
        },
    );
    let reply = Message::parse(&net.trace.last().unwrap().3).unwrap();
    assert_eq!(reply.status(), Some(200));
    assert!(String::from_utf8_lossy(&reply.body).contains("PCMA/8000"));
    assert!(net.events(0).iter().any(
        |e| matches!(e, Event::Media { negotiated, .. } if negotiated.remote_rtp_port == 43000)
    ));
    let mut stray = String::from_utf8(callee_request(&net, "UPDATE", 102, "")).unwrap();
    stray = stray.replace("Call-ID: ", "Call-ID: other-");
    net.input(
        0,
        Input::Datagram {
            source: callee_source(&net),
            data: stray.into_bytes(),
        },
    );
    let reply = Message::parse(&net.trace.last().unwrap().3).unwrap();
    assert_eq!(reply.status(), Some(481));
}

#[test]
fn in_dialog_options_and_out_of_order_cseq() {
    let mut net = two_phones(LinkConfig::default());
    establish(&mut net, Transport::Udp);
    let options = callee_request(&net, "OPTIONS", 50, "");
    net.input(
        0,
        Input::Datagram {
            source: callee_source(&net),
            data: options,
        },
    );
    let reply = Message::parse(&net.trace.last().unwrap().3).unwrap();
    assert_eq!(reply.status(), Some(200));
    assert!(reply.headers.get("Allow").unwrap().contains("UPDATE"));
    let update = callee_request(&net, "UPDATE", 60, "");
    net.input(
        0,
        Input::Datagram {
            source: callee_source(&net),
            data: update,
        },
    );
    let late = callee_request(&net, "UPDATE", 59, "");
    net.input(
        0,
        Input::Datagram {
            source: callee_source(&net),
            data: late,
        },
    );
    let reply = Message::parse(&net.trace.last().unwrap().3).unwrap();
    assert_eq!(
        reply.status(),
        Some(500),
        "a lower CSeq than the last one is out of order"
    );
}

#[test]
fn hold_uses_update_when_configured_and_the_peer_allows_it() {
    let mut net = SimNet::new(2, LinkConfig::default());
    net.add_node(EngineConfig {
        modify_with_update: true,
        ..config(30)
    });
    net.add_node(config(31));
    let (a, b) = establish(&mut net, Transport::Udp);
    net.command(0, Command::Hold { call: a });
    assert!(net.run_until(Duration::from_secs(5), |n| n.events(1).iter().any(|e| matches!(e, Event::CallState { call, state: CallState::Connected { remote_hold: true, .. } } if *call == b))));
    assert!(
        net.run_until(Duration::from_secs(5), |n| n.events(0).iter().any(
            |e| matches!(
                e,
                Event::CallState {
                    state: CallState::Connected {
                        local_hold: true,
                        ..
                    },
                    ..
                }
            )
        ))
    );
    let methods: Vec<String> = net
        .trace
        .iter()
        .filter_map(|(_, _, _, d)| Message::parse(d).ok())
        .filter_map(|m| m.method().map(|m| m.to_string()))
        .collect();
    assert_eq!(methods, vec!["INVITE", "ACK", "UPDATE"]);
}

#[test]
fn offerless_reinvite_sent_takes_the_offer_from_200_and_answers_in_ack() {
    let mut net = two_phones(LinkConfig::default());
    let (a, _) = establish(&mut net, Transport::Udp);
    net.take_events(0);
    net.command(0, Command::RequestOffer { call: a });
    net.run_for(Duration::from_secs(2));
    let messages: Vec<Message> = net
        .trace
        .iter()
        .filter_map(|(_, _, _, d)| Message::parse(d).ok())
        .collect();
    let reinvite = messages
        .iter()
        .filter(|m| m.method() == Some(&Method::Invite))
        .nth(1)
        .expect("a second INVITE");
    assert!(reinvite.body.is_empty());
    let ack = messages
        .iter()
        .filter(|m| m.method() == Some(&Method::Ack))
        .nth(1)
        .expect("a second ACK");
    assert!(String::from_utf8_lossy(&ack.body).contains("m=audio 40000"));
    assert!(net.events(0).iter().any(
        |e| matches!(e, Event::Media { negotiated, .. } if negotiated.remote_rtp_port == 41000)
    ));
    assert!(net.events(1).iter().any(
        |e| matches!(e, Event::Media { negotiated, .. } if negotiated.remote_rtp_port == 40000)
    ));
}

mod media {
    use super::*;
    use crate::media::srtp::SrtpPolicy;
    use crate::media::tone::{goertzel_amplitude, rms};
    use crate::media::{FRAME_SAMPLES, SAMPLE_RATE};
    use crate::sdp::Codec;

    fn phones(link: LinkConfig, codec: Codec, srtp: SrtpPolicy) -> SimNet {
        let mut net = SimNet::new(7, link);
        for seed in [40, 41] {
            net.add_node(EngineConfig {
                codecs: vec![codec],
                srtp,
                // Deterministic keys keep the run reproducible; real use takes the OS CSPRNG.
                key_source: KeySource::new(move |buffer: &mut [u8]| {
                    for (i, b) in buffer.iter_mut().enumerate() {
                        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
                    }
                }),
                ..config(seed.into())
            });
        }
        net
    }

    /// A calls B; A sends 1 kHz, B sends 440 Hz; returns both call ids.
    fn talk(net: &mut SimNet) -> (CallId, CallId) {
        let (a, b) = establish(net, Transport::Udp);
        net.attach_media(0, a, Some(1000.0));
        net.attach_media(1, b, Some(440.0));
        (a, b)
    }

    fn tail(samples: &[f32], seconds: f32) -> &[f32] {
        let n = (seconds * SAMPLE_RATE as f32) as usize;
        &samples[samples.len().saturating_sub(n)..]
    }

    #[test]
    fn every_codec_carries_audio_both_ways() {
        for codec in [Codec::Pcmu, Codec::Pcma, Codec::Opus { inband_fec: true }] {
            let mut net = phones(LinkConfig::default(), codec, SrtpPolicy::Off);
            let (a, b) = talk(&mut net);
            net.run_for(Duration::from_secs(2));
            let at_a = tail(net.heard(0, a), 1.0);
            let at_b = tail(net.heard(1, b), 1.0);
            assert!(
                goertzel_amplitude(at_a, SAMPLE_RATE, 440.0) > 0.3,
                "{codec:?}: A hears B"
            );
            assert!(
                goertzel_amplitude(at_a, SAMPLE_RATE, 1000.0) < 0.05,
                "{codec:?}: no echo of A"
            );
            assert!(
                goertzel_amplitude(at_b, SAMPLE_RATE, 1000.0) > 0.3,
                "{codec:?}: B hears A"
            );
        }
    }

    #[test]
    fn srtp_mandatory_protects_the_audio() {
        let mut net = phones(LinkConfig::default(), Codec::Pcmu, SrtpPolicy::Mandatory);
        let (a, _) = talk(&mut net);
        net.run_for(Duration::from_secs(2));
        let invite = String::from_utf8_lossy(&net.trace[0].3).into_owned();
        assert!(
            invite.contains("RTP/SAVP") && invite.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80")
        );
        assert!(goertzel_amplitude(tail(net.heard(0, a), 1.0), SAMPLE_RATE, 440.0) > 0.3);
        let stats = net.engine(0).unwrap().media_stats(a).unwrap();
        assert!(stats.srtp && stats.srtp_failures == 0 && stats.packets_received > 50);
    }

    fn noticing_phones(skip_for_record_aware: bool) -> SimNet {
        use crate::recording::notice::{NoticeConfig, WarningTone};
        let announcement: std::sync::Arc<[f32]> = (0..SAMPLE_RATE as usize)
            .map(|i| 0.3 * (core::f32::consts::TAU * 500.0 * i as f32 / SAMPLE_RATE as f32).sin())
            .collect();
        let mut net = SimNet::new(7, LinkConfig::default());
        net.add_node(EngineConfig {
            codecs: vec![Codec::Pcmu],
            notice: NoticeConfig {
                announcement: Some(announcement),
                tone: Some(WarningTone {
                    interval: Duration::from_secs(3),
                    ..WarningTone::default()
                }),
                skip_for_record_aware,
                local_cues: true,
            },
            ..config(40)
        });
        net.add_node(EngineConfig {
            codecs: vec![Codec::Pcmu],
            ..config(41)
        });
        net
    }

    /// Starts recording A's call and returns, in seconds, where A's and B's heard audio
    /// stood when the recorder answered.
    fn record_until_recording(net: &mut SimNet, a: CallId, b: CallId) -> (NodeId, f64, f64) {
        let recorder = net.add_recorder(vec![CodecKind::Pcmu]);
        let request = to_recorder(net, recorder);
        start_recording(net, a, request);
        assert!(net.run_until(Duration::from_secs(5), |n| {
            recording_states(n, 0).contains(&RecordingState::Recording)
        }));
        let seconds = |samples: usize| samples as f64 / f64::from(SAMPLE_RATE);
        let at_a = seconds(net.heard(0, a).len());
        let at_b = seconds(net.heard(1, b).len());
        (recorder, at_a, at_b)
    }

    fn level(audio: &[f32], from: f64, to: f64, frequency: f32) -> f32 {
        let a = (from * f64::from(SAMPLE_RATE)) as usize;
        let b = ((to * f64::from(SAMPLE_RATE)) as usize).min(audio.len());
        goertzel_amplitude(audio.get(a..b).unwrap_or(&[]), SAMPLE_RATE, frequency)
    }

    /// RFC 7245 3.4: the far end hears the announcement when recording starts, then the
    /// warning tone every interval; the recorder's stream of our side has them too; our own
    /// user hears a rising cue. Pausing stops the notice; resuming announces again.
    #[test]
    fn the_far_end_and_the_recorder_hear_the_notice_and_we_hear_the_cue() {
        let mut net = noticing_phones(false);
        let (a, b) = talk(&mut net);
        net.run_for(Duration::from_secs(1));
        let (recorder, at_a, at_b) = record_until_recording(&mut net, a, b);
        net.run_for(Duration::from_secs(6));

        let heard_by_b = net.heard(1, b);
        assert!(
            level(heard_by_b, at_b + 0.2, at_b + 0.9, 500.0) > 0.2,
            "announcement"
        );
        assert!(level(heard_by_b, at_b + 0.2, at_b + 0.9, 1400.0) < 0.02);
        for start in [1.0, 4.0] {
            let tone = level(heard_by_b, at_b + start + 0.15, at_b + start + 0.45, 1400.0);
            assert!(tone > 0.07, "tone at +{start} s: {tone}");
        }
        assert!(
            level(heard_by_b, at_b + 1.8, at_b + 3.9, 1400.0) < 0.01,
            "quiet between"
        );
        assert!(
            level(heard_by_b, at_b + 1.8, at_b + 3.9, 1000.0) > 0.3,
            "A still heard"
        );

        let ours = net.recorder(recorder).unwrap().recordings[0].audio("1");
        assert!(
            level(ours, 0.2, 0.9, 500.0) > 0.2,
            "the recorder has the announcement"
        );
        assert!(level(ours, 4.15, 4.45, 1400.0) > 0.07, "and the tone");
        let theirs = net.recorder(recorder).unwrap().recordings[0].audio("2");
        assert!(
            level(theirs, 0.2, 5.0, 1400.0) < 0.01,
            "not on the far end's stream"
        );

        let heard_by_a = net.heard(0, a);
        assert!(
            level(heard_by_a, at_a, at_a + 0.09, 660.0) > 0.1,
            "the cue rises"
        );
        assert!(level(heard_by_a, at_a + 0.15, at_a + 0.27, 990.0) > 0.1);

        net.command(0, Command::PauseRecording { call: a });
        net.run_for(Duration::from_secs(1));
        let paused_at = net.heard(1, b).len() as f64 / f64::from(SAMPLE_RATE);
        net.run_for(Duration::from_secs(4));
        let heard_by_b = net.heard(1, b);
        assert!(
            level(heard_by_b, paused_at, paused_at + 4.0, 1400.0) < 0.01,
            "paused"
        );
        assert!(level(heard_by_b, paused_at, paused_at + 4.0, 500.0) < 0.01);
    }

    #[test]
    fn a_record_aware_far_end_gets_no_audio_notice_when_the_setting_says_so() {
        let mut net = noticing_phones(true);
        let (a, b) = talk(&mut net);
        net.run_for(Duration::from_secs(1));
        let (_, at_a, at_b) = record_until_recording(&mut net, a, b);
        net.run_for(Duration::from_secs(5));
        let heard_by_b = net.heard(1, b);
        assert!(level(heard_by_b, at_b, at_b + 5.0, 500.0) < 0.01);
        assert!(level(heard_by_b, at_b, at_b + 5.0, 1400.0) < 0.01);
        // Our own user still hears the cue.
        assert!(level(net.heard(0, a), at_a, at_a + 0.09, 660.0) > 0.1);
    }

    /// The SDES master keys (`inline:`) in a message's body.
    fn inline_keys(message: &Message) -> Vec<String> {
        String::from_utf8_lossy(&message.body)
            .split("inline:")
            .skip(1)
            .map(|rest| rest.chars().take_while(|c| !c.is_whitespace()).collect())
            .collect()
    }

    /// RFC 7866 12.2: the recording session must not reuse the call's SRTP keys, or the
    /// recorder could decrypt the call itself, and each recorded stream gets its own.
    #[test]
    fn the_recording_gets_srtp_keys_of_its_own_never_the_calls() {
        let mut net = SimNet::new(7, LinkConfig::default());
        for seed in [40, 41] {
            // The real key source (the OS CSPRNG), as a user's phone has it.
            net.add_node(EngineConfig {
                codecs: vec![Codec::Pcmu],
                srtp: SrtpPolicy::Mandatory,
                ..config(seed)
            });
        }
        let recorder = net.add_recorder(vec![CodecKind::Pcmu]);
        let (a, _) = talk(&mut net);
        let mut request = to_recorder(&net, recorder);
        request.srtp = true;
        start_recording(&mut net, a, request);
        net.run_for(Duration::from_secs(3));

        let messages: Vec<Message> = net
            .trace
            .iter()
            .filter_map(|(_, _, _, data)| Message::parse(data).ok())
            .collect();
        let recording_call_id = messages
            .iter()
            .find(|m| {
                m.headers
                    .get("Require")
                    .is_some_and(|r| r.contains("siprec"))
            })
            .and_then(|m| m.headers.get("Call-ID"))
            .expect("a recording session was offered")
            .to_owned();
        let keys_of = |recording: bool| -> Vec<String> {
            messages
                .iter()
                .filter(|m| {
                    (m.headers.get("Call-ID") == Some(recording_call_id.as_str())) == recording
                })
                .flat_map(inline_keys)
                .collect()
        };
        let call_keys = keys_of(false);
        let recording_keys = keys_of(true);
        assert!(call_keys.len() >= 2, "{call_keys:?}");
        assert!(recording_keys.len() >= 2, "{recording_keys:?}");
        for key in &recording_keys {
            assert!(
                !call_keys.contains(key),
                "the recording reuses a call key {key}"
            );
        }
        let ours: std::collections::HashSet<_> = messages
            .iter()
            .filter(|m| m.is_request())
            .filter(|m| {
                m.headers
                    .get("Require")
                    .is_some_and(|r| r.contains("siprec"))
            })
            .flat_map(inline_keys)
            .collect();
        assert_eq!(ours.len(), 2, "one key per recorded stream: {ours:?}");
        // And the recorder, holding only its own keys, recorded both voices.
        let recording = &net.recorder(recorder).unwrap().recordings[0];
        assert!(amplitude_at(recording.audio("1"), 1.5, 2.5, 1000.0) > 0.3);
        assert!(amplitude_at(recording.audio("2"), 1.5, 2.5, 440.0) > 0.3);
    }

    #[test]
    fn srtp_survives_hold_and_resume_with_the_same_keys() {
        let mut net = phones(
            LinkConfig::default(),
            Codec::Opus { inband_fec: true },
            SrtpPolicy::Mandatory,
        );
        let (a, b) = talk(&mut net);
        net.run_for(Duration::from_secs(1));
        net.command(0, Command::Hold { call: a });
        net.run_for(Duration::from_secs(1));
        net.command(0, Command::Resume { call: a });
        net.run_for(Duration::from_secs(2));
        assert!(goertzel_amplitude(tail(net.heard(0, a), 1.0), SAMPLE_RATE, 440.0) > 0.3);
        assert!(goertzel_amplitude(tail(net.heard(1, b), 1.0), SAMPLE_RATE, 1000.0) > 0.3);
        for (node, call) in [(0, a), (1, b)] {
            let stats = net.engine(node).unwrap().media_stats(call).unwrap();
            assert!(stats.srtp);
            assert_eq!(
                stats.srtp_failures, 0,
                "node {node}: replays or auth failures after re-INVITE"
            );
        }
    }

    #[test]
    fn five_percent_loss_and_40_ms_jitter_leave_no_audible_gap() {
        let link = LinkConfig {
            latency: Duration::from_millis(30),
            jitter: Duration::from_millis(40),
            loss: 0.05,
            duplicate: 0.0,
        };
        let mut net = phones(link, Codec::Opus { inband_fec: true }, SrtpPolicy::Off);
        let (a, b) = talk(&mut net);
        net.run_for(Duration::from_secs(20));
        // After the first second, every 20 ms frame B plays carries sound: losses are
        // concealed, never played as silence.
        let heard = &net.heard(1, b)[SAMPLE_RATE as usize..];
        let silent_frames = heard
            .chunks(FRAME_SAMPLES)
            .filter(|frame| rms(frame) < 0.05)
            .count();
        assert_eq!(silent_frames, 0);
        assert!(goertzel_amplitude(tail(heard, 5.0), SAMPLE_RATE, 1000.0) > 0.3);
        let stats = net.engine(1).unwrap().media_stats(b).unwrap();
        assert!(
            (2.0..10.0).contains(&stats.loss_percent),
            "loss {}",
            stats.loss_percent
        );
        assert!(stats.jitter_ms > 5.0, "jitter {}", stats.jitter_ms);
        assert!(
            net.events(1)
                .iter()
                .any(|e| matches!(e, Event::MediaStats { stats, .. } if stats.packets_lost > 0))
        );
        let _ = a;
    }

    #[test]
    fn dtmf_digits_arrive_once_each_in_order() {
        let mut net = phones(LinkConfig::default(), Codec::Pcmu, SrtpPolicy::Off);
        let (a, _) = talk(&mut net);
        net.run_for(Duration::from_millis(200));
        net.command(
            0,
            Command::SendDtmf {
                call: a,
                digits: "19*#".into(),
            },
        );
        net.run_for(Duration::from_secs(2));
        let digits: String = net
            .events(1)
            .iter()
            .filter_map(|e| match e {
                Event::Dtmf { digit, .. } => Some(*digit),
                _ => None,
            })
            .collect();
        assert_eq!(digits, "19*#");
    }

    #[test]
    fn hold_stops_the_held_side_and_mute_sends_silence() {
        let mut net = phones(LinkConfig::default(), Codec::Pcma, SrtpPolicy::Off);
        let (a, b) = talk(&mut net);
        net.run_for(Duration::from_secs(1));
        net.command(
            0,
            Command::Mute {
                call: a,
                muted: true,
            },
        );
        net.run_for(Duration::from_secs(1));
        assert!(
            rms(tail(net.heard(1, b), 0.5)) < 0.01,
            "B hears silence from muted A"
        );
        net.command(
            0,
            Command::Mute {
                call: a,
                muted: false,
            },
        );
        net.run_for(Duration::from_secs(1));
        assert!(goertzel_amplitude(tail(net.heard(1, b), 0.5), SAMPLE_RATE, 1000.0) > 0.3);
        // A holds: A sends (sendonly) but B may not, so A hears nothing.
        net.command(0, Command::Hold { call: a });
        net.run_for(Duration::from_secs(1));
        assert!(
            rms(tail(net.heard(0, a), 0.5)) < 0.01,
            "held: B no longer sends"
        );
        net.command(0, Command::Resume { call: a });
        net.run_for(Duration::from_secs(1));
        assert!(goertzel_amplitude(tail(net.heard(0, a), 0.5), SAMPLE_RATE, 440.0) > 0.3);
    }
}

#[test]
fn far_end_recording_and_its_preference_are_reported() {
    let mut net = two_phones(LinkConfig::default());
    let (a, _) = establish(&mut net, Transport::Udp);
    net.take_events(0);
    let offer = "v=0\r\no=bob 1 4 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\na=record:on\r\na=recordpref:off\r\nm=audio 43000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let update = callee_request(&net, "UPDATE", 70, offer);
    net.input(
        0,
        Input::Datagram {
            source: callee_source(&net),
            data: update,
        },
    );
    assert!(net.events(0).contains(&Event::FarEndRecording {
        call: a,
        recording: true
    }));
    assert!(net.events(0).contains(&Event::RecordingPreference {
        call: a,
        preference: "off".into()
    }));
    // The same attributes again are no news.
    net.take_events(0);
    let again = callee_request(&net, "UPDATE", 71, &offer.replace("1 4 IN", "1 5 IN"));
    net.input(
        0,
        Input::Datagram {
            source: callee_source(&net),
            data: again,
        },
    );
    assert!(!net.events(0).iter().any(|e| matches!(
        e,
        Event::FarEndRecording { .. } | Event::RecordingPreference { .. }
    )));
}

#[test]
fn a_record_aware_peer_is_told_when_recording_state_changes() {
    let mut net = two_phones(LinkConfig::default());
    let (a, b) = establish(&mut net, Transport::Udp);
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    // A recorder that never answers: the recording fails after Timer B, and the far end,
    // which said Supported: record-aware, gets a re-INVITE with a=record:off.
    net.command(
        0,
        Command::StartRecording {
            call: a,
            recording: CallId::new(),
            request: RecordingRequest {
                srs: Uri::parse("sip:srs@127.0.0.9").unwrap(),
                destination: Destination::new(Transport::Udp, "127.0.0.9:5060".parse().unwrap()),
                media_port: 42000,
                secondary: Some((
                    Uri::parse("sip:srs2@127.0.0.10").unwrap(),
                    Destination::new(Transport::Udp, "127.0.0.10:5060".parse().unwrap()),
                )),
                mandatory: false,
                mode: RecordingMode::Separate,
                srtp: false,
                credentials: None,
            },
        },
    );
    net.run_for(Duration::from_secs(40));
    let states: Vec<RecordingState> = net
        .events(0)
        .iter()
        .filter_map(|e| match e {
            Event::Recording { state, .. } => Some(state.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        states[..2],
        [
            RecordingState::Starting,
            RecordingState::Retrying {
                reason: "the recorder did not answer".into(),
                attempt: 1,
                in_seconds: 2
            }
        ]
    );
    let rs_invite = net
        .trace
        .iter()
        .map(|(_, _, _, d)| String::from_utf8_lossy(d).into_owned())
        .find(|t| t.starts_with("INVITE sip:srs@"))
        .expect("the recording INVITE");
    assert!(rs_invite.contains("Require: siprec") && rs_invite.contains(";+sip.src"));
    assert!(
        !rs_invite.contains("record-aware"),
        "a recording session is not a call"
    );
    let told = net.trace.iter().any(|(_, _, to, d)| {
        to.address.to_string() == "127.0.0.2:5060"
            && d.starts_with(b"INVITE ")
            && String::from_utf8_lossy(d).contains("a=record:off")
    });
    assert!(told, "the far end was not told");
    let first_invite = String::from_utf8_lossy(&net.trace[0].3).into_owned();
    assert!(first_invite.contains("Supported: record-aware") && !first_invite.contains("siprec"));
    // After the backoff the secondary recorder is tried, while the call goes on.
    net.run_for(Duration::from_secs(5));
    assert!(
        net.trace
            .iter()
            .any(|(_, _, _, d)| d.starts_with(b"INVITE sip:srs2@127.0.0.10"))
    );
    assert_eq!(net.engine(0).unwrap().active_calls(), 1);
    // Hanging up ends the attempts too.
    net.command(0, Command::Hangup { call: a });
    let hung_up_at = net.elapsed();
    net.run_for(Duration::from_secs(100));
    let last = net.events(0).iter().rev().find_map(|e| match e {
        Event::Recording { state, .. } => Some(state.clone()),
        _ => None,
    });
    assert_eq!(last, Some(RecordingState::Off));
    let attempts_after = net
        .trace
        .iter()
        .filter(|(t, _, _, d)| {
            *t > hung_up_at + Duration::from_secs(1) && d.starts_with(b"INVITE sip:srs")
        })
        .count();
    assert_eq!(attempts_after, 0, "recording attempts after the hang-up");
}

#[test]
fn a_mandatory_recording_that_stays_down_ends_the_call() {
    let mut net = two_phones(LinkConfig::default());
    let (a, b) = establish(&mut net, Transport::Udp);
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    net.command(
        0,
        Command::StartRecording {
            call: a,
            recording: CallId::new(),
            request: RecordingRequest {
                srs: Uri::parse("sip:srs@127.0.0.9").unwrap(),
                destination: Destination::new(Transport::Udp, "127.0.0.9:5060".parse().unwrap()),
                media_port: 42000,
                secondary: None,
                mandatory: true,
                mode: RecordingMode::Separate,
                srtp: false,
                credentials: None,
            },
        },
    );
    // Timer B fails the first attempt at 32 s; the grace of 10 s runs out at 42 s while the
    // retries keep failing.
    net.run_for(Duration::from_secs(41));
    assert!(ended(&net, 0).is_none(), "ended before the grace ran out");
    net.run_for(Duration::from_secs(2));
    let reason = ended(&net, 0).expect("the call was ended");
    assert_eq!(
        reason.text,
        "recording is mandatory and the recorder was unreachable for 10 s"
    );
    assert!(
        net.run_until(Duration::from_secs(5), |n| ended(n, 1).is_some()),
        "the far end got a BYE"
    );
}

/// A recording request towards the simulated recorder `recorder` (TCP, as the CLI does).
fn to_recorder(net: &SimNet, recorder: NodeId) -> RecordingRequest {
    let destination = net.recorder_address(recorder, Transport::Tcp).unwrap();
    RecordingRequest {
        srs: Uri::parse(&format!("sip:srs@{};transport=tcp", destination.address)).unwrap(),
        destination,
        media_port: 42000,
        secondary: None,
        mandatory: false,
        mode: RecordingMode::Separate,
        srtp: false,
        credentials: None,
    }
}

/// Node 0 starts recording `call` as `request` says.
fn start_recording(net: &mut SimNet, call: CallId, request: RecordingRequest) {
    net.command(
        0,
        Command::StartRecording {
            call,
            recording: CallId::new(),
            request,
        },
    );
}

fn recording_states(net: &SimNet, node: NodeId) -> Vec<RecordingState> {
    net.events(node)
        .iter()
        .filter_map(|e| match e {
            Event::Recording { state, .. } => Some(state.clone()),
            _ => None,
        })
        .collect()
}

fn amplitude_at(audio: &[f32], from_s: f64, to_s: f64, frequency: f32) -> f32 {
    let rate = crate::media::SAMPLE_RATE;
    let a = (from_s * f64::from(rate)) as usize;
    let b = ((to_s * f64::from(rate)) as usize).min(audio.len());
    crate::media::tone::goertzel_amplitude(audio.get(a..b).unwrap_or(&[]), rate, frequency)
}

/// Records an Opus call (1 kHz from us, 440 Hz from the far end) to a recorder with the given
/// codec preference and mode; returns the net and our call after hang-up.
fn recorded_call(codecs: Vec<CodecKind>, mode: RecordingMode) -> (SimNet, NodeId) {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(codecs);
    let (a, b) = establish(&mut net, Transport::Udp);
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    let mut request = to_recorder(&net, recorder);
    request.mode = mode;
    start_recording(&mut net, a, request);
    net.run_for(Duration::from_secs(3));
    net.command(0, Command::Hangup { call: a });
    net.run_for(Duration::from_secs(2));
    (net, recorder)
}

#[test]
fn the_recorder_gets_the_calls_packets_when_it_takes_the_calls_codec() {
    let (net, recorder) = recorded_call(Vec::new(), RecordingMode::Separate);
    let recording = &net.recorder(recorder).unwrap().recordings[0];
    assert_eq!(recording.codec("1"), Some(CodecKind::Opus));
    assert_eq!(recording.codec("2"), Some(CodecKind::Opus));
    let (local, remote) = (recording.audio("1"), recording.audio("2"));
    assert!(
        amplitude_at(local, 1.0, 2.5, 1000.0) > 0.2,
        "label 1 is our 1 kHz"
    );
    assert!(amplitude_at(local, 1.0, 2.5, 440.0) < 0.05);
    assert!(
        amplitude_at(remote, 1.0, 2.5, 440.0) > 0.2,
        "label 2 is their 440 Hz"
    );
    assert!(amplitude_at(remote, 1.0, 2.5, 1000.0) < 0.05);
    assert!(recording.ended);
    let states = recording_states(&net, 0);
    assert_eq!(
        states,
        vec![
            RecordingState::Starting,
            RecordingState::Recording,
            RecordingState::Off
        ]
    );
}

#[test]
fn the_call_is_transcoded_when_the_recorder_wants_another_codec() {
    let (net, recorder) = recorded_call(vec![CodecKind::Pcma], RecordingMode::Separate);
    let recording = &net.recorder(recorder).unwrap().recordings[0];
    assert_eq!(recording.codec("1"), Some(CodecKind::Pcma));
    assert_eq!(recording.codec("2"), Some(CodecKind::Pcma));
    let (local, remote) = (recording.audio("1"), recording.audio("2"));
    assert!(amplitude_at(local, 1.0, 2.5, 1000.0) > 0.2);
    assert!(amplitude_at(local, 1.0, 2.5, 440.0) < 0.05);
    assert!(amplitude_at(remote, 1.0, 2.5, 440.0) > 0.2);
    assert!(amplitude_at(remote, 1.0, 2.5, 1000.0) < 0.05);
}

#[test]
fn mixed_mode_sends_one_stream_with_both_voices() {
    let (net, recorder) = recorded_call(Vec::new(), RecordingMode::Mixed);
    let recording = &net.recorder(recorder).unwrap().recordings[0];
    assert_eq!(recording.streams.len(), 1);
    let mixed = recording.audio("1");
    assert!(amplitude_at(mixed, 1.0, 2.5, 1000.0) > 0.2);
    assert!(amplitude_at(mixed, 1.0, 2.5, 440.0) > 0.2);
    let metadata = crate::recording::metadata::parse(&recording.metadata[0]).unwrap();
    assert_eq!(metadata.streams.len(), 1);
    assert!(
        metadata
            .participant_stream_assocs
            .iter()
            .all(|a| a.send.len() == 1 && a.recv.len() == 1),
        "both participants send the mixed stream"
    );
}

#[test]
fn the_recorder_hears_of_hold_and_of_the_call_end_in_the_metadata() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    let (a, b) = establish(&mut net, Transport::Udp);
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    let request = to_recorder(&net, recorder);
    start_recording(&mut net, a, request);
    net.run_for(Duration::from_secs(1));
    net.command(0, Command::Hold { call: a });
    net.run_for(Duration::from_secs(1));
    net.command(0, Command::Resume { call: a });
    net.run_for(Duration::from_secs(1));
    net.command(0, Command::Hangup { call: a });
    net.run_for(Duration::from_secs(2));
    let recording = &net.recorder(recorder).unwrap().recordings[0];
    let versions: Vec<_> = recording
        .metadata
        .iter()
        .map(|xml| crate::recording::metadata::parse(xml).unwrap())
        .collect();
    assert_eq!(versions.len(), 4, "start, hold, resume, end");
    let sends = |m: &crate::recording::metadata::Metadata| {
        m.participant_stream_assocs
            .iter()
            .map(|a| a.send.len())
            .sum::<usize>()
    };
    assert_eq!(sends(&versions[0]), 2);
    assert_eq!(sends(&versions[1]), 0, "on hold nobody sends");
    assert_eq!(sends(&versions[2]), 2);
    // The same session and participants throughout, so the recorder can join the versions.
    assert!(
        versions
            .iter()
            .all(|m| m.sessions[0].id == versions[0].sessions[0].id)
    );
    let last = &versions[3];
    assert!(last.sessions[0].end_time.is_some());
    assert!(
        last.participant_session_assocs
            .iter()
            .all(|a| a.disassociate_time.is_some())
    );
    assert!(recording.ended);
    assert!(recording.pauses.is_empty(), "hold is not a recording pause");
}

#[test]
fn a_gap_while_the_recorder_was_down_is_in_the_next_recordings_metadata() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    let (a, b) = establish(&mut net, Transport::Udp);
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    net.recorder_mut(recorder).unwrap().down = true;
    let request = to_recorder(&net, recorder);
    start_recording(&mut net, a, request);
    // Timer B ends the first attempt; the recorder is back before the retry.
    net.run_for(Duration::from_secs(33));
    net.recorder_mut(recorder).unwrap().down = false;
    assert!(net.run_until(Duration::from_secs(10), |n| {
        recording_states(n, 0).contains(&RecordingState::RecordingWithGaps)
    }));
    net.run_for(Duration::from_secs(1));
    net.command(0, Command::Hangup { call: a });
    net.run_for(Duration::from_secs(2));
    let states = recording_states(&net, 0);
    assert!(matches!(
        states.get(1),
        Some(RecordingState::Retrying { reason, attempt: 1, .. }) if reason.contains("did not answer")
    ));
    let recording = &net.recorder(recorder).unwrap().recordings[0];
    let first = crate::recording::metadata::parse(&recording.metadata[0]).unwrap();
    assert_eq!(first.gaps.len(), 1);
    assert!(first.gaps[0].reason.contains("did not answer"));
    let last = crate::recording::metadata::parse(recording.metadata.last().unwrap()).unwrap();
    assert!(
        last.gaps[0].to.is_some(),
        "closed when recording came back: {last:?}"
    );
    let gaps = net.events(0).iter().find_map(|e| match e {
        Event::RecordingGaps { gaps, .. } => Some(gaps.clone()),
        _ => None,
    });
    assert_eq!(gaps.map(|g| g.len()), Some(1), "the history hears of it");
}

fn dial_recorded(net: &mut SimNet, recorder: NodeId, mandatory: bool) -> CallId {
    let destination = net.address(1, Transport::Udp).unwrap();
    let mut request = to_recorder(net, recorder);
    request.mandatory = mandatory;
    let call = CallId::new();
    net.command(
        0,
        Command::Dial {
            call,
            request: DialRequest {
                target: Uri::parse(&format!("sip:bob@{}", destination.address)).unwrap(),
                from: NameAddr::parse("\"Alice\" <sip:alice@127.0.0.1>").unwrap(),
                destination,
                route: None,
                credentials: None,
                media_port: 40000,
                record: Some(Box::new(RecordingStart {
                    recording: CallId::new(),
                    request,
                })),
            },
        },
    );
    call
}

#[test]
fn a_mandatory_recording_is_up_before_the_call_is_placed() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    let a = dial_recorded(&mut net, recorder, true);
    let b = answer_when_ringing(&mut net, 1);
    assert!(net.run_until(Duration::from_secs(5), |n| connected(n, 0)));
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    assert!(net.run_until(Duration::from_secs(5), |n| {
        recording_states(n, 0).contains(&RecordingState::Recording)
    }));
    let recorder_ip = net
        .recorder_address(recorder, Transport::Tcp)
        .unwrap()
        .address;
    let phone_b = net.address(1, Transport::Udp).unwrap().address;
    let first_to = |to: core::net::SocketAddr| {
        net.trace
            .iter()
            .position(|(_, _, dest, data)| dest.address == to && data.starts_with(b"INVITE"))
            .unwrap()
    };
    assert!(
        first_to(recorder_ip) < first_to(phone_b),
        "the recording comes first"
    );
    let to_recorder: Vec<String> = net
        .trace
        .iter()
        .filter(|(_, _, dest, data)| dest.address == recorder_ip && data.starts_with(b"INVITE"))
        .map(|(_, _, _, data)| String::from_utf8_lossy(data).into_owned())
        .collect();
    assert!(
        to_recorder[0].contains("a=inactive") && to_recorder[1].contains("a=sendonly"),
        "offered inactive before the call had media, then sendonly"
    );
    net.run_for(Duration::from_secs(2));
    let recording = &net.recorder(recorder).unwrap().recordings[0];
    assert!(amplitude_at(recording.audio("1"), 1.0, 1.8, 1000.0) > 0.2);
}

#[test]
fn a_mandatory_recording_that_cannot_start_keeps_the_call_from_being_placed() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    net.recorder_mut(recorder).unwrap().down = true;
    dial_recorded(&mut net, recorder, true);
    net.run_for(Duration::from_secs(40));
    let reason = ended(&net, 0).expect("the call ended");
    assert!(
        reason.text.contains("recording is mandatory"),
        "{}",
        reason.text
    );
    assert!(incoming(&net, 1).is_none(), "the far end never rang");
}

#[test]
fn a_mandatory_recording_that_cannot_start_refuses_the_incoming_call() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    net.recorder_mut(recorder).unwrap().down = true;
    dial(&mut net, 0, 1, Transport::Udp);
    assert!(net.run_until(Duration::from_secs(5), |n| incoming(n, 1).is_some()));
    let b = incoming(&net, 1).unwrap();
    let mut request = to_recorder(&net, recorder);
    request.mandatory = true;
    net.command(
        1,
        Command::Answer {
            call: b,
            media_port: 41000,
            record: Some(Box::new(RecordingStart {
                recording: CallId::new(),
                request,
            })),
        },
    );
    net.run_for(Duration::from_secs(40));
    let caller = ended(&net, 0).expect("the caller hears the refusal");
    assert_eq!(caller.status, Some(480));
    let callee = ended(&net, 1).expect("the callee's call ends");
    assert!(
        callee.text.contains("recording is mandatory"),
        "{}",
        callee.text
    );
    assert!(!connected(&net, 0));
}

#[test]
fn an_optional_recording_given_with_the_dial_starts_with_the_media() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    let a = dial_recorded(&mut net, recorder, false);
    let b = answer_when_ringing(&mut net, 1);
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    assert!(net.run_until(Duration::from_secs(5), |n| {
        recording_states(n, 0).contains(&RecordingState::Recording)
    }));
    let recording = &net.recorder(recorder).unwrap().recordings[0];
    assert!(
        recording.pauses.is_empty(),
        "offered sendonly: the call had media"
    );
}

/// Starts recording an established call (1 kHz / 440 Hz) to `recorder`.
fn record_call(net: &mut SimNet, recorder: NodeId, mandatory: bool) -> (CallId, CallId) {
    let (a, b) = establish(net, Transport::Udp);
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    let mut request = to_recorder(net, recorder);
    request.mandatory = mandatory;
    start_recording(net, a, request);
    (a, b)
}

#[test]
fn every_refusal_of_the_recorder_is_reported_and_retried_while_the_call_goes_on() {
    for (status, expected) in [
        (420, "does not support SIPREC"),
        (488, "488 Not Acceptable Here"),
        (503, "503 Service Unavailable"),
        (403, "403 Forbidden"),
    ] {
        let mut net = two_phones(LinkConfig::default());
        let recorder = net.add_recorder(Vec::new());
        net.recorder_mut(recorder).unwrap().refuse_with = Some(status);
        let (a, _) = record_call(&mut net, recorder, false);
        net.run_for(Duration::from_secs(8));
        let states = recording_states(&net, 0);
        let retrying: Vec<_> = states
            .iter()
            .filter_map(|s| match s {
                RecordingState::Retrying {
                    reason, attempt, ..
                } => Some((reason, *attempt)),
                _ => None,
            })
            .collect();
        assert!(retrying.len() >= 2, "{status}: {states:?}");
        assert!(
            retrying[0].0.contains(expected),
            "{status}: {}",
            retrying[0].0
        );
        assert_eq!(retrying[1].1, 2, "backoff counts the attempts");
        assert!(
            ended(&net, 0).is_none(),
            "{status}: an optional recording keeps the call"
        );
        // The recorder comes around: recording resumes, with the gap known.
        net.recorder_mut(recorder).unwrap().refuse_with = None;
        assert!(
            net.run_until(Duration::from_secs(20), |n| {
                recording_states(n, 0).contains(&RecordingState::RecordingWithGaps)
            }),
            "{status}"
        );
        net.command(0, Command::Hangup { call: a });
        net.run_for(Duration::from_secs(2));
        let recording = &net.recorder(recorder).unwrap().recordings[0];
        let first = crate::recording::metadata::parse(&recording.metadata[0]).unwrap();
        assert!(first.gaps[0].reason.contains(expected), "{status}");
    }
}

#[test]
fn loss_on_the_way_to_the_recorder_costs_the_recording_only_the_lost_packets() {
    for loss in [0.05, 0.20] {
        let mut net = two_phones(LinkConfig::default());
        net.recorder_link = Some(LinkConfig {
            loss,
            ..LinkConfig::default()
        });
        let recorder = net.add_recorder(Vec::new());
        let (a, _) = record_call(&mut net, recorder, false);
        net.run_for(Duration::from_secs(6));
        let dropped = net.media_dropped as f64 / net.media_sent as f64;
        assert!(dropped > loss / 3.0, "{loss}: the link dropped {dropped}");

        // The indicator says recording throughout: the session stays up, nothing to retry.
        let states = recording_states(&net, 0);
        assert_eq!(states.last(), Some(&RecordingState::Recording), "{loss}");
        assert!(
            !states.iter().any(|s| matches!(
                s,
                RecordingState::Retrying { .. } | RecordingState::Failed { .. }
            )),
            "{loss}: {states:?}"
        );
        // The call does not notice.
        assert!(ended(&net, 0).is_none());
        assert!(
            amplitude_at(net.heard(0, a), 4.0, 6.0, 440.0) > 0.3,
            "{loss}"
        );
        // Both voices are in the recording from start to end, time-aligned.
        let recording = &net.recorder(recorder).unwrap().recordings[0];
        for (label, frequency) in [("1", 1000.0), ("2", 440.0)] {
            let audio = recording.audio(label);
            assert!(
                audio.len() as f64 > 5.0 * f64::from(crate::media::SAMPLE_RATE),
                "{loss}: label {label} is {} samples",
                audio.len()
            );
            for second in 1..5 {
                let start = f64::from(second);
                assert!(
                    amplitude_at(audio, start, start + 1.0, frequency) > 0.15,
                    "{loss}: label {label} is missing in second {second}"
                );
            }
        }
    }
}

#[test]
fn a_call_outlives_ten_seconds_without_network_and_is_recorded_again_after() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    let (a, b) = record_call(&mut net, recorder, false);
    net.run_for(Duration::from_secs(3));
    net.set_link(LinkConfig {
        loss: 1.0,
        ..LinkConfig::default()
    });
    net.run_for(Duration::from_secs(10));
    net.set_link(LinkConfig::default());
    net.run_for(Duration::from_secs(4));

    assert!(ended(&net, 0).is_none() && ended(&net, 1).is_none());
    let heard_by_a = net.heard(0, a);
    let heard_by_b = net.heard(1, b);
    assert!(
        amplitude_at(heard_by_a, 7.0, 11.0, 440.0) < 0.02,
        "silence while down"
    );
    assert!(
        amplitude_at(heard_by_a, 15.0, 17.0, 440.0) > 0.3,
        "A hears B again"
    );
    assert!(
        amplitude_at(heard_by_b, 15.0, 17.0, 1000.0) > 0.3,
        "B hears A again"
    );
    // The recording session (over TCP) stayed up; what reached the recorder is there, in
    // its place in time.
    let recording = &net.recorder(recorder).unwrap().recordings[0];
    let far = recording.audio("2");
    assert!(amplitude_at(far, 1.0, 2.5, 440.0) > 0.3);
    assert!(amplitude_at(far, 7.0, 11.0, 440.0) < 0.02);
    assert!(amplitude_at(far, 15.0, 16.5, 440.0) > 0.3);
    assert_eq!(
        recording_states(&net, 0).last(),
        Some(&RecordingState::Recording)
    );
}

/// New requests from a flooder: INVITEs and OPTIONS, each a transaction of its own, and
/// junk with a Via (which would earn a 400).
fn flood_request(index: usize, to: Destination) -> Vec<u8> {
    let branch = format!("z9hG4bKflood{index}");
    let via = format!("Via: SIP/2.0/UDP 127.0.0.66:5060;branch={branch}");
    match index % 3 {
        0 => format!(
            "INVITE sip:x@{addr} SIP/2.0\r\n{via}\r\nMax-Forwards: 70\r\n\
             From: <sip:flood@127.0.0.66>;tag=f{index}\r\nTo: <sip:x@{addr}>\r\n\
             Call-ID: flood-{index}\r\nCSeq: 1 INVITE\r\nContact: <sip:flood@127.0.0.66>\r\n\
             Content-Length: 0\r\n\r\n",
            addr = to.address
        ),
        1 => format!(
            "OPTIONS sip:x@{addr} SIP/2.0\r\n{via}\r\nMax-Forwards: 70\r\n\
             From: <sip:flood@127.0.0.66>;tag=f{index}\r\nTo: <sip:x@{addr}>\r\n\
             Call-ID: flood-{index}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            addr = to.address
        ),
        _ => format!("GARBAGE \u{1}\r\n{via}\r\nCSeq: x\r\n\r\n"),
    }
    .into_bytes()
}

#[test]
fn a_flood_of_new_requests_is_refused_while_the_recorded_call_goes_on() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    let (a, _) = record_call(&mut net, recorder, false);
    net.run_for(Duration::from_secs(1));
    let flooder = Destination::new(Transport::Udp, "127.0.0.66:5060".parse().unwrap());
    let target = net.address(0, Transport::Udp).unwrap();
    // 20 s at 500 requests a second, on the phone that records.
    let mut sent = 0;
    for _ in 0..1000 {
        for _ in 0..10 {
            net.input(
                0,
                Input::Datagram {
                    source: flooder,
                    data: flood_request(sent, target),
                },
            );
            sent += 1;
        }
        net.run_for(Duration::from_millis(20));
    }

    // What the flooder got back.
    let statuses: Vec<u16> = net
        .trace
        .iter()
        .filter(|(_, _, to, _)| *to == flooder)
        .filter_map(|(_, _, _, data)| Message::parse(data).ok())
        .filter_map(|m| m.status())
        .collect();
    let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
    let refusals: Vec<Message> = net
        .trace
        .iter()
        .filter(|(_, _, to, _)| *to == flooder)
        .filter_map(|(_, _, _, data)| Message::parse(data).ok())
        .filter(|m| m.status() == Some(503))
        .collect();
    assert!(count(503) > 1000, "refused: {}", count(503));
    assert!(
        refusals
            .iter()
            .all(|m| m.headers.get("Retry-After") == Some("5")),
        "every refusal says when to come back"
    );
    assert!(count(486) > 100, "busy: {}", count(486));
    let stats = net.engine(0).unwrap().admission_stats();
    assert!(
        stats.admitted < 1300,
        "the bucket admitted {}",
        stats.admitted
    );
    // No request gets more than one final answer: nothing is retransmitted to a flooder
    // that never acknowledges, so nothing is amplified.
    let mut finals: HashMap<String, usize> = HashMap::new();
    for (_, _, to, data) in &net.trace {
        if let Ok(m) = Message::parse(data)
            && *to == flooder
            && m.status().is_some_and(|s| s >= 200)
        {
            // Junk has no Call-ID, and its 400s are counted as refusals above.
            if let Some(call_id) = m.call_id() {
                *finals.entry(call_id.to_owned()).or_default() += 1;
            }
        }
    }
    let most = finals.values().max().copied().unwrap_or(0);
    assert_eq!(most, 1, "a request was answered {most} times");
    // At most 16 flood calls ring; the rest were never calls at all.
    let ringing = net
        .events(0)
        .iter()
        .filter(|e| matches!(e, Event::IncomingCall { .. }))
        .count();
    assert!(ringing <= 16, "{ringing} calls ring");

    // The call and its recording went on, every second of the flood.
    assert!(ended(&net, 0).is_none() && ended(&net, 1).is_none());
    assert_eq!(
        recording_states(&net, 0).last(),
        Some(&RecordingState::Recording)
    );
    let heard = net.heard(0, a);
    let recording = &net.recorder(recorder).unwrap().recordings[0];
    for second in 2..20 {
        let from = f64::from(second);
        assert!(
            amplitude_at(heard, from, from + 1.0, 440.0) > 0.3,
            "{second}"
        );
        assert!(
            amplitude_at(recording.audio("1"), from, from + 1.0, 1000.0) > 0.3,
            "{second}"
        );
        assert!(
            amplitude_at(recording.audio("2"), from, from + 1.0, 440.0) > 0.3,
            "{second}"
        );
    }
    // The call's own requests still pass: hanging up reaches the far end.
    net.command(0, Command::Hangup { call: a });
    net.run_for(Duration::from_secs(2));
    assert!(ended(&net, 1).is_some());
}

#[test]
fn a_recorders_retry_after_holds_the_next_attempt_back() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    net.recorder_mut(recorder).unwrap().refuse_with = Some(503);
    net.recorder_mut(recorder).unwrap().retry_after = Some(30);
    let (a, _) = record_call(&mut net, recorder, false);
    net.run_for(Duration::from_secs(1));
    let first = recording_states(&net, 0)
        .into_iter()
        .find_map(|s| match s {
            RecordingState::Retrying {
                reason, in_seconds, ..
            } => Some((reason, in_seconds)),
            _ => None,
        })
        .expect("the refusal is reported");
    assert_eq!(first.1, 30, "{first:?}");
    assert!(first.0.contains("retry after 30 s"), "{}", first.0);
    // Nothing is sent to the recorder before the 30 s are up, however short the backoff.
    net.run_for(Duration::from_secs(27));
    assert_eq!(net.recorder(recorder).unwrap().refused.len(), 1);
    net.recorder_mut(recorder).unwrap().refuse_with = None;
    assert!(net.run_until(Duration::from_secs(5), |n| {
        recording_states(n, 0).contains(&RecordingState::RecordingWithGaps)
    }));
    assert!(
        ended(&net, 0).is_none(),
        "an optional recording keeps the call"
    );
    net.command(0, Command::Hangup { call: a });
    net.run_for(Duration::from_secs(2));
}

#[test]
fn a_recorder_that_hangs_up_mid_call_is_replaced_by_the_secondary() {
    let mut net = two_phones(LinkConfig::default());
    let primary = net.add_recorder(Vec::new());
    let secondary = net.add_recorder(Vec::new());
    let (a, b) = establish(&mut net, Transport::Udp);
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    let mut request = to_recorder(&net, primary);
    let second = to_recorder(&net, secondary);
    request.secondary = Some((second.srs, second.destination));
    start_recording(&mut net, a, request);
    net.run_for(Duration::from_secs(2));
    net.recorder_mut(primary).unwrap().refuse_with = Some(503);
    net.recorder_hang_up(primary);
    assert!(net.run_until(Duration::from_secs(10), |n| {
        recording_states(n, 0).contains(&RecordingState::RecordingWithGaps)
    }));
    net.run_for(Duration::from_secs(2));
    net.command(0, Command::Hangup { call: a });
    net.run_for(Duration::from_secs(2));
    let states = recording_states(&net, 0);
    assert!(
        states.iter().any(|s| matches!(
            s,
            RecordingState::Retrying { reason, .. } if reason.contains("recorder ended")
        )),
        "{states:?}"
    );
    let first = &net.recorder(primary).unwrap().recordings[0];
    let taken_over = &net.recorder(secondary).unwrap().recordings[0];
    assert!(amplitude_at(first.audio("1"), 0.5, 1.8, 1000.0) > 0.2);
    assert!(amplitude_at(taken_over.audio("2"), 0.5, 1.8, 440.0) > 0.2);
    let metadata = crate::recording::metadata::parse(&taken_over.metadata[0]).unwrap();
    let earlier = crate::recording::metadata::parse(&first.metadata[0]).unwrap();
    assert_eq!(
        metadata.sessions[0].id, earlier.sessions[0].id,
        "the same call in both recorders' metadata"
    );
    assert_eq!(metadata.gaps.len(), 1);
    assert!(taken_over.ended);
    assert!(ended(&net, 0).is_some_and(|r| r.was_connected));
}

#[test]
fn a_mandatory_recording_lost_mid_call_ends_the_call_after_the_grace() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    record_call(&mut net, recorder, true);
    net.run_for(Duration::from_secs(2));
    net.recorder_mut(recorder).unwrap().refuse_with = Some(503);
    net.recorder_hang_up(recorder);
    net.run_for(recording::MANDATORY_GRACE - Duration::from_secs(1));
    assert!(ended(&net, 0).is_none(), "still within the grace");
    net.run_for(Duration::from_secs(2));
    let reason = ended(&net, 0).expect("the call ended");
    assert!(
        reason.text.contains("recording is mandatory"),
        "{}",
        reason.text
    );
    assert!(ended(&net, 1).is_some(), "the far end got BYE");
}

/// A recorder's own INVITE (SRS-initiated), as raw bytes from `recorder` over TCP.
fn recorder_invite(
    to: core::net::SocketAddr,
    recorder: core::net::SocketAddr,
    sdp: Option<&str>,
) -> Vec<u8> {
    recorder_invite_over(Transport::Tcp, to, recorder, sdp)
}

fn recorder_invite_over(
    transport: Transport,
    to: core::net::SocketAddr,
    recorder: core::net::SocketAddr,
    sdp: Option<&str>,
) -> Vec<u8> {
    let (via, param) = match transport {
        Transport::Udp => ("UDP", "udp"),
        _ => ("TCP", "tcp"),
    };
    let body = sdp.unwrap_or("");
    let content_type = if sdp.is_some() {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "INVITE sip:alice@{to} SIP/2.0\r\n\
         Via: SIP/2.0/{via} {recorder};branch=z9hG4bKsrsinit1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:srs@{recorder}>;tag=srs1\r\n\
         To: <sip:alice@{to}>\r\n\
         Call-ID: srs-initiated-1@{recorder}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:srs@{recorder};transport={param}>;+sip.srs\r\n\
         Require: siprec\r\n\
         Accept: application/sdp, application/rs-metadata+xml\r\n\
         {content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The responses the phone sent to `to`, as text.
fn responses_to(net: &SimNet, to: core::net::SocketAddr) -> Vec<String> {
    net.trace
        .iter()
        .filter(|(_, _, dest, data)| dest.address == to && data.starts_with(b"SIP/2.0"))
        .map(|(_, _, _, data)| String::from_utf8_lossy(data).into_owned())
        .collect()
}

fn recorder_asks(net: &SimNet) -> Option<CallId> {
    net.events(0).iter().find_map(|e| match e {
        Event::RecorderAsks { call, .. } => Some(*call),
        _ => None,
    })
}

#[test]
fn a_recorder_not_in_the_policy_cannot_start_a_recording() {
    let mut net = two_phones(LinkConfig::default());
    establish(&mut net, Transport::Udp);
    let phone = net.address(0, Transport::Tcp).unwrap();
    let stranger: core::net::SocketAddr = "127.0.0.66:5060".parse().unwrap();
    net.input(
        0,
        Input::Stream {
            source: Destination::new(Transport::Tcp, stranger),
            data: recorder_invite(phone.address, stranger, None),
        },
    );
    net.run_for(Duration::from_millis(100));
    let responses = responses_to(&net, stranger);
    assert!(
        responses
            .iter()
            .any(|r| r.starts_with("SIP/2.0 403 Recorder Not Allowed")),
        "{responses:?}"
    );
    assert!(recorder_asks(&net).is_none());
}

/// A call with media in progress on a phone that lets the recorder at 127.0.0.77 start
/// recordings: (network, the phone's call, the recorder's address).
fn call_with_an_allowed_recorder() -> (SimNet, CallId, core::net::SocketAddr) {
    let mut net = SimNet::new(1, LinkConfig::default());
    let recorder_ip: core::net::IpAddr = "127.0.0.77".parse().unwrap();
    net.add_node(EngineConfig {
        recorders_allowed: vec![recorder_ip],
        ..config(10)
    });
    net.add_node(config(20));
    let (a, b) = establish(&mut net, Transport::Udp);
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    (net, a, core::net::SocketAddr::new(recorder_ip, 5060))
}

#[test]
fn an_allowed_recorder_records_the_call_with_or_without_an_offer() {
    for offer in [false, true] {
        let (mut net, a, recorder) = call_with_an_allowed_recorder();
        let phone = net.address(0, Transport::Tcp).unwrap();
        let source = Destination::new(Transport::Tcp, recorder);
        let sdp = "v=0\r\no=srs 1 1 IN IP4 127.0.0.77\r\ns=-\r\nc=IN IP4 127.0.0.77\r\nt=0 0\r\n\
                   m=audio 30000 RTP/AVP 0\r\na=recvonly\r\na=label:10\r\n\
                   m=audio 30002 RTP/AVP 0\r\na=recvonly\r\na=label:11\r\n";
        net.input(
            0,
            Input::Stream {
                source,
                data: recorder_invite(phone.address, recorder, offer.then_some(sdp)),
            },
        );
        assert_eq!(
            recorder_asks(&net),
            Some(a),
            "it asks about the call in progress"
        );
        net.command(
            0,
            Command::AcceptRecorder {
                call: a,
                recording: CallId::new(),
                media_port: 42000,
            },
        );
        net.run_for(Duration::from_millis(100));
        let ok = responses_to(&net, recorder)
            .into_iter()
            .find(|r| r.starts_with("SIP/2.0 200"))
            .expect("200 OK");
        assert!(ok.contains("multipart/mixed") && ok.contains("application/rs-metadata+xml"));
        assert!(ok.contains("+sip.src") && ok.contains("Require: siprec"));
        assert_eq!(ok.matches("a=sendonly").count(), 2, "{ok}");
        if offer {
            // Its labels, in our answer and in the metadata.
            assert!(
                ok.contains("a=label:10") && ok.contains("<label>11</label>"),
                "{ok}"
            );
        } else {
            // Our offer; its answer comes in the ACK.
            let to_tag = ok
                .lines()
                .find(|l| l.starts_with("To:"))
                .and_then(|l| l.split("tag=").nth(1))
                .unwrap()
                .trim()
                .to_owned();
            let answer = sdp
                .replace("a=recvonly\r\na=label:10", "a=recvonly\r\na=label:1")
                .replace("a=label:11", "a=label:2");
            let ack = format!(
                "ACK sip:alice@{} SIP/2.0\r\n\
                 Via: SIP/2.0/TCP {recorder};branch=z9hG4bKsrsinitack\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:srs@{recorder}>;tag=srs1\r\n\
                 To: <sip:alice@{}>;tag={to_tag}\r\n\
                 Call-ID: srs-initiated-1@{recorder}\r\n\
                 CSeq: 1 ACK\r\n\
                 Content-Type: application/sdp\r\n\
                 Content-Length: {}\r\n\r\n{answer}",
                phone.address,
                phone.address,
                answer.len()
            );
            net.input(
                0,
                Input::Stream {
                    source,
                    data: ack.into_bytes(),
                },
            );
        }
        net.run_for(Duration::from_millis(500));
        assert!(
            recording_states(&net, 0).contains(&RecordingState::Recording),
            "offer {offer}: {:?}",
            recording_states(&net, 0)
        );
        // The recorder hangs up: the recording is off, not retried.
        let bye = format!(
            "BYE sip:alice@{} SIP/2.0\r\n\
             Via: SIP/2.0/TCP {recorder};branch=z9hG4bKsrsinitbye\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:srs@{recorder}>;tag=srs1\r\n\
             To: {}\r\n\
             Call-ID: srs-initiated-1@{recorder}\r\n\
             CSeq: 2 BYE\r\n\
             Content-Length: 0\r\n\r\n",
            phone.address,
            ok.lines()
                .find(|l| l.starts_with("To:"))
                .map(|l| l.trim_start_matches("To:").trim())
                .unwrap(),
        );
        net.input(
            0,
            Input::Stream {
                source,
                data: bye.into_bytes(),
            },
        );
        net.run_for(Duration::from_secs(10));
        let states = recording_states(&net, 0);
        assert_eq!(states.last(), Some(&RecordingState::Off), "{states:?}");
        assert!(
            !states
                .iter()
                .any(|s| matches!(s, RecordingState::Retrying { .. }))
        );
        assert!(ended(&net, 0).is_none(), "the call goes on");
    }
}

/// Over UDP our 2xx to a recorder's INVITE is resent until its ACK (RFC 3261 13.3.1.4),
/// and a recorder that never acknowledges it has not got a recording.
#[test]
fn our_answer_to_a_recorder_over_udp_is_resent_until_acknowledged() {
    for acknowledged in [true, false] {
        let (mut net, a, recorder) = call_with_an_allowed_recorder();
        let phone = net.address(0, Transport::Udp).unwrap();
        let source = Destination::new(Transport::Udp, recorder);
        let sdp = "v=0\r\no=srs 1 1 IN IP4 127.0.0.77\r\ns=-\r\nc=IN IP4 127.0.0.77\r\nt=0 0\r\n\
                   m=audio 30000 RTP/AVP 0\r\na=recvonly\r\na=label:1\r\n\
                   m=audio 30002 RTP/AVP 0\r\na=recvonly\r\na=label:2\r\n";
        net.input(
            0,
            Input::Datagram {
                source,
                data: recorder_invite_over(Transport::Udp, phone.address, recorder, Some(sdp)),
            },
        );
        net.command(
            0,
            Command::AcceptRecorder {
                call: a,
                recording: CallId::new(),
                media_port: 42000,
            },
        );
        // T1 = 500 ms: sent at once, then again at 0.5 s and 1.5 s.
        net.run_for(Duration::from_millis(1700));
        let oks = |net: &SimNet| {
            responses_to(net, recorder)
                .into_iter()
                .filter(|r| r.starts_with("SIP/2.0 200"))
                .collect::<Vec<_>>()
        };
        let sent = oks(&net);
        assert_eq!(sent.len(), 3, "the 200 OK and two retransmissions");
        if acknowledged {
            let to = sent[0]
                .lines()
                .find(|l| l.starts_with("To:"))
                .map(|l| l.trim_start_matches("To:").trim().to_owned())
                .unwrap();
            let ack = format!(
                "ACK sip:alice@{} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {recorder};branch=z9hG4bKsrsinitack\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:srs@{recorder}>;tag=srs1\r\n\
                 To: {to}\r\n\
                 Call-ID: srs-initiated-1@{recorder}\r\n\
                 CSeq: 1 ACK\r\n\
                 Content-Length: 0\r\n\r\n",
                phone.address
            );
            net.input(
                0,
                Input::Datagram {
                    source,
                    data: ack.into_bytes(),
                },
            );
        }
        // Acknowledged, nothing more comes; unacknowledged, it is resent until 64*T1.
        let wait = if acknowledged { 3 } else { 32 };
        net.run_for(Duration::from_secs(wait));
        let states = recording_states(&net, 0);
        if acknowledged {
            assert_eq!(oks(&net).len(), 3, "no more after the ACK");
            assert_eq!(
                states.last(),
                Some(&RecordingState::Recording),
                "{states:?}"
            );
        } else {
            assert!(oks(&net).len() >= 9, "resent up to 64*T1");
            assert!(
                matches!(
                    states.last(),
                    Some(RecordingState::Failed { reason }) if reason.contains("never acknowledged")
                ),
                "{states:?}"
            );
        }
        assert!(ended(&net, 0).is_none(), "the call goes on");
    }
}

#[test]
fn the_far_ends_wish_not_to_be_recorded_is_honoured_unless_recording_is_mandatory() {
    for mandatory in [false, true] {
        let mut net = two_phones(LinkConfig::default());
        let recorder = net.add_recorder(Vec::new());
        record_call(&mut net, recorder, mandatory);
        assert!(net.run_until(Duration::from_secs(5), |n| {
            recording_states(n, 0).contains(&RecordingState::Recording)
        }));
        // The far end hears of the recording (a=record:on) first; let that settle.
        net.run_for(Duration::from_secs(1));
        let offer = "v=0\r\no=bob 1 4 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\na=recordpref:off\r\nm=audio 43000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let update = callee_request(&net, "UPDATE", 70, offer);
        net.input(
            0,
            Input::Datagram {
                source: callee_source(&net),
                data: update,
            },
        );
        net.run_for(Duration::from_secs(2));
        let last = recording_states(&net, 0).last().cloned();
        if mandatory {
            assert_eq!(last, Some(RecordingState::Recording), "policy wins");
        } else {
            assert_eq!(last, Some(RecordingState::Off), "the wish is honoured");
            assert!(net.recorder(recorder).unwrap().recordings[0].ended);
        }
    }
}

#[test]
fn a_closed_connection_to_the_recorder_is_a_failed_recording_at_once() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    record_call(&mut net, recorder, false);
    assert!(net.run_until(Duration::from_secs(5), |n| {
        recording_states(n, 0).contains(&RecordingState::Recording)
    }));
    // The recorder's process dies: its TCP connection closes, and nothing else is said.
    net.recorder_mut(recorder).unwrap().down = true;
    let peer = net.recorder_address(recorder, Transport::Tcp).unwrap();
    net.input(
        0,
        Input::StreamClosed {
            peer,
            reason: Some("connection reset by peer".into()),
        },
    );
    let states = recording_states(&net, 0);
    assert!(
        matches!(
            states.last(),
            Some(RecordingState::Retrying { reason, .. }) if reason.contains("connection to the recorder closed")
        ),
        "{states:?}"
    );
    assert!(ended(&net, 0).is_none());
}

fn transfer_states(net: &SimNet, node: NodeId) -> Vec<TransferState> {
    net.events(node)
        .iter()
        .filter_map(|e| match e {
            Event::Transfer { state, .. } => Some(state.clone()),
            _ => None,
        })
        .collect()
}

/// Alice (0) talks to Bob (1) and transfers him to Carol (2); `carol_answers` decides how
/// Carol takes the call. Returns the network once the outcome is known, and Bob's new call.
fn transfer_bob_to_carol(carol_answers: bool) -> (SimNet, CallId, CallId) {
    let mut net = two_phones(LinkConfig::default());
    net.add_node(config(30));
    let (a, b) = establish(&mut net, Transport::Udp);
    let carol = net.address(2, Transport::Udp).unwrap();
    let target = Uri::parse(&format!("sip:carol@{}", carol.address)).unwrap();
    net.command(
        0,
        Command::Transfer {
            call: a,
            target: target.clone(),
        },
    );
    assert!(net.run_until(Duration::from_secs(2), |n| {
        n.events(1)
            .iter()
            .any(|e| matches!(e, Event::TransferRequested { .. }))
    }));
    let asked = net.events(1).iter().find_map(|e| match e {
        Event::TransferRequested {
            call,
            target,
            referred_by,
        } => Some((*call, target.clone(), referred_by.clone())),
        _ => None,
    });
    let (asked_call, asked_target, referred_by) = asked.unwrap();
    assert_eq!((asked_call, &asked_target), (b, &target));
    assert!(referred_by.unwrap().contains("alice"));
    let new_call = CallId::new();
    net.command(
        1,
        Command::FollowTransfer {
            call: b,
            new_call,
            request: DialRequest {
                target,
                from: NameAddr::parse("<sip:bob@127.0.0.1>").unwrap(),
                destination: carol,
                route: None,
                credentials: None,
                media_port: 42000,
                record: None,
            },
        },
    );
    assert!(net.run_until(Duration::from_secs(5), |n| incoming(n, 2).is_some()));
    let at_carol = incoming(&net, 2).unwrap();
    net.run_for(Duration::from_millis(300));
    if carol_answers {
        net.command(
            2,
            Command::Answer {
                call: at_carol,
                media_port: 43000,
                record: None,
            },
        );
    } else {
        net.command(
            2,
            Command::Reject {
                call: at_carol,
                status: 486,
            },
        );
    }
    net.run_for(Duration::from_secs(3));
    (net, a, new_call)
}

#[test]
fn a_blind_transfer_hands_the_far_end_to_the_target_and_ends_our_call() {
    let (net, a, new_call) = transfer_bob_to_carol(true);
    let states = transfer_states(&net, 0);
    assert_eq!(
        states.first(),
        Some(&TransferState::Requested),
        "{states:?}"
    );
    assert!(states.contains(&TransferState::Accepted), "{states:?}");
    assert!(
        states.contains(&TransferState::Progress { status: 100 }),
        "{states:?}"
    );
    assert_eq!(states.last(), Some(&TransferState::Succeeded), "{states:?}");
    let ours = net.events(0).iter().find_map(|e| match e {
        Event::CallEnded { call, reason } if *call == a => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(ours.map(|r| r.text), Some("transferred".to_owned()));
    // Bob's old call ended (our BYE); his call with Carol goes on.
    let bob_new_connected = net.events(1).iter().any(|e| {
        matches!(e, Event::CallState { call, state: CallState::Connected { .. } } if *call == new_call)
    });
    assert!(bob_new_connected);
    assert!(
        !net.events(1)
            .iter()
            .any(|e| matches!(e, Event::CallEnded { call, .. } if *call == new_call))
    );
    assert_eq!(net.engine(1).unwrap().active_calls(), 1);
    assert_eq!(net.engine(2).unwrap().active_calls(), 1);
    // The transferor heard the new call ring before it was answered.
    let notifies: Vec<String> = net
        .trace
        .iter()
        .filter(|(_, _, _, data)| data.starts_with(b"NOTIFY "))
        .map(|(_, _, _, data)| String::from_utf8_lossy(data).into_owned())
        .collect();
    assert!(
        notifies.iter().any(|n| n.contains("SIP/2.0 180 Ringing")),
        "{notifies:?}"
    );
    assert!(
        notifies
            .iter()
            .any(|n| n.contains("SIP/2.0 200 OK") && n.contains("Subscription-State: terminated")),
        "{notifies:?}"
    );
}

#[test]
fn a_transfer_to_a_busy_target_fails_and_our_call_goes_on() {
    let (net, a, _) = transfer_bob_to_carol(false);
    let states = transfer_states(&net, 0);
    assert!(
        matches!(
            states.last(),
            Some(TransferState::Failed { reason }) if reason.contains("486")
        ),
        "{states:?}"
    );
    assert!(
        !net.events(0)
            .iter()
            .any(|e| matches!(e, Event::CallEnded { call, .. } if *call == a)),
        "the call with Bob goes on"
    );
    assert_eq!(net.engine(0).unwrap().active_calls(), 1);
}

#[test]
fn a_refer_without_a_sip_target_or_outside_a_call_is_refused() {
    let mut net = two_phones(LinkConfig::default());
    let (a, _) = establish(&mut net, Transport::Udp);
    net.command(
        0,
        Command::Transfer {
            call: a,
            target: Uri::parse("tel:+15551234567").unwrap(),
        },
    );
    net.run_for(Duration::from_secs(1));
    let states = transfer_states(&net, 0);
    assert!(
        matches!(
            states.last(),
            Some(TransferState::Failed { reason }) if reason.contains("400")
        ),
        "{states:?}"
    );
    assert_eq!(net.engine(0).unwrap().active_calls(), 1);
    let stray = "REFER sip:bob@127.0.0.2:5060 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKstrayrefer\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:mallory@127.0.0.9>;tag=m1\r\n\
                 To: <sip:bob@127.0.0.2>;tag=nosuch\r\n\
                 Call-ID: no-such-call@127.0.0.9\r\n\
                 CSeq: 1 REFER\r\n\
                 Refer-To: <sip:premium@127.0.0.9>\r\n\
                 Content-Length: 0\r\n\r\n";
    let mallory: core::net::SocketAddr = "127.0.0.9:5060".parse().unwrap();
    net.input(
        1,
        Input::Datagram {
            source: Destination::new(Transport::Udp, mallory),
            data: stray.as_bytes().to_vec(),
        },
    );
    net.run_for(Duration::from_millis(100));
    assert!(
        responses_to(&net, mallory)
            .iter()
            .any(|r| r.starts_with("SIP/2.0 481")),
        "{:?}",
        responses_to(&net, mallory)
    );
    assert!(
        !net.events(1)
            .iter()
            .any(|e| matches!(e, Event::TransferRequested { .. }))
    );
}

fn check_recorder(net: &mut SimNet, recorder: NodeId) -> (bool, Vec<String>) {
    let to = to_recorder(net, recorder);
    let check = CallId::new();
    net.command(
        0,
        Command::CheckRecorder {
            check,
            request: RecorderCheckRequest {
                srs: to.srs,
                destination: to.destination,
                credentials: None,
                identity: NameAddr::parse("\"Alice\" <sip:alice@127.0.0.1>").unwrap(),
            },
        },
    );
    // A recorder that never answers takes Timer F for the OPTIONS and Timer B for the
    // INVITE (32 s each).
    assert!(net.run_until(Duration::from_secs(70), |n| {
        n.events(0)
            .iter()
            .any(|e| matches!(e, Event::RecorderChecked { check: c, .. } if *c == check))
    }));
    net.events(0)
        .iter()
        .find_map(|e| match e {
            Event::RecorderChecked {
                works, findings, ..
            } => Some((*works, findings.clone())),
            _ => None,
        })
        .unwrap()
}

#[test]
fn testing_the_recorder_asks_its_options_then_opens_and_ends_a_test_session() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    let (works, findings) = check_recorder(&mut net, recorder);
    assert!(works, "{findings:?}");
    assert!(findings[0].contains("supports siprec"), "{findings:?}");
    assert!(
        findings[1].starts_with("test recording session accepted: label 1 in"),
        "{findings:?}"
    );
    assert!(findings[2].contains("ended (200)"), "{findings:?}");
    let session = &net.recorder(recorder).unwrap().recordings[0];
    assert!(session.ended, "the test session was hung up");
    let metadata = crate::recording::metadata::parse(&session.metadata[0]).unwrap();
    assert!(
        metadata
            .participants
            .iter()
            .any(|p| p.aor.contains("recording-test")),
        "a made-up call, not a real one"
    );
}

#[test]
fn testing_a_recorder_that_refuses_or_is_down_says_why() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    net.recorder_mut(recorder).unwrap().refuse_with = Some(420);
    let (works, findings) = check_recorder(&mut net, recorder);
    assert!(!works);
    assert!(
        findings
            .iter()
            .any(|f| f.contains("refused: 420") && f.contains("not a SIPREC recorder")),
        "{findings:?}"
    );

    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    net.recorder_mut(recorder).unwrap().down = true;
    let (works, findings) = check_recorder(&mut net, recorder);
    assert!(!works);
    assert!(
        findings.iter().any(|f| f.contains("no answer")),
        "{findings:?}"
    );
}
