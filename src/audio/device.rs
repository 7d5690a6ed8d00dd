//! The sound card backend: which devices to use, and the audio thread that owns their cpal
//! streams (which may not leave the thread that made them), converts their audio for the
//! engine, and replaces a device that fails by the system default.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait};
use rtrb::{Consumer, Producer, RingBuffer};

use super::AudioError;
use super::ring::{AudioPorts, RING_SAMPLES};
use super::stream::{Direction, OpenStream, StreamStats, discard, trim_backlog};
use super::voice::{VoiceProcessing, VoiceSettings};
use crate::media::SAMPLE_RATE;

/// How often the audio thread moves samples: well under one 20 ms frame.
const STAGE_PERIOD: Duration = Duration::from_millis(5);
/// How often to retry a role that has no device at all.
const RETRY_PERIOD: Duration = Duration::from_secs(1);
/// How often to look for a lost device's return and check whether the system default moved:
/// rarer, since each look opens a device (and some backends log every failed open).
const DEVICE_CHECK_PERIOD: Duration = Duration::from_secs(3);
const STATS_PERIOD: Duration = Duration::from_millis(100);

/// Which device to use for one role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// Whatever the operating system's default is, following it when it changes.
    #[default]
    SystemDefault,
    /// The device whose [`DeviceInfo::name`] (or description) this is.
    Named(String),
}

/// The devices for the microphone, the call audio and the ringtone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceConfig {
    pub input: DeviceChoice,
    pub output: DeviceChoice,
    pub ringing: DeviceChoice,
    /// The microphone's processing.
    pub voice: VoiceSettings,
}

/// What a device is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceRole {
    /// The microphone.
    Capture,
    /// The call's audio.
    Playback,
    /// Ringtones, possibly on another device than the call.
    Ringing,
}

impl fmt::Display for DeviceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceRole::Capture => "microphone",
            DeviceRole::Playback => "speaker",
            DeviceRole::Ringing => "ringer",
        })
    }
}

/// One device as [`list_devices`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Stable identifier; what [`DeviceChoice::Named`] takes.
    pub name: String,
    /// For people: the backend's own description, or the name.
    pub description: String,
    pub is_input: bool,
    pub is_output: bool,
    /// The system default for input or output.
    pub is_default: bool,
}

/// What happened to the devices, for the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioEvent {
    /// The device `name` stopped working for `role` (also sent at start when a named device
    /// is not there).
    DeviceLost { role: DeviceRole, name: String },
    /// `role` now runs on the system default device `name`.
    FellBackToDefault { role: DeviceRole, name: String },
    /// `role` is back on its chosen device `name` after running on the default.
    Restored { role: DeviceRole, name: String },
    /// The system default changed and `role` followed it to `name`.
    FollowedDefault { role: DeviceRole, name: String },
    /// No device could be opened for `role`; retried every second. Meanwhile the microphone
    /// gives silence, call audio is dropped, and ringtones play on the call's device.
    Unavailable { role: DeviceRole, reason: String },
}

/// The latest state of each role's stream (`None` while it has no device).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudioStats {
    pub capture: Option<StreamStats>,
    pub playback: Option<StreamStats>,
    pub ringing: Option<StreamStats>,
}

/// Running sound card audio. Take the fields apart as needed: the ports and the ringer go to
/// the engine, the events to the UI; dropping `thread` closes the devices.
#[derive(Debug)]
pub struct DeviceAudio {
    pub ports: AudioPorts,
    /// Told each time the capture ring holds a whole frame
    /// ([`crate::media::FRAME_SAMPLES`]): the sound card's clock, for whoever paces the
    /// calls' media by it.
    pub frame_ready: Arc<tokio::sync::Notify>,
    /// 48 kHz mono ringtone samples for the ringing device.
    pub ringer: Producer<f32>,
    pub events: mpsc::Receiver<AudioEvent>,
    pub thread: AudioThread,
}

