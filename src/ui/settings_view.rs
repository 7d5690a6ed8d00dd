//! The settings screen: the account and the recording, edited as text, checked with the same
//! rules as the file (each error shown under its field), then saved by the phone's thread.
//! The password goes to the keyring, never into the file.

use eframe::egui::{self, Color32, RichText};

use super::bridge::{AudioControl, Password, UiCommand};
use crate::audio::DeviceInfo;
use crate::settings::{AccountSettings, AdminPolicy, Locked, Settings};

const ERROR: Color32 = Color32::from_rgb(200, 60, 40);
const OK: Color32 = Color32::from_rgb(40, 150, 60);

/// The settings being edited, and the file they go to.
#[derive(Debug)]
pub(super) struct SettingsEditor {
    pub(super) path: std::path::PathBuf,
    /// The file as last loaded or saved; the fields below edit parts of it.
    base: Settings,
    /// What the administrator fixed: shown, not editable.
    admin: AdminPolicy,
    /// Every account in the file, in order (one blank one when there is none).
    accounts: Vec<AccountFields>,
    /// The account the form shows.
    selected: usize,
    srs: String,
    srs_secondary: String,
    auto: bool,
    mandatory: bool,
    mixed: bool,
    srtp: bool,
    honour: bool,
    /// `[recording.notice]`: what tells the other side by ear.
    announce: bool,
    warning_tone: bool,
    tone_every: String,
    skip_record_aware: bool,
    cues: bool,
    encrypt: bool,
    /// Where the built-in recorder writes (empty: the default).
    folder: String,
    /// TLS files towards the recorder, as typed paths.
    recorder_ca: String,
    recorder_certificate: String,
    recorder_key: String,
    /// The recorder's certificate fingerprint, pinned (empty: checked by its CA).
    recorder_pin: String,
    /// Why the last Save was refused; it starts with the field's name (`account.uri: ...`),
    /// so it is drawn under that field.
    error: Option<String>,
    /// Sent to be written, waiting for the phone to say it is.
    pending: Option<Settings>,
    pub(super) saved: bool,
    /// The last "Test recorder": still running, or what it found.
    check: Option<RecorderCheckView>,
    audio: AudioFields,
    /// `[window]` as edited.
    window: crate::settings::WindowSettings,
    /// The sound devices once listed (asked for when the Audio part first shows).
    devices: Option<Result<Vec<DeviceInfo>, String>>,
    devices_asked: bool,
}

/// The audio part as edited: devices by name (None: system default), volumes, and every
/// codec we have in preference order with whether it is offered.
#[derive(Debug)]
struct AudioFields {
    input: Option<String>,
    output: Option<String>,
    ringing: Option<String>,
    input_volume: u16,
    output_volume: u16,
    echo_cancellation: bool,
    noise_suppression: crate::audio::NoiseLevel,
    auto_gain: bool,
    codecs: Vec<(String, bool)>,
}

/// The codecs Verbatim has, by their settings names.
const ALL_CODECS: [&str; 4] = ["opus", "g722", "pcmu", "pcma"];

impl AudioFields {
    fn from(settings: &Settings) -> AudioFields {
        let audio = &settings.audio;
        let chosen: Vec<String> = settings
            .media
            .codecs
            .iter()
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let mut codecs: Vec<(String, bool)> = chosen.iter().map(|c| (c.clone(), true)).collect();
        for codec in ALL_CODECS {
            if !chosen.iter().any(|c| c == codec) {
                codecs.push((codec.to_owned(), false));
            }
        }
        AudioFields {
            input: audio.input.clone(),
            output: audio.output.clone(),
            ringing: audio.ringing.clone(),
            input_volume: audio.input_volume,
            output_volume: audio.output_volume,
            echo_cancellation: audio.echo_cancellation,
            noise_suppression: audio.noise_suppression,
            auto_gain: audio.auto_gain,
            codecs,
        }
    }

    fn apply(&self, settings: &mut Settings) {
        settings.audio.input = self.input.clone();
        settings.audio.output = self.output.clone();
        settings.audio.ringing = self.ringing.clone();
        settings.audio.input_volume = self.input_volume;
        settings.audio.output_volume = self.output_volume;
        settings.audio.echo_cancellation = self.echo_cancellation;
        settings.audio.noise_suppression = self.noise_suppression;
        settings.audio.auto_gain = self.auto_gain;
        settings.media.codecs = self
            .codecs
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| name.clone())
            .collect();
    }
}

