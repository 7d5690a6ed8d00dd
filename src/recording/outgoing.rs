//! What leaves for the recorder on one stream, whether its packets are copies of the call's
//! or encoded here: RTP with the stream's own SSRC and sequence, SRTP with the recording's
//! own keys, and the stream's RTCP (sender reports, BYE), protected the same way.

use core::net::SocketAddr;
use std::time::Instant;

use crate::media::rtcp::{self, ReportBlock, RtcpPacket};
use crate::media::rtp::RtpSender;
use crate::media::srtp::SrtpSession;
use crate::recording::stream_reports::StreamReports;

/// How one recording stream starts.
#[derive(Debug)]
pub struct OutgoingSetup {
    pub destination: SocketAddr,
    /// Where its RTCP goes: the recorder's `a=rtcp`, or the next port up (RFC 3550 11).
    pub rtcp_destination: SocketAddr,
    pub ssrc: u32,
    pub initial_sequence: u16,
    pub initial_timestamp: u32,
    /// The RTP clock of the stream's codec.
    pub clock_rate: u32,
    /// The recording's CNAME, the same on each of its streams.
    pub cname: String,
    pub srtp: Option<SrtpSession>,
    pub now: Instant,
    /// Seeds the spread of the report times.
    pub rtcp_random: u32,
}

#[derive(Debug)]
pub struct Outgoing {
    pub destination: SocketAddr,
    pub rtcp_destination: SocketAddr,
    sender: RtpSender,
    srtp: Option<SrtpSession>,
    reports: StreamReports,
    packet: Vec<u8>,
    sent: u64,
}

impl Outgoing {
    pub fn new(setup: OutgoingSetup) -> Outgoing {
        Outgoing {
            destination: setup.destination,
            rtcp_destination: setup.rtcp_destination,
            sender: RtpSender::new(setup.ssrc, setup.initial_sequence, setup.initial_timestamp),
            srtp: setup.srtp,
            reports: StreamReports::new(
                setup.ssrc,
                setup.clock_rate,
                setup.cname,
                setup.now,
                setup.rtcp_random,
            ),
            packet: Vec::with_capacity(1500),
            sent: 0,
        }
    }

    /// The packet to send for one payload, protected when the stream is SRTP; None when it
    /// cannot be built or protected (nothing is counted then).
    pub fn packet(
        &mut self,
        now: Instant,
        payload_type: u8,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Option<Vec<u8>> {
        self.sender
            .build(payload_type, timestamp, marker, payload, &mut self.packet)
            .ok()?;
        let data = match self.srtp.as_mut() {
            Some(srtp) => srtp.protect_rtp(&self.packet).ok()?,
            None => self.packet.clone(),
        };
        self.reports.on_sent(now, timestamp, payload.len());
        self.sent += 1;
        Some(data)
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The stream's sender report when one is due (`ntp_now`: the wall clock at `now`).
    pub fn report_due(&mut self, now: Instant, ntp_now: u64) -> Option<Vec<u8>> {
        let report = self.reports.due(now, ntp_now)?;
        self.protect_rtcp(report)
    }

    /// The stream's last report and BYE.
    pub fn bye(&mut self, now: Instant, ntp_now: u64, reason: &str) -> Option<Vec<u8>> {
        let bye = self.reports.bye(now, ntp_now, reason)?;
        self.protect_rtcp(bye)
    }

    pub fn ssrc(&self) -> u32 {
        self.reports.ssrc()
    }

    /// The reception report blocks in RTCP the recorder sent back, when it reads as RTCP
    /// under this stream's keys (SRTCP for an SRTP stream); None otherwise.
    pub fn reception_reports(&mut self, data: &[u8]) -> Option<Vec<ReportBlock>> {
        let plain = match self.srtp.as_mut() {
            Some(srtp) => srtp.unprotect_rtcp(data).ok()?,
            None => data.to_vec(),
        };
        let packets = rtcp::parse(&plain).ok()?;
        Some(
            packets
                .into_iter()
                .flat_map(|packet| match packet {
                    RtcpPacket::Sr(sr) => sr.reports,
                    RtcpPacket::Rr(rr) => rr.reports,
                    _ => Vec::new(),
                })
                .collect(),
        )
    }

    fn protect_rtcp(&mut self, data: Vec<u8>) -> Option<Vec<u8>> {
        match self.srtp.as_mut() {
            Some(srtp) => srtp.protect_rtcp(&data).ok(),
            None => Some(data),
        }
    }
}
