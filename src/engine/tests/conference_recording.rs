//! The recording of our own conference: the recorded call's session takes each party that
//! joins by re-INVITE (a stream of its own on a socket pair asked of the driver, and its
//! participant in the metadata), stops a party's stream when it leaves, and goes on with
//! another call when the recorded call's far end hangs up. The recorder is played by the
//! test.

use core::time::Duration;

use super::conference::{FAR_B, two_calls};
use super::scripted::*;
use super::*;
use crate::media::rtp::RtpSender;
use crate::recording::metadata::Metadata;

const RECORDER: &str = "192.0.2.7:5060";

fn recorder() -> Destination {
    Destination::new(Transport::Tcp, RECORDER.parse().unwrap())
}

fn requests_to_recorder(phone: &Phone) -> Vec<Message> {
    let mut seen = Vec::new();
    phone
        .messages()
        .into_iter()
        .filter(|(to, m)| *to == recorder() && m.method().is_some())
        .map(|(_, m)| m)
        // Retransmissions over TCP do not happen, but be sure: one per CSeq.
        .filter(|m| {
            let key = m.headers.get("CSeq").unwrap_or_default().to_owned();
            !seen.contains(&key) && {
                seen.push(key);
                true
            }
        })
        .collect()
}

/// The recorder's answer to our offer: every m-line we offered taken at 30000, 30002, ...
/// (port 0 where we offered port 0).
fn recorder_answer(offer: &Message, version: u32) -> Message {
    let sdp = crate::sdp::SessionDescription::parse(
        &crate::engine::recording::answer_sdp(offer)
            .unwrap()
            .to_string(),
    )
    .unwrap();
    let mut text = format!(
        "v=0\r\no=srs 1 {version} IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
    );
    for (index, media) in sdp.media.iter().enumerate() {
        let port = if media.port == 0 {
            0
        } else {
            30000 + 2 * index
        };
        let direction = if media.direction == crate::sdp::Direction::SendOnly {
            "recvonly"
        } else {
            "inactive"
        };
        text.push_str(&format!(
            "m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\na=label:{}\r\n",
            index + 1
        ));
    }
    let mut ok = offer.response(200, "OK", Some("srs1"));
    ok.headers
        .push("Contact", format!("<sip:srs@{RECORDER};transport=tcp>"));
    ok.set_body("application/sdp", text.into_bytes());
    ok
}

/// Answers every INVITE to the recorder not answered yet; returns how many.
fn recorder_answers_all(phone: &mut Phone, answered: &mut usize) -> usize {
    let mut count = 0;
    loop {
        let invites: Vec<Message> = requests_to_recorder(phone)
            .into_iter()
            .filter(|m| m.method() == Some(&Method::Invite))
            .collect();
        let Some(next) = invites.get(*answered).cloned() else {
            return count;
        };
        *answered += 1;
        count += 1;
        let ok = recorder_answer(&next, 1 + *answered as u32);
        phone.receive_from_far_end(recorder(), &ok);
    }
}

fn last_invite(phone: &Phone) -> Message {
    requests_to_recorder(phone)
        .into_iter()
        .rev()
        .find(|m| m.method() == Some(&Method::Invite))
        .unwrap()
}

fn m_lines(invite: &Message) -> Vec<(u16, Option<String>)> {
    let sdp = crate::engine::recording::answer_sdp(invite).unwrap();
    sdp.media
        .iter()
        .map(|m| {
            let label = m
                .attributes
                .iter()
                .find(|a| a.name == "label")
                .and_then(|a| a.value.clone());
            (m.port, label)
        })
        .collect()
}

/// Our port on each of the offer's m-lines (0: stopped).
fn ports_of(invite: &Message) -> Vec<u16> {
    m_lines(invite).iter().map(|(port, _)| *port).collect()
}

fn participant_with_aor<'m>(metadata: &'m Metadata, aor: &str) -> &'m str {
    &metadata
        .participants
        .iter()
        .find(|p| p.aor.contains(aor))
        .unwrap_or_else(|| panic!("no participant {aor} in {metadata:?}"))
        .id
}

