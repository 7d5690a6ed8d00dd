//! RFC 3264 offer/answer for a call with one audio stream.
//!
//! [`OfferAnswer`] does not care who sent the INVITE: a UAC puts [`OfferAnswer::create_offer`]
//! in its INVITE and feeds the 18x/200 body to [`OfferAnswer::receive_answer`]; a UAS that got an
//! INVITE without SDP does exactly the same with its 200 OK and the ACK body; a re-INVITE with
//! an offer goes through [`OfferAnswer::receive_offer`] whichever side sent the first INVITE.

use core::net::IpAddr;

use super::SdpError;
use super::session::{
    Direction, MediaDescription, MediaKind, Origin, PayloadFormat, SessionDescription,
};

/// Packetisation time we offer and fall back to when the peer states none, in milliseconds.
pub const DEFAULT_PTIME: u32 = 20;
/// Dynamic payload type we offer Opus under (the value most stacks use).
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Dynamic payload type we offer `telephone-event/8000` under, for the 8 kHz-clock codecs.
pub const TELEPHONE_EVENT_PAYLOAD_TYPE: u8 = 101;
/// Dynamic payload type we offer `telephone-event/48000` under, for Opus: RFC 4733 section 2.1
/// requires the events to use the clock rate of the audio codec in use.
pub const TELEPHONE_EVENT_48K_PAYLOAD_TYPE: u8 = 110;

/// The events we can receive: DTMF digits 0-9, *, #, A-D and flash (RFC 4733 section 3.2).
const TELEPHONE_EVENT_FMTP: &str = "0-16";
/// The only profile we answer audio on: there is no SRTP or AVPF feedback behind this layer.
const AUDIO_PROFILE: &str = "RTP/AVP";
const FIRST_DYNAMIC_PAYLOAD_TYPE: u8 = 96;
const LAST_DYNAMIC_PAYLOAD_TYPE: u8 = 127;

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
fn compatible(ours: &PayloadFormat, theirs: &PayloadFormat) -> bool {
    ours.same_codec(theirs)
        || (ours.encoding.eq_ignore_ascii_case("opus")
            && theirs.encoding.eq_ignore_ascii_case("opus")
            && ours.clock_rate == theirs.clock_rate
            && theirs.channels.is_none())
}

/// What we can do and where we receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCapabilities {
    /// Where we receive RTP; written as the session `c=` and in `o=`.
    pub address: IpAddr,
    /// Where we receive RTP; RTCP is expected on the next port (RFC 3550 section 11).
    pub audio_port: u16,
    /// In order of preference. An empty list offers PCMU, since an `m=` line needs a format.
    pub codecs: Vec<Codec>,
    /// Offer and accept RFC 4733 DTMF events.
    pub telephone_event: bool,
    /// Our `a=ptime`, in milliseconds.
    pub ptime: u32,
}

impl LocalCapabilities {
    /// With telephone events and a ptime of [`DEFAULT_PTIME`].
    pub fn new(address: IpAddr, audio_port: u16, codecs: Vec<Codec>) -> Self {
        LocalCapabilities {
            address,
            audio_port,
            codecs,
            telephone_event: true,
            ptime: DEFAULT_PTIME,
        }
    }
}

/// The media session agreed by the last completed offer/answer exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP. Unspecified (`0.0.0.0`) when the peer holds the RFC 2543 way.
    pub remote_address: IpAddr,
    pub remote_rtp_port: u16,
    /// From the peer's `a=rtcp`, else its RTP port + 1; `None` only when that overflows.
    pub remote_rtcp_port: Option<u16>,
    /// The codec to send with, as the peer numbered and parametrised it (its `fmtp` says what
    /// it can receive). When we were the offerer and the answer renumbered the codec, which
    /// RFC 3264 section 6.1 discourages, the peer still sends to us with our offer's number.
    pub codec: PayloadFormat,
    /// The peer's `telephone-event` format at the codec's clock rate, if both sides have one.
    pub telephone_event: Option<PayloadFormat>,
    /// What we may do: send when [`Direction::sends`], expect media when
    /// [`Direction::receives`].
    pub local_direction: Direction,
    /// The peer is holding the call: it stated sendonly or inactive, or sent `c=0.0.0.0`, while
    /// we were willing to send to it.
    pub remote_on_hold: bool,
    /// Packetisation time to send with: the peer's `a=ptime`, else ours.
    pub ptime: u32,
}

#[derive(Debug, Clone)]
struct PendingOffer {
    offer: SessionDescription,
    audio_index: usize,
    direction: Direction,
}

/// Offer/answer state of one call (one dialog).
///
/// Session version (RFC 3264 section 8): the first SDP we generate carries the version passed
/// to [`OfferAnswer::new`]; each later one carries the previous version when its content is
/// identical to the previous SDP we generated (e.g. a session refresh), and the previous
/// version + 1 otherwise. The `o=` user name and address stay those of the first SDP, as
/// section 8 requires.
///
/// Media lines (RFC 3264 section 8): once SDP has been exchanged, every new offer keeps all
/// earlier media lines in place, the ones we do not use with port 0, and dynamic payload type
/// numbers, once used on the audio stream, keep their meaning (section 8.3.2).
#[derive(Debug, Clone)]
pub struct OfferAnswer {
    capabilities: LocalCapabilities,
    session_id: u64,
    initial_version: u64,
    last_local: Option<SessionDescription>,
    audio_index: usize,
    pending: Option<PendingOffer>,
    negotiated: Option<Negotiated>,
    dynamic_types: Vec<PayloadFormat>,
}

