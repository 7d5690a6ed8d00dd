//! What a recording session leaves on disk: crash-safe WAV files per label, every metadata
//! version, and `summary.json`.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::media::SAMPLE_RATE;

/// The header is rewritten after this many samples (one second of audio).
const HEADER_UPDATE_SAMPLES: u64 = SAMPLE_RATE as u64;
const HEADER_LEN: u64 = 44;

/// A 16-bit mono 48 kHz WAV whose header always describes what was flushed: the RIFF and
/// data sizes are rewritten after every second of audio, so a killed process leaves a file
/// that plays up to the last second.
#[derive(Debug)]
pub struct WavWriter {
    path: PathBuf,
    file: BufWriter<File>,
    samples: u64,
    since_header: u64,
}

impl WavWriter {
    pub fn create(path: impl AsRef<Path>) -> std::io::Result<WavWriter> {
        let path = path.as_ref().to_path_buf();
        let file = crate::private_fs::create(&path)?;
        let mut writer = WavWriter {
            path,
            file: BufWriter::new(file),
            samples: 0,
            since_header: 0,
        };
        writer.write_header()?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples written so far (48 kHz).
    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn write_samples(&mut self, samples: &[f32]) -> std::io::Result<()> {
        for sample in samples {
            let value = (sample.clamp(-1.0, 1.0) * 32767.0).round() as i16;
            self.file.write_all(&value.to_le_bytes())?;
        }
        let count = samples.len() as u64;
        self.samples += count;
        self.since_header += count;
        if self.since_header >= HEADER_UPDATE_SAMPLES {
            self.write_header()?;
        }
        Ok(())
    }

    pub fn write_silence(&mut self, count: u64) -> std::io::Result<()> {
        const ZEROS: [f32; 960] = [0.0; 960];
        let mut left = count;
        while left > 0 {
            let n = left.min(ZEROS.len() as u64);
            self.write_samples(ZEROS.get(..n as usize).unwrap_or(&[]))?;
            left -= n;
        }
        Ok(())
    }

    /// Rewrites the header for the samples written so far and flushes everything to the file.
    pub fn write_header(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        let header = wav_header(self.samples);
        let file = self.file.get_mut();
        let end = HEADER_LEN + self.samples * 2;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.seek(SeekFrom::Start(end))?;
        file.flush()?;
        self.since_header = 0;
        Ok(())
    }

    /// Closes the file with a header that matches it. When the last samples cannot be
    /// written (a full disk), what did reach the disk is kept and described, so the file
    /// still plays; the write error is returned all the same.
    pub fn finish(mut self) -> std::io::Result<()> {
        match self.write_header() {
            Ok(()) => self.file.get_ref().sync_all(),
            Err(error) => {
                let (mut file, _unwritten) = self.file.into_parts();
                let on_disk = file.metadata()?.len().saturating_sub(HEADER_LEN) / 2;
                // Rewriting the header grows nothing, so it succeeds on a full disk.
                file.seek(SeekFrom::Start(0))?;
                file.write_all(&wav_header(on_disk))?;
                file.sync_all()?;
                Err(error)
            }
        }
    }
}

/// A 48 kHz mono 16-bit PCM header for `samples` samples.
fn wav_header(samples: u64) -> Vec<u8> {
    let data_bytes = u32::try_from(samples * 2).unwrap_or(u32::MAX - 64);
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&(data_bytes + 36).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt ");
    header.extend_from_slice(&16u32.to_le_bytes());
    header.extend_from_slice(&1u16.to_le_bytes()); // PCM
    header.extend_from_slice(&1u16.to_le_bytes()); // mono
    header.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    header.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&16u16.to_le_bytes());
    header.extend_from_slice(b"data");
    header.extend_from_slice(&data_bytes.to_le_bytes());
    header
}

/// A pause of the recording, times as RFC 3339 UTC strings.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PauseSummary {
    pub start: String,
    pub end: Option<String>,
}

/// A stretch of the call the phone could not record (from the phone's own metadata), times
/// as RFC 3339 UTC strings.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GapSummary {
    pub start: String,
    pub end: Option<String>,
    pub reason: String,
}

/// One label's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelSummary {
    pub label: String,
    pub participant: String,
    pub codec: String,
    /// The stream came as SRTP.
    pub srtp: bool,
    pub file: String,
    pub packets_received: u64,
    pub packets_lost: u64,
    pub seconds: f64,
}

/// A participant as the metadata names it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ParticipantSummary {
    pub aor: String,
    pub name: Option<String>,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub call_id: String,
    /// The recorded call's session ID from the metadata (the same in every recording
    /// session of one call), which the phone's history keeps to find these files.
    pub session_id: Option<String>,
    pub start: String,
    pub end: Option<String>,
    pub participants: Vec<ParticipantSummary>,
    pub labels: Vec<LabelSummary>,
    pub pauses: Vec<PauseSummary>,
    /// Parts of the call missing from every recording session, as the phone reported them.
    pub gaps: Vec<GapSummary>,
    /// When the call itself ended, as the phone's last metadata says.
    pub call_end: Option<String>,
    pub metadata_versions: usize,
}

impl Summary {
    /// Writes `summary.json` in `dir` (through a temporary file, so it is never half written).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let temporary = dir.join("summary.json.tmp");
        crate::private_fs::write(&temporary, text)?;
        std::fs::rename(&temporary, dir.join("summary.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_valid_before_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut writer = WavWriter::create(&path).unwrap();
        writer.write_silence(48_000 + 960).unwrap();
        // Not finished: the header already covers the first second.
        let reader = hound::WavReader::open(&path).unwrap();
        assert!(reader.duration() >= 48_000);
        writer.finish().unwrap();
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.duration(), 48_960);
    }
}
