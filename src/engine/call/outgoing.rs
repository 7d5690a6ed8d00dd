//! Calls we place: the INVITE (again with credentials after a challenge), its responses,
//! the ACK, CANCEL, and a 2xx that arrives for a call already gone.

use super::*;

impl Engine {
    pub(in crate::engine) fn dial(&mut self, id: CallId, request: DialRequest) {
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
            local_contact: self.contact_towards(request.destination, &user),
            security: DialogSecurity::of(&request.target, request.destination.transport),
        };
        let policy = request.srtp.unwrap_or(self.config.srtp);
        let srtp = self.srtp_policy_of(policy, request.destination);
        let public = self.public_media(id, request.destination);
        let offer_answer = self.new_offer_answer(
            request.media_port,
            *srtp.as_ref().unwrap_or(&SrtpPolicy::Off),
            public,
        );
        let session = self.new_invite_session(dialog, request.destination);
        let mut call = Call::new(
            Role::Caller,
            CallState::Calling,
            session,
            offer_answer,
            self.now,
            crate::recording::metadata::format_time(self.wall_clock()),
        );
        call.session.digest = request.credentials.map(DigestSession::new);
        call.notice = request.notice;
        call.srtp = policy;
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

    /// Sends the initial INVITE (again, with credentials, after a challenge).
    pub(in crate::engine) fn send_invite(
        &mut self,
        id: CallId,
        authorization: Option<(&'static str, String)>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let cseq = call.session.dialog.local_cseq;
        let mut invite = call.session.dialog.request_with_cseq(Method::Invite, cseq);
        invite.headers.push("Allow", crate::engine::ALLOW);
        let offer = match call.offer_answer.local_description() {
            Some(previous) if call.offer_answer.offer_pending() => previous.clone(),
            _ => call.offer_answer.create_offer(Direction::SendRecv),
        };
        invite.set_body("application/sdp", offer.to_string().into_bytes());
        if let Some(replaces) = self.replaces_out.get(&id) {
            // RFC 3891 4: a target that cannot replace must refuse, not ring as a new call.
            invite.headers.push("Replaces", replaces.to_string());
            invite.headers.push("Require", "replaces");
        }
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

    pub(in crate::engine) fn on_invite_response(
        &mut self,
        id: CallId,
        key: TxKey,
        response: Message,
    ) {
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

    pub(super) fn on_invite_success(&mut self, id: CallId, response: Message) {
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
        let ack = call.session.ack_for(&response);
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
                self.adopt_call_timer(id, &response);
                self.apply_negotiated(id, negotiated);
                self.schedule_media_check(id);
                self.follow_focus_of(id, &response);
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

    pub(super) fn send_ack(
        &mut self,
        id: CallId,
        ack: Message,
        destination: Destination,
        reinvite: bool,
    ) {
        let sent = self.send_2xx_ack(ack, destination);
        if let Some(call) = self.calls.get_mut(&id) {
            if reinvite {
                call.session.reinvite_ack = sent;
            } else {
                call.session.ack = sent;
            }
        }
    }

    pub(super) fn retry_invite_with_credentials(
        &mut self,
        id: CallId,
        status: u16,
        response: &Message,
    ) {
        let cnonce = self.rng.token(16);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let reason = format!(
            "{status} {}",
            response.reason().unwrap_or(reason_phrase(status))
        );
        let body = call
            .offer_answer
            .local_description()
            .map(|d| d.to_string().into_bytes())
            .unwrap_or_default();
        match call
            .session
            .answer_invite_challenge(response, &body, &cnonce)
        {
            Ok(auth) => self.send_invite(id, Some((auth.name(), auth.value()))),
            Err(error) => {
                let why = match error {
                    ChallengeError::NoCredentials => "no password configured".to_owned(),
                    other => other.to_string(),
                };
                self.end_call(id, Some(status), &format!("{reason}: {why}"), Party::Remote);
            }
        }
    }

    pub(in crate::engine) fn on_invite_transport_error(
        &mut self,
        id: CallId,
        key: TxKey,
        reason: String,
    ) {
        let current = self
            .calls
            .get(&id)
            .is_some_and(|c| c.session.invite_key.as_ref() == Some(&key) && !c.session.connected);
        if current {
            self.end_call(id, Some(503), &reason, Party::Local);
        }
    }

    pub(in crate::engine) fn on_invite_timeout(&mut self, id: CallId, key: TxKey) {
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

    pub(super) fn send_cancel(&mut self, id: CallId) {
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

    /// A 2xx for a call we no longer have: complete the handshake and end the dialog so the
    /// far end is not left with a half-open call (RFC 3261 13.2.2.4).
    pub(super) fn ack_and_bye_orphan(&mut self, response: &Message) {
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

    pub(in crate::engine) fn on_stray_response(&mut self, response: Message) {
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
}
