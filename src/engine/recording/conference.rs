//! The recording of our own conference (RFC 7245 3.1.5: we are its focus and mixer): one
//! recording session for the whole conference, held by one of its calls, the owner (the
//! first recorded one merged). In separate mode every party has a labelled stream of its
//! own, added by re-INVITE when it joins on a socket pair asked of the driver then, and
//! offered with port 0 once it left; in mixed mode the one stream carries every voice. The
//! metadata names each party with its stream, and when it joined and left (RFC 7865 6.6).
//! When the owner's far end hangs up and the conference goes on, another member's call
//! takes the recording over: the session, its streams and its IDs stay.

use super::*;

impl CallRecord {
    /// The m-lines a recording session of the call offers: labels, voices and our ports,
    /// with port 0 for a party that left.
    pub(super) fn offered_streams(
        &self,
        ports: &[u16],
    ) -> (Vec<String>, Vec<Option<StreamSender>>, Vec<u16>) {
        let mut ports = ports.to_vec();
        for (index, voice) in self.voices.iter().enumerate() {
            if let Some(StreamSender::Member(n)) = voice
                && self.party_left(*n)
                && let Some(slot) = rs_sdp::stream_slot(&self.voices, index)
                && let Some(port) = ports.get_mut(slot)
            {
                *port = 0;
            }
        }
        (self.labels.clone(), self.voices.clone(), ports)
    }

    pub(super) fn party_left(&self, n: u16) -> bool {
        self.parties
            .get(usize::from(n))
            .is_none_or(|party| party.left.is_some())
    }

    /// The call of the party whose voice `voice` is, when it is a party of our conference
    /// still in it.
    pub(super) fn party_call(&self, voice: StreamSender) -> Option<CallId> {
        let StreamSender::Member(n) = voice else {
            return None;
        };
        let party = self.parties.get(usize::from(n))?;
        party.left.is_none().then_some(party.call)
    }

    /// The calls of the parties still in our conference.
    pub(super) fn party_calls(&self) -> impl Iterator<Item = CallId> + '_ {
        self.parties
            .iter()
            .filter(|p| p.left.is_none())
            .map(|p| p.call)
    }
}

impl Engine {
    /// The call whose recording takes `call`'s voices: `call` itself, or in our conference
    /// the member holding the conference's recording.
    pub(in crate::engine) fn recording_owner(&self, call: CallId) -> CallId {
        // On every tick and packet: no allocation here.
        if self.recording_plans.contains_key(&call) || !self.local_conference.contains(&call) {
            return call;
        }
        self.local_conference
            .iter()
            .copied()
            .find(|peer| {
                *peer != call
                    && self
                        .recording_plans
                        .get(peer)
                        .is_some_and(|plan| plan.record.party_calls().any(|c| c == call))
            })
            .unwrap_or(call)
    }

    /// Our conference changed (calls merged) or its recording started: the conference has
    /// one recording, the first recorded member's. Other members' own recordings end, and
    /// each party not in it yet joins it: a stream of its own in separate mode, once the
    /// driver has bound its socket pair; the recorder hears of it by re-INVITE.
    pub(in crate::engine) fn record_conference(&mut self) {
        let Some(owner) = self
            .local_conference
            .iter()
            .copied()
            .find(|c| self.recording_plans.contains_key(c))
        else {
            return;
        };
        let peers = self.conference_peers(owner);
        for peer in &peers {
            if self.recording_plans.contains_key(peer) {
                self.stop_recording(*peer);
                // Its voice is recorded here now: a mandatory deadline of its own is moot.
                self.cancel_timer(Timer::RecordingDeadline(*peer));
                self.events.push_back(Event::Warning {
                    call: Some(*peer),
                    message: "this call's own recording ended: the conference's recording \
                              takes its voice"
                        .into(),
                });
            }
        }
        self.rebuild_for_conference(owner);
        let now = metadata::format_time(self.wall_clock());
        let mut joined = Vec::new();
        for peer in peers {
            let already = self
                .recording_plans
                .get(&owner)
                .is_some_and(|plan| plan.record.party_calls().any(|c| c == peer));
            let Some(who) = self.calls.get(&peer).map(|c| c.remote_identity()) else {
                continue;
            };
            if already {
                continue;
            }
            let participant_id = self.new_id();
            let Some(plan) = self.recording_plans.get_mut(&owner) else {
                return;
            };
            let Ok(n) = u16::try_from(plan.record.parties.len()) else {
                continue;
            };
            plan.record.parties.push(ConferenceParty {
                call: peer,
                participant_id,
                who,
                joined: now.clone(),
                left: None,
            });
            if plan.request.mode == RecordingMode::Separate {
                let slot = plan.request.media_ports.len() + plan.ports_awaited.len();
                plan.ports_awaited.push((slot, StreamSender::Member(n)));
                self.media_outputs
                    .push_back(crate::engine::Output::BindMedia {
                        socket: MediaSocket::Recording {
                            recording: plan.media_id,
                            stream: slot,
                        },
                    });
            }
            joined.push(peer);
        }
        if joined.is_empty() {
            return;
        }
        if self.parties_need_srtp(owner) {
            // A party's voice must not reach the recorder less protected than its call:
            // the session starts again with SRTP (or fails, saying why, where it cannot).
            self.stop_recording_dialog(owner);
            self.recording_failed(
                owner,
                "a party of the conference is on an encrypted call (SRTP): the recording \
                 starts again encrypted"
                    .into(),
            );
            return;
        }
        // The newcomers hear the notice and see `a=record` as the others do.
        if let Some((media_id, state)) = self
            .recordings
            .get(&owner)
            .map(|r| (r.media_id, r.state.clone()))
        {
            for peer in joined {
                self.announce_to_party(peer, media_id, &state);
            }
        }
        let awaiting = self
            .recording_plans
            .get(&owner)
            .is_some_and(|plan| !plan.ports_awaited.is_empty());
        if awaiting {
            // The recorder hears of the newcomers with their streams, once bound.
            if let Some(r) = self.recordings.get_mut(&owner) {
                r.metadata_dirty = true;
            }
        } else {
            self.metadata_changed(owner);
        }
    }

