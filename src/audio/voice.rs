//! Voice processing on the sound-card path: echo cancellation, noise suppression and
//! automatic gain, by sonora (a pure-Rust port of WebRTC's audio processing: AEC3, NS, AGC2).
//!
//! Why sonora and not the webrtc-audio-processing crate: the latter's `bundled` build runs
//! meson over WebRTC's C++ and fetches abseil at build time (Debian's is older than it
//! needs), so it does not build on a machine without network; sonora is Rust only. See
//! ARCHITECTURE.md for the measurements.
//!
//! The audio thread hands [`VoiceProcessing::render`] every 48 kHz sample it sends to the
//! call's speaker stream (after volume; the ringtone too when it plays on that stream rather
//! than on a ringing device of its own: what the microphone may pick up again) and
//! passes the microphone's converted samples through [`VoiceProcessing::capture`]. Both are
//! cut into the 10 ms chunks the processor takes; the delay between the two is the
//! canceller's to find (AEC3 estimates it, and follows it when it drifts). It runs on the
//! audio thread's conversion stage, never in a device callback.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, NoiseSuppression, NoiseSuppressionLevel,
};
use sonora::{AudioProcessing, Config, StreamConfig};

use crate::media::SAMPLE_RATE;

/// What the processor takes at once: 10 ms.
const CHUNK: usize = SAMPLE_RATE as usize / 100;
/// With nothing sent to the speaker for this long (no call, no speaker), the microphone
/// passes unprocessed: AEC3 wants a reference every 10 ms, and without one it keeps losing
/// and looking for the echo's delay; nor is there an echo to cancel.
const REFERENCE_STALE: Duration = Duration::from_millis(500);

/// How strongly background noise is suppressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseLevel {
    #[default]
    Off,
    Low,
    Moderate,
    High,
    VeryHigh,
}

impl NoiseLevel {
    pub const ALL: [NoiseLevel; 5] = [
        NoiseLevel::Off,
        NoiseLevel::Low,
        NoiseLevel::Moderate,
        NoiseLevel::High,
        NoiseLevel::VeryHigh,
    ];

    pub fn label(self) -> &'static str {
        match self {
            NoiseLevel::Off => "Off",
            NoiseLevel::Low => "Low",
            NoiseLevel::Moderate => "Moderate",
            NoiseLevel::High => "High",
            NoiseLevel::VeryHigh => "Very high",
        }
    }
}

/// Which processing the microphone gets; the default is none (the settings' default, for
/// people, is [`VoiceSettings::RECOMMENDED`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoiceSettings {
    pub echo_cancellation: bool,
    pub noise_suppression: NoiseLevel,
    pub auto_gain: bool,
}

impl VoiceSettings {
    /// Echo cancellation on (speakers and a microphone are how most laptops are used); noise
    /// suppression and gain off, since they change a voice the user may not want changed.
    pub const RECOMMENDED: VoiceSettings = VoiceSettings {
        echo_cancellation: true,
        noise_suppression: NoiseLevel::Off,
        auto_gain: false,
    };

    fn is_off(self) -> bool {
        !self.echo_cancellation && self.noise_suppression == NoiseLevel::Off && !self.auto_gain
    }

    fn config(self) -> Config {
        let level = match self.noise_suppression {
            NoiseLevel::Off => None,
            NoiseLevel::Low => Some(NoiseSuppressionLevel::Low),
            NoiseLevel::Moderate => Some(NoiseSuppressionLevel::Moderate),
            NoiseLevel::High => Some(NoiseSuppressionLevel::High),
            NoiseLevel::VeryHigh => Some(NoiseSuppressionLevel::VeryHigh),
        };
        Config {
            echo_canceller: self.echo_cancellation.then(EchoCanceller::default),
            noise_suppression: level.map(|level| NoiseSuppression {
                level,
                ..NoiseSuppression::default()
            }),
            // The default AGC2 is its limiter alone; the adaptive digital controller is what
            // keeps a voice at a steady level.
            gain_controller2: self.auto_gain.then(|| GainController2 {
                adaptive_digital: Some(AdaptiveDigital::default()),
                ..GainController2::default()
            }),
            ..Config::default()
        }
    }
}

/// The processor and the samples waiting to make up a 10 ms chunk on each side.
pub struct VoiceProcessing {
    processor: AudioProcessing,
    render_pending: Vec<f32>,
    render_out: Vec<f32>,
    capture_pending: Vec<f32>,
    capture_out: Vec<f32>,
    /// When samples last went to the speaker.
    rendered_at: Option<Instant>,
}

