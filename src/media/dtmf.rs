//! DTMF digits as RFC 4733 telephone-events (`audio/telephone-event`), event codes 0-15.
//!
//! The payload is four bytes: the event code, then the E (end) bit, the reserved R bit and a
//! 6-bit volume in -dBm0, then the duration so far in RTP clock units (big-endian).
//!
//! [`DtmfSender`] turns queued digits into the packets to send, one [`DtmfSender::tick`] per
//! packet interval: while a digit sounds, the call sends telephone-event packets instead of
//! audio. Every packet of an event carries the RTP timestamp of the event's start (the stream
//! takes a fresh one when [`DtmfPacket::starts_event`] is set and keeps it for the event's
//! packets), while the stream's own timestamp keeps advancing by one packet interval per tick so
//! that audio resumes at the right time. The duration grows by one packet interval per packet;
//! the last one has the E bit and is sent three times with the same duration (RFC 4733
//! section 2.5.1.4), then a silent gap lets audio through before the next digit.
//!
//! [`DtmfReceiver`] reports each digit once: an event is identified by its RTP timestamp, so
//! its first packet to arrive reports it (even when the packets before it were lost), and
//! updates, retransmitted ends, duplicates and late packets of older events are ignored.

use std::collections::VecDeque;

/// How long each digit sounds unless [`DtmfSender::with_tone_ms`] says otherwise.
pub const DEFAULT_TONE_MS: u32 = 100;
/// Silence between two digits, so that a receiver can tell repeated digits apart.
pub const GAP_MS: u32 = 50;
/// The volume put in each event: -10 dBm0, a typical DTMF level.
pub const VOLUME: u8 = 10;
/// Every end packet is sent this many times in total.
const END_PACKET_COUNT: u8 = 3;
/// The payload length of one telephone-event.
pub const PAYLOAD_LEN: usize = 4;

const END_BIT: u8 = 0x80;
const VOLUME_MASK: u8 = 0x3F;

/// Errors of DTMF sending and receiving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// The character is not one of `0-9`, `*`, `#`, `A-D`.
    #[error("{0:?} is not a DTMF digit (0-9, *, #, A-D)")]
    UnknownDigit(char),
    /// A telephone-event payload needs four bytes.
    #[error("telephone-event payload of {0} bytes, 4 needed")]
    PayloadTooShort(usize),
}

/// The RFC 4733 event code of a DTMF digit (`0-9` → 0-9, `*` → 10, `#` → 11, `A-D` → 12-15;
/// letters in either case).
pub fn event_code(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// The DTMF digit of an RFC 4733 event code, `None` for codes above 15 (other telephony events).
pub fn digit(code: u8) -> Option<char> {
    match code {
        0..=9 => Some(char::from(b'0' + code)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + code - 12)),
        _ => None,
    }
}

/// One telephone-event payload, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code (0-15 for DTMF digits).
    pub event: u8,
    /// The E bit: this is (a retransmission of) the event's last packet.
    pub end: bool,
    /// Level in -dBm0 (0 to 63).
    pub volume: u8,
    /// Duration of the event so far, in RTP clock units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first four bytes of `payload`; anything after them is ignored (a plain
    /// telephone-event payload carries one event; several events come as RFC 2198 redundancy,
    /// another payload format).
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let [event, flags, high, low, ..] = *payload else {
            return Err(DtmfError::PayloadTooShort(payload.len()));
        };
        Ok(Self::from_bytes([event, flags, high, low]))
    }

    /// Decodes a four-byte payload.
    pub fn from_bytes([event, flags, high, low]: [u8; PAYLOAD_LEN]) -> Self {
        Self {
            event,
            end: flags & END_BIT != 0,
            volume: flags & VOLUME_MASK,
            duration: u16::from_be_bytes([high, low]),
        }
    }

    /// The four payload bytes (the R bit is always 0).
    pub fn to_bytes(&self) -> [u8; PAYLOAD_LEN] {
        let end = if self.end { END_BIT } else { 0 };
        let [high, low] = self.duration.to_be_bytes();
        [self.event, end | (self.volume & VOLUME_MASK), high, low]
    }
}

