//! Our side of an exchange we start: the offer we write (codecs, dynamic payload types that
//! keep their numbers, SRTP lines) and the checks its answer has to pass (RFC 3264 sections 5
//! and 7).

use super::codec::{compatible, telephone_event_format};
use super::sdes::answered_srtp;
use super::{
    Codec, MediaDescription, Negotiated, OfferAnswer, PLAIN_PROFILE, PayloadFormat, SECURE_PROFILE,
    SessionDescription, TELEPHONE_EVENT_48K_PAYLOAD_TYPE, TELEPHONE_EVENT_PAYLOAD_TYPE,
    negotiated::recording_attribute, rejected_copy,
};
use crate::media::srtp::{CryptoAttribute, CryptoSuite, SrtpPolicy};
use crate::sdp::{Direction, SdpError};

const FIRST_DYNAMIC_PAYLOAD_TYPE: u8 = 96;
const LAST_DYNAMIC_PAYLOAD_TYPE: u8 = 127;

#[derive(Debug, Clone)]
pub(super) struct PendingOffer {
    offer: SessionDescription,
    audio_index: usize,
    direction: Direction,
    /// The policy and crypto lines the offer was made with, which the answer is checked against
    /// even if the capabilities change meanwhile.
    pub(super) srtp: SrtpPolicy,
    pub(super) crypto: Vec<CryptoAttribute>,
}

impl OfferAnswer {
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