impl core::fmt::Debug for VoiceProcessing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VoiceProcessing").finish_non_exhaustive()
    }
}

impl VoiceProcessing {
    /// None when `settings` ask for nothing: the samples then pass untouched.
    pub fn new(settings: VoiceSettings) -> Option<VoiceProcessing> {
        if settings.is_off() {
            return None;
        }
        let mono = StreamConfig::new(SAMPLE_RATE, 1);
        let processor = AudioProcessing::builder()
            .config(settings.config())
            .capture_config(mono)
            .render_config(mono)
            .build();
        Some(VoiceProcessing {
            processor,
            render_pending: Vec::with_capacity(CHUNK),
            render_out: vec![0.0; CHUNK],
            capture_pending: Vec::with_capacity(CHUNK),
            capture_out: vec![0.0; CHUNK],
            rendered_at: None,
        })
    }

    /// Samples on their way to the speaker at `now`: the echo's reference.
    pub fn render(&mut self, samples: &[f32], now: Instant) {
        if !samples.is_empty() {
            self.rendered_at = Some(now);
        }
        let VoiceProcessing {
            processor,
            render_pending,
            render_out,
            ..
        } = self;
        in_chunks(render_pending, samples, |chunk| {
            // The render side only analyses; what it would write back is not played.
            let _ = processor.process_render_f32(&[chunk], &mut [render_out.as_mut_slice()]);
        });
    }

    /// Microphone samples in at `now`; each processed 10 ms chunk goes to `out` as it is
    /// ready (the processing delays the microphone by less than 10 ms). While nothing goes
    /// to the speaker the samples pass as they are.
    pub fn capture(&mut self, samples: &[f32], now: Instant, out: &mut dyn FnMut(&[f32])) {
        let speaking = self
            .rendered_at
            .is_some_and(|at| now.saturating_duration_since(at) < REFERENCE_STALE);
        if !speaking && self.capture_pending.is_empty() {
            out(samples);
            return;
        }
        let VoiceProcessing {
            processor,
            capture_pending,
            capture_out,
            ..
        } = self;
        in_chunks(capture_pending, samples, |chunk| {
            match processor.process_capture_f32(&[chunk], &mut [capture_out.as_mut_slice()]) {
                Ok(()) => out(capture_out),
                // A chunk the processor refuses still reaches the call, unprocessed.
                Err(_) => out(chunk),
            }
        });
    }
}

/// Adds `samples` to `pending` (made finite) and hands each whole 10 ms chunk to `whole`;
/// what is left waits in `pending` for the next samples.
fn in_chunks(pending: &mut Vec<f32>, mut samples: &[f32], mut whole: impl FnMut(&[f32])) {
    while !samples.is_empty() {
        let room = CHUNK - pending.len();
        let (part, rest) = samples.split_at(room.min(samples.len()));
        pending.extend(part.iter().map(|s| finite(*s)));
        samples = rest;
        if pending.len() == CHUNK {
            whole(pending);
            pending.clear();
        }
    }
}

