//! The small typed notes calls and their recordings send each other, so neither reaches into
//! the other's state: a call says what happened to it, a recording says what its call must do.

use crate::sip::uri::NameAddr;

/// What waits for a mandatory recording to be up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// The call's INVITE.
    Dial,
    /// The 200 OK to the caller, with media on this port.
    Answer { media_port: u16 },
}

/// What happened to a call that its recordings follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CallNote {
    /// The call's media was (re)negotiated: a recording waiting for media starts its streams,
    /// and the metadata says whether the call is on hold.
    Media { on_hold: bool },
    /// A trusted proxy asserted who the far end is now (after a transfer, say).
    FarEndIs(Box<NameAddr>),
    /// The far end prefers not to be recorded (`a=recordpref:pause`), and the policy agrees.
    FarEndAsksPause,
    /// The far end refuses to be recorded (`a=recordpref:off`), and the policy agrees.
    FarEndRefuses,
    /// The far end said its Session-ID (RFC 7989): the metadata's `<sipSessionID>` names it.
    SessionId(String),
    /// The far end is a conference focus, and these are the other participants heard of
    /// so far (RFC 4575): the metadata names them, with when they joined and left.
    Roster(Vec<super::ConferenceMember>),
    /// The call is over: its recordings end, and a recorder still asking is declined.
    Ended,
}

/// What a recording needs its call to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RecordingNote {
    /// The mandatory recording is up: the call waiting at `gate` goes ahead.
    GateOpen(Gate),
    /// The mandatory recording could not be had: the waiting call is not placed, or refused.
    GateShut { reason: String },
    /// The mandatory recording stayed down past its grace: the call ends.
    MandatoryLost { seconds: u64 },
    /// Tell a record-aware far end the recording's state (`a=record`, RFC 7866 6.1.2).
    Indicate(&'static str),
}
