//! Recording sessions (RFC 7866 SRC side): an INVITE dialog towards the recorder beside each
//! recorded call, whose streams carry copies of both sides of the call.

use super::{CallId, Engine, Event, Party, TxOwner};
use crate::media::session::{TapSide, TappedPacket};
use crate::media::srtp::SrtpSession;
use crate::recording::forwarder::Forwarder;
use crate::recording::metadata;
use crate::recording::rs_sdp::{self, RsOffer};
use crate::sdp::{Direction, SessionDescription};
use crate::sip::dialog::Dialog;
use crate::sip::message::{Message, Method, reason_phrase};
use crate::sip::multipart;
use crate::sip::transaction::TxKey;
use crate::sip::transport::Destination;
use crate::sip::uri::{NameAddr, Uri};

/// The call's codec and telephone-event, whether it uses SRTP, and both parties.
type RecordingInputs = (
    crate::sdp::PayloadFormat,
    Option<crate::sdp::PayloadFormat>,
    bool,
    NameAddr,
    NameAddr,
);

/// What the recording indicator shows. It follows the recording dialog and its media, never
/// the button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingState {
    Off,
    /// The INVITE to the recorder is out.
    Starting,
    /// The recorder accepted and media flows to it.
    Recording,
    Paused {
        by: Party,
    },
    /// The recording failed and will be tried again (the next attempt alternates with the
    /// secondary recorder when there is one).
    Retrying {
        reason: String,
        attempt: u32,
        in_seconds: u64,
    },
    /// Recording again after a failure: what was said meanwhile is missing.
    RecordingWithGaps,
    Failed {
        reason: String,
    },
}

/// Where to record a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRequest {
    /// The recorder's URI (To and Request-URI).
    pub srs: Uri,
    /// Its first hop, already resolved.
    pub destination: Destination,
    /// The local RTP port the driver bound for the recording's streams.
    pub media_port: u16,
    /// A second recorder, tried in turn with the first after a failure.
    pub secondary: Option<(Uri, Destination)>,
    /// Recording is mandatory: a call whose recording is lost and not back within
    /// [`MANDATORY_GRACE`] is ended, with the reason.
    pub mandatory: bool,
}

/// How long a mandatory recording may be down before the call is ended.
pub const MANDATORY_GRACE: core::time::Duration = core::time::Duration::from_secs(10);

/// How a recording is re-established after failures, for as long as the call lasts.
#[derive(Debug)]
pub(super) struct RetryPlan {
    media_id: CallId,
    request: RecordingRequest,
    failures: u32,
}

/// Backoff between attempts: 2 s doubling to a minute.
fn retry_delay(failures: u32) -> u64 {
    (1u64 << failures.min(6)).min(60)
}

#[derive(Debug)]
pub(super) struct Recording {
    /// The id the driver knows the recording's media sockets by.
    media_id: CallId,
    dialog: Dialog,
    first_hop: Destination,
    invite_key: Option<TxKey>,
    reinvite_key: Option<TxKey>,
    offer: RsOffer,
    forwarders: Vec<Forwarder>,
    ack: Option<(Destination, Vec<u8>)>,
    state: RecordingState,
    connected: bool,
    /// A pause was asked while the resume (or the reverse) was in flight.
    want_paused: bool,
}

impl Engine {
    pub(super) fn start_recording(
        &mut self,
        call: CallId,
        media_id: CallId,
        request: RecordingRequest,
    ) {
        if self.recordings.contains_key(&call) || self.recording_plans.contains_key(&call) {
            return;
        }
        self.recording_plans.insert(
            call,
            RetryPlan {
                media_id,
                request: request.clone(),
                failures: 0,
            },
        );
        self.attempt_recording(call, media_id, request);
    }

    /// Retry timer: try again, alternating with the secondary recorder.
    pub(super) fn retry_recording(&mut self, call: CallId) {
        let Some(plan) = self.recording_plans.get(&call) else {
            return;
        };
        if !self.calls.contains_key(&call) {
            self.recording_plans.remove(&call);
            return;
        }
        let mut request = plan.request.clone();
        if let Some((srs, destination)) = plan.request.secondary.clone()
            && plan.failures % 2 == 1
        {
            request.srs = srs;
            request.destination = destination;
        }
        let media_id = plan.media_id;
        self.attempt_recording(call, media_id, request);
    }

