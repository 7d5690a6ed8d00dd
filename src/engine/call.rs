//! INVITE sessions: placing and receiving calls, re-INVITE and UPDATE in both directions, hold,
//! CANCEL, BYE, the UAS's 2xx retransmission and the caller's ACK (RFC 3261 13-15, RFC 3311).

use core::time::Duration;
use std::time::Instant;

use super::invite_session::{InviteSession, Unacked, UnackedStep};
use super::recording::Gate;
use super::{
    CallId, CallState, DialRequest, EndKind, EndReason, Engine, Event, Party, RecordingStart,
    Timer, TxOwner,
};
use crate::media::srtp::SrtpPolicy;
use crate::sdp::{Direction, LocalCapabilities, Negotiated, OfferAnswer, SessionDescription};
use crate::sip::auth::{ChallengeError, DigestSession, Retried, answer_challenge};
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
    /// What the user is told when our BYE completes ("hung up" unless said otherwise).
    bye_text: Option<String>,
    /// Our part ended because the far end went to a transfer target.
    transferred: bool,
}

impl Call {
    fn new(
        role: Role,
        state: CallState,
        dialog: Dialog,
        first_hop: Destination,
        offer_answer: OfferAnswer,
        now: Instant,
    ) -> Call {
        Call {
            role,
            state,
            session: InviteSession::new(dialog, first_hop),
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
    pub(super) fn dial(&mut self, id: CallId, request: DialRequest) {
        let call_id = format!("{}@verbatim", self.rng.token(20));
        let local_tag = self.rng.token(10);
        let user = request
            .from
            .uri
            .user
            .clone()
            .unwrap_or_else(|| self.config.contact_user.clone());
        let mut local_uri = request.from.clone();
        local_uri.params.clear();
        let dialog = Dialog {
            call_id,
            local_tag,
            remote_tag: None,
            local_uri,
            remote_uri: NameAddr::new(request.target.clone()),
            local_cseq: 1,
            remote_cseq: None,
            remote_target: request.target.clone(),
            route_set: request
                .route
                .iter()
                .map(|r| format!("<{}>", r.clone().with_param("lr", None)))
                .collect(),
            local_contact: self.contact_for(request.destination.transport, &user),
            security: DialogSecurity::of(&request.target, request.destination.transport),
        };
        let srtp = self.srtp_policy_towards(request.destination);
        let offer_answer = self.new_offer_answer(
            request.media_port,
            *srtp.as_ref().unwrap_or(&SrtpPolicy::Off),
        );
        let mut call = Call::new(
            Role::Caller,
            CallState::Calling,
            dialog,
            request.destination,
            offer_answer,
            self.now,
        );
        call.session.digest = request.credentials.map(DigestSession::new);
        self.calls.insert(id, call);
        self.events.push_back(Event::CallState {
            call: id,
            state: CallState::Calling,
        });
        if let Err(reason) = srtp {
            self.end_call(id, None, &reason, Party::Local);
            return;
        }
        match request.record {
            Some(start) if start.request.mandatory => {
                // The INVITE waits until the recording is up (or the call is refused).
                self.plan_recording(id, start.recording, start.request, Some(Gate::Dial));
            }
            Some(start) => {
                self.pending_recordings.insert(id, *start);
                self.send_invite(id, None);
            }
            None => self.send_invite(id, None),
        }
    }

    /// Answer, recording the call: a mandatory recording is set up first and the 200 OK
    /// waits for it; an optional one starts with the media.
    pub(super) fn answer_recorded(
        &mut self,
        id: CallId,
        media_port: u16,
        record: Option<Box<RecordingStart>>,
    ) {
        match record {
            Some(start) if start.request.mandatory => {
                let incoming = self
                    .calls
                    .get(&id)
                    .is_some_and(|c| c.role == Role::Callee && c.state == CallState::Incoming);
                if incoming {
                    self.plan_recording(
                        id,
                        start.recording,
                        start.request,
                        Some(Gate::Answer { media_port }),
                    );
                }
            }
            Some(start) => {
                self.pending_recordings.insert(id, *start);
                self.answer(id, media_port);
            }
            None => self.answer(id, media_port),
        }
    }

    /// The SRTP policy for a call whose signalling goes through `hop`. SDES puts the keys in
    /// the SDP, so a hop anyone else can read gets no keys: SRTP is dropped where it is
    /// optional, and the call refused where it is mandatory.
    fn srtp_policy_towards(&self, hop: Destination) -> Result<SrtpPolicy, String> {
        match self.config.srtp {
            _ if hop.is_confidential() => Ok(self.config.srtp),
            SrtpPolicy::Mandatory => Err(format!(
                "SRTP is mandatory, but its keys would travel in the clear over {} to {}: \
                 use TLS (a sips: URI or transport tls)",
                hop.transport, hop.address
            )),
            _ => Ok(SrtpPolicy::Off),
        }
    }

    fn new_offer_answer(&mut self, media_port: u16, srtp: SrtpPolicy) -> OfferAnswer {
        let key = match srtp {
            SrtpPolicy::Off => None,
            _ => self.config.key_source.key_salt(),
        };
        let mut caps =
            LocalCapabilities::new(self.local_ip(), media_port, self.config.codecs.clone());
        caps.srtp = srtp;
        caps.srtp_key_salt = key;
        // RFC 4566 suggests an NTP timestamp for the session id; a random one serves the same
        // purpose (uniqueness) without a clock.
        let session_id = self.rng.next_u64() >> 2;
        OfferAnswer::new(caps, session_id, session_id)
    }

    /// Sends the initial INVITE (again, with credentials, after a challenge).
    pub(super) fn send_invite(
        &mut self,
        id: CallId,
        authorization: Option<(&'static str, String)>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let cseq = call.session.dialog.local_cseq;
        let mut invite = call.session.dialog.request_with_cseq(Method::Invite, cseq);
        invite.headers.push("Allow", super::ALLOW);
        let offer = match call.offer_answer.local_description() {
            Some(previous) if call.offer_answer.offer_pending() => previous.clone(),
            _ => call.offer_answer.create_offer(Direction::SendRecv),
        };
        invite.set_body("application/sdp", offer.to_string().into_bytes());
        if let Some((name, value)) = authorization {
            invite.headers.push(name, value);
        }
        let destination = call.session.first_hop;
        match self.start_client_tx(invite, destination, TxOwner::Invite(id)) {
            Some(key) => {
                if let Some(call) = self.calls.get_mut(&id) {
                    call.session.invite_key = Some(key);
                }
            }
            None => self.end_call(
                id,
                None,
                &format!("cannot send to {destination}"),
                Party::Local,
            ),
        }
    }

    pub(super) fn on_invite_response(&mut self, id: CallId, key: TxKey, response: Message) {
        let Some(status) = response.status() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            // The call is gone (e.g. cancelled) but a 2xx still came: ACK and end it.
            if (200..300).contains(&status) {
                self.ack_and_bye_orphan(&response);
            }
            return;
        };
        if call.session.invite_key.as_ref() != Some(&key) {
            return;
        }
        match status {
            100 => {}
            101..=199 => {
                call.provisional_received = true;
                if response.to_header().is_ok_and(|t| t.tag().is_some()) {
                    // A target that would leave TLS is not taken; the 2xx decides the call.
                    let _ = call.session.dialog.establish_as_uac(&response);
                }
                if call.cancel_when_possible {
                    self.send_cancel(id);
                } else if call.state == CallState::Calling {
                    call.state = CallState::Ringing;
                    self.events.push_back(Event::CallState {
                        call: id,
                        state: CallState::Ringing,
                    });
                }
            }
            200..=299 => self.on_invite_success(id, response),
            401 | 407 => self.retry_invite_with_credentials(id, status, &response),
            _ => {
                let cancelled = call.cancel_when_possible && status == 487;
                let text = if cancelled {
                    "cancelled".to_owned()
                } else {
                    format!(
                        "{status} {}",
                        response.reason().unwrap_or(reason_phrase(status))
                    )
                };
                let by = if cancelled {
                    Party::Local
                } else {
                    Party::Remote
                };
                self.end_call(id, Some(status), text.trim(), by);
            }
        }
    }

    fn on_invite_success(&mut self, id: CallId, response: Message) {
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.session.connected {
            // A retransmitted 2xx: our ACK was lost.
            if let Some((destination, bytes)) = call.session.ack.clone() {
                self.transmits.push_back((destination, bytes));
            }
            return;
        }
        let leaves_tls = call.session.dialog.establish_as_uac(&response).err();
        call.peer_allows_update = response.headers.has_token("Allow", "UPDATE");
        call.peer_record_aware = response.headers.has_token("Supported", "record-aware");
        call.session.connected = true;
        call.last_media = now;
        if let Some(digest) = call.session.digest.as_mut() {
            let realms: Vec<String> = digest.realms().map(str::to_owned).collect();
            for realm in realms {
                digest.accepted(&realm);
            }
        }
        let cseq = response
            .cseq()
            .map(|c| c.number)
            .unwrap_or(call.session.dialog.local_cseq);
        let ack = call.session.dialog.request_with_cseq(Method::Ack, cseq);
        let negotiated = match SessionDescription::parse(&String::from_utf8_lossy(&response.body)) {
            Ok(answer) if !response.body.is_empty() => call
                .offer_answer
                .receive_answer(&answer)
                .map_err(|e| e.to_string()),
            _ => Err("the answer carried no usable SDP".to_owned()),
        };
        let destination = self.next_hop(id);
        self.send_ack(id, ack, destination, false);
        if let Some(error) = leaves_tls {
            self.end_call_leaving_tls(id, &error);
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.cancel_when_possible {
            // The user hung up while the 2xx was on its way (RFC 3261 15: ACK, then BYE).
            self.send_bye(id);
            return;
        }
        match negotiated {
            Ok(negotiated) => {
                self.apply_negotiated(id, negotiated);
                self.schedule_media_check(id);
            }
            Err(reason) => {
                self.send_bye(id);
                self.end_call(
                    id,
                    Some(488),
                    &format!("media refused: {reason}"),
                    Party::Remote,
                );
            }
        }
    }

    /// Applies a completed offer/answer: the peer's hold state, the call state, and the media
    /// the driver should now use.
    fn apply_negotiated(&mut self, id: CallId, negotiated: Negotiated) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.remote_hold = negotiated.remote_on_hold;
        call.state = CallState::Connected {
            local_hold: call.local_hold,
            remote_hold: call.remote_hold,
        };
        let state = call.state;
        self.events.push_back(Event::CallState { call: id, state });
        self.on_media_negotiated(id, negotiated);
    }

    fn send_ack(&mut self, id: CallId, mut ack: Message, destination: Destination, reinvite: bool) {
        let Some(via) = self.via_for(destination.transport) else {
            return;
        };
        ack.headers.insert_first("Via", via);
        ack.headers
            .push("User-Agent", self.config.user_agent.clone());
        let bytes = ack.to_bytes();
        self.transmits.push_back((destination, bytes.clone()));
        if let Some(call) = self.calls.get_mut(&id) {
            if reinvite {
                call.session.reinvite_ack = Some((destination, bytes));
            } else {
                call.session.ack = Some((destination, bytes));
            }
        }
    }

    fn retry_invite_with_credentials(&mut self, id: CallId, status: u16, response: &Message) {
        let cnonce = self.rng.token(16);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let reason = format!(
            "{status} {}",
            response.reason().unwrap_or(reason_phrase(status))
        );
        let uri = call.session.dialog.remote_target.to_string();
        let body = call
            .offer_answer
            .local_description()
            .map(|d| d.to_string().into_bytes())
            .unwrap_or_default();
        let retried = Retried {
            method: "INVITE",
            uri: &uri,
            body: &body,
            cnonce: &cnonce,
        };
        match answer_challenge(call.session.digest.as_mut(), response, retried) {
            Ok(auth) => {
                call.session.dialog.local_cseq += 1;
                self.send_invite(id, Some((auth.name(), auth.value())));
            }
            Err(error) => {
                let why = match error {
                    ChallengeError::NoCredentials => "no password configured".to_owned(),
                    other => other.to_string(),
                };
                self.end_call(id, Some(status), &format!("{reason}: {why}"), Party::Remote);
            }
        }
    }

    pub(super) fn on_invite_transport_error(&mut self, id: CallId, key: TxKey, reason: String) {
        let current = self
            .calls
            .get(&id)
            .is_some_and(|c| c.session.invite_key.as_ref() == Some(&key) && !c.session.connected);
        if current {
            self.end_call(id, Some(503), &reason, Party::Local);
        }
    }

    pub(super) fn on_invite_timeout(&mut self, id: CallId, key: TxKey) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.session.invite_key.as_ref() == Some(&key) && !call.session.connected {
            let text = if call.provisional_received {
                "no final answer (timed out while ringing)"
            } else {
                "no answer from the other side (timed out)"
            };
            self.end_call(id, Some(408), text, Party::Remote);
        }
    }

    fn send_cancel(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.cancel_when_possible = true;
        call.state = CallState::Terminating;
        let Some(key) = call.session.invite_key.clone() else {
            return;
        };
        let Some(invite) = self.transactions.request(&key).cloned() else {
            return;
        };
        // RFC 3261 9.1: same Request-URI, Call-ID, From, To, CSeq number and top Via as the
        // INVITE, so the server can match it.
        let Some(uri) = invite.request_uri().cloned() else {
            return;
        };
        let mut cancel = Message::request(Method::Cancel, uri);
        if let Some(via) = invite.headers.list("Via").first() {
            cancel.headers.push("Via", *via);
        }
        for name in ["Max-Forwards", "From", "To", "Call-ID"] {
            if let Some(v) = invite.headers.get(name) {
                cancel.headers.push(name, v);
            }
        }
        let number = invite.cseq().map(|c| c.number).unwrap_or(1);
        cancel.headers.push("CSeq", format!("{number} CANCEL"));
        for route in invite.headers.all("Route") {
            cancel.headers.push("Route", route);
        }
        let destination = call.session.first_hop;
        if let Ok(key) = self
            .transactions
            .send_request(self.now, cancel, destination)
        {
            self.tx_owner.insert(key, TxOwner::Cancel(id));
        }
        self.pump_transmits();
    }

    pub(super) fn hangup(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let gated = call.role == Role::Caller
            && call.session.invite_key.is_none()
            && !call.session.connected;
        match (call.role, call.session.connected, call.state) {
            (_, _, CallState::Terminating) => {}
            (Role::Caller, false, _) if gated => {
                // Still waiting for its mandatory recording: the INVITE never left.
                self.end_call(id, None, "hung up before the call was placed", Party::Local);
            }
            (Role::Caller, false, _) => {
                if call.provisional_received {
                    self.send_cancel(id);
                } else {
                    // RFC 3261 9.1: no CANCEL before a provisional response; send it then.
                    call.cancel_when_possible = true;
                    call.state = CallState::Terminating;
                }
                self.events.push_back(Event::CallState {
                    call: id,
                    state: CallState::Terminating,
                });
            }
            (Role::Callee, false, _) => self.reject(id, 603),
            (_, true, _) => self.send_bye(id),
        }
    }

    pub(super) fn send_bye(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.state = CallState::Terminating;
        call.session.unacked_2xx = None;
        let bye = call.session.dialog.request(Method::Bye);
        self.cancel_timer(Timer::Retransmit2xx(id));
        self.cancel_timer(Timer::MediaCheck(id));
        self.events.push_back(Event::CallState {
            call: id,
            state: CallState::Terminating,
        });
        let destination = self.next_hop(id);
        if self
            .start_client_tx(bye, destination, TxOwner::Bye(id))
            .is_none()
        {
            self.finish_bye(id);
        }
    }

    pub(super) fn finish_bye(&mut self, id: CallId) {
        let text = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.bye_text.take())
            .unwrap_or_else(|| "hung up".to_owned());
        self.end_call(id, None, &text, Party::Local);
    }

