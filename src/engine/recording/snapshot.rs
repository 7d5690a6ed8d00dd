//! The RFC 7865 metadata snapshot of a call, from its record.

use super::*;

impl Engine {
    /// The snapshot of `call` as of now; empty when the call has no record.
    pub(in crate::engine) fn metadata_snapshot(&self, call: CallId) -> Vec<u8> {
        let Some(plan) = self.recording_plans.get(&call) else {
            return Vec::new();
        };
        snapshot(&plan.record, metadata::format_time(self.wall_clock())).into_bytes()
    }
}

/// The complete RFC 7865 snapshot of a call (XML) from its record alone: who is in it, which
/// labelled stream carries whose voice, who left, and the stretches no recording captured.
/// `now` (RFC 3339) closes a gap still open: the session it goes to is starting or running.
pub(super) fn snapshot(record: &CallRecord, now: String) -> String {
    let party = |who: &NameAddr, participant_id: &str| metadata::Party {
        participant_id: participant_id.to_owned(),
        aor: who.uri.to_string(),
        name: who.display_name.clone(),
    };
    // Only the streams that carry a voice: an m-line we declined carries nothing to describe.
    let streams = record
        .stream_ids
        .iter()
        .zip(&record.labels)
        .zip(&record.voices)
        .filter_map(|((id, label), voice)| {
            Some(metadata::StreamSpec {
                stream_id: id.clone(),
                label: label.clone(),
                sender: (*voice)?,
            })
        })
        .collect();
    let mut snapshot = metadata::two_party_snapshot(metadata::TwoParty {
        session_id: record.session_id.clone(),
        sip_session_id: record.sip_session_id.clone(),
        group_id: record.group_id.clone(),
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
    add_conference_members(&mut snapshot, record);
    add_own_conference_parties(&mut snapshot, record);
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
    snapshot.gaps = record
        .all_gaps()
        .iter()
        .map(|gap| Gap {
            to: gap.to.clone().or_else(|| Some(now.clone())),
            ..gap.clone()
        })
        .collect();
    snapshot.to_xml()
}

/// The other participants of the far end's conference (RFC 7865 6.1 with RFC 4575): each is
/// in the session from when it joined until it left; while in, it sends in the far end's
/// stream (the mix the focus sends us) and receives ours. On hold no voice crosses.
fn add_conference_members(snapshot: &mut metadata::Metadata, record: &CallRecord) {
    let remote_streams: Vec<String> = snapshot
        .participant_stream_assocs
        .iter()
        .find(|a| a.participant_id == record.remote_id)
        .map(|a| a.send.clone())
        .unwrap_or_default();
    let local_streams: Vec<String> = snapshot
        .participant_stream_assocs
        .iter()
        .find(|a| a.participant_id == record.local_id)
        .map(|a| a.send.clone())
        .unwrap_or_default();
    for (id, member) in &record.conference {
        snapshot.participants.push(metadata::Participant {
            id: id.clone(),
            aor: member.aor.clone(),
            name: member.name.clone(),
        });
        snapshot
            .participant_session_assocs
            .push(metadata::ParticipantSessionAssoc {
                participant_id: id.clone(),
                session_id: record.session_id.clone(),
                associate_time: Some(member.joined.clone()),
                disassociate_time: member.left.clone(),
            });
        if member.is_in() {
            snapshot
                .participant_stream_assocs
                .push(metadata::ParticipantStreamAssoc {
                    participant_id: id.clone(),
                    send: remote_streams.clone(),
                    recv: local_streams.clone(),
                });
        }
    }
}

/// The other parties of our own conference (RFC 7865 6.1): each in the session from when it
/// joined until it left; while in, it sends its own stream (in mixed mode the one stream)
/// and receives every other voice's. On hold no voice crosses.
fn add_own_conference_parties(snapshot: &mut metadata::Metadata, record: &CallRecord) {
    // A party's stream that carries nothing (the party left, or the stream was refused or
    // never had a socket: an open gap of its own) is nobody's to send or hear.
    let silent = |label: &String| {
        record
            .stream_gaps
            .iter()
            .any(|(gap_label, gap)| gap_label == label && gap.to.is_none())
    };
    let streams: Vec<(&String, StreamSender)> = record
        .stream_ids
        .iter()
        .zip(&record.labels)
        .zip(&record.voices)
        .filter_map(|((id, label), voice)| Some((id, label, (*voice)?)))
        .filter(|(_, label, voice)| match voice {
            StreamSender::Member(n) => !record.party_left(*n) && !silent(label),
            _ => true,
        })
        .map(|(id, _, voice)| (id, voice))
        .collect();
    // The stream of a party that left carries nothing now: nobody receives it.
    let live: Vec<&String> = streams.iter().map(|(id, _)| *id).collect();
    for assoc in &mut snapshot.participant_stream_assocs {
        assoc.recv.retain(|id| live.contains(&id));
        assoc.send.retain(|id| live.contains(&id));
    }
    for (n, party) in record.parties.iter().enumerate() {
        snapshot.participants.push(metadata::Participant {
            id: party.participant_id.clone(),
            aor: party.who.uri.to_string(),
            name: party.who.display_name.clone(),
        });
        snapshot
            .participant_session_assocs
            .push(metadata::ParticipantSessionAssoc {
                participant_id: party.participant_id.clone(),
                session_id: record.session_id.clone(),
                associate_time: Some(party.joined.clone()),
                disassociate_time: party.left.clone(),
            });
        if party.left.is_some() || record.on_hold {
            continue;
        }
        let own = |voice: StreamSender| {
            voice == StreamSender::Both
                || u16::try_from(n).is_ok_and(|n| voice == StreamSender::Member(n))
        };
        let ids = |wanted: &dyn Fn(StreamSender) -> bool| -> Vec<String> {
            streams
                .iter()
                .filter(|(_, voice)| wanted(*voice))
                .map(|(id, _)| (*id).clone())
                .collect()
        };
        snapshot
            .participant_stream_assocs
            .push(metadata::ParticipantStreamAssoc {
                participant_id: party.participant_id.clone(),
                send: ids(&own),
                recv: ids(&|voice| voice == StreamSender::Both || !own(voice)),
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CallRecord {
        let who = |uri: &str| NameAddr::parse(uri).unwrap();
        CallRecord {
            session_id: "c2Vzc2lvbg".into(),
            sip_session_id:
                "ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2".into(),
            group_id: "Z3JvdXA".into(),
            local_id: "bG9jYWw".into(),
            remote_id: "cmVtb3Rl".into(),
            stream_ids: vec!["czE".into(), "czI".into()],
            labels: vec!["1".into(), "2".into()],
            voices: rs_sdp::voices_for(2),
            start_time: "2026-12-07T10:00:00Z".into(),
            local: who("\"Alice\" <sip:alice@example.com>"),
            remote: who("<sip:bob@example.com>"),
            remote_since: "2026-12-07T10:00:00Z".into(),
            former_remotes: Vec::new(),
            conference: Vec::new(),
            parties: Vec::new(),
            gaps: vec![Gap {
                from: "2026-12-07T10:01:00Z".into(),
                to: None,
                reason: "the recorder refused".into(),
            }],
            stream_gaps: vec![(
                "2".into(),
                Gap {
                    from: "2026-12-07T10:02:00Z".into(),
                    to: Some("2026-12-07T10:03:00Z".into()),
                    reason: "the recorder refused stream 2".into(),
                },
            )],
            on_hold: false,
            end_time: None,
        }
    }

    #[test]
    fn the_snapshot_is_the_record_as_of_now() {
        let now = "2026-12-07T10:02:00Z".to_owned();
        let parsed = metadata::parse(&snapshot(&record(), now.clone())).unwrap();
        assert_eq!(
            parsed.sessions[0].sip_session_ids,
            vec!["ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2"],
            "the call's Session-ID, both ends"
        );
        assert_eq!(parsed.groups.len(), 1);
        assert_eq!(parsed.groups[0].id, "Z3JvdXA");
        assert_eq!(
            parsed.sessions[0].group_ref.as_deref(),
            Some("Z3JvdXA"),
            "the session names the call's group"
        );
        assert_eq!(parsed.gaps.len(), 2, "the call's gap and one stream's");
        assert_eq!(
            parsed.gaps[0].to.as_deref(),
            Some(now.as_str()),
            "an open gap ends now"
        );
        assert_eq!(parsed.gaps[1].reason, "the recorder refused stream 2");
        assert_eq!(
            parsed.gaps[1].to.as_deref(),
            Some("2026-12-07T10:03:00Z"),
            "a closed stream gap keeps its end"
        );
        let alice = parsed
            .participant_stream_assocs
            .iter()
            .find(|a| a.participant_id == "bG9jYWw")
            .unwrap();
        assert_eq!(alice.send, vec!["czE".to_owned()]);
        let held = CallRecord {
            on_hold: true,
            end_time: Some("2026-12-07T10:03:00Z".into()),
            ..record()
        };
        let parsed = metadata::parse(&snapshot(&held, now)).unwrap();
        assert!(
            parsed
                .participant_stream_assocs
                .iter()
                .all(|a| a.send.is_empty() && a.recv.is_empty()),
            "on hold nobody's voice crosses the call"
        );
        assert_eq!(
            parsed.sessions[0].end_time.as_deref(),
            Some("2026-12-07T10:03:00Z")
        );
    }
}
