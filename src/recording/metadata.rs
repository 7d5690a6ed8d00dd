//! RFC 7865 recording metadata: the model, an XML writer for what Verbatim sends as SRC, and a
//! bounded parser for what phones send to the built-in recorder.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use thiserror::Error;

use crate::xml_tree::{self, Element, TreeError};

pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:recording:1";
/// The namespace of the drafts before RFC 7865 (no version suffix); SBCs built on those drafts
/// still send it, with the RFC's element names.
pub const DRAFT_NAMESPACE: &str = "urn:ietf:params:xml:ns:recording";
/// BroadWorks' pre-RFC dialect: root `<recording_metadata>`, `id`/`session` attributes,
/// participants carrying `<aor>`, `<name>` and the streams they send (`<send><id>`).
pub const BROADWORKS_NAMESPACE: &str = "urn:ietf:params:xml:ns:siprec";
/// The root element of [`BROADWORKS_NAMESPACE`] documents.
pub const BROADWORKS_ROOT: &str = "recording_metadata";
/// Verbatim's extension (RFC 7865 lets `<recording>` carry elements of other namespaces): the
/// stretches of the call that no recording session captured, so a recorder can tell a gap
/// from silence.
pub const GAPS_NAMESPACE: &str = "urn:x-verbatim:recording-gaps:1";

/// A two-party snapshot is about 2 KB; a conference with dozens of participants stays far below
/// this, while the cap stops a peer from making the recorder hold megabytes of tree.
pub const MAX_XML_BYTES: usize = 256 * 1024;
const MAX_ELEMENTS: usize = 4096;
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataMode {
    /// A full snapshot; RFC 7865 makes this the meaning of a document without `<datamode>`.
    #[default]
    Complete,
    /// Only what changed since the previous document.
    Partial,
}

impl DataMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Partial => "partial",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    pub datamode: DataMode,
    pub groups: Vec<Group>,
    pub sessions: Vec<Session>,
    pub participants: Vec<Participant>,
    pub streams: Vec<Stream>,
    pub session_recording_assocs: Vec<SessionRecordingAssoc>,
    pub participant_session_assocs: Vec<ParticipantSessionAssoc>,
    pub participant_stream_assocs: Vec<ParticipantStreamAssoc>,
    /// Verbatim's gap extension ([`GAPS_NAMESPACE`]).
    pub gaps: Vec<Gap>,
}

/// A time when the call went on but was not recorded, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gap {
    pub from: String,
    /// None while the gap lasts (or when the call ended before recording came back).
    pub to: Option<String>,
    pub reason: String,
}

/// `<group group_id>`: communication sessions that belong together; a session names its group
/// with `<group-ref>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    pub id: String,
    pub associate_time: Option<String>,
    pub disassociate_time: Option<String>,
}

/// `<session session_id>`: one communication session. Times are xs:dateTime strings, see
/// [`format_time`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    pub id: String,
    /// RFC 7989 Session-ID values of the CS (`<sipSessionID>`).
    pub sip_session_ids: Vec<String>,
    /// The group the session belongs to (`<group-ref>`).
    pub group_ref: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
}

/// `<participant participant_id>` with its first `<nameID aor>` (empty when none was sent).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Participant {
    pub id: String,
    pub aor: String,
    pub name: Option<String>,
}

/// `<stream stream_id session_id>`; `label` binds it to the RS SDP's `a=label`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stream {
    pub id: String,
    pub session_id: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionRecordingAssoc {
    pub session_id: String,
    pub associate_time: Option<String>,
    pub disassociate_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParticipantSessionAssoc {
    pub participant_id: String,
    pub session_id: String,
    pub associate_time: Option<String>,
    pub disassociate_time: Option<String>,
}

/// Which streams a participant sends (`<send>`) and receives (`<recv>`), by stream ID.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParticipantStreamAssoc {
    pub participant_id: String,
    pub send: Vec<String>,
    pub recv: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataError {
    #[error("metadata is {len} bytes, more than the {MAX_XML_BYTES} accepted")]
    TooLarge { len: usize },
    #[error("metadata nests elements deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("metadata has more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    #[error("metadata is not well-formed XML: {0}")]
    Xml(String),
    #[error("metadata uses the undefined entity &{0};")]
    UnknownEntity(String),
    #[error("metadata has no root element")]
    Empty,
    #[error(
        "metadata root element is <{element}>{}, not <recording> in {NAMESPACE} (or {DRAFT_NAMESPACE}), nor <{BROADWORKS_ROOT}> in {BROADWORKS_NAMESPACE}",
        namespace.as_ref().map(|ns| format!(" in {ns}")).unwrap_or_default()
    )]
    NotRecording {
        element: String,
        /// The namespace the root was in, when it had one.
        namespace: Option<String>,
    },
    #[error("<{element}> lacks its {attribute} attribute")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    #[error("<datamode> is {0:?}, neither complete nor partial")]
    InvalidDataMode(String),
    #[error("stream {stream_id} has label {label:?}, which the SDP does not carry")]
    LabelNotInSdp { stream_id: String, label: String },
    #[error("SDP a=label:{0} has no stream in the metadata")]
    SdpLabelWithoutStream(String),
    #[error("label {0:?} is bound to more than one stream")]
    DuplicateLabel(String),
    #[error("{referrer} names session {session_id}, which the metadata does not describe")]
    UnknownSession {
        referrer: String,
        session_id: String,
    },
    #[error("an association names participant {0}, which the metadata does not describe")]
    UnknownParticipant(String),
    #[error("participant {participant_id} is associated with unknown stream {stream_id}")]
    UnknownStream {
        participant_id: String,
        stream_id: String,
    },
}

/// An RFC 7865 identifier: a version 4 UUID built from the caller's 16 random bytes (the version
/// and variant bits are overwritten), base64 encoded, e.g. `"7+OTCyoxTmqmqyA/1weDAg=="`.
pub fn new_id(random: [u8; 16]) -> String {
    let mut uuid = random;
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    BASE64.encode(uuid)
}

/// Formats a time since the Unix epoch as an xs:dateTime in UTC with milliseconds,
/// e.g. `2026-11-26T10:11:12.345Z`.
pub fn format_time(unix: Duration) -> String {
    let seconds = unix.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let second_of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        unix.subsec_millis()
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01. Counting from 0000-03-01 puts the
/// leap day at the end of each year, so every 400-year era has the same shape and the month
/// lengths from March on follow one linear formula.
fn civil_from_days(days_since_epoch: u64) -> (u64, u64, u64) {
    const DAYS_FROM_0000_03_01_TO_EPOCH: u64 = 719_468;
    const DAYS_PER_ERA: u64 = 146_097;
    let days = days_since_epoch + DAYS_FROM_0000_03_01_TO_EPOCH;
    let era = days / DAYS_PER_ERA;
    let day_of_era = days % DAYS_PER_ERA;
    // Subtract the leap days that precede this day within the era before dividing by 365; the
    // last day of the era (a 400-year leap day) must not roll into year 400.
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524
        - day_of_era / (DAYS_PER_ERA - 1))
        / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March have lengths 31,30,31,30,31 repeating, i.e. 153 days per 5 months.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// Who sends a stream of a two-party recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamSender {
    /// The user of this phone (separate-streams convention: label 1).
    Local,
    /// The far end (separate-streams convention: label 2).
    Remote,
    /// Mixed mode: one stream carries both voices (in our own conference: every voice).
    Both,
    /// Another party of our own conference (the nth to join the recorded call, from 0):
    /// only its voice. The metadata names the party; everyone else hears this stream.
    Member(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub participant_id: String,
    pub aor: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub stream_id: String,
    pub label: String,
    pub sender: StreamSender,
}

/// What [`two_party_snapshot`] needs; IDs come from [`new_id`], times from [`format_time`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwoParty {
    pub session_id: String,
    /// The CS's RFC 7989 Session-ID; empty when the call has none.
    pub sip_session_id: String,
    /// The call's group: it ties every recording session of the call together, across
    /// pauses, fail-over and restarts. Its associate-time is the start time.
    pub group_id: String,
    pub start_time: String,
    pub local: Party,
    pub remote: Party,
    pub streams: Vec<StreamSpec>,
    pub associate_time: String,
}

