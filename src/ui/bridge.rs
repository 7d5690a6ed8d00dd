//! The window's link to the engine: a thread with its own tokio runtime runs the driver and
//! the built-in recorder. The window sends [`UiCommand`]s and reads [`UiEvent`]s without ever
//! waiting; each event wakes the window (`wake`), so with nothing happening it does not
//! repaint at all.

use core::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc;

use super::account::{AccountLink, Accounts};
use super::history::{HistoryEntry, HistoryFile};
use super::model::AccountSummary;
use crate::driver::media::{AudioFactory, Ringer};
use crate::driver::{self, DriverConfig, Handle};
use crate::engine::{CallId, Command, EngineConfig, Event, RegistrationState};
use crate::phone::{Phone, RecordFromStart, RecordingPolicy, builtin_recorder};
use crate::settings::{Account, Recording, Settings};
use crate::sip::uri::Uri;

/// What the window asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiCommand {
    /// Call what the dial field holds: a SIP URI, or a number or name the account's domain
    /// completes.
    Dial(String),
    Answer(CallId),
    Decline(CallId),
    Hangup(CallId),
    Record(CallId),
    StopRecording(CallId),
    PauseRecording(CallId),
    ResumeRecording(CallId),
    Mute(CallId, bool),
    Hold(CallId, bool),
    Dtmf(CallId, String),
    /// Blind transfer: the other side of the call is asked to call this target instead.
    Transfer(CallId, String),
    /// Merge the two calls into a conference (this phone mixes).
    Merge(CallId, CallId),
    /// Attended transfer: the far end of the first call is handed to the second's.
    TransferToCall(CallId, CallId),
    /// "Test recorder": this recorder URI (empty: the built-in recorder) is asked OPTIONS
    /// and given a short test recording session.
    CheckRecorder(String),
    /// List the sound devices (for the settings screen).
    ListDevices,
    /// Play the recording of the call with this metadata session ID (built-in recorder).
    PlayRecording(String),
    StopPlayback,
    /// Open the folder of that call's recording in the file manager.
    OpenRecording(String),
    /// A finished call for the history file.
    SaveHistory(Box<HistoryEntry>),
    /// Place calls on this account (by name) from now on; None: the first.
    UseAccount(Option<String>),
    /// Write the settings file and apply it: the recording policy from the next call on,
    /// a changed account (or a new password, for the keyring) by registering again.
    SaveSettings {
        path: PathBuf,
        settings: Box<Settings>,
        /// Passwords typed for accounts, by account name.
        passwords: Vec<(String, Password)>,
        /// "Start at login": Some(true) writes the entry (again: a moved program or a
        /// deleted entry is mended), Some(false) removes it (only when switched off).
        start_at_login: Option<bool>,
    },
}

/// A password on its way to the keyring; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl core::fmt::Debug for Password {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// What the window hears.
#[derive(Debug, Clone)]
pub enum UiEvent {
    /// The phone is up: where it listens, and where the built-in recorder writes.
    Ready {
        listen: SocketAddr,
        recordings: Option<PathBuf>,
    },
    /// A call the window asked for has an id now.
    Dialled {
        call: CallId,
        target: String,
    },
    Engine(Box<Event>),
    /// The history file's calls, newest first (once, at start).
    History(Vec<HistoryEntry>),
    /// Something the user must read (a bad URI, a recorder that did not start).
    Problem(String),
    /// Something worth knowing that is not wrong (where the recordings key is kept).
    Notice(String),
    /// The settings were written (and apply now).
    SettingsSaved,
    /// The enabled accounts, in order (the first places calls unless another is chosen).
    Accounts(Vec<AccountSummary>),
    /// An account's registration, as the engine reports it.
    Registration {
        account: String,
        state: crate::engine::RegistrationState,
    },
    /// The sound devices, or why they cannot be listed.
    Devices(Result<Vec<crate::audio::DeviceInfo>, String>),
    /// The recording being played (its session ID), or None when playback stopped.
    Playing(Option<String>),
}

