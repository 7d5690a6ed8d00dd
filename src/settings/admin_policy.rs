//! The recording policy an administrator fixes for every user of the machine:
//! `/etc/verbatim/policy.toml` (or the file `VERBATIM_POLICY_FILE` names, for tests and
//! packaged deployments elsewhere). It has a `[recording]` table with any of the user
//! settings' recording keys; each key it gives is fixed: it wins over the user's settings,
//! the window shows it read-only, and the command line refuses a flag that contradicts it.
//! For trading desks and other places where recording is the law.
//!
//! A file that is there but cannot be read or understood stops the phone with the reason:
//! a recording policy silently ignored would be worse than none.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::RecordingSettings;

/// Where the policy is, unless `VERBATIM_POLICY_FILE` says otherwise.
pub const SYSTEM_POLICY_FILE: &str = "/etc/verbatim/policy.toml";

/// The administrator's policy (empty when there is no file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminPolicy {
    /// The file it came from, for messages.
    pub path: Option<PathBuf>,
    recording: LockedRecording,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    recording: LockedRecording,
}

/// The `[recording]` keys an administrator can fix; absent ones are the user's.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct LockedRecording {
    auto: Option<String>,
    srs: Option<String>,
    /// `true`: the built-in recorder, and no other (an absent `srs` leaves the choice open).
    builtin_recorder: Option<bool>,
    /// The built-in recorder's folder.
    folder: Option<PathBuf>,
    /// How long the built-in recorder keeps recordings.
    keep_days: Option<u32>,
    /// Whether the far end's recording preference (RFC 7866 `a=recordpref`) is followed.
    honour_preference: Option<bool>,
    srs_secondary: Option<String>,
    policy: Option<String>,
    mode: Option<String>,
    srtp: Option<bool>,
    encrypt: Option<bool>,
    extra_recipients: Option<Vec<String>>,
    #[serde(default)]
    notice: LockedNotice,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct LockedNotice {
    announcement: Option<bool>,
    tone: Option<bool>,
    tone_every_seconds: Option<u32>,
    skip_for_record_aware: Option<bool>,
}

/// A recording setting the policy can fix, by its name in the settings file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    Auto,
    Srs,
    Folder,
    KeepDays,
    HonourPreference,
    SrsSecondary,
    Policy,
    Mode,
    Srtp,
    Encrypt,
    ExtraRecipients,
    Announcement,
    Tone,
    ToneEvery,
    SkipForRecordAware,
}

impl Locked {
    /// Its key in the settings file.
    pub fn key(self) -> &'static str {
        match self {
            Locked::Auto => "recording.auto",
            Locked::Srs => "recording.srs",
            Locked::Folder => "recording.folder",
            Locked::KeepDays => "recording.keep_days",
            Locked::HonourPreference => "recording.honour_preference",
            Locked::SrsSecondary => "recording.srs_secondary",
            Locked::Policy => "recording.policy",
            Locked::Mode => "recording.mode",
            Locked::Srtp => "recording.srtp",
            Locked::Encrypt => "recording.encrypt",
            Locked::ExtraRecipients => "recording.extra_recipients",
            Locked::Announcement => "recording.notice.announcement",
            Locked::Tone => "recording.notice.tone",
            Locked::ToneEvery => "recording.notice.tone_every_seconds",
            Locked::SkipForRecordAware => "recording.notice.skip_for_record_aware",
        }
    }
}

impl AdminPolicy {
    /// The machine's policy: [`SYSTEM_POLICY_FILE`]. Only where there is none does
    /// `VERBATIM_POLICY_FILE` name another (tests, deployments that keep it elsewhere), so
    /// that no user can point the phone away from the administrator's file.
    pub fn load_system() -> Result<AdminPolicy, String> {
        let system = PathBuf::from(SYSTEM_POLICY_FILE);
        let path = match std::env::var_os("VERBATIM_POLICY_FILE") {
            Some(other) if !system.exists() => PathBuf::from(other),
            _ => system,
        };
        AdminPolicy::load(&path)
    }

