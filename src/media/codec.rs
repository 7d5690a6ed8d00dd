//! Encoders and decoders behind one interface: 20 ms of 48 kHz mono in, one RTP payload out,
//! and back. G.711 runs at 8 kHz and G.722 at 16 kHz, so their frames pass through the
//! integer-ratio resampler.
//!
//! G.722 is the ezk-g722 crate's translation of the public-domain SpanDSP coder (the one
//! baresip, FreeSWITCH and Asterisk use), at 64 kbit/s, unpacked: one octet per two 16 kHz
//! samples, as RFC 3551 4.5.2 lays it out.

use ezk_g722::libg722::{
    Bitrate, decoder::Decoder as G722Decoder, encoder::Encoder as G722Encoder,
};

use super::g711;
use super::resample::{Decimator, Interpolator};
use super::{FRAME_SAMPLES, SAMPLE_RATE};

/// Factor between the engine's rate and G.711's 8 kHz.
const NARROWBAND_FACTOR: usize = 6;
/// Factor between the engine's rate and G.722's 16 kHz.
const WIDEBAND_FACTOR: usize = 3;
/// Enough for a 20 ms Opus frame at any bitrate libopus picks for voice.
const MAX_OPUS_PAYLOAD: usize = 1275;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

impl CodecKind {
    /// Matches an SDP encoding name (case-insensitive).
    pub fn from_encoding(name: &str) -> Option<CodecKind> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(CodecKind::Pcmu)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(CodecKind::Pcma)
        } else if name.eq_ignore_ascii_case("G722") {
            Some(CodecKind::G722)
        } else if name.eq_ignore_ascii_case("opus") {
            Some(CodecKind::Opus)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::G722 => "G722",
            CodecKind::Opus => "opus",
        }
    }

    /// RTP clock rate (RFC 3551; RFC 7587 fixes Opus at 48 kHz whatever it codes). G.722
    /// samples at 16 kHz but its RTP clock runs at 8000 Hz, an error in RFC 1890 that RFC 3551
    /// 4.5.2 keeps for compatibility.
    pub fn clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => 8000,
            CodecKind::Opus => SAMPLE_RATE,
        }
    }

    /// RTP timestamp units per 20 ms frame.
    pub fn timestamp_step(self) -> u32 {
        self.clock_rate() / 50
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    #[error("frame has {0} samples, expected {FRAME_SAMPLES}")]
    FrameSize(usize),
}

/// What each codec keeps between frames, beside the resampler its rate needs.
enum EncoderState {
    Opus(Box<opus::Encoder>),
    G711 {
        decimator: Decimator,
        narrow: Vec<f32>,
    },
    G722 {
        decimator: Decimator,
        wide: Vec<f32>,
        samples: Vec<i16>,
        coder: Box<G722Encoder>,
    },
}

pub struct Encoder {
    kind: CodecKind,
    state: EncoderState,
}

impl core::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Encoder").field("kind", &self.kind).finish()
    }
}

