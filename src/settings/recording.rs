//! `[recording]`: where calls are recorded and by what policy.

use core::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::RecordingMode;
use crate::sip::auth::Credentials;
use crate::sip::uri::Uri;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingSettings {
    /// "all": record every call from its start; "none": only when asked. An account's
    /// `record` overrides it.
    pub auto: String,
    /// The recorder (SRS); absent: the built-in recorder.
    pub srs: Option<String>,
    /// Where the built-in recorder writes; absent: `recordings` in the OS data directory.
    pub folder: Option<PathBuf>,
    /// A second recorder, tried in turn with the first after a failure.
    pub srs_secondary: Option<String>,
    /// "optional" (a call goes on without its recording) or "mandatory" (no call without
    /// a working recording).
    pub policy: String,
    /// "separate" (one stream per side) or "mixed".
    pub mode: String,
    /// SRTP on the recording even when the call is plain RTP.
    pub srtp: bool,
    /// For a recorder that asks for digest authentication.
    pub auth_user: Option<String>,
    pub password: Option<String>,
    /// Recorders (IP addresses) that may start recording a call themselves.
    pub allow_recorders: Vec<String>,
    /// Honour the other side's `a=recordpref` (ignored anyway when the policy is mandatory).
    pub honour_preference: bool,
    /// TLS to the recorder: trust this CA instead of the system's roots, and present this
    /// client certificate (mutual TLS).
    pub tls_ca_file: Option<PathBuf>,
    pub tls_client_certificate: Option<PathBuf>,
    pub tls_client_key: Option<PathBuf>,
    /// Accept the recorder's certificate by its SHA-256 fingerprint alone (for a recorder
    /// with a self-signed certificate) instead of checking who issued it.
    pub tls_certificate_sha256: Option<String>,
    /// `[recording.notice]`: telling the far end by ear.
    pub notice: NoticeSettings,
    /// The built-in recorder deletes recordings older than this many days; absent: kept.
    pub keep_days: Option<u32>,
    /// The built-in recorder encrypts what it stores (to the recordings key in the OS
    /// keyring). false: plain files anyone who can read the folder can play.
    pub encrypt: bool,
    /// Keep the recordings key in this file instead of the keyring.
    pub key_file: Option<PathBuf>,
    /// More public keys (age1…) each recording is also encrypted to.
    pub extra_recipients: Vec<String>,
}

/// `[recording.notice]`: what tells the far end, in the audio, that the call is recorded
/// (RFC 7245 3.4), and the cues the local user hears.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct NoticeSettings {
    /// Play a spoken announcement to the far end when recording starts or resumes.
    pub announcement: bool,
    /// Your own announcement (a 48 kHz mono 16-bit WAV) instead of the bundled one.
    pub announcement_file: Option<PathBuf>,
    /// Mix a warning tone into what the far end hears, periodically.
    pub tone: bool,
    pub tone_every_seconds: u32,
    pub tone_hz: u32,
    pub tone_milliseconds: u32,
    /// Loudness of the tone in thousandths of full scale (100 is -20 dBFS).
    pub tone_level_permille: u16,
    /// No audio notice for a far end that is record-aware (it shows recording itself).
    pub skip_for_record_aware: bool,
    /// Short cues for you when recording starts, pauses, resumes or fails.
    pub local_cues: bool,
}

impl Default for NoticeSettings {
    fn default() -> Self {
        let tone = crate::recording::notice::WarningTone::default();
        NoticeSettings {
            announcement: false,
            announcement_file: None,
            tone: false,
            tone_every_seconds: u32::try_from(tone.interval.as_secs()).unwrap_or(15),
            tone_hz: tone.frequency_hz,
            tone_milliseconds: u32::try_from(tone.duration.as_millis()).unwrap_or(500),
            tone_level_permille: tone.level_permille,
            skip_for_record_aware: true,
            local_cues: true,
        }
    }
}

/// An account's `[account.notice]`: each field set here is its own, the rest are the
/// phone's `[recording.notice]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccountNotice {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announcement: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announcement_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tone: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tone_every_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tone_hz: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tone_milliseconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tone_level_permille: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_for_record_aware: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_cues: Option<bool>,
}

impl AccountNotice {
    /// The phone's notice with this account's own fields over it.
    pub fn over(&self, phone: &NoticeSettings) -> NoticeSettings {
        NoticeSettings {
            announcement: self.announcement.unwrap_or(phone.announcement),
            announcement_file: self
                .announcement_file
                .clone()
                .or_else(|| phone.announcement_file.clone()),
            tone: self.tone.unwrap_or(phone.tone),
            tone_every_seconds: self.tone_every_seconds.unwrap_or(phone.tone_every_seconds),
            tone_hz: self.tone_hz.unwrap_or(phone.tone_hz),
            tone_milliseconds: self.tone_milliseconds.unwrap_or(phone.tone_milliseconds),
            tone_level_permille: self
                .tone_level_permille
                .unwrap_or(phone.tone_level_permille),
            skip_for_record_aware: self
                .skip_for_record_aware
                .unwrap_or(phone.skip_for_record_aware),
            local_cues: self.local_cues.unwrap_or(phone.local_cues),
        }
    }

