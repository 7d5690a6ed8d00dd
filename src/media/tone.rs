//! Tone measurement (Goertzel, RMS) and tone generation: sines, DTMF dual tones and the
//! cadenced call-progress tones the UI plays (ringback, incoming-call ringing).
//!
//! Generators keep their phase in `f64` and are phase-continuous across `fill` calls, so a tone
//! produced 20 ms at a time is the same signal as one produced in one go.

use std::f64::consts::TAU;

/// DTMF keypad rows (low group), Hz.
const DTMF_ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// DTMF keypad columns (high group), Hz.
const DTMF_COLUMNS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// The keypad, row by row, column by column.
const DTMF_KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// How far the strongest candidate must stand above the runner-up in
/// [`dominant_frequency`] (a factor of 2 in amplitude, 6 dB).
pub const DOMINANCE_RATIO: f32 = 2.0;
/// Below this amplitude (-60 dBFS) [`dominant_frequency`] treats the signal as silence.
pub const MIN_DETECTABLE_AMPLITUDE: f32 = 0.001;

/// Peak level of ringback tones (about -12 dBFS): heard in the earpiece, like a network tone.
const RINGBACK_AMPLITUDE: f32 = 0.25;
/// Peak level of the incoming-call alert (about -6 dBFS): it has to be noticed across a room.
const RINGING_AMPLITUDE: f32 = 0.5;
/// Bursts fade in and out over this long so that switching the tone on and off does not click.
const CADENCE_RAMP_MS: u32 = 5;

/// The amplitude of the `frequency` component of `samples`: a sine of that frequency with peak
/// amplitude `a` gives about `a`, other frequencies give about 0.
///
/// This is a Goertzel filter over a Hann-windowed block, normalised by the window's sum. The
/// window trades resolution (two tones need to be about `2 * sample_rate / len` Hz apart to be
/// told apart) for very low leakage from tones farther away. Empty input or a zero sample rate
/// give 0.
pub fn goertzel_amplitude(samples: &[f32], sample_rate: u32, frequency: f32) -> f32 {
    if samples.is_empty() || sample_rate == 0 {
        return 0.0;
    }
    let omega = TAU * f64::from(frequency) / f64::from(sample_rate);
    let coefficient = 2.0 * omega.cos();
    let window_step = TAU / samples.len() as f64;
    let (mut previous, mut before_previous) = (0.0f64, 0.0f64);
    let mut window_sum = 0.0f64;
    for (n, &sample) in samples.iter().enumerate() {
        // Periodic Hann window: sums to exactly len / 2.
        let window = 0.5 - 0.5 * (window_step * n as f64).cos();
        window_sum += window;
        let current = window * f64::from(sample) + coefficient * previous - before_previous;
        before_previous = previous;
        previous = current;
    }
    let power = previous * previous + before_previous * before_previous
        - coefficient * previous * before_previous;
    if window_sum <= 0.0 {
        return 0.0;
    }
    (2.0 * power.max(0.0).sqrt() / window_sum) as f32
}

/// The candidate frequency present in `samples` with the highest amplitude, if it is above
/// [`MIN_DETECTABLE_AMPLITUDE`] and at least [`DOMINANCE_RATIO`] times stronger than every
/// other candidate; `None` for silence, ties or no candidates.
pub fn dominant_frequency(samples: &[f32], sample_rate: u32, candidates: &[f32]) -> Option<f32> {
    let mut best: Option<(f32, f32)> = None;
    let mut runner_up = 0.0f32;
    for &frequency in candidates {
        let amplitude = goertzel_amplitude(samples, sample_rate, frequency);
        match best {
            Some((_, best_amplitude)) if amplitude <= best_amplitude => {
                runner_up = runner_up.max(amplitude);
            }
            Some((_, best_amplitude)) => {
                runner_up = best_amplitude;
                best = Some((frequency, amplitude));
            }
            None => best = Some((frequency, amplitude)),
        }
    }
    let (frequency, amplitude) = best?;
    (amplitude >= MIN_DETECTABLE_AMPLITUDE && amplitude >= DOMINANCE_RATIO * runner_up)
        .then_some(frequency)
}