/// What `participant` sends and hears, by the metadata.
fn streams_of<'m>(
    metadata: &'m Metadata,
    participant: &str,
) -> &'m crate::recording::metadata::ParticipantStreamAssoc {
    metadata
        .participant_stream_assocs
        .iter()
        .find(|a| a.participant_id == participant)
        .unwrap_or_else(|| panic!("no streams of {participant} in {metadata:?}"))
}

fn stream_of_label<'m>(metadata: &'m Metadata, label: &str) -> &'m str {
    &metadata
        .streams
        .iter()
        .find(|s| s.label == label)
        .unwrap_or_else(|| panic!("no stream {label} in {metadata:?}"))
        .id
}

/// Call A recorded (its session up), call B not, both connected.
fn recorded_a_and_b() -> (Phone, CallId, CallId, usize) {
    recorded_a_and_b_on(Phone::new(crate::media::srtp::SrtpPolicy::Off))
}

/// As [`recorded_a_and_b`], on `phone`.
fn recorded_a_and_b_on(phone: Phone) -> (Phone, CallId, CallId, usize) {
    let (mut phone, a, b) = super::conference::two_calls_on(phone);
    let answered = record_up(&mut phone, a);
    (phone, a, b, answered)
}

/// Records `call` to the recorder, which answers: how many INVITEs it answered.
fn record_up(phone: &mut Phone, call: CallId) -> usize {
    phone.input(Input::Command(Command::StartRecording {
        call,
        recording: RecordingId(715),
        request: recording_request(recorder()),
    }));
    let mut answered = 0;
    recorder_answers_all(phone, &mut answered);
    answered
}

/// One 20 ms step of both calls with the local user silent.
fn silent_step(phone: &mut Phone, (a, b): (CallId, CallId)) {
    for call in [a, b] {
        phone.input(Input::MediaTick {
            call,
            captured: vec![0.0; crate::media::FRAME_SAMPLES],
        });
    }
    phone.run_for(Duration::from_millis(20));
}

/// Where the recording's RTP went while B sends loud audio for a second and A silence:
/// each packet's socket and destination port.
fn recording_packets_while_b_talks(
    phone: &mut Phone,
    (a, b): (CallId, CallId),
) -> Vec<(MediaSocket, u16)> {
    phone.media_sent.clear();
    let mut senders = [RtpSender::new(0xa0, 1, 1), RtpSender::new(0xb0, 1, 1)];
    let mut packet = Vec::new();
    for step in 0..50u32 {
        for ((call, from, payload), sender) in
            [(a, "192.0.2.1:30000", 0xff), (b, "192.0.2.2:30000", 0x80)]
                .into_iter()
                .zip(&mut senders)
        {
            sender
                .build(0, 160 * step, false, &[payload; 160], &mut packet)
                .unwrap();
            phone.input(Input::MediaPacket {
                socket: MediaSocket::Call(call),
                source: from.parse().unwrap(),
                data: packet.clone(),
            });
        }
        silent_step(phone, (a, b));
    }
    phone
        .media_sent
        .iter()
        .filter(|(socket, _, _)| matches!(socket, MediaSocket::Recording { .. }))
        .map(|(socket, to, _)| (*socket, to.port()))
        .collect()
}

