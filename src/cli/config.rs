//! What a command runs with: the settings file's account, call and recording sections, with
//! the command line's flags over them.

use core::time::Duration;

use super::Failure;
use super::media::{self, MediaArgs, RecordArgs};
use crate::driver::media::AudioFactory;
use crate::media::srtp::SrtpPolicy;
use crate::phone::RecordingPolicy;
use crate::sdp::Codec;
use crate::settings::{Account, AdminPolicy, Locked, Settings};
use crate::sip::auth::Credentials;
use crate::sip::uri::Uri;

/// The configuration's accounts (checked) and call settings.
pub(super) struct Loaded {
    /// The account calls go out on: the one asked for, else the first enabled one.
    pub(super) account: Option<Account>,
    /// Every enabled account, each with its password: `answer` takes calls on all of them.
    pub(super) accounts: Vec<Account>,
    pub(super) no_media_timeout: Option<Duration>,
    pub(super) keepalive_interval: Duration,
    pub(super) stun_server: Option<String>,
    pub(super) codecs: Vec<Codec>,
    pub(super) srtp: SrtpPolicy,
    pub(super) audio: Option<AudioFactory>,
    pub(super) ringer: Option<crate::driver::media::Ringer>,
    pub(super) card_clock: Option<crate::driver::media::CardClock>,
    pub(super) dtmf: Option<String>,
    pub(super) print_stats: bool,
    pub(super) devices: crate::audio::DeviceConfig,
    pub(super) record: Option<RecordPlan>,
    /// Recorders that may start recording a call themselves.
    pub(super) recorders_allowed: Vec<core::net::IpAddr>,
    pub(super) admission: crate::engine::AdmissionConfig,
    /// `[recording]` from the configuration file, with the administrator's policy over it.
    pub(super) recording: crate::settings::Recording,
    /// The administrator's recording policy: flags may not contradict it.
    pub(super) admin: AdminPolicy,
    /// Which recording settings the command line gave (they win over an account's own).
    pub(super) record_flags: RecordFlags,
}

/// The recording settings given on the command line.
#[derive(Clone, Debug, Default)]
pub(super) struct RecordFlags {
    record: bool,
    srs: bool,
    secondary: bool,
    policy: bool,
    /// `[recording] auto`, for an account that does not say.
    file_auto: bool,
    auto_locked: bool,
}

impl RecordFlags {
    /// An account's own recording settings, less those the command line gave.
    pub(super) fn leave_to_account(
        &self,
        account: &crate::settings::AccountRecording,
    ) -> crate::settings::AccountRecording {
        crate::settings::AccountRecording {
            // --record records every call; else the account says, else the file (an
            // administrator's fixed value is the plan's already).
            auto: (!self.record && !self.auto_locked)
                .then(|| account.auto.unwrap_or(self.file_auto)),
            srs: account.srs.clone().filter(|_| !self.srs),
            secondary: account.secondary.clone().filter(|_| !self.secondary),
            mandatory: account.mandatory.filter(|_| !self.policy),
            notice: account.notice.clone(),
        }
    }
}

/// Where and when to record, from the command line.
#[derive(Clone)]
pub(super) struct RecordPlan {
    pub(super) policy: RecordingPolicy,
    pub(super) pause_at: Option<u64>,
    pub(super) resume_at: Option<u64>,
}

/// The recording plan: the command line's flags over `[recording]` (and the account's
/// `record`), which also decide whether calls are recorded without `--record`.
fn recording_target(
    args: &RecordArgs,
    settings: &crate::settings::Recording,
    account: &crate::settings::AccountRecording,
    admin: &AdminPolicy,
) -> Result<Option<RecordPlan>, Failure> {
    if !args.record && !account.auto.unwrap_or(settings.auto) {
        return Ok(None);
    }
    let uri = |flag: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|s| Uri::parse(s).map_err(|e| Failure::usage(format!("{flag}: {e}"))))
            .transpose()
    };
    // Without any recorder the built-in one takes the recording (started when needed).
    // The command line's, else the account's own (unless the administrator fixed it), else
    // the file's.
    let free = |setting| !admin.is_locked(setting);
    let srs = uri("--srs", &args.srs)?
        .or_else(|| account.srs.clone().filter(|_| free(Locked::Srs)))
        .or_else(|| settings.srs.clone());
    let secondary = uri("--srs-secondary", &args.srs_secondary)?
        .or_else(|| {
            account
                .secondary
                .clone()
                .filter(|_| free(Locked::SrsSecondary))
        })
        .or_else(|| settings.srs_secondary.clone());
    let credentials = match &args.srs_user {
        Some(user) => {
            let password = std::env::var("VERBATIM_SRS_PASSWORD").map_err(|_| {
                Failure::usage("--srs-user needs the password in VERBATIM_SRS_PASSWORD")
            })?;
            Some(Credentials::new(user.clone(), password))
        }
        None => settings.credentials.clone(),
    };
    Ok(Some(RecordPlan {
        policy: RecordingPolicy {
            // Every call this command places or answers is recorded.
            auto: true,
            srs,
            secondary,
            mandatory: args.record_policy.map_or(
                account
                    .mandatory
                    .filter(|_| free(Locked::Policy))
                    .unwrap_or(settings.mandatory),
                |p| p == media::RecordPolicyArg::Mandatory,
            ),
            mode: match args.record_mode {
                Some(media::RecordModeArg::Separate) => crate::engine::RecordingMode::Separate,
                Some(media::RecordModeArg::Mixed) => crate::engine::RecordingMode::Mixed,
                None => settings.mode,
            },
            srtp: args.srs_srtp || settings.srtp,
            credentials,
            builtin: None,
            admin: admin.clone(),
        },
        pause_at: args.pause_at,
        resume_at: args.resume_at,
    }))
}

