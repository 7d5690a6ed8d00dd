//! SRTP (RFC 3711) keyed by SDES (RFC 4568): the `a=crypto` attribute and the per-stream packet
//! transform.
//!
//! The transform itself is `webrtc_srtp::context::Context`. This module owns everything around
//! it that touches untrusted bytes, because that crate trusts its input more than a network
//! endpoint can (measured against webrtc-srtp 0.17.2):
//!
//! * its RTP header parser panics on RFC 8285 header extensions whose elements run past the end
//!   of the packet, and computes a wrong encryption offset when they do not end where the
//!   extension length says; so RTP headers are read here and handed over ready-made;
//! * its SRTCP decryption indexes the packet before checking its length (panics under 14
//!   bytes), and returns packets whose E flag is clear as they are, without checking their
//!   authentication tag; so lengths and the E flag are checked here first;
//! * it creates per-SSRC state (rollover counter, replay window) for every SSRC it sees, before
//!   authenticating the packet: forged packets with random SSRCs would grow memory without
//!   bound, and one forged packet with the peer's SSRC and a sequence number ahead of the real
//!   stream would set the replay window so that the genuine packets behind it are dropped. So a
//!   source's first packet is authenticated by a separate throwaway context, and only
//!   authenticated sources reach the context that keeps state.

use core::fmt;
use core::str::FromStr;

use base64::Engine as _;
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD as BASE64;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{
    srtcp_no_replay_protection, srtcp_replay_protection, srtp_no_replay_protection,
    srtp_replay_protection,
};
use webrtc_srtp::protection_profile::ProtectionProfile;

/// Bytes of SDES key material for the AES-CM-128 suites: the 16-byte master key followed by the
/// 14-byte master salt (RFC 4568 section 6.2.1).
pub const KEY_SALT_LEN: usize = 30;
const MASTER_KEY_LEN: usize = 16;

/// Packets a source may be behind the newest one it sent and still be accepted. RFC 3711
/// section 3.3.2 asks for at least 64.
pub const REPLAY_WINDOW: usize = 64;

const RTP_HEADER_LEN: usize = 12;
const RTCP_HEADER_WITH_SSRC_LEN: usize = 8;
const SRTCP_INDEX_LEN: usize = 4;
const SRTCP_AUTH_TAG_LEN: usize = 10;
/// Failed first packets the throwaway context may absorb (each leaves a little state behind)
/// before it is replaced by a fresh one.
const PROBE_FAILURES_BEFORE_RESET: u32 = 256;

/// The SDES crypto suites we support (RFC 4568 section 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag on SRTP and SRTCP.
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit tag on SRTP and an 80-bit tag on SRTCP.
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// The suites in our order of preference, as we offer them.
    pub const ALL: [CryptoSuite; 2] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
    ];

    /// The SDES name, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub fn as_str(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Bytes an SRTP packet grows by.
    pub fn rtp_auth_tag_len(self) -> usize {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => 10,
            CryptoSuite::AesCm128HmacSha1_32 => 4,
        }
    }

    /// Bytes an SRTCP packet grows by: the 4-byte E flag and index plus the tag, which is 80
    /// bits for both suites (RFC 4568 section 6.2).
    pub fn rtcp_overhead(self) -> usize {
        SRTCP_INDEX_LEN + SRTCP_AUTH_TAG_LEN
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }
}

impl fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CryptoSuite {
    type Err = CryptoParseError;

    fn from_str(name: &str) -> Result<Self, CryptoParseError> {
        CryptoSuite::ALL
            .into_iter()
            .find(|suite| suite.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| CryptoParseError::UnknownSuite(name.to_owned()))
    }
}

/// Why an `a=crypto` value could not be used. The messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoParseError {
    /// A suite we do not implement (`AES_256_CM_HMAC_SHA1_80`, `F8_128_HMAC_SHA1_80`...):
    /// negotiation skips the line and tries the next one.
    #[error("unsupported crypto suite {0}")]
    UnknownSuite(String),
    /// The key and salt do not decode to [`KEY_SALT_LEN`] bytes.
    #[error("SRTP key and salt must be {KEY_SALT_LEN} bytes")]
    KeyLength,
    /// Valid syntax that we do not implement, such as several keys on one line.
    #[error("unsupported crypto attribute: {0}")]
    Unsupported(&'static str),
    /// Not an RFC 4568 `a=crypto` value.
    #[error("malformed crypto attribute: {0}")]
    Malformed(&'static str),
}

/// One `a=crypto` line (RFC 4568 section 9.1): `tag suite inline:key||salt[|lifetime][|MKI:len]
/// [session params]`.
///
/// `Display` writes the value after `a=crypto:`, key included, for the SDP we send; `Debug`
/// leaves the key out so that the attribute can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// Identifies the line within its media section; the answer repeats the chosen one's tag.
    pub tag: u32,
    pub suite: CryptoSuite,
    /// The 16-byte master key followed by the 14-byte master salt.
    pub key_salt: [u8; KEY_SALT_LEN],
    /// Key lifetime as written (`2^31`, `1048576`).
    pub lifetime: Option<String>,
    /// Master key identifier as written (`1:4`, value and byte length).
    pub mki: Option<String>,
    /// Session parameters as written (`KDR=0`, `UNENCRYPTED_SRTCP`, `WSH=128`...).
    pub session_params: Vec<String>,
}

