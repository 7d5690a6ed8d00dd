#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Attended transfer (RFC 5589 7: REFER with a Replaces, RFC 3891) with the phone in each
//! role and sipp in the others, all on 127.0.0.1:
//!
//! * transferor: `verbatim call --consult` puts sipp (the transferee) on hold, calls sipp
//!   (the target), and REFERs the transferee with a Replaces that must name the
//!   consultation's dialog as the target saw it;
//! * transferee: `verbatim answer` follows sipp's REFER, and its INVITE to the sipp target
//!   carries the Replaces unescaped, with `Require: replaces`;
//! * target: `verbatim answer` takes sipp's INVITE with a Replaces for its call with sipp
//!   without ringing and ends that call.
//!
//! (baresip 1.0 cannot be the transferee: it dials the Refer-To with its headers as the
//! request URI, the escapes mangled.)

mod support;

use std::time::Duration;

use support::{
    Peer, Proto, START_TIMEOUT, Scenario, free_port, sipp_scenario, start_sipp, start_sipp_uas,
    start_verbatim,
};

const TIMEOUT: Duration = Duration::from_secs(20);

/// The header `name` of the first message in a sipp message log whose first line starts
/// with `start`.
fn header_of_first(log: &str, start: &str, name: &str) -> String {
    let message = log
        .split("\n\n")
        .find(|chunk| chunk.lines().any(|l| l.trim_start().starts_with(start)))
        .unwrap_or_else(|| panic!("no {start} message in the log:\n{log}"));
    let mut lines = message
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(start));
    lines
        .find_map(|l| {
            let (header, value) = l.split_once(':')?;
            header
                .trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} in the {start} message:\n{message}"))
}