#[derive(Debug)]
enum RecorderCheckView {
    Running,
    Done { works: bool, findings: Vec<String> },
}

/// The account's fields as typed.
#[derive(Debug, Default)]
struct AccountFields {
    /// The account as the file had it: fields the screen does not show are kept from it.
    base: Option<AccountSettings>,
    name: String,
    enabled: bool,
    display_name: String,
    uri: String,
    registrar: String,
    auth_user: String,
    /// Typed here and sent to the keyring on Save; empty leaves the stored one.
    password: String,
    /// "" (automatic), "udp", "tcp" or "tls".
    transport: String,
    outbound_proxy: String,
    /// "" (the media setting), "off", "optional" or "mandatory".
    srtp: String,
    register_on_start: bool,
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn path_text(value: &Option<std::path::PathBuf>) -> String {
    value
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn optional(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

impl AccountFields {
    /// One form per account in `settings`, or a blank one.
    fn all(settings: &Settings) -> Vec<AccountFields> {
        let mut all: Vec<AccountFields> = settings.accounts.iter().map(Self::from).collect();
        if all.is_empty() {
            all.push(AccountFields::blank());
        }
        all
    }

    fn blank() -> AccountFields {
        AccountFields {
            enabled: true,
            register_on_start: true,
            ..AccountFields::default()
        }
    }

    fn from(a: &AccountSettings) -> AccountFields {
        AccountFields {
            base: Some(a.clone()),
            name: text(&a.name),
            enabled: a.is_enabled(),
            display_name: text(&a.display_name),
            uri: a.uri.clone(),
            registrar: text(&a.registrar),
            auth_user: text(&a.auth_user),
            password: String::new(),
            transport: text(&a.transport),
            outbound_proxy: text(&a.outbound_proxy),
            srtp: text(&a.srtp),
            register_on_start: a.register_on_start.unwrap_or(true),
        }
    }

    /// What the picker calls it: its name, else its address, else its place in the list.
    fn title(&self, place: usize) -> String {
        match self.edited() {
            Some(account) => account.name(),
            None => format!("New account {}", place + 1),
        }
    }

    /// The `[[account]]` table these fields make, on top of what the file had (fields the
    /// screen does not show are kept); None when the URI is empty (no account).
    fn edited(&self) -> Option<AccountSettings> {
        let uri = optional(&self.uri)?;
        let mut account = self.base.clone().unwrap_or(AccountSettings {
            name: None,
            enabled: None,
            display_name: None,
            uri: String::new(),
            registrar: None,
            auth_user: None,
            password: None,
            transport: None,
            outbound_proxy: None,
            expires: None,
            tls_ca_file: None,
            tls_client_certificate: None,
            tls_client_key: None,
            srtp: None,
            record: None,
            srs: None,
            srs_secondary: None,
            record_policy: None,
            register_on_start: None,
            notice: None,
        });
        account.uri = uri;
        account.name = optional(&self.name);
        account.enabled = (!self.enabled).then_some(false);
        account.display_name = optional(&self.display_name);
        account.registrar = optional(&self.registrar);
        account.auth_user = optional(&self.auth_user);
        account.transport = optional(&self.transport);
        account.outbound_proxy = optional(&self.outbound_proxy);
        account.srtp = optional(&self.srtp);
        account.register_on_start = Some(self.register_on_start);
        Some(account)
    }
}

impl SettingsEditor {
    pub(super) fn new(path: std::path::PathBuf, base: Settings) -> SettingsEditor {
        let recording = &base.recording;
        SettingsEditor {
            accounts: AccountFields::all(&base),
            selected: 0,
            audio: AudioFields::from(&base),
            window: base.window.clone(),
            srs: text(&recording.srs),
            srs_secondary: text(&recording.srs_secondary),
            auto: recording.auto.eq_ignore_ascii_case("all"),
            mandatory: recording.policy.eq_ignore_ascii_case("mandatory"),
            mixed: recording.mode.eq_ignore_ascii_case("mixed"),
            srtp: recording.srtp,
            honour: recording.honour_preference,
            announce: recording.notice.announcement,
            warning_tone: recording.notice.tone,
            tone_every: recording.notice.tone_every_seconds.to_string(),
            skip_record_aware: recording.notice.skip_for_record_aware,
            cues: recording.notice.local_cues,
            encrypt: recording.encrypt,
            folder: path_text(&recording.folder),
            recorder_ca: path_text(&recording.tls_ca_file),
            recorder_certificate: path_text(&recording.tls_client_certificate),
            recorder_key: path_text(&recording.tls_client_key),
            recorder_pin: text(&recording.tls_certificate_sha256),
            path,
            base,
            admin: AdminPolicy::default(),
            error: None,
            pending: None,
            saved: false,
            check: None,
            devices: None,
            devices_asked: false,
        }
    }

    /// What the administrator's policy fixes: shown with its values, not editable. Called
    /// right after [`SettingsEditor::new`]; the user's own file stays the base.
    pub(super) fn locked_by(&mut self, admin: AdminPolicy) {
        let users = self.base.clone();
        let mut shown = users.clone();
        admin.apply(&mut shown.recording);
        *self = SettingsEditor {
            base: users,
            admin,
            ..SettingsEditor::new(self.path.clone(), shown)
        };
    }

    /// The sound devices the phone listed.
    pub(super) fn on_devices(&mut self, devices: Result<Vec<DeviceInfo>, String>) {
        self.devices = Some(devices);
    }

    /// The phone's answer to "Test recorder".
    pub(super) fn on_recorder_checked(&mut self, works: bool, findings: Vec<String>) {
        self.check = Some(RecorderCheckView::Done { works, findings });
    }

    /// The whole file with the edited parts, or why it cannot be.
    fn edited(&self) -> Result<Settings, String> {
        if self.emptied_account().is_some() {
            return Err("account.uri: empty; to delete the account, use Remove account".to_owned());
        }
        let mut settings = self.base.clone();
        settings.accounts = self
            .edited_accounts()
            .into_iter()
            .map(|(_, account)| account)
            .collect();
        settings.validate_accounts()?;
        self.audio.apply(&mut settings);
        settings.window = self.window.clone();
        if settings.media.codecs.is_empty() {
            return Err("media.codecs: offer at least one codec".into());
        }
        settings.media.codecs()?;
        settings.audio.validate()?;
        let recording = &mut settings.recording;
        recording.srs = optional(&self.srs);
        recording.srs_secondary = optional(&self.srs_secondary);
        recording.auto = if self.auto { "all" } else { "none" }.into();
        recording.policy = if self.mandatory {
            "mandatory"
        } else {
            "optional"
        }
        .into();
        recording.mode = if self.mixed { "mixed" } else { "separate" }.into();
        recording.srtp = self.srtp;
        recording.honour_preference = self.honour;
        recording.notice.announcement = self.announce;
        recording.notice.tone = self.warning_tone;
        recording.notice.tone_every_seconds = self.tone_every.trim().parse().map_err(|_| {
            format!(
                "recording.notice.tone_every_seconds: {:?} is not a number of seconds",
                self.tone_every
            )
        })?;
        recording.notice.skip_for_record_aware = self.skip_record_aware;
        recording.notice.local_cues = self.cues;
        recording.folder = optional(&self.folder).map(Into::into);
        recording.encrypt = self.encrypt;
        recording.tls_ca_file = optional(&self.recorder_ca).map(Into::into);
        recording.tls_client_certificate = optional(&self.recorder_certificate).map(Into::into);
        recording.tls_client_key = optional(&self.recorder_key).map(Into::into);
        recording.tls_certificate_sha256 = optional(&self.recorder_pin);
        // The announcement files are read now, so a bad one is refused here, not at the next
        // call: the phone's, and each account's own.
        recording.validate()?.notice.load()?;
        // What the administrator fixed is shown, not saved: the file keeps the user's own.
        self.keep_users_own(&mut settings.recording);
        for account in settings.accounts_for_calls(&self.admin)? {
            if let Some(notice) = &account.recording.notice {
                notice
                    .load()
                    .map_err(|e| format!("{e} (account {:?})", account.name))?;
            }
        }
        Ok(settings)
    }

    /// The user's own values of the settings the administrator fixed, from the file.
    fn keep_users_own(&self, recording: &mut crate::settings::RecordingSettings) {
        let own = &self.base.recording;
        for setting in self.admin.locked() {
            match setting {
                Locked::Auto => recording.auto.clone_from(&own.auto),
                Locked::Srs => recording.srs.clone_from(&own.srs),
                Locked::Folder => recording.folder.clone_from(&own.folder),
                Locked::KeepDays => recording.keep_days = own.keep_days,
                Locked::HonourPreference => recording.honour_preference = own.honour_preference,
                Locked::SrsSecondary => recording.srs_secondary.clone_from(&own.srs_secondary),
                Locked::Policy => recording.policy.clone_from(&own.policy),
                Locked::Mode => recording.mode.clone_from(&own.mode),
                Locked::Srtp => recording.srtp = own.srtp,
                Locked::Encrypt => recording.encrypt = own.encrypt,
                Locked::ExtraRecipients => {
                    recording.extra_recipients.clone_from(&own.extra_recipients);
                }
                Locked::Announcement => recording.notice.announcement = own.notice.announcement,
                Locked::Tone => recording.notice.tone = own.notice.tone,
                Locked::ToneEvery => {
                    recording.notice.tone_every_seconds = own.notice.tone_every_seconds;
                }
                Locked::SkipForRecordAware => {
                    recording.notice.skip_for_record_aware = own.notice.skip_for_record_aware;
                }
            }
        }
    }

    /// The phone wrote the file.
    pub(super) fn on_saved(&mut self) {
        if let Some(saved) = self.pending.take() {
            self.accounts = AccountFields::all(&saved);
            self.selected = self.selected.min(self.accounts.len() - 1);
            self.base = saved;
            self.saved = true;
        }
    }

    /// A form whose stored account lost its address: removing is the Remove button's job,
    /// not an emptied field's (which would drop settings the form does not show).
    fn emptied_account(&self) -> Option<usize> {
        self.accounts
            .iter()
            .position(|fields| fields.base.is_some() && optional(&fields.uri).is_none())
    }

    /// The form an error is about: the first whose account does not pass its checks, or the
    /// second of two with one name.
    fn form_in_error(&self) -> Option<usize> {
        let edited = self.edited_accounts();
        if let Some((at, _)) = edited.iter().find(|(_, a)| a.validate().is_err()) {
            return Some(*at);
        }
        edited.iter().enumerate().find_map(|(n, (at, account))| {
            let name = account.name();
            edited
                .iter()
                .take(n)
                .any(|(_, earlier)| earlier.name() == name)
                .then_some(*at)
        })
    }

    /// The accounts the forms make, each with the form it came from (blank forms make none).
    fn edited_accounts(&self) -> Vec<(usize, AccountSettings)> {
        self.accounts
            .iter()
            .enumerate()
            .filter_map(|(at, fields)| fields.edited().map(|account| (at, account)))
            .collect()
    }

    /// Draws the screen; returns what the phone must do (write the settings, list the
    /// devices, test the recorder).
    pub(super) fn show(
        &mut self,
        ui: &mut egui::Ui,
        audio: Option<&AudioControl>,
    ) -> Vec<UiCommand> {
        let mut commands = Vec::new();
        let mut changed = false;
        ui.label(RichText::new("Accounts").strong());
        changed |= self.account_list(ui);
        let error = self.error.clone();
        let Some(fields) = self.accounts.get_mut(self.selected) else {
            return commands;
        };
        let stored = fields.base.is_some();
        changed |= field(
            ui,
            "Account name",
            &mut fields.name,
            "work (empty: its address)",
            error_for(&error, "account.name"),
        );
        changed |= ui
            .checkbox(&mut fields.enabled, "Enabled (registers and takes calls)")
            .changed();
        changed |= field(ui, "Display name", &mut fields.display_name, "Alice", None);
        changed |= field(
            ui,
            "SIP address",
            &mut fields.uri,
            "sip:alice@example.com (empty: no account)",
            error_for(&error, "account.uri"),
        );
        changed |= field(
            ui,
            "Registrar",
            &mut fields.registrar,
            "sip:example.com (empty: do not register)",
            error_for(&error, "account.registrar"),
        );
        changed |= field(
            ui,
            "Auth user",
            &mut fields.auth_user,
            "the SIP address's user",
            error_for(&error, "account.auth_user"),
        );
        ui.horizontal(|ui| {
            let label = ui.label("Password");
            let hint = if stored {
                "unchanged (kept in the keyring)"
            } else {
                "kept in the keyring"
            };
            changed |= ui
                .add(
                    egui::TextEdit::singleline(&mut fields.password)
                        .password(true)
                        .hint_text(hint),
                )
                .labelled_by(label.id)
                .changed();
        });
        changed |= choice(
            ui,
            "Transport",
            &mut fields.transport,
            &[
                ("", "Automatic"),
                ("udp", "UDP"),
                ("tcp", "TCP"),
                ("tls", "TLS"),
            ],
        );
        changed |= field(
            ui,
            "Outbound proxy",
            &mut fields.outbound_proxy,
            "sip:proxy.example.com (optional)",
            error_for(&error, "account.outbound_proxy"),
        );
        changed |= choice(
            ui,
            "Call encryption (SRTP)",
            &mut fields.srtp,
            &[
                ("", "As in media settings"),
                ("off", "Off"),
                ("optional", "Optional"),
                ("mandatory", "Mandatory"),
            ],
        );
        changed |= ui
            .checkbox(&mut fields.register_on_start, "Register on start")
            .changed();

        ui.add_space(6.0);
        ui.label(RichText::new("Recording").strong());
        changed |= locked_ui(ui, &self.admin, Locked::Srs, |ui| {
            field(
                ui,
                "Recorder URI",
                &mut self.srs,
                "empty: the built-in recorder",
                error_for(&error, "recording.srs:"),
            )
        });
        let default_folder = crate::settings::default_recordings_folder()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        changed |= locked_ui(ui, &self.admin, Locked::Folder, |ui| {
            field(
                ui,
                "Built-in recorder folder",
                &mut self.folder,
                &format!("empty: {default_folder}"),
                error_for(&error, "recording.folder"),
            )
        });
        changed |= locked_ui(ui, &self.admin, Locked::Encrypt, |ui| {
            ui.checkbox(
                &mut self.encrypt,
                "Encrypt stored recordings (the key stays in the system keyring)",
            )
            .changed()
        });
        if !self.encrypt {
            ui.colored_label(
                ERROR,
                "Recordings will be stored as plain files: anyone who can read the folder \
                 can play them",
            );
        }
        changed |= locked_ui(ui, &self.admin, Locked::SrsSecondary, |ui| {
            field(
                ui,
                "Secondary recorder URI",
                &mut self.srs_secondary,
                "tried when the first fails (optional)",
                error_for(&error, "recording.srs_secondary"),
            )
        });
        changed |= field(
            ui,
            "Recorder CA file",
            &mut self.recorder_ca,
            "PEM; empty: the system's roots",
            error_for(&error, "recording.tls_ca_file"),
        );
        changed |= field(
            ui,
            "Recorder client certificate",
            &mut self.recorder_certificate,
            "PEM, for mutual TLS (optional)",
            error_for(&error, "recording.tls_client_certificate"),
        );
        changed |= field(
            ui,
            "Recorder client key",
            &mut self.recorder_key,
            "PEM, with the certificate",
            error_for(&error, "recording.tls_client_key"),
        );
        changed |= field(
            ui,
            "Recorder certificate SHA-256",
            &mut self.recorder_pin,
            "AB:CD:…, pins a self-signed certificate; empty: checked by its CA",
            error_for(&error, "recording.tls_certificate_sha256"),
        );
        ui.label(
            RichText::new(
                "The folder, encryption and the TLS settings are used from the next start; sips: or \
                 ;transport=tls in the URI selects TLS",
            )
            .small(),
        );
        ui.horizontal(|ui| {
            let running = matches!(self.check, Some(RecorderCheckView::Running));
            if ui
                .add_enabled(!running, egui::Button::new("Test recorder"))
                .on_hover_text(
                    "Asks the recorder OPTIONS, then opens and ends a short test recording \
                     session (no audio)",
                )
                .clicked()
            {
                self.check = Some(RecorderCheckView::Running);
                commands.push(UiCommand::CheckRecorder(self.srs.trim().to_owned()));
            }
            if running {
                ui.label("Testing…");
            }
        });
        if let Some(RecorderCheckView::Done { works, findings }) = &self.check {
            let (colour, verdict) = if *works {
                (OK, "The recorder works")
            } else {
                (ERROR, "The recorder does not take recordings")
            };
            ui.colored_label(colour, verdict);
            for finding in findings {
                ui.label(RichText::new(finding).small());
            }
        }
        changed |= locked_ui(ui, &self.admin, Locked::Auto, |ui| {
            ui.checkbox(&mut self.auto, "Record every call").changed()
        });
        changed |= locked_ui(ui, &self.admin, Locked::Policy, |ui| {
            ui.checkbox(&mut self.mandatory, "Recording is mandatory")
                .changed()
        });
        changed |= locked_ui(ui, &self.admin, Locked::Mode, |ui| {
            ui.checkbox(&mut self.mixed, "Mix both voices into one stream")
                .changed()
        });
        changed |= locked_ui(ui, &self.admin, Locked::Srtp, |ui| {
            ui.checkbox(&mut self.srtp, "Encrypt the recording's media (SRTP)")
                .changed()
        });
        changed |= locked_ui(ui, &self.admin, Locked::HonourPreference, |ui| {
            ui.checkbox(
                &mut self.honour,
                "Honour the other side's wish not to be recorded",
            )
            .changed()
        });
        ui.add_space(6.0);
        ui.label(RichText::new("Telling the other side").strong());
        changed |= locked_ui(ui, &self.admin, Locked::Announcement, |ui| {
            ui.checkbox(
                &mut self.announce,
                "Announce \"This call is being recorded\" when recording starts",
            )
            .changed()
        });
        ui.horizontal(|ui| {
            changed |= locked_ui(ui, &self.admin, Locked::Tone, |ui| {
                ui.checkbox(&mut self.warning_tone, "Warning tone every")
                    .changed()
            });
            changed |= locked_ui(ui, &self.admin, Locked::ToneEvery, |ui| {
                ui.add(
                    egui::TextEdit::singleline(&mut self.tone_every)
                        .desired_width(40.0)
                        .id_salt("tone_every"),
                )
                .labelled_by(ui.label("seconds").id)
                .changed()
            });
        });
        changed |= locked_ui(ui, &self.admin, Locked::SkipForRecordAware, |ui| {
            ui.checkbox(
                &mut self.skip_record_aware,
                "Not for phones that show recording themselves",
            )
            .changed()
        });
        changed |= ui
            .checkbox(
                &mut self.cues,
                "Beep for me when recording starts, pauses or fails",
            )
            .changed();
        ui.add_space(6.0);
        ui.label(RichText::new("Audio").strong());
        changed |= self.audio_part(ui, audio, &mut commands);
        ui.add_space(6.0);
        ui.label(RichText::new("Window").strong());
        changed |= self.window_part(ui);
        if changed {
            self.saved = false;
            self.error = None;
        }
        if let Some(error) = &self.error
            && !error.starts_with("account.")
            && !error.starts_with("recording.srs")
            && !error.starts_with("recording.tls")
            && !error.starts_with("recording.folder")
            && !error.starts_with("media.codecs")
            && !error.starts_with("audio.")
        {
            ui.colored_label(ERROR, error);
        }
        ui.horizontal(|ui| {
            if ui.button("Save settings").clicked() {
                match self.edited() {
                    Ok(settings) => {
                        self.error = None;
                        self.pending = Some(settings.clone());
                        let mut passwords = Vec::new();
                        for (at, account) in self.edited_accounts() {
                            if let Some(fields) = self.accounts.get_mut(at)
                                && !fields.password.is_empty()
                            {
                                let typed = core::mem::take(&mut fields.password);
                                passwords.push((account.name(), Password(typed)));
                            }
                        }
                        let start_at_login = (settings.window.start_at_login
                            || self.base.window.start_at_login)
                            .then_some(settings.window.start_at_login);
                        commands.push(UiCommand::SaveSettings {
                            path: self.path.clone(),
                            settings: Box::new(settings),
                            passwords,
                            start_at_login,
                        });
                    }
                    Err(error) => {
                        // The form shown is the one the error is about.
                        if let Some(at) = self.emptied_account().or_else(|| self.form_in_error()) {
                            self.selected = at;
                        }
                        self.error = Some(error);
                    }
                }
            }
            if self.saved {
                ui.label(format!("Saved to {}", self.path.display()));
            }
        });
        commands
    }

    /// The saved `[window]` settings (what the window does when it is closed).
    pub(super) fn window(&self) -> &crate::settings::WindowSettings {
        &self.base.window
    }

    /// The tray, closing into it, starting hidden and at login; true when something changed.
    fn window_part(&mut self, ui: &mut egui::Ui) -> bool {
        let window = &mut self.window;
        let mut changed = ui
            .checkbox(
                &mut window.tray,
                "Tray icon (shows recording, reopens the window)",
            )
            .changed();
        ui.add_enabled_ui(window.tray, |ui| {
            changed |= ui
                .checkbox(
                    &mut window.close_to_tray,
                    "Closing the window keeps Verbatim running in the tray",
                )
                .changed();
            changed |= ui
                .checkbox(&mut window.start_hidden, "Start hidden in the tray")
                .changed();
        });
        changed |= ui
            .checkbox(&mut window.start_at_login, "Start at login")
            .changed();
        ui.label(
            RichText::new("The tray and starting hidden take effect at the next start").small(),
        );
        changed
    }

    /// Which account the form shows, and adding or removing one; true when the list changed.
    fn account_list(&mut self, ui: &mut egui::Ui) -> bool {
        let mut changed = false;
        ui.horizontal(|ui| {
            let titles: Vec<String> = self
                .accounts
                .iter()
                .enumerate()
                .map(|(at, fields)| fields.title(at))
                .collect();
            let label = ui.label("Account");
            let shown = titles.get(self.selected).cloned().unwrap_or_default();
            egui::ComboBox::from_id_salt("edited account")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    for (at, title) in titles.iter().enumerate() {
                        ui.selectable_value(&mut self.selected, at, title);
                    }
                })
                .response
                .labelled_by(label.id);
            if ui.button("Add account").clicked() {
                self.accounts.push(AccountFields::blank());
                self.selected = self.accounts.len() - 1;
                changed = true;
            }
            let removable = self.accounts.len() > 1
                || self
                    .accounts
                    .first()
                    .is_some_and(|only| only.base.is_some());
            if ui
                .add_enabled(removable, egui::Button::new("Remove account"))
                .clicked()
            {
                self.accounts.remove(self.selected);
                if self.accounts.is_empty() {
                    self.accounts.push(AccountFields::blank());
                }
                self.selected = self.selected.min(self.accounts.len() - 1);
                changed = true;
            }
        });
        changed
    }

    /// Devices, the microphone's level, volumes and codec order; true when something changed.
    fn audio_part(
        &mut self,
        ui: &mut egui::Ui,
        control: Option<&AudioControl>,
        commands: &mut Vec<UiCommand>,
    ) -> bool {
        let mut changed = false;
        if !self.devices_asked {
            self.devices_asked = true;
            commands.push(UiCommand::ListDevices);
        }
        let devices: Vec<DeviceInfo> = match &self.devices {
            Some(Ok(devices)) => devices.clone(),
            Some(Err(error)) => {
                ui.colored_label(ERROR, error);
                Vec::new()
            }
            None => Vec::new(),
        };
        let inputs: Vec<&DeviceInfo> = devices.iter().filter(|d| d.is_input).collect();
        let outputs: Vec<&DeviceInfo> = devices.iter().filter(|d| d.is_output).collect();
        changed |= device_choice(ui, "Microphone", &mut self.audio.input, &inputs);
        changed |= device_choice(ui, "Speaker", &mut self.audio.output, &outputs);
        changed |= device_choice(ui, "Ringer", &mut self.audio.ringing, &outputs);
        match control.and_then(AudioControl::microphone_level) {
            Some(level) => {
                ui.horizontal(|ui| {
                    ui.label("Microphone level");
                    ui.add(
                        egui::ProgressBar::new(f32::from(level) / 1000.0)
                            .desired_width(160.0)
                            .text(format!("{}%", level / 10)),
                    );
                });
                // The meter moves with the voice while this part is on screen.
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(100));
            }
            None => {
                ui.label(RichText::new("No microphone in use: calls are silent").small());
            }
        }
        let max = crate::audio::MAX_VOLUME_PERCENT;
        let volume_changed = [
            ("Microphone volume", &mut self.audio.input_volume),
            ("Speaker volume", &mut self.audio.output_volume),
        ]
        .into_iter()
        .map(|(name, value)| {
            ui.add(egui::Slider::new(value, 0..=max).suffix(" %").text(name))
                .changed()
        })
        .fold(false, |any, one| any | one);
        if volume_changed && let Some(control) = control {
            // Heard at once; kept with Save.
            control
                .volumes
                .set(self.audio.input_volume, self.audio.output_volume);
        }
        changed |= volume_changed;
        changed |= ui
            .checkbox(&mut self.audio.echo_cancellation, "Echo cancellation")
            .on_hover_text("The other side does not hear itself from your speakers")
            .changed();
        ui.horizontal(|ui| {
            let label = ui.label("Noise suppression");
            egui::ComboBox::from_id_salt("noise_suppression")
                .selected_text(self.audio.noise_suppression.label())
                .show_ui(ui, |ui| {
                    for level in crate::audio::NoiseLevel::ALL {
                        changed |= ui
                            .selectable_value(
                                &mut self.audio.noise_suppression,
                                level,
                                level.label(),
                            )
                            .changed();
                    }
                })
                .response
                .labelled_by(label.id);
        });
        changed |= ui
            .checkbox(&mut self.audio.auto_gain, "Automatic gain")
            .on_hover_text("Keeps your voice at a steady level")
            .changed();
        ui.label("Codecs, best first");
        let count = self.audio.codecs.len();
        let mut swap = None;
        for (index, (name, on)) in self.audio.codecs.iter_mut().enumerate() {
            ui.horizontal(|ui| {
                changed |= ui.checkbox(on, name.to_uppercase()).changed();
                let upper = name.to_uppercase();
                if move_button(ui, "Up", index > 0, &format!("Move {upper} up")) {
                    swap = Some(index - 1);
                }
                if move_button(ui, "Down", index + 1 < count, &format!("Move {upper} down")) {
                    swap = Some(index);
                }
            });
        }
        if let Some(first) = swap {
            self.audio.codecs.swap(first, first + 1);
            changed = true;
        }
        if let Some(error) =
            error_for(&self.error, "media.codecs").or_else(|| error_for(&self.error, "audio."))
        {
            ui.colored_label(ERROR, error);
        }
        changed
    }
}

