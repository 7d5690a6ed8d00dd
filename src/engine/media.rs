//! The engine's side of each call's media: sessions created and updated from offer/answer,
//! packets and 20 ms ticks from the driver, DTMF, mute and statistics.

use core::net::SocketAddr;

use super::notes::CallNote;
use super::{CallId, Engine, Event, MediaSocket, Output, RecordingState};
use crate::media::codec::CodecKind;
use crate::media::session::{MediaConfig, MediaOutput, MediaSession};
use crate::media::srtp::SrtpSession;
use crate::media::{FRAME_SAMPLES, mix_into};
use crate::recording::notice::{Cue, FarEndNotice, LocalCue};
use crate::sdp::Negotiated;

/// Statistics go to the UI every this many ticks (0.5 s).
const STATS_EVERY_TICKS: u32 = 25;

#[derive(Debug)]
pub(super) struct CallMedia {
    pub(super) session: MediaSession,
    ticks: u32,
    /// The SRTP keys in use, so a re-offer with the same keys keeps the contexts.
    srtp: Option<crate::sdp::NegotiatedSrtp>,
    /// The last offer/answer outcome: the recording offers the same codec.
    pub(super) negotiated: Option<Negotiated>,
    /// The audible recording notice mixed into what we send.
    notice: FarEndNotice,
    /// The cue the local user hears on a recording change.
    cue: LocalCue,
    /// Whether the recording is on, as the notice and the cues last heard it.
    recording_on: bool,
    recorded_before: bool,
    /// The far end's last decoded frame: what the other members of a conference hear of it.
    heard: Box<[f32; FRAME_SAMPLES]>,
}

impl CallMedia {
    pub(super) fn heard(&self) -> &[f32; FRAME_SAMPLES] {
        &self.heard
    }
}

impl Engine {
    /// Offer/answer finished for a call: tell the front end, and start or update its media.
    pub(super) fn on_media_negotiated(&mut self, id: CallId, negotiated: Negotiated) {
        let local_hold = self.calls.get(&id).is_some_and(|c| c.is_local_hold());
        let Some(codec) = CodecKind::from_encoding(&negotiated.codec.encoding) else {
            tracing::warn!(codec = %negotiated.codec.encoding, "negotiated a codec we cannot run");
            self.events.push_back(Event::Media {
                call: id,
                negotiated,
            });
            return;
        };
        let remote_ip = negotiated.remote_address;
        let remote_rtp = SocketAddr::new(remote_ip, negotiated.remote_rtp_port);
        let remote_rtcp = SocketAddr::new(
            remote_ip,
            negotiated
                .remote_rtcp_port
                .unwrap_or(negotiated.remote_rtp_port),
        );
        let srtp = match &negotiated.srtp {
            Some(keys) => {
                match SrtpSession::new(keys.suite, &keys.local_key_salt, &keys.remote_key_salt) {
                    Ok(session) => Some(session),
                    Err(error) => {
                        tracing::warn!(%error, "SRTP setup failed");
                        None
                    }
                }
            }
            None => None,
        };
        let config = MediaConfig {
            codec,
            peer_fmtp: negotiated.codec.fmtp.clone(),
            payload_type: negotiated.codec.payload_type,
            telephone_event: negotiated
                .telephone_event
                .as_ref()
                .map(|te| (te.payload_type, te.clock_rate)),
            remote_rtp,
            remote_rtcp,
            // RFC 2543 hold (c=0.0.0.0) leaves nowhere to send.
            send: negotiated.local_direction.sends() && !local_hold && !remote_ip.is_unspecified(),
            receive: negotiated.local_direction.receives(),
            ssrc: self.rng.next_u64() as u32,
            initial_sequence: self.rng.next_u64() as u16,
            initial_timestamp: self.rng.next_u64() as u32,
            cname: format!("{}@verbatim", self.rng.token(12)),
            rtcp_seed: self.rng.next_u64() as u32,
            srtp,
        };
        self.far_end_recording_changes(id, &negotiated);
        let now = self.now;
        let wall = self.wall_clock();
        let notice = self.notice_of(id).clone();
        match self.media.get_mut(&id) {
            Some(media) => {
                if let Err(error) = media.session.update(config) {
                    tracing::warn!(%error, "media update failed");
                }
                media.srtp = negotiated.srtp.clone();
                media.negotiated = Some(negotiated.clone());
            }
            None => match MediaSession::new(config, now, wall) {
                Ok(session) => {
                    self.media.insert(
                        id,
                        CallMedia {
                            session,
                            ticks: 0,
                            srtp: negotiated.srtp.clone(),
                            negotiated: Some(negotiated.clone()),
                            notice: FarEndNotice::new(notice),
                            cue: LocalCue::default(),
                            recording_on: false,
                            recorded_before: false,
                            heard: Box::new([0.0; FRAME_SAMPLES]),
                        },
                    );
                }
                Err(error) => tracing::warn!(%error, "media session not started"),
            },
        }
        let on_hold = local_hold || negotiated.remote_on_hold;
        let negotiated_pause = negotiated.remote_recordpref.as_deref() == Some("pause");
        self.events.push_back(Event::Media {
            call: id,
            negotiated,
        });
        let paused_by_far_end = negotiated_pause && self.honours_recordpref(id);
        if let Some(start) = self.pending_recordings.remove(&id) {
            self.start_recording(id, start.recording, start.request);
            if paused_by_far_end {
                self.tell_recordings(id, CallNote::FarEndAsksPause);
            }
        }
        self.tell_recordings(id, CallNote::Media { on_hold });
    }

