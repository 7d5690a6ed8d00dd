//! One open cpal stream. Its data callback only copies samples between the device buffer and
//! a device-side ring (device rate, device channels); the audio thread's stage converts
//! between that ring and the engine's 48 kHz mono rings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample, StreamConfig};
use rtrb::{Consumer, Producer, RingBuffer};

use super::AudioError;
use super::resample::{CaptureConverter, PlaybackConverter};
use crate::media::SAMPLE_RATE;

/// Device formats the callbacks handle, best first.
const USABLE_FORMATS: [SampleFormat; 3] = [SampleFormat::F32, SampleFormat::I16, SampleFormat::I32];
/// Engine samples the playback stage moves at a time: 10 ms.
const STAGE_CHUNK: usize = SAMPLE_RATE as usize / 100;
/// Queued engine playback beyond this (120 ms) means the device runs slower than the engine
/// or was away; the excess is dropped down to [`BACKLOG_KEPT`] to bound the delay.
const BACKLOG_LIMIT: usize = SAMPLE_RATE as usize * 120 / 1000;
const BACKLOG_KEPT: usize = SAMPLE_RATE as usize * 40 / 1000;
/// A stream that has only errors and no callbacks for three windows in a row (300 ms) is dead.
const HEALTH_WINDOW: Duration = Duration::from_millis(100);
const HEALTH_BAD_WINDOWS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Input,
    Output,
}

/// What a stream's callbacks tell the audio thread, through atomics only.
#[derive(Debug)]
struct Counters {
    fatal: AtomicBool,
    errors: AtomicU64,
    callbacks: AtomicU64,
    last_frames: AtomicU32,
    min_frames: AtomicU32,
    max_frames: AtomicU32,
    gap_samples: AtomicU64,
    xruns: AtomicU64,
}

impl Counters {
    fn new() -> Self {
        Self {
            fatal: AtomicBool::new(false),
            errors: AtomicU64::new(0),
            callbacks: AtomicU64::new(0),
            last_frames: AtomicU32::new(0),
            min_frames: AtomicU32::new(u32::MAX),
            max_frames: AtomicU32::new(0),
            gap_samples: AtomicU64::new(0),
            xruns: AtomicU64::new(0),
        }
    }

    fn note_callback(&self, samples: usize, channels: usize) {
        let frames = u32::try_from(samples / channels).unwrap_or(u32::MAX);
        self.callbacks.fetch_add(1, Ordering::Relaxed);
        self.last_frames.store(frames, Ordering::Relaxed);
        self.min_frames.fetch_min(frames, Ordering::Relaxed);
        self.max_frames.fetch_max(frames, Ordering::Relaxed);
    }

    fn note_gap(&self, samples: usize) {
        if samples > 0 {
            self.gap_samples
                .fetch_add(samples as u64, Ordering::Relaxed);
        }
    }

    fn note_error(&self, error: &cpal::Error) {
        match error.kind() {
            // The backend recovers from these by itself; the stream goes on.
            cpal::ErrorKind::Xrun | cpal::ErrorKind::RealtimeDenied => {
                self.xruns.fetch_add(1, Ordering::Relaxed);
            }
            // The backend has given up on the stream.
            cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::StreamInvalidated => {
                self.fatal.store(true, Ordering::Release);
            }
            // Anything else may pass (ALSA's PulseAudio plugin reports I/O errors for a few
            // milliseconds while its stream connects), so [`Health`] judges by persistence.
            _ => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Decides from outside the callbacks whether errors that are not final by themselves mean
/// the stream is dead: they keep coming while no callback gets through.
#[derive(Debug)]
struct Health {
    window_start: Instant,
    callbacks: u64,
    errors: u64,
    bad_windows: u32,
}

impl Health {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            callbacks: 0,
            errors: 0,
            bad_windows: 0,
        }
    }

    fn dead(&mut self, now: Instant, counters: &Counters) -> bool {
        if counters.fatal.load(Ordering::Acquire) {
            return true;
        }
        if now.duration_since(self.window_start) >= HEALTH_WINDOW {
            let callbacks = counters.callbacks.load(Ordering::Relaxed);
            let errors = counters.errors.load(Ordering::Relaxed);
            let bad = errors != self.errors && callbacks == self.callbacks;
            self.bad_windows = if bad { self.bad_windows + 1 } else { 0 };
            self.window_start = now;
            self.callbacks = callbacks;
            self.errors = errors;
        }
        self.bad_windows >= HEALTH_BAD_WINDOWS
    }
}

/// How a stream has been doing, for diagnostics and the settings screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    /// The device's name as [`super::DeviceInfo::name`] gives it.
    pub device: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// The device-side sample format, such as `f32` or `i16`.
    pub sample_format: String,
    /// Frames per callback the backend announced when the stream opened, if it did.
    pub buffer_frames: Option<u32>,
    pub callbacks: u64,
    /// Smallest, largest and latest frames per callback seen (0 before the first callback).
    pub callback_frames_min: u32,
    pub callback_frames_max: u32,
    pub callback_frames_last: u32,
    /// Device samples lost because a device-side ring was full (capture) or empty (playback).
    pub gap_samples: u64,
    /// Over- and underruns the backend reported and recovered from.
    pub xruns: u64,
    /// Other errors the backend reported (a stream that only has these is replaced).
    pub errors: u64,
    /// Capture only: the loudest sample of the last 100 ms, in thousandths of full scale
    /// (the microphone level meter).
    pub level_permille: u16,
}

