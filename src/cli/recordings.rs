//! `verbatim recordings list|export|verify|key`: the built-in recorder's archive from the
//! command line, encrypted or not.

use std::path::{Path, PathBuf};

use age::x25519::Identity;

use super::Failure;
use crate::archive::Storage;
use crate::archive::key::RecordingsKey;
use crate::archive::session::{self, FileOutcome, FileReport};

#[derive(Debug, clap::Subcommand)]
pub(super) enum RecordingsCommand {
    /// One line per recording session: when, how long, who, and whether it is encrypted.
    List {
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Write decrypted copies (WAV with its true length, metadata, summary) into a folder.
    /// A damaged file is exported up to the damage and reported (exit code 1).
    Export {
        /// Session folders (their names) or call session IDs; none: every session.
        sessions: Vec<String>,
        /// Where the copies go, one folder per session (created owner-only).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Read every file to its end and check it was neither altered nor cut short (exit
    /// code 1 when one was).
    Verify {
        /// Session folders (their names) or call session IDs; none: every session.
        sessions: Vec<String>,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// The recordings key: its public half and where the secret half is kept.
    Key {
        /// Also print the secret key, for a backup (`age -d -i FILE` opens the recordings
        /// with it). Anyone who has it can play every recording.
        #[arg(long)]
        show_secret: bool,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct ArchiveArgs {
    /// The recordings folder; default: `[recording] folder`, else the data directory's.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The recordings key file; default: `[recording] key_file`, else the keyring.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    #[arg(long)]
    config: Option<PathBuf>,
}

impl ArchiveArgs {
    fn resolve(&self) -> Result<(PathBuf, Storage), Failure> {
        let mut settings = crate::settings::Settings::load_or_default(self.config.as_deref())
            .map_err(|e| Failure::usage(e.to_string()))?;
        // The recordings are where the administrator's policy keeps them, if it says.
        crate::settings::AdminPolicy::load_system()
            .map_err(Failure::usage)?
            .apply(&mut settings.recording);
        let recording = settings.recording.validate().map_err(Failure::usage)?;
        let dir = self
            .dir
            .clone()
            .or(recording.folder)
            .ok_or_else(|| Failure::usage("no --dir and no data directory"))?;
        let mut storage = recording.storage;
        if let Some(file) = &self.key_file {
            storage.key_file = Some(file.clone());
        }
        Ok((dir, storage))
    }
}

pub(super) async fn run(command: RecordingsCommand) -> Result<(), Failure> {
    // The keyring may wait for the user to unlock it.
    tokio::task::spawn_blocking(move || execute(command))
        .await
        .map_err(|e| Failure::new(e.to_string()))?
}

fn execute(command: RecordingsCommand) -> Result<(), Failure> {
    match command {
        RecordingsCommand::List { archive } => {
            let (dir, storage) = archive.resolve()?;
            list(&dir, &keys(&storage).0)
        }
        RecordingsCommand::Export {
            sessions,
            to,
            archive,
        } => {
            let (dir, storage) = archive.resolve()?;
            let (keys, looked) = keys(&storage);
            let folders = chosen(&dir, &sessions, &keys)?;
            if keys.is_empty() && any_sealed(&folders) {
                return Err(Failure::new(format!(
                    "export: the recordings are encrypted and there is no recordings key \
                     ({looked}); nothing was exported"
                )));
            }
            let mut reports = Vec::new();
            for folder in &folders {
                let exported = session::export(folder, &keys, &to)
                    .map_err(|e| Failure::new(format!("export: {e}")))?;
                println!("exported {}", to.join(folder_name(folder)).display());
                reports.extend(exported);
            }
            conclude("export", &reports)
        }
        RecordingsCommand::Verify { sessions, archive } => {
            let (dir, storage) = archive.resolve()?;
            let (keys, looked) = keys(&storage);
            let folders = chosen(&dir, &sessions, &keys)?;
            if keys.is_empty() && any_sealed(&folders) {
                return Err(Failure::new(format!(
                    "verify: the recordings are encrypted and only their key can check them; \
                     there is no recordings key ({looked})"
                )));
            }
            let mut reports = Vec::new();
            for folder in &folders {
                reports.extend(
                    session::verify(folder, &keys).map_err(|e| Failure::new(e.to_string()))?,
                );
            }
            for report in &reports {
                println!("{}: {}", report.path.display(), report.outcome);
            }
            conclude("verify", &reports)
        }
        RecordingsCommand::Key {
            show_secret,
            archive,
        } => {
            let (_, storage) = archive.resolve()?;
            let source = storage
                .key_source()
                .map_err(|e| Failure::new(e.to_string()))?;
            let key = RecordingsKey::require(&source).map_err(|e| Failure::new(e.to_string()))?;
            println!("public key: {}", key.recipient());
            println!("kept in: {}", key.place());
            if show_secret {
                println!("{}", key.secret_text());
            }
            Ok(())
        }
    }
}

/// The keys that open recordings, and where they were looked for (or why they could not be
/// had): plain recordings need none, so a missing key only matters for encrypted ones.
fn keys(storage: &Storage) -> (Vec<Identity>, String) {
    match storage.keys() {
        Ok(keys) => (keys, format!("looked in {}", source_text(storage))),
        Err(error) => (Vec::new(), error.to_string()),
    }
}

fn source_text(storage: &Storage) -> String {
    storage
        .key_source()
        .map(|s| s.to_string())
        .unwrap_or_else(|e| e.to_string())
}

fn folder_name(folder: &Path) -> String {
    folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn any_sealed(folders: &[PathBuf]) -> bool {
    folders.iter().any(|folder| {
        std::fs::read_dir(folder).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|entry| {
                entry
                    .path()
                    .extension()
                    .is_some_and(|e| e == crate::archive::sealed::SEALED_EXTENSION)
            })
        })
    })
}

/// The session folders named (by folder name or call session ID), or all of them.
fn chosen(dir: &Path, names: &[String], keys: &[Identity]) -> Result<Vec<PathBuf>, Failure> {
    let all = crate::archive::session::session_folders(dir);
    if names.is_empty() {
        return Ok(all);
    }
    let mut folders = Vec::new();
    for name in names {
        let by_name: Vec<PathBuf> = all
            .iter()
            .filter(|f| folder_name(f) == *name)
            .cloned()
            .collect();
        let found = if by_name.is_empty() {
            session::folders_of_call(dir, name, keys)
        } else {
            by_name
        };
        if found.is_empty() {
            return Err(Failure::new(format!(
                "no recording session {name:?} in {}",
                dir.display()
            )));
        }
        folders.extend(found);
    }
    Ok(folders)
}

fn list(dir: &Path, keys: &[Identity]) -> Result<(), Failure> {
    let folders = crate::archive::session::session_folders(dir);
    if folders.is_empty() {
        println!("no recordings in {}", dir.display());
        return Ok(());
    }
    println!(
        "{:<26} {:<21} {:>8}  {:<9} {:<10} WHO",
        "SESSION", "START", "LENGTH", "STORED", "STATE"
    );
    for folder in folders {
        let stored = if any_sealed(std::slice::from_ref(&folder)) {
            "encrypted"
        } else {
            "plain"
        };
        match session::read_summary(&folder, keys) {
            Ok(summary) => {
                let seconds = summary
                    .labels
                    .iter()
                    .map(|l| l.seconds)
                    .fold(0.0f64, f64::max);
                let length = format!("{}:{:02}", (seconds / 60.0) as u64, (seconds as u64) % 60);
                let state = if summary.end.is_some() {
                    "complete"
                } else {
                    "open"
                };
                let who: Vec<&str> = summary
                    .participants
                    .iter()
                    .map(|p| p.aor.as_str())
                    .collect();
                println!(
                    "{:<26} {:<21} {:>8}  {:<9} {:<10} {}",
                    folder_name(&folder),
                    summary.start.get(..19).unwrap_or(&summary.start),
                    length,
                    stored,
                    state,
                    who.join(", ")
                );
            }
            Err(error) => println!(
                "{:<26} {:<21} {:>8}  {:<9} {:<10} ({error})",
                folder_name(&folder),
                "?",
                "?",
                stored,
                "unreadable"
            ),
        }
    }
    Ok(())
}

/// Exit code 1, naming how many, when any file was damaged or could not be read.
fn conclude(what: &str, reports: &[FileReport]) -> Result<(), Failure> {
    let bad: Vec<&FileReport> = reports.iter().filter(|r| !r.outcome.is_sound()).collect();
    let plain = reports
        .iter()
        .filter(|r| r.outcome == FileOutcome::Unprotected)
        .count();
    if plain > 0 {
        eprintln!("{what}: {plain} plain files: their integrity cannot be checked");
    }
    if bad.is_empty() {
        let verdict = if plain == 0 {
            "all intact"
        } else {
            "none damaged that can be told"
        };
        println!("{what}: {} files, {verdict}", reports.len());
        return Ok(());
    }
    for report in &bad {
        eprintln!("{what}: {}: {}", report.path.display(), report.outcome);
    }
    Err(Failure::new(format!(
        "{what}: {} of {} files damaged or unreadable",
        bad.len(),
        reports.len()
    )))
}