    /// The owner's streams were built for a two-party call: in a conference the local
    /// user's own stream is encoded from the microphone, not copied from what we send (the
    /// mix), so they are built again.
    fn rebuild_for_conference(&mut self, owner: CallId) {
        let Some(recording) = self.recordings.get(&owner) else {
            return;
        };
        let copies_local = recording
            .streams
            .iter()
            .any(|s| matches!(&s.feed, StreamFeed::Forward(f) if f.side == TapSide::Local));
        if !copies_local {
            return;
        }
        let applied = recording.applied.clone();
        self.say_bye_on_streams(owner, "the call joined a conference");
        self.build_streams(owner, applied);
    }

    /// Some party of the conference `owner` records is on an SRTP call, and the recording
    /// session in place is plain RTP.
    fn parties_need_srtp(&self, owner: CallId) -> bool {
        let plain = self
            .recordings
            .get(&owner)
            .is_some_and(|r| r.offer.keys.is_none());
        plain
            && self
                .recording_plans
                .get(&owner)
                .is_some_and(|plan| plan.record.party_calls().any(|c| self.call_uses_srtp(c)))
    }

    /// What the recording of a call shows, told to a party of our conference it records:
    /// `a=record` in its SDP, and the audible notice.
    pub(super) fn indicate_to_party(&mut self, party: CallId, state: &RecordingState) {
        let indication = match state {
            RecordingState::Starting => None,
            live if live.is_live() => Some("on"),
            RecordingState::Paused { .. } => Some("paused"),
            _ => Some("off"),
        };
        if let Some(value) = indication {
            self.tell_call(party, RecordingNote::Indicate(value));
        }
        self.notice_recording_state(party, state);
    }

    /// The driver bound (or could not bind) the socket pair of a party's stream.
    pub(in crate::engine) fn recording_stream_bound(
        &mut self,
        media_id: RecordingId,
        slot: usize,
        port: Result<u16, String>,
    ) {
        let Some(owner) = self
            .recording_plans
            .iter()
            .find(|(_, plan)| plan.media_id == media_id)
            .map(|(call, _)| *call)
        else {
            // The recording ended meanwhile; the driver released its sockets with it.
            return;
        };
        let label_id = self.new_id();
        let now = metadata::format_time(self.wall_clock());
        let Some(plan) = self.recording_plans.get_mut(&owner) else {
            return;
        };
        let Some(at) = plan.ports_awaited.iter().position(|(s, _)| *s == slot) else {
            return;
        };
        let (_, voice) = plan.ports_awaited.remove(at);
        let record = &mut plan.record;
        let label = (record.labels.len() + 1).to_string();
        // Without a socket the m-line is still added, with port 0: every later stream
        // keeps the socket its position names.
        let bound = match port {
            Ok(port) => port,
            Err(error) => {
                let who = match voice {
                    StreamSender::Member(n) => record.parties.get(usize::from(n)),
                    _ => None,
                }
                .map_or_else(|| record.remote.uri.to_string(), |p| p.who.uri.to_string());
                record.stream_gaps.push((
                    label.clone(),
                    Gap {
                        from: now,
                        to: None,
                        reason: format!("{who}'s voice is not recorded: {error}"),
                    },
                ));
                self.events.push_back(Event::Warning {
                    call: Some(owner),
                    message: format!("{who}'s voice cannot be recorded: {error}"),
                });
                0
            }
        };
        record.labels.push(label);
        record.voices.push(Some(voice));
        record.stream_ids.push(label_id);
        let ports = &mut plan.request.media_ports;
        if ports.len() <= slot {
            ports.resize(slot + 1, 0);
        }
        if let Some(entry) = ports.get_mut(slot) {
            *entry = bound;
        }
        self.metadata_changed(owner);
    }