/// Handle on the audio thread; stops it when dropped.
#[derive(Debug)]
pub struct AudioThread {
    stop: Arc<AtomicBool>,
    commands: mpsc::Sender<DeviceConfig>,
    stats: Arc<Mutex<AudioStats>>,
    handle: Option<JoinHandle<()>>,
}

impl AudioThread {
    /// A snapshot of the streams, at most 100 ms old.
    pub fn stats(&self) -> AudioStats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Switches roles whose choice changed to their new device. As at start, only a named
    /// device that cannot be used is reported (`DeviceLost`, then `FellBackToDefault`).
    pub fn reconfigure(&self, config: DeviceConfig) {
        let _ = self.commands.send(config);
    }

    /// Closes the devices and waits for the thread to end.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for AudioThread {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// All devices of the default audio host.
pub fn list_devices() -> Result<Vec<DeviceInfo>, AudioError> {
    let host = cpal::default_host();
    let default_input = host.default_input_device().as_ref().and_then(device_name);
    let default_output = host.default_output_device().as_ref().and_then(device_name);
    let mut infos: Vec<DeviceInfo> = Vec::new();
    for device in host.devices().map_err(AudioError::Host)? {
        let Some(name) = device_name(&device) else {
            continue;
        };
        let is_default =
            default_input.as_ref() == Some(&name) || default_output.as_ref() == Some(&name);
        infos.push(DeviceInfo {
            description: device
                .description()
                .map(|d| d.name().to_owned())
                .unwrap_or_else(|_| name.clone()),
            name,
            is_input: device.supports_input(),
            is_output: device.supports_output(),
            is_default,
        });
    }
    // The defaults are always choosable, even where the backend leaves them out of its list.
    for (default, input) in [(default_input, true), (default_output, false)] {
        let Some(name) = default else {
            continue;
        };
        match infos.iter_mut().find(|info| info.name == name) {
            Some(info) => {
                info.is_default = true;
                info.is_input |= input;
                info.is_output |= !input;
            }
            None => infos.push(DeviceInfo {
                description: "System default".to_owned(),
                name,
                is_input: input,
                is_output: !input,
                is_default: true,
            }),
        }
    }
    Ok(infos)
}

/// Opens the chosen devices (or the defaults in their place) on a new audio thread. Fails if
/// neither the chosen nor the default microphone or speaker opens; a ringing device that
/// does not open is reported as an event and its ringtones go to the call's device.
pub fn start_devices(config: DeviceConfig) -> Result<DeviceAudio, AudioError> {
    let (ports, driver) = AudioPorts::pair();
    let (ringer, ringer_out) = RingBuffer::new(RING_SAMPLES);
    let (events_in, events) = mpsc::channel();
    let (commands, commands_out) = mpsc::channel();
    let (ready_in, ready) = mpsc::sync_channel(1);
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Mutex::new(AudioStats::default()));
    let frame_ready = Arc::new(tokio::sync::Notify::new());
    let handle = {
        let stop = Arc::clone(&stop);
        let stats = Arc::clone(&stats);
        let frame_ready = Arc::clone(&frame_ready);
        std::thread::Builder::new()
            .name("verbatim-audio".to_owned())
            .spawn(move || {
                let engine = EngineEnds {
                    capture: driver.capture,
                    playback: driver.playback,
                    ringer: ringer_out,
                    frame_ready,
                };
                match AudioLoop::start(config, engine, events_in) {
                    Ok(mut audio) => {
                        let _ = ready_in.send(Ok(()));
                        audio.run(&stop, &commands_out, &stats);
                    }
                    Err(error) => {
                        let _ = ready_in.send(Err(error));
                    }
                }
            })
            .map_err(AudioError::Thread)?
    };
    let mut thread = AudioThread {
        stop,
        commands,
        stats,
        handle: Some(handle),
    };
    match ready.recv() {
        Ok(Ok(())) => Ok(DeviceAudio {
            ports,
            frame_ready,
            ringer,
            events,
            thread,
        }),
        Ok(Err(error)) => {
            thread.shut_down();
            Err(error)
        }
        Err(_) => {
            thread.shut_down();
            Err(AudioError::ThreadDied)
        }
    }
}

