//! Mouth-to-ear delay through real sound devices: how long a sound made at phone A's
//! microphone takes to leave phone B's speaker, for Verbatim and for baresip on the same
//! machine in the same way.
//!
//! Both ends of the measurement are one PulseAudio sink, `room` (stereo), recorded by one
//! client, so the player's and the recorder's own buffering stay out of the figure (the
//! phones' buffering is in it, as it should be):
//! - the left channel is the air at A's microphone: the bursts are played into it, and A's
//!   microphone (`mouth_a`) is that channel of `room`'s monitor;
//! - the right channel is the air at B's speaker: B plays into `ear_b`, which is that
//!   channel of `room`.
//!
//! A's speaker (`spk_a`) and B's microphone (`quiet`, silent) are sinks of their own, so no
//! sound goes round. The delay of a burst is the time from its onset on the left to its onset
//! on the right: A's capture buffering, coding, the network, B's jitter buffer and B's
//! playback buffering, everything a listener would hear.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::pulse::PulseSession;
use super::{Baresip, BaresipMedia, LOCALHOST, Peer, free_port, write_baresip_config};

const RATE: u32 = 48_000;
/// One burst each second: far longer than any delay a phone may add, so the bursts never
/// overlap on the right.
const BURST_EVERY: Duration = Duration::from_secs(1);
const BURST_LENGTH: Duration = Duration::from_millis(40);
/// The phones' devices wake slowly (null sinks start late), and a jitter buffer settles.
const SETTLE: Duration = Duration::from_secs(3);
/// A burst onset is where the signal first exceeds this part of the burst's own peak.
const ONSET_FRACTION: f32 = 0.3;
/// A window on the right quieter than this heard nothing.
const HEARD_AT_LEAST: f32 = 0.02;

const ROOM_PA: &str = "\
load-module module-null-sink sink_name=room rate=48000 channels=2 channel_map=front-left,front-right
load-module module-remap-source source_name=mouth_a master=room.monitor channels=1 master_channel_map=front-left channel_map=mono remix=no
load-module module-remap-sink sink_name=ear_b master=room channels=1 master_channel_map=front-right channel_map=mono remix=no
load-module module-null-sink sink_name=spk_a rate=48000 channels=1
load-module module-null-sink sink_name=quiet rate=48000 channels=1
set-default-sink spk_a
set-default-source quiet.monitor";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phone {
    Verbatim,
    Baresip,
}

impl Phone {
    pub fn name(self) -> &'static str {
        match self {
            Phone::Verbatim => "verbatim",
            Phone::Baresip => "baresip",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Opus,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "pcmu",
            Codec::Opus => "opus",
        }
    }

    fn baresip(self) -> &'static str {
        match self {
            Codec::Pcmu => "pcmu",
            Codec::Opus => "opus/48000/2",
        }
    }
}

/// The delays of one run, in milliseconds, in the order of the bursts; `None` for a burst
/// B's speaker never played.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub phone: Phone,
    pub codec: Codec,
    pub delays_ms: Vec<Option<f64>>,
    /// PulseAudio's view of every stream during the call, for reading the figures.
    pub streams: Vec<String>,
}

impl Measurement {
    pub fn heard(&self) -> Vec<f64> {
        self.delays_ms.iter().flatten().copied().collect()
    }

    /// The nearest-rank percentile `p` (0 to 100) of the bursts heard.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let mut heard = self.heard();
        heard.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * heard.len() as f64).ceil() as usize;
        heard.get(rank.max(1) - 1).copied()
    }

    /// One line for a benchmark's output.
    pub fn summary(&self) -> String {
        let figure = |value: Option<f64>| value.map_or("none".to_owned(), |v| format!("{v:.1}"));
        let heard = self.heard();
        format!(
            "mouth_to_ear phone={} codec={} bursts={} heard={} p50_ms={} p95_ms={} min_ms={} max_ms={}",
            self.phone.name(),
            self.codec.name(),
            self.delays_ms.len(),
            heard.len(),
            figure(self.percentile(50.0)),
            figure(self.percentile(95.0)),
            figure(heard.iter().copied().reduce(f64::min)),
            figure(heard.iter().copied().reduce(f64::max)),
        )
    }
}

