//! RTP data packets (RFC 3550 section 5): parsing and building through `rtp-rs`, the sender's
//! counters for sender reports, the media clock, and the receiver statistics of appendix A.

use std::time::Duration;

use rtp_rs::{RtpPacketBuilder, RtpReader, RtpReaderError};

/// Why bytes were not accepted as an RTP packet, or a packet could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("RTP packet shorter than its headers ({0} bytes)")]
    Truncated(usize),
    #[error("RTP version {0} is not 2")]
    UnsupportedVersion(u8),
    #[error("RTP padding length {0} is invalid")]
    BadPadding(u8),
    #[error("the second byte marks an RTCP packet, not RTP (RFC 5761)")]
    LooksLikeRtcp,
    #[error("RTP payload type {0} is above 127")]
    PayloadTypeInvalid(u8),
    #[error("could not build the RTP packet")]
    Build,
}

impl From<RtpReaderError> for RtpError {
    fn from(error: RtpReaderError) -> Self {
        match error {
            RtpReaderError::BufferTooShort(len) => Self::Truncated(len),
            RtpReaderError::UnsupportedVersion(version) => Self::UnsupportedVersion(version),
            RtpReaderError::HeadersTruncated { buffer_len, .. } => Self::Truncated(buffer_len),
            RtpReaderError::PaddingLengthInvalid(pad) => Self::BadPadding(pad),
        }
    }
}

/// One received RTP packet, borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Without CSRCs, header extension and padding.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Payload types 64..=95 with the marker bit set collide with RTCP packet types on a muxed
    /// port, so such datagrams are refused here rather than misread as media.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RtpError> {
        if is_rtcp(bytes) {
            return Err(RtpError::LooksLikeRtcp);
        }
        let reader = RtpReader::new(bytes)?;
        Ok(Self {
            payload_type: reader.payload_type(),
            marker: reader.mark(),
            sequence: reader.sequence_number().into(),
            timestamp: reader.timestamp(),
            ssrc: reader.ssrc(),
            payload: reader.payload(),
        })
    }
}

/// RFC 5761 section 4: on a port shared by RTP and RTCP, a version-2 datagram whose second byte
/// is 192..=223 is RTCP.
pub fn is_rtcp(bytes: &[u8]) -> bool {
    let version_is_2 = bytes.first().is_some_and(|first| first >> 6 == 2);
    let rtcp_type = bytes
        .get(1)
        .is_some_and(|second| (192..=223).contains(second));
    version_is_2 && rtcp_type
}

/// Numbers one outgoing stream (one SSRC) and keeps the counts a sender report needs.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    next_sequence: u16,
    initial_timestamp: u32,
    packets_sent: u32,
    octets_sent: u32,
    last_timestamp: Option<u32>,
}

