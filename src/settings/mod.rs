//! The configuration file (TOML). Passwords belong in the OS keyring ([`crate::secrets`]); a
//! password written in the file by hand is still read, for headless use.

mod admin_policy;
mod recording;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use admin_policy::{AdminPolicy, Locked, SYSTEM_POLICY_FILE};
pub use recording::{
    AccountNotice, NoticeChoice, NoticeSettings, RecorderTls, Recording, RecordingSettings,
    default_recordings_folder,
};

use crate::media::srtp::SrtpPolicy;
use crate::sdp::Codec;
use crate::sip::transport::Transport;
use crate::sip::uri::{NameAddr, Uri};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The file's format; files without it are version 1 (the first).
    #[serde(default = "current_version")]
    pub version: u32,
    /// `[[account]]` tables, any number; the first enabled one places calls unless another
    /// is chosen. A single `[account]` table (the form before several accounts) is read as
    /// one and written back as `[[account]]`.
    #[serde(
        rename = "account",
        default,
        deserialize_with = "one_or_many_accounts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub accounts: Vec<AccountSettings>,
    #[serde(default)]
    pub call: CallSettings,
    #[serde(default)]
    pub media: MediaSettings,
    #[serde(default)]
    pub audio: AudioSettings,
    #[serde(default)]
    pub recording: RecordingSettings,
    #[serde(default)]
    pub window: WindowSettings,
}

/// `[window]`: how the desktop app lives beside the desktop.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct WindowSettings {
    /// An icon in the panel's tray that shows the recording and brings the window back.
    pub tray: bool,
    /// Closing the window leaves the phone running in the tray (calls still ring, with a
    /// desktop notification).
    pub close_to_tray: bool,
    /// Start with the window hidden in the tray.
    pub start_hidden: bool,
    /// Start with the desktop session (an XDG autostart entry).
    pub start_at_login: bool,
}

impl Default for WindowSettings {
    fn default() -> Self {
        WindowSettings {
            tray: true,
            close_to_tray: false,
            start_hidden: false,
            start_at_login: false,
        }
    }
}

/// Sound devices by name (see `verbatim devices`); absent means the system default.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AudioSettings {
    pub input: Option<String>,
    pub output: Option<String>,
    pub ringing: Option<String>,
    /// Microphone and speaker volume in percent (0 to 200).
    pub input_volume: u16,
    pub output_volume: u16,
    /// Cancel the echo of the speaker in the microphone (sound card only).
    pub echo_cancellation: bool,
    /// Suppress background noise in the microphone: off, low, moderate, high, very-high.
    pub noise_suppression: crate::audio::NoiseLevel,
    /// Keep the microphone's level steady.
    pub auto_gain: bool,
}

impl Default for AudioSettings {
    fn default() -> Self {
        AudioSettings {
            input: None,
            output: None,
            ringing: None,
            input_volume: 100,
            output_volume: 100,
            echo_cancellation: crate::audio::VoiceSettings::RECOMMENDED.echo_cancellation,
            noise_suppression: crate::audio::VoiceSettings::RECOMMENDED.noise_suppression,
            auto_gain: crate::audio::VoiceSettings::RECOMMENDED.auto_gain,
        }
    }
}

impl AudioSettings {
    pub fn validate(&self) -> Result<(), String> {
        let max = crate::audio::MAX_VOLUME_PERCENT;
        for (field, value) in [
            ("input_volume", self.input_volume),
            ("output_volume", self.output_volume),
        ] {
            if value > max {
                return Err(format!(
                    "audio.{field}: {value} is more than {max} (percent)"
                ));
            }
        }
        Ok(())
    }

    pub fn volumes(&self) -> crate::audio::Volumes {
        crate::audio::Volumes::new(self.input_volume, self.output_volume)
    }

