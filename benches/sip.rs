//! SIP throughput: parsing and printing a typical INVITE, and one complete non-INVITE
//! transaction (request out, 200 back) through two engines, no network in between.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use verbatim::engine::{AccountConfig, AccountId, Command, Engine, EngineConfig, Input, Output};
use verbatim::sip::{Destination, Message, NameAddr, Transport, Uri};

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE\r\n\
User-Agent: Bench/1.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 142\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

fn parse_and_print(c: &mut Criterion) {
    let mut group = c.benchmark_group("message");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse+validate+serialise INVITE", |b| {
        b.iter(|| {
            let message = Message::parse(black_box(INVITE.as_bytes())).unwrap();
            message.validate().unwrap();
            black_box(message.to_bytes())
        })
    });
    group.bench_function("rsip parse+serialise INVITE (reference)", |b| {
        b.iter(|| {
            let message = rsip::SipMessage::try_from(black_box(INVITE)).unwrap();
            black_box(message.to_string())
        })
    });
    group.finish();
}

fn engine(address: &str, seed: u64) -> Engine {
    Engine::new(
        EngineConfig {
            seed,
            listeners: vec![Destination::new(Transport::Udp, address.parse().unwrap())],
            ..EngineConfig::default()
        },
        Instant::now(),
    )
}

/// Hands every datagram `from` has queued to `to`; returns how many there were.
fn deliver(now: Instant, from: &mut Engine, source: Destination, to: &mut Engine) -> usize {
    let mut moved = 0;
    while let Output::Transmit { data, .. } = from.poll_output() {
        to.handle_input(now, Input::Datagram { source, data });
        moved += 1;
    }
    moved
}

/// One complete non-INVITE transaction between two engines: A's REGISTER is built, sent,
/// parsed and validated by B, answered (B is no registrar: 405), and the answer is parsed,
/// matched to A's client transaction and reported to A's registration.
fn transaction(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    let a_address = Destination::new(Transport::Udp, "127.0.0.1:5060".parse().unwrap());
    let b_address = Destination::new(Transport::Udp, "127.0.0.2:5060".parse().unwrap());
    let mut a = engine("127.0.0.1:5060", 1);
    let mut b = engine("127.0.0.2:5060", 2);
    let start = Instant::now();
    let mut n = 0u32;
    group.bench_function(
        "REGISTER transaction, both sides (request + response)",
        |bench| {
            bench.iter(|| {
                n += 1;
                // Virtual time moves 10 s per transaction so finished transactions time out
                // (Timer K, J) and state stays what a busy phone really holds.
                let now = start + Duration::from_secs(10) * n;
                a.handle_input(
                    now,
                    Input::Command(Command::Register {
                        account: AccountId(1),
                        config: AccountConfig {
                            aor: NameAddr::parse("<sip:alice@127.0.0.2>").unwrap(),
                            registrar: Uri::parse("sip:127.0.0.2").unwrap(),
                            destination: b_address,
                            credentials: None,
                            expires: 300,
                            route: None,
                        },
                    }),
                );
                assert_eq!(deliver(now, &mut a, a_address, &mut b), 1);
                assert_eq!(deliver(now, &mut b, b_address, &mut a), 1);
                // Drain A's events; the registration ended with "405 Method Not Allowed".
                while let Output::Event(_) = a.poll_output() {}
            })
        },
    );
    group.finish();
}

criterion_group!(benches, parse_and_print, transaction);
criterion_main!(benches);
