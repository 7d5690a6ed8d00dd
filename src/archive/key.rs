//! The recordings key: an age X25519 key pair. A recorder needs only the public half (the
//! recipient) to write, so a running recorder never holds what opens past recordings. The
//! secret half lives in the OS keyring; where no keyring runs (a server, a bare desktop)
//! or the user names a file, in an owner-only identity file that `age -i` also reads.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use age::secrecy::ExposeSecret as _;

use crate::secrets::{self, SecretError, SecretKey};

/// Where the secret half is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPlace {
    Keyring,
    File(PathBuf),
}

impl std::fmt::Display for KeyPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyPlace::Keyring => f.write_str("the system keyring"),
            KeyPlace::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Where to look for the key, and where a new one goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The OS keyring; this file when no keyring service runs.
    Keyring { fallback: PathBuf },
    /// Only this file (the user chose it, or a test did).
    File(PathBuf),
}

impl KeySource {
    /// The file the user named, else the keyring with `recordings.key` beside config.toml
    /// as the fallback.
    pub fn choose(key_file: Option<&Path>) -> Option<KeySource> {
        match key_file {
            Some(path) => Some(KeySource::File(path.to_owned())),
            None => default_fallback().map(|fallback| KeySource::Keyring { fallback }),
        }
    }
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Keyring { fallback } => {
                write!(f, "the system keyring and {}", fallback.display())
            }
            KeySource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `~/.config/verbatim/recordings.key` on Linux: beside the settings, not the recordings,
/// so a copy of the recordings folder does not carry its key.
pub fn default_fallback() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "Verbatim", "verbatim")
        .map(|dirs| dirs.config_dir().join("recordings.key"))
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no recordings key in {looked}")]
    Missing { looked: String },
    #[error("the recordings key in {place} is not an age X25519 secret key (AGE-SECRET-KEY-1…)")]
    Invalid { place: KeyPlace },
    #[error("cannot use the recordings key file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the keyring refused the recordings key: {0}")]
    Keyring(String),
    #[error("there is no configuration folder to keep the recordings key in")]
    NoPlace,
}

/// The key pair, and where its secret half is kept.
#[derive(Clone)]
pub struct RecordingsKey {
    identity: age::x25519::Identity,
    place: KeyPlace,
}

impl std::fmt::Debug for RecordingsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingsKey")
            .field("recipient", &self.recipient().to_string())
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl RecordingsKey {
    pub fn recipient(&self) -> age::x25519::Recipient {
        self.identity.to_public()
    }

    pub fn identity(&self) -> &age::x25519::Identity {
        &self.identity
    }

    pub fn place(&self) -> &KeyPlace {
        &self.place
    }

    /// The secret key as text, for a backup the user asked for.
    pub fn secret_text(&self) -> String {
        self.identity.to_string().expose_secret().to_owned()
    }

    /// The key in `source`; None when there is none yet.
    pub fn load(source: &KeySource) -> Result<Option<RecordingsKey>, KeyError> {
        match source {
            KeySource::File(path) => load_file(path),
            KeySource::Keyring { fallback } => match secrets::load(&SecretKey::RecordingsKey) {
                Ok(Some(text)) => parse(&text, KeyPlace::Keyring).map(Some),
                // A key made while no keyring ran is still the key.
                Ok(None) | Err(SecretError::Unavailable(_)) => load_file(fallback),
                Err(SecretError::Refused(why)) => Err(KeyError::Keyring(why)),
            },
        }
    }

    /// Every key in `source`: the keyring's and the fallback file's, when a recorder once
    /// ran where no keyring service did and made its key in the file; reading needs both.
    pub fn load_all(source: &KeySource) -> Result<Vec<RecordingsKey>, KeyError> {
        let KeySource::Keyring { fallback } = source else {
            return Ok(RecordingsKey::load(source)?.into_iter().collect());
        };
        let mut keys = Vec::new();
        let mut refused = None;
        match secrets::load(&SecretKey::RecordingsKey) {
            Ok(Some(text)) => keys.push(parse(&text, KeyPlace::Keyring)?),
            Ok(None) | Err(SecretError::Unavailable(_)) => {}
            Err(SecretError::Refused(why)) => refused = Some(KeyError::Keyring(why)),
        }
        if let Some(file_key) = load_file(fallback)?
            && keys.iter().all(|k| k.recipient() != file_key.recipient())
        {
            keys.push(file_key);
        }
        match refused {
            Some(error) if keys.is_empty() => Err(error),
            _ => Ok(keys),
        }
    }

    /// The key in `source`, or an error naming every place looked.
    pub fn require(source: &KeySource) -> Result<RecordingsKey, KeyError> {
        RecordingsKey::load(source)?.ok_or_else(|| KeyError::Missing {
            looked: source.to_string(),
        })
    }

    /// The key in `source`, made and stored there first when there is none; true when new.
    pub fn load_or_create(source: &KeySource) -> Result<(RecordingsKey, bool), KeyError> {
        if let Some(key) = RecordingsKey::load(source)? {
            return Ok((key, false));
        }
        let identity = age::x25519::Identity::generate();
        let key = match source {
            KeySource::File(path) => store_file(path, &identity)?,
            KeySource::Keyring { fallback } => {
                let text = identity.to_string();
                match secrets::store(&SecretKey::RecordingsKey, text.expose_secret()) {
                    // Read back: a keyring entry is replaced, not refused, so of two phones
                    // making the key at once the last one stored is the key for both.
                    Ok(()) => match secrets::load(&SecretKey::RecordingsKey) {
                        Ok(Some(stored)) => parse(&stored, KeyPlace::Keyring)?,
                        _ => RecordingsKey {
                            identity,
                            place: KeyPlace::Keyring,
                        },
                    },
                    Err(SecretError::Unavailable(why)) => {
                        tracing::warn!(
                            %why,
                            file = %fallback.display(),
                            "no keyring service: the recordings key goes in an owner-only file"
                        );
                        store_file(fallback, &identity)?
                    }
                    Err(SecretError::Refused(why)) => return Err(KeyError::Keyring(why)),
                }
            }
        };
        tracing::info!(recipient = %key.recipient(), place = %key.place, "recordings key ready");
        Ok((key, true))
    }
}