    /// Reports the far end's `a=record` and `a=recordpref` when they change, and honours a
    /// preference against recording when the policy allows (RFC 7866 6.1.2, 6.1.3).
    fn far_end_recording_changes(&mut self, id: CallId, negotiated: &Negotiated) {
        let previous = self.media.get(&id).and_then(|m| m.negotiated.as_ref());
        let was_recording = previous.is_some_and(|p| p.remote_record.as_deref() == Some("on"));
        let records = negotiated.remote_record.as_deref() == Some("on");
        if records != was_recording {
            self.events.push_back(Event::FarEndRecording {
                call: id,
                recording: records,
            });
        }
        let old_preference = previous.and_then(|p| p.remote_recordpref.clone());
        let Some(preference) = negotiated.remote_recordpref.clone() else {
            return;
        };
        if old_preference.as_deref() == Some(preference.as_str()) {
            return;
        }
        self.events.push_back(Event::RecordingPreference {
            call: id,
            preference: preference.clone(),
        });
        if self.honours_recordpref(id) {
            match preference.as_str() {
                "off" => {
                    self.pending_recordings.remove(&id);
                    self.tell_recordings(id, CallNote::FarEndRefuses);
                }
                "pause" => self.tell_recordings(id, CallNote::FarEndAsksPause),
                _ => {}
            }
        }
    }

    /// The far end's wish is honoured when the setting says so and this call's recording
    /// is not mandatory (RFC 7866 6.1.3 leaves it to policy).
    pub(super) fn honours_recordpref(&self, id: CallId) -> bool {
        self.config.honour_recordpref && !self.recording_is_mandatory(id)
    }

    pub(super) fn on_media_packet(&mut self, id: CallId, source: SocketAddr, data: &[u8]) {
        let now = self.now;
        if let Some(call) = self.calls.get_mut(&id) {
            call.last_media = now;
        }
        let Some(media) = self.media.get_mut(&id) else {
            return;
        };
        media.session.on_packet(now, source, data);
        self.drain_media(id);
    }

    pub(super) fn on_media_tick(&mut self, id: CallId, captured: &[f32]) {
        let now = self.now;
        // In a conference, what the other parties said goes out with the local user's voice.
        let mut others = [0.0f32; FRAME_SAMPLES];
        let mixing = self.mix_other_members(id, &mut others);
        let Some(media) = self.media.get_mut(&id) else {
            return;
        };
        let mut frame = vec![0.0; FRAME_SAMPLES];
        let silence;
        let captured = if captured.len() == FRAME_SAMPLES {
            captured
        } else {
            silence = [0.0f32; FRAME_SAMPLES];
            &silence
        };
        // The notice goes out even while the microphone is muted: it is the phone speaking.
        let mut notice = [0.0f32; FRAME_SAMPLES];
        let noticing = media.notice.is_active();
        media.notice.mix_into(&mut notice);
        let mut overlay = notice;
        if mixing {
            mix_into(&mut overlay, &others);
        }
        media.session.tick_with_overlay(
            now,
            captured,
            (noticing || mixing).then_some(&overlay[..]),
            &mut frame,
        );
        media.heard.copy_from_slice(&frame);
        media.cue.mix_into(&mut frame);
        let sends_voice = media.session.sends_voice();
        media.ticks += 1;
        if media.ticks % STATS_EVERY_TICKS == 0 {
            let stats = media.session.stats();
            self.events.push_back(Event::MediaStats { call: id, stats });
        }
        self.drain_media(id);
        if self.recording_wants_pcm(id) {
            // The recording hears what the far end heard: nothing while muted or on hold.
            let mut local = [0.0f32; FRAME_SAMPLES];
            if sends_voice {
                mix_into(&mut local, captured);
            }
            if noticing {
                mix_into(&mut local, &notice);
            }
            self.encode_for_recording(id, &local, &frame);
        }
        self.send_recording_reports(id);
        self.media_outputs
            .push_back(Output::Playback { call: id, frame });
    }

