//! What storing a recording costs the recorder: one minute of one label written as a plain
//! WAV and as an encrypted one (age), and read back decrypted. `cargo bench --bench archive`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use verbatim::archive::files::WavWriter;
use verbatim::archive::key::{KeySource, RecordingsKey};
use verbatim::archive::sealed::Sealing;
use verbatim::archive::session::LabelAudio;

const SECONDS: usize = 60;

fn write_minute(path: &std::path::Path, sealing: &Sealing) {
    let frame: Vec<f32> = (0..960).map(|i| ((i as f32) * 0.05).sin() * 0.3).collect();
    let mut writer = WavWriter::create_sealed(path, sealing).unwrap();
    for _ in 0..SECONDS * 50 {
        writer.write_samples(&frame).unwrap();
    }
    writer.finish().unwrap();
}

fn storing(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) =
        RecordingsKey::load_or_create(&KeySource::File(dir.path().join("bench.key"))).unwrap();
    let sealed = Sealing::Encrypted(vec![key.recipient()]);
    let mut group = c.benchmark_group("one_minute_of_one_label");
    group.throughput(Throughput::Bytes((SECONDS * 96_000) as u64));
    group.sample_size(20);
    group.bench_function("write_plain", |b| {
        b.iter(|| write_minute(&dir.path().join("plain.wav"), &Sealing::Plain));
    });
    group.bench_function("write_encrypted", |b| {
        b.iter(|| write_minute(&dir.path().join("sealed.wav.age"), &sealed));
    });
    let keys = [key.identity().clone()];
    group.bench_function("read_encrypted", |b| {
        b.iter(|| {
            let mut audio = LabelAudio::open(&dir.path().join("sealed.wav.age"), &keys).unwrap();
            let mut block = vec![0.0f32; 4800];
            let mut total = 0;
            loop {
                let n = audio.read(&mut block);
                if n == 0 {
                    break;
                }
                total += n;
            }
            assert_eq!(total, SECONDS * 48_000);
        });
    });
    group.finish();
}

criterion_group!(benches, storing);
criterion_main!(benches);