/// The error, when it is about the field named by `prefix`.
fn error_for<'a>(error: &'a Option<String>, prefix: &str) -> Option<&'a str> {
    error.as_deref().filter(|e| e.starts_with(prefix))
}

/// A labelled one-line text field with its error under it; true when it changed.
/// A setting the administrator may have fixed: drawn disabled, and said so, when locked.
fn locked_ui(
    ui: &mut egui::Ui,
    admin: &AdminPolicy,
    setting: Locked,
    add: impl FnOnce(&mut egui::Ui) -> bool,
) -> bool {
    let locked = admin.is_locked(setting);
    let changed = ui.add_enabled_ui(!locked, add).inner;
    if locked {
        ui.label(RichText::new("Set by your administrator").small().italics());
    }
    changed && !locked
}

fn field(
    ui: &mut egui::Ui,
    name: &str,
    value: &mut String,
    hint: &str,
    error: Option<&str>,
) -> bool {
    let changed = ui
        .horizontal(|ui| {
            let label = ui.label(name);
            ui.add(egui::TextEdit::singleline(value).hint_text(hint))
                .labelled_by(label.id)
                .changed()
        })
        .inner;
    if let Some(error) = error {
        ui.colored_label(ERROR, error);
    }
    changed
}

/// A small button whose screen-reader label says what it moves; true when clicked.
fn move_button(ui: &mut egui::Ui, text: &str, enabled: bool, label: &str) -> bool {
    let response = ui.add_enabled(enabled, egui::Button::new(text));
    response
        .widget_info(|| egui::WidgetInfo::labeled(egui::accesskit::Role::Button, enabled, label));
    response.on_hover_text(label).clicked()
}

