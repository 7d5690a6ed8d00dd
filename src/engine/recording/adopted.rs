//! A recording session the recorder opened, once accepted: adopted as one of ours, its 2xx
//! kept until the ACK that may carry its answer.

use super::*;

/// A recording session the recorder opened, as the engine keeps it.
pub(in crate::engine) struct AdoptedSession {
    pub(in crate::engine) media_id: RecordingId,
    pub(in crate::engine) request: RecordingRequest,
    pub(in crate::engine) record: CallRecord,
    pub(in crate::engine) dialog: Dialog,
    /// What we described in our 200 OK (an answer to the recorder's offer, or our offer).
    pub(in crate::engine) description: RsOffer,
    /// The recorder's streams when it offered; None when its answer comes in the ACK.
    pub(in crate::engine) answered: Option<Vec<AnsweredStream>>,
    /// The recorder's Session-ID UUID from its INVITE (RFC 7989), when it sent one.
    pub(in crate::engine) remote_uuid: Option<String>,
}

impl Engine {
    /// Takes on a recording session the recorder started (its 200 OK is on its way): the
    /// call's metadata and streams from now on, as for one we started, never retried.
    pub(in crate::engine) fn adopt_recorder_session(
        &mut self,
        call: CallId,
        session: AdoptedSession,
    ) {
        let AdoptedSession {
            media_id,
            request,
            record,
            dialog,
            description,
            answered,
            remote_uuid,
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
                outage_since: None,
                ports_awaited: Vec::new(),
            },
        );
        let mut session = self.new_invite_session(dialog, first_hop);
        session.connected = true;
        session.remote_uuid = remote_uuid;
        let empty_body = (String::new(), Vec::new());
        let now = self.wall_clock();
        let recording = Recording::new(call, media_id, session, empty_body, description, now);
        self.recordings.insert(call, recording);
        self.arm_recorder_probe(call);
        self.recording_event(call, media_id, RecordingState::Starting);
        if let Some(streams) = answered {
            self.on_recorder_answer(call, streams);
        }
    }

    /// The ACK to our 2xx: for a recording the recorder started without an offer, or an
    /// offerless re-INVITE, it carries the recorder's answer.
    pub(in crate::engine) fn on_recorder_ack(&mut self, call: CallId, ack: &Message) {
        self.recorder_heard(call);
        self.cancel_timer(Timer::RecorderRetransmit2xx(call));
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        recording.session.unacked_2xx = None;
        let Some(sdp) = answer_sdp(ack) else {
            return;
        };
        if !recording.streams.is_empty() || recording.answered.is_some() {
            // The answer to the offer in our 200 to an offerless re-INVITE (RFC 3261 14.2).
            self.apply_recorder_description(call, &sdp);
            return;
        }
        match rs_sdp::read_answer(&recording.offer, &sdp) {
            Ok(streams) => self.on_recorder_answer(call, streams),
            Err(error) => {
                self.stop_recording_dialog(call);
                self.recording_failed(call, format!("the recorder's answer: {error}"));
            }
        }
    }

    /// A 2xx to the recorder's INVITE or re-INVITE, kept until its ACK comes.
    pub(in crate::engine) fn send_recorder_2xx(&mut self, call: CallId, key: &TxKey, ok: Message) {
        let bytes = ok.to_bytes();
        self.send_response(key, ok);
        let (now, t1) = (self.now, self.config.timers.t1);
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let first_hop = recording.session.first_hop;
        let at = recording.session.await_ack(first_hop, bytes, now, t1);
        self.cancel_timer(Timer::RecorderRetransmit2xx(call));
        self.set_timer(at, Timer::RecorderRetransmit2xx(call));
    }

    pub(in crate::engine) fn retransmit_recorder_2xx(&mut self, call: CallId) {
        let (now, t2) = (self.now, self.config.timers.t2);
        let Some(step) = self
            .recordings
            .get_mut(&call)
            .and_then(|r| r.session.resend_2xx(now, t2))
        else {
            return;
        };
        match step {
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

    /// The metadata snapshot and SDP pair for the 200 OK to the recorder's INVITE: our
    /// answer to its offer, or our offer when it sent none.
    pub(in crate::engine) fn recorder_session_body(
        &mut self,
        call: CallId,
        description: &RsOffer,
        offered: Option<&SessionDescription>,
    ) -> (String, Vec<u8>) {
        let xml = self.metadata_snapshot(call);
        let sdp = offered
            .and_then(|theirs| rs_sdp::answer_reoffer(description, theirs).ok())
            .unwrap_or_else(|| rs_sdp::offer(description))
            .to_string()
            .into_bytes();
        self.sdp_and_metadata(sdp, xml)
    }

    /// The labels, voices and stream IDs of a call record follow the recorder's m-lines.
    pub(in crate::engine) fn set_record_labels(
        record: &mut CallRecord,
        description: &RsOffer,
        ids: Vec<String>,
    ) {
        record.labels = description.labels.clone();
        record.voices = description.voices.clone();
        record.stream_ids = ids;
    }
}