    /// The notice and cues of a call: its account's, else the phone's.
    fn notice_of(&self, id: CallId) -> &crate::recording::notice::NoticeConfig {
        self.calls
            .get(&id)
            .and_then(|call| call.notice.as_ref())
            .unwrap_or(&self.config.notice)
    }

    /// The recording changed state: the far end's notice starts when recording starts or
    /// resumes and stops otherwise, and the local user hears a cue for each change.
    pub(super) fn notice_recording_state(&mut self, id: CallId, state: &RecordingState) {
        let notice = self.notice_of(id);
        let skip_notice = notice.skip_for_record_aware && self.peer_is_record_aware(id);
        let cues = notice.local_cues;
        let Some(media) = self.media.get_mut(&id) else {
            return;
        };
        if *state == RecordingState::Starting {
            return;
        }
        let on = state.is_live();
        if on == media.recording_on {
            return;
        }
        media.recording_on = on;
        let cue = match state {
            _ if on && media.recorded_before => Cue::Resumed,
            _ if on => Cue::Started,
            RecordingState::Failed { .. } | RecordingState::Retrying { .. } => Cue::Failed,
            _ => Cue::Paused,
        };
        if on {
            media.recorded_before = true;
            if !skip_notice {
                media.notice.start();
            }
        } else {
            media.notice.stop();
        }
        if cues {
            media.cue.play(cue);
        }
    }

    pub(super) fn send_dtmf(&mut self, id: CallId, digits: &str) {
        let Some(media) = self.media.get_mut(&id) else {
            self.events.push_back(Event::Warning {
                call: Some(id),
                message: "DTMF not sent: the call has no media yet".into(),
            });
            return;
        };
        if let Err(error) = media.session.send_dtmf(digits) {
            self.events.push_back(Event::Warning {
                call: Some(id),
                message: format!("DTMF not sent: {error}"),
            });
        }
    }

    pub(super) fn set_muted(&mut self, id: CallId, muted: bool) {
        if let Some(media) = self.media.get_mut(&id) {
            media.session.set_muted(muted);
        }
    }

    /// Local hold stops what we send at once, before the re-INVITE is even answered.
    pub(super) fn media_hold_changed(&mut self, id: CallId, hold: bool) {
        if let Some(media) = self.media.get_mut(&id) {
            media.session.set_sending_paused(hold);
        }
    }

    pub(super) fn end_media(&mut self, id: CallId) {
        if let Some(media) = self.media.remove(&id) {
            let stats = media.session.stats();
            self.events.push_back(Event::MediaStats { call: id, stats });
        }
    }

    fn drain_media(&mut self, id: CallId) {
        loop {
            let Some(output) = self
                .media
                .get_mut(&id)
                .and_then(|media| media.session.poll_output())
            else {
                return;
            };
            match output {
                MediaOutput::Packet {
                    destination,
                    data,
                    rtcp,
                } => self.media_outputs.push_back(Output::Media {
                    socket: MediaSocket::Call(id),
                    destination,
                    data,
                    rtcp,
                }),
                MediaOutput::Dtmf(digit) => {
                    self.events.push_back(Event::Dtmf { call: id, digit });
                }
                MediaOutput::Tap(tapped) => self.forward_to_recording(id, &tapped),
            }
        }
    }

    /// Wall-clock time derived from the instant the driver gave with it at start.
    pub(super) fn wall_clock(&self) -> core::time::Duration {
        self.config.wall_clock_at_start + self.now.saturating_duration_since(self.started_at)
    }

    pub fn media_stats(&self, id: CallId) -> Option<crate::media::session::MediaStats> {
        self.media.get(&id).map(|m| m.session.stats())
    }
}