/// A flag that would undo what the administrator's policy fixes is refused, with the reason.
fn check_against_policy(
    args: &RecordArgs,
    recording: &crate::settings::Recording,
    admin: &AdminPolicy,
) -> Result<(), Failure> {
    let refuse = |flag: &str, setting: Locked| {
        Err(Failure::usage(format!(
            "{flag}: {}",
            admin.set_by_administrator(setting)
        )))
    };
    // The same recorder: the host (and scheme) in any case, the rest as written.
    let same_uri = |flag: &Option<String>, fixed: &Option<Uri>| {
        let given = flag.as_deref().and_then(|text| Uri::parse(text).ok());
        match (given, fixed) {
            (None, _) => true,
            (Some(given), Some(fixed)) => {
                given.scheme == fixed.scheme
                    && given.user == fixed.user
                    && given.host.eq_ignore_ascii_case(&fixed.host)
                    && given.port == fixed.port
                    && given.params == fixed.params
            }
            (Some(_), None) => false,
        }
    };
    // A flag that does not parse says so itself, not that it is locked.
    for (flag, value) in [
        ("--srs", &args.srs),
        ("--srs-secondary", &args.srs_secondary),
    ] {
        if let Some(text) = value {
            Uri::parse(text).map_err(|e| Failure::usage(format!("{flag}: {e}")))?;
        }
    }
    if admin.is_locked(Locked::Policy)
        && let Some(policy) = args.record_policy
        && (policy == media::RecordPolicyArg::Mandatory) != recording.mandatory
    {
        return refuse("--record-policy", Locked::Policy);
    }
    if admin.is_locked(Locked::Mode)
        && let Some(mode) = args.record_mode
        && (mode == media::RecordModeArg::Mixed)
            != (recording.mode == crate::engine::RecordingMode::Mixed)
    {
        return refuse("--record-mode", Locked::Mode);
    }
    if admin.is_locked(Locked::Srs) && !same_uri(&args.srs, &recording.srs) {
        return refuse("--srs", Locked::Srs);
    }
    if admin.is_locked(Locked::SrsSecondary)
        && !same_uri(&args.srs_secondary, &recording.srs_secondary)
    {
        return refuse("--srs-secondary", Locked::SrsSecondary);
    }
    if admin.is_locked(Locked::Srtp) && args.srs_srtp && !recording.srtp {
        return refuse("--srs-srtp", Locked::Srtp);
    }
    if admin.only_builtin_recorder() && !args.allow_recorder.is_empty() {
        return refuse("--allow-recorder", Locked::Srs);
    }
    if admin.makes_mandatory() && args.pause_at.is_some() {
        return Err(Failure::usage(format!(
            "--pause-at: a mandatory recording cannot be paused ({})",
            admin.set_by_administrator(Locked::Policy)
        )));
    }
    let mandatory = args.record_policy.map_or(recording.mandatory, |p| {
        p == media::RecordPolicyArg::Mandatory
    });
    if mandatory && args.pause_at.is_some() {
        return Err(Failure::usage(
            "--pause-at: a mandatory recording cannot be paused while the call lasts",
        ));
    }
    Ok(())
}

