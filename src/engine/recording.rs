//! Recording sessions (RFC 7866 SRC side): an INVITE dialog towards the recorder beside each
//! recorded call, whose streams carry copies of both sides of the call, and the RFC 7865
//! metadata that says whose voice each stream is, kept current while the call changes.

use super::invite_session::{InviteSession, Unacked, UnackedStep};
use super::{CallId, Engine, Event, Party, Timer, TxOwner};
use crate::media::FRAME_SAMPLES;
use crate::media::codec::CodecKind;
use crate::media::session::{TapSide, TappedPacket};
use crate::media::srtp::SrtpSession;
use crate::recording::forwarder::Forwarder;
use crate::recording::metadata::{self, Gap};
use crate::recording::rs_sdp::{self, AnsweredStream, RsOffer};
use crate::recording::transcoder::{PcmSource, Transcoder, TranscoderSetup};
use crate::sdp::{Direction, PayloadFormat, SessionDescription};
use crate::sip::auth::{ChallengeError, Credentials, DigestSession, Retried, answer_challenge};
use crate::sip::dialog::{Dialog, DialogSecurity};
use crate::sip::message::{Message, Method, reason_phrase};
use crate::sip::multipart;
use crate::sip::session_timer::{MIN_SE, SessionExpires};
use crate::sip::transaction::TxKey;
use crate::sip::transport::Destination;
use crate::sip::uri::{NameAddr, Uri};

/// What the indicator shows. It follows the recording dialog and its media, never the button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingState {
    Off,
    /// The INVITE to the recorder is out, or the recorder accepted and the call's media is
    /// not flowing yet.
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

/// How the call's two voices reach the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordingMode {
    /// One stream per side (label 1 = the local user, label 2 = the far end).
    #[default]
    Separate,
    /// One stream with both voices mixed (label 1).
    Mixed,
}

/// Where and how to record a call.
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
    /// Recording is mandatory: a call is not placed or answered before its recording is up,
    /// and a call whose recording is lost and not back within [`MANDATORY_GRACE`] is ended.
    pub mandatory: bool,
    pub mode: RecordingMode,
    /// SRTP on the recording even when the call itself is plain RTP.
    pub srtp: bool,
    /// For a recorder that challenges (digest, RFC 3261 22).
    pub credentials: Option<Credentials>,
}

/// A recording that starts with the call: given with the dial or the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingStart {
    /// The id the driver knows the recording's media sockets by.
    pub recording: CallId,
    pub request: RecordingRequest,
}

/// How long a mandatory recording may be down before the call is ended.
pub const MANDATORY_GRACE: core::time::Duration = core::time::Duration::from_secs(10);

/// What waits for a mandatory recording to be up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// The call's INVITE.
    Dial,
    /// The 200 OK to the caller, with media on this port.
    Answer { media_port: u16 },
}

/// The call as the metadata describes it, across all its recording sessions: the same IDs
/// in every snapshot, so a recorder can join the pieces of a call with gaps.
#[derive(Debug)]
pub(super) struct CallRecord {
    session_id: String,
    local_id: String,
    remote_id: String,
    stream_ids: Vec<String>,
    /// The streams' labels, in m-line order: the first carries the local user (or both,
    /// when there is only one).
    labels: Vec<String>,
    start_time: String,
    local: NameAddr,
    remote: NameAddr,
    /// When the current far end joined (the start, or a change of identity).
    remote_since: String,
    /// Far ends that were replaced (transfer, a new asserted identity): id, identity,
    /// joined, left.
    former_remotes: Vec<(String, NameAddr, String, String)>,
    gaps: Vec<Gap>,
    on_hold: bool,
    end_time: Option<String>,
}

/// How a recording is re-established after failures, for as long as the call lasts.
#[derive(Debug)]
pub(super) struct RetryPlan {
    media_id: CallId,
    request: RecordingRequest,
    failures: u32,
    record: CallRecord,
    gate: Option<Gate>,
    /// The recorder started this recording: it is not ours to retry.
    recorder_initiated: bool,
    /// The last refusal's Retry-After (seconds): no new attempt at that recorder before.
    retry_after: Option<u64>,
}

/// Backoff between attempts: 2 s doubling to a minute.
fn retry_delay(failures: u32) -> u64 {
    (1u64 << failures.min(6)).min(60)
}

