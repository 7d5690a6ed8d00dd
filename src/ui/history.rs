//! The call history: one JSON line per finished call in the data directory, written by the
//! phone's thread (never the window's) and read back when the app starts.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How much of a call was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingOutcome {
    NotRecorded,
    Recorded,
    /// Recorded, with stretches missing (the recorder failed and came back).
    Partial,
    /// Recording was asked for and never worked.
    Failed,
}

impl RecordingOutcome {
    pub fn label(self) -> &'static str {
        match self {
            RecordingOutcome::NotRecorded => "not recorded",
            RecordingOutcome::Recorded => "recorded",
            RecordingOutcome::Partial => "recorded with gaps",
            RecordingOutcome::Failed => "recording failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub incoming: bool,
    pub party: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    pub duration_s: u64,
    /// How the call ended when it was not a normal hang-up.
    pub failure: Option<String>,
    pub recording: RecordingOutcome,
    /// The stretches the recording missed: when, until when, why.
    #[serde(default)]
    pub gaps: Vec<crate::recording::metadata::Gap>,
    /// The call's metadata session ID: how its recordings are found in the built-in
    /// recorder's folder.
    #[serde(default)]
    pub recording_session: Option<String>,
    /// The far end was a conference focus: everyone else in its conference, and when.
    #[serde(default)]
    pub conference: Vec<ConferencePresence>,
    /// Why the conference's participants are not known, when they are not.
    #[serde(default)]
    pub conference_note: Option<String>,
}

/// One participant of a remote conference, for the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConferencePresence {
    /// Name and address, as the window shows them.
    pub participant: String,
    /// RFC 3339.
    pub joined: String,
    pub left: Option<String>,
}

impl From<&crate::engine::ConferenceMember> for ConferencePresence {
    fn from(member: &crate::engine::ConferenceMember) -> Self {
        ConferencePresence {
            participant: member.label(),
            joined: member.joined.clone(),
            left: member.left.clone(),
        }
    }
}

/// The history file: `history.jsonl` in `dir`.
#[derive(Debug, Clone)]
pub struct HistoryFile {
    path: PathBuf,
}

/// The most entries read back at start; older ones stay in the file.
const SHOWN: usize = 200;

impl HistoryFile {
    pub fn new(dir: &Path) -> HistoryFile {
        HistoryFile {
            path: dir.join("history.jsonl"),
        }
    }

    /// Appends one call (the file and its folder are created as needed).
    pub fn append(&self, entry: &HistoryEntry) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            crate::private_fs::create_dir_all(dir)?;
        }
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut file = crate::private_fs::append(&self.path)?;
        file.write_all(line.as_bytes())
    }

    /// The newest entries first. A damaged line (a crash mid-write) is skipped, not fatal.
    pub fn read(&self) -> std::io::Result<Vec<HistoryEntry>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut entries: Vec<HistoryEntry> = std::io::BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str(&line).ok())
            .collect();
        entries.reverse();
        entries.truncate(SHOWN);
        Ok(entries)
    }
}

#[cfg(test)]
impl HistoryEntry {
    /// A finished outgoing call to `party`, for tests.
    pub(crate) fn sample(party: &str, recording: RecordingOutcome) -> HistoryEntry {
        HistoryEntry {
            incoming: false,
            party: party.into(),
            started: 1_800_000_000,
            duration_s: 42,
            failure: None,
            recording,
            gaps: Vec::new(),
            recording_session: None,
            conference: Vec::new(),
            conference_note: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(party: &str, recording: RecordingOutcome) -> HistoryEntry {
        HistoryEntry {
            recording_session: Some("c2Vzc2lvbg==".into()),
            ..HistoryEntry::sample(party, recording)
        }
    }

    #[test]
    fn entries_come_back_newest_first_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = HistoryFile::new(&dir.path().join("sub"));
        assert!(file.read().unwrap().is_empty());
        file.append(&entry("sip:a@x", RecordingOutcome::Recorded))
            .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("sub/history.jsonl"))
            .unwrap()
            .write_all(b"{\"incoming\":tru")
            .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("sub/history.jsonl"))
            .unwrap()
            .write_all(b"\n")
            .unwrap();
        file.append(&entry("sip:b@x", RecordingOutcome::Partial))
            .unwrap();
        let read = file.read().unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].party, "sip:b@x");
        assert_eq!(read[0].recording, RecordingOutcome::Partial);
        assert_eq!(read[1].recording.label(), "recorded");
    }
}
