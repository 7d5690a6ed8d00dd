//! Blind transfer (REFER) both ways.

use super::*;

fn transfer_states(net: &SimNet, node: NodeId) -> Vec<TransferState> {
    net.events(node)
        .iter()
        .filter_map(|e| match e {
            Event::Transfer { state, .. } => Some(state.clone()),
            _ => None,
        })
        .collect()
}

/// Bob (1) follows the transfer of his call `b` to `target` at `carol` as `new_call`.
fn follow_transfer(
    net: &mut SimNet,
    b: CallId,
    new_call: CallId,
    target: Uri,
    carol: crate::sip::transport::Destination,
) {
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
                // Not 42000: the recordings in these tests take that pair.
                media_port: 42100,
                record: None,
                srtp: None,
                notice: None,
            },
        },
    );
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
    let new_call = CallId(716);
    follow_transfer(&mut net, b, new_call, target, carol);
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
    assert_eq!(
        ours.map(|r| (r.kind, r.text)),
        Some((EndKind::Transferred, "transferred".to_owned()))
    );
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

/// Node 0 asks the far end of `call` to go to `target`; the far end refuses it with 400.
fn refused_with_400(net: &mut SimNet, call: CallId, target: &str) {
    net.command(
        0,
        Command::Transfer {
            call,
            target: Uri::parse(target).unwrap(),
        },
    );
    net.run_for(Duration::from_secs(1));
    let states = transfer_states(net, 0);
    assert!(
        matches!(
            states.last(),
            Some(TransferState::Failed { reason }) if reason.contains("400")
        ),
        "{target}: {states:?}"
    );
}

