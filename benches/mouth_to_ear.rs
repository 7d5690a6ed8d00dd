//! Mouth-to-ear delay of a call between two phones on this machine, through PulseAudio
//! devices of its own (see `tests/support/mouth_to_ear.rs`): Verbatim and baresip, each with
//! default settings, on each codec, in one run. Prints one line per phone and codec with the
//! median and 95th percentile over the bursts (20 unless MOUTH_TO_EAR_BURSTS says otherwise).
//!
//!     cargo bench --bench mouth_to_ear

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../tests/support/mod.rs"]
mod support;

use support::mouth_to_ear::{Codec, Phone, measure};

fn main() {
    // `cargo test --benches` runs this too, without `--bench`: it measures nothing then.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let bursts = std::env::var("MOUTH_TO_EAR_BURSTS")
        .ok()
        .map(|value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("MOUTH_TO_EAR_BURSTS={value:?} is not a number"))
        })
        .unwrap_or(20);
    for codec in [Codec::Pcmu, Codec::Opus] {
        for phone in [Phone::Verbatim, Phone::Baresip] {
            println!("{}", measure(phone, codec, bursts).summary());
        }
    }
}
