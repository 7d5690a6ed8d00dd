//! Audio I/O for the phone: moves 48 kHz mono `f32` samples between the engine and a sound
//! card, a WAV file, or nothing at all.
//!
//! The engine never sees a device. It holds an [`AudioPorts`]: two lock-free SPSC rings
//! (`rtrb`) of about 200 ms each, filled and drained in [`crate::media::FRAME_SAMPLES`]-sample
//! frames at [`crate::media::SAMPLE_RATE`]. Whatever sits on the other end (a device, a file, a
//! null pump) keeps the matching [`DriverPorts`].
//!
//! # Public API
//!
//! Rings (`ring`):
//! - `AudioPorts { pub capture: Consumer<f32>, pub playback: Producer<f32> }`, with
//!   `AudioPorts::pair() -> (AudioPorts, DriverPorts)`,
//!   `read_capture(&mut self, out: &mut [f32]) -> bool` (a whole frame or nothing) and
//!   `write_playback(&mut self, frame: &[f32]) -> bool` (a whole frame or nothing).
//! - `DriverPorts { pub capture: Producer<f32>, pub playback: Consumer<f32> }`: the far ends.
//! - `RING_SAMPLES`: capacity of every engine-side ring (200 ms at 48 kHz).
//!
//! Sound card (`device`, `stream`; cpal on a dedicated audio thread):
//! - `start_devices(config: DeviceConfig) -> Result<DeviceAudio, AudioError>`.
//! - `DeviceAudio { pub ports: AudioPorts, pub frame_ready: Arc<tokio::sync::Notify>,
//!   pub ringer: Producer<f32>,
//!   pub events: mpsc::Receiver<AudioEvent>, pub thread: AudioThread }`; dropping `thread`
//!   stops the audio thread and closes the devices.
//! - `AudioThread::stats(&self) -> AudioStats`, `AudioThread::reconfigure(&self, DeviceConfig)`,
//!   `AudioThread::stop(self)`.
//! - `DeviceConfig { input, output, ringing: DeviceChoice, voice: VoiceSettings }`: `voice`
//!   is the microphone's processing (echo cancellation, noise suppression, automatic gain,
//!   `voice.rs`, sonora), run on the audio thread's conversion stage;
//!   `DeviceChoice::{SystemDefault, Named(String)}`, `DeviceRole::{Capture, Playback, Ringing}`.
//! - `list_devices() -> Result<Vec<DeviceInfo>, AudioError>`,
//!   `DeviceInfo { name, description, is_input, is_output, is_default }`; `name` is what
//!   `DeviceChoice::Named` takes.
//! - `AudioEvent::{DeviceLost, FellBackToDefault, Restored, FollowedDefault, Unavailable}`.
//! - `AudioStats { capture, playback, ringing: Option<StreamStats> }`; `StreamStats` gives the
//!   device, its rate, channels and sample format, the frames per callback seen, and for the
//!   microphone the peak level of the last 100 ms (`level_permille`, the level meter).
//! - `Volumes`: input and output volume in percent (0 to `MAX_VOLUME_PERCENT`), atomics the
//!   call's audio applies every frame.
//!
//! Files (`file`; headless mode, paced by the caller's clock):
//! - `WavSource::open(path) -> Result<WavSource, AudioError>`, `.looping(bool) -> Self`,
//!   `next_frame(&mut self, out: &mut [f32]) -> bool` (false at the end, or after a read
//!   error that `error()` then returns),
//!   `try_next_frame(&mut self, out: &mut [f32]) -> Result<bool, AudioError>`,
//!   `source_format(&self) -> (u32, u16)`.
//! - `WavSink::create(path) -> Result<WavSink, AudioError>`,
//!   `write_frame(&mut self, frame: &[f32]) -> Result<(), AudioError>`,
//!   `finish(self) -> Result<(), AudioError>`.
//!
//! Nothing (`null`; tests and headless calls without `--play`):
//! - `null_ports() -> (AudioPorts, NullPump)`; `NullPump::pump(&mut self, elapsed: Duration)`
//!   and `NullPump::pump_frame(&mut self)` feed silence at 48 kHz and discard playback; both
//!   return `Pumped { captured, overflowed, discarded }`.
//!
//! # Threads and real time
//!
//! cpal's data callbacks only copy samples between the device buffer and device-side rings
//! (device rate and channel layout): no lock, no allocation, no logging. The audio thread
//! wakes every few milliseconds, converts between the device format and 48 kHz mono with
//! rubato, and replaces failed devices by the system default; it reports that on
//! `DeviceAudio::events`. Each time the capture ring holds a whole frame it signals
//! `DeviceAudio::frame_ready`, which the driver steps the calls' media by. Muting and mixing
//! calls are not done here.
//!
//! # Behaviour worth knowing
//!
//! - Devices open in their own default rate and layout in `f32`, `i16` or `i32`; channels are
//!   averaged on capture and duplicated on playback.
//! - Streams ask for 10 ms periods and take the device's own when it refuses them.
//! - The playback stage keeps about two device callbacks queued (at least 10 ms). Engine
//!   playback queued beyond 120 ms (a device clock slower than the engine's, or a device that
//!   was away) is cut back to 40 ms, oldest first; and what stays queued through a whole
//!   half second beyond 10 ms is dropped (`StandingQueue`), since it is only delay. Capture
//!   that the engine does not read is dropped, newest first, once its 200 ms ring is full.
//! - A stream counts as lost when the backend says the device is gone, or when it reports
//!   only errors and no callbacks for 300 ms. ALSA's PulseAudio plugin reports a burst of I/O
//!   errors while a stream connects, so single errors are not enough.
//! - While no microphone can be opened the capture ring gets real-time silence; while no
//!   speaker can be, call audio is discarded; ringtones without a ringing device play on the
//!   call's device. Missing devices are retried every second; a named device the role fell
//!   back from, and a changed system default, are looked for every three seconds.

