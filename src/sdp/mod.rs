//! SDP (RFC 4566 / RFC 8866) for Verbatim, with RFC 3264 offer/answer.
//!
//! The layer is sans-IO: it turns text into [`SessionDescription`] values and back, and
//! [`OfferAnswer`] decides what to put in the SDP we send and what media session results from the
//! SDP we receive. Session ids and versions are passed in by the caller; nothing here reads a
//! clock, draws random numbers or touches the network.
//!
//! # Parsing with sdp-rs, writing ourselves
//!
//! Every line is parsed by the `sdp-rs` line parsers (`v=`, `o=`, `c=`, `m=`, `a=` with its typed
//! `rtpmap`, `ptime` and direction attributes), then mapped into our own model. We do not call its
//! whole-document parser (`sdp_rs::SessionDescription::from_str`) nor its writer, because sdp-rs
//! 0.2.1 has these defects, measured against that version:
//!
//! * its writer emits `a=rtpmap:111 opus/48000 2` (a space instead of `/2`), which it cannot
//!   read back; so [`SessionDescription`]'s `Display` is our own writer;
//! * `a=inactive` is not typed (the match arm is spelled `inacive`), it stays a raw attribute;
//!   we recognise it ourselves;
//! * `a=fmtp`, `a=rtcp`, `a=crypto`, `a=label`, `a=record`... are raw attributes; we read
//!   `fmtp` and `rtcp` ourselves and keep the rest verbatim;
//! * the document parser needs a line break after the last line, and many stacks omit it;
//! * the document parser silently drops everything after the first line it finds out of
//!   RFC 4566 order (an `a=` before a `c=` in a media section loses that line and every later
//!   `m=` section without any error), as well as any trailing garbage;
//! * one attribute whose typed form does not parse (`a=ptime:abc`, `a=orient:sideways`,
//!   `a=rtpmap:0 PCMU` without a clock rate...) makes the whole document fail;
//! * its error messages quote the whole unparsed remainder of the input, which must not end up
//!   in a SIP reason phrase;
//! * `o=` and `c=` addresses must be IP literals (RFC 4566 also allows host names);
//! * a blank line before `v=` fails the document; `a=rtpmap:8  PCMA/8000` (two spaces) gives the
//!   encoding name ` PCMA`; a doubled space in `m=` gives an empty protocol; `rtpmap` payload
//!   types above 127 are accepted.
//!
//! So the text is split into lines here, each line goes to the matching sdp-rs line parser, a
//! malformed attribute falls back to its raw `name:value` form (or is dropped for `rtpmap` and
//! `fmtp`, whose payload type then falls back to the static RFC 3551 table), lines are accepted
//! in any order inside their section, and errors are our own short messages with a line number.
//!
//! # SRTP
//!
//! Offer/answer carries SDES keys (RFC 4568 `a=crypto`) as [`OfferAnswer`] describes; the keys
//! come from the caller. `Debug` output of every type here leaves keys out (an `a=crypto`
//! attribute shows its tag and suite only), while `Display` writes the SDP as sent, keys
//! included: SDP text must only travel over TLS and must not be logged.

mod negotiate;
mod parse;
mod session;

pub use negotiate::{
    Codec, DEFAULT_PTIME, LocalCapabilities, Negotiated, NegotiatedSrtp, OPUS_PAYLOAD_TYPE,
    OfferAnswer, TELEPHONE_EVENT_48K_PAYLOAD_TYPE, TELEPHONE_EVENT_PAYLOAD_TYPE,
};
pub use session::{
    Attribute, Direction, MediaDescription, MediaKind, Origin, PayloadFormat, SessionDescription,
};

