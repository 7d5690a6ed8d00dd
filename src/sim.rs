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

use crate::engine::{CallId, Command, Engine, EngineConfig, Event, Input, Output};
use crate::media::FRAME_SAMPLES;
use crate::media::tone::Sine;
use crate::sip::transport::{Destination, Transport};

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
            Command::Answer { call, media_port } => {
                self.media_ports.insert((node, *media_port), *call);
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
        [packet, timer, self.next_media_tick]
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
            if let Some(call) = packet.media_call {
                let input = Input::MediaPacket {
                    call,
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
                    call,
                    destination,
                    data,
                    ..
                } => {
                    let ip = n.listeners.first().map(|l| l.address.ip());
                    self.send_media(node, call, ip, destination, data);
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
        from_call: CallId,
        from_ip: Option<core::net::IpAddr>,
        destination: core::net::SocketAddr,
        data: Vec<u8>,
    ) {
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
            .find(|((node, _), owner)| *node == from && **owner == from_call)
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
        }));
    }

    fn send(&mut self, source: Destination, destination: Destination, data: Vec<u8>) {
        self.trace
            .push((self.now - self.start, source, destination, data.clone()));
        let Some(to) = self
            .nodes
            .iter()
            .position(|n| n.listeners.iter().any(|l| l.address == destination.address))
        else {
            return;
        };
        let unreliable = destination.transport == Transport::Udp;
        if unreliable && self.rng.random_bool(self.link.loss.clamp(0.0, 1.0)) {
            return;
        }
        let copies = if unreliable && self.rng.random_bool(self.link.duplicate.clamp(0.0, 1.0)) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = if self.link.jitter.is_zero() || !unreliable {
                Duration::ZERO
            } else {
                let micros = u64::try_from(self.link.jitter.as_micros()).unwrap_or(u64::MAX);
                Duration::from_micros(self.rng.random_range(0..micros))
            };
            self.seq += 1;
            self.in_flight.push(Reverse(InFlight {
                at: self.now + self.link.latency + jitter,
                seq: self.seq,
                to,
                source,
                data: data.clone(),
                media_call: None,
            }));
        }
    }
}