/// Root mean square of `samples`; 0 for an empty slice.
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / samples.len() as f64).sqrt() as f32
}

/// The (row, column) frequencies of a DTMF key: `0-9`, `*`, `#` and `A-D` (either case).
pub fn dtmf_frequencies(digit: char) -> Option<(f32, f32)> {
    let digit = digit.to_ascii_uppercase();
    DTMF_KEYPAD.iter().zip(DTMF_ROWS).find_map(|(keys, row)| {
        keys.iter()
            .zip(DTMF_COLUMNS)
            .find(|(key, _)| **key == digit)
            .map(|(_, column)| (row, column))
    })
}

/// A sine wave generator.
#[derive(Debug, Clone)]
pub struct Sine {
    amplitude: f32,
    phase: f64,
    phase_step: f64,
}

impl Sine {
    /// A sine of `frequency` Hz with peak `amplitude`, starting at phase 0. A zero sample rate
    /// gives silence.
    pub fn new(frequency: f32, amplitude: f32, sample_rate: u32) -> Self {
        let phase_step = if sample_rate == 0 {
            0.0
        } else {
            (TAU * f64::from(frequency) / f64::from(sample_rate)).rem_euclid(TAU)
        };
        Self {
            amplitude: if sample_rate == 0 { 0.0 } else { amplitude },
            phase: 0.0,
            phase_step,
        }
    }

    fn next_sample(&mut self) -> f32 {
        let sample = self.amplitude * self.phase.sin() as f32;
        self.phase += self.phase_step;
        if self.phase >= TAU {
            self.phase -= TAU;
        }
        sample
    }

    /// Overwrites `out` with the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [f32]) {
        for sample in out {
            *sample = self.next_sample();
        }
    }
}

/// Two sines added together, such as a DTMF digit or the North American ringback tone.
#[derive(Debug, Clone)]
pub struct DualTone {
    low: Sine,
    high: Sine,
    frequencies: (f32, f32),
}

impl DualTone {
    /// Two tones of equal level whose sum peaks at `amplitude` (each has `amplitude / 2`).
    pub fn new(first: f32, second: f32, amplitude: f32, sample_rate: u32) -> Self {
        Self {
            low: Sine::new(first, amplitude / 2.0, sample_rate),
            high: Sine::new(second, amplitude / 2.0, sample_rate),
            frequencies: (first, second),
        }
    }

    /// The DTMF tone of a keypad digit (`0-9`, `*`, `#`, `A-D`, either case), or `None`.
    pub fn for_digit(digit: char, amplitude: f32, sample_rate: u32) -> Option<Self> {
        let (row, column) = dtmf_frequencies(digit)?;
        Some(Self::new(row, column, amplitude, sample_rate))
    }

    /// The two frequencies, in the order given.
    pub fn frequencies(&self) -> (f32, f32) {
        self.frequencies
    }

    /// Overwrites `out` with the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [f32]) {
        for sample in out {
            *sample = self.low.next_sample() + self.high.next_sample();
        }
    }
}

/// One burst of a cadence: the tone sounds for `on` samples, then silence for `off` samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Burst {
    on: usize,
    off: usize,
}

/// A tone switched on and off in a repeating pattern, for call-progress sounds.
///
/// The oscillators run continuously; each burst fades in and out over 5 ms so that the
/// switching does not click. The pattern starts at the beginning of its first burst.
#[derive(Debug, Clone)]
pub struct Cadence {
    tones: Vec<Sine>,
    bursts: Vec<Burst>,
    ramp: usize,
    /// Position in the current burst (tone then silence), in samples.
    position: usize,
    /// Index of the current burst in `bursts`.
    burst: usize,
}

impl Cadence {
    /// A cadence of the sum of `frequencies` (peaking at `amplitude` together) repeating the
    /// `(on_ms, off_ms)` bursts. Without bursts or frequencies it is silent.
    pub fn new(frequencies: &[f32], amplitude: f32, bursts_ms: &[(u32, u32)], rate: u32) -> Self {
        let share = amplitude / frequencies.len().max(1) as f32;
        let to_samples = |ms: u32| (u64::from(ms) * u64::from(rate) / 1000) as usize;
        Self {
            tones: frequencies
                .iter()
                .map(|&f| Sine::new(f, share, rate))
                .collect(),
            bursts: bursts_ms
                .iter()
                .map(|&(on, off)| Burst {
                    on: to_samples(on),
                    off: to_samples(off),
                })
                .filter(|burst| burst.on + burst.off > 0)
                .collect(),
            ramp: to_samples(CADENCE_RAMP_MS),
            position: 0,
            burst: 0,
        }
    }

