//! Calls between simulated phones: setup, teardown, CANCEL, retransmissions, glare, loss,
//! and the requests inside a call (re-INVITE with and without an offer, UPDATE, OPTIONS).

use super::*;

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

/// An incoming call names its Request-URI beside its To: a front end with several accounts
/// tells by it which one a forwarded call is for.
#[test]
fn an_incoming_call_says_its_request_uri() {
    let mut net = two_phones(LinkConfig::default());
    dial(&mut net, 0, 1, Transport::Udp);
    assert!(net.run_until(Duration::from_secs(5), |n| incoming(n, 1).is_some()));
    let destination = net.address(1, Transport::Udp).unwrap();
    let said = net.events(1).iter().find_map(|e| match e {
        Event::IncomingCall { request_uri, .. } => Some(request_uri.clone()),
        _ => None,
    });
    assert_eq!(said, Some(format!("sip:bob@{}", destination.address)));
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
    let call = CallId(702);
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
                srtp: None,
                notice: None,
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
            call: CallId(703),
            request: DialRequest {
                target: Uri::parse(&format!("sip:bob@{}", destination.address)).unwrap(),
                from: NameAddr::parse(&format!("\"{long_name}\" <sip:alice@127.0.0.1>")).unwrap(),
                destination,
                route: None,
                credentials: None,
                media_port: 40000,
                record: None,
                srtp: None,
                notice: None,
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

/// A large INVITE goes over TCP (RFC 3261 18.1.1); a peer that listens on UDP only refuses
/// the connection, and the INVITE then goes over UDP after all, and the call proceeds.
#[test]
fn a_large_invite_refused_over_tcp_goes_over_udp() {
    use super::scripted::{FAR_UDP, Phone, answer, udp};
    let mut phone = Phone::new(crate::media::srtp::SrtpPolicy::Off);
    let long_name = "A caller with a very long display name ".repeat(20);
    phone.input(Input::Command(Command::Dial {
        call: CallId(731),
        request: DialRequest {
            target: Uri::parse(&format!("sip:bob@{FAR_UDP}")).unwrap(),
            from: NameAddr::parse(&format!("\"{}\" <sip:alice@example.com>", long_name.trim()))
                .unwrap(),
            destination: udp(FAR_UDP),
            route: None,
            credentials: None,
            media_port: 40000,
            record: None,
            srtp: None,
            notice: None,
        },
    }));
    let invites = |phone: &Phone, transport: Transport| {
        phone
            .messages()
            .into_iter()
            .filter(|(to, m)| to.transport == transport && m.method() == Some(&Method::Invite))
            .map(|(_, m)| m)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        invites(&phone, Transport::Tcp).len(),
        1,
        "too large for UDP"
    );
    assert!(invites(&phone, Transport::Udp).is_empty());
    let tcp = Destination::new(Transport::Tcp, FAR_UDP.parse().unwrap());
    phone.input(Input::StreamClosed {
        peer: tcp,
        reason: Some("Connection refused (os error 111)".into()),
    });
    let over_udp = invites(&phone, Transport::Udp);
    assert_eq!(over_udp.len(), 1, "sent over UDP after all");
    assert!(
        over_udp[0]
            .headers
            .get("Via")
            .is_some_and(|via| via.starts_with("SIP/2.0/UDP")),
        "its Via says UDP"
    );
    phone.receive_from_far_end(
        udp(FAR_UDP),
        &answer(&over_udp[0], "<sip:bob@192.0.2.1:5060>"),
    );
    assert!(phone.events.iter().any(|e| matches!(
        e,
        Event::CallState {
            call: CallId(731),
            state: CallState::Connected { .. }
        }
    )));
}

/// The INVITE a fresh engine sends for a call to `destination` after a STUN server showed
/// where a NAT maps the call's sockets (`mapped`: RTP and RTCP).
fn invite_after_stun(destination: &str, mapped: Option<(&str, &str)>) -> String {
    let now = Instant::now();
    let mut engine = Engine::new(
        EngineConfig {
            listeners: vec![Destination::new(
                Transport::Udp,
                "192.168.1.20:5060".parse().unwrap(),
            )],
            ..config(7)
        },
        now,
    );
    let call = CallId(9);
    if let Some((rtp, rtcp)) = mapped {
        engine.handle_input(
            now,
            Input::MediaMapped {
                call,
                rtp: rtp.parse().unwrap(),
                rtcp: Some(rtcp.parse().unwrap()),
            },
        );
    }
    engine.handle_input(
        now,
        Input::Command(Command::Dial {
            call,
            request: DialRequest {
                target: Uri::parse("sip:bob@verbatim.test").unwrap(),
                from: NameAddr::parse("<sip:alice@verbatim.test>").unwrap(),
                destination: Destination::new(Transport::Udp, destination.parse().unwrap()),
                route: None,
                credentials: None,
                media_port: 40000,
                record: None,
                srtp: None,
                notice: None,
            },
        }),
    );
    loop {
        match engine.poll_output() {
            Output::Transmit { data, .. } => {
                if let Ok(m) = Message::parse(&data)
                    && m.method() == Some(&Method::Invite)
                {
                    return String::from_utf8_lossy(&m.body).into_owned();
                }
            }
            Output::Timeout(_) => panic!("no INVITE"),
            _ => {}
        }
    }
}

/// A call leaving this machine offers the media address the STUN server saw (RTCP named
/// with `a=rtcp` when the NAT did not keep it on the next port); a call to a peer on this
/// machine, or one without a mapping, offers the local address.
#[test]
fn the_offer_names_where_stun_saw_the_media_when_the_call_leaves_this_machine() {
    let consecutive = invite_after_stun(
        "192.0.2.10:5060",
        Some(("203.0.113.7:50000", "203.0.113.7:50001")),
    );
    assert!(
        consecutive.contains("c=IN IP4 203.0.113.7\r\n"),
        "{consecutive}"
    );
    assert!(consecutive.contains("m=audio 50000 "), "{consecutive}");
    assert!(!consecutive.contains("a=rtcp:"), "{consecutive}");

    let apart = invite_after_stun(
        "192.0.2.10:5060",
        Some(("203.0.113.7:50000", "203.0.113.7:61000")),
    );
    assert!(
        apart.contains("a=rtcp:61000 IN IP4 203.0.113.7\r\n"),
        "{apart}"
    );

    let local_peer = invite_after_stun(
        "127.0.0.9:5060",
        Some(("203.0.113.7:50000", "203.0.113.7:50001")),
    );
    assert!(local_peer.contains("m=audio 40000 "), "{local_peer}");
    assert!(!local_peer.contains("203.0.113.7"), "{local_peer}");

    // A desk phone or PBX on our LAN: the router may not loop back to its public address.
    let lan_peer = invite_after_stun(
        "192.168.1.30:5060",
        Some(("203.0.113.7:50000", "203.0.113.7:50001")),
    );
    assert!(lan_peer.contains("c=IN IP4 192.168.1.20\r\n"), "{lan_peer}");

    let unmapped = invite_after_stun("192.0.2.10:5060", None);
    assert!(unmapped.contains("c=IN IP4 192.168.1.20\r\n"), "{unmapped}");
    assert!(unmapped.contains("m=audio 40000 "), "{unmapped}");
}

/// An INVITE with a Replaces for `call_id`/`to_tag`/`from_tag`, from a new party.
fn replacing_invite(call_id: &str, replaces: &str) -> Message {
    Message::parse(
        format!(
            "INVITE sip:alice@192.0.2.10 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKrepl{}\r\n\
             From: <sip:bob@192.0.2.50>;tag=bob1\r\n\
             To: <sip:alice@192.0.2.10>\r\n\
             Call-ID: replacing-{call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:bob@192.0.2.50>\r\n\
             Max-Forwards: 70\r\n\
             Replaces: {replaces}\r\n\
             Require: replaces\r\n\
             Content-Length: 0\r\n\r\n",
            replaces.len()
        )
        .as_bytes(),
    )
    .unwrap()
}

/// RFC 3891 3: a Replaces that names no dialog of ours is 481, one marked early-only for an
/// answered call 486, one that cannot be read 400; none of them rings.
#[test]
fn an_invite_replacing_no_call_of_ours_is_refused_with_the_rfc_3891_status() {
    use super::scripted::{FAR_UDP, Phone, answer, invite_sent, udp};
    let mut phone = Phone::new(crate::media::srtp::SrtpPolicy::Off);
    phone.dial("sip:carol@192.0.2.1", udp(FAR_UDP));
    let invite = invite_sent(&phone);
    phone.receive_from_far_end(udp(FAR_UDP), &answer(&invite, "<sip:carol@192.0.2.1>"));
    let call_id = invite.call_id().unwrap().to_owned();
    let our_tag = invite.from_header().unwrap().tag().unwrap().to_owned();
    let cases = [
        (format!("{call_id};to-tag={our_tag};from-tag=nobody"), 481),
        (format!("other@x;to-tag={our_tag};from-tag=far1"), 481),
        (
            format!("{call_id};to-tag={our_tag};from-tag=far1;early-only"),
            486,
        ),
        (format!("{call_id};to-tag={our_tag}"), 400),
    ];
    // As the caller our tag is the From tag: seen from us it is the Replaces' to-tag.
    for (replaces, status) in cases {
        let before = phone.sent.len();
        phone.receive_from_far_end(
            udp("192.0.2.50:5060"),
            &replacing_invite(&call_id, &replaces),
        );
        let answered: Vec<u16> = phone.sent[before..]
            .iter()
            .filter_map(|(_, d)| Message::parse(d).ok()?.status())
            .filter(|status| *status != 100)
            .collect();
        assert_eq!(answered, vec![status], "{replaces}");
    }
    // Two Replaces headers are one too many.
    let mut twice = replacing_invite(
        &call_id,
        &format!("{call_id};to-tag={our_tag};from-tag=far1"),
    );
    twice.headers.push("Replaces", "x;to-tag=1;from-tag=2");
    let before = phone.sent.len();
    phone.receive_from_far_end(udp("192.0.2.50:5060"), &twice);
    assert!(
        phone.sent[before..]
            .iter()
            .any(|(_, d)| Message::parse(d).ok().and_then(|m| m.status()) == Some(400))
    );
    assert!(
        !phone
            .events
            .iter()
            .any(|e| matches!(e, Event::IncomingCall { .. } | Event::ReplacingCall { .. }))
    );
}

/// A call set up over TLS is not replaced by an INVITE over UDP (it would be answered
/// without the user), and a call already ending is not replaced at all (603).
#[test]
fn a_replacing_invite_must_be_as_protected_as_the_call_and_the_call_still_up() {
    use super::scripted::{FAR_TLS, Phone, tls, tls_call_answered_with, udp};
    let (mut phone, call) = tls_call_answered_with(&format!("<sips:carol@{FAR_TLS}>"));
    let invite = phone
        .messages()
        .into_iter()
        .find(|(_, m)| m.method() == Some(&Method::Invite))
        .map(|(_, m)| m)
        .unwrap();
    let call_id = invite.call_id().unwrap().to_owned();
    let our_tag = invite.from_header().unwrap().tag().unwrap().to_owned();
    let replaces = format!("{call_id};to-tag={our_tag};from-tag=far1");
    let status_of = |phone: &mut Phone, over, message: &Message| {
        let before = phone.sent.len();
        phone.receive_from_far_end(over, message);
        phone.sent[before..]
            .iter()
            .filter_map(|(_, d)| Message::parse(d).ok()?.status())
            .find(|s| *s >= 200)
    };
    let invite_over_udp = replacing_invite(&call_id, &replaces);
    let over_udp = status_of(&mut phone, udp("192.0.2.50:5060"), &invite_over_udp);
    assert_eq!(over_udp, Some(403));
    phone.input(Input::Command(Command::Hangup { call }));
    let mut over_tls = replacing_invite(&call_id, &replaces);
    over_tls
        .headers
        .set("Via", "SIP/2.0/TLS 192.0.2.50:5061;branch=z9hG4bKtls1");
    let ending = status_of(&mut phone, tls("192.0.2.50:5061"), &over_tls);
    assert_eq!(ending, Some(603));
}