fn load_file(path: &Path) -> Result<Option<RecordingsKey>, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, KeyPlace::File(path.to_owned())).map(Some),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyError::File {
            path: path.to_owned(),
            source,
        }),
    }
}

/// An age identity file: `#` comments, then the secret key on a line of its own.
fn parse(text: &str, place: KeyPlace) -> Result<RecordingsKey, KeyError> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .and_then(|line| age::x25519::Identity::from_str(line).ok())
        .map(|identity| RecordingsKey {
            identity,
            place: place.clone(),
        })
        .ok_or(KeyError::Invalid { place })
}

/// Writes a new key file whole, then links it into place: a link never replaces a file,
/// so of two processes making a key at once one wins and the other reads the winner's,
/// and nobody ever reads half a key.
fn store_file(path: &Path, identity: &age::x25519::Identity) -> Result<RecordingsKey, KeyError> {
    let error = |source| KeyError::File {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::private_fs::create_dir_all(parent).map_err(error)?;
    }
    let temporary = path.with_extension(format!(
        "new-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let text = format!(
        "# The key that opens recordings made by Verbatim. Keep a copy somewhere safe:\n\
         # without it they cannot be played.\n\
         # public key: {}\n{}\n",
        identity.to_public(),
        identity.to_string().expose_secret()
    );
    let written = crate::private_fs::create(&temporary).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let linked = match linked {
        // A file system without hard links (FAT on a USB stick): create it in place,
        // still never over an existing key.
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists && temporary.is_file() => {
            crate::private_fs::create_new(path).and_then(|mut file| {
                file.write_all(text.as_bytes())?;
                file.sync_all()
            })
        }
        other => other,
    };
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(RecordingsKey {
            identity: identity.clone(),
            place: KeyPlace::File(path.to_owned()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            load_file(path)?.ok_or_else(|| KeyError::Missing {
                looked: path.display().to_string(),
            })
        }
        Err(e) => Err(error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_made_once_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let source = KeySource::File(dir.path().join("keys").join("recordings.key"));
        assert!(RecordingsKey::load(&source).unwrap().is_none());
        assert!(matches!(
            RecordingsKey::require(&source),
            Err(KeyError::Missing { looked }) if looked.contains("recordings.key")
        ));
        let (made, new) = RecordingsKey::load_or_create(&source).unwrap();
        assert!(new);
        let (again, new) = RecordingsKey::load_or_create(&source).unwrap();
        assert!(!new, "the second call finds the first key");
        assert_eq!(made.recipient(), again.recipient());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let KeySource::File(path) = &source else {
                unreachable!()
            };
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(
            !format!("{made:?}").contains("AGE-SECRET-KEY"),
            "never in logs"
        );
    }

    #[test]
    fn processes_making_the_key_at_once_all_end_up_with_the_same_one() {
        let dir = tempfile::tempdir().unwrap();
        let source = KeySource::File(dir.path().join("recordings.key"));
        let made: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| RecordingsKey::load_or_create(&source).unwrap().0))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().recipient().to_string())
                .collect()
        });
        assert!(made.iter().all(|r| r == &made[0]), "{made:?}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary files left");
    }

    #[test]
    fn a_file_that_holds_no_key_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recordings.key");
        std::fs::write(&path, "# nothing\nnot a key\n").unwrap();
        let source = KeySource::File(path);
        assert!(matches!(
            RecordingsKey::load_or_create(&source),
            Err(KeyError::Invalid { .. })
        ));
    }
}