/// `%XX` escapes undone.
fn unescape(value: &str) -> String {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// `verbatim answer` on `port` for one call: the call it places to follow a transfer, and
/// one that replaces its own, count on their own.
fn answering_phone(name: &str, port: u16) -> Peer {
    let mut phone = Peer::new(name);
    start_verbatim(
        &mut phone,
        [
            "answer",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--calls",
            "1",
        ],
    );
    phone.wait_until_listening(Proto::Udp, port, START_TIMEOUT);
    phone
}

fn tag_of(header: &str) -> String {
    header
        .split(';')
        .find_map(|p| p.trim().strip_prefix("tag="))
        .unwrap_or_else(|| panic!("no tag in {header}"))
        .trim_end_matches('>')
        .to_owned()
}

/// `verbatim call --consult`: the phone calls sipp `transferee` (a scenario), consults sipp
/// `target`, and transfers at 1 s; returns the phone, both sipps and the target's port.
fn consult_and_transfer(
    name: &str,
    transferee_scenario: &str,
    target_scenario: &str,
    duration: &str,
) -> (Peer, Peer, Peer, u16) {
    let transferee_port = free_port();
    let target_port = free_port();
    let mut transferee = Peer::new(&format!("sipp-{name}-transferee"));
    start_sipp_uas(
        &mut transferee,
        &Scenario::File(sipp_scenario(transferee_scenario)),
        transferee_port,
        "u1",
        &[],
    );
    let mut target = Peer::new(&format!("sipp-{name}-target"));
    start_sipp_uas(
        &mut target,
        &Scenario::File(sipp_scenario(target_scenario)),
        target_port,
        "u1",
        &[],
    );
    let mut phone = Peer::new(&format!("verbatim-{name}"));
    start_verbatim(
        &mut phone,
        [
            "call",
            &format!("sip:peer@127.0.0.1:{transferee_port}"),
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--duration",
            duration,
            "--consult",
            &format!("sip:carol@127.0.0.1:{target_port}"),
            "--transfer-at",
            "1",
        ],
    );
    (phone, transferee, target, target_port)
}

#[test]
fn as_the_transferor_the_phone_refers_the_transferee_to_its_consultation_with_replaces() {
    let (mut phone, mut transferee, mut target, target_port) = consult_and_transfer(
        "attended-transferor",
        "attended_transferee.xml",
        "attended_target.xml",
        "10",
    );
    phone.expect_success(TIMEOUT);
    transferee.expect_success(TIMEOUT);
    target.expect_success(TIMEOUT);
    let log = phone.report();
    for step in [
        "consultation: connected",
        "transfer: accepted",
        "transfer: the target answered",
        "call transferred",
    ] {
        assert!(log.contains(step), "no {step:?} in the phone's log:\n{log}");
    }

    // The Replaces names the consultation as the target saw it: its Call-ID, the target's
    // own tag as to-tag, the phone's as from-tag.
    let target_log = std::fs::read_to_string(target.path("sipp_messages.log")).unwrap();
    let call_id = header_of_first(&target_log, "INVITE sip:", "Call-ID");
    let from_tag = tag_of(&header_of_first(&target_log, "INVITE sip:", "From"));
    let transferee_log = std::fs::read_to_string(transferee.path("sipp_messages.log")).unwrap();
    let refer_to = unescape(&header_of_first(&transferee_log, "REFER sip:", "Refer-To"));
    let expected = format!("?Replaces={call_id};to-tag=target-tag-1;from-tag={from_tag}>");
    assert!(
        refer_to.starts_with(&format!("<sip:carol@127.0.0.1:{target_port}"))
            && refer_to.ends_with(&expected),
        "Refer-To {refer_to} should end with {expected}"
    );
}

#[test]
fn as_the_transferee_the_phone_calls_the_target_with_the_replaces_it_was_given() {
    let phone_port = free_port();
    let target_port = free_port();
    let transferor_port = free_port();
    let mut phone = answering_phone("verbatim-attended-transferee", phone_port);
    let mut target = Peer::new("sipp-attended-target-replaced");
    start_sipp_uas(
        &mut target,
        &Scenario::File(sipp_scenario("attended_target_replaced.xml")),
        target_port,
        "u1",
        &[],
    );
    let mut transferor = Peer::new("sipp-attended-transferor");
    start_sipp(
        &mut transferor,
        &Scenario::File(sipp_scenario("attended_transferor.xml")),
        transferor_port,
        "u1",
        &["-key", "target_port", &target_port.to_string()],
        Some(&format!("127.0.0.1:{phone_port}")),
    );
    transferor.expect_success(TIMEOUT);
    target.expect_success(TIMEOUT);
    phone.expect_success(TIMEOUT);
    let log = phone.report();
    assert!(log.contains("transferred to sip:carol@127.0.0.1"), "{log}");
}

#[test]
fn as_the_target_the_phone_answers_the_replacing_call_without_ringing_and_ends_the_old_one() {
    let phone_port = free_port();
    let mut phone = answering_phone("verbatim-attended-target", phone_port);
    let mut replacer = Peer::new("sipp-attended-replacer");
    start_sipp(
        &mut replacer,
        &Scenario::File(sipp_scenario("attended_replacer.xml")),
        free_port(),
        "u1",
        &[],
        Some(&format!("127.0.0.1:{phone_port}")),
    );
    replacer.expect_success(TIMEOUT);
    phone.expect_success(TIMEOUT);
    let log = phone.report();
    assert!(log.contains("replaces ours (attended transfer)"), "{log}");
}

/// The transferee refuses the REFER: the phone takes the first call off hold, hangs up the
/// consultation, and `verbatim call` says the transfer failed (non-zero exit).
#[test]
fn a_refused_attended_transfer_resumes_the_call_and_the_command_fails() {
    let (mut phone, mut transferee, mut target, _) = consult_and_transfer(
        "attended-refused",
        "attended_transferee_refuses.xml",
        "attended_target.xml",
        "4",
    );
    phone.expect_failure(TIMEOUT);
    let log = phone.report();
    assert!(log.contains("the transfer failed"), "{log}");
    // The consultation was hung up, and the transferee taken off hold then hung up.
    target.expect_success(TIMEOUT);
    transferee.expect_success(TIMEOUT);
}
