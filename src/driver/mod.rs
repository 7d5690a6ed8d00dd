//! The I/O side: tokio sockets, DNS, the clock, and the loop that feeds the engine.
//!
//! This is the only place that sleeps or reads the time. The loop waits on whichever comes
//! first (a datagram, stream bytes, a command, the engine's next timeout), hands it to the
//! engine with `Instant::now()`, and carries out the outputs.

pub mod dns;
mod icmp;
pub mod media;
mod stun;
pub mod tls;

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::engine::{
    CallId, Command, Engine, EngineConfig, Event, Input, MediaSocket, Output, RecordingId,
};
use crate::sip::transport::{Destination, Transport};

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("cannot listen on {transport} {address}: {source}")]
    Bind {
        transport: Transport,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

#[derive(Clone, Default)]
pub struct DriverConfig {
    /// Where UDP and TCP listen (port 0 picks a free port).
    pub listen: Option<SocketAddr>,
    /// When listening on all interfaces: a peer address whose route tells which of our
    /// addresses to put in Via, Contact and SDP (no packet is sent to find out).
    pub route_probe: Option<SocketAddr>,
    pub tls: Option<tls::TlsSettings>,
    /// TLS towards recorders when it differs from `tls` (their own CA, a client
    /// certificate for mutual TLS).
    pub recorder_tls: Option<tls::TlsSettings>,
    /// Accept SIP over TLS too (needs a certificate).
    pub tls_server: Option<tls::TlsServerSettings>,
    /// Audio for each call; silence when None.
    pub audio: Option<media::AudioFactory>,
    /// Collects, per frame, the time from taking the captured frame to its packet leaving.
    pub frame_latency: Option<Arc<LatencyLog>>,
    /// Where the ringtone for incoming calls goes (the ringing device's ring).
    pub ringer: Option<media::Ringer>,
    /// Calls' audio on the sound card: its microphone paces the media steps. None: a 20 ms
    /// timer does (files, silence).
    pub card_clock: Option<media::CardClock>,
    /// Collects recording timings for benchmarks.
    pub recording_latency: Option<Arc<RecordingLatency>>,
    /// A STUN server (`host` or `host:port`, port 3478 by default): each call's media
    /// sockets ask it how a NAT maps them before their port is handed out.
    pub stun_server: Option<String>,
}

/// What a benchmark learns about recordings.
#[derive(Debug, Default)]
pub struct RecordingLatency {
    /// Per recording packet: from the call's packet entering the engine (received, or its
    /// frame ticked) to the recording's copy leaving its socket.
    pub lag: LatencyLog,
    /// Per recording: from the command that starts it to its first packet leaving.
    pub first_packet: LatencyLog,
}

/// Durations recorded by the driver for benchmarks, in microseconds: a histogram of 1 µs
/// buckets, so that recording one costs an atomic increment on the media path.
pub struct LatencyLog {
    buckets: Vec<std::sync::atomic::AtomicU32>,
    /// The rare samples past the last bucket.
    overflow: std::sync::Mutex<Vec<u32>>,
}

impl Default for LatencyLog {
    fn default() -> Self {
        LatencyLog {
            buckets: (0..LATENCY_BUCKETS)
                .map(|_| std::sync::atomic::AtomicU32::new(0))
                .collect(),
            overflow: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl core::fmt::Debug for LatencyLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LatencyLog").finish_non_exhaustive()
    }
}

/// 16 ms in 1 µs buckets.
const LATENCY_BUCKETS: usize = 16_384;

impl LatencyLog {
    fn record(&self, elapsed: Duration) {
        let micros = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        match self.buckets.get(micros as usize) {
            Some(bucket) => {
                bucket.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            None => {
                if let Ok(mut overflow) = self.overflow.lock() {
                    overflow.push(micros);
                }
            }
        }
    }

    /// The recorded samples in ascending order.
    pub fn sorted(&self) -> Vec<u32> {
        let mut samples = Vec::new();
        for (micros, bucket) in (0u32..).zip(&self.buckets) {
            let count = bucket.load(std::sync::atomic::Ordering::Relaxed) as usize;
            samples.extend(std::iter::repeat_n(micros, count));
        }
        let mut overflow = self.overflow.lock().map(|s| s.clone()).unwrap_or_default();
        overflow.sort_unstable();
        samples.extend(overflow);
        samples
    }
}

impl core::fmt::Debug for DriverConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DriverConfig")
            .field("listen", &self.listen)
            .field("route_probe", &self.route_probe)
            .field("tls", &self.tls)
            .field("tls_server", &self.tls_server)
            .field("audio", &self.audio.is_some())
            .field("ringer", &self.ringer.is_some())
            .field("card_clock", &self.card_clock.is_some())
            .field("stun_server", &self.stun_server)
            .finish()
    }
}

/// What the front end (CLI or GUI) holds: commands go down, events come up.
#[derive(Debug)]
pub struct Handle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub events: mpsc::UnboundedReceiver<Event>,
    /// The addresses the driver actually bound.
    pub listeners: Vec<Destination>,
    binds: mpsc::UnboundedSender<MediaRequest>,
}

