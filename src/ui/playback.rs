//! Recordings of the built-in recorder, from the history: play one through the speaker (both
//! sides mixed, at the speaker volume) or open its folder in the file manager. Everything
//! here runs on the phone's thread; the files are read off the runtime's workers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::audio::{AudioPorts, Volumes, WavSource};
use crate::media::FRAME_SAMPLES;

/// The newest recording session folder of the call, or why there is none.
pub(super) fn call_folder(dir: &Path, session_id: &str) -> Result<PathBuf, String> {
    crate::srs::folders_of_call(dir, session_id)
        .pop()
        .ok_or_else(|| {
            format!(
                "this call's recording is not in {} (moved or deleted?)",
                dir.display()
            )
        })
}

/// The WAV files of a session folder, one per label.
fn label_files(folder: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(folder).map_err(|e| format!("cannot read {}: {e}", folder.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "wav")
                && path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("label-"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{} holds no audio", folder.display()));
    }
    Ok(files)
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

/// Both sides of a recording, mixed, 48 kHz mono, as the speaker wants it.
pub(super) struct Recording {
    sides: Vec<WavSource>,
    side: Vec<f32>,
}

impl Recording {
    pub(super) fn open(folder: &Path) -> Result<Recording, String> {
        let sides = label_files(folder)?
            .iter()
            .map(|path| WavSource::open(path).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Recording {
            sides,
            side: vec![0.0; FRAME_SAMPLES],
        })
    }

    /// The next 20 ms, summed over the sides; false once every side has ended.
    pub(super) fn next_frame(&mut self, out: &mut [f32]) -> bool {
        out.fill(0.0);
        let mut any = false;
        for side in &mut self.sides {
            self.side.fill(0.0);
            if side.next_frame(&mut self.side) {
                any = true;
                crate::media::mix_into(out, &self.side);
            }
        }
        any
    }
}

/// Plays `recording` into the speaker's ring, one frame per 20 ms, until it ends or the
/// task is aborted (a call starts, or Stop).
pub(super) async fn play(
    mut recording: Recording,
    ports: Arc<Mutex<AudioPorts>>,
    volumes: Arc<Volumes>,
) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, rate: u32, value: i16, seconds: f64) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        for _ in 0..(f64::from(rate) * seconds) as usize {
            writer.write_sample(value).unwrap();
        }
        writer.finalize().unwrap();
    }

    #[test]
    fn both_sides_are_mixed_at_48_khz_until_the_longer_ends() {
        let dir = tempfile::tempdir().unwrap();
        write_wav(&dir.path().join("label-1-alice.wav"), 8000, 8192, 0.2);
        write_wav(&dir.path().join("label-2-bob.wav"), 48000, 4096, 0.4);
        std::fs::write(dir.path().join("summary.json"), "{}").unwrap();
        let mut recording = Recording::open(dir.path()).unwrap();
        let mut frame = vec![0.0f32; FRAME_SAMPLES];
        let mut frames = 0;
        let mut middle = 0.0;
        while recording.next_frame(&mut frame) {
            frames += 1;
            if frames == 5 {
                middle = frame[FRAME_SAMPLES / 2];
            }
        }
        assert_eq!(frames, 20, "0.4 s of the longer side");
        assert!((middle - 0.375).abs() < 0.01, "0.25 + 0.125 = {middle}");
        assert!(Recording::open(&dir.path().join("nothing")).is_err());
    }
}
