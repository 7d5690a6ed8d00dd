//! SIP digest authentication (RFC 3261 section 22, RFC 2617, RFC 7616, RFC 8760).
//!
//! Client side: parse `WWW-Authenticate` / `Proxy-Authenticate` challenges, pick the
//! strongest one, and build `Authorization` / `Proxy-Authorization` values. Server side:
//! parse an `Authorization` value and verify it against a password.
//!
//! The module is sans-IO: it never reads a clock or a random source. Whatever must be
//! unpredictable (cnonce, server nonces) is supplied by the caller.
//!
//! One submodule per concept: the algorithm and qop vocabulary, the auth-param syntax both
//! header kinds share, challenges, credentials and their `Authorization` header, the digest
//! arithmetic, and the per-registration session that answers challenges.

mod algorithm;
mod authorization;
mod challenge;
mod digest;
mod params;
mod session;

use thiserror::Error;

pub use algorithm::{DigestAlgorithm, Qop};
pub use authorization::{Authorization, AuthorizationHeader, Credentials, authorization_value};
pub use challenge::{AuthTarget, Challenge, challenge_in};
pub use session::{ChallengeError, DigestSession, Retried, answer_challenge};

/// Everything that can go wrong while parsing or answering a digest header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("empty authentication header")]
    Empty,
    #[error("not a Digest challenge or credentials (auth scheme {0:?})")]
    NotDigest(String),
    #[error("malformed Digest header: {0}")]
    Malformed(String),
    #[error("{header} has no {param}")]
    MissingParam {
        header: &'static str,
        param: &'static str,
    },
    #[error("duplicate parameter {0:?}")]
    DuplicateParam(String),
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("unsupported qop {0:?}")]
    UnsupportedQop(String),
    #[error("invalid value {value:?} for {param}")]
    InvalidParam { param: &'static str, value: String },
    #[error("no challenge remembered for realm {0:?}")]
    UnknownRealm(String),
    #[error("nonce count exhausted for realm {0:?}")]
    NonceCountExhausted(String),
    #[error("authentication failed: wrong credentials for realm {0:?}")]
    WrongCredentials(String),
}

#[cfg(test)]
mod tests;