fn device_name(device: &cpal::Device) -> Option<String> {
    device.id().ok().map(|id| id.id().to_owned())
}

fn default_device(host: &cpal::Host, direction: Direction) -> Option<(cpal::Device, String)> {
    let device = match direction {
        Direction::Input => host.default_input_device(),
        Direction::Output => host.default_output_device(),
    }?;
    let name = device_name(&device)?;
    Some((device, name))
}

fn named_device(
    host: &cpal::Host,
    direction: Direction,
    wanted: &str,
) -> Option<(cpal::Device, String)> {
    let described_as = |device: &cpal::Device| {
        device
            .description()
            .is_ok_and(|description| description.name() == wanted)
    };
    let mut devices: Vec<cpal::Device> = host
        .devices()
        .ok()?
        .filter(|device| match direction {
            Direction::Input => device.supports_input(),
            Direction::Output => device.supports_output(),
        })
        .collect();
    // An exact identifier beats a description that happens to match.
    let index = devices
        .iter()
        .position(|d| device_name(d).as_deref() == Some(wanted))
        .or_else(|| devices.iter().position(described_as))?;
    let device = devices.swap_remove(index);
    let name = device_name(&device)?;
    Some((device, name))
}

/// The engine's far ends, which stay the same whatever happens to the devices.
struct EngineEnds {
    capture: Producer<f32>,
    playback: Consumer<f32>,
    ringer: Consumer<f32>,
    frame_ready: Arc<tokio::sync::Notify>,
}

/// How a role's stream came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opened {
    /// On the device chosen for it.
    AsChosen,
    /// On the system default, in place of a named device.
    Fallback,
}

struct RoleState {
    role: DeviceRole,
    direction: Direction,
    choice: DeviceChoice,
    stream: Option<OpenStream>,
    opened: Opened,
    unavailable_reported: bool,
    /// Counts the streams this role has started: another device means another echo path.
    generation: u64,
}

impl RoleState {
    fn new(role: DeviceRole, choice: DeviceChoice) -> Self {
        let direction = match role {
            DeviceRole::Capture => Direction::Input,
            DeviceRole::Playback | DeviceRole::Ringing => Direction::Output,
        };
        Self {
            role,
            direction,
            choice,
            stream: None,
            opened: Opened::AsChosen,
            unavailable_reported: false,
            generation: 0,
        }
    }

    /// Opens the chosen device, or the default in its place.
    fn open(&mut self, host: &cpal::Host) -> Result<Opened, AudioError> {
        let wanted = match &self.choice {
            DeviceChoice::Named(wanted) => Some(wanted.clone()),
            DeviceChoice::SystemDefault => None,
        };
        if let Some(wanted) = wanted {
            if let Some((device, name)) = named_device(host, self.direction, &wanted)
                && let Ok(stream) = OpenStream::open(&device, &name, self.direction)
            {
                return Ok(self.running(stream, Opened::AsChosen));
            }
            let stream = self.open_default(host)?;
            return Ok(self.running(stream, Opened::Fallback));
        }
        let stream = self.open_default(host)?;
        Ok(self.running(stream, Opened::AsChosen))
    }

    fn open_default(&self, host: &cpal::Host) -> Result<OpenStream, AudioError> {
        let (device, name) =
            default_device(host, self.direction).ok_or(AudioError::NoDevice { role: self.role })?;
        OpenStream::open(&device, &name, self.direction)
    }

    fn running(&mut self, stream: OpenStream, opened: Opened) -> Opened {
        self.stream = Some(stream);
        self.generation += 1;
        self.opened = opened;
        self.unavailable_reported = false;
        opened
    }

