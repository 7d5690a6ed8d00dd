//! Recordings of the built-in recorder, from the history: play one through the speaker (both
//! sides mixed, at the speaker volume) or open its folder in the file manager. Everything
//! here runs on the phone's thread; the files are read off the runtime's workers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::archive::Storage;
use crate::archive::session::{self, LabelAudio};
use crate::audio::{AudioPorts, Volumes};
use crate::media::FRAME_SAMPLES;

/// The keys that open recordings; none when there is no key (or the keyring would not
/// give it), which only matters for encrypted files, and opening those then says so.
pub(super) fn keys(storage: &Storage) -> Vec<age::x25519::Identity> {
    storage.keys().unwrap_or_else(|error| {
        tracing::warn!(%error, "no recordings key");
        Vec::new()
    })
}

/// The newest recording session folder of the call, or why there is none.
/// `storage` only names where the key was looked for when there is none.
pub(super) fn call_folder(
    dir: &Path,
    session_id: &str,
    keys: &[age::x25519::Identity],
    storage: &Storage,
) -> Result<PathBuf, String> {
    if let Some(folder) = session::folders_of_call(dir, session_id, keys).pop() {
        return Ok(folder);
    }
    let sealed_summaries = crate::archive::session::session_folders(dir)
        .iter()
        .any(|folder| {
            session::stored(folder, crate::archive::files::SUMMARY)
                .is_some_and(|path| path.extension().is_some_and(|e| e == "age"))
        });
    if keys.is_empty() && sealed_summaries {
        return Err(format!(
            "the recordings in {} are encrypted and the recordings key is missing ({})",
            dir.display(),
            storage
                .key_source()
                .map(|source| format!("looked in {source}"))
                .unwrap_or_default()
        ));
    }
    Err(format!(
        "this call's recording is not in {} (moved or deleted?)",
        dir.display()
    ))
}

/// Opens the folder in the desktop's file manager.
pub(super) fn open_folder(folder: &Path) -> Result<(), String> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(target_os = "windows") {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(folder)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("cannot open {} with {opener}: {e}", folder.display()))
}

/// Both sides of a recording, mixed, 48 kHz mono, as the speaker wants it; decrypted as
/// it plays when the recording is encrypted.
pub(super) struct Recording {
    sides: Vec<LabelAudio>,
    side: Vec<f32>,
    /// Sides that could not be opened at all, and why.
    unplayable: Vec<String>,
}

impl Recording {
    /// Every side that opens; one that does not (a side killed before its first chunk
    /// reached the disk) leaves the others playing, and is reported at the end.
    pub(super) fn open(folder: &Path, keys: &[age::x25519::Identity]) -> Result<Recording, String> {
        let mut sides = Vec::new();
        let mut unplayable = Vec::new();
        for path in session::label_files(folder).map_err(|e| e.to_string())? {
            match LabelAudio::open(&path, keys) {
                Ok(side) => sides.push(side),
                Err(error) => unplayable.push(error.to_string()),
            }
        }
        if sides.is_empty() {
            return Err(unplayable.join("; "));
        }
        Ok(Recording {
            sides,
            side: vec![0.0; FRAME_SAMPLES],
            unplayable,
        })
    }

    /// The next 20 ms, summed over the sides; false once every side has ended.
    pub(super) fn next_frame(&mut self, out: &mut [f32]) -> bool {
        out.fill(0.0);
        let mut any = false;
        for side in &mut self.sides {
            if side.next_frame(&mut self.side) {
                any = true;
                crate::media::mix_into(out, &self.side);
            }
        }
        any
    }

    /// Why a side stopped before its file's end, or did not play, when one did.
    pub(super) fn damage(&self) -> Option<String> {
        if let Some(why) = self.unplayable.first() {
            return Some(format!("part of the recording could not be played: {why}"));
        }
        self.sides
            .iter()
            .find_map(|side| side.damage())
            .map(|why| format!("the recording stops early: the rest is damaged ({why})"))
    }
}

