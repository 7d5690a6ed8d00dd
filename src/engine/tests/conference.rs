//! A local conference: two calls merged, this phone the focus and the mixer. Each party
//! hears the other (and the local user), never itself; both hear by re-INVITE that our
//! Contact is a focus's; a party hanging up ends the conference.

use core::time::Duration;

use super::scripted::*;
use super::*;
use crate::media::rtp::{RtpPacket, RtpSender};
use crate::media::srtp::SrtpPolicy;

pub(super) const FAR_B: &str = "192.0.2.2:5060";
/// µ-law: 0xFF is silence, 0x80 the loudest positive sample.
const SILENCE: u8 = 0xff;
const LOUD: u8 = 0x80;

/// Two connected calls: to the far end at FAR_UDP (media from 192.0.2.1:30000) and to a
/// second one at FAR_B (media from 192.0.2.2:30000).
pub(super) fn two_calls() -> (Phone, CallId, CallId) {
    two_calls_on(Phone::new(SrtpPolicy::Off))
}

/// As [`two_calls`], on `phone`.
pub(super) fn two_calls_on(mut phone: Phone) -> (Phone, CallId, CallId) {
    let a = phone.dial(&format!("sip:alice@{FAR_UDP}"), udp(FAR_UDP));
    let invite_a = invite_sent(&phone);
    phone.receive_from_far_end(
        udp(FAR_UDP),
        &answer(&invite_a, "<sip:alice@192.0.2.1:5060>"),
    );
    let b = CallId(705);
    connect_another(&mut phone, b, (FAR_B, "bob"), 40002);
    (phone, a, b)
}

/// Places `call` from `media_port` to `user` at `far` over UDP (its media comes from its
/// address, port 30000) and has it answered.
pub(super) fn connect_another(
    phone: &mut Phone,
    call: CallId,
    (far, user): (&str, &str),
    media_port: u16,
) {
    connect_over(
        phone,
        call,
        &format!("sip:{user}@{far}"),
        udp(far),
        media_port,
    );
}

/// Places `call` from `media_port` to `target` through `over` and has it answered, with
/// SRTP when we offered it.
pub(super) fn connect_over(
    phone: &mut Phone,
    call: CallId,
    target: &str,
    over: Destination,
    media_port: u16,
) {
    phone.input(Input::Command(Command::Dial {
        call,
        request: DialRequest {
            target: Uri::parse(target).unwrap(),
            from: NameAddr::parse("<sip:me@example.com>").unwrap(),
            destination: over,
            route: None,
            credentials: None,
            media_port,
            record: None,
            srtp: None,
            notice: None,
        },
    }));
    let invite = phone
        .messages()
        .into_iter()
        .rev()
        .find_map(|(to, m)| (to == over && m.method() == Some(&Method::Invite)).then_some(m))
        .unwrap();
    let host = over.address.ip().to_string();
    let mut ok = answer(&invite, &format!("<{target}>"));
    let mut sdp = body(&ok).replace("192.0.2.1", &host);
    if body(&invite).contains("a=crypto") && !sdp.contains("a=crypto") {
        // Optional SRTP is offered as RTP/AVP with keys (RFC 4568 best effort): taken.
        sdp = sdp.replace(
            "a=sendrecv",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{FAR_KEY}\r\na=sendrecv"),
        );
    }
    ok.set_body("application/sdp", sdp.into_bytes());
    phone.receive_from_far_end(over, &ok);
}

/// The far end at FAR_UDP talking: its RTP stream, continued from call to call.
struct Talker {
    sender: RtpSender,
    sent: u32,
}

impl Talker {
    fn new() -> Talker {
        Talker {
            sender: RtpSender::new(0xa1, 1, 1),
            sent: 0,
        }
    }
}

