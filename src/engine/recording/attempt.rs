//! Opening a recording session: the attempt (offer, INVITE, the recorder's answer or
//! challenge), retries with backoff alternating with the secondary recorder, the gate a
//! mandatory recording puts on the call, and failure.

use super::*;

impl RetryPlan {
    /// The request for the next attempt: odd failures go to the secondary, when there is one.
    pub(super) fn next_request(&self) -> RecordingRequest {
        let mut request = self.request.clone();
        if let Some((srs, destination)) = self.request.secondary.clone()
            && self.failures % 2 == 1
        {
            request.srs = srs;
            request.destination = destination;
        }
        request
    }
}

/// The seconds of a Retry-After header (RFC 3261 20.33): `120 (maintenance);duration=60`.
pub(super) fn retry_after_seconds(response: &Message) -> Option<u64> {
    let value = response.headers.get("Retry-After")?.trim_start();
    let digits = value.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// Backoff between attempts: 2 s doubling to a minute.
pub(super) fn retry_delay(failures: u32) -> u64 {
    (1u64 << failures.min(6)).min(60)
}

impl Engine {
    /// Record a call that is up (the user pressed Record).
    pub(in crate::engine) fn start_recording(
        &mut self,
        call: CallId,
        media_id: RecordingId,
        request: RecordingRequest,
    ) {
        let owner = self.recording_owner(call);
        if owner != call {
            self.events.push_back(Event::Warning {
                call: Some(call),
                message: "this call is in a conference that is being recorded already".into(),
            });
            // Off releases the sockets bound for it (and tells nothing to the call, which
            // the conference's recording records).
            self.events.push_back(Event::Recording {
                call,
                recording: media_id,
                state: RecordingState::Off,
            });
            return;
        }
        self.plan_recording(call, media_id, request, None);
        // In our conference the recording takes every party.
        self.record_conference();
    }

    /// Record a call from its start; with a gate, that step of the call waits for the
    /// recording to be up.
    pub(in crate::engine) fn plan_recording(
        &mut self,
        call: CallId,
        media_id: RecordingId,
        request: RecordingRequest,
        gate: Option<Gate>,
    ) {
        if self.recordings.contains_key(&call) || self.recording_plans.contains_key(&call) {
            return;
        }
        let Some(record) = self.new_call_record(call, request.mode) else {
            self.recording_event(
                call,
                media_id,
                RecordingState::Failed {
                    reason: "no such call".into(),
                },
            );
            return;
        };
        self.recording_plans.insert(
            call,
            RetryPlan {
                media_id,
                request: request.clone(),
                failures: 0,
                record,
                gate,
                recorder_initiated: false,
                retry_after: None,
                outage_since: None,
                ports_awaited: Vec::new(),
            },
        );
        self.attempt_recording(call, media_id, request);
    }

    pub(in crate::engine) fn new_id(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        metadata::new_id(bytes)
    }

    pub(in crate::engine) fn new_call_record(
        &mut self,
        call: CallId,
        mode: RecordingMode,
    ) -> Option<CallRecord> {
        let mut record = self.bare_call_record(call, mode)?;
        // Those already in the far end's conference are in the recording from its start.
        for member in self.conference_members(call) {
            record.conference.push((self.new_id(), member));
        }
        Some(record)
    }

    fn bare_call_record(&mut self, call: CallId, mode: RecordingMode) -> Option<CallRecord> {
        let (local, remote, sip_session_id, started) = {
            let c = self.calls.get(&call)?;
            (
                c.local_identity(),
                c.remote_identity(),
                c.session_id(),
                c.started.clone(),
            )
        };
        let streams = mode.stream_count();
        let session_id = self.new_id();
        self.events.push_back(Event::RecordingSessionId {
            call,
            session_id: session_id.clone(),
        });
        Some(CallRecord {
            session_id,
            sip_session_id,
            group_id: self.new_id(),
            local_id: self.new_id(),
            remote_id: self.new_id(),
            stream_ids: (0..streams).map(|_| self.new_id()).collect(),
            labels: (1..=streams).map(|n| n.to_string()).collect(),
            voices: rs_sdp::voices_for(streams),
            start_time: started.clone(),
            local,
            remote,
            remote_since: started,
            former_remotes: Vec::new(),
            conference: Vec::new(),
            parties: Vec::new(),
            gaps: Vec::new(),
            stream_gaps: Vec::new(),
            on_hold: false,
            end_time: None,
        })
    }

    /// Retry timer: try again, alternating with the secondary recorder.
    pub(in crate::engine) fn retry_recording(&mut self, call: CallId) {
        let Some(plan) = self.recording_plans.get(&call) else {
            return;
        };
        if !self.calls.contains_key(&call) {
            self.recording_plans.remove(&call);
            return;
        }
        let request = plan.next_request();
        let media_id = plan.media_id;
        self.attempt_recording(call, media_id, request);
    }

    pub(super) fn attempt_recording(
        &mut self,
        call: CallId,
        media_id: RecordingId,
        request: RecordingRequest,
    ) {
        if self.recordings.contains_key(&call) {
            return;
        }
        // In our conference every party's call counts: none is recorded less protected.
        let call_srtp = self.call_uses_srtp(call)
            || self
                .recording_plans
                .get(&call)
                .is_some_and(|plan| plan.record.party_calls().any(|c| self.call_uses_srtp(c)));
        let media_ready = self.media.contains_key(&call);
        // The call's streams, with a stream for each party of our conference (the
        // recording of it), those that left offered with port 0.
        let Some((labels, voices, ports)) = self
            .recording_plans
            .get(&call)
            .map(|plan| plan.record.offered_streams(&request.media_ports))
        else {
            return;
        };
        if (call_srtp || request.srtp) && !request.destination.is_confidential() {
            let why = if call_srtp {
                "the call is encrypted (SRTP)"
            } else {
                "the recording must be encrypted (SRTP)"
            };
            self.attempt_failed(
                call,
                media_id,
                format!(
                    "{why}, but the recorder is reached over {} at {}, where its SRTP keys \
                     would travel in the clear: use a sips: recorder URI",
                    request.destination.transport, request.destination.address
                ),
            );
            return;
        }
        let keys = if call_srtp || request.srtp {
            // Never the call's keys: fresh ones for each recording stream (RFC 7866 12.2).
            let mut keys = Vec::new();
            for _ in &labels {
                match self.config.key_source.key_salt() {
                    Some(key) => keys.push(key),
                    None => {
                        self.attempt_failed(call, media_id, "no randomness for SRTP keys".into());
                        return;
                    }
                }
            }
            Some(keys)
        } else {
            None
        };
        let (codecs, telephone_event) = self.recording_codecs(Some(call), request.mode);
        let session_id = self.rng.next_u64() >> 2;
        let offer = RsOffer {
            address: self.local_ip(),
            ports,
            codecs,
            telephone_event,
            voices,
            labels,
            // Until the call has media there is nothing to send (RFC 7866 8.1.1).
            direction: if media_ready {
                Direction::SendOnly
            } else {
                Direction::Inactive
            },
            keys,
            session_id,
            session_version: session_id,
        };
        let Some(local_uri) = self
            .recording_plans
            .get(&call)
            .map(|p| p.record.local.clone())
        else {
            return;
        };
        let user = local_uri
            .uri
            .user
            .clone()
            .unwrap_or_else(|| self.config.contact_user.clone());
        let contact = self.contact_for(request.destination.transport, &user);
        // The feature tag that tells the recorder this dialog is a recording session.
        let contact = format!("{contact};+sip.src");
        let dialog = Dialog {
            call_id: format!("{}@verbatim", self.rng.token(20)),
            local_tag: self.rng.token(10),
            remote_tag: None,
            local_uri,
            remote_uri: NameAddr::new(request.srs.clone()),
            local_cseq: 1,
            remote_cseq: None,
            remote_target: request.srs.clone(),
            route_set: Vec::new(),
            local_contact: contact,
            security: DialogSecurity::of(&request.srs, request.destination.transport),
        };
        let xml = self.metadata_snapshot(call);
        let sdp = rs_sdp::offer(&offer).to_string().into_bytes();
        let invite_body = self.sdp_and_metadata(sdp, xml);
        let mut session = self.new_invite_session(dialog, request.destination);
        session.digest = request.credentials.clone().map(DigestSession::new);
        let now = self.wall_clock();
        let recording = Recording::new(call, media_id, session, invite_body, offer, now);
        self.recordings.insert(call, recording);
        self.arm_recorder_probe(call);
        self.recording_event(call, media_id, RecordingState::Starting);
        self.send_recording_invite(call, None);
    }

    /// The initial INVITE (again with credentials after a challenge, CSeq one higher).
    pub(super) fn send_recording_invite(
        &mut self,
        call: CallId,
        authorization: Option<(&'static str, String)>,
    ) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let cseq = recording.session.dialog.local_cseq;
        let mut invite = recording
            .session
            .dialog
            .request_with_cseq(Method::Invite, cseq);
        invite.headers.push("Require", "siprec");
        invite.headers.push(
            "Accept",
            "application/sdp, application/rs-metadata+xml, application/rs-metadata-request",
        );
        invite.headers.push("Allow", crate::engine::ALLOW);
        if let Some((name, value)) = authorization {
            invite.headers.push(name, value);
        }
        let (content_type, body) = recording.invite_body.clone();
        invite.set_body(&content_type, body);
        let destination = recording.session.first_hop;
        match self.start_client_tx(invite, destination, TxOwner::Recording(call)) {
            Some(key) => {
                if let Some(r) = self.recordings.get_mut(&call) {
                    r.session.invite_key = Some(key);
                }
            }
            None => self.recording_failed(call, format!("cannot send to {destination}")),
        }
    }

    /// Whether the call's media is SRTP: then so must its recording's be.
    pub(in crate::engine) fn call_uses_srtp(&self, call: CallId) -> bool {
        self.media
            .get(&call)
            .and_then(|m| m.negotiated.as_ref())
            .is_some_and(|n| n.srtp.is_some())
    }

    /// The recording's codecs: the call's first (copied as it is), then the others we can
    /// encode, for a recorder that wants something else, and G.711 always, whatever the
    /// phone's codec list says: a recorder that cannot decode Opus picks it and gets the
    /// call transcoded. Telephone-events only travel with copied packets, so mixed mode
    /// offers none.
    pub(in crate::engine) fn recording_codecs(
        &self,
        call: Option<CallId>,
        mode: RecordingMode,
    ) -> (Vec<PayloadFormat>, Option<PayloadFormat>) {
        let negotiated = call
            .and_then(|call| self.media.get(&call))
            .and_then(|m| m.negotiated.as_ref());
        let mut codecs: Vec<PayloadFormat> = Vec::new();
        if let Some(n) = negotiated
            && CodecKind::from_encoding(&n.codec.encoding).is_some()
        {
            codecs.push(n.codec.clone());
        }
        let telephone_event = match mode {
            RecordingMode::Separate => negotiated.and_then(|n| n.telephone_event.clone()),
            RecordingMode::Mixed => None,
        };
        let every_recorder_decodes = [Codec::Pcmu, Codec::Pcma];
        for codec in self.config.codecs.iter().chain(&every_recorder_decodes) {
            let mut format = codec.payload_format(codec.default_payload_type());
            if CodecKind::from_encoding(&format.encoding).is_none()
                || codecs.iter().any(|c| c.same_codec(&format))
            {
                continue;
            }
            let taken = |pt: u8| {
                codecs.iter().any(|c| c.payload_type == pt)
                    || telephone_event
                        .as_ref()
                        .is_some_and(|t| t.payload_type == pt)
            };
            if taken(format.payload_type) {
                match (96u8..128).find(|pt| !taken(*pt)) {
                    Some(pt) => format.payload_type = pt,
                    None => continue,
                }
            }
            codecs.push(format);
        }
        (codecs, telephone_event)
    }

    /// The multipart/mixed pair SIPREC uses (RFC 7866 9.1): the SDP, then the metadata with
    /// Content-Disposition: recording-session. Returns the content type and the body.
    pub(in crate::engine) fn sdp_and_metadata(
        &mut self,
        sdp: Vec<u8>,
        xml: Vec<u8>,
    ) -> (String, Vec<u8>) {
        let boundary = format!("verbatim-{}", self.rng.token(16));
        let body = multipart::build(
            &[
                multipart::Part {
                    content_type: multipart::SDP_CONTENT_TYPE.into(),
                    headers: Vec::new(),
                    body: sdp,
                },
                multipart::Part {
                    content_type: multipart::METADATA_CONTENT_TYPE.into(),
                    headers: vec![(
                        "Content-Disposition".into(),
                        multipart::RECORDING_SESSION_DISPOSITION.into(),
                    )],
                    body: xml,
                },
            ],
            &boundary,
        );
        (multipart::content_type(&boundary), body)
    }

    pub(in crate::engine) fn on_recording_response(
        &mut self,
        call: CallId,
        key: TxKey,
        response: Message,
    ) {
        let Some(status) = response.status() else {
            return;
        };
        self.recorder_heard(call);
        if status < 200 {
            return;
        }
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        if recording.session.reinvite_key.as_ref() == Some(&key) {
            self.on_recording_reinvite_response(call, status, response);
            return;
        }
        if recording.session.invite_key.as_ref() != Some(&key) {
            return;
        }
        match status {
            200..=299 if recording.session.connected => {
                if let Some((destination, bytes)) = recording.session.ack.clone() {
                    self.transmits.push_back((destination, bytes));
                }
            }
            200..=299 => {
                let leaves_tls = recording.session.dialog.establish_as_uac(&response).err();
                recording.session.connected = true;
                let ack = recording.session.ack_for(&response);
                let destination = recording.session.next_hop();
                let sent = self.send_2xx_ack(ack, destination);
                if let Some(r) = self.recordings.get_mut(&call) {
                    r.session.ack = sent;
                }
                if let Some(error) = leaves_tls {
                    // Pause, resume and metadata re-INVITEs would carry the streams' SRTP keys
                    // in the clear: the session ends here, its BYE over TLS like its ACK.
                    self.stop_recording_dialog(call);
                    self.recording_failed(
                        call,
                        format!(
                            "the recorder would move the recording session off TLS ({}), \
                             so it was ended",
                            error.uri
                        ),
                    );
                    return;
                }
                self.adopt_recording_timer(call, &response);
                match answer_sdp(&response).and_then(|answer| {
                    let offer = &self.recordings.get(&call)?.offer;
                    Some(rs_sdp::read_answer(offer, &answer).map_err(|e| e.to_string()))
                }) {
                    Some(Ok(streams)) => self.on_recorder_answer(call, streams),
                    Some(Err(reason)) => {
                        self.stop_recording_dialog(call);
                        self.recording_failed(call, format!("the recorder's answer: {reason}"));
                    }
                    None => {
                        self.stop_recording_dialog(call);
                        self.recording_failed(call, "the recorder's answer had no SDP".into());
                    }
                }
                // What changed while the INVITE was out (someone joined the call, say)
                // reaches the recorder now rather than with the next change.
                if self.recordings.get(&call).is_some_and(|r| r.metadata_dirty) {
                    self.send_recording_reinvite(call);
                }
            }
            401 | 407 => self.retry_recording_with_credentials(call, status, &response),
            420 => self.recording_failed(
                call,
                "the recorder does not support SIPREC (420 Bad Extension)".into(),
            ),
            _ => {
                let reason = response
                    .reason()
                    .unwrap_or(reason_phrase(status))
                    .to_owned();
                let retry_after = retry_after_seconds(&response);
                if let Some(plan) = self.recording_plans.get_mut(&call) {
                    plan.retry_after = retry_after;
                }
                let asked = retry_after
                    .map(|s| format!(", asked to retry after {s} s"))
                    .unwrap_or_default();
                self.recording_failed(
                    call,
                    format!("the recorder refused: {status} {reason}{asked}"),
                );
            }
        }
    }

    /// A recorder that challenges gets the INVITE again with credentials; a second
    /// challenge for the same realm means they were wrong.
    pub(super) fn retry_recording_with_credentials(
        &mut self,
        call: CallId,
        status: u16,
        response: &Message,
    ) {
        let cnonce = self.rng.token(16);
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let body = recording.invite_body.1.clone();
        match recording
            .session
            .answer_invite_challenge(response, &body, &cnonce)
        {
            Ok(auth) => self.send_recording_invite(call, Some((auth.name(), auth.value()))),
            Err(error) => {
                let why = match error {
                    ChallengeError::NoCredentials => format!(
                        "the recorder asks for a password ({status}) and none is configured"
                    ),
                    ChallengeError::NoUsableChallenge => {
                        format!("the recorder's challenge ({status}) has no usable digest")
                    }
                    ChallengeError::Refused(error) => {
                        format!("the recorder refused our credentials: {error}")
                    }
                    ChallengeError::CannotAnswer(error) => {
                        format!("cannot answer the recorder's challenge: {error}")
                    }
                };
                self.recording_failed(call, why);
            }
        }
    }

    /// The recorder accepted: streams start now, or once the call has media.
    pub(super) fn on_recorder_answer(&mut self, call: CallId, answered: Vec<AnsweredStream>) {
        if self.refuses_plain_rtp(call, &answered) {
            return;
        }
        let media_ready = self.media.contains_key(&call);
        if media_ready {
            self.build_streams(call, answered);
        } else if let Some(r) = self.recordings.get_mut(&call) {
            r.answered = Some(answered);
        }
        self.close_open_gap(call);
        let gate = self
            .recording_plans
            .get_mut(&call)
            .and_then(|plan| plan.gate.take());
        if let Some(gate) = gate {
            self.tell_call(call, RecordingNote::GateOpen(gate));
        }
    }

    pub(super) fn close_open_gap(&mut self, call: CallId) {
        let now = metadata::format_time(self.wall_clock());
        if let Some(plan) = self.recording_plans.get_mut(&call)
            && let Some(gap) = plan.record.gaps.last_mut()
            && gap.to.is_none()
        {
            gap.to = Some(now);
        }
    }

    /// A mandatory recording stayed down past its grace: the call may not go on.
    pub(in crate::engine) fn recording_deadline(&mut self, call: CallId) {
        let recording = self
            .recordings
            .get(&call)
            .is_some_and(|r| r.state.is_live());
        if recording || !self.calls.contains_key(&call) {
            return;
        }
        let seconds = MANDATORY_GRACE.as_secs();
        self.tell_call(call, RecordingNote::MandatoryLost { seconds });
    }

    pub(in crate::engine) fn recording_failed(&mut self, call: CallId, reason: String) {
        let Some(recording) = self.recordings.remove(&call) else {
            return;
        };
        self.attempt_failed(call, recording.media_id, reason);
    }

    /// An attempt at recording the call failed, before or after its INVITE left: retry,
    /// fail over, open a gap or give up, as the plan says.
    pub(super) fn attempt_failed(&mut self, call: CallId, media_id: RecordingId, reason: String) {
        let sources: Vec<CallId> = self
            .recording_plans
            .get(&call)
            .map(|plan| plan.record.party_calls().collect())
            .unwrap_or_default();
        for source in core::iter::once(call).chain(sources) {
            if let Some(media) = self.media.get_mut(&source) {
                media.session.set_tapping(false);
            }
        }
        let call_goes_on = self.calls.contains_key(&call);
        let wall_now = self.wall_clock();
        let since = self
            .recording_plans
            .get_mut(&call)
            .and_then(|plan| plan.outage_since.take())
            .filter(|since| *since <= wall_now);
        // What was lost began when the recorder was last known there, if that is known.
        let now = metadata::format_time(since.unwrap_or(wall_now));
        let already_down = since.map_or(core::time::Duration::ZERO, |since| wall_now - since);
        let retry = |plan: &&mut RetryPlan| call_goes_on && !plan.recorder_initiated;
        let Some(plan) = self.recording_plans.get_mut(&call).filter(retry) else {
            self.recording_plans.remove(&call);
            self.recording_event(call, media_id, RecordingState::Failed { reason });
            return;
        };
        if plan.gate.is_some() {
            // A mandatory recording gates the call: try the secondary at once, then give up.
            plan.failures += 1;
            if plan.request.secondary.is_some() && plan.failures == 1 {
                let request = plan.next_request();
                let media_id = plan.media_id;
                self.attempt_recording(call, media_id, request);
                return;
            }
            self.recording_plans.remove(&call);
            self.recording_event(
                call,
                media_id,
                RecordingState::Failed {
                    reason: reason.clone(),
                },
            );
            self.tell_call(call, RecordingNote::GateShut { reason });
            return;
        }
        // A stretch of the call from now on is not recorded, unless one is already open.
        if plan.record.gaps.last().is_none_or(|gap| gap.to.is_some()) {
            plan.record.gaps.push(Gap {
                from: now,
                to: None,
                reason: reason.clone(),
            });
        }
        if plan.request.mandatory && !self.timer_armed(Timer::RecordingDeadline(call)) {
            // Only the first failure of an outage starts the clock, from when it began.
            let deadline = self.now + MANDATORY_GRACE.saturating_sub(already_down);
            self.set_timer(deadline, Timer::RecordingDeadline(call));
        }
        let Some(plan) = self.recording_plans.get_mut(&call) else {
            return;
        };
        plan.failures += 1;
        let attempt = plan.failures;
        // A recorder's Retry-After holds the next attempt back, unless that attempt goes to
        // the other recorder.
        let asked = plan
            .retry_after
            .take()
            .filter(|_| plan.request.secondary.is_none())
            .unwrap_or(0);
        let in_seconds = retry_delay(attempt).max(asked);
        let at = self.now + core::time::Duration::from_secs(in_seconds);
        self.set_timer(at, Timer::RecordingRetry(call));
        self.recording_event(
            call,
            media_id,
            RecordingState::Retrying {
                reason,
                attempt,
                in_seconds,
            },
        );
    }
}
