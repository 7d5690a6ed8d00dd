//! RFC 3264 offer/answer for a call with one audio stream.
//!
//! [`OfferAnswer`] does not care who sent the INVITE: a UAC puts [`OfferAnswer::create_offer`]
//! in its INVITE and feeds the 18x/200 body to [`OfferAnswer::receive_answer`]; a UAS that got an
//! INVITE without SDP does exactly the same with its 200 OK and the ACK body; a re-INVITE with
//! an offer goes through [`OfferAnswer::receive_offer`] whichever side sent the first INVITE.

use core::fmt;
use core::net::IpAddr;

use super::SdpError;
use super::session::{
    Attribute, Direction, MediaDescription, MediaKind, Origin, PayloadFormat, SessionDescription,
};
use crate::media::srtp::{
    CryptoAttribute, CryptoSuite, KEY_SALT_LEN, Redacted, SrtpError, SrtpPolicy, SrtpSession,
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
/// The profiles we answer audio on: there is no AVPF feedback and no DTLS-SRTP behind this
/// layer.
const PLAIN_PROFILE: &str = "RTP/AVP";
const SECURE_PROFILE: &str = "RTP/SAVP";
const CRYPTO_ATTRIBUTE: &str = "crypto";
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
///
/// `Debug` leaves the SRTP key out.
#[derive(Clone, PartialEq, Eq)]
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
    /// Whether to offer and accept SRTP with SDES keys; see [`OfferAnswer`].
    pub srtp: SrtpPolicy,
    /// Our SRTP master key (16 bytes) and salt (14 bytes) for this call, which the caller
    /// draws from a CSPRNG for every call; nothing here generates keys. It goes into every
    /// `a=crypto` line we send until the caller replaces it. Without a key, `Optional` acts as
    /// `Off` and `Mandatory` fails closed: its offers carry `RTP/SAVP` without crypto lines,
    /// which no peer can accept, and offers received fail with [`SdpError::SrtpKeyMissing`].
    pub srtp_key_salt: Option<[u8; KEY_SALT_LEN]>,
    /// Session-level attributes for every SDP we write, e.g. `a=record:on` (RFC 7866 6.1.2);
    /// changing them bumps the `o=` version like any other change.
    pub session_attributes: Vec<Attribute>,
}

impl LocalCapabilities {
    /// With telephone events, a ptime of [`DEFAULT_PTIME`] and SRTP off.
    pub fn new(address: IpAddr, audio_port: u16, codecs: Vec<Codec>) -> Self {
        LocalCapabilities {
            address,
            audio_port,
            codecs,
            telephone_event: true,
            ptime: DEFAULT_PTIME,
            srtp: SrtpPolicy::Off,
            srtp_key_salt: None,
            session_attributes: Vec::new(),
        }
    }

    /// The same with an SRTP policy and this call's key.
    pub fn with_srtp(mut self, policy: SrtpPolicy, key_salt: [u8; KEY_SALT_LEN]) -> Self {
        self.srtp = policy;
        self.srtp_key_salt = Some(key_salt);
        self
    }

    /// Our key when SRTP may be used at all.
    fn srtp_key(&self) -> Option<&[u8; KEY_SALT_LEN]> {
        match self.srtp {
            SrtpPolicy::Off => None,
            SrtpPolicy::Optional | SrtpPolicy::Mandatory => self.srtp_key_salt.as_ref(),
        }
    }
}

impl fmt::Debug for LocalCapabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCapabilities")
            .field("address", &self.address)
            .field("audio_port", &self.audio_port)
            .field("codecs", &self.codecs)
            .field("telephone_event", &self.telephone_event)
            .field("ptime", &self.ptime)
            .field("srtp", &self.srtp)
            .field(
                "srtp_key_salt",
                &self.srtp_key_salt.as_ref().map(|_| Redacted),
            )
            .finish()
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
    /// The agreed SRTP suite and keys; `None` for plain RTP.
    pub srtp: Option<NegotiatedSrtp>,
    /// The peer's `a=record` (RFC 7866 6.1.2): `on` means the other side records the call.
    pub remote_record: Option<String>,
    /// The peer's `a=recordpref`: what it would like us to do about recording.
    pub remote_recordpref: Option<String>,
}

/// A recording attribute at media level, else at session level (RFC 7866 6.1.2).
fn recording_attribute(
    sdp: &SessionDescription,
    media: &MediaDescription,
    name: &str,
) -> Option<String> {
    media
        .attributes
        .iter()
        .chain(sdp.attributes.iter())
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .and_then(|a| a.value.clone())
        .map(|v| v.trim().to_ascii_lowercase())
}