enum Side {
    Input {
        ring: Consumer<f32>,
        converter: CaptureConverter,
        scratch: Vec<f32>,
    },
    Output {
        ring: Producer<f32>,
        converter: PlaybackConverter,
        mono: Vec<f32>,
        mix: Vec<f32>,
        standing: StandingQueue,
    },
}

/// A running device stream and the stage that feeds or drains it.
pub(crate) struct OpenStream {
    _stream: cpal::Stream,
    device: String,
    config: StreamConfig,
    format: SampleFormat,
    buffer_frames: Option<u32>,
    counters: Arc<Counters>,
    health: Health,
    side: Side,
    level: LevelMeter,
}

/// The peak level over windows of 100 ms of 48 kHz audio.
#[derive(Debug, Default, Clone, Copy)]
struct LevelMeter {
    peak: f32,
    samples: usize,
    last_window_peak: f32,
}

impl LevelMeter {
    const WINDOW: usize = 4800;

    fn measure(&mut self, samples: &[f32]) {
        for sample in samples {
            self.peak = self.peak.max(sample.abs());
            self.samples += 1;
            if self.samples >= Self::WINDOW {
                self.last_window_peak = self.peak;
                self.peak = 0.0;
                self.samples = 0;
            }
        }
    }

    fn permille(&self) -> u16 {
        // Rounded and clamped, so the cast cannot truncate.
        (self.last_window_peak.clamp(0.0, 1.0) * 1000.0).round() as u16
    }
}

