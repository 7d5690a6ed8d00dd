//! The order of SRV targets (RFC 2782): priority first, weights spreading the load, and a
//! seed that makes the draw reproducible.

use super::*;

/// The hosts of `records` in the order the locator looks them up with `seed`.
fn srv_order(records: Vec<SrvRecord>, seed: u64) -> Vec<String> {
    let zone = Zone::default().srv("_sip._udp.example.com", records);
    let mut locator = Locator::new(request("example.com").transport(Udp), seed).unwrap();
    let mut order = Vec::new();
    while let Some(q) = locator.next_query() {
        if let Query::A(host) = &q {
            order.push(host.clone());
        }
        locator.answer(&q, zone.lookup(&q));
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