/// The SRTP keying agreed for the audio stream. `Debug` shows the suite only.
#[derive(Clone, PartialEq, Eq)]
pub struct NegotiatedSrtp {
    pub suite: CryptoSuite,
    /// Our master key and salt: protects what we send.
    pub local_key_salt: [u8; KEY_SALT_LEN],
    /// The peer's master key and salt: unprotects what we receive.
    pub remote_key_salt: [u8; KEY_SALT_LEN],
}

impl NegotiatedSrtp {
    /// The packet transform for this keying.
    pub fn session(&self) -> Result<SrtpSession, SrtpError> {
        SrtpSession::new(self.suite, &self.local_key_salt, &self.remote_key_salt)
    }
}

impl fmt::Debug for NegotiatedSrtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NegotiatedSrtp")
            .field("suite", &self.suite)
            .field("local_key_salt", &Redacted)
            .field("remote_key_salt", &Redacted)
            .finish()
    }
}

#[derive(Debug, Clone)]
struct PendingOffer {
    offer: SessionDescription,
    audio_index: usize,
    direction: Direction,
    /// The policy and crypto lines the offer was made with, which the answer is checked against
    /// even if the capabilities change meanwhile.
    srtp: SrtpPolicy,
    crypto: Vec<CryptoAttribute>,
}

