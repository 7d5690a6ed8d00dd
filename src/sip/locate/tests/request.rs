//! Requests that need no DNS (IP literals) and requests refused before any DNS.

use super::*;

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
    let (got, asked) = run(request("[2001:db8::5]").port(5070), 1, &Zone::default());
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
    let (got, _) = run(request("[::1]").sips(), 1, &Zone::default());
    assert_eq!(got.unwrap(), vec![dest("[::1]:5061", Tls)]);
}

#[test]
fn ip_literal_with_transport_param_uses_its_default_port() {
    let req = request("192.0.2.1").transport(Tcp);
    assert_eq!(
        run(req, 1, &Zone::default()).0.unwrap(),
        vec![dest("192.0.2.1:5060", Tcp)]
    );
    let req = request("192.0.2.1").transport(Tls);
    assert_eq!(
        run(req, 1, &Zone::default()).0.unwrap(),
        vec![dest("192.0.2.1:5061", Tls)]
    );
}

#[test]
fn ip_literal_prefers_tcp_when_udp_unsupported() {
    let req = request("192.0.2.1").supporting(&[Tls, Tcp]);
    assert_eq!(
        run(req, 1, &Zone::default()).0.unwrap(),
        vec![dest("192.0.2.1:5060", Tcp)]
    );
}

#[test]
fn sips_with_udp_transport_is_an_error() {
    let req = request("example.com").sips().transport(Udp);
    let err = Locator::new(req, 1).unwrap_err();
    assert_eq!(err, LocateError::SipsRequiresTls);
    assert_eq!(err.to_string(), "sips: requires TLS");
}

#[test]
fn sips_with_tcp_transport_means_tls() {
    // RFC 5630 3.2: sips:...;transport=tcp is TLS over TCP.
    let req = request("example.com").sips().transport(Tcp);
    let zone = Zone::default()
        .srv_to("_sips._tcp.example.com", 5061, "s1.example.com")
        .a("s1.example.com", &["192.0.2.1"]);
    let (got, asked) = run(req, 1, &zone);
    assert_eq!(asked[0], srv_q("_sips._tcp.example.com"));
    assert_eq!(got.unwrap(), vec![dest("192.0.2.1:5061", Tls)]);
}

#[test]
fn sips_without_tls_support_is_an_error() {
    let req = request("example.com").sips().supporting(&[Udp, Tcp]);
    assert_eq!(
        Locator::new(req, 1).unwrap_err(),
        LocateError::SipsRequiresTls
    );
}

#[test]
fn unsupported_transport_param_is_an_error() {
    let req = request("example.com").transport(Tls).supporting(&[Udp]);
    let err = Locator::new(req, 1).unwrap_err();
    assert_eq!(err, LocateError::UnsupportedTransport("TLS"));
    assert_eq!(
        err.to_string(),
        "transport TLS is not supported by this client"
    );
}

#[test]
fn no_supported_transport_is_an_error() {
    let req = request("example.com").supporting(&[]);
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
