//! A recorded call replaced by another (RFC 3891: the far end handed us to someone else in
//! an attended transfer): the recording goes on with the new call, as our side of the
//! conversation does. The same session, IDs and streams; the far end's stream carries the
//! new far end's voice from now on, and the metadata says who left and who joined when
//! (RFC 7865 6.6), which is how the recorder learns who replaced whom.

use super::*;

impl Engine {
    /// Moves the recording of `old` (if any) to `new`, which has just taken its place.
    pub(in crate::engine) fn recording_follows_replacement(&mut self, old: CallId, new: CallId) {
        if !self.recordings.contains_key(&old) && !self.recording_plans.contains_key(&old) {
            return;
        }
        // Our own conference's recording follows its members through the conference's own
        // hand-over when a party leaves; a replaced member leaves like any other.
        if self.local_conference.contains(&old) {
            return;
        }
        // The new call is recorded already (the policy records every call): each recording
        // then ends or goes on with its own call.
        if self.recordings.contains_key(&new)
            || self.recording_plans.contains_key(&new)
            || self.pending_recordings.contains_key(&new)
        {
            return;
        }
        // An encrypted call is never recorded in the clear: a plain recording ends with the
        // old call, and the new one is recorded as its policy says.
        let plain = self
            .recordings
            .get(&old)
            .is_some_and(|r| r.offer.keys.is_none());
        if plain && self.call_uses_srtp(new) {
            return;
        }
        self.move_recording(old, new);
        if let Some(media) = self.media.get_mut(&old) {
            media.session.set_tapping(false);
        }
        let Some(remote) = self.calls.get(&new).map(|c| c.remote_identity()) else {
            return;
        };
        let state = self.call_progress(new);
        self.recording_identity_changed(new, remote);
        // The old call was on hold while its far end consulted (or was consulted); the new
        // one says for itself.
        let on_hold = matches!(
            state,
            Some(
                crate::engine::CallState::Connected {
                    local_hold: true,
                    ..
                } | crate::engine::CallState::Connected {
                    remote_hold: true,
                    ..
                }
            )
        );
        self.recording_hold_changed(new, on_hold);
        // The streams are fed from the new call's media now (its codec may differ: they
        // are built afresh, forwarding or transcoding as the recorder's codec needs).
        let (applied, awaiting_media) = match self.recordings.get(&new) {
            Some(r) => (r.applied.clone(), r.answered.is_some()),
            None => (Vec::new(), false),
        };
        if awaiting_media {
            // The recorder answered before the old call had media: the new call's does.
            self.recording_media_ready(new);
        } else if !applied.is_empty() {
            self.build_streams(new, applied);
            // New streams start unpaused; a paused recording stays paused.
            if let Some(recording) = self.recordings.get_mut(&new)
                && recording.offer.direction != Direction::SendOnly
            {
                for stream in &mut recording.streams {
                    stream.set_paused(true);
                }
            }
        }
        // The new far end may not want to be recorded (RFC 7866 a=recordpref).
        let asks_pause = self
            .media
            .get(&new)
            .and_then(|m| m.negotiated.as_ref())
            .is_some_and(|n| n.remote_recordpref.as_deref() == Some("pause"));
        if asks_pause && self.honours_recordpref(new) {
            self.tell_recordings(new, crate::engine::notes::CallNote::FarEndAsksPause);
        }
        if let Some((media_id, state)) = self
            .recordings
            .get(&new)
            .map(|r| (r.media_id, r.state.clone()))
        {
            self.recording_event(new, media_id, state);
        }
    }
}