impl RtpSender {
    /// The initial sequence number and timestamp should be random (RFC 3550 section 5.1); the
    /// caller supplies them so that this module stays deterministic.
    pub fn new(ssrc: u32, initial_sequence: u16, initial_timestamp: u32) -> Self {
        Self {
            ssrc,
            next_sequence: initial_sequence,
            initial_timestamp,
            packets_sent: 0,
            octets_sent: 0,
            last_timestamp: None,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The random timestamp origin given at creation: the `initial_timestamp` of this
    /// stream's [`MediaClock`].
    pub fn initial_timestamp(&self) -> u32 {
        self.initial_timestamp
    }

    /// Replaces the contents of `out` with one packet. The timestamp is the caller's: a DTMF
    /// event keeps one timestamp across several packets, which only the caller knows.
    pub fn build(
        &mut self,
        payload_type: u8,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RtpError> {
        if payload_type > 0x7f {
            return Err(RtpError::PayloadTypeInvalid(payload_type));
        }
        let builder = RtpPacketBuilder::new()
            .payload_type(payload_type)
            .marked(marker)
            .sequence(self.next_sequence.into())
            .timestamp(timestamp)
            .ssrc(self.ssrc)
            .payload(payload);
        out.clear();
        out.resize(builder.target_length(), 0);
        let written = builder.build_into(out).map_err(|_| RtpError::Build)?;
        out.truncate(written);

        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        // RFC 3550 6.4.1: the octet count is payload only and wraps at 32 bits.
        let payload_octets = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        self.octets_sent = self.octets_sent.wrapping_add(payload_octets);
        self.last_timestamp = Some(timestamp);
        Ok(())
    }

    /// The sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// Sender's packet count for an SR; wraps at 32 bits as the field does.
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }

    /// Sender's octet count for an SR (payload octets); wraps at 32 bits as the field does.
    pub fn octets_sent(&self) -> u32 {
        self.octets_sent
    }

    /// Timestamp of the last packet built; `None` before the first.
    pub fn last_timestamp(&self) -> Option<u32> {
        self.last_timestamp
    }
}

/// Maps media time to RTP timestamps for one clock rate. It is a pure function of elapsed
/// time, not of packets sent, so the timestamp keeps advancing while nothing is sent (hold,
/// silence) as RFC 3550 5.1 asks, and a resumed stream lands at the right place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaClock {
    rate: u32,
    origin: u32,
}

impl MediaClock {
    /// `initial_timestamp` is the (random) timestamp of media time zero.
    pub fn new(rate: u32, initial_timestamp: u32) -> Self {
        Self {
            rate,
            origin: initial_timestamp,
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Clock ticks in `duration`, rounded down.
    pub fn ticks(&self, duration: Duration) -> u64 {
        let ticks = duration.as_nanos() * u128::from(self.rate) / 1_000_000_000;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    /// The timestamp of the media instant `elapsed` after media time zero.
    pub fn timestamp_at(&self, elapsed: Duration) -> u32 {
        // Truncation is the RTP timestamp's own modulo-2^32 wrap.
        self.origin.wrapping_add(self.ticks(elapsed) as u32)
    }

    /// The timestamp of the start of frame number `frame_index` when frames last `frame`.
    pub fn timestamp_of_frame(&self, frame_index: u64, frame: Duration) -> u32 {
        let ticks = self.ticks(frame).wrapping_mul(frame_index);
        self.origin.wrapping_add(ticks as u32)
    }
}

/// A source must send this many packets in sequence before it is believed (RFC 3550 A.1).
const MIN_SEQUENTIAL: u8 = 2;
/// Forward jumps below this are gaps (losses); larger ones look like a restart.
const MAX_DROPOUT: u16 = 3000;
/// Backward steps below this are reordering or duplicates.
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

/// Reception statistics for one remote source, following RFC 3550 appendix A.1 (sequence
/// validation and extension), A.3 (loss) and A.8 (interarrival jitter).
///
/// Duplicates count as received, as in the RFC, so the cumulative loss can go negative.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    ssrc: u32,
    started: bool,
    max_seq: u16,
    /// Wrap count shifted left by 16, so that `cycles + max_seq` is the extended sequence.
    cycles: u32,
    base_seq: u32,
    /// The sequence number after a suspicious jump; a packet carrying it confirms a restart.
    bad_seq: u32,
    probation: u8,
    received: u64,
    expected_prior: i64,
    received_prior: u64,
    last_transit: Option<u32>,
    /// Interarrival jitter in timestamp units, kept as a real number to avoid rounding drift.
    jitter: f64,
}

impl ReceiveStats {
    pub fn new(ssrc: u32) -> Self {
        Self {
            ssrc,
            started: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            last_transit: None,
            jitter: 0.0,
        }
    }

    /// The source these statistics describe.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Records one packet. `arrival_rtp` is the arrival time already converted to the
    /// stream's timestamp units (any origin: only differences matter). Returns whether the
    /// packet is valid under A.1; packets of a source still on probation, or after an
    /// unconfirmed jump, are not counted.
    pub fn update(&mut self, sequence: u16, rtp_timestamp: u32, arrival_rtp: u32) -> bool {
        if !self.started {
            self.started = true;
            self.restart_at(sequence);
            self.max_seq = sequence.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let valid = self.update_sequence(sequence);
        if valid {
            self.update_jitter(rtp_timestamp, arrival_rtp);
        }
        valid
    }

    /// Counts a packet for sequence and loss statistics only, for packets whose timestamp
    /// says nothing about transit time (RFC 4733 events repeat one timestamp).
    pub fn update_sequence_only(&mut self, sequence: u16) -> bool {
        if !self.started {
            self.started = true;
            self.restart_at(sequence);
            self.max_seq = sequence.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        self.update_sequence(sequence)
    }

    fn restart_at(&mut self, sequence: u16) {
        self.base_seq = u32::from(sequence);
        self.max_seq = sequence;
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.last_transit = None;
    }

    fn update_sequence(&mut self, sequence: u16) -> bool {
        let forward = sequence.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if sequence == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = sequence;
                if self.probation == 0 {
                    self.restart_at(sequence);
                    self.received += 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = sequence;
            }
            return false;
        }
        if forward < MAX_DROPOUT {
            if sequence < self.max_seq {
                self.cycles = self.cycles.wrapping_add(SEQ_MOD);
            }
            self.max_seq = sequence;
        } else if u32::from(forward) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(sequence) == self.bad_seq {
                // Two packets in sequence after a big jump: the source restarted.
                self.restart_at(sequence);
            } else {
                self.bad_seq = (u32::from(sequence) + 1) & (SEQ_MOD - 1);
                return false;
            }
        }
        // Anything else is a duplicate or a reordered packet: counted, as A.1 does.
        self.received += 1;
        true
    }

    fn update_jitter(&mut self, rtp_timestamp: u32, arrival_rtp: u32) {
        let transit = arrival_rtp.wrapping_sub(rtp_timestamp);
        if let Some(previous) = self.last_transit {
            // Reinterpreting the wrapped difference as signed gives the true small difference.
            let difference = f64::from(transit.wrapping_sub(previous) as i32).abs();
            self.jitter += (difference - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// Valid packets counted since the source was accepted, duplicates included.
    pub fn packets_received(&self) -> u64 {
        self.received
    }

    /// Highest sequence number seen, extended with the wrap count (RFC 3550 6.4.1).
    pub fn extended_highest_sequence(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    fn expected(&self) -> i64 {
        if self.received == 0 {
            return 0;
        }
        let extended_max = i64::from(self.cycles) + i64::from(self.max_seq);
        extended_max - i64::from(self.base_seq) + 1
    }

    /// Packets expected minus packets received, clamped to the report block's signed 24 bits.
    pub fn cumulative_lost(&self) -> i32 {
        let received = i64::try_from(self.received).unwrap_or(i64::MAX);
        let lost = self.expected().saturating_sub(received);
        // Clamped into the 24-bit range, so the narrowing cannot truncate.
        lost.clamp(-0x80_0000, 0x7f_ffff) as i32
    }

    /// The fraction (out of 256) of packets lost since the previous call; this closes the
    /// reporting interval, so call it once per report sent.
    pub fn fraction_lost_since_last_report(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior;
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let received_interval = i64::try_from(received_interval).unwrap_or(i64::MAX);
        let lost_interval = expected_interval.saturating_sub(received_interval);
        if expected_interval <= 0 || lost_interval <= 0 {
            return 0;
        }
        let fraction = (lost_interval << 8) / expected_interval;
        u8::try_from(fraction).unwrap_or(u8::MAX)
    }

    /// Interarrival jitter in timestamp units, as reported in RTCP.
    pub fn jitter(&self) -> u32 {
        // The estimate is a non-negative mean of u32-sized differences; `as` saturates.
        self.jitter.round() as u32
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    const PT_OPUS: u8 = 111;
    const FRAME_TICKS: u32 = 960;

    fn sample_packet() -> Vec<u8> {
        let mut sender = RtpSender::new(0xdead_beef, 65_534, 1000);
        let mut out = Vec::new();
        sender
            .build(PT_OPUS, 1000, true, &[1, 2, 3, 4, 5], &mut out)
            .unwrap();
        out
    }

    #[test]
    fn built_packet_parses_back() {
        let bytes = sample_packet();
        assert_eq!(bytes.len(), 12 + 5);
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(
            packet,
            RtpPacket {
                payload_type: PT_OPUS,
                marker: true,
                sequence: 65_534,
                timestamp: 1000,
                ssrc: 0xdead_beef,
                payload: &[1, 2, 3, 4, 5],
            }
        );
        assert!(!is_rtcp(&bytes));
    }

    #[test]
    fn sender_numbers_packets_and_counts_for_reports() {
        let mut sender = RtpSender::new(7, 65_535, 0);
        assert_eq!(sender.last_timestamp(), None);
        let mut out = Vec::new();
        let mut sequences = Vec::new();
        for (index, timestamp) in [0u32, 960, 960, 1920].into_iter().enumerate() {
            let payload = vec![0u8; 10 + index];
            sender
                .build(101, timestamp, false, &payload, &mut out)
                .unwrap();
            let packet = RtpPacket::parse(&out).unwrap();
            assert_eq!(packet.timestamp, timestamp);
            sequences.push(packet.sequence);
        }
        assert_eq!(sequences, vec![65_535, 0, 1, 2]);
        assert_eq!(sender.packets_sent(), 4);
        assert_eq!(sender.octets_sent(), 10 + 11 + 12 + 13);
        assert_eq!(sender.last_timestamp(), Some(1920));
        assert_eq!(sender.next_sequence(), 3);
        assert_eq!(
            sender.build(128, 0, false, &[], &mut out),
            Err(RtpError::PayloadTypeInvalid(128))
        );
        assert_eq!(sender.packets_sent(), 4, "a refused packet is not counted");
    }

    #[test]
    fn parse_handles_csrcs_extension_and_padding() {
        // V=2, P=1, X=1, CC=1; PT 0; seq 0x0102; ts 0x03040506; ssrc 0x0708090a
        let mut bytes = vec![0xb1, 0x00, 0x01, 0x02, 3, 4, 5, 6, 7, 8, 9, 10];
        bytes.extend_from_slice(&[0, 0, 0, 42]); // CSRC
        bytes.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 1, 2, 3, 4]); // one-word extension
        bytes.extend_from_slice(&[0xaa, 0xbb]); // payload
        bytes.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(packet.sequence, 0x0102);
        assert_eq!(packet.timestamp, 0x0304_0506);
        assert_eq!(packet.ssrc, 0x0708_090a);
        assert_eq!(packet.payload, &[0xaa, 0xbb]);
    }

    #[test]
    fn bad_packets_are_rejected() {
        let good = sample_packet();
        assert!(matches!(
            RtpPacket::parse(&good[..11]),
            Err(RtpError::Truncated(_))
        ));
        assert!(RtpPacket::parse(&[]).is_err());

        let mut version_1 = good.clone();
        version_1[0] = (version_1[0] & 0x3f) | 0x40;
        assert_eq!(
            RtpPacket::parse(&version_1),
            Err(RtpError::UnsupportedVersion(1))
        );

        let mut too_many_csrcs = good.clone();
        too_many_csrcs[0] |= 0x0f;
        assert!(matches!(
            RtpPacket::parse(&too_many_csrcs),
            Err(RtpError::Truncated(_))
        ));

        let mut zero_padding = good.clone();
        zero_padding[0] |= 0x20;
        *zero_padding.last_mut().unwrap() = 0;
        assert_eq!(
            RtpPacket::parse(&zero_padding),
            Err(RtpError::BadPadding(0))
        );

        let mut oversized_padding = good.clone();
        oversized_padding[0] |= 0x20;
        *oversized_padding.last_mut().unwrap() = 200;
        assert_eq!(
            RtpPacket::parse(&oversized_padding),
            Err(RtpError::BadPadding(200))
        );

        let mut extension_past_end = good.clone();
        extension_past_end[0] |= 0x10;
        assert!(RtpPacket::parse(&extension_past_end).is_err());

        let rtcp_receiver_report = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            RtpPacket::parse(&rtcp_receiver_report),
            Err(RtpError::LooksLikeRtcp)
        );
    }

    #[test]
    fn truncations_and_bit_flips_never_panic() {
        let good = sample_packet();
        for len in 0..good.len() {
            let _ = RtpPacket::parse(&good[..len]);
        }
        for bit in 0..good.len() * 8 {
            let mut flipped = good.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            if let Ok(packet) = RtpPacket::parse(&flipped) {
                assert!(packet.payload.len() <= flipped.len());
            }
        }
    }

    #[test]
    fn rtcp_is_told_apart_from_rtp_on_a_muxed_port() {
        assert!(is_rtcp(&[0x80, 200]));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
        assert!(is_rtcp(&[0x80, 223]));
        assert!(!is_rtcp(&[0x80, 191]));
        assert!(!is_rtcp(&[0x80, 224]));
        assert!(!is_rtcp(&[0x80, 0x80 | 8]), "PCMA with the marker bit");
        assert!(!is_rtcp(&[0x40, 200]), "version 1");
        assert!(!is_rtcp(&[0x80]));
        assert!(!is_rtcp(&[]));
    }

    #[test]
    fn media_clock_keeps_running_across_pauses() {
        let clock = MediaClock::new(48_000, u32::MAX - 959);
        let frame = Duration::from_millis(20);
        assert_eq!(clock.ticks(frame), 960);
        assert_eq!(clock.timestamp_of_frame(0, frame), u32::MAX - 959);
        assert_eq!(clock.timestamp_of_frame(1, frame), 0, "wraps");
        // Frames 2..=251 were not sent (hold); frame 252 still gets its own time.
        assert_eq!(clock.timestamp_of_frame(252, frame), 251 * 960);
        assert_eq!(
            clock.timestamp_at(Duration::from_secs(5)),
            (u32::MAX - 959).wrapping_add(240_000)
        );
        let narrowband = MediaClock::new(8000, 0);
        assert_eq!(narrowband.timestamp_of_frame(3, frame), 480);
        assert_eq!(narrowband.rate(), 8000);
    }

    /// Feeds packets sent every 20 ms with no network delay variation.
    fn feed(stats: &mut ReceiveStats, sequences: impl IntoIterator<Item = u16>) {
        for sequence in sequences {
            let timestamp = u32::from(sequence).wrapping_mul(FRAME_TICKS);
            stats.update(sequence, timestamp, timestamp.wrapping_add(5000));
        }
    }

    #[test]
    fn probation_then_counting() {
        let mut stats = ReceiveStats::new(1);
        assert!(!stats.update(100, 0, 0), "first packet is on probation");
        assert!(stats.update(101, 960, 960));
        assert_eq!(stats.packets_received(), 1);
        feed(&mut stats, 102..110);
        assert_eq!(stats.packets_received(), 9);
        assert_eq!(stats.extended_highest_sequence(), 109);
        assert_eq!(stats.cumulative_lost(), 0);
    }

    #[test]
    fn sequence_wraps_at_65535() {
        let mut stats = ReceiveStats::new(1);
        feed(&mut stats, (65_530..=65_535).chain(0..5));
        assert_eq!(stats.extended_highest_sequence(), (1 << 16) + 4);
        assert_eq!(stats.packets_received(), 10);
        assert_eq!(stats.cumulative_lost(), 0);
        // A late packet from before the wrap does not count another cycle.
        feed(&mut stats, [65_534]);
        assert_eq!(stats.extended_highest_sequence(), (1 << 16) + 4);
    }

    #[test]
    fn reordering_and_duplicates_are_counted_as_rfc_3550_does() {
        let mut stats = ReceiveStats::new(1);
        feed(&mut stats, [10, 11, 13, 12, 14]);
        assert_eq!(stats.packets_received(), 4);
        assert_eq!(stats.extended_highest_sequence(), 14);
        assert_eq!(stats.cumulative_lost(), 0, "reordered packets are not lost");
        feed(&mut stats, [14, 13]);
        assert_eq!(stats.packets_received(), 6);
        assert_eq!(
            stats.cumulative_lost(),
            -2,
            "duplicates make the loss negative"
        );
        assert_eq!(stats.fraction_lost_since_last_report(), 0);
    }

    #[test]
    fn deterministic_five_percent_loss() {
        let mut stats = ReceiveStats::new(1);
        // Sequence numbers 1..=2000 after the probation packet 0; every 20th one is dropped.
        feed(&mut stats, (0..=2000).filter(|s| s == &0 || s % 20 != 7));
        assert_eq!(stats.cumulative_lost(), 100);
        assert_eq!(stats.packets_received(), 1900);
        // 100 of 2000 = 12.8 / 256, rounded down.
        assert_eq!(stats.fraction_lost_since_last_report(), 12);
        assert_eq!(stats.fraction_lost_since_last_report(), 0, "new interval");
        feed(&mut stats, 2001..=2100);
        feed(&mut stats, 2151..=2200);
        // 50 lost of 200 expected in this interval = 64 / 256.
        assert_eq!(stats.fraction_lost_since_last_report(), 64);
        assert_eq!(stats.cumulative_lost(), 150);
    }

    #[test]
    fn large_jump_needs_two_packets_to_restart() {
        let mut stats = ReceiveStats::new(1);
        feed(&mut stats, 0..50);
        assert!(
            !stats.update(30_000, 0, 0),
            "a stray packet far ahead is ignored"
        );
        assert_eq!(stats.extended_highest_sequence(), 49);
        feed(&mut stats, 50..60);
        assert_eq!(stats.cumulative_lost(), 0);
        assert!(!stats.update(40_000, 0, 0));
        assert!(stats.update(40_001, 960, 960), "the restart is confirmed");
        assert_eq!(stats.extended_highest_sequence(), 40_001);
        assert_eq!(stats.packets_received(), 1);
        feed(&mut stats, 40_002..40_010);
        assert_eq!(stats.cumulative_lost(), 0);
        // A gap within MAX_DROPOUT is loss, not a restart.
        feed(&mut stats, 42_000..42_001);
        assert_eq!(stats.cumulative_lost(), 1990);
    }

    #[test]
    fn cumulative_loss_clamps_to_24_bits() {
        let mut stats = ReceiveStats::new(1);
        feed(&mut stats, [0, 1]);
        let mut sequence: u16 = 1;
        // Only one packet in every 2999 arrives, across many wraps.
        for _ in 0..4000 {
            sequence = sequence.wrapping_add(2999);
            feed(&mut stats, [sequence]);
        }
        assert_eq!(stats.cumulative_lost(), 0x7f_ffff);
    }

    #[test]
    fn jitter_of_constant_delay_is_zero() {
        let mut stats = ReceiveStats::new(1);
        for sequence in 0..500u16 {
            let timestamp = 12_345u32.wrapping_add(u32::from(sequence) * FRAME_TICKS);
            stats.update(sequence, timestamp, timestamp.wrapping_add(77_777));
        }
        assert_eq!(stats.jitter(), 0);
    }

    #[test]
    fn jitter_of_alternating_delay_follows_the_closed_form() {
        // At 48 kHz, ±10 ms around a base delay is ±480 ticks, so every packet's transit
        // differs from the previous one by 960 ticks: J_n = 960 (1 - (15/16)^n).
        let mut stats = ReceiveStats::new(1);
        let base_delay = 4_800u32;
        let mut differences_seen = 0i32;
        for sequence in 0..300u16 {
            let timestamp = u32::from(sequence) * FRAME_TICKS;
            let arrival = if sequence % 2 == 0 {
                timestamp + base_delay + 480
            } else {
                timestamp + base_delay - 480
            };
            let valid = stats.update(sequence, timestamp, arrival);
            // The probation packet is not measured, and the first valid one sets the base.
            if valid && sequence > 1 {
                differences_seen += 1;
            }
            if differences_seen > 0 {
                let expected = 960.0 * (1.0 - (15.0f64 / 16.0).powi(differences_seen));
                let got = f64::from(stats.jitter());
                assert!((got - expected).abs() <= 0.5, "n={differences_seen}");
            }
        }
        assert_eq!(stats.jitter(), 960);
    }

    #[test]
    fn jitter_survives_timestamp_and_arrival_wrap() {
        let mut stats = ReceiveStats::new(1);
        for sequence in 0..100u16 {
            let timestamp = (u32::MAX - 20_000).wrapping_add(u32::from(sequence) * FRAME_TICKS);
            let arrival = (u32::MAX - 3).wrapping_add(u32::from(sequence) * FRAME_TICKS);
            stats.update(sequence, timestamp, arrival);
        }
        assert_eq!(stats.jitter(), 0);
    }
}
