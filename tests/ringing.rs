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

/// A phone of its own calls `callee` as `call`; returns it (the call stays up while it
/// lives) and the callee's id of the call once it rings.
async fn call_from_alice(callee: &mut Handle, call: CallId) -> (Handle, CallId) {
    let caller = phone(None).await;
    let target = callee.listeners[0].address;
    let media_port = caller.bind_media(MediaSocket::Call(call)).await.unwrap();
    caller
        .commands
        .send(Command::Dial {
            call,
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
        next(callee, |e| matches!(e, Event::IncomingCall { .. })).await
    else {
        unreachable!()
    };
    (caller, call)
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
    let (_caller, call) = call_from_alice(&mut callee, CallId(718)).await;
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

/// A sound card of the test's own: every 20 ms it captures a frame of silence and signals
/// it (as the audio thread does) and counts what the calls played, until dropped.
struct FakeCard {
    played: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FakeCard {
    fn start(
        mut pump: verbatim::audio::NullPump,
        frame_ready: std::sync::Arc<tokio::sync::Notify>,
    ) -> FakeCard {
        use std::sync::atomic::Ordering;
        let played = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (counting, stopping) = (played.clone(), stop.clone());
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let mut frames = 0u32;
            while !stopping.load(Ordering::SeqCst) {
                frames += 1;
                let due = start + Duration::from_millis(20) * frames;
                std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
                let pumped = pump.pump_frame();
                frame_ready.notify_one();
                counting.fetch_add(pumped.discarded, Ordering::SeqCst);
            }
        });
        FakeCard { played, stop }
    }

    fn played(&self) -> usize {
        self.played.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FakeCard {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Calls on the sound card are stepped by its clock: while the phone only rings nothing
/// reads the microphone, and the ringtone still comes at the pace it is heard; once the call
/// is answered, one frame a step goes to the speaker, 50 a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_sound_card_the_ringtone_and_the_call_keep_real_time() {
    use std::sync::{Arc, Mutex};
    let (ports, pump) = verbatim::audio::null_ports();
    let ports = Arc::new(Mutex::new(ports));
    let frame_ready = Arc::new(tokio::sync::Notify::new());
    let card = FakeCard::start(pump, frame_ready.clone());
    let volumes = Arc::new(verbatim::audio::Volumes::default());
    let step = Arc::new(Mutex::new(verbatim::driver::media::CardStep::default()));
    let audio_ports = ports.clone();
    let audio: verbatim::driver::media::AudioFactory = Arc::new(move |_| {
        Box::new(verbatim::driver::media::DeviceCallAudio::new(
            audio_ports.clone(),
            volumes.clone(),
            step.clone(),
        )) as Box<dyn verbatim::driver::media::CallAudio>
    });
    let (ringtone, mut rung) = rtrb::RingBuffer::<f32>::new(48_000 * 4);
    let mut callee = driver::start(
        EngineConfig::default(),
        DriverConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ringer: Some(Ringer::new(ringtone)),
            audio: Some(audio),
            card_clock: Some(verbatim::driver::media::CardClock::new(frame_ready, ports)),
            ..DriverConfig::default()
        },
    )
    .await
    .unwrap();
    let (_caller, call) = call_from_alice(&mut callee, CallId(719)).await;
    drain(&mut rung);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ringtone = drain(&mut rung).len();
    assert!(
        (40_000..=56_000).contains(&ringtone),
        "{ringtone} ringtone samples in a second"
    );

    let media_port = callee.bind_media(MediaSocket::Call(call)).await.unwrap();
    callee
        .commands
        .send(Command::Answer {
            call,
            media_port,
            record: None,
        })
        .unwrap();
    next(&mut callee, |e| {
        matches!(
            e,
            Event::CallState {
                state: verbatim::engine::CallState::Connected { .. },
                ..
            }
        )
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = card.played();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let played = card.played() - before;
    assert!(
        (40_000..=56_000).contains(&played),
        "{played} samples to the speaker in a second"
    );
}