/// Places a call from phone A to phone B (both `phone`, both on `codec`, default settings
/// otherwise, on 127.0.0.1), plays `bursts` bursts into A's microphone and measures each one
/// at B's speaker.
pub fn measure(phone: Phone, codec: Codec, bursts: u32) -> Measurement {
    let session = PulseSession::start(ROOM_PA, "");
    let burst_file = session.dir().join("bursts.wav");
    write_bursts(&burst_file, bursts);
    let call_secs = SETTLE.as_secs() as u32 + bursts + 10;
    let mut answerer = Peer::new(&format!("mouth-to-ear-{}-b", phone.name()));
    let mut caller = Peer::new(&format!("mouth-to-ear-{}-a", phone.name()));
    let b_port = free_port();
    match phone {
        Phone::Verbatim => {
            let listen = format!("{LOCALHOST}:{b_port}");
            let answer_args = ["answer", "--devices", "--listen", &listen, "--codec"];
            start_verbatim_on(&session, &mut answerer, ("ear_b", "quiet.monitor"), |c| {
                c.args(answer_args).arg(codec.name());
            });
            answerer.wait_until_listening(super::Proto::Udp, b_port, super::START_TIMEOUT);
            let target = format!("sip:b@{listen}");
            let from = format!("{LOCALHOST}:{}", free_port());
            start_verbatim_on(&session, &mut caller, ("spk_a", "mouth_a"), |c| {
                c.args(["call", &target, "--devices", "--listen", &from])
                    .args(["--duration", &call_secs.to_string(), "--codec"])
                    .arg(codec.name());
            });
            wait_for_line(&mut caller, |line| line == "connected");
        }
        Phone::Baresip => {
            let target = format!("/dial sip:b@{LOCALHOST}:{b_port}");
            let quit_after_secs = call_secs + 5;
            let media = BaresipMedia {
                audio_codecs: codec.baresip(),
                sound_card: true,
                ..BaresipMedia::default()
            };
            let b = Baresip {
                port: b_port,
                user: "b",
                auto_answer: true,
                wav: &burst_file,
                quit_after_secs,
                commands: &[],
            };
            start_baresip_on(
                &session,
                &mut answerer,
                &b,
                &media,
                ("ear_b", "quiet.monitor"),
            );
            answerer.wait_until_listening(super::Proto::Udp, b_port, super::START_TIMEOUT);
            let a = Baresip {
                port: free_port(),
                user: "a",
                auto_answer: false,
                wav: &burst_file,
                quit_after_secs,
                commands: &[&target],
            };
            start_baresip_on(&session, &mut caller, &a, &media, ("spk_a", "mouth_a"));
            wait_for_line(&mut caller, |line| line.contains("Call established"));
        }
    }
    std::thread::sleep(SETTLE);
    let streams = stream_latencies(&session);

    let room_file = session.dir().join("room.raw");
    let mut recorder = session
        .command("parec")
        .args(["-d", "room.monitor", "--format=s16le", "--channels=2"])
        .arg(format!("--rate={RATE}"))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&room_file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first burst must not play before the recording runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::metadata(&room_file).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "parec recorded nothing in 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let played = session
        .command("paplay")
        .args(["-d", "room"])
        .arg(&burst_file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        played.status.success(),
        "paplay: {}",
        String::from_utf8_lossy(&played.stderr)
    );
    std::thread::sleep(Duration::from_secs(1));
    let _ = recorder.kill();
    let _ = recorder.wait();
    for peer in [&mut caller, &mut answerer] {
        if !peer.is_running() {
            peer.fail("it ended before the measurement did");
        }
    }

    let (mouth, ear) = read_stereo(&room_file);
    let delays_ms = burst_delays_ms(&mouth, &ear, RATE);
    if delays_ms.len() != bursts as usize {
        let report = format!("{}{}", caller.report(), answerer.report());
        panic!(
            "{} of {bursts} bursts found at A's microphone: the player or the recording \
             failed\n{report}",
            delays_ms.len()
        );
    }
    Measurement {
        phone,
        codec,
        delays_ms,
        streams,
    }
}

/// What PulseAudio says of each phone's streams while the call is up: the buffering in the
/// stream and in the device, which is where most of a delay through a sound server goes.
fn stream_latencies(session: &PulseSession) -> Vec<String> {
    let mut streams = Vec::new();
    for kind in ["sink-inputs", "source-outputs"] {
        let listed = session
            .command("pactl")
            .args(["list", kind])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&listed.stdout).into_owned();
        for block in text.split("\n\n").filter(|b| b.contains("Buffer Latency:")) {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.trim().strip_prefix(name))
                    .map(|value| value.trim().trim_matches('"').to_owned())
                    .unwrap_or_default()
            };
            let device = if kind == "sink-inputs" {
                field("Sink:")
            } else {
                field("Source:")
            };
            let device_latency = if kind == "sink-inputs" {
                field("Sink Latency:")
            } else {
                field("Source Latency:")
            };
            streams.push(format!(
                "{kind} pid={} device=#{device} buffer={} device_latency={device_latency}",
                field("application.process.id ="),
                field("Buffer Latency:"),
            ));
        }
    }
    streams
}