impl OfferAnswer {
    /// `session_id` and `session_version` come from the caller (typically an NTP timestamp or
    /// random numbers), which keeps this layer free of clocks and randomness.
    pub fn new(capabilities: LocalCapabilities, session_id: u64, session_version: u64) -> Self {
        OfferAnswer {
            capabilities,
            session_id,
            initial_version: session_version,
            last_local: None,
            audio_index: 0,
            pending: None,
            negotiated: None,
            dynamic_types: Vec::new(),
        }
    }

    pub fn capabilities(&self) -> &LocalCapabilities {
        &self.capabilities
    }

    /// Changes apply to the next SDP we generate, e.g. a new port after a network change.
    pub fn capabilities_mut(&mut self) -> &mut LocalCapabilities {
        &mut self.capabilities
    }

    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The result of the last completed exchange, whichever side offered.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The last SDP we generated, offer or answer.
    pub fn local_description(&self) -> Option<&SessionDescription> {
        self.last_local.as_ref()
    }

    /// True between [`OfferAnswer::create_offer`] and the matching
    /// [`OfferAnswer::receive_answer`] or [`OfferAnswer::cancel_offer`].
    pub fn offer_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The direction to offer for the user's hold state and the peer's (RFC 3264 section 8.4,
    /// RFC 6337 section 5.3): sendrecv normally, sendonly when we hold, recvonly when only the
    /// peer holds, inactive when both do.
    pub fn offer_direction(&self, local_hold: bool) -> Direction {
        let remote_hold = self.negotiated.as_ref().is_some_and(|n| n.remote_on_hold);
        Direction::from_flags(!remote_hold, !local_hold)
    }

    /// Generates an offer with all our codecs on one RTP/AVP audio stream, for an INVITE, a
    /// re-INVITE, or a 200 OK to an INVITE without SDP. A second call before the answer replaces
    /// the pending offer (e.g. to retry after a 491).
    pub fn create_offer(&mut self, direction: Direction) -> SessionDescription {
        let formats = self.offer_formats();
        let audio = self.local_audio(formats, direction);
        let mut media: Vec<MediaDescription> = self
            .last_local
            .as_ref()
            .map(|previous| previous.media.iter().map(rejected_copy).collect())
            .unwrap_or_default();
        let audio_index = match media.get_mut(self.audio_index) {
            Some(slot) => {
                *slot = audio;
                self.audio_index
            }
            None => {
                media = vec![audio];
                0
            }
        };
        let offer = self.finalize(media, audio_index);
        self.pending = Some(PendingOffer {
            offer: offer.clone(),
            audio_index,
            direction,
        });
        offer
    }

    /// Forgets our pending offer, when the request carrying it failed (491, 488, timeout...).
    /// Returns whether one was pending. The previous negotiation stays in force.
    pub fn cancel_offer(&mut self) -> bool {
        self.pending.take().is_some()
    }

    /// Answers a peer's offer (RFC 3264 section 6).
    ///
    /// The first RTP/AVP audio stream with a codec in common is accepted; the answer lists the
    /// common codecs under the offer's payload type numbers and in the offer's order (the
    /// offerer's preference, so the codec both sides use is its favourite), plus each offered
    /// `telephone-event` whose clock rate matches one of them. Every other media line is
    /// answered with port 0. The direction is the offer's reversed and limited to
    /// `local_wish`: pass [`Direction::SendRecv`], or [`Direction::SendOnly`] while the user
    /// holds the call.
    ///
    /// On error nothing changes; [`SdpError::sip_status`] gives the response code.
    pub fn receive_offer(
        &mut self,
        offer: &SessionDescription,
        local_wish: Direction,
    ) -> Result<SessionDescription, SdpError> {
        if self.pending.is_some() {
            return Err(SdpError::OfferPending);
        }
        let (audio_index, offered, common) = offer
            .media
            .iter()
            .enumerate()
            .find_map(|(index, media)| {
                let usable = media.kind == MediaKind::Audio
                    && !media.is_rejected()
                    && media.proto.eq_ignore_ascii_case(AUDIO_PROFILE);
                let common = if usable {
                    self.common_formats(media)
                } else {
                    Vec::new()
                };
                (!common.is_empty()).then_some((index, media, common))
            })
            .ok_or(SdpError::NoCommonCodec)?;
        let remote_address = offer
            .connection_for(offered)
            .ok_or(SdpError::MissingConnection)?;
        let (first_offered, _) = common.first().ok_or(SdpError::NoCommonCodec)?;
        let codec = first_offered.clone();

        let mut answer_formats: Vec<PayloadFormat> = common
            .iter()
            .map(|(format, ours)| ours.payload_format(format.payload_type))
            .collect();
        let mut telephone_event = None;
        if self.capabilities.telephone_event {
            for event in offered.formats.iter().filter(|f| f.is_telephone_event()) {
                let clock_in_use = common.iter().any(|(f, _)| f.clock_rate == event.clock_rate);
                let already = answer_formats
                    .iter()
                    .any(|f| f.is_telephone_event() && f.clock_rate == event.clock_rate);
                if clock_in_use && !already {
                    answer_formats
                        .push(telephone_event_format(event.payload_type, event.clock_rate));
                    if event.clock_rate == codec.clock_rate && telephone_event.is_none() {
                        telephone_event = Some(event.clone());
                    }
                }
            }
        }

        let remote_direction = offered.effective_direction(offer.connection);
        let local_direction = remote_direction.reverse().intersect(local_wish);
        let audio = self.local_audio(answer_formats, local_direction);
        let media = offer
            .media
            .iter()
            .enumerate()
            .map(|(index, media)| {
                if index == audio_index {
                    audio.clone()
                } else {
                    rejected_copy(media)
                }
            })
            .collect();

        let negotiated = Negotiated {
            remote_address,
            remote_rtp_port: offered.port,
            remote_rtcp_port: offered.rtcp_port.or(offered.port.checked_add(1)),
            codec,
            telephone_event,
            local_direction,
            remote_on_hold: !remote_direction.receives(),
            ptime: offered.ptime.unwrap_or(self.capabilities.ptime),
        };
        let answer = self.finalize(media, audio_index);
        if let Some(ours) = answer.media.get(audio_index) {
            self.remember_payload_types(&ours.formats);
        }
        self.negotiated = Some(negotiated);
        Ok(answer)
    }

    /// Takes the answer to our pending offer (RFC 3264 section 7) and returns the agreed media.
    ///
    /// The codec is the first one in the answer that we offered. The pending offer is consumed
    /// even when the answer is unusable, since the exchange is over either way; the previous
    /// negotiation then stays in force.
    pub fn receive_answer(&mut self, answer: &SessionDescription) -> Result<Negotiated, SdpError> {
        let pending = self.pending.take().ok_or(SdpError::NoPendingOffer)?;
        let offered_count = pending.offer.media.len();
        if answer.media.len() != offered_count {
            return Err(SdpError::MediaCountMismatch {
                offered: offered_count,
                answered: answer.media.len(),
            });
        }
        if let Some(index) = pending
            .offer
            .media
            .iter()
            .zip(&answer.media)
            .position(|(ours, theirs)| ours.kind != theirs.kind)
        {
            return Err(SdpError::MediaMismatch { index });
        }
        let ours = pending
            .offer
            .media
            .get(pending.audio_index)
            .ok_or(SdpError::MediaMismatch {
                index: pending.audio_index,
            })?;
        let theirs = answer
            .media
            .get(pending.audio_index)
            .ok_or(SdpError::MediaMismatch {
                index: pending.audio_index,
            })?;
        if theirs.is_rejected() {
            return Err(SdpError::AudioRejected);
        }
        let codec = theirs
            .formats
            .iter()
            .filter(|f| !f.is_telephone_event())
            .find_map(|f| resolve_answered(f, ours))
            .ok_or(SdpError::NoCommonCodec)?;
        let telephone_event = theirs
            .formats
            .iter()
            .filter_map(|f| resolve_answered(f, ours))
            .find(|f| f.is_telephone_event() && f.clock_rate == codec.clock_rate);
        let remote_address = answer
            .connection_for(theirs)
            .ok_or(SdpError::MissingConnection)?;

        let remote_direction = theirs.effective_direction(answer.connection);
        let remote_on_hold = if pending.direction.sends() {
            !remote_direction.receives()
        } else {
            // We asked not to receive, so the answer cannot tell whether the peer would.
            self.negotiated.as_ref().is_some_and(|n| n.remote_on_hold)
        };
        let negotiated = Negotiated {
            remote_address,
            remote_rtp_port: theirs.port,
            remote_rtcp_port: theirs.rtcp_port.or(theirs.port.checked_add(1)),
            codec,
            telephone_event,
            local_direction: pending.direction.intersect(remote_direction.reverse()),
            remote_on_hold,
            ptime: theirs.ptime.unwrap_or(self.capabilities.ptime),
        };
        self.remember_payload_types(&ours.formats);
        self.audio_index = pending.audio_index;
        self.negotiated = Some(negotiated.clone());
        Ok(negotiated)
    }

    /// Offered formats we support, in the offer's order, each with the codec it is.
    fn common_formats(&self, media: &MediaDescription) -> Vec<(PayloadFormat, Codec)> {
        media
            .formats
            .iter()
            .filter(|f| !f.is_telephone_event())
            .filter_map(|f| {
                self.capabilities
                    .codecs
                    .iter()
                    .find(|codec| codec.matches(f))
                    .map(|codec| (f.clone(), *codec))
            })
            .collect()
    }

    fn offer_formats(&self) -> Vec<PayloadFormat> {
        let mut codecs = self.capabilities.codecs.clone();
        if codecs.is_empty() {
            codecs.push(Codec::Pcmu);
        }
        let mut formats: Vec<PayloadFormat> = Vec::new();
        for codec in codecs {
            if formats.iter().any(|f| codec.matches(f)) {
                continue;
            }
            let payload_type = if codec.is_static() {
                codec.default_payload_type()
            } else {
                self.payload_type_for(
                    &codec.payload_format(codec.default_payload_type()),
                    codec.default_payload_type(),
                    &formats,
                )
            };
            formats.push(codec.payload_format(payload_type));
        }
        if self.capabilities.telephone_event {
            for (clock_rate, default) in [
                (8000, TELEPHONE_EVENT_PAYLOAD_TYPE),
                (48000, TELEPHONE_EVENT_48K_PAYLOAD_TYPE),
            ] {
                if formats.iter().any(|f| f.clock_rate == clock_rate) {
                    let wanted = telephone_event_format(default, clock_rate);
                    let payload_type = self.payload_type_for(&wanted, default, &formats);
                    formats.push(telephone_event_format(payload_type, clock_rate));
                }
            }
        }
        formats
    }

    /// The number this session already uses for `wanted`, else `default` if free, else the
    /// first free dynamic number.
    fn payload_type_for(&self, wanted: &PayloadFormat, default: u8, taken: &[PayloadFormat]) -> u8 {
        if let Some(known) = self.dynamic_types.iter().find(|f| compatible(f, wanted)) {
            return known.payload_type;
        }
        let free = |payload_type: u8| {
            !taken.iter().any(|f| f.payload_type == payload_type)
                && !self
                    .dynamic_types
                    .iter()
                    .any(|f| f.payload_type == payload_type)
        };
        if free(default) {
            return default;
        }
        (FIRST_DYNAMIC_PAYLOAD_TYPE..=LAST_DYNAMIC_PAYLOAD_TYPE)
            .find(|payload_type| free(*payload_type))
            .unwrap_or(default)
    }

    fn remember_payload_types(&mut self, formats: &[PayloadFormat]) {
        for format in formats {
            if PayloadFormat::from_static(format.payload_type).is_some() {
                continue;
            }
            self.dynamic_types.retain(|known| {
                known.payload_type != format.payload_type && !compatible(known, format)
            });
            self.dynamic_types.push(format.clone());
        }
    }

    fn local_audio(&self, formats: Vec<PayloadFormat>, direction: Direction) -> MediaDescription {
        MediaDescription {
            formats,
            direction,
            ptime: Some(self.capabilities.ptime),
            ..MediaDescription::new(
                MediaKind::Audio,
                self.capabilities.audio_port,
                AUDIO_PROFILE,
            )
        }
    }

    /// Wraps media lines into our SDP with the right origin and version, and remembers it.
    fn finalize(&mut self, media: Vec<MediaDescription>, audio_index: usize) -> SessionDescription {
        let origin = match &self.last_local {
            Some(previous) => previous.origin.clone(),
            None => Origin {
                username: "-".to_owned(),
                session_id: self.session_id,
                session_version: self.initial_version,
                address: self.capabilities.address,
            },
        };
        let mut sdp = SessionDescription {
            origin,
            session_name: "-".to_owned(),
            connection: Some(self.capabilities.address),
            media,
            attributes: Vec::new(),
        };
        if let Some(previous) = &self.last_local
            && sdp != *previous
        {
            sdp.origin.session_version = previous.origin.session_version.wrapping_add(1);
        }
        self.last_local = Some(sdp.clone());
        self.audio_index = audio_index;
        sdp
    }
}

fn telephone_event_format(payload_type: u8, clock_rate: u32) -> PayloadFormat {
    PayloadFormat::new(payload_type, "telephone-event", clock_rate, None)
        .with_fmtp(TELEPHONE_EVENT_FMTP)
}

/// A media line we do not use, answered or re-offered with port 0 and its format list
/// unchanged (RFC 3264 sections 6 and 8.2).
fn rejected_copy(media: &MediaDescription) -> MediaDescription {
    MediaDescription {
        formats: media.formats.clone(),
        non_rtp_formats: media.non_rtp_formats.clone(),
        ..MediaDescription::new(media.kind.clone(), 0, media.proto.clone())
    }
}

/// An answered format, if it is one we offered. An answer that lists a dynamic payload type
/// without its `rtpmap` is read with our offer's mapping for that number.
fn resolve_answered(answered: &PayloadFormat, offered: &MediaDescription) -> Option<PayloadFormat> {
    if answered.encoding.is_empty() {
        let ours = offered.format(answered.payload_type)?;
        return Some(PayloadFormat {
            fmtp: answered.fmtp.clone(),
            ..ours.clone()
        });
    }
    offered
        .formats
        .iter()
        .any(|ours| compatible(ours, answered))
        .then(|| answered.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const OPUS: Codec = Codec::Opus { inband_fec: true };

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn caps(codecs: Vec<Codec>) -> LocalCapabilities {
        LocalCapabilities::new(ip("192.0.2.10"), 40000, codecs)
    }

    fn alice() -> OfferAnswer {
        OfferAnswer::new(caps(vec![OPUS, Codec::Pcmu, Codec::Pcma]), 1000, 5)
    }

    fn bob() -> OfferAnswer {
        OfferAnswer::new(
            LocalCapabilities::new(ip("198.51.100.20"), 50000, vec![Codec::Pcma, Codec::Pcmu]),
            2000,
            1,
        )
    }

    /// Sends SDP over the "wire": written to text and parsed back.
    fn wire(sdp: &SessionDescription) -> SessionDescription {
        SessionDescription::parse(&sdp.to_string()).unwrap()
    }

    fn remote_offer(media_lines: &str) -> SessionDescription {
        let text = format!(
            "v=0\r\no=peer 77 88 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\n{media_lines}"
        );
        SessionDescription::parse(&text).unwrap()
    }

    const PEER_AUDIO: &str = concat!(
        "m=audio 30000 RTP/AVP 0 8 96 101\r\n",
        "a=rtpmap:96 opus/48000/2\r\n",
        "a=fmtp:96 maxplaybackrate=16000\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=fmtp:101 0-15\r\n",
    );

    #[test]
    fn offer_lists_codecs_in_preference_order_with_telephone_events() {
        let mut oa = alice();
        let offer = oa.create_offer(Direction::SendRecv);
        assert_eq!(offer.origin.session_id, 1000);
        assert_eq!(offer.origin.session_version, 5);
        assert_eq!(offer.connection, Some(ip("192.0.2.10")));
        let audio = &offer.media[0];
        assert_eq!((audio.port, audio.proto.as_str()), (40000, "RTP/AVP"));
        assert_eq!(audio.ptime, Some(20));
        assert_eq!(audio.direction, Direction::SendRecv);
        let types: Vec<u8> = audio.formats.iter().map(|f| f.payload_type).collect();
        assert_eq!(types, [111, 0, 8, 101, 110]);
        assert_eq!(audio.formats[3], telephone_event_format(101, 8000));
        assert_eq!(audio.formats[4], telephone_event_format(110, 48000));
        let text = offer.to_string();
        assert!(
            text.contains("m=audio 40000 RTP/AVP 111 0 8 101 110\r\n"),
            "{text}"
        );
        assert!(text.contains("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(text.contains("a=fmtp:111 minptime=10;useinbandfec=1\r\n"));
        assert!(text.contains("a=rtpmap:110 telephone-event/48000\r\na=fmtp:110 0-16\r\n"));
        assert!(oa.offer_pending());
    }

    #[test]
    fn offer_without_opus_has_only_the_8k_telephone_event() {
        let mut oa = OfferAnswer::new(caps(vec![Codec::Pcma, Codec::G722]), 1, 1);
        let types: Vec<u8> = oa.create_offer(Direction::SendRecv).media[0]
            .formats
            .iter()
            .map(|f| f.payload_type)
            .collect();
        assert_eq!(types, [8, 9, 101]);

        let mut none = OfferAnswer::new(caps(Vec::new()), 1, 1);
        none.capabilities_mut().telephone_event = false;
        let offer = none.create_offer(Direction::SendRecv);
        assert_eq!(offer.media[0].formats, vec![Codec::Pcmu.payload_format(0)]);
    }

    #[test]
    fn session_version_increments_only_when_content_changes() {
        let mut oa = alice();
        let first = oa.create_offer(Direction::SendRecv);
        oa.cancel_offer();
        let same = oa.create_offer(Direction::SendRecv);
        assert_eq!(same, first);
        assert_eq!(same.origin.session_version, 5);
        oa.cancel_offer();
        let hold = oa.create_offer(Direction::SendOnly);
        assert_eq!(hold.origin.session_version, 6);
        oa.cancel_offer();
        let resume = oa.create_offer(Direction::SendRecv);
        assert_eq!(resume.origin.session_version, 7);
        oa.capabilities_mut().address = ip("192.0.2.99");
        oa.cancel_offer();
        let moved = oa.create_offer(Direction::SendRecv);
        assert_eq!(moved.origin.session_version, 8);
        // RFC 3264 section 8: the o= line only changes its version.
        assert_eq!(moved.origin.address, ip("192.0.2.10"));
        assert_eq!(moved.connection, Some(ip("192.0.2.99")));
    }

    #[test]
    fn answer_keeps_offer_payload_types_and_order() {
        let mut oa = alice();
        let offer = remote_offer(PEER_AUDIO);
        let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
        let audio = &answer.media[0];
        let types: Vec<u8> = audio.formats.iter().map(|f| f.payload_type).collect();
        assert_eq!(types, [0, 8, 96, 101]);
        assert_eq!(audio.formats[2], OPUS.payload_format(96));
        assert_eq!(audio.formats[3], telephone_event_format(101, 8000));
        assert_eq!(audio.direction, Direction::SendRecv);
        assert_eq!(audio.port, 40000);
        assert_eq!(answer.connection, Some(ip("192.0.2.10")));

        let negotiated = oa.negotiated().unwrap();
        assert_eq!(negotiated.remote_address, ip("203.0.113.9"));
        assert_eq!(negotiated.remote_rtp_port, 30000);
        assert_eq!(negotiated.remote_rtcp_port, Some(30001));
        assert_eq!(negotiated.codec, PayloadFormat::new(0, "PCMU", 8000, None));
        assert_eq!(
            negotiated.telephone_event,
            Some(PayloadFormat::new(101, "telephone-event", 8000, None).with_fmtp("0-15"))
        );
        assert_eq!(negotiated.local_direction, Direction::SendRecv);
        assert!(!negotiated.remote_on_hold);
        assert_eq!(negotiated.ptime, 20);
    }

    #[test]
    fn answer_direction_follows_rfc_3264_section_6_1() {
        use Direction::*;
        let cases = [
            // (offered, our wish, answered)
            (SendRecv, SendRecv, SendRecv),
            (SendRecv, SendOnly, SendOnly),
            (SendRecv, Inactive, Inactive),
            (SendOnly, SendRecv, RecvOnly),
            (SendOnly, SendOnly, Inactive),
            (RecvOnly, SendRecv, SendOnly),
            (RecvOnly, SendOnly, SendOnly),
            (Inactive, SendRecv, Inactive),
            (Inactive, SendOnly, Inactive),
        ];
        for (offered, wish, expected) in cases {
            let mut oa = alice();
            let offer = remote_offer(&format!("m=audio 30000 RTP/AVP 0\r\na={offered}\r\n"));
            let answer = oa.receive_offer(&offer, wish).unwrap();
            assert_eq!(answer.media[0].direction, expected, "{offered} {wish}");
            let negotiated = oa.negotiated().unwrap();
            assert_eq!(negotiated.local_direction, expected);
            assert_eq!(
                negotiated.remote_on_hold,
                matches!(offered, SendOnly | Inactive),
                "{offered}"
            );
            assert!(
                wire(&answer)
                    .to_string()
                    .contains(&format!("a={expected}\r\n"))
            );
        }
    }

    #[test]
    fn rfc2543_hold_offer_is_answered_recvonly_and_reported() {
        let mut oa = alice();
        let offer = remote_offer("m=audio 30000 RTP/AVP 0\r\n");
        let mut held = offer.clone();
        held.connection = Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let held = wire(&held);
        let answer = oa.receive_offer(&held, Direction::SendRecv).unwrap();
        assert_eq!(answer.media[0].direction, Direction::RecvOnly);
        let negotiated = oa.negotiated().unwrap();
        assert!(negotiated.remote_on_hold);
        assert!(negotiated.remote_address.is_unspecified());
        assert!(!negotiated.local_direction.sends());
        assert_eq!(oa.offer_direction(false), Direction::RecvOnly);
        assert_eq!(oa.offer_direction(true), Direction::Inactive);

        let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
        assert_eq!(answer.media[0].direction, Direction::SendRecv);
        assert!(!oa.negotiated().unwrap().remote_on_hold);
        assert_eq!(oa.offer_direction(false), Direction::SendRecv);
        assert_eq!(oa.offer_direction(true), Direction::SendOnly);
    }

    #[test]
    fn other_streams_are_answered_with_port_zero_and_same_formats() {
        let mut oa = alice();
        let offer = remote_offer(concat!(
            "m=video 31000 RTP/AVP 96 31\r\na=rtpmap:96 H264/90000\r\n",
            "m=audio 30000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcd\r\n",
            "m=audio 30002 RTP/AVP 9\r\n",
            "m=audio 30004 RTP/AVP 8\r\n",
            "m=image 32000 udptl t38\r\n",
        ));
        let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
        assert_eq!(answer.media.len(), 5);
        let ports: Vec<u16> = answer.media.iter().map(|m| m.port).collect();
        assert_eq!(ports, [0, 0, 0, 40000, 0]);
        for (offered, answered) in offer.media.iter().zip(&answer.media) {
            assert_eq!(offered.kind, answered.kind);
            assert_eq!(offered.proto, answered.proto);
        }
        assert_eq!(answer.media[0].formats, offer.media[0].formats);
        assert!(answer.media[1].attributes.is_empty());
        assert_eq!(answer.media[4].non_rtp_formats, ["t38"]);
        assert_eq!(answer.media[3].formats[0].encoding, "PCMA");
        let text = answer.to_string();
        assert!(text.contains("m=video 0 RTP/AVP 96 31\r\n"), "{text}");
        assert!(text.contains("m=image 0 udptl t38\r\n"));
        assert!(!text.contains("crypto"));
        assert_eq!(oa.negotiated().unwrap().remote_rtp_port, 30004);
    }

    #[test]
    fn no_common_codec_is_a_488() {
        let mut oa = OfferAnswer::new(caps(vec![Codec::Pcma]), 1, 1);
        let cases = [
            "m=audio 30000 RTP/AVP 0 18 101\r\na=rtpmap:101 telephone-event/8000\r\n",
            "m=audio 30000 RTP/SAVP 8\r\n",
            "m=audio 0 RTP/AVP 8\r\n",
            "m=video 30000 RTP/AVP 8\r\n",
            "m=audio 30000 RTP/AVP 96\r\na=rtpmap:96 PCMA/16000\r\n",
            "",
        ];
        for media in cases {
            let error = oa
                .receive_offer(&remote_offer(media), Direction::SendRecv)
                .unwrap_err();
            assert_eq!(error, SdpError::NoCommonCodec, "{media}");
            assert_eq!(error.sip_status(), 488);
        }
        assert!(oa.negotiated().is_none());
        assert!(oa.local_description().is_none());
    }

    #[test]
    fn telephone_event_needs_a_matching_clock_rate() {
        let mut oa = OfferAnswer::new(caps(vec![Codec::Pcmu]), 1, 1);
        let offer = remote_offer(concat!(
            "m=audio 30000 RTP/AVP 96 0 97 98\r\n",
            "a=rtpmap:96 opus/48000/2\r\n",
            "a=rtpmap:97 telephone-event/48000\r\n",
            "a=rtpmap:98 telephone-event/8000\r\n",
        ));
        let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
        let types: Vec<u8> = answer.media[0]
            .formats
            .iter()
            .map(|f| f.payload_type)
            .collect();
        assert_eq!(types, [0, 98]);
        assert_eq!(
            oa.negotiated()
                .unwrap()
                .telephone_event
                .as_ref()
                .unwrap()
                .payload_type,
            98
        );

        let mut opus_only = OfferAnswer::new(caps(vec![OPUS]), 1, 1);
        let answer = opus_only
            .receive_offer(&offer, Direction::SendRecv)
            .unwrap();
        let types: Vec<u8> = answer.media[0]
            .formats
            .iter()
            .map(|f| f.payload_type)
            .collect();
        assert_eq!(types, [96, 97]);
        let negotiated = opus_only.negotiated().unwrap();
        assert_eq!(negotiated.codec.payload_type, 96);
        assert_eq!(
            negotiated.telephone_event.as_ref().unwrap().clock_rate,
            48000
        );

        let mut no_dtmf = OfferAnswer::new(caps(vec![Codec::Pcmu]), 1, 1);
        no_dtmf.capabilities_mut().telephone_event = false;
        let answer = no_dtmf.receive_offer(&offer, Direction::SendRecv).unwrap();
        assert_eq!(answer.media[0].formats.len(), 1);
        assert_eq!(no_dtmf.negotiated().unwrap().telephone_event, None);
    }

    #[test]
    fn uses_peer_rtcp_port_and_ptime() {
        let mut oa = alice();
        let offer = remote_offer("m=audio 30000 RTP/AVP 8\r\na=rtcp:30011\r\na=ptime:30\r\n");
        oa.receive_offer(&offer, Direction::SendRecv).unwrap();
        let negotiated = oa.negotiated().unwrap();
        assert_eq!(negotiated.remote_rtcp_port, Some(30011));
        assert_eq!(negotiated.ptime, 30);
    }

    #[test]
    fn offer_and_answer_between_two_endpoints() {
        let mut alice = alice();
        let mut bob = bob();
        let offer = wire(&alice.create_offer(Direction::SendRecv));
        let answer = wire(&bob.receive_offer(&offer, Direction::SendRecv).unwrap());
        let types: Vec<u8> = answer.media[0]
            .formats
            .iter()
            .map(|f| f.payload_type)
            .collect();
        // Alice's order, Bob's codecs.
        assert_eq!(types, [0, 8, 101]);
        let at_alice = alice.receive_answer(&answer).unwrap();
        let at_bob = bob.negotiated().unwrap().clone();
        assert_eq!(at_alice.codec.encoding, "PCMU");
        assert_eq!(at_bob.codec.encoding, "PCMU");
        assert_eq!(at_alice.remote_address, ip("198.51.100.20"));
        assert_eq!(at_alice.remote_rtp_port, 50000);
        assert_eq!(at_bob.remote_address, ip("192.0.2.10"));
        assert_eq!(at_bob.remote_rtp_port, 40000);
        assert_eq!(at_alice.telephone_event.as_ref().unwrap().payload_type, 101);
        assert_eq!(at_alice.local_direction, Direction::SendRecv);
        assert!(!alice.offer_pending());
        assert_eq!(alice.negotiated(), Some(&at_alice));
    }

    #[test]
    fn hold_and_resume_between_two_endpoints() {
        use Direction::*;
        let mut alice = alice();
        let mut bob = bob();
        let offer = wire(&alice.create_offer(SendRecv));
        alice
            .receive_answer(&wire(&bob.receive_offer(&offer, SendRecv).unwrap()))
            .unwrap();

        // Alice holds.
        let hold = wire(&alice.create_offer(alice.offer_direction(true)));
        assert_eq!(hold.media[0].direction, SendOnly);
        assert_eq!(hold.origin.session_version, 6);
        let answer = wire(&bob.receive_offer(&hold, SendRecv).unwrap());
        assert_eq!(answer.media[0].direction, RecvOnly);
        assert!(bob.negotiated().unwrap().remote_on_hold);
        let at_alice = alice.receive_answer(&answer).unwrap();
        assert_eq!(at_alice.local_direction, SendOnly);
        assert!(!at_alice.remote_on_hold);

        // Bob holds too: he must offer inactive.
        let both = wire(&bob.create_offer(bob.offer_direction(true)));
        assert_eq!(both.media[0].direction, Inactive);
        let answer = wire(&alice.receive_offer(&both, SendOnly).unwrap());
        assert_eq!(answer.media[0].direction, Inactive);
        assert!(alice.negotiated().unwrap().remote_on_hold);
        let at_bob = bob.receive_answer(&answer).unwrap();
        assert_eq!(at_bob.local_direction, Inactive);
        // Offering inactive tells nothing new about Alice, who still holds.
        assert!(at_bob.remote_on_hold);

        // Alice resumes while Bob still holds: recvonly.
        let resume = wire(&alice.create_offer(alice.offer_direction(false)));
        assert_eq!(resume.media[0].direction, RecvOnly);
        let answer = wire(&bob.receive_offer(&resume, SendOnly).unwrap());
        assert_eq!(answer.media[0].direction, SendOnly);
        let at_alice = alice.receive_answer(&answer).unwrap();
        assert_eq!(at_alice.local_direction, RecvOnly);
        assert!(at_alice.remote_on_hold);
        assert!(!bob.negotiated().unwrap().remote_on_hold);
    }

    #[test]
    fn offerless_invite_offer_in_200_answer_in_ack() {
        // The UAS got an INVITE without SDP: it offers in the 200 OK...
        let mut uas = bob();
        let offer = wire(&uas.create_offer(Direction::SendRecv));
        // ...the UAC, which sent no SDP, answers in the ACK...
        let mut uac = alice();
        let answer = wire(&uac.receive_offer(&offer, Direction::SendRecv).unwrap());
        // ...and the UAS takes the answer from the ACK.
        let negotiated = uas.receive_answer(&answer).unwrap();
        assert_eq!(negotiated.codec.encoding, "PCMA");
        assert_eq!(negotiated.remote_rtp_port, 40000);
        assert_eq!(uac.negotiated().unwrap().codec.encoding, "PCMA");
    }

    #[test]
    fn answer_checks() {
        let mut oa = alice();
        assert_eq!(
            oa.receive_answer(&remote_offer("m=audio 1 RTP/AVP 0\r\n")),
            Err(SdpError::NoPendingOffer)
        );

        oa.create_offer(Direction::SendRecv);
        let two = remote_offer("m=audio 1 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n");
        assert_eq!(
            oa.receive_answer(&two),
            Err(SdpError::MediaCountMismatch {
                offered: 1,
                answered: 2
            })
        );

        oa.create_offer(Direction::SendRecv);
        let video = remote_offer("m=video 1 RTP/AVP 0\r\n");
        assert_eq!(
            oa.receive_answer(&video),
            Err(SdpError::MediaMismatch { index: 0 })
        );

        oa.create_offer(Direction::SendRecv);
        let rejected = remote_offer("m=audio 0 RTP/AVP 0\r\n");
        assert_eq!(oa.receive_answer(&rejected), Err(SdpError::AudioRejected));

        oa.create_offer(Direction::SendRecv);
        let foreign = remote_offer("m=audio 1 RTP/AVP 18 9\r\n");
        assert_eq!(oa.receive_answer(&foreign), Err(SdpError::NoCommonCodec));

        oa.create_offer(Direction::SendRecv);
        let no_address = SessionDescription::parse(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.5\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n",
        )
        .unwrap();
        assert_eq!(
            oa.receive_answer(&no_address),
            Err(SdpError::MissingConnection)
        );
        assert!(oa.negotiated().is_none());
        assert!(!oa.offer_pending());
    }

    #[test]
    fn answer_codec_is_the_first_one_we_offered() {
        let mut oa = alice();
        oa.create_offer(Direction::SendRecv);
        let answer = remote_offer(concat!(
            "m=audio 30000 RTP/AVP 18 8 0 111 101\r\n",
            "a=rtpmap:111 opus/48000\r\n",
            "a=rtpmap:101 telephone-event/8000\r\n",
            "a=recvonly\r\n",
        ));
        let negotiated = oa.receive_answer(&answer).unwrap();
        assert_eq!(negotiated.codec, PayloadFormat::new(8, "PCMA", 8000, None));
        assert_eq!(negotiated.telephone_event.unwrap().payload_type, 101);
        assert_eq!(negotiated.local_direction, Direction::SendOnly);
        assert!(!negotiated.remote_on_hold);

        oa.create_offer(Direction::SendRecv);
        let holding = remote_offer("m=audio 30000 RTP/AVP 0\r\na=sendonly\r\n");
        let negotiated = oa.receive_answer(&holding).unwrap();
        assert_eq!(negotiated.local_direction, Direction::RecvOnly);
        assert!(negotiated.remote_on_hold);
    }

    #[test]
    fn answer_without_rtpmap_uses_our_mapping() {
        let mut oa = alice();
        oa.create_offer(Direction::SendRecv);
        let answer = remote_offer("m=audio 30000 RTP/AVP 111 110\r\n");
        let negotiated = oa.receive_answer(&answer).unwrap();
        assert_eq!(negotiated.codec.encoding, "opus");
        assert_eq!(negotiated.codec.channels, Some(2));
        assert_eq!(negotiated.telephone_event.unwrap().clock_rate, 48000);
    }

    #[test]
    fn reoffer_keeps_media_lines_and_payload_types() {
        let mut oa = alice();
        let offer = remote_offer(concat!(
            "m=video 31000 RTP/AVP 31\r\n",
            "m=audio 30000 RTP/AVP 96 0 97\r\n",
            "a=rtpmap:96 opus/48000/2\r\n",
            "a=rtpmap:97 telephone-event/48000\r\n",
            "m=image 32000 udptl t38\r\n",
        ));
        let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
        let reoffer = oa.create_offer(Direction::SendOnly);
        assert_eq!(
            reoffer.origin.session_version,
            answer.origin.session_version + 1
        );
        assert_eq!(reoffer.media.len(), 3);
        assert_eq!(reoffer.media[0].port, 0);
        assert_eq!(reoffer.media[0].kind, MediaKind::Video);
        assert_eq!(reoffer.media[2].non_rtp_formats, ["t38"]);
        let audio = &reoffer.media[1];
        assert_eq!(audio.direction, Direction::SendOnly);
        let types: Vec<(u8, &str, u32)> = audio
            .formats
            .iter()
            .map(|f| (f.payload_type, f.encoding.as_str(), f.clock_rate))
            .collect();
        // Opus and its events keep 96 and 97; 111 and 110 are not used for anything else.
        assert_eq!(
            types,
            [
                (96, "opus", 48000),
                (0, "PCMU", 8000),
                (8, "PCMA", 8000),
                (101, "telephone-event", 8000),
                (97, "telephone-event", 48000),
            ]
        );
        let peer_answer = remote_offer(concat!(
            "m=video 0 RTP/AVP 31\r\n",
            "m=audio 30000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\na=recvonly\r\n",
            "m=image 0 udptl t38\r\n",
        ));
        let negotiated = oa.receive_answer(&peer_answer).unwrap();
        assert_eq!(negotiated.codec.payload_type, 96);
        assert_eq!(negotiated.local_direction, Direction::SendOnly);
    }

    #[test]
    fn dynamic_payload_type_collisions_pick_a_free_number() {
        let mut oa = alice();
        // The peer uses 111 for the 48 kHz events, so opus has to move.
        let offer = remote_offer(concat!(
            "m=audio 30000 RTP/AVP 0 111\r\n",
            "a=rtpmap:111 telephone-event/8000\r\n",
        ));
        oa.receive_offer(&offer, Direction::SendRecv).unwrap();
        let reoffer = oa.create_offer(Direction::SendRecv);
        let types: Vec<(u8, &str)> = reoffer.media[0]
            .formats
            .iter()
            .map(|f| (f.payload_type, f.encoding.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                (96, "opus"),
                (0, "PCMU"),
                (8, "PCMA"),
                (111, "telephone-event"),
                (110, "telephone-event"),
            ]
        );
    }

    #[test]
    fn crossing_offers_are_refused_with_491() {
        let mut oa = alice();
        oa.create_offer(Direction::SendRecv);
        let error = oa
            .receive_offer(&remote_offer(PEER_AUDIO), Direction::SendRecv)
            .unwrap_err();
        assert_eq!(error, SdpError::OfferPending);
        assert_eq!(error.sip_status(), 491);
        assert!(oa.cancel_offer());
        assert!(!oa.cancel_offer());
        assert!(
            oa.receive_offer(&remote_offer(PEER_AUDIO), Direction::SendRecv)
                .is_ok()
        );
    }

    #[test]
    fn answer_to_identical_reoffer_keeps_the_version() {
        let mut oa = alice();
        let offer = remote_offer(PEER_AUDIO);
        let first = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
        let refresh = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
        assert_eq!(first, refresh);
        let hold = oa.receive_offer(&offer, Direction::SendOnly).unwrap();
        assert_eq!(
            hold.origin.session_version,
            first.origin.session_version + 1
        );
    }

    #[test]
    fn sloppy_opus_without_channels_is_accepted() {
        let mut oa = OfferAnswer::new(caps(vec![OPUS]), 1, 1);
        let offer = remote_offer("m=audio 30000 RTP/AVP 107\r\na=rtpmap:107 OPUS/48000\r\n");
        let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
        assert_eq!(answer.media[0].formats, vec![OPUS.payload_format(107)]);
    }

    #[test]
    fn codec_descriptions() {
        assert_eq!(Codec::G722.clock_rate(), 8000);
        assert_eq!(Codec::G722.default_payload_type(), 9);
        assert!(Codec::Pcma.is_static());
        assert!(!OPUS.is_static());
        assert_eq!(
            Codec::Opus { inband_fec: false }.payload_format(111),
            PayloadFormat::new(111, "opus", 48000, Some(2)).with_fmtp("minptime=10")
        );
        assert!(Codec::Pcmu.matches(&PayloadFormat::from_static(0).unwrap()));
        assert!(!Codec::Pcmu.matches(&PayloadFormat::from_static(8).unwrap()));
    }
}
