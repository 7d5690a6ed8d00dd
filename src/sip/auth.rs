//! SIP digest authentication (RFC 3261 section 22, RFC 2617, RFC 7616, RFC 8760).
//!
//! Client side: parse `WWW-Authenticate` / `Proxy-Authenticate` challenges, pick the
//! strongest one, and build `Authorization` / `Proxy-Authorization` values. Server side:
//! parse an `Authorization` value and verify it against a password.
//!
//! The module is sans-IO: it never reads a clock or a random source. Whatever must be
//! unpredictable (cnonce, server nonces) is supplied by the caller.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use md5::{Digest, Md5};
use sha2::Sha256;
use thiserror::Error;

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
    fn strength(self) -> u8 {
        match self {
            Self::Md5 | Self::Md5Sess => 1,
            Self::Sha256 | Self::Sha256Sess => 2,
        }
    }

    /// Lowercase hex hash of `parts` joined with `:`, fed incrementally so that large
    /// bodies and secrets are not copied into a joined buffer.
    fn hash_joined(self, parts: &[&[u8]]) -> String {
        match self {
            Self::Md5 | Self::Md5Sess => hash_joined_with::<Md5>(parts),
            Self::Sha256 | Self::Sha256Sess => hash_joined_with::<Sha256>(parts),
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

/// A parsed `WWW-Authenticate` or `Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: DigestAlgorithm,
    /// Offered qop values that we support, in the server's order. Empty means the
    /// server sent no qop (RFC 2069 compatibility mode).
    pub qop: Vec<Qop>,
    pub stale: bool,
    /// The raw, space-separated URI list of the `domain` parameter.
    pub domain: Option<String>,
}

impl Challenge {
    /// A challenge offering `qop=auth`, for servers that issue challenges.
    pub fn new(
        realm: impl Into<String>,
        nonce: impl Into<String>,
        algorithm: DigestAlgorithm,
    ) -> Self {
        Self {
            realm: realm.into(),
            nonce: nonce.into(),
            opaque: None,
            algorithm,
            qop: vec![Qop::Auth],
            stale: false,
            domain: None,
        }
    }

    /// Parses a challenge header value such as `Digest realm="x", nonce="y"`.
    pub fn parse(header_value: &str) -> Result<Self, AuthError> {
        let params = parse_digest_header(header_value)?;
        let realm = required(&params, "realm", "challenge")?;
        let nonce = required(&params, "nonce", "challenge")?;
        let algorithm = match find(&params, "algorithm")? {
            Some(p) => DigestAlgorithm::parse(&p.value)?,
            None => DigestAlgorithm::Md5,
        };
        let qop = match find(&params, "qop")? {
            Some(p) => parse_qop_list(&p.value)?,
            None => Vec::new(),
        };
        // RFC 7616: anything other than "true" counts as false.
        let stale =
            find(&params, "stale")?.is_some_and(|p| p.value.trim().eq_ignore_ascii_case("true"));
        Ok(Self {
            realm,
            nonce,
            opaque: optional(&params, "opaque")?,
            algorithm,
            qop,
            stale,
            domain: optional(&params, "domain")?,
        })
    }

    /// The strongest supported challenge (SHA-256 over MD5). Among equals the first wins,
    /// since RFC 7616 has servers list challenges in order of preference.
    pub fn choose(candidates: &[Challenge]) -> Option<&Challenge> {
        let mut best: Option<&Challenge> = None;
        for candidate in candidates {
            if best.is_none_or(|b| candidate.algorithm.strength() > b.algorithm.strength()) {
                best = Some(candidate);
            }
        }
        best
    }

    /// The strongest challenge for each distinct realm, in order of each realm's first
    /// appearance. A forking proxy can aggregate challenges from several realms into one
    /// response, and each realm needs its own answer.
    pub fn choose_per_realm(candidates: &[Challenge]) -> Vec<&Challenge> {
        let mut chosen: Vec<&Challenge> = Vec::new();
        for candidate in candidates {
            match chosen.iter_mut().find(|c| c.realm == candidate.realm) {
                Some(slot) => {
                    if candidate.algorithm.strength() > slot.algorithm.strength() {
                        *slot = candidate;
                    }
                }
                None => chosen.push(candidate),
            }
        }
        chosen
    }

    /// The qop a client should answer with: `auth` is preferred because `auth-int`
    /// breaks as soon as anything on the path rewrites the body.
    pub fn preferred_qop(&self) -> Option<Qop> {
        if self.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else if self.qop.contains(&Qop::AuthInt) {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }

    /// URIs of the protection space, split from the `domain` parameter.
    pub fn domain_uris(&self) -> impl Iterator<Item = &str> {
        self.domain.as_deref().unwrap_or("").split_whitespace()
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Digest realm=\"{}\", nonce=\"{}\"",
            escape(&self.realm),
            escape(&self.nonce)
        )?;
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque=\"{}\"", escape(opaque))?;
        }
        write!(f, ", algorithm={}", self.algorithm)?;
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.as_str()).collect();
            write!(f, ", qop=\"{}\"", list.join(","))?;
        }
        if self.stale {
            f.write_str(", stale=TRUE")?;
        }
        if let Some(domain) = &self.domain {
            write!(f, ", domain=\"{}\"", escape(domain))?;
        }
        Ok(())
    }
}

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

    /// The response digest for these fields, per RFC 7616 section 3.4.
    fn expected_response(
        &self,
        password: &str,
        method: &str,
        body: &[u8],
    ) -> Result<String, AuthError> {
        let alg = self.algorithm;
        let mut ha1 = alg.hash_joined(&[
            self.username.as_bytes(),
            self.realm.as_bytes(),
            password.as_bytes(),
        ]);
        if alg.is_session() {
            let cnonce = self.cnonce.as_deref().ok_or(AuthError::MissingParam {
                header: "authorization",
                param: "cnonce",
            })?;
            ha1 = alg.hash_joined(&[ha1.as_bytes(), self.nonce.as_bytes(), cnonce.as_bytes()]);
        }
        let ha2 = match self.qop {
            Some(Qop::AuthInt) => {
                let body_hash = alg.hash_joined(&[body]);
                alg.hash_joined(&[method.as_bytes(), self.uri.as_bytes(), body_hash.as_bytes()])
            }
            _ => alg.hash_joined(&[method.as_bytes(), self.uri.as_bytes()]),
        };
        let response = match self.qop {
            Some(qop) => {
                let (Some(cnonce), Some(nc)) = (self.cnonce.as_deref(), self.nc) else {
                    return Err(AuthError::MissingParam {
                        header: "authorization",
                        param: "cnonce",
                    });
                };
                let nc = format!("{nc:08x}");
                alg.hash_joined(&[
                    ha1.as_bytes(),
                    self.nonce.as_bytes(),
                    nc.as_bytes(),
                    cnonce.as_bytes(),
                    qop.as_str().as_bytes(),
                    ha2.as_bytes(),
                ])
            }
            None => alg.hash_joined(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()]),
        };
        Ok(response)
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