/// The complete snapshot an SRC sends for an ordinary call: one session, both participants,
/// the RS streams, and every association. Each participant sends its own stream and receives
/// the other's; a mixed stream is both sent and received by both.
pub fn two_party_snapshot(params: TwoParty) -> Metadata {
    let TwoParty {
        session_id,
        sip_session_id,
        group_id,
        start_time,
        local,
        remote,
        streams,
        associate_time,
    } = params;
    let stream_ids = |wanted: &dyn Fn(StreamSender) -> bool| -> Vec<String> {
        streams
            .iter()
            .filter(|stream| wanted(stream.sender))
            .map(|stream| stream.stream_id.clone())
            .collect()
    };
    let participant_stream_assocs = vec![
        ParticipantStreamAssoc {
            participant_id: local.participant_id.clone(),
            send: stream_ids(&|sender| matches!(sender, StreamSender::Local | StreamSender::Both)),
            recv: stream_ids(&|sender| sender != StreamSender::Local),
        },
        ParticipantStreamAssoc {
            participant_id: remote.participant_id.clone(),
            send: stream_ids(&|sender| matches!(sender, StreamSender::Remote | StreamSender::Both)),
            recv: stream_ids(&|sender| sender != StreamSender::Remote),
        },
    ];
    let participant_session_assocs = [&local, &remote]
        .iter()
        .map(|party| ParticipantSessionAssoc {
            participant_id: party.participant_id.clone(),
            session_id: session_id.clone(),
            associate_time: Some(associate_time.clone()),
            disassociate_time: None,
        })
        .collect();
    Metadata {
        datamode: DataMode::Complete,
        groups: vec![Group {
            id: group_id.clone(),
            associate_time: Some(start_time.clone()),
            disassociate_time: None,
        }],
        sessions: vec![Session {
            id: session_id.clone(),
            sip_session_ids: Some(sip_session_id)
                .filter(|id| !id.is_empty())
                .into_iter()
                .collect(),
            group_ref: Some(group_id),
            start_time: Some(start_time),
            end_time: None,
        }],
        streams: streams
            .iter()
            .map(|stream| Stream {
                id: stream.stream_id.clone(),
                session_id: session_id.clone(),
                label: stream.label.clone(),
            })
            .collect(),
        session_recording_assocs: vec![SessionRecordingAssoc {
            session_id,
            associate_time: Some(associate_time),
            disassociate_time: None,
        }],
        participant_session_assocs,
        participant_stream_assocs,
        gaps: Vec::new(),
        participants: [local, remote]
            .into_iter()
            .map(|party| Participant {
                id: party.participant_id,
                aor: party.aor,
                name: party.name,
            })
            .collect(),
    }
}

impl Metadata {
    /// Serialises to an RFC 7865 document (UTF-8, default namespace, LF line breaks).
    pub fn to_xml(&self) -> String {
        let mut xml = XmlOut::default();
        xml.out
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        xml.start(0, "recording", &[("xmlns", NAMESPACE)], false);
        xml.leaf(1, "datamode", self.datamode.as_str());
        for group in &self.groups {
            let empty = group.associate_time.is_none() && group.disassociate_time.is_none();
            xml.start(1, "group", &[("group_id", &group.id)], empty);
            if !empty {
                xml.times(2, &group.associate_time, &group.disassociate_time);
                xml.end(1, "group");
            }
        }
        for session in &self.sessions {
            let empty = session.sip_session_ids.is_empty()
                && session.group_ref.is_none()
                && session.start_time.is_none()
                && session.end_time.is_none();
            xml.start(1, "session", &[("session_id", &session.id)], empty);
            if !empty {
                for sip_session_id in &session.sip_session_ids {
                    xml.leaf(2, "sipSessionID", sip_session_id);
                }
                xml.optional_leaf(2, "group-ref", &session.group_ref);
                xml.optional_leaf(2, "start-time", &session.start_time);
                xml.optional_leaf(2, "end-time", &session.end_time);
                xml.end(1, "session");
            }
        }
        for participant in &self.participants {
            let empty = participant.aor.is_empty() && participant.name.is_none();
            xml.start(
                1,
                "participant",
                &[("participant_id", &participant.id)],
                empty,
            );
            if !empty {
                let nameless = participant.name.is_none();
                xml.start(2, "nameID", &[("aor", &participant.aor)], nameless);
                if !nameless {
                    xml.optional_leaf(3, "name", &participant.name);
                    xml.end(2, "nameID");
                }
                xml.end(1, "participant");
            }
        }
        for stream in &self.streams {
            let attributes = [
                ("stream_id", stream.id.as_str()),
                ("session_id", &stream.session_id),
            ];
            xml.start(1, "stream", &attributes, false);
            xml.leaf(2, "label", &stream.label);
            xml.end(1, "stream");
        }
        for assoc in &self.session_recording_assocs {
            let empty = assoc.associate_time.is_none() && assoc.disassociate_time.is_none();
            let attributes = [("session_id", assoc.session_id.as_str())];
            xml.start(1, "sessionrecordingassoc", &attributes, empty);
            if !empty {
                xml.times(2, &assoc.associate_time, &assoc.disassociate_time);
                xml.end(1, "sessionrecordingassoc");
            }
        }
        for assoc in &self.participant_session_assocs {
            let empty = assoc.associate_time.is_none() && assoc.disassociate_time.is_none();
            let attributes = [
                ("participant_id", assoc.participant_id.as_str()),
                ("session_id", &assoc.session_id),
            ];
            xml.start(1, "participantsessionassoc", &attributes, empty);
            if !empty {
                xml.times(2, &assoc.associate_time, &assoc.disassociate_time);
                xml.end(1, "participantsessionassoc");
            }
        }
        for assoc in &self.participant_stream_assocs {
            let empty = assoc.send.is_empty() && assoc.recv.is_empty();
            let attributes = [("participant_id", assoc.participant_id.as_str())];
            xml.start(1, "participantstreamassoc", &attributes, empty);
            if !empty {
                for stream_id in &assoc.send {
                    xml.leaf(2, "send", stream_id);
                }
                for stream_id in &assoc.recv {
                    xml.leaf(2, "recv", stream_id);
                }
                xml.end(1, "participantstreamassoc");
            }
        }
        if !self.gaps.is_empty() {
            xml.start(1, "gaps", &[("xmlns", GAPS_NAMESPACE)], false);
            for gap in &self.gaps {
                xml.start(2, "gap", &[], false);
                xml.leaf(3, "from", &gap.from);
                xml.optional_leaf(3, "to", &gap.to);
                xml.leaf(3, "reason", &gap.reason);
                xml.end(2, "gap");
            }
            xml.end(1, "gaps");
        }
        xml.end(0, "recording");
        xml.out
    }

    /// Checks the bindings an SRS relies on to tell the speakers apart: streams and the RS SDP's
    /// `a=label` values must correspond one to one, and every reference must resolve. Meant for a
    /// complete snapshot (or a partial update merged into the previous state).
    pub fn validate_against_labels(&self, sdp_labels: &[String]) -> Result<(), MetadataError> {
        self.validate_labels_offered(sdp_labels)?;
        let stream_labels: HashSet<&str> = self.streams.iter().map(|s| s.label.as_str()).collect();
        if let Some(orphan) = sdp_labels
            .iter()
            .find(|label| !stream_labels.contains(label.as_str()))
        {
            return Err(MetadataError::SdpLabelWithoutStream(orphan.clone()));
        }
        self.validate_references()
    }

    /// Every stream's label is one the SDP carries, and no label is bound twice. Unlike
    /// [`Metadata::validate_against_labels`], an SDP label may still lack its stream (an SRC
    /// that describes a stream only in a later update).
    pub fn validate_labels_offered(&self, sdp_labels: &[String]) -> Result<(), MetadataError> {
        let mut stream_labels = HashSet::new();
        for stream in &self.streams {
            if !stream_labels.insert(stream.label.as_str()) {
                return Err(MetadataError::DuplicateLabel(stream.label.clone()));
            }
            if !sdp_labels.contains(&stream.label) {
                return Err(MetadataError::LabelNotInSdp {
                    stream_id: stream.id.clone(),
                    label: stream.label.clone(),
                });
            }
        }
        Ok(())
    }

