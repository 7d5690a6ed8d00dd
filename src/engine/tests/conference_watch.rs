//! A call whose far end is a conference focus (RFC 4579): we subscribe to its conference
//! state, follow its full and partial notifications, tell the front end and the recording who
//! else is in the conference, and unsubscribe when the call ends. The focus is played by the
//! test.

use core::time::Duration;

use super::scripted::*;
use super::*;
use crate::media::srtp::SrtpPolicy;
use crate::recording::metadata::Metadata;

const FOCUS_CONTACT: &str = "<sip:conf1@192.0.2.1:5060>;isfocus";

/// A call to a focus, answered: the phone and the call.
fn call_with_focus() -> (Phone, CallId) {
    let mut phone = Phone::new(SrtpPolicy::Off);
    let call = phone.dial(&format!("sip:conf1@{FAR_UDP}"), udp(FAR_UDP));
    let invite = invite_sent(&phone);
    phone.receive_from_far_end(udp(FAR_UDP), &answer(&invite, FOCUS_CONTACT));
    (phone, call)
}

/// A call to a focus whose subscription is up and whose full state lists Bob (in since T0):
/// the phone, the call and our SUBSCRIBE.
fn subscribed_with_bob_in() -> (Phone, CallId, Message) {
    let (mut phone, call) = call_with_focus();
    let subscribe = subscribes(&phone).remove(0);
    accept(&mut phone, &subscribe);
    let full = conference_info(
        1,
        "full",
        &user("sip:bob@example.com", "Bob", "connected", T0),
    );
    phone.receive_from_far_end(udp(FAR_UDP), &notify(&subscribe, 1, "active", &full));
    (phone, call, subscribe)
}

fn subscribes(phone: &Phone) -> Vec<Message> {
    phone
        .messages()
        .into_iter()
        .filter(|(_, m)| m.method() == Some(&Method::Subscribe))
        .map(|(_, m)| m)
        .collect()
}

/// The focus accepts `subscribe` for 600 s.
fn accept(phone: &mut Phone, subscribe: &Message) {
    let mut ok = subscribe.response(200, "OK", Some("focus1"));
    ok.headers.push("Contact", "<sip:conf1@192.0.2.1:5060>");
    ok.headers.push("Expires", "600");
    phone.receive_from_far_end(udp(FAR_UDP), &ok);
}

/// A request from the far end (192.0.2.1) in a dialog: `from` (with its tag) and `to` as the
/// far end writes them, the dialog's Call-ID, `cseq`, and `contact`.
fn from_far_end(method: Method, dialog: (&str, &str, &str), cseq: u32, contact: &str) -> Message {
    let (call_id, from, to) = dialog;
    let mut request = Message::request(
        method.clone(),
        Uri::parse("sip:alice@192.0.2.10:5060").unwrap(),
    );
    request.headers.push(
        "Via",
        format!("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKf{cseq}{method}"),
    );
    request.headers.push("From", from.to_owned());
    request.headers.push("To", to.to_owned());
    request.headers.push("Call-ID", call_id.to_owned());
    request.headers.push("CSeq", format!("{cseq} {method}"));
    request.headers.push("Contact", contact.to_owned());
    request
}

/// A NOTIFY from the focus in `subscribe`'s dialog with conference state `xml`.
fn notify(subscribe: &Message, cseq: u32, state: &str, xml: &str) -> Message {
    let dialog = (
        subscribe.call_id().unwrap(),
        "<sip:conf1@192.0.2.1:5060>;tag=focus1",
        subscribe.headers.get("From").unwrap(),
    );
    let mut notify = from_far_end(Method::Notify, dialog, cseq, "<sip:conf1@192.0.2.1:5060>");
    notify.headers.push("Event", "conference");
    notify.headers.push("Subscription-State", state);
    if !xml.is_empty() {
        notify.set_body("application/conference-info+xml", xml.as_bytes().to_vec());
    }
    notify
}

