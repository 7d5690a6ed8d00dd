//! What the microphone's processing costs: one second of a call (the speaker's 48 kHz
//! reference and the microphone, 100 chunks of 10 ms each) through echo cancellation alone,
//! and through echo cancellation, noise suppression and automatic gain. The time per
//! iteration is the CPU one call-second takes on the audio thread. `cargo bench --bench voice`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{Criterion, criterion_group, criterion_main};
use verbatim::audio::{NoiseLevel, VoiceProcessing, VoiceSettings};

const RATE: usize = 48_000;

fn call_second(voice: &mut VoiceProcessing, far: &[f32], mic: &[f32], out: &mut Vec<f32>) {
    out.clear();
    let now = std::time::Instant::now();
    for (speaker, microphone) in far.chunks(960).zip(mic.chunks(960)) {
        voice.render(speaker, now);
        voice.capture(microphone, now, &mut |processed| {
            out.extend_from_slice(processed)
        });
    }
}

fn processing(c: &mut Criterion) {
    let mut seed: u32 = 1;
    let mut noise = |level: f32| -> Vec<f32> {
        (0..RATE)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (f32::from((seed >> 16) as u16) / 32768.0 - 1.0) * level
            })
            .collect()
    };
    let far = noise(0.2);
    // The microphone hears the far end 60 ms later, 6 dB down, over a little room noise:
    // the canceller has an echo to model, as in a call.
    let delay = RATE * 60 / 1000;
    let mic: Vec<f32> = noise(0.02)
        .iter()
        .enumerate()
        .map(|(n, room)| room + n.checked_sub(delay).map_or(0.0, |at| far[at] * 0.5))
        .collect();
    let mut group = c.benchmark_group("one_call_second");
    group.sample_size(20);
    for (name, settings) in [
        ("echo_cancellation", VoiceSettings::RECOMMENDED),
        (
            "echo_noise_gain",
            VoiceSettings {
                echo_cancellation: true,
                noise_suppression: NoiseLevel::Moderate,
                auto_gain: true,
            },
        ),
    ] {
        let mut voice = VoiceProcessing::new(settings).unwrap();
        let mut out = Vec::with_capacity(RATE);
        group.bench_function(name, |b| {
            b.iter(|| call_second(&mut voice, &far, &mic, &mut out));
        });
    }
    group.finish();
}

criterion_group!(benches, processing);
criterion_main!(benches);
