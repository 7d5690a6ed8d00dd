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
//!
//! The questions and answers the driver exchanges with DNS are in `dns`, the RFC 2782 order
//! in `srv_order`; this file is the RFC 3263 state machine between them.

mod dns;
mod srv_order;

use core::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::sip::transport::{Destination, Transport};

pub use dns::{Answer, LookupFailure, NaptrRecord, Query, SrvRecord};
use srv_order::{Rng, order_srv};

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
mod tests;
