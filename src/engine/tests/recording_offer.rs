//! Our offer to the recorder and what deployed recorders answer to it: G.711 is always
//! offered, so a recorder that cannot decode Opus takes the call transcoded; plain RTP
//! answered to our SRTP offer is refused when the policy requires SRTP, and otherwise
//! recorded with the user told and the indicator saying so.

use core::time::Duration;

use super::scripted::*;
use super::*;
use crate::media::srtp::SrtpPolicy;
use crate::sdp::Codec;

/// The recorder, reached over TLS (so SRTP keys may go to it).
fn tls_recorder() -> Destination {
    tls("192.0.2.7:5061")
}

fn to_recorder(phone: &Phone) -> Vec<Message> {
    phone
        .messages()
        .into_iter()
        .filter(|(to, _)| *to == tls_recorder())
        .map(|(_, m)| m)
        .collect()
}

/// Starts recording `call` as `request` says and returns our INVITE to the recorder.
fn start(phone: &mut Phone, call: CallId, request: RecordingRequest) -> Message {
    phone.run_for(Duration::from_millis(200));
    phone.input(Input::Command(Command::StartRecording {
        call,
        recording: RecordingId(730),
        request,
    }));
    let invite = to_recorder(phone).into_iter().next().unwrap();
    assert_eq!(invite.method(), Some(&Method::Invite));
    invite
}

/// The recorder's 2xx to `rs_invite`, with `media` as both its m-lines.
fn recorder_answers(phone: &mut Phone, rs_invite: &Message, media: &str) {
    let mut ok = rs_invite.response(200, "OK", Some("srs1"));
    ok.headers.push("Contact", "<sips:srs@192.0.2.7:5061>");
    let sdp = format!(
        "v=0\r\no=srs 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n\
         m=audio 30000 {media}a=recvonly\r\na=label:1\r\n\
         m=audio 30002 {media}a=recvonly\r\na=label:2\r\n"
    );
    ok.set_body("application/sdp", sdp.into_bytes());
    phone.receive_from_far_end(tls_recorder(), &ok);
}

fn tls_recording_request(srtp: bool) -> RecordingRequest {
    RecordingRequest {
        srs: Uri::parse("sips:srs@192.0.2.7:5061").unwrap(),
        srtp,
        ..recording_request(tls_recorder())
    }
}

const PLAIN_PCMU: &str = "RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

#[test]
fn plain_rtp_answered_to_srtp_the_policy_requires_fails_the_recording_with_the_reason() {
    let (mut phone, call) = tls_call_answered_with("<sips:bob@192.0.2.1:5061>");
    let rs_invite = start(&mut phone, call, tls_recording_request(true));
    assert_eq!(body(&rs_invite).matches("RTP/SAVP").count(), 2);
    recorder_answers(&mut phone, &rs_invite, PLAIN_PCMU);
    let reason = states(&phone)
        .into_iter()
        .find_map(|s| match s {
            RecordingState::Retrying { reason, .. } | RecordingState::Failed { reason } => {
                Some(reason)
            }
            _ => None,
        })
        .expect("the recording is not taken as up");
    assert!(
        reason.contains("plain RTP") && reason.contains("requires SRTP"),
        "{reason}"
    );
    assert!(
        !states(&phone).iter().any(RecordingState::is_live),
        "never shown as recording: {:?}",
        states(&phone)
    );
    assert!(
        to_recorder(&phone)
            .iter()
            .any(|m| m.method() == Some(&Method::Bye)),
        "the session the recorder accepted is ended"
    );
    let sent = recording_rtp_during_a_second(&mut phone, call);
    assert!(sent.is_empty(), "no plain packet of an SRTP call: {sent:?}");
}

#[test]
fn plain_rtp_answered_to_an_encrypted_calls_recording_is_recorded_and_shown_unencrypted() {
    let (mut phone, call) = tls_call_answered_with("<sips:bob@192.0.2.1:5061>");
    let rs_invite = start(&mut phone, call, tls_recording_request(false));
    assert_eq!(
        body(&rs_invite).matches("RTP/SAVP").count(),
        2,
        "an encrypted call's recording is offered SRTP"
    );
    recorder_answers(&mut phone, &rs_invite, PLAIN_PCMU);
    assert_eq!(states(&phone).last(), Some(&RecordingState::Unencrypted));
    let warnings: Vec<&String> = phone
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Warning { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("refused SRTP"), "{}", warnings[0]);
    phone.media_sent.clear();
    let sent = recording_rtp_during_a_second(&mut phone, call);
    assert!(!sent.is_empty());
    let sizes: Vec<usize> = phone
        .media_sent
        .iter()
        .filter(|(socket, _, _)| matches!(socket, MediaSocket::Recording { .. }))
        .map(|(_, _, data)| data.len())
        .collect();
    assert!(
        sizes.iter().all(|len| *len == 12 + 160),
        "plain RTP (no SRTP tag), as the recorder asked: {sizes:?}"
    );
}

#[test]
fn an_srtp_answer_keeps_the_recording_encrypted() {
    let (mut phone, call) = tls_call_answered_with("<sips:bob@192.0.2.1:5061>");
    let rs_invite = start(&mut phone, call, tls_recording_request(true));
    recorder_answers(
        &mut phone,
        &rs_invite,
        &format!(
            "RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{FAR_KEY}\r\n"
        ),
    );
    assert_eq!(states(&phone).last(), Some(&RecordingState::Recording));
    recording_rtp_during_a_second(&mut phone, call);
    assert!(
        phone
            .media_sent
            .iter()
            .filter(|(socket, _, _)| matches!(socket, MediaSocket::Recording { .. }))
            .all(|(_, _, data)| data.len() == 12 + 160 + 10),
        "SRTP with its 80-bit tag"
    );
}

/// A phone set to Opus only, in an Opus call: the recording offer still lists G.711, and a
/// recorder that answers PCMA gets the call encoded afresh in PCMA.
#[test]
fn a_recorder_without_opus_is_offered_g711_and_gets_the_call_transcoded() {
    let mut phone = Phone::configured(SrtpPolicy::Off, |config| {
        config.codecs = vec![Codec::Opus { inband_fec: false }];
    });
    let call = phone.dial(&format!("sip:bob@{FAR_UDP}"), udp(FAR_UDP));
    let invite = invite_sent(&phone);
    let mut ok = invite.response(200, "OK", Some("far1"));
    ok.headers.push("Contact", "<sip:bob@192.0.2.1:5060>");
    ok.set_body(
        "application/sdp",
        b"v=0\r\no=far 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
          m=audio 30000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n"
            .to_vec(),
    );
    phone.receive_from_far_end(udp(FAR_UDP), &ok);
    let rs_invite = start(&mut phone, call, recording_request(tls_recorder()));
    let offer = body(&rs_invite);
    let first_line = offer.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(
        first_line.ends_with(" 111 0 8"),
        "the call's Opus first, then G.711: {first_line}"
    );
    assert!(offer.contains("a=rtpmap:0 PCMU/8000") && offer.contains("a=rtpmap:8 PCMA/8000"));
    recorder_answers(
        &mut phone,
        &rs_invite,
        "RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n",
    );
    assert_eq!(states(&phone).last(), Some(&RecordingState::Recording));
    let sent = recording_rtp_during_a_second(&mut phone, call);
    assert!(sent.len() >= 80, "both voices, every 20 ms: {}", sent.len());
    assert!(sent.iter().all(|(_, pt)| *pt == 8), "{sent:?}");
}
