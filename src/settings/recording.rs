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
    /// TLS towards the recorder, when any of its files is set.
    pub tls: Option<RecorderTls>,
    /// Where the built-in recorder writes (None: no folder could be found).
    pub folder: Option<PathBuf>,
}

/// `recordings` in the OS data directory (`~/.local/share/verbatim/recordings` on Linux).
pub fn default_recordings_folder() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "Verbatim", "verbatim")
        .map(|dirs| dirs.data_dir().join("recordings"))
}

/// The files for TLS towards the recorder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecorderTls {
    pub ca_file: Option<PathBuf>,
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
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
        let any_tls = self.tls_ca_file.is_some() || self.tls_client_certificate.is_some();
        let tls = any_tls.then(|| RecorderTls {
            ca_file: self.tls_ca_file.clone(),
            client_certificate: self.tls_client_certificate.clone(),
            client_key: self.tls_client_key.clone(),
        });
        if self
            .folder
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            return Err("recording.folder: empty; leave it out for the default".into());
        }
        Ok(Recording {
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
