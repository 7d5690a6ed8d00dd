//! What the fuzzers drive: one entry point per parser that meets bytes from outside.
//!
//! Each target takes arbitrary bytes and must neither panic nor hang; where a parser has a
//! writer, what it wrote must parse back to the same thing. The cargo-fuzz crate in
//! tests/fuzz calls these under libFuzzer; tests/fuzz_smoke.rs calls them on the seed corpus,
//! every past finding and a few thousand deterministic mutations on each `cargo test`, so a
//! fixed crash stays fixed without a nightly toolchain.
//!
//! A broken invariant panics on purpose: that is how a fuzzer learns of it.
#![allow(clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::engine::{Command, Engine, EngineConfig, Event, Input, Output};
use crate::media::rtcp;
use crate::media::rtp::RtpPacket;
use crate::media::srtp::{CryptoSuite, KEY_SALT_LEN, SrtpSession};
use crate::recording::metadata;
use crate::sdp::{Codec, Direction, LocalCapabilities, OfferAnswer, SessionDescription};
use crate::sip::auth::{Authorization, Challenge, Credentials};
use crate::sip::message::Message;
use crate::sip::multipart;
use crate::sip::transport::{Destination, Transport};

/// A fuzz target: what it is called and what it runs.
#[derive(Debug)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order the fuzz script runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "sip_message",
        run: sip_message,
    },
    Target {
        name: "sdp_offer_answer",
        run: sdp_offer_answer,
    },
    Target {
        name: "rtp",
        run: rtp,
    },
    Target {
        name: "rtcp",
        run: rtcp,
    },
    Target {
        name: "srtp_unprotect",
        run: srtp_unprotect,
    },
    Target {
        name: "multipart",
        run: multipart,
    },
    Target {
        name: "metadata",
        run: metadata,
    },
    Target {
        name: "digest",
        run: digest,
    },
    Target {
        name: "recorder_invite",
        run: recorder_invite,
    },
    Target {
        name: "engine_datagrams",
        run: engine_datagrams,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}

/// A SIP message; what we print of it parses back to the same message.
pub fn sip_message(data: &[u8]) {
    let Ok(message) = Message::parse(data) else {
        return;
    };
    let printed = message.to_bytes();
    let reparsed = Message::parse(&printed)
        .unwrap_or_else(|e| panic!("our own print of a parsed message does not parse: {e}"));
    assert_eq!(
        reparsed.to_bytes(),
        printed,
        "printing is not stable across a parse"
    );
}

/// A session description, printed and parsed back, then answered as an offer.
pub fn sdp_offer_answer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(offer) = SessionDescription::parse(text) else {
        return;
    };
    let printed = offer.to_string();
    let reparsed = SessionDescription::parse(&printed)
        .unwrap_or_else(|e| panic!("our own print of a parsed SDP does not parse: {e}"));
    assert_eq!(reparsed.to_string(), printed, "SDP printing is not stable");

    let capabilities = LocalCapabilities::new(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        40000,
        vec![
            Codec::Opus { inband_fec: true },
            Codec::G722,
            Codec::Pcmu,
            Codec::Pcma,
        ],
    );
    let mut offer_answer = OfferAnswer::new(capabilities, 1, 1);
    if let Ok(answer) = offer_answer.receive_offer(&offer, Direction::SendRecv) {
        SessionDescription::parse(&answer.to_string())
            .unwrap_or_else(|e| panic!("our answer does not parse: {e}"));
    }
}

/// An RTP packet.
pub fn rtp(data: &[u8]) {
    if let Ok(packet) = RtpPacket::parse(data) {
        assert!(packet.payload.len() <= data.len());
    }
}

/// A compound RTCP packet; what we write of it reads back the same.
pub fn rtcp(data: &[u8]) {
    let Ok(packets) = rtcp::parse(data) else {
        return;
    };
    let mut written = Vec::new();
    if rtcp::write(&packets, &mut written).is_ok() {
        let reread = rtcp::parse(&written)
            .unwrap_or_else(|e| panic!("our own RTCP does not read back: {e}"));
        assert_eq!(reread, packets, "RTCP changed across a write");
    }
}

const FUZZ_KEY: [u8; KEY_SALT_LEN] = [7; KEY_SALT_LEN];

/// Datagrams from a peer holding the wrong key or none, or a tampered packet of ours.
pub fn srtp_unprotect(data: &[u8]) {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let suite = if selector & 1 == 0 {
        CryptoSuite::AesCm128HmacSha1_80
    } else {
        CryptoSuite::AesCm128HmacSha1_32
    };
    let Ok(mut session) = SrtpSession::new(suite, &FUZZ_KEY, &FUZZ_KEY) else {
        panic!("a session with a well-formed key could not be made");
    };
    let _ = session.unprotect_rtp(packet);
    let _ = session.unprotect_rtcp(packet);
    // What we protect ourselves must come back whole, whatever the payload.
    if RtpPacket::parse(packet).is_ok() {
        let Ok(mut sender) = SrtpSession::new(suite, &FUZZ_KEY, &FUZZ_KEY) else {
            return;
        };
        if let Ok(protected) = sender.protect_rtp(packet)
            && let Ok(back) = session.unprotect_rtp(&protected)
        {
            assert_eq!(back, packet, "SRTP changed a packet on the way");
        }
    }
}