    /// Every session, participant and stream an element names is described.
    pub fn validate_references(&self) -> Result<(), MetadataError> {
        let sessions: HashSet<&str> = self.sessions.iter().map(|s| s.id.as_str()).collect();
        let participants: HashSet<&str> = self.participants.iter().map(|p| p.id.as_str()).collect();
        let streams: HashSet<&str> = self.streams.iter().map(|s| s.id.as_str()).collect();
        let unknown_session = |referrer: String, session_id: &str| {
            (!sessions.contains(session_id)).then(|| MetadataError::UnknownSession {
                referrer,
                session_id: session_id.to_owned(),
            })
        };
        let unknown_participant = |participant_id: &str| {
            (!participants.contains(participant_id))
                .then(|| MetadataError::UnknownParticipant(participant_id.to_owned()))
        };

        // A draft-style stream without a session (and a document with several) names none.
        for stream in self.streams.iter().filter(|s| !s.session_id.is_empty()) {
            if let Some(error) =
                unknown_session(format!("stream {}", stream.id), &stream.session_id)
            {
                return Err(error);
            }
        }
        for assoc in &self.session_recording_assocs {
            let referrer = "sessionrecordingassoc".to_owned();
            if let Some(error) = unknown_session(referrer, &assoc.session_id) {
                return Err(error);
            }
        }
        for assoc in &self.participant_session_assocs {
            if let Some(error) = unknown_participant(&assoc.participant_id) {
                return Err(error);
            }
            let referrer = format!("participantsessionassoc of {}", assoc.participant_id);
            if let Some(error) = unknown_session(referrer, &assoc.session_id) {
                return Err(error);
            }
        }
        for assoc in &self.participant_stream_assocs {
            if let Some(error) = unknown_participant(&assoc.participant_id) {
                return Err(error);
            }
            if let Some(stream_id) = assoc
                .send
                .iter()
                .chain(&assoc.recv)
                .find(|id| !streams.contains(id.as_str()))
            {
                return Err(MetadataError::UnknownStream {
                    participant_id: assoc.participant_id.clone(),
                    stream_id: stream_id.clone(),
                });
            }
        }
        Ok(())
    }
}

impl Metadata {
    /// Takes in a document that came after this one: a complete snapshot replaces what was
    /// known, a partial update (RFC 7865 section 6) changes the elements it names (by ID) and
    /// adds new ones, so `self` stays the complete view. Associations only grow: a partial
    /// update that lists a participant's new stream keeps the streams it listed before.
    pub fn apply(&mut self, update: Metadata) {
        if update.datamode == DataMode::Complete {
            *self = update;
            return;
        }
        merge_by(
            &mut self.groups,
            update.groups,
            |g| g.id.clone(),
            |old, new| {
                keep_newer(&mut old.associate_time, new.associate_time);
                keep_newer(&mut old.disassociate_time, new.disassociate_time);
            },
        );
        merge_by(
            &mut self.sessions,
            update.sessions,
            |s| s.id.clone(),
            |old, new| {
                for id in new.sip_session_ids {
                    if !old.sip_session_ids.contains(&id) {
                        old.sip_session_ids.push(id);
                    }
                }
                keep_newer(&mut old.group_ref, new.group_ref);
                keep_newer(&mut old.start_time, new.start_time);
                keep_newer(&mut old.end_time, new.end_time);
            },
        );
        merge_by(
            &mut self.participants,
            update.participants,
            |p| p.id.clone(),
            |old, new| {
                if !new.aor.is_empty() {
                    old.aor = new.aor;
                }
                keep_newer(&mut old.name, new.name);
            },
        );
        merge_by(
            &mut self.streams,
            update.streams,
            |s| s.id.clone(),
            |old, new| {
                if !new.label.is_empty() {
                    old.label = new.label;
                }
                if !new.session_id.is_empty() {
                    old.session_id = new.session_id;
                }
            },
        );
        merge_by(
            &mut self.session_recording_assocs,
            update.session_recording_assocs,
            |a| a.session_id.clone(),
            |old, new| {
                keep_newer(&mut old.associate_time, new.associate_time);
                keep_newer(&mut old.disassociate_time, new.disassociate_time);
            },
        );
        merge_by(
            &mut self.participant_session_assocs,
            update.participant_session_assocs,
            |a| (a.participant_id.clone(), a.session_id.clone()),
            |old, new| {
                keep_newer(&mut old.associate_time, new.associate_time);
                keep_newer(&mut old.disassociate_time, new.disassociate_time);
            },
        );
        merge_by(
            &mut self.participant_stream_assocs,
            update.participant_stream_assocs,
            |a| a.participant_id.clone(),
            |old, new| {
                for (list, added) in [(&mut old.send, new.send), (&mut old.recv, new.recv)] {
                    for id in added {
                        if !list.contains(&id) {
                            list.push(id);
                        }
                    }
                }
            },
        );
        merge_by(
            &mut self.gaps,
            update.gaps,
            |g| g.from.clone(),
            |old, new| *old = new,
        );
    }
}

/// Updates the element of `into` with the same key as each of `from`, or adds it.
fn merge_by<T, K: PartialEq>(
    into: &mut Vec<T>,
    from: Vec<T>,
    key: impl Fn(&T) -> K,
    update: impl Fn(&mut T, T),
) {
    for item in from {
        match into.iter_mut().find(|old| key(old) == key(&item)) {
            Some(old) => update(old, item),
            None => into.push(item),
        }
    }
}

fn keep_newer<T>(old: &mut Option<T>, new: Option<T>) {
    if new.is_some() {
        *old = new;
    }
}

/// Reads an xs:dateTime as time since the Unix epoch: `2026-11-26T10:11:12.345Z`, with a UTC
/// offset instead of `Z` (`+01:00`, `-0500`), or with no zone at all (taken as UTC, as SRCs
/// that omit it mean). None for anything else, or a time before 1970.
pub fn parse_time(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', 't'])?;
    let mut date_fields = date.splitn(3, '-');
    let year = number(date_fields.next()?, 4..=4)?;
    let month = number(date_fields.next()?, 2..=2)?;
    let day = number(date_fields.next()?, 2..=2)?;
    // The zone starts at a Z or at the sign after the seconds.
    let zone_at = time
        .char_indices()
        .find(|(index, c)| matches!(c, 'Z' | 'z') || (*index > 0 && matches!(c, '+' | '-')))
        .map_or(time.len(), |(index, _)| index);
    let (clock, zone) = time.split_at(zone_at);
    let (whole, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut clock_fields = whole.splitn(3, ':');
    let hour = number(clock_fields.next()?, 2..=2)?;
    let minute = number(clock_fields.next()?, 2..=2)?;
    let second = number(clock_fields.next()?, 2..=2)?;
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().take(9).collect();
        let value = number(&digits, 1..=9)?;
        let scale = 10u64.pow(9 - u32::try_from(digits.len()).ok()?);
        u32::try_from(value * scale).ok()?
    };
    let offset_seconds: i64 = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let digits = zone.get(1..)?.replace(':', "");
            if digits.len() != 4 {
                return None;
            }
            let hours = number(digits.get(..2)?, 2..=2)?;
            let minutes = number(digits.get(2..)?, 2..=2)?;
            if hours > 14 || minutes > 59 {
                return None;
            }
            sign * i64::try_from(hours * 3600 + minutes * 60).ok()?
        }
    };
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if year < 1970 || day == 0 || day > month_days || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // A leap second is read as the last second of its minute.
    let local =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59);
    let utc = i64::try_from(local).ok()? - offset_seconds;
    Some(Duration::new(u64::try_from(utc).ok()?, nanos))
}

/// An xs:dateTime in UTC as [`format_time`] writes it, whatever zone it was sent in; text
/// that is no time is kept as it came (trimmed).
pub fn normalize_time(text: &str) -> String {
    parse_time(text).map_or_else(|| text.trim().to_owned(), format_time)
}

