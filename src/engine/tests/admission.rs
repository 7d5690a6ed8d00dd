//! Overload control: a flood of new requests while a recorded call goes on.

use super::*;

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