/// A multipart body: the first line is the Content-Type header value, the rest the body.
pub fn multipart(data: &[u8]) {
    let (header, body) = split_line(data);
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    let Ok(parts) = multipart::parse(header, body) else {
        return;
    };
    // Parts we build again under a boundary none of them contains come back as they were.
    let boundary = "fuzz-boundary-5e1f0c";
    if parts
        .iter()
        .any(|part| contains(&part.body, boundary.as_bytes()))
    {
        return;
    }
    let rebuilt = multipart::build(&parts, boundary);
    let reparsed = multipart::parse(&multipart::content_type(boundary), &rebuilt)
        .unwrap_or_else(|e| panic!("our own multipart body does not parse: {e}"));
    assert_eq!(reparsed.len(), parts.len(), "parts were lost or gained");
    for (again, part) in reparsed.iter().zip(&parts) {
        assert_eq!(again.body, part.body, "a part's body changed");
    }
}

/// RFC 7865 recording metadata, as the built-in recorder reads it.
pub fn metadata(data: &[u8]) {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = metadata::parse(xml) else {
        return;
    };
    let written = parsed.to_xml();
    let reparsed = metadata::parse(&written)
        .unwrap_or_else(|e| panic!("our own metadata does not parse: {e}\n{written}"));
    assert_eq!(
        reparsed.to_xml(),
        written,
        "metadata changed across a write"
    );
    let _ = parsed.validate_against_labels(&["1".to_owned(), "2".to_owned()]);
}

/// A digest challenge we answer, and an Authorization header a server of ours checks.
pub fn digest(data: &[u8]) {
    let (challenge_text, authorization_text) = split_line(data);
    if let Ok(text) = std::str::from_utf8(challenge_text)
        && let Ok(challenge) = Challenge::parse(text)
    {
        let credentials = Credentials::new("alice", "secret");
        if let Ok(answer) = Authorization::answer(
            &challenge,
            &credentials,
            "INVITE",
            "sip:bob@127.0.0.1",
            b"",
            "0a4f113b",
            1,
        ) {
            let header = answer.to_string();
            let reread = Authorization::parse(&header)
                .unwrap_or_else(|e| panic!("our own Authorization does not parse: {e}"));
            assert!(
                reread.verify("secret", "INVITE", b""),
                "our own answer does not verify: {header}"
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(authorization_text)
        && let Ok(authorization) = Authorization::parse(text)
    {
        let _ = authorization.verify("secret", "REGISTER", b"");
    }
}

/// An INVITE offering us a recording session: multipart, SDP and metadata together.
pub fn recorder_invite(data: &[u8]) {
    if let Ok(request) = Message::parse(data) {
        let _ = crate::srs::core::validate_invite(&request);
    }
}

/// SIP datagrams in sequence (split at NUL bytes) reaching a phone that answers every call
/// it is offered, with time passing between them: the transaction, dialog and call layers.
pub fn engine_datagrams(data: &[u8]) {
    let start = Instant::now();
    let mut engine = Engine::new(EngineConfig::default(), start);
    let peer = Destination::new(
        Transport::Udp,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 5060),
    );
    let mut now = start;
    for datagram in data.split(|&byte| byte == 0).take(16) {
        engine.handle_input(
            now,
            Input::Datagram {
                source: peer,
                data: datagram.to_vec(),
            },
        );
        now += Duration::from_millis(600);
        drain(&mut engine, now);
        engine.handle_input(now, Input::Timeout);
        drain(&mut engine, now);
    }
    // Long enough for every transaction timer to fire.
    engine.handle_input(now + Duration::from_secs(40), Input::Timeout);
    drain(&mut engine, now + Duration::from_secs(40));
}

fn drain(engine: &mut Engine, now: Instant) {
    let mut answers = Vec::new();
    // Bounded, so a loop of outputs shows up as a failure instead of a hang.
    let mut outputs = 0;
    loop {
        match engine.poll_output() {
            Output::Timeout(_) => break,
            Output::Event(Event::IncomingCall { call, .. }) => answers.push(call),
            _ => {}
        }
        outputs += 1;
        assert!(outputs < 10_000, "the engine does not stop giving output");
    }
    for call in answers {
        engine.handle_input(
            now,
            Input::Command(Command::Answer {
                call,
                media_port: 40000,
                record: None,
            }),
        );
    }
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&byte| byte == b'\n') {
        Some(end) => (
            data.get(..end).unwrap_or_default(),
            data.get(end + 1..).unwrap_or_default(),
        ),
        None => (data, &[]),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
