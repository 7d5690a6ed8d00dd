//! Session timers (RFC 4028) on calls and recording sessions, both ways: the peer refreshes
//! and we watch (and end the session when the refreshes stop), or we refresh.

use core::time::Duration;

use super::scripted::*;
use super::*;
use crate::media::srtp::SrtpPolicy;

/// A call to the scripted far end over UDP, answered: the phone, our INVITE and the call.
fn call_up() -> (Phone, Message, CallId) {
    let mut phone = Phone::new(SrtpPolicy::Off);
    let call = phone.dial(&format!("sip:bob@{FAR_UDP}"), udp(FAR_UDP));
    let invite = invite_sent(&phone);
    phone.receive_from_far_end(udp(FAR_UDP), &answer(&invite, "<sip:bob@192.0.2.1:5060>"));
    (phone, invite, call)
}

/// A request from the far end inside the call our `invite` opened.
fn from_far_end(invite: &Message, method: &str, cseq: u32, headers: &str) -> Message {
    let our_contact = invite.contacts().unwrap()[0].uri.to_string();
    let text = format!(
        "{method} {our_contact} SIP/2.0\r\nVia: SIP/2.0/UDP {FAR_UDP};branch=z9hG4bKfar{method}{cseq}\r\nMax-Forwards: 70\r\nFrom: {};tag=far1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:bob@{FAR_UDP}>\r\n{headers}Content-Length: 0\r\n\r\n",
        invite.headers.get("To").unwrap(),
        invite.headers.get("From").unwrap(),
        invite.call_id().unwrap(),
    );
    Message::parse(text.as_bytes()).unwrap()
}

/// The requests of `method` sent to the far end, each once (UDP retransmissions left out).
fn sent_to_far_end(phone: &Phone, method: Method) -> Vec<Message> {
    let mut seen = Vec::new();
    phone
        .messages()
        .into_iter()
        .filter(|(to, m)| *to == udp(FAR_UDP) && m.method() == Some(&method))
        .map(|(_, m)| m)
        .filter(|m| {
            let cseq = m.cseq().map(|c| c.number).ok();
            let first = !seen.contains(&cseq);
            seen.push(cseq);
            first
        })
        .collect()
}

fn last_final_response(phone: &Phone) -> Message {
    phone
        .messages()
        .into_iter()
        .filter(|(_, m)| m.status().is_some_and(|s| s >= 200))
        .map(|(_, m)| m)
        .next_back()
        .unwrap()
}

/// Checks that exactly one refresh re-INVITE goes out `half` (half the interval) from now,
/// carrying `session_expires`, and returns it.
fn one_refresh_after(phone: &mut Phone, half: Duration, session_expires: &str) -> Message {
    let before = sent_to_far_end(phone, Method::Invite).len();
    phone.run_for(half - Duration::from_secs(1));
    assert_eq!(sent_to_far_end(phone, Method::Invite).len(), before);
    phone.run_for(Duration::from_secs(2));
    let refresh = sent_to_far_end(phone, Method::Invite).pop().unwrap();
    assert_eq!(
        sent_to_far_end(phone, Method::Invite).len(),
        before + 1,
        "one refresh at half the interval"
    );
    assert_eq!(
        refresh.headers.get("Session-Expires"),
        Some(session_expires)
    );
    refresh
}

#[test]
fn a_call_whose_far_end_stops_refreshing_ends_with_the_reason() {
    let (mut phone, invite, call) = call_up();
    let refresh = from_far_end(
        &invite,
        "UPDATE",
        2,
        "Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n",
    );
    phone.receive_from_far_end(udp(FAR_UDP), &refresh);
    let ok = last_final_response(&phone);
    assert_eq!(ok.headers.get("Session-Expires"), Some("90;refresher=uac"));
    assert!(ok.headers.has_token("Require", "timer"));
    phone.run_for(Duration::from_secs(59));
    assert!(sent_to_far_end(&phone, Method::Bye).is_empty());
    phone.run_for(Duration::from_secs(2));
    let bye = sent_to_far_end(&phone, Method::Bye).pop().expect("BYE");
    phone.receive_from_far_end(udp(FAR_UDP), &bye.response(200, "OK", None));
    let reason = phone.end_reason(call).unwrap();
    assert!(reason.contains("session timer expired"), "{reason}");
}