/// Plays `recording` into the speaker's ring, one frame per 20 ms, until it ends or the
/// task is aborted (a call starts, or Stop); returns why it ended early, when it did.
pub(super) async fn play(
    mut recording: Recording,
    ports: Arc<Mutex<AudioPorts>>,
    volumes: Arc<Volumes>,
) -> Option<String> {
    let mut frame = vec![0.0f32; FRAME_SAMPLES];
    let mut ticks = tokio::time::interval(core::time::Duration::from_millis(20));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while recording.next_frame(&mut frame) {
        ticks.tick().await;
        volumes.apply_output(&mut frame);
        if let Ok(mut ports) = ports.lock() {
            let _ = ports.write_playback(&frame);
        }
    }
    recording.damage()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::files::WavWriter;
    use crate::archive::key::{KeySource, RecordingsKey};
    use crate::archive::sealed::Sealing;

    fn write_label(folder: &Path, name: &str, sealing: &Sealing, value: f32, seconds: f64) {
        let mut writer =
            WavWriter::create_sealed(folder.join(sealing.file_name(name)), sealing).unwrap();
        writer
            .write_samples(&vec![value; (48_000.0 * seconds) as usize])
            .unwrap();
        writer.finish().unwrap();
    }

    /// Storage with a key file of its own in `dir`, and that key.
    fn keyed_storage(dir: &Path) -> (Storage, RecordingsKey) {
        let key_file = dir.join("recordings.key");
        let (key, _) = RecordingsKey::load_or_create(&KeySource::File(key_file.clone())).unwrap();
        let storage = Storage {
            key_file: Some(key_file),
            ..Storage::default()
        };
        (storage, key)
    }

    /// Plays the whole recording; how many frames it had.
    fn play_all(recording: &mut Recording) -> usize {
        let mut frame = vec![0.0f32; FRAME_SAMPLES];
        let mut frames = 0;
        while recording.next_frame(&mut frame) {
            frames += 1;
        }
        frames
    }

    fn mixed_frames(folder: &Path, storage: &Storage) -> (usize, f32) {
        let mut recording = Recording::open(folder, &keys(storage)).unwrap();
        let mut frame = vec![0.0f32; FRAME_SAMPLES];
        let mut frames = 0;
        let mut middle = 0.0;
        while recording.next_frame(&mut frame) {
            frames += 1;
            if frames == 5 {
                middle = frame[FRAME_SAMPLES / 2];
            }
        }
        (frames, middle)
    }

    #[test]
    fn both_sides_are_mixed_until_the_longer_ends_plain_or_encrypted() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, key) = keyed_storage(dir.path());
        for sealing in [Sealing::Plain, Sealing::Encrypted(vec![key.recipient()])] {
            let folder = tempfile::tempdir().unwrap();
            write_label(folder.path(), "label-1-alice.wav", &sealing, 0.25, 0.2);
            write_label(folder.path(), "label-2-bob.wav", &sealing, 0.125, 0.4);
            let (frames, middle) = mixed_frames(folder.path(), &storage);
            assert_eq!(frames, 20, "0.4 s of the longer side ({sealing:?})");
            assert!((middle - 0.375).abs() < 0.01, "0.25 + 0.125 = {middle}");
        }
        assert!(Recording::open(&dir.path().join("nothing"), &keys(&storage)).is_err());
    }

    #[test]
    fn a_damaged_recording_plays_up_to_the_damage_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, key) = keyed_storage(dir.path());
        let folder = tempfile::tempdir().unwrap();
        let sealing = Sealing::Encrypted(vec![key.recipient()]);
        write_label(folder.path(), "label-1-alice.wav", &sealing, 0.25, 3.0);
        let path = folder.path().join("label-1-alice.wav.age");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 70_000;
        bytes[at] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
        let mut recording = Recording::open(folder.path(), &keys(&storage)).unwrap();
        assert_eq!(recording.damage(), None);
        let frames = play_all(&mut recording);
        assert!(
            (50..150).contains(&frames),
            "played the intact part: {frames} frames"
        );
        let damage = recording.damage().unwrap();
        assert!(damage.contains("stops early"), "{damage}");
    }

    #[test]
    fn a_side_that_never_reached_the_disk_leaves_the_other_playing() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, key) = keyed_storage(dir.path());
        let folder = tempfile::tempdir().unwrap();
        let sealing = Sealing::Encrypted(vec![key.recipient()]);
        write_label(folder.path(), "label-1-alice.wav", &sealing, 0.25, 0.4);
        // A recorder killed before the other side's first chunk: its header only.
        let path = folder.path().join("label-2-bob.wav.age");
        let whole = std::fs::read(folder.path().join("label-1-alice.wav.age")).unwrap();
        std::fs::write(&path, &whole[..200]).unwrap();
        let mut recording = Recording::open(folder.path(), &keys(&storage)).unwrap();
        assert_eq!(play_all(&mut recording), 20, "alice's 0.4 s");
        let damage = recording.damage().unwrap();
        assert!(damage.contains("could not be played"), "{damage}");
    }

    #[test]
    fn an_encrypted_recording_without_its_key_says_the_key_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) =
            RecordingsKey::load_or_create(&KeySource::File(dir.path().join("made.key"))).unwrap();
        let folder = tempfile::tempdir().unwrap();
        let sealing = Sealing::Encrypted(vec![key.recipient()]);
        write_label(folder.path(), "label-1-alice.wav", &sealing, 0.25, 0.2);
        let elsewhere = Storage {
            key_file: Some(dir.path().join("absent.key")),
            ..Storage::default()
        };
        let error = Recording::open(folder.path(), &keys(&elsewhere))
            .err()
            .unwrap();
        assert!(error.contains("no recordings key"), "{error}");
    }
}