    fn attempt_recording(&mut self, call: CallId, media_id: CallId, request: RecordingRequest) {
        if self.recordings.contains_key(&call) {
            return;
        }
        let Some((codec, telephone_event, call_srtp, local_uri, remote_uri)) =
            self.recording_inputs(call)
        else {
            self.recording_event(
                call,
                media_id,
                RecordingState::Failed {
                    reason: "the call has no media yet".into(),
                },
            );
            return;
        };
        let keys = if call_srtp {
            // Never the call's keys: fresh ones for each recording stream (RFC 7866 12.2).
            let mut keys = Vec::new();
            for _ in 0..2 {
                match self.config.key_source.key_salt() {
                    Some(key) => keys.push(key),
                    None => {
                        self.recording_event(
                            call,
                            media_id,
                            RecordingState::Failed {
                                reason: "no randomness for SRTP keys".into(),
                            },
                        );
                        return;
                    }
                }
            }
            Some(keys)
        } else {
            None
        };
        let session_id = self.rng.next_u64() >> 2;
        let offer = RsOffer {
            address: self.local_ip(),
            port: request.media_port,
            codec,
            telephone_event,
            labels: vec!["1".into(), "2".into()],
            direction: Direction::SendOnly,
            keys,
            session_id,
            session_version: session_id,
        };
        let local_identity = local_uri.clone();
        let user = local_uri
            .uri
            .user
            .clone()
            .unwrap_or_else(|| self.config.contact_user.clone());
        let transport = request.destination.transport;
        let contact = self.contact_for(transport, &user);
        // The feature tag that tells the recorder this dialog is a recording session.
        let contact = format!("{contact};+sip.src");
        let mut dialog = Dialog {
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
        };
        let mut invite = dialog.request_with_cseq(Method::Invite, 1);
        dialog.local_cseq = 1;
        invite.headers.push("Require", "siprec");
        invite.headers.push(
            "Accept",
            "application/sdp, application/rs-metadata+xml, application/rs-metadata-request",
        );
        invite.headers.push("Allow", super::ALLOW);
        let xml = self.metadata_snapshot(&local_identity, &remote_uri);
        let sdp = rs_sdp::offer(&offer).to_string().into_bytes();
        self.set_sdp_and_metadata(&mut invite, sdp, xml);
        let recording = Recording {
            media_id,
            dialog,
            first_hop: request.destination,
            invite_key: None,
            reinvite_key: None,
            offer,
            forwarders: Vec::new(),
            ack: None,
            state: RecordingState::Starting,
            connected: false,
            want_paused: false,
        };
        self.recordings.insert(call, recording);
        self.recording_event(call, media_id, RecordingState::Starting);
        let key = self.start_client_tx(invite, request.destination, TxOwner::Recording(call));
        match key {
            Some(key) => {
                if let Some(r) = self.recordings.get_mut(&call) {
                    r.invite_key = Some(key);
                }
            }
            None => self.recording_failed(call, format!("cannot send to {}", request.destination)),
        }
    }

    /// The call's codec, telephone-event, whether it uses SRTP, and our identity in it.
    fn recording_inputs(&self, call: CallId) -> Option<RecordingInputs> {
        let media = self.media.get(&call)?;
        let negotiated = media.negotiated.as_ref()?;
        let call_state = self.calls.get(&call)?;
        Some((
            negotiated.codec.clone(),
            negotiated.telephone_event.clone(),
            negotiated.srtp.is_some(),
            call_state.local_identity(),
            call_state.remote_identity(),
        ))
    }

    /// Makes the body of `message` the multipart/mixed pair SIPREC uses (RFC 7866 9.1):
    /// the SDP, then the metadata with Content-Disposition: recording-session.
    fn set_sdp_and_metadata(&mut self, message: &mut Message, sdp: Vec<u8>, xml: Vec<u8>) {
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
        message.set_body(&multipart::content_type(&boundary), body);
    }

