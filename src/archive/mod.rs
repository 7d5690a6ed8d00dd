//! The recordings the built-in recorder keeps, at rest: encrypted to the user's recordings
//! key by default (RFC 7245 section 5: stored content protected, keys released only to
//! those allowed), or plain when the user chose plain files.
//!
//! [`sealed`] is the encryption (the age format), [`key`] the key pair and where its secret
//! half lives, [`files`] what a recording session leaves on disk (WAV per label, metadata,
//! summary) as the recorder writes it, [`session`] a session folder as readers find it: its
//! summary, its audio, export, verify, and [`retention`] deleting what is past keeping. The
//! recorder (`crate::srs`) writes through this module; nothing here depends on it.

pub mod files;
pub mod key;
pub mod retention;
pub mod sealed;
pub mod session;

use std::path::PathBuf;

use self::key::{KeyError, KeySource, RecordingsKey};
use self::sealed::Sealing;

/// What a recorder needs before it starts, and what to tell the user.
#[derive(Debug)]
pub struct Prepared {
    pub sealing: Sealing,
    /// The user's key; None for plain files.
    pub key: Option<RecordingsKey>,
    /// The key was made just now.
    pub new_key: bool,
}

impl Prepared {
    /// A line for the user: where the key is and to keep a copy, when it is new; the
    /// warning, when the files are plain.
    pub fn advice(&self) -> Option<String> {
        match &self.key {
            None => Some(
                "Recordings are stored as plain files: anyone who can read the folder can \
                 play them"
                    .into(),
            ),
            Some(key) if self.new_key => Some(format!(
                "Recordings are encrypted with a new key kept in {}. Without it they cannot \
                 be played: keep a copy (verbatim recordings key --show-secret)",
                key.place()
            )),
            Some(_) => None,
        }
    }
}

/// How recordings are stored, as the settings say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// Encrypt (the default); false stores plain files.
    pub encrypt: bool,
    /// Keep the secret key in this file instead of the keyring.
    pub key_file: Option<PathBuf>,
    /// Further public keys every recording is also encrypted to (a compliance officer's,
    /// an archive's), whose holders can open the recordings too.
    pub extra_recipients: Vec<age::x25519::Recipient>,
}

impl Default for Storage {
    fn default() -> Storage {
        Storage {
            encrypt: true,
            key_file: None,
            extra_recipients: Vec::new(),
        }
    }
}

impl Storage {
    pub fn key_source(&self) -> Result<KeySource, KeyError> {
        KeySource::choose(self.key_file.as_deref()).ok_or(KeyError::NoPlace)
    }

    /// The sealing a recorder writes with, and the user's key (made the first time). It
    /// may wait on the keyring: call it off any window's thread.
    pub fn prepare(&self) -> Result<Prepared, KeyError> {
        if !self.encrypt {
            tracing::warn!(
                "recordings are stored as plain files: anyone who can read the folder can \
                 play them"
            );
            return Ok(Prepared {
                sealing: Sealing::Plain,
                key: None,
                new_key: false,
            });
        }
        let (key, new_key) = RecordingsKey::load_or_create(&self.key_source()?)?;
        let mut recipients = vec![key.recipient()];
        recipients.extend(self.extra_recipients.iter().cloned());
        Ok(Prepared {
            sealing: Sealing::Encrypted(recipients),
            key: Some(key),
            new_key,
        })
    }

    /// The identities that open recordings: the user's key when there is one. None found
    /// is not an error here; opening a sealed file then says there is no key.
    pub fn keys(&self) -> Result<Vec<age::x25519::Identity>, KeyError> {
        Ok(RecordingsKey::load_all(&self.key_source()?)?
            .into_iter()
            .map(|key| key.identity().clone())
            .collect())
    }
}
