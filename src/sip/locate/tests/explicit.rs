//! An explicit port (A/AAAA only) or an explicit transport (SRV of that transport only),
//! RFC 3263 sections 4.1 and 4.2.

use super::*;

#[test]
fn explicit_port_queries_only_a_and_aaaa() {
    let zone = Zone::default()
        .naptr(
            "example.com",
            vec![naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com")],
        )
        .srv_to("_sip._udp.example.com", 5060, "other.example.com")
        .a("example.com", &["192.0.2.1"])
        .aaaa("example.com", &["2001:db8::1"]);
    let (got, asked) = run(request("example.com").port(5080), 1, &zone);
    assert_eq!(asked, vec![a_q("example.com"), aaaa_q("example.com")]);
    assert_eq!(
        got.unwrap(),
        vec![dest("192.0.2.1:5080", Udp), dest("[2001:db8::1]:5080", Udp)]
    );
}

#[test]
fn explicit_port_with_sips_uses_tls() {
    let req = request("example.com").port(5071).sips();
    let zone = Zone::default().a("example.com", &["192.0.2.1"]);
    assert_eq!(
        run(req, 1, &zone).0.unwrap(),
        vec![dest("192.0.2.1:5071", Tls)]
    );
}

#[test]
fn explicit_port_and_transport() {
    let req = request("example.com").port(5090).transport(Tcp);
    let zone = Zone::default().a("example.com", &["192.0.2.1"]);
    assert_eq!(
        run(req, 1, &zone).0.unwrap(),
        vec![dest("192.0.2.1:5090", Tcp)]
    );
}

#[test]
fn explicit_transport_skips_naptr_and_other_srv() {
    let zone = Zone::default()
        .naptr(
            "example.com",
            vec![naptr(10, 10, "SIP+D2U", "_sip._udp.example.com")],
        )
        .srv_to("_sip._udp.example.com", 5060, "udp.example.com")
        .srv_to("_sip._tcp.example.com", 5065, "tcp.example.com")
        .a("tcp.example.com", &["192.0.2.7"]);
    let (got, asked) = run(request("example.com").transport(Tcp), 1, &zone);
    assert_eq!(
        asked,
        vec![
            srv_q("_sip._tcp.example.com"),
            a_q("tcp.example.com"),
            aaaa_q("tcp.example.com"),
        ]
    );
    assert_eq!(got.unwrap(), vec![dest("192.0.2.7:5065", Tcp)]);
}

#[test]
fn explicit_transport_without_srv_uses_host_and_default_port() {
    let zone = Zone::default().a("example.com", &["192.0.2.1"]);
    let (got, asked) = run(request("example.com").transport(Tls), 1, &zone);
    assert_eq!(asked[0], srv_q("_sips._tcp.example.com"));
    assert_eq!(got.unwrap(), vec![dest("192.0.2.1:5061", Tls)]);
}