    fn device(&self) -> Option<String> {
        self.stream.as_ref().map(|s| s.device().to_owned())
    }
}

/// Hands the engine silence in real time while it has no microphone, so that whatever it
/// paces by capture keeps going.
struct SilenceClock {
    since: Option<Instant>,
    made: u128,
}

impl SilenceClock {
    fn fill(&mut self, now: Instant, engine: &mut Producer<f32>) {
        let since = *self.since.get_or_insert(now);
        let due = now.duration_since(since).as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000;
        let owed = usize::try_from(due.saturating_sub(self.made)).unwrap_or(usize::MAX);
        let count = owed.min(engine.slots());
        if let Ok(chunk) = engine.write_chunk_uninit(count) {
            chunk.fill_from_iter(std::iter::repeat(0.0));
        }
        self.made = due;
    }

    fn stop(&mut self) {
        self.since = None;
        self.made = 0;
    }
}

struct AudioLoop {
    host: cpal::Host,
    capture: RoleState,
    playback: RoleState,
    ringing: RoleState,
    engine: EngineEnds,
    events: mpsc::Sender<AudioEvent>,
    silence: SilenceClock,
    voice_settings: VoiceSettings,
    voice: Option<VoiceProcessing>,
    /// The microphone's and speaker's stream generations the processor was made for.
    voice_for: (u64, u64),
}

impl AudioLoop {
    fn start(
        config: DeviceConfig,
        engine: EngineEnds,
        events: mpsc::Sender<AudioEvent>,
    ) -> Result<Self, AudioError> {
        let mut audio = Self {
            host: cpal::default_host(),
            capture: RoleState::new(DeviceRole::Capture, config.input),
            playback: RoleState::new(DeviceRole::Playback, config.output),
            ringing: RoleState::new(DeviceRole::Ringing, config.ringing),
            engine,
            events,
            silence: SilenceClock {
                since: None,
                made: 0,
            },
            voice_settings: config.voice,
            voice: None,
            voice_for: (u64::MAX, u64::MAX),
        };
        let Self {
            host,
            capture,
            playback,
            ringing,
            events,
            ..
        } = &mut audio;
        for role in [capture, playback] {
            let opened = role.open(host)?;
            announce_start(role, opened, events);
        }
        match ringing.open(host) {
            Ok(opened) => announce_start(ringing, opened, events),
            Err(error) => report_unavailable(ringing, &error, events),
        }
        Ok(audio)
    }

