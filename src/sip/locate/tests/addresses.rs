//! Turning targets into addresses (RFC 3263 section 4.3): partial failures, failover order
//! and duplicates, and which error a lookup that found nothing gives.

use super::*;

#[test]
fn a_failure_does_not_abort_aaaa() {
    let zone = Zone::default()
        .fail(a_q("example.com"), "server failure")
        .aaaa("example.com", &["2001:db8::7"]);
    let (got, _) = run(request("example.com").port(5060), 1, &zone);
    assert_eq!(got.unwrap(), vec![dest("[2001:db8::7]:5060", Udp)]);
}

#[test]
fn aaaa_failure_keeps_a_results() {
    let zone = Zone::default()
        .a("example.com", &["192.0.2.7"])
        .fail(aaaa_q("example.com"), "timed out");
    let (got, _) = run(request("example.com").port(5060), 1, &zone);
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
        .fail(a_q("gone.example.com"), "timed out")
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
    let zone = Zone::default()
        .fail(a_q("example.com"), "timed out")
        .fail(aaaa_q("example.com"), "timed out");
    let err = run(request("example.com").port(5060), 1, &zone)
        .0
        .unwrap_err();
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
        .srv_to("_sip._udp.example.com", 5060, "s1.example.com")
        .a("s1.example.com", &["192.0.2.1", "192.0.2.2"])
        .aaaa("s1.example.com", &["2001:db8::1"])
        .a("s2.example.com", &["192.0.2.3"]);
    let (got, asked) = run(request("example.com"), 1, &zone);
    assert_eq!(
        asked,
        vec![
            naptr_q("example.com"),
            srv_q("_sips._tcp.example.com"),
            srv_q("_sip._udp.example.com"),
            a_q("s1.example.com"),
            aaaa_q("s1.example.com"),
            a_q("s2.example.com"),
            aaaa_q("s2.example.com"),
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
