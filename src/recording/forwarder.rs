//! One recording stream: copies of one side of the call, re-stamped with the stream's own
//! SSRC, sequence numbers and timestamp base, protected with the recording's own SRTP keys
//! (RFC 7866 8.2.1: the SRC acts as an RTP translator when the SRS takes the call's codec).

use std::time::Instant;

use crate::media::session::{TapSide, TappedPacket};
use crate::recording::outgoing::{Outgoing, OutgoingSetup};

#[derive(Debug)]
pub struct Forwarder {
    pub side: TapSide,
    pub out: Outgoing,
    /// The call's payload types and the recording's, for the codec and telephone-events.
    payload_types: Vec<(u8, u8)>,
    /// Added to the call's timestamps, so the recording's timeline has its own random base
    /// yet keeps the call's spacing, pauses included (RFC 7245 3.2.3).
    timestamp_offset: u32,
    paused: bool,
}

impl Forwarder {
    /// `setup.initial_timestamp` is the offset added to the call's timestamps.
    pub fn new(side: TapSide, payload_types: Vec<(u8, u8)>, setup: OutgoingSetup) -> Forwarder {
        Forwarder {
            side,
            timestamp_offset: setup.initial_timestamp,
            out: Outgoing::new(setup),
            payload_types,
            paused: false,
        }
    }

    /// Pausing stops sending at once: nothing said during a pause reaches the recorder.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    pub fn forwarded(&self) -> u64 {
        self.out.sent()
    }

    /// The recording's packet for a tapped call packet, or None when it is not for this
    /// stream, the stream is paused, or its payload type was not negotiated.
    pub fn forward(&mut self, now: Instant, tapped: &TappedPacket) -> Option<Vec<u8>> {
        if tapped.side != self.side || self.paused {
            return None;
        }
        let payload_type = self
            .payload_types
            .iter()
            .find(|(call, _)| *call == tapped.payload_type)
            .map(|(_, recording)| *recording)?;
        let timestamp = tapped.timestamp.wrapping_add(self.timestamp_offset);
        self.out
            .packet(now, payload_type, timestamp, tapped.marker, &tapped.payload)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::media::rtp::RtpPacket;

    pub(crate) fn setup(ssrc: u32, initial_sequence: u16, initial_timestamp: u32) -> OutgoingSetup {
        OutgoingSetup {
            destination: "127.0.0.1:7000".parse().unwrap(),
            rtcp_destination: "127.0.0.1:7001".parse().unwrap(),
            ssrc,
            initial_sequence,
            initial_timestamp,
            clock_rate: 8000,
            cname: "test@verbatim".into(),
            srtp: None,
            now: Instant::now(),
            rtcp_random: 1,
        }
    }

    fn tapped(side: TapSide, sequence_hint: u32) -> TappedPacket {
        TappedPacket {
            side,
            payload_type: 0,
            timestamp: 1000 + sequence_hint * 160,
            marker: sequence_hint == 0,
            payload: vec![0xd5; 160],
        }
    }

    #[test]
    fn restamps_with_its_own_ssrc_sequence_and_timestamp_base() {
        let mut forwarder = Forwarder::new(
            TapSide::Local,
            vec![(0, 0), (101, 96)],
            setup(0xabcdef01, 500, 10_000),
        );
        let first = forwarder
            .forward(Instant::now(), &tapped(TapSide::Local, 0))
            .unwrap();
        let second = forwarder
            .forward(Instant::now(), &tapped(TapSide::Local, 1))
            .unwrap();
        let (a, b) = (
            RtpPacket::parse(&first).unwrap(),
            RtpPacket::parse(&second).unwrap(),
        );
        assert_eq!(
            (a.ssrc, a.sequence, a.timestamp, a.marker),
            (0xabcdef01, 500, 11_000, true)
        );
        assert_eq!((b.sequence, b.timestamp - a.timestamp), (501, 160));
        assert_eq!(b.payload, &[0xd5; 160][..]);
        // The other side's packets and unnegotiated formats are not this stream's.
        assert!(
            forwarder
                .forward(Instant::now(), &tapped(TapSide::Remote, 2))
                .is_none()
        );
        let mut comfort_noise = tapped(TapSide::Local, 3);
        comfort_noise.payload_type = 13;
        assert!(forwarder.forward(Instant::now(), &comfort_noise).is_none());
    }

    #[test]
    fn pause_sends_nothing_and_the_timeline_runs_on() {
        let mut forwarder = Forwarder::new(TapSide::Remote, vec![(0, 0)], setup(1, 0, 0));
        let before = forwarder
            .forward(Instant::now(), &tapped(TapSide::Remote, 0))
            .unwrap();
        forwarder.set_paused(true);
        assert!(
            forwarder
                .forward(Instant::now(), &tapped(TapSide::Remote, 1))
                .is_none()
        );
        forwarder.set_paused(false);
        let after = forwarder
            .forward(Instant::now(), &tapped(TapSide::Remote, 50))
            .unwrap();
        let (a, b) = (
            RtpPacket::parse(&before).unwrap(),
            RtpPacket::parse(&after).unwrap(),
        );
        assert_eq!(
            b.sequence,
            a.sequence + 1,
            "no sequence gap: nothing was lost"
        );
        assert_eq!(
            b.timestamp - a.timestamp,
            50 * 160,
            "the pause shows as a time gap"
        );
    }
}
