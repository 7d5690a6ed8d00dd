//! Requests inside a call, both ways: re-INVITE and UPDATE (hold, offers, refreshes), BYE,
//! OPTIONS and INFO, and the far end's asserted identity.

use super::*;

impl Engine {
    /// The call a session-changing request belongs to, and our tag in it: 481 outside any
    /// call, 500 for a CSeq out of order (RFC 3261 12.2.2). The far end's asserted identity
    /// is taken on the way.
    fn accept_in_call(&mut self, key: &TxKey, request: &Message) -> Option<(CallId, String)> {
        let Some(id) = self.find_dialog(request) else {
            self.respond(key, request, 481, None);
            return None;
        };
        self.note_asserted_identity(id, request);
        let call = self.calls.get_mut(&id)?;
        let tag = call.session.dialog.local_tag.clone();
        let cseq = request.cseq().map(|c| c.number).unwrap_or(0);
        if !call.session.dialog.accept_remote_cseq(cseq) {
            self.respond(key, request, 500, Some(&tag));
            return None;
        }
        Some((id, tag))
    }

    pub(super) fn on_reinvite(&mut self, key: TxKey, request: Message) {
        let Some((id, tag)) = self.accept_in_call(&key, &request) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
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
        let (sdp, negotiated) = if request.body.is_empty() {
            // Offerless re-INVITE: we offer in the 2xx and the ACK answers.
            call.answer_in_ack = true;
            let direction = call.offer_answer.offer_direction(call.local_hold);
            (call.offer_answer.create_offer(direction), None)
        } else {
            match call.answer_offer(&request.body) {
                Ok((answer, negotiated)) => (answer, negotiated),
                Err((status, reason)) => {
                    let response = request.response(status, &reason, Some(&tag));
                    self.send_response(&key, response);
                    return;
                }
            }
        };
        let state = call.connected_as_agreed(negotiated.as_ref());
        let contact = call.session.dialog.local_contact.clone();
        let destination = call.session.first_hop;
        let mut ok = request.response(200, "OK", Some(&tag));
        ok.headers.push("Contact", contact);
        self.agree_call_timer(id, asked_timer, &mut ok);
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
        // A two-party call the far end turned into a conference (RFC 4579 5.2).
        self.follow_focus_of(id, &request);
    }

    pub(in crate::engine) fn on_update(&mut self, key: TxKey, request: Message) {
        let Some((id, tag)) = self.accept_in_call(&key, &request) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
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
            match call.answer_offer(&request.body) {
                Ok((answer, agreed)) => {
                    ok.set_body("application/sdp", answer.to_string().into_bytes());
                    negotiated = agreed;
                }
                Err((status, reason)) => {
                    let response = request.response(status, &reason, Some(&tag));
                    self.send_response(&key, response);
                    return;
                }
            }
        }
        let state = match &negotiated {
            Some(agreed) => call.connected_as_agreed(Some(agreed)),
            None => call.state,
        };
        self.agree_call_timer(id, asked_timer, &mut ok);
        self.send_response(&key, ok);
        if let Some(negotiated) = negotiated {
            self.events.push_back(Event::CallState { call: id, state });
            self.on_media_negotiated(id, negotiated);
        }
        self.follow_focus_of(id, &request);
    }

    pub(in crate::engine) fn on_bye(&mut self, key: TxKey, request: Message) {
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
        // The target of our attended transfer ends the consultation when the transferee's
        // call replaces it (RFC 3891): the call was handed over, not hung up on.
        let handed_over = self
            .consultations
            .values()
            .any(|c| c.call == id && c.accepted);
        if handed_over && let Some(call) = self.calls.get_mut(&id) {
            call.transferred = true;
        }
        let text = if handed_over {
            "handed over: the transferred call replaced it"
        } else {
            "the other side hung up"
        };
        self.end_call(id, None, text, Party::Remote);
    }

    pub(in crate::engine) fn respond_in_dialog_or_481(&mut self, key: TxKey, request: Message) {
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

    pub(in crate::engine) fn set_hold(&mut self, id: CallId, hold: bool) {
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

    pub(in crate::engine) fn send_reinvite(&mut self, id: CallId) {
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
        request.headers.push("Allow", crate::engine::ALLOW);
        call.session.stamp_timer(&mut request);
        request.set_body("application/sdp", offer.to_string().into_bytes());
        let destination = self.next_hop(id);
        let key = self.start_client_tx(request, destination, owner);
        if let Some(call) = self.calls.get_mut(&id) {
            call.session.reinvite_key = key;
        }
    }

    /// The answer to our re-INVITE or UPDATE (`with_ack` for the INVITE).
    pub(in crate::engine) fn on_reinvite_response(
        &mut self,
        id: CallId,
        response: Message,
        with_ack: bool,
    ) {
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
                let mut ack = call.session.ack_for(&response);
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
                self.adopt_call_timer(id, &response);
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
    pub(in crate::engine) fn request_offer(&mut self, id: CallId) {
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
        invite.headers.push("Allow", crate::engine::ALLOW);
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

    pub(in crate::engine) fn ping(&mut self, id: CallId) {
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

    /// A request in the call asserts who the far end is now (a transfer done by a proxy, a
    /// network that learnt the caller's name): the recording's metadata follows.
    pub(super) fn note_asserted_identity(&mut self, id: CallId, request: &Message) {
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
        self.tell_recordings(id, CallNote::FarEndIs(Box::new(asserted)));
    }

    /// The call whose dialog an in-dialog request belongs to.
    pub(in crate::engine) fn find_dialog(&self, request: &Message) -> Option<CallId> {
        self.calls
            .iter()
            .find(|(_, c)| c.session.dialog.matches_request(request))
            .map(|(id, _)| *id)
    }

    /// Whether `call_id` is one of our calls' dialogs.
    pub(in crate::engine) fn is_call_dialog(&self, call_id: &str) -> bool {
        self.calls
            .values()
            .any(|c| c.session.dialog.call_id == call_id)
    }
}