    /// Its own values checked, whatever the phone's turn out to be: the tone's are checked
    /// even while it is off here, as the phone's may turn it on.
    pub fn validate(&self) -> Result<(), String> {
        let mut alone = self.over(&NoticeSettings::default());
        alone.tone = true;
        alone
            .validate(false)
            .map(|_| ())
            .map_err(|error| error.replacen("recording.notice.", "account.notice.", 1))
    }
}

/// Where the announcement comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnouncementSource {
    Bundled,
    File(PathBuf),
}

/// `[recording.notice]` checked; [`NoticeChoice::load`] reads the announcement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NoticeChoice {
    pub announcement: Option<AnnouncementSource>,
    pub tone: Option<crate::recording::notice::WarningTone>,
    pub skip_for_record_aware: bool,
    pub local_cues: bool,
}

impl NoticeChoice {
    /// The engine's notice, with the announcement read (the bundled one is in the binary).
    pub fn load(&self) -> Result<crate::recording::notice::NoticeConfig, String> {
        use crate::recording::notice;
        let announcement = match &self.announcement {
            None => None,
            Some(AnnouncementSource::Bundled) => Some(notice::bundled_announcement()?),
            Some(AnnouncementSource::File(path)) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    format!("recording.notice.announcement_file {}: {e}", path.display())
                })?;
                Some(notice::read_announcement(&bytes).map_err(|e| {
                    format!("recording.notice.announcement_file {}: {e}", path.display())
                })?)
            }
        };
        Ok(notice::NoticeConfig {
            announcement,
            tone: self.tone,
            skip_for_record_aware: self.skip_for_record_aware,
            local_cues: self.local_cues,
        })
    }
}

impl NoticeSettings {
    /// A mandatory policy forces an audible notice: the announcement, when neither is on.
    pub fn validate(&self, mandatory: bool) -> Result<NoticeChoice, String> {
        if self.tone {
            if !(1..=3600).contains(&self.tone_every_seconds) {
                return Err("recording.notice.tone_every_seconds: 1 to 3600".into());
            }
            if !(100..=4000).contains(&self.tone_hz) {
                return Err("recording.notice.tone_hz: 100 to 4000".into());
            }
            if !(50..=5000).contains(&self.tone_milliseconds) {
                return Err("recording.notice.tone_milliseconds: 50 to 5000".into());
            }
            if !(1..=1000).contains(&self.tone_level_permille) {
                return Err("recording.notice.tone_level_permille: 1 to 1000".into());
            }
        }
        let tone = self.tone.then(|| crate::recording::notice::WarningTone {
            frequency_hz: self.tone_hz,
            duration: core::time::Duration::from_millis(u64::from(self.tone_milliseconds)),
            interval: core::time::Duration::from_secs(u64::from(self.tone_every_seconds)),
            level_permille: self.tone_level_permille,
        });
        let announce = self.announcement || (mandatory && tone.is_none());
        let announcement = announce.then(|| match &self.announcement_file {
            Some(path) => AnnouncementSource::File(path.clone()),
            None => AnnouncementSource::Bundled,
        });
        Ok(NoticeChoice {
            announcement,
            tone,
            skip_for_record_aware: self.skip_for_record_aware,
            local_cues: self.local_cues,
        })
    }
}

impl Default for RecordingSettings {
    fn default() -> Self {
        RecordingSettings {
            auto: "none".into(),
            srs: None,
            folder: None,
            srs_secondary: None,
            policy: "optional".into(),
            mode: "separate".into(),
            srtp: false,
            auth_user: None,
            password: None,
            allow_recorders: Vec::new(),
            honour_preference: true,
            tls_ca_file: None,
            tls_client_certificate: None,
            tls_client_key: None,
            tls_certificate_sha256: None,
            notice: NoticeSettings::default(),
            keep_days: None,
            encrypt: true,
            key_file: None,
            extra_recipients: Vec::new(),
        }
    }
}

/// `[recording]` with every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub auto: bool,
    pub srs: Option<Uri>,
    pub srs_secondary: Option<Uri>,
    pub mandatory: bool,
    pub mode: RecordingMode,
    pub srtp: bool,
    pub credentials: Option<Credentials>,
    pub allow_recorders: Vec<IpAddr>,
    pub honour_preference: bool,
    /// TLS towards the recorder, when any of its files or the pin is set.
    pub tls: Option<RecorderTls>,
    /// Where the built-in recorder writes (None: no folder could be found).
    pub folder: Option<PathBuf>,
    pub notice: NoticeChoice,
    /// How long the built-in recorder keeps recordings; None: for ever.
    pub keep: Option<core::time::Duration>,
    /// Encrypted or plain, and with which keys.
    pub storage: crate::archive::Storage,
}

