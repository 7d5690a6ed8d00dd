//! Encryption at rest in the age format (age-encryption.org/v1: X25519 recipients, then
//! ChaCha20-Poly1305 in 64 KiB chunks with a last-chunk flag). Every chunk is authenticated
//! on its own, so a recorder killed mid-call leaves a file whose complete chunks still
//! decrypt, and a reader can tell a file cut short from one altered after it was written.
//! The format is not ours: `age -d -i KEYFILE` opens these files without Verbatim.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Sealed files are named like their plain twin with this added (`label-1-x.wav.age`).
pub const SEALED_EXTENSION: &str = "age";

/// Plaintext per age chunk, and the same on disk with its tag.
const CHUNK: u64 = 64 * 1024;
const SEALED_CHUNK: u64 = CHUNK + 16;

/// How the recorder stores what it writes.
#[derive(Clone)]
pub enum Sealing {
    /// Plain files anyone who can read the folder can play.
    Plain,
    /// Encrypted to these public keys; only their secret halves open the files.
    Encrypted(Vec<age::x25519::Recipient>),
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sealing::Plain => f.write_str("Plain"),
            Sealing::Encrypted(recipients) => f
                .debug_tuple("Encrypted")
                .field(
                    &recipients
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                )
                .finish(),
        }
    }
}

impl PartialEq for Sealing {
    fn eq(&self, other: &Sealing) -> bool {
        match (self, other) {
            (Sealing::Plain, Sealing::Plain) => true,
            (Sealing::Encrypted(a), Sealing::Encrypted(b)) => a == b,
            _ => false,
        }
    }
}

impl Sealing {
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Sealing::Encrypted(_))
    }

    /// The name a file called `plain_name` gets on disk.
    pub fn file_name(&self, plain_name: &str) -> String {
        match self {
            Sealing::Plain => plain_name.to_owned(),
            Sealing::Encrypted(_) => format!("{plain_name}.{SEALED_EXTENSION}"),
        }
    }

    fn encryptor(recipients: &[age::x25519::Recipient]) -> std::io::Result<age::Encryptor> {
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| std::io::Error::other(format!("cannot encrypt: {e}")))
    }

    /// `bytes` as they are stored.
    pub fn seal(&self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Sealing::Plain => Ok(bytes.to_vec()),
            Sealing::Encrypted(recipients) => {
                let mut sealed = Vec::with_capacity(bytes.len() + 256);
                let mut writer = Self::encryptor(recipients)?.wrap_output(&mut sealed)?;
                writer.write_all(bytes)?;
                writer.finish()?;
                Ok(sealed)
            }
        }
    }

    /// Wraps a new file for streaming writes; None when plain (the caller writes the file
    /// itself, and may seek in it).
    pub fn stream(&self, file: File) -> std::io::Result<Option<SealedWriter>> {
        match self {
            Sealing::Plain => Ok(None),
            Sealing::Encrypted(recipients) => Ok(Some(SealedWriter {
                inner: Self::encryptor(recipients)?.wrap_output(file)?,
            })),
        }
    }
}

/// A file being encrypted as it is written. Each full 64 KiB chunk goes to the file as
/// soon as the next byte arrives; [`SealedWriter::finish`] writes the last one.
pub struct SealedWriter {
    inner: age::stream::StreamWriter<File>,
}

impl std::fmt::Debug for SealedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedWriter").finish_non_exhaustive()
    }
}

impl Write for SealedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl SealedWriter {
    /// Writes the last chunk, which marks the file complete, and syncs it.
    pub fn finish(self) -> std::io::Result<()> {
        let file = self.inner.finish()?;
        file.sync_all()
    }
}

/// Why a stored file cannot be opened at all.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is encrypted and there is no recordings key to open it")]
    NoKey { path: String },
    #[error(
        "{path} is encrypted to another key (or its header was altered): the recordings key \
         does not open it"
    )]
    NotOurKey { path: String },
    #[error("{path} is damaged: its header was altered or is not an age header ({why})")]
    BadHeader { path: String, why: String },
}

/// Opens a stored file for reading, decrypting it when it is sealed. Reads past the last
/// authentic byte fail with the reason; everything read before that is authentic.
pub fn open(
    path: &Path,
    keys: &[age::x25519::Identity],
) -> Result<Box<dyn Read + Send>, OpenError> {
    let (reader, _header) = open_counting(path, keys)?;
    Ok(reader)
}

fn is_sealed(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == SEALED_EXTENSION)
}

/// Counts the bytes read from the file, so the length of the age header is known.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The reader and the length of the header before the first chunk (0 when plain).
fn open_counting(
    path: &Path,
    keys: &[age::x25519::Identity],
) -> Result<(Box<dyn Read + Send>, u64), OpenError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| OpenError::Io {
        path: shown.clone(),
        source,
    })?;
    if !is_sealed(path) {
        return Ok((Box::new(BufReader::new(file)), 0));
    }
    if keys.is_empty() {
        return Err(OpenError::NoKey { path: shown });
    }
    let count = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: file,
        count: Arc::clone(&count),
    };
    // `Decryptor::new` reads exactly the header and nonce, never ahead (unlike
    // `new_buffered`), so the count is where the first chunk starts.
    let decryptor = age::Decryptor::new(counting).map_err(|e| header_error(&shown, e))?;
    let header = count.load(Ordering::Relaxed);
    let reader = decryptor
        .decrypt(keys.iter().map(|k| k as &dyn age::Identity))
        .map_err(|e| header_error(&shown, e))?;
    Ok((Box::new(reader), header))
}