impl CryptoAttribute {
    /// A line with no lifetime, MKI or session parameters, as we write them.
    pub fn new(tag: u32, suite: CryptoSuite, key_salt: [u8; KEY_SALT_LEN]) -> Self {
        CryptoAttribute {
            tag,
            suite,
            key_salt,
            lifetime: None,
            mki: None,
            session_params: Vec::new(),
        }
    }

    /// Reads the value of an `a=crypto` attribute (the part after `a=crypto:`).
    pub fn parse(value: &str) -> Result<Self, CryptoParseError> {
        let mut fields = value.split_ascii_whitespace();
        let tag_text = fields.next().ok_or(CryptoParseError::Malformed("empty"))?;
        // RFC 4568 section 9.1: 1*9DIGIT; u32's parser would also take a leading '+'.
        if tag_text.is_empty() || tag_text.len() > 9 || !is_digits(tag_text) {
            return Err(CryptoParseError::Malformed("invalid tag"));
        }
        let tag = tag_text
            .parse()
            .map_err(|_| CryptoParseError::Malformed("invalid tag"))?;
        let suite: CryptoSuite = fields
            .next()
            .ok_or(CryptoParseError::Malformed("missing crypto suite"))?
            .parse()?;
        let key_params = fields
            .next()
            .ok_or(CryptoParseError::Malformed("missing key parameters"))?;
        if key_params.contains(';') {
            return Err(CryptoParseError::Unsupported("more than one key"));
        }
        let (method, key_info) = key_params
            .split_once(':')
            .ok_or(CryptoParseError::Malformed("missing key method"))?;
        if !method.eq_ignore_ascii_case("inline") {
            return Err(CryptoParseError::Unsupported(
                "key method other than inline",
            ));
        }
        let mut parts = key_info.split('|');
        let key_salt = decode_key_salt(parts.next().unwrap_or_default())?;
        let mut lifetime = None;
        let mut mki = None;
        for part in parts {
            if mki.is_some() {
                return Err(CryptoParseError::Malformed("text after the MKI"));
            }
            if let Some((value, length)) = part.split_once(':') {
                let length_ok = is_digits(length)
                    && length
                        .parse::<u8>()
                        .is_ok_and(|bytes| (1..=128).contains(&bytes));
                if !is_digits(value) || !length_ok {
                    return Err(CryptoParseError::Malformed("invalid MKI"));
                }
                mki = Some(part.to_owned());
            } else {
                let exponent = part.strip_prefix("2^").unwrap_or(part);
                if lifetime.is_some() || !is_digits(exponent) {
                    return Err(CryptoParseError::Malformed("invalid key lifetime"));
                }
                lifetime = Some(part.to_owned());
            }
        }
        Ok(CryptoAttribute {
            tag,
            suite,
            key_salt,
            lifetime,
            mki,
            session_params: fields.map(str::to_owned).collect(),
        })
    }
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn decode_key_salt(text: &str) -> Result<[u8; KEY_SALT_LEN], CryptoParseError> {
    // 30 bytes are 40 base64 characters; the bound keeps the buffer below on the stack.
    if text.len() > 64 {
        return Err(CryptoParseError::KeyLength);
    }
    let mut decoded = [0u8; 48];
    let length = BASE64
        .decode_slice(text, &mut decoded)
        .map_err(|_| CryptoParseError::Malformed("key is not base64"))?;
    let key_salt = decoded
        .get(..length)
        .and_then(|bytes| <[u8; KEY_SALT_LEN]>::try_from(bytes).ok());
    decoded.fill(0);
    key_salt.ok_or(CryptoParseError::KeyLength)
}

impl FromStr for CryptoAttribute {
    type Err = CryptoParseError;

    fn from_str(value: &str) -> Result<Self, CryptoParseError> {
        CryptoAttribute::parse(value)
    }
}

impl fmt::Display for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} inline:{}",
            self.tag,
            self.suite,
            Base64Display::new(&self.key_salt, &BASE64)
        )?;
        if let Some(lifetime) = &self.lifetime {
            write!(f, "|{lifetime}")?;
        }
        if let Some(mki) = &self.mki {
            write!(f, "|{mki}")?;
        }
        for param in &self.session_params {
            write!(f, " {param}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoAttribute")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("key_salt", &Redacted)
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .field("session_params", &self.session_params)
            .finish()
    }
}

/// Stands in for key material in `Debug` output.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Whether a call uses SRTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SrtpPolicy {
    /// Plain RTP only.
    #[default]
    Off,
    /// SRTP when the peer agrees, plain RTP otherwise.
    Optional,
    /// SRTP or no call.
    Mandatory,
}

impl SrtpPolicy {
    /// The settings spelling: `off`, `optional` or `mandatory`.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpPolicy::Off => "off",
            SrtpPolicy::Optional => "optional",
            SrtpPolicy::Mandatory => "mandatory",
        }
    }
}

