//! A recording session's dialog behaves as a call's does: the recorder's UPDATE (with and
//! without SDP, a metadata request, a session-timer refresh), its refreshes stopping, and
//! re-INVITEs that cross. The recorder is played by the test.

use core::time::Duration;

use super::scripted::*;
use super::*;
use crate::media::srtp::SrtpPolicy;

const RECORDER: &str = "192.0.2.7:5060";

fn recorder() -> Destination {
    Destination::new(Transport::Tcp, RECORDER.parse().unwrap())
}

/// A connected call, recorded to the scripted recorder, which has answered: the phone, our
/// INVITE to the recorder and the call.
fn recording_up() -> (Phone, Message, CallId) {
    recording_up_with(&[])
}

/// As [`recording_up`], with these headers in the recorder's 2xx.
fn recording_up_with(headers: &[(&str, &str)]) -> (Phone, Message, CallId) {
    recording_up_on(Phone::new(SrtpPolicy::Off), headers)
}

/// As [`recording_up_with`], on `phone`.
fn recording_up_on(mut phone: Phone, headers: &[(&str, &str)]) -> (Phone, Message, CallId) {
    let call = phone.dial(&format!("sip:bob@{FAR_UDP}"), udp(FAR_UDP));
    let invite = invite_sent(&phone);
    phone.receive_from_far_end(udp(FAR_UDP), &answer(&invite, "<sip:bob@192.0.2.1:5060>"));
    phone.input(Input::Command(Command::StartRecording {
        call,
        recording: RecordingId(715),
        request: recording_request(recorder()),
    }));
    let to_recorder = requests_to_recorder(&phone);
    let rs_invite = to_recorder.first().unwrap().clone();
    assert_eq!(rs_invite.method(), Some(&Method::Invite));
    let mut ok = rs_invite.response(200, "OK", Some("srs1"));
    ok.headers
        .push("Contact", format!("<sip:srs@{RECORDER};transport=tcp>"));
    for (name, value) in headers {
        ok.headers.push(name, *value);
    }
    let sdp = "v=0\r\no=srs 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n\
               m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\na=label:1\r\n\
               m=audio 30002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\na=label:2\r\n";
    ok.set_body("application/sdp", sdp.as_bytes().to_vec());
    phone.receive_from_far_end(recorder(), &ok);
    assert!(
        requests_to_recorder(&phone)
            .iter()
            .any(|m| m.method() == Some(&Method::Ack)),
        "the recorder's 2xx is acknowledged"
    );
    (phone, rs_invite, call)
}

fn requests_to_recorder(phone: &Phone) -> Vec<Message> {
    phone
        .messages()
        .into_iter()
        .filter(|(to, m)| *to == recorder() && m.method().is_some())
        .map(|(_, m)| m)
        .collect()
}

/// The phone's final responses to the recorder, newest last.
fn responses_to_recorder(phone: &Phone) -> Vec<Message> {
    phone
        .messages()
        .into_iter()
        .filter(|(to, m)| *to == recorder() && m.status().is_some_and(|s| s >= 200))
        .map(|(_, m)| m)
        .collect()
}

/// A request from the recorder inside the recording dialog our `rs_invite` opened.
fn from_recorder(
    rs_invite: &Message,
    method: &str,
    cseq: u32,
    headers: &str,
    body: Option<(&str, &str)>,
) -> Message {
    let our_contact = rs_invite.contacts().unwrap()[0].uri.to_string();
    let (content_type, body) = match body {
        Some((content_type, body)) => (format!("Content-Type: {content_type}\r\n"), body),
        None => (String::new(), ""),
    };
    let text = format!(
        "{method} {our_contact} SIP/2.0\r\nVia: SIP/2.0/TCP {RECORDER};branch=z9hG4bKsrs{method}{cseq}\r\nMax-Forwards: 70\r\nFrom: {};tag=srs1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:srs@{RECORDER};transport=tcp>\r\n{headers}{content_type}Content-Length: {}\r\n\r\n{body}",
        rs_invite.headers.get("To").unwrap(),
        rs_invite.headers.get("From").unwrap(),
        rs_invite.call_id().unwrap(),
        body.len()
    );
    Message::parse(text.as_bytes()).unwrap()
}

