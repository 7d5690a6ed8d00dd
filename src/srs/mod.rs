//! Verbatim's built-in Session Recording Server (RFC 7866): it accepts the recording sessions
//! that SIPREC clients (this phone with `--record --srs`, or others) open, and writes what
//! they send to disk.
//!
//! [`core`] is the sans-IO SIP side, [`stream`] turns one stream's packets into a WAV (in the
//! on-disk formats of [`crate::archive::files`]), and this module is the tokio driver around
//! them.
//!
//! Per recording session a folder `<start time>-<short id>` under the output directory holds
//! `label-<N>-<participant>.wav` (48 kHz 16-bit mono, header kept valid every second),
//! `metadata-<k>.xml` for every metadata version received and `summary.json` (written after
//! setup, on every pause/resume and at the end). The participant is the one the metadata's
//! participant-to-stream associations name as the stream's sender (`unknown` until metadata
//! says, the file being renamed when it does); a stream a re-INVITE adds gets a file of its
//! own.

pub mod core;
pub mod stream;

use ::core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::archive::sealed::Sealing;
use crate::driver::tls::{TlsServerSettings, acceptor};
use crate::media::codec::CodecKind;
use crate::media::srtp::KEY_SALT_LEN;
use crate::recording::metadata::{Metadata, format_time, normalize_time};
use crate::sip::framing::{Frame, StreamFramer};
use crate::sip::transport::{Destination, Transport};

use self::core::{Recorder, RecorderOutput, SrsResources, StreamSetup};
use self::stream::StreamRecorder;
use crate::archive::files::{
    GapSummary, LabelSummary, ParticipantSummary, PauseSummary, Summary, WavWriter,
};
use crate::archive::retention;

#[derive(Debug, thiserror::Error)]
pub enum SrsError {
    #[error("cannot listen on {transport} {address}: {source}")]
    Bind {
        transport: Transport,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot use the output directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot wait for Ctrl+C: {0}")]
    Signal(std::io::Error),
}

/// How to run the recorder.
#[derive(Debug, Clone)]
pub struct SrsConfig {
    /// SIP over UDP and TCP listen here (port 0 picks a free port, the same for both).
    pub listen: SocketAddr,
    /// Recording sessions go in folders under this directory (created if missing).
    pub dir: PathBuf,
    /// The address put in SDP answers and Contact; by default the listen address, or the
    /// address of the default route when listening on all interfaces.
    pub advertise: Option<IpAddr>,
    /// SIP over TLS too, on its own address (port 0 picks one), with this certificate.
    pub tls: Option<TlsServerSettings>,
    /// The codecs this recorder prefers, best first; empty takes the offerer's first choice.
    pub codecs: Vec<CodecKind>,
    /// Delete recordings older than this (checked at start and every hour); None keeps them.
    pub keep: Option<Duration>,
    /// Plain files, or encrypted to the recordings key (the front ends' default).
    pub sealing: Sealing,
}

impl SrsConfig {
    pub fn new(listen: SocketAddr, dir: impl Into<PathBuf>) -> SrsConfig {
        SrsConfig {
            listen,
            dir: dir.into(),
            advertise: None,
            tls: None,
            codecs: Vec::new(),
            keep: None,
            sealing: Sealing::Plain,
        }
    }
}

/// What the recorder reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrsEvent {
    /// A recording session was accepted; its files go to `folder`.
    SessionStarted { call_id: String, folder: PathBuf },
    /// A recording session was paused or resumed.
    SessionPaused { call_id: String, paused: bool },
    /// A recording session ended and its files are complete.
    SessionEnded { call_id: String, folder: PathBuf },
    /// An INVITE was refused with this status and reason.
    Rejected { status: u16, reason: String },
}