/// Everything that can go wrong while reading SDP or negotiating media.
///
/// The `Display` text is short, single-line and never quotes the received SDP, so it can be used
/// as a SIP reason phrase or `Warning` text; [`SdpError::sip_status`] gives the matching status
/// code for rejecting an offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The text is not SDP we can read.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No RTP/AVP audio stream has a codec we support.
    #[error("no common audio codec")]
    NoCommonCodec,
    /// The answer does not have one media line per offered media line (RFC 3264 section 6).
    #[error("answer has {answered} media lines, offer had {offered}")]
    MediaCountMismatch {
        /// Media lines in our offer.
        offered: usize,
        /// Media lines in the answer.
        answered: usize,
    },
    /// The answer's media line at `index` is of another media type than the offered one.
    #[error("answer media line {index} does not match the offer")]
    MediaMismatch {
        /// Zero-based position of the media line.
        index: usize,
    },
    /// The answer set the port of our audio stream to zero.
    #[error("audio stream rejected by the answer")]
    AudioRejected,
    /// The accepted audio stream has no `c=` line, neither its own nor a session-level one.
    #[error("no connection address for the audio stream")]
    MissingConnection,
    /// An answer arrived but no offer of ours is outstanding.
    #[error("no offer pending")]
    NoPendingOffer,
    /// An offer arrived while ours is still unanswered (RFC 3264 section 4 allows only one).
    #[error("offer already pending")]
    OfferPending,
    /// Our policy is mandatory SRTP and the peer offered or answered plain RTP.
    #[error("SRTP required")]
    SrtpRequired,
    /// The only usable stream is SRTP with SDES keys and our policy is off.
    #[error("SRTP offered but not enabled")]
    SrtpNotEnabled,
    /// SRTP is needed but no `a=crypto` line has a suite and parameters we support.
    #[error("no supported SRTP crypto suite")]
    NoCryptoSuite,
    /// The answer's `a=crypto` is not one of the lines we offered (tag and suite), is not
    /// exactly one line, or cannot be used.
    #[error("answer crypto does not match the offer")]
    CryptoMismatch,
    /// Our policy is mandatory SRTP but the caller supplied no key.
    #[error("no local SRTP key")]
    SrtpKeyMissing,
}

impl SdpError {
    /// SIP status code to reject an offer that failed with this error.
    ///
    /// 400 for SDP that cannot be read, 491 when offers crossed (RFC 3261 section 14.2), 500 for
    /// a call sequence error of our own, 488 for everything the offer asked that we cannot do.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::Malformed(_) => 400,
            SdpError::OfferPending => 491,
            SdpError::NoPendingOffer | SdpError::SrtpKeyMissing => 500,
            SdpError::NoCommonCodec
            | SdpError::MediaCountMismatch { .. }
            | SdpError::MediaMismatch { .. }
            | SdpError::AudioRejected
            | SdpError::MissingConnection
            | SdpError::SrtpRequired
            | SdpError::SrtpNotEnabled
            | SdpError::NoCryptoSuite
            | SdpError::CryptoMismatch => 488,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_status_codes() {
        assert_eq!(SdpError::NoCommonCodec.sip_status(), 488);
        assert_eq!(SdpError::Malformed("x".into()).sip_status(), 400);
        assert_eq!(SdpError::OfferPending.sip_status(), 491);
        assert_eq!(SdpError::MissingConnection.sip_status(), 488);
        assert_eq!(SdpError::SrtpRequired.sip_status(), 488);
        assert_eq!(SdpError::SrtpNotEnabled.sip_status(), 488);
        assert_eq!(SdpError::NoCryptoSuite.sip_status(), 488);
        assert_eq!(SdpError::CryptoMismatch.sip_status(), 488);
        assert_eq!(SdpError::SrtpKeyMissing.sip_status(), 500);
    }

    #[test]
    fn error_messages_are_single_line_reason_phrases() {
        let errors = [
            SdpError::Malformed("line 3: invalid m= line".into()),
            SdpError::NoCommonCodec,
            SdpError::MediaCountMismatch {
                offered: 2,
                answered: 1,
            },
            SdpError::MediaMismatch { index: 1 },
            SdpError::AudioRejected,
            SdpError::MissingConnection,
            SdpError::NoPendingOffer,
            SdpError::OfferPending,
            SdpError::SrtpRequired,
            SdpError::SrtpNotEnabled,
            SdpError::NoCryptoSuite,
            SdpError::CryptoMismatch,
            SdpError::SrtpKeyMissing,
        ];
        for error in errors {
            let text = error.to_string();
            assert!(!text.is_empty());
            assert!(!text.contains('\r') && !text.contains('\n'), "{text}");
        }
        assert_eq!(SdpError::NoCommonCodec.to_string(), "no common audio codec");
        assert_eq!(SdpError::SrtpRequired.to_string(), "SRTP required");
    }
}
