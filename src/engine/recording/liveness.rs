//! Whether the recorder is still there. A recorder whose host lost power, or whose process
//! froze, sends nothing: no BYE, no reset, no ICMP. In-dialog OPTIONS at a short interval
//! with a short answer deadline notices it within seconds, over any transport (the session
//! timer is only the slow backstop), so the indicator never says Recording while nothing is
//! recorded, and the gap starts when the recorder was last heard, not when it was missed.

use super::*;

impl Engine {
    /// The next probe of the call's recorder, when probing is on.
    pub(super) fn arm_recorder_probe(&mut self, call: CallId) {
        if let Some(interval) = self.config.recorder_probe_interval {
            self.set_timer(self.now + interval, Timer::RecorderProbe(call));
        }
    }

    /// Anything from the recorder in the session (a request, an answer, an ACK) shows it
    /// was there just now.
    pub(in crate::engine) fn recorder_heard(&mut self, call: CallId) {
        let now = self.wall_clock();
        if let Some(recording) = self.recordings.get_mut(&call) {
            recording.heard_at = now;
        }
    }

    /// Asks the recorder (in-dialog OPTIONS), unless the last question is still open. Until
    /// the session is up (our INVITE answered, or our 2xx to its INVITE acknowledged), the
    /// INVITE's own timeout judges the recorder.
    pub(in crate::engine) fn probe_recorder(&mut self, call: CallId) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let up = recording.session.connected && recording.session.unacked_2xx.is_none();
        if up && self.reports_stopped(call) {
            return;
        }
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        if up && recording.probe.is_none() {
            let options = recording.session.dialog.request(Method::Options);
            let destination = recording.session.next_hop();
            if let Some(key) =
                self.start_client_tx(options, destination, TxOwner::RecorderProbe(call))
            {
                if let Some(recording) = self.recordings.get_mut(&call) {
                    recording.probe = Some(key);
                }
                let deadline = self.now + self.config.recorder_answer_deadline;
                self.set_timer(deadline, Timer::RecorderProbeDeadline(call));
            }
        }
        self.arm_recorder_probe(call);
    }

    /// Any final answer shows the recorder is there (a 405 too); 481 says it lost the session.
    pub(in crate::engine) fn on_probe_response(&mut self, call: CallId, response: &Message) {
        let Some(status) = response.status() else {
            return;
        };
        self.recorder_heard(call);
        if status < 200 {
            return;
        }
        self.cancel_timer(Timer::RecorderProbeDeadline(call));
        if let Some(recording) = self.recordings.get_mut(&call) {
            recording.probe = None;
        }
        if matches!(status, 408 | 481) {
            self.stop_recording_dialog(call);
            self.recording_failed(
                call,
                format!("the recorder no longer knows this recording session ({status})"),
            );
        }
    }

    /// The recorder let the probe's deadline pass (or its transaction time out): it is
    /// taken as gone since it was last heard, and the recording fails from that moment, so
    /// retries, the secondary recorder and a mandatory policy's grace all start there.
    pub(in crate::engine) fn recorder_silent(&mut self, call: CallId) {
        self.cancel_timer(Timer::RecorderProbeDeadline(call));
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let Some(key) = recording.probe.take() else {
            // Answered meanwhile.
            return;
        };
        recording.gone_silent = true;
        let since = recording.heard_at;
        self.transactions.abandon(&key);
        self.tx_owner.remove(&key);
        let reason = format!("the recorder has not answered since {}", clock_time(since));
        self.recorder_lost_since(call, since, reason);
    }

    /// The recording failed at `since` (wall clock), noticed only now.
    fn recorder_lost_since(&mut self, call: CallId, since: core::time::Duration, reason: String) {
        tracing::warn!(since = %metadata::format_time(since), %reason, "recorder lost");
        if let Some(plan) = self.recording_plans.get_mut(&call) {
            plan.outage_since = Some(since);
        }
        self.stop_recording_dialog(call);
        self.recording_failed(call, reason);
    }

    /// A recorder that sent receiver reports and stopped, while still answering in the
    /// session, no longer receives our media (its media process died, or its path did).
    fn reports_stopped(&mut self, call: CallId) -> bool {
        let now = self.now;
        let wall = self.wall_clock();
        let Some(recording) = self.recordings.get(&call) else {
            return false;
        };
        let Some(last) = recording.reported_at else {
            return false;
        };
        let quiet = now.saturating_duration_since(last);
        if quiet < REPORTS_MISSED_AFTER {
            return false;
        }
        let since = wall.saturating_sub(quiet);
        let reason = format!(
            "the recorder has sent no receiver reports since {}: it no longer receives the \
             recording",
            clock_time(since)
        );
        self.recorder_lost_since(call, since, reason);
        true
    }

    /// RTCP the recorder sent on the recording's socket: a report on one of our streams shows
    /// it is there and what it receives; a stream it says it mostly loses is a warning, once.
    pub(in crate::engine) fn on_recorder_rtcp(&mut self, media_id: RecordingId, data: &[u8]) {
        let Some(call) = self
            .recordings
            .iter()
            .find_map(|(call, r)| (r.media_id == media_id).then_some(*call))
        else {
            return;
        };
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let Some(blocks) = recording
            .streams
            .iter_mut()
            .find_map(|stream| stream.out().reception_reports(data))
        else {
            return;
        };
        let ours: Vec<(u32, String)> = recording
            .streams
            .iter_mut()
            .zip(
                recording
                    .applied
                    .iter()
                    .filter(|s| s.accepted && s.voice.is_some()),
            )
            .map(|(stream, applied)| (stream.out().ssrc(), applied.label.clone()))
            .collect();
        let mut heard = false;
        let mut warnings = Vec::new();
        for block in blocks {
            let Some((_, label)) = ours.iter().find(|(ssrc, _)| *ssrc == block.ssrc) else {
                continue;
            };
            heard = true;
            // fraction_lost is 8-bit fixed point (RFC 3550 6.4.1): 128 is half.
            if block.fraction_lost >= LOSS_WORTH_TELLING && !recording.warned_loss.contains(label) {
                recording.warned_loss.push(label.clone());
                let percent = u32::from(block.fraction_lost) * 100 / 256;
                warnings.push(format!(
                    "the recorder reports losing {percent}% of stream {label}: that part of \
                     the recording is missing"
                ));
            }
        }
        if heard {
            self.recorder_heard(call);
            let now = self.now;
            if let Some(recording) = self.recordings.get_mut(&call) {
                recording.reported_at = Some(now);
            }
        }
        for message in warnings {
            tracing::warn!(%message, "recorder reception");
            self.events.push_back(Event::Warning {
                call: Some(call),
                message,
            });
        }
    }

    /// An ICMP error says one of the recording's RTP destinations cannot be reached: the
    /// recorder's media port is closed (its process is gone), so the recording is failing now.
    pub(in crate::engine) fn on_recorder_unreachable(
        &mut self,
        media_id: RecordingId,
        destination: core::net::SocketAddr,
    ) {
        let Some(call) = self.recordings.iter().find_map(|(call, r)| {
            // Only the RTP port: many recorders do not listen for RTCP at all.
            let ours = r
                .applied
                .iter()
                .any(|s| s.accepted && s.destination == destination);
            (r.media_id == media_id && ours).then_some(*call)
        }) else {
            return;
        };
        let now = self.wall_clock();
        let reason = format!(
            "the recorder's host says {destination} is closed (ICMP port unreachable): the \
             recorder is gone"
        );
        self.recorder_lost_since(call, now, reason);
    }

    /// Our BYE to the recorder got no answer. When it ended a recording that looked whole,
    /// the user is told: the recorder may not have kept the end of it.
    pub(in crate::engine) fn recording_bye_unanswered(&mut self, call: CallId, report: bool) {
        self.recording_bye_done();
        if report {
            self.events.push_back(Event::Warning {
                call: Some(call),
                message: "the recorder did not answer the BYE that ended the recording: \
                          it may not have kept the end of the call"
                    .into(),
            });
        }
    }
}

/// A recorder that sent receiver reports and then none for this long (three of RFC 3550's
/// 5 s intervals) has stopped receiving.
const REPORTS_MISSED_AFTER: core::time::Duration = core::time::Duration::from_secs(15);

/// A recorder that reports losing this share (of 256) of a stream's packets is told about.
const LOSS_WORTH_TELLING: u8 = 64;

/// The time of day (UTC) of a wall-clock instant, as the indicator shows it.
fn clock_time(unix: core::time::Duration) -> String {
    let second_of_day = unix.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_time_is_the_utc_time_of_day() {
        let at =
            core::time::Duration::from_secs(1_765_103_533) + core::time::Duration::from_millis(900);
        assert_eq!(clock_time(at), "10:32:13 UTC");
    }
}