    /// The RFC 7865 snapshot sent with the recording's INVITE: who is in the call and which
    /// labelled stream carries whose voice.
    fn metadata_snapshot(&mut self, local: &NameAddr, remote: &NameAddr) -> Vec<u8> {
        let now = metadata::format_time(self.wall_clock());
        let mut id = || {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
            bytes[8..].copy_from_slice(&self.rng.next_u64().to_le_bytes());
            metadata::new_id(bytes)
        };
        let party = |who: &NameAddr, participant_id: String| metadata::Party {
            participant_id,
            aor: who.uri.to_string(),
            name: who.display_name.clone(),
        };
        let snapshot = metadata::two_party_snapshot(metadata::TwoParty {
            session_id: id(),
            sip_session_id: String::new(),
            start_time: now.clone(),
            local: party(local, id()),
            remote: party(remote, id()),
            streams: vec![
                metadata::StreamSpec {
                    stream_id: id(),
                    label: "1".into(),
                    sender: metadata::StreamSender::Local,
                },
                metadata::StreamSpec {
                    stream_id: id(),
                    label: "2".into(),
                    sender: metadata::StreamSender::Remote,
                },
            ],
            associate_time: now,
        });
        snapshot.to_xml().into_bytes()
    }

    pub(super) fn on_recording_response(&mut self, call: CallId, key: TxKey, response: Message) {
        let Some(status) = response.status() else {
            return;
        };
        if status < 200 {
            return;
        }
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        if recording.reinvite_key.as_ref() == Some(&key) {
            self.on_recording_reinvite_response(call, status, response);
            return;
        }
        if recording.invite_key.as_ref() != Some(&key) {
            return;
        }
        match status {
            200..=299 if recording.connected => {
                if let Some((destination, bytes)) = recording.ack.clone() {
                    self.transmits.push_back((destination, bytes));
                }
            }
            200..=299 => {
                recording.dialog.establish_as_uac(&response);
                recording.connected = true;
                let cseq = response.cseq().map(|c| c.number).unwrap_or(1);
                let ack = recording.dialog.request_with_cseq(Method::Ack, cseq);
                let destination = recording
                    .dialog
                    .next_hop(recording.first_hop.transport)
                    .unwrap_or(recording.first_hop);
                if let Some(via) = self.via_for(destination.transport) {
                    let mut ack = ack;
                    ack.headers.insert_first("Via", via);
                    let bytes = ack.to_bytes();
                    self.transmits.push_back((destination, bytes.clone()));
                    if let Some(r) = self.recordings.get_mut(&call) {
                        r.ack = Some((destination, bytes));
                    }
                }
                match answer_sdp(&response).and_then(|answer| {
                    let offer = &self.recordings.get(&call)?.offer;
                    Some(rs_sdp::read_answer(offer, &answer).map_err(|e| e.to_string()))
                }) {
                    Some(Ok(streams)) => self.start_forwarding(call, streams),
                    Some(Err(reason)) => {
                        self.stop_recording_dialog(call);
                        self.recording_failed(call, format!("the recorder's answer: {reason}"));
                    }
                    None => {
                        self.stop_recording_dialog(call);
                        self.recording_failed(call, "the recorder's answer had no SDP".into());
                    }
                }
            }
            420 => self.recording_failed(
                call,
                "the recorder does not support SIPREC (420 Bad Extension)".into(),
            ),
            _ => {
                let reason = response
                    .reason()
                    .unwrap_or(reason_phrase(status))
                    .to_owned();
                self.recording_failed(call, format!("the recorder refused: {status} {reason}"));
            }
        }
    }