fn conference_info(version: u32, state: &str, users: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" \
         entity=\"sip:conf1@192.0.2.1\" state=\"{state}\" version=\"{version}\">\
         <users state=\"{state}\">{users}</users></conference-info>"
    )
}

fn user(aor: &str, name: &str, status: &str, when: &str) -> String {
    let info = if status == "connected" {
        format!("<joining-info><when>{when}</when></joining-info>")
    } else {
        format!("<disconnection-info><when>{when}</when></disconnection-info>")
    };
    format!(
        "<user entity=\"{aor}\" state=\"full\"><display-text>{name}</display-text>\
         <endpoint entity=\"{aor}\"><status>{status}</status>{info}</endpoint></user>"
    )
}

/// The rosters the phone reported, as (address, joined, left) per member.
fn rosters(phone: &Phone) -> Vec<Vec<(String, String, Option<String>)>> {
    phone
        .events
        .iter()
        .filter_map(|e| match e {
            Event::ConferenceRoster { members, .. } => Some(
                members
                    .iter()
                    .map(|m| (m.aor.clone(), m.joined.clone(), m.left.clone()))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn ok_responses_to_notify(phone: &Phone) -> usize {
    phone
        .messages()
        .iter()
        .filter(|(_, m)| {
            m.status() == Some(200) && m.cseq().is_ok_and(|c| c.method == Method::Notify)
        })
        .count()
}

const T0: &str = "2026-12-07T10:00:00Z";
/// The times as the roster and the metadata write them.
fn written(time: &str) -> String {
    crate::recording::metadata::normalize_time(time)
}
const T1: &str = "2026-12-07T10:01:00Z";
const T2: &str = "2026-12-07T10:02:00Z";

#[test]
fn a_focus_is_subscribed_to_and_its_full_then_partial_notifications_make_the_roster() {
    let (mut phone, call) = call_with_focus();
    let sent = subscribes(&phone);
    assert_eq!(sent.len(), 1, "one SUBSCRIBE once the call is up");
    let subscribe = &sent[0];
    assert_eq!(
        subscribe.request_uri().unwrap().to_string(),
        "sip:conf1@192.0.2.1:5060",
        "to the focus's Contact"
    );
    assert_eq!(subscribe.headers.get("Event"), Some("conference"));
    assert_eq!(
        subscribe.headers.get("Accept"),
        Some("application/conference-info+xml")
    );
    assert_ne!(
        subscribe.call_id(),
        invite_sent(&phone).call_id(),
        "a dialog of its own"
    );
    accept(&mut phone, subscribe);

    let full = conference_info(
        1,
        "full",
        &[
            user("sip:alice@example.com", "Alice", "connected", T0),
            user("sip:bob@example.com", "Bob", "connected", T0),
            user("sip:conf1@192.0.2.1", "The conference", "connected", T0),
        ]
        .concat(),
    );
    phone.receive_from_far_end(
        udp(FAR_UDP),
        &notify(subscribe, 1, "active;expires=600", &full),
    );
    let carol = conference_info(
        2,
        "partial",
        &user("sip:carol@example.com", "Carol", "connected", T1),
    );
    phone.receive_from_far_end(udp(FAR_UDP), &notify(subscribe, 2, "active", &carol));
    let bob_leaves = conference_info(
        3,
        "partial",
        &user("sip:bob@example.com", "Bob", "disconnected", T2),
    );
    phone.receive_from_far_end(udp(FAR_UDP), &notify(subscribe, 3, "active", &bob_leaves));
    // The same notification again (a retransmission a new transaction would not be): stale.
    phone.receive_from_far_end(udp(FAR_UDP), &notify(subscribe, 4, "active", &bob_leaves));

    assert_eq!(
        ok_responses_to_notify(&phone),
        4,
        "every NOTIFY is answered"
    );
    let bob = |left: Option<&str>| {
        (
            "sip:bob@example.com".to_owned(),
            written(T0),
            left.map(written),
        )
    };
    let carol = ("sip:carol@example.com".to_owned(), written(T1), None);
    assert_eq!(
        rosters(&phone),
        vec![
            vec![bob(None)],
            vec![bob(None), carol.clone()],
            vec![bob(Some(T2)), carol],
        ],
        "ourselves and the focus are not listed; times are the focus's"
    );

    phone.hang_up_over_udp(call);
    let unsubscribe = subscribes(&phone).pop().unwrap();
    assert_eq!(unsubscribe.headers.get("Expires"), Some("0"));
    assert_eq!(unsubscribe.call_id(), subscribe.call_id());
    // The focus's last NOTIFY still gets its 200, not a 481.
    phone.receive_from_far_end(
        udp(FAR_UDP),
        &notify(subscribe, 5, "terminated;reason=timeout", ""),
    );
    assert_eq!(ok_responses_to_notify(&phone), 5);
}

/// Once we unsubscribed, a NOTIFY that is not the last one (it crossed the unsubscribe) is
/// answered and the wait for the last one goes on; then the subscription is forgotten.
#[test]
fn after_the_unsubscribe_a_crossing_notify_does_not_keep_the_subscription_forever() {
    let (mut phone, call) = call_with_focus();
    let subscribe = subscribes(&phone).remove(0);
    accept(&mut phone, &subscribe);
    phone.hang_up_over_udp(call);
    let full = conference_info(
        1,
        "full",
        &user("sip:bob@example.com", "Bob", "connected", T0),
    );
    phone.receive_from_far_end(udp(FAR_UDP), &notify(&subscribe, 1, "active", &full));
    assert_eq!(ok_responses_to_notify(&phone), 1);
    phone.run_for(Duration::from_secs(40));
    phone.receive_from_far_end(udp(FAR_UDP), &notify(&subscribe, 2, "active", &full));
    let refused = phone
        .messages()
        .into_iter()
        .filter(|(_, m)| m.status() == Some(481))
        .count();
    assert_eq!(
        refused, 1,
        "the subscription is gone: a late NOTIFY gets 481"
    );
}

/// A NOTIFY that arrives before the 2xx sets up the subscription's dialog, route set
/// included: our refreshes follow the focus's Record-Route.
#[test]
fn a_notify_before_the_2xx_sets_up_the_dialog_and_its_route() {
    let (mut phone, _call) = call_with_focus();
    let subscribe = subscribes(&phone).remove(0);
    let mut first = notify(
        &subscribe,
        1,
        "active;expires=600",
        &conference_info(
            1,
            "full",
            &user("sip:bob@example.com", "Bob", "connected", T0),
        ),
    );
    first
        .headers
        .push("Record-Route", "<sip:192.0.2.3:5060;lr>");
    phone.receive_from_far_end(udp(FAR_UDP), &first);
    assert_eq!(rosters(&phone).len(), 1);
    // The 2xx that follows, then the refresh time.
    accept(&mut phone, &subscribe);
    phone.run_for(Duration::from_secs(545));
    let (to, refresh) = phone
        .messages()
        .into_iter()
        .rev()
        .find(|(_, m)| m.method() == Some(&Method::Subscribe))
        .unwrap();
    assert_ne!(refresh.cseq().unwrap().number, 1, "a refresh");
    assert_eq!(
        refresh.headers.get("Route"),
        Some("<sip:192.0.2.3:5060;lr>")
    );
    assert_eq!(to, udp("192.0.2.3:5060"), "through the focus's proxy");
}

/// Someone who leaves and comes back is a new stay: the focus's join time left over from
/// the first stay is not taken for the second.
#[test]
fn a_participant_who_comes_back_gets_a_new_stay_with_a_time_after_the_first() {
    let (mut phone, _call) = call_with_focus();
    let subscribe = subscribes(&phone).remove(0);
    accept(&mut phone, &subscribe);
    let bob = |status: &str, when: &str| user("sip:bob@example.com", "Bob", status, when);
    let full = conference_info(1, "full", &bob("connected", T0));
    phone.receive_from_far_end(udp(FAR_UDP), &notify(&subscribe, 1, "active", &full));
    let leaves = conference_info(2, "partial", &bob("disconnected", T2));
    phone.receive_from_far_end(udp(FAR_UDP), &notify(&subscribe, 2, "active", &leaves));
    // Back, with the focus repeating the first join time.
    let back = conference_info(3, "partial", &bob("connected", T0));
    phone.receive_from_far_end(udp(FAR_UDP), &notify(&subscribe, 3, "active", &back));
    let last = rosters(&phone).pop().unwrap();
    assert_eq!(last.len(), 2, "two stays: {last:?}");
    assert_eq!(last[0].2, Some(written(T2)));
    assert!(
        last[1].1 != written(T0) && last[1].2.is_none(),
        "the second stay starts when it was heard: {last:?}"
    );
}

#[test]
fn a_missed_version_asks_for_the_full_state_again() {
    let (mut phone, _call, subscribe) = subscribed_with_bob_in();
    let skipped = conference_info(
        3,
        "partial",
        &user("sip:carol@example.com", "Carol", "connected", T1),
    );
    phone.receive_from_far_end(udp(FAR_UDP), &notify(&subscribe, 2, "active", &skipped));
    let sent = subscribes(&phone);
    assert_eq!(sent.len(), 2, "a refresh, for the full state");
    assert_eq!(sent[1].call_id(), subscribe.call_id(), "in the same dialog");
    assert_eq!(rosters(&phone).len(), 1, "the partial one was not applied");
}

#[test]
fn a_focus_that_refuses_or_never_notifies_leaves_the_roster_unknown_with_the_reason() {
    let unknown = |phone: &Phone| {
        phone.events.iter().find_map(|e| match e {
            Event::ConferenceUnknown { reason, .. } => Some(reason.clone()),
            _ => None,
        })
    };
    let (mut phone, _call) = call_with_focus();
    let subscribe = subscribes(&phone).remove(0);
    let refusal = subscribe.response(489, "Bad Event", Some("focus1"));
    phone.receive_from_far_end(udp(FAR_UDP), &refusal);
    let reason = unknown(&phone).unwrap();
    assert!(reason.contains("489 Bad Event"), "{reason}");
    assert!(
        reason.contains("names only the conference focus"),
        "{reason}"
    );

    let (mut phone, _call) = call_with_focus();
    let subscribe = subscribes(&phone).remove(0);
    accept(&mut phone, &subscribe);
    phone.run_for(Duration::from_secs(20));
    assert_eq!(
        unknown(&phone),
        None,
        "still within the focus's time to notify"
    );
    phone.run_for(Duration::from_secs(15));
    let reason = unknown(&phone).unwrap();
    assert!(reason.contains("never said who takes part"), "{reason}");
}

#[test]
fn a_far_end_that_is_no_focus_is_not_subscribed_to_and_a_later_reinvite_can_make_it_one() {
    let mut phone = Phone::new(SrtpPolicy::Off);
    let _call = phone.dial(&format!("sip:bob@{FAR_UDP}"), udp(FAR_UDP));
    let invite = invite_sent(&phone);
    phone.receive_from_far_end(udp(FAR_UDP), &answer(&invite, "<sip:bob@192.0.2.1:5060>"));
    assert!(subscribes(&phone).is_empty());

    // The far end merged us into a conference and says so in a re-INVITE (RFC 4579 5.2).
    let ok = answer(&invite, "<sip:bob@192.0.2.1:5060>");
    let dialog = (
        invite.call_id().unwrap(),
        ok.headers.get("To").unwrap(),
        ok.headers.get("From").unwrap(),
    );
    let mut reinvite = from_far_end(Method::Invite, dialog, 10, FOCUS_CONTACT);
    reinvite.set_body("application/sdp", ok.body.clone());
    phone.receive_from_far_end(udp(FAR_UDP), &reinvite);
    let sent = subscribes(&phone);
    assert_eq!(
        sent.len(),
        1,
        "the focus is subscribed to once it says it is one"
    );
}

fn recorder() -> Destination {
    Destination::new(Transport::Tcp, RECORDER_TCP.parse().unwrap())
}

/// Starts recording `call`; our INVITE to the recorder.
fn start_recording(phone: &mut Phone, call: CallId) -> Message {
    phone.input(Input::Command(Command::StartRecording {
        call,
        recording: RecordingId(740),
        request: super::recording_request(recorder()),
    }));
    invites_to_recorder(phone).remove(0)
}

fn invites_to_recorder(phone: &Phone) -> Vec<Message> {
    phone
        .messages()
        .into_iter()
        .filter(|(to, m)| *to == recorder() && m.method() == Some(&Method::Invite))
        .map(|(_, m)| m)
        .collect()
}

/// The recorder takes `rs_invite` on two streams.
fn recorder_accepts(phone: &mut Phone, rs_invite: &Message) {
    let mut ok = rs_invite.response(200, "OK", Some("srs1"));
    ok.headers
        .push("Contact", format!("<sip:srs@{RECORDER_TCP};transport=tcp>"));
    ok.set_body(
        "application/sdp",
        b"v=0\r\no=srs 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n\
          m=audio 30000 RTP/AVP 0\r\na=recvonly\r\na=label:1\r\n\
          m=audio 30002 RTP/AVP 0\r\na=recvonly\r\na=label:2\r\n"
            .to_vec(),
    );
    phone.receive_from_far_end(recorder(), &ok);
}

/// The first re-INVITE to the recorder after the first `skip` INVITEs that carries metadata.
fn metadata_update_after(phone: &Phone, skip: usize) -> Option<Metadata> {
    invites_to_recorder(phone)
        .into_iter()
        .skip(skip)
        .find(|m| {
            m.headers
                .get("Content-Type")
                .is_some_and(|c| c.contains("multipart"))
        })
        .map(|m| metadata_of(&m))
}

/// Bob's association with the session (joined, left) and how many streams he sends or
/// receives, as `metadata` says.
fn bob_in(metadata: &Metadata) -> Option<(Option<String>, Option<String>, usize)> {
    let bob = metadata
        .participants
        .iter()
        .find(|p| p.aor == "sip:bob@example.com")?;
    let session = metadata
        .participant_session_assocs
        .iter()
        .find(|a| a.participant_id == bob.id)?;
    let streams = metadata
        .participant_stream_assocs
        .iter()
        .filter(|a| a.participant_id == bob.id)
        .map(|a| a.send.len() + a.recv.len())
        .sum();
    Some((
        session.associate_time.clone(),
        session.disassociate_time.clone(),
        streams,
    ))
}

/// The recording's metadata names the other participants with their times, and each change
/// of the roster reaches the recorder in a new snapshot.
#[test]
fn the_recording_metadata_follows_the_roster() {
    let (mut phone, call, subscribe) = subscribed_with_bob_in();

    let rs_invite = start_recording(&mut phone, call);
    assert_eq!(
        bob_in(&metadata_of(&rs_invite)),
        Some((Some(written(T0)), None, 2)),
        "Bob, in from T0, sends in the far end's stream and hears ours"
    );
    recorder_accepts(&mut phone, &rs_invite);
    let leaves = conference_info(
        2,
        "partial",
        &user("sip:bob@example.com", "Bob", "disconnected", T2),
    );
    phone.receive_from_far_end(udp(FAR_UDP), &notify(&subscribe, 2, "active", &leaves));
    let update = metadata_update_after(&phone, 1).expect("a re-INVITE with the new snapshot");
    assert_eq!(
        bob_in(&update),
        Some((Some(written(T0)), Some(written(T2)), 0)),
        "Bob left at T2 and no longer takes part in the streams"
    );
}

/// Someone who joins while the recording's INVITE is still out is in the snapshot the
/// recorder gets as soon as it answers, not only with the next change.
#[test]
fn a_roster_heard_while_the_recording_starts_reaches_the_recorder_once_it_answers() {
    let (mut phone, call) = call_with_focus();
    let subscribe = subscribes(&phone).remove(0);
    accept(&mut phone, &subscribe);
    let rs_invite = start_recording(&mut phone, call);
    assert_eq!(bob_in(&metadata_of(&rs_invite)), None);
    let full = conference_info(
        1,
        "full",
        &user("sip:bob@example.com", "Bob", "connected", T0),
    );
    phone.receive_from_far_end(udp(FAR_UDP), &notify(&subscribe, 1, "active", &full));
    assert!(
        metadata_update_after(&phone, 1).is_none(),
        "one INVITE at a time"
    );
    recorder_accepts(&mut phone, &rs_invite);
    let update =
        metadata_update_after(&phone, 1).expect("the snapshot, once the recorder answered");
    assert_eq!(bob_in(&update), Some((Some(written(T0)), None, 2)));
}

/// A focus that challenges the SUBSCRIBE (as a PBX does) gets it again with the credentials
/// the call was placed with, and the digest checks out.
#[test]
fn a_focus_that_challenges_gets_the_calls_credentials() {
    use crate::sip::auth::{Authorization, Challenge, Credentials, DigestAlgorithm};
    let mut phone = Phone::new(SrtpPolicy::Off);
    let call = CallId(706);
    phone.input(Input::Command(Command::Dial {
        call,
        request: DialRequest {
            target: Uri::parse(&format!("sip:conf1@{FAR_UDP}")).unwrap(),
            from: NameAddr::parse("<sip:alice@example.com>").unwrap(),
            destination: udp(FAR_UDP),
            route: None,
            credentials: Some(Credentials::new("alice", "secret")),
            media_port: 40000,
            record: None,
            srtp: None,
            notice: None,
        },
    }));
    let invite = invite_sent(&phone);
    phone.receive_from_far_end(udp(FAR_UDP), &answer(&invite, FOCUS_CONTACT));
    let first = subscribes(&phone).remove(0);
    let mut challenge = first.response(401, "Unauthorized", Some("focus1"));
    let offered = Challenge::new("pbx.test", "nonce-9", DigestAlgorithm::Md5);
    challenge
        .headers
        .push("WWW-Authenticate", offered.to_string());
    phone.receive_from_far_end(udp(FAR_UDP), &challenge);
    let sent = subscribes(&phone);
    assert_eq!(sent.len(), 2, "sent again, with credentials");
    let authorization =
        Authorization::parse(sent[1].headers.get("Authorization").unwrap()).unwrap();
    assert!(
        authorization.verify("secret", "SUBSCRIBE", &[]),
        "{authorization:?}"
    );
    assert_eq!(sent[1].headers.get("Expires"), Some("600"));
    assert!(
        !phone
            .events
            .iter()
            .any(|e| matches!(e, Event::ConferenceUnknown { .. }))
    );

    // A call placed without credentials cannot answer: the roster is unknown, and why.
    let (mut phone, _call) = call_with_focus();
    let first = subscribes(&phone).remove(0);
    let mut challenge = first.response(407, "Proxy Authentication Required", Some("f"));
    challenge
        .headers
        .push("Proxy-Authenticate", offered.to_string());
    phone.receive_from_far_end(udp(FAR_UDP), &challenge);
    let reason = phone
        .events
        .iter()
        .find_map(|e| match e {
            Event::ConferenceUnknown { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(reason.contains("asks for a password"), "{reason}");
}

/// The focus may cut the subscription short in a NOTIFY (`expires=`): the refresh comes
/// before that, not at the end of the time its 2xx granted.
#[test]
fn a_focus_that_shortens_the_subscription_is_refreshed_in_time() {
    let (mut phone, _call, subscribe) = subscribed_with_bob_in();
    let shorter = notify(&subscribe, 2, "active;expires=60", "");
    phone.receive_from_far_end(udp(FAR_UDP), &shorter);
    phone.run_for(Duration::from_secs(56));
    let mut cseqs: Vec<u32> = subscribes(&phone)
        .iter()
        .map(|m| m.cseq().unwrap().number)
        .collect();
    cseqs.dedup();
    assert_eq!(cseqs.len(), 2, "refreshed within the 60 s: {cseqs:?}");
}
