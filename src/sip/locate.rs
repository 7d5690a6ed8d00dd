//! Locating SIP servers (RFC 3263), as sans-IO logic.
//!
//! The [`Locator`] is a state machine. It never touches the network: it tells
//! its driver which DNS question to ask next ([`Locator::next_query`]), is fed
//! the answers ([`Locator::answer`]) and finally yields the destinations to try,
//! in order ([`Locator::finish`]).
//!
//! ```text
//! let mut locator = Locator::new(request, seed)?;
//! while let Some(query) = locator.next_query() {
//!     let result = ask_dns(&query);          // the driver's job
//!     locator.answer(&query, result);
//! }
//! let destinations = locator.finish()?;
//! ```
//!
//! A driver may also pull several queries before answering any of them and run
//! them concurrently: [`Locator::next_query`] hands out every question of the
//! current step, returns `None` while answers are outstanding, and only moves to
//! the next step (which may produce new questions) once all of them are
//! answered. The lookup is over when [`Locator::is_done`] is true.
//!
//! # Rules (RFC 3263 section 4)
//!
//! * An IP literal host needs no DNS at all.
//! * An explicit port means A/AAAA lookups on the host only.
//! * An explicit transport (`;transport=`) skips NAPTR: only the SRV records
//!   of that transport are asked for.
//! * Otherwise NAPTR records of the host choose the transports (`SIP+D2U`,
//!   `SIP+D2T`, `SIPS+D2T`, ordered by order then preference). Without usable
//!   NAPTR records, SRV records are asked for every supported transport, in
//!   the client's order of preference.
//! * Without SRV records, the host itself is looked up (A and AAAA) with the
//!   default port of the default transport: UDP for `sip:` (TCP when UDP is not
//!   supported), TLS for `sips:`.
//! * An SRV target of `.` means the service is decidedly not available there.
//!   A domain that publishes SRV records is not looked up by A/AAAA instead.
//!
//! SRV records are ordered per RFC 2782: priority ascending, weighted random
//! choice within one priority. Each target's IPv4 addresses come before its
//! IPv6 addresses, each in the order DNS gave them.
//!
//! # Randomness
//!
//! The weighted SRV choice uses a small pseudo-random generator seeded with the
//! `u64` given to [`Locator::new`]. The same seed and the same answers give the
//! same order; callers should pass a fresh random seed for each lookup so that
//! load is spread as the SRV weights ask.

use core::fmt;
use core::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::sip::transport::{Destination, Transport};

/// At most this many NAPTR records are followed.
const MAX_NAPTR_RECORDS: usize = 8;
/// At most this many SRV targets (all transports together) are looked up.
const MAX_SRV_TARGETS: usize = 32;

/// What to locate: the host part of a SIP or SIPS URI and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocateRequest {
    /// Domain name, or IP literal (an IPv6 literal may be in brackets).
    pub host: String,
    /// Explicit port from the URI, if any.
    pub port: Option<u16>,
    /// Transport from the URI's `;transport=` parameter, if any.
    pub transport: Option<Transport>,
    /// True for a `sips:` URI: only TLS may be used.
    pub secure: bool,
    /// Transports this client can use, most preferred first.
    pub supported: Vec<Transport>,
}

impl LocateRequest {
    /// A request for `host` with no port or transport, `sip:` scheme, and
    /// UDP, TCP and TLS supported (in that order).
    pub fn new(host: impl Into<String>) -> Self {
        LocateRequest {
            host: host.into(),
            port: None,
            transport: None,
            secure: false,
            supported: vec![Transport::Udp, Transport::Tcp, Transport::Tls],
        }
    }
}

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

    fn accepts(&self, answer: &Answer) -> bool {
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

/// Why no SIP server could be located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocateError {
    /// The host is neither a domain name nor an IP literal.
    #[error("invalid SIP host {0:?}")]
    InvalidHost(String),
    /// A `sips:` URI with a transport other than TLS, or TLS not supported.
    #[error("sips: requires TLS")]
    SipsRequiresTls,
    /// The URI names a transport this client does not support.
    #[error("transport {0} is not supported by this client")]
    UnsupportedTransport(&'static str),
    /// The request lists no supported transport.
    #[error("no transport is enabled")]
    NoTransport,
    /// DNS answered, but no usable server was found.
    #[error("no SIP server found for {0}")]
    NoServer(String),
    /// Every DNS lookup failed.
    #[error("DNS lookup for {host} failed: {reason}")]
    DnsFailed {
        /// The host being located.
        host: String,
        /// The first failure reported by DNS.
        reason: String,
    },
    /// The DNS resolver could not be set up (used by the driver).
    #[error("cannot set up DNS resolver: {0}")]
    Resolver(String),
}

/// Upper-case name of a transport, as in error messages and Via headers.
fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
        Transport::Tls => "TLS",
    }
}

/// SRV service prefix of a transport (RFC 3263 section 4.2).
fn srv_prefix(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    }
}

fn srv_name(t: Transport, host: &str) -> String {
    format!("{}.{host}", srv_prefix(t))
}

/// Transport of a NAPTR service field we know, case-insensitively.
fn naptr_service(services: &str) -> Option<Transport> {
    let s = services.trim();
    if s.eq_ignore_ascii_case("SIP+D2U") {
        Some(Transport::Udp)
    } else if s.eq_ignore_ascii_case("SIP+D2T") {
        Some(Transport::Tcp)
    } else if s.eq_ignore_ascii_case("SIPS+D2T") {
        Some(Transport::Tls)
    } else {
        None
    }
}

/// True for the root name `.` (or an empty name), meaning "nothing here".
fn is_root(name: &str) -> bool {
    let n = name.trim();
    n.is_empty() || n == "."
}

/// An IP literal, with or without brackets around IPv6.
fn parse_ip_literal(host: &str) -> Result<Option<IpAddr>, LocateError> {
    if let Some(inner) = host.strip_prefix('[') {
        let v6 = inner
            .strip_suffix(']')
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
            .ok_or_else(|| LocateError::InvalidHost(host.to_owned()))?;
        return Ok(Some(IpAddr::V6(v6)));
    }
    Ok(host.parse::<IpAddr>().ok())
}

/// A domain name we are willing to put in a DNS question.
fn valid_domain(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 254
        && !host.starts_with('.')
        && !host.contains("..")
        && !host.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '[' | ']' | '/' | '\\' | '@' | ':' | ';' | '?' | '#' | '<' | '>' | '"'
                )
        })
}

