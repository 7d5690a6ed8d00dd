//! The sans-IO user agent: everything a call needs except sockets, clocks and devices.
//!
//! Drivers feed [`Input`]s with the current time through [`Engine::handle_input`], then drain
//! [`Engine::poll_output`] until it yields [`Output::Timeout`], and call `handle_input(now,
//! Input::Timeout)` when that instant arrives. Given the same seed and the same inputs, the
//! engine produces the same bytes.

mod admission;
mod api;
mod call;
mod conference;
mod conference_watch;
mod ids;
mod invite_session;
mod media;
mod notes;
mod outbound;
mod recording;
mod registration;
mod rng;
mod spans;
mod timers;
mod transfer;

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

pub use conference_watch::ConferenceMember;
pub use ids::{AccountId, CallId, CheckId, Ids, MediaSocket, RecordingId};
pub use recording::{
    RecorderCheckRequest, RecordingMode, RecordingRequest, RecordingStart, RecordingState,
};
pub use rng::EngineRng;
pub use transfer::TransferState;

use crate::media::srtp::SrtpPolicy;
use crate::sdp::{Codec, Negotiated};
use crate::sip::auth::Credentials;
use crate::sip::framing::{Frame, StreamFramer};
use crate::sip::message::{Message, Method, reason_phrase};
use crate::sip::transaction::{TimerConfig, TransactionLayer, TxEvent, TxKey};
use crate::sip::transport::Destination;
use crate::sip::uri::{NameAddr, Uri};

pub use admission::{AdmissionConfig, AdmissionStats};
pub use api::*;
use call::Call;
use call::MappedMedia;
use outbound::sanitize_reason;
use registration::Registration;
use spans::{command_span, owner_span};
use timers::Timer;

/// Who a client transaction belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxOwner {
    Register(AccountId),
    Invite(CallId),
    ReInvite(CallId),
    Update(CallId),
    Bye(CallId),
    Cancel(CallId),
    Ping(CallId),
    Recording(CallId),
    /// The last re-INVITE of a recording whose call ended (by the recording's media id).
    RecordingClose(RecordingId),
    /// The BYE that ends a recording of the call; shutdown waits for it. `report`: an
    /// unanswered one is news to the user (the recorder was not already known gone).
    RecordingBye {
        call: CallId,
        report: bool,
    },
    /// An OPTIONS asking the call's recorder whether it is still there.
    RecorderProbe(CallId),
    /// Our REFER asking the far end of a call to call someone else.
    Refer(CallId),
    /// A request of a "Test recorder" check.
    RecorderCheck(CheckId),
    /// Our SUBSCRIBE to the conference state of the focus a call is with.
    ConferenceSubscribe(CallId),
    Stateless,
}