/// Which pair of headers a challenge came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthTarget {
    /// 401, `WWW-Authenticate`, answered with `Authorization`.
    Server,
    /// 407, `Proxy-Authenticate`, answered with `Proxy-Authorization`.
    Proxy,
}

impl AuthTarget {
    /// The header that carries the challenge.
    pub fn challenge_header(self) -> &'static str {
        match self {
            Self::Server => "WWW-Authenticate",
            Self::Proxy => "Proxy-Authenticate",
        }
    }

    /// The header that carries the answer.
    pub fn authorization_header(self) -> &'static str {
        match self {
            Self::Server => "Authorization",
            Self::Proxy => "Proxy-Authorization",
        }
    }
}

/// An answer produced by [`DigestSession::authorize`].
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

/// The challenge of a 401 (from the server) or 407 (from a proxy): the best digest offered.
pub fn challenge_in(response: &crate::sip::message::Message) -> Option<(AuthTarget, Challenge)> {
    let (header, target) = match response.status()? {
        401 => ("WWW-Authenticate", AuthTarget::Server),
        407 => ("Proxy-Authenticate", AuthTarget::Proxy),
        _ => return None,
    };
    let challenges: Vec<Challenge> = response
        .headers
        .all(header)
        .into_iter()
        .filter_map(|v| Challenge::parse(v).ok())
        .collect();
    Challenge::choose(&challenges).cloned().map(|c| (target, c))
}

/// Why a 401 or 407 could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChallengeError {
    #[error("no password is configured")]
    NoCredentials,
    #[error("no usable digest challenge")]
    NoUsableChallenge,
    /// The challenge says our last answer was wrong (or cannot be taken).
    #[error("{0}")]
    Refused(AuthError),
    /// The challenge was taken but no answer could be computed for it.
    #[error("{0}")]
    CannotAnswer(AuthError),
}

/// The request to send again with credentials: what the digest covers.
#[derive(Debug, Clone, Copy)]
pub struct Retried<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
    pub cnonce: &'a str,
}

/// The one routine that answers a challenge, whatever the request (REGISTER, INVITE,
/// OPTIONS, ...): takes in the best digest challenge of `response` (RFC 3261 22.2, 22.3) and
/// builds the header for `retried`.
pub fn answer_challenge(
    digest: Option<&mut DigestSession>,
    response: &crate::sip::message::Message,
    retried: Retried<'_>,
) -> Result<AuthorizationHeader, ChallengeError> {
    let digest = digest.ok_or(ChallengeError::NoCredentials)?;
    let (target, challenge) = challenge_in(response).ok_or(ChallengeError::NoUsableChallenge)?;
    let realm = challenge.realm.clone();
    digest
        .handle_challenge(target, challenge)
        .map_err(ChallengeError::Refused)?;
    digest
        .authorize(
            &realm,
            retried.method,
            retried.uri,
            retried.body,
            retried.cnonce,
        )
        .map_err(ChallengeError::CannotAnswer)
}

/// Where a realm stands, which decides whether a new challenge means "wrong password".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A challenge arrived and has not been answered yet.
    Challenged,
    /// We answered a challenge and have not heard that it worked.
    Answered,
    /// The server accepted our credentials; later answers reuse the nonce.
    Accepted,
}

#[derive(Debug, Clone)]
struct RealmState {
    target: AuthTarget,
    challenge: Challenge,
    /// Last nonce count sent on `challenge.nonce`; 0 before the first answer.
    nc: u32,
    phase: Phase,
}

/// Per-registration digest state: the last challenge of each realm and the nonce count
/// sent on its nonce, so that requests reusing a nonce count up and a rejected password
/// is reported instead of retried forever.
///
/// Call [`handle_challenge`](Self::handle_challenge) for each challenge of a 401/407,
/// [`authorize`](Self::authorize) to build the header of the retried (or a later)
/// request, and [`accepted`](Self::accepted) once a request carrying our credentials got
/// a final response other than 401/407. Without `accepted`, a server that lets a nonce
/// expire without setting `stale` looks exactly like a rejected password.
#[derive(Debug, Clone)]
pub struct DigestSession {
    credentials: Credentials,
    realms: HashMap<String, RealmState>,
}

impl DigestSession {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            realms: HashMap::new(),
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Whether answering `challenge` is worth a retry. False means the server rejected
    /// the credentials we just sent for that realm: the UA should report "wrong
    /// credentials" rather than loop.
    pub fn should_retry(&self, challenge: &Challenge) -> bool {
        let Some(state) = self.realms.get(&challenge.realm) else {
            return true;
        };
        if challenge.stale {
            // A stale verdict on the very nonce it hands back again would loop forever.
            return state.phase == Phase::Challenged || challenge.nonce != state.challenge.nonce;
        }
        state.phase != Phase::Answered
    }

    /// Remembers `challenge` for its realm, or fails with
    /// [`AuthError::WrongCredentials`] when [`should_retry`](Self::should_retry) says no.
    /// A new nonce restarts the nonce count at 1.
    pub fn handle_challenge(
        &mut self,
        target: AuthTarget,
        challenge: Challenge,
    ) -> Result<(), AuthError> {
        if !self.should_retry(&challenge) {
            return Err(AuthError::WrongCredentials(challenge.realm));
        }
        let nc = match self.realms.get(&challenge.realm) {
            Some(old) if old.challenge.nonce == challenge.nonce => old.nc,
            _ => 0,
        };
        self.realms.insert(
            challenge.realm.clone(),
            RealmState {
                target,
                challenge,
                nc,
                phase: Phase::Challenged,
            },
        );
        Ok(())
    }