    pub fn devices(&self) -> crate::audio::DeviceConfig {
        let choice = |name: &Option<String>| match name {
            Some(n) if !n.is_empty() => crate::audio::DeviceChoice::Named(n.clone()),
            _ => crate::audio::DeviceChoice::SystemDefault,
        };
        crate::audio::DeviceConfig {
            input: choice(&self.input),
            output: choice(&self.output),
            ringing: choice(&self.ringing),
            voice: crate::audio::VoiceSettings {
                echo_cancellation: self.echo_cancellation,
                noise_suppression: self.noise_suppression,
                auto_gain: self.auto_gain,
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSettings {
    /// Codecs in preference order: "opus", "g722", "pcmu", "pcma".
    pub codecs: Vec<String>,
    /// "off", "optional" (offer SRTP, accept plain RTP) or "mandatory".
    pub srtp: String,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            codecs: vec!["opus".into(), "g722".into(), "pcmu".into(), "pcma".into()],
            srtp: "optional".into(),
        }
    }
}

impl MediaSettings {
    pub fn codecs(&self) -> Result<Vec<Codec>, String> {
        if self.codecs.is_empty() {
            return Err("media.codecs: at least one codec is needed".into());
        }
        self.codecs
            .iter()
            .map(|name| match name.to_ascii_lowercase().as_str() {
                "opus" => Ok(Codec::Opus { inband_fec: true }),
                "pcmu" => Ok(Codec::Pcmu),
                "pcma" => Ok(Codec::Pcma),
                "g722" => Ok(Codec::G722),
                other => Err(format!(
                    "media.codecs: {other:?} is not opus, g722, pcmu or pcma"
                )),
            })
            .collect()
    }

    pub fn srtp(&self) -> Result<SrtpPolicy, String> {
        self.srtp.parse().map_err(|_| {
            format!(
                "media.srtp: {:?} is not off, optional or mandatory",
                self.srtp
            )
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CallSettings {
    /// End a connected call after this many seconds without media from the other side
    /// (0: never).
    pub no_media_timeout: u64,
    /// Seconds between keep-alives on the registration's flow (TCP and TLS always; UDP
    /// once the registrar shows a NAT in between), 10 to 300.
    #[serde(default = "default_keepalive")]
    pub keepalive_seconds: u64,
    /// A STUN server (`host` or `host:port`) that tells each call's media sockets how a NAT
    /// maps them, so the SDP names the public address; none: the local address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stun_server: Option<String>,
}

fn default_keepalive() -> u64 {
    30
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            no_media_timeout: 30,
            keepalive_seconds: default_keepalive(),
            stun_server: None,
        }
    }
}

impl CallSettings {
    /// The keep-alive interval, checked.
    pub fn keepalive(&self) -> Result<core::time::Duration, String> {
        if !(10..=300).contains(&self.keepalive_seconds) {
            return Err(format!(
                "call.keepalive_seconds: {} is not 10 to 300",
                self.keepalive_seconds
            ));
        }
        Ok(core::time::Duration::from_secs(self.keepalive_seconds))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    /// What the account is called in the window and by `--account`; absent: its address
    /// (user@host).
    pub name: Option<String>,
    /// Switched off: it neither registers nor takes or places calls (default: on).
    pub enabled: Option<bool>,
    pub display_name: Option<String>,
    /// The address of record, e.g. `sip:alice@example.com`.
    pub uri: String,
    pub registrar: Option<String>,
    pub auth_user: Option<String>,
    pub password: Option<String>,
    pub transport: Option<String>,
    pub outbound_proxy: Option<String>,
    pub expires: Option<u32>,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_client_certificate: Option<PathBuf>,
    pub tls_client_key: Option<PathBuf>,
    /// SRTP policy for this account's calls; `[media] srtp` when absent.
    pub srtp: Option<String>,
    /// Record this account's calls from their start; `[recording] auto` when absent.
    pub record: Option<bool>,
    /// The recorder for this account's calls; `[recording] srs` when absent.
    pub srs: Option<String>,
    /// Its second recorder; `[recording] srs_secondary` when absent.
    pub srs_secondary: Option<String>,
    /// "optional" or "mandatory" for this account's calls; `[recording] policy` when absent.
    pub record_policy: Option<String>,
    /// Register when the app starts (default: yes, when there is a registrar).
    pub register_on_start: Option<bool>,
    /// `[account.notice]`: how this account's calls tell the far end they are recorded,
    /// over `[recording.notice]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<AccountNotice>,
}

/// An account's own recording settings, each over the phone-wide `[recording]` one (None:
/// that one applies). An administrator's policy wins over them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountRecording {
    pub auto: Option<bool>,
    pub srs: Option<Uri>,
    pub secondary: Option<Uri>,
    pub mandatory: Option<bool>,
    /// Its own notice (from `[account.notice]`, or the announcement its mandatory policy
    /// forces), with the phone's and the administrator's settings folded in; None: the
    /// phone's. Settled by [`Settings::accounts_for_calls`].
    pub notice: Option<NoticeChoice>,
}

/// An account with every field checked and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub enabled: bool,
    pub aor: NameAddr,
    pub registrar: Option<Uri>,
    pub auth_user: String,
    pub password: Option<String>,
    pub transport: Option<Transport>,
    pub outbound_proxy: Option<Uri>,
    pub expires: u32,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_client_certificate: Option<PathBuf>,
    pub tls_client_key: Option<PathBuf>,
    pub srtp: Option<SrtpPolicy>,
    pub record: Option<bool>,
    pub recording: AccountRecording,
    pub register_on_start: bool,
}

impl Account {
    /// Whether `other` registers exactly as this does: only the rules for its calls (SRTP,
    /// recording, notice) may differ, which need no new registration.
    pub fn same_registration(&self, other: &Account) -> bool {
        let registration = |account: &Account| Account {
            srtp: None,
            record: None,
            recording: AccountRecording::default(),
            ..account.clone()
        };
        registration(self) == registration(other)
    }

    /// The domain numbers and bare user names are completed to: the AOR's host (and port,
    /// when it names one).
    pub fn domain(&self) -> String {
        let uri = &self.aor.uri;
        match uri.port {
            Some(port) => format!("{}:{port}", uri.host),
            None => uri.host.clone(),
        }
    }

    /// What the user typed in the dial field, as a URI: numbers and bare names complete to
    /// the account's domain.
    pub fn complete(&self, input: &str) -> Result<Uri, String> {
        dial_uri(input, Some(&self.domain()))
    }

    /// Where this account keeps its password in the keyring.
    pub fn secret_key(&self) -> crate::secrets::SecretKey {
        crate::secrets::SecretKey::Account(self.aor.uri.to_string())
    }
}

/// A dial field's text as a SIP URI. `sip:`/`sips:` URIs are taken as they are, `user@host`
/// gets `sip:`, and a number (spaces, dashes, dots and brackets dropped; `tel:` too) or a
/// bare name goes to `domain`; without a domain only full addresses can be dialled.
pub fn dial_uri(input: &str, domain: Option<&str>) -> Result<Uri, String> {
    let input = input.trim();
    if input.is_empty() {
        return Err("nothing to dial".into());
    }
    let lower = input.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        return Uri::parse(input).map_err(|e| format!("{input:?} is not a SIP URI: {e}"));
    }
    if input.contains('@') {
        return Uri::parse(&format!("sip:{input}"))
            .map_err(|e| format!("{input:?} is not a SIP address: {e}"));
    }
    let bare = if lower.starts_with("tel:") {
        input.get(4..).unwrap_or_default()
    } else {
        input
    };
    let number: String = bare
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let is_number = !number.is_empty()
        && number
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || matches!(c, '*' | '#') || (c == '+' && i == 0));
    let user = if is_number { number.as_str() } else { bare };
    let valid_user = !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'+#&=$,;?/".contains(c));
    if !valid_user {
        return Err(format!("{input:?} is neither a number nor a SIP address"));
    }
    let Some(domain) = domain else {
        return Err(format!(
            "{input:?} needs a SIP account to complete it; dial a full address \
             (sip:user@host) or add an account in Settings"
        ));
    };
    Uri::parse(&format!("sip:{user}@{domain}"))
        .map_err(|e| format!("{input:?} does not make a SIP URI: {e}"))
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version: SETTINGS_VERSION,
            accounts: Vec::new(),
            call: CallSettings::default(),
            media: MediaSettings::default(),
            audio: AudioSettings::default(),
            recording: RecordingSettings::default(),
            window: WindowSettings::default(),
        }
    }
}