    fn start_forwarding(&mut self, call: CallId, streams: Vec<rs_sdp::AnsweredStream>) {
        let mut forwarders = Vec::new();
        let Some(recording) = self.recordings.get(&call) else {
            return;
        };
        let keys = recording.offer.keys.clone();
        let (codec_pt, te_pt) = (
            recording.offer.codec.payload_type,
            recording
                .offer
                .telephone_event
                .as_ref()
                .map(|t| t.payload_type),
        );
        for (index, stream) in streams.into_iter().enumerate() {
            if !stream.accepted {
                continue;
            }
            let side = if stream.label == "1" {
                TapSide::Local
            } else {
                TapSide::Remote
            };
            let srtp = match (keys.as_ref().and_then(|k| k.get(index)), &stream.crypto) {
                (Some(ours), Some(theirs)) => {
                    match SrtpSession::new(theirs.suite, ours, &theirs.key_salt) {
                        Ok(session) => Some(session),
                        Err(error) => {
                            self.recording_failed(call, format!("recording SRTP: {error}"));
                            return;
                        }
                    }
                }
                _ => None,
            };
            let mut payload_types = vec![(codec_pt, stream.payload_type)];
            if let (Some(ours), Some(theirs)) = (te_pt, stream.telephone_event) {
                payload_types.push((ours, theirs));
            }
            forwarders.push(Forwarder::new(
                side,
                stream.destination,
                self.rng.next_u64() as u32,
                self.rng.next_u64() as u16,
                self.rng.next_u64() as u32,
                payload_types,
                srtp,
            ));
        }
        let media_id = match self.recordings.get_mut(&call) {
            Some(r) => {
                r.forwarders = forwarders;
                r.state = RecordingState::Recording;
                r.media_id
            }
            None => return,
        };
        if let Some(media) = self.media.get_mut(&call) {
            media.session.set_tapping(true);
        }
        let had_gaps = self
            .recording_plans
            .get(&call)
            .is_some_and(|plan| plan.failures > 0);
        let state = if had_gaps {
            RecordingState::RecordingWithGaps
        } else {
            RecordingState::Recording
        };
        self.cancel_timer(super::Timer::RecordingDeadline(call));
        self.recording_event(call, media_id, state);
    }

