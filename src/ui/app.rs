//! The main window: dial, the call and its controls, and the recording indicator. It draws
//! [`Model`] and turns clicks and keys into [`UiCommand`]s; it never waits on the phone.

use std::time::{Duration, Instant};

use eframe::egui::{self, Color32, Key, Modifiers, RichText};

use super::bridge::{Bridge, UiCommand, UiEvent};
use super::history::{HistoryEntry, RecordingOutcome};
use super::model::{CallView, Model, Tone};
use super::settings_view::SettingsEditor;
use crate::engine::{CallId, CallState, Event, Party, RecordingState};
use crate::settings::Settings;

pub struct VerbatimApp {
    bridge: Bridge,
    model: Model,
    dial: String,
    /// Where the phone listens and the built-in recorder writes, once it is up.
    status: String,
    problems: Vec<String>,
    settings: Option<SettingsEditor>,
    /// What each call's transfer field holds.
    transfer_targets: std::collections::HashMap<CallId, String>,
    /// The recording playing from the history (its session ID).
    playing: Option<String>,
    /// No settings file yet: the welcome panel shows until it is dismissed or saved.
    first_run: bool,
    /// Open the settings on the next frame (from the welcome panel).
    open_settings: bool,
    /// The calls or the settings.
    page: Page,
    /// A tray icon is up: the window can hide in it instead of closing.
    has_tray: bool,
    /// Closing the window hides it in the tray (the phone goes on).
    close_to_tray: bool,
    /// Frames left in which the window hides itself (starting hidden in the tray).
    hide_frames: u8,
    /// Hiding means minimizing: Wayland lets no window hide itself.
    hide_by_minimizing: bool,
    /// Quit was chosen: the close goes through even when it would hide the window.
    quitting: bool,
    /// Links opened elsewhere (`verbatim open`), to dial here.
    links: Option<std::sync::mpsc::Receiver<String>>,
    /// A link came in: the window comes to the front on the next frame.
    raise: bool,
    /// What the history is searched for.
    history_search: String,
}

/// The window shows the calls or the settings, never one under the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Page {
    #[default]
    Phone,
    Settings,
}

