//! The phone both front ends drive, the command line and the window: the driver running the
//! engine, the ids of what they start, the media sockets each call and recording needs
//! before its command goes out, the recording policy, following transfers, the built-in
//! recorder and the echo test. A front end decides what to do; this does it one way for both.

pub mod builtin_recorder;
pub mod echo;
pub mod recording_policy;

use core::time::Duration;

use crate::driver::Handle;
use crate::engine::{
    CallId, CheckId, Command, DialRequest, EngineConfig, Event, Ids, KeySource, MediaSocket,
    RecorderCheckRequest, RecordingId, RecordingMode, RecordingStart,
};
use crate::sip::auth::Credentials;
use crate::sip::transport::Destination;
use crate::sip::uri::{NameAddr, Uri};

pub use recording_policy::RecordingPolicy;

/// The parts of an engine's configuration that come from the world rather than the
/// settings: a fresh seed, the wall clock now, and the operating system's CSPRNG for SRTP
/// keys. The engine reads none of them itself, so its tests replay exactly.
pub fn live_engine_config(config: EngineConfig) -> EngineConfig {
    EngineConfig {
        seed: rand::random(),
        wall_clock_at_start: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
        key_source: os_key_source(),
        ..config
    }
}

/// SRTP master keys from the operating system's CSPRNG.
pub fn os_key_source() -> KeySource {
    KeySource::new(|buffer: &mut [u8]| {
        use rand::TryRngCore;
        if rand::rngs::OsRng.try_fill_bytes(buffer).is_err() {
            // Without entropy there is no safe key: zeros, which the engine refuses to use.
            buffer.fill(0);
        }
    })
}

/// Where an outgoing call goes and as whom: what a front end works out from the account
/// and what the user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub target: Uri,
    pub from: NameAddr,
    /// The first hop, resolved: the target itself or an outbound proxy.
    pub destination: Destination,
    /// Route header for an outbound proxy (loose routing), if any.
    pub route: Option<Uri>,
    pub credentials: Option<Credentials>,
    /// The account's own recording settings (over the phone's policy) for this call.
    pub recording: crate::settings::AccountRecording,
    /// The account's SRTP policy for this call; None: the phone's.
    pub srtp: Option<crate::media::srtp::SrtpPolicy>,
}

/// Whether a call is recorded from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFromStart {
    /// As the recording policy says (`auto`).
    AsPolicySays,
    Yes,
    No,
}

/// The running phone.
#[derive(Debug)]
pub struct Phone {
    /// The driver: its events are the front end's to read.
    pub handle: Handle,
    pub policy: RecordingPolicy,
    ids: Ids,
    /// The account recording settings of each call placed or answered on an account that
    /// has its own: its record button and transfers use them too.
    call_recording: std::collections::HashMap<CallId, crate::settings::AccountRecording>,
}

impl Phone {
    pub fn new(handle: Handle, policy: RecordingPolicy) -> Phone {
        Phone {
            handle,
            policy,
            ids: Ids::default(),
            call_recording: std::collections::HashMap::new(),
        }
    }

    /// The policy for `call`: the phone's, with its account's settings over it.
    fn policy_of(&self, call: CallId) -> RecordingPolicy {
        match self.call_recording.get(&call) {
            Some(account) => self.policy.for_account(account),
            None => self.policy.clone(),
        }
    }

    /// Notes the account settings a call is on (nothing kept when it has none of its own).
    fn note_account(&mut self, call: CallId, account: &crate::settings::AccountRecording) {
        if *account != crate::settings::AccountRecording::default() {
            self.call_recording.insert(call, account.clone());
        }
    }