impl Encoder {
    pub fn new(kind: CodecKind) -> Result<Encoder, CodecError> {
        let state = match kind {
            CodecKind::Opus => {
                let mut encoder =
                    opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
                // In-band FEC lets the receiver rebuild a lost frame from the next packet;
                // it only kicks in when the encoder expects loss, so announce some.
                encoder.set_inband_fec(true)?;
                encoder.set_packet_loss_perc(5)?;
                encoder.set_bitrate(opus::Bitrate::Bits(32_000))?;
                EncoderState::Opus(Box::new(encoder))
            }
            CodecKind::Pcmu | CodecKind::Pcma => EncoderState::G711 {
                decimator: Decimator::new(NARROWBAND_FACTOR),
                narrow: Vec::with_capacity(FRAME_SAMPLES / NARROWBAND_FACTOR),
            },
            CodecKind::G722 => EncoderState::G722 {
                decimator: Decimator::new(WIDEBAND_FACTOR),
                wide: Vec::with_capacity(FRAME_SAMPLES / WIDEBAND_FACTOR),
                samples: Vec::with_capacity(FRAME_SAMPLES / WIDEBAND_FACTOR),
                coder: Box::new(G722Encoder::new(Bitrate::Mode1_64000, false, false)),
            },
        };
        Ok(Encoder { kind, state })
    }

    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// Applies what the peer's `a=fmtp` says about what it can receive (RFC 7587 7):
    /// `maxaveragebitrate` caps our bitrate, `useinbandfec=0` turns FEC off, `cbr=1` asks
    /// for constant bitrate.
    pub fn apply_peer_fmtp(&mut self, fmtp: &str) {
        let EncoderState::Opus(opus) = &mut self.state else {
            return;
        };
        for parameter in fmtp.split(';') {
            let Some((name, value)) = parameter.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "maxaveragebitrate" => {
                    if let Ok(bits) = value.parse::<i32>() {
                        let _ = opus.set_bitrate(opus::Bitrate::Bits(bits.clamp(6_000, 32_000)));
                    }
                }
                "useinbandfec" => {
                    let _ = opus.set_inband_fec(value != "0");
                }
                "cbr" => {
                    let _ = opus.set_vbr(value != "1");
                }
                _ => {}
            }
        }
    }

    /// Tells Opus how much loss the receiver reports, so FEC spends bits where needed.
    pub fn set_expected_loss(&mut self, percent: u8) {
        if let EncoderState::Opus(opus) = &mut self.state {
            let _ = opus.set_packet_loss_perc(i32::from(percent.clamp(1, 30)));
        }
    }

    /// Encodes one 20 ms frame, appending the payload to `out`.
    pub fn encode(&mut self, frame: &[f32], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(CodecError::FrameSize(frame.len()));
        }
        match &mut self.state {
            EncoderState::Opus(opus) => {
                let start = out.len();
                out.resize(start + MAX_OPUS_PAYLOAD, 0);
                let written = opus.encode_float(frame, out.get_mut(start..).unwrap_or(&mut []))?;
                out.truncate(start + written);
            }
            EncoderState::G711 { decimator, narrow } => {
                narrow.clear();
                decimator.process(frame, narrow);
                let law = self.kind == CodecKind::Pcma;
                out.extend(narrow.iter().map(|s| {
                    let sample = to_i16(*s);
                    if law {
                        g711::alaw_encode(sample)
                    } else {
                        g711::ulaw_encode(sample)
                    }
                }));
            }
            EncoderState::G722 {
                decimator,
                wide,
                samples,
                coder,
            } => {
                wide.clear();
                decimator.process(frame, wide);
                samples.clear();
                samples.extend(wide.iter().map(|s| to_i16(*s)));
                out.extend_from_slice(&coder.encode(samples));
            }
        }
        Ok(())
    }
}

/// How many concealed frames G.711 and G.722 repeat before they go quiet.
const REPEAT_CONCEAL_FRAMES: u32 = 4;

/// What each codec keeps between frames, beside the resampler its rate needs.
enum DecoderState {
    Opus(Box<opus::Decoder>),
    G711 {
        interpolator: Interpolator,
        narrow: Vec<f32>,
        high: Vec<f32>,
    },
    G722 {
        interpolator: Interpolator,
        wide: Vec<f32>,
        high: Vec<f32>,
        coder: Box<G722Decoder>,
    },
}

pub struct Decoder {
    kind: CodecKind,
    state: DecoderState,
    /// The last good frame and how many frames have been concealed since.
    last: Vec<f32>,
    concealed: u32,
}

impl core::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decoder").field("kind", &self.kind).finish()
    }
}

