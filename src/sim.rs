//! A simulated network in virtual time for tests and benchmarks: several engines exchange
//! datagrams with seeded latency, jitter (hence reordering), loss and duplication, and time
//! jumps straight to the next delivery or timer, so a 32 s SIP timeout takes microseconds.

use core::cmp::Reverse;
use core::time::Duration;
use std::collections::BinaryHeap;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use std::collections::HashMap;

use crate::engine::{CallId, Command, Engine, EngineConfig, Event, Input, MediaSocket, Output};
use crate::media::FRAME_SAMPLES;
use crate::media::codec::CodecKind;
use crate::media::srtp::KEY_SALT_LEN;
use crate::media::tone::Sine;
use crate::sip::transport::{Destination, Transport};
use crate::srs::core::{Recorder, RecorderOutput, SrsResources};
use crate::srs::stream::StreamRecorder;

/// Recorders are addressed past the phones: `RECORDER_BASE + index`.
const RECORDER_BASE: NodeId = 1000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    pub latency: Duration,
    /// Extra delay drawn uniformly from `0..jitter`; enough jitter reorders packets.
    pub jitter: Duration,
    /// Probability that a UDP datagram is lost.
    pub loss: f64,
    /// Probability that a UDP datagram arrives twice.
    pub duplicate: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Duration::from_millis(20),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

pub type NodeId = usize;

#[derive(Debug)]
struct Node {
    engine: Engine,
    listeners: Vec<Destination>,
    events: Vec<Event>,
    wake_at: Instant,
    /// Socket pairs the engine asked for mid-session so far.
    bound_mid_session: u16,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: NodeId,
    source: Destination,
    data: Vec<u8>,
    /// Set for media: the receiving call.
    media_call: Option<CallId>,
    /// Set for media to a recorder: the port it was sent to.
    recorder_port: Option<u16>,
}

/// The built-in recorder's sans-IO core on the simulated network, keeping what it records in
/// memory.
#[derive(Debug)]
pub struct SimRecorder {
    core: Recorder,
    address: core::net::SocketAddr,
    resources: SimPorts,
    wake_at: Option<Instant>,
    /// While down, nothing reaches it (a recorder that is not running).
    pub down: bool,
    pub recordings: Vec<SimRecording>,
    /// Statuses of the INVITEs it refused.
    pub refused: Vec<u16>,
    /// Answer every new INVITE with this status instead (a recorder that is busy, or is no
    /// SIPREC recorder at all).
    pub refuse_with: Option<u16>,
    /// With `refuse_with`: the Retry-After (seconds) the refusals carry.
    pub retry_after: Option<u32>,
}

/// One recording session the simulated recorder accepted.
#[derive(Debug)]
pub struct SimRecording {
    pub call_id: String,
    started: Instant,
    /// Per stream: its label, its local port and what it recorded.
    pub streams: Vec<(String, u16, StreamRecorder<Vec<f32>>)>,
    /// Every metadata document received, in order.
    pub metadata: Vec<String>,
    /// Every pause (true) and resume (false), in order.
    pub pauses: Vec<bool>,
    pub ended: bool,
}

impl SimRecording {
    /// The audio recorded for `label`, 48 kHz mono, time-aligned from the session's start.
    pub fn audio(&self, label: &str) -> &[f32] {
        self.streams
            .iter()
            .find(|(l, _, _)| l == label)
            .map(|(_, _, s)| s.sink().as_slice())
            .unwrap_or(&[])
    }

    pub fn codec(&self, label: &str) -> Option<CodecKind> {
        self.streams
            .iter()
            .find(|(l, _, _)| l == label)
            .map(|(_, _, s)| s.codec())
    }
}

/// The refusal a misbehaving recorder sends for a new INVITE; its ACK is swallowed.
fn refusal(data: &[u8], status: u16, retry_after: Option<u32>) -> Option<Vec<u8>> {
    let request = crate::sip::message::Message::parse(data).ok()?;
    let initial = request.to_header().ok()?.tag().is_none();
    if request.method() != Some(&crate::sip::message::Method::Invite) || !initial {
        return None;
    }
    let mut response = request.response(
        status,
        crate::sip::message::reason_phrase(status),
        Some("refuser"),
    );
    if status == 420 {
        response.headers.push("Unsupported", "siprec");
    }
    if let Some(seconds) = retry_after {
        response
            .headers
            .push("Retry-After", format!("{seconds} (maintenance)"));
    }
    Some(response.to_bytes())
}