impl Handle {
    /// Binds the RTP/RTCP socket pair of a call or a recording and returns its RTP port,
    /// which the command that starts it carries (the engine writes it into the SDP). The
    /// sockets are released when the call ends or the recording stops.
    pub async fn bind_media(&self, socket: MediaSocket) -> Result<u16, String> {
        let (reply, bound) = tokio::sync::oneshot::channel();
        self.binds
            .send(MediaRequest::Bind { socket, reply })
            .map_err(|_| "the phone has stopped".to_owned())?;
        bound
            .await
            .map_err(|_| "the phone has stopped".to_owned())?
    }

    /// Releases a socket pair bound for something that will not start after all (a
    /// recording whose other streams could not be bound).
    pub fn release_media(&self, socket: MediaSocket) {
        // A stopped phone has released everything already.
        let _ = self.binds.send(MediaRequest::Release(socket));
    }
}

/// What a front end asks of the media sockets ([`Handle::bind_media`],
/// [`Handle::release_media`]).
enum MediaRequest {
    Bind {
        socket: MediaSocket,
        reply: tokio::sync::oneshot::Sender<Result<u16, String>>,
    },
    Release(MediaSocket),
}

enum StreamNote {
    Data(Destination, Vec<u8>),
    Closed(Destination, Option<String>),
    Connected(Destination, mpsc::UnboundedSender<Vec<u8>>),
}

