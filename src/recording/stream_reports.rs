//! RTCP for one recording stream (RFC 3550 6.4.1): sender reports that tie the stream's RTP
//! clock to wall-clock NTP time, so a recorder can line up the call's two sides (each stream
//! starts at its own random timestamp), with the recording's CNAME in SDES, and a BYE when
//! the stream ends. The same CNAME on every stream of a recording tells the recorder they
//! come from one sender with one clock (RFC 3550 6.5.1), which is what makes the alignment
//! valid.

use std::time::Instant;

use crate::media::rtcp::{self, SenderInfo};

/// What a stream has sent, and when its next report is due.
#[derive(Debug)]
pub struct StreamReports {
    ssrc: u32,
    clock_rate: u32,
    cname: String,
    packets: u32,
    octets: u32,
    /// When the latest packet went out, and its RTP timestamp.
    latest: Option<(Instant, u32)>,
    next_at: Instant,
    random: u32,
}

impl StreamReports {
    /// `random` seeds the report timing (RFC 3550 6.2: spread over [0.5, 1.5) of the interval).
    pub fn new(ssrc: u32, clock_rate: u32, cname: String, now: Instant, random: u32) -> Self {
        let random = random | 1;
        StreamReports {
            ssrc,
            clock_rate,
            cname,
            packets: 0,
            octets: 0,
            latest: None,
            next_at: now + rtcp::report_interval(random, true),
            random,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// One RTP packet sent: its timestamp and payload length (the octet count leaves out
    /// headers and padding, RFC 3550 6.4.1).
    pub fn on_sent(&mut self, now: Instant, rtp_timestamp: u32, payload_len: usize) {
        self.packets = self.packets.wrapping_add(1);
        let payload = u32::try_from(payload_len).unwrap_or(u32::MAX);
        self.octets = self.octets.wrapping_add(payload);
        self.latest = Some((now, rtp_timestamp));
    }

    /// The compound report (SR and SDES) due at `now`, if one is; `ntp_now` is the wall
    /// clock at `now`. Nothing before the first packet: an SR needs a timestamp to map.
    pub fn due(&mut self, now: Instant, ntp_now: u64) -> Option<Vec<u8>> {
        // Before the first packet the interval is not used up: the first report goes out with
        // the first tick after something was sent.
        if now < self.next_at || self.latest.is_none() {
            return None;
        }
        self.random = xorshift(self.random);
        self.next_at = now + rtcp::report_interval(self.random, false);
        let sender = self.sender_info(now, ntp_now)?;
        let packets = rtcp::compound_report(self.ssrc, Some(sender), Vec::new(), &self.cname);
        let mut data = Vec::new();
        rtcp::write(&packets, &mut data).ok()?;
        Some(data)
    }

    /// The last report and BYE (RFC 3550 6.6), once anything was sent.
    pub fn bye(&self, now: Instant, ntp_now: u64, reason: &str) -> Option<Vec<u8>> {
        let sender = self.sender_info(now, ntp_now)?;
        let packets = rtcp::compound_bye(
            self.ssrc,
            Some(sender),
            Vec::new(),
            &self.cname,
            Some(reason),
        );
        let mut data = Vec::new();
        rtcp::write(&packets, &mut data).ok()?;
        Some(data)
    }

    /// The RTP timestamp `now` would carry: the latest packet's, moved on by the time since
    /// it was sent at the stream's clock rate.
    fn sender_info(&self, now: Instant, ntp_now: u64) -> Option<SenderInfo> {
        let (sent_at, timestamp) = self.latest?;
        let elapsed = now.saturating_duration_since(sent_at);
        let ticks = elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        // RTP timestamps wrap at 2^32 (RFC 3550 5.1): so does the extrapolation.
        let ticks = (ticks & u128::from(u32::MAX)) as u32;
        Some(SenderInfo {
            ntp_time: ntp_now,
            rtp_timestamp: timestamp.wrapping_add(ticks),
            packet_count: self.packets,
            octet_count: self.octets,
        })
    }
}

fn xorshift(mut x: u32) -> u32 {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    x
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;
    use crate::media::rtcp::{RtcpPacket, SDES_CNAME};

    #[test]
    fn reports_map_wall_clock_to_the_streams_rtp_clock_and_end_with_bye() {
        let start = Instant::now();
        let mut reports = StreamReports::new(0x1234, 8000, "rec@verbatim".into(), start, 99);
        assert!(
            reports
                .due(start + Duration::from_secs(10), 1 << 32)
                .is_none(),
            "nothing sent, nothing to map"
        );
        for n in 0..50u32 {
            let at = start + Duration::from_millis(20 * u64::from(n)) + Duration::from_secs(10);
            reports.on_sent(at, 1000 + 160 * n, 160);
        }
        let last_sent = start + Duration::from_millis(980) + Duration::from_secs(10);
        let now = last_sent + Duration::from_millis(100);
        let ntp_now = rtcp::ntp_from_duration(Duration::from_secs(3_900_000_000));
        let data = reports.due(now, ntp_now).expect("a report is due");
        let packets = rtcp::parse(&data).unwrap();
        let RtcpPacket::Sr(sr) = &packets[0] else {
            panic!("a sender report first: {packets:?}")
        };
        assert_eq!(sr.ssrc, 0x1234);
        assert_eq!(sr.sender.ntp_time, ntp_now);
        assert_eq!(
            sr.sender.rtp_timestamp,
            1000 + 160 * 49 + 800,
            "100 ms after the last packet, at 8 kHz"
        );
        assert_eq!((sr.sender.packet_count, sr.sender.octet_count), (50, 8000));
        let RtcpPacket::Sdes(chunks) = &packets[1] else {
            panic!("SDES second")
        };
        assert_eq!(chunks[0].items[0].kind, SDES_CNAME);
        assert_eq!(chunks[0].items[0].text, "rec@verbatim");
        assert!(reports.due(now, ntp_now).is_none(), "not again at once");
        let bye = rtcp::parse(&reports.bye(now, ntp_now, "call ended").unwrap()).unwrap();
        assert!(
            matches!(bye.last(), Some(RtcpPacket::Bye(b)) if b.sources == vec![0x1234]),
            "{bye:?}"
        );
    }

    #[test]
    fn the_extrapolated_timestamp_wraps_as_rtp_does() {
        let start = Instant::now();
        let mut reports = StreamReports::new(1, 48_000, "c".into(), start, 5);
        reports.on_sent(start, u32::MAX - 10, 100);
        let info = reports
            .sender_info(start + Duration::from_millis(1), 0)
            .unwrap();
        assert_eq!(info.rtp_timestamp, 37, "48 ticks past u32::MAX - 10");
    }
}