/// The settings format this build writes.
pub const SETTINGS_VERSION: u32 = 1;

fn current_version() -> u32 {
    SETTINGS_VERSION
}

impl Settings {
    /// Writes the file atomically (a temporary file renamed over it), readable by its owner
    /// only: it may hold passwords until they move to the keyring.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let write_error = |source| SettingsError::Read {
            path: path.to_owned(),
            source,
        };
        let text = toml::to_string_pretty(self).map_err(|e| SettingsError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if let Some(dir) = path.parent() {
            crate::private_fs::create_dir_all(dir).map_err(write_error)?;
        }
        let temporary = path.with_extension("toml.tmp");
        {
            use std::io::Write as _;
            let mut file = crate::private_fs::create(&temporary).map_err(write_error)?;
            file.write_all(text.as_bytes()).map_err(write_error)?;
            file.sync_all().map_err(write_error)?;
        }
        std::fs::rename(&temporary, path).map_err(write_error)
    }

    /// `~/.config/verbatim/config.toml` on Linux (the OS config dir).
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("org", "Verbatim", "verbatim")
            .map(|dirs| dirs.config_dir().join("config.toml"))
    }

    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Settings::parse(&text).map_err(|message| SettingsError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// The explicit file, else the default one if it exists, else defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Settings, SettingsError> {
        match path {
            Some(path) => Settings::load(path),
            None => match Settings::default_path().filter(|p| p.exists()) {
                Some(path) => Settings::load(&path),
                None => Ok(Settings::default()),
            },
        }
    }

    pub fn parse(text: &str) -> Result<Settings, String> {
        let settings: Settings = toml::from_str(text).map_err(|e| e.to_string())?;
        if settings.version > SETTINGS_VERSION {
            return Err(format!(
                "version: this file is version {}, newer than this Verbatim ({SETTINGS_VERSION})",
                settings.version
            ));
        }
        settings.validate_accounts()?;
        settings.media.codecs()?;
        settings.media.srtp()?;
        settings.audio.validate()?;
        settings.recording.validate()?;
        Ok(settings)
    }
}

