//! The order in which to try the targets of SRV records (RFC 2782): by priority, then a
//! weighted random draw, so that load spreads as the domain's weights ask while a given
//! seed still gives one reproducible order.

use super::{SrvRecord, is_root};

/// SplitMix64: small, fast, good enough to spread load between SRV targets.
#[derive(Debug, Clone)]
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Orders SRV records per RFC 2782: priority ascending; within a priority,
/// repeated weighted random choice, weight-0 records placed first in the pool
/// so they keep a small chance. Records with target `.` are dropped.
pub(super) fn order_srv(records: &[SrvRecord], rng: &mut Rng) -> Vec<SrvRecord> {
    let mut sorted: Vec<SrvRecord> = records
        .iter()
        .filter(|r| !is_root(&r.target))
        .cloned()
        .collect();
    sorted.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(sorted.len());
    for group in sorted.chunk_by(|a, b| a.priority == b.priority) {
        let mut pool = group.to_vec();
        pool.sort_by_key(|r| r.weight != 0);
        while !pool.is_empty() {
            let total: u64 = pool.iter().map(|r| u64::from(r.weight)).sum();
            let pick = rng.next() % (total + 1);
            let mut running = 0u64;
            let mut chosen = pool.len() - 1;
            for (i, r) in pool.iter().enumerate() {
                running += u64::from(r.weight);
                if running >= pick {
                    chosen = i;
                    break;
                }
            }
            out.push(pool.remove(chosen));
        }
    }
    out
}