/// A run of ASCII digits whose length is in `digits`.
fn number(text: &str, digits: core::ops::RangeInclusive<usize>) -> Option<u64> {
    if !digits.contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (from 1970 on): the inverse of
/// [`civil_from_days`], counting from 0000-03-01 in 400-year eras the same way.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    const DAYS_FROM_0000_03_01_TO_EPOCH: u64 = 719_468;
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year % 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).saturating_sub(DAYS_FROM_0000_03_01_TO_EPOCH)
}

/// Parses a metadata document. Elements in the recording namespace ([`NAMESPACE`], the drafts'
/// [`DRAFT_NAMESPACE`] or BroadWorks' [`BROADWORKS_NAMESPACE`]), or in no namespace (some SRCs
/// omit `xmlns`), are read whatever their prefix; other namespaces' elements and unknown
/// elements are skipped. Text and attribute values are trimmed.
///
/// The pre-RFC dialects are read into the same model: `<dataMode>`, `id` and `session`
/// attributes for `group_id`, `session_id`, `participant_id` and `stream_id`, a participant's
/// `<aor>` and `<name>` children, and the streams a participant sends or receives listed in the
/// participant itself (`<send>ID</send>` or `<send><id>ID</id></send>`), which become a
/// [`ParticipantStreamAssoc`]. Times are kept as sent; [`normalize_time`] reads them.
pub fn parse(xml: &str) -> Result<Metadata, MetadataError> {
    if xml.len() > MAX_XML_BYTES {
        return Err(MetadataError::TooLarge { len: xml.len() });
    }
    let root = read_tree(xml)?;
    if root.name != "recording" && root.name != BROADWORKS_ROOT {
        return Err(MetadataError::NotRecording {
            element: root.name,
            namespace: root.namespace,
        });
    }
    // The drafts' streams may name no session: with one session there is no doubt which.
    let legacy = root.name == BROADWORKS_ROOT
        || matches!(
            root.namespace.as_deref(),
            Some(DRAFT_NAMESPACE | BROADWORKS_NAMESPACE)
        );
    let mut metadata = Metadata::default();
    for element in &root.children {
        match element.name.as_str() {
            "datamode" | "dataMode" => metadata.datamode = parse_datamode(element.text.trim())?,
            "group" => metadata.groups.push(Group {
                id: element.required_any("group", &["group_id", "id"])?,
                associate_time: element.child_text("associate-time"),
                disassociate_time: element.child_text("disassociate-time"),
            }),
            "session" => metadata.sessions.push(Session {
                id: element.required_any("session", &["session_id", "id"])?,
                sip_session_ids: element.children_text("sipSessionID"),
                group_ref: element.child_text("group-ref"),
                start_time: element.child_text("start-time"),
                end_time: element.child_text("end-time"),
            }),
            "participant" => read_participant(element, &mut metadata)?,
            "stream" => metadata.streams.push(Stream {
                id: element.required_any("stream", &["stream_id", "id"])?,
                session_id: match element.attribute_any(&["session_id", "session"]) {
                    Some(session) => session,
                    None if legacy => String::new(),
                    None => {
                        return Err(MetadataError::MissingAttribute {
                            element: "stream",
                            attribute: "session_id",
                        });
                    }
                },
                label: element.child_text("label").unwrap_or_default(),
            }),
            "sessionrecordingassoc" => {
                metadata
                    .session_recording_assocs
                    .push(SessionRecordingAssoc {
                        session_id: element.required("sessionrecordingassoc", "session_id")?,
                        associate_time: element.child_text("associate-time"),
                        disassociate_time: element.child_text("disassociate-time"),
                    });
            }
            "participantsessionassoc" => {
                const NAME: &str = "participantsessionassoc";
                metadata
                    .participant_session_assocs
                    .push(ParticipantSessionAssoc {
                        participant_id: element.required(NAME, "participant_id")?,
                        session_id: element.required(NAME, "session_id")?,
                        associate_time: element.child_text("associate-time"),
                        disassociate_time: element.child_text("disassociate-time"),
                    });
            }
            "participantstreamassoc" => {
                metadata
                    .participant_stream_assocs
                    .push(ParticipantStreamAssoc {
                        participant_id: element
                            .required("participantstreamassoc", "participant_id")?,
                        send: element.children_text("send"),
                        recv: element.children_text("recv"),
                    });
            }
            "gaps" => {
                for gap in element.children_named("gap") {
                    metadata.gaps.push(Gap {
                        from: gap.child_text("from").unwrap_or_default(),
                        to: gap.child_text("to"),
                        reason: gap.child_text("reason").unwrap_or_default(),
                    });
                }
            }
            _ => {}
        }
    }
    if legacy && let [only] = metadata.sessions.as_slice() {
        for stream in &mut metadata.streams {
            if stream.session_id.is_empty() {
                stream.session_id = only.id.clone();
            }
        }
    }
    Ok(metadata)
}

/// A `<participant>` of any dialect: RFC 7865's `<nameID aor>`, or the drafts' `<aor>` and
/// `<name>`, with the streams it sends and receives and the session it is in when the
/// participant itself says so.
fn read_participant(element: &Element, metadata: &mut Metadata) -> Result<(), MetadataError> {
    let id = element.required_any("participant", &["participant_id", "id"])?;
    let name_id = element.children_named("nameID").next();
    let aor = match name_id {
        Some(name_id) => name_id.required("nameID", "aor")?,
        None => element.child_text("aor").unwrap_or_default(),
    };
    let name = name_id
        .and_then(|name_id| name_id.child_text("name"))
        .or_else(|| element.child_text("name"));
    let stream_ids = |direction: &str| -> Vec<String> {
        element
            .children_named(direction)
            .flat_map(|list| {
                let ids = list.children_text("id");
                if ids.is_empty() {
                    vec![list.text.trim().to_owned()]
                } else {
                    ids
                }
            })
            .filter(|id| !id.is_empty())
            .collect()
    };
    let (send, recv) = (stream_ids("send"), stream_ids("recv"));
    if !send.is_empty() || !recv.is_empty() {
        metadata
            .participant_stream_assocs
            .push(ParticipantStreamAssoc {
                participant_id: id.clone(),
                send,
                recv,
            });
    }
    if let Some(session_id) = element.attribute_any(&["session_id", "session"]) {
        metadata
            .participant_session_assocs
            .push(ParticipantSessionAssoc {
                participant_id: id.clone(),
                session_id,
                associate_time: element.child_text("associate-time"),
                disassociate_time: element.child_text("disassociate-time"),
            });
    }
    metadata.participants.push(Participant { id, aor, name });
    Ok(())
}

fn parse_datamode(text: &str) -> Result<DataMode, MetadataError> {
    if text.eq_ignore_ascii_case("complete") {
        Ok(DataMode::Complete)
    } else if text.eq_ignore_ascii_case("partial") {
        Ok(DataMode::Partial)
    } else {
        Err(MetadataError::InvalidDataMode(text.to_owned()))
    }
}

/// RFC 7865's attributes that must be there, as metadata errors.
trait Required {
    fn required(
        &self,
        element: &'static str,
        attribute: &'static str,
    ) -> Result<String, MetadataError>;
    fn required_any(
        &self,
        element: &'static str,
        attributes: &[&'static str],
    ) -> Result<String, MetadataError>;
}

impl Required for Element {
    fn required(
        &self,
        element: &'static str,
        attribute: &'static str,
    ) -> Result<String, MetadataError> {
        self.attribute(attribute)
            .ok_or(MetadataError::MissingAttribute { element, attribute })
    }

    /// The first of `attributes` present, or an error naming the first (RFC 7865's name).
    fn required_any(
        &self,
        element: &'static str,
        attributes: &[&'static str],
    ) -> Result<String, MetadataError> {
        self.attribute_any(attributes)
            .ok_or(MetadataError::MissingAttribute {
                element,
                attribute: attributes.first().copied().unwrap_or_default(),
            })
    }
}

/// The elements of the recording namespaces (every dialect's, and the gaps extension's).
fn read_tree(xml: &str) -> Result<Element, MetadataError> {
    let namespaces = [
        NAMESPACE,
        DRAFT_NAMESPACE,
        BROADWORKS_NAMESPACE,
        GAPS_NAMESPACE,
    ];
    let limits = xml_tree::Limits {
        max_bytes: MAX_XML_BYTES,
        max_elements: MAX_ELEMENTS,
        max_depth: MAX_DEPTH,
    };
    xml_tree::read(xml, &namespaces, limits).map_err(|error| match error {
        TreeError::TooLarge { len, .. } => MetadataError::TooLarge { len },
        TreeError::TooDeep(_) => MetadataError::TooDeep,
        TreeError::TooManyElements(_) => MetadataError::TooManyElements,
        TreeError::Xml(what) => MetadataError::Xml(what),
        TreeError::UnknownEntity(name) => MetadataError::UnknownEntity(name),
        TreeError::Empty => MetadataError::Empty,
        TreeError::ForeignRoot { element, namespace } => {
            MetadataError::NotRecording { element, namespace }
        }
    })
}

#[derive(Default)]
struct XmlOut {
    out: String,
}

impl XmlOut {
    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }

    fn start(&mut self, depth: usize, name: &str, attributes: &[(&str, &str)], empty: bool) {
        self.indent(depth);
        self.out.push('<');
        self.out.push_str(name);
        for (attribute, value) in attributes {
            let _ = write!(self.out, " {attribute}=\"");
            escape_into(&mut self.out, value, true);
            self.out.push('"');
        }
        self.out.push_str(if empty { "/>\n" } else { ">\n" });
    }

    fn end(&mut self, depth: usize, name: &str) {
        self.indent(depth);
        let _ = writeln!(self.out, "</{name}>");
    }

    fn leaf(&mut self, depth: usize, name: &str, text: &str) {
        self.indent(depth);
        let _ = write!(self.out, "<{name}>");
        escape_into(&mut self.out, text, false);
        let _ = writeln!(self.out, "</{name}>");
    }

    fn optional_leaf(&mut self, depth: usize, name: &str, text: &Option<String>) {
        if let Some(text) = text {
            self.leaf(depth, name, text);
        }
    }

    fn times(&mut self, depth: usize, associate: &Option<String>, disassociate: &Option<String>) {
        self.optional_leaf(depth, "associate-time", associate);
        self.optional_leaf(depth, "disassociate-time", disassociate);
    }
}

/// Escapes markup characters, keeps CR (and, in attributes, TAB and LF) from being normalised
/// away by the reader, and replaces characters XML 1.0 cannot carry at all.
fn escape_into(out: &mut String, text: &str, in_attribute: bool) {
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'.. => {
                out.push(character);
            }
            _ => out.push(char::REPLACEMENT_CHARACTER),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn separate_streams_snapshot() -> Metadata {
        two_party_snapshot(TwoParty {
            session_id: "0PdYI8sdNfR3LdEhLcHxoQ==".into(),
            sip_session_id:
                "ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2".into(),
            group_id: "7+OTCyoxTmqmqyA/1weDAg==".into(),
            start_time: "2026-11-26T10:11:12.345Z".into(),
            local: Party {
                participant_id: "srfBElmCRp2QB23b7Mpk0w==".into(),
                aor: "sip:alice@example.com".into(),
                name: Some("Alice".into()),
            },
            remote: Party {
                participant_id: "zSfPoSvdSDCmU3A3TRDxAw==".into(),
                aor: "sip:bob@example.net".into(),
                name: None,
            },
            streams: vec![
                StreamSpec {
                    stream_id: "UAAMm5GRQKSCMVvLyl4rFw==".into(),
                    label: "1".into(),
                    sender: StreamSender::Local,
                },
                StreamSpec {
                    stream_id: "i1Pz3to5hGk8fuXl+PKw0w==".into(),
                    label: "2".into(),
                    sender: StreamSender::Remote,
                },
            ],
            associate_time: "2026-11-26T10:11:13.000Z".into(),
        })
    }

    fn labels(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| (*value).to_owned()).collect()
    }

    #[test]
    fn snapshot_round_trips_through_xml() {
        let metadata = separate_streams_snapshot();
        assert_eq!(parse(&metadata.to_xml()).unwrap(), metadata);
    }

    #[test]
    fn every_field_round_trips_through_xml() {
        let mut metadata = separate_streams_snapshot();
        metadata.datamode = DataMode::Partial;
        metadata.groups.push(Group {
            id: "7+OTCyoxTmqmqyA/1weDAg==".into(),
            associate_time: Some("2026-11-26T10:00:00.000Z".into()),
            disassociate_time: Some("2026-11-26T11:00:00.000Z".into()),
        });
        metadata.groups.push(Group {
            id: "bare".into(),
            ..Group::default()
        });
        metadata.sessions[0].end_time = Some("2026-11-26T10:20:00.000Z".into());
        metadata.sessions[0].sip_session_ids.push("second".into());
        metadata.sessions.push(Session {
            id: "empty-session".into(),
            ..Session::default()
        });
        metadata.participants.push(Participant {
            id: "silent".into(),
            ..Participant::default()
        });
        metadata.session_recording_assocs[0].disassociate_time =
            Some("2026-11-26T10:20:01.000Z".into());
        metadata.participant_session_assocs[1].disassociate_time =
            Some("2026-11-26T10:19:59.999Z".into());
        metadata
            .participant_stream_assocs
            .push(ParticipantStreamAssoc {
                participant_id: "silent".into(),
                send: vec![],
                recv: vec![],
            });
        metadata.gaps.push(Gap {
            from: "2026-11-26T10:12:00.000Z".into(),
            to: Some("2026-11-26T10:12:04.000Z".into()),
            reason: "the recorder ended the recording".into(),
        });
        metadata.gaps.push(Gap {
            from: "2026-11-26T10:15:00.000Z".into(),
            to: None,
            reason: "the recorder did not answer".into(),
        });
        let xml = metadata.to_xml();
        assert!(xml.contains("<datamode>partial</datamode>"));
        assert!(xml.contains(&format!("<gaps xmlns=\"{GAPS_NAMESPACE}\">")));
        assert_eq!(parse(&xml).unwrap(), metadata);
    }

    #[test]
    fn writer_uses_rfc7865_names() {
        let xml = separate_streams_snapshot().to_xml();
        for expected in [
            "<recording xmlns=\"urn:ietf:params:xml:ns:recording:1\">",
            "<datamode>complete</datamode>",
            "<session session_id=\"0PdYI8sdNfR3LdEhLcHxoQ==\">",
            "<sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID>",
            "<start-time>2026-11-26T10:11:12.345Z</start-time>",
            "<participant participant_id=\"srfBElmCRp2QB23b7Mpk0w==\">",
            "<nameID aor=\"sip:alice@example.com\">",
            "<name>Alice</name>",
            "<nameID aor=\"sip:bob@example.net\"/>",
            "<stream stream_id=\"UAAMm5GRQKSCMVvLyl4rFw==\" session_id=\"0PdYI8sdNfR3LdEhLcHxoQ==\">",
            "<label>1</label>",
            "<sessionrecordingassoc session_id=\"0PdYI8sdNfR3LdEhLcHxoQ==\">",
            "<associate-time>2026-11-26T10:11:13.000Z</associate-time>",
            "<participantsessionassoc participant_id=\"srfBElmCRp2QB23b7Mpk0w==\" session_id=\"0PdYI8sdNfR3LdEhLcHxoQ==\">",
            "<participantstreamassoc participant_id=\"srfBElmCRp2QB23b7Mpk0w==\">",
            "<send>UAAMm5GRQKSCMVvLyl4rFw==</send>",
            "<recv>i1Pz3to5hGk8fuXl+PKw0w==</recv>",
        ] {
            assert!(xml.contains(expected), "missing {expected} in\n{xml}");
        }
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        assert!(xml.trim_end().ends_with("</recording>"));
    }

    const RFC_STYLE_EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'
           xmlns:acme="urn:example:acme-recorder">
  <datamode>complete</datamode>
  <group group_id="7+OTCyoxTmqmqyA/1weDAg==">
    <associate-time>2010-12-16T23:41:07Z</associate-time>
  </group>
  <session session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;
        remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
    <group-ref>7+OTCyoxTmqmqyA/1weDAg==</group-ref>
    <start-time>2010-12-16T23:41:07Z</start-time>
  </session>
  <participant participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <nameID aor="sip:alice@atlanta.example.com">
      <name xml:lang="en">Alice Liddell</name>
    </nameID>
    <nameID aor="tel:+15551234567"/>
  </participant>
  <participant participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <nameID aor="sip:bob@biloxi.example.com">
      <name xml:lang="en">Bob &amp; Co</name>
    </nameID>
    <acme:department>Sales</acme:department>
  </participant>
  <stream stream_id="UAAMm5GRQKSCMVvLyl4rFw==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <acme:label>a vendor's label, not the SDP binding</acme:label>
    <label>96</label>
    <content>main</content>
  </stream>
  <stream stream_id="i1Pz3to5hGk8fuXl+PKw0w==" session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <label>97</label>
  </stream>
  <sessionrecordingassoc session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <associate-time>2010-12-16T23:41:07Z</associate-time>
  </sessionrecordingassoc>
  <participantsessionassoc participant_id="srfBElmCRp2QB23b7Mpk0w=="
                           session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <associate-time>2010-12-16T23:41:07Z</associate-time>
  </participantsessionassoc>
  <participantsessionassoc participant_id="zSfPoSvdSDCmU3A3TRDxAw=="
                           session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <associate-time>2010-12-16T23:41:07Z</associate-time>
  </participantsessionassoc>
  <participantstreamassoc participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <send>i1Pz3to5hGk8fuXl+PKw0w==</send>
    <recv>UAAMm5GRQKSCMVvLyl4rFw==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <send>UAAMm5GRQKSCMVvLyl4rFw==</send>
    <recv>i1Pz3to5hGk8fuXl+PKw0w==</recv>
  </participantstreamassoc>
  <futureelement>ignored</futureelement>
