//! Admission of new requests from the network, so that a flood of INVITEs, OPTIONS or junk
//! cannot crowd out the calls in progress or grow memory without bound.
//!
//! Requests that belong to a dialog we have (our calls, recordings, transfers) and
//! retransmissions are never held back: only requests that would open a new transaction
//! outside those dialogs draw from a token bucket. Past it they are refused statelessly with
//! 503 and a Retry-After, which costs no transaction state; and past a second bucket even
//! those refusals stop, leaving the flood unanswered rather than letting us amplify it.

use core::time::Duration;
use std::time::Instant;

/// How much unsolicited traffic the phone takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionConfig {
    /// New out-of-dialog requests taken per second, on average.
    pub requests_per_second: f64,
    /// How many may arrive at once (a burst of calls from a bench, a PBX's restart).
    pub burst: f64,
    /// 503 refusals sent per second at most; the rest are dropped unanswered.
    pub refusals_per_second: f64,
    /// Calls ringing at the same time; more are answered 486 Busy Here.
    pub max_ringing_calls: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            requests_per_second: 50.0,
            burst: 200.0,
            // A refusal is about as big as the request, so at most this many a second can
            // be reflected at a forged source: 1000 of ~500 bytes is 0.5 MB/s.
            refusals_per_second: 1000.0,
            max_ringing_calls: 16,
        }
    }
}

impl AdmissionConfig {
    /// No limits: for load tools, whose every call is wanted.
    pub fn unlimited() -> AdmissionConfig {
        AdmissionConfig {
            requests_per_second: f64::INFINITY,
            burst: f64::MAX,
            refusals_per_second: f64::MAX,
            max_ringing_calls: usize::MAX,
        }
    }
}

/// The seconds a refused sender is asked to wait (RFC 3261 21.5.4).
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// A token bucket over virtual time.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, capacity: f64, now: Instant) -> Bucket {
        Bucket {
            rate: rate.max(0.0),
            capacity: capacity.max(1.0),
            tokens: capacity.max(1.0),
            last: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if self.rate.is_infinite() {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What happens to a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    /// Answer 503 with Retry-After, statelessly.
    Refuse,
    /// Say nothing.
    Drop,
}

/// Counts since the engine started, for logs and the load tool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionStats {
    pub admitted: u64,
    pub refused: u64,
    pub dropped: u64,
    pub busy: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Admission {
    requests: Bucket,
    refusals: Bucket,
    pub(super) stats: AdmissionStats,
    /// When the last overload warning was logged: at most one a second.
    warned_at: Option<Instant>,
    refused_since_warning: u64,
}

impl Admission {
    pub(super) fn new(config: &AdmissionConfig, now: Instant) -> Admission {
        Admission {
            requests: Bucket::new(config.requests_per_second, config.burst, now),
            refusals: Bucket::new(config.refusals_per_second, config.refusals_per_second, now),
            stats: AdmissionStats::default(),
            warned_at: None,
            refused_since_warning: 0,
        }
    }

    /// Whether a stateless refusal other than the 503 may go out (a 400 to junk, a 486 when
    /// too many calls ring): those share the refusals' budget, so no kind of flood makes us
    /// send more than another.
    pub(super) fn may_refuse(&mut self, now: Instant) -> bool {
        if self.refusals.take(now) {
            true
        } else {
            self.stats.dropped += 1;
            false
        }
    }

    pub(super) fn judge(&mut self, now: Instant) -> Verdict {
        if self.requests.take(now) {
            self.stats.admitted += 1;
            return Verdict::Admit;
        }
        self.refused_since_warning += 1;
        if self
            .warned_at
            .is_none_or(|at| now >= at + Duration::from_secs(1))
        {
            tracing::warn!(
                held_back = self.refused_since_warning,
                "overload: refusing new requests beyond the admission rate"
            );
            self.warned_at = Some(now);
            self.refused_since_warning = 0;
        }
        if self.refusals.take(now) {
            self.stats.refused += 1;
            Verdict::Refuse
        } else {
            self.stats.dropped += 1;
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_taken_then_the_rate_then_refusals_then_silence() {
        let start = Instant::now();
        let config = AdmissionConfig {
            requests_per_second: 10.0,
            burst: 20.0,
            refusals_per_second: 5.0,
            max_ringing_calls: 4,
        };
        let mut admission = Admission::new(&config, start);
        let verdicts: Vec<Verdict> = (0..30).map(|_| admission.judge(start)).collect();
        assert!(verdicts[..20].iter().all(|v| *v == Verdict::Admit));
        assert!(verdicts[20..25].iter().all(|v| *v == Verdict::Refuse));
        assert!(verdicts[25..].iter().all(|v| *v == Verdict::Drop));
        // A second later, ten more are welcome, and five more refusals may be sent.
        let later = start + Duration::from_secs(1);
        let verdicts: Vec<Verdict> = (0..20).map(|_| admission.judge(later)).collect();
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Admit).count(),
            10
        );
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Refuse).count(),
            5
        );
        assert_eq!(
            admission.stats,
            AdmissionStats {
                admitted: 30,
                refused: 10,
                dropped: 10,
                busy: 0
            }
        );
    }
}
