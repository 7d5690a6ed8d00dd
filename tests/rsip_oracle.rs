//! What we send must be readable by other SIP stacks: every message the engine prints during
//! a call is parsed by rsip, an independent parser, and must agree on the essentials.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::time::Duration;

use verbatim::engine::{CallId, Command, DialRequest, EngineConfig, Event};
use verbatim::sim::{LinkConfig, SimNet};
use verbatim::sip::{Message, NameAddr, Transport, Uri};

#[test]
fn rsip_reads_every_message_of_a_call() {
    let mut net = SimNet::new(5, LinkConfig::default());
    net.add_node(EngineConfig::default());
    net.add_node(EngineConfig {
        seed: 9,
        ..EngineConfig::default()
    });
    let destination = net.address(1, Transport::Udp).unwrap();
    let call = CallId(717);
    net.command(
        0,
        Command::Dial {
            call,
            request: DialRequest {
                target: Uri::parse(&format!("sip:bob@{}", destination.address)).unwrap(),
                from: NameAddr::parse("\"Alice\" <sip:alice@127.0.0.1>").unwrap(),
                destination,
                route: None,
                credentials: None,
                media_port: 40000,
                record: None,
                srtp: None,
                notice: None,
            },
        },
    );
    assert!(net.run_until(Duration::from_secs(5), |n| {
        n.events(1)
            .iter()
            .any(|e| matches!(e, Event::IncomingCall { .. }))
    }));
    let incoming = net
        .events(1)
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .unwrap();
    net.command(
        1,
        Command::Answer {
            call: incoming,
            media_port: 41000,
            record: None,
        },
    );
    assert!(net.run_until(Duration::from_secs(5), |n| {
        n.events(0).iter().any(|e| matches!(e, Event::Media { .. }))
    }));
    net.command(0, Command::Hold { call });
    net.run_for(Duration::from_secs(2));
    net.command(0, Command::Hangup { call });
    net.run_for(Duration::from_secs(40));
    assert!(
        net.trace.len() >= 9,
        "INVITE, 100, 180, 200, ACK, re-INVITE..., BYE, 200"
    );
    for (_, _, _, bytes) in &net.trace {
        let ours = Message::parse(bytes).unwrap();
        let theirs = rsip::SipMessage::try_from(bytes.as_slice()).unwrap_or_else(|e| {
            panic!(
                "rsip cannot read what we sent: {e}\n{}",
                String::from_utf8_lossy(bytes)
            )
        });
        match (&theirs, ours.method()) {
            (rsip::SipMessage::Request(r), Some(method)) => {
                assert_eq!(r.method.to_string(), method.as_str());
                assert_eq!(r.body, ours.body);
            }
            (rsip::SipMessage::Response(r), None) => {
                assert_eq!(u16::from(r.status_code.clone()), ours.status().unwrap());
            }
            _ => panic!("request/response mismatch"),
        }
    }
}