#[derive(Debug)]
struct SimPorts {
    next_port: u16,
    seed: u64,
}

impl SrsResources for SimPorts {
    fn allocate_port(&mut self) -> Option<u16> {
        self.next_port = self.next_port.checked_add(2)?;
        Some(self.next_port)
    }
    fn srtp_key(&mut self) -> [u8; KEY_SALT_LEN] {
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut key = [0u8; KEY_SALT_LEN];
        for (index, byte) in key.iter_mut().enumerate() {
            *byte = (self.seed >> ((index % 8) * 8)) as u8 ^ index as u8;
        }
        key
    }
    fn token(&mut self) -> u64 {
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        self.seed
    }
}

/// What a simulated phone plays into a call and what it heard.
struct MediaEndpoint {
    source: Option<Sine>,
    heard: Vec<f32>,
}

impl core::fmt::Debug for MediaEndpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MediaEndpoint")
            .field("heard", &self.heard.len())
            .finish()
    }
}

/// Media ticks every 20 ms of virtual time.
const MEDIA_TICK: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub struct SimNet {
    now: Instant,
    start: Instant,
    rng: ChaCha8Rng,
    link: LinkConfig,
    nodes: Vec<Node>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// Every SIP datagram delivered or dropped, for assertions: (sent at, from, to, bytes).
    pub trace: Vec<(Duration, Destination, Destination, Vec<u8>)>,
    /// Which call owns a node's local media port (learnt from Dial and Answer commands).
    media_ports: HashMap<(NodeId, u16), CallId>,
    endpoints: HashMap<(NodeId, CallId), MediaEndpoint>,
    next_media_tick: Option<Instant>,
    /// Media packets sent and dropped by the link.
    pub media_sent: u64,
    pub media_dropped: u64,
    /// Of those, the packets to recorders and the ones their link dropped.
    pub recorder_media_sent: u64,
    pub recorder_media_dropped: u64,
    pub recorders: Vec<SimRecorder>,
    /// The path to the recorders, when it differs from the phones' link.
    pub recorder_link: Option<LinkConfig>,
}

impl SimNet {
    pub fn new(seed: u64, link: LinkConfig) -> SimNet {
        // Virtual time starts at an arbitrary instant; only differences matter.
        let start = Instant::now();
        SimNet {
            now: start,
            start,
            rng: ChaCha8Rng::seed_from_u64(seed),
            link,
            nodes: Vec::new(),
            in_flight: BinaryHeap::new(),
            seq: 0,
            trace: Vec::new(),
            media_ports: HashMap::new(),
            endpoints: HashMap::new(),
            next_media_tick: None,
            media_sent: 0,
            media_dropped: 0,
            recorder_media_sent: 0,
            recorder_media_dropped: 0,
            recorder_link: None,
            recorders: Vec::new(),
        }
    }

    /// Adds a recorder (the built-in SRS core) at 127.0.0.(100+N):5060, UDP and TCP, that
    /// prefers `codecs` (empty: the offerer's first choice).
    pub fn add_recorder(&mut self, codecs: Vec<CodecKind>) -> NodeId {
        let index = self.recorders.len();
        let ip = core::net::Ipv4Addr::new(127, 0, 0, u8::try_from(100 + index).unwrap_or(254));
        let address = core::net::SocketAddr::from((ip, 5060));
        let core =
            Recorder::new(ip.into(), format!("sip:srs@{address}")).with_codec_preference(codecs);
        self.recorders.push(SimRecorder {
            core,
            address,
            resources: SimPorts {
                next_port: 30000,
                seed: 7 + index as u64,
            },
            wake_at: None,
            down: false,
            recordings: Vec::new(),
            refused: Vec::new(),
            refuse_with: None,
            retry_after: None,
        });
        RECORDER_BASE + index
    }