/// What went to `far`'s media address during 1.2 s in which the far end at FAR_UDP sends
/// loud audio and everyone else (the local user, FAR_B) is silent: each payload's bytes.
fn payloads_while_a_talks(
    phone: &mut Phone,
    talker: &mut Talker,
    (a, b): (CallId, CallId),
    far: &str,
) -> Vec<Vec<u8>> {
    phone.media_sent.clear();
    let mut packet = Vec::new();
    for _ in 0..60 {
        talker
            .sender
            .build(0, 160 * talker.sent, false, &[LOUD; 160], &mut packet)
            .unwrap();
        talker.sent += 1;
        phone.input(Input::MediaPacket {
            socket: MediaSocket::Call(a),
            source: "192.0.2.1:30000".parse().unwrap(),
            data: packet.clone(),
        });
        for call in [a, b] {
            phone.input(Input::MediaTick {
                call,
                captured: vec![0.0; crate::media::FRAME_SAMPLES],
            });
        }
        phone.run_for(Duration::from_millis(20));
    }
    let far: core::net::IpAddr = far.parse().unwrap();
    phone
        .media_sent
        .iter()
        .filter(|(socket, to, _)| matches!(socket, MediaSocket::Call(_)) && to.ip() == far)
        .filter_map(|(_, _, data)| RtpPacket::parse(data).ok().map(|p| p.payload.to_vec()))
        .collect()
}

fn loud(payloads: &[Vec<u8>]) -> usize {
    payloads
        .iter()
        .filter(|p| p.iter().any(|b| *b != SILENCE))
        .count()
}

#[test]
fn merged_calls_hear_each_other_and_not_themselves() {
    let (mut phone, a, b) = two_calls();
    let mut talker = Talker::new();
    let before = payloads_while_a_talks(&mut phone, &mut talker, (a, b), "192.0.2.2");
    assert!(!before.is_empty());
    assert_eq!(loud(&before), 0, "before the merge B hears nothing of A");

    phone.input(Input::Command(Command::Merge { call: a, with: b }));
    assert!(phone.events.iter().any(|e| matches!(
        e,
        Event::LocalConference { members } if *members == vec![a, b]
    )));
    for far in [udp(FAR_UDP), udp(FAR_B)] {
        let reinvite = phone
            .messages()
            .into_iter()
            .rev()
            .find_map(|(to, m)| (to == far && m.method() == Some(&Method::Invite)).then_some(m))
            .unwrap();
        assert!(
            reinvite
                .headers
                .get("Contact")
                .unwrap()
                .ends_with(";isfocus"),
            "each party hears we are the focus: {reinvite}"
        );
    }

    let to_b = payloads_while_a_talks(&mut phone, &mut talker, (a, b), "192.0.2.2");
    let to_a = payloads_while_a_talks(&mut phone, &mut talker, (a, b), "192.0.2.1");
    assert!(
        loud(&to_b) > to_b.len() / 2,
        "B hears A: {} of {} packets",
        loud(&to_b),
        to_b.len()
    );
    assert_eq!(loud(&to_a), 0, "A does not hear itself");
}

#[test]
fn muting_mutes_the_local_user_towards_everyone_and_a_party_leaving_ends_the_conference() {
    let (mut phone, a, b) = two_calls();
    phone.input(Input::Command(Command::Merge { call: a, with: b }));
    phone.input(Input::Command(Command::Mute {
        call: a,
        muted: true,
    }));
    phone.media_sent.clear();
    for _ in 0..30 {
        for call in [a, b] {
            phone.input(Input::MediaTick {
                call,
                captured: vec![0.5; crate::media::FRAME_SAMPLES],
            });
        }
        phone.run_for(Duration::from_millis(20));
    }
    let sent: Vec<Vec<u8>> = phone
        .media_sent
        .iter()
        .filter_map(|(_, _, data)| RtpPacket::parse(data).ok().map(|p| p.payload.to_vec()))
        .collect();
    assert!(sent.len() >= 50, "{}", sent.len());
    assert_eq!(loud(&sent), 0, "the user's voice reaches neither party");

    phone.hang_up_over_udp(a);
    assert!(phone.events.iter().any(|e| matches!(
        e,
        Event::LocalConference { members } if members.is_empty()
    )));
}

#[test]
fn only_connected_calls_merge() {
    let (mut phone, a, _b) = two_calls();
    phone.input(Input::Command(Command::Merge {
        call: a,
        with: CallId(999),
    }));
    assert!(phone.events.iter().any(|e| matches!(
        e,
        Event::Warning { message, .. } if message.contains("only connected calls")
    )));
    assert!(
        !phone
            .events
            .iter()
            .any(|e| matches!(e, Event::LocalConference { .. }))
    );
}
