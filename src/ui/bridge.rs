//! The window's link to the engine: a thread with its own tokio runtime runs the driver and
//! the built-in recorder. The window sends [`UiCommand`]s and reads [`UiEvent`]s without ever
//! waiting; each event wakes the window (`wake`), so with nothing happening it does not
//! repaint at all.

use core::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc;

use super::history::{HistoryEntry, HistoryFile};
use crate::driver::media::{AudioFactory, Ringer};
use crate::driver::{self, DriverConfig, Handle};
use crate::engine::{
    CallId, Command, DialRequest, EngineConfig, Event, RecordingRequest, RecordingStart,
};
use crate::settings::Settings;
use crate::sip::uri::{NameAddr, Uri};
use crate::srs::{SrsConfig, SrsHandle};

/// What the window asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiCommand {
    /// Call a SIP URI.
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
    /// A finished call for the history file.
    SaveHistory(Box<HistoryEntry>),
    /// Write the settings file and apply its recording policy from the next call on.
    SaveSettings {
        path: PathBuf,
        settings: Box<Settings>,
    },
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
    /// The settings were written (and apply now).
    SettingsSaved,
}

/// How the phone runs under the window.
#[derive(Clone)]
pub struct BridgeConfig {
    pub listen: SocketAddr,
    /// Where the built-in recorder writes; None: no built-in recorder.
    pub recordings: Option<PathBuf>,
    /// Record to this recorder instead of the built-in one.
    pub srs: Option<Uri>,
    /// Record every call from its start.
    pub auto_record: bool,
    /// No call without a working recording.
    pub mandatory: bool,
    pub engine: EngineConfig,
    /// Audio for each call (the sound card); silence when None.
    pub audio: Option<AudioFactory>,
    pub ringer: Option<Ringer>,
    /// What went wrong before the window opened (no sound card, say), shown in it.
    pub problems: Vec<String>,
    /// Where the call history is kept; None: not kept.
    pub history: Option<PathBuf>,
}

