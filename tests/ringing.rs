//! An incoming call rings on the ringing device until it is answered or refused; the ringtone
//! goes to the ringer's ring, not to any call's audio.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::Duration;

use verbatim::driver::media::Ringer;
use verbatim::driver::{self, DriverConfig, Handle};
use verbatim::engine::{CallId, Command, DialRequest, EngineConfig, Event, MediaSocket};
use verbatim::media::tone::goertzel_amplitude;
use verbatim::sip::{Destination, NameAddr, Transport, Uri};

async fn phone(ringer: Option<Ringer>) -> Handle {
    driver::start(
        EngineConfig::default(),
        DriverConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ringer,
            ..DriverConfig::default()
        },
    )
    .await
    .unwrap()
}

async fn next(handle: &mut Handle, mut wanted: impl FnMut(&Event) -> bool) -> Event {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), handle.events.recv())
            .await
            .expect("no event in 10 s")
            .expect("engine stopped");
        if wanted(&event) {
            return event;
        }
    }
}

fn drain(ring: &mut rtrb::Consumer<f32>) -> Vec<f32> {
    let mut samples = Vec::new();
    while let Ok(sample) = ring.pop() {
        samples.push(sample);
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_call_rings_until_refused() {
    let (producer, mut consumer) = rtrb::RingBuffer::<f32>::new(48_000 * 4);
    let mut callee = phone(Some(Ringer::new(producer))).await;
    let caller = phone(None).await;
    let target = callee.listeners[0].address;
    let media_port = caller
        .bind_media(MediaSocket::Call(CallId(718)))
        .await
        .unwrap();
    caller
        .commands
        .send(Command::Dial {
            call: CallId(718),
            request: DialRequest {
                target: Uri::sip(Some("bob"), "127.0.0.1", Some(target.port())),
                from: NameAddr::new(Uri::sip(Some("alice"), "127.0.0.1", None)),
                destination: Destination::new(Transport::Udp, target),
                route: None,
                credentials: None,
                media_port,
                record: None,
                srtp: None,
                notice: None,
            },
        })
        .unwrap();
    let Event::IncomingCall { call, .. } =
        next(&mut callee, |e| matches!(e, Event::IncomingCall { .. })).await
    else {
        unreachable!()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ringing = drain(&mut consumer);
    assert!(
        ringing.len() >= 48_000 / 10,
        "only {} samples of ringtone",
        ringing.len()
    );
    let level = goertzel_amplitude(&ringing, 48_000, 880.0);
    assert!(level > 0.05, "880 Hz ringtone at {level}");

    callee
        .commands
        .send(Command::Reject { call, status: 486 })
        .unwrap();
    next(&mut callee, |e| matches!(e, Event::CallEnded { .. })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drain(&mut consumer);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        drain(&mut consumer).is_empty(),
        "still ringing after the call was refused"
    );
}