const BOTH_INACTIVE: &str = "v=0\r\no=srs 1 2 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n\
    m=audio 30000 RTP/AVP 0\r\na=inactive\r\na=label:1\r\n\
    m=audio 30002 RTP/AVP 0\r\na=inactive\r\na=label:2\r\n";

/// Why the recording went to retrying.
fn retry_reason(phone: &Phone) -> String {
    states(phone)
        .into_iter()
        .find_map(|s| match s {
            RecordingState::Retrying { reason, .. } => Some(reason),
            _ => None,
        })
        .unwrap()
}

#[test]
fn a_recorders_update_is_answered_with_and_without_sdp() {
    let (mut phone, rs_invite, _) = recording_up();
    // A session-timer refresh: no SDP, and it asks for `timer`.
    let refresh = from_recorder(
        &rs_invite,
        "UPDATE",
        2,
        "Session-Expires: 120;refresher=uac\r\nRequire: timer\r\n",
        None,
    );
    phone.receive_from_far_end(recorder(), &refresh);
    let ok = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    assert_eq!(ok.headers.get("Session-Expires"), Some("120;refresher=uac"));
    assert!(ok.headers.has_token("Require", "timer"));
    assert!(ok.body.is_empty(), "no offer, no answer");
    // An offer by UPDATE: every stream inactive pauses the recording.
    let pause = from_recorder(
        &rs_invite,
        "UPDATE",
        3,
        "",
        Some(("application/sdp", BOTH_INACTIVE)),
    );
    phone.receive_from_far_end(recorder(), &pause);
    let ok = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(ok.status(), Some(200));
    let answer = String::from_utf8_lossy(&ok.body).into_owned();
    assert_eq!(answer.matches("a=inactive").count(), 2, "{answer}");
    assert_eq!(
        states(&phone).last(),
        Some(&RecordingState::Paused { by: Party::Remote })
    );
    // A snapshot request by UPDATE gets the complete metadata, and no SDP.
    let snapshot = from_recorder(
        &rs_invite,
        "UPDATE",
        4,
        "",
        Some(("application/rs-metadata-request", "")),
    );
    phone.receive_from_far_end(recorder(), &snapshot);
    let ok = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(ok.status(), Some(200));
    assert_eq!(
        ok.content_type().as_deref(),
        Some("application/rs-metadata+xml")
    );
    let xml = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(
        xml.contains("<participant") && xml.contains("<stream"),
        "{xml}"
    );
}

#[test]
fn a_session_interval_under_90_s_is_refused_with_422() {
    let (mut phone, rs_invite, _) = recording_up();
    let refresh = from_recorder(&rs_invite, "UPDATE", 2, "Session-Expires: 30\r\n", None);
    phone.receive_from_far_end(recorder(), &refresh);
    let refusal = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(refusal.status(), Some(422));
    assert_eq!(refusal.headers.get("Min-SE"), Some("90"));
}

#[test]
fn a_recording_whose_recorder_stops_refreshing_ends_with_the_reason() {
    let (mut phone, rs_invite, _) = recording_up();
    let refresh = |cseq| {
        from_recorder(
            &rs_invite,
            "UPDATE",
            cseq,
            "Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n",
            None,
        )
    };
    phone.receive_from_far_end(recorder(), &refresh(2));
    // Refreshed in time (every 50 s), the session stays up well past one interval.
    for cseq in 3..6 {
        phone.run_for(Duration::from_secs(50));
        phone.receive_from_far_end(recorder(), &refresh(cseq));
    }
    assert!(
        !requests_to_recorder(&phone)
            .iter()
            .any(|m| m.method() == Some(&Method::Bye)),
        "refreshed sessions stay up"
    );
    // Then the refreshes stop: 90 s less 30 s after the last one the session is gone.
    phone.run_for(Duration::from_secs(59));
    assert!(
        !requests_to_recorder(&phone)
            .iter()
            .any(|m| m.method() == Some(&Method::Bye))
    );
    phone.run_for(Duration::from_secs(2));
    assert!(
        requests_to_recorder(&phone)
            .iter()
            .any(|m| m.method() == Some(&Method::Bye)),
        "the session is ended with BYE"
    );
    let reason = retry_reason(&phone);
    assert!(reason.contains("session timer expired"), "{reason}");
}