#[test]
fn merging_a_recorded_call_adds_the_new_partys_stream_and_participant_by_reinvite() {
    let (mut phone, a, b, mut answered) = recorded_a_and_b();
    let first = last_invite(&phone);
    assert_eq!(m_lines(&first).len(), 2, "a two-party recording at first");

    phone.input(Input::Command(Command::Merge { call: a, with: b }));
    assert_eq!(
        phone.bound,
        vec![(
            MediaSocket::Recording {
                recording: RecordingId(715),
                stream: 2
            },
            44002
        )],
        "a socket pair of its own for B's stream"
    );
    recorder_answers_all(&mut phone, &mut answered);
    let reinvite = last_invite(&phone);
    assert_eq!(
        reinvite.call_id(),
        first.call_id(),
        "the same recording session, not a new one"
    );
    assert_eq!(
        m_lines(&reinvite),
        vec![
            (42000, Some("1".into())),
            (42002, Some("2".into())),
            (44002, Some("3".into()))
        ],
        "B's stream is added as a third labelled m-line on its own port"
    );
    let metadata = metadata_of(&reinvite);
    let bob = participant_with_aor(&metadata, &format!("bob@{FAR_B}"));
    let stream_3 = stream_of_label(&metadata, "3");
    let bobs = streams_of(&metadata, bob);
    assert_eq!(bobs.send, vec![stream_3.to_owned()], "B sends stream 3");
    assert_eq!(bobs.recv.len(), 2, "and hears the local user and A");
    let local_user = streams_of(
        &metadata,
        participant_with_aor(&metadata, "sip:alice@example.com"),
    );
    assert!(
        local_user.recv.contains(&stream_3.to_owned()),
        "the local user hears B"
    );
    let joined = metadata
        .participant_session_assocs
        .iter()
        .find(|a| a.participant_id == bob)
        .unwrap();
    assert!(joined.associate_time.is_some() && joined.disassociate_time.is_none());

    assert!(
        phone.events.iter().any(|e| matches!(
            e,
            Event::Recording { call, recording: RecordingId(715), state: RecordingState::Recording }
                if *call == b
        )),
        "B's call shows the conference's recording"
    );

    let sent = recording_packets_while_b_talks(&mut phone, (a, b));
    let to_3: Vec<_> = sent.iter().filter(|(_, port)| *port == 30004).collect();
    assert!(
        to_3.len() >= 45,
        "B's packets reach its stream at the recorder: {} of 50",
        to_3.len()
    );
    assert!(
        to_3.iter().all(|(socket, _)| *socket
            == MediaSocket::Recording {
                recording: RecordingId(715),
                stream: 2
            }),
        "from its own socket"
    );
    assert!(
        sent.iter().any(|(_, port)| *port == 30000) && sent.iter().any(|(_, port)| *port == 30002),
        "the local user's and A's streams go on: {sent:?}"
    );
}

#[test]
fn a_party_that_leaves_has_its_stream_stopped_and_is_disassociated() {
    let (mut phone, a, b, mut answered) = recorded_a_and_b();
    phone.input(Input::Command(Command::Merge { call: a, with: b }));
    recorder_answers_all(&mut phone, &mut answered);

    phone.hang_up_over_udp(b);
    recorder_answers_all(&mut phone, &mut answered);
    let reinvite = last_invite(&phone);
    assert_eq!(
        ports_of(&reinvite),
        vec![42000, 42002, 0],
        "B's m-line is stopped with port 0, the others stay"
    );
    let metadata = metadata_of(&reinvite);
    let bob = participant_with_aor(&metadata, &format!("bob@{FAR_B}"));
    let left = metadata
        .participant_session_assocs
        .iter()
        .find(|a| a.participant_id == bob)
        .unwrap();
    assert!(left.disassociate_time.is_some(), "B left: {left:?}");
    assert!(
        metadata
            .participant_stream_assocs
            .iter()
            .all(|a| a.participant_id != bob),
        "and sends or hears nothing any more"
    );
    assert!(
        matches!(states(&phone).last(), Some(RecordingState::Recording)),
        "the recording of A goes on: {:?}",
        states(&phone)
    );
}

