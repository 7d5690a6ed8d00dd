//! Passwords live in the OS keyring (the Secret Service on Linux: GNOME Keyring, KWallet;
//! the Keychain on macOS; the Credential Manager on Windows), never in config.toml. Every
//! call may wait on the keyring service (it can ask the user to unlock it), so front ends
//! call these off their window's thread.

/// The keyring's name for everything Verbatim keeps.
const SERVICE: &str = "verbatim";

/// Whose password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretKey {
    /// A SIP account's, by its address of record.
    Account(String),
    /// The secret half of the key the built-in recorder encrypts recordings to.
    RecordingsKey,
}

impl SecretKey {
    fn entry_name(&self) -> String {
        match self {
            SecretKey::Account(aor) => format!("account {aor}"),
            SecretKey::RecordingsKey => "recordings key".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// No keyring service runs (or it is locked and will not open): the caller keeps the
    /// password in memory for this run only and says so.
    #[error(
        "no keyring service is available ({0}); the password is kept only until Verbatim \
         quits. To keep it, run a Secret Service keyring such as GNOME Keyring or KWallet"
    )]
    Unavailable(String),
    #[error("the keyring refused the password: {0}")]
    Refused(String),
}

fn entry(key: &SecretKey) -> Result<keyring::Entry, SecretError> {
    keyring::Entry::new(SERVICE, &key.entry_name()).map_err(classify)
}

fn classify(error: keyring::Error) -> SecretError {
    match error {
        keyring::Error::PlatformFailure(e) => SecretError::Unavailable(e.to_string()),
        keyring::Error::NoStorageAccess(e) => SecretError::Unavailable(e.to_string()),
        other => SecretError::Refused(other.to_string()),
    }
}

/// The stored password; None when there is none yet.
pub fn load(key: &SecretKey) -> Result<Option<String>, SecretError> {
    match entry(key)?.get_password() {
        Ok(password) => Ok(Some(password)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(error) => Err(classify(error)),
    }
}

pub fn store(key: &SecretKey, password: &str) -> Result<(), SecretError> {
    entry(key)?.set_password(password).map_err(classify)
}

/// Removes the password; forgetting one that is not there is not an error.
pub fn forget(key: &SecretKey) -> Result<(), SecretError> {
    match entry(key)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(error) => Err(classify(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_account_has_its_own_entry() {
        let alice = SecretKey::Account("sip:alice@example.com".into());
        let bob = SecretKey::Account("sip:bob@example.com".into());
        assert_ne!(alice.entry_name(), bob.entry_name());
        assert!(alice.entry_name().contains("sip:alice@example.com"));
    }

    /// Where no keyring service runs (a bare CI machine), the answer is the clear
    /// "unavailable" that the window shows, never a panic or a silent loss; where one runs,
    /// a password goes in and comes back.
    #[test]
    fn a_password_round_trips_or_the_keyring_is_reported_missing() {
        let key = SecretKey::Account(format!("sip:test-{}@verbatim.invalid", std::process::id()));
        match store(&key, "s3cret") {
            Ok(()) => {
                assert_eq!(load(&key), Ok(Some("s3cret".into())));
                assert_eq!(forget(&key), Ok(()));
                assert_eq!(load(&key), Ok(None));
            }
            Err(SecretError::Unavailable(why)) => {
                assert!(!why.is_empty());
                assert!(matches!(load(&key), Err(SecretError::Unavailable(_))));
            }
            Err(other) => panic!("{other}"),
        }
    }
}
