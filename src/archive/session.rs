//! One recording session folder as the built-in recorder left it: its summary, its label
//! files played as audio, exported as plain files, and verified file by file.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use age::x25519::Identity;

use super::files::{HEADER_LEN, SUMMARY, Summary, is_recorder_header, wav_header};
use super::sealed::{self, Integrity, OpenError, ReadError, SEALED_EXTENSION};

/// The file `plain_name` in `folder` as stored: sealed when it is, else plain.
pub fn stored(folder: &Path, plain_name: &str) -> Option<PathBuf> {
    [
        folder.join(format!("{plain_name}.{SEALED_EXTENSION}")),
        folder.join(plain_name),
    ]
    .into_iter()
    .find(|path| path.is_file())
}

/// A stored file's name without the sealed extension.
pub fn plain_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.strip_suffix(&format!(".{SEALED_EXTENSION}")) {
        Some(plain) => plain.to_owned(),
        None => name,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0} holds no summary: not a recording session folder")]
    NoSummary(String),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path} is not a summary this recorder wrote: {why}")]
    BadSummary { path: String, why: String },
    #[error("{0} holds no audio")]
    NoAudio(String),
    #[error("{path} is not audio as the recorder writes it: {why}")]
    BadAudio { path: String, why: String },
    #[error("{0} exists already: export into a folder that does not hold this session yet")]
    Exists(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The session's `summary.json`, decrypted when sealed.
pub fn read_summary(folder: &Path, keys: &[Identity]) -> Result<Summary, SessionError> {
    let path = stored(folder, SUMMARY)
        .ok_or_else(|| SessionError::NoSummary(folder.display().to_string()))?;
    let text = sealed::read_all(&path, keys)?;
    serde_json::from_slice(&text).map_err(|e| SessionError::BadSummary {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

/// Every recording session folder in `dir`, oldest first (their names start with the time).
pub fn session_folders(dir: &Path) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_dir())
                .collect()
        })
        .unwrap_or_default();
    folders.sort();
    folders
}

/// The folders in `dir` of every recording session of the call whose metadata session ID
/// is `session_id`, oldest first (a call recorded again after a failure has several).
/// Folders whose summary does not open are passed over.
pub fn folders_of_call(dir: &Path, session_id: &str, keys: &[Identity]) -> Vec<PathBuf> {
    session_folders(dir)
        .into_iter()
        .filter(|folder| {
            read_summary(folder, keys)
                .is_ok_and(|summary| summary.session_id.as_deref() == Some(session_id))
        })
        .collect()
}

/// The label files of a session folder (`label-<N>-<who>.wav`, sealed or not), in order.
pub fn label_files(folder: &Path) -> Result<Vec<PathBuf>, SessionError> {
    let mut files: Vec<PathBuf> = stored_files(folder)?
        .into_iter()
        .filter(|path| {
            let name = plain_name(path);
            name.starts_with("label-") && name.ends_with(".wav")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SessionError::NoAudio(folder.display().to_string()));
    }
    Ok(files)
}

/// Every file the recorder keeps in `folder` (not its temporary files), sorted.
fn stored_files(folder: &Path) -> Result<Vec<PathBuf>, SessionError> {
    let entries = std::fs::read_dir(folder).map_err(|source| {
        SessionError::Read(ReadError::Open(OpenError::Io {
            path: folder.display().to_string(),
            source,
        }))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_none_or(|e| e != "tmp"))
        .collect();
    files.sort();
    Ok(files)
}

/// One label file read as 48 kHz mono samples, decrypting as it goes. It ends at the end of
/// the file or at the first byte that does not authenticate; [`LabelAudio::damage`] then
/// says why.
pub struct LabelAudio {
    reader: Box<dyn Read + Send>,
    bytes: Vec<u8>,
    ended: bool,
    damage: Option<String>,
}

impl std::fmt::Debug for LabelAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelAudio")
            .field("ended", &self.ended)
            .field("damage", &self.damage)
            .finish_non_exhaustive()
    }
}