impl std::fmt::Debug for OpenStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenStream")
            .field("device", &self.device)
            .field("config", &self.config)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl OpenStream {
    /// Opens and starts a stream on `device` in its own preferred rate and layout, with
    /// 10 ms periods where the device takes them: left to itself a device (PulseAudio's ALSA
    /// plugin among them) picks periods of 512 frames or more, and each period is queued
    /// delay on a call.
    pub(crate) fn open(
        device: &cpal::Device,
        name: &str,
        direction: Direction,
    ) -> Result<Self, AudioError> {
        let (config, format) = choose_config(device, direction, name)?;
        let short_periods = StreamConfig {
            buffer_size: cpal::BufferSize::Fixed(config.sample_rate / 100),
            ..config
        };
        Self::open_with(device, name, direction, short_periods, format).or_else(|error| {
            // Longer periods mean more delay on every call: worth a line in the log.
            tracing::info!(device = name, %error, "10 ms periods refused; the device's own");
            Self::open_with(device, name, direction, config, format)
        })
    }

    fn open_with(
        device: &cpal::Device,
        name: &str,
        direction: Direction,
        config: StreamConfig,
        format: SampleFormat,
    ) -> Result<Self, AudioError> {
        let device_error = |source| AudioError::Device {
            name: name.to_owned(),
            source,
        };
        let channels = usize::from(config.channels.max(1));
        let rate = config.sample_rate;
        // 200 ms of device audio: far more than any callback asks for at once.
        let ring_samples = usize::try_from(rate / 5).unwrap_or(9600).max(1024) * channels;
        let (producer, consumer) = RingBuffer::new(ring_samples);
        let counters = Arc::new(Counters::new());
        let (stream, side) = match direction {
            Direction::Input => {
                let stream = match format {
                    SampleFormat::I16 => build_input::<i16>(device, config, producer, &counters),
                    SampleFormat::I32 => build_input::<i32>(device, config, producer, &counters),
                    _ => build_input::<f32>(device, config, producer, &counters),
                }
                .map_err(device_error)?;
                let side = Side::Input {
                    ring: consumer,
                    converter: CaptureConverter::new(rate, config.channels, SAMPLE_RATE)?,
                    scratch: vec![0.0; usize::try_from(rate / 100).unwrap_or(480) * channels],
                };
                (stream, side)
            }
            Direction::Output => {
                let stream = match format {
                    SampleFormat::I16 => build_output::<i16>(device, config, consumer, &counters),
                    SampleFormat::I32 => build_output::<i32>(device, config, consumer, &counters),
                    _ => build_output::<f32>(device, config, consumer, &counters),
                }
                .map_err(device_error)?;
                let side = Side::Output {
                    ring: producer,
                    converter: PlaybackConverter::new(SAMPLE_RATE, rate, config.channels)?,
                    mono: vec![0.0; STAGE_CHUNK],
                    mix: vec![0.0; STAGE_CHUNK],
                    standing: StandingQueue::default(),
                };
                (stream, side)
            }
        };
        stream.play().map_err(device_error)?;
        let buffer_frames = stream.buffer_size().ok();
        Ok(Self {
            _stream: stream,
            device: name.to_owned(),
            config,
            format,
            buffer_frames,
            counters,
            health: Health::new(Instant::now()),
            side,
            level: LevelMeter::default(),
        })
    }

    pub(crate) fn device(&self) -> &str {
        &self.device
    }

    /// Whether the backend gave up on the stream or keeps failing without delivering audio.
    pub(crate) fn has_failed(&mut self, now: Instant) -> bool {
        self.health.dead(now, &self.counters)
    }

    /// Moves everything the microphone delivered into the engine's capture ring, as 48 kHz
    /// mono, through `voice` first when there is one (the level meter shows what the call
    /// gets). Returns how many engine samples did not fit.
    pub(crate) fn capture_into(
        &mut self,
        engine: &mut Producer<f32>,
        mut voice: Option<&mut super::voice::VoiceProcessing>,
        now: std::time::Instant,
    ) -> Result<usize, AudioError> {
        let Side::Input {
            ring,
            converter,
            scratch,
        } = &mut self.side
        else {
            return Ok(0);
        };
        let level = &mut self.level;
        let channels = usize::from(self.config.channels.max(1));
        let mut dropped = 0;
        loop {
            let whole_frames = ring.slots() / channels * channels;
            let take = whole_frames.min(scratch.len());
            let Some(part) = scratch.get_mut(..take).filter(|part| !part.is_empty()) else {
                return Ok(dropped);
            };
            if ring.pop_entire_slice(part).is_err() {
                return Ok(dropped);
            }
            converter.convert(part, &mut |out| match voice.as_deref_mut() {
                Some(voice) => voice.capture(out, now, &mut |processed| {
                    level.measure(processed);
                    dropped += engine.push_partial_slice(processed).1.len();
                }),
                None => {
                    level.measure(out);
                    dropped += engine.push_partial_slice(out).1.len();
                }
            })?;
        }
    }

    /// Tops the device-side ring up from the engine's playback ring (plus `extra`, mixed in,
    /// when another source shares this device) to about two callbacks' worth.
    /// `voice` hears everything sent to the speaker: the echo it is to cancel.
    pub(crate) fn play_from(
        &mut self,
        engine: &mut Consumer<f32>,
        mut extra: Option<&mut Consumer<f32>>,
        mut voice: Option<&mut super::voice::VoiceProcessing>,
        now: std::time::Instant,
    ) -> Result<(), AudioError> {
        let target = self.queue_target();
        let Side::Output {
            ring,
            converter,
            mono,
            mix,
            standing,
        } = &mut self.side
        else {
            return Ok(());
        };
        trim_backlog(engine);
        if let Some(extra) = extra.as_deref_mut() {
            trim_backlog(extra);
        }
        let capacity = ring.buffer().capacity();
        while capacity - ring.slots() < target {
            let extra_ready = extra.as_deref().is_some_and(|e| e.slots() >= STAGE_CHUNK);
            if engine.slots() < STAGE_CHUNK && !extra_ready {
                break;
            }
            mono.fill(0.0);
            let _ = engine.pop_partial_slice(mono);
            if let Some(extra) = extra.as_deref_mut() {
                mix.fill(0.0);
                let _ = extra.pop_partial_slice(mix);
                for (sum, add) in mono.iter_mut().zip(mix.iter()) {
                    *sum += add;
                }
            }
            if let Some(voice) = voice.as_deref_mut() {
                voice.render(mono, now);
            }
            let mut lost = 0;
            converter.convert(mono, &mut |out| {
                lost += ring.push_partial_slice(out).1.len();
            })?;
            self.counters.note_gap(lost);
        }
        discard(engine, standing.excess(engine.slots(), now));
        Ok(())
    }

    /// Device samples to keep queued: two of the largest callbacks, and at least 10 ms.
    fn queue_target(&self) -> usize {
        let period = self
            .counters
            .max_frames
            .load(Ordering::Relaxed)
            .max(self.buffer_frames.unwrap_or(0));
        let frames = (period.saturating_mul(2)).max(self.config.sample_rate / 100);
        usize::try_from(frames).unwrap_or(usize::MAX) * usize::from(self.config.channels.max(1))
    }

    pub(crate) fn stats(&self) -> StreamStats {
        let c = &self.counters;
        let min = c.min_frames.load(Ordering::Relaxed);
        StreamStats {
            device: self.device.clone(),
            sample_rate: self.config.sample_rate,
            channels: self.config.channels,
            sample_format: self.format.to_string(),
            buffer_frames: self.buffer_frames,
            callbacks: c.callbacks.load(Ordering::Relaxed),
            callback_frames_min: if min == u32::MAX { 0 } else { min },
            callback_frames_max: c.max_frames.load(Ordering::Relaxed),
            callback_frames_last: c.last_frames.load(Ordering::Relaxed),
            gap_samples: c.gap_samples.load(Ordering::Relaxed),
            xruns: c.xruns.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            level_permille: self.level.permille(),
        }
    }
}

