//! The recording's streams: the call's packets forwarded, or its audio encoded afresh.

use super::*;

impl Engine {
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

    pub(super) fn build_streams(&mut self, call: CallId, answered: Vec<AnsweredStream>) {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        recording.applied = answered.clone();
        let now = metadata::format_time(self.wall_clock());
        if let Some(plan) = self.recording_plans.get_mut(&call) {
            plan.record.note_refused_streams(&answered, &now);
        }
        let call_formats = |source: CallId| {
            self.media.get(&source).and_then(|m| {
                let n = m.negotiated.as_ref()?;
                Some((n.codec.clone(), n.telephone_event.clone()))
            })
        };
        // Each stream's source: the recorded call, or a conference party's call.
        let sources: Vec<Option<CallId>> = {
            let record = self.recording_plans.get(&call).map(|plan| &plan.record);
            answered
                .iter()
                .map(|stream| match stream.voice? {
                    voice @ StreamSender::Member(_) => record?.party_call(voice),
                    _ => Some(call),
                })
                .collect()
        };
        let formats: Vec<_> = sources
            .iter()
            .map(|source| source.and_then(call_formats))
            .collect();
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        let keys = recording.offer.keys.clone();
        if recording.cname.is_empty() {
            // One CNAME for all the recording's streams: one sender, one clock.
            recording.cname = format!("{}@verbatim.invalid", self.rng.token(12));
        }
        let cname = recording.cname.clone();
        let media_id = recording.media_id;
        let slots: Vec<Option<usize>> = (0..answered.len())
            .map(|index| recording.offer.socket_slot(index))
            .collect();
        // In a conference what we send carries the other parties too.
        let in_conference = !self.conference_peers(call).is_empty();
        let mut streams = Vec::new();
        for (index, stream) in answered.into_iter().enumerate() {
            if !stream.accepted {
                continue;
            }
            let Some(slot) = slots.get(index).copied().flatten() else {
                continue;
            };
            let socket = MediaSocket::Recording {
                recording: media_id,
                stream: slot,
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
            let (Some(voice), Some(source)) = (stream.voice, sources.get(index).copied().flatten())
            else {
                continue;
            };
            let call_formats = formats.get(index).cloned().flatten();
            let out = OutgoingSetup {
                destination: stream.destination,
                rtcp_destination: stream.rtcp_destination,
                ssrc: self.rng.next_u64() as u32,
                initial_sequence: self.rng.next_u64() as u16,
                initial_timestamp: self.rng.next_u64() as u32,
                clock_rate: stream.codec.clock_rate,
                cname: cname.clone(),
                srtp,
                now: self.now,
                rtcp_random: self.rng.next_u64() as u32,
            };
            // Each side's packets can be copied; a mixed voice is always encoded here.
            let copy = match (&call_formats, voice) {
                (_, StreamSender::Both) | (None, _) => false,
                // Our user's own voice is encoded afresh from the microphone.
                (_, StreamSender::Local) if in_conference => false,
                (Some((codec, _)), _) => codec.same_codec(&stream.codec),
            };
            if copy && let Some((codec, telephone_event)) = &call_formats {
                let mut payload_types = vec![(codec.payload_type, stream.codec.payload_type)];
                if let (Some(ours), Some(theirs)) = (telephone_event, stream.telephone_event) {
                    payload_types.push((ours.payload_type, theirs));
                }
                let side = if voice == StreamSender::Local {
                    TapSide::Local
                } else {
                    TapSide::Remote
                };
                streams.push(RsStream {
                    socket,
                    source,
                    voice,
                    feed: StreamFeed::Forward(Forwarder::new(side, payload_types, out)),
                });
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
            let pcm = match voice {
                StreamSender::Both => PcmSource::Mixed,
                StreamSender::Local => PcmSource::Local,
                StreamSender::Remote | StreamSender::Member(_) => PcmSource::Remote,
            };
            let setup = TranscoderSetup {
                source: pcm,
                codec: kind,
                payload_type: stream.codec.payload_type,
                fmtp: stream.codec.fmtp.clone(),
                out,
            };
            match Transcoder::new(setup) {
                Ok(transcoder) => streams.push(RsStream {
                    socket,
                    source,
                    voice,
                    feed: StreamFeed::Transcode(transcoder),
                }),
                Err(error) => {
                    self.recording_failed(call, format!("recording encoder: {error}"));
                    return;
                }
            }
        }
        // Every call that feeds a stream by its packets taps them; the others stop.
        let tapping: Vec<(CallId, bool)> = sources
            .iter()
            .flatten()
            .copied()
            .chain(core::iter::once(call))
            .map(|source| {
                let copies = streams
                    .iter()
                    .any(|s| s.source == source && matches!(s.feed, StreamFeed::Forward(_)));
                (source, copies)
            })
            .collect();
        let wants_pcm = streams
            .iter()
            .any(|s| matches!(s.feed, StreamFeed::Transcode(_)));
        match self.recordings.get_mut(&call) {
            Some(r) => {
                r.streams = streams;
                r.wants_pcm = wants_pcm;
            }
            None => return,
        }
        for (source, copies) in tapping {
            if let Some(media) = self.media.get_mut(&source) {
                media.session.set_tapping(copies);
            }
        }
        let sending = self
            .recordings
            .get(&call)
            .is_some_and(|r| r.offer.direction == Direction::SendOnly);
        if sending {
            self.cancel_timer(Timer::RecordingDeadline(call));
            let state = self.live_state(call);
            self.change_recording_state(call, media_id, state);
        }
    }

    /// The recorder's new description of the streams (its re-offer, or its answer to our
    /// re-INVITE): when it moves a stream, changes its codec or keys, or refuses it, the
    /// streams are built again from it, so that no packet goes where the recorder no longer
    /// listens. The same description again (a refresh) changes nothing.
    pub(super) fn apply_recorder_description(&mut self, call: CallId, sdp: &SessionDescription) {
        let Some(recording) = self.recordings.get(&call) else {
            return;
        };
        if recording.offer.direction != Direction::SendOnly || recording.streams.is_empty() {
            // Paused, or not yet set up: the streams are built when sending starts.
            return;
        }
        match rs_sdp::read_answer(&recording.offer, sdp) {
            Ok(streams) if streams != recording.applied => {
                tracing::info!("the recorder moved or changed the recording's streams");
                if !self.refuses_plain_rtp(call, &streams) {
                    self.build_streams(call, streams);
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "the recorder's new description of the streams is unusable");
            }
        }
    }

    /// The recorder answered our SRTP offer with plain RTP on some stream. When the policy
    /// requires SRTP the recording session ends as failed, with the reason (and true is
    /// returned); otherwise the user is warned once and the indicator says it.
    pub(super) fn refuses_plain_rtp(&mut self, call: CallId, answered: &[AnsweredStream]) -> bool {
        let Some(recording) = self.recordings.get_mut(&call) else {
            return false;
        };
        let plain: Vec<&str> = answered
            .iter()
            .filter(|s| s.accepted && s.crypto.is_none())
            .map(|s| s.label.as_str())
            .collect();
        if recording.offer.keys.is_none() || plain.is_empty() {
            return false;
        }
        let labels = plain.join(", ");
        let required = self
            .recording_plans
            .get(&call)
            .is_some_and(|plan| plan.request.srtp);
        if required {
            self.stop_recording_dialog(call);
            self.recording_failed(
                call,
                format!(
                    "the recorder answered plain RTP to our SRTP offer (stream {labels}), \
                     and the recording policy requires SRTP"
                ),
            );
            return true;
        }
        if !std::mem::replace(&mut recording.warned_unencrypted, true) {
            self.events.push_back(Event::Warning {
                call: Some(call),
                message: format!(
                    "the recorder refused SRTP: stream {labels} of this recording goes to it \
                     unencrypted"
                ),
            });
        }
        false
    }

    /// Moves the indicator to `state`, telling the front end only when it changed.
    pub(super) fn change_recording_state(
        &mut self,
        call: CallId,
        media_id: RecordingId,
        state: RecordingState,
    ) {
        let changed = self
            .recordings
            .get_mut(&call)
            .is_some_and(|r| std::mem::replace(&mut r.state, state.clone()) != state);
        if changed {
            self.recording_event(call, media_id, state);
        }
    }

    /// Recording, or recording with gaps once any attempt failed during the call, or only
    /// one voice when the recorder refused the other's stream.
    pub(super) fn live_state(&self, call: CallId) -> RecordingState {
        let refused = self.recordings.get(&call).and_then(|r| {
            r.applied
                .iter()
                .filter(|s| !s.accepted)
                .find_map(|s| match s.voice? {
                    StreamSender::Local => Some(Party::Local),
                    // A party of our conference is, like the far end, someone else's voice.
                    StreamSender::Remote | StreamSender::Member(_) => Some(Party::Remote),
                    // The one mixed stream refused is no recording at all (read_answer).
                    StreamSender::Both => None,
                })
        });
        if let Some(missing) = refused {
            return RecordingState::OneSide { missing };
        }
        let unencrypted = self.recordings.get(&call).is_some_and(|r| {
            r.offer.keys.is_some() && r.applied.iter().any(|s| s.accepted && s.crypto.is_none())
        });
        if unencrypted {
            return RecordingState::Unencrypted;
        }
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

    pub(in crate::engine) fn forward_to_recording(&mut self, call: CallId, tapped: &TappedPacket) {
        let owner = self.recording_owner(call);
        let Some(recording) = self.recordings.get_mut(&owner) else {
            return;
        };
        for stream in &mut recording.streams {
            let StreamFeed::Forward(forwarder) = &mut stream.feed else {
                continue;
            };
            if stream.source != call {
                continue;
            }
            if let Some(data) = forwarder.forward(self.now, tapped) {
                self.media_outputs.push_back(crate::engine::Output::Media {
                    socket: stream.socket,
                    destination: forwarder.out.destination,
                    data,
                    rtcp: false,
                });
            }
        }
    }

    /// A mandatory recording is not the user's to pause or stop (the call's end stops
    /// it): the user is told, and true is returned.
    pub(in crate::engine) fn refuse_if_mandatory(&mut self, call: CallId, what: &str) -> bool {
        if !self.recording_is_mandatory(call) {
            return false;
        }
        self.events.push_back(Event::Warning {
            call: Some(call),
            message: format!(
                "this call's recording is mandatory: it cannot be {what} while the call lasts"
            ),
        });
        true
    }

    pub(in crate::engine) fn recording_is_mandatory(&self, call: CallId) -> bool {
        self.recording_plans
            .get(&call)
            .is_some_and(|plan| plan.request.mandatory)
    }

    /// Whether the call's recording wants every tick's audio (it encodes some stream).
    pub(in crate::engine) fn recording_wants_pcm(&self, call: CallId) -> bool {
        let owner = self.recording_owner(call);
        self.recordings.get(&owner).is_some_and(|r| {
            r.wants_pcm
                && r.streams
                    .iter()
                    .any(|s| s.source == call && matches!(s.feed, StreamFeed::Transcode(_)))
        })
    }

    /// One tick of the call's audio for streams that encode: what the user sent and what
    /// the far end's audio decoded to.
    pub(in crate::engine) fn encode_for_recording(
        &mut self,
        call: CallId,
        local: &[f32],
        remote: &[f32],
    ) {
        if local.len() != FRAME_SAMPLES || remote.len() != FRAME_SAMPLES {
            return;
        }
        // In our conference one mixed stream carries every voice: the owner's tick adds the
        // other parties' last frames to its far end's.
        let mut everyone = [0.0f32; FRAME_SAMPLES];
        everyone.copy_from_slice(remote);
        self.mix_other_members(call, &mut everyone);
        let owner = self.recording_owner(call);
        let Some(recording) = self.recordings.get_mut(&owner) else {
            return;
        };
        for stream in &mut recording.streams {
            let StreamFeed::Transcode(transcoder) = &mut stream.feed else {
                continue;
            };
            if stream.source != call {
                continue;
            }
            let remote = if stream.voice == StreamSender::Both {
                &everyone[..]
            } else {
                remote
            };
            if let Some(data) = transcoder.encode(self.now, local, remote) {
                self.media_outputs.push_back(crate::engine::Output::Media {
                    socket: stream.socket,
                    destination: transcoder.out.destination,
                    data,
                    rtcp: false,
                });
            }
        }
    }

    /// Each stream's sender report when it is due: called on every tick of the call's audio.
    pub(in crate::engine) fn send_recording_reports(&mut self, call: CallId) {
        let ntp_now = rtcp::ntp_from_duration(rtcp::NTP_UNIX_OFFSET + self.wall_clock());
        let now = self.now;
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        for stream in &mut recording.streams {
            let socket = stream.socket;
            let out = stream.out();
            if let Some(data) = out.report_due(now, ntp_now) {
                self.media_outputs.push_back(crate::engine::Output::Media {
                    socket,
                    destination: out.rtcp_destination,
                    data,
                    rtcp: true,
                });
            }
        }
    }

    /// The streams end (the session ends, or the recorder rebuilt them): each says BYE with
    /// its last report (RFC 3550 6.6), so the recorder knows the stream is over, not lost.
    pub(super) fn say_bye_on_streams(&mut self, call: CallId, reason: &str) {
        let wall = metadata::format_time(self.wall_clock());
        if let Some(plan) = self.recording_plans.get_mut(&call) {
            plan.record.close_stream_gaps(&wall);
        }
        let ntp_now = rtcp::ntp_from_duration(rtcp::NTP_UNIX_OFFSET + self.wall_clock());
        let now = self.now;
        let Some(recording) = self.recordings.get_mut(&call) else {
            return;
        };
        for mut stream in recording.streams.drain(..) {
            // A conference party's call copies its packets for this stream only.
            if stream.source != call
                && let Some(media) = self.media.get_mut(&stream.source)
            {
                media.session.set_tapping(false);
            }
            let socket = stream.socket;
            let out = stream.out();
            if let Some(data) = out.bye(now, ntp_now, reason) {
                self.media_outputs.push_back(crate::engine::Output::Media {
                    socket,
                    destination: out.rtcp_destination,
                    data,
                    rtcp: true,
                });
            }
        }
    }
}