/// Starts `verbatim` in `peer` with the session's sound devices: `devices` is (sink, source).
fn start_verbatim_on(
    session: &PulseSession,
    peer: &mut Peer,
    devices: (&str, &str),
    args: impl FnOnce(&mut Command),
) {
    let mut command = peer.command(super::verbatim_bin());
    args(&mut command);
    session.apply_env(&mut command);
    command
        .env("XDG_CONFIG_HOME", peer.path("config"))
        .env("XDG_DATA_HOME", peer.path("data"))
        .env("PULSE_SINK", devices.0)
        .env("PULSE_SOURCE", devices.1);
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    peer.start(command);
}

fn start_baresip_on(
    session: &PulseSession,
    peer: &mut Peer,
    setup: &Baresip<'_>,
    media: &BaresipMedia<'_>,
    devices: (&str, &str),
) {
    write_baresip_config(peer, setup, media, LOCALHOST);
    let mut command = peer.command(super::Tool::Baresip.path());
    command.args(super::baresip_args(peer, setup, LOCALHOST));
    session.apply_env(&mut command);
    command
        .env("PULSE_SINK", devices.0)
        .env("PULSE_SOURCE", devices.1);
    peer.start(command);
}

/// Waits until `peer` printed a line that says the call connected.
fn wait_for_line(peer: &mut Peer, connected: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let output = format!("{}{}", peer.stdout(), peer.stderr());
        if output.lines().any(|line| connected(line.trim_end())) {
            return;
        }
        if !peer.is_running() || Instant::now() > deadline {
            peer.fail("the call did not connect");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A stereo WAV at [`RATE`]: silence on the right, and on the left a 1 kHz burst (0.5 of full
/// scale, a 2 ms rise) every [`BURST_EVERY`], the first after half of it.
fn write_bursts(path: &Path, bursts: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    let every = samples_in(BURST_EVERY);
    let length = samples_in(BURST_LENGTH);
    let rise = samples_in(Duration::from_millis(2));
    for n in 0..every * (u64::from(bursts) + 1) {
        let into_burst = (n + every / 2) % every;
        let left = if n >= every / 2 && into_burst < length && n < every * u64::from(bursts) {
            let t = into_burst as f64 / f64::from(RATE);
            let envelope = (into_burst as f64 / rise as f64).min(1.0);
            0.5 * envelope * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()
        } else {
            0.0
        };
        writer
            .write_sample((left * f64::from(i16::MAX)) as i16)
            .unwrap();
        writer.write_sample(0i16).unwrap();
    }
    writer.finalize().unwrap();
}

fn samples_in(duration: Duration) -> u64 {
    (duration.as_secs_f64() * f64::from(RATE)).round() as u64
}

/// The left and right channels of a raw s16le stereo recording.
fn read_stereo(path: &Path) -> (Vec<f32>, Vec<f32>) {
    let bytes = fs::read(path).unwrap();
    let sample = |b: &[u8]| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0;
    bytes
        .chunks_exact(4)
        .map(|frame| (sample(&frame[..2]), sample(&frame[2..])))
        .unzip()
}

/// For each burst on `mouth` (an onset after at least half a second of quiet), the time in
/// milliseconds until its onset on `ear`, looked for until the next burst; `None` when `ear`
/// stayed quiet.
pub fn burst_delays_ms(mouth: &[f32], ear: &[f32], rate: u32) -> Vec<Option<f64>> {
    let peak = |samples: &[f32]| samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let threshold = ONSET_FRACTION * peak(mouth);
    let quiet_gap = rate as usize / 2;
    let mut onsets = Vec::new();
    let mut last_loud: Option<usize> = None;
    for (i, sample) in mouth.iter().enumerate() {
        if threshold > 0.0 && sample.abs() > threshold {
            if last_loud.is_none_or(|last| i - last > quiet_gap) {
                onsets.push(i);
            }
            last_loud = Some(i);
        }
    }
    onsets
        .iter()
        .enumerate()
        .map(|(n, &onset)| {
            let end = onsets
                .get(n + 1)
                .copied()
                .unwrap_or(ear.len())
                .min(ear.len());
            let window = ear.get(onset..end).unwrap_or(&[]);
            let loudest = peak(window);
            if loudest < HEARD_AT_LEAST {
                return None;
            }
            let at = window
                .iter()
                .position(|s| s.abs() > ONSET_FRACTION * loudest)?;
            Some(at as f64 * 1000.0 / f64::from(rate))
        })
        .collect()
}