impl LabelAudio {
    pub fn open(path: &Path, keys: &[Identity]) -> Result<LabelAudio, SessionError> {
        let mut reader = sealed::open(path, keys).map_err(ReadError::from)?;
        let mut header = [0u8; HEADER_LEN as usize];
        let shown = || path.display().to_string();
        reader
            .read_exact(&mut header)
            .map_err(|e| SessionError::BadAudio {
                path: shown(),
                why: format!("no WAV header: {e}"),
            })?;
        if !is_recorder_header(&header) {
            return Err(SessionError::BadAudio {
                path: shown(),
                why: "not a 48 kHz mono 16-bit WAV as the recorder writes them".into(),
            });
        }
        Ok(LabelAudio {
            reader,
            bytes: Vec::new(),
            ended: false,
            damage: None,
        })
    }

    /// Reads up to `out.len()` samples; 0 once the file has ended.
    pub fn read(&mut self, out: &mut [f32]) -> usize {
        if self.ended {
            return 0;
        }
        self.bytes.resize(out.len() * 2, 0);
        let mut filled = 0;
        while filled < self.bytes.len() {
            match self
                .reader
                .read(self.bytes.get_mut(filled..).unwrap_or_default())
            {
                Ok(0) => {
                    self.ended = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.damage = Some(error.to_string());
                    self.ended = true;
                    break;
                }
            }
        }
        let whole = self.bytes.get(..filled).unwrap_or_default().chunks_exact(2);
        let mut count = 0;
        for (sample, bytes) in out.iter_mut().zip(whole) {
            let mut pair = [0u8; 2];
            pair.copy_from_slice(bytes);
            *sample = f32::from(i16::from_le_bytes(pair)) / 32768.0;
            count += 1;
        }
        count
    }

    /// Fills `out` with the next samples, the last frame padded with silence; false once
    /// the file has ended.
    pub fn next_frame(&mut self, out: &mut [f32]) -> bool {
        let count = self.read(out);
        if let Some(rest) = out.get_mut(count..) {
            rest.fill(0.0);
        }
        count > 0
    }

    /// Why the audio stopped before the file's end, when it did.
    pub fn damage(&self) -> Option<&str> {
        self.damage.as_deref()
    }
}

/// What happened to one file of a session, exported or verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The stored file.
    pub path: PathBuf,
    pub outcome: FileOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Encrypted, and authentic from the first byte to its properly written end.
    Intact,
    /// A plain file: read whole, but nothing can tell whether it was altered.
    Unprotected,
    /// Damaged; what came before the damage is authentic (and was exported).
    Damaged(sealed::Damage),
    /// Could not be opened at all.
    Unreadable(String),
}

impl FileOutcome {
    pub fn is_sound(&self) -> bool {
        matches!(self, FileOutcome::Intact | FileOutcome::Unprotected)
    }
}

impl std::fmt::Display for FileOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileOutcome::Intact => f.write_str("intact"),
            FileOutcome::Unprotected => f.write_str("plain (not encrypted: cannot be verified)"),
            FileOutcome::Damaged(damage) => write!(f, "{damage}"),
            FileOutcome::Unreadable(why) => f.write_str(why),
        }
    }
}

impl From<Result<Integrity, OpenError>> for FileOutcome {
    fn from(result: Result<Integrity, OpenError>) -> FileOutcome {
        match result {
            Ok(Integrity::Intact) => FileOutcome::Intact,
            Ok(Integrity::Unprotected) => FileOutcome::Unprotected,
            Ok(Integrity::Damaged(damage)) => FileOutcome::Damaged(damage),
            Err(error) => FileOutcome::Unreadable(error.to_string()),
        }
    }
}

/// Reads every stored file of the session to its end, authenticating each.
pub fn verify(folder: &Path, keys: &[Identity]) -> Result<Vec<FileReport>, SessionError> {
    Ok(stored_files(folder)?
        .into_iter()
        .map(|path| FileReport {
            outcome: sealed::check(&path, keys).into(),
            path,
        })
        .collect())
}