/// Binds the sockets and starts the driver loop on the current tokio runtime.
pub async fn start(mut config: EngineConfig, driver: DriverConfig) -> Result<Handle, DriverError> {
    let listen = driver
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let udp = UdpSocket::bind(listen)
        .await
        .map_err(|source| DriverError::Bind {
            transport: Transport::Udp,
            address: listen,
            source,
        })?;
    let udp_address = udp.local_addr().map_err(|source| DriverError::Bind {
        transport: Transport::Udp,
        address: listen,
        source,
    })?;
    // TCP on the same port as UDP, so one host:port names us on both.
    let tcp_address = SocketAddr::new(udp_address.ip(), udp_address.port());
    let tcp = TcpListener::bind(tcp_address)
        .await
        .map_err(|source| DriverError::Bind {
            transport: Transport::Tcp,
            address: tcp_address,
            source,
        })?;
    let tls_connector = match &driver.tls {
        Some(settings) => Some(tls::connector(settings).map_err(DriverError::Tls)?),
        None => tls::connector(&tls::TlsSettings::default()).ok(),
    };
    let recorder_connector = match &driver.recorder_tls {
        Some(settings) => Some(tls::connector(settings).map_err(DriverError::Tls)?),
        None => None,
    };
    let tls_listener = match &driver.tls_server {
        Some(settings) => {
            let acceptor = tls::acceptor(settings).map_err(DriverError::Tls)?;
            let listener =
                TcpListener::bind(settings.listen)
                    .await
                    .map_err(|source| DriverError::Bind {
                        transport: Transport::Tls,
                        address: settings.listen,
                        source,
                    })?;
            let address = listener.local_addr().map_err(|source| DriverError::Bind {
                transport: Transport::Tls,
                address: settings.listen,
                source,
            })?;
            Some((listener, acceptor, address))
        }
        None => None,
    };
    // Without a TLS listener, outgoing TLS connections come from an ephemeral port; Via then
    // carries our TCP address and replies come back on the same connection.
    let tls_address = tls_listener.as_ref().map_or(tcp_address, |(_, _, a)| *a);
    // 0.0.0.0 cannot be advertised: it would tell peers nothing (and c=0.0.0.0 means hold).
    let advertised_ip = if udp_address.ip().is_unspecified() {
        outbound_ip(driver.route_probe)
            .await
            .unwrap_or(udp_address.ip())
    } else {
        udp_address.ip()
    };
    let udp_address = SocketAddr::new(advertised_ip, udp_address.port());
    let tcp_address = SocketAddr::new(advertised_ip, tcp_address.port());
    let listeners = vec![
        Destination::new(Transport::Udp, udp_address),
        Destination::new(Transport::Tcp, tcp_address),
        Destination::new(Transport::Tls, tls_address),
    ];
    config.listeners = listeners.clone();
    let stun_server = match &driver.stun_server {
        Some(server) => stun::resolve(server, advertised_ip).await,
        None => None,
    };
    let engine = Engine::new(config, Instant::now());
    let (command_tx, command_rx) = mpsc::unbounded_channel();
    let (bind_tx, bind_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let server_name = driver.tls.as_ref().and_then(|t| t.server_name.clone());
    let driver_loop = DriverLoop {
        engine,
        udp: Arc::new(udp),
        connections: HashMap::new(),
        pending: HashMap::new(),
        media: HashMap::new(),
        audio: driver.audio.clone(),
        frame_latency: driver.frame_latency.clone(),
        ringer: driver.ringer.clone(),
        card_clock: driver.card_clock.clone(),
        ringing: HashSet::new(),
        ringtone: crate::media::tone::Cadence::ringing(crate::media::SAMPLE_RATE),
        tls_connector,
        server_name,
        tls_names: HashMap::new(),
        recorder_connector,
        tls_connectors: HashMap::new(),
        recording_latency: driver.recording_latency.clone(),
        recordings: HashMap::new(),
        media_steps: 0,
        binds_wanted: std::collections::VecDeque::new(),
        events: event_tx,
        advertised_ip,
        stun_server,
        stun_gathering: HashMap::new(),
    };
    tokio::spawn(driver_loop.run(
        tcp,
        tls_listener.map(|(l, a, _)| (l, a)),
        command_rx,
        bind_rx,
    ));
    Ok(Handle {
        binds: bind_tx,
        commands: command_tx,
        events: event_rx,
        listeners,
    })
}

/// How long the sound card may go without a whole microphone frame before the timer steps
/// the media in its place (its audio thread stalled or stopped): five frames.
const CARD_CLOCK_SILENCE: core::time::Duration = core::time::Duration::from_millis(100);

/// The least time between two steps the card clocks: most of a frame, so that steps keep
/// up with the card (up to 66 a second for its 50) without coming in bursts.
const CARD_STEP_SPACING: core::time::Duration = core::time::Duration::from_millis(15);

/// Until the card has a frame; never without a card.
async fn card_frame(card: Option<&media::CardClock>) {
    match card {
        Some(card) => card.frame_ready().await,
        None => std::future::pending().await,
    }
}

struct DriverLoop {
    engine: Engine,
    udp: Arc<UdpSocket>,
    connections: HashMap<Destination, mpsc::UnboundedSender<Vec<u8>>>,
    /// Bytes waiting for a connection being opened.
    pending: HashMap<Destination, Vec<Vec<u8>>>,
    media: HashMap<MediaSocket, media::CallMediaIo>,
    audio: Option<media::AudioFactory>,
    frame_latency: Option<Arc<LatencyLog>>,
    ringer: Option<media::Ringer>,
    card_clock: Option<media::CardClock>,
    /// Incoming calls waiting for the user: the ringtone plays while there are any.
    ringing: HashSet<CallId>,
    ringtone: crate::media::tone::Cadence,
    tls_connector: Option<tokio_rustls::TlsConnector>,
    server_name: Option<String>,
    /// The host names TLS certificates are checked against, for destinations that are not
    /// the call's own server (recorders).
    tls_names: HashMap<SocketAddr, String>,
    /// The connector for recorders, when they have their own TLS settings.
    recorder_connector: Option<tokio_rustls::TlsConnector>,
    /// Peers that get another connector than the calls' (recorders).
    tls_connectors: HashMap<SocketAddr, tokio_rustls::TlsConnector>,
    recording_latency: Option<Arc<RecordingLatency>>,
    /// The recordings' media ids, with when each was asked for until its first packet.
    recordings: HashMap<RecordingId, Option<Instant>>,
    /// 20 ms media steps so far: calls sharing the sound card share each step's frames.
    media_steps: u64,
    /// Socket pairs the engine asked for ([`Output::BindMedia`]), not bound yet.
    binds_wanted: std::collections::VecDeque<MediaSocket>,
    events: mpsc::UnboundedSender<Event>,
    advertised_ip: core::net::IpAddr,
    stun_server: Option<SocketAddr>,
    /// Calls' socket pairs asking the STUN server how they are mapped; the front end gets
    /// the port once they know.
    stun_gathering: HashMap<MediaSocket, stun::Gathering>,
}

impl DriverLoop {
    async fn run(
        mut self,
        tcp: TcpListener,
        tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut binds: mpsc::UnboundedReceiver<MediaRequest>,
    ) {
        let (stream_tx, mut stream_rx) = mpsc::unbounded_channel::<StreamNote>();
        if let Some((listener, acceptor)) = tls {
            tokio::spawn(accept_tls(listener, acceptor, stream_tx.clone()));
        }
        let (media_tx, mut media_rx) = mpsc::unbounded_channel::<media::MediaPacketNote>();
        let mut ticks = tokio::time::interval(crate::media::session::TICK);
        // A late tick is made up at once so the RTP timeline and the peer's jitter buffer see
        // every frame.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut buffer = vec![0u8; 65_535];
        let mut wake_at = self.feed(None, &stream_tx);
        let mut was_ticking = false;
        let card = self.card_clock.clone();
        // When the card last stepped the media (or began to): while it keeps doing so, the
        // timer does not.
        let mut card_stepped_at = Instant::now();
        let mut was_card_clocked = false;
        loop {
            // With no call and nothing ringing the 20 ms clock stops, so an idle phone
            // sleeps; when it starts again it starts afresh rather than making up the pause.
            let ticking = !self.media.is_empty()
                || !self.ringing.is_empty()
                || !self.stun_gathering.is_empty();
            if ticking && !was_ticking {
                ticks.reset();
            }
            was_ticking = ticking;
            // The card clocks the steps only while a call reads its microphone: ringing,
            // ringback and STUN alone take no frames, so the timer steps them.
            let card_clocked = card.is_some() && self.media.values().any(|io| io.ticking);
            if card_clocked && !was_card_clocked {
                if let Some(card) = &card {
                    // What the microphone captured before the call's media began is not
                    // part of it.
                    card.start_afresh();
                }
                // As if it had just stepped, but not holding up its first frame.
                card_stepped_at = Instant::now()
                    .checked_sub(CARD_STEP_SPACING)
                    .unwrap_or_else(Instant::now);
            }
            was_card_clocked = card_clocked;
            let input = tokio::select! {
                received = self.udp.recv_from(&mut buffer) => match received {
                    Ok((len, from)) => Some(Input::Datagram {
                        source: Destination::new(Transport::Udp, from),
                        data: buffer.get(..len).unwrap_or(&[]).to_vec(),
                    }),
                    Err(error) => {
                        // ICMP port unreachable shows up here on Linux; it is not fatal.
                        tracing::debug!(%error, "UDP receive error");
                        None
                    }
                },
                accepted = tcp.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Signalling is small writes: Nagle plus delayed ACK would hold them
                        // back by 40 ms.
                        let _ = stream.set_nodelay(true);
                        let destination = Destination::new(Transport::Tcp, peer);
                        let writer = spawn_stream(stream, destination, stream_tx.clone());
                        self.connections.insert(destination, writer);
                        None
                    }
                    Err(error) => {
                        tracing::warn!(%error, "TCP accept failed");
                        None
                    }
                },
                note = stream_rx.recv() => match note {
                    Some(StreamNote::Data(source, data)) => Some(Input::Stream { source, data }),
                    Some(StreamNote::Closed(peer, reason)) => {
                        self.connections.remove(&peer);
                        self.pending.remove(&peer);
                        Some(Input::StreamClosed { peer, reason })
                    }
                    Some(StreamNote::Connected(peer, writer)) => {
                        for data in self.pending.remove(&peer).unwrap_or_default() {
                            let _ = writer.send(data);
                        }
                        self.connections.insert(peer, writer);
                        None
                    }
                    None => None,
                },
                Some(request) = binds.recv() => {
                    match request {
                        MediaRequest::Bind { socket, reply } => {
                            let bound = self.bind_media(socket, &media_tx).await;
                            match (bound, self.stun_server, socket) {
                                (Ok(port), Some(server), MediaSocket::Call(_)) => {
                                    self.start_stun(socket, server, port, reply);
                                }
                                // A caller that stopped waiting leaves the sockets to the
                                // engine's end of them.
                                (bound, ..) => {
                                    let _ = reply.send(bound);
                                }
                            }
                        }
                        MediaRequest::Release(socket) => {
                            self.stun_gathering.remove(&socket);
                            self.media.remove(&socket);
                        }
                    }
                    None
                }
                command = commands.recv() => match command {
                    Some(command) => {
                        self.observe(&command);
                        Some(Input::Command(command))
                    }
                    None => break,
                },
                Some(note) = media_rx.recv() => match note.unreachable {
                    Some(destination) => Some(Input::MediaUnreachable {
                        socket: note.socket,
                        destination,
                    }),
                    None if self.stun_answer(&note, &stream_tx) => None,
                    // A late answer (to a retransmission, or after giving up) is not media.
                    None if Some(note.source) == self.stun_server
                        && crate::media::stun::is_stun(&note.data) => None,
                    None => Some(Input::MediaPacket {
                        socket: note.socket,
                        source: note.source,
                        data: note.data,
                    }),
                },
                _ = ticks.tick(), if ticking => {
                    self.poll_stun(&stream_tx);
                    if !card_clocked || card_stepped_at.elapsed() >= CARD_CLOCK_SILENCE {
                        self.tick_media(&stream_tx);
                    }
                    None
                }
                () = card_frame(card.as_ref()), if card_clocked => {
                    // One frame a step, the steps at least most of a frame apart: a device
                    // that captures in longer periods hands over several frames at once, and
                    // steps in a burst would ask the far end's frames of the jitter buffer
                    // before they are due. The audio thread signals again within a few
                    // milliseconds while a frame waits.
                    let waiting = card.as_ref().map_or(0, media::CardClock::frames_waiting);
                    if waiting > 0 && card_stepped_at.elapsed() >= CARD_STEP_SPACING {
                        self.tick_media(&stream_tx);
                        card_stepped_at = Instant::now();
                    }
                    None
                }
                () = tokio::time::sleep_until(wake_at.into()) => Some(Input::Timeout),
            };
            wake_at = self.feed(input, &stream_tx);
            // Sockets the engine asked for mid-session: bound in the order asked, each
            // answered before the next turn.
            while let Some(socket) = self.binds_wanted.pop_front() {
                let port = self.bind_media(socket, &media_tx).await;
                wake_at = self.feed(Some(Input::MediaBound { socket, port }), &stream_tx);
            }
        }
    }

    /// Readies the driver for what a command starts: the latency log of a recording, and the
    /// host a recorder's TLS certificate is checked against. The command goes to the engine
    /// as it was sent.
    fn observe(&mut self, command: &Command) {
        let recording = match command {
            Command::Dial { request, .. } | Command::FollowTransfer { request, .. } => request
                .record
                .as_deref()
                .map(|r| (r.recording, Some(&r.request))),
            Command::Answer { record, .. } => {
                record.as_deref().map(|r| (r.recording, Some(&r.request)))
            }
            Command::StartRecording {
                recording, request, ..
            } => Some((*recording, Some(request))),
            Command::AcceptRecorder { recording, .. } => Some((*recording, None)),
            _ => None,
        };
        if let Some((recording, request)) = recording {
            self.recordings.insert(recording, Some(Instant::now()));
            if let Some(request) = request {
                self.note_recorders(request);
            }
        }
    }

    /// A recorder's certificate is checked against the recorder's host, not the call's.
    fn note_recorders(&mut self, request: &crate::engine::RecordingRequest) {
        let recorders = std::iter::once((&request.srs, request.destination))
            .chain(request.secondary.iter().map(|(uri, d)| (uri, *d)));
        for (uri, destination) in recorders {
            if destination.transport == Transport::Tls {
                let host = uri.host.trim_matches(['[', ']']).to_owned();
                self.tls_names.insert(destination.address, host);
                if let Some(connector) = &self.recorder_connector {
                    self.tls_connectors
                        .insert(destination.address, connector.clone());
                }
            }
        }
    }

    /// Binds the RTP/RTCP pair of a call (with its audio) or of a recording (which only
    /// sends, so it carries no call audio); returns the RTP port.
    async fn bind_media(
        &mut self,
        socket: MediaSocket,
        media_tx: &mpsc::UnboundedSender<media::MediaPacketNote>,
    ) -> Result<u16, String> {
        let audio: Box<dyn media::CallAudio> = match (socket, &self.audio) {
            (MediaSocket::Call(call), Some(factory)) => factory(call),
            _ => Box::new(media::Silence),
        };
        match media::CallMediaIo::bind(socket, self.advertised_ip, audio, media_tx).await {
            Ok(io) => {
                let port = io.port();
                self.media.insert(socket, io);
                Ok(port)
            }
            Err(error) => Err(format!("no RTP port for {socket}: {error}")),
        }
    }

    /// Sends a call's socket pair's first STUN requests; the front end's `reply` waits for
    /// their answers (or the give-up, see [`stun::GIVE_UP_AFTER`]).
    fn start_stun(
        &mut self,
        socket: MediaSocket,
        server: SocketAddr,
        port: u16,
        reply: tokio::sync::oneshot::Sender<Result<u16, String>>,
    ) {
        let ids = [rand::random(), rand::random()];
        let mapping = crate::media::stun::SocketPairMapping::new(
            server,
            ids,
            Instant::now(),
            stun::GIVE_UP_AFTER,
        );
        self.stun_gathering.insert(
            socket,
            stun::Gathering {
                mapping,
                port,
                reply,
            },
        );
        self.send_stun(socket);
    }

    /// Sends what a gathering's transactions have due.
    fn send_stun(&mut self, socket: MediaSocket) {
        let Some(gathering) = self.stun_gathering.get_mut(&socket) else {
            return;
        };
        let due = gathering.mapping.poll(Instant::now());
        if let Some(io) = self.media.get(&socket) {
            for request in due {
                io.send(request.to, &request.request, request.rtcp);
            }
        }
    }

    /// Retransmits and gives up on STUN requests as their time comes.
    fn poll_stun(&mut self, stream_tx: &mpsc::UnboundedSender<StreamNote>) {
        let sockets: Vec<MediaSocket> = self.stun_gathering.keys().copied().collect();
        for socket in sockets {
            self.send_stun(socket);
            self.finish_stun(socket, stream_tx);
        }
    }

    /// Takes a media socket's datagram when it answers one of its STUN requests.
    fn stun_answer(
        &mut self,
        note: &media::MediaPacketNote,
        stream_tx: &mpsc::UnboundedSender<StreamNote>,
    ) -> bool {
        let Some(gathering) = self.stun_gathering.get_mut(&note.socket) else {
            return false;
        };
        if !gathering
            .mapping
            .receive(&note.data, note.source, Instant::now())
        {
            return false;
        }
        self.finish_stun(note.socket, stream_tx);
        true
    }

    /// Once both sockets have their answer (or none will come): tells the engine where
    /// the NAT maps them, then the front end the port.
    fn finish_stun(&mut self, socket: MediaSocket, stream_tx: &mpsc::UnboundedSender<StreamNote>) {
        let Some(outcome) = self
            .stun_gathering
            .get(&socket)
            .and_then(|g| g.mapping.outcome())
        else {
            return;
        };
        let Some(gathering) = self.stun_gathering.remove(&socket) else {
            return;
        };
        let local = SocketAddr::new(self.advertised_ip, gathering.port);
        match (outcome.rtp, socket) {
            (Ok(rtp), MediaSocket::Call(call)) if rtp != local => {
                tracing::info!(%call, %rtp, rtcp = ?outcome.rtcp, "media mapped by a NAT");
                let input = Input::MediaMapped {
                    call,
                    rtp,
                    rtcp: outcome.rtcp,
                };
                self.feed(Some(input), stream_tx);
            }
            (Ok(_), _) => tracing::debug!(%socket, "no NAT in front of the media"),
            (Err(reason), _) => {
                tracing::warn!(%socket, %reason, "STUN: the SDP names the local address");
            }
        }
        let _ = gathering.reply.send(Ok(gathering.port));
    }

    /// One 20 ms step for every call with media: capture in, playback out.
    fn tick_media(&mut self, stream_tx: &mpsc::UnboundedSender<StreamNote>) {
        self.media_steps += 1;
        for io in self.media.values_mut() {
            io.audio.begin_step(self.media_steps);
        }
        self.tick_calls(stream_tx);
        for io in self.media.values_mut() {
            io.audio.end_step();
        }
    }

    fn tick_calls(&mut self, stream_tx: &mpsc::UnboundedSender<StreamNote>) {
        if let Some(ringer) = &self.ringer
            && !self.ringing.is_empty()
        {
            let mut frame = vec![0.0; crate::media::FRAME_SAMPLES];
            self.ringtone.fill(&mut frame);
            ringer.play(&frame);
        }
        for io in self.media.values_mut().filter(|io| !io.ticking) {
            if let Some(ringback) = io.ringback.as_mut() {
                let mut frame = vec![0.0; crate::media::FRAME_SAMPLES];
                ringback.fill(&mut frame);
                io.audio.play(&frame);
            }
        }
        let calls: Vec<CallId> = self
            .media
            .iter()
            .filter(|(_, io)| io.ticking)
            .filter_map(|(socket, _)| match socket {
                MediaSocket::Call(call) => Some(*call),
                MediaSocket::Recording { .. } => None,
            })
            .collect();
        for call in calls {
            let started = std::time::Instant::now();
            let mut captured = vec![0.0; crate::media::FRAME_SAMPLES];
            if let Some(io) = self.media.get_mut(&MediaSocket::Call(call)) {
                io.audio.capture(&mut captured);
            }
            self.feed(Some(Input::MediaTick { call, captured }), stream_tx);
            if let Some(latency) = &self.frame_latency {
                latency.record(started.elapsed());
            }
        }
    }

    /// Gives one input to the engine and carries out everything it asks for. Returns when to
    /// wake it next.
    fn feed(
        &mut self,
        input: Option<Input>,
        stream_tx: &mpsc::UnboundedSender<StreamNote>,
    ) -> Instant {
        let turn_started = Instant::now();
        if let Some(input) = input {
            if let Input::Datagram { source, data } | Input::Stream { source, data } = &input {
                trace_sip("in", *source, data);
            }
            self.engine.handle_input(turn_started, input);
        }
        loop {
            match self.engine.poll_output() {
                Output::Transmit { destination, data } => {
                    trace_sip("out", destination, &data);
                    self.transmit(destination, data, stream_tx)
                }
                Output::Media {
                    socket,
                    destination,
                    data,
                    rtcp,
                } => {
                    if let Some(io) = self.media.get(&socket) {
                        io.send(destination, &data, rtcp);
                    }
                    if let (Some(log), Some(recording)) =
                        (&self.recording_latency, socket.recording())
                        && let Some(asked) = self.recordings.get_mut(&recording)
                    {
                        log.lag.record(turn_started.elapsed());
                        if let Some(at) = asked.take() {
                            log.first_packet.record(at.elapsed());
                        }
                    }
                }
                Output::BindMedia { socket } => self.binds_wanted.push_back(socket),
                Output::Playback { call, frame } => {
                    if let Some(io) = self.media.get_mut(&MediaSocket::Call(call)) {
                        io.audio.play(&frame);
                    }
                }
                Output::Event(event) => {
                    match &event {
                        Event::CallEnded { call, .. } => {
                            self.media.remove(&MediaSocket::Call(*call));
                            self.ringing.remove(call);
                            // Its sockets are gone: no STUN answer can come, and the front
                            // end must not wait for one.
                            if let Some(gathering) =
                                self.stun_gathering.remove(&MediaSocket::Call(*call))
                            {
                                let _ = gathering.reply.send(Err("the call ended".to_owned()));
                            }
                        }
                        Event::IncomingCall { call, .. } => {
                            self.ringing.insert(*call);
                        }
                        Event::Recording {
                            recording,
                            state:
                                crate::engine::RecordingState::Off
                                | crate::engine::RecordingState::Failed { .. },
                            ..
                        } => {
                            self.media
                                .retain(|socket, _| socket.recording() != Some(*recording));
                            self.recordings.remove(recording);
                        }
                        Event::CallState { call, state }
                            if *state != crate::engine::CallState::Incoming
                                && *state != crate::engine::CallState::Ringing =>
                        {
                            self.ringing.remove(call);
                        }
                        Event::Media { call, .. } => {
                            if let Some(io) = self.media.get_mut(&MediaSocket::Call(*call)) {
                                io.ticking = true;
                                io.ringback = None;
                            }
                        }
                        Event::CallState {
                            call,
                            state: crate::engine::CallState::Ringing,
                        } => {
                            if let Some(io) = self.media.get_mut(&MediaSocket::Call(*call))
                                && !io.ticking
                            {
                                io.ringback = Some(crate::media::tone::Cadence::ringback_eu(
                                    crate::media::SAMPLE_RATE,
                                ));
                            }
                        }
                        _ => {}
                    }
                    let _ = self.events.send(event);
                }
                Output::Timeout(at) => return at,
            }
        }
    }

    fn transmit(
        &mut self,
        destination: Destination,
        data: Vec<u8>,
        stream_tx: &mpsc::UnboundedSender<StreamNote>,
    ) {
        if destination.transport == Transport::Udp {
            if let Err(error) = self.udp.try_send_to(&data, destination.address) {
                tracing::debug!(%error, %destination, "UDP send failed");
            }
            return;
        }
        if let Some(writer) = self.connections.get(&destination) {
            if writer.send(data.clone()).is_ok() {
                return;
            }
            self.connections.remove(&destination);
        }
        let first = !self.pending.contains_key(&destination);
        self.pending.entry(destination).or_default().push(data);
        if first {
            let connector = self
                .tls_connectors
                .get(&destination.address)
                .cloned()
                .or_else(|| self.tls_connector.clone());
            let server_name = self
                .tls_names
                .get(&destination.address)
                .cloned()
                .or_else(|| self.server_name.clone());
            let notes = stream_tx.clone();
            tokio::spawn(async move {
                match connect(destination, connector, server_name, notes.clone()).await {
                    Ok(writer) => {
                        let _ = notes.send(StreamNote::Connected(destination, writer));
                    }
                    Err(error) => {
                        tracing::warn!(%destination, %error, "connection failed");
                        let _ = notes.send(StreamNote::Closed(destination, Some(error)));
                    }
                }
            });
        }
    }
}

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn connect(
    destination: Destination,
    connector: Option<tokio_rustls::TlsConnector>,
    server_name: Option<String>,
    notes: mpsc::UnboundedSender<StreamNote>,
) -> Result<mpsc::UnboundedSender<Vec<u8>>, String> {
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        TcpStream::connect(destination.address),
    )
    .await
    .map_err(|_| "connect timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    match destination.transport {
        Transport::Tls => {
            let connector = connector.ok_or("TLS is not configured")?;
            let name = server_name.unwrap_or_else(|| destination.address.ip().to_string());
            let server_name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|e| format!("bad TLS server name {name:?}: {e}"))?;
            // A peer that is not speaking TLS (a plain SIP port, a firewall's black hole)
            // never answers the ClientHello; without a bound the call would wait for Timer B.
            let stream =
                tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, connector.connect(server_name, tcp))
                    .await
                    .map_err(|_| {
                        format!(
                            "TLS handshake with {name} timed out after {} s (is it a TLS port?)",
                            TLS_HANDSHAKE_TIMEOUT.as_secs()
                        )
                    })?
                    .map_err(|e| {
                        format!(
                            "TLS handshake with {name} failed: {}",
                            tls::handshake_failure(&e)
                        )
                    })?;
            Ok(spawn_stream(stream, destination, notes))
        }
        _ => Ok(spawn_stream(tcp, destination, notes)),
    }
}

