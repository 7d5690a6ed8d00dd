//! Recording sessions we open: forwarding and transcoding, metadata, mandatory gating,
//! refusals, retries and fail-over.

use super::*;

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
    let (a, _) = talk(&mut net);
    // A recorder that never answers: the recording fails after Timer B, and the far end,
    // which said Supported: record-aware, gets a re-INVITE with a=record:off.
    net.command(
        0,
        Command::StartRecording {
            call: a,
            recording: RecordingId(708),
            request: RecordingRequest {
                srs: Uri::parse("sip:srs@127.0.0.9").unwrap(),
                destination: Destination::new(Transport::Udp, "127.0.0.9:5060".parse().unwrap()),
                media_ports: vec![42000, 42002],
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
    let (a, _) = talk(&mut net);
    net.command(
        0,
        Command::StartRecording {
            call: a,
            recording: RecordingId(709),
            request: RecordingRequest {
                srs: Uri::parse("sip:srs@127.0.0.9").unwrap(),
                destination: Destination::new(Transport::Udp, "127.0.0.9:5060".parse().unwrap()),
                media_ports: vec![42000, 42002],
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
    let (a, _) = talk(&mut net);
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
    let (a, _) = talk(&mut net);
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
                recording: RecordingId(710),
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
        let dropped = net.recorder_media_dropped as f64 / net.recorder_media_sent as f64;
        assert!(
            (loss * 0.5..loss * 1.5).contains(&dropped),
            "{loss}: the recorder's link dropped {dropped}"
        );

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
    let (a, _) = talk(&mut net);
    let request = to_recorders(&net, primary, secondary);
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
    net.run_for(crate::engine::recording::MANDATORY_GRACE - Duration::from_secs(1));
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

/// A mandatory recording is not the user's to pause or stop while the call lasts (a
/// recording policy an administrator can lock relies on it): the user is told, and it goes on.
#[test]
fn a_mandatory_recording_cannot_be_paused_or_stopped_by_the_user() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(vec![CodecKind::Pcmu]);
    let (a, _) = record_call(&mut net, recorder, true);
    assert!(net.run_until(Duration::from_secs(5), |n| {
        recording_states(n, 0).contains(&RecordingState::Recording)
    }));
    net.command(0, Command::PauseRecording { call: a });
    net.command(0, Command::StopRecording { call: a });
    net.run_for(Duration::from_secs(2));
    let refusals = net
        .events(0)
        .iter()
        .filter(|e| matches!(e, Event::Warning { message, .. } if message.contains("mandatory")))
        .count();
    assert_eq!(refusals, 2, "both refused, with the reason");
    assert_eq!(
        recording_states(&net, 0).last(),
        Some(&RecordingState::Recording),
        "and it goes on: {:?}",
        recording_states(&net, 0)
    );
}
