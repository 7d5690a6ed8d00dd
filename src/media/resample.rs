//! Integer-ratio resampling between the engine's 48 kHz and the narrowband (8 kHz, factor 6) and
//! wideband (16 kHz, factor 3) codec rates.
//!
//! Both directions use the same linear-phase low-pass FIR: a windowed sinc (Kaiser window, about
//! 70 dB of stopband attenuation) with its cutoff at 90 % of the low rate's Nyquist frequency
//! (3.6 kHz for 8 kHz, 7.2 kHz for 16 kHz) and `2 * factor * 24 + 1` taps, so the transition band
//! ends just below the low rate's Nyquist frequency. The tap count makes the group delay a whole
//! number of samples at both rates: 24 low-rate samples (3 ms at 8 kHz, 1.5 ms at 16 kHz).
//!
//! [`Decimator`] only computes the outputs it keeps; [`Interpolator`] is polyphase, so each
//! output costs `taps / factor` multiplications. Both keep their delay line between calls, so
//! feeding 20 ms frames one by one gives exactly the same samples as feeding the whole signal at
//! once. Neither allocates after construction except to grow the caller's `output`.

use std::f64::consts::PI;

/// Half the filter length, in low-rate samples: the group delay in low-rate samples.
const HALF_LENGTH_LOW_RATE: usize = 24;
/// The cutoff as a fraction of the low rate's Nyquist frequency.
const CUTOFF_FRACTION: f64 = 0.9;
/// Kaiser window shape for about 70 dB of stopband attenuation (β = 0.1102 · (A − 8.7)).
const KAISER_BETA: f64 = 0.1102 * (70.0 - 8.7);

/// The low-pass prototype at the high rate, `2 * factor * HALF_LENGTH_LOW_RATE + 1` taps with a
/// DC gain of 1.
fn design_low_pass(factor: usize) -> Vec<f64> {
    let centre = factor * HALF_LENGTH_LOW_RATE;
    let length = 2 * centre + 1;
    // Cutoff in cycles per high-rate sample.
    let cutoff = CUTOFF_FRACTION * 0.5 / factor as f64;
    let window_norm = bessel_i0(KAISER_BETA);
    let mut taps: Vec<f64> = (0..length)
        .map(|n| {
            let offset = n as f64 - centre as f64;
            let sinc = if offset == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * PI * cutoff * offset).sin() / (PI * offset)
            };
            let ratio = offset / centre.max(1) as f64;
            let window =
                bessel_i0(KAISER_BETA * (1.0 - ratio * ratio).max(0.0).sqrt()) / window_norm;
            sinc * window
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    if sum != 0.0 {
        for tap in &mut taps {
            *tap /= sum;
        }
    }
    taps
}

