//! Challenges: the `WWW-Authenticate` / `Proxy-Authenticate` Digest values of a 401 or 407,
//! how to read and write them, and which one of several a client should answer.

use std::fmt;

use super::params::{escape, find, optional, parse_digest_header, required};
use super::{AuthError, DigestAlgorithm, Qop};

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
