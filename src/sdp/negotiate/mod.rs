//! RFC 3264 offer/answer for a call with one audio stream.
//!
//! [`OfferAnswer`] does not care who sent the INVITE: a UAC puts [`OfferAnswer::create_offer`]
//! in its INVITE and feeds the 18x/200 body to [`OfferAnswer::receive_answer`]; a UAS that got an
//! INVITE without SDP does exactly the same with its 200 OK and the ACK body; a re-INVITE with
//! an offer goes through [`OfferAnswer::receive_offer`] whichever side sent the first INVITE.
//!
//! The module is split by concept: the codecs we know (`codec`), what we offer and accept
//! (`capabilities`), what an exchange agrees on (`negotiated`), SDES keying (`sdes`), and the
//! two halves of the state machine, making an offer and taking its answer (`offer`) and
//! answering a peer's offer (`answer`). This file holds the state they share.

mod answer;
mod capabilities;
mod codec;
mod negotiated;
mod offer;
mod sdes;

use super::session::{
    Attribute, Direction, MediaDescription, MediaKind, Origin, PayloadFormat, SessionDescription,
};
use crate::media::srtp::CryptoAttribute;

pub use capabilities::{DEFAULT_PTIME, LocalCapabilities};
pub use codec::{
    Codec, OPUS_PAYLOAD_TYPE, TELEPHONE_EVENT_48K_PAYLOAD_TYPE, TELEPHONE_EVENT_PAYLOAD_TYPE,
};
pub use negotiated::{Negotiated, NegotiatedSrtp};

use codec::compatible;
use offer::PendingOffer;
use sdes::CRYPTO_ATTRIBUTE;

/// The profiles we answer audio on: there is no AVPF feedback and no DTLS-SRTP behind this
/// layer.
const PLAIN_PROFILE: &str = "RTP/AVP";
const SECURE_PROFILE: &str = "RTP/SAVP";

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
///
/// [`SdpError::SrtpRequired`]: crate::sdp::SdpError::SrtpRequired
/// [`SrtpSession`]: crate::media::srtp::SrtpSession
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
        let rtcp = self
            .capabilities
            .rtcp
            .filter(|rtcp| {
                rtcp.ip() != self.capabilities.address
                    || u32::from(rtcp.port()) != u32::from(self.capabilities.audio_port) + 1
            })
            .map(|rtcp| {
                let family = if rtcp.is_ipv4() { "IP4" } else { "IP6" };
                Attribute::new("rtcp", format!("{} IN {family} {}", rtcp.port(), rtcp.ip()))
            });
        MediaDescription {
            formats,
            direction,
            ptime: Some(self.capabilities.ptime),
            attributes: crypto
                .iter()
                .map(|line| Attribute::new(CRYPTO_ATTRIBUTE, line.to_string()))
                .chain(rtcp)
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

/// A media line we do not use, answered or re-offered with port 0 and its format list
/// unchanged (RFC 3264 sections 6 and 8.2).
fn rejected_copy(media: &MediaDescription) -> MediaDescription {
    MediaDescription {
        formats: media.formats.clone(),
        non_rtp_formats: media.non_rtp_formats.clone(),
        ..MediaDescription::new(media.kind.clone(), 0, media.proto.clone())
    }
}

#[cfg(test)]
mod tests;
