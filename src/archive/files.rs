//! What a recording session leaves on disk: crash-safe WAV files per label, every metadata
//! version, and `summary.json`; each plain or sealed (encrypted, see [`crate::archive`]).

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::archive::sealed::{SealedWriter, Sealing};

use crate::media::SAMPLE_RATE;

/// The header is rewritten after this many samples (one second of audio).
const HEADER_UPDATE_SAMPLES: u64 = SAMPLE_RATE as u64;
pub(crate) const HEADER_LEN: u64 = 44;

/// A 16-bit mono 48 kHz WAV that survives its writer being killed. Plain, its RIFF and data
/// sizes are rewritten after every second of audio, so the file plays up to the last
/// second. Sealed, the header cannot be rewritten (the stream is encrypted once), so it
/// carries the streaming sizes (0xFFFFFFFF, "until the end") and every complete 64 KiB
/// chunk on disk decrypts; readers take the length from the data.
#[derive(Debug)]
pub struct WavWriter {
    path: PathBuf,
    sink: Sink,
    samples: u64,
    since_header: u64,
    bytes: Vec<u8>,
    /// A write failed: nothing more is written, so what is on disk stays as it was (an age
    /// stream written past a failure would no longer line up and read as altered).
    failed: bool,
}

#[derive(Debug)]
enum Sink {
    Plain(BufWriter<File>),
    Sealed(SealedWriter),
}

impl WavWriter {
    /// A plain WAV at `path`.
    pub fn create(path: impl AsRef<Path>) -> std::io::Result<WavWriter> {
        WavWriter::create_sealed(path, &Sealing::Plain)
    }

    /// A WAV at `path` as `sealing` stores it (the caller names the file for it).
    pub fn create_sealed(path: impl AsRef<Path>, sealing: &Sealing) -> std::io::Result<WavWriter> {
        let path = path.as_ref().to_path_buf();
        let file = crate::private_fs::create(&path)?;
        let sink = match sealing.stream(file.try_clone()?)? {
            Some(mut sealed) => {
                sealed.write_all(&wav_header(None))?;
                Sink::Sealed(sealed)
            }
            None => Sink::Plain(BufWriter::new(file)),
        };
        let mut writer = WavWriter {
            path,
            sink,
            samples: 0,
            since_header: 0,
            bytes: Vec::new(),
            failed: false,
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
        if self.failed {
            return Err(std::io::Error::other(
                "an earlier write to this file failed",
            ));
        }
        self.bytes.clear();
        for sample in samples {
            let value = (sample.clamp(-1.0, 1.0) * 32767.0).round() as i16;
            self.bytes.extend_from_slice(&value.to_le_bytes());
        }
        let written = match &mut self.sink {
            Sink::Plain(file) => file.write_all(&self.bytes),
            Sink::Sealed(sealed) => sealed.write_all(&self.bytes),
        };
        if let Err(error) = written {
            self.failed = true;
            return Err(error);
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

    /// Plain: rewrites the header for the samples written so far and flushes everything to
    /// the file. Sealed: the complete chunks are on disk already; nothing to do.
    pub fn write_header(&mut self) -> std::io::Result<()> {
        self.since_header = 0;
        let rewritten = match &mut self.sink {
            Sink::Plain(writer) => rewrite_header(writer, self.samples),
            Sink::Sealed(_) => Ok(()),
        };
        if rewritten.is_err() {
            self.failed = true;
        }
        rewritten
    }

    /// Closes the file so it is complete. Plain: when the last samples cannot be written
    /// (a full disk), what did reach the disk is kept and described, so the file still
    /// plays; the write error is returned all the same. Sealed: the last chunk marks the
    /// file complete; after a failed write it is not written, and the chunks before the
    /// failure still decrypt (the file reads as truncated, which it is).
    pub fn finish(self) -> std::io::Result<()> {
        let failed = self.failed;
        let mut writer = match self.sink {
            Sink::Sealed(_) if failed => {
                return Err(std::io::Error::other(
                    "the file was cut short by a failed write",
                ));
            }
            Sink::Sealed(sealed) => return sealed.finish(),
            Sink::Plain(writer) => writer,
        };
        let header = if failed {
            Err(std::io::Error::other(
                "the file was cut short by a failed write",
            ))
        } else {
            rewrite_header(&mut writer, self.samples)
        };
        match header {
            Ok(()) => writer.get_ref().sync_all(),
            Err(error) => {
                let (mut file, _unwritten) = writer.into_parts();
                let on_disk = file.metadata()?.len().saturating_sub(HEADER_LEN) / 2;
                // Rewriting the header grows nothing, so it succeeds on a full disk.
                file.seek(SeekFrom::Start(0))?;
                file.write_all(&wav_header(Some(on_disk)))?;
                file.sync_all()?;
                Err(error)
            }
        }
    }
}

fn rewrite_header(writer: &mut BufWriter<File>, samples: u64) -> std::io::Result<()> {
    writer.flush()?;
    let file = writer.get_mut();
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&wav_header(Some(samples)))?;
    file.seek(SeekFrom::Start(HEADER_LEN + samples * 2))?;
    file.flush()
}

/// A 48 kHz mono 16-bit PCM header for `samples` samples; None: the length is not known
/// while writing, and both sizes say "to the end of the file" (0xFFFFFFFF), as streaming
/// writers do.
pub(crate) fn wav_header(samples: Option<u64>) -> Vec<u8> {
    let (riff_bytes, data_bytes) = match samples {
        Some(samples) => {
            let data = u32::try_from(samples * 2)
                .unwrap_or(u32::MAX - 64)
                .min(u32::MAX - 64);
            (data + 36, data)
        }
        None => (u32::MAX, u32::MAX),
    };
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&riff_bytes.to_le_bytes());
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

/// Whether `header` starts a WAV as this recorder writes them (48 kHz mono 16-bit PCM),
/// whatever its sizes say.
pub(crate) fn is_recorder_header(header: &[u8]) -> bool {
    let ours = wav_header(None);
    header.len() == ours.len()
        && header.get(..4) == ours.get(..4)
        && header.get(8..40) == ours.get(8..40)
}

/// The summary's name in a session folder (before sealing).
pub const SUMMARY: &str = "summary.json";

/// A pause of the recording, times as RFC 3339 UTC strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PauseSummary {
    pub start: String,
    pub end: Option<String>,
}

/// A stretch of the call the phone could not record (from the phone's own metadata), times
/// as RFC 3339 UTC strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GapSummary {
    pub start: String,
    pub end: Option<String>,
    pub reason: String,
}

/// One label's figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ParticipantSummary {
    pub aor: String,
    pub name: Option<String>,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    /// Writes `summary.json` in `dir` as `sealing` stores it (through a temporary file, so
    /// it is never half written).
    pub fn write(&self, dir: &Path, sealing: &Sealing) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let name = sealing.file_name(SUMMARY);
        let temporary = dir.join(format!("{name}.tmp"));
        crate::private_fs::write(&temporary, sealing.seal(text.as_bytes())?)?;
        std::fs::rename(&temporary, dir.join(name))
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