#[test]
fn a_recorder_whose_2xx_makes_it_refresher_and_that_never_refreshes_loses_the_session() {
    let (mut phone, rs_invite, _) = recording_up_with(&[
        ("Session-Expires", "90;refresher=uas"),
        ("Require", "timer"),
    ]);
    assert!(rs_invite.headers.has_token("Supported", "timer"));
    let byes = |phone: &Phone| {
        requests_to_recorder(phone)
            .iter()
            .filter(|m| m.method() == Some(&Method::Bye))
            .count()
    };
    phone.run_for(Duration::from_secs(59));
    assert_eq!(byes(&phone), 0);
    phone.run_for(Duration::from_secs(2));
    assert_eq!(byes(&phone), 1, "the session is ended with BYE");
    let reason = retry_reason(&phone);
    assert!(reason.contains("session timer expired"), "{reason}");
}

#[test]
fn glare_on_a_recording_dialog_gets_491_and_our_reinvite_is_retried() {
    let (mut phone, rs_invite, call) = recording_up();
    phone.input(Input::Command(Command::PauseRecording { call }));
    let ours = requests_to_recorder(&phone).pop().unwrap();
    assert_eq!(ours.method(), Some(&Method::Invite));
    // The recorder's own re-INVITE and an offer by UPDATE cross ours: both get 491.
    for (method, cseq) in [("INVITE", 2), ("UPDATE", 3)] {
        let crossing = from_recorder(
            &rs_invite,
            method,
            cseq,
            "",
            Some(("application/sdp", BOTH_INACTIVE)),
        );
        phone.receive_from_far_end(recorder(), &crossing);
        let refusal = responses_to_recorder(&phone).pop().unwrap();
        assert_eq!(refusal.status(), Some(491), "{method}");
    }
    // The recorder refuses ours with 491 too; ours goes again after 2.1 to 4 s.
    phone.receive_from_far_end(
        recorder(),
        &ours.response(491, "Request Pending", Some("srs1")),
    );
    let invites = |phone: &Phone| {
        requests_to_recorder(phone)
            .into_iter()
            .filter(|m| m.method() == Some(&Method::Invite))
            .count()
    };
    let before = invites(&phone);
    phone.run_for(Duration::from_secs(2));
    assert_eq!(invites(&phone), before, "not before 2.1 s");
    phone.run_for(Duration::from_millis(2100));
    assert_eq!(invites(&phone), before + 1, "retried within 4 s");
    let again = requests_to_recorder(&phone).pop().unwrap();
    assert!(again.cseq().unwrap().number > ours.cseq().unwrap().number);
    assert_eq!(
        String::from_utf8_lossy(&again.body)
            .matches("a=inactive")
            .count(),
        2,
        "the retry still pauses"
    );
}

#[test]
fn a_recorder_that_asks_us_to_refresh_gets_a_reinvite_every_half_interval() {
    let (mut phone, rs_invite, _) = recording_up();
    let asks = from_recorder(
        &rs_invite,
        "UPDATE",
        2,
        "Session-Expires: 120;refresher=uas\r\nSupported: timer\r\n",
        None,
    );
    phone.receive_from_far_end(recorder(), &asks);
    let ok = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(ok.headers.get("Session-Expires"), Some("120;refresher=uas"));
    let invites = |phone: &Phone| {
        requests_to_recorder(phone)
            .into_iter()
            .filter(|m| m.method() == Some(&Method::Invite))
            .collect::<Vec<_>>()
    };
    let before = invites(&phone).len();
    phone.run_for(Duration::from_secs(59));
    assert_eq!(invites(&phone).len(), before);
    phone.run_for(Duration::from_secs(2));
    let refresh = invites(&phone).pop().unwrap();
    assert_eq!(invites(&phone).len(), before + 1);
    assert_eq!(
        refresh.headers.get("Session-Expires"),
        Some("120;refresher=uac")
    );
    assert!(refresh.headers.has_token("Supported", "timer"));
    phone.receive_from_far_end(recorder(), &refresh.response(200, "OK", Some("srs1")));
    phone.run_for(Duration::from_secs(61));
    assert_eq!(
        invites(&phone).len(),
        before + 2,
        "and again half an interval later"
    );
}