    /// The recorder's SIP address over `transport`.
    pub fn recorder_address(&self, recorder: NodeId, transport: Transport) -> Option<Destination> {
        let r = self.recorders.get(recorder.checked_sub(RECORDER_BASE)?)?;
        Some(Destination::new(transport, r.address))
    }

    pub fn recorder(&self, recorder: NodeId) -> Option<&SimRecorder> {
        self.recorders.get(recorder.checked_sub(RECORDER_BASE)?)
    }

    pub fn recorder_mut(&mut self, recorder: NodeId) -> Option<&mut SimRecorder> {
        self.recorders.get_mut(recorder.checked_sub(RECORDER_BASE)?)
    }

    fn recorder_input(&mut self, index: usize, packet: InFlight) {
        let now = self.now;
        let Some(r) = self.recorders.get_mut(index) else {
            return;
        };
        if r.down {
            return;
        }
        match packet.recorder_port {
            Some(port) => {
                for recording in r.recordings.iter_mut().filter(|s| !s.ended) {
                    let since = now.saturating_duration_since(recording.started);
                    for (_, local_port, stream) in &mut recording.streams {
                        if *local_port == port {
                            let _ = stream.on_datagram(&packet.data, since);
                        }
                    }
                }
                return;
            }
            None => {
                if let Some(status) = r.refuse_with
                    && let Some(response) = refusal(&packet.data, status, r.retry_after)
                {
                    let source = Destination::new(packet.source.transport, r.address);
                    r.refused.push(status);
                    self.send(source, packet.source, response);
                    return;
                }
                r.core
                    .on_bytes(now, &packet.data, packet.source, &mut r.resources)
            }
        }
        self.drain_recorder(index);
    }

    /// The recorder ends all its sessions itself (BYE to each client).
    pub fn recorder_hang_up(&mut self, recorder: NodeId) {
        let Some(index) = recorder.checked_sub(RECORDER_BASE) else {
            return;
        };
        let now = self.now;
        if let Some(r) = self.recorders.get_mut(index) {
            for key in r.core.session_keys() {
                r.core.hang_up(now, &key);
            }
        }
        self.drain_recorder(index);
    }

    fn drain_recorder(&mut self, index: usize) {
        loop {
            let now = self.now;
            let Some(r) = self.recorders.get_mut(index) else {
                return;
            };
            let Some(output) = r.core.poll_output() else {
                r.wake_at = r.core.next_deadline();
                return;
            };
            let source = r.address;
            match output {
                RecorderOutput::Transmit(transmit) => {
                    let transport = transmit.destination.transport;
                    self.send(
                        Destination::new(transport, source),
                        transmit.destination,
                        transmit.data,
                    );
                }
                RecorderOutput::SessionStarted {
                    key,
                    streams,
                    metadata_xml,
                    ..
                } => {
                    let streams = streams
                        .into_iter()
                        .filter_map(|setup| {
                            let label = setup.label.clone();
                            let port = setup.local_port;
                            StreamRecorder::new(setup, Vec::new())
                                .ok()
                                .map(|stream| (label, port, stream))
                        })
                        .collect();
                    r.recordings.push(SimRecording {
                        call_id: key,
                        started: now,
                        streams,
                        metadata: metadata_xml.into_iter().collect(),
                        pauses: Vec::new(),
                        ended: false,
                    });
                }
                RecorderOutput::SessionUpdated {
                    key,
                    paused,
                    metadata_xml,
                    ..
                } => {
                    if let Some(recording) = r.recordings.iter_mut().find(|s| s.call_id == key) {
                        if recording.pauses.last().copied().unwrap_or(false) != paused {
                            recording.pauses.push(paused);
                        }
                        recording.metadata.extend(metadata_xml);
                    }
                }
                RecorderOutput::SessionEnded { key } => {
                    if let Some(recording) = r.recordings.iter_mut().find(|s| s.call_id == key) {
                        recording.ended = true;
                    }
                }
                RecorderOutput::Rejected { status, .. } => r.refused.push(status),
            }
        }
    }

