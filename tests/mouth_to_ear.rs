#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The mouth-to-ear harness (`tests/support/mouth_to_ear.rs`, run for figures by
//! `cargo bench --bench mouth_to_ear`): its measurement finds a known delay, and it measures
//! both phones through a PulseAudio session of its own. The figures themselves are the
//! benchmark's; here only that every burst was heard, after a delay a phone can have.

mod support;

use support::mouth_to_ear::{Codec, Phone, burst_delays_ms, measure};

const RATE: u32 = 48_000;

/// Bursts of 1 kHz every second on the mouth; the ear gets them 73.4 ms later, at a quarter of
/// the level, over a little noise, except the third, which never arrives.
#[test]
fn the_measurement_finds_a_known_delay_and_a_lost_burst() {
    let seconds = 5;
    let mut mouth = vec![0.0f32; RATE as usize * seconds];
    for burst in 0..4 {
        let start = RATE as usize / 2 + burst * RATE as usize;
        for n in 0..RATE as usize / 25 {
            let t = n as f32 / RATE as f32;
            mouth[start + n] = 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin();
        }
    }
    let delay = (0.0734 * f64::from(RATE)) as usize;
    let mut noise_state = 0x2545_f491_u32;
    let mut ear: Vec<f32> = (0..mouth.len())
        .map(|i| {
            noise_state = noise_state
                .wrapping_mul(1_664_525)
                .wrapping_add(1_013_904_223);
            let noise = (noise_state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            let delayed = i.checked_sub(delay).map_or(0.0, |from| mouth[from]);
            0.25 * delayed + 0.006 * noise
        })
        .collect();
    let lost = RATE as usize / 2 + 2 * RATE as usize;
    for sample in &mut ear[lost..lost + RATE as usize / 2] {
        *sample *= 0.01;
    }

    let delays = burst_delays_ms(&mouth, &ear, RATE);
    assert_eq!(delays.len(), 4, "{delays:?}");
    assert_eq!(delays[2], None, "{delays:?}");
    for delay in [delays[0], delays[1], delays[3]] {
        let delay = delay.expect("heard");
        assert!((delay - 73.4).abs() < 0.3, "{delays:?}");
    }
}

fn assert_every_burst_heard(phone: Phone) {
    let measured = measure(phone, Codec::Pcmu, 4);
    println!("{}\n{}", measured.summary(), measured.streams.join("\n"));
    assert_eq!(measured.heard().len(), 4, "{measured:?}");
    for delay in measured.heard() {
        assert!(
            (1.0..900.0).contains(&delay),
            "a delay no phone can have: {measured:?}"
        );
    }
}

#[test]
fn verbatim_is_measured_from_microphone_to_speaker() {
    assert_every_burst_heard(Phone::Verbatim);
}

#[test]
fn baresip_is_measured_from_microphone_to_speaker() {
    assert_every_burst_heard(Phone::Baresip);
}