/// The recorder's streams at these two ports, recvonly, as an SDP body.
fn streams_at(port_1: u16, port_2: u16) -> String {
    format!(
        "v=0\r\no=srs 1 2 IN IP4 192.0.2.8\r\ns=-\r\nc=IN IP4 192.0.2.8\r\nt=0 0\r\n\
         m=audio {port_1} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\na=label:1\r\n\
         m=audio {port_2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\na=label:2\r\n"
    )
}

/// Some packets went out, and every one to the address the recorder moved our voice to.
fn assert_all_went_to_the_moved_recorder(sent: &[core::net::SocketAddr], why: &str) {
    assert!(!sent.is_empty(), "{why}: nothing sent");
    assert!(
        sent.iter()
            .all(|to| to.ip().to_string() == "192.0.2.8" && to.port() == 31000),
        "{why}: {sent:?}"
    );
}

/// Where the recording's packets went during a second of the call's audio.
fn recording_packets_during_a_second(
    phone: &mut Phone,
    call: CallId,
) -> Vec<core::net::SocketAddr> {
    recording_rtp_during_a_second(phone, call)
        .into_iter()
        .map(|(to, _)| to)
        .collect()
}

#[test]
fn a_recorder_that_moves_its_streams_gets_every_packet_at_the_new_address() {
    let (mut phone, rs_invite, call) = recording_up();
    let before = recording_packets_during_a_second(&mut phone, call);
    assert!(before.iter().any(|to| to.to_string() == "192.0.2.7:30000"));
    let recording_events = |phone: &Phone| {
        phone
            .events
            .iter()
            .filter(|e| matches!(e, Event::Recording { .. }))
            .count()
    };
    let events_before = recording_events(&phone);
    let moves = from_recorder(
        &rs_invite,
        "INVITE",
        2,
        "",
        Some(("application/sdp", &streams_at(31000, 31002))),
    );
    phone.receive_from_far_end(recorder(), &moves);
    let ok = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(ok.status(), Some(200));
    assert_eq!(
        String::from_utf8_lossy(&ok.body)
            .matches("a=sendonly")
            .count(),
        2
    );
    phone.receive_from_far_end(recorder(), &from_recorder(&rs_invite, "ACK", 2, "", None));
    let after = recording_packets_during_a_second(&mut phone, call);
    assert_all_went_to_the_moved_recorder(
        &after,
        "every packet of our voice goes to the new address",
    );
    // The same description again (a refresh) changes nothing.
    let again = from_recorder(
        &rs_invite,
        "UPDATE",
        3,
        "",
        Some(("application/sdp", &streams_at(31000, 31002))),
    );
    phone.receive_from_far_end(recorder(), &again);
    assert_eq!(
        responses_to_recorder(&phone).pop().unwrap().status(),
        Some(200)
    );
    assert_eq!(
        recording_events(&phone),
        events_before,
        "the indicator said Recording before, and says it still: no new event"
    );
}

#[test]
fn a_recorders_offer_that_cannot_be_taken_gets_488_and_the_session_stays() {
    let (mut phone, rs_invite, call) = recording_up();
    let one_stream = "v=0\r\no=srs 1 2 IN IP4 192.0.2.8\r\ns=-\r\nc=IN IP4 192.0.2.8\r\nt=0 0\r\n\
                      m=audio 31000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n";
    let update = from_recorder(
        &rs_invite,
        "UPDATE",
        2,
        "",
        Some(("application/sdp", one_stream)),
    );
    phone.receive_from_far_end(recorder(), &update);
    let refusal = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(refusal.status(), Some(488));
    assert!(
        refusal
            .headers
            .get("Warning")
            .is_some_and(|w| w.contains("streams"))
    );
    let still = recording_packets_during_a_second(&mut phone, call);
    assert!(
        !still.is_empty() && still.iter().all(|to| to.ip().to_string() == "192.0.2.7"),
        "{still:?}"
    );
}

