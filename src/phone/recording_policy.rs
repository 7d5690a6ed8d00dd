//! How the phone records calls: the `[recording]` settings (or the command line's flags over
//! them), with the built-in recorder as the target when no recorder is set, turned into the
//! engine's recording requests with every recorder resolved (RFC 3263).

use crate::driver;
use crate::engine::{RecordingMode, RecordingRequest};
use crate::settings::Recording;
use crate::sip::auth::Credentials;
use crate::sip::transport::Destination;
use crate::sip::uri::Uri;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingPolicy {
    /// Every call is recorded from its start (dialled or answered).
    pub auto: bool,
    /// The recorder; None: the built-in one.
    pub srs: Option<Uri>,
    /// A second recorder that gets the same recording (RFC 7245 redundancy).
    pub secondary: Option<Uri>,
    /// No recording, no call.
    pub mandatory: bool,
    pub mode: RecordingMode,
    pub srtp: bool,
    pub credentials: Option<Credentials>,
    /// The built-in recorder's URI, while it runs.
    pub builtin: Option<Uri>,
    /// What the administrator fixed: an account's own settings do not change it.
    pub admin: crate::settings::AdminPolicy,
}

impl RecordingPolicy {
    /// The policy of the `[recording]` settings.
    pub fn from_settings(recording: &Recording) -> RecordingPolicy {
        RecordingPolicy {
            auto: recording.auto,
            srs: recording.srs.clone(),
            secondary: recording.srs_secondary.clone(),
            mandatory: recording.mandatory,
            mode: recording.mode,
            srtp: recording.srtp,
            credentials: recording.credentials.clone(),
            builtin: None,
            admin: crate::settings::AdminPolicy::default(),
        }
    }

    /// This policy with an account's own recording settings over it, except what the
    /// administrator fixed.
    pub fn for_account(&self, account: &crate::settings::AccountRecording) -> RecordingPolicy {
        use crate::settings::Locked;
        let free = |setting| !self.admin.is_locked(setting);
        let mut policy = self.clone();
        if let Some(auto) = account.auto.filter(|_| free(Locked::Auto)) {
            policy.auto = auto;
        }
        if let Some(srs) = account.srs.clone().filter(|_| free(Locked::Srs)) {
            policy.srs = Some(srs);
        }
        if let Some(secondary) = account
            .secondary
            .clone()
            .filter(|_| free(Locked::SrsSecondary))
        {
            policy.secondary = Some(secondary);
        }
        if let Some(mandatory) = account.mandatory.filter(|_| free(Locked::Policy)) {
            policy.mandatory = mandatory;
        }
        policy
    }

    /// The settings changed: the new policy, with the built-in recorder still running.
    pub fn update(&mut self, recording: &Recording) {
        let builtin = self.builtin.take();
        let admin = core::mem::take(&mut self.admin);
        *self = RecordingPolicy {
            builtin,
            admin,
            ..RecordingPolicy::from_settings(recording)
        };
    }

    /// Whether recordings go to the built-in recorder (so it has to run).
    pub fn wants_builtin(&self) -> bool {
        self.srs.is_none()
    }

    /// Where recordings go: the configured recorder, else the built-in one.
    pub fn recorder(&self) -> Result<Uri, String> {
        self.srs
            .clone()
            .or_else(|| self.builtin.clone())
            .ok_or_else(|| "no recorder is configured and the built-in one is not running".into())
    }

    /// Whether every call is recorded from its start (dialled or answered).
    pub fn records_every_call(&self) -> bool {
        self.auto
    }

    /// The recording of a call, its recorders resolved. The media ports are the caller's to
    /// fill once the recording's sockets are bound.
    pub async fn request(&self) -> Result<RecordingRequest, String> {
        let (srs, destination) = resolve(self.recorder()?).await?;
        let secondary = match self.secondary.clone() {
            Some(uri) => Some(resolve(uri).await?),
            None => None,
        };
        Ok(RecordingRequest {
            destination,
            srs,
            media_ports: Vec::new(),
            secondary,
            mandatory: self.mandatory,
            mode: self.mode,
            srtp: self.srtp,
            credentials: self.credentials.clone(),
        })
    }

    /// The recorder "Test recorder" asks: the one typed (empty: the built-in one).
    pub async fn check_target(&self, typed: &str) -> Result<(Uri, Destination), String> {
        let srs = match typed.trim() {
            "" => self
                .builtin
                .clone()
                .ok_or("no recorder URI, and the built-in recorder is not running")?,
            text => Uri::parse(text).map_err(|e| format!("recording.srs: {e}"))?,
        };
        resolve(srs).await
    }
}

/// A recorder's first hop; a recorder without a transport in its URI is reached over TCP,
/// as recording sessions carry large bodies.
async fn resolve(uri: Uri) -> Result<(Uri, Destination), String> {
    let destination =
        driver::dns::first_hop(&uri, crate::recording::recorder_transport(&uri)).await?;
    Ok((uri, destination))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::settings::{AccountRecording, AdminPolicy};

    fn uri(text: &str) -> Uri {
        Uri::parse(text).unwrap()
    }

    #[test]
    fn an_accounts_own_recording_settings_win_except_what_the_administrator_fixed() {
        let phone_wide = RecordingPolicy {
            srs: Some(uri("sip:srs@phone.example")),
            ..RecordingPolicy::default()
        };
        let account = AccountRecording {
            auto: Some(true),
            srs: Some(uri("sip:srs@account.example")),
            secondary: Some(uri("sip:srs2@account.example")),
            mandatory: Some(true),
            notice: None,
        };
        let policy = phone_wide.for_account(&account);
        assert!(policy.auto && policy.mandatory);
        assert_eq!(policy.srs, account.srs);
        assert_eq!(policy.secondary, account.secondary);
        // Nothing of its own: the phone's policy as it is.
        assert_eq!(
            phone_wide.for_account(&AccountRecording::default()),
            phone_wide
        );

        let locked = RecordingPolicy {
            admin: AdminPolicy::parse(
                "[recording]\nsrs = \"sip:srs@admin.example\"\npolicy = \"optional\"\n",
            )
            .unwrap(),
            ..phone_wide.clone()
        };
        let policy = locked.for_account(&account);
        assert_eq!(
            policy.srs, phone_wide.srs,
            "the administrator's recorder stays"
        );
        assert!(!policy.mandatory, "the administrator's policy stays");
        assert!(
            policy.auto,
            "what the administrator left free is the account's"
        );
    }
}