/// A running recorder.
#[derive(Debug)]
pub struct SrsHandle {
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    events: mpsc::UnboundedReceiver<SrsEvent>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl SrsHandle {
    /// Where SIP listens (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where SIP over TLS listens, when it does.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The next event; None once the recorder has stopped.
    pub async fn next_event(&mut self) -> Option<SrsEvent> {
        self.events.recv().await
    }

    /// Ends every session (finishing their files) and stops.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts the recorder: binds the sockets and returns once it listens.
pub async fn run(config: SrsConfig) -> Result<SrsHandle, SrsError> {
    crate::private_fs::create_dir_all(&config.dir).map_err(|source| SrsError::Directory {
        path: config.dir.clone(),
        source,
    })?;
    let (udp, tcp) = bind_pair(config.listen).await?;
    let local_addr = udp.local_addr().map_err(|source| SrsError::Bind {
        transport: Transport::Udp,
        address: config.listen,
        source,
    })?;
    let ip = config
        .advertise
        .unwrap_or_else(|| advertised_ip(local_addr.ip()));
    let contact = format!("sip:srs@{}", SocketAddr::new(ip, local_addr.port()));
    let tls = match &config.tls {
        Some(settings) => {
            let acceptor = acceptor(settings).map_err(SrsError::Tls)?;
            let listener =
                TcpListener::bind(settings.listen)
                    .await
                    .map_err(|source| SrsError::Bind {
                        transport: Transport::Tls,
                        address: settings.listen,
                        source,
                    })?;
            Some((listener, acceptor))
        }
        None => None,
    };
    let tls_addr = tls
        .as_ref()
        .and_then(|(listener, _)| listener.local_addr().ok());
    let (events_tx, events) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
    let driver = Driver {
        recorder: match tls_addr {
            Some(tls) => Recorder::new(ip, contact)
                .with_tls_contact(format!("sips:srs@{}", SocketAddr::new(ip, tls.port()))),
            None => Recorder::new(ip, contact),
        }
        .with_codec_preference(config.codecs),
        resources: Resources {
            ip: if local_addr.ip().is_unspecified() {
                local_addr.ip()
            } else {
                ip
            },
            pending: Vec::new(),
        },
        dir: config.dir,
        udp: Arc::new(udp),
        writers: HashMap::new(),
        sessions: HashMap::new(),
        events: events_tx,
        inbound_tx,
        keep: config.keep,
        sealing: config.sealing,
    };
    let task = tokio::spawn(driver.run(tcp, tls, stop_rx, inbound_rx));
    Ok(SrsHandle {
        local_addr,
        tls_addr,
        events,
        stop: Some(stop_tx),
        task,
    })
}

/// Runs a recorder on `listen` writing under `dir` until Ctrl+C, printing
/// `srs: listening on ADDR` and `srs: recorded FOLDER` per finished recording.
pub async fn serve(config: SrsConfig) -> Result<(), SrsError> {
    let mut handle = run(config).await?;
    println!("srs: listening on {}", handle.local_addr());
    if let Some(tls) = handle.tls_addr() {
        println!("srs: listening on tls {tls}");
    }
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            signal = &mut ctrl_c => {
                handle.stop().await;
                return signal.map_err(SrsError::Signal);
            }
            event = handle.next_event() => match event {
                Some(SrsEvent::SessionEnded { folder, .. }) => {
                    println!("srs: recorded {}", folder.display());
                }
                Some(SrsEvent::Rejected { status, reason }) => {
                    eprintln!("srs: refused a session: {status} {reason}");
                }
                Some(_) => {}
                None => return Ok(()),
            },
        }
    }
}

async fn bind_pair(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), SrsError> {
    let bind_error = |transport, source| SrsError::Bind {
        transport,
        address: listen,
        source,
    };
    let attempts = if listen.port() == 0 { 20 } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(listen)
            .await
            .map_err(|e| bind_error(Transport::Udp, e))?;
        let address = udp
            .local_addr()
            .map_err(|e| bind_error(Transport::Udp, e))?;
        match TcpListener::bind(address).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(bind_error(
        Transport::Tcp,
        last_error.unwrap_or_else(|| std::io::Error::other("no port")),
    ))
}

fn advertised_ip(listen: IpAddr) -> IpAddr {
    if !listen.is_unspecified() {
        return listen;
    }
    // Connecting a UDP socket sends nothing but tells which address the default route uses.
    std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|socket| {
            socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
            socket.local_addr()
        })
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |address| address.ip())
}