impl fmt::Display for SrtpPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A settings value that is not an [`SrtpPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SRTP policy {0:?}: expected off, optional or mandatory")]
pub struct ParsePolicyError(pub String);

impl FromStr for SrtpPolicy {
    type Err = ParsePolicyError;

    fn from_str(text: &str) -> Result<Self, ParsePolicyError> {
        [SrtpPolicy::Off, SrtpPolicy::Optional, SrtpPolicy::Mandatory]
            .into_iter()
            .find(|policy| policy.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| ParsePolicyError(text.to_owned()))
    }
}

/// Why a packet was not protected or unprotected. The caller drops the packet and counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The key material was refused when building the crypto contexts.
    #[error("invalid SRTP key")]
    InvalidKey,
    /// Too short, not version 2, or a header longer than the packet.
    #[error("malformed RTP packet")]
    MalformedRtp,
    /// Too short or not version 2.
    #[error("malformed RTCP packet")]
    MalformedRtcp,
    /// An SRTCP packet with the E flag clear: we never negotiate unencrypted SRTCP.
    #[error("unencrypted SRTCP packet")]
    UnencryptedRtcp,
    /// Wrong key, tampered or truncated packet.
    #[error("SRTP authentication failed")]
    AuthenticationFailed,
    /// Already received, or too old for the replay window.
    #[error("replayed SRTP packet")]
    Replayed,
    /// 2^48 packets were sent with this key (RFC 3711 section 9.2): the call needs new keys.
    #[error("SRTP key exhausted")]
    KeyExhausted,
    /// Any other refusal by the SRTP library.
    #[error("SRTP failure")]
    Other,
}

impl From<webrtc_srtp::Error> for SrtpError {
    fn from(error: webrtc_srtp::Error) -> Self {
        use webrtc_srtp::Error as E;
        match error {
            E::RtpFailedToVerifyAuthTag
            | E::RtcpFailedToVerifyAuthTag
            | E::ErrFailedToVerifyAuthTag => SrtpError::AuthenticationFailed,
            E::SrtpSsrcDuplicated(..) | E::SrtcpSsrcDuplicated(..) | E::ErrDuplicated => {
                SrtpError::Replayed
            }
            E::ErrExceededMaxPackets => SrtpError::KeyExhausted,
            E::ErrTooShortRtp | E::SrtpTooSmall(..) => SrtpError::MalformedRtp,
            E::ErrTooShortRtcp | E::SrtcpTooSmall(..) | E::RtcpInvalidLengthAuthTag(..) => {
                SrtpError::MalformedRtcp
            }
            _ => SrtpError::Other,
        }
    }
}

/// The SRTP state of one media stream of one call: our key protects what we send, the peer's
/// key unprotects what we receive.
///
/// Replay protection is on, with a window of [`REPLAY_WINDOW`] packets per source for SRTP
/// and for SRTCP. A re-INVITE that keeps both keys must keep this value (RFC 4568 section
/// 7.1.4: the rollover counters and replay windows carry on); new keys need a new one.
pub struct SrtpSession {
    suite: CryptoSuite,
    outbound: Context,
    inbound: Context,
    /// Authenticates the first packet of a source before `inbound` keeps state for it.
    probe: Context,
    probe_failures: u32,
    remote_key_salt: [u8; KEY_SALT_LEN],
    /// SSRCs that `inbound` has authenticated at least once, for RTP and for RTCP.
    rtp_sources: Vec<u32>,
    rtcp_sources: Vec<u32>,
}

impl SrtpSession {
    pub fn new(
        suite: CryptoSuite,
        local_key_salt: &[u8; KEY_SALT_LEN],
        remote_key_salt: &[u8; KEY_SALT_LEN],
    ) -> Result<Self, SrtpError> {
        Ok(SrtpSession {
            suite,
            // Replay windows are only consulted when decrypting, yet webrtc-srtp builds (and
            // throws away) two per packet either way; the no-op detector allocates nothing.
            outbound: context(suite, local_key_salt, false)?,
            inbound: context(suite, remote_key_salt, true)?,
            probe: context(suite, remote_key_salt, false)?,
            probe_failures: 0,
            remote_key_salt: *remote_key_salt,
            rtp_sources: Vec::new(),
            rtcp_sources: Vec::new(),
        })
    }

    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// Encrypts and authenticates an RTP packet we send.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let header = rtp_header(packet)?;
        Ok(self
            .outbound
            .encrypt_rtp_with_header(packet, &header)?
            .into())
    }

    /// Authenticates, replay-checks and decrypts an SRTP packet we received.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let header = rtp_header(packet)?;
        if !self.rtp_sources.contains(&header.ssrc) {
            let probed = self.probe.decrypt_rtp_with_header(packet, &header);
            self.after_probe(probed.is_ok())?;
            probed?;
            self.rtp_sources.push(header.ssrc);
        }
        Ok(self
            .inbound
            .decrypt_rtp_with_header(packet, &header)?
            .into())
    }

    /// Encrypts and authenticates an RTCP (compound) packet we send.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        rtcp_ssrc(packet)?;
        Ok(self.outbound.encrypt_rtcp(packet)?.into())
    }

    /// Authenticates, replay-checks and decrypts an SRTCP packet we received.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let ssrc = rtcp_ssrc(packet)?;
        let trailer = packet
            .len()
            .checked_sub(SRTCP_INDEX_LEN + SRTCP_AUTH_TAG_LEN)
            .filter(|start| *start >= RTCP_HEADER_WITH_SSRC_LEN)
            .and_then(|start| packet.get(start))
            .ok_or(SrtpError::MalformedRtcp)?;
        if trailer & 0x80 == 0 {
            return Err(SrtpError::UnencryptedRtcp);
        }
        if !self.rtcp_sources.contains(&ssrc) {
            let probed = self.probe.decrypt_rtcp(packet);
            self.after_probe(probed.is_ok())?;
            probed?;
            self.rtcp_sources.push(ssrc);
        }
        Ok(self.inbound.decrypt_rtcp(packet)?.into())
    }

    /// Replaces the throwaway context once enough forged packets have left state in it.
    fn after_probe(&mut self, authenticated: bool) -> Result<(), SrtpError> {
        if authenticated {
            return Ok(());
        }
        self.probe_failures = self.probe_failures.saturating_add(1);
        if self.probe_failures >= PROBE_FAILURES_BEFORE_RESET {
            self.probe = context(self.suite, &self.remote_key_salt, false)?;
            self.probe_failures = 0;
        }
        Ok(())
    }
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .field("keys", &Redacted)
            .field("rtp_sources", &self.rtp_sources)
            .field("rtcp_sources", &self.rtcp_sources)
            .finish_non_exhaustive()
    }
}

fn context(
    suite: CryptoSuite,
    key_salt: &[u8; KEY_SALT_LEN],
    replay_protection: bool,
) -> Result<Context, SrtpError> {
    let (key, salt) = key_salt
        .split_first_chunk::<MASTER_KEY_LEN>()
        .ok_or(SrtpError::InvalidKey)?;
    // `Context::new` reads `None` as "no replay protection", so both are always explicit.
    let (rtp_window, rtcp_window) = if replay_protection {
        (
            srtp_replay_protection(REPLAY_WINDOW),
            srtcp_replay_protection(REPLAY_WINDOW),
        )
    } else {
        (srtp_no_replay_protection(), srtcp_no_replay_protection())
    };
    Context::new(
        key,
        salt,
        suite.profile(),
        Some(rtp_window),
        Some(rtcp_window),
    )
    .map_err(|_| SrtpError::InvalidKey)
}

/// Reads an RTP header (RFC 3550 section 5.1) for the SRTP transform, which takes from it the
/// SSRC, the sequence number and, through `marshal_size`, where the payload starts.
///
/// A header extension is described to it as that many bytes of extension padding: the
/// transform needs only its length, and RFC 8285 elements need not be read to know it.
fn rtp_header(packet: &[u8]) -> Result<rtp::header::Header, SrtpError> {
    let fixed: &[u8; RTP_HEADER_LEN] = packet.first_chunk().ok_or(SrtpError::MalformedRtp)?;
    let [
        b0,
        b1,
        seq0,
        seq1,
        ts0,
        ts1,
        ts2,
        ts3,
        ssrc0,
        ssrc1,
        ssrc2,
        ssrc3,
    ] = *fixed;
    if b0 >> 6 != 2 {
        return Err(SrtpError::MalformedRtp);
    }
    let csrc_count = usize::from(b0 & 0x0f);
    let csrc_end = RTP_HEADER_LEN + 4 * csrc_count;
    let csrc = packet
        .get(RTP_HEADER_LEN..csrc_end)
        .ok_or(SrtpError::MalformedRtp)?
        .chunks_exact(4)
        .filter_map(|word| word.first_chunk().copied().map(u32::from_be_bytes))
        .collect();
    let extension = b0 & 0x10 != 0;
    let mut extension_len = 0;
    if extension {
        let [_, _, words0, words1] = *packet
            .get(csrc_end..)
            .and_then(<[u8]>::first_chunk::<4>)
            .ok_or(SrtpError::MalformedRtp)?;
        extension_len = 4 * usize::from(u16::from_be_bytes([words0, words1]));
        if packet.len() < csrc_end + 4 + extension_len {
            return Err(SrtpError::MalformedRtp);
        }
    }
    Ok(rtp::header::Header {
        version: 2,
        padding: b0 & 0x20 != 0,
        extension,
        marker: b1 & 0x80 != 0,
        payload_type: b1 & 0x7f,
        sequence_number: u16::from_be_bytes([seq0, seq1]),
        timestamp: u32::from_be_bytes([ts0, ts1, ts2, ts3]),
        ssrc: u32::from_be_bytes([ssrc0, ssrc1, ssrc2, ssrc3]),
        csrc,
        extension_profile: 0,
        extensions: Vec::new(),
        extensions_padding: extension_len,
    })
}

/// The sender SSRC of an RTCP packet, after checking the header that precedes it.
fn rtcp_ssrc(packet: &[u8]) -> Result<u32, SrtpError> {
    let [b0, _, _, _, ssrc0, ssrc1, ssrc2, ssrc3] = *packet
        .first_chunk::<RTCP_HEADER_WITH_SSRC_LEN>()
        .ok_or(SrtpError::MalformedRtcp)?;
    if b0 >> 6 != 2 {
        return Err(SrtpError::MalformedRtcp);
    }
    Ok(u32::from_be_bytes([ssrc0, ssrc1, ssrc2, ssrc3]))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3711 appendix B.3: master key, then master salt.
    fn rfc3711_key_salt() -> [u8; KEY_SALT_LEN] {
        let mut key_salt = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        key_salt.extend(hex("0EC675AD498AFEEBB6960B3AABE6"));
        key_salt.try_into().unwrap()
    }

    fn key(seed: u8) -> [u8; KEY_SALT_LEN] {
        core::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
    }

    fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x80, 0x00];
        packet.extend(seq.to_be_bytes());
        packet.extend(160u32.wrapping_mul(u32::from(seq)).to_be_bytes());
        packet.extend(ssrc.to_be_bytes());
        packet.extend(payload);
        packet
    }

    fn sender_report(ssrc: u32) -> Vec<u8> {
        let mut packet = vec![0x80, 200, 0x00, 0x06];
        packet.extend(ssrc.to_be_bytes());
        packet.extend([0x11; 20]);
        packet
    }

    /// Two ends of one stream: what `a` protects, `b` unprotects, and the other way round.
    fn pair(suite: CryptoSuite) -> (SrtpSession, SrtpSession) {
        let (ka, kb) = (key(1), key(2));
        (
            SrtpSession::new(suite, &ka, &kb).unwrap(),
            SrtpSession::new(suite, &kb, &ka).unwrap(),
        )
    }

    /// The reference packets of libsrtp's `srtp_driver.c`, keyed with the RFC 3711 B.3 master
    /// key and salt: they only come out if our 30 bytes reach the key derivation as master key
    /// then salt, and the derivation, counter and tag follow RFC 3711.
    #[test]
    fn known_answer_with_the_rfc_3711_master_key() {
        let key_salt = rfc3711_key_salt();
        let mut sender =
            SrtpSession::new(CryptoSuite::AesCm128HmacSha1_80, &key_salt, &key(9)).unwrap();
        let plain = hex("800f1234decafbadcafebabeabababababababababababababababab");
        let expected = hex(concat!(
            "800f1234decafbadcafebabe",
            "4e55dc4ce79978d88ca4d215949d2402",
            "b78d6acc99ea179b8dbb",
        ));
        assert_eq!(sender.protect_rtp(&plain).unwrap(), expected);

        // webrtc-srtp numbers SRTCP packets from 1, as the reference does.
        let rtcp_plain = hex("81c8000bcafebabeabababababababababababababababab");
        let rtcp_expected = hex(concat!(
            "81c8000bcafebabe",
            "7128035be487b9bdbef89041f977a5a8",
            "80000001",
            "993e08cd54d6c1230798",
        ));
        assert_eq!(sender.protect_rtcp(&rtcp_plain).unwrap(), rtcp_expected);

        let mut receiver =
            SrtpSession::new(CryptoSuite::AesCm128HmacSha1_80, &key(9), &key_salt).unwrap();
        assert_eq!(receiver.unprotect_rtp(&expected).unwrap(), plain);
        assert_eq!(receiver.unprotect_rtcp(&rtcp_expected).unwrap(), rtcp_plain);

        // The _32 suite truncates the same HMAC to its first 4 bytes and keeps 80 bits on SRTCP.
        let mut short =
            SrtpSession::new(CryptoSuite::AesCm128HmacSha1_32, &key_salt, &key(9)).unwrap();
        assert_eq!(
            short.protect_rtp(&plain).unwrap(),
            expected[..expected.len() - 6]
        );
        assert_eq!(short.protect_rtcp(&rtcp_plain).unwrap(), rtcp_expected);
    }

    /// RFC 3711 appendix B.3 derives, from the master key and salt above, the session
    /// encryption key C61E7A93... and session salt 30CBBC08...; appendix B.2 defines the
    /// AES-CM keystream as AES(k_e, IV) with IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR
    /// (index * 2^16). The first payload block must be the plaintext XOR that keystream block.
    #[test]
    fn rfc_3711_b3_session_keys_drive_the_keystream() {
        use aes::cipher::{BlockEncrypt, KeyInit};

        let session_key = hex("C61E7A93744F39EE10734AFE3FF7A087");
        let session_salt = hex("30CBBC08863D8C85D49DB34A9AE1");
        let (ssrc, seq) = (0xdeca_fbad_u32, 0x1234_u16);
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&session_salt);
        for (i, b) in ssrc.to_be_bytes().into_iter().enumerate() {
            iv[4 + i] ^= b;
        }
        for (i, b) in u64::from(seq).to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        let cipher = aes::Aes128::new_from_slice(&session_key).unwrap();
        let mut block = aes::Block::from(iv);
        cipher.encrypt_block(&mut block);

        let payload = [0u8; 16];
        let mut sender = SrtpSession::new(
            CryptoSuite::AesCm128HmacSha1_80,
            &rfc3711_key_salt(),
            &key(3),
        )
        .unwrap();
        let protected = sender.protect_rtp(&rtp(seq, ssrc, &payload)).unwrap();
        assert_eq!(&protected[12..28], block.as_slice());
    }

    #[test]
    fn round_trip_for_both_suites_rtp_and_rtcp() {
        for suite in CryptoSuite::ALL {
            let (mut alice, mut bob) = pair(suite);
            for seq in [65_530u16, 65_535, 0, 1, 2] {
                let packet = rtp(seq, 0x1111_2222, b"twenty ms of audio");
                let protected = alice.protect_rtp(&packet).unwrap();
                assert_eq!(protected.len(), packet.len() + suite.rtp_auth_tag_len());
                assert_eq!(protected[..12], packet[..12], "header stays in the clear");
                assert_ne!(protected[12..packet.len()], packet[12..]);
                assert_eq!(bob.unprotect_rtp(&protected).unwrap(), packet, "{suite}");

                let back = rtp(seq, 0x3333_4444, b"the other way");
                let protected = bob.protect_rtp(&back).unwrap();
                assert_eq!(alice.unprotect_rtp(&protected).unwrap(), back);
            }
            for _ in 0..3 {
                let report = sender_report(0x1111_2222);
                let protected = alice.protect_rtcp(&report).unwrap();
                assert_eq!(protected.len(), report.len() + suite.rtcp_overhead());
                assert_eq!(bob.unprotect_rtcp(&protected).unwrap(), report, "{suite}");
                let report = sender_report(0x3333_4444);
                let protected = bob.protect_rtcp(&report).unwrap();
                assert_eq!(alice.unprotect_rtcp(&protected).unwrap(), report);
            }
        }
    }

    #[test]
    fn tag_lengths_are_4_and_10_bytes() {
        assert_eq!(CryptoSuite::AesCm128HmacSha1_32.rtp_auth_tag_len(), 4);
        assert_eq!(CryptoSuite::AesCm128HmacSha1_80.rtp_auth_tag_len(), 10);
        let packet = rtp(7, 5, &[0u8; 160]);
        for (suite, tag) in [
            (CryptoSuite::AesCm128HmacSha1_32, 4),
            (CryptoSuite::AesCm128HmacSha1_80, 10),
        ] {
            let (mut a, _) = pair(suite);
            assert_eq!(a.protect_rtp(&packet).unwrap().len(), 172 + tag);
            assert_eq!(a.protect_rtcp(&sender_report(5)).unwrap().len(), 28 + 14);
        }
    }

    #[test]
    fn replayed_packets_are_rejected() {
        let (mut alice, mut bob) = pair(CryptoSuite::AesCm128HmacSha1_80);
        let first = alice.protect_rtp(&rtp(100, 9, b"a")).unwrap();
        let second = alice.protect_rtp(&rtp(101, 9, b"b")).unwrap();
        assert!(bob.unprotect_rtp(&first).is_ok());
        assert!(bob.unprotect_rtp(&second).is_ok());
        assert_eq!(bob.unprotect_rtp(&first), Err(SrtpError::Replayed));
        assert_eq!(bob.unprotect_rtp(&second), Err(SrtpError::Replayed));

        // Reordering within the window is fine, but not beyond it.
        let late = alice.protect_rtp(&rtp(102, 9, b"late")).unwrap();
        let mut newest = Vec::new();
        for seq in 103..103 + REPLAY_WINDOW as u16 {
            newest = alice.protect_rtp(&rtp(seq, 9, b"x")).unwrap();
        }
        assert!(bob.unprotect_rtp(&newest).is_ok());
        assert_eq!(bob.unprotect_rtp(&late), Err(SrtpError::Replayed));

        let report = alice.protect_rtcp(&sender_report(9)).unwrap();
        assert!(bob.unprotect_rtcp(&report).is_ok());
        assert_eq!(bob.unprotect_rtcp(&report), Err(SrtpError::Replayed));
    }

    #[test]
    fn any_flipped_byte_fails_authentication() {
        for suite in CryptoSuite::ALL {
            let (mut alice, mut bob) = pair(suite);
            let protected = alice.protect_rtp(&rtp(1, 9, b"payload")).unwrap();
            for i in 0..protected.len() {
                let mut forged = protected.clone();
                forged[i] ^= 0x01;
                assert_eq!(
                    bob.unprotect_rtp(&forged),
                    Err(SrtpError::AuthenticationFailed),
                    "{suite} byte {i}"
                );
            }
            assert!(bob.unprotect_rtp(&protected).is_ok());

            let report = alice.protect_rtcp(&sender_report(9)).unwrap();
            for i in 0..report.len() {
                let mut forged = report.clone();
                forged[i] ^= 0x01;
                assert_eq!(
                    bob.unprotect_rtcp(&forged),
                    Err(SrtpError::AuthenticationFailed),
                    "{suite} byte {i}"
                );
            }
            assert!(bob.unprotect_rtcp(&report).is_ok());
        }
    }

    #[test]
    fn wrong_key_fails_authentication() {
        let (mut alice, _) = pair(CryptoSuite::AesCm128HmacSha1_80);
        let mut stranger =
            SrtpSession::new(CryptoSuite::AesCm128HmacSha1_80, &key(1), &key(7)).unwrap();
        let protected = alice.protect_rtp(&rtp(1, 9, b"payload")).unwrap();
        assert_eq!(
            stranger.unprotect_rtp(&protected),
            Err(SrtpError::AuthenticationFailed)
        );
    }

    #[test]
    fn srtcp_without_the_e_flag_is_refused_not_passed_through() {
        let (mut alice, mut bob) = pair(CryptoSuite::AesCm128HmacSha1_80);
        let mut packet = alice.protect_rtcp(&sender_report(9)).unwrap();
        let e_flag = packet.len() - 14;
        packet[e_flag] &= 0x7f;
        assert_eq!(bob.unprotect_rtcp(&packet), Err(SrtpError::UnencryptedRtcp));
        // A forged plaintext packet with the flag clear gets nowhere either.
        let mut forged = sender_report(9);
        forged.extend([0u8; 14]);
        assert_eq!(bob.unprotect_rtcp(&forged), Err(SrtpError::UnencryptedRtcp));
    }

    #[test]
    fn short_and_malformed_packets_are_errors_not_panics() {
        let (mut alice, mut bob) = pair(CryptoSuite::AesCm128HmacSha1_80);
        let rtp_packet = alice.protect_rtp(&rtp(1, 9, &[0u8; 40])).unwrap();
        let rtcp_packet = alice.protect_rtcp(&sender_report(9)).unwrap();
        for len in 0..rtp_packet.len() {
            assert!(bob.unprotect_rtp(&rtp_packet[..len]).is_err(), "{len}");
        }
        for len in 0..rtcp_packet.len() {
            assert!(bob.unprotect_rtcp(&rtcp_packet[..len]).is_err(), "{len}");
        }
        assert_eq!(alice.protect_rtp(&[0x80; 11]), Err(SrtpError::MalformedRtp));
        assert_eq!(alice.protect_rtp(&[0x40; 20]), Err(SrtpError::MalformedRtp));
        assert_eq!(
            alice.protect_rtcp(&[0x80; 7]),
            Err(SrtpError::MalformedRtcp)
        );
        assert_eq!(
            bob.unprotect_rtcp(&[0x40; 40]),
            Err(SrtpError::MalformedRtcp)
        );

        // CSRC count and extension length that point past the end.
        let mut csrcs = rtp(1, 9, &[0u8; 8]);
        csrcs[0] |= 0x0f;
        assert_eq!(alice.protect_rtp(&csrcs), Err(SrtpError::MalformedRtp));
        assert_eq!(bob.unprotect_rtp(&csrcs), Err(SrtpError::MalformedRtp));
        let mut extension = rtp(1, 9, &[0xbe, 0xde, 0x00, 0x05, 0x1f, 0, 0, 0]);
        extension[0] |= 0x10;
        assert_eq!(alice.protect_rtp(&extension), Err(SrtpError::MalformedRtp));
        assert_eq!(bob.unprotect_rtp(&extension), Err(SrtpError::MalformedRtp));
    }

    /// An RFC 8285 element whose length runs past its extension block panics inside
    /// webrtc-srtp's own header parser; ours only needs the block length.
    #[test]
    fn header_extension_and_csrcs_stay_in_the_clear() {
        let (mut alice, mut bob) = pair(CryptoSuite::AesCm128HmacSha1_80);
        // One-byte extension block of one word whose element claims 16 bytes.
        let mut packet = rtp(1, 9, &[0xbe, 0xde, 0x00, 0x01, 0x1f, 0xaa, 0xbb, 0xcc]);
        packet[0] |= 0x10;
        let protected = alice.protect_rtp(&packet).unwrap();
        assert_eq!(protected[..20], packet[..20]);
        assert_eq!(bob.unprotect_rtp(&protected).unwrap(), packet);

        let mut mixed = vec![0x82, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 9];
        mixed.extend([1, 2, 3, 4, 5, 6, 7, 8]);
        mixed.extend(b"mixed audio");
        let protected = alice.protect_rtp(&mixed).unwrap();
        assert_eq!(protected[..20], mixed[..20]);
        assert_ne!(protected[20..31], mixed[20..]);
        assert_eq!(bob.unprotect_rtp(&protected).unwrap(), mixed);
    }

    /// Forged packets must not leave state that hurts the genuine stream: a forged packet far
    /// ahead of the real sequence numbers would otherwise move the replay window past them.
    #[test]
    fn forged_packets_do_not_poison_the_replay_window() {
        let (mut alice, mut bob) = pair(CryptoSuite::AesCm128HmacSha1_80);
        let mut forged = rtp(5000, 9, &[0u8; 20]);
        forged.extend([0u8; 10]);
        assert_eq!(
            bob.unprotect_rtp(&forged),
            Err(SrtpError::AuthenticationFailed)
        );
        for seq in 1..=3 {
            let genuine = alice.protect_rtp(&rtp(seq, 9, b"real")).unwrap();
            assert!(bob.unprotect_rtp(&genuine).is_ok(), "{seq}");
        }
        // Many forged sources later the genuine one still works, and each new genuine source is
        // accepted on its first packet.
        for ssrc in 100..100 + 3 * PROBE_FAILURES_BEFORE_RESET {
            let mut forged = rtp(7, ssrc, &[0u8; 20]);
            forged.extend([0u8; 10]);
            assert!(bob.unprotect_rtp(&forged).is_err());
        }
        let genuine = alice.protect_rtp(&rtp(4, 9, b"real")).unwrap();
        assert!(bob.unprotect_rtp(&genuine).is_ok());
        let replay = genuine.clone();
        assert_eq!(bob.unprotect_rtp(&replay), Err(SrtpError::Replayed));
        let fresh = alice.protect_rtp(&rtp(1, 10, b"new source")).unwrap();
        assert!(bob.unprotect_rtp(&fresh).is_ok());
        assert_eq!(bob.unprotect_rtp(&fresh), Err(SrtpError::Replayed));
        assert_eq!(bob.rtp_sources, [9, 10]);
    }

    #[test]
    fn crypto_attribute_parses_and_prints() {
        let key_salt = rfc3711_key_salt();
        let inline = BASE64.encode(key_salt);
        let text = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|2^31|1:1 KDR=0 WSH=128");
        let attribute = CryptoAttribute::parse(&text).unwrap();
        assert_eq!(attribute.tag, 1);
        assert_eq!(attribute.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(attribute.key_salt, key_salt);
        assert_eq!(attribute.lifetime.as_deref(), Some("2^31"));
        assert_eq!(attribute.mki.as_deref(), Some("1:1"));
        assert_eq!(attribute.session_params, ["KDR=0", "WSH=128"]);
        assert_eq!(attribute.to_string(), text);
        assert_eq!(text.parse::<CryptoAttribute>().unwrap(), attribute);

        let plain = CryptoAttribute::new(7, CryptoSuite::AesCm128HmacSha1_32, key_salt);
        assert_eq!(
            plain.to_string(),
            format!("7 AES_CM_128_HMAC_SHA1_32 inline:{inline}")
        );
        assert_eq!(CryptoAttribute::parse(&plain.to_string()).unwrap(), plain);

        let mki_only =
            CryptoAttribute::parse(&format!("2 AES_CM_128_HMAC_SHA1_32 inline:{inline}|2:4"))
                .unwrap();
        assert_eq!(
            (mki_only.lifetime, mki_only.mki.as_deref()),
            (None, Some("2:4"))
        );
    }

    #[test]
    fn crypto_attribute_errors() {
        let inline = BASE64.encode(key(4));
        assert_eq!(
            CryptoAttribute::parse(&format!("1 AES_256_CM_HMAC_SHA1_80 inline:{inline}")),
            Err(CryptoParseError::UnknownSuite(
                "AES_256_CM_HMAC_SHA1_80".into()
            ))
        );
        let short = BASE64.encode([1u8; 16]);
        assert_eq!(
            CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{short}")),
            Err(CryptoParseError::KeyLength)
        );
        let long = BASE64.encode([1u8; 46]);
        assert_eq!(
            CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{long}")),
            Err(CryptoParseError::KeyLength)
        );
        let huge = "A".repeat(400);
        assert_eq!(
            CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{huge}")),
            Err(CryptoParseError::KeyLength)
        );
        let malformed = [
            String::new(),
            "1".into(),
            "1 AES_CM_128_HMAC_SHA1_80".into(),
            format!("x AES_CM_128_HMAC_SHA1_80 inline:{inline}"),
            format!("+1 AES_CM_128_HMAC_SHA1_80 inline:{inline}"),
            format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{inline}"),
            "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64".into(),
            format!("1 AES_CM_128_HMAC_SHA1_80 {inline}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|forever"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|1:0"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|1:200"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|1:4|2^20"),
        ];
        for value in malformed {
            assert!(
                matches!(
                    CryptoAttribute::parse(&value),
                    Err(CryptoParseError::Malformed(_))
                ),
                "{value}"
            );
        }
        assert_eq!(
            CryptoAttribute::parse(&format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|1:4;inline:{inline}|2:4"
            )),
            Err(CryptoParseError::Unsupported("more than one key"))
        );
        // No error message repeats the key.
        let error = CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{inline}x"))
            .unwrap_err();
        assert!(!error.to_string().contains(&inline[..10]), "{error}");
    }

    #[test]
    fn suite_and_policy_names() {
        for suite in CryptoSuite::ALL {
            assert_eq!(suite.as_str().parse::<CryptoSuite>().unwrap(), suite);
        }
        assert_eq!(
            "AES_CM_128_HMAC_SHA1_32".parse::<CryptoSuite>(),
            Ok(CryptoSuite::AesCm128HmacSha1_32)
        );
        assert!("F8_128_HMAC_SHA1_80".parse::<CryptoSuite>().is_err());
        assert_eq!("off".parse(), Ok(SrtpPolicy::Off));
        assert_eq!(" Optional ".parse(), Ok(SrtpPolicy::Optional));
        assert_eq!("mandatory".parse(), Ok(SrtpPolicy::Mandatory));
        assert!("required".parse::<SrtpPolicy>().is_err());
        assert_eq!(SrtpPolicy::Mandatory.to_string(), "mandatory");
        assert_eq!(SrtpPolicy::default(), SrtpPolicy::Off);
    }

    #[test]
    fn debug_output_never_contains_keys() {
        let key_salt = rfc3711_key_salt();
        let inline = BASE64.encode(key_salt);
        let attribute =
            CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|2^31"))
                .unwrap();
        let session = SrtpSession::new(attribute.suite, &key_salt, &key_salt).unwrap();
        for text in [format!("{attribute:?}"), format!("{session:?}")] {
            assert!(!text.contains(&inline[..8]), "{text}");
            assert!(!text.contains("225, 249, 122"), "{text}");
            assert!(!text.to_lowercase().contains("e1f97a"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
        assert!(format!("{attribute:?}").contains("AesCm128HmacSha1_80"));
    }
}
