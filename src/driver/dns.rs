//! Runs the RFC 3263 [`Locator`] against real DNS with hickory-resolver.
//!
//! All decisions live in [`crate::sip::locate`]; this module only asks the
//! questions the locator hands out (concurrently) and feeds back the answers.

use std::collections::HashMap;

use hickory_resolver::TokioResolver;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, RecordType};
use tokio::task::JoinSet;

use crate::sip::locate::{
    Answer, LocateError, LocateRequest, Locator, LookupFailure, NaptrRecord, Query, SrvRecord,
};
use crate::sip::transport::{Destination, Transport};
use crate::sip::uri::{Scheme, Uri};

/// The first place to send requests for `uri` (RFC 3263): over `transport` when given,
/// else over what the URI says.
pub async fn first_hop(uri: &Uri, transport: Option<Transport>) -> Result<Destination, String> {
    let mut request = LocateRequest::new(uri.host.clone());
    request.port = uri.port;
    request.transport = transport.or_else(|| uri.transport_param());
    request.secure = matches!(uri.scheme, Scheme::Sips);
    let destinations = locate(request, rand::random())
        .await
        .map_err(|e| format!("cannot reach {uri}: {e}"))?;
    destinations
        .into_iter()
        .next()
        .ok_or_else(|| format!("cannot reach {uri}: no address found"))
}

/// A resolver configured from the system (`/etc/resolv.conf` on Unix).
///
/// Build it once and reuse it: it caches answers.
pub fn system_resolver() -> Result<TokioResolver, LocateError> {
    TokioResolver::builder_tokio()
        .and_then(|builder| builder.build())
        .map_err(|e| LocateError::Resolver(e.to_string()))
}

/// Locates the SIP servers for `request` using the system DNS configuration,
/// returning the destinations to try, in order. `seed` randomizes the SRV
/// weighting (pass a fresh random value per call).
///
/// An IP literal host is answered without reading the DNS configuration.
pub async fn locate(request: LocateRequest, seed: u64) -> Result<Vec<Destination>, LocateError> {
    let locator = Locator::new(request, seed)?;
    if locator.is_done() {
        return locator.finish();
    }
    let resolver = system_resolver()?;
    drive(&resolver, locator).await
}

/// Like [`locate`], with a resolver the caller keeps (and so its cache).
pub async fn locate_with(
    resolver: &TokioResolver,
    request: LocateRequest,
    seed: u64,
) -> Result<Vec<Destination>, LocateError> {
    drive(resolver, Locator::new(request, seed)?).await
}

/// Asks every question of `locator`, the questions of one step concurrently,
/// then returns its result.
pub async fn drive(
    resolver: &TokioResolver,
    mut locator: Locator,
) -> Result<Vec<Destination>, LocateError> {
    let mut tasks = JoinSet::new();
    let mut asked: HashMap<tokio::task::Id, Query> = HashMap::new();
    loop {
        while let Some(query) = locator.next_query() {
            let resolver = resolver.clone();
            let q = query.clone();
            let handle = tasks.spawn(async move { ask(&resolver, &q).await });
            asked.insert(handle.id(), query);
        }
        let Some(joined) = tasks.join_next_with_id().await else {
            break;
        };
        let (id, result) = match joined {
            Ok((id, result)) => (id, result),
            Err(e) => (e.id(), Err(LookupFailure::Failed(e.to_string()))),
        };
        if let Some(query) = asked.remove(&id) {
            locator.answer(&query, result);
        }
    }
    locator.finish()
}

/// One DNS question, its records converted for the locator.
async fn ask(resolver: &TokioResolver, query: &Query) -> Result<Answer, LookupFailure> {
    let name = query.name();
    let lookup = match query {
        Query::Naptr(_) => resolver.lookup(name, RecordType::NAPTR).await,
        Query::Srv(_) => resolver.srv_lookup(name).await,
        Query::A(_) => resolver.ipv4_lookup(name).await,
        Query::Aaaa(_) => resolver.ipv6_lookup(name).await,
    }
    .map_err(failure)?;
    let records = lookup.answers().iter().map(|r| &r.data);
    Ok(match query {
        Query::Naptr(_) => Answer::Naptr(
            records
                .filter_map(|d| match d {
                    RData::NAPTR(n) => Some(NaptrRecord {
                        order: n.order,
                        preference: n.preference,
                        flags: String::from_utf8_lossy(&n.flags).into_owned(),
                        services: String::from_utf8_lossy(&n.services).into_owned(),
                        replacement: n.replacement.to_ascii(),
                    }),
                    _ => None,
                })
                .collect(),
        ),
        Query::Srv(_) => Answer::Srv(
            records
                .filter_map(|d| match d {
                    RData::SRV(s) => Some(SrvRecord {
                        priority: s.priority,
                        weight: s.weight,
                        port: s.port,
                        target: s.target.to_ascii(),
                    }),
                    _ => None,
                })
                .collect(),
        ),
        Query::A(_) | Query::Aaaa(_) => Answer::Addresses(
            records
                .filter_map(|d| match d {
                    RData::A(a) => Some(a.0.into()),
                    RData::AAAA(a) => Some(a.0.into()),
                    _ => None,
                })
                .collect(),
        ),
    })
}

fn failure(e: NetError) -> LookupFailure {
    if e.is_no_records_found() {
        LookupFailure::NotFound
    } else {
        LookupFailure::Failed(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transport::Transport;
    use core::net::SocketAddr;

    #[tokio::test]
    async fn ip_literal_resolves_without_dns() {
        let mut request = LocateRequest::new("[2001:db8::1]");
        request.port = Some(5080);
        request.transport = Some(Transport::Tcp);
        let got = locate(request, 7).await;
        let expected = Destination {
            address: SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 5080)),
            transport: Transport::Tcp,
        };
        assert_eq!(got, Ok(vec![expected]));
    }

    #[tokio::test]
    async fn invalid_request_fails_without_dns() {
        let mut request = LocateRequest::new("example.com");
        request.secure = true;
        request.transport = Some(Transport::Udp);
        let got = locate(request, 7).await;
        assert_eq!(got, Err(LocateError::SipsRequiresTls));
    }
}