/// The seconds of a Retry-After header (RFC 3261 20.33): `120 (maintenance);duration=60`.
fn retry_after_seconds(response: &Message) -> Option<u64> {
    let value = response.headers.get("Retry-After")?.trim_start();
    let digits = value.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// One stream towards the recorder.
#[derive(Debug)]
enum RsStream {
    /// The recorder takes the call's codec: packets are copied.
    Forward(Forwarder),
    /// Another codec, or mixed mode: the call's audio is encoded afresh.
    Transcode(Transcoder),
}

impl RsStream {
    fn set_paused(&mut self, paused: bool) {
        match self {
            RsStream::Forward(f) => f.set_paused(paused),
            RsStream::Transcode(t) => t.set_paused(paused),
        }
    }
}

#[derive(Debug)]
pub(super) struct Recording {
    /// The id the driver knows the recording's media sockets by.
    media_id: CallId,
    session: InviteSession,
    /// The INVITE's body, sent again when the recorder challenges.
    invite_body: (String, Vec<u8>),
    offer: RsOffer,
    streams: Vec<RsStream>,
    /// The recorder's answer while the call has no media yet: streams are built from it
    /// once the call's codec is known.
    answered: Option<Vec<AnsweredStream>>,
    /// Some stream encodes the call's audio, so every tick's PCM is wanted.
    wants_pcm: bool,
    state: RecordingState,
    /// A pause was asked while the resume (or the reverse) was in flight.
    want_paused: bool,
    /// The metadata changed since the recorder last heard it.
    metadata_dirty: bool,
}

impl Engine {
    /// Record a call that is up (the user pressed Record).
    pub(super) fn start_recording(
        &mut self,
        call: CallId,
        media_id: CallId,
        request: RecordingRequest,
    ) {
        self.plan_recording(call, media_id, request, None);
    }

    /// Record a call from its start; with a gate, that step of the call waits for the
    /// recording to be up.
    pub(super) fn plan_recording(
        &mut self,
        call: CallId,
        media_id: CallId,
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
            },
        );
        self.attempt_recording(call, media_id, request);
    }

    pub(super) fn new_id(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        metadata::new_id(bytes)
    }

    pub(super) fn new_call_record(
        &mut self,
        call: CallId,
        mode: RecordingMode,
    ) -> Option<CallRecord> {
        let (local, remote) = {
            let c = self.calls.get(&call)?;
            (c.local_identity(), c.remote_identity())
        };
        let now = metadata::format_time(self.wall_clock());
        let streams = match mode {
            RecordingMode::Separate => 2,
            RecordingMode::Mixed => 1,
        };
        let session_id = self.new_id();
        self.events.push_back(Event::RecordingSessionId {
            call,
            session_id: session_id.clone(),
        });
        Some(CallRecord {
            session_id,
            local_id: self.new_id(),
            remote_id: self.new_id(),
            stream_ids: (0..streams).map(|_| self.new_id()).collect(),
            labels: (1..=streams).map(|n| n.to_string()).collect(),
            start_time: now.clone(),
            local,
            remote,
            remote_since: now,
            former_remotes: Vec::new(),
            gaps: Vec::new(),
            on_hold: false,
            end_time: None,
        })
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
        let request = plan.next_request();
        let media_id = plan.media_id;
        self.attempt_recording(call, media_id, request);
    }

    fn attempt_recording(&mut self, call: CallId, media_id: CallId, request: RecordingRequest) {
        if self.recordings.contains_key(&call) {
            return;
        }
        let call_srtp = self
            .media
            .get(&call)
            .and_then(|m| m.negotiated.as_ref())
            .is_some_and(|n| n.srtp.is_some());
        let media_ready = self.media.contains_key(&call);
        let labels: Vec<String> = match request.mode {
            RecordingMode::Separate => vec!["1".into(), "2".into()],
            RecordingMode::Mixed => vec!["1".into()],
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
        let (codecs, telephone_event) = self.recording_codecs(call, request.mode);
        let session_id = self.rng.next_u64() >> 2;
        let offer = RsOffer {
            address: self.local_ip(),
            port: request.media_port,
            codecs,
            telephone_event,
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
        let mut session = InviteSession::new(dialog, request.destination);
        session.digest = request.credentials.clone().map(DigestSession::new);
        let recording = Recording {
            media_id,
            session,
            invite_body,
            offer,
            streams: Vec::new(),
            answered: None,
            wants_pcm: false,
            state: RecordingState::Starting,
            want_paused: false,
            metadata_dirty: false,
        };
        self.recordings.insert(call, recording);
        self.recording_event(call, media_id, RecordingState::Starting);
        self.send_recording_invite(call, None);
    }

    /// The initial INVITE (again with credentials after a challenge, CSeq one higher).
    fn send_recording_invite(
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
        invite.headers.push("Allow", super::ALLOW);
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

    /// The recording's codecs: the call's first (copied as it is), then the others we can
    /// encode, for a recorder that wants something else. Telephone-events only travel
    /// with copied packets, so mixed mode offers none.
    pub(super) fn recording_codecs(
        &self,
        call: CallId,
        mode: RecordingMode,
    ) -> (Vec<PayloadFormat>, Option<PayloadFormat>) {
        let negotiated = self.media.get(&call).and_then(|m| m.negotiated.as_ref());
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
        for codec in &self.config.codecs {
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
    pub(super) fn sdp_and_metadata(&mut self, sdp: Vec<u8>, xml: Vec<u8>) -> (String, Vec<u8>) {
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

    /// The complete RFC 7865 snapshot of the call: who is in it, which labelled stream
    /// carries whose voice, who left, and the stretches no recording captured.
    fn metadata_snapshot(&self, call: CallId) -> Vec<u8> {
        let Some(plan) = self.recording_plans.get(&call) else {
            return Vec::new();
        };
        let record = &plan.record;
        let party = |who: &NameAddr, participant_id: &str| metadata::Party {
            participant_id: participant_id.to_owned(),
            aor: who.uri.to_string(),
            name: who.display_name.clone(),
        };
        let senders: &[metadata::StreamSender] = match record.labels.len() {
            1 => &[metadata::StreamSender::Both],
            _ => &[
                metadata::StreamSender::Local,
                metadata::StreamSender::Remote,
            ],
        };
        let streams = record
            .stream_ids
            .iter()
            .zip(&record.labels)
            .zip(senders)
            .map(|((id, label), sender)| metadata::StreamSpec {
                stream_id: id.clone(),
                label: label.clone(),
                sender: *sender,
            })
            .collect();
        let mut snapshot = metadata::two_party_snapshot(metadata::TwoParty {
            session_id: record.session_id.clone(),
            sip_session_id: String::new(),
            start_time: record.start_time.clone(),
            local: party(&record.local, &record.local_id),
            remote: party(&record.remote, &record.remote_id),
            streams,
            associate_time: record.start_time.clone(),
        });
        if let Some(assoc) = snapshot
            .participant_session_assocs
            .iter_mut()
            .find(|a| a.participant_id == record.remote_id)
        {
            assoc.associate_time = Some(record.remote_since.clone());
        }
        if record.on_hold {
            // On hold nobody's voice crosses the call.
            for assoc in &mut snapshot.participant_stream_assocs {
                assoc.send.clear();
                assoc.recv.clear();
            }
        }
        for (id, who, joined, left) in &record.former_remotes {
            snapshot.participants.push(metadata::Participant {
                id: id.clone(),
                aor: who.uri.to_string(),
                name: who.display_name.clone(),
            });
            snapshot
                .participant_session_assocs
                .push(metadata::ParticipantSessionAssoc {
                    participant_id: id.clone(),
                    session_id: record.session_id.clone(),
                    associate_time: Some(joined.clone()),
                    disassociate_time: Some(left.clone()),
                });
        }
        if let Some(end) = &record.end_time {
            if let Some(session) = snapshot.sessions.first_mut() {
                session.end_time = Some(end.clone());
            }
            for assoc in &mut snapshot.participant_session_assocs {
                assoc.disassociate_time.get_or_insert_with(|| end.clone());
            }
            for assoc in &mut snapshot.session_recording_assocs {
                assoc.disassociate_time = Some(end.clone());
            }
        }
        // A snapshot goes to a recording session that is starting or running, so a gap
        // still open is the one this session ends: it ends now.
        let now = metadata::format_time(self.wall_clock());
        snapshot.gaps = record
            .gaps
            .iter()
            .map(|gap| Gap {
                to: gap.to.clone().or_else(|| Some(now.clone())),
                ..gap.clone()
            })
            .collect();
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
                let cseq = response.cseq().map(|c| c.number).unwrap_or(1);
                let ack = recording
                    .session
                    .dialog
                    .request_with_cseq(Method::Ack, cseq);
                let destination = recording.session.next_hop();
                if let Some(via) = self.via_for(destination.transport) {
                    let mut ack = ack;
                    ack.headers.insert_first("Via", via);
                    let bytes = ack.to_bytes();
                    self.transmits.push_back((destination, bytes.clone()));
                    if let Some(r) = self.recordings.get_mut(&call) {
                        r.session.ack = Some((destination, bytes));
                    }
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
    fn retry_recording_with_credentials(&mut self, call: CallId, status: u16, response: &Message) {
        let cnonce = self.rng.token(16);
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let uri = recording.session.dialog.remote_target.to_string();
        let body = recording.invite_body.1.clone();
        let retried = Retried {
            method: "INVITE",
            uri: &uri,
            body: &body,
            cnonce: &cnonce,
        };
        match answer_challenge(recording.session.digest.as_mut(), response, retried) {
            Ok(auth) => {
                recording.session.dialog.local_cseq += 1;
                self.send_recording_invite(call, Some((auth.name(), auth.value())));
            }
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
    fn on_recorder_answer(&mut self, call: CallId, answered: Vec<AnsweredStream>) {
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
        match gate {
            Some(Gate::Dial) => self.send_invite(call, None),
            Some(Gate::Answer { media_port }) => self.answer(call, media_port),
            None => {}
        }
    }

    fn close_open_gap(&mut self, call: CallId) {
        let now = metadata::format_time(self.wall_clock());
        if let Some(plan) = self.recording_plans.get_mut(&call)
            && let Some(gap) = plan.record.gaps.last_mut()
            && gap.to.is_none()
        {
            gap.to = Some(now);
        }
    }

    /// The call's media is up or changed: a recording waiting for it builds its streams and
    /// tells the recorder media is coming (inactive becomes sendonly).
    pub(super) fn recording_media_ready(&mut self, call: CallId) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let Some(answered) = recording.answered.take() else {
            return;
        };
        self.build_streams(call, answered);
        if let Some(r) = self.recordings.get_mut(&call) {
            for stream in &mut r.streams {
                // Nothing goes out before the recorder agreed to sendonly.
                stream.set_paused(true);
            }
        }
        self.send_recording_reinvite(call);
    }

    fn build_streams(&mut self, call: CallId, answered: Vec<AnsweredStream>) {
        let Some(recording) = self.recordings.get(&call) else {
            return;
        };
        let mode = self
            .recording_plans
            .get(&call)
            .map(|p| p.request.mode)
            .unwrap_or_default();
        let call_formats = self.media.get(&call).and_then(|m| {
            let n = m.negotiated.as_ref()?;
            Some((n.codec.clone(), n.telephone_event.clone()))
        });
        let keys = recording.offer.keys.clone();
        let mut streams = Vec::new();
        for (index, stream) in answered.into_iter().enumerate() {
            if !stream.accepted {
                continue;
            }
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
            let local = stream.label == "1";
            let copy = match (&call_formats, mode) {
                (Some((codec, _)), RecordingMode::Separate) => codec.same_codec(&stream.codec),
                _ => false,
            };
            if copy && let Some((codec, telephone_event)) = &call_formats {
                let mut payload_types = vec![(codec.payload_type, stream.codec.payload_type)];
                if let (Some(ours), Some(theirs)) = (telephone_event, stream.telephone_event) {
                    payload_types.push((ours.payload_type, theirs));
                }
                streams.push(RsStream::Forward(Forwarder::new(
                    if local {
                        TapSide::Local
                    } else {
                        TapSide::Remote
                    },
                    stream.destination,
                    self.rng.next_u64() as u32,
                    self.rng.next_u64() as u16,
                    self.rng.next_u64() as u32,
                    payload_types,
                    srtp,
                )));
                continue;
            }
            let Some(kind) = CodecKind::from_encoding(&stream.codec.encoding) else {
                self.recording_failed(
                    call,
                    format!(
                        "the recorder chose {}, which we cannot encode",
                        stream.codec.encoding
                    ),
                );
                return;
            };
            let source = match (mode, local) {
                (RecordingMode::Mixed, _) => PcmSource::Mixed,
                (_, true) => PcmSource::Local,
                (_, false) => PcmSource::Remote,
            };
            let setup = TranscoderSetup {
                source,
                destination: stream.destination,
                codec: kind,
                payload_type: stream.codec.payload_type,
                fmtp: stream.codec.fmtp.clone(),
                ssrc: self.rng.next_u64() as u32,
                initial_sequence: self.rng.next_u64() as u16,
                initial_timestamp: self.rng.next_u64() as u32,
                srtp,
            };
            match Transcoder::new(setup) {
                Ok(transcoder) => streams.push(RsStream::Transcode(transcoder)),
                Err(error) => {
                    self.recording_failed(call, format!("recording encoder: {error}"));
                    return;
                }
            }
        }
        let copies = streams.iter().any(|s| matches!(s, RsStream::Forward(_)));
        let wants_pcm = streams.iter().any(|s| matches!(s, RsStream::Transcode(_)));
        let media_id = match self.recordings.get_mut(&call) {
            Some(r) => {
                r.streams = streams;
                r.wants_pcm = wants_pcm;
                r.media_id
            }
            None => return,
        };
        if let Some(media) = self.media.get_mut(&call) {
            media.session.set_tapping(copies);
        }
        let sending = self
            .recordings
            .get(&call)
            .is_some_and(|r| r.offer.direction == Direction::SendOnly);
        if sending {
            self.cancel_timer(Timer::RecordingDeadline(call));
            let state = self.live_state(call);
            if let Some(r) = self.recordings.get_mut(&call) {
                r.state = state.clone();
            }
            self.recording_event(call, media_id, state);
        }
    }

    /// Recording, or recording with gaps once any attempt failed during the call.
    fn live_state(&self, call: CallId) -> RecordingState {
        let had_gaps = self
            .recording_plans
            .get(&call)
            .is_some_and(|plan| plan.failures > 0);
        if had_gaps {
            RecordingState::RecordingWithGaps
        } else {
            RecordingState::Recording
        }
    }

    pub(super) fn forward_to_recording(&mut self, call: CallId, tapped: &TappedPacket) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let media_id = recording.media_id;
        for stream in &mut recording.streams {
            let RsStream::Forward(forwarder) = stream else {
                continue;
            };
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

    pub(super) fn recording_is_mandatory(&self, call: CallId) -> bool {
        self.recording_plans
            .get(&call)
            .is_some_and(|plan| plan.request.mandatory)
    }

    /// Whether the call's recording wants every tick's audio (it encodes some stream).
    pub(super) fn recording_wants_pcm(&self, call: CallId) -> bool {
        self.recordings.get(&call).is_some_and(|r| r.wants_pcm)
    }

    /// One tick of the call's audio for streams that encode: what the user sent and what
    /// the far end's audio decoded to.
    pub(super) fn encode_for_recording(&mut self, call: CallId, local: &[f32], remote: &[f32]) {
        if local.len() != FRAME_SAMPLES || remote.len() != FRAME_SAMPLES {
            return;
        }
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let media_id = recording.media_id;
        for stream in &mut recording.streams {
            let RsStream::Transcode(transcoder) = stream else {
                continue;
            };
            if let Some(data) = transcoder.encode(local, remote) {
                self.media_outputs.push_back(super::Output::Media {
                    call: media_id,
                    destination: transcoder.destination,
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
    fn metadata_changed(&mut self, call: CallId) {
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

    pub(super) fn send_recording_reinvite(&mut self, call: CallId) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        if !recording.session.connected || recording.session.reinvite_key.is_some() {
            return;
        }
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

    fn on_recording_reinvite_response(&mut self, call: CallId, status: u16, response: Message) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        recording.session.reinvite_key = None;
        if (200..300).contains(&status) {
            let cseq = response.cseq().map(|c| c.number).unwrap_or(1);
            let mut ack = recording
                .session
                .dialog
                .request_with_cseq(Method::Ack, cseq);
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
            if let Some(via) = self.via_for(destination.transport) {
                ack.headers.insert_first("Via", via);
                self.transmits.push_back((destination, ack.to_bytes()));
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
        } else if self.recordings.get(&call).is_some_and(|r| r.metadata_dirty) {
            self.send_recording_reinvite(call);
        }
    }

    /// Ends the recording (the user's stop or the call's end): media first; then, when the
    /// call ended, the recorder gets the metadata's end times; then BYE.
    pub(super) fn stop_recording(&mut self, call: CallId) {
        self.cancel_timer(Timer::RecordingRetry(call));
        let call_ended = !self.calls.contains_key(&call);
        let now = metadata::format_time(self.wall_clock());
        if call_ended && let Some(plan) = self.recording_plans.get_mut(&call) {
            plan.record.end_time = Some(now);
        }
        let final_metadata = self.metadata_snapshot(call);
        let plan = self.recording_plans.remove(&call);
        if let Some(plan) = &plan
            && !plan.record.gaps.is_empty()
        {
            self.events.push_back(Event::RecordingGaps {
                call,
                gaps: plan.record.gaps.clone(),
            });
        }
        let Some(recording) = self.recordings.get(&call) else {
            // Between attempts there is no dialog, only the plan.
            if let Some(plan) = plan {
                self.recording_event(call, plan.media_id, RecordingState::Off);
            }
            return;
        };
        let media_id = recording.media_id;
        if call_ended && recording.session.connected && recording.session.reinvite_key.is_none() {
            self.close_with_metadata(call, final_metadata);
        } else {
            self.stop_recording_dialog(call);
            self.recordings.remove(&call);
        }
        self.recording_event(call, media_id, RecordingState::Off);
    }

    /// The call ended: one last re-INVITE carries the end times, and its answer (or its
    /// failure) brings the BYE. The recording moves out of the call's way meanwhile.
    fn close_with_metadata(&mut self, call: CallId, xml: Vec<u8>) {
        if let Some(media) = self.media.get_mut(&call) {
            media.session.set_tapping(false);
        }
        let Some(mut recording) = self.recordings.remove(&call) else {
            return;
        };
        recording.streams.clear();
        recording.wants_pcm = false;
        // The same SDP, unchanged version (RFC 3264 8): only the metadata is news, and a
        // recorder must not read the end of the call as a pause.
        let mut invite = recording.session.dialog.request(Method::Invite);
        invite.headers.push("Require", "siprec");
        let sdp = rs_sdp::offer(&recording.offer).to_string().into_bytes();
        let (content_type, body) = self.sdp_and_metadata(sdp, xml);
        invite.set_body(&content_type, body);
        let destination = recording.session.next_hop();
        let closing = recording.media_id;
        match self.start_client_tx(invite, destination, TxOwner::RecordingClose(closing)) {
            Some(_) => {
                self.recording_byes += 1;
                self.closing_recordings.insert(closing, recording);
            }
            None => {
                self.recordings.insert(call, recording);
                self.stop_recording_dialog(call);
                self.recordings.remove(&call);
            }
        }
    }

    /// The closing re-INVITE was answered (or not): ACK a 2xx, then BYE.
    pub(super) fn on_closing_response(&mut self, closing: CallId, response: Option<Message>) {
        let Some(mut recording) = self.closing_recordings.remove(&closing) else {
            return;
        };
        self.recording_byes = self.recording_byes.saturating_sub(1);
        let destination = recording.session.next_hop();
        if let Some(response) = &response
            && response.status().is_some_and(|s| (200..300).contains(&s))
        {
            let cseq = response.cseq().map(|c| c.number).unwrap_or(1);
            let mut ack = recording
                .session
                .dialog
                .request_with_cseq(Method::Ack, cseq);
            if let Some(via) = self.via_for(destination.transport) {
                ack.headers.insert_first("Via", via);
                self.transmits.push_back((destination, ack.to_bytes()));
            }
        }
        let bye = recording.session.dialog.request(Method::Bye);
        recording.session.connected = false;
        if self
            .start_client_tx(bye, destination, TxOwner::RecordingBye)
            .is_some()
        {
            self.recording_byes += 1;
        }
        self.check_shutdown_complete();
    }

    fn stop_recording_dialog(&mut self, call: CallId) {
        self.cancel_timer(Timer::RecorderSessionExpiry(call));
        self.cancel_timer(Timer::RecordingGlareRetry(call));
        if let Some(media) = self.media.get_mut(&call) {
            media.session.set_tapping(false);
        }
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        recording.streams.clear();
        recording.wants_pcm = false;
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
        let Some(recording) = self.recordings.remove(&call) else {
            return;
        };
        self.attempt_failed(call, recording.media_id, reason);
    }

    /// An attempt at recording the call failed, before or after its INVITE left: retry,
    /// fail over, open a gap or give up, as the plan says.
    fn attempt_failed(&mut self, call: CallId, media_id: CallId, reason: String) {
        if let Some(media) = self.media.get_mut(&call) {
            media.session.set_tapping(false);
        }
        let call_goes_on = self.calls.contains_key(&call);
        let now = metadata::format_time(self.wall_clock());
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
            self.refuse_gated_call(call, &reason);
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
            // Only the first failure of an outage starts the clock.
            let deadline = self.now + MANDATORY_GRACE;
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

    /// A call that waited for its mandatory recording cannot go ahead.
    fn refuse_gated_call(&mut self, call: CallId, reason: &str) {
        let text = format!("recording is mandatory and the recorder is unavailable: {reason}");
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
        self.notice_recording_state(call, &state);
        self.events.push_back(Event::Recording {
            call,
            recording: media_id,
            state,
        });
    }

    /// Whether `call_id` is one of our recording sessions' dialogs, open or closing.
    pub(super) fn is_recording_dialog(&self, call_id: &str) -> bool {
        self.recordings
            .values()
            .chain(self.closing_recordings.values())
            .any(|r| r.session.dialog.call_id == call_id)
    }

    /// A request within a recording dialog: which call's recording it is.
    pub(super) fn recording_for_dialog(&self, request: &Message) -> Option<CallId> {
        self.recordings
            .iter()
            .find(|(_, r)| r.session.dialog.matches_request(request))
            .map(|(call, _)| *call)
    }

    /// A request within a recording that is closing (the call ended, BYE pending).
    pub(super) fn closing_recording_for_dialog(&self, request: &Message) -> bool {
        self.closing_recordings
            .values()
            .any(|r| r.session.dialog.matches_request(request))
    }

    /// A recording's TCP or TLS connection closed: its recorder is gone (a killed process
    /// says nothing else), so the recording has failed, even with no request in flight.
    pub(super) fn recording_connection_lost(&mut self, peer: Destination, reason: &str) {
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
    pub(super) fn closing_recording_ended(&mut self, request: &Message) {
        let closing: Vec<CallId> = self
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
    pub(super) fn recorder_hung_up(&mut self, call: CallId, reason: Option<String>) {
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

/// The `text` of a request's Reason header (RFC 3326), as a peer explains a BYE.
pub(super) fn reason_text(request: &Message) -> Option<String> {
    let value = request.headers.get("Reason")?;
    let start = value.find("text=\"")? + "text=\"".len();
    let rest = value.get(start..)?;
    let text = rest.get(..rest.find('"')?)?;
    (!text.is_empty()).then(|| text.chars().filter(|c| !c.is_control()).take(200).collect())
}

/// A recording session the recorder opened, as the engine keeps it.
pub(super) struct AdoptedSession {
    pub(super) media_id: CallId,
    pub(super) request: RecordingRequest,
    pub(super) record: CallRecord,
    pub(super) dialog: Dialog,
    /// What we described in our 200 OK (an answer to the recorder's offer, or our offer).
    pub(super) description: RsOffer,
    /// The recorder's streams when it offered; None when its answer comes in the ACK.
    pub(super) answered: Option<Vec<AnsweredStream>>,
}

impl Engine {
    /// Takes on a recording session the recorder started (its 200 OK is on its way): the
    /// call's metadata and streams from now on, as for one we started, never retried.
    pub(super) fn adopt_recorder_session(&mut self, call: CallId, session: AdoptedSession) {
        let AdoptedSession {
            media_id,
            request,
            record,
            dialog,
            description,
            answered,
        } = session;
        let first_hop = request.destination;
        self.recording_plans.insert(
            call,
            RetryPlan {
                media_id,
                request,
                failures: 0,
                record,
                gate: None,
                recorder_initiated: true,
                retry_after: None,
            },
        );
        self.recordings.insert(
            call,
            Recording {
                media_id,
                session: InviteSession {
                    connected: true,
                    ..InviteSession::new(dialog, first_hop)
                },
                invite_body: (String::new(), Vec::new()),
                offer: description,
                streams: Vec::new(),
                answered: None,
                wants_pcm: false,
                state: RecordingState::Starting,
                want_paused: false,
                metadata_dirty: false,
            },
        );
        self.recording_event(call, media_id, RecordingState::Starting);
        if let Some(streams) = answered {
            self.on_recorder_answer(call, streams);
        }
    }

    /// The ACK of a recording the recorder started without an offer carries its answer.
    pub(super) fn on_recorder_ack(&mut self, call: CallId, ack: &Message) {
        self.cancel_timer(Timer::RecorderRetransmit2xx(call));
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        recording.session.unacked_2xx = None;
        if !recording.streams.is_empty() || recording.answered.is_some() {
            return;
        }
        let Some(sdp) = answer_sdp(ack) else {
            return;
        };
        match rs_sdp::read_answer(&recording.offer, &sdp) {
            Ok(streams) => self.on_recorder_answer(call, streams),
            Err(error) => {
                self.stop_recording_dialog(call);
                self.recording_failed(call, format!("the recorder's answer: {error}"));
            }
        }
    }

    /// A 2xx to the recorder's INVITE or re-INVITE, kept until its ACK comes.
    pub(super) fn send_recorder_2xx(&mut self, call: CallId, key: &TxKey, ok: Message) {
        let bytes = ok.to_bytes();
        self.send_response(key, ok);
        let (now, t1) = (self.now, self.config.timers.t1);
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let unacked = Unacked::new(recording.session.first_hop, bytes, now, t1);
        let at = unacked.first_resend(now);
        recording.session.unacked_2xx = Some(unacked);
        self.cancel_timer(Timer::RecorderRetransmit2xx(call));
        self.set_timer(at, Timer::RecorderRetransmit2xx(call));
    }

    pub(super) fn retransmit_recorder_2xx(&mut self, call: CallId) {
        let (now, t2) = (self.now, self.config.timers.t2);
        let Some(unacked) = self
            .recordings
            .get_mut(&call)
            .and_then(|r| r.session.unacked_2xx.as_mut())
        else {
            return;
        };
        match unacked.step(now, t2) {
            UnackedStep::GiveUp => {
                self.stop_recording_dialog(call);
                self.recording_failed(call, "the recorder never acknowledged our answer".into());
            }
            UnackedStep::Resend(resend, at) => {
                self.transmits.extend(resend);
                self.set_timer(at, Timer::RecorderRetransmit2xx(call));
            }
        }
    }

    /// The metadata snapshot and SDP pair for a 200 OK.
    pub(super) fn recorder_session_body(
        &mut self,
        call: CallId,
        description: &RsOffer,
    ) -> (String, Vec<u8>) {
        let xml = self.metadata_snapshot(call);
        let sdp = rs_sdp::offer(description).to_string().into_bytes();
        self.sdp_and_metadata(sdp, xml)
    }

    /// The labels and stream IDs of a call record follow the recorder's m-lines.
    pub(super) fn set_record_labels(
        record: &mut CallRecord,
        labels: Vec<String>,
        ids: Vec<String>,
    ) {
        record.labels = labels;
        record.stream_ids = ids;
    }
}

impl RetryPlan {
    /// The request for the next attempt: odd failures go to the secondary, when there is one.
    fn next_request(&self) -> RecordingRequest {
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

impl Engine {
    /// The recorder re-INVITEs (RFC 7866 7.1.2, 9.1): its 2xx waits for the ACK.
    pub(super) fn on_recorder_reinvite(&mut self, call: CallId, key: TxKey, request: Message) {
        if let Some(ok) = self.recorder_session_change(call, &key, &request) {
            self.send_recorder_2xx(call, &key, ok);
        }
    }

    /// The recorder sends UPDATE (RFC 3311): with an offer as a re-INVITE would, without one
    /// as a session refresh or a request for the metadata.
    pub(super) fn on_recorder_update(&mut self, call: CallId, key: TxKey, request: Message) {
        if let Some(ok) = self.recorder_session_change(call, &key, &request) {
            self.send_response(&key, ok);
        }
    }

    /// What a recorder's re-INVITE or UPDATE changes, and the 2xx that answers it (None when
    /// it was refused here): every stream inactive pauses the recording, recvonly resumes
    /// it, a metadata request gets a fresh snapshot, and a Session-Expires moves the time by
    /// which the recorder must refresh again (RFC 4028).
    fn recorder_session_change(
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
        let session_expires = SessionExpires::of(request);
        let recording = self.recordings.get_mut(&call)?;
        let tag = recording.session.dialog.local_tag.clone();
        let offers = is_invite || offer.is_some();
        if offers && recording.session.reinvite_key.is_some() {
            // Both sides offered at once (RFC 3261 14.2, RFC 3311 5.2).
            self.respond(key, request, 491, Some(&tag));
            return None;
        }
        if let Some(expires) = session_expires
            && expires.seconds < MIN_SE
        {
            let mut too_small = request.response(422, reason_phrase(422), Some(&tag));
            too_small.headers.push("Min-SE", MIN_SE.to_string());
            self.send_response(key, too_small);
            return None;
        }
        let media_id = recording.media_id;
        let mut new_state = None;
        if let Some(sdp) = &offer {
            let recorder_pauses = sdp
                .media
                .iter()
                .all(|m| m.port == 0 || m.direction == Direction::Inactive);
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
        // An UPDATE without an offer gets no SDP back; an offerless re-INVITE gets ours.
        let sdp = offers.then(|| {
            recording.offer.session_version += 1;
            rs_sdp::offer(&recording.offer).to_string().into_bytes()
        });
        let contact = recording.session.dialog.local_contact.clone();
        let mut ok = request.response(200, "OK", Some(&tag));
        ok.headers.push("Contact", contact);
        ok.headers.push("Require", "siprec");
        if let Some(expires) = session_expires {
            ok.headers.push("Session-Expires", expires.answer());
            if request.headers.has_token("Supported", "timer")
                || request.headers.has_token("Require", "timer")
            {
                ok.headers.push("Require", "timer");
            }
            let at = self.now + expires.give_up_after();
            self.set_timer(at, Timer::RecorderSessionExpiry(call));
        }
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
            if let Some(r) = self.recordings.get_mut(&call) {
                r.state = state.clone();
            }
            self.recording_event(call, media_id, state);
        }
        Some(ok)
    }

    /// The recorder refreshes the session and stopped doing so: it is gone, whatever the
    /// transport says (RFC 4028 10). The session ends with BYE and the reason.
    pub(super) fn recorder_session_expired(&mut self, call: CallId) {
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

/// The SDP of a response: the whole body, or its application/sdp part in a multipart body.
pub(super) fn answer_sdp(response: &Message) -> Option<SessionDescription> {
    if response.content_type().as_deref() == Some("application/sdp") {
        return SessionDescription::parse(&String::from_utf8_lossy(&response.body)).ok();
    }
    let content_type = response.headers.get("Content-Type")?;
    let parts = crate::sip::multipart::parse(content_type, &response.body).ok()?;
    let sdp = crate::sip::multipart::find(&parts, "application/sdp")?;
    SessionDescription::parse(&String::from_utf8_lossy(&sdp.body)).ok()
}