/// Modified Bessel function of the first kind, order 0, by its power series (converges fast
/// for the arguments a Kaiser window uses).
fn bessel_i0(x: f64) -> f64 {
    let half = x / 2.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..64 {
        let factor = half / k as f64;
        term *= factor * factor;
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

/// A delay line that always exposes its contents as one contiguous, oldest-first slice: every
/// sample is written twice, `len` apart.
#[derive(Debug, Clone)]
struct DelayLine {
    samples: Vec<f32>,
    len: usize,
    next: usize,
}

impl DelayLine {
    fn new(len: usize) -> Self {
        Self {
            samples: vec![0.0; 2 * len],
            len,
            next: 0,
        }
    }

    fn push(&mut self, sample: f32) {
        if let Some(slot) = self.samples.get_mut(self.next) {
            *slot = sample;
        }
        if let Some(slot) = self.samples.get_mut(self.next + self.len) {
            *slot = sample;
        }
        self.next = (self.next + 1) % self.len.max(1);
    }

    /// The last `len` samples, oldest first.
    fn window(&self) -> &[f32] {
        self.samples
            .get(self.next..self.next + self.len)
            .unwrap_or_default()
    }
}

/// Sum of products. Eight independent partial sums let the compiler use SIMD: a single
/// running sum would have to be added in order, one multiply-add at a time (this is the
/// resampler's whole cost, and the resampler dominates a G.711 call's CPU).
fn dot(taps: &[f32], window: &[f32]) -> f32 {
    let len = taps.len().min(window.len());
    let (taps, window) = (
        taps.get(..len).unwrap_or(&[]),
        window.get(..len).unwrap_or(&[]),
    );
    let mut lanes = [0.0f32; 8];
    let mut tap_chunks = taps.chunks_exact(8);
    let mut window_chunks = window.chunks_exact(8);
    for (t, x) in (&mut tap_chunks).zip(&mut window_chunks) {
        for ((lane, a), b) in lanes.iter_mut().zip(t).zip(x) {
            *lane += a * b;
        }
    }
    let tail: f32 = tap_chunks
        .remainder()
        .iter()
        .zip(window_chunks.remainder())
        .map(|(t, x)| t * x)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// Low-pass filters and keeps every `factor`-th sample (48 kHz → 8 kHz with factor 6,
/// 48 kHz → 16 kHz with factor 3).
#[derive(Debug, Clone)]
pub struct Decimator {
    factor: usize,
    /// The prototype filter, reversed to line up with the oldest-first delay line.
    taps: Vec<f32>,
    line: DelayLine,
    /// Input samples until the next one that produces an output.
    countdown: usize,
}

impl Decimator {
    /// A decimator by `factor` (a factor of 0 is treated as 1).
    pub fn new(factor: usize) -> Self {
        let factor = factor.max(1);
        let taps: Vec<f32> = design_low_pass(factor)
            .iter()
            .rev()
            .map(|&t| t as f32)
            .collect();
        let line = DelayLine::new(taps.len());
        Self {
            factor,
            taps,
            line,
            countdown: 0,
        }
    }

    /// The decimation factor.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// The group delay in output samples: output `n` is centred on input `(n - delay) * factor`.
    pub fn delay_samples(&self) -> usize {
        HALF_LENGTH_LOW_RATE
    }

    /// Appends the decimated `input` to `output`: `input.len() / factor` samples when the input
    /// comes in whole multiples of `factor` (a 20 ms frame always is); otherwise the leftover
    /// phase carries over to the next call.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) {
        output.reserve(input.len().div_ceil(self.factor));
        for &sample in input {
            self.line.push(sample);
            if self.countdown == 0 {
                output.push(dot(&self.taps, self.line.window()));
                self.countdown = self.factor;
            }
            self.countdown -= 1;
        }
    }
}

/// Raises the sample rate by `factor` (8 kHz → 48 kHz with factor 6, 16 kHz → 48 kHz with
/// factor 3): zero-stuffing followed by the low-pass filter, computed polyphase.
#[derive(Debug, Clone)]
pub struct Interpolator {
    factor: usize,
    /// `factor` sub-filters of `phase_len` taps each, each reversed to line up with the
    /// oldest-first delay line and scaled by `factor` to make up for the stuffed zeros.
    phases: Vec<f32>,
    phase_len: usize,
    line: DelayLine,
}

impl Interpolator {
    /// An interpolator by `factor` (a factor of 0 is treated as 1).
    pub fn new(factor: usize) -> Self {
        let factor = factor.max(1);
        let prototype = design_low_pass(factor);
        let phase_len = prototype.len().div_ceil(factor);
        let gain = factor as f64;
        let phases = (0..factor)
            .flat_map(|phase| {
                let prototype = &prototype;
                (0..phase_len).rev().map(move |q| {
                    prototype
                        .get(q * factor + phase)
                        .map_or(0.0, |&t| (t * gain) as f32)
                })
            })
            .collect();
        Self {
            factor,
            phases,
            phase_len,
            line: DelayLine::new(phase_len),
        }
    }

    /// The interpolation factor.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// The group delay in output samples: output `m` corresponds to input time
    /// `(m - delay) / factor`. It is `factor` times the decimator's, the same span of time.
    pub fn delay_samples(&self) -> usize {
        self.factor * HALF_LENGTH_LOW_RATE
    }

    /// Appends `input.len() * factor` interpolated samples to `output`.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) {
        output.reserve(input.len() * self.factor);
        for &sample in input {
            self.line.push(sample);
            let window = self.line.window();
            for phase in self.phases.chunks_exact(self.phase_len) {
                output.push(dot(phase, window));
            }
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use crate::media::tone::{Sine, dominant_frequency, goertzel_amplitude, rms};
    use crate::media::{FRAME_SAMPLES, SAMPLE_RATE};

    fn sine(frequency: f32, amplitude: f32, rate: u32, len: usize) -> Vec<f32> {
        let mut out = vec![0.0; len];
        Sine::new(frequency, amplitude, rate).fill(&mut out);
        out
    }

    fn decibels(ratio: f32) -> f32 {
        20.0 * ratio.log10()
    }

    /// Runs `input` through `process` in 20 ms frames of `frame` samples.
    fn by_frames(
        input: &[f32],
        frame: usize,
        mut process: impl FnMut(&[f32], &mut Vec<f32>),
    ) -> Vec<f32> {
        let mut output = Vec::new();
        for chunk in input.chunks(frame) {
            process(chunk, &mut output);
        }
        output
    }

    /// A deterministic noise-like test signal.
    fn noise(len: usize) -> Vec<f32> {
        let mut state = 0x2545_f491_u32;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn filter_has_unit_dc_gain_and_is_symmetric() {
        for factor in [3, 6] {
            let taps = design_low_pass(factor);
            assert_eq!(taps.len(), 2 * factor * HALF_LENGTH_LOW_RATE + 1);
            assert!((taps.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for (a, b) in taps.iter().zip(taps.iter().rev()) {
                assert!((a - b).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn output_lengths_follow_the_factor() {
        let mut decimator = Decimator::new(6);
        let mut out = vec![9.0];
        decimator.process(&[0.0; FRAME_SAMPLES], &mut out);
        assert_eq!(out.len(), 1 + 160, "appends, keeps what was there");
        assert_eq!(out[0], 9.0);
        let mut interpolator = Interpolator::new(3);
        let mut up = Vec::new();
        interpolator.process(&[0.0; 320], &mut up);
        assert_eq!(up.len(), FRAME_SAMPLES);
        // Uneven pieces carry their phase over: 7 + 5 inputs still give 2 outputs.
        let mut decimator = Decimator::new(6);
        let mut out = Vec::new();
        decimator.process(&[0.0; 7], &mut out);
        decimator.process(&[0.0; 5], &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(Decimator::new(0).factor(), 1);
        assert_eq!(Interpolator::new(0).factor(), 1);
    }

    #[test]
    fn one_kilohertz_survives_the_round_trip_through_narrowband_and_wideband() {
        for factor in [6, 3] {
            let input = sine(1000.0, 0.5, SAMPLE_RATE, 20 * FRAME_SAMPLES);
            let mut decimator = Decimator::new(factor);
            let mut interpolator = Interpolator::new(factor);
            let low = by_frames(&input, FRAME_SAMPLES, |i, o| decimator.process(i, o));
            let back = by_frames(&low, FRAME_SAMPLES / factor, |i, o| {
                interpolator.process(i, o)
            });
            assert_eq!(back.len(), input.len());
            // Past the start-up transient (both filters' delay, 6 ms at most).
            let steady = &back[10 * FRAME_SAMPLES..];
            let level = goertzel_amplitude(steady, SAMPLE_RATE, 1000.0);
            assert!(
                decibels(level / 0.5).abs() < 1.0,
                "factor {factor}: {level}"
            );
            let candidates = [300.0, 500.0, 1000.0, 2000.0, 3000.0];
            assert_eq!(
                dominant_frequency(steady, SAMPLE_RATE, &candidates),
                Some(1000.0)
            );
            assert!((rms(steady) - 0.5 / 2f32.sqrt()).abs() < 0.01);
        }
    }

    #[test]
    fn telephone_band_is_flat_after_decimation() {
        for frequency in [300.0, 1000.0, 2000.0, 3000.0, 3200.0] {
            let input = sine(frequency, 0.5, SAMPLE_RATE, 10 * FRAME_SAMPLES);
            let mut decimator = Decimator::new(6);
            let mut low = Vec::new();
            decimator.process(&input, &mut low);
            let level = goertzel_amplitude(&low[400..], 8000, frequency);
            assert!(decibels(level / 0.5).abs() < 0.1, "{frequency} Hz: {level}");
        }
    }

    #[test]
    fn tones_above_the_low_nyquist_do_not_alias() {
        // (factor, tone at 48 kHz, where it would alias at the low rate)
        for (factor, tone, alias) in [
            (6, 6000.0, 2000.0),
            (6, 5000.0, 3000.0),
            (3, 10_000.0, 6000.0),
        ] {
            let low_rate = SAMPLE_RATE / factor as u32;
            let input = sine(tone, 0.9, SAMPLE_RATE, 10 * FRAME_SAMPLES);
            let mut decimator = Decimator::new(factor);
            let low = by_frames(&input, FRAME_SAMPLES, |i, o| decimator.process(i, o));
            let steady = &low[low.len() / 2..];
            let leaked = goertzel_amplitude(steady, low_rate, alias);
            assert!(
                decibels(leaked / 0.9) < -40.0,
                "{tone} Hz leaks {leaked} at {alias} Hz"
            );
            assert!(decibels(rms(steady) / (0.9 / 2f32.sqrt())) < -40.0);
        }
    }

    #[test]
    fn stopband_starts_at_the_low_nyquist_frequency() {
        // Just past the low rate's Nyquist frequency, the filter gives its design attenuation
        // (about 70 dB) rather than the 40 dB needed against audible aliasing.
        for (factor, tone, alias) in [
            (6, 4100.0, 3900.0),
            (6, 4400.0, 3600.0),
            (3, 8300.0, 7700.0),
        ] {
            let low_rate = SAMPLE_RATE / factor as u32;
            let input = sine(tone, 0.9, SAMPLE_RATE, 10 * FRAME_SAMPLES);
            let mut decimator = Decimator::new(factor);
            let mut low = Vec::new();
            decimator.process(&input, &mut low);
            let steady = &low[low.len() / 2..];
            let leaked = goertzel_amplitude(steady, low_rate, alias);
            assert!(
                decibels(leaked / 0.9) < -60.0,
                "{tone} Hz leaks {leaked} at {alias} Hz"
            );
        }
    }

    #[test]
    fn interpolation_suppresses_the_images() {
        let input = sine(1000.0, 0.9, 8000, 10 * 160);
        let mut interpolator = Interpolator::new(6);
        let mut high = Vec::new();
        interpolator.process(&input, &mut high);
        let steady = &high[high.len() / 2..];
        assert!(decibels(goertzel_amplitude(steady, SAMPLE_RATE, 1000.0) / 0.9).abs() < 0.1);
        for image in [7000.0, 9000.0, 15_000.0, 17_000.0, 23_000.0] {
            let level = goertzel_amplitude(steady, SAMPLE_RATE, image);
            assert!(
                decibels(level / 0.9) < -40.0,
                "image at {image} Hz: {level}"
            );
        }
    }

    #[test]
    fn frame_by_frame_equals_whole_buffer() {
        let input = noise(12 * FRAME_SAMPLES);
        for factor in [3, 6] {
            let mut whole = Vec::new();
            Decimator::new(factor).process(&input, &mut whole);
            let mut decimator = Decimator::new(factor);
            let framed = by_frames(&input, FRAME_SAMPLES, |i, o| decimator.process(i, o));
            assert_eq!(whole, framed);
            let mut decimator = Decimator::new(factor);
            let ragged = by_frames(&input, 131, |i, o| decimator.process(i, o));
            assert_eq!(whole, ragged);

            let mut whole_up = Vec::new();
            Interpolator::new(factor).process(&whole, &mut whole_up);
            let mut interpolator = Interpolator::new(factor);
            let framed_up = by_frames(&whole, FRAME_SAMPLES / factor, |i, o| {
                interpolator.process(i, o)
            });
            assert_eq!(whole_up, framed_up);
        }
    }

    fn peak_index(samples: &[f32]) -> usize {
        samples
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(i, _)| i)
            .unwrap()
    }

    #[test]
    fn impulse_peaks_after_the_reported_delay() {
        for factor in [3, 6] {
            let mut impulse = vec![0.0; 4 * FRAME_SAMPLES];
            impulse[0] = 1.0;
            let decimator = Decimator::new(factor);
            let mut low = Vec::new();
            decimator.clone().process(&impulse, &mut low);
            assert_eq!(peak_index(&low), decimator.delay_samples());

            let interpolator = Interpolator::new(factor);
            let mut high = Vec::new();
            interpolator
                .clone()
                .process(&impulse[..FRAME_SAMPLES], &mut high);
            assert_eq!(peak_index(&high), interpolator.delay_samples());
            assert_eq!(
                interpolator.delay_samples(),
                factor * decimator.delay_samples()
            );
        }
    }

    #[test]
    fn delayed_output_lines_up_with_the_input() {
        let input = sine(440.0, 0.8, SAMPLE_RATE, 6 * FRAME_SAMPLES);
        let mut decimator = Decimator::new(6);
        let mut low = Vec::new();
        decimator.process(&input, &mut low);
        let delay = decimator.delay_samples();
        for n in delay + 50..low.len() {
            let expected = input[(n - delay) * 6];
            assert!(
                (low[n] - expected).abs() < 0.005,
                "sample {n}: {} vs {expected}",
                low[n]
            );
        }

        let narrow = sine(440.0, 0.8, 8000, 6 * 160);
        let mut interpolator = Interpolator::new(6);
        let mut high = Vec::new();
        interpolator.process(&narrow, &mut high);
        let delay = interpolator.delay_samples();
        let reference = sine(440.0, 0.8, SAMPLE_RATE, high.len());
        for m in delay + 300..high.len() {
            let expected = reference[m - delay];
            assert!(
                (high[m] - expected).abs() < 0.005,
                "sample {m}: {} vs {expected}",
                high[m]
            );
        }
    }
}