    /// Tells the engine which accounts calls arrive for, so that each incoming call is
    /// answered under its own account's SRTP policy and notice. An account whose own notice
    /// cannot be read keeps the rest of its rules (and the phone's notice); the error says
    /// which.
    pub fn set_called_accounts(&self, accounts: &[crate::settings::Account]) -> Result<(), String> {
        let mut problems = Vec::new();
        let called = accounts
            .iter()
            .filter(|account| account.enabled)
            .map(|account| {
                let notice = match account.recording.notice.as_ref().map(|n| n.load()) {
                    Some(Ok(notice)) => Some(notice),
                    Some(Err(problem)) => {
                        problems.push(format!("{problem} (account {:?})", account.name));
                        None
                    }
                    None => None,
                };
                crate::engine::CalledAccount {
                    name: account.name.clone(),
                    aor: account.aor.uri.clone(),
                    srtp: account.srtp,
                    notice,
                }
            })
            .collect();
        self.send(Command::SetCalledAccounts(called))?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The call ended: its account settings are forgotten.
    pub fn forget_call(&mut self, call: CallId) {
        self.call_recording.remove(&call);
    }

    /// Places a call; its media port is bound first and, when it is recorded from the
    /// start, its recording's too.
    pub async fn dial(
        &mut self,
        outgoing: Outgoing,
        record: RecordFromStart,
    ) -> Result<CallId, String> {
        let call = self.ids.call();
        self.note_account(call, &outgoing.recording);
        let record = self
            .recording_from_start(record, &self.policy_of(call))
            .await?;
        let request = self.dial_request(call, outgoing, record).await?;
        self.send(Command::Dial { call, request })?;
        Ok(call)
    }

    /// Answers an incoming call, recorded from the answer when the policy says so.
    pub async fn answer(&mut self, call: CallId) -> Result<(), String> {
        self.answer_on(call, &crate::settings::AccountRecording::default())
            .await
    }

    /// Answers an incoming call that came for an account with recording settings of its own
    /// (over the phone's policy, for the answer and the record button).
    pub async fn answer_on(
        &mut self,
        call: CallId,
        account: &crate::settings::AccountRecording,
    ) -> Result<(), String> {
        self.note_account(call, account);
        let record = self
            .recording_from_start(RecordFromStart::AsPolicySays, &self.policy_of(call))
            .await?;
        let record = self.bind_recording(record).await?;
        let media_port = self.handle.bind_media(MediaSocket::Call(call)).await?;
        self.send(Command::Answer {
            call,
            media_port,
            record,
        })
    }

    /// Starts recording a call now (the record button).
    pub async fn record(&mut self, call: CallId) -> Result<RecordingId, String> {
        let mut request = self.policy_of(call).request().await?;
        let recording = self.ids.recording();
        request.media_ports = self
            .bind_recording_streams(recording, request.mode.stream_count())
            .await?;
        self.send(Command::StartRecording {
            call,
            recording,
            request,
        })?;
        Ok(recording)
    }

    /// Lets the recorder that asked record the call (SRS-initiated).
    pub async fn accept_recorder(&mut self, call: CallId) -> Result<RecordingId, String> {
        let recording = self.ids.recording();
        // As many as a two-party call has voices: a recorder asking for more streams gets
        // the rest declined.
        let media_ports = self
            .bind_recording_streams(recording, RecordingMode::Separate.stream_count())
            .await?;
        self.send(Command::AcceptRecorder {
            call,
            recording,
            media_ports,
        })?;
        Ok(recording)
    }

    /// We are being transferred: call the target as asked, or, when where it goes could not
    /// be worked out, tell the transferor it was not found. Returns the new call.
    pub async fn follow_transfer(
        &mut self,
        call: CallId,
        target: Result<Outgoing, String>,
    ) -> Result<CallId, String> {
        let outgoing = match target {
            Ok(outgoing) => outgoing,
            Err(problem) => {
                self.send(Command::DeclineTransfer { call, status: 404 })?;
                return Err(format!("the transfer was not followed: {problem}"));
            }
        };
        let new_call = self.ids.call();
        self.note_account(new_call, &outgoing.recording);
        // The call the transfer places is recorded as any other call is.
        let record = match self
            .recording_from_start(RecordFromStart::AsPolicySays, &self.policy_of(new_call))
            .await
        {
            Ok(record) => record,
            Err(problem) => {
                self.send(Command::DeclineTransfer { call, status: 500 })?;
                return Err(format!("the transfer was not followed: {problem}"));
            }
        };
        match self.dial_request(new_call, outgoing, record).await {
            Ok(request) => {
                self.send(Command::FollowTransfer {
                    call,
                    new_call,
                    request,
                })?;
                Ok(new_call)
            }
            Err(problem) => {
                self.send(Command::DeclineTransfer { call, status: 500 })?;
                Err(format!("the transfer was not followed: {problem}"))
            }
        }
    }

    /// "Test recorder": the recorder typed (empty: the built-in one) is asked OPTIONS and
    /// given a short test recording session, as `identity`.
    pub async fn check_recorder(
        &mut self,
        typed: &str,
        identity: NameAddr,
    ) -> Result<CheckId, String> {
        let (srs, destination) = self.policy.check_target(typed).await?;
        let check = self.ids.check();
        self.send(Command::CheckRecorder {
            check,
            request: RecorderCheckRequest {
                srs,
                destination,
                credentials: self.policy.credentials.clone(),
                identity,
            },
        })?;
        Ok(check)
    }

    /// An id for a check that failed before it could start, for the front end's report.
    pub fn failed_check(&mut self) -> CheckId {
        self.ids.check()
    }

    /// Commands that start nothing new (hang up, hold, mute, DTMF, pause, ...).
    pub fn send(&self, command: Command) -> Result<(), String> {
        self.handle
            .commands
            .send(command)
            .map_err(|_| "the phone has stopped".to_owned())
    }

    /// Ends calls and registrations cleanly, but never waits longer than `limit`.
    pub async fn shut_down(&mut self, limit: Duration) {
        if self.send(Command::Shutdown).is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + limit;
        while let Ok(Some(event)) =
            tokio::time::timeout_at(deadline, self.handle.events.recv()).await
        {
            if event == Event::ShutdownComplete {
                return;
            }
        }
    }

    async fn recording_from_start(
        &self,
        record: RecordFromStart,
        policy: &RecordingPolicy,
    ) -> Result<Option<RecordingStartPlan>, String> {
        let wanted = match record {
            RecordFromStart::AsPolicySays => policy.records_every_call(),
            RecordFromStart::Yes => true,
            RecordFromStart::No => false,
        };
        if !wanted {
            return Ok(None);
        }
        Ok(Some(RecordingStartPlan(policy.request().await?)))
    }

    /// Binds the recording's sockets last, once everything that could fail has been
    /// worked out, so that no socket is left without a session to release it.
    async fn bind_recording(
        &mut self,
        plan: Option<RecordingStartPlan>,
    ) -> Result<Option<Box<RecordingStart>>, String> {
        let Some(RecordingStartPlan(mut request)) = plan else {
            return Ok(None);
        };
        let recording = self.ids.recording();
        request.media_ports = self
            .bind_recording_streams(recording, request.mode.stream_count())
            .await?;
        Ok(Some(Box::new(RecordingStart { recording, request })))
    }

    /// A socket pair of its own for each of a recording's `count` streams; their RTP ports.
    async fn bind_recording_streams(
        &self,
        recording: RecordingId,
        count: usize,
    ) -> Result<Vec<u16>, String> {
        let mut ports = Vec::with_capacity(count);
        for stream in 0..count {
            let socket = MediaSocket::Recording { recording, stream };
            match self.handle.bind_media(socket).await {
                Ok(port) => ports.push(port),
                Err(error) => {
                    // No recording will start to release the ones already bound.
                    for earlier in 0..stream {
                        let socket = MediaSocket::Recording {
                            recording,
                            stream: earlier,
                        };
                        self.handle.release_media(socket);
                    }
                    return Err(error);
                }
            }
        }
        Ok(ports)
    }

    async fn dial_request(
        &mut self,
        call: CallId,
        outgoing: Outgoing,
        record: Option<RecordingStartPlan>,
    ) -> Result<DialRequest, String> {
        let notice = outgoing
            .recording
            .notice
            .as_ref()
            .map(crate::settings::NoticeChoice::load)
            .transpose()?;
        let record = self.bind_recording(record).await?;
        let media_port = self.handle.bind_media(MediaSocket::Call(call)).await?;
        Ok(DialRequest {
            target: outgoing.target,
            from: outgoing.from,
            destination: outgoing.destination,
            route: outgoing.route,
            credentials: outgoing.credentials,
            media_port,
            record,
            srtp: outgoing.srtp,
            notice,
        })
    }
}

/// A recording resolved but not yet given sockets.
struct RecordingStartPlan(crate::engine::RecordingRequest);