    fn run(
        &mut self,
        stop: &AtomicBool,
        commands: &mpsc::Receiver<DeviceConfig>,
        stats: &Mutex<AudioStats>,
    ) {
        let mut next_retry = Instant::now() + RETRY_PERIOD;
        let mut next_check = Instant::now() + DEVICE_CHECK_PERIOD;
        let mut next_stats = Instant::now();
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if let Some(config) = commands.try_iter().last() {
                self.reconfigure(config);
            }
            self.replace_failed(now);
            self.move_audio(now);
            if now >= next_retry {
                next_retry = now + RETRY_PERIOD;
                self.retry_missing();
            }
            if now >= next_check {
                next_check = now + DEVICE_CHECK_PERIOD;
                self.check_devices();
            }
            if now >= next_stats {
                next_stats = now + STATS_PERIOD;
                *stats.lock().unwrap_or_else(PoisonError::into_inner) = self.stats();
            }
            std::thread::sleep(STAGE_PERIOD);
        }
    }

    fn roles(&mut self) -> [&mut RoleState; 3] {
        [&mut self.capture, &mut self.playback, &mut self.ringing]
    }

    /// A new microphone or speaker is a new echo path (and another delay between them): the
    /// canceller starts afresh rather than unlearning the old one.
    fn refresh_voice(&mut self) {
        let generations = (self.capture.generation, self.playback.generation);
        if generations != self.voice_for {
            self.voice_for = generations;
            self.voice = VoiceProcessing::new(self.voice_settings);
        }
    }

    /// Runs the conversion stage for every role once.
    fn move_audio(&mut self, now: Instant) {
        self.refresh_voice();
        let engine = &mut self.engine;
        let mut broken = Vec::new();
        match self.capture.stream.as_mut() {
            Some(stream) => {
                self.silence.stop();
                if stream
                    .capture_into(&mut engine.capture, self.voice.as_mut(), now)
                    .is_err()
                {
                    broken.push(DeviceRole::Capture);
                }
            }
            None => self.silence.fill(now, &mut engine.capture),
        }
        let captured = engine.capture.buffer().capacity() - engine.capture.slots();
        if captured >= crate::media::FRAME_SAMPLES {
            engine.frame_ready.notify_one();
        }
        let ringer_has_own_device = self.ringing.stream.is_some();
        match self.playback.stream.as_mut() {
            Some(stream) => {
                let extra = (!ringer_has_own_device).then_some(&mut engine.ringer);
                if stream
                    .play_from(&mut engine.playback, extra, self.voice.as_mut(), now)
                    .is_err()
                {
                    broken.push(DeviceRole::Playback);
                }
            }
            None => discard(&mut engine.playback, usize::MAX),
        }
        match self.ringing.stream.as_mut() {
            Some(stream) => {
                if stream
                    .play_from(&mut engine.ringer, None, None, now)
                    .is_err()
                {
                    broken.push(DeviceRole::Ringing);
                }
            }
            None if self.playback.stream.is_none() => discard(&mut engine.ringer, usize::MAX),
            None => trim_backlog(&mut engine.ringer),
        }
        // A conversion error will not mend itself on the same stream: reopen it.
        for role in self.roles() {
            if broken.contains(&role.role) {
                role.stream = None;
            }
        }
    }

    /// Replaces every stream whose device failed, falling back to the default.
    fn replace_failed(&mut self, now: Instant) {
        let Self {
            host,
            capture,
            playback,
            ringing,
            events,
            ..
        } = self;
        for role in [capture, playback, ringing] {
            let Some(lost) = role.stream.as_mut() else {
                continue;
            };
            if !lost.has_failed(now) {
                continue;
            }
            let name = lost.device().to_owned();
            // Closed before reopening: the same device may not open twice.
            role.stream = None;
            let _ = events.send(AudioEvent::DeviceLost {
                role: role.role,
                name,
            });
            reopen(host, role, events);
        }
    }

    fn retry_missing(&mut self) {
        let Self {
            host,
            capture,
            playback,
            ringing,
            events,
            ..
        } = self;
        for role in [capture, playback, ringing] {
            if role.stream.is_none() {
                reopen(host, role, events);
            }
        }
    }

    /// Moves named roles back to their device when it returns, and follows a changed system
    /// default.
    fn check_devices(&mut self) {
        let Self {
            host,
            capture,
            playback,
            ringing,
            events,
            ..
        } = self;
        for role in [capture, playback, ringing] {
            if role.stream.is_none() {
                continue;
            }
            match (&role.choice, role.opened) {
                (DeviceChoice::Named(wanted), Opened::Fallback) => {
                    let Some((device, name)) = named_device(host, role.direction, wanted) else {
                        continue;
                    };
                    // The default keeps playing unless the chosen device really opens.
                    if let Ok(stream) = OpenStream::open(&device, &name, role.direction) {
                        role.running(stream, Opened::AsChosen);
                        let _ = events.send(AudioEvent::Restored {
                            role: role.role,
                            name,
                        });
                    }
                }
                (DeviceChoice::SystemDefault, _) => {
                    let Some((device, name)) = default_device(host, role.direction) else {
                        continue;
                    };
                    if role.device().as_deref() == Some(name.as_str()) {
                        continue;
                    }
                    if let Ok(stream) = OpenStream::open(&device, &name, role.direction) {
                        role.running(stream, Opened::AsChosen);
                        let _ = events.send(AudioEvent::FollowedDefault {
                            role: role.role,
                            name,
                        });
                    }
                }
                (DeviceChoice::Named(_), Opened::AsChosen) => {}
            }
        }
    }

    fn reconfigure(&mut self, config: DeviceConfig) {
        if config.voice != self.voice_settings {
            self.voice_settings = config.voice;
            self.voice = VoiceProcessing::new(self.voice_settings);
        }
        let Self {
            host,
            capture,
            playback,
            ringing,
            events,
            ..
        } = self;
        for (role, choice) in [
            (capture, config.input),
            (playback, config.output),
            (ringing, config.ringing),
        ] {
            if role.choice == choice {
                continue;
            }
            role.choice = choice;
            role.stream = None;
            match role.open(host) {
                Ok(opened) => announce_start(role, opened, events),
                Err(error) => report_unavailable(role, &error, events),
            }
        }
    }

    fn stats(&self) -> AudioStats {
        AudioStats {
            capture: self.capture.stream.as_ref().map(OpenStream::stats),
            playback: self.playback.stream.as_ref().map(OpenStream::stats),
            ringing: self.ringing.stream.as_ref().map(OpenStream::stats),
        }
    }
}