/// Media ports and keys for the core: each port is a socket bound at once and kept until the
/// session that asked for it takes it.
#[derive(Debug)]
struct Resources {
    ip: IpAddr,
    pending: Vec<(u16, std::net::UdpSocket)>,
}

impl SrsResources for Resources {
    fn allocate_port(&mut self) -> Option<u16> {
        let socket = std::net::UdpSocket::bind((self.ip, 0)).ok()?;
        let port = socket.local_addr().ok()?.port();
        self.pending.push((port, socket));
        Some(port)
    }

    fn srtp_key(&mut self) -> [u8; KEY_SALT_LEN] {
        rand::random()
    }

    fn token(&mut self) -> u64 {
        rand::random()
    }
}

enum Inbound {
    Connected(Destination, mpsc::UnboundedSender<Vec<u8>>),
    Message(Destination, Vec<u8>),
    Closed(Destination),
    /// A session's audio could not be written (a full disk): the session ends with BYE.
    WriteFailed {
        key: String,
        error: String,
    },
}

type SharedStream = Arc<Mutex<Option<StreamRecorder>>>;

struct ActiveSession {
    folder: PathBuf,
    started: Instant,
    streams: Vec<SharedStream>,
    tasks: Vec<JoinHandle<()>>,
    summary: Summary,
}

/// What a re-INVITE or UPDATE changed, as the core reported it.
struct Update {
    paused: bool,
    metadata_xml: Option<String>,
    metadata: Option<Box<Metadata>>,
    added: Vec<StreamSetup>,
    renamed: Vec<(String, String)>,
}

/// The participants the metadata names, for the summary.
fn participant_summaries(metadata: &Metadata) -> Vec<ParticipantSummary> {
    metadata
        .participants
        .iter()
        .map(|p| ParticipantSummary {
            aor: p.aor.clone(),
            name: p.name.clone(),
        })
        .collect()
}

/// `label-<label>-<participant>.wav` as `sealing` names it, with `-2`, `-3`... when the
/// session has that name already (a stream dropped and offered again).
fn free_file_name(
    session: &ActiveSession,
    sealing: &Sealing,
    label: &str,
    participant: &str,
) -> String {
    let base = format!("label-{}-{participant}", safe_name(label));
    let taken = |name: &String| {
        session.summary.labels.iter().any(|l| &l.file == name) || session.folder.join(name).exists()
    };
    let mut name = sealing.file_name(&format!("{base}.wav"));
    let mut n = 1;
    while taken(&name) {
        n += 1;
        name = sealing.file_name(&format!("{base}-{n}.wav"));
    }
    name
}

/// The metadata names the sender of `label`'s stream only now: its file takes the name. An
/// open file keeps being written under its new name.
fn rename_stream(session: &mut ActiveSession, sealing: &Sealing, label: &str, participant: &str) {
    let Some(index) = session
        .summary
        .labels
        .iter()
        .rposition(|l| l.label == label)
    else {
        return;
    };
    let Some(old) = session.summary.labels.get(index).map(|l| l.file.clone()) else {
        return;
    };
    let new = free_file_name(session, sealing, label, participant);
    match std::fs::rename(session.folder.join(&old), session.folder.join(&new)) {
        Ok(()) => {
            if let Some(summary) = session.summary.labels.get_mut(index) {
                summary.file = new;
                summary.participant = participant.to_owned();
            }
        }
        Err(error) => tracing::error!(%error, %old, "srs: cannot rename a stream's file"),
    }
}

struct Driver {
    recorder: Recorder,
    resources: Resources,
    dir: PathBuf,
    udp: Arc<UdpSocket>,
    writers: HashMap<Destination, mpsc::UnboundedSender<Vec<u8>>>,
    sessions: HashMap<String, ActiveSession>,
    events: mpsc::UnboundedSender<SrsEvent>,
    /// Connections and media tasks report to the loop through this.
    inbound_tx: mpsc::UnboundedSender<Inbound>,
    keep: Option<Duration>,
    sealing: Sealing,
}