    /// Builds the header for a request in `realm`, counting `nc` up on the remembered
    /// nonce.
    pub fn authorize(
        &mut self,
        realm: &str,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
    ) -> Result<AuthorizationHeader, AuthError> {
        let state = self
            .realms
            .get_mut(realm)
            .ok_or_else(|| AuthError::UnknownRealm(realm.to_owned()))?;
        let nc = state
            .nc
            .checked_add(1)
            .ok_or_else(|| AuthError::NonceCountExhausted(realm.to_owned()))?;
        let authorization = Authorization::answer(
            &state.challenge,
            &self.credentials,
            method,
            uri,
            body,
            cnonce,
            nc,
        )?;
        state.nc = nc;
        if state.phase == Phase::Challenged {
            state.phase = Phase::Answered;
        }
        Ok(AuthorizationHeader {
            target: state.target,
            authorization,
        })
    }

    /// Records that the server accepted our credentials for `realm`.
    pub fn accepted(&mut self, realm: &str) {
        if let Some(state) = self.realms.get_mut(realm) {
            state.phase = Phase::Accepted;
        }
    }

    /// The remembered challenge of `realm`.
    pub fn challenge(&self, realm: &str) -> Option<&Challenge> {
        self.realms.get(realm).map(|s| &s.challenge)
    }

    /// The last nonce count sent in `realm` (0 if none yet on the current nonce).
    pub fn nonce_count(&self, realm: &str) -> Option<u32> {
        self.realms.get(realm).map(|s| s.nc)
    }

    /// Realms with a remembered challenge.
    pub fn realms(&self) -> impl Iterator<Item = &str> {
        self.realms.keys().map(String::as_str)
    }

    /// Drops what is known about `realm`, e.g. after the user changed the password.
    pub fn forget(&mut self, realm: &str) {
        self.realms.remove(realm);
    }
}

fn hash_joined_with<D: Digest>(parts: &[&[u8]]) -> String {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest.iter() {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Compares without an early exit, so the time taken does not reveal how many leading
/// characters of a guessed response were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn check_header_safe(param: &'static str, value: &str) -> Result<(), AuthError> {
    if value.chars().any(is_forbidden_control) {
        return Err(AuthError::InvalidParam {
            param,
            value: value.to_owned(),
        });
    }
    Ok(())
}

fn is_forbidden_control(c: char) -> bool {
    c.is_control() && c != '\t'
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

fn parse_qop_list(value: &str) -> Result<Vec<Qop>, AuthError> {
    let mut list = Vec::new();
    for token in value.split([',', ' ', '\t']).filter(|t| !t.is_empty()) {
        if let Ok(qop) = Qop::parse(token)
            && !list.contains(&qop)
        {
            list.push(qop);
        }
    }
    let offered_something = value.split([',', ' ', '\t']).any(|t| !t.is_empty());
    if offered_something && list.is_empty() {
        // The server insists on a qop we cannot do, so no answer of ours can succeed.
        return Err(AuthError::UnsupportedQop(value.trim().to_owned()));
    }
    Ok(list)
}

#[derive(Debug)]
struct Param {
    /// Lowercased, since parameter names are case-insensitive.
    name: String,
    value: String,
    quoted: bool,
}

fn find<'p>(params: &'p [Param], name: &str) -> Result<Option<&'p Param>, AuthError> {
    let mut matches = params.iter().filter(|p| p.name == name);
    let first = matches.next();
    // Two different values for one parameter leave the meaning to whoever parses last;
    // refusing is the only reading both sides agree on.
    if matches.next().is_some() {
        return Err(AuthError::DuplicateParam(name.to_owned()));
    }
    Ok(first)
}

fn optional(params: &[Param], name: &str) -> Result<Option<String>, AuthError> {
    Ok(find(params, name)?.map(|p| p.value.clone()))
}

fn required(
    params: &[Param],
    name: &'static str,
    header: &'static str,
) -> Result<String, AuthError> {
    optional(params, name)?.ok_or(AuthError::MissingParam {
        header,
        param: name,
    })
}

/// RFC 3261 token characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

fn is_lws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn malformed(what: impl Into<String>) -> AuthError {
    AuthError::Malformed(what.into())
}

/// A read position in a header value. All splitting happens at char boundaries found by
/// `char_indices`, and through `split_at_checked`, so hostile input cannot cause a panic.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let mut chars = self.rest.chars();
        let c = chars.next();
        self.rest = chars.as_str();
        c
    }

    fn skip_lws(&mut self) {
        self.rest = self.rest.trim_start_matches(is_lws);
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self
            .rest
            .char_indices()
            .find(|&(_, c)| !keep(c))
            .map_or(self.rest.len(), |(i, _)| i);
        match self.rest.split_at_checked(end) {
            Some((taken, rest)) => {
                self.rest = rest;
                taken
            }
            None => "",
        }
    }

    /// Reads a quoted-string whose opening quote is next, undoing backslash escapes.
    fn quoted_string(&mut self, name: &str) -> Result<String, AuthError> {
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                None => return Err(malformed(format!("unterminated quoted value of {name}"))),
                Some('"') => return Ok(value),
                Some('\\') => match self.bump() {
                    Some(c) if !is_forbidden_control(c) => value.push(c),
                    Some(_) => return Err(malformed(format!("control character in {name}"))),
                    None => return Err(malformed(format!("unterminated quoted value of {name}"))),
                },
                Some(c) if is_forbidden_control(c) => {
                    return Err(malformed(format!("control character in {name}")));
                }
                Some(c) => value.push(c),
            }
        }
    }
}