    /// Changes the link from now on (a network that drops out and comes back).
    pub fn set_link(&mut self, link: LinkConfig) {
        self.link = link;
    }

    fn link_to(&self, recorder: bool) -> LinkConfig {
        match self.recorder_link {
            Some(link) if recorder => link,
            _ => self.link,
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Adds a node listening on UDP and TCP at 127.0.0.N:5060.
    pub fn add_node(&mut self, mut config: EngineConfig) -> NodeId {
        let id = self.nodes.len();
        let ip = core::net::Ipv4Addr::new(127, 0, 0, u8::try_from(id + 1).unwrap_or(254));
        let address = core::net::SocketAddr::from((ip, 5060));
        let listeners = vec![
            Destination::new(Transport::Udp, address),
            Destination::new(Transport::Tcp, address),
        ];
        config.listeners = listeners.clone();
        let engine = Engine::new(config, self.now);
        self.nodes.push(Node {
            engine,
            listeners,
            events: Vec::new(),
            wake_at: self.now,
            bound_mid_session: 0,
        });
        self.drain(id);
        id
    }

    pub fn address(&self, node: NodeId, transport: Transport) -> Option<Destination> {
        self.nodes
            .get(node)?
            .listeners
            .iter()
            .find(|l| l.transport == transport)
            .copied()
    }

    pub fn command(&mut self, node: NodeId, command: Command) {
        match &command {
            Command::Dial { call, request } => {
                self.media_ports.insert((node, request.media_port), *call);
            }
            Command::Answer {
                call, media_port, ..
            } => {
                self.media_ports.insert((node, *media_port), *call);
            }
            // The call placed to follow a transfer has its own sockets, as a driver binds.
            Command::FollowTransfer {
                new_call, request, ..
            } => {
                self.media_ports
                    .insert((node, request.media_port), *new_call);
            }
            _ => {}
        }
        self.input(node, Input::Command(command));
    }

    /// Makes `node` send a sine of `frequency` into `call` (silence with None) and record what
    /// it plays out, from now on, in 20 ms ticks of virtual time.
    pub fn attach_media(&mut self, node: NodeId, call: CallId, frequency: Option<f32>) {
        self.endpoints.insert(
            (node, call),
            MediaEndpoint {
                source: frequency.map(|f| Sine::new(f, 0.5, crate::media::SAMPLE_RATE)),
                heard: Vec::new(),
            },
        );
        if self.next_media_tick.is_none() {
            self.next_media_tick = Some(self.now + MEDIA_TICK);
        }
    }

    /// The audio `node` played out for `call` (48 kHz mono).
    pub fn heard(&self, node: NodeId, call: CallId) -> &[f32] {
        self.endpoints
            .get(&(node, call))
            .map(|e| e.heard.as_slice())
            .unwrap_or(&[])
    }

    pub fn input(&mut self, node: NodeId, input: Input) {
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(node) {
            n.engine.handle_input(now, input);
        }
        self.drain(node);
    }

    pub fn events(&self, node: NodeId) -> &[Event] {
        self.nodes
            .get(node)
            .map(|n| n.events.as_slice())
            .unwrap_or(&[])
    }

    pub fn take_events(&mut self, node: NodeId) -> Vec<Event> {
        self.nodes
            .get_mut(node)
            .map(|n| std::mem::take(&mut n.events))
            .unwrap_or_default()
    }

    pub fn engine(&self, node: NodeId) -> Option<&Engine> {
        self.nodes.get(node).map(|n| &n.engine)
    }

    /// Advances virtual time by `duration`, delivering everything due on the way.
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        while let Some(at) = self.next_wake().filter(|at| *at <= until) {
            self.step(at);
        }
        self.now = until;
    }

    /// Runs until `predicate` holds on some node's events, or `limit` of virtual time passes.
    /// Returns whether the predicate held.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut predicate: impl FnMut(&SimNet) -> bool,
    ) -> bool {
        let until = self.now + limit;
        loop {
            if predicate(self) {
                return true;
            }
            match self.next_wake().filter(|at| *at <= until) {
                Some(at) => self.step(at),
                None => {
                    self.now = until;
                    return predicate(self);
                }
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let packet = self.in_flight.peek().map(|Reverse(p)| p.at);
        let timer = self.nodes.iter().map(|n| n.wake_at).min();
        let recorder = self.recorders.iter().filter_map(|r| r.wake_at).min();
        [packet, timer, recorder, self.next_media_tick]
            .into_iter()
            .flatten()
            .min()
    }

    fn media_tick(&mut self) {
        let keys: Vec<(NodeId, CallId)> = self.endpoints.keys().copied().collect();
        for (node, call) in keys {
            let mut frame = vec![0.0; FRAME_SAMPLES];
            if let Some(source) = self
                .endpoints
                .get_mut(&(node, call))
                .and_then(|e| e.source.as_mut())
            {
                source.fill(&mut frame);
            }
            self.input(
                node,
                Input::MediaTick {
                    call,
                    captured: frame,
                },
            );
        }
    }

    fn step(&mut self, at: Instant) {
        self.now = self.now.max(at);
        if self.next_media_tick.is_some_and(|t| t <= self.now) {
            self.next_media_tick = Some(self.now + MEDIA_TICK);
            self.media_tick();
        }
        while self
            .in_flight
            .peek()
            .is_some_and(|Reverse(p)| p.at <= self.now)
        {
            let Some(Reverse(packet)) = self.in_flight.pop() else {
                break;
            };
            if let Some(index) = packet.to.checked_sub(RECORDER_BASE) {
                self.recorder_input(index, packet);
                continue;
            }
            if let Some(call) = packet.media_call {
                let input = Input::MediaPacket {
                    socket: MediaSocket::Call(call),
                    source: packet.source.address,
                    data: packet.data,
                };
                self.input(packet.to, input);
                continue;
            }
            let input = match packet.source.transport {
                Transport::Udp => Input::Datagram {
                    source: packet.source,
                    data: packet.data,
                },
                _ => Input::Stream {
                    source: packet.source,
                    data: packet.data,
                },
            };
            self.input(packet.to, input);
        }
        for id in 0..self.nodes.len() {
            if self.nodes.get(id).is_some_and(|n| n.wake_at <= self.now) {
                self.input(id, Input::Timeout);
            }
        }
        for index in 0..self.recorders.len() {
            let now = self.now;
            if let Some(r) = self.recorders.get_mut(index)
                && r.wake_at.is_some_and(|at| at <= now)
            {
                r.core.on_timeout(now, &mut r.resources);
                r.wake_at = None;
                self.drain_recorder(index);
            }
        }
    }

    fn drain(&mut self, node: NodeId) {
        loop {
            let Some(n) = self.nodes.get_mut(node) else {
                return;
            };
            match n.engine.poll_output() {
                Output::Transmit { destination, data } => {
                    let source = n
                        .listeners
                        .iter()
                        .find(|l| l.transport == destination.transport)
                        .copied()
                        .unwrap_or(destination);
                    self.send(source, destination, data);
                }
                Output::Event(event) => n.events.push(event),
                Output::Media {
                    socket,
                    destination,
                    data,
                    ..
                } => {
                    let ip = n.listeners.first().map(|l| l.address.ip());
                    self.send_media(node, socket, ip, destination, data);
                }
                Output::BindMedia { socket } => {
                    // A port no test hands out itself: recording streams only send.
                    n.bound_mid_session += 1;
                    let port = 50_000u16.wrapping_add(n.bound_mid_session.wrapping_mul(2));
                    let now = self.now;
                    n.engine.handle_input(
                        now,
                        Input::MediaBound {
                            socket,
                            port: Ok(port),
                        },
                    );
                }
                Output::Playback { call, frame } => {
                    if let Some(endpoint) = self.endpoints.get_mut(&(node, call)) {
                        endpoint.heard.extend_from_slice(&frame);
                    }
                }
                Output::Timeout(at) => {
                    n.wake_at = at;
                    return;
                }
            }
        }
    }

    fn send_media(
        &mut self,
        from: NodeId,
        from_socket: MediaSocket,
        from_ip: Option<core::net::IpAddr>,
        destination: core::net::SocketAddr,
        data: Vec<u8>,
    ) {
        if let Some(index) = self
            .recorders
            .iter()
            .position(|r| r.address.ip() == destination.ip())
        {
            self.media_sent += 1;
            self.recorder_media_sent += 1;
            let link = self.link_to(true);
            if self.rng.random_bool(link.loss.clamp(0.0, 1.0)) {
                self.media_dropped += 1;
                self.recorder_media_dropped += 1;
                return;
            }
            let source = Destination::new(
                Transport::Udp,
                core::net::SocketAddr::new(
                    from_ip.unwrap_or(core::net::IpAddr::from([127, 0, 0, 1])),
                    0,
                ),
            );
            self.seq += 1;
            self.in_flight.push(Reverse(InFlight {
                at: self.now + link.latency,
                seq: self.seq,
                to: RECORDER_BASE + index,
                source,
                data,
                media_call: None,
                recorder_port: Some(destination.port()),
            }));
            return;
        }
        let Some(to) = self.nodes.iter().position(|n| {
            n.listeners
                .iter()
                .any(|l| l.address.ip() == destination.ip())
        }) else {
            return;
        };
        // RTCP goes to the RTP port + 1.
        let call = self
            .media_ports
            .get(&(to, destination.port()))
            .or_else(|| {
                self.media_ports
                    .get(&(to, destination.port().wrapping_sub(1)))
            })
            .copied();
        let Some(call) = call else {
            return;
        };
        self.media_sent += 1;
        if self.rng.random_bool(self.link.loss.clamp(0.0, 1.0)) {
            self.media_dropped += 1;
            return;
        }
        let jitter = if self.link.jitter.is_zero() {
            Duration::ZERO
        } else {
            let micros = u64::try_from(self.link.jitter.as_micros()).unwrap_or(u64::MAX);
            Duration::from_micros(self.rng.random_range(0..micros))
        };
        let from_port = self
            .media_ports
            .iter()
            .find(|((node, _), owner)| *node == from && MediaSocket::Call(**owner) == from_socket)
            .map(|((_, port), _)| *port)
            .unwrap_or(0);
        let source = Destination::new(
            Transport::Udp,
            core::net::SocketAddr::new(
                from_ip.unwrap_or(core::net::IpAddr::from([127, 0, 0, 1])),
                from_port,
            ),
        );
        self.seq += 1;
        self.in_flight.push(Reverse(InFlight {
            at: self.now + self.link.latency + jitter,
            seq: self.seq,
            to,
            source,
            data,
            media_call: Some(call),
            recorder_port: None,
        }));
    }

    fn send(&mut self, source: Destination, destination: Destination, data: Vec<u8>) {
        self.trace
            .push((self.now - self.start, source, destination, data.clone()));
        let recorder = self
            .recorders
            .iter()
            .position(|r| r.address == destination.address)
            .map(|index| RECORDER_BASE + index);
        let Some(to) = recorder.or_else(|| {
            self.nodes
                .iter()
                .position(|n| n.listeners.iter().any(|l| l.address == destination.address))
        }) else {
            return;
        };
        let unreliable = destination.transport == Transport::Udp;
        let link = self.link_to(recorder.is_some());
        if unreliable && self.rng.random_bool(link.loss.clamp(0.0, 1.0)) {
            return;
        }
        let copies = if unreliable && self.rng.random_bool(link.duplicate.clamp(0.0, 1.0)) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = if link.jitter.is_zero() || !unreliable {
                Duration::ZERO
            } else {
                let micros = u64::try_from(link.jitter.as_micros()).unwrap_or(u64::MAX);
                Duration::from_micros(self.rng.random_range(0..micros))
            };
            self.seq += 1;
            self.in_flight.push(Reverse(InFlight {
                at: self.now + link.latency + jitter,
                seq: self.seq,
                to,
                source,
                data: data.clone(),
                media_call: None,
                recorder_port: None,
            }));
        }
    }
}
