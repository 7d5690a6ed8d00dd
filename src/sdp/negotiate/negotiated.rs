//! What a completed offer/answer exchange agrees on: where and how to send, the codec, the
//! directions, the SRTP keying and the peer's recording wishes.

use core::fmt;
use core::net::IpAddr;

use crate::media::srtp::{CryptoSuite, KEY_SALT_LEN, Redacted, SrtpError, SrtpSession};
use crate::sdp::{Direction, MediaDescription, PayloadFormat, SessionDescription};

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
pub(super) fn recording_attribute(
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