impl Decoder {
    pub fn new(kind: CodecKind) -> Result<Decoder, CodecError> {
        let state = match kind {
            CodecKind::Opus => DecoderState::Opus(Box::new(opus::Decoder::new(
                SAMPLE_RATE,
                opus::Channels::Mono,
            )?)),
            CodecKind::Pcmu | CodecKind::Pcma => DecoderState::G711 {
                interpolator: Interpolator::new(NARROWBAND_FACTOR),
                narrow: Vec::with_capacity(FRAME_SAMPLES),
                high: Vec::with_capacity(2 * FRAME_SAMPLES),
            },
            CodecKind::G722 => DecoderState::G722 {
                interpolator: Interpolator::new(WIDEBAND_FACTOR),
                wide: Vec::with_capacity(FRAME_SAMPLES),
                high: Vec::with_capacity(2 * FRAME_SAMPLES),
                coder: Box::new(G722Decoder::new(Bitrate::Mode1_64000, false, false)),
            },
        };
        Ok(Decoder {
            kind,
            state,
            last: vec![0.0; FRAME_SAMPLES],
            concealed: 0,
        })
    }

    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// Decodes one payload into a 20 ms frame.
    pub fn decode(&mut self, payload: &[u8], frame: &mut [f32]) -> Result<(), CodecError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(CodecError::FrameSize(frame.len()));
        }
        match &mut self.state {
            DecoderState::Opus(opus) => {
                let samples = opus.decode_float(payload, frame, false)?;
                // A peer sending 10 ms packets leaves the rest of the frame silent rather
                // than stale.
                if let Some(rest) = frame.get_mut(samples..) {
                    rest.fill(0.0);
                }
            }
            DecoderState::G711 {
                interpolator,
                narrow,
                high,
            } => {
                narrow.clear();
                let law = self.kind == CodecKind::Pcma;
                narrow.extend(payload.iter().map(|code| {
                    let sample = if law {
                        g711::alaw_decode(*code)
                    } else {
                        g711::ulaw_decode(*code)
                    };
                    f32::from(sample) / 32768.0
                }));
                high.clear();
                interpolator.process(narrow, high);
                fill_frame(high, frame);
            }
            DecoderState::G722 {
                interpolator,
                wide,
                high,
                coder,
            } => {
                wide.clear();
                wide.extend(
                    coder
                        .decode(payload)
                        .iter()
                        .map(|sample| f32::from(*sample) / 32768.0),
                );
                high.clear();
                interpolator.process(wide, high);
                fill_frame(high, frame);
            }
        }
        self.last.copy_from_slice(frame);
        self.concealed = 0;
        Ok(())
    }

    /// Fills a frame for a lost packet: Opus rebuilds it from the next packet's FEC data when
    /// there is one, else runs its own loss concealment; G.711 and G.722 repeat the last frame
    /// fading out, then fall silent.
    pub fn conceal(&mut self, next: Option<&[u8]>, frame: &mut [f32]) -> Result<(), CodecError> {
        if frame.len() != FRAME_SAMPLES {
            return Err(CodecError::FrameSize(frame.len()));
        }
        self.concealed += 1;
        match &mut self.state {
            DecoderState::Opus(opus) => {
                let samples = match next {
                    Some(packet) => opus.decode_float(packet, frame, true)?,
                    None => opus.decode_float(&[], frame, false)?,
                };
                if let Some(rest) = frame.get_mut(samples..) {
                    rest.fill(0.0);
                }
            }
            DecoderState::G711 { .. } | DecoderState::G722 { .. } => {
                let gain = if self.concealed > REPEAT_CONCEAL_FRAMES {
                    0.0
                } else {
                    1.0 - self.concealed as f32 / (REPEAT_CONCEAL_FRAMES + 1) as f32
                };
                for (out, last) in frame.iter_mut().zip(self.last.iter()) {
                    *out = last * gain;
                }
            }
        }
        Ok(())
    }
}

/// Packets of other than 20 ms still yield exactly one frame: a short one ends in silence, a
/// long one is cut.
fn fill_frame(decoded: &mut Vec<f32>, frame: &mut [f32]) {
    decoded.resize(FRAME_SAMPLES, 0.0);
    frame.copy_from_slice(decoded.get(..FRAME_SAMPLES).unwrap_or(&[]));
}