/// The user agent core.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    now: Instant,
    rng: EngineRng,
    transactions: TransactionLayer,
    framers: HashMap<Destination, StreamFramer>,
    registrations: HashMap<AccountId, Registration>,
    /// The accounts incoming calls are matched to, for the rules of their own.
    called_accounts: Vec<CalledAccount>,
    calls: HashMap<CallId, Call>,
    tx_owner: HashMap<TxKey, TxOwner>,
    /// Requests moved from UDP to TCP for their size, as they were, in case TCP fails.
    udp_fallbacks: HashMap<TxKey, (Message, Destination)>,
    timers: BTreeMap<(Instant, u64), Timer>,
    /// Where each pending timer sits in `timers`: at most one of each kind per call/account.
    timer_index: HashMap<Timer, (Instant, u64)>,
    timer_seq: u64,
    transmits: VecDeque<(Destination, Vec<u8>)>,
    events: VecDeque<Event>,
    media: HashMap<CallId, media::CallMedia>,
    /// Media goes out before signalling: it is the latency-sensitive part.
    media_outputs: VecDeque<Output>,
    started_at: Instant,
    recordings: HashMap<CallId, recording::Recording>,
    recording_plans: HashMap<CallId, recording::RetryPlan>,
    /// Recordings whose call ended, by their media id: the final metadata is out, BYE next.
    closing_recordings: HashMap<RecordingId, recording::Recording>,
    /// Optional recordings asked for with the dial or answer, started once the call has media.
    pending_recordings: HashMap<CallId, RecordingStart>,
    /// Recorders' INVITEs waiting for the front end.
    recorder_invites: HashMap<CallId, recording::RecorderInvite>,
    /// Calls whose far end we asked to transfer, until the outcome.
    transfers_out: std::collections::HashSet<CallId>,
    /// The calls merged into our own conference (we are its focus), in the order they
    /// joined; empty when there is none.
    local_conference: Vec<CallId>,
    /// Our address as the far side of each first hop sees it (a registrar's `received` and
    /// `rport`, RFC 3581), when a NAT makes it differ from our own: the Contact we give
    /// requests that take that hop.
    nat_public: HashMap<Destination, SocketAddr>,
    /// Where a STUN server saw each call's media sockets, when a NAT maps them
    /// ([`Input::MediaMapped`]).
    media_public: HashMap<CallId, MappedMedia>,
    /// Calls whose far end is a conference focus, and our subscription to its roster.
    conference_watches: HashMap<CallId, conference_watch::ConferenceWatch>,
    /// Calls whose far end asked us to transfer, and the call we placed for it.
    transfers_in: HashMap<CallId, transfer::Followed>,
    /// Attended transfers we asked for: the call, and the consultation the far end is to
    /// replace.
    consultations: HashMap<CallId, transfer::Consultation>,
    /// Calls placed to follow an attended transfer, and the dialog their INVITE replaces.
    replaces_out: HashMap<CallId, crate::sip::replaces::Replaces>,
    /// Incoming calls that replace one of ours (RFC 3891), and that call.
    replacing_in: HashMap<CallId, CallId>,
    /// "Test recorder" checks in progress.
    recorder_checks: HashMap<CheckId, recording::RecorderCheck>,
    /// Recording BYEs still waiting for their answer.
    recording_byes: usize,
    shutting_down: bool,
    admission: admission::Admission,
}

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY";
const ACCEPT: &str = "application/sdp";
/// The reason phrase for refusing an offer whose answer would put our SRTP keys (SDES) on a
/// hop that is neither TLS nor loopback.
const SDES_NEEDS_TLS_PHRASE: &str = "SRTP Keys Need TLS";