/// The lowest level of a ring between the engine and a device over a window. One side
/// moves a 20 ms frame at a time and the other 10 ms or so steadily, so the ring should run
/// nearly dry once in a while; what never drains is delay added for nothing (the call
/// started with a few frames queued, or the device was away for a moment), and the rest of
/// the call would carry it.
#[derive(Debug, Default)]
pub(crate) struct StandingQueue {
    lowest: Option<usize>,
    since: Option<std::time::Instant>,
}

impl StandingQueue {
    const WINDOW: Duration = Duration::from_millis(500);
    /// What may stay queued: one stage chunk (10 ms), for the engine's and the device's
    /// timing.
    const SLACK: usize = STAGE_CHUNK;

    /// Notes the ring's level after the device was served; at the end of each window,
    /// returns how many of the oldest samples to drop.
    pub(crate) fn excess(&mut self, queued: usize, now: std::time::Instant) -> usize {
        let lowest = self.lowest.map_or(queued, |lowest| lowest.min(queued));
        let since = *self.since.get_or_insert(now);
        if now.saturating_duration_since(since) < Self::WINDOW {
            self.lowest = Some(lowest);
            return 0;
        }
        self.lowest = None;
        self.since = Some(now);
        lowest.saturating_sub(Self::SLACK)
    }
}

/// Drops the oldest queued samples once more than [`BACKLOG_LIMIT`] wait.
pub(crate) fn trim_backlog(ring: &mut Consumer<f32>) {
    let queued = ring.slots();
    if queued > BACKLOG_LIMIT {
        discard(ring, queued - BACKLOG_KEPT);
    }
}

/// Throws away up to `count` samples from the front of `ring`.
pub(crate) fn discard(ring: &mut Consumer<f32>, count: usize) {
    if let Ok(chunk) = ring.read_chunk(count.min(ring.slots())) {
        chunk.commit_all();
    }
}

/// The device's default rate and layout in a format the callbacks handle; failing that, any
/// layout at that rate, then anything at all in such a format.
fn choose_config(
    device: &cpal::Device,
    direction: Direction,
    name: &str,
) -> Result<(StreamConfig, SampleFormat), AudioError> {
    let (default, ranges) = match direction {
        Direction::Input => (
            device.default_input_config(),
            device.supported_input_configs().map(Iterator::collect),
        ),
        Direction::Output => (
            device.default_output_config(),
            device.supported_output_configs().map(Iterator::collect),
        ),
    };
    let ranges: Vec<cpal::SupportedStreamConfigRange> = ranges.unwrap_or_default();
    let config = |channels, sample_rate| StreamConfig {
        channels,
        sample_rate,
        buffer_size: cpal::BufferSize::Default,
    };
    let preferred = match &default {
        Ok(default) if USABLE_FORMATS.contains(&default.sample_format()) => {
            return Ok((
                config(default.channels(), default.sample_rate()),
                default.sample_format(),
            ));
        }
        Ok(default) => Some((default.channels(), default.sample_rate())),
        Err(_) => None,
    };
    let (channels, rate) = preferred.unwrap_or((2, SAMPLE_RATE));
    for format in USABLE_FORMATS {
        let usable = |r: &&cpal::SupportedStreamConfigRange| r.sample_format() == format;
        if let Some(exact) = ranges
            .iter()
            .filter(usable)
            .find(|r| r.channels() == channels && r.contains_rate(rate))
        {
            return Ok((config(exact.channels(), rate), format));
        }
        if let Some(same_rate) = ranges
            .iter()
            .filter(usable)
            .filter(|r| r.contains_rate(rate))
            .min_by_key(|r| r.channels())
        {
            return Ok((config(same_rate.channels(), rate), format));
        }
        if let Some(any) = ranges.iter().filter(usable).min_by_key(|r| r.channels()) {
            let rate = SAMPLE_RATE.clamp(any.min_sample_rate(), any.max_sample_rate());
            return Ok((config(any.channels(), rate), format));
        }
    }
    match default {
        Err(source) if ranges.is_empty() => Err(AudioError::Device {
            name: name.to_owned(),
            source,
        }),
        _ => Err(AudioError::NoUsableFormat {
            name: name.to_owned(),
        }),
    }
}

