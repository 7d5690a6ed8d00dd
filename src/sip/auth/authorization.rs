//! Credentials and the `Authorization` / `Proxy-Authorization` header that carries them:
//! building one as the answer to a challenge, reading one as a server, and checking it.
//!
//! The digest arithmetic itself is in `digest`; this module owns the header's fields and
//! which of them a given challenge calls for.

use std::fmt;

use super::digest::constant_time_eq;
use super::params::{check_header_safe, escape, find, optional, parse_digest_header, required};
use super::{AuthError, AuthTarget, Challenge, DigestAlgorithm, Qop};

/// A user's credentials. `Debug` hides the password so it never lands in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The credentials of an `Authorization` / `Proxy-Authorization` header, as built by a
/// client or parsed by a server. `Display` renders the header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// Lowercase hex when built here; a parsed one is kept as received.
    pub response: String,
    pub algorithm: DigestAlgorithm,
    pub cnonce: Option<String>,
    pub qop: Option<Qop>,
    pub nc: Option<u32>,
    pub opaque: Option<String>,
}

impl Authorization {
    /// Answers `challenge` for a request. `body` only matters under `qop=auth-int`;
    /// `cnonce` must be fresh and unpredictable and is sent whenever qop or a `-sess`
    /// algorithm needs it.
    pub fn answer(
        challenge: &Challenge,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
        nc: u32,
    ) -> Result<Self, AuthError> {
        let qop = challenge.preferred_qop();
        let needs_cnonce = qop.is_some() || challenge.algorithm.is_session();
        if needs_cnonce && cnonce.is_empty() {
            return Err(AuthError::InvalidParam {
                param: "cnonce",
                value: String::new(),
            });
        }
        let mut auth = Self {
            username: credentials.username.clone(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: uri.to_owned(),
            response: String::new(),
            algorithm: challenge.algorithm,
            cnonce: needs_cnonce.then(|| cnonce.to_owned()),
            qop,
            nc: qop.map(|_| nc),
            opaque: challenge.opaque.clone(),
        };
        // Values with control characters cannot be carried in a quoted-string and
        // would let a hostile realm or username inject header lines.
        check_header_safe("username", &auth.username)?;
        check_header_safe("realm", &auth.realm)?;
        check_header_safe("nonce", &auth.nonce)?;
        check_header_safe("uri", &auth.uri)?;
        if let Some(c) = &auth.cnonce {
            check_header_safe("cnonce", c)?;
        }
        if let Some(o) = &auth.opaque {
            check_header_safe("opaque", o)?;
        }
        auth.response = auth.expected_response(&credentials.password, method, body)?;
        Ok(auth)
    }

    /// Parses an `Authorization` / `Proxy-Authorization` header value.
    pub fn parse(header_value: &str) -> Result<Self, AuthError> {
        const HEADER: &str = "authorization";
        let params = parse_digest_header(header_value)?;
        let algorithm = match find(&params, "algorithm")? {
            Some(p) => DigestAlgorithm::parse(&p.value)?,
            None => DigestAlgorithm::Md5,
        };
        let qop = match find(&params, "qop")? {
            Some(p) => Some(Qop::parse(&p.value)?),
            None => None,
        };
        let nc = match find(&params, "nc")? {
            Some(p) => Some(parse_nc(&p.value)?),
            None => None,
        };
        let cnonce = optional(&params, "cnonce")?;
        if qop.is_some() {
            if cnonce.is_none() {
                return Err(AuthError::MissingParam {
                    header: HEADER,
                    param: "cnonce",
                });
            }
            if nc.is_none() {
                return Err(AuthError::MissingParam {
                    header: HEADER,
                    param: "nc",
                });
            }
        }
        Ok(Self {
            username: required(&params, "username", HEADER)?,
            realm: required(&params, "realm", HEADER)?,
            nonce: required(&params, "nonce", HEADER)?,
            uri: required(&params, "uri", HEADER)?,
            response: required(&params, "response", HEADER)?,
            algorithm,
            cnonce,
            qop,
            nc,
            opaque: optional(&params, "opaque")?,
        })
    }

    /// Checks the response against `password` for a request with this `method` and
    /// `body`. Only the digest is checked: the caller must still check that realm, nonce
    /// (freshness, nc replay), opaque and uri match what it issued and received.
    pub fn verify(&self, password: &str, method: &str, body: &[u8]) -> bool {
        let Ok(expected) = self.expected_response(password, method, body) else {
            return false;
        };
        let received = self.response.to_ascii_lowercase();
        constant_time_eq(expected.as_bytes(), received.as_bytes())
    }
}

impl fmt::Display for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
            escape(&self.username),
            escape(&self.realm),
            escape(&self.nonce),
            escape(&self.uri),
            escape(&self.response),
            self.algorithm
        )?;
        if let Some(cnonce) = &self.cnonce {
            write!(f, ", cnonce=\"{}\"", escape(cnonce))?;
        }
        if let Some(qop) = self.qop {
            write!(f, ", qop={qop}")?;
        }
        if let Some(nc) = self.nc {
            write!(f, ", nc={nc:08x}")?;
        }
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque=\"{}\"", escape(opaque))?;
        }
        Ok(())
    }
}

/// Builds an `Authorization` / `Proxy-Authorization` header value answering `challenge`.
pub fn authorization_value(
    challenge: &Challenge,
    credentials: &Credentials,
    method: &str,
    uri: &str,
    body: &[u8],
    cnonce: &str,
    nc: u32,
) -> Result<String, AuthError> {
    Authorization::answer(challenge, credentials, method, uri, body, cnonce, nc)
        .map(|a| a.to_string())
}

/// An answer produced by [`DigestSession::authorize`].
///
/// [`DigestSession::authorize`]: super::DigestSession::authorize
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    pub target: AuthTarget,
    pub authorization: Authorization,
}

impl AuthorizationHeader {
    /// `Authorization` or `Proxy-Authorization`.
    pub fn name(&self) -> &'static str {
        self.target.authorization_header()
    }

    /// The header value.
    pub fn value(&self) -> String {
        self.authorization.to_string()
    }
}

fn parse_nc(value: &str) -> Result<u32, AuthError> {
    let value = value.trim();
    let invalid = || AuthError::InvalidParam {
        param: "nc",
        value: value.to_owned(),
    };
    // from_str_radix alone would also take a leading '+'.
    if value.is_empty() || value.len() > 8 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    u32::from_str_radix(value, 16).map_err(|_| invalid())
}
