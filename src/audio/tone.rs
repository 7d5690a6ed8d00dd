//! Test signals and measurements: a sine and a Goertzel filter to find its frequency.

use std::f64::consts::PI;

pub(crate) fn sine(rate: u32, frequency: f64, amplitude: f32, len: usize) -> Vec<f32> {
    (0..len)
        .map(|n| {
            let phase = 2.0 * PI * frequency * n as f64 / f64::from(rate);
            amplitude * phase.sin() as f32
        })
        .collect()
}

/// Amplitude of the `frequency` component of a Hann-windowed `signal`.
pub(crate) fn goertzel(signal: &[f32], rate: u32, frequency: f64) -> f64 {
    let len = signal.len() as f64;
    let coeff = 2.0 * (2.0 * PI * frequency / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0_f64, 0.0_f64);
    for (n, &x) in signal.iter().enumerate() {
        let window = 0.5 - 0.5 * (2.0 * PI * n as f64 / len).cos();
        let s0 = f64::from(x) * window + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    // The Hann window halves a sine's coherent gain.
    4.0 * power.sqrt() / len
}

/// The strongest frequency between 200 Hz and 4 kHz, to the nearest 1 Hz: found roughly on a
/// short stretch, then finely on the whole signal.
pub(crate) fn peak_frequency(signal: &[f32], rate: u32) -> f64 {
    let strongest = |part: &[f32], candidates: &mut dyn Iterator<Item = f64>| {
        candidates
            .map(|f| (f, goertzel(part, rate, f)))
            .fold(
                (0.0, -1.0),
                |best, (f, a)| if a > best.1 { (f, a) } else { best },
            )
            .0
    };
    let short = &signal[..signal.len().min(2048)];
    let rough = strongest(short, &mut (10..=200).map(|k| f64::from(k) * 20.0));
    strongest(signal, &mut (-40..=40).map(|d| rough + f64::from(d)))
}

pub(crate) fn rms(signal: &[f32]) -> f64 {
    let sum: f64 = signal.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (sum / signal.len().max(1) as f64).sqrt()
}

pub(crate) fn level_db(level: f64, reference: f64) -> f64 {
    20.0 * (level / reference).log10()
}
