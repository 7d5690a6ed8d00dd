//! What the recorder asks inside the session: re-INVITE, UPDATE, metadata snapshots and
//! session-timer refreshes (RFC 7866 7.1.2, RFC 3311, RFC 4028).

use super::*;

impl Engine {
    /// The recorder re-INVITEs (RFC 7866 7.1.2, 9.1): its 2xx waits for the ACK.
    pub(in crate::engine) fn on_recorder_reinvite(
        &mut self,
        call: CallId,
        key: TxKey,
        request: Message,
    ) {
        if let Some(ok) = self.recorder_session_change(call, &key, &request) {
            self.send_recorder_2xx(call, &key, ok);
        }
    }

    /// OPTIONS (a recorder probing the session) and INFO inside the recording session: 200
    /// from the dialog, as in a call; OPTIONS says what the session takes.
    pub(in crate::engine) fn answer_in_recording(
        &mut self,
        call: CallId,
        key: &TxKey,
        request: &Message,
    ) {
        let Some(tag) = self
            .recordings
            .get(&call)
            .map(|r| r.session.dialog.local_tag.clone())
        else {
            return;
        };
        let mut ok = request.response(200, "OK", Some(&tag));
        if request.method() == Some(&Method::Options) {
            ok.headers.push(
                "Accept",
                format!(
                    "{}, {}, multipart/mixed",
                    multipart::SDP_CONTENT_TYPE,
                    multipart::METADATA_REQUEST_CONTENT_TYPE
                ),
            );
            ok.headers.push("Supported", "siprec, timer");
        }
        self.send_response(key, ok);
    }

    /// The recorder sends UPDATE (RFC 3311): with an offer as a re-INVITE would, without one
    /// as a session refresh or a request for the metadata.
    pub(in crate::engine) fn on_recorder_update(
        &mut self,
        call: CallId,
        key: TxKey,
        request: Message,
    ) {
        if let Some(ok) = self.recorder_session_change(call, &key, &request) {
            self.send_response(&key, ok);
        }
    }