/// A telephone-event packet to send in place of this tick's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// The RTP payload.
    pub payload: [u8; PAYLOAD_LEN],
    /// The RTP marker bit: set on the first packet of an event.
    pub marker: bool,
    /// The stream must stamp this packet, and every following packet of the event, with the
    /// RTP timestamp of the current tick (the event's start). Set on the same packet as
    /// `marker`.
    pub starts_event: bool,
}

impl DtmfPacket {
    /// The payload, decoded.
    pub fn event(&self) -> TelephoneEvent {
        TelephoneEvent::from_bytes(self.payload)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SenderState {
    /// Audio flows; `ticks_left` more ticks must pass before the next digit may start.
    Gap { ticks_left: u32 },
    /// A digit sounds; `packets` have been sent so far.
    Tone { code: u8, packets: u32 },
    /// The digit is over; `left` more copies of its end packet are due.
    Ending { code: u8, duration: u16, left: u8 },
}

/// Turns queued digits into RFC 4733 telephone-event packets, one tick per packet interval.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    /// Duration units (RTP clock ticks) per packet.
    step: u32,
    packet_ms: u32,
    tone_packets: u32,
    gap_ticks: u32,
    queue: VecDeque<u8>,
    state: SenderState,
}

impl DtmfSender {
    /// A sender for a telephone-event stream at `clock_rate` Hz (8000, or 48000 next to Opus)
    /// sending a packet every `packet_ms` milliseconds (0 is treated as 1).
    pub fn new(clock_rate: u32, packet_ms: u32) -> Self {
        let packet_ms = packet_ms.max(1);
        let step = (u64::from(clock_rate) * u64::from(packet_ms) / 1000).clamp(1, 0xFFFF) as u32;
        let sender = Self {
            step,
            packet_ms,
            tone_packets: 1,
            gap_ticks: GAP_MS.div_ceil(packet_ms),
            queue: VecDeque::new(),
            state: SenderState::Gap { ticks_left: 0 },
        };
        sender.with_tone_ms(DEFAULT_TONE_MS)
    }

    /// Makes each digit last `tone_ms` milliseconds, rounded up to whole packets (at least one,
    /// and no longer than the 16-bit duration field can express).
    pub fn with_tone_ms(mut self, tone_ms: u32) -> Self {
        let longest = (u32::from(u16::MAX) / self.step).max(1);
        self.tone_packets = tone_ms.div_ceil(self.packet_ms).clamp(1, longest);
        self
    }

    /// Queues `digits` (`0-9`, `*`, `#`, `A-D`) to be sent after any already queued. If one
    /// character is not a DTMF digit, nothing is queued and the error names it.
    pub fn queue(&mut self, digits: &str) -> Result<(), DtmfError> {
        let codes = digits
            .chars()
            .map(|c| event_code(c).ok_or(DtmfError::UnknownDigit(c)))
            .collect::<Result<Vec<u8>, DtmfError>>()?;
        self.queue.extend(codes);
        Ok(())
    }

    /// True when no digit is sounding or waiting (a trailing gap may still be running; it only
    /// delays a digit queued later).
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && matches!(self.state, SenderState::Gap { .. })
    }

    /// Advances by one packet interval: the packet to send instead of audio, or `None` when
    /// audio flows.
    pub fn tick(&mut self) -> Option<DtmfPacket> {
        match self.state {
            SenderState::Gap { ticks_left } if ticks_left > 0 => {
                self.state = SenderState::Gap {
                    ticks_left: ticks_left - 1,
                };
                None
            }
            SenderState::Gap { .. } => {
                let code = self.queue.pop_front()?;
                Some(self.tone_packet(code, 1))
            }
            SenderState::Tone { code, packets } => Some(self.tone_packet(code, packets + 1)),
            SenderState::Ending {
                code,
                duration,
                left,
            } => {
                self.state = if left > 1 {
                    SenderState::Ending {
                        code,
                        duration,
                        left: left - 1,
                    }
                } else {
                    SenderState::Gap {
                        ticks_left: self.gap_ticks,
                    }
                };
                Some(Self::packet(code, true, duration, false))
            }
        }
    }

