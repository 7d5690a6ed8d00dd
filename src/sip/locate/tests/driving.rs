//! Driving the state machine by hand: concurrent questions, stray and repeated answers,
//! answers of the wrong kind, and finishing before every answer is in.

use super::*;

/// A locator for example.com:5060, which asks A and AAAA only.
fn addresses_only() -> Locator {
    Locator::new(request("example.com").port(5060), 1).unwrap()
}

#[test]
fn questions_of_one_step_can_run_concurrently() {
    let mut locator = addresses_only();
    let first = locator.next_query().unwrap();
    let second = locator.next_query().unwrap();
    assert_eq!(first, a_q("example.com"));
    assert_eq!(second, aaaa_q("example.com"));
    assert_eq!(locator.next_query(), None);
    assert!(!locator.is_done());
    assert!(locator.answer(&second, Ok(addresses(&["2001:db8::1"]))));
    assert!(!locator.is_done());
    assert!(locator.answer(&first, Ok(addresses(&["192.0.2.1"]))));
    assert!(locator.is_done());
    assert_eq!(
        locator.finish().unwrap(),
        vec![dest("192.0.2.1:5060", Udp), dest("[2001:db8::1]:5060", Udp)]
    );
}

#[test]
fn unknown_and_repeated_answers_are_ignored() {
    let mut locator = addresses_only();
    let q = locator.next_query().unwrap();
    let other = a_q("other.example.com");
    assert!(!locator.answer(&other, Err(LookupFailure::NotFound)));
    assert!(locator.answer(&q, Ok(addresses(&["192.0.2.1"]))));
    assert!(!locator.answer(&q, Ok(addresses(&["192.0.2.9"]))));
    let aaaa = locator.next_query().unwrap();
    assert!(locator.answer(&aaaa, Err(LookupFailure::NotFound)));
    assert_eq!(locator.finish().unwrap(), vec![dest("192.0.2.1:5060", Udp)]);
}

#[test]
fn wrong_kind_of_answer_counts_as_failure() {
    let mut locator = Locator::new(request("example.com"), 1).unwrap();
    let q = locator.next_query().unwrap();
    assert_eq!(q, naptr_q("example.com"));
    assert!(locator.answer(&q, Ok(addresses(&["192.0.2.1"]))));
    // Went on as if NAPTR failed: SRV for the supported transports.
    assert_eq!(locator.next_query(), Some(srv_q("_sip._udp.example.com")));
}

#[test]
fn finish_early_uses_what_was_answered() {
    let mut locator = addresses_only();
    let a = locator.next_query().unwrap();
    let _aaaa = locator.next_query().unwrap();
    locator.answer(&a, Ok(addresses(&["192.0.2.1"])));
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
    assert_eq!(naptr_q("example.com").to_string(), "NAPTR example.com");
    assert_eq!(
        srv_q("_sip._udp.example.com").to_string(),
        "SRV _sip._udp.example.com"
    );
    assert_eq!(aaaa_q("h").name(), "h");
}