fn build_input<T>(
    device: &cpal::Device,
    config: StreamConfig,
    mut ring: Producer<f32>,
    counters: &Arc<Counters>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    let seen = Arc::clone(counters);
    let errors = Arc::clone(counters);
    device.build_input_stream(
        config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            seen.note_callback(data.len(), channels);
            // Whole frames only, so a full ring never shifts the channel order.
            let room = ring.slots() / channels * channels;
            let count = data.len().min(room);
            if let Ok(chunk) = ring.write_chunk_uninit(count) {
                chunk.fill_from_iter(data.iter().map(|&s| f32::from_sample(s)));
            }
            seen.note_gap(data.len() - count);
        },
        move |error| errors.note_error(&error),
        None,
    )
}

fn build_output<T>(
    device: &cpal::Device,
    config: StreamConfig,
    mut ring: Consumer<f32>,
    counters: &Arc<Counters>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels.max(1));
    let seen = Arc::clone(counters);
    let errors = Arc::clone(counters);
    device.build_output_stream(
        config,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
            seen.note_callback(data.len(), channels);
            let count = data.len().min(ring.slots()) / channels * channels;
            let mut filled = 0;
            if let Ok(chunk) = ring.read_chunk(count) {
                let (first, second) = chunk.as_slices();
                for (out, &sample) in data.iter_mut().zip(first.iter().chain(second)) {
                    *out = T::from_sample(sample.clamp(-1.0, 1.0));
                }
                filled = chunk.len();
                chunk.commit_all();
            }
            for out in data.iter_mut().skip(filled) {
                *out = T::EQUILIBRIUM;
            }
            seen.note_gap(data.len() - filled);
        },
        move |error| errors.note_error(&error),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::{LevelMeter, STAGE_CHUNK, StandingQueue};
    use std::time::{Duration, Instant};

    /// The ring's level every 10 ms for `millis`, as `level(t)`; what each window dropped.
    fn watch(millis: u64, level: impl Fn(u64) -> usize) -> Vec<usize> {
        let start = Instant::now();
        let mut standing = StandingQueue::default();
        (0..=millis / 10)
            .map(|tick| standing.excess(level(tick * 10), start + Duration::from_millis(tick * 10)))
            .filter(|&dropped| dropped > 0)
            .collect()
    }

    #[test]
    fn a_ring_that_never_drains_is_cut_to_one_chunk_once_per_window() {
        // 30 to 50 ms queued all the time: 30 ms standing, of which 20 ms go.
        let dropped = watch(1000, |t| 1440 + 960 * usize::from((t / 10) % 2 == 0));
        assert_eq!(dropped, vec![1440 - STAGE_CHUNK, 1440 - STAGE_CHUNK]);
    }

    #[test]
    fn a_ring_that_runs_dry_before_each_frame_keeps_everything() {
        assert!(watch(2000, |t| if t % 20 == 0 { 0 } else { 960 }).is_empty());
        assert!(watch(2000, |t| STAGE_CHUNK + usize::from(t % 20 == 0) * 960).is_empty());
    }

    #[test]
    fn the_level_meter_reports_the_peak_of_the_last_full_window() {
        let mut meter = LevelMeter::default();
        assert_eq!(meter.permille(), 0);
        let mut loud = vec![0.1f32; LevelMeter::WINDOW];
        loud[10] = -0.5;
        meter.measure(&loud);
        assert_eq!(meter.permille(), 500);
        // Half a quiet window changes nothing yet; the full one does.
        meter.measure(&vec![0.01; LevelMeter::WINDOW / 2]);
        assert_eq!(meter.permille(), 500);
        meter.measure(&vec![0.01; LevelMeter::WINDOW / 2]);
        assert_eq!(meter.permille(), 10);
        meter.measure(&vec![3.0; LevelMeter::WINDOW]);
        assert_eq!(meter.permille(), 1000, "clipped at full scale");
    }
}
