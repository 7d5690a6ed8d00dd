//! Tests of the RFC 3263 locator, one file per rule family, driven against an in-memory
//! zone. The builders here keep each test down to the records that matter to it.

use std::collections::HashMap;

use super::*;

use Transport::{Tcp, Tls, Udp};

mod addresses;
mod driving;
mod explicit;
mod naptr;
mod request;
mod srv;
mod srv_order;

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
    /// One SRV record of priority and weight 0, the common case.
    fn srv_to(self, name: &str, port: u16, target: &str) -> Self {
        self.srv(name, vec![srv(0, 0, port, target)])
    }
    fn a(mut self, host: &str, addrs: &[&str]) -> Self {
        self.0.insert(a_q(host), Ok(addresses(addrs)));
        self
    }
    fn aaaa(mut self, host: &str, addrs: &[&str]) -> Self {
        self.0.insert(aaaa_q(host), Ok(addresses(addrs)));
        self
    }
    fn fail(mut self, query: Query, reason: &str) -> Self {
        self.0
            .insert(query, Err(LookupFailure::Failed(reason.into())));
        self
    }
    /// What the zone answers to `query`.
    fn lookup(&self, query: &Query) -> Result<Answer, LookupFailure> {
        self.0
            .get(query)
            .cloned()
            .unwrap_or(Err(LookupFailure::NotFound))
    }
}

/// example.com with one server per transport: u (UDP), t (TCP) and s (TLS), each with an
/// IPv4 address, so that the order of the destinations shows the order of the transports.
fn one_server_per_transport() -> Zone {
    Zone::default()
        .srv_to("_sip._udp.example.com", 5060, "u.example.com")
        .srv_to("_sip._tcp.example.com", 5060, "t.example.com")
        .srv_to("_sips._tcp.example.com", 5061, "s.example.com")
        .a("u.example.com", &["192.0.2.1"])
        .a("t.example.com", &["192.0.2.2"])
        .a("s.example.com", &["192.0.2.3"])
}

/// The destinations `one_server_per_transport` gives, TLS first, then TCP, then UDP.
fn tls_tcp_udp_servers() -> Vec<Destination> {
    vec![
        dest("192.0.2.3:5061", Tls),
        dest("192.0.2.2:5060", Tcp),
        dest("192.0.2.1:5060", Udp),
    ]
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

fn addresses(addrs: &[&str]) -> Answer {
    Answer::Addresses(addrs.iter().map(|a| a.parse().unwrap()).collect())
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

/// The URI parts a test changes from the plain `sip:host` request, written as a chain.
trait RequestShape {
    fn port(self, port: u16) -> Self;
    fn transport(self, transport: Transport) -> Self;
    fn sips(self) -> Self;
    fn supporting(self, transports: &[Transport]) -> Self;
}

impl RequestShape for LocateRequest {
    fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }
    fn sips(mut self) -> Self {
        self.secure = true;
        self
    }
    fn supporting(mut self, transports: &[Transport]) -> Self {
        self.supported = transports.to_vec();
        self
    }
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
        assert!(locator.answer(&q, zone.lookup(&q)));
    }
    assert!(locator.is_done());
    (locator.finish(), asked)
}

fn naptr_q(name: &str) -> Query {
    Query::Naptr(name.into())
}

fn srv_q(name: &str) -> Query {
    Query::Srv(name.into())
}

fn a_q(name: &str) -> Query {
    Query::A(name.into())
}

fn aaaa_q(name: &str) -> Query {
    Query::Aaaa(name.into())
}