impl Driver {
    async fn run(
        mut self,
        tcp: TcpListener,
        tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
        mut stop: oneshot::Receiver<()>,
        mut inbound: mpsc::UnboundedReceiver<Inbound>,
    ) {
        let inbound_tx = self.inbound_tx.clone();
        let mut buffer = vec![0u8; 65_535];
        // The first tick is at once: retention is applied when the recorder starts.
        let mut retention = tokio::time::interval(Duration::from_secs(3600));
        loop {
            let deadline = self.recorder.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => break,
                received = self.udp.recv_from(&mut buffer) => {
                    if let Ok((len, source)) = received {
                        let data = buffer.get(..len).unwrap_or(&[]).to_vec();
                        let source = Destination::new(Transport::Udp, source);
                        self.recorder
                            .on_bytes(Instant::now(), &data, source, &mut self.resources);
                        self.after_core();
                    }
                }
                accepted = tcp.accept() => {
                    if let Ok((stream, peer)) = accepted {
                        // Many sessions share a client's connection: Nagle plus delayed ACK
                        // would hold each answer after the first by 40 ms.
                        let _ = stream.set_nodelay(true);
                        let destination = Destination::new(Transport::Tcp, peer);
                        tokio::spawn(connection(stream, destination, inbound_tx.clone()));
                    }
                }
                accepted = accept_tls(tls.as_ref()) => {
                    if let Some((stream, peer, acceptor)) = accepted {
                        let inbound = inbound_tx.clone();
                        tokio::spawn(async move {
                            // A failed handshake (bad client certificate, plain TCP) only
                            // ends that connection.
                            match acceptor.accept(stream).await {
                                Ok(stream) => {
                                    let destination = Destination::new(Transport::Tls, peer);
                                    connection(stream, destination, inbound).await;
                                }
                                Err(error) => {
                                    tracing::info!(%peer, %error, "srs: TLS handshake failed");
                                }
                            }
                        });
                    }
                }
                message = inbound.recv() => match message {
                    Some(Inbound::Connected(peer, writer)) => {
                        self.writers.insert(peer, writer);
                    }
                    Some(Inbound::Message(peer, data)) => {
                        self.recorder
                            .on_bytes(Instant::now(), &data, peer, &mut self.resources);
                        self.after_core();
                    }
                    Some(Inbound::Closed(peer)) => {
                        self.writers.remove(&peer);
                    }
                    Some(Inbound::WriteFailed { key, error }) => {
                        self.cannot_store(&key, &error);
                    }
                    None => {}
                },
                () = sleep => {
                    self.recorder.on_timeout(Instant::now(), &mut self.resources);
                    self.after_core();
                }
                _ = retention.tick(), if self.keep.is_some() => {
                    if let Some(keep) = self.keep {
                        let dir = self.dir.clone();
                        // Deleting a large archive is slow disk work: off the loop.
                        tokio::task::spawn_blocking(move || {
                            retention::delete_older_than(&dir, keep, SystemTime::now())
                        });
                    }
                }
            }
        }
        // A recorder that stops says so: each client hears BYE and can fail over at once
        // instead of sending media into the void.
        let now = Instant::now();
        for key in self.recorder.session_keys() {
            self.recorder.hang_up(now, &key);
        }
        self.after_core();
        // Let the connection tasks write the BYEs before their sockets close.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let keys: Vec<String> = self.sessions.keys().cloned().collect();
        for key in keys {
            self.end_session(&key);
        }
    }

    fn after_core(&mut self) {
        while let Some(output) = self.recorder.poll_output() {
            match output {
                RecorderOutput::Transmit(transmit) => match transmit.destination.transport {
                    Transport::Udp => {
                        let _ = self
                            .udp
                            .try_send_to(&transmit.data, transmit.destination.address);
                    }
                    _ => {
                        if let Some(writer) = self.writers.get(&transmit.destination) {
                            let _ = writer.send(transmit.data);
                        }
                    }
                },
                RecorderOutput::SessionStarted {
                    key,
                    streams,
                    metadata_xml,
                    metadata,
                } => match self.start_session(&key, streams, metadata_xml.as_deref(), &metadata) {
                    Ok(folder) => {
                        if let Some(session) = self.sessions.get_mut(&key) {
                            note_call_facts(&mut session.summary, &metadata);
                        }
                        let _ = self.events.send(SrsEvent::SessionStarted {
                            call_id: key,
                            folder,
                        });
                    }
                    Err(error) => self.cannot_store(&key, &error.to_string()),
                },
                RecorderOutput::SessionUpdated {
                    key,
                    paused,
                    metadata_xml,
                    metadata,
                    added,
                    renamed,
                } => {
                    let update = Update {
                        paused,
                        metadata_xml,
                        metadata,
                        added,
                        renamed,
                    };
                    match self.update_session(&key, update) {
                        Ok(true) => {
                            let _ = self.events.send(SrsEvent::SessionPaused {
                                call_id: key,
                                paused,
                            });
                        }
                        Ok(false) => {}
                        Err(error) => self.cannot_store(&key, &error.to_string()),
                    }
                }
                RecorderOutput::SessionEnded { key } => self.end_session(&key),
                RecorderOutput::Rejected { status, reason } => {
                    let _ = self.events.send(SrsEvent::Rejected { status, reason });
                }
            }
        }
        // Ports the core asked for but did not keep (a refused INVITE) go back.
        self.resources.pending.clear();
    }

    fn start_session(
        &mut self,
        key: &str,
        streams: Vec<StreamSetup>,
        metadata_xml: Option<&str>,
        metadata: &Metadata,
    ) -> std::io::Result<PathBuf> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let start = format_time(now);
        let stamp: String = start
            .chars()
            .take(19)
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let short: String = format!("{:08x}", rand::random::<u32>());
        let folder = self.dir.join(format!("{stamp}Z-{short}"));
        crate::private_fs::create_dir_all(&folder)?;
        if let Some(xml) = metadata_xml {
            write_metadata(&self.sealing, &folder, 1, xml)?;
        }
        let mut session = ActiveSession {
            folder: folder.clone(),
            started: Instant::now(),
            streams: Vec::new(),
            tasks: Vec::new(),
            summary: Summary {
                call_id: key.to_owned(),
                session_id: metadata.sessions.first().map(|s| s.id.clone()),
                start,
                end: None,
                participants: participant_summaries(metadata),
                labels: Vec::new(),
                pauses: Vec::new(),
                gaps: Vec::new(),
                call_end: None,
                metadata_versions: usize::from(metadata_xml.is_some()),
            },
        };
        for setup in streams {
            self.open_stream(key, &mut session, setup)?;
        }
        session.summary.write(&folder, &self.sealing)?;
        tracing::info!(folder = %folder.display(), "srs: recording session started");
        self.sessions.insert(key.to_owned(), session);
        Ok(folder)
    }

    /// Opens the file of one stream of `session` and starts receiving its packets on the
    /// socket the core was given for it.
    fn open_stream(
        &mut self,
        key: &str,
        session: &mut ActiveSession,
        setup: StreamSetup,
    ) -> std::io::Result<()> {
        let file = free_file_name(session, &self.sealing, &setup.label, &setup.participant);
        session.summary.labels.push(LabelSummary {
            label: setup.label.clone(),
            participant: setup.participant.clone(),
            codec: setup.codec.name().to_owned(),
            srtp: setup.crypto.is_some(),
            file: file.clone(),
            packets_received: 0,
            packets_lost: 0,
            seconds: 0.0,
        });
        let socket = self
            .resources
            .pending
            .iter()
            .position(|(port, _)| *port == setup.local_port)
            .map(|index| self.resources.pending.swap_remove(index).1);
        let wav = WavWriter::create_sealed(session.folder.join(&file), &self.sealing)?;
        let recorder = StreamRecorder::new(setup, wav).map_err(std::io::Error::other)?;
        let recorder = Arc::new(Mutex::new(Some(recorder)));
        if let Some(socket) = socket
            && socket.set_nonblocking(true).is_ok()
            && let Ok(socket) = UdpSocket::from_std(socket)
        {
            session.tasks.push(tokio::spawn(receive_media(
                socket,
                Arc::clone(&recorder),
                session.started,
                key.to_owned(),
                self.inbound_tx.clone(),
            )));
        }
        session.streams.push(recorder);
        Ok(())
    }

    /// The recording cannot be stored: the session ends now with BYE and the reason, so the
    /// client's indicator shows it and the client can retry or fail over, instead of
    /// sending audio that is lost.
    fn cannot_store(&mut self, key: &str, error: &str) {
        tracing::error!(%error, "srs: cannot store the recording; ending the session");
        let reason = format!("the recorder cannot store the recording: {error}");
        self.recorder
            .hang_up_because(Instant::now(), key, Some(&reason));
        self.after_core();
        // Closes the files even when the core had already let the session go.
        self.end_session(key);
    }

    /// Notes a pause, a resume, new metadata (files renamed for the senders it names) and
    /// streams added; true when the pause state changed.
    fn update_session(&mut self, key: &str, update: Update) -> std::io::Result<bool> {
        let Some(mut session) = self.sessions.remove(key) else {
            return Ok(false);
        };
        let result = self.apply_update(key, &mut session, update);
        refresh_stats(&mut session);
        if let Err(error) = session.summary.write(&session.folder, &self.sealing) {
            tracing::error!(%error, "srs: cannot write summary");
        }
        self.sessions.insert(key.to_owned(), session);
        result
    }

    fn apply_update(
        &mut self,
        key: &str,
        session: &mut ActiveSession,
        update: Update,
    ) -> std::io::Result<bool> {
        let now = format_time(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        );
        let open = session
            .summary
            .pauses
            .last()
            .is_some_and(|p| p.end.is_none());
        if update.paused && !open {
            session.summary.pauses.push(PauseSummary {
                start: now,
                end: None,
            });
        } else if !update.paused
            && open
            && let Some(pause) = session.summary.pauses.last_mut()
        {
            pause.end = Some(now);
        }
        if let Some(xml) = &update.metadata_xml {
            session.summary.metadata_versions += 1;
            let version = session.summary.metadata_versions;
            if let Err(error) = write_metadata(&self.sealing, &session.folder, version, xml) {
                tracing::error!(%error, "srs: cannot write metadata");
            }
        }
        if let Some(metadata) = &update.metadata {
            // The core's complete view: a partial update is already merged into it.
            note_call_facts(&mut session.summary, metadata);
            session.summary.participants = participant_summaries(metadata);
            if session.summary.session_id.is_none() {
                session.summary.session_id = metadata.sessions.first().map(|s| s.id.clone());
            }
        }
        for (label, participant) in update.renamed {
            rename_stream(session, &self.sealing, &label, &participant);
        }
        for setup in update.added {
            self.open_stream(key, session, setup)?;
        }
        Ok(update.paused != open)
    }

    fn end_session(&mut self, key: &str) {
        let Some(mut session) = self.sessions.remove(key) else {
            return;
        };
        for task in &session.tasks {
            task.abort();
        }
        let length = session.started.elapsed();
        for (shared, summary) in session
            .streams
            .iter()
            .zip(session.summary.labels.iter_mut())
        {
            let taken = shared.lock().ok().and_then(|mut guard| guard.take());
            if let Some(recorder) = taken {
                match recorder.finish(length) {
                    Ok(stats) => {
                        summary.packets_received = stats.packets_received;
                        summary.packets_lost = stats.packets_lost;
                        summary.seconds = length.as_secs_f64();
                    }
                    Err(error) => tracing::error!(%error, "srs: cannot finish a WAV"),
                }
            }
        }
        let end = format_time(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        );
        if let Some(pause) = session.summary.pauses.last_mut()
            && pause.end.is_none()
        {
            pause.end = Some(end.clone());
        }
        session.summary.end = Some(end);
        if let Err(error) = session.summary.write(&session.folder, &self.sealing) {
            tracing::error!(%error, "srs: cannot write summary");
        }
        tracing::info!(folder = %session.folder.display(), "srs: recording session ended");
        let _ = self.events.send(SrsEvent::SessionEnded {
            call_id: key.to_owned(),
            folder: session.folder,
        });
    }
}

