//! The engine's only source of randomness (tags, branches, Call-IDs, cnonces, SDP session
//! ids), seeded so that a run can be replayed byte for byte.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone)]
pub struct EngineRng(ChaCha8Rng);

impl EngineRng {
    pub fn new(seed: u64) -> EngineRng {
        EngineRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// `len` lowercase hex digits.
    pub fn token(&mut self, len: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        (0..len)
            .map(|_| {
                char::from(
                    HEX.get(self.0.random_range(0..16usize))
                        .copied()
                        .unwrap_or(b'0'),
                )
            })
            .collect()
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.random()
    }

    /// A uniformly chosen duration in `[low, high)` milliseconds.
    pub fn millis_between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        self.0.random_range(low..high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_tokens() {
        let mut a = EngineRng::new(7);
        let mut b = EngineRng::new(7);
        assert_eq!(a.token(16), b.token(16));
        assert_ne!(EngineRng::new(8).token(16), EngineRng::new(7).token(16));
        assert!(a.token(10).bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
