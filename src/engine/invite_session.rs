//! What every INVITE dialog of the engine shares, calls and recording sessions alike: the
//! dialog itself, where its requests go, the INVITE and re-INVITE client transactions, the
//! digest state for challenges, the ACK kept for a retransmitted 2xx, and our own 2xx kept
//! until its ACK comes (RFC 3261 13-14).

use core::time::Duration;
use std::time::Instant;

use crate::sip::auth::{
    AuthorizationHeader, ChallengeError, DigestSession, Retried, answer_challenge,
};
use crate::sip::dialog::Dialog;
use crate::sip::message::{Message, Method};
use crate::sip::session_id;
use crate::sip::session_timer::{self, Agreed, PeerTimer};
use crate::sip::transaction::TxKey;
use crate::sip::transport::Destination;

#[derive(Debug)]
pub(super) struct InviteSession {
    pub(super) dialog: Dialog,
    /// Where requests go when the dialog's next hop needs DNS: the INVITE's first hop.
    pub(super) first_hop: Destination,
    /// UAC: the current INVITE client transaction.
    pub(super) invite_key: Option<TxKey>,
    /// Our re-INVITE in flight.
    pub(super) reinvite_key: Option<TxKey>,
    /// For a peer that challenges (digest, RFC 3261 22).
    pub(super) digest: Option<DigestSession>,
    /// UAC: the ACK for the 2xx, resent when the 2xx is retransmitted.
    pub(super) ack: Option<(Destination, Vec<u8>)>,
    /// The ACK for the 2xx to our re-INVITE, resent likewise.
    pub(super) reinvite_ack: Option<(Destination, Vec<u8>)>,
    /// UAS: our 2xx until its ACK arrives.
    pub(super) unacked_2xx: Option<Unacked>,
    /// The INVITE was answered with a 2xx (sent or received).
    pub(super) connected: bool,
    /// The session timer in force (RFC 4028), and who refreshes.
    pub(super) timer: Option<Agreed>,
    /// Our end's UUID for Session-ID (RFC 7989), and the other end's once it said it.
    pub(super) local_uuid: String,
    pub(super) remote_uuid: Option<String>,
}

/// Which session timer to arm after a peer's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimerChange {
    Unchanged,
    /// No session timer any more: disarm both.
    Off,
    /// The peer refreshes: give up on the session if nothing comes within this.
    Watch(Duration),
    /// We refresh, next after this.
    Refresh(Duration),
}

impl InviteSession {
    pub(super) fn new(dialog: Dialog, first_hop: Destination, local_uuid: String) -> InviteSession {
        InviteSession {
            dialog,
            first_hop,
            invite_key: None,
            reinvite_key: None,
            digest: None,
            ack: None,
            reinvite_ack: None,
            unacked_2xx: None,
            connected: false,
            timer: None,
            local_uuid,
            remote_uuid: None,
        }
    }

    /// The transaction `old` of this session goes on as `new`.
    pub(super) fn rekey(&mut self, old: &TxKey, new: &TxKey) {
        for key in [&mut self.invite_key, &mut self.reinvite_key] {
            if key.as_ref() == Some(old) {
                *key = Some(new.clone());
            }
        }
    }

    /// The Session-ID this end sends in the session (RFC 7989).
    pub(super) fn session_id_header(&self) -> String {
        session_id::header_value(&self.local_uuid, self.remote_uuid.as_deref())
    }

    /// Learns the other end's UUID from a message it sent; true when it is new.
    pub(super) fn learn_remote_uuid(&mut self, message: &Message) -> bool {
        match session_id::sender_uuid(message) {
            Some(uuid) if self.remote_uuid.as_ref() != Some(&uuid) => {
                self.remote_uuid = Some(uuid);
                true
            }
            _ => false,
        }
    }

    /// Puts what we agreed of the peer's session timer in our 2xx to its request, keeps it,
    /// and says which timer to arm (RFC 4028 9). A request without Session-Expires turns the
    /// timer off (RFC 4028 7.4).
    pub(super) fn agree_timer(&mut self, asked: PeerTimer, ok: &mut Message) -> TimerChange {
        match asked {
            PeerTimer::Agreed {
                header,
                require_timer,
                agreed,
            } => {
                ok.headers.push("Session-Expires", header);
                if require_timer {
                    ok.headers.push("Require", "timer");
                }
                self.take_timer(Some(agreed))
            }
            PeerTimer::None | PeerTimer::TooSmall => self.take_timer(None),
        }
    }

    /// Takes on the session timer that the 2xx to our INVITE or re-INVITE set (RFC 4028
    /// 7.2; none without Session-Expires) and says which timer to arm. A 2xx without one
    /// leaves a timer we refresh running: a peer that asked for refreshes and then forgot
    /// the header in its 2xx loses nothing by getting them, where stopping would have it
    /// end the call.
    pub(super) fn adopt_timer(&mut self, ok: &Message) -> TimerChange {
        match session_timer::as_uac(ok) {
            None if self.timer.is_some_and(|t| t.we_refresh) => TimerChange::Unchanged,
            set => self.take_timer(set),
        }
    }

