//! The engine's face to its drivers and front ends: its configuration, the commands and
//! inputs it takes, the events and outputs it gives, and the states they carry.

use super::*;

/// Where SRTP keys come from: a function that fills a buffer with secret random bytes.
#[derive(Clone)]
pub struct KeySource(std::sync::Arc<FillSecret>);

type FillSecret = dyn Fn(&mut [u8]) + Send + Sync;

impl KeySource {
    /// No keys at all: SRTP cannot be set up. The default, so that an engine nobody gave a
    /// CSPRNG (the front ends give the OS's) fails loudly rather than using guessable keys.
    pub fn unavailable() -> KeySource {
        KeySource(std::sync::Arc::new(|buffer: &mut [u8]| buffer.fill(0)))
    }

    pub fn new(fill: impl Fn(&mut [u8]) + Send + Sync + 'static) -> KeySource {
        KeySource(std::sync::Arc::new(fill))
    }

    /// A fresh master key and salt, or None when the source failed.
    pub fn key_salt(&self) -> Option<[u8; 30]> {
        let mut key = [0u8; 30];
        (self.0)(&mut key);
        key.iter().any(|b| *b != 0).then_some(key)
    }
}

impl core::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeySource")
    }
}

/// Requests over UDP larger than this go over TCP when possible (RFC 3261 18.1.1).
pub const UDP_SIZE_LIMIT: usize = 1300;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub seed: u64,
    pub user_agent: String,
    /// The address each transport listens on; Via and Contact are built from them.
    pub listeners: Vec<Destination>,
    pub timers: TimerConfig,
    /// End a connected call when no media arrived for this long (None: never).
    pub no_media_timeout: Option<Duration>,
    /// How often a registration keeps its flow open (CRLF keep-alives, RFC 5626 style): on
    /// TCP and TLS always, on UDP once the registrar showed we are behind a NAT.
    pub keepalive_interval: Duration,
    /// How often a recording session's recorder is asked (in-dialog OPTIONS) whether it is
    /// still there (None: never), and how long it has to answer before it counts as gone.
    pub recorder_probe_interval: Option<Duration>,
    pub recorder_answer_deadline: Duration,
    /// Codecs in preference order.
    pub codecs: Vec<Codec>,
    /// The user part of our Contact when no account names one.
    pub contact_user: String,
    /// Wall-clock time (since the Unix epoch) at the instant the engine was created; RTCP
    /// needs it for NTP timestamps and the engine reads no clock itself.
    pub wall_clock_at_start: Duration,
    /// SRTP policy for calls (RFC 4568 SDES keys).
    pub srtp: SrtpPolicy,
    /// Fills SRTP master keys and salts. Must be a CSPRNG in real use
    /// (`phone::os_key_source`); tests may pass a deterministic one. None by default.
    pub key_source: KeySource,
    /// Change an established session (hold, resume) with UPDATE instead of re-INVITE when
    /// the peer allows it.
    pub modify_with_update: bool,
    /// Stop or pause recording when the other side's `a=recordpref` asks for it (off when
    /// recording is mandatory).
    pub honour_recordpref: bool,
    /// Recorders (by source address) whose INVITEs may start recording a call
    /// (SRS-initiated recording, RFC 7866); everyone else gets 403.
    pub recorders_allowed: Vec<IpAddr>,
    /// How much unsolicited traffic is taken before refusing it.
    pub admission: AdmissionConfig,
    /// What tells the far end, by ear, that the call is recorded, and the local user's cues.
    pub notice: crate::recording::notice::NoticeConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            seed: 0,
            user_agent: format!("Verbatim/{}", env!("CARGO_PKG_VERSION")),
            listeners: Vec::new(),
            timers: TimerConfig::default(),
            no_media_timeout: Some(Duration::from_secs(30)),
            // RFC 5626 suggests 95-120 s for TCP flows; NAT bindings for UDP often last
            // under a minute.
            keepalive_interval: Duration::from_secs(30),
            recorder_probe_interval: Some(Duration::from_secs(2)),
            recorder_answer_deadline: Duration::from_secs(4),
            codecs: vec![
                Codec::Opus { inband_fec: true },
                Codec::G722,
                Codec::Pcmu,
                Codec::Pcma,
            ],
            contact_user: "verbatim".into(),
            wall_clock_at_start: Duration::ZERO,
            srtp: SrtpPolicy::Off,
            key_source: KeySource::unavailable(),
            modify_with_update: false,
            honour_recordpref: true,
            recorders_allowed: Vec::new(),
            admission: AdmissionConfig::default(),
            notice: crate::recording::notice::NoticeConfig::default(),
        }
    }
}