impl core::fmt::Debug for VerbatimApp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VerbatimApp")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl VerbatimApp {
    pub fn new(bridge: Bridge) -> VerbatimApp {
        VerbatimApp {
            bridge,
            model: Model::default(),
            dial: String::new(),
            status: "Starting…".into(),
            problems: Vec::new(),
            settings: None,
            transfer_targets: Default::default(),
            playing: None,
            first_run: false,
            open_settings: false,
            page: Page::Phone,
            has_tray: false,
            close_to_tray: false,
            hide_frames: 0,
            hide_by_minimizing: false,
            quitting: false,
            links: None,
            raise: false,
            history_search: String::new(),
        }
    }

    /// Lets the window edit the recording settings kept in `path` (now `settings`).
    pub fn with_settings(mut self, path: std::path::PathBuf, settings: Settings) -> VerbatimApp {
        self.first_run = !path.exists();
        self.settings = Some(SettingsEditor::new(path, settings));
        self
    }

    /// A tray icon is up; with `close_to_tray`, closing the window hides it there.
    pub fn with_tray(mut self, close_to_tray: bool) -> VerbatimApp {
        self.has_tray = true;
        self.close_to_tray = close_to_tray;
        self
    }

    /// "Hidden" is minimized instead (on Wayland, where a window cannot hide itself).
    pub fn hiding_by_minimizing(mut self) -> VerbatimApp {
        self.hide_by_minimizing = true;
        self
    }

    fn hide(&self, ctx: &egui::Context) {
        ctx.send_viewport_cmd(if self.hide_by_minimizing {
            egui::ViewportCommand::Minimized(true)
        } else {
            egui::ViewportCommand::Visible(false)
        });
    }

    /// The window starts hidden in the tray. eframe shows every window once its first frame
    /// is painted, so the window hides itself again over its first frames.
    pub fn starting_hidden(mut self) -> VerbatimApp {
        self.hide_frames = 3;
        self
    }

    /// Whether closing the window now hides it instead (the phone goes on).
    pub fn closes_to_tray(&self) -> bool {
        self.has_tray && self.close_to_tray
    }

    /// Shows the recording settings the administrator's policy fixes as fixed.
    pub fn with_admin_policy(mut self, admin: crate::settings::AdminPolicy) -> VerbatimApp {
        if let Some(editor) = self.settings.as_mut() {
            editor.locked_by(admin);
        }
        self
    }

    /// Dials the links handed to this window (`verbatim open` in another process).
    pub fn with_links(mut self, links: std::sync::mpsc::Receiver<String>) -> VerbatimApp {
        self.links = Some(links);
        self
    }

    /// Dials `target` as if typed and called (a link that opened the window).
    pub fn dialling(mut self, target: String) -> VerbatimApp {
        self.dial_link(target);
        self
    }

    /// A link to dial. A number (from tel: or callto:) goes through the account at once;
    /// a SIP address waits in the dial field for the user's Call, since a page could
    /// otherwise send the call, and the account's credentials, to any server. During a call
    /// the link only waits in the field.
    fn dial_link(&mut self, target: String) {
        self.dial.clone_from(&target);
        self.raise = true;
        if self.model.current().is_some() {
            self.model
                .notices
                .push(format!("{target} is in the dial field for after this call"));
        } else if target.contains(':') {
            self.model.notices.push(format!(
                "Check {target}, then press Call: an address from a link is not called unasked"
            ));
        } else {
            self.bridge.send(UiCommand::Dial(target));
        }
    }

    /// Takes in what the phone said since the last frame.
    fn poll(&mut self) {
        let now = Instant::now();
        let links: Vec<String> = self
            .links
            .as_ref()
            .map(|links| links.try_iter().collect())
            .unwrap_or_default();
        for link in links {
            self.dial_link(link);
        }
        while let Some(event) = self.bridge.try_event() {
            match event {
                UiEvent::Ready { listen, recordings } => {
                    self.status = match recordings {
                        Some(dir) => {
                            format!("Ready on {listen}; recordings go to {}", dir.display())
                        }
                        None => format!("Ready on {listen}"),
                    };
                }
                UiEvent::Dialled { call, target } => {
                    // A call placed from a link or the notification shows at once.
                    self.page = Page::Phone;
                    // The first real call made: the welcome has done its job (the echo
                    // test is its own first step, and leaves it for the next ones).
                    if target != crate::phone::echo::ECHO_URI {
                        self.first_run = false;
                    }
                    self.model.dialled(call, target);
                }
                UiEvent::Engine(event) => {
                    if let Event::RecorderChecked {
                        works, findings, ..
                    } = &*event
                        && let Some(editor) = self.settings.as_mut()
                    {
                        editor.on_recorder_checked(*works, findings.clone());
                    }
                    // A call that rings, or a recording in trouble, is never hidden behind the
                    // settings.
                    let trouble = matches!(
                        &*event,
                        Event::IncomingCall { .. }
                            | Event::Recording {
                                state: crate::engine::RecordingState::Failed { .. }
                                    | crate::engine::RecordingState::Retrying { .. },
                                ..
                            }
                    );
                    if trouble {
                        self.page = Page::Phone;
                    }
                    self.model.on_event(&event, now);
                }
                UiEvent::History(entries) => self.model.load_history(entries),
                UiEvent::Problem(problem) => {
                    if !self.problems.contains(&problem) {
                        self.problems.push(problem);
                    }
                }
                UiEvent::Notice(notice) => self.model.notices.push(notice),
                UiEvent::SettingsSaved => {
                    self.first_run = false;
                    if let Some(editor) = self.settings.as_mut() {
                        editor.on_saved();
                        self.close_to_tray = editor.window().tray && editor.window().close_to_tray;
                    }
                }
                UiEvent::Accounts(accounts) => self.model.set_accounts(accounts),
                UiEvent::Registration { account, state } => {
                    self.model.on_registration(&account, state);
                }
                UiEvent::Playing(session) => self.playing = session,
                UiEvent::Devices(devices) => {
                    if let Some(editor) = self.settings.as_mut() {
                        editor.on_devices(devices);
                    }
                }
            }
        }
        for entry in self.model.take_unsaved() {
            self.bridge.send(UiCommand::SaveHistory(Box::new(entry)));
        }
    }

    /// Draws the window; also what tests drive, with the real phone behind it.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.poll();
        if self.hide_frames > 0 {
            self.hide_frames -= 1;
            self.hide(ui.ctx());
            ui.ctx().request_repaint();
        }
        // Closed while the tray can bring it back: hidden, and the phone goes on.
        if self.closes_to_tray()
            && !self.quitting
            && ui.ctx().input(|i| i.viewport().close_requested())
        {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.hide(ui.ctx());
        }

        if core::mem::take(&mut self.raise) {
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Visible(true));
            ui.ctx()
                .send_viewport_cmd(egui::ViewportCommand::Minimized(false));
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Focus);
        }
        let now = Instant::now();
        ui.heading("Verbatim");
        ui.label(RichText::new(&self.status).small());
        for (account, tone) in self.model.account_lines() {
            let colour = match tone {
                Tone::Alarm => Color32::from_rgb(200, 60, 40),
                Tone::Busy => Color32::from_rgb(160, 140, 40),
                _ => ui.visuals().text_color(),
            };
            ui.colored_label(colour, account);
        }
        if core::mem::take(&mut self.open_settings) {
            self.page = Page::Settings;
        }
        ui.horizontal(|ui| {
            if self.settings.is_some() {
                ui.selectable_value(&mut self.page, Page::Phone, "Phone");
                ui.selectable_value(&mut self.page, Page::Settings, "Settings");
            }
            // Closing only hides the window then: this is how the phone stops.
            if self.closes_to_tray()
                && ui
                    .button("Quit")
                    .on_hover_text("Stop the phone (closing the window only hides it)")
                    .clicked()
            {
                self.quitting = true;
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
        });
        ui.separator();
        // What went wrong shows on either page (a password the keyring did not take is
        // reported while the settings are open).
        for problem in &self.problems {
            ui.colored_label(Color32::from_rgb(200, 60, 40), problem);
        }
        if self.page == Page::Settings && self.settings.is_some() {
            self.settings_panel(ui);
            return;
        }
        if self.first_run {
            self.welcome(ui);
        }
        self.dial_row(ui);
        // The newest few things the phone said (a warning, a transfer that came in).
        for notice in self.model.notices.iter().rev().take(3) {
            ui.label(RichText::new(notice).small());
        }
        if let Some(outcome) = &self.model.last_outcome {
            ui.label(outcome);
        }
        // Every call is shown: a second one rings beside the first (call waiting).
        let calls = self.model.calls.clone();
        for call in &calls {
            ui.separator();
            ui.push_id(call.id.0, |ui| self.call_panel(ui, call, now));
            if call.is_connected() {
                // The call's clock and the recorded time move once a second.
                ui.ctx().request_repaint_after(Duration::from_secs(1));
            }
        }
        if !self.model.local_conference.is_empty() {
            ui.separator();
            ui.label(format!(
                "Conference: you and {} parties; each hears everyone else",
                self.model.local_conference.len()
            ));
        }
        if let Some((call, consultation)) = self.model.attended_transfer_candidates() {
            let label = format!("Transfer {} to {}", call.remote, consultation.remote);
            let (call, consultation) = (call.id, consultation.id);
            if ui
                .button(label)
                .on_hover_text("They are put through to each other and both calls end here")
                .clicked()
            {
                self.bridge
                    .send(UiCommand::TransferToCall(call, consultation));
            }
        }
        if let Some((call, with)) = self.model.merge_candidates() {
            let label = if self.model.local_conference.is_empty() {
                "Merge calls into a conference"
            } else {
                "Add the call to the conference"
            };
            if ui
                .button(label)
                .on_hover_text("Everyone hears everyone; held calls are resumed")
                .clicked()
            {
                self.bridge.send(UiCommand::Merge(call, with));
            }
        }
        self.shortcuts(ui, &calls);
        ui.separator();
        self.history(ui);
    }

    /// The first start: three ways in, each one click.
    fn welcome(&mut self, ui: &mut egui::Ui) {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.label(RichText::new("Welcome to Verbatim").strong());
            ui.label(
                "Try a call right away: the echo test answers and plays you back a second \
                 later, and Record keeps the call in the built-in recorder. No account needed.",
            );
            ui.horizontal_wrapped(|ui| {
                if ui.button("Try the echo test").clicked() {
                    self.bridge
                        .send(UiCommand::Dial(crate::phone::echo::ECHO_URI.to_owned()));
                }
                if ui.button("Add a SIP account").clicked() {
                    self.open_settings = true;
                }
                if ui.button("Set a recorder (SRS)").clicked() {
                    self.open_settings = true;
                }
                if ui.button("Dismiss").clicked() {
                    self.first_run = false;
                }
            });
        });
    }

    fn settings_panel(&mut self, ui: &mut egui::Ui) {
        let Some(editor) = self.settings.as_mut() else {
            return;
        };
        for command in editor.show(ui, self.bridge.audio()) {
            self.bridge.send(command);
        }
    }

    fn history(&mut self, ui: &mut egui::Ui) {
        ui.label(RichText::new("Recent calls").strong());
        if self.model.history.is_empty() {
            ui.label("No calls yet");
            return;
        }
        ui.horizontal(|ui| {
            let label = ui.label("Search");
            ui.add(
                egui::TextEdit::singleline(&mut self.history_search)
                    .hint_text("name, address or number")
                    .desired_width(200.0),
            )
            .labelled_by(label.id);
        });
        let mut redial = None;
        let mut call_again = None;
        let mut command = None;
        let search = self.history_search.clone();
        if self.model.history_matching(&search).next().is_none() {
            ui.label("No calls match");
        }
        egui::ScrollArea::vertical()
            .id_salt("history")
            .max_height(180.0)
            .show(ui, |ui| {
                for (row, entry) in self.model.history_matching(&search).enumerate() {
                    let direction = if entry.incoming { "from" } else { "to" };
                    let when =
                        crate::recording::metadata::format_time(Duration::from_secs(entry.started));
                    let when = when.get(..16).unwrap_or(&when).replace('T', " ");
                    let outcome = match &entry.failure {
                        Some(failure) => format!("failed: {failure}"),
                        None => super::model::clock(Duration::from_secs(entry.duration_s)),
                    };
                    // Wrapped, so nothing runs off a narrow window.
                    ui.push_id(row, |ui| {
                        ui.horizontal_wrapped(|ui| {
                            if ui
                                .link(format!("{direction} {}", entry.party))
                                .on_hover_text("Put in the dial field")
                                .clicked()
                            {
                                redial = Some(entry.party.clone());
                            }
                            if ui
                                .small_button("Call again")
                                .on_hover_text(format!("Call {}", entry.party))
                                .clicked()
                            {
                                call_again = Some(super::model::dialable(&entry.party));
                            }
                            ui.label(
                                RichText::new(format!(
                                    "{when} · {outcome} · {}",
                                    entry.recording.label()
                                ))
                                .small(),
                            );
                            if let Some(action) = self.recording_actions(ui, entry) {
                                command = Some(action);
                            }
                        })
                    });
                    if !entry.conference.is_empty() {
                        let roster: Vec<String> = entry
                            .conference
                            .iter()
                            .map(|p| {
                                let from = p.joined.get(11..19).unwrap_or(&p.joined);
                                match &p.left {
                                    Some(left) => format!(
                                        "{} {from}–{}",
                                        p.participant,
                                        left.get(11..19).unwrap_or(left)
                                    ),
                                    None => format!("{} from {from}", p.participant),
                                }
                            })
                            .collect();
                        ui.label(
                            RichText::new(format!("conference: {}", roster.join("; "))).small(),
                        );
                    }
                    if let Some(note) = &entry.conference_note {
                        ui.label(RichText::new(note).small());
                    }
                }
            });
        if let Some(party) = redial {
            self.dial = party;
        }
        if let Some(party) = call_again
            && self.model.current().is_none()
        {
            self.problems.clear();
            self.dial.clone_from(&party);
            self.bridge.send(UiCommand::Dial(party));
        }
        if let Some(command) = command {
            self.problems.clear();
            self.bridge.send(command);
        }
    }

    /// Play (or Stop) and Open folder, for a call the built-in recorder has.
    fn recording_actions(&self, ui: &mut egui::Ui, entry: &HistoryEntry) -> Option<UiCommand> {
        let recorded = matches!(
            entry.recording,
            RecordingOutcome::Recorded | RecordingOutcome::Partial
        );
        let session = entry.recording_session.as_ref().filter(|_| recorded)?;
        let mut command = None;
        if self.playing.as_ref() == Some(session) {
            if ui.small_button("Stop").clicked() {
                command = Some(UiCommand::StopPlayback);
            }
        } else if ui
            .small_button("Play")
            .on_hover_text("Both sides, on the speaker")
            .clicked()
        {
            command = Some(UiCommand::PlayRecording(session.clone()));
        }
        if ui.small_button("Open folder").clicked() {
            command = Some(UiCommand::OpenRecording(session.clone()));
        }
        command
    }

    fn dial_row(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("Dial");
            let field = ui
                .add(
                    egui::TextEdit::singleline(&mut self.dial)
                        .hint_text("sip:someone@example.com or a number"),
                )
                .labelled_by(label.id);
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            self.account_picker(ui);
            let idle = self.model.current().is_none();
            let may_call = self.model.may_place_a_call();
            let call = ui
                .add_enabled(may_call, egui::Button::new("Call"))
                .on_disabled_hover_text("Put the call on hold to place another");
            if may_call && (call.clicked() || enter) && !self.dial.trim().is_empty() {
                self.problems.clear();
                self.bridge
                    .send(UiCommand::Dial(self.dial.trim().to_owned()));
            }
            let echo = ui
                .add_enabled(idle, egui::Button::new("Echo test"))
                .on_hover_text("Calls a built-in echo: you hear yourself a second later");
            if echo.clicked() {
                self.problems.clear();
                self.bridge
                    .send(UiCommand::Dial(crate::phone::echo::ECHO_URI.to_owned()));
            }
        });
    }

    /// With several accounts, which one calls go out on (the first unless chosen).
    fn account_picker(&mut self, ui: &mut egui::Ui) {
        if self.model.accounts.len() < 2 {
            return;
        }
        let names: Vec<String> = self
            .model
            .accounts
            .iter()
            .map(|line| line.summary.name.clone())
            .collect();
        let current = self
            .model
            .outgoing
            .clone()
            .or_else(|| names.first().cloned())
            .unwrap_or_default();
        let mut chosen = current.clone();
        let label = ui.label("from");
        egui::ComboBox::from_id_salt("outgoing account")
            .selected_text(&chosen)
            .show_ui(ui, |ui| {
                for name in &names {
                    ui.selectable_value(&mut chosen, name.clone(), name);
                }
            })
            .response
            .labelled_by(label.id);
        if chosen != current {
            self.model.outgoing = Some(chosen.clone());
            self.bridge.send(UiCommand::UseAccount(Some(chosen)));
        }
    }

    fn call_panel(&mut self, ui: &mut egui::Ui, call: &CallView, now: Instant) {
        ui.label(RichText::new(&call.remote).strong());
        if let Some(account) = &call.account {
            ui.label(RichText::new(format!("for {account}")).small());
        }
        ui.label(call.state_text(now));
        match call.quality() {
            // The compact line opens onto a live plot of the last minute.
            Some(quality) => {
                egui::CollapsingHeader::new(RichText::new(quality).small())
                    .id_salt("quality")
                    .show(ui, |ui| quality_plot(ui, call));
            }
            None => {
                ui.label(RichText::new(call.codec.as_deref().unwrap_or("")).small());
            }
        }
        ui.horizontal(|ui| {
            if call.state == CallState::Incoming {
                if ui.button("Answer").clicked() {
                    self.bridge.send(UiCommand::Answer(call.id));
                }
                if ui.button("Decline").clicked() {
                    self.bridge.send(UiCommand::Decline(call.id));
                }
            } else if ui.button("Hang up").clicked() {
                self.bridge.send(UiCommand::Hangup(call.id));
            }
            if call.is_connected() {
                let muted = call.muted;
                if ui.button(if muted { "Unmute" } else { "Mute" }).clicked() {
                    self.set_muted(call, !muted);
                }
                let held = matches!(
                    call.state,
                    CallState::Connected {
                        local_hold: true,
                        ..
                    }
                );
                if ui.button(if held { "Resume" } else { "Hold" }).clicked() {
                    self.bridge.send(UiCommand::Hold(call.id, !held));
                }
            }
        });
        if call.is_connected() {
            self.recording_controls(ui, call, now);
            ui.collapsing("Keypad", |ui| self.keypad(ui, call));
            ui.collapsing("Transfer", |ui| self.transfer(ui, call));
        }
        if let Some(transfer) = &call.transfer {
            ui.label(transfer);
        }
        let present: Vec<String> = call
            .conference
            .iter()
            .filter(|m| m.is_in())
            .map(|m| m.label())
            .collect();
        if !present.is_empty() {
            ui.label(format!("In the conference: {}", present.join(", ")));
        }
        if let Some(note) = &call.conference_note {
            ui.colored_label(Color32::from_rgb(200, 130, 0), note);
        }
        if call.far_end_records {
            ui.label("The other side records this call");
        }
        if let Some(preference) = &call.far_end_preference
            && preference != "on"
            && preference != "nopreference"
        {
            ui.colored_label(
                Color32::from_rgb(200, 130, 0),
                format!("The other side asked not to be recorded ({preference})"),
            );
        }
    }

    fn recording_controls(&mut self, ui: &mut egui::Ui, call: &CallView, now: Instant) {
        let indicator = call.indicator(now);
        let (fill, text) = match indicator.tone {
            Tone::Quiet => (Color32::from_gray(60), Color32::from_gray(220)),
            Tone::Busy => (Color32::from_rgb(90, 90, 30), Color32::WHITE),
            Tone::Live => (Color32::from_rgb(190, 20, 20), Color32::WHITE),
            Tone::Warning => (Color32::from_rgb(200, 120, 0), Color32::BLACK),
            Tone::Alarm => (Color32::from_rgb(120, 0, 60), Color32::WHITE),
        };
        egui::Frame::new()
            .fill(fill)
            .inner_margin(8.0)
            .corner_radius(4.0)
            .show(ui, |ui| {
                ui.set_min_width(ui.available_width());
                ui.label(
                    RichText::new(&indicator.text)
                        .color(text)
                        .size(18.0)
                        .strong(),
                );
            });
        ui.horizontal(|ui| {
            let active = call.is_recording_or_trying();
            let record = if active { "Stop recording" } else { "Record" };
            if ui.button(record).clicked() {
                self.toggle_recording(call);
            }
            let paused = matches!(call.recording, RecordingState::Paused { by: Party::Local });
            let can_pause = paused || call.recording.is_live();
            let pause = if paused {
                "Resume recording"
            } else {
                "Pause recording"
            };
            if ui
                .add_enabled(can_pause, egui::Button::new(pause))
                .clicked()
            {
                self.toggle_pause(call);
            }
        });
    }

    /// Blind transfer: the other side is asked to call this number or address instead.
    fn transfer(&mut self, ui: &mut egui::Ui, call: &CallView) {
        let target = self.transfer_targets.entry(call.id).or_default();
        let mut go = false;
        ui.horizontal(|ui| {
            let label = ui.label("Transfer to");
            let field = ui
                .add(egui::TextEdit::singleline(target).hint_text("number or sip: address"))
                .labelled_by(label.id);
            go = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            go |= ui.button("Transfer call").clicked();
        });
        if go && !target.trim().is_empty() {
            let target = target.trim().to_owned();
            self.bridge.send(UiCommand::Transfer(call.id, target));
        }
    }

    /// Twelve keys; each press sends its digit as an RFC 4733 event.
    fn keypad(&mut self, ui: &mut egui::Ui, call: &CallView) {
        for row in ["123", "456", "789", "*0#"] {
            ui.horizontal(|ui| {
                for digit in row.chars() {
                    let key = egui::Button::new(RichText::new(digit.to_string()).size(18.0))
                        .min_size(egui::vec2(44.0, 32.0));
                    if ui.add(key).clicked() {
                        self.bridge
                            .send(UiCommand::Dtmf(call.id, digit.to_string()));
                    }
                }
            });
        }
    }

    /// Enter answers the call that rings, Esc hangs up the newest call, Ctrl+R records or
    /// stops and Ctrl+P pauses or resumes the call being talked in.
    fn shortcuts(&mut self, ui: &mut egui::Ui, calls: &[CallView]) {
        if calls.is_empty() {
            return;
        }
        let (enter, escape, record, pause) = ui.input_mut(|i| {
            (
                i.consume_key(Modifiers::NONE, Key::Enter),
                i.consume_key(Modifiers::NONE, Key::Escape),
                i.consume_key(Modifiers::COMMAND, Key::R),
                i.consume_key(Modifiers::COMMAND, Key::P),
            )
        });
        if enter && let Some(ringing) = calls.iter().rev().find(|c| c.state == CallState::Incoming)
        {
            self.bridge.send(UiCommand::Answer(ringing.id));
        }
        if escape && let Some(newest) = calls.last() {
            self.bridge.send(UiCommand::Hangup(newest.id));
        }
        let talking = calls.iter().find(|c| {
            matches!(
                c.state,
                CallState::Connected {
                    local_hold: false,
                    ..
                }
            )
        });
        if let Some(call) = talking {
            if record {
                self.toggle_recording(call);
            }
            if pause {
                self.toggle_pause(call);
            }
        }
    }

    fn toggle_recording(&mut self, call: &CallView) {
        if call.is_recording_or_trying() {
            self.bridge.send(UiCommand::StopRecording(call.id));
        } else {
            self.bridge.send(UiCommand::Record(call.id));
        }
    }

    fn toggle_pause(&mut self, call: &CallView) {
        match call.recording {
            RecordingState::Paused { by: Party::Local } => {
                self.bridge.send(UiCommand::ResumeRecording(call.id))
            }
            ref live if live.is_live() => self.bridge.send(UiCommand::PauseRecording(call.id)),
            _ => {}
        }
    }

    fn set_muted(&mut self, call: &CallView, muted: bool) {
        self.bridge.send(UiCommand::Mute(call.id, muted));
        if let Some(view) = self.model.calls.iter_mut().find(|c| c.id == call.id) {
            view.muted = muted;
        }
    }
}

/// Loss (%), jitter and round trip (ms) over the last minute of the call.
fn quality_plot(ui: &mut egui::Ui, call: &CallView) {
    use egui_plot::{Legend, Line, Plot, PlotPoints};
    let series = |value: &dyn Fn(&super::model::QualitySample) -> Option<f64>| -> PlotPoints {
        call.quality_history
            .iter()
            .filter_map(|s| value(s).map(|v| [s.at_s, v]))
            .collect()
    };
    Plot::new("quality plot")
        .height(120.0)
        .legend(Legend::default())
        .x_axis_label("seconds")
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.line(Line::new("loss %", series(&|s| Some(s.loss_percent))));
            plot.line(Line::new("jitter ms", series(&|s| Some(s.jitter_ms))));
            plot.line(Line::new("RTT ms", series(&|s| s.rtt_ms)));
        });
}

impl eframe::App for VerbatimApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        // Calls, history and settings together are taller than the window.
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show(ui, |ui| self.show(ui));
        });
    }
}