/// `metadata-<version>.xml`, as `sealing` stores it.
fn write_metadata(
    sealing: &Sealing,
    folder: &Path,
    version: usize,
    xml: &str,
) -> std::io::Result<()> {
    let name = sealing.file_name(&format!("metadata-{version}.xml"));
    crate::private_fs::write(&folder.join(name), sealing.seal(xml.as_bytes())?)
}

fn refresh_stats(session: &mut ActiveSession) {
    for (shared, summary) in session
        .streams
        .iter()
        .zip(session.summary.labels.iter_mut())
    {
        if let Ok(guard) = shared.lock()
            && let Some(recorder) = guard.as_ref()
        {
            let stats = recorder.stats();
            summary.packets_received = stats.packets_received;
            summary.packets_lost = stats.packets_lost;
            summary.seconds = recorder.samples_written() as f64 / 48_000.0;
        }
    }
}

fn safe_name(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    if clean.is_empty() {
        "x".to_owned()
    } else {
        clean
    }
}

async fn receive_media(
    socket: UdpSocket,
    recorder: SharedStream,
    started: Instant,
    key: String,
    report: mpsc::UnboundedSender<Inbound>,
) {
    let mut buffer = vec![0u8; 2048];
    while let Ok(len) = socket.recv(&mut buffer).await {
        let Some(datagram) = buffer.get(..len) else {
            continue;
        };
        let Ok(mut guard) = recorder.lock() else {
            return;
        };
        let Some(stream) = guard.as_mut() else {
            return;
        };
        if let Err(error) = stream.on_datagram(datagram, started.elapsed()) {
            let _ = report.send(Inbound::WriteFailed {
                key,
                error: error.to_string(),
            });
            return;
        }
    }
}

