//! SRV lookups without NAPTR (RFC 3263 section 4.1, last paragraphs) and the host fallback
//! when a domain publishes no SRV record at all.

use super::*;

#[test]
fn without_naptr_srv_queried_in_supported_order() {
    let req = request("example.com").supporting(&[Tls, Tcp, Udp]);
    let (got, asked) = run(req, 1, &one_server_per_transport());
    assert_eq!(
        asked[..4],
        [
            naptr_q("example.com"),
            srv_q("_sips._tcp.example.com"),
            srv_q("_sip._tcp.example.com"),
            srv_q("_sip._udp.example.com"),
        ]
    );
    assert_eq!(got.unwrap(), tls_tcp_udp_servers());
}

#[test]
fn without_naptr_sips_queries_only_sips_srv() {
    let zone = Zone::default()
        .srv_to("_sip._udp.example.com", 5060, "u.example.com")
        .srv_to("_sips._tcp.example.com", 5061, "s.example.com")
        .a("s.example.com", &["192.0.2.3"]);
    let (got, asked) = run(request("example.com").sips(), 1, &zone);
    assert_eq!(
        asked[..2],
        [naptr_q("example.com"), srv_q("_sips._tcp.example.com")]
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
            naptr_q("example.com"),
            srv_q("_sip._udp.example.com"),
            srv_q("_sip._tcp.example.com"),
            srv_q("_sips._tcp.example.com"),
            a_q("example.com"),
            aaaa_q("example.com"),
        ]
    );
    assert_eq!(
        got.unwrap(),
        vec![dest("192.0.2.1:5060", Udp), dest("[2001:db8::1]:5060", Udp)]
    );
}

#[test]
fn without_srv_only_tcp_supported_uses_tcp() {
    let zone = Zone::default().a("example.com", &["192.0.2.1"]);
    let (got, asked) = run(request("example.com").supporting(&[Tcp]), 1, &zone);
    assert!(!asked.contains(&srv_q("_sip._udp.example.com")));
    assert_eq!(got.unwrap(), vec![dest("192.0.2.1:5060", Tcp)]);
}

#[test]
fn without_srv_sips_uses_tls_5061() {
    let zone = Zone::default().aaaa("example.com", &["2001:db8::1"]);
    let (got, _) = run(request("example.com").sips(), 1, &zone);
    assert_eq!(got.unwrap(), vec![dest("[2001:db8::1]:5061", Tls)]);
}

#[test]
fn srv_dot_target_means_service_not_available() {
    let zone = Zone::default()
        .srv_to("_sip._udp.example.com", 0, ".")
        .a("example.com", &["192.0.2.1"]);
    let (got, asked) = run(request("example.com"), 1, &zone);
    assert!(!asked.contains(&a_q("example.com")));
    let err = got.unwrap_err();
    assert_eq!(err, LocateError::NoServer("example.com".into()));
    assert_eq!(err.to_string(), "no SIP server found for example.com");
}

#[test]
fn srv_dot_for_one_transport_leaves_the_others() {
    let zone = Zone::default()
        .srv_to("_sip._udp.example.com", 0, ".")
        .srv_to("_sip._tcp.example.com", 5060, "t.example.com")
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