    fn take_timer(&mut self, agreed: Option<Agreed>) -> TimerChange {
        match (agreed, self.timer.take()) {
            (Some(agreed), _) => {
                self.timer = Some(agreed);
                if agreed.we_refresh {
                    TimerChange::Refresh(agreed.refresh_after())
                } else {
                    TimerChange::Watch(agreed.interval.give_up_after())
                }
            }
            (None, Some(_)) => TimerChange::Off,
            (None, None) => TimerChange::Unchanged,
        }
    }

    /// Adds the session timer in force to a refresh or other session change we send, which
    /// would otherwise turn the timer off.
    pub(super) fn stamp_timer(&self, request: &mut Message) {
        if let Some(timer) = self.timer {
            request
                .headers
                .push("Session-Expires", timer.in_our_request());
            if !request.headers.has_token("Supported", "timer") {
                request.headers.push("Supported", "timer");
            }
        }
    }

    /// The ACK for a 2xx to our INVITE or re-INVITE (RFC 3261 13.2.2.4): in the dialog, with
    /// the 2xx's CSeq number. It is a transaction of its own: its Via is added as it is sent.
    pub(super) fn ack_for(&self, response: &Message) -> Message {
        let cseq = response
            .cseq()
            .map(|c| c.number)
            .unwrap_or(self.dialog.local_cseq);
        self.dialog.request_with_cseq(Method::Ack, cseq)
    }

    /// Keeps our 2xx until its ACK comes (RFC 3261 13.3.1.4); returns when to resend it
    /// first.
    pub(super) fn await_ack(
        &mut self,
        destination: Destination,
        bytes: Vec<u8>,
        now: Instant,
        t1: Duration,
    ) -> Instant {
        let unacked = Unacked::new(destination, bytes, now, t1);
        let at = unacked.first_resend(now);
        self.unacked_2xx = Some(unacked);
        at
    }

    /// The 2xx's resend timer fired: what to do, or None when its ACK already came.
    pub(super) fn resend_2xx(&mut self, now: Instant, t2: Duration) -> Option<UnackedStep> {
        let step = self.unacked_2xx.as_mut()?.step(now, t2);
        if matches!(step, UnackedStep::GiveUp) {
            self.unacked_2xx = None;
        }
        Some(step)
    }

    /// Answers the challenge (401/407) to our INVITE, whose body was `body`: the header to
    /// send it again with, under the next CSeq (RFC 3261 22.2).
    pub(super) fn answer_invite_challenge(
        &mut self,
        response: &Message,
        body: &[u8],
        cnonce: &str,
    ) -> Result<AuthorizationHeader, ChallengeError> {
        let uri = self.dialog.remote_target.to_string();
        let retried = Retried {
            method: "INVITE",
            uri: &uri,
            body,
            cnonce,
        };
        let header = answer_challenge(self.digest.as_mut(), response, retried)?;
        self.dialog.local_cseq += 1;
        Ok(header)
    }

    /// Where the next in-dialog request goes: the dialog's next hop when it is an address,
    /// else the INVITE's first hop.
    pub(super) fn next_hop(&self) -> Destination {
        self.dialog
            .next_hop(self.first_hop.transport)
            .unwrap_or(self.first_hop)
    }
}

/// A 2xx to an INVITE that the UAS core resends until its ACK comes (RFC 3261 13.3.1.4):
/// over UDP at T1, doubling up to T2, for 64*T1; over TCP/TLS only the deadline matters.
#[derive(Debug)]
pub(super) struct Unacked {
    destination: Destination,
    bytes: Vec<u8>,
    interval: Duration,
    give_up_at: Instant,
}

/// What to do when an unacknowledged 2xx's timer fires.
pub(super) enum UnackedStep {
    GiveUp,
    /// Send these bytes (UDP only) and come back at this time.
    Resend(Option<(Destination, Vec<u8>)>, Instant),
}

impl Unacked {
    fn new(destination: Destination, bytes: Vec<u8>, now: Instant, t1: Duration) -> Self {
        Unacked {
            destination,
            bytes,
            interval: t1,
            give_up_at: now + 64 * t1,
        }
    }

    fn first_resend(&self, now: Instant) -> Instant {
        now + self.interval
    }

    fn step(&mut self, now: Instant, t2: Duration) -> UnackedStep {
        if now >= self.give_up_at {
            return UnackedStep::GiveUp;
        }
        let resend = (!self.destination.transport.is_reliable())
            .then(|| (self.destination, self.bytes.clone()));
        self.interval = (self.interval * 2).min(t2);
        UnackedStep::Resend(resend, (now + self.interval).min(self.give_up_at))
    }
}
