//! The vocabulary of a digest: which hash (`algorithm`) and what it protects (`qop`).
//!
//! Challenges and `Authorization` headers both carry these tokens, so they live apart from
//! either header, with the case-insensitive parsing every peer expects.

use std::fmt;
use std::str::FromStr;

use super::AuthError;

/// Hash algorithm of a digest challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DigestAlgorithm {
    /// RFC 2617 says an absent `algorithm` parameter means MD5.
    #[default]
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl DigestAlgorithm {
    /// Parses an algorithm token case-insensitively.
    pub fn parse(token: &str) -> Result<Self, AuthError> {
        let token = token.trim();
        [Self::Md5, Self::Md5Sess, Self::Sha256, Self::Sha256Sess]
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(token))
            .ok_or_else(|| AuthError::UnsupportedAlgorithm(token.to_owned()))
    }

    /// The canonical token as written in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Whether HA1 is re-keyed with the nonce and cnonce (the `-sess` variants).
    pub fn is_session(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }

    /// Higher is stronger. Session and plain variants rank equal so that the server's
    /// order of preference decides between them.
    pub(super) fn strength(self) -> u8 {
        match self {
            Self::Md5 | Self::Md5Sess => 1,
            Self::Sha256 | Self::Sha256Sess => 2,
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DigestAlgorithm {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Quality of protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// Authenticates the request line only.
    Auth,
    /// Also authenticates the message body.
    AuthInt,
}

impl Qop {
    /// Parses a qop token case-insensitively.
    pub fn parse(token: &str) -> Result<Self, AuthError> {
        let token = token.trim();
        if token.eq_ignore_ascii_case("auth") {
            Ok(Self::Auth)
        } else if token.eq_ignore_ascii_case("auth-int") {
            Ok(Self::AuthInt)
        } else {
            Err(AuthError::UnsupportedQop(token.to_owned()))
        }
    }

    /// The token as written in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::AuthInt => "auth-int",
        }
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