#[test]
fn a_recorders_options_and_info_in_the_session_are_answered_as_in_a_call() {
    let (mut phone, rs_invite, _) = recording_up();
    let options = from_recorder(&rs_invite, "OPTIONS", 2, "", None);
    phone.receive_from_far_end(recorder(), &options);
    let ok = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(ok.status(), Some(200));
    assert!(ok.headers.has_token("Supported", "siprec"));
    assert!(
        ok.headers
            .get("Accept")
            .is_some_and(|a| a.contains("application/rs-metadata-request"))
    );
    let info = from_recorder(&rs_invite, "INFO", 3, "", None);
    phone.receive_from_far_end(recorder(), &info);
    let ok = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(ok.status(), Some(200), "not 481: the session exists");
}

#[test]
fn a_recorder_that_refuses_one_stream_is_shown_recording_one_side_only() {
    let (mut phone, rs_invite, call) = recording_up();
    let state_now = |phone: &Phone| states(phone).last().cloned();
    assert_eq!(state_now(&phone), Some(RecordingState::Recording));
    // The recorder keeps our voice and refuses the far end's (port 0 on label 2).
    let refuses = from_recorder(
        &rs_invite,
        "UPDATE",
        2,
        "",
        Some(("application/sdp", &streams_at(31000, 0))),
    );
    phone.receive_from_far_end(recorder(), &refuses);
    let ok = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(ok.status(), Some(200));
    assert!(
        body(&ok).contains("m=audio 0 RTP/AVP 0\r\n"),
        "the refused stream stays refused in our answer: {}",
        body(&ok)
    );
    assert_eq!(
        state_now(&phone),
        Some(RecordingState::OneSide {
            missing: Party::Remote
        }),
        "not Recording: the far end's voice is not taken"
    );
    let sent = recording_packets_during_a_second(&mut phone, call);
    assert!(
        !sent.is_empty() && sent.iter().all(|to| to.port() == 31000),
        "{sent:?}"
    );
    // Both streams taken again: Recording.
    let takes_both = from_recorder(
        &rs_invite,
        "UPDATE",
        3,
        "",
        Some(("application/sdp", &streams_at(31000, 31002))),
    );
    phone.receive_from_far_end(recorder(), &takes_both);
    assert_eq!(state_now(&phone), Some(RecordingState::Recording));
    // The metadata lists the stretch without the far end's voice, closed.
    let xml = String::from_utf8(phone.engine.metadata_snapshot(call)).unwrap();
    let gaps = crate::recording::metadata::parse(&xml).unwrap().gaps;
    assert_eq!(gaps.len(), 1, "{xml}");
    assert_eq!(
        gaps[0].reason,
        "the recorder refused stream 2 (the far end)"
    );
    assert!(
        gaps[0].to.is_some(),
        "closed when the stream came back: {xml}"
    );
}

#[test]
fn a_refused_pause_keeps_the_session_and_the_user_is_told() {
    let (mut phone, _, call) = recording_up();
    phone.input(Input::Command(Command::PauseRecording { call }));
    let pause = requests_to_recorder(&phone).pop().unwrap();
    assert_eq!(pause.method(), Some(&Method::Invite));
    phone.receive_from_far_end(
        recorder(),
        &pause.response(500, "Server Internal Error", Some("srs1")),
    );
    let warning = phone.events.iter().find_map(|e| match e {
        Event::Warning {
            call: Some(c),
            message,
        } if *c == call => Some(message.clone()),
        _ => None,
    });
    let warning = warning.expect("the user is told");
    assert!(
        warning.contains("refused the pause (500 Server Internal Error)"),
        "{warning}"
    );
    assert!(
        !requests_to_recorder(&phone)
            .iter()
            .any(|m| m.method() == Some(&Method::Bye)),
        "the session is kept"
    );
    assert!(!states(&phone).iter().any(|s| matches!(
        s,
        RecordingState::Failed { .. } | RecordingState::Retrying { .. }
    )));
}