/// A labelled drop-down over (stored value, shown name) pairs; true when it changed.
fn choice(ui: &mut egui::Ui, name: &str, value: &mut String, options: &[(&str, &str)]) -> bool {
    let mut chosen = options
        .iter()
        .find(|(v, _)| v.eq_ignore_ascii_case(value))
        .map_or_else(|| value.clone(), |(v, _)| (*v).to_owned());
    let options: Vec<(String, String)> = options
        .iter()
        .map(|(v, shown)| ((*v).to_owned(), (*shown).to_owned()))
        .collect();
    let changed = combo(ui, name, &mut chosen, &options, value.clone());
    if changed {
        *value = chosen;
    }
    changed
}

/// A labelled drop-down of devices by description, "System default" first; true when the
/// choice changed. A chosen device that is not plugged in stays shown, marked so.
fn device_choice(
    ui: &mut egui::Ui,
    name: &str,
    chosen: &mut Option<String>,
    devices: &[&DeviceInfo],
) -> bool {
    let mut options = vec![(None, "System default".to_owned())];
    options.extend(
        devices
            .iter()
            .map(|d| (Some(d.name.clone()), d.description.clone())),
    );
    let missing = format!("{} (not found)", chosen.as_deref().unwrap_or_default());
    combo(ui, name, chosen, &options, missing)
}

/// A labelled drop-down; `unlisted` is shown when the value is none of the options.
fn combo<T: Clone + PartialEq>(
    ui: &mut egui::Ui,
    name: &str,
    value: &mut T,
    options: &[(T, String)],
    unlisted: String,
) -> bool {
    let shown = options
        .iter()
        .find(|(v, _)| v == value)
        .map_or(unlisted, |(_, shown)| shown.clone());
    let mut changed = false;
    ui.horizontal(|ui| {
        let label = ui.label(name);
        egui::ComboBox::from_id_salt(name)
            .selected_text(shown)
            .show_ui(ui, |ui| {
                for (option, shown) in options {
                    let selected = option == value;
                    if ui.selectable_label(selected, shown).clicked() && !selected {
                        *value = option.clone();
                        changed = true;
                    }
                }
            })
            .response
            .labelled_by(label.id);
    });
    changed
}
