//! One recording stream encoded from the call's audio (RFC 7866 8.2.3, the SRC as an
//! endpoint): used when the recorder chose another codec than the call's, and for mixed mode,
//! where both voices share one stream. Every 20 ms tick yields one packet; the timestamp
//! advances on every tick, paused or not, so the recorder can place a pause in time.

use std::time::Instant;

use crate::media::codec::{CodecError, CodecKind, Encoder};
use crate::recording::outgoing::{Outgoing, OutgoingSetup};

/// Whose voice the stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcmSource {
    /// What the local user sends into the call.
    Local,
    /// What the far end sends (what the speaker plays).
    Remote,
    /// Both, summed: mixed mode.
    Mixed,
}

/// Everything a stream needs besides the audio.
#[derive(Debug)]
pub struct TranscoderSetup {
    pub source: PcmSource,
    pub codec: CodecKind,
    /// The recording's payload type for `codec`.
    pub payload_type: u8,
    /// The recorder's `a=fmtp` for the codec, if any.
    pub fmtp: Option<String>,
    pub out: OutgoingSetup,
}

#[derive(Debug)]
pub struct Transcoder {
    pub source: PcmSource,
    pub out: Outgoing,
    encoder: Encoder,
    payload_type: u8,
    next_timestamp: u32,
    step: u32,
    paused: bool,
    /// The first packet after a pause starts a talkspurt (marker bit).
    resumed: bool,
    mixed: Vec<f32>,
    payload: Vec<u8>,
}

impl Transcoder {
    pub fn new(setup: TranscoderSetup) -> Result<Transcoder, CodecError> {
        let mut encoder = Encoder::new(setup.codec)?;
        if let Some(fmtp) = &setup.fmtp {
            encoder.apply_peer_fmtp(fmtp);
        }
        Ok(Transcoder {
            source: setup.source,
            encoder,
            payload_type: setup.payload_type,
            next_timestamp: setup.out.initial_timestamp,
            step: setup.codec.timestamp_step(),
            paused: false,
            resumed: true,
            mixed: Vec::new(),
            payload: Vec::with_capacity(256),
            out: Outgoing::new(setup.out),
        })
    }

    pub fn set_paused(&mut self, paused: bool) {
        if self.paused && !paused {
            self.resumed = true;
        }
        self.paused = paused;
    }

    pub fn sent(&self) -> u64 {
        self.out.sent()
    }

    /// The packet for one 20 ms tick: `local` is what the user sent into the call, `remote`
    /// what the far end's audio decoded to. None while paused or when encoding failed.
    pub fn encode(&mut self, now: Instant, local: &[f32], remote: &[f32]) -> Option<Vec<u8>> {
        let timestamp = self.next_timestamp;
        self.next_timestamp = self.next_timestamp.wrapping_add(self.step);
        if self.paused {
            return None;
        }
        let frame: &[f32] = match self.source {
            PcmSource::Local => local,
            PcmSource::Remote => remote,
            PcmSource::Mixed => {
                self.mixed.clear();
                // Summing can pass full scale when both talk at once; clipping beats wrapping.
                self.mixed.extend(
                    local
                        .iter()
                        .zip(remote)
                        .map(|(a, b)| (a + b).clamp(-1.0, 1.0)),
                );
                &self.mixed
            }
        };
        self.payload.clear();
        self.encoder.encode(frame, &mut self.payload).ok()?;
        let marker = core::mem::take(&mut self.resumed);
        self.out
            .packet(now, self.payload_type, timestamp, marker, &self.payload)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::media::FRAME_SAMPLES;
    use crate::media::codec::Decoder;
    use crate::media::rtp::RtpPacket;

    fn setup(source: PcmSource, codec: CodecKind) -> TranscoderSetup {
        TranscoderSetup {
            source,
            codec,
            payload_type: 8,
            fmtp: None,
            out: crate::recording::forwarder::tests::setup(77, 10, 1000),
        }
    }

    fn level(samples: &[f32]) -> f32 {
        (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
    }

    #[test]
    fn encodes_the_chosen_side_in_the_recorders_codec() {
        let mut transcoder = Transcoder::new(setup(PcmSource::Remote, CodecKind::Pcma)).unwrap();
        let loud = vec![0.5f32; FRAME_SAMPLES];
        let quiet = vec![0.0f32; FRAME_SAMPLES];
        let packet = transcoder.encode(Instant::now(), &quiet, &loud).unwrap();
        let rtp = RtpPacket::parse(&packet).unwrap();
        assert_eq!((rtp.payload_type, rtp.ssrc, rtp.sequence), (8, 77, 10));
        assert_eq!(rtp.payload.len(), 160, "20 ms of 8 kHz A-law");
        let mut decoder = Decoder::new(CodecKind::Pcma).unwrap();
        let mut decoded = vec![0.0f32; FRAME_SAMPLES];
        decoder.decode(rtp.payload, &mut decoded).unwrap();
        assert!(
            level(&decoded[FRAME_SAMPLES / 2..]) > 0.3,
            "the far end's side"
        );
    }

    #[test]
    fn mixed_mode_carries_both_voices() {
        let mut transcoder = Transcoder::new(setup(PcmSource::Mixed, CodecKind::Pcmu)).unwrap();
        let a = vec![0.25f32; FRAME_SAMPLES];
        let packet = transcoder.encode(Instant::now(), &a, &a).unwrap();
        let rtp = RtpPacket::parse(&packet).unwrap();
        let mut decoder = Decoder::new(CodecKind::Pcmu).unwrap();
        let mut decoded = vec![0.0f32; FRAME_SAMPLES];
        decoder.decode(rtp.payload, &mut decoded).unwrap();
        let mixed = level(&decoded[FRAME_SAMPLES / 2..]);
        assert!((mixed - 0.5).abs() < 0.05, "both sides summed: {mixed}");
    }

    #[test]
    fn the_timeline_runs_through_a_pause() {
        let mut transcoder = Transcoder::new(setup(PcmSource::Local, CodecKind::Opus)).unwrap();
        let frame = vec![0.1f32; FRAME_SAMPLES];
        let first = transcoder.encode(Instant::now(), &frame, &frame).unwrap();
        transcoder.set_paused(true);
        for _ in 0..10 {
            assert!(transcoder.encode(Instant::now(), &frame, &frame).is_none());
        }
        transcoder.set_paused(false);
        let after = transcoder.encode(Instant::now(), &frame, &frame).unwrap();
        let (a, b) = (
            RtpPacket::parse(&first).unwrap(),
            RtpPacket::parse(&after).unwrap(),
        );
        assert_eq!(b.sequence, a.sequence + 1);
        assert_eq!(b.timestamp - a.timestamp, 11 * 960);
        assert!(b.marker, "a resumed stream starts a talkspurt");
        assert_eq!(transcoder.sent(), 2);
    }
}