fn to_i16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{Sine, goertzel_amplitude};

    fn round_trip(kind: CodecKind, frequency: f32) -> Vec<f32> {
        let mut encoder = Encoder::new(kind).unwrap();
        let mut decoder = Decoder::new(kind).unwrap();
        let mut sine = Sine::new(frequency, 0.5, SAMPLE_RATE);
        let mut decoded = Vec::new();
        for _ in 0..50 {
            let mut frame = vec![0.0; FRAME_SAMPLES];
            sine.fill(&mut frame);
            let mut payload = Vec::new();
            encoder.encode(&frame, &mut payload).unwrap();
            let mut out = vec![0.0; FRAME_SAMPLES];
            decoder.decode(&payload, &mut out).unwrap();
            decoded.extend_from_slice(&out);
        }
        decoded
    }

    #[test]
    fn every_codec_carries_a_tone() {
        for kind in [
            CodecKind::Pcmu,
            CodecKind::Pcma,
            CodecKind::G722,
            CodecKind::Opus,
        ] {
            let decoded = round_trip(kind, 1000.0);
            // Skip the first 100 ms: filters and the Opus encoder settle.
            let tail = &decoded[4800..];
            let level = goertzel_amplitude(tail, SAMPLE_RATE, 1000.0);
            assert!((0.35..0.65).contains(&level), "{kind:?}: 1 kHz at {level}");
            let other = goertzel_amplitude(tail, SAMPLE_RATE, 2500.0);
            assert!(other < 0.05, "{kind:?}: 2.5 kHz at {other}");
        }
    }

    #[test]
    fn g711_payload_is_160_bytes_and_opus_is_compact() {
        let frame = vec![0.1; FRAME_SAMPLES];
        for (kind, check) in [
            (CodecKind::Pcmu, 160..=160),
            (CodecKind::Pcma, 160..=160),
            (CodecKind::G722, 160..=160),
            (CodecKind::Opus, 1..=200),
        ] {
            let mut payload = Vec::new();
            Encoder::new(kind)
                .unwrap()
                .encode(&frame, &mut payload)
                .unwrap();
            assert!(
                check.contains(&payload.len()),
                "{kind:?}: {}",
                payload.len()
            );
        }
    }

    #[test]
    fn g722_carries_the_band_above_telephone_speech_that_g711_cuts() {
        // 6 kHz is wideband only: G.711's 8 kHz sampling stops at 4 kHz.
        let level =
            |kind| goertzel_amplitude(&round_trip(kind, 6000.0)[4800..], SAMPLE_RATE, 6000.0);
        let wideband = level(CodecKind::G722);
        assert!(
            (0.35..0.65).contains(&wideband),
            "G.722: 6 kHz at {wideband}"
        );
        let narrowband = level(CodecKind::Pcmu);
        assert!(narrowband < 0.01, "PCMU: 6 kHz at {narrowband}");
    }

    #[test]
    fn g722_stamps_rtp_at_8000_hz_though_it_samples_at_16000() {
        assert_eq!(CodecKind::G722.clock_rate(), 8000);
        assert_eq!(CodecKind::G722.timestamp_step(), 160);
        assert_eq!(CodecKind::from_encoding("g722"), Some(CodecKind::G722));
    }

    #[test]
    fn g722_decodes_any_bytes_without_panicking() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(722);
        let mut decoder = Decoder::new(CodecKind::G722).unwrap();
        let mut frame = vec![0.0; FRAME_SAMPLES];
        for length in [0, 1, 80, 159, 160, 161, 320, 1500] {
            for _ in 0..20 {
                let payload: Vec<u8> = (0..length).map(|_| rng.random()).collect();
                decoder.decode(&payload, &mut frame).unwrap();
                assert!(frame.iter().all(|s| s.is_finite() && s.abs() <= 1.5));
            }
        }
    }

    #[test]
    fn concealment_fades_g711_and_keeps_opus_going() {
        let mut decoder = Decoder::new(CodecKind::Pcmu).unwrap();
        let payload = vec![0x10u8; 160];
        let mut frame = vec![0.0; FRAME_SAMPLES];
        decoder.decode(&payload, &mut frame).unwrap();
        let first = crate::media::tone::rms(&frame);
        let mut levels = Vec::new();
        for _ in 0..6 {
            decoder.conceal(None, &mut frame).unwrap();
            levels.push(crate::media::tone::rms(&frame));
        }
        assert!(levels[0] < first && levels[0] > 0.0);
        assert!(levels.windows(2).all(|w| w[1] <= w[0]));
        assert_eq!(levels[5], 0.0);

        let decoded = round_trip(CodecKind::Opus, 440.0);
        assert!(decoded.len() == 50 * FRAME_SAMPLES);
        let mut decoder = Decoder::new(CodecKind::Opus).unwrap();
        let mut out = vec![0.0; FRAME_SAMPLES];
        decoder.conceal(None, &mut out).unwrap();
    }

    #[test]
    fn peer_fmtp_caps_the_opus_bitrate() {
        let frame: Vec<f32> = {
            let mut sine = Sine::new(1000.0, 0.5, SAMPLE_RATE);
            let mut f = vec![0.0; FRAME_SAMPLES];
            sine.fill(&mut f);
            f
        };
        let size = |fmtp: Option<&str>| {
            let mut encoder = Encoder::new(CodecKind::Opus).unwrap();
            if let Some(fmtp) = fmtp {
                encoder.apply_peer_fmtp(fmtp);
            }
            let mut total = 0;
            for _ in 0..25 {
                let mut payload = Vec::new();
                encoder.encode(&frame, &mut payload).unwrap();
                total += payload.len();
            }
            total
        };
        let free = size(None);
        let capped = size(Some("maxaveragebitrate=8000;useinbandfec=0"));
        assert!(capped * 2 < free, "8 kb/s cap: {capped} bytes vs {free}");
    }

    #[test]
    fn wrong_frame_size_is_an_error() {
        let mut encoder = Encoder::new(CodecKind::Pcma).unwrap();
        assert!(encoder.encode(&[0.0; 100], &mut Vec::new()).is_err());
        let mut decoder = Decoder::new(CodecKind::Opus).unwrap();
        assert!(decoder.decode(&[1, 2, 3], &mut [0.0; 10]).is_err());
        // Garbage Opus payloads are errors, not panics.
        let mut frame = vec![0.0; FRAME_SAMPLES];
        let _ = decoder.decode(&[0xff; 7], &mut frame);
    }
}