    /// Before a re-offer: the m-lines follow the record (parties' streams added, those of
    /// parties that left stopped), each new one with an SRTP key when the session has them.
    pub(super) fn sync_offer_with_record(&mut self, call: CallId) -> Result<(), String> {
        let Some(plan) = self.recording_plans.get(&call) else {
            return Ok(());
        };
        let (labels, voices, ports) = plan.record.offered_streams(&plan.request.media_ports);
        let Some(recording) = self.recordings.get(&call) else {
            return Ok(());
        };
        let offer = &recording.offer;
        // A recorder's own m-lines (it offered) are only ever added to, never renamed.
        if labels.len() < offer.labels.len()
            || labels.get(..offer.labels.len()) != Some(&offer.labels[..])
        {
            return Ok(());
        }
        let mut new_keys = Vec::new();
        if let Some(keys) = &offer.keys {
            for _ in keys.len()..labels.len() {
                new_keys.push(
                    self.config
                        .key_source
                        .key_salt()
                        .ok_or("no randomness for SRTP keys")?,
                );
            }
        }
        let Some(recording) = self.recordings.get_mut(&call) else {
            return Ok(());
        };
        if labels.len() > recording.offer.labels.len() {
            recording
                .lines_before_offer
                .get_or_insert(recording.offer.labels.len());
        }
        let offer = &mut recording.offer;
        offer.labels = labels;
        offer.voices = voices;
        offer.ports = ports;
        if let Some(keys) = &mut offer.keys {
            keys.extend(new_keys);
        }
        Ok(())
    }

    /// The recorder refused the re-INVITE that added parties' streams (RFC 3264: the
    /// session stays as it was). The offer goes back to what was agreed; in the record the
    /// new m-lines stay, stopped (port 0), so every stream keeps the socket its position
    /// names, and each of those voices is a gap for as long as the session lasts.
    pub(super) fn added_streams_refused(&mut self, call: CallId, status: u16) {
        let Some(before) = self
            .recordings
            .get_mut(&call)
            .and_then(|r| r.lines_before_offer.take())
        else {
            return;
        };
        let now = metadata::format_time(self.wall_clock());
        if let Some(recording) = self.recordings.get_mut(&call) {
            // The refused request's metadata never reached the recorder either.
            recording.metadata_dirty = true;
            let offer = &mut recording.offer;
            offer.labels.truncate(before);
            offer.voices.truncate(before);
            if let Some(keys) = &mut offer.keys {
                keys.truncate(before);
            }
        }
        let Some(plan) = self.recording_plans.get_mut(&call) else {
            return;
        };
        let record = &mut plan.record;
        for index in before..record.labels.len() {
            if let Some(slot) = rs_sdp::stream_slot(&record.voices, index)
                && let Some(port) = plan.request.media_ports.get_mut(slot)
            {
                *port = 0;
            }
            let voice = record.voices.get(index).copied().flatten();
            let who = match voice {
                Some(StreamSender::Member(n)) => record.parties.get(usize::from(n)),
                _ => None,
            }
            .map_or_else(|| record.remote.uri.to_string(), |p| p.who.uri.to_string());
            let label = record.labels.get(index).cloned().unwrap_or_default();
            record.stream_gaps.push((
                label,
                Gap {
                    from: now.clone(),
                    to: None,
                    reason: format!(
                        "the recorder refused a stream for {who}'s voice ({status}): it is \
                         not recorded"
                    ),
                },
            ));
        }
    }

    /// A party left our conference (its call ended). Its stream stops (port 0 in the next
    /// offer) and the metadata says when it left. When it held the conference's recording
    /// and others remain, one of them takes the recording over.
    pub(in crate::engine) fn recording_party_left(&mut self, call: CallId) {
        let now = metadata::format_time(self.wall_clock());
        let owner = self.recording_owner(call);
        if owner == call {
            self.hand_recording_over(call, &now);
            return;
        }
        let Some(plan) = self.recording_plans.get_mut(&owner) else {
            return;
        };
        let mut changed = false;
        for party in &mut plan.record.parties {
            if party.call == call && party.left.is_none() {
                party.left = Some(now.clone());
                changed = true;
            }
        }
        if changed {
            if let Some(media) = self.media.get_mut(&call) {
                media.session.set_tapping(false);
            }
            self.metadata_changed(owner);
        }
    }