#[test]
fn when_the_recorded_calls_far_end_hangs_up_the_conference_recording_goes_on_with_the_other() {
    let (mut phone, a, b, mut answered) = recorded_a_and_b();
    phone.input(Input::Command(Command::Merge { call: a, with: b }));
    recorder_answers_all(&mut phone, &mut answered);
    let before = last_invite(&phone);

    phone.hang_up_over_udp(a);
    recorder_answers_all(&mut phone, &mut answered);
    let reinvite = last_invite(&phone);
    assert_eq!(reinvite.call_id(), before.call_id(), "the same session");
    assert!(
        requests_to_recorder(&phone)
            .iter()
            .all(|m| m.method() != Some(&Method::Bye)),
        "the session is not ended"
    );
    assert_eq!(
        ports_of(&reinvite),
        vec![42000, 0, 44002],
        "A's stream stops; the local user's and B's go on"
    );
    let metadata = metadata_of(&reinvite);
    let alice = participant_with_aor(&metadata, &format!("alice@{FAR_UDP}"));
    assert!(
        metadata
            .participant_session_assocs
            .iter()
            .find(|a| a.participant_id == alice)
            .unwrap()
            .disassociate_time
            .is_some(),
        "A left"
    );
    let bob = participant_with_aor(&metadata, &format!("bob@{FAR_B}"));
    let bobs = streams_of(&metadata, bob);
    assert_eq!(bobs.send, vec![stream_of_label(&metadata, "3").to_owned()]);

    let sent = recording_packets_while_b_talks(&mut phone, (a, b));
    assert!(
        sent.iter().filter(|(_, port)| *port == 30004).count() >= 45,
        "B is still recorded on its stream: {sent:?}"
    );
    assert!(
        sent.iter().any(|(_, port)| *port == 30000),
        "and the local user on theirs"
    );
    assert!(
        !sent.iter().any(|(_, port)| *port == 30002),
        "nothing goes to A's stream"
    );

    phone.hang_up_over_udp(b);
    // The end times go in one last re-INVITE; its answer brings the BYE.
    recorder_answers_all(&mut phone, &mut answered);
    assert!(
        requests_to_recorder(&phone)
            .iter()
            .any(|m| m.method() == Some(&Method::Bye)),
        "the last party hanging up ends the recording"
    );
}

#[test]
fn a_recorder_that_refuses_the_new_stream_keeps_the_session_and_the_partys_voice_is_a_gap() {
    let (mut phone, a, b, answered) = recorded_a_and_b();
    phone.input(Input::Command(Command::Merge { call: a, with: b }));
    let adding = last_invite(&phone);
    assert_eq!(m_lines(&adding).len(), 3);
    phone.receive_from_far_end(
        recorder(),
        &adding.response(488, "Not Acceptable Here", Some("srs1")),
    );

    // The recorder hears of B again at once (the refused request's metadata never reached
    // it), with B's stream stopped.
    let again = last_invite(&phone);
    assert_ne!(again.headers.get("CSeq"), adding.headers.get("CSeq"));
    assert_eq!(
        ports_of(&again),
        vec![42000, 42002, 0],
        "the refused stream is offered stopped"
    );
    // The refused INVITE took its turn: answer the one after it.
    let mut answered = answered + 1;
    assert_eq!(recorder_answers_all(&mut phone, &mut answered), 1);
    assert!(
        matches!(states(&phone).last(), Some(RecordingState::Recording)),
        "{:?}",
        states(&phone)
    );
    phone.input(Input::Command(Command::PauseRecording { call: b }));
    let pause = last_invite(&phone);
    assert_ne!(pause.headers.get("CSeq"), again.headers.get("CSeq"));
    assert!(body(&pause).contains("a=inactive"), "{pause}");
    assert_eq!(
        ports_of(&pause),
        vec![42000, 42002, 0],
        "a pause asked on B's call pauses the conference's recording, B's stream still stopped"
    );
    let metadata = metadata_of(&again);
    let bob = participant_with_aor(&metadata, &format!("bob@{FAR_B}"));
    assert!(
        metadata
            .participant_stream_assocs
            .iter()
            .filter(|a| a.participant_id == bob)
            .all(|a| a.send.is_empty()),
        "B sends no recorded stream"
    );
    assert!(
        metadata
            .gaps
            .iter()
            .any(|g| g.reason.contains("refused a stream") && g.reason.contains("bob")),
        "B's voice is a gap: {:?}",
        metadata.gaps
    );
}

