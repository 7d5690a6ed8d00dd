//! Identifiers, one type per kind of thing the engine keeps: calls, recording sessions,
//! recorder checks and accounts, so that one can never be passed where another is meant.
//!
//! A front end mints the ids of what it starts ([`Ids`]) so that a command and the events it
//! causes can be matched without a round trip; the engine mints the ids of what the network
//! starts (an incoming call) from its seeded RNG, so a run replays byte for byte. The two
//! never meet: the engine's ids have the top bit set, a front end's count up from 1.

use core::fmt;

/// A call (the communication session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// A recording session of a call, and the media sockets it sends from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordingId(pub u64);

/// A "Test recorder" check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub u64);

/// Whose RTP/RTCP socket pair a media packet leaves from or arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaSocket {
    Call(CallId),
    /// One stream of a recording session: each has its own pair. `stream` counts the
    /// streams that carry a voice, in m-line order (`rs_sdp::stream_slot`).
    Recording {
        recording: RecordingId,
        stream: usize,
    },
}

impl MediaSocket {
    /// The recording session whose stream the socket is, if it is one.
    pub fn recording(&self) -> Option<RecordingId> {
        match self {
            MediaSocket::Call(_) => None,
            MediaSocket::Recording { recording, .. } => Some(*recording),
        }
    }
}

/// The bit that marks an id the engine minted.
const ENGINE_MINTED: u64 = 1 << 63;

/// Mints a front end's ids. One per front end; nothing is shared between processes or
/// threads, so tests do not see each other's numbers.
#[derive(Debug)]
pub struct Ids {
    next: u64,
}

impl Default for Ids {
    fn default() -> Self {
        Ids { next: 1 }
    }
}

impl Ids {
    fn next(&mut self) -> u64 {
        let id = self.next;
        // 2^63 ids in one run is out of reach; wrapping keeps the engine's half apart.
        self.next = self.next % (ENGINE_MINTED - 1) + 1;
        id
    }

    pub fn call(&mut self) -> CallId {
        CallId(self.next())
    }

    pub fn recording(&mut self) -> RecordingId {
        RecordingId(self.next())
    }

    pub fn check(&mut self) -> CheckId {
        CheckId(self.next())
    }

    pub fn account(&mut self) -> AccountId {
        AccountId(self.next())
    }
}

/// An id for something the network started, from the engine's RNG.
pub(super) fn engine_minted(random: u64) -> u64 {
    random | ENGINE_MINTED
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

impl fmt::Display for RecordingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recording-{}", self.0)
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "check-{}", self.0)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "account-{}", self.0)
    }
}

impl fmt::Display for MediaSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaSocket::Call(call) => call.fmt(f),
            MediaSocket::Recording { recording, stream } => write!(f, "{recording}.{stream}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_front_end_and_the_engine_never_mint_the_same_id() {
        let mut ids = Ids::default();
        let front = [ids.call().0, ids.recording().0, ids.check().0];
        assert_eq!(front, [1, 2, 3]);
        assert!(front.iter().all(|id| id & ENGINE_MINTED == 0));
        assert_ne!(engine_minted(1), 1);
        assert_eq!(engine_minted(1) & ENGINE_MINTED, ENGINE_MINTED);
        let mut last = Ids {
            next: ENGINE_MINTED - 1,
        };
        assert_eq!(last.call().0, ENGINE_MINTED - 1);
        assert_eq!(last.call().0, 1);
    }
}