/// `account` as one table (the old form) or as `[[account]]` tables; each is read with the
/// same checks (unknown fields refused), so an error names the field either way.
fn one_or_many_accounts<'de, D>(deserializer: D) -> Result<Vec<AccountSettings>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    let read = |value: toml::Value| {
        value
            .try_into::<AccountSettings>()
            .map_err(D::Error::custom)
    };
    match toml::Value::deserialize(deserializer)? {
        toml::Value::Array(tables) => tables.into_iter().map(read).collect(),
        table @ toml::Value::Table(_) => Ok(vec![read(table)?]),
        other => Err(D::Error::custom(format!(
            "account: an [account] table or [[account]] tables, not a {}",
            other.type_str()
        ))),
    }
}

impl Settings {
    /// The account calls go out on unless another is chosen: the first enabled one.
    pub fn account(&self) -> Option<&AccountSettings> {
        self.accounts.iter().find(|account| account.is_enabled())
    }

    /// The account called `name` (see [`AccountSettings::name`]), enabled or not.
    pub fn account_named(&self, name: &str) -> Result<&AccountSettings, String> {
        self.accounts
            .iter()
            .find(|account| account.name() == name)
            .ok_or_else(|| {
                let names: Vec<String> = self.accounts.iter().map(|a| a.name()).collect();
                if names.is_empty() {
                    format!("no account named {name:?}: the configuration has none")
                } else {
                    format!("no account named {name:?}; there are: {}", names.join(", "))
                }
            })
    }

    /// Puts `account` in place of the default one ([`Settings::account`]), first in the list
    /// when there is none; `None` removes the default one.
    pub fn set_account(&mut self, account: Option<AccountSettings>) {
        let position = self.accounts.iter().position(AccountSettings::is_enabled);
        match (position, account) {
            (Some(at), Some(account)) => {
                if let Some(slot) = self.accounts.get_mut(at) {
                    *slot = account;
                }
            }
            (Some(at), None) => {
                self.accounts.remove(at);
            }
            (None, Some(account)) => self.accounts.insert(0, account),
            (None, None) => {}
        }
    }

    /// Every account valid, and no two with one name, each with its SRTP policy settled
    /// (its own, else `[media]`'s) and its notice (its own fields over `[recording.notice]`,
    /// then what `admin` fixed).
    pub fn accounts_for_calls(&self, admin: &AdminPolicy) -> Result<Vec<Account>, String> {
        let media = self.media.srtp()?;
        let mut phone = self.recording.clone();
        admin.apply(&mut phone);
        let phone_mandatory = phone.policy.eq_ignore_ascii_case("mandatory");
        let mut accounts = self.validate_accounts()?;
        for (account, settings) in accounts.iter_mut().zip(&self.accounts) {
            account.srtp = Some(account.srtp.unwrap_or(media));
            let own_mandatory = account
                .recording
                .mandatory
                .filter(|_| !admin.is_locked(Locked::Policy));
            if settings.notice.is_none() && own_mandatory.is_none() {
                continue;
            }
            let mut notice = settings
                .notice
                .clone()
                .unwrap_or_default()
                .over(&phone.notice);
            admin.apply_to_notice(&mut notice);
            let mandatory = own_mandatory.unwrap_or(phone_mandatory);
            account.recording.notice = Some(
                notice
                    .validate(mandatory)
                    .map_err(|e| format!("{e} (account {:?})", account.name))?,
            );
        }
        Ok(accounts)
    }

    /// Every account valid, and no two with one name.
    pub fn validate_accounts(&self) -> Result<Vec<Account>, String> {
        let mut seen = std::collections::HashSet::new();
        let mut accounts = Vec::with_capacity(self.accounts.len());
        let several = self.accounts.len() > 1;
        for account in &self.accounts {
            // With several, the message says which (after the field, which stays first).
            let valid = account.validate().map_err(|error| {
                if several {
                    format!("{error} (account {:?})", account.name())
                } else {
                    error
                }
            })?;
            if !seen.insert(valid.name.clone()) {
                return Err(format!(
                    "account.name: two accounts are called {:?}; give each a name of its own",
                    valid.name
                ));
            }
            accounts.push(valid);
        }
        Ok(accounts)
    }
}