mod device;
mod file;
mod null;
mod resample;
mod ring;
mod stream;

#[cfg(test)]
mod tone;
mod voice;
mod volume;

use std::path::PathBuf;

pub use device::{
    AudioEvent, AudioStats, AudioThread, DeviceAudio, DeviceChoice, DeviceConfig, DeviceInfo,
    DeviceRole, list_devices, start_devices,
};
pub use file::{WavSink, WavSource};
pub use null::{NullPump, Pumped, null_ports};
pub use ring::{AudioPorts, DriverPorts, RING_SAMPLES};
pub use stream::StreamStats;
pub(crate) use stream::{StandingQueue, discard};
pub use voice::{NoiseLevel, VoiceProcessing, VoiceSettings};
pub use volume::{MAX_VOLUME_PERCENT, Volumes};

/// Everything that can go wrong in audio I/O. File errors name the file; device errors name
/// the device.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot read WAV file {path}: {source}")]
    WavRead {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    #[error("cannot write WAV file {path}: {source}")]
    WavWrite {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    #[error("unsupported WAV file {path}: {reason}")]
    UnsupportedWav { path: PathBuf, reason: String },
    #[error("cannot resample from {from} Hz to {to} Hz: {reason}")]
    Resampler { from: u32, to: u32, reason: String },
    #[error("the audio system is not available: {0}")]
    Host(#[source] cpal::Error),
    #[error("no {role} device is available")]
    NoDevice { role: DeviceRole },
    #[error("audio device {name}: {source}")]
    Device {
        name: String,
        #[source]
        source: cpal::Error,
    },
    #[error("audio device {name} offers no f32, i16 or i32 format")]
    NoUsableFormat { name: String },
    #[error("cannot start the audio thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the audio thread stopped before it opened the devices")]
    ThreadDied,
}
