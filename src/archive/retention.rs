//! Deleting recordings once they are older than the user keeps them. Off unless asked for;
//! each deletion is logged, so an archive that shrinks can be accounted for.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long `days` of retention keep a recording.
pub fn days(days: u32) -> Duration {
    Duration::from_secs(u64::from(days) * 86_400)
}

/// A folder the recorder made: `20261126T143000Z-0a1b2c3d` with its metadata inside. A
/// user's own folder beside them is never deleted, however old.
fn is_session_folder(folder: &Path) -> bool {
    let Some(name) = folder.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some((stamp, short)) = name.split_once('-') else {
        return false;
    };
    stamp.len() == 16
        && stamp.ends_with('Z')
        && short.len() == 8
        && short.bytes().all(|b| b.is_ascii_hexdigit())
        && crate::archive::session::stored(folder, "metadata-1.xml").is_some()
}

/// When a session folder was last written: its summary, which is rewritten last at the
/// session's end, or else the folder itself.
fn last_written(folder: &Path) -> Option<SystemTime> {
    crate::archive::session::stored(folder, super::files::SUMMARY)
        .map_or_else(|| std::fs::metadata(folder), std::fs::metadata)
        .and_then(|meta| meta.modified())
        .ok()
}

/// Deletes every recording session folder in `dir` last written more than `keep` before
/// `now`; returns the folders deleted. A folder that cannot be deleted is logged and left.
pub fn delete_older_than(dir: &Path, keep: Duration, now: SystemTime) -> Vec<PathBuf> {
    let mut deleted = Vec::new();
    for folder in super::session::session_folders(dir) {
        if !is_session_folder(&folder) {
            continue;
        }
        let Some(written) = last_written(&folder) else {
            continue;
        };
        let Ok(age) = now.duration_since(written) else {
            continue;
        };
        if age <= keep {
            continue;
        }
        let days = age.as_secs() / 86_400;
        match std::fs::remove_dir_all(&folder) {
            Ok(()) => {
                tracing::info!(folder = %folder.display(), days, "srs: deleted a recording past its retention");
                deleted.push(folder);
            }
            Err(error) => {
                tracing::warn!(folder = %folder.display(), %error, "srs: cannot delete a recording past its retention");
            }
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(dir: &Path, name: &str, written: SystemTime) -> PathBuf {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("metadata-1.xml"), "<recording/>").unwrap();
        let summary = std::fs::File::create(folder.join("summary.json")).unwrap();
        summary.set_modified(written).unwrap();
        folder
    }

    #[test]
    fn sessions_past_the_retention_are_deleted_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let old = session(dir.path(), "20260101T100000Z-0000000a", now - 40 * day);
        let recent = session(dir.path(), "20261120T100000Z-0000000b", now - 5 * day);
        // Not a session folder, though it has the files of one: never touched.
        let other = session(dir.path(), "notes", now - 400 * day);

        let deleted = delete_older_than(dir.path(), 30 * day, now);
        assert_eq!(deleted, vec![old.clone()]);
        assert!(!old.exists());
        assert!(recent.exists() && other.exists());
        assert!(delete_older_than(dir.path(), 30 * day, now).is_empty());
    }
}