impl AccountSettings {
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// Its `name`, else its address as user@host (the URI as written when it does not parse).
    pub fn name(&self) -> String {
        if let Some(name) = self
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            return name.to_owned();
        }
        match Uri::parse(&self.uri) {
            Ok(uri) => match &uri.user {
                Some(user) => format!("{user}@{}", uri.host),
                None => uri.host.clone(),
            },
            Err(_) => self.uri.clone(),
        }
    }

    pub fn validate(&self) -> Result<Account, String> {
        let uri = Uri::parse(&self.uri).map_err(|e| format!("account.uri: {e}"))?;
        if !uri.is_sip() {
            return Err(format!(
                "account.uri: {:?} is not a sip: or sips: URI",
                self.uri
            ));
        }
        let mut aor = NameAddr::new(uri.clone());
        aor.display_name = self.display_name.clone();
        let parse_optional = |field: &str, value: &Option<String>| -> Result<Option<Uri>, String> {
            value
                .as_deref()
                .map(|v| {
                    let with_scheme =
                        if v.contains(':') && (v.starts_with("sip:") || v.starts_with("sips:")) {
                            v.to_owned()
                        } else {
                            format!("sip:{v}")
                        };
                    Uri::parse(&with_scheme).map_err(|e| format!("account.{field}: {e}"))
                })
                .transpose()
        };
        let registrar = parse_optional("registrar", &self.registrar)?;
        let outbound_proxy = parse_optional("outbound_proxy", &self.outbound_proxy)?;
        let transport = self
            .transport
            .as_deref()
            .map(|t| {
                Transport::from_token(t)
                    .ok_or_else(|| format!("account.transport: {t:?} is not udp, tcp or tls"))
            })
            .transpose()?;
        let auth_user = self
            .auth_user
            .clone()
            .or_else(|| uri.user.clone())
            .ok_or("account.auth_user: needed when the URI has no user part")?;
        let srtp = self
            .srtp
            .as_deref()
            .map(|p| {
                p.parse::<SrtpPolicy>()
                    .map_err(|_| format!("account.srtp: {p:?} is not off, optional or mandatory"))
            })
            .transpose()?;
        if let Some(notice) = &self.notice {
            notice.validate()?;
        }
        let expires = self.expires.unwrap_or(3600);
        if expires == 0 {
            return Err("account.expires: must be more than 0".into());
        }
        Ok(Account {
            name: self.name(),
            enabled: self.is_enabled(),
            aor,
            registrar,
            auth_user,
            password: self.password.clone(),
            transport,
            outbound_proxy,
            expires,
            tls_ca_file: self.tls_ca_file.clone(),
            tls_client_certificate: self.tls_client_certificate.clone(),
            tls_client_key: self.tls_client_key.clone(),
            srtp,
            record: self.record,
            recording: AccountRecording {
                auto: self.record,
                srs: parse_optional("srs", &self.srs)?,
                secondary: parse_optional("srs_secondary", &self.srs_secondary)?,
                mandatory: self
                    .record_policy
                    .as_deref()
                    .map(|policy| match policy.to_ascii_lowercase().as_str() {
                        "optional" => Ok(false),
                        "mandatory" => Ok(true),
                        _ => Err(format!(
                            "account.record_policy: {policy:?} is not optional or mandatory"
                        )),
                    })
                    .transpose()?,
                notice: None,
            },
            register_on_start: self.register_on_start.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_account() {
        let settings = Settings::parse(
            r#"
            [account]
            display_name = "Alice"
            uri = "sip:alice@127.0.0.1"
            registrar = "sip:127.0.0.1:5060"
            password = "alicepw"
            transport = "tcp"
            expires = 300
            "#,
        )
        .unwrap();
        let account = settings.account().cloned().unwrap().validate().unwrap();
        assert_eq!(account.auth_user, "alice");
        assert_eq!(account.transport, Some(Transport::Tcp));
        assert_eq!(account.registrar.unwrap().port, Some(5060));
        assert_eq!(account.aor.display_name.as_deref(), Some("Alice"));
    }

    #[test]
    fn bad_values_are_reported_with_their_field() {
        let err =
            Settings::parse("[account]\nuri = \"sip:a@b\"\ntransport = \"sctp\"\n").unwrap_err();
        assert!(err.contains("account.transport"), "{err}");
        let err = Settings::parse("[account]\nuri = \"mailto:a@b\"\n").unwrap_err();
        assert!(err.contains("account.uri"), "{err}");
        let err = Settings::parse("[account]\nuri = \"sip:a@b\"\ncolour = 1\n").unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn call_settings_default_and_override() {
        assert_eq!(Settings::parse("").unwrap().call.no_media_timeout, 30);
        let s = Settings::parse("[call]\nno_media_timeout = 0\n").unwrap();
        assert_eq!(s.call.no_media_timeout, 0);
    }

    #[test]
    fn media_settings_parse_and_reject_unknown_values() {
        let s = Settings::parse("[media]\ncodecs = [\"PCMA\", \"opus\"]\nsrtp = \"mandatory\"\n")
            .unwrap();
        assert_eq!(
            s.media.codecs().unwrap(),
            vec![Codec::Pcma, Codec::Opus { inband_fec: true }]
        );
        assert_eq!(s.media.srtp().unwrap(), SrtpPolicy::Mandatory);
        let err = Settings::parse("[media]\ncodecs = [\"g729\"]\n").unwrap_err();
        assert!(err.contains("media.codecs"), "{err}");
        let err = Settings::parse("[media]\nsrtp = \"sometimes\"\n").unwrap_err();
        assert!(err.contains("media.srtp"), "{err}");
    }

    #[test]
    fn settings_round_trip_through_an_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verbatim/config.toml");
        let mut settings = Settings::parse(
            "[account]\nuri = \"sip:a@b\"\npassword = \"pw\"\n[recording]\nauto = \"all\"\n",
        )
        .unwrap();
        settings.recording.srs = Some("sip:srs@127.0.0.1:5080;transport=tcp".into());
        settings.save(&path).unwrap();
        let back = Settings::load(&path).unwrap();
        assert_eq!(back, settings);
        assert_eq!(back.version, SETTINGS_VERSION);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = Settings::parse("version = 99\n").unwrap_err();
        assert!(err.contains("version"), "{err}");
    }

    #[test]
    fn numbers_and_names_complete_to_the_accounts_domain() {
        let domain = Some("example.com");
        let dial = |input: &str| dial_uri(input, domain).map(|u| u.to_string());
        assert_eq!(
            dial("+1 (555) 123-4567").unwrap(),
            "sip:+15551234567@example.com"
        );
        assert_eq!(
            dial("tel:+44.20.7946.0000").unwrap(),
            "sip:+442079460000@example.com"
        );
        assert_eq!(dial("*97").unwrap(), "sip:*97@example.com");
        assert_eq!(dial("bob").unwrap(), "sip:bob@example.com");
        assert_eq!(dial("bob@other.org").unwrap(), "sip:bob@other.org");
        assert_eq!(
            dial("sips:carol@example.net:5061").unwrap(),
            "sips:carol@example.net:5061"
        );
        assert!(dial("").is_err());
        assert!(dial("bob smith").unwrap_err().contains("neither"));
        assert!(dial("sip:").is_err());
        let without = dial_uri("1234", None).unwrap_err();
        assert!(without.contains("account"), "{without}");
        assert_eq!(
            dial_uri("bob@127.0.0.1:5070", None).unwrap().to_string(),
            "sip:bob@127.0.0.1:5070"
        );
    }

    #[test]
    fn registrar_without_scheme_is_accepted() {
        let s = Settings::parse("[account]\nuri = \"sip:a@b\"\nregistrar = \"127.0.0.1:5070\"\n")
            .unwrap();
        let account = s.account().cloned().unwrap().validate().unwrap();
        assert_eq!(account.registrar.unwrap().to_string(), "sip:127.0.0.1:5070");
    }

    const TWO_ACCOUNTS: &str = r#"
        [[account]]
        name = "work"
        uri = "sip:alice@work.example.com"
        registrar = "sip:work.example.com"
        transport = "tls"

        [[account]]
        name = "home"
        uri = "sip:alice@home.example.net"
        srtp = "mandatory"

        [[account]]
        uri = "sip:old@example.org"
        enabled = false
    "#;

    #[test]
    fn several_accounts_are_read_each_with_its_own_settings() {
        let settings = Settings::parse(TWO_ACCOUNTS).unwrap();
        let accounts = settings.validate_accounts().unwrap();
        let names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["work", "home", "old@example.org"]);
        assert_eq!(accounts[0].transport, Some(Transport::Tls));
        assert_eq!(accounts[1].srtp, Some(SrtpPolicy::Mandatory));
        assert!(accounts[0].enabled && accounts[1].enabled && !accounts[2].enabled);
        assert_eq!(
            settings.account().map(AccountSettings::name).as_deref(),
            Some("work")
        );
        assert_eq!(
            settings.account_named("home").unwrap().uri,
            "sip:alice@home.example.net"
        );
        let unknown = settings.account_named("shop").unwrap_err();
        assert!(unknown.contains("work, home, old@example.org"), "{unknown}");
    }

    #[test]
    fn the_old_single_account_is_read_and_written_back_as_a_list() {
        let old = "[account]\nuri = \"sip:alice@example.com\"\nregistrar = \"sip:example.com\"\n";
        let settings = Settings::parse(old).unwrap();
        assert_eq!(settings.accounts.len(), 1);
        let written = toml::to_string_pretty(&settings).unwrap();
        assert!(written.contains("[[account]]"), "{written}");
        assert!(!written.contains("\n[account]"), "{written}");
        assert_eq!(Settings::parse(&written).unwrap(), settings);
        let all_three = Settings::parse(TWO_ACCOUNTS).unwrap();
        let again = toml::to_string_pretty(&all_three).unwrap();
        assert_eq!(Settings::parse(&again).unwrap(), all_three);
    }

    #[test]
    fn accounts_with_one_name_or_a_bad_field_are_refused_with_the_reason() {
        let twice = format!("{TWO_ACCOUNTS}\n[[account]]\nname = \"home\"\nuri = \"sip:b@c\"\n");
        let error = Settings::parse(&twice).unwrap_err();
        assert!(
            error.contains("two accounts are called \"home\""),
            "{error}"
        );
        let unknown = "[[account]]\nuri = \"sip:a@b\"\nregistar = \"sip:b\"\n";
        let error = Settings::parse(unknown).unwrap_err();
        assert!(error.contains("registar"), "{error}");
        let error = Settings::parse("account = 3\n").unwrap_err();
        assert!(error.contains("[[account]]"), "{error}");
    }

    #[test]
    fn the_app_edits_the_default_account_and_leaves_the_others() {
        let mut settings = Settings::parse(TWO_ACCOUNTS).unwrap();
        let mut edited = settings.account().cloned().unwrap();
        edited.display_name = Some("Alice at work".into());
        settings.set_account(Some(edited));
        assert_eq!(settings.accounts.len(), 3);
        assert_eq!(
            settings.accounts[0].display_name.as_deref(),
            Some("Alice at work")
        );
        settings.set_account(None);
        assert_eq!(
            settings.account().map(AccountSettings::name).as_deref(),
            Some("home")
        );
        let mut empty = Settings::default();
        empty.set_account(settings.account_named("old@example.org").ok().cloned());
        assert_eq!(empty.accounts.len(), 1);
    }

    #[test]
    fn an_account_has_recording_settings_of_its_own() {
        let text = "[[account]]\nuri = \"sip:a@b\"\nrecord = true\nsrs = \"srs@rec.example;transport=tcp\"\n\
                    srs_secondary = \"sip:srs@rec2.example\"\nrecord_policy = \"Mandatory\"\n";
        let account = Settings::parse(text)
            .unwrap()
            .validate_accounts()
            .unwrap()
            .remove(0);
        assert_eq!(account.recording.auto, Some(true));
        assert_eq!(
            account.recording.srs.unwrap().to_string(),
            "sip:srs@rec.example;transport=tcp"
        );
        assert_eq!(account.recording.mandatory, Some(true));
        let bad = text.replace("Mandatory", "always");
        let error = Settings::parse(&bad).unwrap_err();
        assert!(error.starts_with("account.record_policy:"), "{error}");
    }

    /// `[account.notice]` over `[recording.notice]`, field by field; the administrator's
    /// fixed values over both; a mandatory account announces; bad values name the account.
    #[test]
    fn an_account_has_a_notice_of_its_own_over_the_phones() {
        let text = "[recording.notice]\ntone_hz = 700\nlocal_cues = false\n\n\
                    [[account]]\nname = \"desk\"\nuri = \"sip:a@b\"\n[account.notice]\ntone = true\ntone_hz = 900\n\
                    skip_for_record_aware = false\n\n\
                    [[account]]\nname = \"legal\"\nuri = \"sip:c@d\"\nrecord_policy = \"mandatory\"\n\n\
                    [[account]]\nname = \"plain\"\nuri = \"sip:e@f\"\n";
        let settings = Settings::parse(text).unwrap();
        let accounts = settings
            .accounts_for_calls(&AdminPolicy::default())
            .unwrap();
        let desk = accounts[0].recording.notice.clone().unwrap();
        let tone = desk.tone.unwrap();
        assert_eq!(tone.frequency_hz, 900, "its own");
        assert!(!desk.local_cues, "the phone's");
        assert!(!desk.skip_for_record_aware);
        assert!(desk.announcement.is_none());
        let legal = accounts[1].recording.notice.clone().unwrap();
        assert!(legal.tone.is_none(), "the phone's");
        assert!(
            legal.announcement.is_some(),
            "a mandatory account is told by the announcement too"
        );
        assert_eq!(accounts[2].recording.notice, None, "the phone's");
        // Written back as it was read.
        let again = Settings::parse(&toml::to_string(&settings).unwrap()).unwrap();
        assert_eq!(again.accounts, settings.accounts);

        let admin =
            AdminPolicy::parse("[recording.notice]\nskip_for_record_aware = true\n").unwrap();
        let desk = settings.accounts_for_calls(&admin).unwrap()[0]
            .recording
            .notice
            .clone()
            .unwrap();
        assert!(desk.skip_for_record_aware, "the administrator's");
        let admin = AdminPolicy::parse("[recording]\npolicy = \"optional\"\n").unwrap();
        let legal = settings.accounts_for_calls(&admin).unwrap()[1]
            .recording
            .notice
            .clone();
        assert!(
            legal.is_none_or(|n| n.announcement.is_none()),
            "the administrator's optional policy wins: no forced announcement"
        );

        let bad = text.replace("tone_hz = 900", "tone_hz = 9");
        let error = Settings::parse(&bad).unwrap_err();
        assert!(
            error.starts_with("account.notice.tone_hz:") && error.contains("\"desk\""),
            "{error}"
        );
        let unknown = text.replace("tone_hz = 900", "tone_hertz = 900");
        assert!(Settings::parse(&unknown).is_err());
    }

    /// A change to the rules for an account's calls needs no new registration; a change to
    /// how it registers does.
    #[test]
    fn only_what_registers_decides_whether_an_account_registers_again() {
        let account = |extra: &str| {
            Settings::parse(&format!(
                "[[account]]\nuri = \"sip:a@b\"\nregistrar = \"sip:b\"\n{extra}"
            ))
            .unwrap()
            .accounts_for_calls(&AdminPolicy::default())
            .unwrap()
            .remove(0)
        };
        let plain = account("");
        for rules in [
            "srtp = \"mandatory\"\n",
            "record = true\nrecord_policy = \"mandatory\"\n",
            "[account.notice]\ntone = true\n",
        ] {
            let changed = account(rules);
            assert_ne!(changed, plain);
            assert!(changed.same_registration(&plain), "{rules}");
        }
        assert!(!account("expires = 60\n").same_registration(&plain));
        assert!(!account("transport = \"tcp\"\n").same_registration(&plain));
    }

    #[test]
    fn an_incoming_call_is_matched_to_the_account_it_was_addressed_to() {
        let accounts = Settings::parse(TWO_ACCOUNTS)
            .unwrap()
            .validate_accounts()
            .unwrap();
        // The rule the engine matches INVITEs by, on these accounts' addresses.
        let aors: Vec<&Uri> = accounts.iter().map(|account| &account.aor.uri).collect();
        let account_called_by = |to: &str, request_uri: &str| {
            crate::sip::uri::which_is_called(&aors, to, request_uri).map(|at| &accounts[at])
        };
        let called = |to: &str| account_called_by(to, "").map(|a| a.name.clone());
        assert_eq!(
            called("<sip:alice@HOME.example.net>;tag=1").as_deref(),
            Some("home")
        );
        assert_eq!(
            called("\"Alice\" <sip:alice@work.example.com>").as_deref(),
            Some("work")
        );
        assert_eq!(
            called("sip:alice@work.example.com").as_deref(),
            Some("work")
        );
        assert_eq!(called("<sip:bob@work.example.com>"), None);
        assert_eq!(called("not a uri"), None);
        // Forwarded with someone else's To: the Request-URI's user (the Contact a
        // registration bound) decides when only one account has it.
        let forwarded = |request_uri: &str| {
            account_called_by("<sip:desk@pbx.example>", request_uri).map(|a| a.name.clone())
        };
        assert_eq!(
            forwarded("sip:old@192.0.2.7:5060").as_deref(),
            Some("old@example.org")
        );
        assert_eq!(
            forwarded("sip:alice@192.0.2.7:5060"),
            None,
            "two accounts are alice"
        );
        assert_eq!(forwarded("sip:192.0.2.7:5060"), None);
    }
}
