//! SDES keying (RFC 4568 `a=crypto`): which offered lines the SRTP transform can take, and
//! whether an answer's line matches one we offered.

use super::NegotiatedSrtp;
use super::offer::PendingOffer;
use crate::media::srtp::{CryptoAttribute, SrtpPolicy};
use crate::sdp::{Attribute, MediaDescription, SdpError};

pub(super) const CRYPTO_ATTRIBUTE: &str = "crypto";

pub(super) fn is_crypto(attribute: &Attribute) -> bool {
    attribute.name == CRYPTO_ATTRIBUTE
}

/// The first offered `a=crypto` line we can answer, skipping unknown suites, bad keys and
/// parameters the SRTP transform does not implement.
pub(super) fn supported_crypto(media: &MediaDescription) -> Option<CryptoAttribute> {
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
pub(super) fn answered_srtp(
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