/// SplitMix64: small, fast, good enough to spread load between SRV targets.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Orders SRV records per RFC 2782: priority ascending; within a priority,
/// repeated weighted random choice, weight-0 records placed first in the pool
/// so they keep a small chance. Records with target `.` are dropped.
fn order_srv(records: &[SrvRecord], rng: &mut Rng) -> Vec<SrvRecord> {
    let mut sorted: Vec<SrvRecord> = records
        .iter()
        .filter(|r| !is_root(&r.target))
        .cloned()
        .collect();
    sorted.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(sorted.len());
    for group in sorted.chunk_by(|a, b| a.priority == b.priority) {
        let mut pool = group.to_vec();
        pool.sort_by_key(|r| r.weight != 0);
        while !pool.is_empty() {
            let total: u64 = pool.iter().map(|r| u64::from(r.weight)).sum();
            let pick = rng.next() % (total + 1);
            let mut running = 0u64;
            let mut chosen = pool.len() - 1;
            for (i, r) in pool.iter().enumerate() {
                running += u64::from(r.weight);
                if running >= pick {
                    chosen = i;
                    break;
                }
            }
            out.push(pool.remove(chosen));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Naptr,
    Srv,
    Addresses,
    Done,
}

#[derive(Debug, Clone)]
enum SlotState {
    Pending,
    InFlight,
    Answered(Result<Answer, LookupFailure>),
}

#[derive(Debug, Clone)]
struct Slot {
    query: Query,
    state: SlotState,
}

/// A host (name or literal) to turn into socket addresses.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    ip: Option<IpAddr>,
    port: u16,
    transport: Transport,
}

/// The RFC 3263 lookup state machine. See the module documentation.
#[derive(Debug, Clone)]
pub struct Locator {
    host: String,
    supported: Vec<Transport>,
    secure: bool,
    /// Transport used when the host is looked up without SRV.
    fallback: Transport,
    phase: Phase,
    slots: Vec<Slot>,
    /// SRV names to ask, with the transport each stands for, in order.
    srv_plan: Vec<(String, Transport)>,
    targets: Vec<Target>,
    destinations: Vec<Destination>,
    rng: Rng,
}

impl Locator {
    /// Starts a lookup. `seed` drives the weighted random order of SRV
    /// records (see the module documentation).
    ///
    /// Fails at once when the request itself is unusable: invalid host, no
    /// supported transport, a `sips:` URI with a non-TLS transport (a `;transport=tcp`
    /// on `sips:` means TLS over TCP, RFC 5630 section 3.2, and is accepted),
    /// or an explicit transport the client does not support.
    pub fn new(request: LocateRequest, seed: u64) -> Result<Self, LocateError> {
        let LocateRequest {
            host,
            port,
            transport,
            secure,
            supported,
        } = request;
        let mut supported_unique: Vec<Transport> = Vec::with_capacity(supported.len());
        for t in supported {
            if !supported_unique.contains(&t) {
                supported_unique.push(t);
            }
        }
        let supported = supported_unique;
        if supported.is_empty() {
            return Err(LocateError::NoTransport);
        }

        let explicit = match (secure, transport) {
            (true, Some(Transport::Udp)) => return Err(LocateError::SipsRequiresTls),
            (true, Some(_)) => Some(Transport::Tls),
            (_, t) => t,
        };
        if secure && !supported.contains(&Transport::Tls) {
            return Err(LocateError::SipsRequiresTls);
        }
        if let Some(t) = explicit
            && !supported.contains(&t)
        {
            return Err(LocateError::UnsupportedTransport(transport_name(t)));
        }

        let fallback = match explicit {
            Some(t) => t,
            None if secure => Transport::Tls,
            None => [Transport::Udp, Transport::Tcp, Transport::Tls]
                .into_iter()
                .find(|t| supported.contains(t))
                .unwrap_or(Transport::Tls),
        };

        let ip = parse_ip_literal(&host)?;
        let host = match ip {
            Some(ip) => ip.to_string(),
            None if valid_domain(&host) => host,
            None => return Err(LocateError::InvalidHost(host)),
        };

        let mut locator = Locator {
            host,
            supported,
            secure,
            fallback,
            phase: Phase::Done,
            slots: Vec::new(),
            srv_plan: Vec::new(),
            targets: Vec::new(),
            destinations: Vec::new(),
            rng: Rng(seed),
        };

        if let Some(ip) = ip {
            // RFC 3263 4.1/4.2: a numeric target is used as is.
            let port = port.unwrap_or(fallback.default_port());
            locator.destinations.push(Destination {
                address: SocketAddr::new(ip, port),
                transport: fallback,
            });
        } else if let Some(port) = port {
            // RFC 3263 4.2: explicit port, A/AAAA only.
            let target = Target {
                host: locator.host.clone(),
                ip: None,
                port,
                transport: fallback,
            };
            locator.enter_addresses(vec![target]);
        } else if let Some(t) = explicit {
            // RFC 3263 4.1: transport given, no NAPTR; SRV for that transport.
            let plan = vec![(srv_name(t, &locator.host), t)];
            locator.enter_srv(plan);
        } else {
            locator.phase = Phase::Naptr;
            locator.want(Query::Naptr(locator.host.clone()));
        }
        locator.advance();
        Ok(locator)
    }

    /// The next DNS question to ask, or `None` if there is none right now
    /// (either the lookup is done or answers are still outstanding). Each
    /// question is handed out once.
    pub fn next_query(&mut self) -> Option<Query> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| matches!(s.state, SlotState::Pending))?;
        slot.state = SlotState::InFlight;
        Some(slot.query.clone())
    }

    /// Feeds the result of a question. An answer of the wrong kind counts as
    /// a failure. Returns `false` (and changes nothing) when the question was
    /// not asked by this locator or is already answered.
    pub fn answer(&mut self, query: &Query, result: Result<Answer, LookupFailure>) -> bool {
        let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| &s.query == query && !matches!(s.state, SlotState::Answered(_)))
        else {
            return false;
        };
        let result = match result {
            Ok(answer) if !query.accepts(&answer) => Err(LookupFailure::Failed(format!(
                "unexpected kind of answer to {query}"
            ))),
            other => other,
        };
        slot.state = SlotState::Answered(result);
        self.advance();
        true
    }

    /// True when every question has been answered and the destinations are
    /// known.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The destinations to try, in order, without duplicates.
    ///
    /// May be called before [`Locator::is_done`]: unanswered questions then
    /// count as failed lookups and the remaining steps run without DNS
    /// (useful for an overall timeout).
    pub fn finish(mut self) -> Result<Vec<Destination>, LocateError> {
        while self.phase != Phase::Done {
            for slot in &mut self.slots {
                if !matches!(slot.state, SlotState::Answered(_)) {
                    slot.state =
                        SlotState::Answered(Err(LookupFailure::Failed("not answered".to_owned())));
                }
            }
            self.advance();
        }
        if !self.destinations.is_empty() {
            return Ok(self.destinations);
        }
        let mut first_failure = None;
        let mut all_failed = !self.slots.is_empty();
        for slot in &self.slots {
            match &slot.state {
                SlotState::Answered(Err(LookupFailure::Failed(reason))) => {
                    first_failure.get_or_insert_with(|| reason.clone());
                }
                _ => all_failed = false,
            }
        }
        match first_failure {
            Some(reason) if all_failed => Err(LocateError::DnsFailed {
                host: self.host,
                reason,
            }),
            _ => Err(LocateError::NoServer(self.host)),
        }
    }

    /// Adds a question unless the same one was already asked.
    fn want(&mut self, query: Query) {
        if !self.slots.iter().any(|s| s.query == query) {
            self.slots.push(Slot {
                query,
                state: SlotState::Pending,
            });
        }
    }

    fn result(&self, query: &Query) -> Option<&Result<Answer, LookupFailure>> {
        self.slots
            .iter()
            .find(|s| &s.query == query)
            .and_then(|s| match &s.state {
                SlotState::Answered(r) => Some(r),
                _ => None,
            })
    }

    fn all_answered(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Answered(_)))
    }

    fn enter_srv(&mut self, plan: Vec<(String, Transport)>) {
        self.phase = Phase::Srv;
        for (name, _) in &plan {
            self.want(Query::Srv(name.clone()));
        }
        self.srv_plan = plan;
    }

    fn enter_addresses(&mut self, targets: Vec<Target>) {
        self.phase = Phase::Addresses;
        for t in &targets {
            if t.ip.is_none() {
                self.want(Query::A(t.host.clone()));
                self.want(Query::Aaaa(t.host.clone()));
            }
        }
        self.targets = targets;
    }

    /// Moves on through the steps whose questions are all answered.
    fn advance(&mut self) {
        while self.phase != Phase::Done && self.all_answered() {
            match self.phase {
                Phase::Naptr => self.after_naptr(),
                Phase::Srv => self.after_srv(),
                Phase::Addresses => self.after_addresses(),
                Phase::Done => {}
            }
        }
    }

    /// RFC 3263 4.1: choose transports from NAPTR, else SRV for each
    /// supported transport.
    fn after_naptr(&mut self) {
        let query = Query::Naptr(self.host.clone());
        let mut usable: Vec<(u16, u16, String, Transport)> = Vec::new();
        if let Some(Ok(Answer::Naptr(records))) = self.result(&query) {
            for r in records {
                let Some(t) = naptr_service(&r.services) else {
                    continue;
                };
                if !r.flags.trim().eq_ignore_ascii_case("s")
                    || is_root(&r.replacement)
                    || !self.supported.contains(&t)
                    || (self.secure && t != Transport::Tls)
                {
                    continue;
                }
                usable.push((r.order, r.preference, r.replacement.trim().to_owned(), t));
            }
        }
        usable.sort_by_key(|(order, pref, _, _)| (*order, *pref));
        let mut plan: Vec<(String, Transport)> = Vec::new();
        for (_, _, name, t) in usable {
            if plan.len() >= MAX_NAPTR_RECORDS {
                break;
            }
            if !plan.iter().any(|(n, pt)| *n == name && *pt == t) {
                plan.push((name, t));
            }
        }
        if let Some((_, t)) = plan.first() {
            self.fallback = *t;
        } else if self.secure {
            plan.push((srv_name(Transport::Tls, &self.host), Transport::Tls));
        } else {
            plan = self
                .supported
                .iter()
                .map(|t| (srv_name(*t, &self.host), *t))
                .collect();
        }
        self.enter_srv(plan);
    }

    /// RFC 3263 4.2 / RFC 2782: order SRV targets; without any SRV record,
    /// fall back to the host itself.
    fn after_srv(&mut self) {
        let mut targets = Vec::new();
        let mut any_srv = false;
        let plan = core::mem::take(&mut self.srv_plan);
        for (name, transport) in &plan {
            let Some(Ok(Answer::Srv(records))) = self.result(&Query::Srv(name.clone())) else {
                continue;
            };
            if records.is_empty() {
                continue;
            }
            any_srv = true;
            let records = records.clone();
            for r in order_srv(&records, &mut self.rng) {
                if targets.len() >= MAX_SRV_TARGETS {
                    break;
                }
                let host = r.target.trim().to_owned();
                let ip = parse_ip_literal(&host).ok().flatten();
                if ip.is_none() && !valid_domain(&host) {
                    continue;
                }
                targets.push(Target {
                    host,
                    ip,
                    port: r.port,
                    transport: *transport,
                });
            }
        }
        self.srv_plan = plan;
        if targets.is_empty() && !any_srv {
            targets.push(Target {
                host: self.host.clone(),
                ip: None,
                port: self.fallback.default_port(),
                transport: self.fallback,
            });
        }
        if targets.is_empty() {
            self.phase = Phase::Done;
        } else {
            self.enter_addresses(targets);
        }
    }

    /// RFC 3263 4.3: every address of every target, in order.
    fn after_addresses(&mut self) {
        let targets = core::mem::take(&mut self.targets);
        let mut out: Vec<Destination> = Vec::new();
        for t in &targets {
            let mut ips: Vec<IpAddr> = Vec::new();
            match t.ip {
                Some(ip) => ips.push(ip),
                None => {
                    for q in [Query::A(t.host.clone()), Query::Aaaa(t.host.clone())] {
                        if let Some(Ok(Answer::Addresses(a))) = self.result(&q) {
                            ips.extend(a.iter().copied());
                        }
                    }
                }
            }
            for ip in ips {
                let d = Destination {
                    address: SocketAddr::new(ip, t.port),
                    transport: t.transport,
                };
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        self.targets = targets;
        self.destinations = out;
        self.phase = Phase::Done;
    }
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
    use std::collections::HashMap;

    use Transport::{Tcp, Tls, Udp};

    /// In-memory DNS: anything missing answers "not found".
    #[derive(Default)]
    struct Zone(HashMap<Query, Result<Answer, LookupFailure>>);

    impl Zone {
        fn naptr(mut self, host: &str, records: Vec<NaptrRecord>) -> Self {
            self.0
                .insert(Query::Naptr(host.into()), Ok(Answer::Naptr(records)));
            self
        }
        fn srv(mut self, name: &str, records: Vec<SrvRecord>) -> Self {
            self.0
                .insert(Query::Srv(name.into()), Ok(Answer::Srv(records)));
            self
        }
        fn a(mut self, host: &str, addrs: &[&str]) -> Self {
            let ips = addrs.iter().map(|a| a.parse().unwrap()).collect();
            self.0
                .insert(Query::A(host.into()), Ok(Answer::Addresses(ips)));
            self
        }
        fn aaaa(mut self, host: &str, addrs: &[&str]) -> Self {
            let ips = addrs.iter().map(|a| a.parse().unwrap()).collect();
            self.0
                .insert(Query::Aaaa(host.into()), Ok(Answer::Addresses(ips)));
            self
        }
        fn fail(mut self, query: Query, reason: &str) -> Self {
            self.0
                .insert(query, Err(LookupFailure::Failed(reason.into())));
            self
        }
    }

    fn naptr(order: u16, preference: u16, services: &str, replacement: &str) -> NaptrRecord {
        NaptrRecord {
            order,
            preference,
            flags: "s".into(),
            services: services.into(),
            replacement: replacement.into(),
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn dest(address: &str, transport: Transport) -> Destination {
        Destination {
            address: address.parse().unwrap(),
            transport,
        }
    }

    fn request(host: &str) -> LocateRequest {
        LocateRequest::new(host)
    }

    type Outcome = (Result<Vec<Destination>, LocateError>, Vec<Query>);

    /// Drives a locator against the zone, one question at a time.
    fn run(req: LocateRequest, seed: u64, zone: &Zone) -> Outcome {
        let mut locator = match Locator::new(req, seed) {
            Ok(l) => l,
            Err(e) => return (Err(e), Vec::new()),
        };
        let mut asked = Vec::new();
        while let Some(q) = locator.next_query() {
            assert!(!asked.contains(&q), "{q} asked twice");
            asked.push(q.clone());
            let r = zone
                .0
                .get(&q)
                .cloned()
                .unwrap_or(Err(LookupFailure::NotFound));
            assert!(locator.answer(&q, r));
        }
        assert!(locator.is_done());
        (locator.finish(), asked)
    }

    fn srv_q(name: &str) -> Query {
        Query::Srv(name.into())
    }

    // ---- IP literals -------------------------------------------------------

    #[test]
    fn ipv4_literal_needs_no_dns() {
        let locator = Locator::new(request("192.0.2.10"), 1).unwrap();
        assert!(locator.is_done());
        let (got, asked) = run(request("192.0.2.10"), 1, &Zone::default());
        assert!(asked.is_empty());
        assert_eq!(got.unwrap(), vec![dest("192.0.2.10:5060", Udp)]);
    }

    #[test]
    fn ipv6_literal_in_brackets_with_port() {
        let mut req = request("[2001:db8::5]");
        req.port = Some(5070);
        let (got, asked) = run(req, 1, &Zone::default());
        assert!(asked.is_empty());
        assert_eq!(got.unwrap(), vec![dest("[2001:db8::5]:5070", Udp)]);
    }

    #[test]
    fn ipv6_literal_without_brackets() {
        let (got, asked) = run(request("2001:db8::6"), 1, &Zone::default());
        assert!(asked.is_empty());
        assert_eq!(got.unwrap(), vec![dest("[2001:db8::6]:5060", Udp)]);
    }

    #[test]
    fn ip_literal_sips_uses_tls_5061() {
        let mut req = request("[::1]");
        req.secure = true;
        let (got, _) = run(req, 1, &Zone::default());
        assert_eq!(got.unwrap(), vec![dest("[::1]:5061", Tls)]);
    }

    #[test]
    fn ip_literal_with_transport_param_uses_its_default_port() {
        let mut req = request("192.0.2.1");
        req.transport = Some(Tcp);
        assert_eq!(
            run(req, 1, &Zone::default()).0.unwrap(),
            vec![dest("192.0.2.1:5060", Tcp)]
        );
        let mut req = request("192.0.2.1");
        req.transport = Some(Tls);
        assert_eq!(
            run(req, 1, &Zone::default()).0.unwrap(),
            vec![dest("192.0.2.1:5061", Tls)]
        );
    }

    #[test]
    fn ip_literal_prefers_tcp_when_udp_unsupported() {
        let mut req = request("192.0.2.1");
        req.supported = vec![Tls, Tcp];
        assert_eq!(
            run(req, 1, &Zone::default()).0.unwrap(),
            vec![dest("192.0.2.1:5060", Tcp)]
        );
    }

    // ---- request validation ------------------------------------------------

    #[test]
    fn sips_with_udp_transport_is_an_error() {
        let mut req = request("example.com");
        req.secure = true;
        req.transport = Some(Udp);
        let err = Locator::new(req, 1).unwrap_err();
        assert_eq!(err, LocateError::SipsRequiresTls);
        assert_eq!(err.to_string(), "sips: requires TLS");
    }

    #[test]
    fn sips_with_tcp_transport_means_tls() {
        // RFC 5630 3.2: sips:...;transport=tcp is TLS over TCP.
        let mut req = request("example.com");
        req.secure = true;
        req.transport = Some(Tcp);
        let zone = Zone::default()
            .srv(
                "_sips._tcp.example.com",
                vec![srv(0, 0, 5061, "s1.example.com")],
            )
            .a("s1.example.com", &["192.0.2.1"]);
        let (got, asked) = run(req, 1, &zone);
        assert_eq!(asked[0], srv_q("_sips._tcp.example.com"));
        assert_eq!(got.unwrap(), vec![dest("192.0.2.1:5061", Tls)]);
    }

    #[test]
    fn sips_without_tls_support_is_an_error() {
        let mut req = request("example.com");
        req.secure = true;
        req.supported = vec![Udp, Tcp];
        assert_eq!(
            Locator::new(req, 1).unwrap_err(),
            LocateError::SipsRequiresTls
        );
    }

    #[test]
    fn unsupported_transport_param_is_an_error() {
        let mut req = request("example.com");
        req.transport = Some(Tls);
        req.supported = vec![Udp];
        let err = Locator::new(req, 1).unwrap_err();
        assert_eq!(err, LocateError::UnsupportedTransport("TLS"));
        assert_eq!(
            err.to_string(),
            "transport TLS is not supported by this client"
        );
    }

    #[test]
    fn no_supported_transport_is_an_error() {
        let mut req = request("example.com");
        req.supported.clear();
        assert_eq!(Locator::new(req, 1).unwrap_err(), LocateError::NoTransport);
    }

    #[test]
    fn invalid_hosts_are_rejected() {
        for host in [
            "",
            "[example.com]",
            "[2001:db8::1",
            "[192.0.2.1]",
            "exa mple.com",
            "user@example.com",
            "example.com:5060",
            ".example.com",
            "a..b",
        ] {
            let err = Locator::new(request(host), 1).unwrap_err();
            assert_eq!(err, LocateError::InvalidHost(host.into()), "{host:?}");
        }
        assert_eq!(
            LocateError::InvalidHost("a b".into()).to_string(),
            "invalid SIP host \"a b\""
        );
    }

    // ---- explicit port and transport ---------------------------------------

    #[test]
    fn explicit_port_queries_only_a_and_aaaa() {
        let mut req = request("example.com");
        req.port = Some(5080);
        let zone = Zone::default()
            .naptr(
                "example.com",
                vec![naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com")],
            )
            .srv(
                "_sip._udp.example.com",
                vec![srv(0, 0, 5060, "other.example.com")],
            )
            .a("example.com", &["192.0.2.1"])
            .aaaa("example.com", &["2001:db8::1"]);
        let (got, asked) = run(req, 1, &zone);
        assert_eq!(
            asked,
            vec![
                Query::A("example.com".into()),
                Query::Aaaa("example.com".into())
            ]
        );
        assert_eq!(
            got.unwrap(),
            vec![dest("192.0.2.1:5080", Udp), dest("[2001:db8::1]:5080", Udp)]
        );
    }

    #[test]
    fn explicit_port_with_sips_uses_tls() {
        let mut req = request("example.com");
        req.port = Some(5071);
        req.secure = true;
        let zone = Zone::default().a("example.com", &["192.0.2.1"]);
        assert_eq!(
            run(req, 1, &zone).0.unwrap(),
            vec![dest("192.0.2.1:5071", Tls)]
        );
    }

    #[test]
    fn explicit_port_and_transport() {
        let mut req = request("example.com");
        req.port = Some(5090);
        req.transport = Some(Tcp);
        let zone = Zone::default().a("example.com", &["192.0.2.1"]);
        assert_eq!(
            run(req, 1, &zone).0.unwrap(),
            vec![dest("192.0.2.1:5090", Tcp)]
        );
    }

    #[test]
    fn explicit_transport_skips_naptr_and_other_srv() {
        let mut req = request("example.com");
        req.transport = Some(Tcp);
        let zone = Zone::default()
            .naptr(
                "example.com",
                vec![naptr(10, 10, "SIP+D2U", "_sip._udp.example.com")],
            )
            .srv(
                "_sip._udp.example.com",
                vec![srv(0, 0, 5060, "udp.example.com")],
            )
            .srv(
                "_sip._tcp.example.com",
                vec![srv(0, 0, 5065, "tcp.example.com")],
            )
            .a("tcp.example.com", &["192.0.2.7"]);
        let (got, asked) = run(req, 1, &zone);
        assert_eq!(
            asked,
            vec![
                srv_q("_sip._tcp.example.com"),
                Query::A("tcp.example.com".into()),
                Query::Aaaa("tcp.example.com".into()),
            ]
        );
        assert_eq!(got.unwrap(), vec![dest("192.0.2.7:5065", Tcp)]);
    }

    #[test]
    fn explicit_transport_without_srv_uses_host_and_default_port() {
        let mut req = request("example.com");
        req.transport = Some(Tls);
        let zone = Zone::default().a("example.com", &["192.0.2.1"]);
        let (got, asked) = run(req, 1, &zone);
        assert_eq!(asked[0], srv_q("_sips._tcp.example.com"));
        assert_eq!(got.unwrap(), vec![dest("192.0.2.1:5061", Tls)]);
    }

    // ---- NAPTR ---------------------------------------------------------------

    #[test]
    fn rfc3263_example_client_with_tcp_and_udp() {
        // RFC 3263 4.1: the server offers TLS, TCP and UDP in that order; a
        // client supporting TCP and UDP uses TCP via _sip._tcp.example.com.
        let mut req = request("example.com");
        req.supported = vec![Udp, Tcp];
        let zone = Zone::default()
            .naptr(
                "example.com",
                vec![
                    naptr(50, 50, "SIPS+D2T", "_sips._tcp.example.com."),
                    naptr(90, 50, "SIP+D2T", "_sip._tcp.example.com"),
                    naptr(100, 50, "SIP+D2U", "_sip._udp.example.com."),
                ],
            )
            .srv(
                "_sip._tcp.example.com",
                vec![srv(0, 1, 5060, "server1.example.com")],
            )
            .srv(
                "_sip._udp.example.com.",
                vec![srv(0, 1, 5060, "server2.example.com")],
            )
            .a("server1.example.com", &["192.0.2.11"])
            .a("server2.example.com", &["192.0.2.12"]);
        let (got, asked) = run(req, 1, &zone);
        assert_eq!(
            asked[..3],
            [
                Query::Naptr("example.com".into()),
                srv_q("_sip._tcp.example.com"),
                srv_q("_sip._udp.example.com."),
            ]
        );
        assert_eq!(
            got.unwrap(),
            vec![dest("192.0.2.11:5060", Tcp), dest("192.0.2.12:5060", Udp)]
        );
    }

    #[test]
    fn rfc3263_example_sips_uri_uses_sips_record() {
        let mut req = request("example.com");
        req.secure = true;
        let zone = Zone::default()
            .naptr(
                "example.com",
                vec![
                    naptr(50, 50, "SIPS+D2T", "_sips._tcp.example.com."),
                    naptr(90, 50, "SIP+D2T", "_sip._tcp.example.com"),
                    naptr(100, 50, "SIP+D2U", "_sip._udp.example.com."),
                ],
            )
            .srv(
                "_sips._tcp.example.com.",
                vec![srv(0, 1, 5061, "server1.example.com")],
            )
            .a("server1.example.com", &["192.0.2.11"]);
        let (got, asked) = run(req, 1, &zone);
        assert!(!asked.contains(&srv_q("_sip._tcp.example.com")));
        assert!(!asked.contains(&srv_q("_sip._udp.example.com.")));
        assert_eq!(got.unwrap(), vec![dest("192.0.2.11:5061", Tls)]);
    }

    #[test]
    fn naptr_sorted_by_order_then_preference() {
        let zone = Zone::default()
            .naptr(
                "example.com",
                vec![
                    naptr(100, 10, "SIP+D2U", "_sip._udp.example.com"),
                    naptr(50, 20, "SIP+D2T", "_sip._tcp.example.com"),
                    naptr(50, 10, "SIPS+D2T", "_sips._tcp.example.com"),
                ],
            )
            .srv(
                "_sip._udp.example.com",
                vec![srv(0, 0, 5060, "u.example.com")],
            )
            .srv(
                "_sip._tcp.example.com",
                vec![srv(0, 0, 5060, "t.example.com")],
            )
            .srv(
                "_sips._tcp.example.com",
                vec![srv(0, 0, 5061, "s.example.com")],
            )
            .a("u.example.com", &["192.0.2.1"])
            .a("t.example.com", &["192.0.2.2"])
            .a("s.example.com", &["192.0.2.3"]);
        let (got, asked) = run(request("example.com"), 1, &zone);
        assert_eq!(
            asked[1..4],
            [
                srv_q("_sips._tcp.example.com"),
                srv_q("_sip._tcp.example.com"),
                srv_q("_sip._udp.example.com"),
            ]
        );
        assert_eq!(
            got.unwrap(),
            vec![
                dest("192.0.2.3:5061", Tls),
                dest("192.0.2.2:5060", Tcp),
                dest("192.0.2.1:5060", Udp),
            ]
        );
    }

    #[test]
    fn naptr_skips_unsupported_unknown_and_non_terminal_records() {
        let mut odd_flags = naptr(1, 1, "SIP+D2U", "_sip._udp.bad.example.com");
        odd_flags.flags = "a".into();
        let mut no_flags = naptr(1, 2, "SIP+D2U", "_sip._udp.bad2.example.com");
        no_flags.flags = String::new();
        let mut req = request("example.com");
        req.supported = vec![Udp, Tcp];
        let zone = Zone::default()
            .naptr(
                "example.com",
                vec![
                    odd_flags,
                    no_flags,
                    naptr(1, 3, "SIP+D2S", "_sip._sctp.example.com"),
                    naptr(1, 4, "E2U+sip", "!^.*$!sip:info@example.com!"),
                    naptr(1, 5, "SIPS+D2T", "_sips._tcp.example.com"),
                    naptr(1, 6, "SIP+D2T", "."),
                    naptr(9, 9, "sip+d2u", "_sip._udp.example.com"),
                ],
            )
            .srv(
                "_sip._udp.example.com",
                vec![srv(0, 0, 5060, "u.example.com")],
            )
            .a("u.example.com", &["192.0.2.1"]);
        let (got, asked) = run(req, 1, &zone);
        let srvs: Vec<&Query> = asked
            .iter()
            .filter(|q| matches!(q, Query::Srv(_)))
            .collect();
        assert_eq!(srvs, vec![&srv_q("_sip._udp.example.com")]);
        assert_eq!(got.unwrap(), vec![dest("192.0.2.1:5060", Udp)]);
    }

    #[test]
    fn naptr_without_usable_record_falls_back_to_srv() {
        let zone = Zone::default()
            .naptr(
                "example.com",
                vec![naptr(1, 1, "SIP+D2S", "_sip._sctp.example.com")],
            )
            .srv(
                "_sip._tcp.example.com",
                vec![srv(0, 0, 5060, "t.example.com")],
            )
            .a("t.example.com", &["192.0.2.2"]);
        let (got, asked) = run(request("example.com"), 1, &zone);
        assert_eq!(
            asked[1..4],
            [
                srv_q("_sip._udp.example.com"),
                srv_q("_sip._tcp.example.com"),
                srv_q("_sips._tcp.example.com"),
            ]
        );
        assert_eq!(got.unwrap(), vec![dest("192.0.2.2:5060", Tcp)]);
    }

    #[test]
    fn naptr_failure_falls_back_to_srv() {
        let zone = Zone::default()
            .fail(Query::Naptr("example.com".into()), "timed out")
            .srv(
                "_sip._udp.example.com",
                vec![srv(0, 0, 5060, "u.example.com")],
            )
            .a("u.example.com", &["192.0.2.1"]);
        let (got, _) = run(request("example.com"), 1, &zone);
        assert_eq!(got.unwrap(), vec![dest("192.0.2.1:5060", Udp)]);
    }

    #[test]
    fn naptr_without_srv_falls_back_to_host_with_naptr_transport() {
        let zone = Zone::default()
            .naptr(
                "example.com",
                vec![naptr(1, 1, "SIP+D2T", "_sip._tcp.example.com")],
            )
            .a("example.com", &["192.0.2.9"]);
        let (got, asked) = run(request("example.com"), 1, &zone);
        assert_eq!(
            asked,
            vec![
                Query::Naptr("example.com".into()),
                srv_q("_sip._tcp.example.com"),
                Query::A("example.com".into()),
                Query::Aaaa("example.com".into()),
            ]
        );
        assert_eq!(got.unwrap(), vec![dest("192.0.2.9:5060", Tcp)]);
    }

    // ---- SRV without NAPTR -----------------------------------------------------

    #[test]
    fn without_naptr_srv_queried_in_supported_order() {
        let mut req = request("example.com");
        req.supported = vec![Tls, Tcp, Udp];
        let zone = Zone::default()
            .srv(
                "_sip._udp.example.com",
                vec![srv(0, 0, 5060, "u.example.com")],
            )
            .srv(
                "_sip._tcp.example.com",
                vec![srv(0, 0, 5060, "t.example.com")],
            )
            .srv(
                "_sips._tcp.example.com",
                vec![srv(0, 0, 5061, "s.example.com")],
            )
            .a("u.example.com", &["192.0.2.1"])
            .a("t.example.com", &["192.0.2.2"])
            .a("s.example.com", &["192.0.2.3"]);
        let (got, asked) = run(req, 1, &zone);
        assert_eq!(
            asked[..4],
            [
                Query::Naptr("example.com".into()),
                srv_q("_sips._tcp.example.com"),
                srv_q("_sip._tcp.example.com"),
                srv_q("_sip._udp.example.com"),
            ]
        );
        assert_eq!(
            got.unwrap(),
            vec![
                dest("192.0.2.3:5061", Tls),
                dest("192.0.2.2:5060", Tcp),
                dest("192.0.2.1:5060", Udp),
            ]
        );
    }

    #[test]
    fn without_naptr_sips_queries_only_sips_srv() {
        let mut req = request("example.com");
        req.secure = true;
        let zone = Zone::default()
            .srv(
                "_sip._udp.example.com",
                vec![srv(0, 0, 5060, "u.example.com")],
            )
            .srv(
                "_sips._tcp.example.com",
                vec![srv(0, 0, 5061, "s.example.com")],
            )
            .a("s.example.com", &["192.0.2.3"]);
        let (got, asked) = run(req, 1, &zone);
        assert_eq!(
            asked[..2],
            [
                Query::Naptr("example.com".into()),
                srv_q("_sips._tcp.example.com")
            ]
        );
        assert!(!asked.contains(&srv_q("_sip._udp.example.com")));
        assert_eq!(got.unwrap(), vec![dest("192.0.2.3:5061", Tls)]);
    }

    #[test]
    fn without_srv_host_is_used_with_udp_5060() {
        let zone = Zone::default()
            .a("example.com", &["192.0.2.1"])
            .aaaa("example.com", &["2001:db8::1"]);
        let (got, asked) = run(request("example.com"), 1, &zone);
        assert_eq!(
            asked,
            vec![
                Query::Naptr("example.com".into()),
                srv_q("_sip._udp.example.com"),
                srv_q("_sip._tcp.example.com"),
                srv_q("_sips._tcp.example.com"),
                Query::A("example.com".into()),
                Query::Aaaa("example.com".into()),
            ]
        );
        assert_eq!(
            got.unwrap(),
            vec![dest("192.0.2.1:5060", Udp), dest("[2001:db8::1]:5060", Udp)]
        );
    }

    #[test]
    fn without_srv_only_tcp_supported_uses_tcp() {
        let mut req = request("example.com");
        req.supported = vec![Tcp];
        let zone = Zone::default().a("example.com", &["192.0.2.1"]);
        let (got, asked) = run(req, 1, &zone);
        assert!(!asked.contains(&srv_q("_sip._udp.example.com")));
        assert_eq!(got.unwrap(), vec![dest("192.0.2.1:5060", Tcp)]);
    }

    #[test]
    fn without_srv_sips_uses_tls_5061() {
        let mut req = request("example.com");
        req.secure = true;
        let zone = Zone::default().aaaa("example.com", &["2001:db8::1"]);
        let (got, _) = run(req, 1, &zone);
        assert_eq!(got.unwrap(), vec![dest("[2001:db8::1]:5061", Tls)]);
    }

    #[test]
    fn srv_dot_target_means_service_not_available() {
        let zone = Zone::default()
            .srv("_sip._udp.example.com", vec![srv(0, 0, 0, ".")])
            .a("example.com", &["192.0.2.1"]);
        let (got, asked) = run(request("example.com"), 1, &zone);
        assert!(!asked.contains(&Query::A("example.com".into())));
        let err = got.unwrap_err();
        assert_eq!(err, LocateError::NoServer("example.com".into()));
        assert_eq!(err.to_string(), "no SIP server found for example.com");
    }

    #[test]
    fn srv_dot_for_one_transport_leaves_the_others() {
        let zone = Zone::default()
            .srv("_sip._udp.example.com", vec![srv(0, 0, 0, ".")])
            .srv(
                "_sip._tcp.example.com",
                vec![srv(0, 0, 5060, "t.example.com")],
            )
            .a("t.example.com", &["192.0.2.2"]);
        let (got, _) = run(request("example.com"), 1, &zone);
        assert_eq!(got.unwrap(), vec![dest("192.0.2.2:5060", Tcp)]);
    }

    #[test]
    fn srv_target_that_is_an_ip_literal_is_used_directly() {
        let zone = Zone::default().srv(
            "_sip._udp.example.com",
            vec![srv(0, 0, 5062, "192.0.2.44"), srv(1, 0, 5062, "bad name")],
        );
        let (got, asked) = run(request("example.com"), 1, &zone);
        assert!(
            !asked
                .iter()
                .any(|q| matches!(q, Query::A(_) | Query::Aaaa(_)))
        );
        assert_eq!(got.unwrap(), vec![dest("192.0.2.44:5062", Udp)]);
    }

    // ---- addresses and failures --------------------------------------------------

    #[test]
    fn a_failure_does_not_abort_aaaa() {
        let mut req = request("example.com");
        req.port = Some(5060);
        let zone = Zone::default()
            .fail(Query::A("example.com".into()), "server failure")
            .aaaa("example.com", &["2001:db8::7"]);
        let (got, _) = run(req, 1, &zone);
        assert_eq!(got.unwrap(), vec![dest("[2001:db8::7]:5060", Udp)]);
    }

    #[test]
    fn aaaa_failure_keeps_a_results() {
        let mut req = request("example.com");
        req.port = Some(5060);
        let zone = Zone::default()
            .a("example.com", &["192.0.2.7"])
            .fail(Query::Aaaa("example.com".into()), "timed out");
        let (got, _) = run(req, 1, &zone);
        assert_eq!(got.unwrap(), vec![dest("192.0.2.7:5060", Udp)]);
    }

    #[test]
    fn target_without_addresses_is_skipped() {
        let zone = Zone::default()
            .srv(
                "_sip._udp.example.com",
                vec![
                    srv(0, 0, 5060, "gone.example.com"),
                    srv(1, 0, 5060, "b.example.com"),
                ],
            )
            .fail(Query::A("gone.example.com".into()), "timed out")
            .a("b.example.com", &["192.0.2.2"]);
        let (got, _) = run(request("example.com"), 1, &zone);
        assert_eq!(got.unwrap(), vec![dest("192.0.2.2:5060", Udp)]);
    }

    #[test]
    fn nothing_found_is_no_server() {
        let (got, _) = run(request("example.com"), 1, &Zone::default());
        assert_eq!(
            got.unwrap_err(),
            LocateError::NoServer("example.com".into())
        );
    }

    #[test]
    fn all_lookups_failing_is_a_dns_failure() {
        let mut req = request("example.com");
        req.port = Some(5060);
        let zone = Zone::default()
            .fail(Query::A("example.com".into()), "timed out")
            .fail(Query::Aaaa("example.com".into()), "timed out");
        let err = run(req, 1, &zone).0.unwrap_err();
        assert_eq!(
            err,
            LocateError::DnsFailed {
                host: "example.com".into(),
                reason: "timed out".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "DNS lookup for example.com failed: timed out"
        );
    }

    #[test]
    fn failover_order_across_transports_targets_and_addresses() {
        let zone = Zone::default()
            .naptr(
                "example.com",
                vec![
                    naptr(20, 10, "SIP+D2U", "_sip._udp.example.com"),
                    naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com"),
                ],
            )
            .srv(
                "_sips._tcp.example.com",
                vec![
                    srv(1, 0, 5061, "s2.example.com"),
                    srv(0, 0, 5061, "s1.example.com"),
                ],
            )
            .srv(
                "_sip._udp.example.com",
                vec![srv(0, 0, 5060, "s1.example.com")],
            )
            .a("s1.example.com", &["192.0.2.1", "192.0.2.2"])
            .aaaa("s1.example.com", &["2001:db8::1"])
            .a("s2.example.com", &["192.0.2.3"]);
        let (got, asked) = run(request("example.com"), 1, &zone);
        assert_eq!(
            asked,
            vec![
                Query::Naptr("example.com".into()),
                srv_q("_sips._tcp.example.com"),
                srv_q("_sip._udp.example.com"),
                Query::A("s1.example.com".into()),
                Query::Aaaa("s1.example.com".into()),
                Query::A("s2.example.com".into()),
                Query::Aaaa("s2.example.com".into()),
            ]
        );
        assert_eq!(
            got.unwrap(),
            vec![
                dest("192.0.2.1:5061", Tls),
                dest("192.0.2.2:5061", Tls),
                dest("[2001:db8::1]:5061", Tls),
                dest("192.0.2.3:5061", Tls),
                dest("192.0.2.1:5060", Udp),
                dest("192.0.2.2:5060", Udp),
                dest("[2001:db8::1]:5060", Udp),
            ]
        );
    }

    #[test]
    fn duplicate_destinations_are_removed() {
        let zone = Zone::default()
            .srv(
                "_sip._udp.example.com",
                vec![
                    srv(0, 0, 5060, "a.example.com"),
                    srv(1, 0, 5060, "b.example.com"),
                ],
            )
            .a("a.example.com", &["192.0.2.1", "192.0.2.1"])
            .a("b.example.com", &["192.0.2.1", "192.0.2.2"]);
        let (got, _) = run(request("example.com"), 1, &zone);
        assert_eq!(
            got.unwrap(),
            vec![dest("192.0.2.1:5060", Udp), dest("192.0.2.2:5060", Udp)]
        );
    }

    // ---- SRV ordering (RFC 2782) -----------------------------------------------

    fn srv_order(records: Vec<SrvRecord>, seed: u64) -> Vec<String> {
        let zone = Zone::default().srv("_sip._udp.example.com", records);
        let mut req = request("example.com");
        req.transport = Some(Udp);
        let mut locator = Locator::new(req, seed).unwrap();
        let mut order = Vec::new();
        while let Some(q) = locator.next_query() {
            if let Query::A(host) = &q {
                order.push(host.clone());
            }
            let r = zone
                .0
                .get(&q)
                .cloned()
                .unwrap_or(Err(LookupFailure::NotFound));
            locator.answer(&q, r);
        }
        order
    }

    #[test]
    fn srv_priority_ascending() {
        for seed in 0..50 {
            let order = srv_order(
                vec![
                    srv(20, 5, 5060, "b.example.com"),
                    srv(10, 5, 5060, "a.example.com"),
                    srv(30, 5, 5060, "c.example.com"),
                ],
                seed,
            );
            assert_eq!(order, ["a.example.com", "b.example.com", "c.example.com"]);
        }
    }

    #[test]
    fn srv_weight_zero_record_still_used() {
        let mut zero_first = 0;
        for seed in 0..200 {
            let order = srv_order(
                vec![
                    srv(10, 0, 5060, "zero.example.com"),
                    srv(10, 100, 5060, "big.example.com"),
                ],
                seed,
            );
            assert_eq!(order.len(), 2);
            assert!(order.contains(&"zero.example.com".to_string()));
            if order[0] == "zero.example.com" {
                zero_first += 1;
            }
        }
        assert!(
            zero_first < 20,
            "weight 0 first {zero_first} times out of 200"
        );
    }

    #[test]
    fn srv_all_weights_zero_all_used() {
        let order = srv_order(
            vec![
                srv(0, 0, 5060, "a.example.com"),
                srv(0, 0, 5060, "b.example.com"),
            ],
            3,
        );
        assert_eq!(order.len(), 2);
    }

    #[test]
    fn srv_order_reproducible_with_seed() {
        let records = || {
            vec![
                srv(10, 10, 5060, "a.example.com"),
                srv(10, 20, 5060, "b.example.com"),
                srv(10, 30, 5060, "c.example.com"),
                srv(10, 40, 5060, "d.example.com"),
            ]
        };
        for seed in [0, 1, 42, u64::MAX] {
            assert_eq!(srv_order(records(), seed), srv_order(records(), seed));
        }
        let distinct: std::collections::HashSet<Vec<String>> =
            (0..50).map(|seed| srv_order(records(), seed)).collect();
        assert!(distinct.len() > 1, "the seed must change the order");
    }

    #[test]
    fn srv_weights_spread_load() {
        let mut heavy_first = 0;
        let runs = 2000;
        for seed in 0..runs {
            let order = srv_order(
                vec![
                    srv(0, 10, 5060, "light.example.com"),
                    srv(0, 90, 5060, "heavy.example.com"),
                ],
                seed,
            );
            if order[0] == "heavy.example.com" {
                heavy_first += 1;
            }
        }
        // Expected about 90 %.
        assert!(
            (1700..=1900).contains(&heavy_first),
            "heavy first {heavy_first}/{runs}"
        );
    }

    // ---- driving the state machine ---------------------------------------------

    #[test]
    fn questions_of_one_step_can_run_concurrently() {
        let mut req = request("example.com");
        req.port = Some(5060);
        let mut locator = Locator::new(req, 1).unwrap();
        let first = locator.next_query().unwrap();
        let second = locator.next_query().unwrap();
        assert_eq!(first, Query::A("example.com".into()));
        assert_eq!(second, Query::Aaaa("example.com".into()));
        assert_eq!(locator.next_query(), None);
        assert!(!locator.is_done());
        let v6 = Answer::Addresses(vec!["2001:db8::1".parse().unwrap()]);
        assert!(locator.answer(&second, Ok(v6)));
        assert!(!locator.is_done());
        let v4 = Answer::Addresses(vec!["192.0.2.1".parse().unwrap()]);
        assert!(locator.answer(&first, Ok(v4)));
        assert!(locator.is_done());
        assert_eq!(
            locator.finish().unwrap(),
            vec![dest("192.0.2.1:5060", Udp), dest("[2001:db8::1]:5060", Udp)]
        );
    }

    #[test]
    fn unknown_and_repeated_answers_are_ignored() {
        let mut req = request("example.com");
        req.port = Some(5060);
        let mut locator = Locator::new(req, 1).unwrap();
        let q = locator.next_query().unwrap();
        let other = Query::A("other.example.com".into());
        assert!(!locator.answer(&other, Err(LookupFailure::NotFound)));
        assert!(locator.answer(
            &q,
            Ok(Answer::Addresses(vec!["192.0.2.1".parse().unwrap()]))
        ));
        assert!(!locator.answer(
            &q,
            Ok(Answer::Addresses(vec!["192.0.2.9".parse().unwrap()]))
        ));
        let aaaa = locator.next_query().unwrap();
        assert!(locator.answer(&aaaa, Err(LookupFailure::NotFound)));
        assert_eq!(locator.finish().unwrap(), vec![dest("192.0.2.1:5060", Udp)]);
    }

    #[test]
    fn wrong_kind_of_answer_counts_as_failure() {
        let mut locator = Locator::new(request("example.com"), 1).unwrap();
        let q = locator.next_query().unwrap();
        assert_eq!(q, Query::Naptr("example.com".into()));
        let bogus = Answer::Addresses(vec!["192.0.2.1".parse().unwrap()]);
        assert!(locator.answer(&q, Ok(bogus)));
        // Went on as if NAPTR failed: SRV for the supported transports.
        assert_eq!(locator.next_query(), Some(srv_q("_sip._udp.example.com")));
    }

    #[test]
    fn finish_early_uses_what_was_answered() {
        let mut req = request("example.com");
        req.port = Some(5060);
        let mut locator = Locator::new(req, 1).unwrap();
        let a = locator.next_query().unwrap();
        let _aaaa = locator.next_query().unwrap();
        locator.answer(
            &a,
            Ok(Answer::Addresses(vec!["192.0.2.1".parse().unwrap()])),
        );
        assert!(!locator.is_done());
        assert_eq!(locator.finish().unwrap(), vec![dest("192.0.2.1:5060", Udp)]);
    }

    #[test]
    fn finish_before_any_answer_is_a_dns_failure() {
        let locator = Locator::new(request("example.com"), 1).unwrap();
        let err = locator.finish().unwrap_err();
        assert!(matches!(err, LocateError::DnsFailed { .. }), "{err:?}");
    }

    #[test]
    fn query_display_names_type_and_name() {
        assert_eq!(
            Query::Naptr("example.com".into()).to_string(),
            "NAPTR example.com"
        );
        assert_eq!(
            srv_q("_sip._udp.example.com").to_string(),
            "SRV _sip._udp.example.com"
        );
        assert_eq!(Query::Aaaa("h".into()).name(), "h");
    }
}