impl Loaded {
    /// Recording from the command line over the configuration file and the account. With
    /// `per_call`, calls come in for several accounts and each takes its own account's
    /// settings when answered ([`RecordFlags::leave_to_account`]); the plan then records
    /// when any account would.
    pub(super) fn apply_recording(
        &mut self,
        args: &RecordArgs,
        per_call: bool,
    ) -> Result<(), Failure> {
        check_against_policy(args, &self.recording, &self.admin)?;
        // The account's own settings do not undo what the administrator fixed.
        let auto_locked = self.admin.is_locked(Locked::Auto);
        let mut account = if per_call {
            let any_records = self.accounts.iter().any(|a| a.recording.auto == Some(true));
            crate::settings::AccountRecording {
                auto: any_records.then_some(true),
                ..Default::default()
            }
        } else {
            self.account
                .as_ref()
                .map(|a| a.recording.clone())
                .unwrap_or_default()
        };
        account.auto = account.auto.filter(|_| !auto_locked);
        self.record = recording_target(args, &self.recording, &account, &self.admin)?;
        self.record_flags = RecordFlags {
            record: args.record,
            srs: args.srs.is_some(),
            secondary: args.srs_secondary.is_some(),
            policy: args.record_policy.is_some(),
            file_auto: self.recording.auto,
            auto_locked,
        };
        self.recorders_allowed = args.allow_recorder.clone();
        self.recorders_allowed
            .extend(self.recording.allow_recorders.iter().copied());
        Ok(())
    }

    /// Command-line media flags override the configuration file.
    pub(super) fn apply(&mut self, media: &MediaArgs) -> Result<(), Failure> {
        if let Some(codecs) = media.codecs() {
            self.codecs = codecs;
        }
        if let Some(srtp) = media.srtp() {
            // The flag is for every call of this run, whichever account it is on.
            self.srtp = srtp;
            for account in self.accounts.iter_mut().chain(self.account.as_mut()) {
                account.srtp = Some(srtp);
            }
        }
        let setup = media.audio(&self.devices).map_err(Failure::usage)?;
        self.audio = setup.factory;
        self.ringer = setup.ringer;
        self.card_clock = setup.clock;
        self.dtmf = media.dtmf().map(str::to_owned);
        if let Some(digits) = &self.dtmf
            && let Some(bad) = digits
                .chars()
                .find(|c| crate::media::dtmf::event_code(*c).is_none())
        {
            return Err(Failure::usage(format!(
                "--dtmf: {bad:?} is not a DTMF digit (0-9, *, #, A-D)"
            )));
        }
        self.print_stats = media.stats;
        Ok(())
    }
}

/// The configuration file (or defaults) with the administrator's policy over it; `account`
/// names the account calls go out on.
pub(super) fn load(
    path: Option<&std::path::Path>,
    account: Option<&str>,
) -> Result<Loaded, Failure> {
    let mut settings =
        Settings::load_or_default(path).map_err(|e| Failure::usage(e.to_string()))?;
    let admin = AdminPolicy::load_system().map_err(Failure::usage)?;
    admin.apply(&mut settings.recording);
    let chosen = match account {
        Some(name) => {
            let named = settings.account_named(name).map_err(Failure::usage)?;
            if !named.is_enabled() {
                return Err(Failure::usage(format!(
                    "--account: {name:?} is switched off (enabled = false)"
                )));
            }
            Some(named.name())
        }
        None => settings
            .account()
            .map(crate::settings::AccountSettings::name),
    };
    let mut accounts: Vec<Account> = settings
        .accounts_for_calls(&admin)
        .map_err(Failure::usage)?
        .into_iter()
        .filter(|account| account.enabled)
        .collect();
    for account in accounts.iter_mut().filter(|a| a.password.is_none()) {
        // Saved from the app: the password is in the keyring. Without a keyring the
        // account goes on without one and a challenge will say so.
        // The keyring's client blocks on a runtime of its own, which cannot start on a
        // thread that runs this one's: it is asked from a thread of its own.
        let key = account.secret_key();
        let found = std::thread::scope(|scope| scope.spawn(|| crate::secrets::load(&key)).join());
        match found {
            Ok(Ok(password)) => account.password = password,
            Ok(Err(error)) => tracing::info!(%error, account = %account.name, "no password"),
            Err(_) => tracing::warn!(account = %account.name, "the keyring lookup failed"),
        }
    }
    let account = chosen.and_then(|name| accounts.iter().find(|a| a.name == name).cloned());
    let no_media_timeout = match settings.call.no_media_timeout {
        0 => None,
        secs => Some(Duration::from_secs(secs)),
    };
    let codecs = settings.media.codecs().map_err(Failure::usage)?;
    let srtp = account
        .as_ref()
        .and_then(|a| a.srtp)
        .map_or_else(|| settings.media.srtp().map_err(Failure::usage), Ok)?;
    Ok(Loaded {
        account,
        accounts,
        no_media_timeout,
        keepalive_interval: settings.call.keepalive().map_err(Failure::usage)?,
        stun_server: settings.call.stun_server.clone(),
        codecs,
        srtp,
        audio: None,
        ringer: None,
        card_clock: None,
        dtmf: None,
        print_stats: false,
        devices: settings.audio.devices(),
        record: None,
        recorders_allowed: Vec::new(),
        admission: crate::engine::AdmissionConfig::default(),
        recording: settings.recording.validate().map_err(Failure::usage)?,
        admin,
        record_flags: RecordFlags::default(),
    })
}