/// Splits a connection into a reader task (bytes to the loop) and a writer task (bytes from
/// the loop), and returns the writer's queue.
fn spawn_stream<S>(
    stream: S,
    destination: Destination,
    notes: mpsc::UnboundedSender<StreamNote>,
) -> mpsc::UnboundedSender<Vec<u8>>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if writer.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let data = buffer.get(..n).unwrap_or(&[]).to_vec();
                    if notes.send(StreamNote::Data(destination, data)).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = notes.send(StreamNote::Closed(destination, None));
    });
    tx
}

/// Accepts TLS connections; each handshake runs in its own task so a slow or hostile client
/// cannot hold up the others.
async fn accept_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    notes: mpsc::UnboundedSender<StreamNote>,
) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let notes = notes.clone();
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
            match handshake {
                Ok(Ok(stream)) => {
                    let destination = Destination::new(Transport::Tls, peer);
                    let writer = spawn_stream(stream, destination, notes.clone());
                    let _ = notes.send(StreamNote::Connected(destination, writer));
                }
                Ok(Err(error)) => tracing::warn!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// The local address the system would use to reach `probe` (a connected UDP socket sends
/// nothing until written to).
async fn outbound_ip(probe: Option<SocketAddr>) -> Option<core::net::IpAddr> {
    let probe = probe?;
    let any: SocketAddr = if probe.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(any).await.ok()?;
    socket.connect(probe).await.ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// Logs a SIP message under `--sip-trace` (the log writers redact it unless asked not to).
fn trace_sip(direction: &str, peer: Destination, data: &[u8]) {
    if tracing::enabled!(target: crate::logging::SIP_TRACE, tracing::Level::INFO) {
        let text = String::from_utf8_lossy(data);
        tracing::info!(target: crate::logging::SIP_TRACE, %direction, %peer, "\n{text}");
    }
}