/// Writes the session's files decrypted into `to/<folder name>/`, a new folder, owner-only
/// (never into one that exists: not over the recording itself, not into files or links
/// someone else prepared). WAVs get a header with their true length. A damaged file is
/// exported up to its damage, and reported.
pub fn export(
    folder: &Path,
    keys: &[Identity],
    to: &Path,
) -> Result<Vec<FileReport>, SessionError> {
    let name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recording".into());
    let target = to.join(name);
    let write_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| SessionError::Write { path, source }
    };
    let files = stored_files(folder)?;
    // Without the key nothing can be exported: say so once, before making any folder.
    if keys.is_empty()
        && let Some(sealed_file) = files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == SEALED_EXTENSION))
    {
        return Err(SessionError::Read(ReadError::Open(OpenError::NoKey {
            path: sealed_file.display().to_string(),
        })));
    }
    crate::private_fs::create_dir_all(to).map_err(write_error(to))?;
    crate::private_fs::create_dir_new(&target).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            SessionError::Exists(target.display().to_string())
        } else {
            write_error(&target)(e)
        }
    })?;
    let mut reports = Vec::new();
    for path in files {
        let out_path = target.join(plain_name(&path));
        let mut out = crate::private_fs::create_new(&out_path).map_err(write_error(&out_path))?;
        let outcome: FileOutcome = sealed::check_into(&path, keys, &mut out).into();
        if plain_name(&path).ends_with(".wav") {
            fix_wav_length(&mut out).map_err(write_error(&out_path))?;
        }
        out.sync_all().map_err(write_error(&out_path))?;
        reports.push(FileReport { path, outcome });
    }
    Ok(reports)
}