#[test]
fn a_recorder_that_changes_the_codec_gets_the_new_one() {
    let (mut phone, rs_invite, call) = recording_up();
    let before = recording_rtp_during_a_second(&mut phone, call);
    assert!(
        !before.is_empty() && before.iter().all(|(_, pt)| *pt == 0),
        "PCMU copied"
    );
    // The recorder re-offers PCMA only, at the same ports.
    let pcma = "v=0\r\no=srs 1 2 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n\
                m=audio 30000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=recvonly\r\na=label:1\r\n\
                m=audio 30002 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=recvonly\r\na=label:2\r\n";
    let update = from_recorder(&rs_invite, "UPDATE", 2, "", Some(("application/sdp", pcma)));
    phone.receive_from_far_end(recorder(), &update);
    let ok = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(ok.status(), Some(200));
    let answer = body(&ok);
    assert_eq!(
        answer
            .lines()
            .filter(|l| l.starts_with("m=audio") && l.ends_with(" RTP/AVP 8"))
            .count(),
        2,
        "the answer names only the codec taken (RFC 3264 6.1): {answer}"
    );
    let after = recording_rtp_during_a_second(&mut phone, call);
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|(_, pt)| *pt == 8),
        "the call's PCMU is encoded afresh as PCMA: {after:?}"
    );
}

#[test]
fn a_recorders_offerless_reinvite_gets_our_offer_and_its_answer_in_the_ack_moves_the_streams() {
    let (mut phone, rs_invite, call) = recording_up();
    let reinvite = from_recorder(&rs_invite, "INVITE", 2, "", None);
    phone.receive_from_far_end(recorder(), &reinvite);
    let ok = responses_to_recorder(&phone).pop().unwrap();
    assert_eq!(ok.status(), Some(200));
    let offer = body(&ok);
    assert_eq!(offer.matches("a=sendonly").count(), 2, "{offer}");
    assert!(
        offer.contains("a=label:1") && offer.contains("a=label:2"),
        "{offer}"
    );
    let ack = from_recorder(
        &rs_invite,
        "ACK",
        2,
        "",
        Some(("application/sdp", &streams_at(31000, 31002))),
    );
    phone.receive_from_far_end(recorder(), &ack);
    let after = recording_packets_during_a_second(&mut phone, call);
    assert_all_went_to_the_moved_recorder(
        &after,
        "the answer in the ACK is where our voice goes now",
    );
    assert_eq!(
        states(&phone).last(),
        Some(&RecordingState::Recording),
        "no new state: still recording"
    );
}