/// A SIP account to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    pub aor: NameAddr,
    pub registrar: Uri,
    /// Where REGISTER is sent (the resolved registrar or outbound proxy).
    pub destination: Destination,
    pub credentials: Option<Credentials>,
    pub expires: u32,
    /// An outbound proxy to route REGISTER through (loose routing), if any.
    pub route: Option<Uri>,
}

/// An outgoing call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRequest {
    pub target: Uri,
    pub from: NameAddr,
    /// The first hop: the target itself or an outbound proxy, already resolved.
    pub destination: Destination,
    /// Route header for an outbound proxy (loose routing), if any.
    pub route: Option<Uri>,
    pub credentials: Option<Credentials>,
    /// The local RTP port the driver bound for this call.
    pub media_port: u16,
    /// Record the call: a mandatory recording must be up before the INVITE goes out; an
    /// optional one starts when the call has media.
    pub record: Option<Box<RecordingStart>>,
    /// This call's SRTP policy (its account's); None: the phone's.
    pub srtp: Option<SrtpPolicy>,
    /// This call's recording notice and cues (its account's); None: the phone's.
    pub notice: Option<crate::recording::notice::NoticeConfig>,
}

/// An account calls may arrive for, with what differs for its calls from the phone's own
/// rules. The engine has to know before the front end sees the call: an INVITE that could
/// never be answered under the account's SRTP policy is refused at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalledAccount {
    /// What the front end calls it; incoming calls for it are reported under this name.
    pub name: String,
    pub aor: Uri,
    /// None: the phone's.
    pub srtp: Option<SrtpPolicy>,
    /// Its own recording notice and cues; None: the phone's.
    pub notice: Option<crate::recording::notice::NoticeConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    Register {
        account: AccountId,
        config: AccountConfig,
    },
    Unregister {
        account: AccountId,
    },
    Dial {
        call: CallId,
        request: DialRequest,
    },
    /// Answer an incoming call with media on `media_port`; with `record`, the call is
    /// recorded from the answer (a mandatory recording must be up before the 200 OK).
    Answer {
        call: CallId,
        media_port: u16,
        record: Option<Box<RecordingStart>>,
    },
    /// Refuse an incoming call (486 Busy Here, 603 Decline, ...).
    Reject {
        call: CallId,
        status: u16,
    },
    /// CANCEL, BYE or a final refusal, whichever the call's state calls for.
    Hangup {
        call: CallId,
    },
    Hold {
        call: CallId,
    },
    Resume {
        call: CallId,
    },
    /// Send an in-dialog OPTIONS (a liveness probe).
    Ping {
        call: CallId,
    },
    /// Send a re-INVITE without SDP so the peer offers afresh.
    RequestOffer {
        call: CallId,
    },
    /// Send DTMF digits (RFC 4733 telephone-events).
    SendDtmf {
        call: CallId,
        digits: String,
    },
    /// Merge two connected calls into a conference with this phone as focus and mixer, or
    /// add one of them to the conference the other is in.
    Merge {
        call: CallId,
        with: CallId,
    },
    /// Send silence instead of the microphone.
    Mute {
        call: CallId,
        muted: bool,
    },
    /// Record the call: open a recording session to the recorder (RFC 7866). `recording`
    /// names the recording's media sockets in the driver.
    StartRecording {
        call: CallId,
        recording: RecordingId,
        request: RecordingRequest,
    },
    StopRecording {
        call: CallId,
    },
    /// Let the recorder that asked ([`Event::RecorderAsks`]) record the call; `recording`
    /// names the recording's media sockets in the driver, and `media_ports` are their RTP
    /// ports, one per stream the recorder may get (two: a two-party call has two voices).
    AcceptRecorder {
        call: CallId,
        recording: RecordingId,
        media_ports: Vec<u16>,
    },
    /// Refuse the recorder that asked (603).
    DeclineRecorder {
        call: CallId,
    },
    PauseRecording {
        call: CallId,
    },
    ResumeRecording {
        call: CallId,
    },
    /// Blind transfer: ask the far end of a connected call to call `target` instead (REFER);
    /// [`Event::Transfer`] says how it goes, and our call ends when the target answers.
    Transfer {
        call: CallId,
        target: Uri,
    },
    /// Attended transfer: ask the far end of `call` (on hold, say) to call the far end of
    /// `consultation` in its place (REFER with a Replaces for the consultation's dialog,
    /// RFC 5589 7); [`Event::Transfer`] says how it goes, and both our calls end when it
    /// succeeds.
    TransferToCall {
        call: CallId,
        consultation: CallId,
    },
    /// Place the call a transferor asked for ([`Event::TransferRequested`]) as `new_call`;
    /// its progress is reported to the transferor.
    FollowTransfer {
        call: CallId,
        new_call: CallId,
        request: DialRequest,
    },
    /// Do not follow the transfer (or its target could not be resolved): the transferor
    /// hears this status.
    DeclineTransfer {
        call: CallId,
        status: u16,
    },
    /// "Test recorder": OPTIONS to the recorder, then a short test recording session with
    /// no media; [`Event::RecorderChecked`] says what was found.
    CheckRecorder {
        check: CheckId,
        request: RecorderCheckRequest,
    },
    /// Offer these codecs, best first, from the next offer or answer on.
    SetCodecs(Vec<crate::sdp::Codec>),
    /// The recording notice and cues for calls from now on (calls in progress keep theirs).
    SetNotice(crate::recording::notice::NoticeConfig),
    /// The accounts incoming calls are for, from now on: a call to one (by its To, else its
    /// Request-URI's user) follows that account's rules rather than the phone's.
    SetCalledAccounts(Vec<CalledAccount>),
    /// End every call and registration; [`Event::ShutdownComplete`] follows.
    Shutdown,
}