/// A NaN or infinity from a driver would poison the canceller's filters for good.
fn finite(sample: f32) -> f32 {
    if sample.is_finite() { sample } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{Sine, goertzel_amplitude, rms};

    /// A deterministic noise, like speech in that it excites the whole band.
    fn noise(seed: &mut u32, len: usize, level: f32) -> Vec<f32> {
        (0..len)
            .map(|_| {
                *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (f32::from((*seed >> 16) as u16) / 32768.0 - 1.0) * level
            })
            .collect()
    }

    /// The far end's noise reaches the microphone 60 ms later, 6 dB down, while the near end
    /// says `near` (a 1 kHz tone, or nothing); returns what the processing lets through in
    /// the last 2 s of 6.
    fn through_echo(settings: VoiceSettings, near: f32) -> (Vec<f32>, Vec<f32>) {
        let mut voice = VoiceProcessing::new(settings).unwrap();
        let mut seed = 7;
        let far = noise(&mut seed, 6 * SAMPLE_RATE as usize, 0.3);
        let delay = 60 * SAMPLE_RATE as usize / 1000;
        let mut sine = Sine::new(1000.0, near, SAMPLE_RATE);
        let mut out = Vec::new();
        let mut mic = vec![0.0; 480];
        let start = Instant::now();
        for (index, chunk) in far.chunks(480).enumerate() {
            let now = start + Duration::from_millis(10 * index as u64);
            voice.render(chunk, now);
            sine.fill(&mut mic);
            for (i, sample) in mic.iter_mut().enumerate() {
                let at = index * 480 + i;
                if let Some(echo) = at.checked_sub(delay).and_then(|at| far.get(at)) {
                    *sample += echo * 0.5;
                }
            }
            voice.capture(&mic, now, &mut |processed| out.extend_from_slice(processed));
        }
        let tail = out.split_off(out.len() - 2 * SAMPLE_RATE as usize);
        (tail, far)
    }

    #[test]
    fn the_far_ends_echo_is_cancelled_once_converged() {
        let (left, far) = through_echo(VoiceSettings::RECOMMENDED, 0.0);
        let down = 20.0 * (rms(&left) / rms(&far)).log10();
        eprintln!("echo after 4 s: {down:.1} dB below the far end");
        assert!(down < -30.0, "echo {down:.1} dB below the far end");
    }

    #[test]
    fn the_near_end_still_gets_through_while_both_talk() {
        let (with, _) = through_echo(VoiceSettings::RECOMMENDED, 0.3);
        let level = goertzel_amplitude(&with, SAMPLE_RATE, 1000.0);
        let loss = 20.0 * (level / 0.3).log10();
        eprintln!("near end while both talk: {loss:.1} dB");
        assert!(loss > -6.0, "the near end's 1 kHz is {loss:.1} dB down");
    }

    #[test]
    fn with_nothing_played_the_microphone_passes_as_it_is() {
        let mut voice = VoiceProcessing::new(VoiceSettings::RECOMMENDED).unwrap();
        let mut sine = Sine::new(1000.0, 0.3, SAMPLE_RATE);
        let mut mic = vec![0.0; 960];
        sine.fill(&mut mic);
        let mut out = Vec::new();
        voice.capture(&mic, Instant::now(), &mut |p| out.extend_from_slice(p));
        assert_eq!(out, mic);
    }

    #[test]
    fn a_nan_from_the_driver_does_not_spoil_the_canceller() {
        let mut voice = VoiceProcessing::new(VoiceSettings::RECOMMENDED).unwrap();
        let mut seed = 3;
        let far = noise(&mut seed, 4 * SAMPLE_RATE as usize, 0.3);
        let start = Instant::now();
        let mut out = Vec::new();
        for (index, chunk) in far.chunks(480).enumerate() {
            let now = start + Duration::from_millis(10 * index as u64);
            let mut mic: Vec<f32> = far
                .get((index.saturating_sub(3)) * 480..)
                .map(|s| s.iter().take(480).map(|x| x * 0.5).collect())
                .unwrap_or_else(|| vec![0.0; 480]);
            if index == 100 {
                mic[7] = f32::NAN;
                voice.render(&[f32::INFINITY], now);
            }
            voice.render(chunk, now);
            voice.capture(&mic, now, &mut |p| out.extend_from_slice(p));
        }
        assert!(out.iter().all(|s| s.is_finite()));
        let tail = &out[out.len() - SAMPLE_RATE as usize..];
        let down = 20.0 * (rms(tail) / rms(&far)).log10();
        assert!(down < -25.0, "echo {down:.1} dB after a NaN");
    }

    #[test]
    fn automatic_gain_brings_a_quiet_voice_up() {
        let settings = VoiceSettings {
            auto_gain: true,
            ..VoiceSettings::default()
        };
        let mut voice = VoiceProcessing::new(settings).unwrap();
        // A quiet voice-like sound (about -40 dBFS): a buzz of harmonics in syllables.
        let rate = SAMPLE_RATE as usize;
        let quiet: Vec<f32> = (0..8 * rate)
            .map(|n| {
                let t = n as f32 / SAMPLE_RATE as f32;
                let syllable = if (t * 4.0).fract() < 0.6 { 1.0 } else { 0.1 };
                let buzz: f32 = (1..8)
                    .map(|h| (core::f32::consts::TAU * 140.0 * h as f32 * t).sin() / h as f32)
                    .sum();
                0.01 * syllable * buzz
            })
            .collect();
        let start = Instant::now();
        let mut out = Vec::new();
        for (index, chunk) in quiet.chunks(480).enumerate() {
            let now = start + Duration::from_millis(10 * index as u64);
            voice.render(&[0.0; 480], now);
            voice.capture(chunk, now, &mut |p| out.extend_from_slice(p));
        }
        let gain = 20.0 * (rms(&out[6 * rate..]) / rms(&quiet[6 * rate..])).log10();
        eprintln!("automatic gain after 6 s: {gain:.1} dB");
        assert!(gain > 6.0, "the quiet voice gained {gain:.1} dB");
    }

    #[test]
    fn nothing_asked_for_means_no_processor() {
        assert!(VoiceProcessing::new(VoiceSettings::default()).is_none());
    }
}
