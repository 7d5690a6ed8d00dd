//! Media: codecs, RTP/RTCP, jitter buffer, SRTP, DTMF, tones. Sans-IO like the engine: packets
//! and 20 ms frames of 48 kHz mono f32 in, packets and frames out.

pub mod codec;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod resample;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod srtp;
pub mod stun;
pub mod tone;

/// The engine's audio rate: every frame between devices and codecs is 48 kHz mono.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 960;

/// Adds `extra` into `out` sample by sample, clipping at full scale: how two sounds play
/// together (the local voice and the recording notice, two sides of a recording).
pub fn mix_into(out: &mut [f32], extra: &[f32]) {
    for (sample, added) in out.iter_mut().zip(extra) {
        *sample = (*sample + added).clamp(-1.0, 1.0);
    }
}