fn header_error(path: &str, error: age::DecryptError) -> OpenError {
    match error {
        age::DecryptError::NoMatchingKeys => OpenError::NotOurKey {
            path: path.to_owned(),
        },
        age::DecryptError::Io(source) => OpenError::Io {
            path: path.to_owned(),
            source,
        },
        other => OpenError::BadHeader {
            path: path.to_owned(),
            why: other.to_string(),
        },
    }
}

/// The whole content of a stored file, authenticated.
pub fn read_all(path: &Path, keys: &[age::x25519::Identity]) -> Result<Vec<u8>, ReadError> {
    let mut content = Vec::new();
    match check_into(path, keys, &mut content)? {
        Integrity::Intact | Integrity::Unprotected => Ok(content),
        Integrity::Damaged(damage) => Err(ReadError::Damaged {
            path: path.display().to_string(),
            damage,
        }),
    }
}

/// Why a stored file could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("{path}: {damage}")]
    Damaged { path: String, damage: Damage },
}

/// What reading a stored file to its end found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// Encrypted, and every byte authenticated up to a properly written last chunk.
    Intact,
    /// A plain file: readable, but nothing can say whether it was altered.
    Unprotected,
    Damaged(Damage),
}

/// How an encrypted file fails; `authentic` bytes of content before the damage are good.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// The file stops where a chunk ends but before the chunk marked last: it was cut
    /// short, or its writer was killed before finishing.
    #[error("truncated: it ends before its last part (the first {authentic} bytes are intact)")]
    Truncated { authentic: u64 },
    /// The final piece is shorter than a chunk and does not authenticate: cut short in the
    /// middle of a chunk, or its end was altered.
    #[error(
        "truncated or altered at the end: the last {unreadable} bytes on disk do not \
         authenticate (the first {authentic} bytes are intact)"
    )]
    TruncatedOrAlteredEnd { authentic: u64, unreadable: u64 },
    /// A chunk with more of the file after it does not authenticate: changed on disk.
    #[error(
        "altered: the part starting at byte {at_file_offset} of the file does not authenticate \
         (the first {authentic} bytes are intact)"
    )]
    Altered { authentic: u64, at_file_offset: u64 },
}

impl Damage {
    /// Content bytes before the damage, all authentic.
    pub fn authentic(&self) -> u64 {
        match self {
            Damage::Truncated { authentic }
            | Damage::TruncatedOrAlteredEnd { authentic, .. }
            | Damage::Altered { authentic, .. } => *authentic,
        }
    }
}

/// Reads the file to its end, authenticating every chunk.
pub fn check(path: &Path, keys: &[age::x25519::Identity]) -> Result<Integrity, OpenError> {
    check_into(path, keys, &mut std::io::sink())
}

/// Reads the file to its end into `out`, which gets every authentic byte.
pub fn check_into(
    path: &Path,
    keys: &[age::x25519::Identity],
    out: &mut dyn Write,
) -> Result<Integrity, OpenError> {
    let shown = || path.display().to_string();
    let size = std::fs::metadata(path)
        .map_err(|source| OpenError::Io {
            path: shown(),
            source,
        })?
        .len();
    let (mut reader, header) = open_counting(path, keys)?;
    let mut authentic = 0u64;
    let mut buffer = vec![0u8; CHUNK as usize];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                out.write_all(buffer.get(..n).unwrap_or_default())
                    .map_err(|source| OpenError::Io {
                        path: shown(),
                        source,
                    })?;
                authentic += n as u64;
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) if !is_sealed(path) => {
                return Err(OpenError::Io {
                    path: shown(),
                    source: error,
                });
            }
            Err(error) => return Ok(Integrity::Damaged(classify(error, authentic, header, size))),
        }
    }
    Ok(if is_sealed(path) {
        Integrity::Intact
    } else {
        Integrity::Unprotected
    })
}

/// Where the failing chunk sits says what happened: chunks decrypt in order, so the
/// first that fails starts right after the authentic content.
fn classify(error: std::io::Error, authentic: u64, header: u64, size: u64) -> Damage {
    if error.kind() == std::io::ErrorKind::UnexpectedEof {
        return Damage::Truncated { authentic };
    }
    let failing_start = header + (authentic / CHUNK) * SEALED_CHUNK;
    let rest = size.saturating_sub(failing_start);
    if rest >= SEALED_CHUNK {
        Damage::Altered {
            authentic,
            at_file_offset: failing_start,
        }
    } else {
        Damage::TruncatedOrAlteredEnd {
            authentic,
            unreadable: rest,
        }
    }
}
