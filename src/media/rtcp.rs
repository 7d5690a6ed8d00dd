//! RTCP (RFC 3550 section 6): compound packets of sender and receiver reports, source
//! descriptions and goodbyes, the state that turns them into LSR/DLSR and round-trip time, and
//! the report interval. The clock is never read here: NTP times and instants come in.

use std::time::{Duration, Instant};

use crate::media::rtp::ReceiveStats;

/// Distance from the NTP epoch (1900) to the Unix epoch (1970), for callers that read a
/// Unix wall clock.
pub const NTP_UNIX_OFFSET: Duration = Duration::from_secs(2_208_988_800);

/// The SDES item that every compound packet carries (RFC 3550 6.5.1).
pub const SDES_CNAME: u8 = 1;

const VERSION: u8 = 2;
const HEADER_LEN: usize = 4;
const REPORT_BLOCK_LEN: usize = 24;
/// The 5-bit count field of the common header.
const MAX_COUNT: usize = 31;

const TYPE_SR: u8 = 200;
const TYPE_RR: u8 = 201;
const TYPE_SDES: u8 = 202;
const TYPE_BYE: u8 = 203;

/// Why bytes were not accepted as RTCP, or packets could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("empty RTCP datagram")]
    Empty,
    #[error("RTCP packet truncated")]
    Truncated,
    #[error("RTCP version {0} is not 2")]
    BadVersion(u8),
    #[error("RTCP length field runs past the datagram")]
    LengthExceedsBuffer,
    #[error("RTCP padding is invalid")]
    BadPadding,
    #[error("RTCP padding on a packet that is not the last of the compound")]
    PaddingNotLast,
    #[error("more than 31 entries for the RTCP count field")]
    TooManyEntries,
    #[error("RTCP text item longer than 255 bytes")]
    TextTooLong,
    #[error("SDES item type 0 is the list terminator")]
    ZeroSdesItem,
    #[error("RTCP packet body is not a whole number of 32-bit words")]
    Unaligned,
    #[error("RTCP packet longer than its 16-bit length field can say")]
    TooLong,
}