#[test]
fn a_refer_without_a_sip_target_or_outside_a_call_is_refused() {
    let mut net = two_phones(LinkConfig::default());
    let (a, _) = establish(&mut net, Transport::Udp);
    refused_with_400(&mut net, a, "tel:+15551234567");
    assert_eq!(net.engine(0).unwrap().active_calls(), 1);
    // A Replaces in the Refer-To that cannot be read is refused, not followed as a blind
    // transfer (the target would ring while the consultation goes on).
    refused_with_400(
        &mut net,
        a,
        "sip:carol@127.0.0.3?Replaces=broken%3Bto-tag%3D1",
    );
    assert!(
        !net.events(1)
            .iter()
            .any(|e| matches!(e, Event::TransferRequested { .. }))
    );
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

fn ended_call(net: &SimNet, node: NodeId, call: CallId) -> Option<EndReason> {
    net.events(node).iter().find_map(|e| match e {
        Event::CallEnded { call: c, reason } if *c == call => Some(reason.clone()),
        _ => None,
    })
}

/// The calls of an attended transfer: Alice's first call and consultation, Carol's side of
/// the consultation and of the call that replaced it, Bob's call to Carol.
struct Attended {
    a: CallId,
    consultation: CallId,
    at_carol: CallId,
    replacing: CallId,
    new_call: CallId,
}

/// Alice (0) talks to Bob (1), puts him on hold and calls Carol (2); `before_transfer` runs
/// with Carol's side of the consultation up; then Alice transfers Bob to Carol in her place
/// (Bob sends 620 Hz on his new call, Carol 440 Hz, Alice 1 kHz).
fn attended_transfer(before_transfer: impl FnOnce(&mut SimNet, CallId)) -> (SimNet, Attended) {
    attended_transfer_after(|_| {}, before_transfer)
}

/// As [`attended_transfer`], with `set_up` run first, before any call.
fn attended_transfer_after(
    set_up: impl FnOnce(&mut SimNet),
    before_transfer: impl FnOnce(&mut SimNet, CallId),
) -> (SimNet, Attended) {
    let mut net = two_phones(LinkConfig::default());
    net.add_node(config(30));
    set_up(&mut net);
    let (a, b) = establish(&mut net, Transport::Udp);
    net.command(0, Command::Hold { call: a });
    let carol = net.address(2, Transport::Udp).unwrap();
    let consultation = CallId(714);
    net.command(
        0,
        Command::Dial {
            call: consultation,
            request: DialRequest {
                target: Uri::parse(&format!("sip:carol@{}", carol.address)).unwrap(),
                from: NameAddr::parse("<sip:alice@127.0.0.1>").unwrap(),
                destination: carol,
                route: None,
                credentials: None,
                media_port: 40100,
                record: None,
                srtp: None,
                notice: None,
            },
        },
    );
    let at_carol = answer_when_ringing(&mut net, 2);
    net.attach_media(0, consultation, Some(1000.0));
    net.attach_media(2, at_carol, Some(440.0));
    net.run_for(Duration::from_secs(1));
    before_transfer(&mut net, at_carol);
    net.command(
        0,
        Command::TransferToCall {
            call: a,
            consultation,
        },
    );
    // A second click while the first REFER is out is refused here, not sent.
    net.command(
        0,
        Command::TransferToCall {
            call: a,
            consultation,
        },
    );
    let refused = transfer_states(&net, 0);
    assert!(
        matches!(&refused[..], [TransferState::Requested, TransferState::Failed { reason }]
            if reason.contains("already under way")),
        "{refused:?}"
    );
    assert!(net.run_until(Duration::from_secs(2), |n| {
        n.events(1)
            .iter()
            .any(|e| matches!(e, Event::TransferRequested { .. }))
    }));
    let target = net.events(1).iter().find_map(|e| match e {
        Event::TransferRequested { call, target, .. } if *call == b => Some(target.clone()),
        _ => None,
    });
    let target = target.unwrap();
    assert_eq!(target.headers, None, "the front end dials the bare URI");
    assert_eq!(target.user.as_deref(), Some("carol"));
    let new_call = CallId(717);
    follow_transfer(&mut net, b, new_call, target, carol);
    net.attach_media(1, new_call, Some(620.0));
    assert!(net.run_until(Duration::from_secs(5), |n| {
        n.events(2)
            .iter()
            .any(|e| matches!(e, Event::ReplacingCall { .. }))
    }));
    let replacing = net.events(2).iter().find_map(|e| match e {
        Event::ReplacingCall { call, replaces, .. } => Some((*call, *replaces)),
        _ => None,
    });
    let (replacing, replaced) = replacing.unwrap();
    assert_eq!(replaced, at_carol, "it replaces the consultation");
    let incoming_calls = net
        .events(2)
        .iter()
        .filter(|e| matches!(e, Event::IncomingCall { .. }))
        .count();
    assert_eq!(incoming_calls, 1, "Carol's phone does not ring for it");
    net.command(
        2,
        Command::Answer {
            call: replacing,
            media_port: 43000,
            record: None,
        },
    );
    net.attach_media(2, replacing, Some(440.0));
    net.run_for(Duration::from_secs(3));
    let calls = Attended {
        a,
        consultation,
        at_carol,
        replacing,
        new_call,
    };
    (net, calls)
}

/// Bob's call to Carol carries a Replaces for Alice's consultation, Carol takes it without
/// ringing and ends the consultation, and both of Alice's calls end as transferred.
#[test]
fn an_attended_transfer_replaces_the_consultation_at_the_target() {
    let (net, calls) = attended_transfer(|_, _| {});
    let Attended {
        a,
        consultation,
        at_carol,
        replacing,
        new_call,
    } = calls;
    let states = transfer_states(&net, 0);
    assert_eq!(states.last(), Some(&TransferState::Succeeded), "{states:?}");
    let refers = net
        .events(1)
        .iter()
        .filter(|e| matches!(e, Event::TransferRequested { .. }))
        .count();
    assert_eq!(refers, 1, "one REFER reached Bob");
    for call in [a, consultation] {
        let reason = ended_call(&net, 0, call).unwrap();
        assert_eq!(reason.kind, EndKind::Transferred, "{call:?}: {reason:?}");
    }
    // Carol's phone ended the consultation itself, because the new call replaced it (not
    // because Alice hung up after the transfer).
    let replaced_end = ended_call(&net, 2, at_carol).unwrap();
    assert_eq!(replaced_end.by, Party::Local, "{replaced_end:?}");
    assert_eq!(replaced_end.text, "replaced by the transferred call");
    assert!(
        ended_call(&net, 2, replacing).is_none(),
        "Bob and Carol talk"
    );
    assert!(ended_call(&net, 1, new_call).is_none());
    // Bob and Carol hear each other.
    let carol = near_the_end(net.heard(1, new_call), 440.0);
    assert!(carol > 0.1, "Bob hears Carol: {carol}");
}

/// The call that replaces Carol's consultation takes its place under its rules: Carol's
/// account's own notice, though by then the phone no longer knows the account (so the
/// replacing INVITE cannot have been matched to it).
#[test]
fn the_call_that_replaces_another_keeps_its_accounts_notice() {
    let (mut net, calls) = attended_transfer_after(
        |net| {
            let carol = net.address(2, Transport::Udp).unwrap().address;
            let account = CalledAccount {
                name: "carol".into(),
                aor: Uri::parse(&format!("sip:carol@{}", carol.ip())).unwrap(),
                srtp: None,
                notice: Some(announcement_only()),
            };
            net.command(2, Command::SetCalledAccounts(vec![account]));
        },
        |net, _| net.command(2, Command::SetCalledAccounts(Vec::new())),
    );
    let account = net.events(2).iter().find_map(|e| match e {
        Event::ReplacingCall { account, .. } => Some(account.clone()),
        _ => None,
    });
    assert_eq!(
        account,
        Some(Some("carol".into())),
        "it is on carol's account"
    );
    record_on(&mut net, 2, calls.replacing);
    let heard = net.heard(1, calls.new_call);
    let seconds = heard.len() as f64 / f64::from(crate::media::SAMPLE_RATE);
    let announced = amplitude_at(heard, seconds - 2.0, seconds, 500.0);
    assert!(
        announced > 0.1,
        "Bob hears Carol's announcement: {announced}"
    );
}

/// Node `node` records its `call` to a new simulated recorder, which it returns.
fn record_on(net: &mut SimNet, node: NodeId, call: CallId) -> NodeId {
    let recorder = net.add_recorder(vec![CodecKind::Pcmu]);
    net.command(
        node,
        Command::StartRecording {
            call,
            recording: RecordingId(721),
            request: to_recorder(net, recorder),
        },
    );
    net.run_for(Duration::from_secs(2));
    recorder
}

/// The recorder's only recording session (the replacement must not start another), and the
/// last metadata it got.
fn the_one_recording(
    net: &SimNet,
    recorder: NodeId,
) -> (
    &crate::sim::SimRecording,
    crate::recording::metadata::Metadata,
) {
    let sim = net.recorder(recorder).unwrap();
    assert_eq!(
        sim.recordings.len(),
        1,
        "one recording session, not a new one"
    );
    let recording = &sim.recordings[0];
    let last = crate::recording::metadata::parse(recording.metadata.last().unwrap()).unwrap();
    (recording, last)
}

/// The level of `frequency` in `audio` from 2.5 s to 0.5 s before its end.
fn near_the_end(audio: &[f32], frequency: f32) -> f32 {
    let seconds = audio.len() as f64 / f64::from(crate::media::SAMPLE_RATE);
    amplitude_at(audio, seconds - 2.5, seconds - 0.5, frequency)
}

/// Carol records the consultation; when Bob's call replaces it, the recording goes on in
/// the same session with Bob's voice on the far end's stream, and the metadata has Alice
/// leaving and Bob joining: who replaced whom.
#[test]
fn the_targets_recording_goes_on_with_the_call_that_replaced_the_recorded_one() {
    let mut recorder = None;
    let (mut net, calls) = attended_transfer(|net, at_carol| {
        recorder = Some(record_on(net, 2, at_carol));
    });
    let recorder = recorder.unwrap();
    net.run_for(Duration::from_secs(2));
    net.command(
        2,
        Command::Hangup {
            call: calls.replacing,
        },
    );
    net.run_for(Duration::from_secs(2));

    let (recording, last) = the_one_recording(&net, recorder);
    let aor_of = |id: &str| {
        last.participants
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.aor.clone())
            .unwrap_or_default()
    };
    let left: Vec<String> = last
        .participant_session_assocs
        .iter()
        .filter(|a| a.disassociate_time.is_some())
        .map(|a| aor_of(&a.participant_id))
        .collect();
    assert!(
        left.iter().any(|aor| aor.contains("alice")),
        "Alice left the recorded session: {left:?} in {last:?}"
    );
    assert!(
        last.participants.iter().any(|p| p.aor.contains("bob")),
        "Bob joined it: {last:?}"
    );
    // The far end's stream: Alice's 1 kHz first, Bob's 620 Hz after the replacement.
    let far = recording.audio("2");
    let early = amplitude_at(far, 0.2, 1.5, 1000.0);
    let late = near_the_end(far, 620.0);
    assert!(early > 0.1, "Alice's voice at first: {early}");
    assert!(late > 0.1, "Bob's voice after the replacement: {late}");
}

/// Bob records his call with Alice; when he is handed over to Carol (attended), his
/// recording goes on with his call to Carol: one session, Alice leaving and Carol joining.
#[test]
fn the_transferees_recording_goes_on_with_the_call_to_the_target() {
    let mut recorder = None;
    let (mut net, _) = attended_transfer(|net, _| {
        let b = incoming(net, 1).unwrap();
        recorder = Some(record_on(net, 1, b));
    });
    let recorder = recorder.unwrap();
    net.run_for(Duration::from_secs(2));
    let (recording, last) = the_one_recording(&net, recorder);
    assert!(
        last.participants.iter().any(|p| p.aor.contains("carol")),
        "Carol joined Bob's recorded session: {last:?}"
    );
    let late = near_the_end(recording.audio("2"), 440.0);
    assert!(late > 0.1, "Carol's voice on Bob's far-end stream: {late}");
}