/// Commands are rare and each input is moved once, so the size difference between variants
/// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A datagram from `source` (a UDP source or a stream connection's peer).
    Datagram {
        source: Destination,
        data: Vec<u8>,
    },
    /// Bytes from a TCP or TLS connection.
    Stream {
        source: Destination,
        data: Vec<u8>,
    },
    /// A TCP or TLS connection closed or could not be opened; `reason` says why when it
    /// was an error (refused, TLS certificate rejected, ...).
    StreamClosed {
        peer: Destination,
        reason: Option<String>,
    },
    /// The instant announced by [`Output::Timeout`] has come (or passed).
    Timeout,
    Command(Command),
    /// An ICMP error said `destination`, where this socket sent media, cannot be reached.
    MediaUnreachable {
        socket: MediaSocket,
        destination: SocketAddr,
    },
    /// A datagram on a call's or a recording's RTP or RTCP socket.
    MediaPacket {
        socket: MediaSocket,
        source: SocketAddr,
        data: Vec<u8>,
    },
    /// A STUN server (RFC 8489) saw this call's RTP socket, and its RTCP socket when it
    /// answered for that too, at these addresses: a NAT maps them. The call's SDP names them
    /// when its signalling leaves this machine.
    MediaMapped {
        call: CallId,
        rtp: SocketAddr,
        rtcp: Option<SocketAddr>,
    },
    /// The socket pair asked for by [`Output::BindMedia`] is bound at this RTP port, or
    /// could not be (why).
    MediaBound {
        socket: MediaSocket,
        port: Result<u16, String>,
    },
    /// 20 ms have passed for this call: the frame just captured (48 kHz mono, 960 samples;
    /// empty for silence). The engine answers with [`Output::Playback`].
    MediaTick {
        call: CallId,
        captured: Vec<f32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationState {
    Registering,
    Registered { expires: u32 },
    Failed { reason: String },
    Unregistered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    Calling,
    Ringing,
    /// Incoming, waiting for the user's answer.
    Incoming,
    Connected {
        local_hold: bool,
        remote_hold: bool,
    },
    Terminating,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Local,
    Remote,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndReason {
    /// The SIP status that ended the call, when one did.
    pub status: Option<u16>,
    pub text: String,
    pub by: Party,
    /// True when the call had been connected (a normal hang-up rather than a failure).
    pub was_connected: bool,
    pub kind: EndKind,
}

/// How a call ended, for what a front end does next (the words are in [`EndReason::text`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EndKind {
    /// Hung up, refused or failed: `text` says which.
    #[default]
    Ended,
    /// The far end was handed to a transfer target: our part is over, the call goes on.
    Transferred,
}

#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    Registration {
        account: AccountId,
        state: RegistrationState,
    },
    IncomingCall {
        call: CallId,
        from: String,
        to: String,
        /// The INVITE's Request-URI: the Contact a registration bound, when the To names
        /// someone else (a forwarded call).
        request_uri: String,
        /// The account it was sent to, by name (among [`Command::SetCalledAccounts`]'s),
        /// matched by its To, else its Request-URI's user.
        account: Option<String>,
    },
    CallState {
        call: CallId,
        state: CallState,
    },
    /// Offer/answer completed: where to send media and how.
    Media {
        call: CallId,
        negotiated: Negotiated,
    },
    CallEnded {
        call: CallId,
        reason: EndReason,
    },
    /// What a recorder check found, step by step; `works` when the recorder accepted a
    /// recording session.
    RecorderChecked {
        check: CheckId,
        works: bool,
        findings: Vec<String>,
    },
    /// How a transfer we asked for goes.
    Transfer {
        call: CallId,
        state: TransferState,
    },
    /// The far end of `call` asks us to call `target` (we are being transferred); answer with
    /// [`Command::FollowTransfer`] or [`Command::DeclineTransfer`].
    TransferRequested {
        call: CallId,
        target: Uri,
        referred_by: Option<String>,
    },
    /// An INVITE that replaces `replaces` (RFC 3891: the far end of `replaces` transferred
    /// its side of our call to this caller): answer it at once, without ringing, and
    /// `replaces` ends when it is answered.
    ReplacingCall {
        call: CallId,
        replaces: CallId,
        from: String,
        /// The replaced call's account, by name: this call takes its place on it.
        account: Option<String>,
    },
    /// A DTMF digit from the other side.
    Dtmf {
        call: CallId,
        digit: char,
    },
    /// Media statistics, a few times a second and once more when the call ends.
    MediaStats {
        call: CallId,
        stats: crate::media::session::MediaStats,
    },
    /// The recording indicator's state for a call; `recording` names the recording session.
    Recording {
        call: CallId,
        recording: RecordingId,
        state: RecordingState,
    },
    /// The metadata session ID every recording session of this call carries: what a
    /// recorder files the call under.
    RecordingSessionId {
        call: CallId,
        session_id: String,
    },
    /// The other side announced that it records the call (its `a=record:on`), or stopped.
    FarEndRecording {
        call: CallId,
        recording: bool,
    },
    /// The other side's wish about recording (`a=recordpref`: on, off, pause, nopreference).
    RecordingPreference {
        call: CallId,
        preference: String,
    },
    /// A recorder the policy allows asks to record the call (SRS-initiated); answer with
    /// [`Command::AcceptRecorder`] or [`Command::DeclineRecorder`].
    RecorderAsks {
        call: CallId,
        recorder: String,
    },
    /// The stretches of a recorded call that no recording captured, when its recording
    /// ends (for the history).
    RecordingGaps {
        call: CallId,
        gaps: Vec<crate::recording::metadata::Gap>,
    },
    /// The calls in our own conference now, in the order they joined (empty: it ended).
    LocalConference {
        members: Vec<CallId>,
    },
    /// The far end is a conference focus: everyone else who is or was in its conference,
    /// each time that changes (RFC 4575).
    ConferenceRoster {
        call: CallId,
        members: Vec<crate::engine::ConferenceMember>,
    },
    /// The far end is a conference focus, but who else takes part cannot be learned (it
    /// refused or never answered our subscription): the reason, for the user and the history.
    ConferenceUnknown {
        call: CallId,
        reason: String,
    },
    /// Something the user should know that did not end anything.
    Warning {
        call: Option<CallId>,
        message: String,
    },
    ShutdownComplete,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Transmit {
        destination: Destination,
        data: Vec<u8>,
    },
    /// A media packet for a call's or a recording's RTP (or, with `rtcp`, RTCP) socket.
    Media {
        socket: MediaSocket,
        destination: SocketAddr,
        data: Vec<u8>,
        rtcp: bool,
    },
    /// Bind an RTP/RTCP socket pair for `socket` and answer with [`Input::MediaBound`]: a
    /// recording that takes a new stream mid-session (a party joined our conference).
    BindMedia {
        socket: MediaSocket,
    },
    /// The frame to play for the call's last tick (48 kHz mono, 960 samples).
    Playback {
        call: CallId,
        frame: Vec<f32>,
    },
    Event(Event),
    /// Nothing more to do until this instant.
    Timeout(Instant),
}