    /// The policy in `path`; none when the file does not exist.
    pub fn load(path: &Path) -> Result<AdminPolicy, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(AdminPolicy::default());
            }
            Err(error) => {
                return Err(format!(
                    "the recording policy {} cannot be read: {error}",
                    path.display()
                ));
            }
        };
        let policy = AdminPolicy::parse(&text)
            .map_err(|e| format!("the recording policy {}: {e}", path.display()))?;
        Ok(AdminPolicy {
            path: Some(path.to_owned()),
            ..policy
        })
    }

    /// The policy a file's text sets; its values are checked as the settings' are.
    pub fn parse(text: &str) -> Result<AdminPolicy, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        match file.recording.builtin_recorder {
            Some(true)
                if file.recording.srs.is_some() || file.recording.srs_secondary.is_some() =>
            {
                return Err(
                    "recording: builtin_recorder = true and srs (or srs_secondary) name two \
                     recorders; keep one"
                        .into(),
                );
            }
            Some(false) => {
                return Err(
                    "recording.builtin_recorder: only true means something (the built-in \
                     recorder and no other); leave it out otherwise"
                        .into(),
                );
            }
            _ => {}
        }
        if let Some(folder) = &file.recording.folder
            && !folder.is_absolute()
        {
            return Err(format!(
                "recording.folder: {} is not an absolute path",
                folder.display()
            ));
        }
        let policy = AdminPolicy {
            path: None,
            recording: file.recording,
        };
        // Its values must make valid settings on their own, the warning tone's interval
        // even while the tone is off (a user who turns it on cannot change it).
        let mut check = RecordingSettings::default();
        policy.apply(&mut check);
        check.notice.tone |= policy.recording.notice.tone_every_seconds.is_some();
        check.validate()?;
        Ok(policy)
    }

    /// Whether the policy fixes anything at all.
    pub fn is_empty(&self) -> bool {
        self.locked().is_empty()
    }

    /// The settings it fixes.
    pub fn locked(&self) -> Vec<Locked> {
        let r = &self.recording;
        let n = &r.notice;
        [
            (r.auto.is_some(), Locked::Auto),
            (
                r.srs.is_some() || r.builtin_recorder == Some(true),
                Locked::Srs,
            ),
            (r.folder.is_some(), Locked::Folder),
            (r.keep_days.is_some(), Locked::KeepDays),
            (r.honour_preference.is_some(), Locked::HonourPreference),
            (
                r.srs_secondary.is_some() || r.builtin_recorder == Some(true),
                Locked::SrsSecondary,
            ),
            (r.policy.is_some(), Locked::Policy),
            (r.mode.is_some(), Locked::Mode),
            (r.srtp.is_some(), Locked::Srtp),
            (r.encrypt.is_some(), Locked::Encrypt),
            (r.extra_recipients.is_some(), Locked::ExtraRecipients),
            (n.announcement.is_some(), Locked::Announcement),
            (n.tone.is_some(), Locked::Tone),
            (n.tone_every_seconds.is_some(), Locked::ToneEvery),
            (
                n.skip_for_record_aware.is_some(),
                Locked::SkipForRecordAware,
            ),
        ]
        .into_iter()
        .filter_map(|(set, locked)| set.then_some(locked))
        .collect()
    }

    pub fn is_locked(&self, setting: Locked) -> bool {
        self.locked().contains(&setting)
    }

    /// The user's recording settings with the policy's values over them.
    pub fn apply(&self, settings: &mut RecordingSettings) {
        let r = &self.recording;
        let set = |value: &Option<String>, into: &mut String| {
            if let Some(value) = value {
                value.clone_into(into);
            }
        };
        set(&r.auto, &mut settings.auto);
        set(&r.policy, &mut settings.policy);
        set(&r.mode, &mut settings.mode);
        if let Some(srs) = &r.srs {
            settings.srs = Some(srs.clone());
        }
        if r.builtin_recorder == Some(true) {
            // The built-in recorder is the one with no URI; nothing to fail over to, and no
            // recorder of the network's may start recording a call either.
            settings.srs = None;
            settings.srs_secondary = None;
            settings.allow_recorders.clear();
        }
        if let Some(folder) = &r.folder {
            settings.folder = Some(folder.clone());
        }
        if let Some(days) = r.keep_days {
            settings.keep_days = Some(days);
        }
        if let Some(honour) = r.honour_preference {
            settings.honour_preference = honour;
        }
        if let Some(secondary) = &r.srs_secondary {
            settings.srs_secondary = Some(secondary.clone());
        }
        if let Some(srtp) = r.srtp {
            settings.srtp = srtp;
        }
        if let Some(encrypt) = r.encrypt {
            settings.encrypt = encrypt;
        }
        if let Some(recipients) = &r.extra_recipients {
            // The administrator's recipients always; the user may add more.
            for recipient in recipients {
                if !settings.extra_recipients.contains(recipient) {
                    settings.extra_recipients.push(recipient.clone());
                }
            }
        }
        self.apply_to_notice(&mut settings.notice);
    }

    /// A notice (the phone's, or an account's over it) with the policy's values over it.
    pub fn apply_to_notice(&self, notice: &mut super::recording::NoticeSettings) {
        let n = &self.recording.notice;
        for (value, into) in [
            (n.announcement, &mut notice.announcement),
            (n.tone, &mut notice.tone),
            (n.skip_for_record_aware, &mut notice.skip_for_record_aware),
        ] {
            if let Some(value) = value {
                *into = value;
            }
        }
        if let Some(every) = n.tone_every_seconds {
            notice.tone_every_seconds = every;
        }
    }

    /// What a message about a locked setting says.
    pub fn set_by_administrator(&self, setting: Locked) -> String {
        let origin = self.path.as_deref().map_or_else(
            || SYSTEM_POLICY_FILE.to_owned(),
            |p| p.display().to_string(),
        );
        format!("{} is set by your administrator ({origin})", setting.key())
    }

    /// Recording is mandatory by the policy: the user cannot pause or stop it.
    pub fn makes_mandatory(&self) -> bool {
        self.recording
            .policy
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("mandatory"))
    }

    /// Only the built-in recorder may record: none of the network's may start a recording.
    pub fn only_builtin_recorder(&self) -> bool {
        self.recording.builtin_recorder == Some(true)
    }

    /// Every call is recorded by the policy.
    pub fn records_every_call(&self) -> bool {
        self.recording
            .auto
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case("all"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRADING_DESK: &str = "[recording]\nauto = \"all\"\npolicy = \"mandatory\"\n\
        srs = \"sips:recorder@corp.example\"\nmode = \"separate\"\n\
        [recording.notice]\nannouncement = true\n";

    #[test]
    fn the_policys_values_win_over_the_users_and_only_those_are_locked() {
        let policy = AdminPolicy::parse(TRADING_DESK).unwrap();
        let mut users = RecordingSettings {
            auto: "none".into(),
            policy: "optional".into(),
            srs: Some("sip:home@example.com".into()),
            srtp: true,
            ..RecordingSettings::default()
        };
        users.notice.announcement = false;
        policy.apply(&mut users);
        assert_eq!(users.auto, "all");
        assert_eq!(users.policy, "mandatory");
        assert_eq!(users.srs.as_deref(), Some("sips:recorder@corp.example"));
        assert!(users.notice.announcement);
        assert!(users.srtp, "what the policy leaves alone stays the user's");
        assert_eq!(
            policy.locked(),
            vec![
                Locked::Auto,
                Locked::Srs,
                Locked::Policy,
                Locked::Mode,
                Locked::Announcement
            ]
        );
        assert!(policy.makes_mandatory() && policy.records_every_call());
    }

    #[test]
    fn a_broken_policy_is_an_error_and_a_missing_one_is_none() {
        assert!(
            AdminPolicy::parse("[recording.notice]\ntone_every_seconds = 0\n").is_err(),
            "an interval no tone could use, even with the tone off"
        );
        assert!(
            AdminPolicy::parse("[recording]\npolicy = \"sometimes\"\n")
                .unwrap_err()
                .contains("recording.policy")
        );
        assert!(AdminPolicy::parse("[recording]\nrecord = true\n").is_err());
        let dir = tempfile::tempdir().unwrap();
        let missing = AdminPolicy::load(&dir.path().join("policy.toml")).unwrap();
        assert!(missing.is_empty());
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[recording\n").unwrap();
        let error = AdminPolicy::load(&path).unwrap_err();
        assert!(error.contains("bad.toml"), "{error}");
    }

    #[test]
    fn the_built_in_recorder_its_folder_retention_and_the_far_ends_wish_can_be_fixed() {
        let policy = AdminPolicy::parse(
            "[recording]\nbuiltin_recorder = true\nfolder = \"/srv/recordings\"\n\
             keep_days = 90\nhonour_preference = false\n",
        )
        .unwrap();
        let mut users = RecordingSettings {
            srs: Some("sip:home@example.com".into()),
            srs_secondary: Some("sip:backup@example.com".into()),
            allow_recorders: vec!["192.0.2.9".into()],
            folder: Some("/home/me/calls".into()),
            keep_days: Some(7),
            honour_preference: true,
            ..RecordingSettings::default()
        };
        policy.apply(&mut users);
        assert_eq!(users.srs, None, "the built-in recorder");
        assert_eq!(users.srs_secondary, None);
        assert!(
            users.allow_recorders.is_empty(),
            "no recorder starts one either"
        );
        assert_eq!(users.folder.as_deref(), Some(Path::new("/srv/recordings")));
        assert_eq!(users.keep_days, Some(90));
        assert!(!users.honour_preference);
        assert_eq!(
            policy.locked(),
            vec![
                Locked::Srs,
                Locked::Folder,
                Locked::KeepDays,
                Locked::HonourPreference,
                Locked::SrsSecondary
            ]
        );
        let both = AdminPolicy::parse(
            "[recording]\nbuiltin_recorder = true\nsrs = \"sip:r@corp.example\"\n",
        );
        assert!(both.unwrap_err().contains("two recorders"));
        let secondary = AdminPolicy::parse(
            "[recording]\nbuiltin_recorder = true\nsrs_secondary = \"sip:r@corp.example\"\n",
        );
        assert!(secondary.unwrap_err().contains("two recorders"));
        assert!(AdminPolicy::parse("[recording]\nbuiltin_recorder = false\n").is_err());
        assert!(AdminPolicy::parse("[recording]\nfolder = \"calls\"\n").is_err());
        assert!(AdminPolicy::parse("[recording]\nkeep_days = 0\n").is_err());
    }

    #[test]
    fn the_administrators_recipients_stay_beside_the_users() {
        let policy = AdminPolicy {
            path: None,
            recording: LockedRecording {
                extra_recipients: Some(vec!["age1admin".into()]),
                ..LockedRecording::default()
            },
        };
        let mut users = RecordingSettings {
            extra_recipients: vec!["age1user".into()],
            ..RecordingSettings::default()
        };
        policy.apply(&mut users);
        assert_eq!(users.extra_recipients, vec!["age1user", "age1admin"]);
    }
}
