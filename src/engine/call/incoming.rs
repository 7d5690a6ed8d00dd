//! Calls we receive: the INVITE refused at once or rung, the answer and its 2xx kept until
//! the ACK, refusals, CANCEL.

use super::*;

impl Engine {
    pub(in crate::engine) fn on_invite(
        &mut self,
        key: TxKey,
        request: Message,
        source: Destination,
    ) {
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
        let replaces = match self.replaced_call(&request, source) {
            Ok(replaces) => replaces,
            Err((status, phrase)) => {
                let tag = self.rng.token(8);
                let response = request.response(status, phrase, Some(&tag));
                self.send_response(&key, response);
                return;
            }
        };
        if session_timer::as_uas(&request) == PeerTimer::TooSmall {
            let tag = self.rng.token(8);
            self.refuse_session_too_small(&key, &request, &tag);
            return;
        }
        // A call that replaces one of ours takes its place under its rules; any other
        // follows the account it was sent to, else the phone.
        let (policy, notice, account) =
            match replaces.and_then(|replaced| self.calls.get(&replaced)) {
                Some(replaced) => (
                    replaced.srtp,
                    replaced.notice.clone(),
                    replaced.account.clone(),
                ),
                None => {
                    let called = self.called_account(&to, &request);
                    (
                        called
                            .and_then(|account| account.srtp)
                            .unwrap_or(self.config.srtp),
                        called.and_then(|account| account.notice.clone()),
                        called.map(|account| account.name.clone()),
                    )
                }
            };
        let srtp = match self.srtp_policy_of(policy, source) {
            Ok(srtp) => srtp,
            Err(reason) => {
                tracing::warn!(%reason, "incoming call refused");
                let tag = self.rng.token(8);
                let response =
                    request.response(488, crate::engine::SDES_NEEDS_TLS_PHRASE, Some(&tag));
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
                response.headers.push("Accept", crate::engine::ACCEPT);
                self.send_response(&key, response);
                return;
            }
            match SessionDescription::parse(&String::from_utf8_lossy(&request.body)) {
                Ok(offer) => {
                    // Refuse at once what could never be answered, rather than ring the user.
                    let mut probe = self.new_offer_answer(9, srtp, None);
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
        let contact = self.contact_towards(source, &user);
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
        let id = CallId(crate::engine::ids::engine_minted(self.rng.next_u64()));
        let offer_answer = self.new_offer_answer(9, srtp, None);
        let mut session = self.new_invite_session(dialog, response_destination(&request, source));
        session.learn_remote_uuid(&request);
        let mut call = Call::new(
            Role::Callee,
            CallState::Incoming,
            session,
            offer_answer,
            self.now,
            crate::recording::metadata::format_time(self.wall_clock()),
        );
        call.server_key = Some(key.clone());
        call.remote_offer = remote_offer;
        call.srtp = policy;
        call.notice = notice;
        call.account = account.clone();
        let contact = call.session.dialog.local_contact.clone();
        call.peer_allows_update = request.headers.has_token("Allow", "UPDATE");
        call.peer_record_aware = request.headers.has_token("Supported", "record-aware");
        self.calls.insert(id, call);
        if let Some(replaced) = replaces {
            // The user took the call it replaces already: no ringing.
            self.replacing_in.insert(id, replaced);
            self.events.push_back(Event::ReplacingCall {
                call: id,
                replaces: replaced,
                from: from.to_string(),
                account,
            });
        } else {
            let mut ringing = request.response(180, "Ringing", Some(&local_tag));
            ringing.headers.push("Contact", contact);
            self.send_response(&key, ringing);
            self.events.push_back(Event::IncomingCall {
                call: id,
                from: from.to_string(),
                to: to.to_string(),
                request_uri: request
                    .request_uri()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                account,
            });
        }
        self.events.push_back(Event::CallState {
            call: id,
            state: CallState::Incoming,
        });
    }

    /// The call an INVITE's Replaces names (RFC 3891 3), or the refusal: 400 for a header
    /// that cannot be read (or more than one), 481 for no such dialog (or one not answered
    /// yet, or already being replaced), 603 for one that is ending, 486 for `early-only` on
    /// an answered one, 403 for an INVITE less protected than the call it would replace (it
    /// is answered without the user).
    fn replaced_call(
        &self,
        request: &Message,
        source: Destination,
    ) -> Result<Option<CallId>, (u16, &'static str)> {
        let values = request.headers.all("Replaces");
        let value = match values.as_slice() {
            [] => return Ok(None),
            [value] => *value,
            _ => return Err((400, "Only One Replaces Allowed")),
        };
        let Some(replaces) = crate::sip::replaces::Replaces::parse(value) else {
            return Err((400, "Bad Replaces Header"));
        };
        let found = self.calls.iter().find(|(_, call)| {
            let dialog = &call.session.dialog;
            dialog.call_id == replaces.call_id
                && dialog.local_tag == replaces.to_tag
                && dialog.remote_tag.as_deref() == Some(replaces.from_tag.as_str())
        });
        let Some((id, call)) = found else {
            return Err((481, "Call/Transaction Does Not Exist"));
        };
        if !call.session.connected || self.replacing_in.values().any(|old| old == id) {
            return Err((481, "Call/Transaction Does Not Exist"));
        }
        if !matches!(call.state, CallState::Connected { .. }) {
            return Err((603, "Decline"));
        }
        if replaces.early_only {
            return Err((486, "Busy Here"));
        }
        let secure_call = call.session.dialog.security != crate::sip::dialog::DialogSecurity::Open;
        if secure_call && source.transport != crate::sip::transport::Transport::Tls {
            return Err((403, "Replacing A TLS Call Needs TLS"));
        }
        Ok(Some(*id))
    }

    /// The account an INVITE was sent to, among those the front end named.
    fn called_account(
        &self,
        to: &NameAddr,
        request: &Message,
    ) -> Option<&crate::engine::CalledAccount> {
        let aors: Vec<&crate::sip::uri::Uri> =
            self.called_accounts.iter().map(|a| &a.aor).collect();
        let request_uri = request
            .request_uri()
            .map(ToString::to_string)
            .unwrap_or_default();
        let at = crate::sip::uri::which_is_called(&aors, &to.to_string(), &request_uri)?;
        self.called_accounts.get(at)
    }

    /// Answer, recording the call: a mandatory recording is set up first and the 200 OK
    /// waits for it; an optional one starts with the media.
    pub(in crate::engine) fn answer_recorded(
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

    pub(in crate::engine) fn answer(&mut self, id: CallId, media_port: u16) {
        let Some((hop, policy)) = self.calls.get(&id).map(|c| (c.session.first_hop, c.srtp)) else {
            return;
        };
        // The caller's hop was judged under the call's policy when its INVITE came; a
        // refusal then never rang.
        let srtp = self.srtp_policy_of(policy, hop).unwrap_or(SrtpPolicy::Off);
        let public = self.public_media(id, hop);
        let mut offer_answer = self.new_offer_answer(media_port, srtp, public);
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
        ok.headers.push("Supported", "record-aware, replaces");
        // An interval too small was refused before the phone rang.
        let asked_timer = session_timer::as_uas(&request);
        self.agree_call_timer(id, asked_timer, &mut ok);
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
        self.follow_focus_of(id, &request);
        if let Some(replaced) = self.replacing_in.remove(&id) {
            self.recording_follows_replacement(replaced, id);
            if let Some(call) = self.calls.get_mut(&replaced) {
                call.bye_text = Some("replaced by the transferred call".to_owned());
                call.transferred = true;
            }
            self.send_bye(replaced);
        }
    }

    pub(in crate::engine) fn reject(&mut self, id: CallId, status: u16) {
        self.reject_because(id, status, reason_phrase(status), reason_phrase(status));
    }

    /// Refuses an incoming call with `status` and `phrase` on the wire; `text` tells the user.
    pub(in crate::engine) fn reject_because(
        &mut self,
        id: CallId,
        status: u16,
        phrase: &str,
        text: &str,
    ) {
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

    /// RFC 3261 13.3.1.4: the UAS core resends its 2xx until the ACK comes.
    pub(super) fn track_unacked_2xx(
        &mut self,
        id: CallId,
        destination: Destination,
        bytes: Vec<u8>,
    ) {
        let t1 = self.config.timers.t1;
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let at = call.session.await_ack(destination, bytes, now, t1);
        self.cancel_timer(Timer::Retransmit2xx(id));
        self.set_timer(at, Timer::Retransmit2xx(id));
    }

    pub(in crate::engine) fn retransmit_2xx(&mut self, id: CallId) {
        let now = self.now;
        let t2 = self.config.timers.t2;
        let Some(step) = self
            .calls
            .get_mut(&id)
            .and_then(|call| call.session.resend_2xx(now, t2))
        else {
            return;
        };
        match step {
            UnackedStep::GiveUp => {
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

    pub(in crate::engine) fn on_ack(&mut self, request: Message, _source: Destination) {
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

    pub(in crate::engine) fn on_cancel(&mut self, key: TxKey, request: Message) {
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

    /// Incoming calls waiting for the user's answer.
    pub(in crate::engine) fn ringing_calls(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.state == CallState::Incoming)
            .count()
    }
}
