//! NAPTR records choosing the transports (RFC 3263 section 4.1), and what happens without
//! usable ones.

use super::*;

/// The NAPTR records of the RFC 3263 section 4.1 example: TLS, TCP and UDP in that order.
fn rfc3263_example_records() -> Vec<NaptrRecord> {
    vec![
        naptr(50, 50, "SIPS+D2T", "_sips._tcp.example.com."),
        naptr(90, 50, "SIP+D2T", "_sip._tcp.example.com"),
        naptr(100, 50, "SIP+D2U", "_sip._udp.example.com."),
    ]
}

#[test]
fn rfc3263_example_client_with_tcp_and_udp() {
    // RFC 3263 4.1: the server offers TLS, TCP and UDP in that order; a
    // client supporting TCP and UDP uses TCP via _sip._tcp.example.com.
    let req = request("example.com").supporting(&[Udp, Tcp]);
    let zone = Zone::default()
        .naptr("example.com", rfc3263_example_records())
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
            naptr_q("example.com"),
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
    let zone = Zone::default()
        .naptr("example.com", rfc3263_example_records())
        .srv(
            "_sips._tcp.example.com.",
            vec![srv(0, 1, 5061, "server1.example.com")],
        )
        .a("server1.example.com", &["192.0.2.11"]);
    let (got, asked) = run(request("example.com").sips(), 1, &zone);
    assert!(!asked.contains(&srv_q("_sip._tcp.example.com")));
    assert!(!asked.contains(&srv_q("_sip._udp.example.com.")));
    assert_eq!(got.unwrap(), vec![dest("192.0.2.11:5061", Tls)]);
}

#[test]
fn naptr_sorted_by_order_then_preference() {
    let zone = one_server_per_transport().naptr(
        "example.com",
        vec![
            naptr(100, 10, "SIP+D2U", "_sip._udp.example.com"),
            naptr(50, 20, "SIP+D2T", "_sip._tcp.example.com"),
            naptr(50, 10, "SIPS+D2T", "_sips._tcp.example.com"),
        ],
    );
    let (got, asked) = run(request("example.com"), 1, &zone);
    assert_eq!(
        asked[1..4],
        [
            srv_q("_sips._tcp.example.com"),
            srv_q("_sip._tcp.example.com"),
            srv_q("_sip._udp.example.com"),
        ]
    );
    assert_eq!(got.unwrap(), tls_tcp_udp_servers());
}

#[test]
fn naptr_skips_unsupported_unknown_and_non_terminal_records() {
    let mut odd_flags = naptr(1, 1, "SIP+D2U", "_sip._udp.bad.example.com");
    odd_flags.flags = "a".into();
    let mut no_flags = naptr(1, 2, "SIP+D2U", "_sip._udp.bad2.example.com");
    no_flags.flags = String::new();
    let req = request("example.com").supporting(&[Udp, Tcp]);
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
        .srv_to("_sip._udp.example.com", 5060, "u.example.com")
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
        .srv_to("_sip._tcp.example.com", 5060, "t.example.com")
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
        .fail(naptr_q("example.com"), "timed out")
        .srv_to("_sip._udp.example.com", 5060, "u.example.com")
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
            naptr_q("example.com"),
            srv_q("_sip._tcp.example.com"),
            a_q("example.com"),
            aaaa_q("example.com"),
        ]
    );
    assert_eq!(got.unwrap(), vec![dest("192.0.2.9:5060", Tcp)]);
}