    pub(super) fn forward_to_recording(&mut self, call: CallId, tapped: &TappedPacket) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let media_id = recording.media_id;
        for forwarder in &mut recording.forwarders {
            if let Some(data) = forwarder.forward(tapped) {
                self.media_outputs.push_back(super::Output::Media {
                    call: media_id,
                    destination: forwarder.destination,
                    data,
                    rtcp: false,
                });
            }
        }
    }

    pub(super) fn pause_recording(&mut self, call: CallId, paused: bool) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        recording.want_paused = paused;
        if paused {
            // Local sending stops first, then the recorder is told (RFC 7245 3.2.3).
            for forwarder in &mut recording.forwarders {
                forwarder.set_paused(true);
            }
            let media_id = recording.media_id;
            recording.state = RecordingState::Paused { by: Party::Local };
            self.recording_event(call, media_id, RecordingState::Paused { by: Party::Local });
        }
        self.send_recording_reinvite(call);
    }

    fn send_recording_reinvite(&mut self, call: CallId) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        if !recording.connected || recording.reinvite_key.is_some() {
            return;
        }
        recording.offer.direction = if recording.want_paused {
            Direction::Inactive
        } else {
            Direction::SendOnly
        };
        recording.offer.session_version += 1;
        let mut invite = recording.dialog.request(Method::Invite);
        invite.headers.push("Require", "siprec");
        invite.set_body(
            "application/sdp",
            rs_sdp::offer(&recording.offer).to_string().into_bytes(),
        );
        let destination = recording
            .dialog
            .next_hop(recording.first_hop.transport)
            .unwrap_or(recording.first_hop);
        let key = self.start_client_tx(invite, destination, TxOwner::Recording(call));
        if let Some(r) = self.recordings.get_mut(&call) {
            r.reinvite_key = key;
        }
    }

    fn on_recording_reinvite_response(&mut self, call: CallId, status: u16, response: Message) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        recording.reinvite_key = None;
        if (200..300).contains(&status) {
            let cseq = response.cseq().map(|c| c.number).unwrap_or(1);
            let mut ack = recording.dialog.request_with_cseq(Method::Ack, cseq);
            let destination = recording
                .dialog
                .next_hop(recording.first_hop.transport)
                .unwrap_or(recording.first_hop);
            let paused = recording.offer.direction == Direction::Inactive;
            let wanted = recording.want_paused;
            if !paused {
                for forwarder in &mut recording.forwarders {
                    forwarder.set_paused(false);
                }
            }
            let media_id = recording.media_id;
            if let Some(via) = self.via_for(destination.transport) {
                ack.headers.insert_first("Via", via);
                self.transmits.push_back((destination, ack.to_bytes()));
            }
            if !paused {
                if let Some(r) = self.recordings.get_mut(&call) {
                    r.state = RecordingState::Recording;
                }
                self.recording_event(call, media_id, RecordingState::Recording);
            }
            if paused != wanted {
                self.send_recording_reinvite(call);
            }
        } else if matches!(status, 408 | 481) {
            self.recording_failed(call, format!("the recorder lost the session ({status})"));
        }
    }

    /// Ends the recording (user's stop or the call's end): media first, then BYE.
    pub(super) fn stop_recording(&mut self, call: CallId) {
        let plan = self.recording_plans.remove(&call);
        self.cancel_timer(super::Timer::RecordingRetry(call));
        let Some(recording) = self.recordings.get(&call) else {
            // Between attempts there is no dialog, only the plan.
            if let Some(plan) = plan {
                self.recording_event(call, plan.media_id, RecordingState::Off);
            }
            return;
        };
        let media_id = recording.media_id;
        self.stop_recording_dialog(call);
        self.recordings.remove(&call);
        self.recording_event(call, media_id, RecordingState::Off);
    }

    fn stop_recording_dialog(&mut self, call: CallId) {
        if let Some(media) = self.media.get_mut(&call) {
            media.session.set_tapping(false);
        }
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        recording.forwarders.clear();
        if !recording.connected {
            // Not answered yet: stop retransmitting; should the 2xx still come, the stray
            // response path ACKs and BYEs it.
            if let Some(key) = recording.invite_key.take() {
                self.transactions.abandon(&key);
            }
            return;
        }
        recording.connected = false;
        let bye = recording.dialog.request(Method::Bye);
        let destination = recording
            .dialog
            .next_hop(recording.first_hop.transport)
            .unwrap_or(recording.first_hop);
        if self
            .start_client_tx(bye, destination, TxOwner::RecordingBye)
            .is_some()
        {
            self.recording_byes += 1;
        }
    }

    /// A mandatory recording stayed down past its grace: the call may not go on.
    pub(super) fn recording_deadline(&mut self, call: CallId) {
        let recording = self.recordings.get(&call).is_some_and(|r| {
            matches!(
                r.state,
                RecordingState::Recording | RecordingState::RecordingWithGaps
            )
        });
        if recording || !self.calls.contains_key(&call) {
            return;
        }
        let secs = MANDATORY_GRACE.as_secs();
        self.send_bye(call);
        self.end_call(
            call,
            None,
            &format!("recording is mandatory and the recorder was unreachable for {secs} s"),
            Party::Local,
        );
    }

    pub(super) fn recording_bye_done(&mut self) {
        self.recording_byes = self.recording_byes.saturating_sub(1);
        self.check_shutdown_complete();
    }

    pub(super) fn recording_failed(&mut self, call: CallId, reason: String) {
        if let Some(media) = self.media.get_mut(&call) {
            media.session.set_tapping(false);
        }
        let Some(recording) = self.recordings.remove(&call) else {
            return;
        };
        let call_goes_on = self.calls.contains_key(&call);
        match self.recording_plans.get_mut(&call) {
            Some(plan) if call_goes_on => {
                if plan.request.mandatory {
                    let deadline = self.now + MANDATORY_GRACE;
                    // Only the first failure of an outage starts the clock.
                    if !self.timer_armed(super::Timer::RecordingDeadline(call)) {
                        self.set_timer(deadline, super::Timer::RecordingDeadline(call));
                    }
                }
                let Some(plan) = self.recording_plans.get_mut(&call) else {
                    return;
                };
                plan.failures += 1;
                let attempt = plan.failures;
                let in_seconds = retry_delay(attempt);
                let at = self.now + core::time::Duration::from_secs(in_seconds);
                self.set_timer(at, super::Timer::RecordingRetry(call));
                self.recording_event(
                    call,
                    recording.media_id,
                    RecordingState::Retrying {
                        reason,
                        attempt,
                        in_seconds,
                    },
                );
            }
            _ => {
                self.recording_plans.remove(&call);
                self.recording_event(call, recording.media_id, RecordingState::Failed { reason });
            }
        }
    }

    fn recording_event(&mut self, call: CallId, media_id: CallId, state: RecordingState) {
        let indication = match &state {
            RecordingState::Starting => None,
            RecordingState::Recording | RecordingState::RecordingWithGaps => Some("on"),
            RecordingState::Paused { .. } => Some("paused"),
            RecordingState::Off
            | RecordingState::Failed { .. }
            | RecordingState::Retrying { .. } => Some("off"),
        };
        if let Some(value) = indication {
            self.indicate_recording(call, value);
        }
        self.events.push_back(Event::Recording {
            call,
            recording: media_id,
            state,
        });
    }

    /// A BYE from the recorder ends the recording, not the call.
    pub(super) fn recording_for_dialog(&self, request: &Message) -> Option<CallId> {
        self.recordings
            .iter()
            .find(|(_, r)| r.dialog.matches_request(request))
            .map(|(call, _)| *call)
    }

    pub(super) fn recorder_hung_up(&mut self, call: CallId) {
        if let Some(r) = self.recordings.get_mut(&call) {
            r.connected = false;
        }
        self.recording_failed(call, "the recorder ended the recording".into());
    }
}