/// Rewrites the header of an exported WAV for the samples the file holds.
fn fix_wav_length(file: &mut std::fs::File) -> std::io::Result<()> {
    let length = file.seek(SeekFrom::End(0))?;
    if length < HEADER_LEN {
        return Ok(());
    }
    let samples = (length - HEADER_LEN) / 2;
    file.set_len(HEADER_LEN + samples * 2)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&wav_header(Some(samples)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::files::WavWriter;
    use crate::archive::key::{KeySource, RecordingsKey};
    use crate::archive::sealed::{Damage, Sealing};

    fn key(dir: &Path) -> RecordingsKey {
        RecordingsKey::load_or_create(&KeySource::File(dir.join("recordings.key")))
            .unwrap()
            .0
    }

    /// Four seconds of a sweep, so every sample differs.
    fn speech() -> Vec<f32> {
        (0..192_000)
            .map(|i| ((i as f32) * 0.001 * (1.0 + i as f32 / 96_000.0)).sin() * 0.5)
            .collect()
    }

    fn record(folder: &Path, sealing: &Sealing, samples: &[f32], finish: bool) -> PathBuf {
        std::fs::create_dir_all(folder).unwrap();
        let path = folder.join(sealing.file_name("label-1-alice.wav"));
        let mut writer = WavWriter::create_sealed(&path, sealing).unwrap();
        for frame in samples.chunks(960) {
            writer.write_samples(frame).unwrap();
        }
        if finish {
            writer.finish().unwrap();
        }
        // Not finished: dropped as a killed recorder leaves it.
        path
    }

    #[test]
    fn an_encrypted_recording_exports_to_the_same_wav_the_plain_mode_writes() {
        let dir = tempfile::tempdir().unwrap();
        let key = key(dir.path());
        let sealing = Sealing::Encrypted(vec![key.recipient()]);
        let plain_wav = record(&dir.path().join("plain"), &Sealing::Plain, &speech(), true);
        let sealed_wav = record(&dir.path().join("sealed"), &sealing, &speech(), true);
        let sealed_bytes = std::fs::read(&sealed_wav).unwrap();
        let plain_bytes = std::fs::read(&plain_wav).unwrap();
        assert!(
            !sealed_bytes
                .windows(64)
                .any(|w| plain_bytes.get(1000..1064) == Some(w)),
            "no plaintext audio on disk"
        );

        let out = dir.path().join("out");
        let reports = export(&dir.path().join("sealed"), &[key.identity().clone()], &out).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].outcome, FileOutcome::Intact);
        let exported = std::fs::read(out.join("sealed").join("label-1-alice.wav")).unwrap();
        assert_eq!(
            exported, plain_bytes,
            "byte for byte what plain mode writes"
        );
        let verified = verify(&dir.path().join("sealed"), &[key.identity().clone()]).unwrap();
        assert_eq!(verified[0].outcome, FileOutcome::Intact);
    }

    #[test]
    fn a_killed_recorder_leaves_a_playable_authentic_prefix_reported_as_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let key = key(dir.path());
        let sealing = Sealing::Encrypted(vec![key.recipient()]);
        let samples = speech();
        let path = record(&dir.path().join("killed"), &sealing, &samples, false);
        let keys = [key.identity().clone()];
        let mut audio = LabelAudio::open(&path, &keys).unwrap();
        let mut read = vec![0.0f32; samples.len()];
        let count = audio.read(&mut read);
        // Everything but the unfinished last chunk (64 KiB: 0.68 s) is there.
        assert!(
            count + 33_000 >= samples.len(),
            "{count} of {}",
            samples.len()
        );
        assert!(count > 150_000, "{count}");
        for (got, want) in read.iter().zip(&samples).take(count) {
            assert!((got - want).abs() < 1.0 / 16_000.0);
        }
        assert!(
            audio.damage().is_some_and(|d| d.contains("truncated")),
            "{:?}",
            audio.damage()
        );
        let verified = verify(&dir.path().join("killed"), &keys).unwrap();
        assert!(
            matches!(
                verified[0].outcome,
                FileOutcome::Damaged(Damage::Truncated { .. })
            ),
            "{:?}",
            verified[0].outcome
        );
    }

    #[test]
    fn verify_tells_an_altered_byte_from_a_cut_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = key(dir.path());
        let keys = [key.identity().clone()];
        let sealing = Sealing::Encrypted(vec![key.recipient()]);
        let folder = dir.path().join("session");
        let path = record(&folder, &sealing, &speech(), true);
        let original = std::fs::read(&path).unwrap();
        let outcome = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            verify(&folder, &keys).unwrap().remove(0).outcome
        };

        let mut flipped = original.clone();
        flipped[original.len() / 2] ^= 0x01;
        let FileOutcome::Damaged(damage @ Damage::Altered { .. }) = outcome(&flipped) else {
            panic!("a flipped byte in the middle is an alteration");
        };
        assert!(damage.to_string().starts_with("altered"), "{damage}");
        assert!(damage.authentic() > 0);

        let cut = &original[..original.len() - 1000];
        let FileOutcome::Damaged(damage) = outcome(cut) else {
            panic!("a cut file is damaged");
        };
        assert!(damage.to_string().contains("truncated"), "{damage}");

        let mut header = original.clone();
        header[40] ^= 0x01;
        assert!(matches!(outcome(&header), FileOutcome::Unreadable(_)));

        assert_eq!(outcome(&original), FileOutcome::Intact);
    }

    #[test]
    fn export_never_writes_into_an_existing_folder_least_of_all_the_recording() {
        let dir = tempfile::tempdir().unwrap();
        let recordings = dir.path().join("recordings");
        let folder = recordings.join("20261126T120000Z-0a1b2c3d");
        let wav = record(&folder, &Sealing::Plain, &speech(), true);
        let before = std::fs::read(&wav).unwrap();
        let into_itself = export(&folder, &[], &recordings).unwrap_err();
        assert!(
            matches!(into_itself, SessionError::Exists(_)),
            "{into_itself}"
        );
        assert_eq!(
            std::fs::read(&wav).unwrap(),
            before,
            "the recording is untouched"
        );
        let out = dir.path().join("out");
        export(&folder, &[], &out).unwrap();
        assert!(matches!(
            export(&folder, &[], &out),
            Err(SessionError::Exists(_))
        ));
    }

    #[test]
    fn without_the_key_export_refuses_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let key = key(dir.path());
        let sealing = Sealing::Encrypted(vec![key.recipient()]);
        let folder = dir.path().join("session");
        record(&folder, &sealing, &speech(), true);
        let out = dir.path().join("out");
        let error = export(&folder, &[], &out).unwrap_err().to_string();
        assert!(error.contains("no recordings key"), "{error}");
        assert!(!out.exists());
        let other = RecordingsKey::load_or_create(&KeySource::File(dir.path().join("other.key")))
            .unwrap()
            .0;
        let reports = verify(&folder, &[other.identity().clone()]).unwrap();
        assert!(
            matches!(&reports[0].outcome, FileOutcome::Unreadable(why) if why.contains("another key")),
            "{:?}",
            reports[0].outcome
        );
    }
}
