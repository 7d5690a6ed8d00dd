//! Session-ID (RFC 7989) on calls both ways and on recording sessions, and the call's in the
//! recording's metadata (`<sipSessionID>`), so a recorder can tie a recording to its call.

use super::scripted::*;
use super::*;
use crate::media::srtp::SrtpPolicy;
use crate::recording::metadata;
use crate::sip::session_id::{NULL_UUID, is_uuid};

const FAR_UUID: &str = "47755a9de7794ba387653f2099600ef2";

/// The two UUIDs of a Session-ID value: the sender's and the `remote` one.
fn uuids(message: &Message) -> (String, String) {
    let value = message.headers.get("Session-ID").expect("a Session-ID");
    let (sender, remote) = value.split_once(";remote=").expect("a remote parameter");
    (sender.to_owned(), remote.to_owned())
}

fn last_sent(phone: &Phone, wanted: impl Fn(&Message) -> bool) -> Message {
    phone
        .messages()
        .into_iter()
        .map(|(_, m)| m)
        .rfind(|m| wanted(m))
        .expect("such a message was sent")
}

#[test]
fn a_call_we_place_names_both_ends_once_the_far_end_said_its_uuid() {
    let mut phone = Phone::new(SrtpPolicy::Off);
    let call = phone.dial(&format!("sip:bob@{FAR_UDP}"), udp(FAR_UDP));
    let invite = invite_sent(&phone);
    let (ours, remote) = uuids(&invite);
    assert!(is_uuid(&ours) && ours != NULL_UUID, "{ours}");
    assert_eq!(remote, NULL_UUID, "the far end's is not known yet");
    let mut ok = answer(&invite, "<sip:bob@192.0.2.1:5060>");
    ok.headers
        .push("Session-ID", format!("{FAR_UUID};remote={ours}"));
    phone.receive_from_far_end(udp(FAR_UDP), &ok);
    let ack = last_sent(&phone, |m| m.method() == Some(&Method::Ack));
    assert_eq!(uuids(&ack), (ours.clone(), FAR_UUID.to_owned()));
    phone.input(Input::Command(Command::Hangup { call }));
    let bye = last_sent(&phone, |m| m.method() == Some(&Method::Bye));
    assert_eq!(uuids(&bye), (ours, FAR_UUID.to_owned()));
}

#[test]
fn a_call_we_answer_keeps_the_callers_uuid_as_remote() {
    let mut phone = Phone::new(SrtpPolicy::Off);
    let invite = format!(
        "INVITE sip:alice@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP {FAR_UDP};branch=z9hG4bKsid1\r\nMax-Forwards: 70\r\nFrom: <sip:bob@192.0.2.1>;tag=b1\r\nTo: <sip:alice@{LOCAL}>\r\nCall-ID: sid1\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{FAR_UDP}>\r\nSession-ID: {}\r\nContent-Length: 0\r\n\r\n",
        FAR_UUID.to_ascii_uppercase() + ";remote=" + NULL_UUID
    );
    phone.input(Input::Datagram {
        source: udp(FAR_UDP),
        data: invite.into_bytes(),
    });
    let ringing = last_sent(&phone, |m| m.status() == Some(180));
    let (ours, remote) = uuids(&ringing);
    assert!(is_uuid(&ours) && ours != FAR_UUID);
    assert_eq!(remote, FAR_UUID, "kept from the caller, lowercased");
}

#[test]
fn a_recording_session_has_its_own_uuid_and_its_metadata_names_the_calls() {
    let mut phone = Phone::new(SrtpPolicy::Off);
    let call = phone.dial(&format!("sip:bob@{FAR_UDP}"), udp(FAR_UDP));
    let invite = invite_sent(&phone);
    let (call_uuid, _) = uuids(&invite);
    let mut ok = answer(&invite, "<sip:bob@192.0.2.1:5060>");
    ok.headers
        .push("Session-ID", format!("{FAR_UUID};remote={call_uuid}"));
    phone.receive_from_far_end(udp(FAR_UDP), &ok);
    let recorder = Destination::new(Transport::Tcp, RECORDER_TCP.parse().unwrap());
    phone.input(Input::Command(Command::StartRecording {
        call,
        recording: RecordingId(801),
        request: recording_request(recorder),
    }));
    let rs_invite = last_sent(&phone, |m| {
        m.method() == Some(&Method::Invite) && m.headers.has_token("Require", "siprec")
    });
    let (rs_uuid, rs_remote) = uuids(&rs_invite);
    assert!(
        is_uuid(&rs_uuid) && rs_uuid != call_uuid,
        "a session of its own"
    );
    assert_eq!(rs_remote, NULL_UUID);
    let metadata = metadata_of(&rs_invite);
    assert_eq!(
        metadata.sessions[0].sip_session_ids,
        vec![format!("{call_uuid};remote={FAR_UUID}")]
    );
}

#[test]
fn a_recording_started_later_names_the_calls_start_and_one_group_for_the_call() {
    let mut phone = Phone::new(SrtpPolicy::Off);
    let call = phone.dial(&format!("sip:bob@{FAR_UDP}"), udp(FAR_UDP));
    let started = metadata::format_time(phone.engine.config().wall_clock_at_start);
    let invite = invite_sent(&phone);
    phone.receive_from_far_end(udp(FAR_UDP), &answer(&invite, "<sip:bob@192.0.2.1:5060>"));
    phone.run_for(core::time::Duration::from_secs(10));
    let recorder = Destination::new(Transport::Tcp, RECORDER_TCP.parse().unwrap());
    phone.input(Input::Command(Command::StartRecording {
        call,
        recording: RecordingId(802),
        request: recording_request(recorder),
    }));
    let rs_invite = last_sent(&phone, |m| {
        m.method() == Some(&Method::Invite) && m.headers.has_token("Require", "siprec")
    });
    let metadata = metadata_of(&rs_invite);
    let session = &metadata.sessions[0];
    assert_eq!(
        session.start_time.as_deref(),
        Some(started.as_str()),
        "when the call began, not when its recording did"
    );
    assert_eq!(metadata.groups.len(), 1);
    assert_eq!(session.group_ref.as_ref(), Some(&metadata.groups[0].id));
    assert!(
        metadata
            .participant_session_assocs
            .iter()
            .all(|a| a.associate_time.as_deref() == Some(started.as_str())),
        "both joined when the call began"
    );
}
