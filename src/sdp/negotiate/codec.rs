//! The audio codecs the media engine implements, and how each is written in SDP: payload
//! type, `rtpmap` and `fmtp`, plus the `telephone-event` format that rides along with them.

use crate::sdp::PayloadFormat;

/// Dynamic payload type we offer Opus under (the value most stacks use).
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Dynamic payload type we offer `telephone-event/8000` under, for the 8 kHz-clock codecs.
pub const TELEPHONE_EVENT_PAYLOAD_TYPE: u8 = 101;
/// Dynamic payload type we offer `telephone-event/48000` under, for Opus: RFC 4733 section 2.1
/// requires the events to use the clock rate of the audio codec in use.
pub const TELEPHONE_EVENT_48K_PAYLOAD_TYPE: u8 = 110;

/// The events we can receive: DTMF digits 0-9, *, #, A-D and flash (RFC 4733 section 3.2).
const TELEPHONE_EVENT_FMTP: &str = "0-16";

/// An audio codec the media engine can send and receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
    /// Opus (RFC 7587), always `opus/48000/2` on the wire.
    Opus {
        /// Ask the peer for in-band forward error correction (`useinbandfec=1`).
        inband_fec: bool,
    },
}

impl Codec {
    /// The payload type we offer the codec under when the session has no mapping for it yet.
    pub fn default_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
            Codec::Opus { .. } => OPUS_PAYLOAD_TYPE,
        }
    }

    /// True for codecs with a static RFC 3551 payload type, which never changes.
    pub fn is_static(self) -> bool {
        !matches!(self, Codec::Opus { .. })
    }

    pub fn encoding(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus { .. } => "opus",
        }
    }

    /// The RTP clock rate, which for G.722 is 8000 Hz although it samples at 16 kHz.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus { .. } => 48000,
            _ => 8000,
        }
    }

    pub fn channels(self) -> Option<u8> {
        match self {
            Codec::Opus { .. } => Some(2),
            _ => None,
        }
    }

    /// The `fmtp` parameters we declare for receiving this codec.
    pub fn fmtp(self) -> Option<&'static str> {
        match self {
            Codec::Opus { inband_fec: true } => Some("minptime=10;useinbandfec=1"),
            Codec::Opus { inband_fec: false } => Some("minptime=10"),
            _ => None,
        }
    }

    /// The format as we write it, under `payload_type`.
    pub fn payload_format(self, payload_type: u8) -> PayloadFormat {
        let format = PayloadFormat::new(
            payload_type,
            self.encoding(),
            self.clock_rate(),
            self.channels(),
        );
        match self.fmtp() {
            Some(fmtp) => format.with_fmtp(fmtp),
            None => format,
        }
    }

    /// Whether a received format is this codec, whatever its payload type number.
    pub fn matches(self, format: &PayloadFormat) -> bool {
        compatible(&self.payload_format(self.default_payload_type()), format)
    }
}

/// Same codec, also accepting `opus/48000` without the channel count that RFC 7587 requires,
/// since some stacks leave it out.
pub(super) fn compatible(ours: &PayloadFormat, theirs: &PayloadFormat) -> bool {
    ours.same_codec(theirs)
        || (ours.encoding.eq_ignore_ascii_case("opus")
            && theirs.encoding.eq_ignore_ascii_case("opus")
            && ours.clock_rate == theirs.clock_rate
            && theirs.channels.is_none())
}

pub(super) fn telephone_event_format(payload_type: u8, clock_rate: u32) -> PayloadFormat {
    PayloadFormat::new(payload_type, "telephone-event", clock_rate, None)
        .with_fmtp(TELEPHONE_EVENT_FMTP)
}
