//! Tests of digest authentication, one file per submodule they exercise, with the builders
//! they share: the RFC example challenges, the usual test users, and a 401 to answer.

use super::*;
use crate::sip::message::Message;

mod authorization;
mod challenge;
mod digest;
mod params;
mod session;

const RFC2617_CHALLENGE: &str = "Digest\n                 realm=\"testrealm@host.com\",\n                 qop=\"auth,auth-int\",\n                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\n                 opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

/// The cnonce of the RFC 2617 example, reused wherever its value does not matter.
const CNONCE: &str = "0a4f113b";

fn rfc7616_challenge(algorithm: &str) -> String {
    format!(
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={algorithm}, nonce=\"{RFC7616_NONCE}\", opaque=\"{RFC7616_OPAQUE}\""
    )
}

/// The answer of the RFC 7616 section 3.9.1 example request (GET /dir/index.html, nc 1) to
/// its challenge with `algorithm`.
fn answer_rfc7616(algorithm: &str, credentials: &Credentials) -> Authorization {
    let ch = Challenge::parse(&rfc7616_challenge(algorithm)).unwrap();
    Authorization::answer(
        &ch,
        credentials,
        "GET",
        "/dir/index.html",
        b"",
        RFC7616_CNONCE,
        1,
    )
    .unwrap()
}

/// The user of the RFC 2617 example.
fn mufasa() -> Credentials {
    Credentials::new("Mufasa", "Circle Of Life")
}

/// The same user as RFC 7616 section 3.9.1 spells him: "Circle of Life", unlike RFC 2617.
fn rfc7616_mufasa() -> Credentials {
    Credentials::new("Mufasa", "Circle of Life")
}

/// The user of the RFC 3261 examples.
fn bob() -> Credentials {
    Credentials::new("bob", "zanzibar")
}

/// A challenge from biloxi.com; `qop` is the whole `, qop=...` suffix or empty.
fn biloxi(qop: &str, algorithm: &str) -> Challenge {
    Challenge::parse(&format!(
        "Digest realm=\"biloxi.com\", nonce=\"84a4cc6f3082121f32b42a2187831a9e\", algorithm={algorithm}{qop}"
    ))
    .unwrap()
}

/// Bob's answer to `challenge` with the RFC 2617 example cnonce.
fn bob_answers(
    challenge: &Challenge,
    method: &str,
    uri: &str,
    body: &[u8],
    nc: u32,
) -> Authorization {
    Authorization::answer(challenge, &bob(), method, uri, body, CNONCE, nc).unwrap()
}

/// A 401 to a REGISTER carrying one `WWW-Authenticate` per entry of `challenges`.
fn unauthorized(challenges: &[&str]) -> Message {
    let mut text = String::from(
        "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:bob@biloxi.com>;tag=1\r\nTo: <sip:bob@biloxi.com>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n",
    );
    for challenge in challenges {
        text.push_str(&format!("WWW-Authenticate: {challenge}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(text.as_bytes()).unwrap()
}
