//! INVITE sessions: placing and receiving calls, re-INVITE and UPDATE in both directions, hold,
//! CANCEL, BYE, the UAS's 2xx retransmission and the caller's ACK (RFC 3261 13-15, RFC 3311).

mod ending;
mod in_dialog;
mod incoming;
mod offer;
mod outgoing;

pub(super) use offer::MappedMedia;
mod queries;

use core::time::Duration;
use std::time::Instant;

use super::invite_session::{InviteSession, UnackedStep};
use super::{
    CallId, CallState, DialRequest, EndKind, EndReason, Engine, Event, Party, RecordingStart,
    Timer, TxOwner,
};
use crate::engine::notes::{CallNote, Gate, RecordingNote};
use crate::media::srtp::SrtpPolicy;
use crate::sdp::{Direction, LocalCapabilities, Negotiated, OfferAnswer, SessionDescription};
use crate::sip::auth::{ChallengeError, DigestSession};
use crate::sip::dialog::{Dialog, DialogSecurity, LEAVES_TLS_PHRASE, LeavesTls, UasDialogError};
use crate::sip::message::{Message, Method, reason_phrase};
use crate::sip::session_timer::{self, PeerTimer};
use crate::sip::transaction::{TxKey, response_destination};
use crate::sip::transport::Destination;
use crate::sip::uri::NameAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Caller,
    Callee,
}

#[derive(Debug)]
pub(super) struct Call {
    role: Role,
    state: CallState,
    session: InviteSession,
    offer_answer: OfferAnswer,
    /// Callee: the INVITE server transaction and where its responses go.
    server_key: Option<TxKey>,
    remote_offer: Option<SessionDescription>,
    /// We offered in a 2xx; the answer comes in the ACK.
    answer_in_ack: bool,
    provisional_received: bool,
    cancel_when_possible: bool,
    /// The user changed hold while a re-INVITE was in flight: offer again when it completes.
    reinvite_queued: bool,
    /// Our pending re-INVITE carries no SDP: the 2xx offers and the ACK answers.
    reinvite_offerless: bool,
    local_hold: bool,
    remote_hold: bool,
    /// The peer listed UPDATE in its Allow (RFC 3311), so a session change may use it.
    peer_allows_update: bool,
    /// The peer said `Supported: record-aware` (RFC 7866 6.1.2): it wants to hear about
    /// recording by re-INVITE or UPDATE.
    peer_record_aware: bool,
    /// The far end's identity asserted by a trusted proxy (P-Asserted-Identity, RFC 3325),
    /// which replaces the From/To identity when it comes, e.g. after a transfer.
    asserted_remote: Option<NameAddr>,
    pub(super) last_media: Instant,
    /// Its SRTP policy (its account's, else the phone's), before any hop is judged.
    pub(in crate::engine) srtp: SrtpPolicy,
    /// Its account's recording notice and cues; None: the phone's.
    pub(super) notice: Option<crate::recording::notice::NoticeConfig>,
    /// The account an incoming call came for (or took the place of a call on), by name.
    pub(super) account: Option<String>,
    /// When the call began (placed or received), as the metadata writes times: the
    /// communication session's start-time, whenever its recording starts.
    pub(super) started: String,
    /// What the user is told when our BYE completes ("hung up" unless said otherwise).
    bye_text: Option<String>,
    /// Our part ended because the far end went to a transfer target.
    transferred: bool,
}

impl Call {
    fn new(
        role: Role,
        state: CallState,
        session: InviteSession,
        offer_answer: OfferAnswer,
        now: Instant,
        started: String,
    ) -> Call {
        Call {
            role,
            state,
            session,
            offer_answer,
            server_key: None,
            remote_offer: None,
            answer_in_ack: false,
            provisional_received: false,
            cancel_when_possible: false,
            reinvite_queued: false,
            reinvite_offerless: false,
            local_hold: false,
            remote_hold: false,
            peer_allows_update: false,
            peer_record_aware: false,
            asserted_remote: None,
            last_media: now,
            srtp: SrtpPolicy::Off,
            notice: None,
            account: None,
            started,
            bye_text: None,
            transferred: false,
        }
    }

    pub(super) fn state(&self) -> CallState {
        self.state
    }

    pub(super) fn is_caller(&self) -> bool {
        self.role == Role::Caller
    }

    pub(super) fn is_local_hold(&self) -> bool {
        self.local_hold
    }

    /// The call's Session-ID as the metadata names it (RFC 7989: ours, then the far end's).
    pub(super) fn session_id(&self) -> String {
        self.session.session_id_header()
    }

    /// The call is connected, on hold as agreed: the far end's hold comes from what an
    /// answered offer `negotiated`, ours stays.
    pub(super) fn connected_as_agreed(&mut self, negotiated: Option<&Negotiated>) -> CallState {
        if let Some(agreed) = negotiated {
            self.remote_hold = agreed.remote_on_hold;
        }
        self.state = CallState::Connected {
            local_hold: self.local_hold,
            remote_hold: self.remote_hold,
        };
        self.state
    }

    /// Answers the far end's offer in a re-INVITE or UPDATE (RFC 3264 8), keeping our hold:
    /// our answer and what was agreed, or the status and reason to refuse it with.
    pub(super) fn answer_offer(
        &mut self,
        body: &[u8],
    ) -> Result<(SessionDescription, Option<Negotiated>), (u16, String)> {
        let wish = if self.local_hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let offer = SessionDescription::parse(&String::from_utf8_lossy(body))
            .map_err(|e| (400, format!("Bad SDP ({e})")))?;
        let answer = self
            .offer_answer
            .receive_offer(&offer, wish)
            .map_err(|e| (e.sip_status(), e.to_string()))?;
        Ok((answer, self.offer_answer.negotiated().cloned()))
    }

    /// The far end's identity, without tag.
    pub(super) fn remote_identity(&self) -> NameAddr {
        self.asserted_remote
            .clone()
            .unwrap_or_else(|| self.session.dialog.remote_uri.clone())
    }

    /// Our identity in the call (From as caller, To as callee), without tag.
    pub(super) fn local_identity(&self) -> NameAddr {
        self.session.dialog.local_uri.clone()
    }
}

impl Engine {
    /// The one way a recording tells its call what to do.
    pub(in crate::engine) fn tell_call(&mut self, call: CallId, note: RecordingNote) {
        match note {
            RecordingNote::GateOpen(Gate::Dial) => self.send_invite(call, None),
            RecordingNote::GateOpen(Gate::Answer { media_port }) => self.answer(call, media_port),
            RecordingNote::GateShut { reason } => {
                let text =
                    format!("recording is mandatory and the recorder is unavailable: {reason}");
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                if c.is_caller() {
                    // The INVITE never left: nothing to cancel on the wire.
                    self.end_call(call, None, &text, Party::Local);
                } else {
                    self.reject_because(call, 480, "Recording Unavailable", &text);
                }
            }
            RecordingNote::MandatoryLost { seconds } => {
                self.send_bye(call);
                self.end_call(
                    call,
                    None,
                    &format!(
                        "recording is mandatory and the recorder was unreachable for {seconds} s"
                    ),
                    Party::Local,
                );
            }
            RecordingNote::Indicate(value) => self.indicate_recording(call, value),
        }
    }
}