/// Each recording stream sends RTCP sender reports to the recorder's RTCP port (the RTP port
/// plus one): its own SSRC, the recording's one CNAME, a wall-clock time mapped to the
/// stream's RTP clock; and BYE when the recording ends. Each stream has a socket pair of its
/// own: the offer names a port per stream, and its RTP and RTCP leave from its own socket,
/// so a recorder that tells streams apart by their source (or reads RTCP per port) can.
#[test]
fn each_recording_stream_sends_sender_reports_and_a_bye_at_the_end_from_its_own_port() {
    use crate::media::rtcp::{self, RtcpPacket};
    use crate::media::rtp::RtpPacket;
    let (mut phone, rs_invite, call) = recording_up();
    let offer = body(&rs_invite);
    assert!(offer.contains("m=audio 42000 "), "{offer}");
    assert!(offer.contains("m=audio 42002 "), "{offer}");
    phone.media_sent.clear();
    // The far end talks too (PCMU from its answer's address), so both streams carry packets.
    let mut far_end = crate::media::rtp::RtpSender::new(0xfa, 1, 1);
    let mut packet = Vec::new();
    for n in 0..400u32 {
        far_end
            .build(0, 160 * n, false, &[0xff; 160], &mut packet)
            .unwrap();
        phone.input(Input::MediaPacket {
            socket: MediaSocket::Call(call),
            source: "192.0.2.1:30000".parse().unwrap(),
            data: packet.clone(),
        });
        phone.input(Input::MediaTick {
            call,
            captured: vec![0.1; crate::media::FRAME_SAMPLES],
        });
        phone.run_for(Duration::from_millis(20));
    }
    let to_recorder = |phone: &Phone, port: u16| -> Vec<Vec<u8>> {
        phone
            .media_sent
            .iter()
            .chain(&phone.rtcp_sent)
            .filter(|(socket, to, _)| {
                matches!(socket, MediaSocket::Recording { .. }) && to.port() == port
            })
            .map(|(_, _, data)| data.clone())
            .collect()
    };
    let rtp_ssrc = |port: u16| {
        let packets = to_recorder(&phone, port);
        RtpPacket::parse(packets.last().unwrap()).unwrap().ssrc
    };
    let (ssrc_1, ssrc_2) = (rtp_ssrc(30000), rtp_ssrc(30002));
    assert_ne!(ssrc_1, ssrc_2);
    let mut cnames = Vec::new();
    for (rtcp_port, ssrc) in [(30001, ssrc_1), (30003, ssrc_2)] {
        let reports = to_recorder(&phone, rtcp_port);
        assert!(
            reports.len() >= 2,
            "8 s of a stream: a report every 5 s or so, the first sooner: {}",
            reports.len()
        );
        let packets = rtcp::parse(reports.last().unwrap()).unwrap();
        let RtcpPacket::Sr(sr) = &packets[0] else {
            panic!("{packets:?}")
        };
        assert_eq!(sr.ssrc, ssrc, "the report speaks for the stream it follows");
        assert!(sr.sender.packet_count >= 250, "{}", sr.sender.packet_count);
        let wall = rtcp::NTP_UNIX_OFFSET + phone.engine.config().wall_clock_at_start;
        assert!(
            (sr.sender.ntp_time >> 32) >= wall.as_secs(),
            "NTP time counts from 1900"
        );
        let RtcpPacket::Sdes(chunks) = &packets[1] else {
            panic!("{packets:?}")
        };
        cnames.push(chunks[0].items[0].text.clone());
    }
    assert_eq!(cnames[0], cnames[1], "one CNAME: one sender, one clock");
    let stream_of = |port: u16| MediaSocket::Recording {
        recording: RecordingId(715),
        stream: usize::from(port >= 30002),
    };
    let recording_packets: Vec<_> = phone
        .media_sent
        .iter()
        .chain(&phone.rtcp_sent)
        .filter(|(socket, _, _)| socket.recording().is_some())
        .collect();
    for (socket, to, _) in recording_packets {
        assert_eq!(*socket, stream_of(to.port()), "to {to}");
    }
    phone.rtcp_sent.clear();
    phone.hang_up_over_udp(call);
    for port in [30001, 30003] {
        let last = to_recorder(&phone, port);
        let packets = rtcp::parse(last.last().expect("a last report")).unwrap();
        assert!(
            matches!(packets.last(), Some(RtcpPacket::Bye(_))),
            "{packets:?}"
        );
    }
}