#[test]
fn a_far_end_that_asks_us_to_refresh_gets_a_reinvite_every_half_interval() {
    let (mut phone, invite, _) = call_up();
    let asks = from_far_end(
        &invite,
        "UPDATE",
        2,
        "Session-Expires: 100;refresher=uas\r\nSupported: timer\r\n",
    );
    phone.receive_from_far_end(udp(FAR_UDP), &asks);
    assert_eq!(
        last_final_response(&phone).headers.get("Session-Expires"),
        Some("100;refresher=uas")
    );
    let before = sent_to_far_end(&phone, Method::Invite).len();
    let refresh = one_refresh_after(&mut phone, Duration::from_secs(50), "100;refresher=uac");
    // Answered, the next refresh comes 50 s later.
    let mut ok = refresh.response(200, "OK", None);
    let sdp = "v=0\r\no=far 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";
    ok.set_body("application/sdp", sdp.as_bytes().to_vec());
    phone.receive_from_far_end(udp(FAR_UDP), &ok);
    phone.run_for(Duration::from_secs(51));
    assert_eq!(sent_to_far_end(&phone, Method::Invite).len(), before + 2);
}

/// A call we place whose far end puts `session_expires` in its 2xx.
fn call_up_with_timer(session_expires: &str) -> (Phone, Message, CallId) {
    let mut phone = Phone::new(SrtpPolicy::Off);
    let call = phone.dial(&format!("sip:bob@{FAR_UDP}"), udp(FAR_UDP));
    let invite = invite_sent(&phone);
    let mut ok = answer(&invite, "<sip:bob@192.0.2.1:5060>");
    ok.headers.push("Session-Expires", session_expires);
    ok.headers.push("Require", "timer");
    phone.receive_from_far_end(udp(FAR_UDP), &ok);
    (phone, invite, call)
}

#[test]
fn our_invite_says_we_do_session_timers_and_a_2xx_that_makes_us_refresher_is_obeyed() {
    let (mut phone, invite, _) = call_up_with_timer("120;refresher=uac");
    assert!(invite.headers.has_token("Supported", "timer"));
    assert!(invite.headers.has_token("Supported", "record-aware"));
    one_refresh_after(&mut phone, Duration::from_secs(60), "120;refresher=uac");
}

#[test]
fn a_call_whose_2xx_makes_the_far_end_refresher_ends_when_it_does_not() {
    let (mut phone, invite, call) = call_up_with_timer("90;refresher=uas");
    // A refresh within the interval keeps the call up.
    phone.run_for(Duration::from_secs(50));
    let refresh = from_far_end(
        &invite,
        "UPDATE",
        2,
        "Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n",
    );
    phone.receive_from_far_end(udp(FAR_UDP), &refresh);
    phone.run_for(Duration::from_secs(50));
    assert!(sent_to_far_end(&phone, Method::Bye).is_empty());
    assert_eq!(
        sent_to_far_end(&phone, Method::Invite).len(),
        1,
        "we never refresh a session the far end refreshes"
    );
    // Then nothing: 90 s less 30 s after the last refresh, the call is taken as gone.
    phone.run_for(Duration::from_secs(11));
    let bye = sent_to_far_end(&phone, Method::Bye).pop().expect("BYE");
    phone.receive_from_far_end(udp(FAR_UDP), &bye.response(200, "OK", None));
    let reason = phone.end_reason(call).unwrap();
    assert!(reason.contains("session timer expired"), "{reason}");
}

#[test]
fn a_2xx_without_session_expires_sets_no_timer() {
    let mut phone = Phone::new(SrtpPolicy::Off);
    phone.dial(&format!("sip:bob@{FAR_UDP}"), udp(FAR_UDP));
    let invite = invite_sent(&phone);
    phone.receive_from_far_end(udp(FAR_UDP), &answer(&invite, "<sip:bob@192.0.2.1:5060>"));
    phone.run_for(Duration::from_secs(3600));
    assert_eq!(sent_to_far_end(&phone, Method::Invite).len(), 1);
    assert!(sent_to_far_end(&phone, Method::Bye).is_empty());
}

#[test]
fn an_invite_with_a_session_interval_under_90_s_is_refused_before_ringing() {
    let mut phone = Phone::new(SrtpPolicy::Off);
    let invite = format!(
        "INVITE sip:alice@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP {FAR_UDP};branch=z9hG4bKse1\r\nMax-Forwards: 70\r\nFrom: <sip:bob@192.0.2.1>;tag=b1\r\nTo: <sip:alice@{LOCAL}>\r\nCall-ID: se1\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{FAR_UDP}>\r\nSession-Expires: 30\r\nContent-Length: 0\r\n\r\n"
    );
    phone.input(Input::Datagram {
        source: udp(FAR_UDP),
        data: invite.into_bytes(),
    });
    let refusal = last_final_response(&phone);
    assert_eq!(refusal.status(), Some(422));
    assert_eq!(refusal.headers.get("Min-SE"), Some("90"));
    assert!(
        !phone
            .events
            .iter()
            .any(|e| matches!(e, Event::IncomingCall { .. }))
    );
}
