#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The real cpal path without a sound card: each test starts its own PulseAudio daemon (HOME
//! and XDG_RUNTIME_DIR in a temporary directory, so no user session is touched) with two null
//! sinks, `mic` and `spk`, and points ALSA's default device at it.
//!
//! ALSA and PulseAudio clients read that setup from the environment when they start, and a
//! test may not change its own environment, so each test runs its cpal half in a child: this
//! same binary, started with the session's environment, running one of the `#[ignore]`d
//! `in_session_*` tests. The parent starts and kills the daemon and checks the child passed.
//!
//! Needs the Debian packages pulseaudio, pulseaudio-utils and libasound2-plugins.

use std::f64::consts::PI;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

mod support;

use support::pulse::PulseSession;
use verbatim::audio::{
    AudioEvent, DeviceAudio, DeviceChoice, DeviceConfig, DeviceRole, list_devices, start_devices,
};

/// Set in a child's environment to the session directory.
const SESSION_DIR: &str = "VERBATIM_PULSE_SESSION_DIR";
const RATE: u32 = 48_000;

// ---------------------------------------------------------------------------------------------
// The parent side: a private PulseAudio daemon.

/// A session whose default source is `mic.monitor` and default sink `spk`, plus whatever
/// `extra_pa` loads; `extra_asoundrc` adds ALSA devices.
fn mic_and_speaker(extra_pa: &str, extra_asoundrc: &str) -> PulseSession {
    PulseSession::start(
        &format!(
            "load-module module-null-sink sink_name=mic rate={RATE} channels=1\n\
             load-module module-null-sink sink_name=spk rate={RATE} channels=1\n\
             {extra_pa}\n\
             set-default-source mic.monitor\n\
             set-default-sink spk"
        ),
        extra_asoundrc,
    )
}

/// Runs the ignored test `name` of this binary inside the session and fails with its
/// output unless it passed.
fn run_child(session: &PulseSession, name: &str) -> String {
    let mut command = session.command(std::env::current_exe().unwrap().to_str().unwrap());
    command
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SESSION_DIR, session.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("{name} hung for 60 s:\n{}", describe(&output));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let text = describe(&output);
    assert!(output.status.success(), "{name} failed:\n{text}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "{name} did not run:\n{text}"
    );
    println!("{text}");
    text
}

