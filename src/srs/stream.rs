//! One recorded stream: (S)RTP packets in, a time-aligned 48 kHz WAV out.
//!
//! Where a packet belongs in the file follows from its RTP timestamp, so pauses and lost
//! packets become silence of the right length. The first packet is placed by its arrival time
//! after the session start, and the file is padded to the session's length at the end, so that
//! all labels of a session stay aligned.

use std::time::Duration;

use crate::media::codec::{CodecKind, Decoder};
use crate::media::rtp::{RtpPacket, is_rtcp};
use crate::media::srtp::SrtpSession;
use crate::media::{FRAME_SAMPLES, SAMPLE_RATE};

use super::core::StreamSetup;
use crate::archive::files::WavWriter;

/// A timestamp jump beyond this is treated as a new timeline, not as a gap to fill.
const MAX_GAP_SAMPLES: i64 = SAMPLE_RATE as i64 * 600;

#[derive(Debug)]
struct Timeline {
    ssrc: u32,
    /// Extended timestamp of the newest packet and its 16-bit-wrapping raw value.
    last_ts: u32,
    ext_ts: i64,
    /// File position (samples) of extended timestamp `base_ts`.
    base_pos: i64,
    base_ts: i64,
    highest_seq: i64,
    last_seq: u16,
    first_seq: i64,
}

/// Packet figures of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub packets_received: u64,
    pub packets_lost: u64,
}

/// Where a stream's audio goes: a WAV file, or memory (the simulated network's recorder).
pub trait SampleSink {
    /// Samples written so far (48 kHz).
    fn samples(&self) -> u64;
    fn write_samples(&mut self, samples: &[f32]) -> std::io::Result<()>;
    fn write_silence(&mut self, count: u64) -> std::io::Result<()>;
    /// Makes everything durable.
    fn finish(self) -> std::io::Result<()>;
}

impl SampleSink for WavWriter {
    fn samples(&self) -> u64 {
        WavWriter::samples(self)
    }
    fn write_samples(&mut self, samples: &[f32]) -> std::io::Result<()> {
        WavWriter::write_samples(self, samples)
    }
    fn write_silence(&mut self, count: u64) -> std::io::Result<()> {
        WavWriter::write_silence(self, count)
    }
    fn finish(self) -> std::io::Result<()> {
        WavWriter::finish(self)
    }
}

