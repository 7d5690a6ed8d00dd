//! What this endpoint can do and where it receives: the input of every offer and answer,
//! which the caller may change between exchanges.

use core::fmt;
use core::net::IpAddr;

use super::Codec;
use crate::media::srtp::{KEY_SALT_LEN, Redacted, SrtpPolicy};
use crate::sdp::Attribute;

/// Packetisation time we offer and fall back to when the peer states none, in milliseconds.
pub const DEFAULT_PTIME: u32 = 20;

/// What we can do and where we receive.
///
/// `Debug` leaves the SRTP key out.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalCapabilities {
    /// Where we receive RTP; written as the session `c=` and in `o=`.
    pub address: IpAddr,
    /// Where we receive RTP; RTCP is expected on the next port (RFC 3550 section 11) unless
    /// `rtcp` says otherwise.
    pub audio_port: u16,
    /// Where we receive RTCP when it is not the next port on `address` (a NAT mapped it
    /// elsewhere): written as `a=rtcp` (RFC 3605).
    pub rtcp: Option<core::net::SocketAddr>,
    /// In order of preference. An empty list offers PCMU, since an `m=` line needs a format.
    pub codecs: Vec<Codec>,
    /// Offer and accept RFC 4733 DTMF events.
    pub telephone_event: bool,
    /// Our `a=ptime`, in milliseconds.
    pub ptime: u32,
    /// Whether to offer and accept SRTP with SDES keys; see [`OfferAnswer`].
    ///
    /// [`OfferAnswer`]: crate::sdp::OfferAnswer
    pub srtp: SrtpPolicy,
    /// Our SRTP master key (16 bytes) and salt (14 bytes) for this call, which the caller
    /// draws from a CSPRNG for every call; nothing here generates keys. It goes into every
    /// `a=crypto` line we send until the caller replaces it. Without a key, `Optional` acts as
    /// `Off` and `Mandatory` fails closed: its offers carry `RTP/SAVP` without crypto lines,
    /// which no peer can accept, and offers received fail with [`SdpError::SrtpKeyMissing`].
    ///
    /// [`SdpError::SrtpKeyMissing`]: crate::sdp::SdpError::SrtpKeyMissing
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
            rtcp: None,
        }
    }

    /// The same with an SRTP policy and this call's key.
    pub fn with_srtp(mut self, policy: SrtpPolicy, key_salt: [u8; KEY_SALT_LEN]) -> Self {
        self.srtp = policy;
        self.srtp_key_salt = Some(key_salt);
        self
    }

    /// Our key when SRTP may be used at all.
    pub(super) fn srtp_key(&self) -> Option<&[u8; KEY_SALT_LEN]> {
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
            .field("rtcp", &self.rtcp)
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