impl Engine {
    pub fn new(config: EngineConfig, now: Instant) -> Engine {
        Engine {
            admission: admission::Admission::new(&config.admission, now),
            rng: EngineRng::new(config.seed),
            transactions: TransactionLayer::new(config.timers),
            config,
            now,
            framers: HashMap::new(),
            registrations: HashMap::new(),
            called_accounts: Vec::new(),
            calls: HashMap::new(),
            tx_owner: HashMap::new(),
            udp_fallbacks: HashMap::new(),
            timers: BTreeMap::new(),
            timer_index: HashMap::new(),
            timer_seq: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            media: HashMap::new(),
            media_outputs: VecDeque::new(),
            started_at: now,
            recordings: HashMap::new(),
            recording_plans: HashMap::new(),
            closing_recordings: HashMap::new(),
            pending_recordings: HashMap::new(),
            recorder_invites: HashMap::new(),
            transfers_out: Default::default(),
            conference_watches: HashMap::new(),
            local_conference: Vec::new(),
            nat_public: HashMap::new(),
            media_public: HashMap::new(),
            transfers_in: HashMap::new(),
            consultations: HashMap::new(),
            replaces_out: HashMap::new(),
            replacing_in: HashMap::new(),
            recorder_checks: HashMap::new(),
            recording_byes: 0,
            shutting_down: false,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Tells the engine the address a transport listens on (after the driver bound it).
    pub fn add_listener(&mut self, listener: Destination) {
        self.config
            .listeners
            .retain(|l| l.transport != listener.transport);
        self.config.listeners.push(listener);
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.now = now.max(self.now);
        match input {
            Input::Datagram { source, data } => self.on_bytes(source, &data),
            Input::Stream { source, data } => self.on_stream(source, &data),
            Input::StreamClosed { peer, reason } => {
                self.framers.remove(&peer);
                let reason = reason.unwrap_or_else(|| "connection closed".to_owned());
                self.transactions
                    .transport_failed(peer, &format!("cannot reach {peer}: {reason}"));
                self.recording_connection_lost(peer, &reason);
            }
            Input::Timeout => {}
            Input::Command(command) => self.on_command(command),
            Input::MediaPacket {
                socket: MediaSocket::Call(call),
                source,
                data,
            } => self.on_media_packet(call, source, &data),
            Input::MediaUnreachable {
                socket: MediaSocket::Recording { recording, .. },
                destination,
            } => self.on_recorder_unreachable(recording, destination),
            // A call's far end is judged by its media timeout and session timer.
            Input::MediaUnreachable {
                socket: MediaSocket::Call(_),
                ..
            } => {}
            Input::MediaPacket {
                socket: MediaSocket::Recording { recording, .. },
                data,
                ..
            } => self.on_recorder_rtcp(recording, &data),
            Input::MediaTick { call, captured } => self.on_media_tick(call, &captured),
            Input::MediaMapped { call, rtp, rtcp } => {
                self.media_public.insert(call, MappedMedia { rtp, rtcp });
            }
            Input::MediaBound {
                socket: MediaSocket::Recording { recording, stream },
                port,
            } => self.recording_stream_bound(recording, stream, port),
            // The engine never asks for a call's socket: the front end binds those.
            Input::MediaBound {
                socket: MediaSocket::Call(_),
                ..
            } => {}
        }
        self.run_timers();
        self.pump();
        self.report_transfer_progress();
    }

    /// The next output. Ends with [`Output::Timeout`] when there is nothing else to do.
    pub fn poll_output(&mut self) -> Output {
        if let Some(output) = self.media_outputs.pop_front() {
            return output;
        }
        if let Some((destination, data)) = self.transmits.pop_front() {
            return Output::Transmit { destination, data };
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        let tx = self.transactions.next_deadline();
        let ua = self.timers.keys().next().map(|(at, _)| *at);
        let next = match (tx, ua) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            // Nothing scheduled: an hour away keeps drivers simple (they always sleep on something).
            (None, None) => self.now + Duration::from_secs(3600),
        };
        Output::Timeout(next)
    }

    fn on_stream(&mut self, source: Destination, data: &[u8]) {
        let framer = self.framers.entry(source).or_default();
        framer.push(data);
        let mut frames = Vec::new();
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%source, %error, "unframeable stream, dropping its buffer");
                    self.framers.remove(&source);
                    break;
                }
            }
        }
        for frame in frames {
            match frame {
                Frame::Message(bytes) => self.on_bytes(source, &bytes),
                Frame::Ping => self.transmits.push_back((source, b"\r\n".to_vec())),
                Frame::Pong => {}
            }
        }
    }

    fn on_bytes(&mut self, source: Destination, data: &[u8]) {
        if data.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return; // keep-alive on UDP
        }
        let message = match Message::parse(data) {
            Ok(m) => m,
            Err(error) => {
                tracing::debug!(%source, %error, "unparseable message");
                let status = if matches!(error, crate::sip::message::ParseError::BadVersion(_)) {
                    505
                } else {
                    400
                };
                if self.admission.may_refuse(self.now) {
                    self.reject_unparseable(source, data, status, &error.to_string());
                }
                return;
            }
        };
        if let Err(error) = message.validate() {
            tracing::debug!(%source, %error, "invalid message");
            if message.is_request()
                && message.method() != Some(&Method::Ack)
                && self.admission.may_refuse(self.now)
            {
                self.respond_stateless(
                    &message,
                    source,
                    400,
                    &sanitize_reason(&error.to_string()),
                    &[],
                );
            }
            return;
        }
        // What the other end of one of our sessions says its Session-ID is (RFC 7989).
        if message.headers.contains("Session-ID")
            && let Some(call) = self.learn_session_id(&message)
            && let Some(session_id) = self.calls.get(&call).map(Call::session_id)
        {
            self.tell_recordings(call, notes::CallNote::SessionId(session_id));
        }
        if self.needs_admission(&message) {
            match self.admission.judge(self.now) {
                admission::Verdict::Admit => {}
                admission::Verdict::Refuse => {
                    let retry_after = admission::RETRY_AFTER_SECONDS.to_string();
                    self.respond_stateless(
                        &message,
                        source,
                        503,
                        reason_phrase(503),
                        &[("Retry-After", &retry_after)],
                    );
                    return;
                }
                admission::Verdict::Drop => return,
            }
            if self.ringing_is_full(&message) {
                // Statelessly, so a flooder that never ACKs gets no retransmissions.
                self.admission.stats.busy += 1;
                if self.admission.may_refuse(self.now) {
                    self.respond_stateless(&message, source, 486, reason_phrase(486), &[]);
                }
                return;
            }
        }
        self.transactions.on_message(self.now, message, source);
    }

    /// A request that would open a transaction outside every dialog we have: the kind a
    /// flood is made of. Our calls' and recordings' own requests, ACK, CANCEL and
    /// retransmissions always pass.
    fn needs_admission(&self, message: &Message) -> bool {
        if !message.is_request()
            || matches!(message.method(), Some(Method::Ack | Method::Cancel))
            || !self.transactions.is_new_request(message)
        {
            return false;
        }
        let Some(call_id) = message.call_id() else {
            return true;
        };
        !(self.is_call_dialog(call_id)
            || self.is_recording_dialog(call_id)
            || self.is_conference_subscription(call_id))
    }

    /// A new call while as many ring as the admission config allows (a recorder's INVITE
    /// is no call that rings, and passes).
    fn ringing_is_full(&self, request: &Message) -> bool {
        request.method() == Some(&Method::Invite)
            && request.to_header().is_ok_and(|to| to.tag().is_none())
            && !recording::is_recorder_invite(request)
            && self.ringing_calls() >= self.config.admission.max_ringing_calls
    }

    /// Requests admitted, refused and dropped since the start (see [`AdmissionConfig`]).
    pub fn admission_stats(&self) -> AdmissionStats {
        self.admission.stats
    }

    fn on_command(&mut self, command: Command) {
        let span = command_span(&command);
        let _in_span = span.enter();
        match command {
            Command::Register { account, config } => self.register(account, config),
            Command::Unregister { account } => self.unregister(account),
            Command::Dial { call, request } => self.dial(call, request),
            Command::Answer {
                call,
                media_port,
                record,
            } => self.answer_recorded(call, media_port, record),
            Command::Reject { call, status } => self.reject(call, status),
            Command::Hangup { call } => self.hangup(call),
            Command::Hold { call } => self.set_hold(call, true),
            Command::Resume { call } => self.set_hold(call, false),
            Command::Ping { call } => self.ping(call),
            Command::RequestOffer { call } => self.request_offer(call),
            Command::SendDtmf { call, digits } => self.send_dtmf(call, &digits),
            Command::Transfer { call, target } => self.transfer(call, target),
            Command::TransferToCall { call, consultation } => {
                self.transfer_to_call(call, consultation)
            }
            Command::FollowTransfer {
                call,
                new_call,
                request,
            } => self.follow_transfer(call, new_call, request),
            Command::DeclineTransfer { call, status } => self.decline_transfer(call, status),
            Command::CheckRecorder { check, request } => self.check_recorder(check, request),
            Command::SetCodecs(codecs) => {
                // No codec at all would make every call fail; the settings never send that.
                if !codecs.is_empty() {
                    self.config.codecs = codecs;
                }
            }
            Command::SetNotice(notice) => self.config.notice = notice,
            Command::SetCalledAccounts(accounts) => self.called_accounts = accounts,
            Command::Mute { call, muted } => {
                // In a conference the local user is muted towards everyone.
                for member in std::iter::once(call).chain(self.conference_peers(call)) {
                    self.set_muted(member, muted);
                }
            }
            Command::Merge { call, with } => self.merge(call, with),
            Command::StartRecording {
                call,
                recording,
                request,
            } => self.start_recording(call, recording, request),
            // A party of our conference is recorded by the conference's recording.
            Command::StopRecording { call } => {
                let owner = self.recording_owner(call);
                if !self.refuse_if_mandatory(owner, "stopped") {
                    self.stop_recording(owner);
                }
            }
            Command::AcceptRecorder {
                call,
                recording,
                media_ports,
            } => self.accept_recorder(call, recording, media_ports),
            Command::DeclineRecorder { call } => self.decline_recorder(call),
            Command::PauseRecording { call } => {
                let owner = self.recording_owner(call);
                if !self.refuse_if_mandatory(owner, "paused") {
                    self.pause_recording(owner, true);
                }
            }
            Command::ResumeRecording { call } => {
                self.pause_recording(self.recording_owner(call), false);
            }
            Command::Shutdown => self.shutdown(),
        }
    }

    fn shutdown(&mut self) {
        self.shutting_down = true;
        let calls: Vec<CallId> = self.calls.keys().copied().collect();
        for call in calls {
            self.hangup(call);
        }
        let accounts: Vec<AccountId> = self.registrations.keys().copied().collect();
        for account in accounts {
            self.unregister(account);
        }
        // Give BYE and un-REGISTER transactions time to finish, but never hang on exit.
        let deadline = self.now + 64 * self.config.timers.t1.min(Duration::from_millis(100));
        self.set_timer(deadline, Timer::ShutdownDeadline);
        self.check_shutdown_complete();
    }

    fn check_shutdown_complete(&mut self) {
        if self.shutting_down
            && self.calls.is_empty()
            && self.registrations.is_empty()
            && self.recording_byes == 0
        {
            self.shutting_down = false;
            self.cancel_timer(Timer::ShutdownDeadline);
            self.events.push_back(Event::ShutdownComplete);
        }
    }

    /// Moves everything the transaction layer produced to our queues and owners.
    fn pump(&mut self) {
        loop {
            while let Some(t) = self.transactions.poll_transmit() {
                self.transmits.push_back((t.destination, t.data));
            }
            let Some(event) = self.transactions.poll_event() else {
                break;
            };
            match event {
                TxEvent::Request {
                    key,
                    request,
                    source,
                } => self.on_request(key, request, source),
                TxEvent::Response { key, response } => {
                    let owner = self.tx_owner.get(&key).copied();
                    let is_final = response.status().is_some_and(|s| s >= 200);
                    if is_final
                        && !matches!(
                            owner,
                            Some(
                                TxOwner::Invite(_)
                                    | TxOwner::ReInvite(_)
                                    | TxOwner::Recording(_)
                                    | TxOwner::RecordingClose(_)
                            )
                        )
                    {
                        self.tx_owner.remove(&key);
                    }
                    if is_final {
                        self.udp_fallbacks.remove(&key);
                    }
                    self.on_response(owner, key, response);
                }
                TxEvent::Ack { request, source } => match self.recording_for_dialog(&request) {
                    Some(call) => self.on_recorder_ack(call, &request),
                    None => self.on_ack(request, source),
                },
                TxEvent::StrayResponse { response } => self.on_stray_response(response),
                TxEvent::Timeout { key } => {
                    self.udp_fallbacks.remove(&key);
                    let owner = self.tx_owner.remove(&key);
                    self.on_tx_timeout(owner, key);
                }
                TxEvent::TransportError { key, reason } => {
                    let owner = self.tx_owner.remove(&key);
                    let fell_back = owner.and_then(|owner| self.fall_back_to_udp(&key, owner));
                    if fell_back.is_none() {
                        self.on_transport_error(owner, key, reason);
                    }
                }
                TxEvent::NoAck { key } => {
                    tracing::debug!(?key, "final response never acknowledged");
                }
            }
        }
        // Client INVITE transactions stay owned until the layer forgets them (2xx retransmits).
        while let Some(key) = self.transactions.poll_ended() {
            self.tx_owner.remove(&key);
            self.udp_fallbacks.remove(&key);
        }
    }

    fn on_response(&mut self, owner: Option<TxOwner>, key: TxKey, response: Message) {
        let span = owner_span(owner);
        let _in_span = span.enter();
        match owner {
            Some(TxOwner::Register(account)) => self.on_register_response(account, response),
            Some(TxOwner::Invite(call)) => self.on_invite_response(call, key, response),
            Some(TxOwner::ReInvite(call)) => self.on_reinvite_response(call, response, true),
            Some(TxOwner::Update(call)) => self.on_reinvite_response(call, response, false),
            Some(TxOwner::Bye(call)) => {
                if response.status().is_some_and(|s| s >= 200) {
                    self.finish_bye(call);
                }
            }
            Some(TxOwner::Recording(call)) => self.on_recording_response(call, key, response),
            Some(TxOwner::RecordingClose(closing)) => {
                if response.status().is_some_and(|s| s >= 200) {
                    self.on_closing_response(closing, Some(response));
                }
            }
            Some(TxOwner::RecordingBye { .. }) => {
                if response.status().is_some_and(|s| s >= 200) {
                    self.recording_bye_done();
                }
            }
            Some(TxOwner::RecorderProbe(call)) => self.on_probe_response(call, &response),
            Some(TxOwner::Refer(call)) => self.on_refer_response(call, &response),
            Some(TxOwner::RecorderCheck(check)) => self.on_check_response(check, &response),
            Some(TxOwner::ConferenceSubscribe(call)) => self.on_subscribe_response(call, &response),
            Some(TxOwner::Cancel(_)) | Some(TxOwner::Stateless) | None => {}
            Some(TxOwner::Ping(call)) => {
                if matches!(response.status(), Some(481) | Some(408)) {
                    self.end_call(
                        call,
                        response.status(),
                        "dialog no longer exists",
                        Party::Remote,
                    );
                }
            }
        }
    }

    fn on_tx_timeout(&mut self, owner: Option<TxOwner>, key: TxKey) {
        let span = owner_span(owner);
        let _in_span = span.enter();
        match owner {
            Some(TxOwner::Register(account)) => self.on_register_timeout(account),
            Some(TxOwner::Invite(call)) => self.on_invite_timeout(call, key),
            Some(TxOwner::ReInvite(call))
            | Some(TxOwner::Update(call))
            | Some(TxOwner::Ping(call)) => {
                self.send_bye(call);
                self.end_call(call, Some(408), "peer stopped answering", Party::Remote);
            }
            Some(TxOwner::Bye(call)) => self.finish_bye(call),
            Some(TxOwner::Recording(call)) => {
                self.recording_failed(call, "the recorder did not answer".into())
            }
            Some(TxOwner::RecordingClose(closing)) => self.on_closing_response(closing, None),
            Some(TxOwner::RecordingBye { call, report }) => {
                self.recording_bye_unanswered(call, report)
            }
            Some(TxOwner::RecorderProbe(call)) => self.recorder_silent(call),
            Some(TxOwner::Refer(call)) => self.on_refer_timeout(call),
            Some(TxOwner::RecorderCheck(check)) => self.on_check_timeout(check),
            Some(TxOwner::ConferenceSubscribe(call)) => self.on_subscribe_timeout(call),
            Some(TxOwner::Cancel(_)) | Some(TxOwner::Stateless) | None => {}
        }
    }

    fn on_transport_error(&mut self, owner: Option<TxOwner>, key: TxKey, reason: String) {
        match owner {
            Some(TxOwner::Register(account)) => self.registration_error(account, reason),
            Some(TxOwner::Invite(call)) => self.on_invite_transport_error(call, key, reason),
            Some(TxOwner::Recording(call)) => self.recording_failed(call, reason),
            other => self.on_tx_timeout(other, key),
        }
    }

    fn on_request(&mut self, key: TxKey, request: Message, source: Destination) {
        let Some(method) = request.method().cloned() else {
            return;
        };
        if let Some(uri) = request.request_uri()
            && !uri.is_sip()
        {
            self.respond(&key, &request, 416, None);
            return;
        }
        if method != Method::Cancel {
            // Inside a recording session the recorder may require siprec; nowhere else.
            let in_recording = self.recording_for_dialog(&request).is_some()
                || self.closing_recording_for_dialog(&request)
                || (method == Method::Invite && recording::is_recorder_invite(&request));
            let unsupported: Vec<String> = request
                .headers
                .list("Require")
                .into_iter()
                // Session timers are ours everywhere (RFC 4028); siprec only in recordings;
                // replaces on a new call's INVITE (RFC 3891).
                .filter(|tag| {
                    !(tag.eq_ignore_ascii_case("timer")
                        || (in_recording && tag.eq_ignore_ascii_case("siprec"))
                        || (method == Method::Invite
                            && !in_recording
                            && tag.eq_ignore_ascii_case("replaces")))
                })
                .map(str::to_owned)
                .collect();
            if !unsupported.is_empty() {
                let tag = self.rng.token(8);
                let mut response = request.response(420, reason_phrase(420), Some(&tag));
                response.headers.push("Unsupported", unsupported.join(", "));
                self.send_response(&key, response);
                return;
            }
        }
        // Recording sessions and calls are told apart here, so neither looks at the other's
        // requests.
        if method != Method::Cancel && self.route_to_recording(&key, &request, &method, source) {
            return;
        }
        match method {
            Method::Invite => self.on_invite(key, request, source),
            Method::Bye => self.on_bye(key, request),
            Method::Cancel => self.on_cancel(key, request),
            Method::Options => self.on_options(key, request),
            Method::Update => self.on_update(key, request),
            Method::Info => self.respond_in_dialog_or_481(key, request),
            Method::Refer => self.on_refer(key, request),
            Method::Notify => self.on_notify(key, request),
            Method::Other(_) => self.respond(&key, &request, 501, None),
            _ => {
                let tag = self.rng.token(8);
                let mut response = request.response(405, reason_phrase(405), Some(&tag));
                response.headers.push("Allow", ALLOW);
                self.send_response(&key, response);
            }
        }
    }

    /// Hands a request of a recording session (ours, one closing, or a recorder's new one)
    /// to the recording side; false when it is not one.
    fn route_to_recording(
        &mut self,
        key: &TxKey,
        request: &Message,
        method: &Method,
        source: Destination,
    ) -> bool {
        if let Some(call) = self.recording_for_dialog(request) {
            self.recorder_heard(call);
            match method {
                Method::Invite => self.on_recorder_reinvite(call, key.clone(), request.clone()),
                Method::Update => self.on_recorder_update(call, key.clone(), request.clone()),
                Method::Options | Method::Info => self.answer_in_recording(call, key, request),
                Method::Bye => {
                    self.respond(key, request, 200, None);
                    self.recorder_hung_up(call, recording::reason_text(request));
                }
                _ => return false,
            }
            return true;
        }
        if self.closing_recording_for_dialog(request) {
            match method {
                // Our closing re-INVITE is in flight (RFC 3261 14.2).
                Method::Invite => self.respond(key, request, 491, None),
                Method::Bye => {
                    self.respond(key, request, 200, None);
                    self.closing_recording_ended(request);
                }
                _ => return false,
            }
            return true;
        }
        let new_invite =
            *method == Method::Invite && request.to_header().is_ok_and(|to| to.tag().is_none());
        if new_invite && !self.shutting_down && recording::is_recorder_invite(request) {
            self.on_recorder_invite(key.clone(), request.clone(), source);
            return true;
        }
        false
    }

    fn on_options(&mut self, key: TxKey, request: Message) {
        let tag = self.rng.token(8);
        let mut response = request.response(200, "OK", Some(&tag));
        response.headers.push("Accept", ACCEPT);
        self.send_response(&key, response);
    }
}

#[cfg(test)]
mod tests;