    /// The `number`th packet (from 1) of the tone of `code`, updating the state.
    fn tone_packet(&mut self, code: u8, number: u32) -> DtmfPacket {
        let duration = u16::try_from(number.saturating_mul(self.step)).unwrap_or(u16::MAX);
        let end = number >= self.tone_packets;
        self.state = if end {
            SenderState::Ending {
                code,
                duration,
                left: END_PACKET_COUNT - 1,
            }
        } else {
            SenderState::Tone {
                code,
                packets: number,
            }
        };
        Self::packet(code, end, duration, number == 1)
    }

    fn packet(code: u8, end: bool, duration: u16, first: bool) -> DtmfPacket {
        let event = TelephoneEvent {
            event: code,
            end,
            volume: VOLUME,
            duration,
        };
        DtmfPacket {
            payload: event.to_bytes(),
            marker: first,
            starts_event: first,
        }
    }
}

/// Reports the DTMF digits of a received telephone-event stream, each exactly once.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    /// RTP timestamp of the latest event seen.
    current: Option<u32>,
}

impl DtmfReceiver {
    /// A receiver that has seen no event yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the current event, for a new stream (new SSRC) whose timestamps start afresh.
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// Takes one telephone-event packet: the digit if it is the first packet seen of a new
    /// event, `None` for the rest of an event, for packets of an older event and for non-DTMF
    /// events. Payloads shorter than four bytes are an error.
    pub fn on_packet(
        &mut self,
        rtp_timestamp: u32,
        payload: &[u8],
    ) -> Result<Option<char>, DtmfError> {
        let event = TelephoneEvent::parse(payload)?;
        if let Some(current) = self.current {
            // RFC 3550 timestamps wrap: "older" means less than half the number space behind.
            let ahead = rtp_timestamp.wrapping_sub(current);
            if ahead == 0 || ahead >= 1 << 31 {
                return Ok(None);
            }
        }
        self.current = Some(rtp_timestamp);
        Ok(digit(event.event))
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

    const ALL_DIGITS: &str = "0123456789*#ABCD";

    /// A packet as it goes on the wire: RTP timestamp and payload.
    type Sent = (u32, [u8; PAYLOAD_LEN]);

    /// Ticks `sender` until idle, stamping packets the way the RTP stream must: the stream's
    /// timestamp advances one packet interval per tick, and each event keeps the timestamp of
    /// the tick that started it. Returns the packets and the number of ticks taken.
    fn run(sender: &mut DtmfSender, step: u32, start: u32) -> (Vec<Sent>, Vec<DtmfPacket>) {
        let mut stream_timestamp = start;
        let mut event_timestamp = start;
        let mut wire = Vec::new();
        let mut packets = Vec::new();
        for _ in 0..10_000 {
            if let Some(packet) = sender.tick() {
                if packet.starts_event {
                    event_timestamp = stream_timestamp;
                }
                wire.push((event_timestamp, packet.payload));
                packets.push(packet);
            } else if sender.is_idle() {
                break;
            }
            stream_timestamp = stream_timestamp.wrapping_add(step);
        }
        (wire, packets)
    }

    fn receive(receiver: &mut DtmfReceiver, wire: &[Sent]) -> String {
        wire.iter()
            .filter_map(|(timestamp, payload)| receiver.on_packet(*timestamp, payload).unwrap())
            .collect()
    }

    #[test]
    fn event_codes_match_rfc_4733() {
        for (code, digit_char) in ALL_DIGITS.chars().enumerate() {
            assert_eq!(event_code(digit_char), Some(code as u8));
            assert_eq!(digit(code as u8), Some(digit_char));
        }
        assert_eq!(event_code('a'), Some(12));
        assert_eq!(event_code('d'), Some(15));
        for bad in ['E', 'e', ' ', '+', 'p', ',', '٣'] {
            assert_eq!(event_code(bad), None, "{bad:?}");
        }
        assert_eq!(digit(16), None);
        assert_eq!(digit(255), None);
    }

    #[test]
    fn payload_layout_round_trips() {
        let event = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(event.to_bytes(), [11, 0x8A, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&event.to_bytes()), Ok(event));
        // The R bit is ignored on receipt.
        let parsed = TelephoneEvent::parse(&[5, 0x4A, 0, 160, 99]).unwrap();
        assert_eq!(
            (parsed.event, parsed.end, parsed.volume, parsed.duration),
            (5, false, 10, 160)
        );
    }

    #[test]
    fn one_digit_grows_its_duration_then_ends_three_times() {
        let mut sender = DtmfSender::new(8000, 20);
        sender.queue("7").unwrap();
        assert!(!sender.is_idle());
        let events: Vec<(TelephoneEvent, bool, bool)> = (0..7)
            .map(|_| {
                let packet = sender.tick().expect("tone or end packet");
                (packet.event(), packet.marker, packet.starts_event)
            })
            .collect();
        let durations: Vec<u16> = events.iter().map(|(e, _, _)| e.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = events.iter().map(|(e, _, _)| e.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        for (index, (event, marker, starts)) in events.iter().enumerate() {
            assert_eq!(event.event, 7);
            assert_eq!(event.volume, VOLUME);
            assert_eq!(*marker, index == 0);
            assert_eq!(*starts, index == 0);
        }
        assert!(sender.is_idle());
        assert_eq!(sender.tick(), None);
    }

    #[test]
    fn duration_steps_follow_clock_rate_and_packet_interval() {
        for (clock_rate, packet_ms, step) in [(8000, 20, 160), (48_000, 20, 960), (8000, 30, 240)] {
            let mut sender = DtmfSender::new(clock_rate, packet_ms);
            sender.queue("1").unwrap();
            let (_, packets) = run(&mut sender, step, 0);
            let tone_packets = DEFAULT_TONE_MS.div_ceil(packet_ms) as usize;
            assert_eq!(packets.len(), tone_packets + 2);
            for (index, packet) in packets.iter().enumerate() {
                let expected = step * (index.min(tone_packets - 1) as u32 + 1);
                assert_eq!(u32::from(packet.event().duration), expected);
            }
        }
    }

    #[test]
    fn digits_are_separated_by_a_gap_of_audio() {
        let mut sender = DtmfSender::new(8000, 20).with_tone_ms(60);
        sender.queue("12").unwrap();
        let sends: Vec<bool> = (0..16).map(|_| sender.tick().is_some()).collect();
        // 3 tone packets (the last with E), 2 more ends, 3 ticks (60 ms ≥ 50 ms) of audio.
        let digit_then_gap = [true, true, true, true, true, false, false, false];
        assert_eq!(sends[..8], digit_then_gap);
        assert_eq!(sends[8..], digit_then_gap);
    }

    #[test]
    fn long_tones_stay_within_the_duration_field() {
        let mut sender = DtmfSender::new(48_000, 20).with_tone_ms(5000);
        sender.queue("#").unwrap();
        let (_, packets) = run(&mut sender, 960, 0);
        let last = packets.last().unwrap().event();
        assert!(last.end);
        assert_eq!(
            u32::from(last.duration),
            68 * 960,
            "longest whole-packet duration"
        );
        let mut short = DtmfSender::new(8000, 20).with_tone_ms(0);
        short.queue("1").unwrap();
        assert!(short.tick().unwrap().event().end, "at least one packet");
    }

    #[test]
    fn unknown_digits_are_rejected_and_nothing_is_queued() {
        let mut sender = DtmfSender::new(8000, 20);
        let error = sender.queue("12x4").unwrap_err();
        assert_eq!(error, DtmfError::UnknownDigit('x'));
        assert!(error.to_string().contains("'x'"), "{error}");
        assert!(sender.is_idle());
        assert_eq!(sender.tick(), None);
    }

    #[test]
    fn receiver_gets_every_digit_once_in_order() {
        let mut sender = DtmfSender::new(8000, 20);
        sender.queue(ALL_DIGITS).unwrap();
        sender.queue("1155").unwrap();
        let (wire, _) = run(&mut sender, 160, 4_294_960_000);
        let mut receiver = DtmfReceiver::new();
        assert_eq!(receive(&mut receiver, &wire), format!("{ALL_DIGITS}1155"));
    }

    #[test]
    fn receiver_survives_loss_and_duplicates() {
        let mut sender = DtmfSender::new(48_000, 20);
        sender.queue("2580*#9D").unwrap();
        let (wire, _) = run(&mut sender, 960, 12_345);

        // Every fifth packet lost, including the very first.
        let lossy: Vec<Sent> = wire
            .iter()
            .enumerate()
            .filter(|(index, _)| index % 5 != 0)
            .map(|(_, sent)| *sent)
            .collect();
        assert!(lossy.len() * 5 <= wire.len() * 4);
        assert_eq!(receive(&mut DtmfReceiver::new(), &lossy), "2580*#9D");

        // Every packet twice, and a stale copy of each previous event's end after the next
        // event has begun.
        let mut noisy = Vec::new();
        for (index, sent) in wire.iter().enumerate() {
            noisy.push(*sent);
            noisy.push(*sent);
            if index > 0 && wire[index - 1].0 != sent.0 {
                noisy.push(wire[index - 1]);
            }
        }
        assert_eq!(receive(&mut DtmfReceiver::new(), &noisy), "2580*#9D");

        // Only the last retransmitted end of each event arrives.
        let ends_only: Vec<Sent> = wire
            .iter()
            .enumerate()
            .filter(|(index, sent)| wire.get(index + 1).is_none_or(|next| next.0 != sent.0))
            .map(|(_, sent)| *sent)
            .collect();
        assert_eq!(ends_only.len(), 8);
        assert!(
            ends_only
                .iter()
                .all(|(_, payload)| payload[1] & END_BIT != 0)
        );
        assert_eq!(receive(&mut DtmfReceiver::new(), &ends_only), "2580*#9D");
    }

    #[test]
    fn receiver_ignores_non_dtmf_events_and_can_be_reset() {
        let mut receiver = DtmfReceiver::new();
        assert_eq!(receiver.on_packet(1000, &[32, 0, 0, 160]), Ok(None));
        assert_eq!(receiver.on_packet(2000, &[3, 0, 0, 160]), Ok(Some('3')));
        assert_eq!(receiver.on_packet(2000, &[3, 0x80, 0, 160]), Ok(None));
        receiver.reset();
        assert_eq!(receiver.on_packet(2000, &[3, 0x80, 0, 160]), Ok(Some('3')));
    }

    #[test]
    fn short_payloads_are_errors() {
        let mut receiver = DtmfReceiver::new();
        for len in 0..PAYLOAD_LEN {
            let payload = vec![1u8; len];
            assert_eq!(
                receiver.on_packet(100, &payload),
                Err(DtmfError::PayloadTooShort(len))
            );
        }
        // An error does not count as having seen the event.
        assert_eq!(receiver.on_packet(100, &[1, 0, 0, 0]), Ok(Some('1')));
    }

    #[test]
    fn garbage_payloads_never_panic() {
        let mut receiver = DtmfReceiver::new();
        let mut state = 0x9e37_79b9_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 12) as usize;
            let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let result = receiver.on_packet(next(), &payload);
            match result {
                Err(DtmfError::PayloadTooShort(n)) => assert!(n < PAYLOAD_LEN && n == len),
                Ok(Some(d)) => assert!(ALL_DIGITS.contains(d)),
                Ok(None) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    }
}
