//! Recording sessions a recorder starts (RFC 7866 6.1.1: SRS-initiated). The recorder sends an
//! INVITE with `Require: siprec` and a `+sip.srs` Contact, with an offer of recvonly labelled
//! streams or none. Only recorders the policy lists may ask; the front end then accepts
//! (binding the recording's port) or refuses, and the session records the call in progress.

use super::{AdoptedSession, RecordingMode, RecordingRequest};
use crate::engine::{CallId, CallState, Engine, Event, RecordingId, SDES_NEEDS_TLS_PHRASE};
use crate::media::srtp::SrtpPolicy;
use crate::recording::rs_sdp::{self, RsOffer};
use crate::sdp::{Direction, SessionDescription};
use crate::sip::dialog::{Dialog, LEAVES_TLS_PHRASE, UasDialogError};
use crate::sip::message::{Message, reason_phrase};
use crate::sip::multipart;
use crate::sip::transaction::TxKey;
use crate::sip::transport::Destination;

/// A recorder's INVITE waiting for the front end's yes or no.
#[derive(Debug)]
pub(in crate::engine) struct RecorderInvite {
    key: TxKey,
    request: Message,
    source: Destination,
}

/// Whether an initial INVITE comes from a recorder: it requires siprec and its Contact says
/// `+sip.srs`.
pub(in crate::engine) fn is_recorder_invite(request: &Message) -> bool {
    let requires_siprec = request
        .headers
        .list("Require")
        .iter()
        .any(|tag| tag.eq_ignore_ascii_case("siprec"));
    let from_recorder = request
        .headers
        .get("Contact")
        .is_some_and(|contact| contact.to_ascii_lowercase().contains("+sip.srs"));
    requires_siprec && from_recorder
}

impl Engine {
    /// A recorder asks to record: allowed recorders are put to the front end, with the call
    /// they would record; anyone else is refused with the reason.
    pub(in crate::engine) fn on_recorder_invite(
        &mut self,
        key: TxKey,
        request: Message,
        source: Destination,
    ) {
        let allowed = self.config.recorders_allowed.contains(&source.address.ip());
        if !allowed {
            self.refuse_recorder_invite(&key, &request, 403, "Recorder Not Allowed");
            return;
        }
        let Some(call) = self.call_to_record() else {
            self.refuse_recorder_invite(&key, &request, 480, "No Call To Record");
            return;
        };
        // A party of our conference is recorded by the conference's recording.
        if self.recordings.contains_key(&call)
            || self.recording_plans.contains_key(&call)
            || self.recorder_invites.contains_key(&call)
            || self.recording_owner(call) != call
        {
            self.refuse_recorder_invite(&key, &request, 486, "Call Already Recorded");
            return;
        }
        let from = request
            .from_header()
            .map(|f| f.uri.to_string())
            .unwrap_or_default();
        self.recorder_invites.insert(
            call,
            RecorderInvite {
                key,
                request,
                source,
            },
        );
        self.events.push_back(Event::RecorderAsks {
            call,
            recorder: from,
        });
    }

    /// The call a recorder's INVITE records: the connected call not on hold (the one the
    /// user is talking in), else any connected call.
    fn call_to_record(&self) -> Option<CallId> {
        let connected = |state: &CallState| matches!(state, CallState::Connected { .. });
        let mut candidates: Vec<(CallId, bool)> = self
            .calls
            .iter()
            .filter(|(id, call)| connected(&call.state()) && self.media.contains_key(id))
            .map(|(id, call)| (*id, call.is_local_hold()))
            .collect();
        candidates.sort_by_key(|(id, held)| (*held, id.0));
        candidates.first().map(|(id, _)| *id)
    }

    fn refuse_recorder_invite(&mut self, key: &TxKey, request: &Message, status: u16, why: &str) {
        tracing::info!(status, why, "a recorder's INVITE refused");
        let tag = self.rng.token(8);
        let mut response = request.response(status, why, Some(&tag));
        self.decorate_response(&mut response);
        self.send_response(key, response);
    }

    /// The front end refused the recorder.
    pub(in crate::engine) fn decline_recorder(&mut self, call: CallId) {
        if let Some(pending) = self.recorder_invites.remove(&call) {
            let status = 603;
            self.refuse_recorder_invite(
                &pending.key,
                &pending.request,
                status,
                reason_phrase(status),
            );
        }
    }

