//! The DNS side of a lookup as the locator sees it: the questions it asks and the records
//! that answer them, with no resolver behind them, so that the driver can use any resolver
//! and tests can play a zone from memory.

use core::fmt;
use core::net::IpAddr;

/// A DNS question the driver has to ask.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    /// NAPTR records of a domain.
    Naptr(String),
    /// SRV records of a name such as `_sip._udp.example.com`.
    Srv(String),
    /// IPv4 addresses of a host.
    A(String),
    /// IPv6 addresses of a host.
    Aaaa(String),
}

impl Query {
    /// The name asked about.
    pub fn name(&self) -> &str {
        match self {
            Query::Naptr(n) | Query::Srv(n) | Query::A(n) | Query::Aaaa(n) => n,
        }
    }

    pub(super) fn accepts(&self, answer: &Answer) -> bool {
        matches!(
            (self, answer),
            (Query::Naptr(_), Answer::Naptr(_))
                | (Query::Srv(_), Answer::Srv(_))
                | (Query::A(_) | Query::Aaaa(_), Answer::Addresses(_))
        )
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::Naptr(n) => write!(f, "NAPTR {n}"),
            Query::Srv(n) => write!(f, "SRV {n}"),
            Query::A(n) => write!(f, "A {n}"),
            Query::Aaaa(n) => write!(f, "AAAA {n}"),
        }
    }
}

/// One NAPTR record (RFC 3403). The regexp field is not used by SIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaptrRecord {
    /// Lower is used first.
    pub order: u16,
    /// Lower is used first among records of the same order.
    pub preference: u16,
    /// Only records with flag `S` (followed by an SRV lookup) are used.
    pub flags: String,
    /// `SIP+D2U`, `SIP+D2T` or `SIPS+D2T` (others are ignored).
    pub services: String,
    /// The SRV name to look up next; `.` for none.
    pub replacement: String,
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative share among records of the same priority.
    pub weight: u16,
    /// Port of the server on the target.
    pub port: u16,
    /// Host to look up; `.` means the service is not available.
    pub target: String,
}

/// The records answering a [`Query`]: `Naptr` for [`Query::Naptr`], `Srv` for
/// [`Query::Srv`], `Addresses` for [`Query::A`] and [`Query::Aaaa`]. An answer
/// of the wrong kind counts as a failed lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Records answering [`Query::Naptr`].
    Naptr(Vec<NaptrRecord>),
    /// Records answering [`Query::Srv`].
    Srv(Vec<SrvRecord>),
    /// Addresses answering [`Query::A`] or [`Query::Aaaa`].
    Addresses(Vec<IpAddr>),
}

/// Why a DNS question got no records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupFailure {
    /// The name does not exist, or has no records of that type.
    #[error("no such record")]
    NotFound,
    /// The lookup itself failed (timeout, server failure, ...).
    #[error("{0}")]
    Failed(String),
}
