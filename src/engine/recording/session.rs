//! A recording session once it is up: pause and resume, metadata changes by re-INVITE, the
//! end (with the call's end times), and the dialog's bookkeeping.

use super::*;

/// The SDP of a response: the whole body, or its application/sdp part in a multipart body.
pub(in crate::engine) fn answer_sdp(response: &Message) -> Option<SessionDescription> {
    if response.content_type().as_deref() == Some("application/sdp") {
        return SessionDescription::parse(&String::from_utf8_lossy(&response.body)).ok();
    }
    let content_type = response.headers.get("Content-Type")?;
    let parts = crate::sip::multipart::parse(content_type, &response.body).ok()?;
    let sdp = crate::sip::multipart::find(&parts, "application/sdp")?;
    SessionDescription::parse(&String::from_utf8_lossy(&sdp.body)).ok()
}

/// The `text` of a request's Reason header (RFC 3326), as a peer explains a BYE.
pub(in crate::engine) fn reason_text(request: &Message) -> Option<String> {
    let value = request.headers.get("Reason")?;
    let start = value.find("text=\"")? + "text=\"".len();
    let rest = value.get(start..)?;
    let text = rest.get(..rest.find('"')?)?;
    (!text.is_empty()).then(|| text.chars().filter(|c| !c.is_control()).take(200).collect())
}

impl Engine {
    /// A recording's INVITE or re-INVITE went on in another transaction.
    pub(in crate::engine) fn rekey_recording_transaction(&mut self, old: &TxKey, new: &TxKey) {
        for recording in self
            .recordings
            .values_mut()
            .chain(self.closing_recordings.values_mut())
        {
            recording.session.rekey(old, new);
        }
    }

    /// The INVITE session of a recording (running or closing) or a recorder check with this
    /// Call-ID.
    pub(in crate::engine) fn recording_session(&self, call_id: &str) -> Option<&InviteSession> {
        self.recordings
            .values()
            .chain(self.closing_recordings.values())
            .map(|r| &r.session)
            .chain(self.recorder_checks.values().map(RecorderCheck::session))
            .find(|s| s.dialog.call_id == call_id)
    }

    pub(in crate::engine) fn recording_session_mut(
        &mut self,
        call_id: &str,
    ) -> Option<&mut InviteSession> {
        self.recordings
            .values_mut()
            .chain(self.closing_recordings.values_mut())
            .map(|r| &mut r.session)
            .chain(
                self.recorder_checks
                    .values_mut()
                    .map(RecorderCheck::session_mut),
            )
            .find(|s| s.dialog.call_id == call_id)
    }