/// The next TLS connection to hand to a handshake; never ready without a TLS listener.
async fn accept_tls(
    tls: Option<&(TcpListener, tokio_rustls::TlsAcceptor)>,
) -> Option<(TcpStream, SocketAddr, tokio_rustls::TlsAcceptor)> {
    let Some((listener, acceptor)) = tls else {
        return std::future::pending().await;
    };
    let (stream, peer) = listener.accept().await.ok()?;
    let _ = stream.set_nodelay(true);
    Some((stream, peer, acceptor.clone()))
}

async fn connection<S>(stream: S, destination: Destination, inbound: mpsc::UnboundedSender<Inbound>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (write_tx, mut write_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    if inbound
        .send(Inbound::Connected(destination, write_tx.clone()))
        .is_err()
    {
        return;
    }
    let writing = tokio::spawn(async move {
        while let Some(data) = write_rx.recv().await {
            if writer.write_all(&data).await.is_err() {
                break;
            }
        }
    });
    let mut framer = StreamFramer::new();
    let mut buffer = vec![0u8; 16_384];
    'read: while let Ok(len) = reader.read(&mut buffer).await {
        if len == 0 {
            break;
        }
        framer.push(buffer.get(..len).unwrap_or(&[]));
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(data))) => {
                    if inbound.send(Inbound::Message(destination, data)).is_err() {
                        break 'read;
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    let _ = write_tx.send(b"\r\n".to_vec());
                }
                Ok(Some(Frame::Pong)) => {}
                Ok(None) => break,
                Err(_) => break 'read,
            }
        }
    }
    let _ = inbound.send(Inbound::Closed(destination));
    drop(write_tx);
    writing.abort();
}

/// What the phone's metadata says about the call beyond the streams: the gaps it could
/// not record and when the call ended.
fn note_call_facts(summary: &mut Summary, metadata: &Metadata) {
    summary.gaps = metadata
        .gaps
        .iter()
        .map(|gap| GapSummary {
            start: normalize_time(&gap.from),
            end: gap.to.as_deref().map(normalize_time),
            reason: gap.reason.clone(),
        })
        .collect();
    if let Some(end) = metadata.sessions.iter().find_map(|s| s.end_time.as_deref()) {
        // Kept in UTC whatever zone the client wrote it in, as every time the summary holds.
        summary.call_end = Some(normalize_time(end));
    }
}