</recording>
"#;

    #[test]
    fn parses_an_rfc_style_example() {
        let metadata = parse(RFC_STYLE_EXAMPLE).unwrap();
        assert_eq!(metadata.datamode, DataMode::Complete);
        assert_eq!(
            metadata.groups,
            vec![Group {
                id: "7+OTCyoxTmqmqyA/1weDAg==".into(),
                associate_time: Some("2010-12-16T23:41:07Z".into()),
                disassociate_time: None,
            }]
        );
        assert_eq!(metadata.sessions.len(), 1);
        assert_eq!(metadata.sessions[0].id, "hVpd7YQgRW2nD22h7q60JQ==");
        assert_eq!(
            metadata.sessions[0].start_time.as_deref(),
            Some("2010-12-16T23:41:07Z")
        );
        assert!(metadata.sessions[0].sip_session_ids[0].starts_with("ab30317f"));
        assert_eq!(
            metadata.participants,
            vec![
                Participant {
                    id: "srfBElmCRp2QB23b7Mpk0w==".into(),
                    aor: "sip:alice@atlanta.example.com".into(),
                    name: Some("Alice Liddell".into()),
                },
                Participant {
                    id: "zSfPoSvdSDCmU3A3TRDxAw==".into(),
                    aor: "sip:bob@biloxi.example.com".into(),
                    name: Some("Bob & Co".into()),
                },
            ]
        );
        let stream_labels: Vec<&str> = metadata.streams.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(stream_labels, ["96", "97"]);
        assert_eq!(metadata.session_recording_assocs.len(), 1);
        assert_eq!(metadata.participant_session_assocs.len(), 2);
        assert_eq!(
            metadata.participant_stream_assocs[1],
            ParticipantStreamAssoc {
                participant_id: "zSfPoSvdSDCmU3A3TRDxAw==".into(),
                send: vec!["UAAMm5GRQKSCMVvLyl4rFw==".into()],
                recv: vec!["i1Pz3to5hGk8fuXl+PKw0w==".into()],
            }
        );
        metadata
            .validate_against_labels(&labels(&["96", "97"]))
            .unwrap();
    }

    #[test]
    fn prefixed_and_namespaceless_documents_parse_alike() {
        let expected = separate_streams_snapshot();
        let plain = expected.to_xml();
        let mut prefixed = String::new();
        let declared = plain.replace("xmlns=", "xmlns:rec=");
        let mut chars = declared.chars().peekable();
        while let Some(c) = chars.next() {
            prefixed.push(c);
            if c == '<' {
                if chars.peek() == Some(&'/') {
                    prefixed.push(chars.next().unwrap());
                }
                if chars.peek().is_some_and(|next| next.is_ascii_alphabetic()) {
                    prefixed.push_str("rec:");
                }
            }
        }
        assert!(prefixed.contains("<rec:participantstreamassoc"));
        assert_eq!(parse(&prefixed).unwrap(), expected);
        let namespaceless = plain.replace(" xmlns=\"urn:ietf:params:xml:ns:recording:1\"", "");
        assert_eq!(parse(&namespaceless).unwrap(), expected);
        let foreign = plain.replace(NAMESPACE, "urn:example:other");
        let refused = parse(&foreign).unwrap_err();
        assert_eq!(
            refused,
            MetadataError::NotRecording {
                element: "recording".into(),
                namespace: Some("urn:example:other".into())
            }
        );
        // The reason says what was expected, so whoever reads a refusal knows what to send.
        let text = refused.to_string();
        assert!(text.contains("urn:example:other"), "{text}");
        assert!(
            text.contains(NAMESPACE) && text.contains(BROADWORKS_NAMESPACE),
            "{text}"
        );
    }

    #[test]
    fn markup_in_names_and_aors_is_escaped() {
        let mut metadata = separate_streams_snapshot();
        metadata.participants[0].name = Some("Bob \"The <Builder>\" & Sons' \r\nLtd".into());
        metadata.participants[1].aor = "sip:a&b@example.com;x=\"<y>\"\t'z'\n".into();
        metadata.streams[0].label = "<&>".into();
        let xml = metadata.to_xml();
        assert!(xml.contains("<name>Bob \"The &lt;Builder&gt;\" &amp; Sons' &#13;\nLtd</name>"));
        assert!(xml.contains(
            "aor=\"sip:a&amp;b@example.com;x=&quot;&lt;y&gt;&quot;&#9;&apos;z&apos;&#10;\""
        ));
        assert!(xml.contains("<label>&lt;&amp;&gt;</label>"));
        let parsed = parse(&xml).unwrap();
        assert_eq!(parsed.participants[0].name, metadata.participants[0].name);
        // Attribute values are trimmed on parse, so only the trailing LF is lost.
        assert_eq!(
            parsed.participants[1].aor,
            "sip:a&b@example.com;x=\"<y>\"\t'z'"
        );
        assert_eq!(parsed.streams[0].label, "<&>");
    }

    #[test]
    fn characters_xml_cannot_carry_are_replaced() {
        let mut metadata = separate_streams_snapshot();
        metadata.participants[0].name = Some("a\u{1}b\u{FFFF}c".into());
        let parsed = parse(&metadata.to_xml()).unwrap();
        assert_eq!(
            parsed.participants[0].name.as_deref(),
            Some("a\u{FFFD}b\u{FFFD}c")
        );
    }

    #[test]
    fn label_validation_accepts_the_matching_sdp() {
        let metadata = separate_streams_snapshot();
        metadata
            .validate_against_labels(&labels(&["2", "1"]))
            .unwrap();
    }

    #[test]
    fn label_validation_catches_missing_stale_and_duplicate_labels() {
        let metadata = separate_streams_snapshot();
        assert_eq!(
            metadata.validate_against_labels(&labels(&["1", "2", "3"])),
            Err(MetadataError::SdpLabelWithoutStream("3".into()))
        );
        assert_eq!(
            metadata.validate_against_labels(&labels(&["1"])),
            Err(MetadataError::LabelNotInSdp {
                stream_id: "i1Pz3to5hGk8fuXl+PKw0w==".into(),
                label: "2".into(),
            })
        );
        let mut swapped_onto_one_line = metadata.clone();
        swapped_onto_one_line.streams[1].label = "1".into();
        assert_eq!(
            swapped_onto_one_line.validate_against_labels(&labels(&["1", "2"])),
            Err(MetadataError::DuplicateLabel("1".into()))
        );
    }

    #[test]
    fn reference_validation_catches_dangling_ids() {
        let base = separate_streams_snapshot();
        let sdp = labels(&["1", "2"]);

        let mut orphan_stream = base.clone();
        orphan_stream.streams[0].session_id = "gone".into();
        assert!(matches!(
            orphan_stream.validate_against_labels(&sdp),
            Err(MetadataError::UnknownSession { session_id, .. }) if session_id == "gone"
        ));

        let mut unknown_participant = base.clone();
        unknown_participant.participant_stream_assocs[1].participant_id = "nobody".into();
        assert_eq!(
            unknown_participant.validate_against_labels(&sdp),
            Err(MetadataError::UnknownParticipant("nobody".into()))
        );

        let mut unknown_stream = base.clone();
        unknown_stream.participant_stream_assocs[0].recv[0] = "ghost".into();
        assert_eq!(
            unknown_stream.validate_against_labels(&sdp),
            Err(MetadataError::UnknownStream {
                participant_id: "srfBElmCRp2QB23b7Mpk0w==".into(),
                stream_id: "ghost".into(),
            })
        );

        let mut unknown_assoc_session = base;
        unknown_assoc_session.participant_session_assocs[0].session_id = "other".into();
        assert!(matches!(
            unknown_assoc_session.validate_against_labels(&sdp),
            Err(MetadataError::UnknownSession { session_id, .. }) if session_id == "other"
        ));
    }

    #[test]
    fn two_party_snapshot_binds_each_voice_to_its_speaker() {
        let metadata = separate_streams_snapshot();
        let alice = "srfBElmCRp2QB23b7Mpk0w==";
        let bob = "zSfPoSvdSDCmU3A3TRDxAw==";
        let label_1 = "UAAMm5GRQKSCMVvLyl4rFw==";
        let label_2 = "i1Pz3to5hGk8fuXl+PKw0w==";
        assert_eq!(metadata.datamode, DataMode::Complete);
        assert_eq!(
            metadata.participant_stream_assocs,
            vec![
                ParticipantStreamAssoc {
                    participant_id: alice.into(),
                    send: vec![label_1.into()],
                    recv: vec![label_2.into()],
                },
                ParticipantStreamAssoc {
                    participant_id: bob.into(),
                    send: vec![label_2.into()],
                    recv: vec![label_1.into()],
                },
            ]
        );
        let ids: Vec<&str> = metadata
            .participants
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(ids, [alice, bob]);
        assert_eq!(metadata.participant_session_assocs.len(), 2);
        assert!(metadata.participant_session_assocs.iter().all(|assoc| {
            assoc.session_id == "0PdYI8sdNfR3LdEhLcHxoQ=="
                && assoc.associate_time.as_deref() == Some("2026-11-26T10:11:13.000Z")
        }));
        assert_eq!(
            metadata.session_recording_assocs[0]
                .associate_time
                .as_deref(),
            Some("2026-11-26T10:11:13.000Z")
        );
        assert_eq!(metadata.sessions[0].sip_session_ids.len(), 1);
    }

    #[test]
    fn two_party_snapshot_in_mixed_mode_has_both_send_one_stream() {
        let mut params = TwoParty {
            session_id: "s".into(),
            sip_session_id: String::new(),
            group_id: "Z3JvdXA".into(),
            start_time: "2026-01-01T00:00:00.000Z".into(),
            local: Party {
                participant_id: "a".into(),
                aor: "sip:a@x".into(),
                name: None,
            },
            remote: Party {
                participant_id: "b".into(),
                aor: "sip:b@x".into(),
                name: None,
            },
            streams: vec![StreamSpec {
                stream_id: "mix".into(),
                label: "1".into(),
                sender: StreamSender::Both,
            }],
            associate_time: "2026-01-01T00:00:00.000Z".into(),
        };
        let metadata = two_party_snapshot(params.clone());
        assert!(metadata.sessions[0].sip_session_ids.is_empty());
        for assoc in &metadata.participant_stream_assocs {
            assert_eq!(assoc.send, ["mix"]);
            assert_eq!(assoc.recv, ["mix"]);
        }
        metadata.validate_against_labels(&labels(&["1"])).unwrap();

        params.streams[0].sender = StreamSender::Remote;
        let remote_only = two_party_snapshot(params);
        assert!(remote_only.participant_stream_assocs[0].send.is_empty());
        assert_eq!(remote_only.participant_stream_assocs[1].send, ["mix"]);
    }

    #[test]
    fn new_id_is_a_base64_version_4_uuid() {
        let id = new_id([0xff; 16]);
        assert_eq!(id.len(), 24);
        let bytes = BASE64.decode(&id).unwrap();
        assert_eq!(bytes[6], 0x4f);
        assert_eq!(bytes[8], 0xbf);
        assert_eq!(bytes[0], 0xff);
        assert_eq!(new_id([0; 16]), "AAAAAAAAQACAAAAAAAAAAA==");
        assert_ne!(new_id([1; 16]), new_id([2; 16]));
    }

    #[test]
    fn format_time_known_values() {
        let at = |seconds: u64, millis: u64| {
            format_time(Duration::from_secs(seconds) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(68_169_600, 1), "1972-02-29T00:00:00.001Z");
        assert_eq!(at(1_795_687_872, 345), "2026-11-26T10:11:12.345Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(253_402_300_799, 999), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            format_time(Duration::new(86_399, 999_999_999)),
            "1970-01-01T23:59:59.999Z"
        );
    }

    #[test]
    fn civil_from_days_agrees_with_counting_day_by_day() {
        let mut date = (1970u64, 1u64, 1u64);
        for days in 0..(400 * 366) {
            assert_eq!(civil_from_days(days), date, "day {days}");
            let (year, month, day) = date;
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let month_length = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            date = if day < month_length {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
        }
    }

    #[test]
    fn structural_errors_are_reported() {
        assert_eq!(parse(""), Err(MetadataError::Empty));
        assert_eq!(
            parse("<other xmlns='urn:ietf:params:xml:ns:recording:1'/>"),
            Err(MetadataError::NotRecording {
                element: "other".into(),
                namespace: Some(NAMESPACE.into())
            })
        );
        assert_eq!(
            parse("<recording><datamode>sometimes</datamode></recording>"),
            Err(MetadataError::InvalidDataMode("sometimes".into()))
        );
        assert_eq!(
            parse("<recording><stream stream_id='x'><label>1</label></stream></recording>"),
            Err(MetadataError::MissingAttribute {
                element: "stream",
                attribute: "session_id"
            })
        );
        assert_eq!(
            parse("<recording><participant participant_id='p'><nameID/></participant></recording>"),
            Err(MetadataError::MissingAttribute {
                element: "nameID",
                attribute: "aor"
            })
        );
        assert_eq!(
            parse(
                "<!DOCTYPE r [<!ENTITY x 'boom'>]><recording><datamode>&x;</datamode></recording>"
            ),
            Err(MetadataError::UnknownEntity("x".into()))
        );
        assert!(matches!(
            parse("<recording></session>"),
            Err(MetadataError::Xml(_))
        ));
        assert!(matches!(
            parse("<recording/><recording/>"),
            Err(MetadataError::Xml(_))
        ));
        assert_eq!(parse("<recording/>").unwrap(), Metadata::default());
    }

    #[test]
    fn sizes_are_bounded() {
        let huge = format!("<recording>{}</recording>", " ".repeat(MAX_XML_BYTES));
        assert!(matches!(parse(&huge), Err(MetadataError::TooLarge { .. })));
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse(&deep), Err(MetadataError::TooDeep));
        let wide = format!("<recording>{}</recording>", "<x/>".repeat(MAX_ELEMENTS));
        assert_eq!(parse(&wide), Err(MetadataError::TooManyElements));
        let foreign_deep = format!(
            "<recording><o:a xmlns:o='urn:o'>{}{}</o:a></recording>",
            "<o:a>".repeat(MAX_DEPTH),
            "</o:a>".repeat(MAX_DEPTH)
        );
        assert_eq!(parse(&foreign_deep), Err(MetadataError::TooDeep));
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let xml = separate_streams_snapshot().to_xml();
        let complete_at = xml.trim_end().len();
        for cut in (0..complete_at).filter(|&cut| xml.is_char_boundary(cut)) {
            assert!(parse(&xml[..cut]).is_err(), "cut at {cut} parsed");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let pieces = [
            "<",
            ">",
            "/",
            "recording",
            "stream",
            "label",
            "=",
            "\"",
            "'",
            "&",
            "&amp;",
            "&#",
            "x;",
            ";",
            " ",
            "xmlns",
            ":",
            "a",
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "<?",
            "?>",
            "\u{e9}",
            "session_id",
            "participant",
            "nameID",
            "aor",
            "send",
        ];
        let valid = separate_streams_snapshot().to_xml();
        for _ in 0..3000 {
            let count = next() % 40;
            let garbage: String = (0..count)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            let _ = parse(&garbage);
            let mut mutated = valid.clone().into_bytes();
            for _ in 0..3 {
                let at = (next() % mutated.len() as u64) as usize;
                mutated[at] = b"<>&\"/ ax;"[(next() % 9) as usize];
            }
            let _ = parse(&String::from_utf8_lossy(&mutated));
        }
    }

    /// The drafts' namespace with RFC 7865's element names reads as the RFC's.
    #[test]
    fn draft_namespace_reads_like_the_rfc() {
        let expected = separate_streams_snapshot();
        let draft = expected.to_xml().replace(NAMESPACE, DRAFT_NAMESPACE);
        assert!(draft.contains("\"urn:ietf:params:xml:ns:recording\""));
        assert_eq!(parse(&draft).unwrap(), expected);
    }

    /// BroadWorks' pre-RFC shape (our own example): `<recording_metadata>` in its namespace,
    /// `id`/`session` attributes, `<aor>` and `<name>` in the participant, and the streams it
    /// sends as `<send><id>`.
    #[test]
    fn broadworks_recording_metadata_reads_into_the_model() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording_metadata xmlns="urn:ietf:params:xml:ns:siprec">
  <dataMode>complete</dataMode>
  <session id="bw-session-7">
    <start-time>2026-03-02T09:15:00+01:00</start-time>
  </session>
  <participant id="bw-p-caller" session="bw-session-7">
    <aor>sip:+15550001111@as.example.net</aor>
    <name>Front Desk</name>
    <send><id>bw-st-a</id></send>
    <recv><id>bw-st-b</id></recv>
  </participant>
  <participant id="bw-p-callee" session="bw-session-7">
    <aor>tel:+15550002222</aor>
    <send><id>bw-st-b</id></send>
    <recv><id>bw-st-a</id></recv>
  </participant>
  <stream id="bw-st-a"><label>a1</label></stream>
  <stream id="bw-st-b" session="bw-session-7"><label>a2</label></stream>
</recording_metadata>"#;
        let metadata = parse(xml).unwrap();
        assert_eq!(metadata.datamode, DataMode::Complete);
        assert_eq!(metadata.sessions[0].id, "bw-session-7");
        assert_eq!(metadata.participants.len(), 2);
        assert_eq!(
            metadata.participants[0].aor,
            "sip:+15550001111@as.example.net"
        );
        assert_eq!(metadata.participants[0].name.as_deref(), Some("Front Desk"));
        assert_eq!(
            metadata.participant_stream_assocs[0],
            ParticipantStreamAssoc {
                participant_id: "bw-p-caller".into(),
                send: vec!["bw-st-a".into()],
                recv: vec!["bw-st-b".into()],
            }
        );
        assert_eq!(metadata.participant_session_assocs.len(), 2);
        // The stream without a session attribute is in the document's only session.
        assert_eq!(metadata.streams[0].session_id, "bw-session-7");
        metadata
            .validate_against_labels(&labels(&["a1", "a2"]))
            .unwrap();
    }

    /// The drafts' `<send>` with the stream ID as its text (no `<id>`) is read too.
    #[test]
    fn draft_participant_send_text_becomes_an_association() {
        let xml = "<recording xmlns='urn:ietf:params:xml:ns:recording'>\
            <session id='s'/><participant id='p'><nameID aor='sip:a@x'/>\
            <send>st1</send><send>st2</send></participant>\
            <stream id='st1' session='s'><label>1</label></stream>\
            <stream id='st2' session='s'><label>2</label></stream></recording>";
        let metadata = parse(xml).unwrap();
        assert_eq!(metadata.participant_stream_assocs[0].send, ["st1", "st2"]);
        assert!(metadata.participant_stream_assocs[0].recv.is_empty());
        metadata
            .validate_against_labels(&labels(&["1", "2"]))
            .unwrap();
    }

    #[test]
    fn times_with_a_utc_offset_are_read_as_utc() {
        let expect = |text: &str, utc: &str| assert_eq!(normalize_time(text), utc, "{text}");
        expect("2026-11-26T11:00:00+01:00", "2026-11-26T10:00:00.000Z");
        expect("2026-11-26T10:00:00Z", "2026-11-26T10:00:00.000Z");
        expect("2026-11-26T10:00:00.25z", "2026-11-26T10:00:00.250Z");
        // Across midnight, the year and a leap day.
        expect("2026-12-31T22:30:00-05:00", "2027-01-01T03:30:00.000Z");
        expect("2028-03-01T00:30:00+0100", "2028-02-29T23:30:00.000Z");
        // No zone is taken as UTC; text that is no time stays as it came.
        expect("2026-11-26T10:00:00.123", "2026-11-26T10:00:00.123Z");
        for junk in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-26T25:00:00Z",
            "2026-11-26T10:00:00+1",
            "1969-12-31T23:59:59Z",
            "2026-11-26",
            "",
        ] {
            assert_eq!(parse_time(junk), None, "{junk}");
        }
    }

    #[test]
    fn parse_time_inverts_format_time() {
        for seconds in (0..4_000_000_000u64).step_by(7_777_777) {
            let unix = Duration::from_millis(seconds * 1000 + seconds % 1000);
            assert_eq!(parse_time(&format_time(unix)), Some(unix));
        }
    }

    /// RFC 7865 partial updates change what they name and add the rest; a complete one
    /// replaces the view.
    #[test]
    fn partial_update_merges_into_the_complete_view() {
        let mut view = separate_streams_snapshot();
        let update = parse(
            "<recording xmlns='urn:ietf:params:xml:ns:recording:1'>\
             <datamode>partial</datamode>\
             <participant participant_id='zSfPoSvdSDCmU3A3TRDxAw=='>\
               <nameID aor='sip:bob@example.net'><name>Bob</name></nameID></participant>\
             <participant participant_id='cg=='><nameID aor='sip:carol@example.org'/></participant>\
             <stream stream_id='c3Q=' session_id='0PdYI8sdNfR3LdEhLcHxoQ=='><label>3</label></stream>\
             <participantstreamassoc participant_id='cg=='><send>c3Q=</send></participantstreamassoc>\
             <participantstreamassoc participant_id='srfBElmCRp2QB23b7Mpk0w=='>\
               <recv>c3Q=</recv></participantstreamassoc>\
             </recording>",
        )
        .unwrap();
        assert_eq!(update.datamode, DataMode::Partial);
        view.apply(update);
        assert_eq!(view.datamode, DataMode::Complete);
        assert_eq!(view.participants.len(), 3);
        assert_eq!(view.participants[1].name.as_deref(), Some("Bob"));
        assert_eq!(view.participants[1].aor, "sip:bob@example.net");
        assert_eq!(view.streams.len(), 3);
        let alice = &view.participant_stream_assocs[0];
        assert_eq!(alice.send, ["UAAMm5GRQKSCMVvLyl4rFw=="]);
        assert_eq!(alice.recv, ["i1Pz3to5hGk8fuXl+PKw0w==", "c3Q="]);
        view.validate_against_labels(&labels(&["1", "2", "3"]))
            .unwrap();
        view.apply(separate_streams_snapshot());
        assert_eq!(view, separate_streams_snapshot());
    }

    #[test]
    fn labels_offered_allows_an_sdp_label_not_yet_described() {
        let metadata = separate_streams_snapshot();
        metadata
            .validate_labels_offered(&labels(&["1", "2", "3"]))
            .unwrap();
        assert!(
            metadata
                .validate_against_labels(&labels(&["1", "2", "3"]))
                .is_err()
        );
        assert!(matches!(
            metadata.validate_labels_offered(&labels(&["1"])),
            Err(MetadataError::LabelNotInSdp { .. })
        ));
    }
}