impl SampleSink for Vec<f32> {
    fn samples(&self) -> u64 {
        self.len() as u64
    }
    fn write_samples(&mut self, samples: &[f32]) -> std::io::Result<()> {
        self.extend_from_slice(samples);
        Ok(())
    }
    fn write_silence(&mut self, count: u64) -> std::io::Result<()> {
        self.resize(self.len() + count as usize, 0.0);
        Ok(())
    }
    fn finish(self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
pub struct StreamRecorder<S: SampleSink = WavWriter> {
    setup: StreamSetup,
    decoder: Decoder,
    srtp: Option<SrtpSession>,
    wav: S,
    timeline: Option<Timeline>,
    /// Expected/received totals of the timelines that ended (SSRC changes).
    closed_expected: u64,
    received: u64,
    frame: Vec<f32>,
}

impl<S: SampleSink> StreamRecorder<S> {
    pub fn new(setup: StreamSetup, wav: S) -> Result<StreamRecorder<S>, String> {
        let decoder = Decoder::new(setup.codec).map_err(|e| e.to_string())?;
        let srtp = match &setup.crypto {
            Some(crypto) => Some(
                SrtpSession::new(crypto.suite, &crypto.local_key, &crypto.remote_key)
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        Ok(StreamRecorder {
            setup,
            decoder,
            srtp,
            wav,
            timeline: None,
            closed_expected: 0,
            received: 0,
            frame: vec![0.0; FRAME_SAMPLES],
        })
    }

    pub fn setup(&self) -> &StreamSetup {
        &self.setup
    }

    pub fn stats(&self) -> StreamStats {
        let current = self
            .timeline
            .as_ref()
            .map_or(0, |t| (t.highest_seq - t.first_seq + 1).max(0) as u64);
        let expected = self.closed_expected + current;
        StreamStats {
            packets_received: self.received,
            packets_lost: expected.saturating_sub(self.received),
        }
    }

    pub fn samples_written(&self) -> u64 {
        self.wav.samples()
    }

    /// One datagram that arrived `since_start` after the session began.
    pub fn on_datagram(&mut self, datagram: &[u8], since_start: Duration) -> std::io::Result<()> {
        if is_rtcp(datagram) {
            return Ok(());
        }
        let plain;
        let bytes = match self.srtp.as_mut() {
            Some(srtp) => match srtp.unprotect_rtp(datagram) {
                Ok(data) => {
                    plain = data;
                    plain.as_slice()
                }
                Err(_) => return Ok(()),
            },
            None => datagram,
        };
        let Ok(packet) = RtpPacket::parse(bytes) else {
            return Ok(());
        };
        // telephone-event, comfort noise and anything else not negotiated: not audio.
        if packet.payload_type != self.setup.payload_type {
            return Ok(());
        }
        let arrival = (since_start.as_secs_f64() * f64::from(SAMPLE_RATE)) as i64;
        let written = self.wav.samples() as i64;
        let timeline = match self.timeline.as_mut() {
            Some(t) if t.ssrc == packet.ssrc => {
                let delta = i64::from(packet.timestamp.wrapping_sub(t.last_ts) as i32);
                t.ext_ts += delta;
                t.last_ts = packet.timestamp;
                let seq_delta = i64::from(packet.sequence.wrapping_sub(t.last_seq) as i16);
                let seq = t.highest_seq + seq_delta;
                if seq > t.highest_seq {
                    t.highest_seq = seq;
                    t.last_seq = packet.sequence;
                }
                t
            }
            previous => {
                if let Some(old) = previous.as_ref() {
                    self.closed_expected += (old.highest_seq - old.first_seq + 1).max(0) as u64;
                }
                let start = arrival.max(written);
                self.timeline.insert(Timeline {
                    ssrc: packet.ssrc,
                    last_ts: packet.timestamp,
                    ext_ts: 0,
                    base_pos: start,
                    base_ts: 0,
                    highest_seq: 0,
                    last_seq: packet.sequence,
                    first_seq: 0,
                })
            }
        };
        self.received += 1;
        let rate = i64::from(self.setup.codec.clock_rate());
        let mut position = timeline.base_pos
            + (timeline.ext_ts - timeline.base_ts) * i64::from(SAMPLE_RATE) / rate;
        if position - written > MAX_GAP_SAMPLES || position < written - MAX_GAP_SAMPLES {
            // The sender restarted its clock: continue from here.
            timeline.base_pos = written;
            timeline.base_ts = timeline.ext_ts;
            position = written;
        }
        if position + FRAME_SAMPLES as i64 <= written {
            return Ok(()); // late or duplicate
        }
        if self
            .decoder
            .decode(packet.payload, &mut self.frame)
            .is_err()
        {
            return Ok(());
        }
        if position > written {
            self.wav.write_silence((position - written) as u64)?;
        }
        let skip = (written - position).max(0) as usize;
        let frame = self.frame.get(skip..).unwrap_or(&[]);
        self.wav.write_samples(frame)
    }

    /// Pads the file to `session_length` and closes it.
    pub fn finish(mut self, session_length: Duration) -> std::io::Result<StreamStats> {
        let stats = self.stats();
        let target = (session_length.as_secs_f64() * f64::from(SAMPLE_RATE)) as u64;
        let written = self.wav.samples();
        // A failed pad (a full disk) must not keep the file from being closed properly.
        let padded = if target > written {
            self.wav.write_silence(target - written)
        } else {
            Ok(())
        };
        self.wav.finish()?;
        padded?;
        Ok(stats)
    }

    pub fn codec(&self) -> CodecKind {
        self.setup.codec
    }

    /// What was written so far.
    pub fn sink(&self) -> &S {
        &self.wav
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::RtpSender;

    fn setup() -> StreamSetup {
        StreamSetup {
            label: "1".into(),
            local_port: 4000,
            codec: CodecKind::Pcmu,
            payload_type: 0,
            crypto: None,
            participant: "alice".into(),
        }
    }

    #[test]
    fn gaps_from_timestamps_become_silence_and_events_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.wav");
        let mut recorder = StreamRecorder::new(setup(), WavWriter::create(&path).unwrap()).unwrap();
        let mut sender = RtpSender::new(7, 100, 1000);
        let payload = [0x55u8; 160];
        // 10 packets, then a 1 s gap (50 frames of timestamps, seq jumps by 1: a pause), 10 more.
        let mut ts = 1000u32;
        for i in 0..20u32 {
            if i == 10 {
                ts = ts.wrapping_add(8000);
            }
            let mut packet = Vec::new();
            sender.build(0, ts, false, &payload, &mut packet).unwrap();
            recorder.on_datagram(&packet, Duration::ZERO).unwrap();
            ts = ts.wrapping_add(160);
        }
        let mut event = Vec::new();
        sender
            .build(101, ts, false, &[1, 0, 0, 160], &mut event)
            .unwrap();
        recorder.on_datagram(&event, Duration::ZERO).unwrap();
        let stats = recorder.stats();
        assert_eq!(stats.packets_received, 20);
        assert_eq!(stats.packets_lost, 0);
        let stats = recorder.finish(Duration::from_secs(2)).unwrap();
        assert_eq!(stats.packets_received, 20);
        let reader = hound::WavReader::open(&path).unwrap();
        // 20 frames + 1 s gap = 1.4 s, padded to the 2 s session.
        assert_eq!(reader.duration(), 96_000);
    }

    #[test]
    fn loss_is_counted_and_filled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.wav");
        let mut recorder = StreamRecorder::new(setup(), WavWriter::create(&path).unwrap()).unwrap();
        let mut sender = RtpSender::new(9, 0, 0);
        let payload = [0x55u8; 160];
        let mut packets = Vec::new();
        for i in 0..10u32 {
            let mut packet = Vec::new();
            sender
                .build(0, i * 160, false, &payload, &mut packet)
                .unwrap();
            packets.push(packet);
        }
        for (i, packet) in packets.iter().enumerate() {
            if i != 4 && i != 5 {
                recorder.on_datagram(packet, Duration::ZERO).unwrap();
            }
        }
        assert_eq!(recorder.stats().packets_lost, 2);
        assert_eq!(recorder.samples_written(), 10 * 960);
    }

    #[test]
    fn srtp_packets_are_unprotected_with_the_offered_key() {
        use crate::media::srtp::{CryptoSuite, SrtpSession};
        use crate::srs::core::StreamCrypto;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.wav");
        let local_key = [1u8; 30];
        let remote_key = [2u8; 30];
        let mut secure = setup();
        secure.crypto = Some(StreamCrypto {
            suite: CryptoSuite::AesCm128HmacSha1_80,
            local_key,
            remote_key,
        });
        let mut recorder = StreamRecorder::new(secure, WavWriter::create(&path).unwrap()).unwrap();
        let mut far =
            SrtpSession::new(CryptoSuite::AesCm128HmacSha1_80, &remote_key, &local_key).unwrap();
        let mut sender = RtpSender::new(5, 0, 0);
        for i in 0..5u32 {
            let mut packet = Vec::new();
            sender
                .build(0, i * 160, false, &[0x10; 160], &mut packet)
                .unwrap();
            let protected = far.protect_rtp(&packet).unwrap();
            recorder.on_datagram(&protected, Duration::ZERO).unwrap();
        }
        // A packet with a wrong key is dropped.
        let mut stranger =
            SrtpSession::new(CryptoSuite::AesCm128HmacSha1_80, &[9; 30], &local_key).unwrap();
        let mut packet = Vec::new();
        sender
            .build(0, 5 * 160, false, &[0x10; 160], &mut packet)
            .unwrap();
        let bad = stranger.protect_rtp(&packet).unwrap();
        recorder.on_datagram(&bad, Duration::ZERO).unwrap();
        assert_eq!(recorder.stats().packets_received, 5);
        assert_eq!(recorder.samples_written(), 5 * 960);
    }
}
