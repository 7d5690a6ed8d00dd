//! Our side of an exchange the peer starts: which offered stream we accept, with which codecs,
//! events, direction and keying, and the answer that says so (RFC 3264 section 6).

use super::codec::telephone_event_format;
use super::negotiated::recording_attribute;
use super::sdes::{is_crypto, supported_crypto};
use super::{
    Codec, MediaDescription, MediaKind, Negotiated, NegotiatedSrtp, OfferAnswer, PLAIN_PROFILE,
    PayloadFormat, SECURE_PROFILE, SessionDescription, rejected_copy,
};
use crate::media::srtp::{CryptoAttribute, SrtpPolicy};
use crate::sdp::{Direction, SdpError};

/// An offered audio stream we can accept, with what we accept of it.
struct Acceptable<'a> {
    index: usize,
    media: &'a MediaDescription,
    common: Vec<(PayloadFormat, Codec)>,
    /// The offered line we answer and the keying that results.
    srtp: Option<(u32, NegotiatedSrtp)>,
}

impl OfferAnswer {
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
}