/// Splits `Digest name=value, name="value", ...` into parameters.
fn parse_digest_header(input: &str) -> Result<Vec<Param>, AuthError> {
    let mut cur = Cursor { rest: input };
    cur.skip_lws();
    if cur.peek().is_none() {
        return Err(AuthError::Empty);
    }
    let scheme = cur.take_while(is_token_char);
    if scheme.is_empty() {
        return Err(malformed("missing auth scheme"));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(AuthError::NotDigest(scheme.to_owned()));
    }
    if cur.peek().is_some_and(|c| !is_lws(c)) {
        return Err(malformed("expected whitespace after the auth scheme"));
    }

    let mut params: Vec<Param> = Vec::new();
    loop {
        cur.skip_lws();
        match cur.peek() {
            None => break,
            // Empty list elements are allowed by the HTTP list rule.
            Some(',') => {
                cur.bump();
                continue;
            }
            Some(_) => {}
        }
        let name = cur.take_while(is_token_char);
        if name.is_empty() {
            return Err(malformed("expected a parameter name"));
        }
        cur.skip_lws();
        if cur.peek() != Some('=') {
            // Some servers write `qop=auth,auth-int` unquoted, which tokenizes as a qop
            // parameter followed by a bare `auth-int`.
            if let Some(prev) = params.last_mut()
                && prev.name == "qop"
                && !prev.quoted
                && matches!(cur.peek(), None | Some(','))
            {
                prev.value.push(',');
                prev.value.push_str(name);
                continue;
            }
            return Err(malformed(format!("parameter {name:?} has no value")));
        }
        cur.bump();
        cur.skip_lws();
        let (value, quoted) = if cur.peek() == Some('"') {
            (cur.quoted_string(name)?, true)
        } else {
            let raw = cur.take_while(|c| !is_lws(c) && c != ',' && c != '"' && !c.is_control());
            if raw.is_empty() {
                return Err(malformed(format!("parameter {name:?} has an empty value")));
            }
            (raw.to_owned(), false)
        };
        cur.skip_lws();
        if !matches!(cur.peek(), None | Some(',')) {
            return Err(malformed(format!(
                "unexpected text after parameter {name:?}"
            )));
        }
        params.push(Param {
            name: name.to_ascii_lowercase(),
            value,
            quoted,
        });
    }
    Ok(params)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    const RFC2617_CHALLENGE: &str = "Digest\n                 realm=\"testrealm@host.com\",\n                 qop=\"auth,auth-int\",\n                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\n                 opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc7616_challenge(algorithm: &str) -> String {
        format!(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={algorithm}, nonce=\"{RFC7616_NONCE}\", opaque=\"{RFC7616_OPAQUE}\""
        )
    }

    fn mufasa() -> Credentials {
        Credentials::new("Mufasa", "Circle Of Life")
    }

    fn bob() -> Credentials {
        Credentials::new("bob", "zanzibar")
    }

    fn unauthorized(challenges: &[&str]) -> crate::sip::message::Message {
        let mut text = String::from(
            "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:bob@biloxi.com>;tag=1\r\nTo: <sip:bob@biloxi.com>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n",
        );
        for challenge in challenges {
            text.push_str(&format!("WWW-Authenticate: {challenge}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        crate::sip::message::Message::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn one_routine_answers_a_challenge_or_says_why_not() {
        let challenge = Challenge::new("biloxi.com", "n1", DigestAlgorithm::Md5).to_string();
        let response = unauthorized(&[&challenge]);
        let retried = Retried {
            method: "REGISTER",
            uri: "sip:biloxi.com",
            body: &[],
            cnonce: "c1",
        };
        assert_eq!(
            answer_challenge(None, &response, retried),
            Err(ChallengeError::NoCredentials)
        );
        let mut digest = DigestSession::new(bob());
        assert_eq!(
            answer_challenge(
                Some(&mut digest),
                &unauthorized(&["Basic realm=\"x\""]),
                retried
            ),
            Err(ChallengeError::NoUsableChallenge)
        );
        let answer = answer_challenge(Some(&mut digest), &response, retried).unwrap();
        assert_eq!(answer.name(), "Authorization");
        assert!(
            answer.authorization.verify("zanzibar", "REGISTER", &[]),
            "{}",
            answer.value()
        );
        // The same nonce again right after our answer: the password was wrong.
        assert!(matches!(
            answer_challenge(Some(&mut digest), &response, retried),
            Err(ChallengeError::Refused(AuthError::WrongCredentials(_)))
        ));
    }

    fn biloxi(qop: &str, algorithm: &str) -> Challenge {
        Challenge::parse(&format!(
            "Digest realm=\"biloxi.com\", nonce=\"84a4cc6f3082121f32b42a2187831a9e\", algorithm={algorithm}{qop}"
        ))
        .unwrap()
    }

    #[test]
    fn rfc2617_example_response() {
        let ch = Challenge::parse(RFC2617_CHALLENGE).unwrap();
        assert_eq!(ch.realm, "testrealm@host.com");
        assert_eq!(ch.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
        assert_eq!(
            ch.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        assert_eq!(ch.qop, vec![Qop::Auth, Qop::AuthInt]);
        assert_eq!(ch.algorithm, DigestAlgorithm::Md5);

        let value =
            authorization_value(&ch, &mufasa(), "GET", "/dir/index.html", b"", "0a4f113b", 1)
                .unwrap();
        assert_eq!(
            value,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", \
             qop=auth, nc=00000001, opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
    }

    #[test]
    fn rfc7616_sha256_example_response() {
        // RFC 7616 section 3.9.1 spells the password "Circle of Life", unlike RFC 2617.
        let creds = Credentials::new("Mufasa", "Circle of Life");
        let ch = Challenge::parse(&rfc7616_challenge("SHA-256")).unwrap();
        let auth = Authorization::answer(
            &ch,
            &creds,
            "GET",
            "/dir/index.html",
            b"",
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        assert_eq!(
            auth.response,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(auth.qop, Some(Qop::Auth));
        let value = auth.to_string();
        assert!(value.contains(", algorithm=SHA-256, "), "{value}");
        assert!(
            value.contains(&format!("opaque=\"{RFC7616_OPAQUE}\"")),
            "{value}"
        );
        assert!(value.contains("qop=auth, nc=00000001"), "{value}");
    }

    #[test]
    fn rfc7616_md5_example_response() {
        let creds = Credentials::new("Mufasa", "Circle of Life");
        let ch = Challenge::parse(&rfc7616_challenge("MD5")).unwrap();
        let auth = Authorization::answer(
            &ch,
            &creds,
            "GET",
            "/dir/index.html",
            b"",
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        assert_eq!(auth.response, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn rfc7616_vectors_differ_with_rfc2617_password_spelling() {
        let ch = Challenge::parse(&rfc7616_challenge("MD5")).unwrap();
        let auth = Authorization::answer(
            &ch,
            &mufasa(),
            "GET",
            "/dir/index.html",
            b"",
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        assert_ne!(auth.response, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn auth_int_hashes_the_body() {
        let body = b"v=0\r\no=bob 2890844527 2890844527 IN IP4 host.biloxi.com\r\n";
        let md5 = biloxi(", qop=\"auth-int\"", "MD5");
        let auth = Authorization::answer(
            &md5,
            &bob(),
            "INVITE",
            "sip:bob@biloxi.com",
            body,
            "0a4f113b",
            1,
        )
        .unwrap();
        assert_eq!(auth.qop, Some(Qop::AuthInt));
        assert_eq!(auth.response, "45535967a547a1d3a453160e34083c7d");
        assert!(auth.to_string().contains("qop=auth-int, nc=00000001"));

        let other_body = Authorization::answer(
            &md5,
            &bob(),
            "INVITE",
            "sip:bob@biloxi.com",
            b"v=1",
            "0a4f113b",
            1,
        )
        .unwrap();
        assert_ne!(other_body.response, auth.response);

        let sha = biloxi(", qop=auth-int", "SHA-256");
        let auth = Authorization::answer(
            &sha,
            &bob(),
            "INVITE",
            "sip:bob@biloxi.com",
            body,
            "0a4f113b",
            1,
        )
        .unwrap();
        assert_eq!(
            auth.response,
            "42e1486182fb81a00fbc662d7c04654c8379acc3080c6ad5e283e61403f8a90f"
        );
    }

    #[test]
    fn auth_preferred_over_auth_int() {
        let ch = biloxi(", qop=\"auth-int,auth\"", "MD5");
        assert_eq!(ch.preferred_qop(), Some(Qop::Auth));
        let auth =
            Authorization::answer(&ch, &bob(), "REGISTER", "sip:biloxi.com", b"body", "c", 1)
                .unwrap();
        assert_eq!(auth.qop, Some(Qop::Auth));
        // The body must not matter under qop=auth.
        assert!(auth.verify("zanzibar", "REGISTER", b"another body"));
    }

    #[test]
    fn session_algorithms_match_independent_computation() {
        let md5 = biloxi(", qop=auth", "MD5-sess");
        let auth = Authorization::answer(
            &md5,
            &bob(),
            "REGISTER",
            "sip:biloxi.com",
            b"",
            "0a4f113b",
            42,
        )
        .unwrap();
        assert_eq!(auth.response, "23ffb10e2c725c17583e96d259605cf4");
        assert!(
            auth.to_string()
                .contains("algorithm=MD5-sess, cnonce=\"0a4f113b\", qop=auth, nc=0000002a")
        );

        let sha = biloxi(", qop=auth", "sha-256-SESS");
        assert_eq!(sha.algorithm, DigestAlgorithm::Sha256Sess);
        let auth = Authorization::answer(
            &sha,
            &bob(),
            "REGISTER",
            "sip:biloxi.com",
            b"",
            "0a4f113b",
            42,
        )
        .unwrap();
        assert_eq!(
            auth.response,
            "5e1258d12ce38130263fb085d348b144b745e16429d44a21d8fca748b5807551"
        );
    }

    #[test]
    fn rfc2069_mode_without_qop_sends_no_cnonce_or_nc() {
        let ch = biloxi("", "MD5");
        assert!(ch.qop.is_empty());
        let value =
            authorization_value(&ch, &bob(), "REGISTER", "sip:biloxi.com", b"", "ignored", 7)
                .unwrap();
        assert_eq!(
            value,
            "Digest username=\"bob\", realm=\"biloxi.com\", nonce=\"84a4cc6f3082121f32b42a2187831a9e\", \
             uri=\"sip:biloxi.com\", response=\"133e2c13b8f066b4569b3adbdf67ebd1\", algorithm=MD5"
        );
    }

    #[test]
    fn missing_cnonce_is_refused_when_needed() {
        let ch = biloxi(", qop=auth", "MD5");
        let err = Authorization::answer(&ch, &bob(), "REGISTER", "sip:biloxi.com", b"", "", 1)
            .unwrap_err();
        assert!(matches!(
            err,
            AuthError::InvalidParam {
                param: "cnonce",
                ..
            }
        ));
        // Without qop or -sess there is nothing to put the cnonce in.
        let plain = biloxi("", "MD5");
        assert!(
            Authorization::answer(&plain, &bob(), "REGISTER", "sip:biloxi.com", b"", "", 1).is_ok()
        );
    }

    #[test]
    fn algorithm_tokens_parse_case_insensitively() {
        assert_eq!(DigestAlgorithm::parse("md5").unwrap(), DigestAlgorithm::Md5);
        assert_eq!(
            DigestAlgorithm::parse("MD5-SESS").unwrap(),
            DigestAlgorithm::Md5Sess
        );
        assert_eq!(
            DigestAlgorithm::parse("Sha-256").unwrap(),
            DigestAlgorithm::Sha256
        );
        assert_eq!(
            "SHA-256-sess".parse::<DigestAlgorithm>().unwrap(),
            DigestAlgorithm::Sha256Sess
        );
        for alg in [
            DigestAlgorithm::Md5,
            DigestAlgorithm::Md5Sess,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha256Sess,
        ] {
            assert_eq!(DigestAlgorithm::parse(&alg.to_string()).unwrap(), alg);
        }
    }

    #[test]
    fn unknown_algorithm_is_a_typed_error() {
        let err =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256").unwrap_err();
        assert_eq!(err, AuthError::UnsupportedAlgorithm("SHA-512-256".into()));
        let err =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=\"FOO\"").unwrap_err();
        assert_eq!(err.to_string(), "unsupported digest algorithm \"FOO\"");
        assert!(Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5").is_err());
    }

    #[test]
    fn algorithm_quoted_or_unquoted() {
        let quoted =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=\"SHA-256\"").unwrap();
        let bare = Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=sha-256").unwrap();
        assert_eq!(quoted.algorithm, DigestAlgorithm::Sha256);
        assert_eq!(quoted, bare);
        let absent = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap();
        assert_eq!(absent.algorithm, DigestAlgorithm::Md5);
    }

    #[test]
    fn qop_lists_quoted_unquoted_and_unknown() {
        let cases: &[(&str, &[Qop])] = &[
            ("qop=\"auth,auth-int\"", &[Qop::Auth, Qop::AuthInt]),
            ("qop=\" auth-int , auth \"", &[Qop::AuthInt, Qop::Auth]),
            ("qop=auth", &[Qop::Auth]),
            ("qop=AUTH", &[Qop::Auth]),
            ("qop=auth,auth-int", &[Qop::Auth, Qop::AuthInt]),
            ("qop=auth-int, auth", &[Qop::AuthInt, Qop::Auth]),
            ("qop=\"auth,token-we-do-not-know\"", &[Qop::Auth]),
            ("qop=\"\"", &[]),
        ];
        for (qop, expected) in cases {
            let ch = Challenge::parse(&format!("Digest realm=\"r\", {qop}, nonce=\"n\"")).unwrap();
            assert_eq!(ch.qop, *expected, "{qop}");
            assert_eq!(ch.nonce, "n");
        }
        let err =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-conf\"").unwrap_err();
        assert_eq!(err, AuthError::UnsupportedQop("auth-conf".into()));
    }

    #[test]
    fn tolerant_whitespace_and_case() {
        let ch = Challenge::parse(
            "  dIgEsT   REALM = \"atlanta.com\" ,NONCE=\"abc\",,\topaque = \"\" , STALE=True, \
             domain=\"sip:a.com sip:b.com\",",
        )
        .unwrap();
        assert_eq!(ch.realm, "atlanta.com");
        assert_eq!(ch.nonce, "abc");
        assert_eq!(ch.opaque.as_deref(), Some(""));
        assert!(ch.stale);
        assert_eq!(
            ch.domain_uris().collect::<Vec<_>>(),
            vec!["sip:a.com", "sip:b.com"]
        );

        let folded = Challenge::parse("Digest realm=\"a\",\r\n nonce=\"b\"").unwrap();
        assert_eq!(folded.nonce, "b");
    }

    #[test]
    fn stale_flag_values() {
        for (stale, expected) in [
            ("true", true),
            ("TRUE", true),
            ("\"true\"", true),
            ("false", false),
            ("FALSE", false),
            ("maybe", false),
        ] {
            let ch = Challenge::parse(&format!("Digest realm=\"r\", nonce=\"n\", stale={stale}"))
                .unwrap();
            assert_eq!(ch.stale, expected, "{stale}");
        }
    }

    #[test]
    fn quoted_strings_unescape_and_output_escapes() {
        let ch =
            Challenge::parse(r#"Digest realm="a \"quoted\" \\ realm", nonce="n\,1", opaque="x,y""#)
                .unwrap();
        assert_eq!(ch.realm, r#"a "quoted" \ realm"#);
        assert_eq!(ch.nonce, "n,1");
        assert_eq!(ch.opaque.as_deref(), Some("x,y"));

        let creds = Credentials::new(r#"us"er\x"#, "pw");
        let auth = Authorization::answer(&ch, &creds, "REGISTER", "sip:r", b"", "c", 1).unwrap();
        let value = auth.to_string();
        assert!(
            value.starts_with(r#"Digest username="us\"er\\x", realm="a \"quoted\" \\ realm""#),
            "{value}"
        );
        assert_eq!(Authorization::parse(&value).unwrap(), auth);
    }

    #[test]
    fn unknown_params_are_ignored() {
        let ch = Challenge::parse(
            "Digest realm=\"r\", charset=UTF-8, userhash=false, nonce=\"n\", x-vendor=\"a, b\"",
        )
        .unwrap();
        assert_eq!(ch.realm, "r");
        assert_eq!(ch.nonce, "n");
    }

    #[test]
    fn missing_realm_or_nonce_is_an_error() {
        let err = Challenge::parse("Digest realm=\"r\", qop=auth").unwrap_err();
        assert_eq!(err.to_string(), "challenge has no nonce");
        let err = Challenge::parse("Digest nonce=\"n\"").unwrap_err();
        assert_eq!(err.to_string(), "challenge has no realm");
    }

    #[test]
    fn non_digest_schemes_are_rejected() {
        let err = Challenge::parse("Basic realm=\"r\"").unwrap_err();
        assert_eq!(err, AuthError::NotDigest("Basic".into()));
        assert!(err.to_string().starts_with("not a Digest challenge"));
        assert_eq!(Challenge::parse("").unwrap_err(), AuthError::Empty);
        assert_eq!(Challenge::parse(" \t ").unwrap_err(), AuthError::Empty);
    }

    #[test]
    fn garbage_gives_errors() {
        let garbage = [
            "Digest",
            "Digest ",
            "Digestrealm=\"r\"",
            "Digest realm",
            "Digest realm=",
            "Digest realm=\"unterminated",
            "Digest realm=\"r\\",
            "Digest realm=\"r\" nonce=\"n\"",
            "Digest realm=\"r\"x, nonce=\"n\"",
            "Digest =\"r\"",
            "Digest realm=\"r\", nonce=\"n\", Digest realm=\"s\"",
            "Digest realm=\"r\", nonce=\"n\", realm=\"s\"",
            "Digest realm=\"r\u{0}\", nonce=\"n\"",
            "Digest realm=\"r\\\r\", nonce=\"n\"",
            "\"Digest\" realm=\"r\"",
            "Digest réalm=\"r\", nonce=\"n\"",
            "Digest realm=r\"x\", nonce=\"n\"",
        ];
        for input in garbage {
            assert!(
                Challenge::parse(input).is_err(),
                "{input:?} should not parse"
            );
            assert!(
                Authorization::parse(input).is_err(),
                "{input:?} should not parse"
            );
        }
        assert_eq!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", realm=\"s\"").unwrap_err(),
            AuthError::DuplicateParam("realm".into())
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator stands in for a fuzzer: it mixes the
        // characters that drive the parser's state changes with arbitrary ones.
        let alphabet: Vec<char> =
            "Digest realm=\"\\, \t\r\nqop=auth-int nonce=algorithm=SHA-256 é\u{0}€"
                .chars()
                .collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            let mut input = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 60) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                input.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = Challenge::parse(&input);
            let _ = Authorization::parse(&input);
            let _ = Challenge::parse(&format!("Digest {input}"));
            let _ = Authorization::parse(&format!("Digest realm=\"r\", {input}"));
        }
    }

    #[test]
    fn choose_prefers_sha256_over_md5() {
        let md5 = Challenge::parse(&rfc7616_challenge("MD5")).unwrap();
        let sha = Challenge::parse(&rfc7616_challenge("SHA-256")).unwrap();
        let candidates = [md5.clone(), sha.clone()];
        assert_eq!(Challenge::choose(&candidates), Some(&sha));
        let candidates = [sha.clone(), md5.clone()];
        assert_eq!(Challenge::choose(&candidates), Some(&sha));
        assert_eq!(Challenge::choose(&[]), None);

        // Equal strength: the server's first preference stands.
        let sess = Challenge::parse(&rfc7616_challenge("SHA-256-sess")).unwrap();
        let candidates = [sess.clone(), sha.clone(), md5.clone()];
        assert_eq!(Challenge::choose(&candidates), Some(&sess));
    }

    #[test]
    fn choose_skips_unsupported_challenges() {
        let headers = [
            "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256",
            "Digest realm=\"r\", nonce=\"n\", algorithm=MD5",
            "Basic realm=\"r\"",
        ];
        let parsed: Vec<Challenge> = headers
            .iter()
            .filter_map(|h| Challenge::parse(h).ok())
            .collect();
        assert_eq!(
            Challenge::choose(&parsed).unwrap().algorithm,
            DigestAlgorithm::Md5
        );
    }

    #[test]
    fn choose_per_realm_keeps_one_per_realm() {
        let a_md5 = Challenge::new("a", "n1", DigestAlgorithm::Md5);
        let b_md5 = Challenge::new("b", "n2", DigestAlgorithm::Md5);
        let a_sha = Challenge::new("a", "n3", DigestAlgorithm::Sha256);
        let candidates = [a_md5, b_md5.clone(), a_sha.clone()];
        assert_eq!(
            Challenge::choose_per_realm(&candidates),
            vec![&a_sha, &b_md5]
        );
    }

    #[test]
    fn challenge_display_round_trips() {
        let mut ch = Challenge::new("sip \"recorder\"", "abc/def+=", DigestAlgorithm::Sha256);
        ch.opaque = Some("op".into());
        ch.qop = vec![Qop::Auth, Qop::AuthInt];
        ch.stale = true;
        ch.domain = Some("sip:a.example".into());
        let text = ch.to_string();
        assert_eq!(
            text,
            "Digest realm=\"sip \\\"recorder\\\"\", nonce=\"abc/def+=\", opaque=\"op\", algorithm=SHA-256, \
             qop=\"auth,auth-int\", stale=TRUE, domain=\"sip:a.example\""
        );
        assert_eq!(Challenge::parse(&text).unwrap(), ch);
    }

    #[test]
    fn authorization_parse_and_verify_rfc2617() {
        let header = "Digest username=\"Mufasa\",\n realm=\"testrealm@host.com\",\n \
                      nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\n uri=\"/dir/index.html\",\n \
                      qop=auth,\n nc=00000001,\n cnonce=\"0a4f113b\",\n \
                      response=\"6629fae49393a05397450978507c4ef1\",\n \
                      opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let auth = Authorization::parse(header).unwrap();
        assert_eq!(auth.username, "Mufasa");
        assert_eq!(auth.uri, "/dir/index.html");
        assert_eq!(auth.nc, Some(1));
        assert_eq!(auth.qop, Some(Qop::Auth));
        assert_eq!(auth.cnonce.as_deref(), Some("0a4f113b"));
        assert_eq!(auth.algorithm, DigestAlgorithm::Md5);
        assert!(auth.verify("Circle Of Life", "GET", b""));
        assert!(!auth.verify("Circle of Life", "GET", b""));
        assert!(!auth.verify("Circle Of Life", "POST", b""));

        // Uppercase hex from a peer is still the same digest.
        let mut upper = auth.clone();
        upper.response = upper.response.to_ascii_uppercase();
        assert!(upper.verify("Circle Of Life", "GET", b""));

        let mut wrong_nc = auth.clone();
        wrong_nc.nc = Some(2);
        assert!(!wrong_nc.verify("Circle Of Life", "GET", b""));

        let mut truncated = auth;
        truncated.response.pop();
        assert!(!truncated.verify("Circle Of Life", "GET", b""));
    }

    #[test]
    fn verify_round_trips_every_algorithm_and_qop() {
        let body = b"hello";
        for alg in ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"] {
            for qop in ["", ", qop=auth", ", qop=auth-int"] {
                let ch = biloxi(qop, alg);
                let value = authorization_value(
                    &ch,
                    &bob(),
                    "INVITE",
                    "sip:bob@biloxi.com",
                    body,
                    "xyz",
                    3,
                )
                .unwrap();
                let parsed = Authorization::parse(&value).unwrap();
                assert!(parsed.verify("zanzibar", "INVITE", body), "{alg}{qop}");
                assert!(!parsed.verify("zanzibar!", "INVITE", body), "{alg}{qop}");
                assert_eq!(
                    parsed.verify("zanzibar", "INVITE", b"tampered"),
                    !qop.ends_with("auth-int")
                );
            }
        }
    }

    #[test]
    fn authorization_parse_errors() {
        let ok = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"00\"";
        assert!(Authorization::parse(ok).is_ok());
        let err =
            Authorization::parse("Digest realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"00\"")
                .unwrap_err();
        assert_eq!(err.to_string(), "authorization has no username");
        let err = Authorization::parse(&format!("{ok}, qop=auth, nc=00000001")).unwrap_err();
        assert!(matches!(
            err,
            AuthError::MissingParam {
                param: "cnonce",
                ..
            }
        ));
        let err = Authorization::parse(&format!("{ok}, qop=auth, cnonce=\"c\"")).unwrap_err();
        assert!(matches!(err, AuthError::MissingParam { param: "nc", .. }));
        for nc in ["+1", "xyz", "123456789", "\"\""] {
            let err = Authorization::parse(&format!("{ok}, qop=auth, cnonce=\"c\", nc={nc}"))
                .unwrap_err();
            assert!(
                matches!(err, AuthError::InvalidParam { param: "nc", .. })
                    || matches!(err, AuthError::Malformed(_)),
                "{nc}: {err}"
            );
        }
        let err =
            Authorization::parse(&format!("{ok}, qop=auth-conf, cnonce=\"c\", nc=1")).unwrap_err();
        assert_eq!(err, AuthError::UnsupportedQop("auth-conf".into()));
        // -sess without a cnonce cannot be checked, so it must not pass.
        let sess = Authorization::parse(&format!("{ok}, algorithm=MD5-sess")).unwrap();
        assert!(!sess.verify("pw", "REGISTER", b""));
    }

    #[test]
    fn control_characters_cannot_reach_the_header() {
        let ch = biloxi(", qop=auth", "MD5");
        let creds = Credentials::new("bob\r\nVia: evil", "pw");
        let err = Authorization::answer(&ch, &creds, "REGISTER", "sip:biloxi.com", b"", "c", 1)
            .unwrap_err();
        assert!(matches!(
            err,
            AuthError::InvalidParam {
                param: "username",
                ..
            }
        ));
        let err = Authorization::answer(&ch, &bob(), "REGISTER", "sip:b\niloxi.com", b"", "c", 1)
            .unwrap_err();
        assert!(matches!(err, AuthError::InvalidParam { param: "uri", .. }));
    }

    #[test]
    fn credentials_debug_hides_password() {
        let text = format!("{:?}", Credentials::new("alice", "s3cret"));
        assert!(text.contains("alice"));
        assert!(!text.contains("s3cret"));
        let session = DigestSession::new(Credentials::new("alice", "s3cret"));
        assert!(!format!("{session:?}").contains("s3cret"));
    }

    fn nc_of(header: &AuthorizationHeader) -> Option<u32> {
        Authorization::parse(&header.value()).unwrap().nc
    }

    #[test]
    fn session_counts_nc_per_nonce() {
        let mut session = DigestSession::new(bob());
        let ch = biloxi(", qop=auth", "MD5");
        session
            .handle_challenge(AuthTarget::Server, ch.clone())
            .unwrap();
        let first = session
            .authorize("biloxi.com", "REGISTER", "sip:biloxi.com", b"", "c1")
            .unwrap();
        assert_eq!(first.name(), "Authorization");
        assert!(first.value().contains("nc=00000001"));
        assert!(first.authorization.verify("zanzibar", "REGISTER", b""));
        session.accepted("biloxi.com");

        let second = session
            .authorize("biloxi.com", "INVITE", "sip:alice@biloxi.com", b"", "c2")
            .unwrap();
        assert!(second.value().contains("nc=00000002"));
        let third = session
            .authorize("biloxi.com", "BYE", "sip:alice@biloxi.com", b"", "c3")
            .unwrap();
        assert_eq!(nc_of(&third), Some(3));
        assert_eq!(session.nonce_count("biloxi.com"), Some(3));

        // Re-sending the same nonce keeps counting; a new nonce restarts at 1.
        session
            .handle_challenge(AuthTarget::Server, ch.clone())
            .unwrap();
        let fourth = session
            .authorize("biloxi.com", "REGISTER", "sip:biloxi.com", b"", "c4")
            .unwrap();
        assert_eq!(nc_of(&fourth), Some(4));
        session.accepted("biloxi.com");

        let mut renewed = ch;
        renewed.nonce = "fresh-nonce".into();
        renewed.stale = true;
        session
            .handle_challenge(AuthTarget::Server, renewed)
            .unwrap();
        let fifth = session
            .authorize("biloxi.com", "REGISTER", "sip:biloxi.com", b"", "c5")
            .unwrap();
        assert_eq!(nc_of(&fifth), Some(1));
        assert_eq!(fifth.authorization.nonce, "fresh-nonce");
    }

    #[test]
    fn session_stale_challenge_is_retried() {
        let mut session = DigestSession::new(bob());
        session
            .handle_challenge(AuthTarget::Proxy, biloxi(", qop=auth", "SHA-256"))
            .unwrap();
        let answer = session
            .authorize("biloxi.com", "INVITE", "sip:carol@chicago.com", b"", "c")
            .unwrap();
        assert_eq!(answer.name(), "Proxy-Authorization");

        let mut stale = biloxi(", qop=auth", "SHA-256");
        stale.nonce = "newer".into();
        stale.stale = true;
        assert!(session.should_retry(&stale));
        session
            .handle_challenge(AuthTarget::Proxy, stale.clone())
            .unwrap();
        let retry = session
            .authorize("biloxi.com", "INVITE", "sip:carol@chicago.com", b"", "c")
            .unwrap();
        assert_eq!(nc_of(&retry), Some(1));

        // "Stale" while handing back the nonce we just used would loop forever.
        assert!(!session.should_retry(&stale));
    }

    #[test]
    fn session_detects_wrong_password() {
        let mut session = DigestSession::new(Credentials::new("bob", "wrong"));
        let ch = biloxi(", qop=auth", "MD5");
        assert!(session.should_retry(&ch));
        session
            .handle_challenge(AuthTarget::Server, ch.clone())
            .unwrap();
        session
            .authorize("biloxi.com", "REGISTER", "sip:biloxi.com", b"", "c")
            .unwrap();

        // Same realm, not stale, whether or not the server minted a new nonce.
        let mut again = ch.clone();
        again.nonce = "another".into();
        assert!(!session.should_retry(&ch));
        assert!(!session.should_retry(&again));
        let err = session
            .handle_challenge(AuthTarget::Server, again)
            .unwrap_err();
        assert_eq!(err, AuthError::WrongCredentials("biloxi.com".into()));
        assert_eq!(
            err.to_string(),
            "authentication failed: wrong credentials for realm \"biloxi.com\""
        );

        // Another realm is still worth answering.
        let other = Challenge::new("atlanta.com", "n", DigestAlgorithm::Md5);
        assert!(session.should_retry(&other));
    }

    #[test]
    fn session_retries_once_after_nonce_expiry() {
        let mut session = DigestSession::new(bob());
        session
            .handle_challenge(AuthTarget::Server, biloxi(", qop=auth", "MD5"))
            .unwrap();
        session
            .authorize("biloxi.com", "REGISTER", "sip:biloxi.com", b"", "c")
            .unwrap();
        session.accepted("biloxi.com");
        session
            .authorize("biloxi.com", "REGISTER", "sip:biloxi.com", b"", "c")
            .unwrap();

        // The server forgot the nonce but did not say stale: one retry is fair...
        let mut expired = biloxi(", qop=auth", "MD5");
        expired.nonce = "second".into();
        assert!(session.should_retry(&expired));
        session
            .handle_challenge(AuthTarget::Server, expired.clone())
            .unwrap();
        session
            .authorize("biloxi.com", "REGISTER", "sip:biloxi.com", b"", "c")
            .unwrap();

        // ...but rejecting that fresh answer means the password no longer works.
        expired.nonce = "third".into();
        assert!(!session.should_retry(&expired));
    }

    #[test]
    fn session_unknown_realm_and_forget() {
        let mut session = DigestSession::new(bob());
        let err = session
            .authorize("nowhere", "REGISTER", "sip:x", b"", "c")
            .unwrap_err();
        assert_eq!(err, AuthError::UnknownRealm("nowhere".into()));
        session
            .handle_challenge(AuthTarget::Server, biloxi("", "MD5"))
            .unwrap();
        assert_eq!(session.realms().collect::<Vec<_>>(), vec!["biloxi.com"]);
        assert_eq!(
            session.challenge("biloxi.com").unwrap().nonce,
            "84a4cc6f3082121f32b42a2187831a9e"
        );
        session.forget("biloxi.com");
        assert!(session.challenge("biloxi.com").is_none());
    }

    #[test]
    fn session_nonce_count_exhaustion_is_an_error() {
        let mut session = DigestSession::new(bob());
        session
            .handle_challenge(AuthTarget::Server, biloxi(", qop=auth", "MD5"))
            .unwrap();
        session.realms.get_mut("biloxi.com").unwrap().nc = u32::MAX - 1;
        let last = session
            .authorize("biloxi.com", "REGISTER", "sip:biloxi.com", b"", "c")
            .unwrap();
        assert!(last.value().contains("nc=ffffffff"));
        let err = session
            .authorize("biloxi.com", "REGISTER", "sip:biloxi.com", b"", "c")
            .unwrap_err();
        assert_eq!(err, AuthError::NonceCountExhausted("biloxi.com".into()));
    }
}