/// Tells the UI when a role did not start (or restart after [`AudioThread::reconfigure`]) on
/// the device it asked for.
fn announce_start(role: &RoleState, opened: Opened, events: &mpsc::Sender<AudioEvent>) {
    if let (DeviceChoice::Named(wanted), Opened::Fallback) = (&role.choice, opened) {
        let _ = events.send(AudioEvent::DeviceLost {
            role: role.role,
            name: wanted.clone(),
        });
        let _ = events.send(AudioEvent::FellBackToDefault {
            role: role.role,
            name: role.device().unwrap_or_default(),
        });
    }
}

/// Opens a role that has no stream and says where it ended up.
fn reopen(host: &cpal::Host, role: &mut RoleState, events: &mpsc::Sender<AudioEvent>) {
    match role.open(host) {
        Ok(opened) => {
            let name = role.device().unwrap_or_default();
            let event = match (&role.choice, opened) {
                (DeviceChoice::Named(_), Opened::AsChosen) => AudioEvent::Restored {
                    role: role.role,
                    name,
                },
                _ => AudioEvent::FellBackToDefault {
                    role: role.role,
                    name,
                },
            };
            let _ = events.send(event);
        }
        Err(error) => report_unavailable(role, &error, events),
    }
}

/// Reports a role without a device once, not at every retry.
fn report_unavailable(role: &mut RoleState, error: &AudioError, events: &mpsc::Sender<AudioEvent>) {
    if !role.unavailable_reported {
        role.unavailable_reported = true;
        let _ = events.send(AudioEvent::Unavailable {
            role: role.role,
            reason: error.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_as_what_a_person_calls_them() {
        let err = AudioError::NoDevice {
            role: DeviceRole::Capture,
        };
        assert_eq!(err.to_string(), "no microphone device is available");
        assert_eq!(DeviceRole::Ringing.to_string(), "ringer");
    }

    #[test]
    fn missing_microphone_silence_follows_the_clock() {
        let (mut producer, mut consumer) = RingBuffer::new(RING_SAMPLES);
        let mut clock = SilenceClock {
            since: None,
            made: 0,
        };
        let start = Instant::now();
        clock.fill(start, &mut producer);
        clock.fill(start + Duration::from_millis(15), &mut producer);
        assert_eq!(consumer.slots(), 720);
        clock.fill(start + Duration::from_millis(20), &mut producer);
        assert_eq!(consumer.slots(), 960);
        let mut frame = [1.0_f32; 960];
        consumer.pop_entire_slice(&mut frame).unwrap();
        assert!(frame.iter().all(|&s| s == 0.0));
    }
}