impl core::fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("listen", &self.listen)
            .field("recordings", &self.recordings)
            .field("srs", &self.srs)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Bridge {
    commands: mpsc::UnboundedSender<UiCommand>,
    events: std_mpsc::Receiver<UiEvent>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bridge {
    /// Starts the phone; `wake` is called after every event (from the phone's thread).
    pub fn start(config: BridgeConfig, wake: impl Fn() + Send + 'static) -> Bridge {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = std_mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("verbatim-phone".into())
            .spawn(move || {
                let notify = Notifier {
                    events: event_tx,
                    wake: Box::new(wake),
                };
                match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(run(config, command_rx, notify)),
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
        }
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
}

impl Notifier {
    fn send(&self, event: UiEvent) {
        if self.events.send(event).is_ok() {
            (self.wake)();
        }
    }
}

async fn run(
    config: BridgeConfig,
    mut commands: mpsc::UnboundedReceiver<UiCommand>,
    notify: Notifier,
) {
    let recorder = match (&config.srs, &config.recordings) {
        (None, Some(dir)) => {
            match crate::srs::run(SrsConfig::new(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                dir.clone(),
            ))
            .await
            {
                Ok(handle) => Some(handle),
                Err(error) => {
                    notify.send(UiEvent::Problem(format!(
                        "the built-in recorder did not start: {error}"
                    )));
                    None
                }
            }
        }
        _ => None,
    };
    let builtin = recorder.as_ref().and_then(|r: &SrsHandle| {
        Uri::parse(&format!("sip:recorder@{};transport=tcp", r.local_addr())).ok()
    });
    let mut policy = Policy {
        srs: config.srs.clone().or_else(|| builtin.clone()),
        auto: config.auto_record,
        mandatory: config.mandatory,
    };
    let mut handle = match driver::start(
        config.engine.clone(),
        DriverConfig {
            listen: Some(config.listen),
            audio: config.audio.clone(),
            ringer: config.ringer.clone(),
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
    let listen = handle
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
    loop {
        tokio::select! {
            command = commands.recv() => match command {
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
                Some(UiCommand::SaveSettings { path, settings }) => {
                    match save_settings(path, *settings).await {
                        Ok(recording) => {
                            policy = Policy {
                                srs: recording.srs.or_else(|| builtin.clone()),
                                auto: recording.auto,
                                mandatory: recording.mandatory,
                            };
                            notify.send(UiEvent::SettingsSaved);
                        }
                        Err(problem) => notify.send(UiEvent::Problem(problem)),
                    }
                }
                Some(command) => {
                    if let Err(problem) = carry_out(&mut handle, command, &policy, &notify).await {
                        notify.send(UiEvent::Problem(problem));
                    }
                }
                None => break,
            },
            event = handle.events.recv() => match event {
                Some(event) => notify.send(UiEvent::Engine(Box::new(event))),
                None => break,
            },
        }
    }
    let _ = handle.commands.send(Command::Shutdown);
    let deadline = tokio::time::Instant::now() + core::time::Duration::from_secs(5);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, handle.events.recv()).await {
        if matches!(event, Event::ShutdownComplete) {
            break;
        }
    }
    if let Some(recorder) = recorder {
        recorder.stop().await;
    }
}

/// How calls are recorded; the settings screen changes it while the app runs.
#[derive(Debug, Clone)]
struct Policy {
    srs: Option<Uri>,
    auto: bool,
    mandatory: bool,
}

impl Policy {
    /// The recording for a call, its recorder resolved.
    async fn request(&self) -> Result<RecordingRequest, String> {
        let srs = self
            .srs
            .clone()
            .ok_or("no recorder is configured and the built-in one is not running")?;
        Ok(RecordingRequest {
            destination: driver::dns::first_hop(&srs, crate::recording::recorder_transport(&srs))
                .await?,
            srs,
            media_port: 0,
            secondary: None,
            mandatory: self.mandatory,
            mode: Default::default(),
            srtp: false,
            credentials: None,
        })
    }

    /// With auto-record, the recording that goes with a dial or an answer.
    async fn with_call(&self) -> Result<Option<Box<RecordingStart>>, String> {
        if !self.auto {
            return Ok(None);
        }
        Ok(Some(Box::new(RecordingStart {
            recording: CallId::new(),
            request: self.request().await?,
        })))
    }
}

/// Checks, writes (off the window's thread) and returns the recording part to apply.
async fn save_settings(
    path: PathBuf,
    settings: Settings,
) -> Result<crate::settings::Recording, String> {
    let recording = settings.recording.validate()?;
    tokio::task::spawn_blocking(move || settings.save(&path))
        .await
        .map_err(|e| format!("the settings were not saved: {e}"))?
        .map_err(|e| format!("the settings were not saved: {e}"))?;
    Ok(recording)
}

async fn carry_out(
    handle: &mut Handle,
    command: UiCommand,
    policy: &Policy,
    notify: &Notifier,
) -> Result<(), String> {
    let engine_command = match command {
        UiCommand::Dial(target) => {
            let uri = Uri::parse(target.trim())
                .map_err(|e| format!("{target:?} is not a SIP URI: {e}"))?;
            let destination = driver::dns::first_hop(&uri, None).await?;
            let call = CallId::new();
            notify.send(UiEvent::Dialled {
                call,
                target: uri.to_string(),
            });
            let local = handle
                .listeners
                .first()
                .map(|l| l.address.ip().to_string())
                .unwrap_or_else(|| "127.0.0.1".into());
            Command::Dial {
                call,
                request: DialRequest {
                    target: uri,
                    from: NameAddr::new(Uri::sip(Some("verbatim"), &local, None)),
                    destination,
                    route: None,
                    credentials: None,
                    media_port: 0,
                    record: policy.with_call().await?,
                },
            }
        }
        UiCommand::Answer(call) => Command::Answer {
            call,
            media_port: 0,
            record: policy.with_call().await?,
        },
        UiCommand::Decline(call) => Command::Reject { call, status: 603 },
        UiCommand::Hangup(call) => Command::Hangup { call },
        UiCommand::Record(call) => Command::StartRecording {
            call,
            recording: CallId::new(),
            request: policy.request().await?,
        },
        UiCommand::StopRecording(call) => Command::StopRecording { call },
        UiCommand::PauseRecording(call) => Command::PauseRecording { call },
        UiCommand::ResumeRecording(call) => Command::ResumeRecording { call },
        UiCommand::Mute(call, muted) => Command::Mute { call, muted },
        UiCommand::Hold(call, true) => Command::Hold { call },
        UiCommand::Hold(call, false) => Command::Resume { call },
        UiCommand::Dtmf(call, digits) => Command::SendDtmf { call, digits },
        // Handled by the loop, which owns the history file and the policy.
        UiCommand::SaveHistory(_) | UiCommand::SaveSettings { .. } => return Ok(()),
    };
    handle
        .commands
        .send(engine_command)
        .map_err(|_| "the phone has stopped".to_owned())
}