impl Engine {
    /// The recorder re-INVITEs (RFC 7866 7.1.2, 9.1): every stream inactive pauses the
    /// recording, recvonly resumes it, and a metadata request gets a fresh snapshot.
    pub(super) fn on_recorder_reinvite(&mut self, call: CallId, key: TxKey, request: Message) {
        let offer = answer_sdp(&request);
        let wants_metadata = request
            .content_type()
            .is_some_and(|t| t == multipart::METADATA_REQUEST_CONTENT_TYPE)
            || request.headers.get("Content-Type").is_some_and(|ct| {
                multipart::parse(ct, &request.body).is_ok_and(|parts| {
                    multipart::find(&parts, multipart::METADATA_REQUEST_CONTENT_TYPE).is_some()
                })
            });
        let parties = self
            .calls
            .get(&call)
            .map(|c| (c.local_identity(), c.remote_identity()));
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let media_id = recording.media_id;
        let mut new_state = None;
        if let Some(sdp) = &offer {
            let recorder_pauses = sdp
                .media
                .iter()
                .all(|m| m.port == 0 || m.direction == Direction::Inactive);
            let paused = recorder_pauses || recording.want_paused;
            for forwarder in &mut recording.forwarders {
                forwarder.set_paused(paused);
            }
            recording.offer.direction = if paused {
                Direction::Inactive
            } else {
                Direction::SendOnly
            };
            new_state = Some(if recorder_pauses {
                RecordingState::Paused { by: Party::Remote }
            } else if paused {
                RecordingState::Paused { by: Party::Local }
            } else {
                RecordingState::Recording
            });
        }
        recording.offer.session_version += 1;
        let sdp = rs_sdp::offer(&recording.offer).to_string().into_bytes();
        let tag = recording.dialog.local_tag.clone();
        let contact = recording.dialog.local_contact.clone();
        let mut ok = request.response(200, "OK", Some(&tag));
        ok.headers.push("Contact", contact);
        ok.headers.push("Require", "siprec");
        match (wants_metadata, parties) {
            (true, Some((local, remote))) => {
                let xml = self.metadata_snapshot(&local, &remote);
                self.set_sdp_and_metadata(&mut ok, sdp, xml);
            }
            _ => ok.set_body(multipart::SDP_CONTENT_TYPE, sdp),
        }
        self.send_response(&key, ok);
        if let Some(state) = new_state {
            if let Some(r) = self.recordings.get_mut(&call) {
                r.state = state.clone();
            }
            self.recording_event(call, media_id, state);
        }
    }
}

/// The SDP of a response: the whole body, or its application/sdp part in a multipart body.
fn answer_sdp(response: &Message) -> Option<SessionDescription> {
    if response.content_type().as_deref() == Some("application/sdp") {
        return SessionDescription::parse(&String::from_utf8_lossy(&response.body)).ok();
    }
    let content_type = response.headers.get("Content-Type")?;
    let parts = crate::sip::multipart::parse(content_type, &response.body).ok()?;
    let sdp = crate::sip::multipart::find(&parts, "application/sdp")?;
    SessionDescription::parse(&String::from_utf8_lossy(&sdp.body)).ok()
}