/// An offered audio stream we can accept, with what we accept of it.
struct Acceptable<'a> {
    index: usize,
    media: &'a MediaDescription,
    common: Vec<(PayloadFormat, Codec)>,
    /// The offered line we answer and the keying that results.
    srtp: Option<(u32, NegotiatedSrtp)>,
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
///
/// # SRTP with SDES keys (RFC 4568, RFC 3711)
///
/// [`LocalCapabilities::srtp`] decides, with the key the caller put in
/// [`LocalCapabilities::srtp_key_salt`]:
///
/// * offers: `Mandatory` offers `RTP/SAVP` with one `a=crypto` line per supported suite
///   (`AES_CM_128_HMAC_SHA1_80` tag 1, then `AES_CM_128_HMAC_SHA1_32` tag 2, both with our
///   key); `Optional` offers the same lines on `RTP/AVP`, the widespread "best effort SRTP"
///   practice: RFC 4568 defines `a=crypto` for secure profiles only, but most peers without
///   SRTP ignore the attribute and answer plain RTP, and many with SRTP answer with a key
///   (a few strict ones refuse the offer); `Off` offers plain `RTP/AVP`;
/// * answers: the first offered line whose suite and parameters we support is answered with its
///   tag and suite and our key. `RTP/SAVP` is refused (port 0) when SRTP is off; `RTP/AVP` with
///   crypto lines gets SRTP under `Optional` and `Mandatory` and plain RTP under `Off`; plain
///   `RTP/AVP` under `Mandatory` fails with [`SdpError::SrtpRequired`] (488);
/// * lines with an MKI or with session parameters other than `KDR=0` and `WSH` are skipped:
///   the SRTP transform (webrtc-srtp) supports neither MKIs nor key derivation rates,
///   unencrypted or unauthenticated SRTP, or FEC;
/// * [`Negotiated::srtp`] holds the suite and both keys on the offerer's and the answerer's side.
///
/// Rekeying: every offer and answer carries the key in the capabilities at that moment, so a
/// re-offer or re-answer keeps our key unless the caller sets a new one with
/// [`OfferAnswer::capabilities_mut`]; the peer may change its own key in any exchange. When
/// the new [`NegotiatedSrtp`] equals the previous one, the media layer must keep its
/// [`SrtpSession`] (rollover counters and replay windows carry on, RFC 4568 section 7.1.4);
/// when it differs, it builds a new one.
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

    /// Generates an offer with all our codecs on one audio stream, RTP/AVP or RTP/SAVP as the
    /// SRTP policy says, for an INVITE, a re-INVITE, or a 200 OK to an INVITE without SDP. A
    /// second call before the answer replaces the pending offer (e.g. to retry after a 491).
    pub fn create_offer(&mut self, direction: Direction) -> SessionDescription {
        let formats = self.offer_formats();
        let crypto: Vec<CryptoAttribute> = match self.capabilities.srtp_key() {
            Some(key) => CryptoSuite::ALL
                .into_iter()
                .zip(1..)
                .map(|(suite, tag)| CryptoAttribute::new(tag, suite, *key))
                .collect(),
            None => Vec::new(),
        };
        let profile = match self.capabilities.srtp {
            SrtpPolicy::Mandatory => SECURE_PROFILE,
            SrtpPolicy::Off | SrtpPolicy::Optional => PLAIN_PROFILE,
        };
        let audio = self.local_audio(formats, direction, profile, &crypto);
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
            srtp: self.capabilities.srtp,
            crypto,
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
    /// The first RTP/AVP or RTP/SAVP audio stream with a codec in common and keying our SRTP
    /// policy accepts (see [`OfferAnswer`]) is accepted; the answer lists the
    /// common codecs under the offer's payload type numbers and in the offer's order (the
    /// offerer's preference, so the codec both sides use is its favourite), plus each offered
    /// `telephone-event` whose clock rate matches one of them. Every other media line is
    /// answered with port 0. The direction is the offer's reversed and limited to
    /// `local_wish`: pass [`Direction::SendRecv`], or [`Direction::SendOnly`] while the user
    /// holds the call.
    ///
    /// When no stream is acceptable, the error is the SRTP reason that made the first stream
    /// with a common codec unacceptable ([`SdpError::SrtpRequired`],
    /// [`SdpError::SrtpNotEnabled`], [`SdpError::NoCryptoSuite`]), else
    /// [`SdpError::NoCommonCodec`].
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
        if self.capabilities.srtp == SrtpPolicy::Mandatory
            && self.capabilities.srtp_key_salt.is_none()
        {
            return Err(SdpError::SrtpKeyMissing);
        }
        let mut refusal = None;
        let mut accepted = None;
        for (index, media) in offer.media.iter().enumerate() {
            match self.acceptable(index, media) {
                Ok(found) => {
                    accepted = Some(found);
                    break;
                }
                Err(SdpError::NoCommonCodec) => {}
                Err(reason) => {
                    refusal.get_or_insert(reason);
                }
            }
        }
        let Acceptable {
            index: audio_index,
            media: offered,
            common,
            srtp,
        } = accepted.ok_or_else(|| refusal.unwrap_or(SdpError::NoCommonCodec))?;
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
        let profile = if offered.proto.eq_ignore_ascii_case(SECURE_PROFILE) {
            SECURE_PROFILE
        } else {
            PLAIN_PROFILE
        };
        let crypto: Vec<CryptoAttribute> = srtp
            .iter()
            .map(|(tag, keying)| CryptoAttribute::new(*tag, keying.suite, keying.local_key_salt))
            .collect();
        let audio = self.local_audio(answer_formats, local_direction, profile, &crypto);
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
            srtp: srtp.map(|(_, keying)| keying),
            remote_record: recording_attribute(offer, offered, "record"),
            remote_recordpref: recording_attribute(offer, offered, "recordpref"),
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
    /// The codec is the first one in the answer that we offered. With crypto lines in our offer,
    /// the answer must carry exactly one `a=crypto` with the tag and suite of one of them, or,
    /// unless our policy was `Mandatory`, none for plain RTP; without, it must carry none.
    ///
    /// The pending offer is consumed even when the answer is unusable, since the exchange is
    /// over either way; the previous negotiation then stays in force.
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
        let srtp = answered_srtp(&pending, theirs)?;

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
            srtp,
            remote_record: recording_attribute(answer, theirs, "record"),
            remote_recordpref: recording_attribute(answer, theirs, "recordpref"),
        };
        self.remember_payload_types(&ours.formats);
        self.audio_index = pending.audio_index;
        self.negotiated = Some(negotiated.clone());
        Ok(negotiated)
    }

    /// Whether we can accept this offered stream, and how; [`SdpError::NoCommonCodec`] for a
    /// stream that is not usable audio at all, an SRTP reason for one that would be with
    /// another policy.
    fn acceptable<'a>(
        &self,
        index: usize,
        media: &'a MediaDescription,
    ) -> Result<Acceptable<'a>, SdpError> {
        let secure = media.proto.eq_ignore_ascii_case(SECURE_PROFILE);
        let plain = media.proto.eq_ignore_ascii_case(PLAIN_PROFILE);
        if media.kind != MediaKind::Audio || media.is_rejected() || !(secure || plain) {
            return Err(SdpError::NoCommonCodec);
        }
        let common = self.common_formats(media);
        if common.is_empty() {
            return Err(SdpError::NoCommonCodec);
        }
        let has_crypto = media.attributes.iter().any(is_crypto);
        let srtp = match self.capabilities.srtp_key() {
            None if secure && has_crypto => return Err(SdpError::SrtpNotEnabled),
            // RTP/SAVP keyed some other way (MIKEY...) is nothing we could ever accept.
            None if secure => return Err(SdpError::NoCommonCodec),
            None => None,
            Some(key) => match supported_crypto(media) {
                Some(theirs) => Some((
                    theirs.tag,
                    NegotiatedSrtp {
                        suite: theirs.suite,
                        local_key_salt: *key,
                        remote_key_salt: theirs.key_salt,
                    },
                )),
                None if secure || (has_crypto && self.is_mandatory()) => {
                    return Err(SdpError::NoCryptoSuite);
                }
                None if self.is_mandatory() => return Err(SdpError::SrtpRequired),
                None => None,
            },
        };
        Ok(Acceptable {
            index,
            media,
            common,
            srtp,
        })
    }

    fn is_mandatory(&self) -> bool {
        self.capabilities.srtp == SrtpPolicy::Mandatory
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

    fn local_audio(
        &self,
        formats: Vec<PayloadFormat>,
        direction: Direction,
        profile: &str,
        crypto: &[CryptoAttribute],
    ) -> MediaDescription {
        MediaDescription {
            formats,
            direction,
            ptime: Some(self.capabilities.ptime),
            attributes: crypto
                .iter()
                .map(|line| Attribute::new(CRYPTO_ATTRIBUTE, line.to_string()))
                .collect(),
            ..MediaDescription::new(MediaKind::Audio, self.capabilities.audio_port, profile)
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
            attributes: self.capabilities.session_attributes.clone(),
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

fn is_crypto(attribute: &Attribute) -> bool {
    attribute.name == CRYPTO_ATTRIBUTE
}

/// The first offered `a=crypto` line we can answer, skipping unknown suites, bad keys and
/// parameters the SRTP transform does not implement.
fn supported_crypto(media: &MediaDescription) -> Option<CryptoAttribute> {
    media
        .attributes
        .iter()
        .filter(|attribute| is_crypto(attribute))
        .filter_map(|attribute| CryptoAttribute::parse(attribute.value.as_deref()?).ok())
        .find(usable_crypto)
}

/// No MKI (webrtc-srtp cannot read one in packets) and only the session parameters that change
/// nothing for it (RFC 4568 section 6.3): a key derivation rate of 0 and a window size hint.
fn usable_crypto(line: &CryptoAttribute) -> bool {
    line.mki.is_none()
        && line
            .session_params
            .iter()
            .all(|param| param == "KDR=0" || param.starts_with("WSH="))
}

/// The keying an answer gives to our pending offer (RFC 4568 section 7.1.3).
fn answered_srtp(
    pending: &PendingOffer,
    answered: &MediaDescription,
) -> Result<Option<NegotiatedSrtp>, SdpError> {
    let lines: Vec<&Attribute> = answered
        .attributes
        .iter()
        .filter(|a| is_crypto(a))
        .collect();
    let line = match lines.as_slice() {
        [] if pending.srtp == SrtpPolicy::Mandatory => return Err(SdpError::SrtpRequired),
        [] => return Ok(None),
        [line] => line,
        _ => return Err(SdpError::CryptoMismatch),
    };
    let theirs = CryptoAttribute::parse(line.value.as_deref().unwrap_or_default())
        .map_err(|_| SdpError::CryptoMismatch)?;
    let ours = pending
        .crypto
        .iter()
        .find(|ours| ours.tag == theirs.tag && ours.suite == theirs.suite)
        .filter(|_| usable_crypto(&theirs))
        .ok_or(SdpError::CryptoMismatch)?;
    Ok(Some(NegotiatedSrtp {
        suite: theirs.suite,
        local_key_salt: ours.key_salt,
        remote_key_salt: theirs.key_salt,
    }))
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

    // SRTP with SDES keys.

    const SUITE_80: CryptoSuite = CryptoSuite::AesCm128HmacSha1_80;
    const SUITE_32: CryptoSuite = CryptoSuite::AesCm128HmacSha1_32;

    fn key(seed: u8) -> [u8; KEY_SALT_LEN] {
        core::array::from_fn(|i| seed.wrapping_add(7 * i as u8))
    }

    fn inline(key: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(key)
    }

    fn crypto_line(tag: u32, suite: &str, key: &[u8]) -> String {
        format!("a=crypto:{tag} {suite} inline:{}\r\n", inline(key))
    }

    fn with_srtp(policy: SrtpPolicy, seed: u8) -> OfferAnswer {
        OfferAnswer::new(
            caps(vec![Codec::Pcmu, Codec::Pcma]).with_srtp(policy, key(seed)),
            1,
            1,
        )
    }

    fn crypto_of(media: &MediaDescription) -> Vec<CryptoAttribute> {
        media
            .attributes
            .iter()
            .filter(|a| a.name == "crypto")
            .map(|a| CryptoAttribute::parse(a.value.as_deref().unwrap()).unwrap())
            .collect()
    }

    /// A peer's PCMU stream with the given profile and extra lines.
    fn peer_stream(profile: &str, lines: &str) -> String {
        format!("m=audio 30000 {profile} 0\r\n{lines}")
    }

    #[test]
    fn mandatory_offers_savp_with_both_suites_and_our_key() {
        let mut oa = with_srtp(SrtpPolicy::Mandatory, 10);
        let offer = wire(&oa.create_offer(Direction::SendRecv));
        let audio = &offer.media[0];
        assert_eq!(audio.proto, "RTP/SAVP");
        let lines = crypto_of(audio);
        assert_eq!(
            lines,
            [
                CryptoAttribute::new(1, SUITE_80, key(10)),
                CryptoAttribute::new(2, SUITE_32, key(10)),
            ]
        );
        let text = offer.to_string();
        assert!(
            text.contains("m=audio 40000 RTP/SAVP 0 8 101\r\n"),
            "{text}"
        );
        assert!(text.contains(&format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
            inline(&key(10))
        )));
        assert!(text.contains(&format!(
            "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}\r\n",
            inline(&key(10))
        )));
    }

    #[test]
    fn optional_offers_avp_with_crypto_and_off_offers_plain_avp() {
        let mut optional = with_srtp(SrtpPolicy::Optional, 10);
        let offer = optional.create_offer(Direction::SendRecv);
        assert_eq!(offer.media[0].proto, "RTP/AVP");
        assert_eq!(crypto_of(&offer.media[0]).len(), 2);

        let mut off = with_srtp(SrtpPolicy::Off, 10);
        let offer = off.create_offer(Direction::SendRecv);
        assert_eq!(offer.media[0].proto, "RTP/AVP");
        assert!(offer.media[0].attributes.is_empty());
        assert!(!offer.to_string().contains("crypto"));
    }

    #[test]
    fn missing_key_makes_optional_plain_and_mandatory_fail_closed() {
        let mut optional = alice();
        optional.capabilities_mut().srtp = SrtpPolicy::Optional;
        let offer = optional.create_offer(Direction::SendRecv);
        assert_eq!(offer.media[0].proto, "RTP/AVP");
        assert!(offer.media[0].attributes.is_empty());
        optional.cancel_offer();
        let peer = remote_offer(&peer_stream(
            "RTP/AVP",
            &crypto_line(1, "AES_CM_128_HMAC_SHA1_80", &key(50)),
        ));
        optional.receive_offer(&peer, Direction::SendRecv).unwrap();
        assert_eq!(optional.negotiated().unwrap().srtp, None);

        let mut mandatory = alice();
        mandatory.capabilities_mut().srtp = SrtpPolicy::Mandatory;
        let offer = mandatory.create_offer(Direction::SendRecv);
        assert_eq!(offer.media[0].proto, "RTP/SAVP");
        assert!(offer.media[0].attributes.is_empty());
        mandatory.cancel_offer();
        let error = mandatory
            .receive_offer(&peer, Direction::SendRecv)
            .unwrap_err();
        assert_eq!(error, SdpError::SrtpKeyMissing);
        assert_eq!(error.sip_status(), 500);
        assert!(mandatory.negotiated().is_none());
    }

    #[test]
    fn answer_to_savp_takes_the_first_supported_line_with_our_key() {
        let mut oa = with_srtp(SrtpPolicy::Optional, 20);
        let lines = [
            crypto_line(1, "AES_256_CM_HMAC_SHA1_80", &[1; 46]),
            crypto_line(2, "AES_CM_128_HMAC_SHA1_80", &[2; 16]),
            format!(
                "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{}|2^31|1:4\r\n",
                inline(&key(3))
            ),
            format!(
                "a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{} UNENCRYPTED_SRTCP\r\n",
                inline(&key(4))
            ),
            format!(
                "a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:{}|2^31 KDR=0 WSH=128\r\n",
                inline(&key(5))
            ),
            crypto_line(6, "AES_CM_128_HMAC_SHA1_80", &key(6)),
        ]
        .concat();
        let offer = remote_offer(&peer_stream("RTP/SAVP", &lines));
        let answer = wire(&oa.receive_offer(&offer, Direction::SendRecv).unwrap());
        let audio = &answer.media[0];
        assert_eq!((audio.port, audio.proto.as_str()), (40000, "RTP/SAVP"));
        assert_eq!(
            crypto_of(audio),
            [CryptoAttribute::new(5, SUITE_32, key(20))]
        );
        let srtp = oa.negotiated().unwrap().srtp.clone().unwrap();
        assert_eq!(srtp.suite, SUITE_32);
        assert_eq!(srtp.local_key_salt, key(20));
        assert_eq!(srtp.remote_key_salt, key(5));
    }

    #[test]
    fn savp_is_refused_when_srtp_is_off() {
        let crypto = crypto_line(1, "AES_CM_128_HMAC_SHA1_80", &key(50));
        let both = remote_offer(&format!(
            "{}{}",
            peer_stream("RTP/SAVP", &crypto),
            "m=audio 30002 RTP/AVP 8\r\n"
        ));
        let mut oa = with_srtp(SrtpPolicy::Off, 10);
        let answer = oa.receive_offer(&both, Direction::SendRecv).unwrap();
        let ports: Vec<u16> = answer.media.iter().map(|m| m.port).collect();
        assert_eq!(ports, [0, 40000]);
        assert_eq!(answer.media[0].proto, "RTP/SAVP");
        assert!(!answer.to_string().contains("crypto"));
        assert_eq!(oa.negotiated().unwrap().srtp, None);
        assert_eq!(oa.negotiated().unwrap().remote_rtp_port, 30002);

        let mut oa = with_srtp(SrtpPolicy::Off, 10);
        let only = remote_offer(&peer_stream("RTP/SAVP", &crypto));
        let error = oa.receive_offer(&only, Direction::SendRecv).unwrap_err();
        assert_eq!(error, SdpError::SrtpNotEnabled);
        assert_eq!(error.sip_status(), 488);
        assert!(oa.negotiated().is_none() && oa.local_description().is_none());
    }

    #[test]
    fn avp_with_crypto_follows_the_policy() {
        let offer = remote_offer(&peer_stream(
            "RTP/AVP",
            &crypto_line(7, "AES_CM_128_HMAC_SHA1_80", &key(50)),
        ));
        for policy in [SrtpPolicy::Optional, SrtpPolicy::Mandatory] {
            let mut oa = with_srtp(policy, 10);
            let answer = wire(&oa.receive_offer(&offer, Direction::SendRecv).unwrap());
            assert_eq!(answer.media[0].proto, "RTP/AVP", "{policy}");
            assert_eq!(
                crypto_of(&answer.media[0]),
                [CryptoAttribute::new(7, SUITE_80, key(10))]
            );
            let srtp = oa.negotiated().unwrap().srtp.clone().unwrap();
            assert_eq!(
                (srtp.suite, srtp.local_key_salt, srtp.remote_key_salt),
                (SUITE_80, key(10), key(50))
            );
        }
        let mut off = with_srtp(SrtpPolicy::Off, 10);
        let answer = off.receive_offer(&offer, Direction::SendRecv).unwrap();
        assert_eq!(answer.media[0].proto, "RTP/AVP");
        assert!(answer.media[0].attributes.is_empty());
        assert_eq!(off.negotiated().unwrap().srtp, None);
    }

    #[test]
    fn plain_avp_under_mandatory_is_a_488_srtp_required() {
        let offer = remote_offer(&peer_stream("RTP/AVP", ""));
        let mut oa = with_srtp(SrtpPolicy::Mandatory, 10);
        let error = oa.receive_offer(&offer, Direction::SendRecv).unwrap_err();
        assert_eq!(error, SdpError::SrtpRequired);
        assert_eq!(error.to_string(), "SRTP required");
        assert_eq!(error.sip_status(), 488);
        assert!(oa.negotiated().is_none());

        let mut optional = with_srtp(SrtpPolicy::Optional, 10);
        let answer = optional.receive_offer(&offer, Direction::SendRecv).unwrap();
        assert!(answer.media[0].attributes.is_empty());
        assert_eq!(optional.negotiated().unwrap().srtp, None);

        // A codec mismatch stays a codec mismatch.
        let pcmu_only = remote_offer("m=audio 30000 RTP/AVP 18\r\n");
        assert_eq!(
            oa.receive_offer(&pcmu_only, Direction::SendRecv),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn unsupported_crypto_lines_only() {
        let aes256 = crypto_line(1, "AES_256_CM_HMAC_SHA1_80", &[1; 46]);
        let avp = remote_offer(&peer_stream("RTP/AVP", &aes256));
        let savp = remote_offer(&peer_stream("RTP/SAVP", &aes256));
        let savp_without_crypto = remote_offer(&peer_stream("RTP/SAVP", ""));

        let mut optional = with_srtp(SrtpPolicy::Optional, 10);
        optional.receive_offer(&avp, Direction::SendRecv).unwrap();
        assert_eq!(optional.negotiated().unwrap().srtp, None);
        for offer in [&savp, &savp_without_crypto] {
            assert_eq!(
                with_srtp(SrtpPolicy::Optional, 10).receive_offer(offer, Direction::SendRecv),
                Err(SdpError::NoCryptoSuite)
            );
        }
        for offer in [&avp, &savp, &savp_without_crypto] {
            assert_eq!(
                with_srtp(SrtpPolicy::Mandatory, 10).receive_offer(offer, Direction::SendRecv),
                Err(SdpError::NoCryptoSuite)
            );
        }
    }

    #[test]
    fn answer_crypto_must_be_one_of_our_lines() {
        let answer_with = |lines: &str| remote_offer(&peer_stream("RTP/AVP", lines));
        let good = crypto_line(2, "AES_CM_128_HMAC_SHA1_32", &key(60));
        let bad_answers = [
            crypto_line(3, "AES_CM_128_HMAC_SHA1_80", &key(60)),
            crypto_line(1, "AES_CM_128_HMAC_SHA1_32", &key(60)),
            crypto_line(2, "AES_CM_128_HMAC_SHA1_32", &[6; 20]),
            format!("{good}{good}"),
            format!(
                "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}|1:4\r\n",
                inline(&key(60))
            ),
            "a=crypto:2 AES_CM_128_HMAC_SHA1_32\r\n".to_owned(),
        ];
        for lines in &bad_answers {
            let mut oa = with_srtp(SrtpPolicy::Optional, 10);
            oa.create_offer(Direction::SendRecv);
            assert_eq!(
                oa.receive_answer(&answer_with(lines)),
                Err(SdpError::CryptoMismatch),
                "{lines}"
            );
            assert!(oa.negotiated().is_none());
            assert!(!oa.offer_pending());
        }

        let mut oa = with_srtp(SrtpPolicy::Optional, 10);
        oa.create_offer(Direction::SendRecv);
        let srtp = oa
            .receive_answer(&answer_with(&good))
            .unwrap()
            .srtp
            .unwrap();
        assert_eq!(
            (srtp.suite, srtp.local_key_salt, srtp.remote_key_salt),
            (SUITE_32, key(10), key(60))
        );

        // Optional accepts a plain answer; Mandatory does not.
        oa.create_offer(Direction::SendRecv);
        assert_eq!(oa.receive_answer(&answer_with("")).unwrap().srtp, None);
        let mut mandatory = with_srtp(SrtpPolicy::Mandatory, 10);
        mandatory.create_offer(Direction::SendRecv);
        assert_eq!(
            mandatory.receive_answer(&remote_offer(&peer_stream("RTP/SAVP", ""))),
            Err(SdpError::SrtpRequired)
        );

        // Crypto we never offered.
        let mut off = with_srtp(SrtpPolicy::Off, 10);
        off.create_offer(Direction::SendRecv);
        assert_eq!(
            off.receive_answer(&answer_with(&good)),
            Err(SdpError::CryptoMismatch)
        );
    }

    #[test]
    fn answer_is_checked_against_the_offer_as_it_was_sent() {
        let mut oa = with_srtp(SrtpPolicy::Optional, 10);
        oa.create_offer(Direction::SendRecv);
        oa.capabilities_mut().srtp_key_salt = Some(key(11));
        oa.capabilities_mut().srtp = SrtpPolicy::Off;
        let answer = remote_offer(&peer_stream(
            "RTP/AVP",
            &crypto_line(1, "AES_CM_128_HMAC_SHA1_80", &key(60)),
        ));
        let srtp = oa.receive_answer(&answer).unwrap().srtp.unwrap();
        assert_eq!(srtp.local_key_salt, key(10));
    }

    #[test]
    fn two_endpoints_negotiate_srtp_and_their_keys_cross_over() {
        let mut alice = OfferAnswer::new(
            caps(vec![OPUS, Codec::Pcmu]).with_srtp(SrtpPolicy::Mandatory, key(100)),
            1000,
            5,
        );
        let mut bob = OfferAnswer::new(
            LocalCapabilities::new(ip("198.51.100.20"), 50000, vec![Codec::Pcmu])
                .with_srtp(SrtpPolicy::Optional, key(200)),
            2000,
            1,
        );
        let offer = wire(&alice.create_offer(Direction::SendRecv));
        let answer = wire(&bob.receive_offer(&offer, Direction::SendRecv).unwrap());
        assert_eq!(answer.media[0].proto, "RTP/SAVP");
        let at_alice = alice.receive_answer(&answer).unwrap().srtp.unwrap();
        let at_bob = bob.negotiated().unwrap().srtp.clone().unwrap();
        assert_eq!(at_alice.suite, SUITE_80);
        assert_eq!(at_bob.suite, SUITE_80);
        assert_eq!(at_alice.local_key_salt, key(100));
        assert_eq!(at_alice.local_key_salt, at_bob.remote_key_salt);
        assert_eq!(at_bob.local_key_salt, at_alice.remote_key_salt);
        assert_ne!(at_alice.local_key_salt, at_alice.remote_key_salt);

        let mut alice_media = at_alice.session().unwrap();
        let mut bob_media = at_bob.session().unwrap();
        let packet = [0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 42, 0xd5, 0xd5, 0xd5];
        let sent = alice_media.protect_rtp(&packet).unwrap();
        assert_eq!(bob_media.unprotect_rtp(&sent).unwrap(), packet);
        let reply = bob_media.protect_rtp(&packet).unwrap();
        assert_eq!(alice_media.unprotect_rtp(&reply).unwrap(), packet);
    }

    #[test]
    fn reoffers_keep_the_keys_until_the_caller_changes_them() {
        let mut alice = with_srtp(SrtpPolicy::Optional, 100);
        let mut bob = with_srtp(SrtpPolicy::Optional, 200);
        let offer = wire(&alice.create_offer(Direction::SendRecv));
        let first = alice
            .receive_answer(&wire(
                &bob.receive_offer(&offer, Direction::SendRecv).unwrap(),
            ))
            .unwrap()
            .srtp
            .unwrap();

        // Alice holds: same key, same tags, so the negotiated keying is unchanged.
        let hold = wire(&alice.create_offer(Direction::SendOnly));
        assert!(
            crypto_of(&hold.media[0])
                .iter()
                .all(|c| c.key_salt == key(100))
        );
        let answer = wire(&bob.receive_offer(&hold, Direction::SendRecv).unwrap());
        assert_eq!(
            bob.negotiated()
                .unwrap()
                .srtp
                .as_ref()
                .unwrap()
                .remote_key_salt,
            key(100)
        );
        assert_eq!(
            alice.receive_answer(&answer).unwrap().srtp,
            Some(first.clone())
        );

        // Bob, the first answerer, re-offers with the key he answered with.
        let reoffer = wire(&bob.create_offer(Direction::SendRecv));
        assert!(
            crypto_of(&reoffer.media[0])
                .iter()
                .all(|c| c.key_salt == key(200))
        );
        let answer = wire(&alice.receive_offer(&reoffer, Direction::SendRecv).unwrap());
        bob.receive_answer(&answer).unwrap();
        assert_eq!(alice.negotiated().unwrap().srtp, Some(first.clone()));

        // A new key from the caller goes into the next offer.
        alice.capabilities_mut().srtp_key_salt = Some(key(111));
        let rekey = wire(&alice.create_offer(Direction::SendRecv));
        assert!(
            crypto_of(&rekey.media[0])
                .iter()
                .all(|c| c.key_salt == key(111))
        );
        let answer = wire(&bob.receive_offer(&rekey, Direction::SendRecv).unwrap());
        let rekeyed = alice.receive_answer(&answer).unwrap().srtp.unwrap();
        assert_eq!(rekeyed.local_key_salt, key(111));
        assert_eq!(rekeyed.remote_key_salt, first.remote_key_salt);
        assert_eq!(
            bob.negotiated()
                .unwrap()
                .srtp
                .as_ref()
                .unwrap()
                .remote_key_salt,
            key(111)
        );
    }

    #[test]
    fn debug_output_never_shows_keys() {
        let mut alice = with_srtp(SrtpPolicy::Mandatory, 100);
        let mut bob = with_srtp(SrtpPolicy::Optional, 200);
        let offer = wire(&alice.create_offer(Direction::SendRecv));
        let answer = wire(&bob.receive_offer(&offer, Direction::SendRecv).unwrap());
        alice.receive_answer(&answer).unwrap();
        let texts = [
            format!("{alice:?}"),
            format!("{bob:?}"),
            format!("{:?}", alice.negotiated()),
            format!("{:?}", alice.capabilities()),
            format!("{offer:?}"),
            format!("{answer:?}"),
        ];
        for text in &texts {
            for secret in [key(100), key(200)] {
                assert!(!text.contains(&inline(&secret)[..12]), "{text}");
                let bytes = format!("{:?}", &secret[..4]);
                assert!(!text.contains(bytes.trim_matches(['[', ']'])), "{text}");
            }
        }
        assert!(texts[2].contains("AesCm128HmacSha1_80"), "{}", texts[2]);
        assert!(texts[3].contains("Mandatory"), "{}", texts[3]);
    }
}