    /// The far end asked to move the call off TLS: the call ends, its BYE still over TLS.
    fn end_call_leaving_tls(&mut self, id: CallId, error: &LeavesTls) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.bye_text = Some(format!(
                "the far end would move the call off TLS ({}), so it was ended",
                error.uri
            ));
        }
        self.send_bye(id);
    }

    /// We refresh the call's session (RFC 4028): a re-INVITE (or UPDATE) with the session as
    /// it is, then the next one half an interval later.
    pub(super) fn refresh_call_session(&mut self, id: CallId) {
        let Some(timer) = self.calls.get(&id).and_then(|c| c.session.timer) else {
            return;
        };
        self.send_reinvite(id);
        self.set_timer(self.now + timer.refresh_after(), Timer::SessionRefresh(id));
    }

    /// The far end refreshes the session and stopped doing so: it is gone (RFC 4028 10).
    pub(super) fn call_session_expired(&mut self, id: CallId) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.bye_text = Some(
                "the far end stopped refreshing the session (session timer expired)".to_owned(),
            );
            self.send_bye(id);
        }
    }

    /// The far end took the call over to the transfer target: our part ends.
    pub(super) fn hang_up_transferred(&mut self, id: CallId) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.bye_text = Some("transferred".to_owned());
            call.transferred = true;
        }
        self.send_bye(id);
    }

    pub(super) fn call_is_connected(&self, id: CallId) -> bool {
        self.calls
            .get(&id)
            .is_some_and(|c| matches!(c.state, CallState::Connected { .. }))
    }

    /// The call's state while it exists.
    pub(super) fn call_progress(&self, id: CallId) -> Option<CallState> {
        self.calls.get(&id).map(|c| c.state)
    }

    pub(super) fn call_dialog_mut(&mut self, id: CallId) -> Option<&mut Dialog> {
        self.calls.get_mut(&id).map(|c| &mut c.session.dialog)
    }

    pub(super) fn call_local_tag(&self, id: CallId) -> Option<String> {
        self.calls
            .get(&id)
            .map(|c| c.session.dialog.local_tag.clone())
    }

    pub(super) fn reject(&mut self, id: CallId, status: u16) {
        self.reject_because(id, status, reason_phrase(status), reason_phrase(status));
    }

    /// Refuses an incoming call with `status` and `phrase` on the wire; `text` tells the user.
    pub(super) fn reject_because(&mut self, id: CallId, status: u16, phrase: &str, text: &str) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.role != Role::Callee || call.session.connected {
            return;
        }
        let Some(key) = call.server_key.clone() else {
            return;
        };
        let tag = call.session.dialog.local_tag.clone();
        if let Some(request) = self.transactions.request(&key).cloned() {
            let mut response = request.response(status, phrase, Some(&tag));
            self.decorate_response(&mut response);
            self.send_response(&key, response);
        }
        self.end_call(id, Some(status), text, Party::Local);
    }

    pub(super) fn end_call(&mut self, id: CallId, status: Option<u16>, text: &str, by: Party) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.pending_recordings.remove(&id);
        self.forget_transfers(id);
        self.decline_recorder(id);
        self.stop_recording(id);
        self.cancel_timer(Timer::RecordingDeadline(id));
        self.end_media(id);
        for timer in [
            Timer::Retransmit2xx(id),
            Timer::GlareRetry(id),
            Timer::MediaCheck(id),
            Timer::SessionRefresh(id),
            Timer::SessionExpiry(id),
        ] {
            self.cancel_timer(timer);
        }
        self.events.push_back(Event::CallEnded {
            call: id,
            reason: EndReason {
                status,
                text: text.to_owned(),
                by,
                was_connected: call.session.connected,
                kind: if call.transferred {
                    EndKind::Transferred
                } else {
                    EndKind::Ended
                },
            },
        });
        self.check_shutdown_complete();
    }

    /// A 2xx for a call we no longer have: complete the handshake and end the dialog so the
    /// far end is not left with a half-open call (RFC 3261 13.2.2.4).
    fn ack_and_bye_orphan(&mut self, response: &Message) {
        let (Ok(from), Ok(to), Some(call_id)) = (
            response.from_header(),
            response.to_header(),
            response.call_id(),
        ) else {
            return;
        };
        let Some(local_tag) = from.tag().map(str::to_owned) else {
            return;
        };
        // Our own top Via says how the INVITE went out; a TLS one keeps the orphan on TLS.
        let sent_over = response
            .top_via()
            .ok()
            .and_then(|via| crate::sip::Transport::from_token(&via.transport))
            .unwrap_or(crate::sip::Transport::Udp);
        let mut dialog = Dialog {
            call_id: call_id.to_owned(),
            local_tag,
            remote_tag: to.tag().map(str::to_owned),
            local_uri: NameAddr::new(from.uri.clone()),
            remote_uri: NameAddr::new(to.uri.clone()),
            local_cseq: response.cseq().map(|c| c.number).unwrap_or(1),
            remote_cseq: None,
            remote_target: to.uri.clone(),
            route_set: Vec::new(),
            local_contact: String::new(),
            security: DialogSecurity::of(&to.uri, sent_over),
        };
        // A target that would leave TLS is not taken: the ACK and BYE go to the To URI.
        let _ = dialog.establish_as_uac(response);
        let Some(destination) = dialog.next_hop(sent_over) else {
            return;
        };
        let mut ack = dialog.request_with_cseq(Method::Ack, dialog.local_cseq);
        if let Some(via) = self.via_for(destination.transport) {
            ack.headers.insert_first("Via", via);
            self.transmits.push_back((destination, ack.to_bytes()));
        }
        let bye = dialog.request(Method::Bye);
        self.start_client_tx(bye, destination, TxOwner::Stateless);
    }

    /// The next hop for an in-dialog request.
    pub(super) fn next_hop(&self, id: CallId) -> Destination {
        match self.calls.get(&id) {
            // A call that came in over TCP/TLS keeps using that connection: the caller's
            // Contact is often not reachable (NAT, or no listening socket for TLS at all).
            Some(call)
                if call.role == Role::Callee && call.session.first_hop.transport.is_reliable() =>
            {
                call.session.first_hop
            }
            Some(call) => call.session.next_hop(),
            None => Destination::new(
                crate::sip::Transport::Udp,
                core::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
            ),
        }
    }

    /// The far end said `Supported: record-aware`: it is told of recording in SDP and shows
    /// it to its user.
    pub(super) fn peer_is_record_aware(&self, id: CallId) -> bool {
        self.calls.get(&id).is_some_and(|c| c.peer_record_aware)
    }

    /// Incoming calls waiting for the user's answer.
    pub(super) fn ringing_calls(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.state == CallState::Incoming)
            .count()
    }

    /// Whether `call_id` is one of our calls' dialogs.
    pub(super) fn is_call_dialog(&self, call_id: &str) -> bool {
        self.calls
            .values()
            .any(|c| c.session.dialog.call_id == call_id)
    }

    pub(super) fn on_invite(&mut self, key: TxKey, request: Message, source: Destination) {
        let Ok(to) = request.to_header() else {
            return;
        };
        if to.tag().is_some() {
            self.on_reinvite(key, request);
            return;
        }
        if self.shutting_down {
            self.respond(&key, &request, 503, None);
            return;
        }
        if super::recording::is_recorder_invite(&request) {
            self.on_recorder_invite(key, request, source);
            return;
        }
        let Ok(from) = request.from_header() else {
            return;
        };
        let call_id = request.call_id().unwrap_or("").to_owned();
        // A second copy of an INVITE that forked back to us (RFC 3261 8.2.2.2).
        let merged = self.calls.values().any(|c| {
            c.session.dialog.call_id == call_id
                && c.session.dialog.remote_tag.as_deref() == from.tag()
                && c.server_key.as_ref() != Some(&key)
        });
        if merged {
            self.respond(&key, &request, 482, None);
            return;
        }
        // We can only describe our media in SDP; a caller that accepts nothing of the kind
        // cannot get an answer from us (RFC 3261 21.4.7).
        let accept = request.headers.list("Accept");
        let takes_sdp = accept.is_empty()
            || accept.iter().any(|a| {
                let t = a
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                t == "application/sdp" || t == "application/*" || t == "*/*"
            });
        if !takes_sdp {
            self.respond(&key, &request, 406, None);
            return;
        }
        if session_timer::as_uas(&request) == PeerTimer::TooSmall {
            let tag = self.rng.token(8);
            self.refuse_session_too_small(&key, &request, &tag);
            return;
        }
        let srtp = match self.srtp_policy_towards(source) {
            Ok(srtp) => srtp,
            Err(reason) => {
                tracing::warn!(%reason, "incoming call refused");
                let tag = self.rng.token(8);
                let response = request.response(488, super::SDES_NEEDS_TLS_PHRASE, Some(&tag));
                self.send_response(&key, response);
                return;
            }
        };
        let remote_offer = if request.body.is_empty() {
            None
        } else {
            if request.content_type().as_deref() != Some("application/sdp") {
                let tag = self.rng.token(8);
                let mut response = request.response(415, reason_phrase(415), Some(&tag));
                response.headers.push("Accept", super::ACCEPT);
                self.send_response(&key, response);
                return;
            }
            match SessionDescription::parse(&String::from_utf8_lossy(&request.body)) {
                Ok(offer) => {
                    // Refuse at once what could never be answered, rather than ring the user.
                    let mut probe = self.new_offer_answer(9, srtp);
                    if let Err(error) = probe.receive_offer(&offer, Direction::SendRecv) {
                        let tag = self.rng.token(8);
                        let response =
                            request.response(error.sip_status(), &error.to_string(), Some(&tag));
                        self.send_response(&key, response);
                        return;
                    }
                    Some(offer)
                }
                Err(error) => {
                    let tag = self.rng.token(8);
                    let response = request.response(400, &format!("Bad SDP ({error})"), Some(&tag));
                    self.send_response(&key, response);
                    return;
                }
            }
        };
        let local_tag = self.rng.token(10);
        let user = to
            .uri
            .user
            .clone()
            .unwrap_or_else(|| self.config.contact_user.clone());
        let contact = self.contact_for(source.transport, &user);
        let mut dialog = match Dialog::from_request_as_uas(
            &request,
            local_tag.clone(),
            contact,
            source.transport,
        ) {
            Ok(dialog) => dialog,
            Err(error) => {
                let phrase = match error {
                    UasDialogError::Malformed => "Missing From, To or Call-ID",
                    UasDialogError::LeavesTls(_) => LEAVES_TLS_PHRASE,
                };
                let response = request.response(400, phrase, Some(&local_tag));
                self.send_response(&key, response);
                return;
            }
        };
        // Identities are shown and recorded without their header parameters.
        dialog.local_uri.params.clear();
        dialog.remote_uri.params.clear();
        let id = CallId::new();
        let offer_answer = self.new_offer_answer(9, srtp);
        let mut call = Call::new(
            Role::Callee,
            CallState::Incoming,
            dialog,
            response_destination(&request, source),
            offer_answer,
            self.now,
        );
        call.server_key = Some(key.clone());
        call.remote_offer = remote_offer;
        let contact = call.session.dialog.local_contact.clone();
        call.peer_allows_update = request.headers.has_token("Allow", "UPDATE");
        call.peer_record_aware = request.headers.has_token("Supported", "record-aware");
        self.calls.insert(id, call);
        let mut ringing = request.response(180, "Ringing", Some(&local_tag));
        ringing.headers.push("Contact", contact);
        self.send_response(&key, ringing);
        self.events.push_back(Event::IncomingCall {
            call: id,
            from: from.to_string(),
            to: to.to_string(),
        });
        self.events.push_back(Event::CallState {
            call: id,
            state: CallState::Incoming,
        });
    }

    pub(super) fn answer(&mut self, id: CallId, media_port: u16) {
        let Some(hop) = self.calls.get(&id).map(|c| c.session.first_hop) else {
            return;
        };
        // The caller's hop was judged when its INVITE came; a refusal then never rang.
        let srtp = self.srtp_policy_towards(hop).unwrap_or(SrtpPolicy::Off);
        let mut offer_answer = self.new_offer_answer(media_port, srtp);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.role != Role::Callee || call.session.connected || call.state != CallState::Incoming
        {
            return;
        }
        let Some(key) = call.server_key.clone() else {
            return;
        };
        let Some(request) = self.transactions.request(&key).cloned() else {
            self.end_call(
                id,
                None,
                "the caller gave up before the answer",
                Party::Remote,
            );
            return;
        };
        let (sdp, negotiated) = match &call.remote_offer {
            Some(offer) => match offer_answer.receive_offer(offer, Direction::SendRecv) {
                Ok(answer) => (answer, offer_answer.negotiated().cloned()),
                Err(error) => {
                    let tag = call.session.dialog.local_tag.clone();
                    let response =
                        request.response(error.sip_status(), &error.to_string(), Some(&tag));
                    self.send_response(&key, response);
                    self.end_call(id, Some(488), &error.to_string(), Party::Local);
                    return;
                }
            },
            None => {
                call.answer_in_ack = true;
                (offer_answer.create_offer(Direction::SendRecv), None)
            }
        };
        call.offer_answer = offer_answer;
        call.session.connected = true;
        call.last_media = self.now;
        call.state = CallState::Connected {
            local_hold: false,
            remote_hold: negotiated.as_ref().is_some_and(|n| n.remote_on_hold),
        };
        let tag = call.session.dialog.local_tag.clone();
        let contact = call.session.dialog.local_contact.clone();
        let destination = call.session.first_hop;
        let mut ok = request.response(200, "OK", Some(&tag));
        ok.headers.push("Contact", contact);
        ok.headers.push("Supported", "record-aware");
        // An interval too small was refused before the phone rang.
        let asked_timer = session_timer::as_uas(&request);
        if let Some(call) = self.calls.get_mut(&id) {
            let change = call.session.agree_timer(asked_timer, &mut ok);
            self.arm_session_timer(change, Timer::SessionRefresh(id), Timer::SessionExpiry(id));
        }
        ok.set_body("application/sdp", sdp.to_string().into_bytes());
        self.decorate_response(&mut ok);
        let bytes = ok.to_bytes();
        self.send_response(&key, ok);
        self.track_unacked_2xx(id, destination, bytes);
        let state = self.calls.get(&id).map(|c| c.state);
        if let Some(state) = state {
            self.events.push_back(Event::CallState { call: id, state });
        }
        if let Some(negotiated) = negotiated {
            self.on_media_negotiated(id, negotiated);
        }
        self.schedule_media_check(id);
    }

    /// RFC 3261 13.3.1.4: the UAS core resends its 2xx until the ACK comes.
    fn track_unacked_2xx(&mut self, id: CallId, destination: Destination, bytes: Vec<u8>) {
        let t1 = self.config.timers.t1;
        let now = self.now;
        let unacked = Unacked::new(destination, bytes, now, t1);
        let at = unacked.first_resend(now);
        if let Some(call) = self.calls.get_mut(&id) {
            call.session.unacked_2xx = Some(unacked);
        }
        self.cancel_timer(Timer::Retransmit2xx(id));
        self.set_timer(at, Timer::Retransmit2xx(id));
    }

    pub(super) fn retransmit_2xx(&mut self, id: CallId) {
        let now = self.now;
        let t2 = self.config.timers.t2;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(unacked) = call.session.unacked_2xx.as_mut() else {
            return;
        };
        match unacked.step(now, t2) {
            UnackedStep::GiveUp => {
                call.session.unacked_2xx = None;
                self.send_bye(id);
                self.end_call(
                    id,
                    Some(408),
                    "the other side never acknowledged the answer",
                    Party::Remote,
                );
            }
            UnackedStep::Resend(resend, at) => {
                self.transmits.extend(resend);
                self.set_timer(at, Timer::Retransmit2xx(id));
            }
        }
    }

    pub(super) fn on_ack(&mut self, request: Message, _source: Destination) {
        if let Some(call) = self.recording_for_dialog(&request) {
            self.on_recorder_ack(call, &request);
            return;
        }
        let Some(id) = self.find_dialog(&request) else {
            return;
        };
        self.cancel_timer(Timer::Retransmit2xx(id));
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.session.unacked_2xx = None;
        if !call.answer_in_ack {
            return;
        }
        call.answer_in_ack = false;
        let answer = SessionDescription::parse(&String::from_utf8_lossy(&request.body));
        match answer.map_err(|e| e.to_string()).and_then(|a| {
            call.offer_answer
                .receive_answer(&a)
                .map_err(|e| e.to_string())
        }) {
            Ok(negotiated) => {
                self.apply_negotiated(id, negotiated);
            }
            Err(reason) => {
                self.send_bye(id);
                self.end_call(
                    id,
                    Some(488),
                    &format!("the ACK carried no usable answer: {reason}"),
                    Party::Remote,
                );
            }
        }
    }

    /// A request in the call asserts who the far end is now (a transfer done by a proxy, a
    /// network that learnt the caller's name): the recording's metadata follows.
    fn note_asserted_identity(&mut self, id: CallId, request: &Message) {
        let Some(value) = request.headers.get("P-Asserted-Identity") else {
            return;
        };
        // It may list a sip: and a tel: identity; the first one names the party.
        let asserted = NameAddr::parse(value).ok().or_else(|| {
            value
                .split(',')
                .next()
                .and_then(|first| NameAddr::parse(first.trim()).ok())
        });
        let Some(mut asserted) = asserted else {
            return;
        };
        asserted.params.clear();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.remote_identity() == asserted {
            return;
        }
        call.asserted_remote = Some(asserted.clone());
        self.recording_identity_changed(id, asserted);
    }

    /// The call whose dialog an in-dialog request belongs to.
    pub(super) fn find_dialog(&self, request: &Message) -> Option<CallId> {
        self.calls
            .iter()
            .find(|(_, c)| c.session.dialog.matches_request(request))
            .map(|(id, _)| *id)
    }

    fn on_reinvite(&mut self, key: TxKey, request: Message) {
        if let Some(call) = self.recording_for_dialog(&request) {
            self.on_recorder_reinvite(call, key, request);
            return;
        }
        if self.closing_recording_for_dialog(&request) {
            // Our closing re-INVITE is in flight (RFC 3261 14.2).
            self.respond(&key, &request, 491, None);
            return;
        }
        let Some(id) = self.find_dialog(&request) else {
            self.respond(&key, &request, 481, None);
            return;
        };
        self.note_asserted_identity(id, &request);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let tag = call.session.dialog.local_tag.clone();
        let cseq = request.cseq().map(|c| c.number).unwrap_or(0);
        if !call.session.dialog.accept_remote_cseq(cseq) {
            self.respond(&key, &request, 500, Some(&tag));
            return;
        }
        if call.session.reinvite_key.is_some()
            || call.offer_answer.offer_pending()
            || !call.session.connected
        {
            // Glare: both sides offered at once (RFC 3261 14.2).
            self.respond(&key, &request, 491, Some(&tag));
            return;
        }
        let asked_timer = session_timer::as_uas(&request);
        if asked_timer == PeerTimer::TooSmall {
            self.refuse_session_too_small(&key, &request, &tag);
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.session.dialog.refresh_target(&request).is_err() {
            // Taking the new target would send the call's next requests in the clear.
            let response = request.response(400, LEAVES_TLS_PHRASE, Some(&tag));
            self.send_response(&key, response);
            return;
        }
        let wish = if call.local_hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let (sdp, negotiated) = if request.body.is_empty() {
            // Offerless re-INVITE: we offer in the 2xx and the ACK answers.
            call.answer_in_ack = true;
            let direction = call.offer_answer.offer_direction(call.local_hold);
            (call.offer_answer.create_offer(direction), None)
        } else {
            let offer = match SessionDescription::parse(&String::from_utf8_lossy(&request.body)) {
                Ok(o) => o,
                Err(error) => {
                    let response = request.response(400, &format!("Bad SDP ({error})"), Some(&tag));
                    self.send_response(&key, response);
                    return;
                }
            };
            match call.offer_answer.receive_offer(&offer, wish) {
                Ok(answer) => (answer, call.offer_answer.negotiated().cloned()),
                Err(error) => {
                    let response =
                        request.response(error.sip_status(), &error.to_string(), Some(&tag));
                    self.send_response(&key, response);
                    return;
                }
            }
        };
        if let Some(n) = &negotiated {
            call.remote_hold = n.remote_on_hold;
        }
        call.state = CallState::Connected {
            local_hold: call.local_hold,
            remote_hold: call.remote_hold,
        };
        let state = call.state;
        let contact = call.session.dialog.local_contact.clone();
        let destination = call.session.first_hop;
        let mut ok = request.response(200, "OK", Some(&tag));
        ok.headers.push("Contact", contact);
        let change = call.session.agree_timer(asked_timer, &mut ok);
        self.arm_session_timer(change, Timer::SessionRefresh(id), Timer::SessionExpiry(id));
        ok.set_body("application/sdp", sdp.to_string().into_bytes());
        self.decorate_response(&mut ok);
        let bytes = ok.to_bytes();
        self.send_response(&key, ok);
        let reply_to = self
            .transactions
            .request(&key)
            .map(|_| destination)
            .unwrap_or(destination);
        self.track_unacked_2xx(id, reply_to, bytes);
        self.events.push_back(Event::CallState { call: id, state });
        if let Some(negotiated) = negotiated {
            self.on_media_negotiated(id, negotiated);
        }
    }

    pub(super) fn on_update(&mut self, key: TxKey, request: Message) {
        if let Some(call) = self.recording_for_dialog(&request) {
            self.on_recorder_update(call, key, request);
            return;
        }
        let Some(id) = self.find_dialog(&request) else {
            self.respond(&key, &request, 481, None);
            return;
        };
        self.note_asserted_identity(id, &request);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let tag = call.session.dialog.local_tag.clone();
        let cseq = request.cseq().map(|c| c.number).unwrap_or(0);
        if !call.session.dialog.accept_remote_cseq(cseq) {
            self.respond(&key, &request, 500, Some(&tag));
            return;
        }
        if call.session.dialog.refresh_target(&request).is_err() {
            // Taking the new target would send the call's next requests in the clear.
            let response = request.response(400, LEAVES_TLS_PHRASE, Some(&tag));
            self.send_response(&key, response);
            return;
        }
        let asked_timer = session_timer::as_uas(&request);
        if asked_timer == PeerTimer::TooSmall {
            self.refuse_session_too_small(&key, &request, &tag);
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let mut ok = request.response(200, "OK", Some(&tag));
        ok.headers
            .push("Contact", call.session.dialog.local_contact.clone());
        let mut negotiated = None;
        if !request.body.is_empty() {
            if call.offer_answer.offer_pending() {
                self.respond(&key, &request, 491, Some(&tag));
                return;
            }
            let wish = if call.local_hold {
                Direction::SendOnly
            } else {
                Direction::SendRecv
            };
            let answer = SessionDescription::parse(&String::from_utf8_lossy(&request.body))
                .map_err(|e| (400, format!("Bad SDP ({e})")))
                .and_then(|offer| {
                    call.offer_answer
                        .receive_offer(&offer, wish)
                        .map_err(|e| (e.sip_status(), e.to_string()))
                });
            match answer {
                Ok(answer) => {
                    ok.set_body("application/sdp", answer.to_string().into_bytes());
                    negotiated = call.offer_answer.negotiated().cloned();
                }
                Err((status, reason)) => {
                    let response = request.response(status, &reason, Some(&tag));
                    self.send_response(&key, response);
                    return;
                }
            }
        }
        if let Some(n) = &negotiated {
            call.remote_hold = n.remote_on_hold;
            call.state = CallState::Connected {
                local_hold: call.local_hold,
                remote_hold: call.remote_hold,
            };
        }
        let state = call.state;
        let change = call.session.agree_timer(asked_timer, &mut ok);
        self.arm_session_timer(change, Timer::SessionRefresh(id), Timer::SessionExpiry(id));
        self.send_response(&key, ok);
        if let Some(negotiated) = negotiated {
            self.events.push_back(Event::CallState { call: id, state });
            self.on_media_negotiated(id, negotiated);
        }
    }

    pub(super) fn on_bye(&mut self, key: TxKey, request: Message) {
        if let Some(call) = self.recording_for_dialog(&request) {
            self.respond(&key, &request, 200, None);
            self.recorder_hung_up(call, super::recording::reason_text(&request));
            return;
        }
        if self.closing_recording_for_dialog(&request) {
            self.respond(&key, &request, 200, None);
            self.closing_recording_ended(&request);
            return;
        }
        let Some(id) = self.find_dialog(&request) else {
            self.respond(&key, &request, 481, None);
            return;
        };
        let tag = self
            .calls
            .get(&id)
            .map(|c| c.session.dialog.local_tag.clone())
            .unwrap_or_default();
        self.respond(&key, &request, 200, Some(&tag));
        // A BYE before our 2xx was acknowledged still ends the call; answer the INVITE if it
        // is somehow still pending.
        if let Some(server_key) = self.calls.get(&id).and_then(|c| {
            (!c.session.connected)
                .then(|| c.server_key.clone())
                .flatten()
        }) && let Some(invite) = self.transactions.request(&server_key).cloned()
        {
            self.respond(&server_key, &invite, 487, Some(&tag));
        }
        self.end_call(id, None, "the other side hung up", Party::Remote);
    }

    pub(super) fn on_cancel(&mut self, key: TxKey, request: Message) {
        let Some(invite_key) = self.transactions.invite_for_cancel(&key) else {
            self.respond(&key, &request, 481, None);
            return;
        };
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.server_key.as_ref() == Some(&invite_key))
            .map(|(id, c)| (*id, c.session.dialog.local_tag.clone(), c.session.connected));
        let tag = found.as_ref().map(|(_, t, _)| t.clone());
        self.respond(&key, &request, 200, tag.as_deref());
        let Some((id, tag, connected)) = found else {
            return;
        };
        if connected {
            return; // too late: the 2xx already went out, the caller will BYE
        }
        if let Some(invite) = self.transactions.request(&invite_key).cloned() {
            self.respond(&invite_key, &invite, 487, Some(&tag));
        }
        self.end_call(
            id,
            Some(487),
            "the caller hung up before the answer",
            Party::Remote,
        );
    }

    pub(super) fn respond_in_dialog_or_481(&mut self, key: TxKey, request: Message) {
        match self.find_dialog(&request) {
            Some(id) => {
                let tag = self
                    .calls
                    .get(&id)
                    .map(|c| c.session.dialog.local_tag.clone());
                self.respond(&key, &request, 200, tag.as_deref());
            }
            None => self.respond(&key, &request, 481, None),
        }
    }

    pub(super) fn set_hold(&mut self, id: CallId, hold: bool) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if !call.session.connected || call.local_hold == hold {
            return;
        }
        call.local_hold = hold;
        self.media_hold_changed(id, hold);
        self.send_reinvite(id);
    }

    pub(super) fn send_reinvite(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.session.reinvite_key.is_some() {
            call.reinvite_queued = true;
            return;
        }
        if !call.session.connected || call.state == CallState::Terminating {
            return;
        }
        let direction = call.offer_answer.offer_direction(call.local_hold);
        let offer = call.offer_answer.create_offer(direction);
        // UPDATE (RFC 3311) changes the session without a three-way handshake; use it when
        // configured and the peer said it understands it.
        let (method, owner) = if self.config.modify_with_update && call.peer_allows_update {
            (Method::Update, TxOwner::Update(id))
        } else {
            (Method::Invite, TxOwner::ReInvite(id))
        };
        let mut request = call.session.dialog.request(method);
        request.headers.push("Allow", super::ALLOW);
        call.session.stamp_timer(&mut request);
        request.set_body("application/sdp", offer.to_string().into_bytes());
        let destination = self.next_hop(id);
        let key = self.start_client_tx(request, destination, owner);
        if let Some(call) = self.calls.get_mut(&id) {
            call.session.reinvite_key = key;
        }
    }

    /// The answer to our re-INVITE or UPDATE (`with_ack` for the INVITE).
    pub(super) fn on_reinvite_response(&mut self, id: CallId, response: Message, with_ack: bool) {
        let Some(status) = response.status() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if status < 200 {
            return;
        }
        if (200..300).contains(&status) && call.session.reinvite_key.is_none() && with_ack {
            if let Some((destination, bytes)) = call.session.reinvite_ack.clone() {
                self.transmits.push_back((destination, bytes));
            }
            return;
        }
        call.session.reinvite_key = None;
        if std::mem::take(&mut call.reinvite_queued) && status != 491 {
            let at = self.now;
            self.set_timer(at, Timer::GlareRetry(id));
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match status {
            200..=299 => {
                let leaves_tls = call.session.dialog.refresh_target(&response).err();
                let cseq = response
                    .cseq()
                    .map(|c| c.number)
                    .unwrap_or(call.session.dialog.local_cseq);
                let mut ack = call.session.dialog.request_with_cseq(Method::Ack, cseq);
                let sdp = SessionDescription::parse(&String::from_utf8_lossy(&response.body))
                    .map_err(|e| e.to_string());
                let result = if std::mem::take(&mut call.reinvite_offerless) {
                    // We asked for an offer: it is in the 2xx, our answer goes in the ACK.
                    let wish = if call.local_hold {
                        Direction::SendOnly
                    } else {
                        Direction::SendRecv
                    };
                    sdp.and_then(|offer| {
                        call.offer_answer
                            .receive_offer(&offer, wish)
                            .map_err(|e| e.to_string())
                    })
                    .and_then(|answer| {
                        ack.set_body("application/sdp", answer.to_string().into_bytes());
                        call.offer_answer
                            .negotiated()
                            .cloned()
                            .ok_or_else(|| "no media agreed".to_owned())
                    })
                } else {
                    sdp.and_then(|a| {
                        call.offer_answer
                            .receive_answer(&a)
                            .map_err(|e| e.to_string())
                    })
                };
                if with_ack {
                    let destination = self.next_hop(id);
                    self.send_ack(id, ack, destination, true);
                }
                if let Some(error) = leaves_tls {
                    self.end_call_leaving_tls(id, &error);
                    return;
                }
                match result {
                    Ok(negotiated) => {
                        self.apply_negotiated(id, negotiated);
                    }
                    Err(reason) => {
                        tracing::warn!(%reason, "re-INVITE answer unusable, keeping the old media");
                    }
                }
            }
            491 => {
                call.offer_answer.cancel_offer();
                // RFC 3261 14.1: the Call-ID's owner waits 2.1-4 s, the other side 0-2 s.
                let wait = if call.role == Role::Caller {
                    self.rng.millis_between(2100, 4000)
                } else {
                    self.rng.millis_between(0, 2000)
                };
                let at = self.now + Duration::from_millis(wait);
                self.set_timer(at, Timer::GlareRetry(id));
            }
            408 | 481 => {
                if status == 408 {
                    self.send_bye(id);
                }
                self.end_call(
                    id,
                    Some(status),
                    "the dialog ended during a re-INVITE",
                    Party::Remote,
                );
            }
            _ => {
                // The re-INVITE failed; the session stays as it was (RFC 3261 14.1).
                call.offer_answer.cancel_offer();
                call.local_hold = matches!(
                    call.state,
                    CallState::Connected {
                        local_hold: true,
                        ..
                    }
                );
            }
        }
    }

    /// Sends a re-INVITE without SDP, asking the peer for a fresh offer (RFC 3261 14.1, RFC
    /// 6337 5.1), e.g. to resynchronise media after a network change.
    pub(super) fn request_offer(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.session.reinvite_key.is_some()
            || !call.session.connected
            || call.state == CallState::Terminating
        {
            return;
        }
        let mut invite = call.session.dialog.request(Method::Invite);
        invite.headers.push("Allow", super::ALLOW);
        call.reinvite_offerless = true;
        let destination = self.next_hop(id);
        let key = self.start_client_tx(invite, destination, TxOwner::ReInvite(id));
        if let Some(call) = self.calls.get_mut(&id) {
            call.session.reinvite_key = key;
        }
    }

    /// Puts `a=record:VALUE` in every SDP of the call from now on (RFC 7866 6.1.2) and, when
    /// the far end asked to be told (record-aware), tells it at once by re-INVITE or UPDATE.
    /// Other peers see it in the next SDP exchange; the audible notice is for them.
    pub(super) fn indicate_recording(&mut self, id: CallId, value: &str) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.offer_answer.capabilities_mut().session_attributes =
            vec![crate::sdp::Attribute::new("record", value)];
        if call.session.connected && call.peer_record_aware {
            self.send_reinvite(id);
        }
    }

    pub(super) fn ping(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if !call.session.connected {
            return;
        }
        let options = call.session.dialog.request(Method::Options);
        let destination = self.next_hop(id);
        self.start_client_tx(options, destination, TxOwner::Ping(id));
    }

    pub(super) fn on_stray_response(&mut self, response: Message) {
        // A 2xx to our INVITE retransmitted after its transaction ended: resend the ACK.
        if !response.status().is_some_and(|s| (200..300).contains(&s)) {
            return;
        }
        let Ok(cseq) = response.cseq() else {
            return;
        };
        if cseq.method != Method::Invite {
            return;
        }
        let (Some(call_id), Ok(from), Ok(to)) = (
            response.call_id(),
            response.from_header(),
            response.to_header(),
        ) else {
            return;
        };
        let found = self.calls.values().find(|c| {
            c.session.dialog.call_id == call_id
                && from.tag() == Some(c.session.dialog.local_tag.as_str())
                && to.tag() == c.session.dialog.remote_tag.as_deref()
        });
        match found {
            Some(call) => {
                let ack = if call.session.dialog.local_cseq == cseq.number
                    && call.session.reinvite_ack.is_some()
                {
                    call.session.reinvite_ack.clone()
                } else {
                    call.session.ack.clone()
                };
                if let Some((destination, bytes)) = ack {
                    self.transmits.push_back((destination, bytes));
                }
            }
            None => self.ack_and_bye_orphan(&response),
        }
    }

    fn schedule_media_check(&mut self, id: CallId) {
        let Some(timeout) = self.config.no_media_timeout else {
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let at = call.last_media + timeout;
        self.cancel_timer(Timer::MediaCheck(id));
        self.set_timer(at, Timer::MediaCheck(id));
    }

    pub(super) fn check_media(&mut self, id: CallId) {
        let Some(timeout) = self.config.no_media_timeout else {
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if !call.session.connected || call.state == CallState::Terminating {
            return;
        }
        // A held call legitimately carries no media from the other side.
        let expecting_media = !call.remote_hold && !call.local_hold;
        if expecting_media && self.now >= call.last_media + timeout {
            let secs = timeout.as_secs();
            self.send_bye(id);
            self.end_call(
                id,
                None,
                &format!("no media received for {secs} s"),
                Party::Local,
            );
            return;
        }
        if !expecting_media && let Some(call) = self.calls.get_mut(&id) {
            call.last_media = self.now;
        }
        self.schedule_media_check(id);
    }
}
