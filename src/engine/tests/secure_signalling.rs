//! What may travel where: SRTP keys (SDES) only on a confidential hop, and a dialog set up
//! over TLS never sends anything off it. One engine, with the far end and the recorder
//! written by the test on documentation addresses, so "not loopback" is real to the engine.

use core::time::Duration;

use super::scripted::*;
use super::*;
use crate::media::srtp::SrtpPolicy;

#[test]
fn mandatory_srtp_over_a_plain_hop_is_refused_before_anything_is_sent() {
    let mut phone = Phone::new(SrtpPolicy::Mandatory);
    let call = phone.dial(&format!("sip:bob@{FAR_UDP}"), udp(FAR_UDP));
    assert!(
        phone.sent.is_empty(),
        "nothing may leave: {:?}",
        phone.messages()
    );
    let reason = phone.end_reason(call).unwrap();
    assert!(
        reason.contains("SRTP is mandatory") && reason.contains("in the clear over udp"),
        "{reason}"
    );
}

#[test]
fn optional_srtp_offers_keys_over_tls_and_none_over_a_plain_hop() {
    let mut phone = Phone::new(SrtpPolicy::Optional);
    phone.dial(&format!("sip:bob@{FAR_UDP}"), udp(FAR_UDP));
    let offer = body(&invite_sent(&phone));
    assert!(!offer.contains("a=crypto"), "{offer}");
    assert!(offer.contains("RTP/AVP"), "{offer}");
    let mut phone = Phone::new(SrtpPolicy::Optional);
    phone.dial(&format!("sip:bob@{FAR_TLS};transport=tls"), tls(FAR_TLS));
    assert!(body(&invite_sent(&phone)).contains("a=crypto:"));
}

#[test]
fn an_incoming_call_that_would_need_keys_on_a_plain_hop_is_refused_with_488() {
    let mut phone = Phone::new(SrtpPolicy::Mandatory);
    let invite = format!(
        "INVITE sip:alice@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKin1\r\nMax-Forwards: 70\r\nFrom: <sip:bob@192.0.2.1>;tag=b1\r\nTo: <sip:alice@{LOCAL}>\r\nCall-ID: in1\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.1:5060>\r\nContent-Length: 0\r\n\r\n"
    );
    phone.input(Input::Datagram {
        source: udp(FAR_UDP),
        data: invite.into_bytes(),
    });
    let refusal = phone
        .messages()
        .into_iter()
        .find_map(|(_, m)| m.status().filter(|s| *s >= 200).map(|s| (s, m)))
        .unwrap();
    assert_eq!(refusal.0, 488);
    assert_eq!(refusal.1.reason(), Some("SRTP Keys Need TLS"));
    assert!(
        !phone
            .events
            .iter()
            .any(|e| matches!(e, Event::IncomingCall { .. })),
        "the phone must not ring for a call it cannot take"
    );
}

#[test]
fn an_answer_that_would_leave_tls_is_acked_and_ended_over_tls() {
    let (mut phone, call) = tls_call_answered_with("<sip:bob@192.0.2.1:5060;transport=tcp>");
    let reason = phone.end_reason(call);
    assert!(reason.is_none(), "the BYE is still out: {reason:?}");
    let sent = phone.messages();
    let ack = sent
        .iter()
        .find(|(_, m)| m.method() == Some(&Method::Ack))
        .unwrap();
    let (bye_to, bye) = sent
        .iter()
        .find(|(_, m)| m.method() == Some(&Method::Bye))
        .unwrap();
    assert_eq!(ack.0, tls(FAR_TLS));
    assert_eq!(*bye_to, tls(FAR_TLS));
    phone.receive_from_far_end(tls(FAR_TLS), &bye.response(200, "OK", None));
    let reason = phone.end_reason(call).unwrap();
    assert!(reason.contains("would move the call off TLS"), "{reason}");
    assert!(
        phone.sent.iter().all(|(d, _)| *d == tls(FAR_TLS)),
        "everything went over TLS to the far end: {:?}",
        phone.sent.iter().map(|(d, _)| d).collect::<Vec<_>>()
    );
}

#[test]
fn a_target_refresh_that_would_leave_tls_is_refused_and_the_call_goes_on() {
    let (mut phone, call) = tls_call_answered_with("<sips:bob@192.0.2.1:5061>");
    let invite = invite_sent(&phone);
    let reinvite = format!(
        "INVITE sips:alice@{LOCAL}:5061 SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bKre1\r\nMax-Forwards: 70\r\nFrom: {};tag=far1\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 7 INVITE\r\nContact: <sip:bob@192.0.2.1:5060;transport=udp>\r\nContent-Length: 0\r\n\r\n",
        invite.headers.get("To").unwrap(),
        invite.headers.get("From").unwrap(),
        invite.call_id().unwrap(),
    );
    phone.sent.clear();
    phone.input(Input::Stream {
        source: tls(FAR_TLS),
        data: reinvite.into_bytes(),
    });
    let (to, refusal) = phone
        .messages()
        .into_iter()
        .find(|(_, m)| m.status().is_some_and(|s| s >= 200))
        .unwrap();
    assert_eq!(to, tls(FAR_TLS));
    assert_eq!(refusal.status(), Some(400));
    assert_eq!(refusal.reason(), Some("Contact Would Leave TLS"));
    phone.input(Input::Command(Command::Hangup { call }));
    let (bye_to, bye) = phone.messages().into_iter().last().unwrap();
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(bye_to, tls(FAR_TLS), "the dialog kept its TLS target");
}

