//! Identifiers for calls and accounts. Callers mint them so that a command and the events it
//! causes can be matched without a round trip.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub u64);

impl CallId {
    /// A process-wide unique id.
    pub fn new() -> CallId {
        CallId(NEXT_ID.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for CallId {
    fn default() -> Self {
        CallId::new()
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "account-{}", self.0)
    }
}