    /// The front end accepted: answer the recorder and start its streams.
    pub(in crate::engine) fn accept_recorder(
        &mut self,
        call: CallId,
        media_id: RecordingId,
        media_ports: Vec<u16>,
    ) {
        let Some(pending) = self.recorder_invites.remove(&call) else {
            return;
        };
        let RecorderInvite {
            key,
            request,
            source,
        } = pending;
        if self.recording_owner(call) != call || self.recording_plans.contains_key(&call) {
            // The call joined a recorded conference (or took its recording over) while the
            // user was asked.
            self.refuse_recorder_invite(&key, &request, 486, "Call Already Recorded");
            self.events.push_back(Event::Recording {
                call,
                recording: media_id,
                state: super::RecordingState::Off,
            });
            return;
        }
        let Some(mut record) = self.new_call_record(call, RecordingMode::Separate) else {
            self.refuse_recorder_invite(&key, &request, 481, "Call Ended");
            return;
        };
        let call_srtp = self.call_uses_srtp(call);
        let offered = offer_in(&request);
        let streams = offered.as_ref().map_or(2, |sdp| sdp.media.len()).max(1);
        let offered_srtp = offered.as_ref().is_some_and(|sdp| {
            sdp.media
                .iter()
                .any(|m| m.proto.eq_ignore_ascii_case("RTP/SAVP"))
        });
        // The call's own policy (its account's), not only the phone's.
        let policy = self.calls.get(&call).map_or(self.config.srtp, |c| c.srtp);
        let needs_srtp = call_srtp || offered_srtp || policy == SrtpPolicy::Mandatory;
        let secure = if source.is_confidential() {
            needs_srtp || policy != SrtpPolicy::Off
        } else if needs_srtp {
            // Our keys would go back in the clear, for anyone on the path to decrypt.
            self.refuse_recorder_invite(&key, &request, 488, SDES_NEEDS_TLS_PHRASE);
            return;
        } else {
            false
        };
        let mut keys = Vec::new();
        if secure {
            for _ in 0..streams {
                match self.config.key_source.key_salt() {
                    Some(key) => keys.push(key),
                    None => {
                        self.refuse_recorder_invite(&key, &request, 500, "No Randomness");
                        return;
                    }
                }
            }
        }
        // One audio stream offered carries both voices mixed (the answer binds them).
        let audio_streams = offered.as_ref().map_or(2, |sdp| {
            sdp.media
                .iter()
                .filter(|m| m.kind == crate::sdp::MediaKind::Audio && m.port != 0)
                .count()
        });
        let mode = if audio_streams == 1 {
            RecordingMode::Mixed
        } else {
            RecordingMode::Separate
        };
        let (codecs, telephone_event) = self.recording_codecs(Some(call), mode);
        let session_id = self.rng.next_u64() >> 2;
        let ours = RsOffer {
            address: self.local_ip(),
            ports: media_ports.clone(),
            codecs,
            telephone_event,
            labels: (1..=streams).map(|n| n.to_string()).collect(),
            voices: rs_sdp::voices_for(streams),
            direction: Direction::SendOnly,
            keys: secure.then_some(keys),
            session_id,
            session_version: session_id,
        };
        let (description, answered) = match &offered {
            Some(sdp) => match rs_sdp::answer_recorders_offer(sdp, &ours) {
                Ok((answer, streams)) => (answer, Some(streams)),
                Err(error) => {
                    let why = format!("Unusable Offer: {error}");
                    self.refuse_recorder_invite(&key, &request, 488, &why);
                    return;
                }
            },
            None => (ours, None),
        };
        let ids = description.labels.iter().map(|_| self.new_id()).collect();
        Self::set_record_labels(&mut record, &description, ids);
        let user = record_user(&request).unwrap_or_else(|| self.config.contact_user.clone());
        let contact = format!("{};+sip.src", self.contact_for(source.transport, &user));
        let dialog = match Dialog::from_request_as_uas(
            &request,
            self.rng.token(10),
            contact.clone(),
            source.transport,
        ) {
            Ok(dialog) => dialog,
            Err(UasDialogError::Malformed) => {
                self.refuse_recorder_invite(&key, &request, 400, "Missing From, To or Call-ID");
                return;
            }
            Err(UasDialogError::LeavesTls(_)) => {
                self.refuse_recorder_invite(&key, &request, 400, LEAVES_TLS_PHRASE);
                return;
            }
        };
        let srs = request
            .from_header()
            .map(|f| f.uri)
            .unwrap_or_else(|_| dialog.remote_target.clone());
        let tag = dialog.local_tag.clone();
        self.adopt_recorder_session(
            call,
            AdoptedSession {
                media_id,
                request: RecordingRequest {
                    srs,
                    destination: source,
                    media_ports,
                    secondary: None,
                    mandatory: false,
                    mode,
                    srtp: secure,
                    credentials: None,
                },
                record,
                dialog,
                description: description.clone(),
                answered,
                remote_uuid: crate::sip::session_id::sender_uuid(&request),
            },
        );
        let (content_type, body) = self.recorder_session_body(call, &description, offered.as_ref());
        let mut ok = request.response(200, "OK", Some(&tag));
        ok.headers.push("Contact", contact);
        ok.headers.push("Require", "siprec");
        ok.set_body(&content_type, body);
        self.decorate_response(&mut ok);
        self.send_recorder_2xx(call, &key, ok);
    }
}

/// The recorder's SDP offer, alone or in a multipart body; None when it sent none.
fn offer_in(request: &Message) -> Option<SessionDescription> {
    if request.content_type().as_deref() == Some(multipart::SDP_CONTENT_TYPE) {
        return SessionDescription::parse(&String::from_utf8_lossy(&request.body)).ok();
    }
    let content_type = request.headers.get("Content-Type")?;
    let parts = multipart::parse(content_type, &request.body).ok()?;
    let sdp = multipart::find(&parts, multipart::SDP_CONTENT_TYPE)?;
    SessionDescription::parse(&String::from_utf8_lossy(&sdp.body)).ok()
}

/// The user part the recorder addressed (our Contact keeps it).
fn record_user(request: &Message) -> Option<String> {
    request.request_uri().and_then(|uri| uri.user.clone())
}