fn describe(output: &Output) -> String {
    format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// The tests the parent runs.

#[test]
fn loopback_through_pulseaudio_carries_a_1khz_tone() {
    let session = mic_and_speaker("", "");
    run_child(&session, "in_session_loopback");
}

/// PulseAudio moves a stream off a sink that goes away, so the stream itself never notices;
/// the test removes the sink and then kills the stream, which is how a vanished device looks
/// through a backend that does not move streams (an unplugged card under plain ALSA).
#[test]
fn a_lost_device_is_replaced_by_the_default_and_audio_goes_on() {
    let session = mic_and_speaker(HEADSET_PA, HEADSET_ASOUNDRC);
    run_child(&session, "in_session_device_loss");
}

#[test]
fn ringtones_play_on_the_ringing_device_and_not_on_the_call_device() {
    let session = mic_and_speaker(HEADSET_PA, HEADSET_ASOUNDRC);
    run_child(&session, "in_session_ringer");
}

/// "System default" means the ALSA `default` device, which PulseAudio routes to whatever
/// sink is the default at the moment, moving running streams along when it changes.
#[test]
fn the_system_default_follows_the_os_and_a_new_choice_applies_at_once() {
    let session = mic_and_speaker(HEADSET_PA, HEADSET_ASOUNDRC);
    run_child(&session, "in_session_switching");
}

/// A whole call through the real cpal path: `verbatim answer --devices` hears its
/// microphone (PulseAudio's mic sink, fed a 1 kHz tone) and plays the caller's 440 Hz into
/// its speaker (spk, recorded). The caller uses files. Both directions are checked by
/// frequency at the other end of the call.
#[test]
fn a_call_through_the_sound_card_carries_audio_both_ways() {
    let session = mic_and_speaker("", "");
    let dir = session.dir().to_owned();
    let mic_tone = dir.join("mic.wav");
    write_tone(&mic_tone, 12.0);
    let caller_tone = dir.join("caller.wav");
    write_sine(&caller_tone, 440.0, 8.0);
    let port = free_udp_port();
    let listen = format!("127.0.0.1:{port}");
    let mut answerer = session.command(env!("CARGO_BIN_EXE_verbatim"));
    answerer
        .args(["answer", "--devices", "--calls", "1", "--listen", &listen])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let answerer = answerer.spawn().unwrap();
    let answerer = ChildGuard(Some(answerer));
    let mut player = pulse_command(&dir, "paplay")
        .args(["-d", "mic"])
        .arg(&mic_tone)
        .spawn()
        .unwrap();
    // The devices need a moment to start delivering (null sinks wake slowly).
    std::thread::sleep(Duration::from_secs(2));
    let recording = Recording::start(&dir, "spk.monitor");
    let received = dir.join("caller-heard.wav");
    let caller_listen = format!("127.0.0.1:{}", free_udp_port());
    let target = format!("sip:bob@127.0.0.1:{port}");
    let caller = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args([
            "call",
            &target,
            "--listen",
            &caller_listen,
            "--duration",
            "5",
        ])
        .arg("--play")
        .arg(&caller_tone)
        .arg("--save-received")
        .arg(&received)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let speaker = recording.stop();
    let _ = player.kill();
    let _ = player.wait();
    let answer_output = answerer.finish(Duration::from_secs(15));
    both_succeeded(&caller, &answer_output);

    // What the caller heard came from the answerer's microphone: 1 kHz.
    let heard = read_wav(&received);
    assert_tone(
        &heard,
        2.0,
        "the caller's recording of the answerer's microphone",
    );
    // What the answerer's speaker played came from the caller: 440 Hz.
    let loud: Vec<f32> = speaker
        .chunks_exact(960)
        .filter(|block| rms(block) > 0.05)
        .flatten()
        .copied()
        .collect();
    assert!(
        loud.len() as f64 / f64::from(RATE) >= 2.0,
        "the answerer's speaker played {:.2} s of sound",
        loud.len() as f64 / f64::from(RATE)
    );
    let middle = &loud[loud.len() / 4..loud.len() * 3 / 4];
    let tone = goertzel(middle, 440.0);
    // Blocks joined across playback gaps (a busy machine) break the phase, which lowers a
    // Goertzel reading; dominance over other frequencies is the real check.
    assert!(tone > 0.05, "440 Hz at {tone:.3} on the answerer's speaker");
    for other in [300.0, 600.0, 2000.0] {
        assert!(
            goertzel(middle, other) < tone / 4.0,
            "{other} Hz rivals 440 Hz"
        );
    }
    assert!(
        goertzel(middle, 1000.0) < tone / 10.0,
        "the microphone leaked into the speaker"
    );
}

/// The caller and the answerer of a call both exited 0.
fn both_succeeded(caller: &Output, answerer: &Output) {
    assert!(
        caller.status.success(),
        "caller failed:\n{}",
        describe(caller)
    );
    assert!(
        answerer.status.success(),
        "answerer failed:\n{}",
        describe(answerer)
    );
}

struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn finish(mut self, limit: Duration) -> Output {
        let mut child = self.0.take().unwrap();
        let deadline = Instant::now() + limit;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let output = child.wait_with_output().unwrap();
                panic!("still running after {limit:?}:\n{}", describe(&output));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_udp_port() -> u16 {
    loop {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Writes `samples` as a 16-bit 48 kHz mono WAV.
fn write_mono(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for sample in samples {
        writer
            .write_sample((sample * 32767.0).round() as i16)
            .unwrap();
    }
    writer.finalize().unwrap();
}

fn write_sine(path: &Path, frequency: f64, seconds: f64) {
    let samples: Vec<f32> = (0..(seconds * f64::from(RATE)) as u64)
        .map(|n| {
            let t = n as f64 / f64::from(RATE);
            (0.5 * (2.0 * PI * frequency * t).sin()) as f32
        })
        .collect();
    write_mono(path, &samples);
}

fn read_wav(path: &Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path).unwrap();
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

const HEADSET_PA: &str = "load-module module-cli-protocol-unix\n\
                          load-module module-null-sink sink_name=headset rate=48000 channels=1";
const HEADSET_ASOUNDRC: &str = "pcm.headset {\n type pulse\n device \"headset\"\n \
                                hint { show on description \"Test headset\" }\n}";

// ---------------------------------------------------------------------------------------------
// The child side: runs with the session's environment.

fn session_dir() -> PathBuf {
    std::env::var_os(SESSION_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("run by the tests above inside their PulseAudio session, not on its own")
        })
}

#[test]
#[ignore = "runs inside loopback_through_pulseaudio_carries_a_1khz_tone's PulseAudio session"]
fn in_session_loopback() {
    let dir = session_dir();
    let tone_file = dir.join("tone.wav");
    // Long enough for a loaded machine (the loop below goes on until the speaker heard it).
    write_tone(&tone_file, 10.0);

    let mut audio = start_devices(DeviceConfig::default()).unwrap();
    // Null sinks wake up slowly: their first blocks can take a second or two to arrive.
    wait_until(Duration::from_secs(10), "capture callbacks", || {
        drain_capture(&mut audio);
        audio
            .thread
            .stats()
            .capture
            .is_some_and(|s| s.callbacks > 5)
    });
    // Nothing plays into the microphone yet: the level meter shows silence.
    std::thread::sleep(Duration::from_millis(300));
    let quiet = audio.thread.stats().capture.map_or(0, |s| s.level_permille);
    let recording = Recording::start(&dir, "spk.monitor");
    let mut player = pulse_command(&dir, "paplay")
        .args(["-d", "mic"])
        .arg(&tone_file)
        .spawn()
        .unwrap();

    let mut frame = vec![0.0_f32; 960];
    let mut moved = 0;
    let mut loudest = 0;
    let mut heard_enough = HeardEnough::new(Duration::from_secs(2));
    while !heard_enough.enough(&recording) {
        while audio.ports.read_capture(&mut frame) {
            if audio.ports.write_playback(&frame) {
                moved += 1;
            }
        }
        let level = audio.thread.stats().capture.map_or(0, |s| s.level_permille);
        loudest = loudest.max(level);
        std::thread::sleep(Duration::from_millis(2));
    }
    // Let the last frames reach the sink before the recording stops.
    std::thread::sleep(Duration::from_millis(300));
    let stats = audio.thread.stats();
    println!("measured: {stats:#?}");
    let events: Vec<AudioEvent> = audio.events.try_iter().collect();
    drop(audio);
    let _ = player.kill();
    let _ = player.wait();
    let heard = recording.stop();

    assert!(moved >= 75, "only {moved} frames went round in 2 s or more");
    assert!(quiet < 20, "the meter shows {quiet}/1000 in silence");
    assert!(
        loudest > 200,
        "the meter peaked at {loudest}/1000 with the tone playing"
    );
    assert!(events.is_empty(), "no device changed, yet: {events:?}");
    let capture = stats.capture.unwrap();
    let playback = stats.playback.unwrap();
    assert!(capture.callbacks > 0 && playback.callbacks > 0);
    assert_tone(&heard, 1.0, "the speaker");
}

#[test]
#[ignore = "runs inside a_lost_device_is_replaced_by_the_default_and_audio_goes_on's session"]
fn in_session_device_loss() {
    let dir = session_dir();
    let devices = list_devices().unwrap();
    assert!(
        devices.iter().any(|d| d.name == "headset" && d.is_output),
        "headset is not listed: {devices:?}"
    );
    assert!(
        devices
            .iter()
            .any(|d| d.is_default && d.is_input && d.is_output),
        "no default device listed: {devices:?}"
    );
    let config = DeviceConfig {
        output: DeviceChoice::Named("headset".to_owned()),
        ..DeviceConfig::default()
    };
    let mut audio = start_devices(config).unwrap();
    let mut tone = ToneWriter::default();
    wait_until(Duration::from_secs(10), "playback callbacks", || {
        tone.feed(&mut audio);
        audio
            .thread
            .stats()
            .playback
            .is_some_and(|s| s.callbacks > 5)
    });
    assert_eq!(audio.thread.stats().playback.unwrap().device, "headset");

    let headset_sink = pactl_rows(&dir, &["list", "short", "sinks"])
        .into_iter()
        .find(|row| row.get(1).map(String::as_str) == Some("headset"))
        .expect("the headset sink")[0]
        .clone();
    let ours: Vec<String> = pactl_rows(&dir, &["list", "short", "sink-inputs"])
        .into_iter()
        .filter(|row| row.get(1) == Some(&headset_sink))
        .map(|row| row[0].clone())
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "exactly our stream plays on the headset: {ours:?}"
    );
    let module = pactl_rows(&dir, &["list", "short", "modules"])
        .into_iter()
        .find(|row| row.iter().any(|field| field.contains("sink_name=headset")))
        .expect("the headset module")[0]
        .clone();
    run_ok(pulse_command(&dir, "pactl").args(["unload-module", &module]));
    run_ok(pulse_command(&dir, "pacmd").args(["kill-sink-input", &ours[0]]));

    // A loaded machine's sound server takes its time to tell the stream its device is gone.
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !events
        .iter()
        .any(|e| matches!(e, AudioEvent::FellBackToDefault { .. }))
    {
        assert!(
            Instant::now() < deadline,
            "no fallback within 15 s: {events:?}"
        );
        tone.feed(&mut audio);
        match audio.events.recv_timeout(Duration::from_millis(5)) {
            Ok(event) => events.push(event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => panic!("the audio thread ended"),
        }
    }
    assert_eq!(
        events,
        vec![
            AudioEvent::DeviceLost {
                role: DeviceRole::Playback,
                name: "headset".to_owned()
            },
            AudioEvent::FellBackToDefault {
                role: DeviceRole::Playback,
                name: "default".to_owned()
            },
        ]
    );

    // The same engine ring goes on feeding the speaker, now on the default device.
    let recording = Recording::start(&dir, "spk.monitor");
    play_until_heard(
        &mut audio,
        &mut tone,
        &recording,
        Duration::from_millis(1500),
    );
    let stats = audio.thread.stats();
    println!("after the fallback: {stats:#?}");
    drop(audio);
    assert_tone(
        &recording.stop(),
        0.8,
        "the default speaker after the fallback",
    );
}

#[test]
#[ignore = "runs inside ringtones_play_on_the_ringing_device_and_not_on_the_call_device's session"]
fn in_session_ringer() {
    let dir = session_dir();
    let config = DeviceConfig {
        ringing: DeviceChoice::Named("headset".to_owned()),
        ..DeviceConfig::default()
    };
    let mut audio = start_devices(config).unwrap();
    wait_until(Duration::from_secs(10), "ringing callbacks", || {
        audio
            .thread
            .stats()
            .ringing
            .is_some_and(|s| s.callbacks > 5)
    });
    let on_headset = Recording::start(&dir, "headset.monitor");
    let on_speaker = Recording::start(&dir, "spk.monitor");
    let mut tone = ToneWriter::default();
    // Ring until the headset has carried a second of it (a loaded machine delays the sound
    // server's start), for 1.5 s at least and 10 s at most.
    let mut heard = HeardEnough::new(Duration::from_millis(1500));
    while !heard.enough(&on_headset) {
        while wants_more(&audio.ringer) {
            let frame = tone.next_frame();
            audio.ringer.push_entire_slice(&frame).unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = audio.thread.stats();
    drop(audio);
    assert_eq!(stats.ringing.unwrap().device, "headset");
    assert_eq!(stats.playback.unwrap().device, "default");
    assert_tone(&on_headset.stop(), 0.8, "the ringing device");
    let speaker = on_speaker.stop();
    assert!(
        rms(&speaker) < 0.001,
        "the call device heard the ringtone: rms {}",
        rms(&speaker)
    );
}

#[test]
#[ignore = "runs inside the_system_default_follows_the_os_and_a_new_choice_applies_at_once's session"]
fn in_session_switching() {
    let dir = session_dir();
    let mut audio = start_devices(DeviceConfig::default()).unwrap();
    let mut tone = ToneWriter::default();
    wait_until(Duration::from_secs(10), "playback callbacks", || {
        tone.feed(&mut audio);
        audio
            .thread
            .stats()
            .playback
            .is_some_and(|s| s.callbacks > 5)
    });

    run_ok(pulse_command(&dir, "pactl").args(["set-default-sink", "headset"]));
    let on_headset = Recording::start(&dir, "headset.monitor");
    play_until_heard(
        &mut audio,
        &mut tone,
        &on_headset,
        Duration::from_millis(1200),
    );
    assert_tone(&on_headset.stop(), 0.8, "the new default sink");

    run_ok(pulse_command(&dir, "pactl").args(["set-default-sink", "spk"]));
    audio.thread.reconfigure(DeviceConfig {
        output: DeviceChoice::Named("headset".to_owned()),
        ..DeviceConfig::default()
    });
    wait_until(Duration::from_secs(5), "the switch to the headset", || {
        tone.feed(&mut audio);
        audio
            .thread
            .stats()
            .playback
            .is_some_and(|s| s.device == "headset" && s.callbacks > 5)
    });
    let on_headset = Recording::start(&dir, "headset.monitor");
    let on_speaker = Recording::start(&dir, "spk.monitor");
    play_until_heard(
        &mut audio,
        &mut tone,
        &on_headset,
        Duration::from_millis(1200),
    );
    let events: Vec<AudioEvent> = audio.events.try_iter().collect();
    drop(audio);
    assert_tone(&on_headset.stop(), 0.8, "the newly chosen device");
    let speaker = on_speaker.stop();
    assert!(
        rms(&speaker) < 0.001,
        "the old device still plays: rms {}",
        rms(&speaker)
    );
    assert!(events.is_empty(), "nothing failed, yet: {events:?}");
}

// ---------------------------------------------------------------------------------------------
// Helpers for the child side.

/// Plays the tone for `at_least`, and on until `heard_on` has recorded a second of it: a
/// loaded machine can hold the sound server back, and the check is where the sound goes,
/// not how soon (10 s at most).
fn play_until_heard(
    audio: &mut DeviceAudio,
    tone: &mut ToneWriter,
    heard_on: &Recording,
    at_least: Duration,
) {
    let mut heard = HeardEnough::new(at_least);
    while !heard.enough(heard_on) {
        tone.feed(audio);
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// "Played for at least this long, and a second of it is in the recording" (or 10 s
/// have passed), looking at the recording every 100 ms.
struct HeardEnough {
    started: Instant,
    at_least: Duration,
    last_look: Instant,
}

impl HeardEnough {
    fn new(at_least: Duration) -> Self {
        let now = Instant::now();
        Self {
            started: now,
            at_least,
            last_look: now,
        }
    }

    fn enough(&mut self, recording: &Recording) -> bool {
        let elapsed = self.started.elapsed();
        if elapsed < self.at_least || self.last_look.elapsed() < Duration::from_millis(100) {
            return false;
        }
        self.last_look = Instant::now();
        elapsed > Duration::from_secs(10) || loud_seconds(&recording.so_far()) >= 1.0
    }
}

fn pulse_command(dir: &Path, program: &str) -> Command {
    let mut command = Command::new(program);
    support::pulse::apply_env(&mut command, dir);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn run_ok(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        describe(&output)
    );
}

fn pactl_rows(dir: &Path, args: &[&str]) -> Vec<Vec<String>> {
    let output = pulse_command(dir, "pactl")
        .args(args)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pactl {args:?}:\n{}",
        describe(&output)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "no {what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn drain_capture(audio: &mut DeviceAudio) {
    let mut frame = vec![0.0_f32; 960];
    while audio.ports.read_capture(&mut frame) {}
}

/// A 1 kHz tone at half scale, in 20 ms frames.
#[derive(Default)]
struct ToneWriter {
    sample: u64,
}

impl ToneWriter {
    fn next_frame(&mut self) -> Vec<f32> {
        (0..960)
            .map(|_| {
                let t = self.sample as f64 / f64::from(RATE);
                self.sample += 1;
                (0.5 * (2.0 * PI * 1000.0 * t).sin()) as f32
            })
            .collect()
    }

    /// Keeps playback topped up and drops the capture.
    fn feed(&mut self, audio: &mut DeviceAudio) {
        drain_capture(audio);
        while wants_more(&audio.ports.playback) {
            let frame = self.next_frame();
            assert!(audio.ports.write_playback(&frame));
        }
    }
}

/// Whether a playback ring holds less than 60 ms, as an engine would keep it.
fn wants_more(ring: &rtrb::Producer<f32>) -> bool {
    ring.buffer().capacity() - ring.slots() < 2880
}

fn write_tone(path: &Path, seconds: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    let mut tone = ToneWriter::default();
    for _ in 0..(seconds * 50.0) as usize {
        for sample in tone.next_frame() {
            writer
                .write_sample((sample * 32767.0).round() as i16)
                .unwrap();
        }
    }
    writer.finalize().unwrap();
}

/// `parec` writing a device's audio to a file as 48 kHz mono f32.
struct Recording {
    child: Child,
    path: PathBuf,
}

impl Recording {
    fn start(dir: &Path, device: &str) -> Self {
        let path = dir.join(format!("{device}.{}.raw", std::process::id()));
        let file = fs::File::create(&path).unwrap();
        let child = pulse_command(dir, "parec")
            .args(["-d", device, "--raw", "--format=float32le", "--channels=1"])
            .arg(format!("--rate={RATE}"))
            .stdout(file)
            .spawn()
            .unwrap();
        // parec takes a moment to connect; what it misses of the start does not matter.
        std::thread::sleep(Duration::from_millis(200));
        Self { child, path }
    }

    fn stop(mut self) -> Vec<f32> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.so_far()
    }

    /// What parec has written so far (it keeps recording).
    fn so_far(&self) -> Vec<f32> {
        let mut bytes = Vec::new();
        fs::File::open(&self.path)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring the tone.

fn rms(signal: &[f32]) -> f64 {
    let sum: f64 = signal.iter().map(|&x| f64::from(x).powi(2)).sum();
    (sum / signal.len().max(1) as f64).sqrt()
}

/// Amplitude of the `frequency` component of `signal` (Goertzel, Hann window).
fn goertzel(signal: &[f32], frequency: f64) -> f64 {
    let len = signal.len() as f64;
    let coeff = 2.0 * (2.0 * PI * frequency / f64::from(RATE)).cos();
    let (mut s1, mut s2) = (0.0_f64, 0.0_f64);
    for (n, &x) in signal.iter().enumerate() {
        let window = 0.5 - 0.5 * (2.0 * PI * n as f64 / len).cos();
        let s0 = f64::from(x) * window + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    4.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt() / len
}

/// The loud 20 ms blocks of `heard`.
fn loud_blocks(heard: &[f32]) -> Vec<f32> {
    heard
        .chunks_exact(960)
        .filter(|block| rms(block) > 0.05)
        .flatten()
        .copied()
        .collect()
}

fn loud_seconds(heard: &[f32]) -> f64 {
    loud_blocks(heard).len() as f64 / f64::from(RATE)
}

/// Asserts that `heard` holds at least `seconds` of a clean 1 kHz tone: its loud 20 ms blocks
/// add up to that long, and in them 1 kHz carries nearly all the energy.
fn assert_tone(heard: &[f32], seconds: f64, place: &str) {
    let loud = loud_blocks(heard);
    let loud_seconds = loud.len() as f64 / f64::from(RATE);
    assert!(
        loud_seconds >= seconds,
        "{place}: {loud_seconds:.2} s of sound in {:.2} s recorded (rms {:.4})",
        heard.len() as f64 / f64::from(RATE),
        rms(heard)
    );
    // Judge the cleanest 0.4 s inside the sound, away from the edges where the tone starts
    // or stops mid-block: on a loaded machine the sound server may drop a buffer somewhere,
    // and a click there says nothing about what the device was given.
    let window = (RATE as usize * 2) / 5;
    let inside = &loud[loud.len() / 8..loud.len() * 7 / 8];
    let clean = |stretch: &[f32]| goertzel(stretch, 1000.0) / (rms(stretch) * 2.0_f64.sqrt());
    let best = inside
        .windows(window.min(inside.len()))
        .step_by(RATE as usize / 10)
        .max_by(|a, b| clean(a).total_cmp(&clean(b)))
        .unwrap_or(inside);
    let tone = goertzel(best, 1000.0);
    let level = rms(best) * 2.0_f64.sqrt();
    for other in [500.0, 900.0, 1100.0, 2000.0] {
        let there = goertzel(best, other);
        assert!(
            there < tone / 10.0,
            "{place}: {other} Hz at {there:.4} vs 1 kHz at {tone:.4}"
        );
    }
    assert!(
        tone > 0.8 * level,
        "{place}: 1 kHz carries {tone:.4} of an amplitude of {level:.4}"
    );
}

// ---------------------------------------------------------------------------------------------
// Echo cancellation through a real echo path.

/// The session's speaker leaks into its microphone as a room would: PulseAudio's loopback
/// takes what `spk` plays, 60 ms later and 6 dB down (80 % volume, PulseAudio's cubic scale),
/// and plays it into `mic`. `adjust_time=0` keeps its rate fixed; `adjust_time=1` has it
/// nudge its resampler every second to hold the latency, which is what clock drift between
/// a microphone and a speaker looks like to the canceller.
fn echo_path(drifting: bool) -> String {
    let adjust = if drifting {
        " adjust_time=1"
    } else {
        " adjust_time=0"
    };
    format!(
        "load-module module-loopback source=spk.monitor sink=mic latency_msec=60{adjust} \
         source_dont_move=true sink_dont_move=true"
    )
}

/// What the far end heard in one call through the echo path.
struct EchoCall {
    /// Its own noise coming back, in dB relative to what it sent, from 2 s until the near end
    /// speaks.
    echo_db: f64,
    /// The near end's 1 kHz over the last 1.5 s, while the far end still talked.
    near_tone: f64,
}

/// The far end (`verbatim call`, files) sends white noise, 0.2 peak, for 8 s; the near end
/// (`verbatim answer --devices`, with `echo_cancellation` as given) hears it on `spk`, and
/// from 4.5 s on says 1 kHz into `mic` too.
fn call_through_the_echo_path(echo_cancellation: bool, drifting: bool) -> EchoCall {
    let session = mic_and_speaker(&echo_path(drifting), "");
    let dir = session.dir().to_owned();
    let loopback = pactl_rows(&dir, &["list", "short", "sink-inputs"])
        .into_iter()
        .find(|row| row.iter().any(|field| field.contains("module-loopback")))
        .and_then(|row| row.first().cloned())
        .expect("the loopback's sink input");
    run_ok(pulse_command(&dir, "pactl").args(["set-sink-input-volume", &loopback, "80%"]));
    let noise = dir.join("far.wav");
    let far = write_noise(&noise, 10.0);
    let near = dir.join("near.wav");
    write_sine(&near, 1000.0, 6.0);
    let config = dir.join("near.toml");
    fs::write(
        &config,
        format!("[audio]\necho_cancellation = {echo_cancellation}\n"),
    )
    .unwrap();
    let port = free_udp_port();
    let listen = format!("127.0.0.1:{port}");
    let mut answerer = session.command(env!("CARGO_BIN_EXE_verbatim"));
    answerer
        .args(["answer", "--devices", "--calls", "1", "--listen", &listen])
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let answerer = ChildGuard(Some(answerer.spawn().unwrap()));
    // The devices need a moment to start delivering (null sinks wake slowly).
    std::thread::sleep(Duration::from_secs(2));
    let received = dir.join("far-heard.wav");
    let target = format!("sip:bob@127.0.0.1:{port}");
    let mut caller = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    caller
        .args(["call", &target, "--duration", "8"])
        .args(["--listen", &format!("127.0.0.1:{}", free_udp_port())])
        .arg("--play")
        .arg(&noise)
        .arg("--save-received")
        .arg(&received)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let caller = caller.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(4500));
    let mut player = pulse_command(&dir, "paplay")
        .args(["-d", "mic"])
        .arg(&near)
        .spawn()
        .unwrap();
    let caller = caller.wait_with_output().unwrap();
    let _ = player.kill();
    let _ = player.wait();
    both_succeeded(&caller, &answerer.finish(Duration::from_secs(15)));

    let heard = read_wav(&received);
    let span = |from: f64, to: f64| {
        let at = |t: f64| ((t * f64::from(RATE)) as usize).min(heard.len());
        &heard[at(from)..at(to)]
    };
    // Where the near end's tone starts in what the far end heard (it was started by the
    // wall clock, so a slow call setup moves it): the echo is measured before it.
    let tone_from = (0..heard.len() / 4800)
        .map(|tenth| f64::from(u32::try_from(tenth).unwrap()) / 10.0)
        .find(|&from| goertzel(span(from, from + 0.1), 1000.0) > 0.05)
        .unwrap_or(heard.len() as f64 / f64::from(RATE));
    assert!(
        tone_from >= 3.3,
        "the near end spoke from {tone_from:.1} s, too early to measure 2 s of echo alone"
    );
    let echo_db = 20.0 * (rms(span(2.0, tone_from - 0.3)) / rms(&far)).log10();
    let course: Vec<String> = (0..((tone_from - 0.3) * 2.0) as u32)
        .map(|half| {
            let from = f64::from(half) * 0.5;
            format!(
                "{:.0}",
                20.0 * (rms(span(from, from + 0.5)) / rms(&far)).log10()
            )
        })
        .collect();
    println!("echo by half second: {}", course.join(" "));
    let end = heard.len() as f64 / f64::from(RATE);
    let near_tone = goertzel(span(end - 1.5, end), 1000.0);
    println!(
        "echo cancellation {echo_cancellation}, drifting {drifting}: echo {echo_db:.1} dB, \
         near end's 1 kHz {near_tone:.3} ({end:.1} s heard)"
    );
    EchoCall { echo_db, near_tone }
}

/// Writes `seconds` of white noise (0.2 peak, 48 kHz mono) and returns its samples.
fn write_noise(path: &Path, seconds: f64) -> Vec<f32> {
    let mut seed: u32 = 12_345;
    let samples: Vec<f32> = (0..(seconds * f64::from(RATE)) as u64)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (f32::from((seed >> 16) as u16) / 32768.0 - 1.0) * 0.2
        })
        .collect();
    write_mono(path, &samples);
    samples
}

/// Through a real echo path (the loopback above), the far end hears its own voice at least
/// 30 dB down once the canceller has had 2 s, where without it the echo comes back loud; and
/// with both talking, the near end reaches the far end no more than 6 dB weaker than with
/// no cancellation at all. With the path's clock drifting, the echo stays 25 dB down.
#[test]
fn the_far_end_does_not_hear_itself_through_the_speaker_and_the_near_end_still_gets_through() {
    let without = call_through_the_echo_path(false, false);
    let with = call_through_the_echo_path(true, false);
    let drifting = call_through_the_echo_path(true, true);
    assert!(
        without.near_tone > 0.2,
        "the near end's tone must reach the far end: {:.3}",
        without.near_tone
    );
    assert!(
        without.echo_db > -20.0,
        "the echo path must carry an echo to cancel: {:.1} dB without cancellation",
        without.echo_db
    );
    assert!(
        with.echo_db < -30.0,
        "with cancellation the echo is {:.1} dB (without: {:.1} dB)",
        with.echo_db,
        without.echo_db
    );
    assert!(
        drifting.echo_db < -25.0,
        "with cancellation and a drifting path the echo is {:.1} dB",
        drifting.echo_db
    );
    let loss = 20.0 * (with.near_tone / without.near_tone).log10();
    println!("the near end while both talk: {loss:.1} dB against no cancellation");
    assert!(
        loss > -6.0,
        "the near end's voice is {loss:.1} dB weaker with cancellation while both talk"
    );
}