#[test]
fn in_mixed_mode_the_one_stream_carries_every_partys_voice() {
    let (mut phone, a, b) = two_calls();
    phone.input(Input::Command(Command::StartRecording {
        call: a,
        recording: RecordingId(715),
        request: RecordingRequest {
            mode: RecordingMode::Mixed,
            media_ports: vec![42000],
            ..recording_request(recorder())
        },
    }));
    let mut answered = 0;
    recorder_answers_all(&mut phone, &mut answered);
    phone.input(Input::Command(Command::Merge { call: a, with: b }));
    recorder_answers_all(&mut phone, &mut answered);
    assert!(phone.bound.is_empty(), "no stream of its own in mixed mode");
    let invite = last_invite(&phone);
    assert_eq!(m_lines(&invite).len(), 1);
    let metadata = metadata_of(&invite);
    let bob = participant_with_aor(&metadata, &format!("bob@{FAR_B}"));
    let mixed = stream_of_label(&metadata, "1").to_owned();
    let bobs = streams_of(&metadata, bob);
    assert_eq!(
        (bobs.send.clone(), bobs.recv.clone()),
        (vec![mixed.clone()], vec![mixed])
    );

    recording_packets_while_b_talks(&mut phone, (a, b));
    let loud = phone
        .media_sent
        .iter()
        .filter(|(socket, _, _)| matches!(socket, MediaSocket::Recording { .. }))
        .filter_map(|(_, _, data)| crate::media::rtp::RtpPacket::parse(data).ok())
        .filter(|p| p.payload.iter().any(|byte| *byte != 0xff && *byte != 0x7f))
        .count();
    assert!(
        loud >= 40,
        "B, who is not the recorded call's far end, is in the mix: {loud}"
    );
}

#[test]
fn a_call_that_ends_while_our_reinvite_is_in_flight_still_tells_the_recorder_its_end() {
    let (mut phone, a, b, mut answered) = recorded_a_and_b();
    phone.input(Input::Command(Command::Merge { call: a, with: b }));
    recorder_answers_all(&mut phone, &mut answered);
    // A's far end leaves: the session passes to B by a re-INVITE, left unanswered while
    // B hangs up too.
    phone.hang_up_over_udp(a);
    let handover = last_invite(&phone);
    phone.hang_up_over_udp(b);
    let methods = |phone: &Phone| -> Vec<Method> {
        requests_to_recorder(phone)
            .iter()
            .filter_map(|m| m.method().cloned())
            .collect()
    };
    assert!(
        !methods(&phone).contains(&Method::Bye),
        "no BYE across our own re-INVITE: {:?}",
        methods(&phone)
    );
    phone.receive_from_far_end(recorder(), &recorder_answer(&handover, 9));
    let closing = last_invite(&phone);
    assert_ne!(closing.headers.get("CSeq"), handover.headers.get("CSeq"));
    let metadata = metadata_of(&closing);
    assert!(
        metadata.sessions[0].end_time.is_some(),
        "the end's metadata follows the answer: {metadata:?}"
    );
    phone.receive_from_far_end(recorder(), &recorder_answer(&closing, 10));
    assert_eq!(methods(&phone).last(), Some(&Method::Bye), "then the BYE");
}

#[test]
fn a_third_party_merged_later_gets_a_fourth_stream_in_the_same_session() {
    let (mut phone, a, b, mut answered) = recorded_a_and_b();
    phone.input(Input::Command(Command::Merge { call: a, with: b }));
    recorder_answers_all(&mut phone, &mut answered);
    let c = CallId(706);
    super::conference::connect_another(&mut phone, c, ("192.0.2.3:5060", "carol"), 40004);
    phone.input(Input::Command(Command::Merge { call: c, with: a }));
    recorder_answers_all(&mut phone, &mut answered);
    let reinvite = last_invite(&phone);
    assert_eq!(
        m_lines(&reinvite),
        vec![
            (42000, Some("1".into())),
            (42002, Some("2".into())),
            (44002, Some("3".into())),
            (44004, Some("4".into()))
        ],
        "Carol's stream is the fourth, on a socket pair of its own"
    );
    let metadata = metadata_of(&reinvite);
    let carol = participant_with_aor(&metadata, "carol@192.0.2.3");
    let carols = streams_of(&metadata, carol);
    assert_eq!(
        carols.send,
        vec![stream_of_label(&metadata, "4").to_owned()]
    );
    assert_eq!(carols.recv.len(), 3, "Carol hears the three others");
}