    /// What a recorder's re-INVITE or UPDATE changes, and the 2xx that answers it (None when
    /// it was refused here): every stream inactive pauses the recording, recvonly resumes
    /// it, a metadata request gets a fresh snapshot, and a Session-Expires moves the time by
    /// which the recorder must refresh again (RFC 4028).
    pub(super) fn recorder_session_change(
        &mut self,
        call: CallId,
        key: &TxKey,
        request: &Message,
    ) -> Option<Message> {
        let is_invite = request.method() == Some(&Method::Invite);
        let offer = answer_sdp(request);
        let wants_metadata = request
            .content_type()
            .is_some_and(|t| t == multipart::METADATA_REQUEST_CONTENT_TYPE)
            || request.headers.get("Content-Type").is_some_and(|ct| {
                multipart::parse(ct, &request.body).is_ok_and(|parts| {
                    multipart::find(&parts, multipart::METADATA_REQUEST_CONTENT_TYPE).is_some()
                })
            });
        let asked_timer = session_timer::as_uas(request);
        let recording = self.recordings.get_mut(&call)?;
        let tag = recording.session.dialog.local_tag.clone();
        let offers = is_invite || offer.is_some();
        if offers && recording.session.reinvite_key.is_some() {
            // Both sides offered at once (RFC 3261 14.2, RFC 3311 5.2).
            self.respond(key, request, 491, Some(&tag));
            return None;
        }
        if asked_timer == PeerTimer::TooSmall {
            self.refuse_session_too_small(key, request, &tag);
            return None;
        }
        let pauses_all = |sdp: &SessionDescription| {
            sdp.media
                .iter()
                .all(|m| m.port == 0 || m.direction == Direction::Inactive)
        };
        let unusable = offer.as_ref().and_then(|sdp| {
            let read = if pauses_all(sdp) {
                Ok(())
            } else {
                rs_sdp::read_answer(&recording.offer, sdp).map(drop)
            };
            read.and_then(|()| rs_sdp::answer_reoffer(&recording.offer, sdp).map(drop))
                .err()
        });
        if let Some(error) = unusable {
            // An offer we cannot take leaves the session as it was (RFC 3261 14.2).
            let mut refusal = request.response(488, reason_phrase(488), Some(&tag));
            refusal.headers.push(
                "Warning",
                format!("399 verbatim \"{}\"", error.to_string().replace('"', "'")),
            );
            self.send_response(key, refusal);
            return None;
        }
        let media_id = recording.media_id;
        let mut new_state = None;
        if let Some(sdp) = &offer {
            let recorder_pauses = pauses_all(sdp);
            let paused = recorder_pauses || recording.want_paused;
            for stream in &mut recording.streams {
                stream.set_paused(paused);
            }
            recording.offer.direction = if paused {
                Direction::Inactive
            } else {
                Direction::SendOnly
            };
            new_state = Some(if recorder_pauses {
                Some(RecordingState::Paused { by: Party::Remote })
            } else if paused {
                Some(RecordingState::Paused { by: Party::Local })
            } else {
                None
            });
        }
        // An offer gets our answer; an UPDATE without one gets no SDP back; an offerless
        // re-INVITE gets our offer, and the recorder's answer comes in the ACK.
        let sdp = offers.then(|| {
            recording.offer.session_version += 1;
            let description = match &offer {
                Some(theirs) => rs_sdp::answer_reoffer(&recording.offer, theirs)
                    .unwrap_or_else(|_| rs_sdp::offer(&recording.offer)),
                None => rs_sdp::offer(&recording.offer),
            };
            description.to_string().into_bytes()
        });
        let contact = recording.session.dialog.local_contact.clone();
        let mut ok = request.response(200, "OK", Some(&tag));
        ok.headers.push("Contact", contact);
        ok.headers.push("Require", "siprec");
        let change = recording.session.agree_timer(asked_timer, &mut ok);
        self.arm_session_timer(
            change,
            Timer::RecordingRefresh(call),
            Timer::RecorderSessionExpiry(call),
        );
        let metadata = wants_metadata.then(|| {
            if let Some(r) = self.recordings.get_mut(&call) {
                r.metadata_dirty = false;
            }
            self.metadata_snapshot(call)
        });
        match (sdp, metadata) {
            (Some(sdp), Some(xml)) => {
                let (content_type, body) = self.sdp_and_metadata(sdp, xml);
                ok.set_body(&content_type, body);
            }
            (Some(sdp), None) => ok.set_body(multipart::SDP_CONTENT_TYPE, sdp),
            (None, Some(xml)) => {
                ok.headers.push(
                    "Content-Disposition",
                    multipart::RECORDING_SESSION_DISPOSITION,
                );
                ok.set_body(multipart::METADATA_CONTENT_TYPE, xml);
            }
            (None, None) => {}
        }
        if let Some(state) = new_state {
            let state = state.unwrap_or_else(|| self.live_state(call));
            self.change_recording_state(call, media_id, state);
        }
        if let Some(sdp) = &offer {
            self.apply_recorder_description(call, sdp);
        }
        Some(ok)
    }

    /// We refresh the recording session (the recorder asked us to, RFC 4028): a re-INVITE
    /// with the session as it is, then the next one half an interval later.
    pub(in crate::engine) fn refresh_recording_session(&mut self, call: CallId) {
        let Some(timer) = self.recordings.get(&call).and_then(|r| r.session.timer) else {
            return;
        };
        self.send_recording_reinvite(call);
        self.set_timer(
            self.now + timer.refresh_after(),
            Timer::RecordingRefresh(call),
        );
    }

    /// The session timer the recorder's 2xx to our INVITE or re-INVITE set, armed.
    pub(in crate::engine) fn adopt_recording_timer(&mut self, call: CallId, ok: &Message) {
        if let Some(recording) = self.recordings.get_mut(&call) {
            let change = recording.session.adopt_timer(ok);
            self.arm_session_timer(
                change,
                Timer::RecordingRefresh(call),
                Timer::RecorderSessionExpiry(call),
            );
        }
    }

    /// The recorder refreshes the session and stopped doing so: it is gone, whatever the
    /// transport says (RFC 4028 10). The session ends with BYE and the reason.
    pub(in crate::engine) fn recorder_session_expired(&mut self, call: CallId) {
        if !self.recordings.contains_key(&call) {
            return;
        }
        self.stop_recording_dialog(call);
        self.recording_failed(
            call,
            "the recorder stopped refreshing the recording session (session timer expired)".into(),
        );
    }
}
