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
pub mod tone;

/// The engine's audio rate: every frame between devices and codecs is 48 kHz mono.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 960;