/// `recordings` in the OS data directory (`~/.local/share/verbatim/recordings` on Linux).
pub fn default_recordings_folder() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "Verbatim", "verbatim")
        .map(|dirs| dirs.data_dir().join("recordings"))
}

/// How TLS towards the recorder is set up: its files, and the pinned certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecorderTls {
    pub ca_file: Option<PathBuf>,
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub pinned_sha256: Option<crate::driver::tls::Sha256Fingerprint>,
}

impl RecorderTls {
    /// What the driver needs for its recorder connections (the name to check comes from
    /// each recorder's URI).
    pub fn driver_settings(&self) -> crate::driver::tls::TlsSettings {
        crate::driver::tls::TlsSettings {
            ca_file: self.ca_file.clone(),
            client_certificate: self.client_certificate.clone(),
            client_key: self.client_key.clone(),
            server_name: None,
            pinned_sha256: self.pinned_sha256,
            peer: crate::driver::tls::TlsPeer::Recorder,
        }
    }
}

impl RecordingSettings {
    pub fn validate(&self) -> Result<Recording, String> {
        let auto = match self.auto.to_ascii_lowercase().as_str() {
            "all" => true,
            "none" => false,
            other => return Err(format!("recording.auto: {other:?} is not all or none")),
        };
        let uri = |field: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| Uri::parse(v).map_err(|e| format!("recording.{field}: {e}")))
                .transpose()
        };
        let mandatory = match self.policy.to_ascii_lowercase().as_str() {
            "optional" => false,
            "mandatory" => true,
            other => {
                return Err(format!(
                    "recording.policy: {other:?} is not optional or mandatory"
                ));
            }
        };
        let mode = match self.mode.to_ascii_lowercase().as_str() {
            "separate" => RecordingMode::Separate,
            "mixed" => RecordingMode::Mixed,
            other => {
                return Err(format!(
                    "recording.mode: {other:?} is not separate or mixed"
                ));
            }
        };
        let credentials = match (&self.auth_user, &self.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.clone())),
            (None, None) => None,
            _ => return Err("recording.auth_user and recording.password go together".into()),
        };
        let allow_recorders = self
            .allow_recorders
            .iter()
            .map(|a| {
                a.parse::<IpAddr>()
                    .map_err(|_| format!("recording.allow_recorders: {a:?} is not an IP address"))
            })
            .collect::<Result<_, _>>()?;
        for (field, path) in [
            ("tls_ca_file", &self.tls_ca_file),
            ("tls_client_certificate", &self.tls_client_certificate),
            ("tls_client_key", &self.tls_client_key),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                return Err(format!(
                    "recording.{field}: {} is not a readable file",
                    path.display()
                ));
            }
        }
        if self.tls_client_certificate.is_some() != self.tls_client_key.is_some() {
            return Err(
                "recording.tls_client_certificate and recording.tls_client_key go together".into(),
            );
        }
        let pinned_sha256 = self
            .tls_certificate_sha256
            .as_deref()
            .map(|text| {
                crate::driver::tls::Sha256Fingerprint::parse(text)
                    .map_err(|e| format!("recording.tls_certificate_sha256: {e}"))
            })
            .transpose()?;
        if pinned_sha256.is_some() && self.tls_ca_file.is_some() {
            // The pin replaces the CA check; a CA file beside it would be silently unused.
            return Err(
                "recording.tls_certificate_sha256: a pinned certificate needs no CA; leave \
                 tls_ca_file out"
                    .into(),
            );
        }
        let any_tls = self.tls_ca_file.is_some()
            || self.tls_client_certificate.is_some()
            || pinned_sha256.is_some();
        let tls = any_tls.then(|| RecorderTls {
            ca_file: self.tls_ca_file.clone(),
            client_certificate: self.tls_client_certificate.clone(),
            client_key: self.tls_client_key.clone(),
            pinned_sha256,
        });
        if self
            .folder
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            return Err("recording.folder: empty; leave it out for the default".into());
        }
        if self.keep_days == Some(0) {
            return Err("recording.keep_days: at least 1; leave it out to keep recordings".into());
        }
        if self
            .key_file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            return Err("recording.key_file: empty; leave it out to use the keyring".into());
        }
        let extra_recipients = self
            .extra_recipients
            .iter()
            .map(|text| {
                text.trim().parse::<age::x25519::Recipient>().map_err(|_| {
                    format!("recording.extra_recipients: {text:?} is not an age public key (age1…)")
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Recording {
            storage: crate::archive::Storage {
                encrypt: self.encrypt,
                key_file: self.key_file.clone(),
                extra_recipients,
            },
            keep: self.keep_days.map(crate::archive::retention::days),
            notice: self.notice.validate(mandatory)?,
            tls,
            folder: self.folder.clone().or_else(default_recordings_folder),
            auto,
            srs: uri("srs", &self.srs)?,
            srs_secondary: uri("srs_secondary", &self.srs_secondary)?,
            mandatory,
            mode,
            srtp: self.srtp,
            credentials,
            allow_recorders,
            honour_preference: self.honour_preference,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn recording_settings_default_to_asking_and_parse_every_field() {
        let defaults = Settings::parse("").unwrap().recording.validate().unwrap();
        assert!(!defaults.auto && !defaults.mandatory && defaults.srs.is_none());
        let s = Settings::parse(
            r#"
            [recording]
            auto = "all"
            srs = "sips:srs@recorder.example.com"
            srs_secondary = "sip:srs2@192.0.2.9;transport=tcp"
            policy = "mandatory"
            mode = "mixed"
            srtp = true
            auth_user = "phone"
            password = "pw"
            allow_recorders = ["127.0.0.1"]
            honour_preference = false
            "#,
        )
        .unwrap();
        let r = s.recording.validate().unwrap();
        assert!(r.auto && r.mandatory && r.srtp && !r.honour_preference);
        assert_eq!(r.mode, RecordingMode::Mixed);
        assert_eq!(r.srs.unwrap().host, "recorder.example.com");
        assert_eq!(r.credentials.unwrap().username, "phone");
        assert_eq!(
            r.allow_recorders,
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn recorder_tls_files_must_exist_and_the_client_pair_go_together() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-").unwrap();
        let missing = dir.path().join("nope.pem");
        let with = |ca: Option<&std::path::Path>, cert: Option<&std::path::Path>| {
            RecordingSettings {
                tls_ca_file: ca.map(Into::into),
                tls_client_certificate: cert.map(Into::into),
                ..Default::default()
            }
            .validate()
        };
        let tls = with(Some(&ca), None).unwrap().tls.unwrap();
        assert_eq!(tls.ca_file.as_deref(), Some(ca.as_path()));
        assert!(with(None, None).unwrap().tls.is_none());
        let err = with(Some(&missing), None).unwrap_err();
        assert!(err.starts_with("recording.tls_ca_file"), "{err}");
        let err = with(None, Some(&ca)).unwrap_err();
        assert!(err.contains("go together"), "{err}");
    }

    #[test]
    fn a_pinned_recorder_certificate_reaches_the_driver_and_a_bad_pin_names_its_key() {
        let colons = (0..32)
            .map(|i| format!("{:02x}", i * 7))
            .collect::<Vec<_>>();
        let pinned = |text: &str| {
            RecordingSettings {
                tls_certificate_sha256: Some(text.to_owned()),
                ..Default::default()
            }
            .validate()
        };
        let tls = pinned(&colons.join(":")).unwrap().tls.unwrap();
        let driver = tls.driver_settings();
        assert_eq!(driver.peer, crate::driver::tls::TlsPeer::Recorder);
        assert_eq!(
            driver.pinned_sha256.map(|pin| pin.to_string()),
            Some(colons.join(":").to_ascii_uppercase())
        );
        assert_eq!(
            pinned(&colons.concat()).unwrap().tls.unwrap().pinned_sha256,
            tls.pinned_sha256
        );
        for bad in ["", "AB:CD", &colons.concat()[1..], "zz".repeat(32).as_str()] {
            let err = pinned(bad).unwrap_err();
            assert!(
                err.starts_with("recording.tls_certificate_sha256:") && err.contains("64 hex"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_pin_and_a_ca_file_together_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-").unwrap();
        let err = RecordingSettings {
            tls_certificate_sha256: Some("ab".repeat(32)),
            tls_ca_file: Some(ca),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(
            err.starts_with("recording.tls_certificate_sha256:") && err.contains("tls_ca_file"),
            "{err}"
        );
    }

    #[test]
    fn bad_recording_values_name_their_field() {
        for (text, field) in [
            ("[recording]\nauto = \"sometimes\"\n", "recording.auto"),
            ("[recording]\npolicy = \"strict\"\n", "recording.policy"),
            ("[recording]\nmode = \"stereo\"\n", "recording.mode"),
            ("[recording]\nsrs = \"not a uri\"\n", "recording.srs"),
            ("[recording]\nauth_user = \"x\"\n", "recording.auth_user"),
            (
                "[recording]\nallow_recorders = [\"srs.example\"]\n",
                "recording.allow_recorders",
            ),
        ] {
            let err = Settings::parse(text).unwrap_err();
            assert!(err.contains(field), "{text}: {err}");
        }
    }
}