    /// European ringback (CEPT / ETSI style): 425 Hz, 1 s on, 4 s off.
    pub fn ringback_eu(rate: u32) -> Self {
        Self::new(&[425.0], RINGBACK_AMPLITUDE, &[(1000, 4000)], rate)
    }

    /// North American ringback: 440 Hz + 480 Hz, 2 s on, 4 s off.
    pub fn ringback_us(rate: u32) -> Self {
        Self::new(&[440.0, 480.0], RINGBACK_AMPLITUDE, &[(2000, 4000)], rate)
    }

    /// The local alert for an incoming call: a double ring (0.4 s on, 0.2 s off, 0.4 s on,
    /// 2 s off) of 880 Hz + 1320 Hz, a fifth apart so that it sounds like a bell chord rather
    /// than a network tone.
    pub fn ringing(rate: u32) -> Self {
        Self::new(
            &[880.0, 1320.0],
            RINGING_AMPLITUDE,
            &[(400, 200), (400, 2000)],
            rate,
        )
    }

    /// Overwrites `out` with the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [f32]) {
        for sample in out {
            let tone: f32 = self.tones.iter_mut().map(Sine::next_sample).sum();
            *sample = tone * self.envelope();
            self.advance();
        }
    }

    /// The gain at the current position: 1 inside a burst, 0 in the silences, linear ramps of
    /// `ramp` samples at both ends of a burst.
    fn envelope(&self) -> f32 {
        let Some(burst) = self.bursts.get(self.burst) else {
            return 0.0;
        };
        if self.position >= burst.on {
            return 0.0;
        }
        let ramp = self.ramp.min(burst.on / 2).max(1);
        let from_start = self.position + 1;
        let to_end = burst.on - self.position;
        (from_start.min(to_end).min(ramp) as f32) / ramp as f32
    }

    fn advance(&mut self) {
        let Some(burst) = self.bursts.get(self.burst) else {
            return;
        };
        self.position += 1;
        if self.position >= burst.on + burst.off {
            self.position = 0;
            self.burst = (self.burst + 1) % self.bursts.len();
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

    const RATE: u32 = 48_000;

    fn sine(frequency: f32, amplitude: f32, len: usize) -> Vec<f32> {
        let mut out = vec![0.0; len];
        Sine::new(frequency, amplitude, RATE).fill(&mut out);
        out
    }

    fn assert_near(actual: f32, expected: f32, tolerance: f32, what: &str) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: {actual} is not within {tolerance} of {expected}"
        );
    }

    #[test]
    fn goertzel_measures_the_amplitude_of_its_frequency() {
        let signal = sine(1000.0, 1.0, 960);
        assert_near(
            goertzel_amplitude(&signal, RATE, 1000.0),
            1.0,
            0.01,
            "1 kHz",
        );
        let quiet = sine(1000.0, 0.25, 960);
        assert_near(
            goertzel_amplitude(&quiet, RATE, 1000.0),
            0.25,
            0.003,
            "quiet",
        );
        // Not a whole number of periods in the block: 697 Hz over 20 ms.
        let dtmf_row = sine(697.0, 1.0, 960);
        assert_near(
            goertzel_amplitude(&dtmf_row, RATE, 697.0),
            1.0,
            0.01,
            "697 Hz",
        );
    }

    #[test]
    fn goertzel_ignores_other_frequencies() {
        let signal = sine(1000.0, 1.0, 960);
        for other in [697.0, 1209.0, 1500.0, 2000.0, 3000.0] {
            let leak = goertzel_amplitude(&signal, RATE, other);
            assert!(leak < 0.01, "{other} Hz sees {leak}");
        }
        assert_eq!(goertzel_amplitude(&[], RATE, 1000.0), 0.0);
        assert_eq!(goertzel_amplitude(&signal, 0, 1000.0), 0.0);
    }

    #[test]
    fn dominant_frequency_needs_a_clear_winner() {
        let candidates = [697.0, 770.0, 852.0, 941.0];
        let signal = sine(852.0, 0.5, 960);
        assert_eq!(dominant_frequency(&signal, RATE, &candidates), Some(852.0));
        let silence = vec![0.0; 960];
        assert_eq!(dominant_frequency(&silence, RATE, &candidates), None);
        let mut two = vec![0.0; 960];
        DualTone::new(697.0, 941.0, 1.0, RATE).fill(&mut two);
        assert_eq!(dominant_frequency(&two, RATE, &candidates), None);
        assert_eq!(dominant_frequency(&signal, RATE, &[]), None);
        assert_eq!(dominant_frequency(&signal, RATE, &[852.0]), Some(852.0));
    }

    #[test]
    fn rms_of_a_sine_is_amplitude_over_root_two() {
        let signal = sine(1000.0, 0.8, 4800);
        assert_near(rms(&signal), 0.8 / 2f32.sqrt(), 1e-4, "rms");
        assert_eq!(rms(&[]), 0.0);
        assert_near(rms(&[0.5, -0.5]), 0.5, 1e-6, "square");
    }

    #[test]
    fn sine_is_phase_continuous_across_fills() {
        let whole = sine(440.0, 0.7, 4800);
        let mut generator = Sine::new(440.0, 0.7, RATE);
        let mut pieces = vec![0.0; 4800];
        for chunk in pieces.chunks_mut(333) {
            generator.fill(chunk);
        }
        assert_eq!(whole, pieces);
        assert_near(
            whole.iter().fold(0.0f32, |m, s| m.max(s.abs())),
            0.7,
            1e-3,
            "peak",
        );
        assert_eq!(
            dominant_frequency(&whole, RATE, &[400.0, 440.0, 480.0]),
            Some(440.0)
        );
    }

    #[test]
    fn every_dtmf_digit_has_its_row_and_column() {
        let expected = [
            ('1', 697.0, 1209.0),
            ('2', 697.0, 1336.0),
            ('3', 697.0, 1477.0),
            ('A', 697.0, 1633.0),
            ('4', 770.0, 1209.0),
            ('5', 770.0, 1336.0),
            ('6', 770.0, 1477.0),
            ('B', 770.0, 1633.0),
            ('7', 852.0, 1209.0),
            ('8', 852.0, 1336.0),
            ('9', 852.0, 1477.0),
            ('C', 852.0, 1633.0),
            ('*', 941.0, 1209.0),
            ('0', 941.0, 1336.0),
            ('#', 941.0, 1477.0),
            ('D', 941.0, 1633.0),
        ];
        for (digit, row, column) in expected {
            let mut tone = DualTone::for_digit(digit, 0.8, RATE).unwrap();
            assert_eq!(tone.frequencies(), (row, column));
            let mut out = vec![0.0; 1920];
            tone.fill(&mut out);
            assert_eq!(
                dominant_frequency(&out, RATE, &DTMF_ROWS),
                Some(row),
                "{digit}"
            );
            assert_eq!(
                dominant_frequency(&out, RATE, &DTMF_COLUMNS),
                Some(column),
                "{digit}"
            );
            assert_near(goertzel_amplitude(&out, RATE, row), 0.4, 0.01, "row level");
            assert_near(
                goertzel_amplitude(&out, RATE, column),
                0.4,
                0.01,
                "column level",
            );
        }
        assert_eq!(dtmf_frequencies('d'), Some((941.0, 1633.0)));
        assert!(DualTone::for_digit('E', 1.0, RATE).is_none());
        assert!(DualTone::for_digit(' ', 1.0, RATE).is_none());
    }

    /// Splits a generated cadence into 50 ms blocks and says which contain the tone.
    fn on_pattern(cadence: &mut Cadence, frequencies: &[f32], seconds: usize) -> Vec<bool> {
        let block = RATE as usize / 20;
        let mut out = vec![0.0; block];
        (0..seconds * 20)
            .map(|_| {
                cadence.fill(&mut out);
                let present = frequencies
                    .iter()
                    .all(|&f| goertzel_amplitude(&out, RATE, f) > 0.05);
                if !present {
                    assert_eq!(rms(&out), 0.0, "silence between bursts is silent");
                }
                present
            })
            .collect()
    }

    /// Expected on/off pattern in 50 ms blocks from (on, off) burst lengths in blocks.
    fn expected_pattern(bursts: &[(usize, usize)], seconds: usize) -> Vec<bool> {
        bursts
            .iter()
            .flat_map(|&(on, off)| {
                std::iter::repeat_n(true, on).chain(std::iter::repeat_n(false, off))
            })
            .cycle()
            .take(seconds * 20)
            .collect()
    }

    #[test]
    fn european_ringback_is_425_hz_one_second_in_five() {
        let mut cadence = Cadence::ringback_eu(RATE);
        let pattern = on_pattern(&mut cadence, &[425.0], 11);
        assert_eq!(pattern, expected_pattern(&[(20, 80)], 11));
        let mut burst = vec![0.0; 9600];
        Cadence::ringback_eu(RATE).fill(&mut burst);
        let middle = &burst[2400..7200];
        assert_near(
            goertzel_amplitude(middle, RATE, 425.0),
            RINGBACK_AMPLITUDE,
            0.005,
            "425",
        );
        assert_eq!(
            dominant_frequency(middle, RATE, &[350.0, 425.0, 440.0, 480.0]),
            Some(425.0)
        );
    }

    #[test]
    fn north_american_ringback_is_440_plus_480_two_seconds_in_six() {
        let mut cadence = Cadence::ringback_us(RATE);
        let pattern = on_pattern(&mut cadence, &[440.0, 480.0], 13);
        assert_eq!(pattern, expected_pattern(&[(40, 80)], 13));
        let mut burst = vec![0.0; 9600];
        Cadence::ringback_us(RATE).fill(&mut burst);
        let share = RINGBACK_AMPLITUDE / 2.0;
        assert_near(goertzel_amplitude(&burst, RATE, 440.0), share, 0.003, "440");
        assert_near(goertzel_amplitude(&burst, RATE, 480.0), share, 0.003, "480");
        assert!(goertzel_amplitude(&burst, RATE, 425.0) < 0.01);
    }

    #[test]
    fn ringing_is_a_double_ring_every_three_seconds() {
        let mut cadence = Cadence::ringing(RATE);
        let pattern = on_pattern(&mut cadence, &[880.0, 1320.0], 7);
        assert_eq!(pattern, expected_pattern(&[(8, 4), (8, 40)], 7));
    }

    #[test]
    fn cadence_bursts_fade_instead_of_clicking() {
        let mut out = vec![0.0; 48_000];
        Cadence::ringback_eu(RATE).fill(&mut out);
        assert_eq!(out[0], 0.0);
        let largest_step = out
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0f32, f32::max);
        // A 425 Hz sine at 0.25 moves at most 2π·425/48000·0.25 ≈ 0.014 per sample, the ramp
        // adds 0.25/240 at most; switching without a fade would jump by up to 0.25.
        assert!(largest_step < 0.02, "step {largest_step}");
    }

    #[test]
    fn cadence_is_the_same_whatever_the_block_size() {
        let mut whole = vec![0.0; 30_000];
        Cadence::ringing(RATE).fill(&mut whole);
        let mut cadence = Cadence::ringing(RATE);
        let mut pieces = vec![0.0; 30_000];
        for chunk in pieces.chunks_mut(960) {
            cadence.fill(chunk);
        }
        assert_eq!(whole, pieces);
    }

    #[test]
    fn degenerate_cadences_are_silent() {
        let mut out = vec![1.0; 100];
        Cadence::new(&[440.0], 1.0, &[], RATE).fill(&mut out);
        assert!(out.iter().all(|&s| s == 0.0));
        out.fill(1.0);
        Cadence::new(&[], 1.0, &[(100, 100)], RATE).fill(&mut out);
        assert!(out.iter().all(|&s| s == 0.0));
        out.fill(1.0);
        Sine::new(440.0, 1.0, 0).fill(&mut out);
        assert!(out.iter().all(|&s| s == 0.0));
    }
}
