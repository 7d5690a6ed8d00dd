//! A short fuzzing smoke of every target in `verbatim::fuzzing`, on the stable toolchain:
//! each seed of tests/fuzz/corpus, every past finding in tests/fuzz/regressions (and, for the
//! SIP targets, the RFC 4475 torture messages), then deterministic mutations of each seed.
//! The coverage-guided runs are tests/fuzz/run.sh (cargo-fuzz, libFuzzer); this keeps their
//! findings fixed and catches a plain panic on every `cargo test`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use verbatim::fuzzing::{self, Target};

/// Mutated inputs tried per seed; enough to reach the error paths of every parser in a debug
/// build within seconds.
const MUTATIONS_PER_SEED: usize = 1500;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_none_or(|e| e != "md"))
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect();
    files.sort();
    files
}

fn seeds(target: &Target) -> Vec<(String, Vec<u8>)> {
    let mut seeds = files_in(&repo(&format!("tests/fuzz/corpus/{}", target.name)));
    assert!(!seeds.is_empty(), "{} has no seed corpus", target.name);
    seeds.extend(files_in(&repo(&format!(
        "tests/fuzz/regressions/{}",
        target.name
    ))));
    if matches!(
        target.name,
        "sip_message" | "recorder_invite" | "engine_datagrams"
    ) {
        seeds.extend(
            files_in(&repo("tests/data/torture"))
                .into_iter()
                .filter(|(name, _)| name.ends_with(".dat")),
        );
    }
    seeds
}

/// xorshift64*: the same mutations on every run, so a failure here reproduces.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next() % bound as u64) as usize
        }
    }

    /// One to four stacked edits of the kinds that break parsers: bit flips, separators and
    /// extreme numbers dropped in, ranges cut, doubled or spliced from another seed.
    fn mutate(&mut self, seed: &[u8], other: &[u8]) -> Vec<u8> {
        const SPECIAL: &[u8] = b"\0\r\n \t:;,=\"<>@/\\%[]";
        const NUMBERS: &[&[u8]] = &[
            b"0",
            b"-1",
            b"65536",
            b"4294967296",
            b"99999999999999999999999",
        ];
        let mut data = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(data.len() + 1);
            match self.below(8) {
                0 if !data.is_empty() => {
                    let i = self.below(data.len());
                    data[i] ^= 1 << self.below(8);
                }
                1 if !data.is_empty() => {
                    let i = self.below(data.len());
                    data[i] = SPECIAL[self.below(SPECIAL.len())];
                }
                2 => {
                    let end = (at + 1 + self.below(64)).min(data.len());
                    data.drain(at.min(end)..end);
                }
                3 => {
                    let end = (at + 1 + self.below(64)).min(data.len());
                    let copy = data[at.min(end)..end].to_vec();
                    data.splice(at..at, copy);
                }
                4 => data.truncate(at),
                5 => {
                    let number = NUMBERS[self.below(NUMBERS.len())];
                    data.splice(at..at, number.iter().copied());
                }
                6 if !other.is_empty() => {
                    let from = self.below(other.len());
                    let end = (from + 1 + self.below(256)).min(other.len());
                    data.splice(at..at, other[from..end].iter().copied());
                }
                _ => {
                    let count = 1 + self.below(8);
                    let noise: Vec<u8> = (0..count).map(|_| self.next() as u8).collect();
                    data.splice(at..at, noise);
                }
            }
        }
        data
    }
}

fn smoke(name: &str) {
    let target = fuzzing::target(name).unwrap();
    let seeds = seeds(target);
    let mut failures = Vec::new();
    let mut inputs = 0;
    let mut attempt = |label: &str, input: &[u8]| {
        inputs += 1;
        if catch_unwind(AssertUnwindSafe(|| (target.run)(input))).is_err() {
            let saved = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("fuzz-smoke-{name}-{}", failures.len()));
            std::fs::write(&saved, input).unwrap();
            failures.push(format!("{label} (input saved to {})", saved.display()));
        }
    };
    for (index, (file, seed)) in seeds.iter().enumerate() {
        attempt(file, seed);
        let mut mutator = Mutator(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1));
        let other = &seeds[(index + 1) % seeds.len()].1;
        for round in 0..MUTATIONS_PER_SEED {
            let input = mutator.mutate(seed, other);
            attempt(&format!("mutation {round} of {file}"), &input);
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {inputs} inputs panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

macro_rules! smoke_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                smoke(stringify!($name));
            }
        )*

        #[test]
        fn every_target_has_a_smoke_test() {
            let tested = [$(stringify!($name)),*];
            for target in fuzzing::TARGETS {
                assert!(tested.contains(&target.name), "{} has no smoke test", target.name);
            }
        }
    };
}

smoke_tests!(
    sip_message,
    sdp_offer_answer,
    rtp,
    rtcp,
    srtp_unprotect,
    multipart,
    metadata,
    digest,
    recorder_invite,
    engine_datagrams,
);