    /// The owner's far end left and the conference goes on: the first party still in it
    /// takes the recording over. In the record the two swap places: the party becomes the
    /// far end (its stream now the far end's) and the far end that left becomes a party
    /// that left, so every ID, label and socket stays and only who is where changes.
    fn hand_recording_over(&mut self, from: CallId, now: &str) {
        let Some(plan) = self.recording_plans.get(&from) else {
            return;
        };
        // A party whose stream is up first: its stream becomes the far end's.
        let record = &plan.record;
        let has_stream = |n: usize| {
            u16::try_from(n).is_ok_and(|n| {
                record.voices.contains(&Some(StreamSender::Member(n)))
                    && !plan
                        .ports_awaited
                        .iter()
                        .any(|(_, v)| *v == StreamSender::Member(n))
            })
        };
        let in_conference: Vec<(usize, CallId)> = record
            .parties
            .iter()
            .enumerate()
            .filter(|(_, p)| p.left.is_none())
            .map(|(n, p)| (n, p.call))
            .collect();
        let Some((n, to)) = in_conference
            .iter()
            .find(|(n, _)| has_stream(*n))
            .or(in_conference.first())
            .copied()
        else {
            return;
        };
        let Ok(n16) = u16::try_from(n) else {
            return;
        };
        self.move_recording(from, to);
        let Some(plan) = self.recording_plans.get_mut(&to) else {
            return;
        };
        let record = &mut plan.record;
        let Some(party) = record.parties.get_mut(n) else {
            return;
        };
        let former = ConferenceParty {
            call: from,
            participant_id: core::mem::replace(&mut record.remote_id, party.participant_id.clone()),
            who: core::mem::replace(&mut record.remote, party.who.clone()),
            joined: core::mem::replace(&mut record.remote_since, party.joined.clone()),
            left: Some(now.to_owned()),
        };
        *party = former;
        let swap = |voice: StreamSender| match voice {
            StreamSender::Remote => StreamSender::Member(n16),
            StreamSender::Member(m) if m == n16 => StreamSender::Remote,
            other => other,
        };
        for voice in record.voices.iter_mut().flatten() {
            *voice = swap(*voice);
        }
        // A stream still waiting for its socket is the new far end's now.
        for (_, voice) in &mut plan.ports_awaited {
            *voice = swap(*voice);
        }
        // The local user's stream now ticks with the new owner's call; the far end that
        // left has nothing more to send.
        if let Some(recording) = self.recordings.get_mut(&to) {
            recording
                .streams
                .retain(|stream| stream.source != from || stream.voice != StreamSender::Remote);
            for stream in &mut recording.streams {
                if stream.source == from {
                    stream.source = to;
                }
            }
        }
        if let Some((media_id, state)) = self
            .recordings
            .get(&to)
            .map(|r| (r.media_id, r.state.clone()))
        {
            self.recording_event(to, media_id, state);
        }
        self.metadata_changed(to);
    }

    /// Moves the recording of `from` to `to`: its session, plan and timers, and whom its
    /// transactions answer to.
    pub(super) fn move_recording(&mut self, from: CallId, to: CallId) {
        if let Some(mut recording) = self.recordings.remove(&from) {
            recording.call = to;
            self.recordings.insert(to, recording);
        }
        if let Some(plan) = self.recording_plans.remove(&from) {
            self.recording_plans.insert(to, plan);
        }
        let timers: [fn(CallId) -> Timer; 8] = [
            Timer::RecordingRetry,
            Timer::RecordingDeadline,
            Timer::RecordingGlareRetry,
            Timer::RecordingRefresh,
            Timer::RecorderRetransmit2xx,
            Timer::RecorderSessionExpiry,
            Timer::RecorderProbe,
            Timer::RecorderProbeDeadline,
        ];
        for timer in timers {
            if let Some(&(at, _)) = self.timer_index.get(&timer(from)) {
                self.cancel_timer(timer(from));
                self.set_timer(at, timer(to));
            }
        }
        for owner in self.tx_owner.values_mut() {
            *owner = match *owner {
                TxOwner::Recording(c) if c == from => TxOwner::Recording(to),
                TxOwner::RecorderProbe(c) if c == from => TxOwner::RecorderProbe(to),
                TxOwner::RecordingBye { call, report } if call == from => {
                    TxOwner::RecordingBye { call: to, report }
                }
                other => other,
            };
        }
    }
}