/// The sound card behind the window: its thread (device changes, the level meter) and the
/// volumes the calls' audio applies.
#[derive(Clone)]
pub struct AudioControl {
    pub thread: std::sync::Arc<std::sync::Mutex<crate::audio::AudioThread>>,
    pub volumes: std::sync::Arc<crate::audio::Volumes>,
    /// The speaker's ring, also used to play recordings back between calls.
    pub ports: std::sync::Arc<std::sync::Mutex<crate::audio::AudioPorts>>,
}

impl core::fmt::Debug for AudioControl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AudioControl")
            .field("volumes", &self.volumes)
            .finish_non_exhaustive()
    }
}

impl AudioControl {
    /// The microphone's peak over the last 100 ms, 0 to 1000; None without a microphone.
    pub fn microphone_level(&self) -> Option<u16> {
        let thread = self.thread.lock().ok()?;
        thread.stats().capture.map(|c| c.level_permille)
    }

    /// Moves each role to the device the settings name.
    pub fn use_devices(&self, devices: crate::audio::DeviceConfig) {
        if let Ok(thread) = self.thread.lock() {
            thread.reconfigure(devices);
        }
    }
}

/// How the phone runs under the window.
#[derive(Clone)]
pub struct BridgeConfig {
    pub listen: SocketAddr,
    /// Where the built-in recorder writes; None: no built-in recorder.
    pub recordings: Option<PathBuf>,
    /// How calls are recorded; with no recorder URI, to the built-in one.
    pub recording: Recording,
    pub engine: EngineConfig,
    /// Audio for each call (the sound card); silence when None.
    pub audio: Option<AudioFactory>,
    pub ringer: Option<Ringer>,
    /// The sound card's microphone, pacing the media; None: a timer does.
    pub card_clock: Option<crate::driver::media::CardClock>,
    /// What went wrong before the window opened (no sound card, say), shown in it.
    pub problems: Vec<String>,
    /// Where the call history is kept; None: not kept.
    pub history: Option<PathBuf>,
    /// The enabled SIP accounts to register and call through; none: calls go straight to
    /// the URI.
    pub accounts: Vec<Account>,
    /// The sound card's controls when calls use it.
    pub audio_control: Option<AudioControl>,
    /// The recording settings the administrator fixed (`/etc/verbatim/policy.toml`): they
    /// win over what is saved from the window.
    pub admin: crate::settings::AdminPolicy,
    /// `[call] stun_server`: see [`DriverConfig::stun_server`].
    pub stun_server: Option<String>,
    /// Where incoming calls are notified on the desktop.
    pub notifications: super::call_notifications::NotificationBus,
    /// The tray icon, kept up to date with the calls by the phone's thread (so it does so
    /// while the window is hidden too).
    pub tray: Option<super::tray::TrayIcon>,
    /// The XDG autostart entry "Start at login" writes or removes; None: not managed.
    pub autostart: Option<super::autostart::Autostart>,
}

impl core::fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("listen", &self.listen)
            .field("recordings", &self.recordings)
            .field("srs", &self.recording.srs)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Bridge {
    commands: mpsc::UnboundedSender<UiCommand>,
    events: std_mpsc::Receiver<UiEvent>,
    thread: Option<std::thread::JoinHandle<()>>,
    audio: Option<AudioControl>,
}