#[test]
fn an_encrypted_call_is_not_recorded_through_a_plain_hop() {
    let (mut phone, call) = tls_call_answered_with("<sips:bob@192.0.2.1:5061>");
    phone.run_for(Duration::from_millis(200));
    let recorder = udp(RECORDER_TCP);
    let recorder = Destination::new(Transport::Tcp, recorder.address);
    phone.input(Input::Command(Command::StartRecording {
        call,
        recording: RecordingId(701),
        request: recording_request(recorder),
    }));
    assert!(
        phone.sent.iter().all(|(d, _)| *d != recorder),
        "nothing may go to the recorder"
    );
    let reason = phone
        .events
        .iter()
        .find_map(|e| match e {
            Event::Recording {
                state: RecordingState::Retrying { reason, .. },
                ..
            } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        reason.contains("the call is encrypted") && reason.contains("sips:"),
        "{reason}"
    );
}

#[test]
fn a_tls_account_registers_a_sips_contact_over_tls() {
    let mut phone = Phone::new(SrtpPolicy::Optional);
    let registrar = tls(FAR_TLS);
    phone.input(Input::Command(Command::Register {
        account: AccountId(1),
        config: AccountConfig {
            aor: NameAddr::parse("<sip:alice@example.com>").unwrap(),
            registrar: Uri::parse("sip:example.com;transport=tls").unwrap(),
            destination: registrar,
            credentials: None,
            expires: 600,
            route: None,
        },
    }));
    let (to, register) = phone.messages().into_iter().next().unwrap();
    assert_eq!(to, registrar);
    let contact = register.headers.get("Contact").unwrap();
    assert!(contact.starts_with("<sips:"), "{contact}");
    assert!(
        register
            .headers
            .get("Via")
            .unwrap()
            .starts_with("SIP/2.0/TLS")
    );
}

/// An INVITE from the far end to `user` at our address over `over`, offering PCMU over SRTP
/// only (RTP/SAVP with a key).
fn srtp_invite_to(user: &str, over: Destination, branch: &str) -> Message {
    let transport = over.transport.to_string().to_ascii_uppercase();
    let sdp = format!(
        "v=0\r\no=far 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 30000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{FAR_KEY}\r\na=sendrecv\r\n"
    );
    let text = format!(
        "INVITE sip:{user}@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/{transport} {}:{};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\nFrom: <sip:bob@192.0.2.1>;tag=b{branch}\r\nTo: <sip:{user}@{LOCAL}>\r\nCall-ID: {branch}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.1:5061;transport={}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        over.address.ip(),
        over.address.port(),
        over.transport,
        sdp.len()
    );
    Message::parse(text.as_bytes()).unwrap()
}

/// The final responses the phone sent, by Call-ID.
fn final_status(phone: &Phone, call_id: &str) -> Option<(u16, Message)> {
    phone.messages().into_iter().find_map(|(_, m)| {
        m.status()
            .filter(|s| *s >= 200 && m.call_id() == Some(call_id))
            .map(|s| (s, m))
    })
}

/// A call to one of the phone's accounts is answered under that account's SRTP policy, not
/// the phone's: here the phone's is off and alice's mandatory.
#[test]
fn an_incoming_call_follows_the_srtp_policy_of_the_account_it_is_for() {
    let mut phone = Phone::new(SrtpPolicy::Off);
    phone.input(Input::Command(Command::SetCalledAccounts(vec![
        CalledAccount {
            name: "alice's".into(),
            aor: Uri::parse(&format!("sip:alice@{LOCAL}")).unwrap(),
            srtp: Some(SrtpPolicy::Mandatory),
            notice: None,
        },
    ])));

    // To alice over TLS: it rings and is answered with keys of our own.
    phone.receive_from_far_end(tls(FAR_TLS), &srtp_invite_to("alice", tls(FAR_TLS), "in1"));
    let call = phone
        .events
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall { call, account, .. } if account.as_deref() == Some("alice's") => {
                Some(*call)
            }
            _ => None,
        })
        .expect("alice's call rings");
    phone.input(Input::Command(Command::Answer {
        call,
        media_port: 41000,
        record: None,
    }));
    let (status, ok) = final_status(&phone, "in1").unwrap();
    assert_eq!(status, 200);
    let answer = body(&ok);
    assert!(
        answer.contains("RTP/SAVP") && answer.contains("a=crypto:1"),
        "{answer}"
    );

    // To carol, who is not an account: the phone's own policy (off) cannot take SRTP only.
    phone.receive_from_far_end(tls(FAR_TLS), &srtp_invite_to("carol", tls(FAR_TLS), "in2"));
    let (status, _) = final_status(&phone, "in2").unwrap();
    assert_eq!(status, 488, "carol's call follows the phone's policy");

    // To alice over plain UDP: her mandatory SRTP cannot put keys there.
    phone.receive_from_far_end(udp(FAR_UDP), &srtp_invite_to("alice", udp(FAR_UDP), "in3"));
    let (status, refusal) = final_status(&phone, "in3").unwrap();
    assert_eq!(status, 488);
    assert_eq!(refusal.reason(), Some("SRTP Keys Need TLS"));
}