/// One reception report block (RFC 3550 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// Signed 24 bits on the wire; larger values are clamped when written.
    pub cumulative_lost: i32,
    pub extended_highest_sequence: u32,
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from that source; 0 if none.
    pub last_sr: u32,
    /// Delay since that SR was received, in 1/65536 s; 0 if none.
    pub delay_since_last_sr: u32,
}

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 32.32 fixed-point seconds since 1900; see [`ntp_from_duration`].
    pub ntp_time: u64,
    /// The same instant as `ntp_time` in the stream's RTP timestamp units.
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderReport {
    pub ssrc: u32,
    pub sender: SenderInfo,
    pub reports: Vec<ReportBlock>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverReport {
    pub ssrc: u32,
    pub reports: Vec<ReportBlock>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesItem {
    /// [`SDES_CNAME`] and the other RFC 3550 6.5 item types.
    pub kind: u8,
    /// Invalid UTF-8 from the peer is replaced, not rejected: a bad NOTE should not cost the
    /// reports that share its datagram.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk {
    pub source: u32,
    pub items: Vec<SdesItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bye {
    pub sources: Vec<u32>,
    pub reason: Option<String>,
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    Sr(SenderReport),
    Rr(ReceiverReport),
    Sdes(Vec<SdesChunk>),
    Bye(Bye),
    /// APP, feedback (RFC 4585), XR and anything newer, kept unparsed: `body` is what follows
    /// the common header, without padding.
    Unknown {
        packet_type: u8,
        count: u8,
        body: Vec<u8>,
    },
}

/// 32.32 fixed-point NTP time from the time elapsed since the NTP epoch. The seconds wrap at
/// 2^32 as the format does (era 1 starts in 2036).
pub fn ntp_from_duration(since_ntp_epoch: Duration) -> u64 {
    let seconds = since_ntp_epoch.as_secs() & 0xffff_ffff;
    let fraction = (u64::from(since_ntp_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// The middle 32 bits of an NTP time: the LSR field's format (16.16 seconds).
pub fn ntp_middle(ntp_time: u64) -> u32 {
    // Shifted right by 16, the truncation keeps exactly the middle bits.
    (ntp_time >> 16) as u32
}

fn duration_to_short_units(duration: Duration) -> u32 {
    let units = duration.as_nanos() * 65_536 / 1_000_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

fn short_units_to_duration(units: u32) -> Duration {
    let nanos = u64::from(units) * 1_000_000_000 / 65_536;
    Duration::from_nanos(nanos)
}

/// The packets of one regular report: an SR if we sent media since the last report, an RR
/// otherwise, then our CNAME (RFC 3550 6.1).
pub fn compound_report(
    ssrc: u32,
    sender: Option<SenderInfo>,
    reports: Vec<ReportBlock>,
    cname: &str,
) -> Vec<RtcpPacket> {
    let report = match sender {
        Some(sender) => RtcpPacket::Sr(SenderReport {
            ssrc,
            sender,
            reports,
        }),
        None => RtcpPacket::Rr(ReceiverReport { ssrc, reports }),
    };
    let sdes = RtcpPacket::Sdes(vec![SdesChunk {
        source: ssrc,
        items: vec![SdesItem {
            kind: SDES_CNAME,
            text: cname.to_owned(),
        }],
    }]);
    vec![report, sdes]
}

/// A final report followed by BYE, which must come last in its compound.
pub fn compound_bye(
    ssrc: u32,
    sender: Option<SenderInfo>,
    reports: Vec<ReportBlock>,
    cname: &str,
    reason: Option<&str>,
) -> Vec<RtcpPacket> {
    let mut packets = compound_report(ssrc, sender, reports, cname);
    packets.push(RtcpPacket::Bye(Bye {
        sources: vec![ssrc],
        reason: reason.map(str::to_owned),
    }));
    packets
}

/// Appends the packets to `out` as one compound datagram. On error `out` is left as it was.
pub fn write(packets: &[RtcpPacket], out: &mut Vec<u8>) -> Result<(), RtcpError> {
    let original_len = out.len();
    let result = packets
        .iter()
        .try_for_each(|packet| write_packet(packet, out));
    if result.is_err() {
        out.truncate(original_len);
    }
    result
}

fn write_packet(packet: &RtcpPacket, out: &mut Vec<u8>) -> Result<(), RtcpError> {
    let start = out.len();
    match packet {
        RtcpPacket::Sr(report) => {
            begin(out, report.reports.len(), TYPE_SR)?;
            push_u32(out, report.ssrc);
            push_u32(out, (report.sender.ntp_time >> 32) as u32);
            push_u32(out, report.sender.ntp_time as u32);
            push_u32(out, report.sender.rtp_timestamp);
            push_u32(out, report.sender.packet_count);
            push_u32(out, report.sender.octet_count);
            report
                .reports
                .iter()
                .for_each(|block| push_block(out, block));
        }
        RtcpPacket::Rr(report) => {
            begin(out, report.reports.len(), TYPE_RR)?;
            push_u32(out, report.ssrc);
            report
                .reports
                .iter()
                .for_each(|block| push_block(out, block));
        }
        RtcpPacket::Sdes(chunks) => {
            begin(out, chunks.len(), TYPE_SDES)?;
            for chunk in chunks {
                push_u32(out, chunk.source);
                for item in &chunk.items {
                    if item.kind == 0 {
                        return Err(RtcpError::ZeroSdesItem);
                    }
                    out.push(item.kind);
                    push_text(out, &item.text)?;
                }
                // At least one null octet ends the item list, more pad to a word boundary.
                out.push(0);
                pad_to_word(out, start);
            }
        }
        RtcpPacket::Bye(bye) => {
            begin(out, bye.sources.len(), TYPE_BYE)?;
            bye.sources.iter().for_each(|source| push_u32(out, *source));
            if let Some(reason) = &bye.reason {
                push_text(out, reason)?;
                pad_to_word(out, start);
            }
        }
        RtcpPacket::Unknown {
            packet_type,
            count,
            body,
        } => {
            begin(out, usize::from(*count), *packet_type)?;
            out.extend_from_slice(body);
            if !body.len().is_multiple_of(4) {
                return Err(RtcpError::Unaligned);
            }
        }
    }
    finish(out, start)
}

fn begin(out: &mut Vec<u8>, count: usize, packet_type: u8) -> Result<(), RtcpError> {
    if count > MAX_COUNT {
        return Err(RtcpError::TooManyEntries);
    }
    // count ≤ 31 was just checked, so it fits the low five bits.
    out.extend_from_slice(&[VERSION << 6 | count as u8, packet_type, 0, 0]);
    Ok(())
}

/// Fills in the length field of the packet that starts at `start`.
fn finish(out: &mut [u8], start: usize) -> Result<(), RtcpError> {
    let packet_len = out.len().saturating_sub(start);
    let words_minus_one =
        u16::try_from((packet_len / 4).saturating_sub(1)).map_err(|_| RtcpError::TooLong)?;
    let length_field = out
        .get_mut(start + 2..start + 4)
        .ok_or(RtcpError::Truncated)?;
    length_field.copy_from_slice(&words_minus_one.to_be_bytes());
    Ok(())
}

fn push_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn push_text(out: &mut Vec<u8>, text: &str) -> Result<(), RtcpError> {
    let len = u8::try_from(text.len()).map_err(|_| RtcpError::TextTooLong)?;
    out.push(len);
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn pad_to_word(out: &mut Vec<u8>, start: usize) {
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
}

fn push_block(out: &mut Vec<u8>, block: &ReportBlock) {
    push_u32(out, block.ssrc);
    let lost = block.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
    push_u32(out, u32::from(block.fraction_lost) << 24 | lost);
    push_u32(out, block.extended_highest_sequence);
    push_u32(out, block.jitter);
    push_u32(out, block.last_sr);
    push_u32(out, block.delay_since_last_sr);
}

/// A bounds-checked reader over one packet body.
struct Fields<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], RtcpError> {
        let end = self.position.checked_add(len).ok_or(RtcpError::Truncated)?;
        let taken = self
            .bytes
            .get(self.position..end)
            .ok_or(RtcpError::Truncated)?;
        self.position = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, RtcpError> {
        let byte = self.take(1)?;
        byte.first().copied().ok_or(RtcpError::Truncated)
    }

    fn u32(&mut self) -> Result<u32, RtcpError> {
        let word: [u8; 4] = self.take(4)?.try_into().map_err(|_| RtcpError::Truncated)?;
        Ok(u32::from_be_bytes(word))
    }

    fn text(&mut self) -> Result<String, RtcpError> {
        let len = self.u8()?;
        let text = self.take(usize::from(len))?;
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }

    fn skip_to_word(&mut self) -> Result<(), RtcpError> {
        let misalignment = self.position % 4;
        if misalignment != 0 {
            self.take(4 - misalignment)?;
        }
        Ok(())
    }
}

/// Parses one compound datagram. The lengths of its packets must add up to the datagram
/// exactly, every packet must be version 2, and only the last may carry padding (RFC 3550
/// A.2). The first packet is not required to be a report, so reduced-size RTCP (RFC 5506)
/// from a peer still parses.
pub fn parse(bytes: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if bytes.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut packets = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let header = rest.get(..HEADER_LEN).ok_or(RtcpError::Truncated)?;
        let [first, packet_type, length_high, length_low] = header else {
            return Err(RtcpError::Truncated);
        };
        let version = first >> 6;
        if version != VERSION {
            return Err(RtcpError::BadVersion(version));
        }
        let has_padding = first & 0x20 != 0;
        let count = first & 0x1f;
        let words = usize::from(u16::from_be_bytes([*length_high, *length_low])) + 1;
        let packet = rest
            .get(..words * 4)
            .ok_or(RtcpError::LengthExceedsBuffer)?;
        rest = rest.get(words * 4..).unwrap_or_default();

        let mut body = packet.get(HEADER_LEN..).unwrap_or_default();
        if has_padding {
            if !rest.is_empty() {
                return Err(RtcpError::PaddingNotLast);
            }
            let padding = usize::from(*body.last().ok_or(RtcpError::BadPadding)?);
            if padding == 0 || padding > body.len() {
                return Err(RtcpError::BadPadding);
            }
            body = body.get(..body.len() - padding).unwrap_or_default();
        }
        packets.push(parse_packet(*packet_type, count, body)?);
    }
    Ok(packets)
}

fn parse_packet(packet_type: u8, count: u8, body: &[u8]) -> Result<RtcpPacket, RtcpError> {
    let mut fields = Fields::new(body);
    let count = usize::from(count);
    Ok(match packet_type {
        TYPE_SR => {
            let ssrc = fields.u32()?;
            let ntp_high = fields.u32()?;
            let ntp_low = fields.u32()?;
            let sender = SenderInfo {
                ntp_time: u64::from(ntp_high) << 32 | u64::from(ntp_low),
                rtp_timestamp: fields.u32()?,
                packet_count: fields.u32()?,
                octet_count: fields.u32()?,
            };
            // Anything after the blocks is a profile-specific extension, ignored.
            let reports = parse_blocks(&mut fields, count)?;
            RtcpPacket::Sr(SenderReport {
                ssrc,
                sender,
                reports,
            })
        }
        TYPE_RR => {
            let ssrc = fields.u32()?;
            let reports = parse_blocks(&mut fields, count)?;
            RtcpPacket::Rr(ReceiverReport { ssrc, reports })
        }
        TYPE_SDES => {
            let mut chunks = Vec::with_capacity(count);
            for _ in 0..count {
                chunks.push(parse_chunk(&mut fields)?);
            }
            RtcpPacket::Sdes(chunks)
        }
        TYPE_BYE => {
            let mut sources = Vec::with_capacity(count);
            for _ in 0..count {
                sources.push(fields.u32()?);
            }
            let reason = if fields.remaining() > 0 {
                Some(fields.text()?)
            } else {
                None
            };
            RtcpPacket::Bye(Bye { sources, reason })
        }
        _ => RtcpPacket::Unknown {
            packet_type,
            // `count` came from five bits.
            count: count as u8,
            body: body.to_vec(),
        },
    })
}

fn parse_blocks(fields: &mut Fields<'_>, count: usize) -> Result<Vec<ReportBlock>, RtcpError> {
    if fields.remaining() < count * REPORT_BLOCK_LEN {
        return Err(RtcpError::Truncated);
    }
    let mut blocks = Vec::with_capacity(count);
    for _ in 0..count {
        let ssrc = fields.u32()?;
        let loss = fields.u32()?;
        // Sign-extends the 24-bit cumulative loss.
        let cumulative_lost = ((loss << 8) as i32) >> 8;
        blocks.push(ReportBlock {
            ssrc,
            fraction_lost: (loss >> 24) as u8,
            cumulative_lost,
            extended_highest_sequence: fields.u32()?,
            jitter: fields.u32()?,
            last_sr: fields.u32()?,
            delay_since_last_sr: fields.u32()?,
        });
    }
    Ok(blocks)
}

fn parse_chunk(fields: &mut Fields<'_>) -> Result<SdesChunk, RtcpError> {
    let source = fields.u32()?;
    let mut items = Vec::new();
    loop {
        let kind = fields.u8()?;
        if kind == 0 {
            fields.skip_to_word()?;
            return Ok(SdesChunk { source, items });
        }
        let text = fields.text()?;
        items.push(SdesItem { kind, text });
    }
}

/// The last SR received, to answer it with LSR/DLSR.
#[derive(Debug, Clone, Copy)]
struct ReceivedSr {
    ssrc: u32,
    ntp_middle: u32,
    arrival: Instant,
}

/// What one side of an RTCP session remembers between reports.
#[derive(Debug, Clone)]
pub struct RtcpState {
    local_ssrc: u32,
    last_sr: Option<ReceivedSr>,
    round_trip_time: Option<Duration>,
}

impl RtcpState {
    pub fn new(local_ssrc: u32) -> Self {
        Self {
            local_ssrc,
            last_sr: None,
            round_trip_time: None,
        }
    }

    /// Takes in a parsed compound: remembers the latest SR, and measures the round trip from
    /// any report block about our own stream. `arrival_ntp` is the wall-clock arrival time in
    /// NTP format, the clock our SRs were stamped with.
    pub fn on_receive(&mut self, packets: &[RtcpPacket], arrival: Instant, arrival_ntp: u64) {
        for packet in packets {
            let reports = match packet {
                RtcpPacket::Sr(report) => {
                    self.on_sender_report(report, arrival);
                    &report.reports
                }
                RtcpPacket::Rr(report) => &report.reports,
                _ => continue,
            };
            let measured = reports
                .iter()
                .filter(|block| block.ssrc == self.local_ssrc)
                .find_map(|block| Self::round_trip_time(block, arrival_ntp));
            if measured.is_some() {
                self.round_trip_time = measured;
            }
        }
    }

    pub fn on_sender_report(&mut self, report: &SenderReport, arrival: Instant) {
        self.last_sr = Some(ReceivedSr {
            ssrc: report.ssrc,
            ntp_middle: ntp_middle(report.sender.ntp_time),
            arrival,
        });
    }

    /// The report block about the source `stats` describes, as of `now`. Closes the loss
    /// interval of `stats`, so build one block per source per report.
    pub fn report_block(&self, stats: &mut ReceiveStats, now: Instant) -> ReportBlock {
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some(sr) if sr.ssrc == stats.ssrc() => (
                sr.ntp_middle,
                duration_to_short_units(now.saturating_duration_since(sr.arrival)),
            ),
            _ => (0, 0),
        };
        ReportBlock {
            ssrc: stats.ssrc(),
            fraction_lost: stats.fraction_lost_since_last_report(),
            cumulative_lost: stats.cumulative_lost(),
            extended_highest_sequence: stats.extended_highest_sequence(),
            jitter: stats.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }

    /// RFC 3550 6.4.1: RTT = A − LSR − DLSR in 1/65536 s. `None` when the block reflects no
    /// SR of ours, or when the result is negative (the clocks are not trustworthy).
    pub fn round_trip_time(block: &ReportBlock, arrival_ntp: u64) -> Option<Duration> {
        if block.last_sr == 0 {
            return None;
        }
        let units = ntp_middle(arrival_ntp)
            .wrapping_sub(block.last_sr)
            .wrapping_sub(block.delay_since_last_sr);
        if units >= 1 << 31 {
            return None;
        }
        Some(short_units_to_duration(units))
    }

    /// The latest round-trip time measured by [`Self::on_receive`].
    pub fn rtt(&self) -> Option<Duration> {
        self.round_trip_time
    }
}

/// Time until the next report for a two-party session (RFC 3550 6.2 and 6.3 simplified: the
/// bandwidth share never exceeds the 5 s minimum with two members): 5 s, or 2.5 s before the
/// first report, scaled by a factor in [0.5, 1.5) taken from `random`, which the caller draws.
/// The e − 3/2 compensation belongs to timer reconsideration, which a two-party call skips.
pub fn report_interval(random: u32, first: bool) -> Duration {
    let nominal_ms: u64 = if first { 2_500 } else { 5_000 };
    let nanos = u128::from(nominal_ms * 1_000_000);
    let scaled = (nanos * (u128::from(random) + (1 << 31))) >> 32;
    Duration::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX))
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

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: 0x5566_7788,
            fraction_lost: 0x40,
            cumulative_lost: -3,
            extended_highest_sequence: 0x0001_0005,
            jitter: 0x20,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 0x0001_0000,
        }
    }

    fn bytes_of(packets: &[RtcpPacket]) -> Vec<u8> {
        let mut out = Vec::new();
        write(packets, &mut out).unwrap();
        out
    }

    #[test]
    fn sender_report_byte_layout() {
        let packets = [RtcpPacket::Sr(SenderReport {
            ssrc: 0x1122_3344,
            sender: SenderInfo {
                ntp_time: 0xaabb_ccdd_eeff_0011,
                rtp_timestamp: 0x0102_0304,
                packet_count: 5,
                octet_count: 800,
            },
            reports: vec![block()],
        })];
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            // V=2 P=0 RC=1 | PT=200 | length = 13 words - 1
            0x81, 200, 0x00, 12,
            0x11, 0x22, 0x33, 0x44, // SSRC of sender
            0xaa, 0xbb, 0xcc, 0xdd, // NTP timestamp, most significant word
            0xee, 0xff, 0x00, 0x11, // NTP timestamp, least significant word
            0x01, 0x02, 0x03, 0x04, // RTP timestamp
            0x00, 0x00, 0x00, 0x05, // sender's packet count
            0x00, 0x00, 0x03, 0x20, // sender's octet count
            0x55, 0x66, 0x77, 0x88, // SSRC_1
            0x40, 0xff, 0xff, 0xfd, // fraction lost | cumulative lost (-3, 24-bit)
            0x00, 0x01, 0x00, 0x05, // extended highest sequence number
            0x00, 0x00, 0x00, 0x20, // interarrival jitter
            0x12, 0x34, 0x56, 0x78, // LSR
            0x00, 0x01, 0x00, 0x00, // DLSR
        ];
        assert_eq!(bytes_of(&packets), expected);
        assert_eq!(parse(&expected).unwrap(), packets.to_vec());
    }

    #[test]
    fn compound_report_layout_with_cname() {
        let packets = compound_report(0x0102_0304, None, vec![], "ab");
        let bytes = bytes_of(&packets);
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0x80, 201, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04, // RR, no blocks
            0x81, 202, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04, // SDES, one chunk
            1, 2, b'a', b'b', 0, 0, 0, 0, // CNAME "ab", null item, padding to a word
        ];
        assert_eq!(bytes, expected);
        assert_eq!(parse(&bytes).unwrap(), packets);
    }

    #[test]
    fn round_trips_for_every_packet_kind() {
        let sender = SenderInfo {
            ntp_time: ntp_from_duration(Duration::from_millis(3_900_000_123_456)),
            rtp_timestamp: 123_456,
            packet_count: 1000,
            octet_count: 160_000,
        };
        let mut blocks = vec![block(); 31];
        blocks[3].cumulative_lost = 0x7f_ffff;
        blocks[4].cumulative_lost = -0x80_0000;
        let cases = [
            compound_report(1, Some(sender), vec![block()], "user@host"),
            compound_report(2, None, blocks, "x"),
            compound_report(3, Some(sender), vec![], ""),
            compound_bye(4, None, vec![block()], "cname", Some("hanging up")),
            compound_bye(5, Some(sender), vec![], "c", None),
            vec![
                RtcpPacket::Rr(ReceiverReport {
                    ssrc: 6,
                    reports: vec![],
                }),
                RtcpPacket::Sdes(vec![
                    SdesChunk {
                        source: 6,
                        items: vec![
                            SdesItem {
                                kind: SDES_CNAME,
                                text: "abc".into(),
                            },
                            SdesItem {
                                kind: 6,
                                text: "verbatim ☎".into(),
                            },
                        ],
                    },
                    SdesChunk {
                        source: 7,
                        items: vec![],
                    },
                ]),
                RtcpPacket::Unknown {
                    packet_type: 206,
                    count: 1,
                    body: vec![0, 0, 0, 6, 0, 0, 0, 9],
                },
                RtcpPacket::Bye(Bye {
                    sources: vec![6, 7],
                    reason: Some("x".repeat(255)),
                }),
            ],
        ];
        for packets in cases {
            let bytes = bytes_of(&packets);
            assert_eq!(bytes.len() % 4, 0);
            assert_eq!(parse(&bytes).unwrap(), packets);
        }
    }

    #[test]
    fn writing_refuses_what_the_format_cannot_hold() {
        let mut out = vec![9];
        let too_many = compound_report(1, None, vec![block(); 32], "c");
        assert_eq!(write(&too_many, &mut out), Err(RtcpError::TooManyEntries));
        let long_name = compound_report(1, None, vec![], &"n".repeat(256));
        assert_eq!(write(&long_name, &mut out), Err(RtcpError::TextTooLong));
        let unaligned = [RtcpPacket::Unknown {
            packet_type: 204,
            count: 0,
            body: vec![1, 2, 3],
        }];
        assert_eq!(write(&unaligned, &mut out), Err(RtcpError::Unaligned));
        let terminator_item = [RtcpPacket::Sdes(vec![SdesChunk {
            source: 1,
            items: vec![SdesItem {
                kind: 0,
                text: String::new(),
            }],
        }])];
        assert_eq!(
            write(&terminator_item, &mut out),
            Err(RtcpError::ZeroSdesItem)
        );
        assert_eq!(out, vec![9], "a failed write leaves the buffer as it was");
    }

    #[test]
    fn strict_length_version_and_padding_checks() {
        let good = bytes_of(&compound_report(1, None, vec![block()], "c"));
        assert!(parse(&good).is_ok());
        assert_eq!(parse(&[]), Err(RtcpError::Empty));

        let mut long_length = good.clone();
        long_length[3] += 1;
        assert!(parse(&long_length).is_err());

        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0x80, 201]);
        assert_eq!(parse(&trailing), Err(RtcpError::Truncated));

        let mut version_1 = good.clone();
        version_1[0] = 0x41;
        assert_eq!(parse(&version_1), Err(RtcpError::BadVersion(1)));

        let mut too_many_blocks = good.clone();
        too_many_blocks[0] = 0x82;
        assert_eq!(parse(&too_many_blocks), Err(RtcpError::Truncated));

        let mut padded_first = good.clone();
        padded_first[0] |= 0x20;
        assert_eq!(parse(&padded_first), Err(RtcpError::PaddingNotLast));

        // A BYE with four bytes of padding at the end is fine; padding counts of 0 or more
        // than the body are not.
        let mut padded_last = good.clone();
        padded_last.extend_from_slice(&[0xa1, 203, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4]);
        let packets = parse(&padded_last).unwrap();
        assert_eq!(
            packets.last(),
            Some(&RtcpPacket::Bye(Bye {
                sources: vec![1],
                reason: None
            }))
        );
        let mut zero_padding = padded_last.clone();
        *zero_padding.last_mut().unwrap() = 0;
        assert_eq!(parse(&zero_padding), Err(RtcpError::BadPadding));
        let mut huge_padding = padded_last.clone();
        *huge_padding.last_mut().unwrap() = 9;
        assert_eq!(parse(&huge_padding), Err(RtcpError::BadPadding));

        // SDES item running past its packet.
        let bad_sdes = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, b'a', b'b'];
        assert_eq!(parse(&bad_sdes), Err(RtcpError::Truncated));
        // BYE reason longer than the packet.
        let bad_bye = [0x81, 203, 0, 2, 0, 0, 0, 1, 7, b'a', b'b', b'c'];
        assert_eq!(parse(&bad_bye), Err(RtcpError::Truncated));
    }

    #[test]
    fn report_profile_extension_is_ignored() {
        let mut bytes = bytes_of(&[RtcpPacket::Rr(ReceiverReport {
            ssrc: 1,
            reports: vec![],
        })]);
        bytes[3] = 2;
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        let expected = vec![RtcpPacket::Rr(ReceiverReport {
            ssrc: 1,
            reports: vec![],
        })];
        assert_eq!(parse(&bytes).unwrap(), expected);
    }

    #[test]
    fn truncations_bit_flips_and_noise_never_panic() {
        let sender = SenderInfo {
            ntp_time: 1 << 40,
            rtp_timestamp: 7,
            packet_count: 8,
            octet_count: 9,
        };
        let mut good = bytes_of(&compound_bye(
            1,
            Some(sender),
            vec![block(); 2],
            "me",
            Some("x"),
        ));
        good.extend_from_slice(&[0xa0, 204, 0, 1, 0, 0, 0, 4]);
        assert!(parse(&good).is_ok());
        for len in 0..good.len() {
            let result = parse(&good[..len]);
            // Packets are whole words, so a cut inside a word can never parse.
            if len % 4 != 0 {
                assert!(result.is_err(), "truncated to {len}");
            }
        }
        for bit in 0..good.len() * 8 {
            let mut flipped = good.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let _ = parse(&flipped);
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 64) as usize;
            let mut noise: Vec<u8> = (0..len)
                .map(|i| (state >> ((i % 8) * 8)) as u8 ^ i as u8)
                .collect();
            if let Some(first) = noise.first_mut() {
                *first = 0x80 | (*first & 0x3f);
            }
            let _ = parse(&noise);
        }
    }

    #[test]
    fn ntp_conversions() {
        let ntp = ntp_from_duration(Duration::new(0x1234_5678, 500_000_000));
        assert_eq!(ntp, 0x1234_5678_8000_0000);
        assert_eq!(ntp_middle(ntp), 0x5678_8000);
        assert_eq!(
            ntp_from_duration(Duration::from_secs(1 << 32)),
            0,
            "era wrap"
        );
        assert_eq!(NTP_UNIX_OFFSET.as_secs(), 2_208_988_800);
    }

    #[test]
    fn round_trip_time_from_known_lsr_and_dlsr() {
        // RFC 3550 6.4.1 example: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000
        // (46853.125 s), DLSR = 0x0005:4000 (5.250 s): RTT = 6.125 s.
        let block = ReportBlock {
            last_sr: 0xb705_2000,
            delay_since_last_sr: 0x0005_4000,
            ..ReportBlock::default()
        };
        let arrival = 0xb710_8000u64 << 16;
        assert_eq!(
            RtcpState::round_trip_time(&block, arrival),
            Some(Duration::from_millis(6125))
        );
        let no_sr = ReportBlock::default();
        assert_eq!(RtcpState::round_trip_time(&no_sr, arrival), None);
        let from_the_future = ReportBlock {
            last_sr: 0xb711_0000,
            ..ReportBlock::default()
        };
        assert_eq!(RtcpState::round_trip_time(&from_the_future, arrival), None);
    }

    #[test]
    fn state_fills_lsr_dlsr_and_measures_rtt() {
        let origin = Instant::now();
        let ours = 0xaaaa;
        let theirs = 0xbbbb;
        let mut state = RtcpState::new(ours);
        let mut stats = ReceiveStats::new(theirs);
        for sequence in 0..10u16 {
            stats.update(
                sequence,
                u32::from(sequence) * 960,
                u32::from(sequence) * 960,
            );
        }
        let before = state.report_block(&mut stats, origin);
        assert_eq!((before.last_sr, before.delay_since_last_sr), (0, 0));
        assert_eq!(before.ssrc, theirs);
        assert_eq!(before.extended_highest_sequence, 9);

        let their_ntp = ntp_from_duration(Duration::new(3_900_000_000, 250_000_000));
        let their_sr = compound_report(
            theirs,
            Some(SenderInfo {
                ntp_time: their_ntp,
                ..SenderInfo::default()
            }),
            vec![],
            "them",
        );
        state.on_receive(&their_sr, origin, 0);
        let after = state.report_block(&mut stats, origin + Duration::from_millis(1500));
        assert_eq!(after.last_sr, ntp_middle(their_ntp));
        assert_eq!(after.delay_since_last_sr, 98_304, "1.5 s in 1/65536 s");

        // A block about some other source does not get our LSR.
        let mut other = ReceiveStats::new(0xcccc);
        assert_eq!(state.report_block(&mut other, origin).last_sr, 0);

        // Their RR reflects our SR sent at 100 s, held 0.5 s, and arrives at 100.75 s.
        let our_sr_ntp = ntp_from_duration(Duration::from_secs(100));
        let reflected = ReportBlock {
            ssrc: ours,
            last_sr: ntp_middle(our_sr_ntp),
            delay_since_last_sr: 32_768,
            ..ReportBlock::default()
        };
        let not_ours = ReportBlock {
            ssrc: 0x1234,
            last_sr: 1,
            ..ReportBlock::default()
        };
        let their_rr = [RtcpPacket::Rr(ReceiverReport {
            ssrc: theirs,
            reports: vec![not_ours, reflected],
        })];
        assert_eq!(state.rtt(), None);
        state.on_receive(
            &their_rr,
            origin,
            ntp_from_duration(Duration::from_millis(100_750)),
        );
        assert_eq!(state.rtt(), Some(Duration::from_millis(250)));
    }

    #[test]
    fn report_interval_spans_half_to_one_and_a_half_nominal() {
        assert_eq!(report_interval(0, false), Duration::from_millis(2500));
        assert_eq!(report_interval(1 << 31, false), Duration::from_secs(5));
        let top = report_interval(u32::MAX, false);
        assert!(top < Duration::from_millis(7500) && top > Duration::from_millis(7499));
        assert_eq!(report_interval(0, true), Duration::from_millis(1250));
        assert_eq!(report_interval(1 << 31, true), Duration::from_millis(2500));
    }
}