    pub(in crate::engine) fn pause_recording(&mut self, call: CallId, paused: bool) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        recording.want_paused = paused;
        if paused {
            // Local sending stops first, then the recorder is told (RFC 7245 3.2.3).
            for stream in &mut recording.streams {
                stream.set_paused(true);
            }
            let media_id = recording.media_id;
            recording.state = RecordingState::Paused { by: Party::Local };
            self.recording_event(call, media_id, RecordingState::Paused { by: Party::Local });
        }
        self.send_recording_reinvite(call);
    }

    /// Something the metadata describes changed: the recorder hears of it by re-INVITE.
    pub(super) fn metadata_changed(&mut self, call: CallId) {
        if let Some(r) = self.recordings.get_mut(&call) {
            r.metadata_dirty = true;
        }
        self.send_recording_reinvite(call);
    }

    /// The call went on or off hold (either side).
    pub(super) fn recording_hold_changed(&mut self, call: CallId, on_hold: bool) {
        let Some(plan) = self.recording_plans.get_mut(&call) else {
            return;
        };
        if plan.record.on_hold == on_hold {
            return;
        }
        plan.record.on_hold = on_hold;
        self.metadata_changed(call);
    }

    /// The call's Session-ID is complete now (the far end said its own): the metadata names
    /// it, and the recorder hears it with the next update.
    pub(super) fn recording_session_id_known(&mut self, call: CallId, session_id: String) {
        let Some(plan) = self.recording_plans.get_mut(&call) else {
            return;
        };
        if plan.record.sip_session_id != session_id {
            plan.record.sip_session_id = session_id;
            // Not worth a re-INVITE of its own: it rides with the next one.
            if let Some(r) = self.recordings.get_mut(&call) {
                r.metadata_dirty = true;
            }
        }
    }

    /// The far end is someone else now (a transfer, a new asserted identity): the old
    /// participant leaves the session and the new one joins (RFC 7865 6.6).
    pub(super) fn recording_identity_changed(&mut self, call: CallId, remote: NameAddr) {
        let now = metadata::format_time(self.wall_clock());
        let new_id = self.new_id();
        let Some(plan) = self.recording_plans.get_mut(&call) else {
            return;
        };
        let record = &mut plan.record;
        if record.remote.uri == remote.uri && record.remote.display_name == remote.display_name {
            return;
        }
        if record.remote.uri == remote.uri {
            // Only the display name changed: the same participant.
            record.remote = remote;
        } else {
            let old_id = core::mem::replace(&mut record.remote_id, new_id);
            let old = core::mem::replace(&mut record.remote, remote);
            let joined = core::mem::replace(&mut record.remote_since, now.clone());
            record.former_remotes.push((old_id, old, joined, now));
        }
        self.metadata_changed(call);
    }

    /// The far end's conference changed: members keep their participant IDs, newcomers get
    /// theirs, and the recorder hears of it (RFC 7865 6.6).
    pub(super) fn recording_roster_changed(
        &mut self,
        call: CallId,
        members: Vec<crate::engine::ConferenceMember>,
    ) {
        let Some(known) = self
            .recording_plans
            .get(&call)
            .map(|plan| plan.record.conference.len())
        else {
            return;
        };
        let fresh: Vec<String> = (known..members.len()).map(|_| self.new_id()).collect();
        let Some(plan) = self.recording_plans.get_mut(&call) else {
            return;
        };
        // The roster only grows, in join order: the nth member is the same participant.
        let ids = plan
            .record
            .conference
            .iter()
            .map(|(id, _)| id.clone())
            .chain(fresh);
        let updated: Vec<_> = ids.zip(members).collect();
        if updated
            .iter()
            .map(|(_, m)| m)
            .eq(plan.record.conference.iter().map(|(_, m)| m))
        {
            return;
        }
        plan.record.conference = updated;
        self.metadata_changed(call);
    }

    pub(in crate::engine) fn send_recording_reinvite(&mut self, call: CallId) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        if !recording.session.connected || recording.session.reinvite_key.is_some() {
            return;
        }
        if let Err(error) = self.sync_offer_with_record(call) {
            self.recording_failed(call, error);
            return;
        }
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let waiting_for_media = recording.answered.is_some() || recording.streams.is_empty();
        recording.offer.direction = if recording.want_paused || waiting_for_media {
            Direction::Inactive
        } else {
            Direction::SendOnly
        };
        recording.offer.session_version += 1;
        let with_metadata = core::mem::take(&mut recording.metadata_dirty);
        let mut invite = recording.session.dialog.request(Method::Invite);
        invite.headers.push("Require", "siprec");
        recording.session.stamp_timer(&mut invite);
        let sdp = rs_sdp::offer(&recording.offer).to_string().into_bytes();
        let destination = recording.session.next_hop();
        if with_metadata {
            let xml = self.metadata_snapshot(call);
            let (content_type, body) = self.sdp_and_metadata(sdp, xml);
            invite.set_body(&content_type, body);
        } else {
            invite.set_body(multipart::SDP_CONTENT_TYPE, sdp);
        }
        let key = self.start_client_tx(invite, destination, TxOwner::Recording(call));
        if let Some(r) = self.recordings.get_mut(&call) {
            r.session.reinvite_key = key;
        }
    }

    pub(super) fn on_recording_reinvite_response(
        &mut self,
        call: CallId,
        status: u16,
        response: Message,
    ) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        recording.session.reinvite_key = None;
        if (200..300).contains(&status) {
            recording.lines_before_offer = None;
            let ack = recording.session.ack_for(&response);
            let destination = recording.session.next_hop();
            let sending = recording.offer.direction == Direction::SendOnly;
            let wanted_paused = recording.want_paused;
            if sending {
                for stream in &mut recording.streams {
                    stream.set_paused(false);
                }
            }
            let media_id = recording.media_id;
            let was = recording.state.clone();
            self.send_2xx_ack(ack, destination);
            self.adopt_recording_timer(call, &response);
            if let Some(sdp) = answer_sdp(&response) {
                self.apply_recorder_description(call, &sdp);
            }
            if sending {
                let state = self.live_state(call);
                if state != was {
                    self.cancel_timer(Timer::RecordingDeadline(call));
                    if let Some(r) = self.recordings.get_mut(&call) {
                        r.state = state.clone();
                    }
                    self.recording_event(call, media_id, state);
                }
            }
            let again = self.recordings.get(&call).is_some_and(|r| {
                r.metadata_dirty
                    || (sending == wanted_paused && r.answered.is_none() && !r.streams.is_empty())
            });
            if again {
                self.send_recording_reinvite(call);
            }
        } else if matches!(status, 408 | 481) {
            self.recording_failed(call, format!("the recorder lost the session ({status})"));
        } else if status == 491 {
            // Our re-INVITE crossed one of the recorder's (RFC 3261 14.1): the Call-ID's
            // owner waits 2.1-4 s, the other side 0-2 s, then offers again.
            let ours = self
                .recording_plans
                .get(&call)
                .is_some_and(|plan| !plan.recorder_initiated);
            let wait = if ours {
                self.rng.millis_between(2100, 4000)
            } else {
                self.rng.millis_between(0, 2000)
            };
            let at = self.now + core::time::Duration::from_millis(wait);
            self.set_timer(at, Timer::RecordingGlareRetry(call));
        } else {
            // Any other refusal leaves the session as it was (RFC 3261 14.1): the recording
            // goes on, and the user hears what the recorder would not take.
            self.added_streams_refused(call, status);
            let what = match self.recordings.get(&call).map(|r| r.offer.direction) {
                Some(Direction::Inactive) => "the pause",
                _ => "the recording's update",
            };
            let reason = response.reason().unwrap_or(reason_phrase(status));
            self.events.push_back(Event::Warning {
                call: Some(call),
                message: format!(
                    "the recorder refused {what} ({status} {reason}); the recording session \
                     goes on as it was"
                ),
            });
            if self.recordings.get(&call).is_some_and(|r| r.metadata_dirty) {
                self.send_recording_reinvite(call);
            }
        }
    }

    /// Ends the recording (the user's stop or the call's end): media first; then, when the
    /// call ended, the recorder gets the metadata's end times; then BYE.
    pub(in crate::engine) fn stop_recording(&mut self, call: CallId) {
        self.cancel_timer(Timer::RecordingRetry(call));
        let call_ended = !self.calls.contains_key(&call);
        let now = metadata::format_time(self.wall_clock());
        if let Some(plan) = self.recording_plans.get_mut(&call) {
            plan.record.close_stream_gaps(&now);
            if call_ended {
                plan.record.end_time = Some(now);
            }
        }
        let final_metadata = self.metadata_snapshot(call);
        let plan = self.recording_plans.remove(&call);
        // Our conference's other parties hear that it stopped too.
        let parties: Vec<CallId> = plan
            .iter()
            .flat_map(|plan| plan.record.party_calls())
            .collect();
        if let Some(media_id) = plan.as_ref().map(|plan| plan.media_id) {
            for party in parties {
                self.announce_to_party(party, media_id, &RecordingState::Off);
            }
        }
        if let Some(plan) = &plan
            && let gaps = plan.record.all_gaps()
            && !gaps.is_empty()
        {
            self.events.push_back(Event::RecordingGaps { call, gaps });
        }
        let Some(recording) = self.recordings.get(&call) else {
            // Between attempts there is no dialog, only the plan.
            if let Some(plan) = plan {
                self.recording_event(call, plan.media_id, RecordingState::Off);
            }
            return;
        };
        let media_id = recording.media_id;
        let in_flight = recording.session.reinvite_key.is_some();
        if call_ended && recording.session.connected && !in_flight {
            self.close_with_metadata(call, final_metadata);
        } else if call_ended && recording.session.connected {
            self.close_after_reinvite(call, final_metadata);
        } else {
            self.stop_recording_dialog(call);
            self.recordings.remove(&call);
        }
        self.recording_event(call, media_id, RecordingState::Off);
    }

    /// The call ended: one last re-INVITE carries the end times, and its answer (or its
    /// failure) brings the BYE. The recording moves out of the call's way meanwhile.
    pub(super) fn close_with_metadata(&mut self, call: CallId, xml: Vec<u8>) {
        let Some(recording) = self.take_for_closing(call) else {
            return;
        };
        if let Err(recording) = self.send_closing_invite(recording, xml) {
            self.recordings.insert(call, *recording);
            self.stop_recording_dialog(call);
            self.recordings.remove(&call);
        }
    }

    /// The call ended while a re-INVITE of ours was in flight (a party left our
    /// conference just before): its answer brings the closing re-INVITE with the end
    /// times, and that one's answer the BYE, so the recorder still hears how it ended.
    fn close_after_reinvite(&mut self, call: CallId, xml: Vec<u8>) {
        let Some(mut recording) = self.take_for_closing(call) else {
            return;
        };
        let Some(key) = recording.session.reinvite_key.take() else {
            return;
        };
        recording.closing_metadata = Some(xml);
        let closing = recording.media_id;
        self.tx_owner.insert(key, TxOwner::RecordingClose(closing));
        self.recording_byes += 1;
        self.closing_recordings.insert(closing, recording);
    }

    /// The call ended: its streams stop, and the recording leaves the call's way to close.
    fn take_for_closing(&mut self, call: CallId) -> Option<Recording> {
        if let Some(media) = self.media.get_mut(&call) {
            media.session.set_tapping(false);
        }
        self.say_bye_on_streams(call, "the call ended");
        let mut recording = self.recordings.remove(&call)?;
        recording.wants_pcm = false;
        Some(recording)
    }

    /// One last re-INVITE with the end times: the same SDP, unchanged version (RFC 3264
    /// 8), since only the metadata is news and a recorder must not read the end of the call
    /// as a pause. The recording waits among the closing ones for its answer; when it
    /// cannot be sent, the recording comes back.
    fn send_closing_invite(
        &mut self,
        mut recording: Recording,
        xml: Vec<u8>,
    ) -> Result<(), Box<Recording>> {
        let mut invite = recording.session.dialog.request(Method::Invite);
        invite.headers.push("Require", "siprec");
        recording.session.stamp_timer(&mut invite);
        let sdp = rs_sdp::offer(&recording.offer).to_string().into_bytes();
        let (content_type, body) = self.sdp_and_metadata(sdp, xml);
        invite.set_body(&content_type, body);
        let destination = recording.session.next_hop();
        let closing = recording.media_id;
        match self.start_client_tx(invite, destination, TxOwner::RecordingClose(closing)) {
            Some(_) => {
                self.recording_byes += 1;
                self.closing_recordings.insert(closing, recording);
                Ok(())
            }
            None => Err(Box::new(recording)),
        }
    }

    /// The closing re-INVITE was answered (or not): ACK a 2xx, then BYE.
    pub(in crate::engine) fn on_closing_response(
        &mut self,
        closing: RecordingId,
        response: Option<Message>,
    ) {
        let Some(mut recording) = self.closing_recordings.remove(&closing) else {
            return;
        };
        self.recording_byes = self.recording_byes.saturating_sub(1);
        let destination = recording.session.next_hop();
        if let Some(response) = &response
            && response.status().is_some_and(|s| (200..300).contains(&s))
        {
            let ack = recording.session.ack_for(response);
            self.send_2xx_ack(ack, destination);
        }
        // The re-INVITE that was in flight when the call ended is answered: now the end.
        if let (Some(_), Some(xml)) = (&response, recording.closing_metadata.take()) {
            match self.send_closing_invite(recording, xml) {
                Ok(()) => return,
                Err(back) => recording = *back,
            }
        }
        let bye = recording.session.dialog.request(Method::Bye);
        recording.session.connected = false;
        let owner = TxOwner::RecordingBye {
            call: recording.call,
            report: !recording.gone_silent,
        };
        if self.start_client_tx(bye, destination, owner).is_some() {
            self.recording_byes += 1;
        }
        self.check_shutdown_complete();
    }

    pub(super) fn stop_recording_dialog(&mut self, call: CallId) {
        self.cancel_timer(Timer::RecorderSessionExpiry(call));
        self.cancel_timer(Timer::RecordingRefresh(call));
        self.cancel_timer(Timer::RecordingGlareRetry(call));
        self.cancel_timer(Timer::RecorderProbe(call));
        self.cancel_timer(Timer::RecorderProbeDeadline(call));
        if let Some(media) = self.media.get_mut(&call) {
            media.session.set_tapping(false);
        }
        self.say_bye_on_streams(call, "the recording ended");
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        recording.wants_pcm = false;
        if let Some(probe) = recording.probe.take() {
            self.transactions.abandon(&probe);
            self.tx_owner.remove(&probe);
        }
        if !recording.session.connected {
            // Not answered yet: stop retransmitting; should the 2xx still come, the stray
            // response path ACKs and BYEs it.
            if let Some(key) = recording.session.invite_key.take() {
                self.transactions.abandon(&key);
            }
            return;
        }
        recording.session.connected = false;
        let bye = recording.session.dialog.request(Method::Bye);
        let destination = recording.session.next_hop();
        let owner = TxOwner::RecordingBye {
            call,
            report: !recording.gone_silent,
        };
        if self.start_client_tx(bye, destination, owner).is_some() {
            self.recording_byes += 1;
        }
    }

    pub(in crate::engine) fn recording_bye_done(&mut self) {
        self.recording_byes = self.recording_byes.saturating_sub(1);
        self.check_shutdown_complete();
    }

    pub(super) fn recording_event(
        &mut self,
        call: CallId,
        media_id: RecordingId,
        state: RecordingState,
    ) {
        // Every party the recording takes is told: the call's far end, and in our
        // conference every other party.
        let parties: Vec<CallId> = self
            .recording_plans
            .get(&call)
            .map(|plan| plan.record.party_calls().collect())
            .unwrap_or_default();
        self.indicate_to_party(call, &state);
        self.events.push_back(Event::Recording {
            call,
            recording: media_id,
            state: state.clone(),
        });
        for party in parties {
            self.announce_to_party(party, media_id, &state);
        }
    }

    /// A party of our conference is recorded by the conference's recording: its far end
    /// is told, and its call's indicator shows that recording's state.
    pub(super) fn announce_to_party(
        &mut self,
        party: CallId,
        media_id: RecordingId,
        state: &RecordingState,
    ) {
        self.indicate_to_party(party, state);
        self.events.push_back(Event::Recording {
            call: party,
            recording: media_id,
            state: state.clone(),
        });
    }

    /// Whether `call_id` is one of our recording sessions' dialogs, open or closing.
    pub(in crate::engine) fn is_recording_dialog(&self, call_id: &str) -> bool {
        self.recordings
            .values()
            .chain(self.closing_recordings.values())
            .any(|r| r.session.dialog.call_id == call_id)
    }

    /// A request within a recording dialog: which call's recording it is.
    pub(in crate::engine) fn recording_for_dialog(&self, request: &Message) -> Option<CallId> {
        self.recordings
            .iter()
            .find(|(_, r)| r.session.dialog.matches_request(request))
            .map(|(call, _)| *call)
    }

    /// A request within a recording that is closing (the call ended, BYE pending).
    pub(in crate::engine) fn closing_recording_for_dialog(&self, request: &Message) -> bool {
        self.closing_recordings
            .values()
            .any(|r| r.session.dialog.matches_request(request))
    }

    /// A recording's TCP or TLS connection closed: its recorder is gone (a killed process
    /// says nothing else), so the recording has failed, even with no request in flight.
    pub(in crate::engine) fn recording_connection_lost(&mut self, peer: Destination, reason: &str) {
        if !peer.transport.is_reliable() {
            return;
        }
        let lost: Vec<CallId> = self
            .recordings
            .iter()
            .filter(|(_, r)| {
                r.session.connected && (r.session.next_hop() == peer || r.session.first_hop == peer)
            })
            .map(|(call, _)| *call)
            .collect();
        for call in lost {
            if let Some(r) = self.recordings.get_mut(&call) {
                // Nothing more can be said on that connection, BYE included.
                r.session.connected = false;
            }
            self.recording_failed(
                call,
                format!("the connection to the recorder closed ({reason})"),
            );
        }
    }

    /// The recorder hung up on a closing recording itself: no BYE of ours is needed.
    pub(in crate::engine) fn closing_recording_ended(&mut self, request: &Message) {
        let closing: Vec<RecordingId> = self
            .closing_recordings
            .iter()
            .filter(|(_, r)| r.session.dialog.matches_request(request))
            .map(|(id, _)| *id)
            .collect();
        for id in closing {
            self.closing_recordings.remove(&id);
            self.recording_byes = self.recording_byes.saturating_sub(1);
        }
        self.check_shutdown_complete();
    }

    /// The recorder sent BYE, with the text of its Reason header if it gave one.
    pub(in crate::engine) fn recorder_hung_up(&mut self, call: CallId, reason: Option<String>) {
        if let Some(r) = self.recordings.get_mut(&call) {
            r.session.connected = false;
        }
        let started_by_recorder = self
            .recording_plans
            .get(&call)
            .is_some_and(|p| p.recorder_initiated);
        if started_by_recorder {
            // The recorder started it and ended it: that is the end, not a failure.
            if let Some(media) = self.media.get_mut(&call) {
                media.session.set_tapping(false);
            }
            self.recording_plans.remove(&call);
            if let Some(r) = self.recordings.remove(&call) {
                self.recording_event(call, r.media_id, RecordingState::Off);
            }
            return;
        }
        let reason = match reason {
            Some(text) => format!("the recorder ended the recording: {text}"),
            None => "the recorder ended the recording".into(),
        };
        self.recording_failed(call, reason);
    }
}