impl Bridge {
    /// Starts the phone; `wake` is called after every event (from the phone's thread).
    pub fn start(config: BridgeConfig, wake: impl Fn() + Send + 'static) -> Bridge {
        let audio = config.audio_control.clone();
        let (commands, command_rx) = mpsc::unbounded_channel();
        let notification_choices = commands.downgrade();
        let (event_tx, events) = std_mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("verbatim-phone".into())
            .spawn(move || {
                let notify = Notifier {
                    events: event_tx,
                    wake: Box::new(wake),
                    tray: config.tray.clone().map(|icon| {
                        std::sync::Mutex::new(TrayFeed {
                            model: super::model::Model::default(),
                            icon,
                        })
                    }),
                };
                let desktop = super::call_notifications::CallNotifications::connect(
                    &config.notifications,
                    notification_choices,
                );
                match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(run(config, command_rx, notify, desktop)),
                    Err(error) => {
                        notify.send(UiEvent::Problem(format!("the phone cannot start: {error}")))
                    }
                }
            })
            .ok();
        Bridge {
            commands,
            events,
            thread,
            audio,
        }
    }

    /// The sound card's controls, for the settings screen (None: calls are silent).
    pub fn audio(&self) -> Option<&AudioControl> {
        self.audio.as_ref()
    }

    pub fn send(&self, command: UiCommand) {
        // After the phone stopped there is nobody to tell; the window shows that already.
        let _ = self.commands.send(command);
    }

    /// The next event, if one is waiting.
    pub fn try_event(&self) -> Option<UiEvent> {
        self.events.try_recv().ok()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Closing the command channel ends the phone: calls are hung up, the recorder stops.
        let (closed, _) = mpsc::unbounded_channel();
        drop(core::mem::replace(&mut self.commands, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Notifier {
    events: std_mpsc::Sender<UiEvent>,
    wake: Box<dyn Fn() + Send>,
    tray: Option<std::sync::Mutex<TrayFeed>>,
}

/// The tray's own view of the calls: the window's model fed the same events, here on the
/// phone's thread, since a hidden window draws no frames.
struct TrayFeed {
    model: super::model::Model,
    icon: super::tray::TrayIcon,
}

impl Notifier {
    fn send(&self, event: UiEvent) {
        let for_tray = match &event {
            UiEvent::Dialled { .. } => true,
            UiEvent::Engine(engine_event) => matches!(
                **engine_event,
                Event::IncomingCall { .. }
                    | Event::ReplacingCall { .. }
                    | Event::CallState { .. }
                    | Event::Recording { .. }
                    | Event::CallEnded { .. }
            ),
            _ => false,
        };
        if let Some(tray) = self.tray.as_ref().filter(|_| for_tray) {
            let mut feed = tray
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let TrayFeed { model, icon } = &mut *feed;
            match &event {
                UiEvent::Dialled { call, target } => model.dialled(*call, target.clone()),
                UiEvent::Engine(engine_event) => {
                    model.on_event(engine_event, std::time::Instant::now());
                    // The window keeps the history; this view needs none.
                    drop(model.take_unsaved());
                    model.history.clear();
                }
                _ => {}
            }
            icon.show(model.tray_state());
        }
        if self.events.send(event).is_ok() {
            (self.wake)();
        }
    }
}

async fn run(
    config: BridgeConfig,
    mut commands: mpsc::UnboundedReceiver<UiCommand>,
    notify: Notifier,
    desktop: Option<super::call_notifications::CallNotifications>,
) {
    let recorder = match (&config.recording.srs, &config.recordings) {
        (None, Some(dir)) => {
            let started = match builtin_recorder::prepare_storage(config.recording.storage.clone())
                .await
            {
                Ok(prepared) => {
                    if let Some(advice) = prepared.advice() {
                        notify.send(UiEvent::Notice(advice));
                    }
                    builtin_recorder::start(dir.clone(), config.recording.keep, prepared.sealing)
                        .await
                }
                Err(why) => Err(format!("the built-in recorder did not start: {why}")),
            };
            match started {
                Ok(recorder) => Some(recorder),
                Err(error) => {
                    notify.send(UiEvent::Problem(error));
                    None
                }
            }
        }
        _ => None,
    };
    let mut policy = RecordingPolicy::from_settings(&config.recording);
    policy.builtin = recorder.as_ref().map(|r| r.uri.clone());
    policy.admin = config.admin.clone();
    let recorder = recorder.map(|r| r.handle);
    let tls = config
        .accounts
        .first()
        .map(|account| crate::driver::tls::TlsSettings {
            ca_file: account.tls_ca_file.clone(),
            client_certificate: account.tls_client_certificate.clone(),
            client_key: account.tls_client_key.clone(),
            server_name: None,
            pinned_sha256: None,
            peer: crate::driver::tls::TlsPeer::Server,
        });
    let handle = match driver::start(
        config.engine.clone(),
        DriverConfig {
            listen: Some(config.listen),
            audio: config.audio.clone(),
            ringer: config.ringer.clone(),
            card_clock: config.card_clock.clone(),
            tls,
            recorder_tls: config.recording.tls.as_ref().map(|t| t.driver_settings()),
            stun_server: config.stun_server.clone(),
            ..DriverConfig::default()
        },
    )
    .await
    {
        Ok(handle) => handle,
        Err(error) => {
            notify.send(UiEvent::Problem(format!("the phone cannot start: {error}")));
            return;
        }
    };
    let mut phone = Phone::new(handle, policy);
    let listen = phone
        .handle
        .listeners
        .first()
        .map_or(config.listen, |l| l.address);
    notify.send(UiEvent::Ready {
        listen,
        recordings: recorder.as_ref().and(config.recordings.clone()),
    });
    for problem in &config.problems {
        notify.send(UiEvent::Problem(problem.clone()));
    }
    let mut accounts = Accounts::default();
    // The echo test: a second phone on loopback, so a new user can call someone at once.
    let echo = match crate::phone::echo::EchoPeer::start(config.engine.codecs.clone()).await {
        Ok(echo) => Some(echo),
        Err(problem) => {
            notify.send(UiEvent::Problem(problem));
            None
        }
    };
    accounts.set_echo(echo.as_ref().map(|e| e.destination));
    take_accounts(
        &mut accounts,
        config.accounts.clone(),
        Vec::new(),
        &phone,
        &notify,
    )
    .await;
    let history = config.history.as_deref().map(HistoryFile::new);
    if let Some(file) = history.clone() {
        match tokio::task::spawn_blocking(move || file.read()).await {
            Ok(Ok(entries)) => notify.send(UiEvent::History(entries)),
            Ok(Err(error)) => notify.send(UiEvent::Problem(format!(
                "the call history cannot be read: {error}"
            ))),
            Err(_) => {}
        }
    }
    // At most one recording plays; it stops when it ends, on Stop, or when a call starts.
    let mut player: Option<tokio::task::JoinHandle<()>> = None;
    let (played_tx, mut played) = mpsc::unbounded_channel::<Option<String>>();
    // "Start at login" may wait on the user (a portal's question): its outcome comes later.
    let (autostart_tx, mut autostart_done) = mpsc::unbounded_channel::<String>();
    let autostart = match config.autostart.clone().map(|autostart| {
        super::autostart::AutostartRequests::start(autostart, move |problem| {
            let _ = autostart_tx.send(problem);
        })
    }) {
        Some(Ok(requests)) => Some(requests),
        Some(Err(problem)) => {
            notify.send(UiEvent::Problem(problem));
            None
        }
        None => None,
    };
    loop {
        tokio::select! {
            Some(problem) = autostart_done.recv() => {
                notify.send(UiEvent::Problem(format!("Start at login: {problem}")));
            }
            Some(damage) = played.recv() => {
                player = None;
                notify.send(UiEvent::Playing(None));
                if let Some(damage) = damage {
                    notify.send(UiEvent::Problem(damage));
                }
            }
            command = commands.recv() => match command {
                Some(UiCommand::PlayRecording(session_id)) => {
                    if let Some(task) = player.take() {
                        task.abort();
                    }
                    match start_playback(&config, &session_id, played_tx.clone()).await {
                        Ok(task) => {
                            player = Some(task);
                            notify.send(UiEvent::Playing(Some(session_id)));
                        }
                        Err(problem) => notify.send(UiEvent::Problem(problem)),
                    }
                }
                Some(UiCommand::StopPlayback) => {
                    if let Some(task) = player.take() {
                        task.abort();
                        notify.send(UiEvent::Playing(None));
                    }
                }
                Some(UiCommand::OpenRecording(session_id)) => {
                    let dir = config.recordings.clone();
                    let storage = config.recording.storage.clone();
                    let opened = tokio::task::spawn_blocking(move || {
                        let dir = dir.ok_or("there is no built-in recorder folder")?;
                        let keys = super::playback::keys(&storage);
                        super::playback::open_folder(&super::playback::call_folder(
                            &dir,
                            &session_id,
                            &keys,
                            &storage,
                        )?)
                    })
                    .await;
                    if let Ok(Err(problem)) = opened {
                        notify.send(UiEvent::Problem(problem));
                    }
                }
                Some(UiCommand::SaveHistory(entry)) => {
                    if let Some(file) = history.clone() {
                        let saved = tokio::task::spawn_blocking(move || file.append(&entry)).await;
                        if let Ok(Err(error)) = saved {
                            notify.send(UiEvent::Problem(format!(
                                "the call could not be added to the history: {error}"
                            )));
                        }
                    }
                }
                Some(UiCommand::ListDevices) => {
                    let listed = tokio::task::spawn_blocking(crate::audio::list_devices).await;
                    let devices = match listed {
                        Ok(Ok(devices)) => Ok(devices),
                        Ok(Err(error)) => Err(format!("the sound devices cannot be listed: {error}")),
                        Err(error) => Err(format!("the sound devices cannot be listed: {error}")),
                    };
                    notify.send(UiEvent::Devices(devices));
                }
                Some(UiCommand::UseAccount(name)) => accounts.choose_outgoing(name),
                Some(UiCommand::SaveSettings { path, settings, passwords, start_at_login }) => {
                    let audio = settings.audio.clone();
                    let codecs = settings.media.codecs();
                    // The file keeps the user's own values; the phone runs with what the
                    // administrator fixed over them.
                    let mut running = settings.recording.clone();
                    config.admin.apply(&mut running);
                    let saved = match running.validate() {
                        Ok(running) => save_settings(path, *settings, &config.admin)
                            .await
                            .map(|(_, saved_accounts)| (running, saved_accounts)),
                        Err(problem) => Err(problem),
                    };
                    match saved {
                        Ok((recording, saved_accounts)) => {
                            if let (Some(start), Some(autostart)) = (start_at_login, &autostart) {
                                autostart.want(start);
                            }
                            match recording.notice.load() {
                                Ok(notice) => {
                                    let _ = phone.send(Command::SetNotice(notice));
                                }
                                Err(problem) => notify.send(UiEvent::Problem(problem)),
                            }
                            phone.policy.update(&recording);
                            if let Some(control) = &config.audio_control {
                                control.use_devices(audio.devices());
                                control.volumes.set(audio.input_volume, audio.output_volume);
                            }
                            if let Ok(codecs) = codecs {
                                let _ = phone.send(Command::SetCodecs(codecs));
                            }
                            let typed = passwords
                                .into_iter()
                                .map(|(name, Password(typed))| (name, typed))
                                .collect();
                            take_accounts(
                                &mut accounts,
                                saved_accounts,
                                typed,
                                &phone,
                                &notify,
                            )
                            .await;
                            notify.send(UiEvent::SettingsSaved);
                        }
                        Err(problem) => notify.send(UiEvent::Problem(problem)),
                    }
                }
                Some(command) => {
                    let checking = matches!(command, UiCommand::CheckRecorder(_));
                    if matches!(command, UiCommand::Dial(_) | UiCommand::Answer(_))
                        && let Some(task) = player.take()
                    {
                        // The speaker is the call's now.
                        task.abort();
                        notify.send(UiEvent::Playing(None));
                    }
                    match carry_out(&mut phone, command, &mut accounts, &notify).await {
                        Ok(()) => {}
                        // The settings screen waits for the check's answer: this is it.
                        Err(problem) if checking => {
                            notify.send(UiEvent::Engine(Box::new(Event::RecorderChecked {
                                check: phone.failed_check(),
                                works: false,
                                findings: vec![problem],
                            })));
                        }
                        Err(problem) => notify.send(UiEvent::Problem(problem)),
                    }
                }
                None => break,
            },
            event = phone.handle.events.recv() => match event {
                // A registration we replaced may still report; only the current ones count.
                Some(Event::Registration { account: id, state }) => {
                    accounts.note_state(id, &state);
                    if matches!(state, RegistrationState::Unregistered) {
                        for problem in accounts.registration_ended(id, &phone.handle).await {
                            notify.send(UiEvent::Problem(problem));
                        }
                        notify.send(UiEvent::Accounts(accounts.summaries()));
                    }
                    if let Some(name) = accounts.registered_as(id) {
                        notify.send(UiEvent::Registration {
                            account: name.to_owned(),
                            state,
                        });
                    }
                }
                // The user took the call this one replaces: it is answered without ringing.
                Some(Event::ReplacingCall { call, replaces, from, account }) => {
                    if let Some(task) = player.take() {
                        task.abort();
                        notify.send(UiEvent::Playing(None));
                    }
                    // It takes the replaced call's place, on its account and under its rules.
                    accounts.note_call(call, account.clone());
                    let own = accounts
                        .noted(call)
                        .map(AccountLink::recording)
                        .unwrap_or_default();
                    if let Err(problem) = phone.answer_on(call, &own).await {
                        notify.send(UiEvent::Problem(problem));
                    }
                    notify.send(UiEvent::Engine(Box::new(Event::ReplacingCall {
                        call,
                        replaces,
                        from,
                        account,
                    })));
                }
                Some(Event::TransferRequested { call, target, referred_by }) => {
                    let on = accounts.for_call(call);
                    let name = on.account().map(|a| a.name.clone());
                    let followed = follow_transfer(&mut phone, on, call, &target, &notify).await;
                    // The call to the target is on the account it was placed through.
                    if let Some(new_call) = followed {
                        accounts.note_call(new_call, name);
                    }
                    notify.send(UiEvent::Engine(Box::new(Event::TransferRequested {
                        call,
                        target,
                        referred_by,
                    })));
                }
                Some(event) => {
                    if let Event::IncomingCall { call, account, .. } = &event {
                        accounts.note_call(*call, account.clone());
                        if let Some(task) = player.take() {
                            task.abort();
                            notify.send(UiEvent::Playing(None));
                        }
                    }
                    if let Event::CallEnded { call, .. } = &event {
                        accounts.note_call(*call, None);
                        phone.forget_call(*call);
                    }
                    if let Some(desktop) = &desktop {
                        match &event {
                            Event::IncomingCall { call, from, .. } => desktop.incoming(*call, from),
                            Event::CallState { call, state }
                                if !matches!(state, crate::engine::CallState::Incoming) =>
                            {
                                desktop.done(*call);
                            }
                            Event::CallEnded { call, .. } => desktop.done(*call),
                            _ => {}
                        }
                    }
                    notify.send(UiEvent::Engine(Box::new(event)));
                }
                None => break,
            },
        }
    }
    phone.shut_down(core::time::Duration::from_secs(5)).await;
    if let Some(recorder) = recorder {
        recorder.stop().await;
    }
}

/// The address we listen on, for an identity when there is no account.
fn local_ip(handle: &Handle) -> String {
    handle
        .listeners
        .first()
        .map(|l| l.address.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// Finds the call's recording and starts playing it on the speaker; `done` hears when it
/// ends by itself, with why it stopped early when a file was damaged.
async fn start_playback(
    config: &BridgeConfig,
    session_id: &str,
    done: mpsc::UnboundedSender<Option<String>>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let dir = config
        .recordings
        .clone()
        .ok_or("there is no built-in recorder folder")?;
    let session_id = session_id.to_owned();
    let storage = config.recording.storage.clone();
    let recording = tokio::task::spawn_blocking(move || {
        // One look in the keyring for both finding and opening the recording.
        let keys = super::playback::keys(&storage);
        let folder = super::playback::call_folder(&dir, &session_id, &keys, &storage)?;
        super::playback::Recording::open(&folder, &keys)
    })
    .await
    .map_err(|e| format!("the recording could not be read: {e}"))??;
    let control = config
        .audio_control
        .clone()
        .ok_or("the recording is there, but playing it needs a sound card and none is in use")?;
    Ok(tokio::spawn(async move {
        let damage = super::playback::play(recording, control.ports, control.volumes).await;
        let _ = done.send(damage);
    }))
}

/// We are being transferred: call the target as the account (the window shows the new
/// call), or tell the transferor why not.
/// Returns the call placed to the target, if one was.
async fn follow_transfer(
    phone: &mut Phone,
    account: &AccountLink,
    call: CallId,
    target: &Uri,
    notify: &Notifier,
) -> Option<CallId> {
    let local = local_ip(&phone.handle);
    let outgoing = account.dial(&target.to_string(), &local).await;
    let shown = outgoing.as_ref().map(|o| o.target.to_string()).ok();
    match (phone.follow_transfer(call, outgoing).await, shown) {
        (Ok(new_call), Some(target)) => {
            notify.send(UiEvent::Dialled {
                call: new_call,
                target,
            });
            Some(new_call)
        }
        (Ok(new_call), None) => Some(new_call),
        (Err(problem), _) => {
            notify.send(UiEvent::Problem(problem));
            None
        }
    }
}

/// Takes the accounts on (each registering when it is to, and each answering its calls
/// under its own rules) and tells the window which there are.
async fn take_accounts(
    accounts: &mut Accounts,
    all: Vec<Account>,
    passwords: Vec<(String, String)>,
    phone: &Phone,
    notify: &Notifier,
) {
    if let Err(problem) = phone.set_called_accounts(&all) {
        notify.send(UiEvent::Problem(problem));
    }
    for problem in accounts.apply(all, passwords, &phone.handle).await {
        notify.send(UiEvent::Problem(problem));
    }
    notify.send(UiEvent::Accounts(accounts.summaries()));
}

/// Checks, writes (off the window's thread) and returns the recording part and the
/// accounts to apply (all of them: a switched-off one may have a password to keep).
async fn save_settings(
    path: PathBuf,
    settings: Settings,
    admin: &crate::settings::AdminPolicy,
) -> Result<(crate::settings::Recording, Vec<Account>), String> {
    let recording = settings.recording.validate()?;
    settings.media.codecs()?;
    settings.audio.validate()?;
    let accounts = settings.accounts_for_calls(admin)?;
    tokio::task::spawn_blocking(move || settings.save(&path))
        .await
        .map_err(|e| format!("the settings were not saved: {e}"))?
        .map_err(|e| format!("the settings were not saved: {e}"))?;
    Ok((recording, accounts))
}

async fn carry_out(
    phone: &mut Phone,
    command: UiCommand,
    accounts: &mut Accounts,
    notify: &Notifier,
) -> Result<(), String> {
    let account = accounts.outgoing();
    let engine_command = match command {
        UiCommand::Dial(input) => {
            let local = local_ip(&phone.handle);
            let outgoing = account.dial(&input, &local).await?;
            let name = account.account().map(|a| a.name.clone());
            let target = outgoing.target.to_string();
            let call = phone.dial(outgoing, RecordFromStart::AsPolicySays).await?;
            accounts.note_call(call, name);
            notify.send(UiEvent::Dialled { call, target });
            return Ok(());
        }
        UiCommand::Answer(call) => {
            // A call for none of our accounts is answered under the phone's own rules.
            let own = accounts
                .noted(call)
                .map(AccountLink::recording)
                .unwrap_or_default();
            return phone.answer_on(call, &own).await;
        }
        UiCommand::Record(call) => return phone.record(call).await.map(|_| ()),
        UiCommand::CheckRecorder(typed) => {
            let identity = account.identity(&local_ip(&phone.handle));
            return phone.check_recorder(&typed, identity).await.map(|_| ());
        }
        UiCommand::Decline(call) => Command::Reject { call, status: 603 },
        UiCommand::Hangup(call) => Command::Hangup { call },
        UiCommand::StopRecording(call) => Command::StopRecording { call },
        UiCommand::PauseRecording(call) => Command::PauseRecording { call },
        UiCommand::ResumeRecording(call) => Command::ResumeRecording { call },
        UiCommand::Mute(call, muted) => Command::Mute { call, muted },
        UiCommand::Hold(call, true) => Command::Hold { call },
        UiCommand::Hold(call, false) => Command::Resume { call },
        UiCommand::Dtmf(call, digits) => Command::SendDtmf { call, digits },
        UiCommand::Merge(call, with) => Command::Merge { call, with },
        UiCommand::TransferToCall(call, consultation) => {
            Command::TransferToCall { call, consultation }
        }
        UiCommand::Transfer(call, input) => Command::Transfer {
            call,
            target: accounts.for_call(call).complete(&input)?,
        },
        // Handled by the loop, which owns the history file, the policy, the devices and
        // the player.
        UiCommand::SaveHistory(_)
        | UiCommand::UseAccount(_)
        | UiCommand::SaveSettings { .. }
        | UiCommand::ListDevices
        | UiCommand::PlayRecording(_)
        | UiCommand::StopPlayback
        | UiCommand::OpenRecording(_) => return Ok(()),
    };
    phone.send(engine_command)
}