/// The recorder's receiver reports on our streams: one that says it lost most of a stream
/// is shown to the user (once), naming the stream; a report on someone else's SSRC is not.
#[test]
fn a_recorder_reporting_heavy_loss_on_a_stream_is_shown() {
    use crate::media::rtcp::{self, ReportBlock};
    use crate::media::rtp::RtpPacket;
    let (mut phone, _, call) = recording_up();
    let sent = recording_rtp_during_a_second(&mut phone, call);
    assert!(!sent.is_empty());
    let (_, to, data) = phone
        .media_sent
        .iter()
        .rev()
        .find(|(socket, to, _)| {
            matches!(socket, MediaSocket::Recording { .. }) && to.port() == 30000
        })
        .unwrap()
        .clone();
    assert_eq!(to.port(), 30000);
    let ssrc_1 = RtpPacket::parse(&data).unwrap().ssrc;
    let report = |ssrc: u32, fraction_lost: u8| {
        let block = ReportBlock {
            ssrc,
            fraction_lost,
            ..ReportBlock::default()
        };
        let mut data = Vec::new();
        rtcp::write(
            &rtcp::compound_report(0x5e5, None, vec![block], "srs"),
            &mut data,
        )
        .unwrap();
        data
    };
    let warnings = |phone: &Phone| {
        phone
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Warning { message, .. } if message.contains("reports losing") => {
                    Some(message.clone())
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let from_recorder: core::net::SocketAddr = "192.0.2.7:30001".parse().unwrap();
    for (ssrc, lost) in [(ssrc_1, 0), (ssrc_1 ^ 1, 255)] {
        phone.input(Input::MediaPacket {
            socket: MediaSocket::Recording {
                recording: RecordingId(715),
                stream: 0,
            },
            source: from_recorder,
            data: report(ssrc, lost),
        });
    }
    assert!(warnings(&phone).is_empty(), "{:?}", warnings(&phone));
    for _ in 0..2 {
        phone.input(Input::MediaPacket {
            socket: MediaSocket::Recording {
                recording: RecordingId(715),
                stream: 0,
            },
            source: from_recorder,
            data: report(ssrc_1, 255),
        });
    }
    assert_eq!(
        warnings(&phone),
        vec!["the recorder reports losing 99% of stream 1: that part of the recording is missing"]
    );
}

/// A recorder that sent receiver reports and then stopped, while it still answers our
/// probes, no longer receives the recording: after three report intervals the session is
/// taken as failed, its gap starting at the last report.
#[test]
fn a_recorder_whose_receiver_reports_stop_is_no_longer_taken_as_recording() {
    use crate::media::rtcp::{self, ReportBlock};
    use crate::media::rtp::RtpPacket;
    let phone = Phone::configured(SrtpPolicy::Off, |config| {
        config.recorder_probe_interval = Some(Duration::from_secs(2));
    });
    let (mut phone, _, call) = recording_up_on(phone, &[]);
    // The recorder answers every probe; it sends one receiver report, then no more.
    let mut answered = 0;
    let mut reported = false;
    for _ in 0..250 {
        phone.input(Input::MediaTick {
            call,
            captured: vec![0.1; crate::media::FRAME_SAMPLES],
        });
        phone.run_for(Duration::from_millis(100));
        let probes: Vec<Message> = requests_to_recorder(&phone)
            .into_iter()
            .filter(|m| m.method() == Some(&Method::Options))
            .collect();
        for probe in probes.iter().skip(answered) {
            phone.receive_from_far_end(recorder(), &probe.response(200, "OK", Some("srs1")));
        }
        answered = probes.len();
        let ours = phone.media_sent.iter().find(|(socket, to, _)| {
            matches!(socket, MediaSocket::Recording { .. }) && to.port() == 30000
        });
        if let (false, Some((_, _, data))) = (reported, ours) {
            let block = ReportBlock {
                ssrc: RtpPacket::parse(data).unwrap().ssrc,
                ..ReportBlock::default()
            };
            let mut report = Vec::new();
            rtcp::write(
                &rtcp::compound_report(0x5e5, None, vec![block], "srs"),
                &mut report,
            )
            .unwrap();
            phone.input(Input::MediaPacket {
                socket: MediaSocket::Recording {
                    recording: RecordingId(715),
                    stream: 0,
                },
                source: "192.0.2.7:30001".parse().unwrap(),
                data: report,
            });
            reported = true;
        }
    }
    assert!(reported);
    assert!(answered >= 5, "probed every 2 s: {answered}");
    let reason = states(&phone)
        .into_iter()
        .find_map(|s| match s {
            RecordingState::Retrying { reason, .. } => Some(reason),
            _ => None,
        })
        .expect("no longer Recording");
    assert!(reason.contains("no receiver reports since"), "{reason}");
}

/// ICMP port unreachable for a recording stream's RTP destination fails the recording at
/// once; for its RTCP port (many recorders do not listen there) it changes nothing.
#[test]
fn an_unreachable_rtp_port_at_the_recorder_fails_the_recording_but_its_rtcp_port_does_not() {
    let (mut phone, _, _) = recording_up();
    let unreachable = |phone: &mut Phone, port: u16| {
        phone.input(Input::MediaUnreachable {
            socket: MediaSocket::Recording {
                recording: RecordingId(715),
                stream: 0,
            },
            destination: core::net::SocketAddr::new([192, 0, 2, 7].into(), port),
        });
    };
    unreachable(&mut phone, 30001);
    unreachable(&mut phone, 30003);
    assert_eq!(states(&phone).last(), Some(&RecordingState::Recording));
    unreachable(&mut phone, 30002);
    assert!(
        matches!(
            states(&phone).last(),
            Some(RecordingState::Retrying { reason, .. }) if reason.contains("ICMP port unreachable")
        ),
        "{:?}",
        states(&phone)
    );
}