#[test]
fn a_party_that_joins_a_recorded_conference_hears_the_recording_notice() {
    let announcement: std::sync::Arc<[f32]> = (0..crate::media::SAMPLE_RATE as usize)
        .map(|i| {
            0.3 * (core::f32::consts::TAU * 500.0 * i as f32 / crate::media::SAMPLE_RATE as f32)
                .sin()
        })
        .collect();
    let phone = Phone::configured(crate::media::srtp::SrtpPolicy::Off, |config| {
        config.notice.announcement = Some(announcement);
    });
    let (mut phone, a, b, mut answered) = recorded_a_and_b_on(phone);
    let to_b_during_a_second = |phone: &mut Phone| {
        phone.media_sent.clear();
        for _ in 0..50 {
            silent_step(phone, (a, b));
        }
        phone
            .media_sent
            .iter()
            .filter(|(socket, to, _)| *socket == MediaSocket::Call(b) && to.port() == 30000)
            .filter_map(|(_, _, data)| crate::media::rtp::RtpPacket::parse(data).ok())
            .filter(|p| p.payload.iter().any(|byte| *byte != 0xff && *byte != 0x7f))
            .count()
    };
    assert_eq!(to_b_during_a_second(&mut phone), 0, "B is not recorded yet");

    phone.input(Input::Command(Command::Merge { call: a, with: b }));
    recorder_answers_all(&mut phone, &mut answered);
    let loud = to_b_during_a_second(&mut phone);
    assert!(
        loud >= 40,
        "B hears the announcement as it joins: {loud} of 50"
    );
    let reinvite_to_b = phone
        .messages()
        .into_iter()
        .rev()
        .find_map(|(to, m)| (to == udp(FAR_B) && m.method() == Some(&Method::Invite)).then_some(m))
        .unwrap();
    assert!(
        body(&reinvite_to_b).contains("a=record:on"),
        "and is told in SDP: {reinvite_to_b}"
    );
}

#[test]
fn a_party_on_an_encrypted_call_is_never_recorded_in_the_clear() {
    let mut phone = Phone::new(crate::media::srtp::SrtpPolicy::Optional);
    let a = phone.dial(&format!("sip:alice@{FAR_UDP}"), udp(FAR_UDP));
    let invite_a = invite_sent(&phone);
    phone.receive_from_far_end(
        udp(FAR_UDP),
        &answer(&invite_a, "<sip:alice@192.0.2.1:5060>"),
    );
    let answered = record_up(&mut phone, a);
    assert!(
        !body(&last_invite(&phone)).contains("RTP/SAVP"),
        "a plain call, recorded plain"
    );
    let b = CallId(705);
    super::conference::connect_over(
        &mut phone,
        b,
        &format!("sips:bob@{FAR_TLS}"),
        tls(FAR_TLS),
        40002,
    );
    assert!(
        phone.events.iter().any(|e| matches!(e, Event::Media { call, negotiated } if *call == b && negotiated.srtp.is_some())),
        "B's call is encrypted"
    );

    phone.input(Input::Command(Command::Merge { call: a, with: b }));
    phone.run_for(Duration::from_secs(10));
    // As A's call shows it (B's shows the same).
    let reasons: Vec<String> = phone
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Recording {
                call,
                state: RecordingState::Retrying { reason, .. },
                ..
            } if *call == a => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert!(
        reasons
            .first()
            .is_some_and(|r| r.contains("encrypted call (SRTP)")),
        "the plain session ends at once, saying why: {reasons:?}"
    );
    assert!(
        reasons.iter().skip(1).all(|r| r.contains("sips:")),
        "and is not set up again in the clear: {reasons:?}"
    );
    let methods: Vec<Method> = requests_to_recorder(&phone)
        .iter()
        .filter_map(|m| m.method().cloned())
        .collect();
    assert_eq!(methods.last(), Some(&Method::Bye), "{methods:?}");
    assert_eq!(
        methods.iter().filter(|m| **m == Method::Invite).count(),
        answered,
        "no new recording session without encryption"
    );
}
