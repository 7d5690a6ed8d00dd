//! Recording sessions a recorder opens (SRS-initiated): policy, answers, retransmission.

use super::*;

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

/// The user accepts the recorder's request for call `a`; returns our 200 OK to it.
fn accept_recorder(
    net: &mut SimNet,
    a: CallId,
    recording: u64,
    recorder: core::net::SocketAddr,
) -> String {
    net.command(
        0,
        Command::AcceptRecorder {
            call: a,
            recording: RecordingId(recording),
            media_ports: vec![42000, 42002],
        },
    );
    net.run_for(Duration::from_millis(100));
    responses_to(net, recorder)
        .into_iter()
        .find(|r| r.starts_with("SIP/2.0 200"))
        .expect("200 OK")
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
    let (a, _) = talk(&mut net);
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
        let ok = accept_recorder(&mut net, a, 706, recorder);
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
                recording: RecordingId(707),
                media_ports: vec![42000, 42002],
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

/// A recorder that names its streams as it likes, offers video and more audio streams than
/// a call has voices: the audio m-lines carry our user's voice, then the far end's, and the
/// metadata says so under the recorder's labels; the video and the extra stream are
/// declined with port 0 and are not in the metadata.
#[test]
fn a_recorders_own_labels_are_bound_to_voices_by_order_and_extra_streams_are_declined() {
    let (mut net, a, recorder) = call_with_an_allowed_recorder();
    let phone = net.address(0, Transport::Tcp).unwrap();
    let source = Destination::new(Transport::Tcp, recorder);
    let sdp = "v=0\r\no=srs 1 1 IN IP4 127.0.0.77\r\ns=-\r\nc=IN IP4 127.0.0.77\r\nt=0 0\r\n\
               m=video 30010 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=recvonly\r\n\
               m=audio 30000 RTP/AVP 0\r\na=recvonly\r\na=label:agent\r\n\
               m=audio 30002 RTP/AVP 0\r\na=recvonly\r\na=label:customer\r\n\
               m=audio 30004 RTP/AVP 0\r\na=recvonly\r\na=label:extra\r\n";
    net.input(
        0,
        Input::Stream {
            source,
            data: recorder_invite(phone.address, recorder, Some(sdp)),
        },
    );
    assert_eq!(recorder_asks(&net), Some(a));
    let ok = accept_recorder(&mut net, a, 707, recorder);
    let m_lines: Vec<&str> = ok.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        m_lines,
        vec![
            "m=video 0 RTP/AVP 96",
            "m=audio 42000 RTP/AVP 0",
            "m=audio 42002 RTP/AVP 0",
            "m=audio 0 RTP/AVP 0"
        ],
        "each stream from its own port\n{ok}"
    );
    let xml = &ok[ok.find("<?xml").unwrap()..ok.find("</recording>").unwrap() + 12];
    let metadata = crate::recording::metadata::parse(xml).unwrap();
    let label_of = |stream_id: &str| {
        metadata
            .streams
            .iter()
            .find(|s| s.id == stream_id)
            .map(|s| s.label.clone())
    };
    let sent_by = |participant: usize| {
        let id = &metadata.participants[participant].id;
        metadata
            .participant_stream_assocs
            .iter()
            .find(|a| &a.participant_id == id)
            .map(|a| {
                a.send
                    .iter()
                    .filter_map(|s| label_of(s))
                    .collect::<Vec<_>>()
            })
            .unwrap()
    };
    assert_eq!(
        metadata.streams.len(),
        2,
        "only the streams that carry a voice"
    );
    assert_eq!(
        sent_by(0),
        vec!["agent"],
        "our user sends the first audio stream"
    );
    assert_eq!(sent_by(1), vec!["customer"], "the far end the second");
    net.run_for(Duration::from_millis(500));
    assert!(recording_states(&net, 0).contains(&RecordingState::Recording));
}
