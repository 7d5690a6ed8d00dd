//! The sans-IO side of the Session Recording Server: SIP in, responses and session events out.
//!
//! The core checks that an INVITE really opens a recording session (RFC 7866: `Require:
//! siprec`, a `+sip.src` Contact, SDP whose audio streams carry labels, and metadata that
//! agrees with them) and answers each offered audio stream on a port the caller hands out:
//! `recvonly` when it is sent, `inactive` when it is not. Media, files and sockets are the
//! driver's business.
//!
//! What deployed recording clients send varies, and the core takes all of it: metadata as
//! `application/rs-metadata+xml` or the older `application/rs-metadata`, in any dialect that
//! [`metadata::parse`] reads, or no metadata until a later re-INVITE or UPDATE (the streams
//! are recorded meanwhile and named when it comes); partial metadata merged into what was
//! known; streams offered inactive or with port 0 and non-audio streams (answered with port 0);
//! streams added by a re-INVITE.

use core::net::IpAddr;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::media::codec::CodecKind;
use crate::media::srtp::{CryptoAttribute, CryptoSuite, KEY_SALT_LEN};
use crate::recording::metadata::{self, Metadata};
use crate::sdp::{Attribute, Direction, MediaDescription, Origin, SessionDescription};
use crate::sip::dialog::{Dialog, LEAVES_TLS_PHRASE, UasDialogError};
use crate::sip::message::{Message, Method};
use crate::sip::multipart;
use crate::sip::transaction::{TimerConfig, TransactionLayer, Transmit, TxEvent, TxKey};
use crate::sip::transport::Destination;
use crate::sip::uri::Uri;

/// What the core needs from its host: local media ports and fresh SRTP keys.
pub trait SrsResources {
    /// A local RTP port for one stream, or None when none is left.
    fn allocate_port(&mut self) -> Option<u16>;
    /// A fresh SRTP master key and salt.
    fn srtp_key(&mut self) -> [u8; KEY_SALT_LEN];
    /// A random token for tags.
    fn token(&mut self) -> u64;
}

/// Identifies a recording session: the RS dialog's Call-ID.
pub type SessionKey = String;

/// SRTP parameters of one stream.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamCrypto {
    pub suite: CryptoSuite,
    pub local_key: [u8; KEY_SALT_LEN],
    pub remote_key: [u8; KEY_SALT_LEN],
}

impl core::fmt::Debug for StreamCrypto {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamCrypto")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// One accepted stream of a recording session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSetup {
    pub label: String,
    pub local_port: u16,
    pub codec: CodecKind,
    pub payload_type: u8,
    pub crypto: Option<StreamCrypto>,
    /// The user part of the participant who sends this stream, `unknown` if the metadata
    /// does not say.
    pub participant: String,
}

/// What the core asks its host to do or tells it.
#[derive(Debug, Clone)]
pub enum RecorderOutput {
    Transmit(Transmit),
    /// A recording session was accepted (its 200 OK is among the transmits).
    SessionStarted {
        key: SessionKey,
        /// The streams recorded (audio with a port), in m-line order.
        streams: Vec<StreamSetup>,
        /// The metadata as it came, when the INVITE carried some.
        metadata_xml: Option<String>,
        /// What is known of the call (empty until metadata comes).
        metadata: Box<Metadata>,
    },
    /// A re-INVITE or UPDATE paused (`paused`: every recorded stream inactive) or resumed the
    /// session, brought metadata, or added streams.
    SessionUpdated {
        key: SessionKey,
        paused: bool,
        /// The metadata document as it came, when the request carried one.
        metadata_xml: Option<String>,
        /// With it, the complete view (a partial update merged into what was known).
        metadata: Option<Box<Metadata>>,
        /// Streams the re-offer added (a new file each).
        added: Vec<StreamSetup>,
        /// Streams whose sender the metadata now names otherwise: (label, participant).
        renamed: Vec<(String, String)>,
    },
    /// BYE (or CANCEL before the answer) ended the session.
    SessionEnded {
        key: SessionKey,
    },
    /// An INVITE was refused.
    Rejected {
        status: u16,
        reason: String,
    },
}

/// Why an INVITE was refused: the status and the reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
    /// Headers the status calls for (`Unsupported` with 420, `Accept` with 415).
    pub headers: Vec<(&'static str, String)>,
}

fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
        headers: Vec::new(),
    }
}

impl Refusal {
    fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Refusal {
        self.headers.push((name, value.into()));
        self
    }

    /// The response to `request`: the status, the reason phrase, a Reason header (RFC 3326)
    /// that says the same to software, and the headers the status calls for.
    fn response(&self, request: &Message, to_tag: Option<&str>) -> Message {
        let mut response = request.response(self.status, &self.reason, to_tag);
        let text: String = self
            .reason
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        response.headers.push(
            "Reason",
            format!("SIP;cause={};text=\"{text}\"", self.status),
        );
        for (name, value) in &self.headers {
            response.headers.push(name, value.clone());
        }
        response
    }
}

/// The option tags the recorder supports (RFC 3261 8.2.2.3: any other in Require gets 420).
pub const SUPPORTED_OPTIONS: &[&str] = &["siprec"];

/// The tags of `request`'s Require header that the recorder does not support.
pub fn unsupported_options(request: &Message) -> Vec<String> {
    request
        .headers
        .list("Require")
        .into_iter()
        .filter(|tag| {
            !SUPPORTED_OPTIONS
                .iter()
                .any(|ours| ours.eq_ignore_ascii_case(tag))
        })
        .map(str::to_owned)
        .collect()
}

/// Body types the recorder reads, for the Accept header of a 415.
const ACCEPTED_BODIES: &str = "application/sdp, multipart/mixed, application/rs-metadata+xml, \
                               application/rs-metadata";

/// An INVITE that passed every check.
#[derive(Debug, Clone)]
pub struct ValidOffer {
    pub sdp: SessionDescription,
    /// Each m-line's `a=label`; only a stream that is not recorded (port 0, not audio) may
    /// lack one.
    pub labels: Vec<Option<String>>,
    /// The metadata, when the INVITE carried some (an SRC may send it only later).
    pub metadata: Option<Metadata>,
    pub metadata_xml: Option<String>,
}

/// Whether an m-line is one the recorder records: audio that is not rejected (port 0).
/// Inactive streams count: they are given a port, ready for when they become active.
fn is_recordable(media: &MediaDescription) -> bool {
    media.kind == crate::sdp::MediaKind::Audio && media.port != 0
}

/// Checks an initial INVITE for a recording session (RFC 7866 6.1.1, 7.1.1, 9.1).
pub fn validate_invite(request: &Message) -> Result<ValidOffer, Refusal> {
    let unsupported = unsupported_options(request);
    if !unsupported.is_empty() {
        return Err(refuse(420, "Bad Extension").with_header("Unsupported", unsupported.join(", ")));
    }
    if !request.headers.has_token("Require", "siprec") {
        return Err(refuse(488, "Not a recording session (no Require: siprec)"));
    }
    let contacts = request.contacts().map_err(|_| refuse(400, "Bad Contact"))?;
    let from_src = contacts
        .iter()
        .any(|contact| contact.param("+sip.src").is_some());
    if !from_src {
        return Err(refuse(
            488,
            "Not from a Session Recording Client (Contact without +sip.src)",
        ));
    }
    let (sdp_text, metadata_xml) = read_body(request)?;
    let Some(sdp_text) = sdp_text else {
        return Err(refuse(
            488,
            "Offerless recording sessions are not supported",
        ));
    };
    let sdp = SessionDescription::parse(&sdp_text)
        .map_err(|error| refuse(400, format!("Bad SDP: {error}")))?;
    let metadata = metadata_xml.as_deref().map(read_metadata).transpose()?;
    let mut labels = Vec::new();
    for (index, media) in sdp.media.iter().enumerate() {
        let label = media.attribute("label").and_then(|a| a.value.clone());
        if label.is_none() && is_recordable(media) {
            return Err(refuse(
                400,
                format!(
                    "Audio m-line {} of the recording SDP has no a=label",
                    index + 1
                ),
            ));
        }
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(refuse(488, "The recording SDP offers no stream"));
    }
    if let Some(metadata) = &metadata {
        let sdp_labels: Vec<String> = labels.iter().flatten().cloned().collect();
        metadata
            .validate_labels_offered(&sdp_labels)
            .and_then(|()| metadata.validate_references())
            .map_err(|error| {
                refuse(
                    400,
                    format!("Metadata does not match the SDP labels: {error}"),
                )
            })?;
    }
    Ok(ValidOffer {
        sdp,
        labels,
        metadata,
        metadata_xml,
    })
}

/// The SDP and the metadata of a request's body: multipart/mixed with either or both (the
/// metadata part as `application/rs-metadata+xml` or the older `application/rs-metadata`),
/// SDP alone, or metadata alone. Any other body gets 415 with what is accepted.
fn read_body(request: &Message) -> Result<(Option<String>, Option<String>), Refusal> {
    if request.body.is_empty() {
        return Ok((None, None));
    }
    let content_type = request.headers.get("Content-Type").unwrap_or_default();
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let text = |body: &[u8]| String::from_utf8_lossy(body).into_owned();
    if media_type.starts_with("multipart/") {
        let parts = multipart::parse(content_type, &request.body)
            .map_err(|error| refuse(400, format!("Bad multipart body: {error}")))?;
        let sdp = multipart::find(&parts, multipart::SDP_CONTENT_TYPE).map(|p| text(&p.body));
        let metadata =
            multipart::find(&parts, multipart::METADATA_CONTENT_TYPE).map(|p| text(&p.body));
        if sdp.is_none() && metadata.is_none() {
            return Err(refuse(
                415,
                "Multipart body has neither application/sdp nor recording metadata",
            )
            .with_header("Accept", ACCEPTED_BODIES));
        }
        Ok((sdp, metadata))
    } else if media_type == multipart::SDP_CONTENT_TYPE {
        Ok((Some(text(&request.body)), None))
    } else if media_type == multipart::METADATA_CONTENT_TYPE
        || media_type == multipart::LEGACY_METADATA_CONTENT_TYPE
    {
        Ok((None, Some(text(&request.body))))
    } else {
        Err(refuse(
            415,
            format!("Unsupported body {media_type:?}: a recording session sends SDP and metadata"),
        )
        .with_header("Accept", ACCEPTED_BODIES))
    }
}

/// Parses metadata: broken XML is malformed (400); a document in a namespace or with a root
/// the recorder does not know is one it cannot take (488), and the reason names what it
/// expected.
fn read_metadata(xml: &str) -> Result<Metadata, Refusal> {
    metadata::parse(xml).map_err(|error| match error {
        metadata::MetadataError::NotRecording { .. } => {
            refuse(488, format!("Unsupported metadata: {error}"))
        }
        _ => refuse(400, format!("Bad metadata: {error}")),
    })
}

/// The user part of the participant that sends the stream labelled `label`.
pub fn participant_for_label(metadata: &Metadata, label: &str) -> String {
    let stream_ids: Vec<&str> = metadata
        .streams
        .iter()
        .filter(|s| s.label == label)
        .map(|s| s.id.as_str())
        .collect();
    let sender = metadata.participant_stream_assocs.iter().find(|assoc| {
        assoc
            .send
            .iter()
            .any(|id| stream_ids.contains(&id.as_str()))
    });
    let aor = sender.and_then(|assoc| {
        metadata
            .participants
            .iter()
            .find(|p| p.id == assoc.participant_id)
            .map(|p| p.aor.clone())
    });
    // sip:user@host, sips:, or tel:+number (no host); parameters are not the name.
    let user = aor.map(|aor| {
        let rest = aor.split_once(':').map_or(aor.as_str(), |(_, rest)| rest);
        let user = rest.split_once('@').map_or(rest, |(user, _)| user);
        user.split([';', '?']).next().unwrap_or_default().to_owned()
    });
    let clean: String = user
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        "unknown".to_owned()
    } else {
        clean
    }
}

#[derive(Debug)]
struct RsSession {
    local_tag: String,
    /// For requests of our own (the recorder hanging up).
    dialog: Dialog,
    /// Where the INVITE came from: over TCP or TLS, the connection our BYE goes back on.
    peer: Destination,
    /// One per m-line of the offer, in order.
    streams: Vec<RsStream>,
    version: u64,
    session_id: u64,
    /// What the metadata received so far says (partial updates merged in).
    metadata: Metadata,
}

impl RsSession {
    /// Paused: no recorded stream is being sent.
    fn paused(&self) -> bool {
        self.streams
            .iter()
            .filter(|s| s.recorded.is_some())
            .all(|s| s.direction == Direction::Inactive)
    }
}

/// One m-line of a recording session and how it was answered.
#[derive(Debug, Clone)]
struct RsStream {
    /// The offer's m-line, mirrored with port 0 when the stream is not recorded.
    offered: MediaDescription,
    label: Option<String>,
    /// The stream being recorded and the tag of the a=crypto it answers; None for a
    /// stream answered with port 0.
    recorded: Option<(StreamSetup, Option<u32>)>,
    /// Our answer's direction: recvonly while the client sends, inactive otherwise.
    direction: Direction,
}

/// The direction answering `offered` on a stream we only receive (RFC 3264 6.1).
fn answer_direction(offered: Direction) -> Direction {
    match offered {
        Direction::SendOnly | Direction::SendRecv => Direction::RecvOnly,
        Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
    }
}

/// Answers one offered m-line: records an audio stream (codec, SRTP key, port), or mirrors
/// any other with port 0.
fn answer_line(
    media: &MediaDescription,
    label: Option<&String>,
    metadata: &Metadata,
    codec_preference: &[CodecKind],
    resources: &mut dyn SrsResources,
) -> Result<RsStream, Refusal> {
    let (label, true) = (label, is_recordable(media)) else {
        return Ok(RsStream {
            offered: media.clone(),
            label: label.cloned(),
            recorded: None,
            direction: Direction::Inactive,
        });
    };
    let Some(label) = label else {
        return Err(refuse(
            400,
            "An audio m-line of the recording SDP has no a=label",
        ));
    };
    let offered = || {
        media
            .formats
            .iter()
            .filter_map(|f| CodecKind::from_encoding(&f.encoding).map(|kind| (kind, f)))
            // `G722/16000` is seen in the wild; its timestamps cannot be trusted.
            .filter(|(kind, f)| kind.clock_rate() == f.clock_rate)
    };
    let preferred = codec_preference
        .iter()
        .find_map(|wanted| offered().find(|(kind, _)| kind == wanted));
    let (codec, payload) = preferred.or_else(|| offered().next()).ok_or_else(|| {
        refuse(
            488,
            format!("Stream {label}: no PCMU, PCMA, G722 or opus offered"),
        )
    })?;
    let secure = media.proto.eq_ignore_ascii_case("RTP/SAVP");
    let crypto = if secure {
        let offered = media
            .attributes
            .iter()
            .filter(|a| a.name.eq_ignore_ascii_case("crypto"))
            .filter_map(|a| a.value.as_deref())
            .find_map(|value| CryptoAttribute::parse(value).ok())
            .ok_or_else(|| {
                refuse(
                    488,
                    format!("Stream {label}: RTP/SAVP without a usable a=crypto"),
                )
            })?;
        Some((
            offered.tag,
            StreamCrypto {
                suite: offered.suite,
                local_key: resources.srtp_key(),
                remote_key: offered.key_salt,
            },
        ))
    } else if media.proto.eq_ignore_ascii_case("RTP/AVP") {
        None
    } else {
        return Err(refuse(
            488,
            format!("Stream {label}: transport {} not supported", media.proto),
        ));
    };
    let local_port = resources
        .allocate_port()
        .ok_or_else(|| refuse(503, "No media port left"))?;
    let tag = crypto.as_ref().map(|(tag, _)| *tag);
    let setup = StreamSetup {
        label: label.clone(),
        local_port,
        codec,
        payload_type: payload.payload_type,
        crypto: crypto.map(|(_, c)| c),
        participant: participant_for_label(metadata, label),
    };
    Ok(RsStream {
        offered: media.clone(),
        label: Some(label.clone()),
        recorded: Some((setup, tag)),
        direction: answer_direction(media.direction),
    })
}

/// For steps that allocate nothing.
struct NoResources;

impl SrsResources for NoResources {
    fn allocate_port(&mut self) -> Option<u16> {
        None
    }
    fn srtp_key(&mut self) -> [u8; KEY_SALT_LEN] {
        [0; KEY_SALT_LEN]
    }
    fn token(&mut self) -> u64 {
        0
    }
}

/// The SRS protocol core.
#[derive(Debug)]
pub struct Recorder {
    transactions: TransactionLayer,
    sessions: HashMap<SessionKey, RsSession>,
    /// INVITE server transactions that a CANCEL may still end, by Call-ID.
    pending: HashMap<SessionKey, TxKey>,
    /// 2xx answers to INVITEs over UDP, retransmitted until their ACK (RFC 3261 13.3.1.4).
    unacked: HashMap<SessionKey, Unacked>,
    local_ip: IpAddr,
    contact: String,
    /// The Contact for requests that came over TLS (the TLS listener's address).
    tls_contact: Option<String>,
    /// Codecs to pick first when offered, best first.
    codec_preference: Vec<CodecKind>,
    /// Makes the branches of our own requests unique.
    requests_sent: u64,
    outputs: VecDeque<RecorderOutput>,
}

#[derive(Debug)]
struct Unacked {
    transmit: Transmit,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

impl Recorder {
    /// `local_ip` goes in the SDP answers, `contact` (a SIP URI) in the Contact header.
    pub fn new(local_ip: IpAddr, contact: impl Into<String>) -> Recorder {
        Recorder {
            transactions: TransactionLayer::new(TimerConfig::default()),
            sessions: HashMap::new(),
            pending: HashMap::new(),
            unacked: HashMap::new(),
            local_ip,
            contact: contact.into(),
            tls_contact: None,
            codec_preference: Vec::new(),
            requests_sent: 0,
            outputs: VecDeque::new(),
        }
    }

    /// Where clients reach us over TLS: dialogs set up over TLS keep to it.
    pub fn with_tls_contact(mut self, contact: impl Into<String>) -> Recorder {
        self.tls_contact = Some(contact.into());
        self
    }

    fn contact(&self, transport: crate::sip::transport::Transport) -> &str {
        match (&self.tls_contact, transport) {
            (Some(tls), crate::sip::transport::Transport::Tls) => tls,
            _ => &self.contact,
        }
    }

    /// Prefer these codecs, best first, over the offer's order (a recorder that stores one
    /// format, say). Codecs not listed are still taken when nothing listed is offered.
    pub fn with_codec_preference(mut self, codecs: Vec<CodecKind>) -> Recorder {
        self.codec_preference = codecs;
        self
    }

    /// Number of recording sessions up.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Feeds one SIP message's bytes (a datagram or one framed stream message).
    pub fn on_bytes(
        &mut self,
        now: Instant,
        bytes: &[u8],
        source: Destination,
        resources: &mut dyn SrsResources,
    ) {
        let Ok(message) = Message::parse(bytes) else {
            tracing::debug!(%source, "srs: unparsable SIP message dropped");
            return;
        };
        self.transactions.on_message(now, message, source);
        self.drain(now, resources);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let retransmit = self.unacked.values().map(|u| u.next).min();
        match (self.transactions.next_deadline(), retransmit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn on_timeout(&mut self, now: Instant, resources: &mut dyn SrsResources) {
        self.transactions.on_timeout(now);
        let t2 = self.transactions.timers().t2;
        let mut expired = Vec::new();
        for (key, unacked) in &mut self.unacked {
            if now >= unacked.give_up {
                expired.push(key.clone());
            } else if now >= unacked.next {
                self.outputs
                    .push_back(RecorderOutput::Transmit(unacked.transmit.clone()));
                unacked.interval = (unacked.interval * 2).min(t2);
                unacked.next = now + unacked.interval;
            }
        }
        for key in expired {
            self.unacked.remove(&key);
        }
        self.drain(now, resources);
    }

    pub fn poll_output(&mut self) -> Option<RecorderOutput> {
        self.outputs.pop_front()
    }

    /// The keys of the sessions up.
    pub fn session_keys(&self) -> Vec<SessionKey> {
        self.sessions.keys().cloned().collect()
    }

    /// The recorder ends a session itself (it is shutting down, or out of space): BYE to
    /// the client, and the session ends here at once.
    pub fn hang_up(&mut self, now: Instant, key: &str) {
        self.hang_up_because(now, key, None);
    }

    /// Ends a session with BYE, saying why in a Reason header (RFC 3326) when there is a
    /// why the client should show (the recorder cannot write, say).
    pub fn hang_up_because(&mut self, now: Instant, key: &str, reason: Option<&str>) {
        let Some(mut session) = self.sessions.remove(key) else {
            return;
        };
        self.unacked.remove(key);
        let mut bye = session.dialog.request(Method::Bye);
        self.requests_sent += 1;
        let sent_by = Uri::parse(
            self.contact(session.peer.transport)
                .trim_matches(['<', '>']),
        )
        .map(|uri| match uri.port {
            Some(port) => format!("{}:{port}", uri.host),
            None => uri.host,
        })
        .unwrap_or_else(|_| self.local_ip.to_string());
        bye.headers.insert_first(
            "Via",
            format!(
                "SIP/2.0/{} {sent_by};branch=z9hG4bK{}x{:x};rport",
                session.peer.transport.via_token(),
                session.local_tag,
                self.requests_sent
            ),
        );
        if let Some(reason) = reason {
            let text: String = reason.chars().filter(|c| *c != '"' && *c != '\\').collect();
            bye.headers
                .push("Reason", format!("SIP;cause=500;text=\"{text}\""));
        }
        if let Err(error) = self.transactions.send_request(now, bye, session.peer) {
            tracing::debug!(%error, "srs: BYE not sent");
        }
        self.outputs.push_back(RecorderOutput::SessionEnded {
            key: key.to_owned(),
        });
        let mut ignored = NoResources;
        self.drain(now, &mut ignored);
    }

    fn drain(&mut self, now: Instant, resources: &mut dyn SrsResources) {
        while let Some(event) = self.transactions.poll_event() {
            match event {
                TxEvent::Request {
                    key,
                    request,
                    source,
                } => {
                    self.on_request(now, key, &request, source, resources);
                }
                TxEvent::Ack { request, .. } => {
                    if let Some(call_id) = request.call_id() {
                        self.unacked.remove(call_id);
                    }
                }
                _ => {}
            }
        }
        while let Some(transmit) = self.transactions.poll_transmit() {
            let is_2xx_to_invite = !transmit.destination.transport.is_reliable()
                && Message::parse(&transmit.data).is_ok_and(|m| {
                    m.status().is_some_and(|s| (200..300).contains(&s))
                        && m.cseq().is_ok_and(|c| c.method == Method::Invite)
                });
            if is_2xx_to_invite && let Ok(response) = Message::parse(&transmit.data) {
                let t1 = self.transactions.timers().t1;
                let call_id = response.call_id().unwrap_or_default().to_owned();
                self.unacked.insert(
                    call_id,
                    Unacked {
                        transmit: transmit.clone(),
                        next: now + t1,
                        interval: t1,
                        give_up: now + 64 * t1,
                    },
                );
            }
            self.outputs.push_back(RecorderOutput::Transmit(transmit));
        }
        while let Some(ended) = self.transactions.poll_ended() {
            self.pending.retain(|_, key| *key != ended);
        }
    }

    fn respond(&mut self, now: Instant, key: &TxKey, response: Message) {
        if let Err(error) = self.transactions.respond(now, key, response) {
            tracing::debug!(%error, "srs: response not sent");
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        key: TxKey,
        request: &Message,
        source: Destination,
        resources: &mut dyn SrsResources,
    ) {
        let call_id = request.call_id().unwrap_or_default().to_owned();
        let to_tag = request
            .to_header()
            .ok()
            .and_then(|to| to.tag().map(str::to_owned));
        let method = request.method();
        let initial_invite = method == Some(&Method::Invite) && to_tag.is_none();
        if !initial_invite && !matches!(method, Some(Method::Ack | Method::Cancel)) {
            let unsupported = unsupported_options(request);
            if !unsupported.is_empty() {
                let refusal =
                    refuse(420, "Bad Extension").with_header("Unsupported", unsupported.join(", "));
                let response = refusal.response(request, None);
                self.respond(now, &key, response);
                return;
            }
        }
        match method {
            Some(Method::Invite) if initial_invite => {
                self.on_initial_invite(now, key, request, call_id, source, resources)
            }
            Some(Method::Invite) => {
                self.on_offer_in_dialog(now, key, request, &call_id, resources);
            }
            Some(Method::Update) => {
                self.on_offer_in_dialog(now, key, request, &call_id, resources);
            }
            Some(Method::Bye) => {
                self.unacked.remove(&call_id);
                let known = self.sessions.remove(&call_id).is_some();
                let response = if known {
                    self.outputs
                        .push_back(RecorderOutput::SessionEnded { key: call_id });
                    request.response(200, "OK", None)
                } else {
                    request.response(481, "Call/Transaction Does Not Exist", None)
                };
                self.respond(now, &key, response);
            }
            Some(Method::Cancel) => {
                let response = request.response(200, "OK", None);
                self.respond(now, &key, response);
                if let Some(invite) = self.pending.remove(&call_id)
                    && let Some(original) = self.transactions.request(&invite).cloned()
                {
                    let tag = self.sessions.get(&call_id).map(|s| s.local_tag.clone());
                    let terminated = original.response(487, "Request Terminated", tag.as_deref());
                    if self.transactions.respond(now, &invite, terminated).is_ok()
                        && self.sessions.remove(&call_id).is_some()
                    {
                        self.outputs
                            .push_back(RecorderOutput::SessionEnded { key: call_id });
                    }
                }
            }
            Some(Method::Options) => {
                let mut response = request.response(200, "OK", None);
                response.headers.push("Allow", ALLOW);
                response.headers.push("Supported", "siprec");
                response.headers.push("Accept", ACCEPTED_BODIES);
                self.respond(now, &key, response);
            }
            Some(Method::Ack) => {}
            _ => {
                let mut response = request.response(405, "Method Not Allowed", None);
                response.headers.push("Allow", ALLOW);
                self.respond(now, &key, response);
            }
        }
    }

    fn on_initial_invite(
        &mut self,
        now: Instant,
        key: TxKey,
        request: &Message,
        call_id: String,
        source: Destination,
        resources: &mut dyn SrsResources,
    ) {
        let local_tag = format!("srs{:x}", resources.token());
        let contact = format!("<{}>", self.contact(source.transport));
        let result = validate_invite(request).and_then(|offer| {
            let dialog =
                Dialog::from_request_as_uas(request, local_tag.clone(), contact, source.transport)
                    .map_err(|error| match error {
                        UasDialogError::Malformed => {
                            refuse(400, "Missing From, To or Call-ID".to_owned())
                        }
                        UasDialogError::LeavesTls(_) => refuse(400, LEAVES_TLS_PHRASE.to_owned()),
                    })?;
            self.accept(offer, dialog, source, resources)
        });
        match result {
            Ok((session, metadata_xml)) => {
                let answer = self.answer_sdp(&session);
                let mut response = request.response(200, "OK", Some(&local_tag));
                self.decorate(&mut response, source.transport);
                response.set_body("application/sdp", answer.to_string().into_bytes());
                let streams = recorded_setups(&session.streams);
                let metadata = Box::new(session.metadata.clone());
                self.sessions.insert(call_id.clone(), session);
                self.pending.insert(call_id.clone(), key.clone());
                self.respond(now, &key, response);
                self.outputs.push_back(RecorderOutput::SessionStarted {
                    key: call_id,
                    streams,
                    metadata_xml,
                    metadata,
                });
            }
            Err(refusal) => {
                tracing::info!(status = refusal.status, reason = %refusal.reason, "srs: INVITE refused");
                let response = refusal.response(request, Some(&local_tag));
                self.respond(now, &key, response);
                self.outputs.push_back(RecorderOutput::Rejected {
                    status: refusal.status,
                    reason: refusal.reason,
                });
            }
        }
    }

    fn accept(
        &self,
        offer: ValidOffer,
        dialog: Dialog,
        peer: Destination,
        resources: &mut dyn SrsResources,
    ) -> Result<(RsSession, Option<String>), Refusal> {
        let metadata = offer.metadata.unwrap_or_default();
        let mut streams = Vec::new();
        for (media, label) in offer.sdp.media.iter().zip(&offer.labels) {
            streams.push(answer_line(
                media,
                label.as_ref(),
                &metadata,
                &self.codec_preference,
                resources,
            )?);
        }
        Ok((
            RsSession {
                local_tag: dialog.local_tag.clone(),
                dialog,
                peer,
                streams,
                version: 1,
                session_id: resources.token() >> 1,
                metadata,
            },
            offer.metadata_xml,
        ))
    }

    fn decorate(&self, response: &mut Message, transport: crate::sip::transport::Transport) {
        response
            .headers
            .push("Contact", format!("<{}>;+sip.srs", self.contact(transport)));
        response.headers.push("Require", "siprec");
        response.headers.push("Allow", ALLOW);
    }

    fn answer_sdp(&self, session: &RsSession) -> SessionDescription {
        let origin = Origin {
            username: "verbatim-srs".to_owned(),
            session_id: session.session_id,
            session_version: session.version,
            address: self.local_ip,
        };
        let mut sdp = SessionDescription::new(origin, "-", Some(self.local_ip));
        for stream in &session.streams {
            let media = match &stream.recorded {
                Some((setup, tag)) => {
                    let proto = if setup.crypto.is_some() {
                        "RTP/SAVP"
                    } else {
                        "RTP/AVP"
                    };
                    let mut media = MediaDescription::new(
                        crate::sdp::MediaKind::Audio,
                        setup.local_port,
                        proto,
                    );
                    media
                        .formats
                        .push(payload_format(setup.codec, setup.payload_type));
                    media.direction = stream.direction;
                    media
                        .attributes
                        .push(Attribute::new("label", setup.label.clone()));
                    if let (Some(crypto), Some(tag)) = (&setup.crypto, tag) {
                        let line = CryptoAttribute::new(*tag, crypto.suite, crypto.local_key);
                        media
                            .attributes
                            .push(Attribute::new("crypto", line.to_string()));
                    }
                    media
                }
                None => {
                    // RFC 3264 6: a refused stream keeps its kind, transport and formats,
                    // with port 0; its label is echoed so the client knows which it was.
                    let offered = &stream.offered;
                    let mut media =
                        MediaDescription::new(offered.kind.clone(), 0, offered.proto.clone());
                    media.formats = offered.formats.clone();
                    media.non_rtp_formats = offered.non_rtp_formats.clone();
                    media.direction = Direction::Inactive;
                    if let Some(label) = &stream.label {
                        media
                            .attributes
                            .push(Attribute::new("label", label.clone()));
                    }
                    media
                }
            };
            sdp.media.push(media);
        }
        sdp
    }

    /// A re-INVITE or UPDATE in a session: a new offer (pause, resume, a stream added or
    /// dropped), new metadata, or both. An offer that cannot be taken is refused and
    /// changes nothing.
    fn on_offer_in_dialog(
        &mut self,
        now: Instant,
        key: TxKey,
        request: &Message,
        call_id: &str,
        resources: &mut dyn SrsResources,
    ) {
        let Some(session) = self.sessions.get(call_id) else {
            let response = request.response(481, "Call/Transaction Does Not Exist", None);
            self.respond(now, &key, response);
            return;
        };
        let local_tag = session.local_tag.clone();
        let is_update = request.method() == Some(&Method::Update);
        let result = read_body(request).and_then(|(sdp_text, metadata_xml)| {
            let sdp = sdp_text
                .as_deref()
                .map(SessionDescription::parse)
                .transpose()
                .map_err(|error| refuse(400, format!("Bad SDP: {error}")))?;
            let update = metadata_xml.as_deref().map(read_metadata).transpose()?;
            let mut metadata = session.metadata.clone();
            if let Some(update) = update {
                metadata.apply(update);
            }
            let streams = match &sdp {
                Some(sdp) => self.answer_reoffer(&session.streams, sdp, &metadata, resources)?,
                None => session.streams.clone(),
            };
            Ok((sdp.is_some(), metadata_xml, metadata, streams))
        });
        let (offered, metadata_xml, metadata, mut streams) = match result {
            Ok(taken) => taken,
            Err(refusal) => {
                let response = refusal.response(request, Some(&local_tag));
                self.respond(now, &key, response);
                return;
            }
        };
        // Who sends each stream, as the metadata now says.
        let mut renamed = Vec::new();
        for (setup, _) in streams.iter_mut().filter_map(|s| s.recorded.as_mut()) {
            let participant = participant_for_label(&metadata, &setup.label);
            if participant != setup.participant {
                renamed.push((setup.label.clone(), participant.clone()));
                setup.participant = participant;
            }
        }
        let Some(session) = self.sessions.get_mut(call_id) else {
            return;
        };
        let was_paused = session.paused();
        let known: Vec<u16> = session
            .streams
            .iter()
            .filter_map(|s| s.recorded.as_ref().map(|(setup, _)| setup.local_port))
            .collect();
        let added: Vec<StreamSetup> = recorded_setups(&streams)
            .into_iter()
            .filter(|setup| !known.contains(&setup.local_port))
            .collect();
        // Streams added now are named with this metadata already: not renamed.
        renamed.retain(|(label, _)| !added.iter().any(|setup| &setup.label == label));
        session.streams = streams;
        let metadata_changed = metadata_xml.is_some();
        if metadata_changed {
            session.metadata = metadata;
        }
        if offered {
            session.version += 1;
        }
        let paused = session.paused();
        let transport = session.peer.transport;
        let metadata = metadata_changed.then(|| Box::new(session.metadata.clone()));
        let Some(session) = self.sessions.get(call_id) else {
            return;
        };
        let mut response = request.response(200, "OK", Some(&local_tag));
        self.decorate(&mut response, transport);
        // An UPDATE without an offer gets no SDP; a re-INVITE without one gets ours as
        // the offer (RFC 3261 14.2).
        if offered || !is_update {
            let answer = self.answer_sdp(session);
            response.set_body("application/sdp", answer.to_string().into_bytes());
        }
        self.respond(now, &key, response);
        if paused != was_paused || metadata_changed || !added.is_empty() || !renamed.is_empty() {
            self.outputs.push_back(RecorderOutput::SessionUpdated {
                key: call_id.to_owned(),
                paused,
                metadata_xml,
                metadata,
                added,
                renamed,
            });
        }
    }

    /// The streams after a re-offer (RFC 3264 8): existing m-lines keep their port, codec
    /// and keys and follow the new direction; one now offered with port 0 is no longer
    /// recorded; a new m-line (or a refused one offered again) is answered as in an INVITE.
    fn answer_reoffer(
        &self,
        current: &[RsStream],
        sdp: &SessionDescription,
        metadata: &Metadata,
        resources: &mut dyn SrsResources,
    ) -> Result<Vec<RsStream>, Refusal> {
        if sdp.media.len() < current.len() {
            return Err(refuse(
                488,
                "A re-offer may not remove m-lines (RFC 3264 8.2); set the port to 0",
            ));
        }
        let mut streams = Vec::new();
        for (index, media) in sdp.media.iter().enumerate() {
            let label = media.attribute("label").and_then(|a| a.value.clone());
            let existing = current.get(index).filter(|s| s.recorded.is_some());
            let stream = match existing {
                Some(existing) if is_recordable(media) => RsStream {
                    direction: answer_direction(media.direction),
                    ..existing.clone()
                },
                Some(existing) => RsStream {
                    offered: media.clone(),
                    recorded: None,
                    direction: Direction::Inactive,
                    ..existing.clone()
                },
                None => answer_line(
                    media,
                    label.as_ref(),
                    metadata,
                    &self.codec_preference,
                    resources,
                )?,
            };
            streams.push(stream);
        }
        Ok(streams)
    }
}

/// The setups of the streams recorded, in m-line order.
fn recorded_setups(streams: &[RsStream]) -> Vec<StreamSetup> {
    streams
        .iter()
        .filter_map(|s| s.recorded.as_ref().map(|(setup, _)| setup.clone()))
        .collect()
}

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE";

fn payload_format(codec: CodecKind, payload_type: u8) -> crate::sdp::PayloadFormat {
    match codec {
        CodecKind::Opus => crate::sdp::PayloadFormat::new(payload_type, "opus", 48_000, Some(2)),
        CodecKind::Pcmu => crate::sdp::PayloadFormat::new(payload_type, "PCMU", 8000, None),
        CodecKind::Pcma => crate::sdp::PayloadFormat::new(payload_type, "PCMA", 8000, None),
        CodecKind::G722 => crate::sdp::PayloadFormat::new(payload_type, "G722", 8000, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::metadata::{
        Party, StreamSender, StreamSpec, TwoParty, two_party_snapshot,
    };
    use crate::recording::rs_sdp::{RsOffer, offer};
    use crate::sdp::PayloadFormat;
    use crate::sip::multipart::Part;
    use crate::sip::transport::Transport;
    use core::net::{Ipv4Addr, SocketAddr};

    struct Fixed {
        next_port: u16,
    }

    impl SrsResources for Fixed {
        fn allocate_port(&mut self) -> Option<u16> {
            self.next_port += 2;
            Some(self.next_port)
        }
        fn srtp_key(&mut self) -> [u8; KEY_SALT_LEN] {
            [7; KEY_SALT_LEN]
        }
        fn token(&mut self) -> u64 {
            42
        }
    }

    fn sdp(labels: &[&str], secure: bool, direction: Direction) -> String {
        offer(&RsOffer {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: vec![5004],
            codecs: vec![PayloadFormat::new(8, "PCMA", 8000, None)],
            telephone_event: Some(PayloadFormat::new(101, "telephone-event", 8000, None)),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            voices: vec![Some(StreamSender::Both); labels.len()],
            direction,
            keys: secure.then(|| vec![[3u8; KEY_SALT_LEN]; labels.len()]),
            session_id: 1,
            session_version: 1,
        })
        .to_string()
    }

    fn metadata_xml(labels: &[&str]) -> String {
        let senders = [StreamSender::Local, StreamSender::Remote];
        two_party_snapshot(TwoParty {
            session_id: "c2Vzc2lvbg==".into(),
            sip_session_id: String::new(),
            group_id: "Z3JvdXA".into(),
            start_time: "2026-11-26T10:00:00.000Z".into(),
            local: Party {
                participant_id: "cA==".into(),
                aor: "sip:alice@example.com".into(),
                name: None,
            },
            remote: Party {
                participant_id: "cQ==".into(),
                aor: "sip:bob@example.com".into(),
                name: None,
            },
            streams: labels
                .iter()
                .zip(senders)
                .enumerate()
                .map(|(i, (label, sender))| StreamSpec {
                    stream_id: format!("s{i}"),
                    label: (*label).to_owned(),
                    sender,
                })
                .collect(),
            associate_time: "2026-11-26T10:00:00.000Z".into(),
        })
        .to_xml()
    }

    fn invite(require: bool, src: bool, body: Option<(String, Vec<u8>)>) -> Vec<u8> {
        let mut text = String::from(
            "INVITE sip:srs@127.0.0.1:5070 SIP/2.0\r\n\
             Via: SIP/2.0/TCP 127.0.0.1:5080;branch=z9hG4bKabc\r\n\
             From: <sip:alice@127.0.0.1>;tag=f1\r\n\
             To: <sip:srs@127.0.0.1>\r\n\
             Call-ID: rs-1\r\n\
             CSeq: 1 INVITE\r\n\
             Max-Forwards: 70\r\n",
        );
        if require {
            text.push_str("Require: siprec\r\n");
        }
        text.push_str(if src {
            "Contact: <sip:alice@127.0.0.1:5080;transport=tcp>;+sip.src\r\n"
        } else {
            "Contact: <sip:alice@127.0.0.1:5080;transport=tcp>\r\n"
        });
        let mut bytes = text.into_bytes();
        match body {
            Some((content_type, body)) => {
                bytes.extend_from_slice(
                    format!(
                        "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                bytes.extend_from_slice(&body);
            }
            None => bytes.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
        }
        bytes
    }

    fn rs_body(sdp_labels: &[&str], md_labels: &[&str], secure: bool) -> (String, Vec<u8>) {
        let parts = [
            Part {
                content_type: "application/sdp".into(),
                headers: Vec::new(),
                body: sdp(sdp_labels, secure, Direction::SendOnly).into_bytes(),
            },
            Part {
                content_type: "application/rs-metadata+xml".into(),
                headers: vec![("Content-Disposition".into(), "recording-session".into())],
                body: metadata_xml(md_labels).into_bytes(),
            },
        ];
        (
            multipart::content_type("b0undary"),
            multipart::build(&parts, "b0undary"),
        )
    }

    fn source() -> Destination {
        Destination::new(
            Transport::Tcp,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5080),
        )
    }

    /// Runs one request through a fresh recorder; the first response and all other outputs.
    fn run(bytes: &[u8]) -> (Message, Vec<RecorderOutput>, Recorder) {
        let mut recorder = Recorder::new(IpAddr::V4(Ipv4Addr::LOCALHOST), "sip:srs@127.0.0.1:5070");
        let (response, outputs) = feed(&mut recorder, bytes, 30_000);
        (response, outputs, recorder)
    }

    /// Feeds `bytes`, with ports from `first_port` on; the first final response and every
    /// output.
    fn feed(
        recorder: &mut Recorder,
        bytes: &[u8],
        first_port: u16,
    ) -> (Message, Vec<RecorderOutput>) {
        let mut resources = Fixed {
            next_port: first_port,
        };
        recorder.on_bytes(Instant::now(), bytes, source(), &mut resources);
        let mut outputs = Vec::new();
        let mut response = None;
        while let Some(output) = recorder.poll_output() {
            if let RecorderOutput::Transmit(transmit) = &output
                && response.is_none()
            {
                let message = Message::parse(&transmit.data).unwrap();
                if message.status() != Some(100) {
                    response = Some(message);
                }
            }
            outputs.push(output);
        }
        (response.expect("a response"), outputs)
    }

    #[test]
    fn invite_without_require_siprec_is_not_a_recording_session() {
        let (response, outputs, _) = run(&invite(
            false,
            true,
            Some(rs_body(&["1", "2"], &["1", "2"], false)),
        ));
        assert_eq!(response.status(), Some(488));
        assert!(
            response
                .reason()
                .unwrap()
                .contains("Not a recording session")
        );
        let reason = response.headers.get("Reason").unwrap();
        assert!(
            reason.starts_with("SIP;cause=488;text=\"Not a recording session"),
            "{reason}"
        );
        assert!(
            outputs
                .iter()
                .any(|o| matches!(o, RecorderOutput::Rejected { status: 488, .. }))
        );
    }

    #[test]
    fn contact_without_sip_src_is_refused() {
        let (response, _, _) = run(&invite(
            true,
            false,
            Some(rs_body(&["1", "2"], &["1", "2"], false)),
        ));
        // Not malformed (400): a well-formed request for something this server is not for.
        assert_eq!(response.status(), Some(488));
        assert!(
            response
                .reason()
                .unwrap()
                .contains("Session Recording Client")
        );
    }

    #[test]
    fn a_body_that_is_neither_sdp_nor_metadata_gets_415_with_accept() {
        let body = ("text/plain".to_owned(), b"record me".to_vec());
        let (response, _, _) = run(&invite(true, true, Some(body)));
        assert_eq!(response.status(), Some(415));
        let accept = response.headers.get("Accept").unwrap();
        assert!(accept.contains("application/sdp") && accept.contains("multipart/mixed"));
    }

    #[test]
    fn offerless_invite_is_refused() {
        let (response, _, _) = run(&invite(true, true, None));
        assert_eq!(response.status(), Some(488));
        assert!(response.reason().unwrap().contains("Offerless"));
    }

    #[test]
    fn metadata_labels_must_match_sdp_labels() {
        let (response, _, _) = run(&invite(
            true,
            true,
            Some(rs_body(&["1", "2"], &["1", "3"], false)),
        ));
        assert_eq!(response.status(), Some(400));
        assert!(
            response.reason().unwrap().contains("labels"),
            "{:?}",
            response.reason()
        );
    }

    #[test]
    fn accepted_session_answers_recvonly_per_label_with_codec_and_fresh_key() {
        let (response, outputs, recorder) = run(&invite(
            true,
            true,
            Some(rs_body(&["1", "2"], &["1", "2"], true)),
        ));
        assert_eq!(response.status(), Some(200));
        assert!(
            response
                .headers
                .get("Contact")
                .unwrap()
                .contains("+sip.srs")
        );
        let answer = SessionDescription::parse(&String::from_utf8_lossy(&response.body)).unwrap();
        assert_eq!(answer.media.len(), 2);
        let mut ports = Vec::new();
        for (media, label) in answer.media.iter().zip(["1", "2"]) {
            assert_eq!(media.direction, Direction::RecvOnly);
            assert_eq!(media.proto, "RTP/SAVP");
            assert_eq!(
                media.attribute("label").unwrap().value.as_deref(),
                Some(label)
            );
            assert_eq!(media.formats[0].encoding, "PCMA");
            assert_eq!(media.formats[0].payload_type, 8);
            let crypto = CryptoAttribute::parse(
                media.attribute("crypto").unwrap().value.as_deref().unwrap(),
            )
            .unwrap();
            assert_eq!(crypto.key_salt, [7; KEY_SALT_LEN]);
            ports.push(media.port);
        }
        assert_ne!(ports[0], ports[1]);
        let started = outputs
            .iter()
            .find_map(|o| match o {
                RecorderOutput::SessionStarted { streams, .. } => Some(streams.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(started[0].participant, "alice");
        assert_eq!(started[1].participant, "bob");
        assert_eq!(
            started[0].crypto.as_ref().unwrap().remote_key,
            [3; KEY_SALT_LEN]
        );
        assert_eq!(recorder.session_count(), 1);
    }

    #[test]
    fn reinvite_pauses_and_resumes_and_bye_ends() {
        let (response, _, mut recorder) = run(&invite(
            true,
            true,
            Some(rs_body(&["1", "2"], &["1", "2"], false)),
        ));
        let to = response.headers.get("To").unwrap().to_owned();
        let mut resources = Fixed { next_port: 40_000 };
        let in_dialog = |method: &str, cseq: u32, branch: &str, body: Option<String>| {
            let mut text = format!(
                "{method} sip:srs@127.0.0.1:5070 SIP/2.0\r\n\
                 Via: SIP/2.0/TCP 127.0.0.1:5080;branch=z9hG4bK{branch}\r\n\
                 From: <sip:alice@127.0.0.1>;tag=f1\r\nTo: {to}\r\nCall-ID: rs-1\r\n\
                 CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
                 Contact: <sip:alice@127.0.0.1:5080;transport=tcp>;+sip.src\r\n"
            );
            match body {
                Some(body) => text.push_str(&format!(
                    "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )),
                None => text.push_str("Content-Length: 0\r\n\r\n"),
            }
            text.into_bytes()
        };
        let mut step = |recorder: &mut Recorder, bytes: Vec<u8>| {
            recorder.on_bytes(Instant::now(), &bytes, source(), &mut resources);
            let mut outputs = Vec::new();
            while let Some(o) = recorder.poll_output() {
                outputs.push(o);
            }
            outputs
        };
        let outputs = step(
            &mut recorder,
            in_dialog(
                "INVITE",
                2,
                "p",
                Some(sdp(&["1", "2"], false, Direction::Inactive)),
            ),
        );
        let answer = outputs
            .iter()
            .find_map(|o| match o {
                RecorderOutput::Transmit(t) => {
                    Some(Message::parse(&t.data).unwrap()).filter(|m| m.status() != Some(100))
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(answer.status(), Some(200));
        let sdp_answer = SessionDescription::parse(&String::from_utf8_lossy(&answer.body)).unwrap();
        assert!(
            sdp_answer
                .media
                .iter()
                .all(|m| m.direction == Direction::Inactive)
        );
        assert!(
            outputs
                .iter()
                .any(|o| matches!(o, RecorderOutput::SessionUpdated { paused: true, .. }))
        );
        let outputs = step(
            &mut recorder,
            in_dialog(
                "INVITE",
                3,
                "r",
                Some(sdp(&["1", "2"], false, Direction::SendOnly)),
            ),
        );
        assert!(
            outputs
                .iter()
                .any(|o| matches!(o, RecorderOutput::SessionUpdated { paused: false, .. }))
        );
        let outputs = step(&mut recorder, in_dialog("OPTIONS", 4, "o", None));
        assert!(outputs.iter().any(|o| matches!(o, RecorderOutput::Transmit(t) if Message::parse(&t.data).unwrap().status() == Some(200))));
        let outputs = step(&mut recorder, in_dialog("BYE", 5, "b", None));
        assert!(
            outputs
                .iter()
                .any(|o| matches!(o, RecorderOutput::SessionEnded { .. }))
        );
        assert_eq!(recorder.session_count(), 0);
    }

    #[test]
    fn participant_is_unknown_without_association() {
        let metadata = metadata::parse(&metadata_xml(&["1", "2"])).unwrap();
        assert_eq!(participant_for_label(&metadata, "1"), "alice");
        assert_eq!(participant_for_label(&metadata, "9"), "unknown");
    }

    #[test]
    fn two_hundred_over_udp_is_retransmitted_until_ack() {
        let udp = Destination::new(
            Transport::Udp,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5080),
        );
        let text = String::from_utf8(invite(
            true,
            true,
            Some(rs_body(&["1", "2"], &["1", "2"], false)),
        ))
        .unwrap()
        .replace("SIP/2.0/TCP", "SIP/2.0/UDP");
        let mut recorder = Recorder::new(IpAddr::V4(Ipv4Addr::LOCALHOST), "sip:srs@127.0.0.1:5070");
        let mut resources = Fixed { next_port: 30_000 };
        let start = Instant::now();
        recorder.on_bytes(start, text.as_bytes(), udp, &mut resources);
        let mut to = None;
        while let Some(output) = recorder.poll_output() {
            if let RecorderOutput::Transmit(t) = output {
                let m = Message::parse(&t.data).unwrap();
                if m.status() == Some(200) {
                    to = m.headers.get("To").map(str::to_owned);
                }
            }
        }
        let to = to.unwrap();
        let count_200 = |recorder: &mut Recorder| {
            let mut n = 0;
            while let Some(output) = recorder.poll_output() {
                if let RecorderOutput::Transmit(t) = output
                    && Message::parse(&t.data).unwrap().status() == Some(200)
                {
                    n += 1;
                }
            }
            n
        };
        let later = start + Duration::from_millis(600);
        assert!(recorder.next_deadline().unwrap() <= later);
        recorder.on_timeout(later, &mut resources);
        assert_eq!(count_200(&mut recorder), 1);
        let ack = format!(
            "ACK sip:srs@127.0.0.1:5070 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKack\r\n\
             From: <sip:alice@127.0.0.1>;tag=f1\r\nTo: {to}\r\nCall-ID: rs-1\r\n\
             CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        recorder.on_bytes(later, ack.as_bytes(), udp, &mut resources);
        let much_later = start + Duration::from_secs(3);
        recorder.on_timeout(much_later, &mut resources);
        assert_eq!(count_200(&mut recorder), 0);
    }

    /// An SDP whose m-sections are given whole (each `m=` line and its attributes).
    fn sdp_with(sections: &[&str]) -> String {
        let mut text = String::from(
            "v=0\r\no=src 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n",
        );
        for section in sections {
            for line in section.lines() {
                text.push_str(line.trim());
                text.push_str("\r\n");
            }
        }
        text
    }

    fn multipart_body(sdp: &str, metadata_type: &str, metadata: &str) -> (String, Vec<u8>) {
        let parts = [
            Part {
                content_type: "application/sdp".into(),
                headers: Vec::new(),
                body: sdp.as_bytes().to_vec(),
            },
            Part {
                content_type: metadata_type.into(),
                headers: vec![("Content-Disposition".into(), "recording-session".into())],
                body: metadata.as_bytes().to_vec(),
            },
        ];
        (
            multipart::content_type("b0undary"),
            multipart::build(&parts, "b0undary"),
        )
    }

    /// An in-dialog request of the session `run` set up (Call-ID rs-1).
    fn in_dialog(
        method: &str,
        cseq: u32,
        to: &str,
        extra: &str,
        body: Option<(&str, &[u8])>,
    ) -> Vec<u8> {
        let mut bytes = format!(
            "{method} sip:srs@127.0.0.1:5070 SIP/2.0\r\n\
             Via: SIP/2.0/TCP 127.0.0.1:5080;branch=z9hG4bK{method}{cseq}\r\n\
             From: <sip:alice@127.0.0.1>;tag=f1\r\nTo: {to}\r\nCall-ID: rs-1\r\n\
             CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra}\
             Contact: <sip:alice@127.0.0.1:5080;transport=tcp>;+sip.src\r\n"
        )
        .into_bytes();
        match body {
            Some((content_type, body)) => {
                bytes.extend_from_slice(
                    format!(
                        "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                bytes.extend_from_slice(body);
            }
            None => bytes.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
        }
        bytes
    }

    /// Feeds one more request; its final response and the other outputs.
    fn step(recorder: &mut Recorder, bytes: &[u8]) -> (Message, Vec<RecorderOutput>) {
        feed(recorder, bytes, 40_000)
    }

    fn answer_of(response: &Message) -> SessionDescription {
        SessionDescription::parse(&String::from_utf8_lossy(&response.body)).unwrap()
    }

    fn started(outputs: &[RecorderOutput]) -> Vec<StreamSetup> {
        outputs
            .iter()
            .find_map(|o| match o {
                RecorderOutput::SessionStarted { streams, .. } => Some(streams.clone()),
                _ => None,
            })
            .expect("a started session")
    }

    const PCMU_LINE: &str = "a=rtpmap:0 PCMU/8000";

    #[test]
    fn unknown_required_option_gets_420_naming_it() {
        let text = String::from_utf8(invite(
            true,
            true,
            Some(rs_body(&["1", "2"], &["1", "2"], false)),
        ))
        .unwrap()
        .replace("Require: siprec", "Require: siprec, x-frobnicate");
        let (response, outputs, _) = run(text.as_bytes());
        assert_eq!(response.status(), Some(420));
        assert_eq!(response.headers.get("Unsupported"), Some("x-frobnicate"));
        assert!(
            response
                .headers
                .get("Reason")
                .unwrap()
                .contains("cause=420")
        );
        assert!(
            outputs
                .iter()
                .any(|o| matches!(o, RecorderOutput::Rejected { status: 420, .. }))
        );
    }

    /// Inactive streams are answered inactive (with a port, for when they start), port 0
    /// streams and video are mirrored with port 0; every label is echoed.
    #[test]
    fn inactive_port_zero_and_video_streams_are_mirrored_not_refused() {
        let sdp = sdp_with(&[
            &format!("m=audio 6000 RTP/AVP 0\n{PCMU_LINE}\na=sendonly\na=label:1"),
            &format!("m=audio 6002 RTP/AVP 0\n{PCMU_LINE}\na=inactive\na=label:2"),
            &format!("m=audio 0 RTP/AVP 0\n{PCMU_LINE}\na=sendonly\na=label:3"),
            "m=video 6004 RTP/AVP 96\na=rtpmap:96 H264/90000\na=sendonly\na=label:4",
        ]);
        let body = multipart_body(
            &sdp,
            "application/rs-metadata+xml",
            &metadata_xml(&["1", "2"]),
        );
        let (response, outputs, _) = run(&invite(true, true, Some(body)));
        assert_eq!(response.status(), Some(200), "{:?}", response.reason());
        let answer = answer_of(&response);
        let lines: Vec<(bool, Direction, Option<&str>)> = answer
            .media
            .iter()
            .map(|m| {
                (
                    m.port != 0,
                    m.direction,
                    m.attribute("label").and_then(|a| a.value.as_deref()),
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                (true, Direction::RecvOnly, Some("1")),
                (true, Direction::Inactive, Some("2")),
                (false, Direction::Inactive, Some("3")),
                (false, Direction::Inactive, Some("4")),
            ]
        );
        assert_eq!(answer.media[3].kind, crate::sdp::MediaKind::Video);
        assert_eq!(answer.media[3].formats[0].encoding, "H264");
        let streams = started(&outputs);
        let labels: Vec<&str> = streams.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["1", "2"]);
    }

    #[test]
    fn sendrecv_is_answered_recvonly_and_recvonly_inactive() {
        let sdp = sdp_with(&[
            &format!("m=audio 6000 RTP/AVP 0\n{PCMU_LINE}\na=sendrecv\na=label:1"),
            &format!("m=audio 6002 RTP/AVP 0\n{PCMU_LINE}\na=recvonly\na=label:2"),
        ]);
        let body = ("application/sdp".to_owned(), sdp.into_bytes());
        let (response, _, _) = run(&invite(true, true, Some(body)));
        let directions: Vec<Direction> = answer_of(&response)
            .media
            .iter()
            .map(|m| m.direction)
            .collect();
        assert_eq!(directions, [Direction::RecvOnly, Direction::Inactive]);
    }

    /// An SRC that sends metadata only later: the INVITE with labelled SDP alone is taken,
    /// its streams recorded as `unknown`, and the UPDATE's metadata names their senders.
    #[test]
    fn metadata_in_a_later_update_names_the_streams() {
        let body = (
            "application/sdp".to_owned(),
            sdp(&["1", "2"], false, Direction::SendOnly).into_bytes(),
        );
        let (response, outputs, mut recorder) = run(&invite(true, true, Some(body)));
        assert_eq!(response.status(), Some(200), "{:?}", response.reason());
        let streams = started(&outputs);
        assert!(streams.iter().all(|s| s.participant == "unknown"));
        let to = response.headers.get("To").unwrap().to_owned();
        let xml = metadata_xml(&["1", "2"]);
        let (response, outputs) = step(
            &mut recorder,
            &in_dialog(
                "UPDATE",
                2,
                &to,
                "",
                Some(("application/rs-metadata", xml.as_bytes())),
            ),
        );
        assert_eq!(response.status(), Some(200));
        assert!(
            response.body.is_empty(),
            "an UPDATE without offer gets no SDP"
        );
        let renamed = outputs
            .iter()
            .find_map(|o| match o {
                RecorderOutput::SessionUpdated {
                    renamed, metadata, ..
                } => Some((renamed.clone(), metadata.is_some())),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            renamed,
            (
                vec![("1".into(), "alice".into()), ("2".into(), "bob".into())],
                true
            )
        );
    }

    /// A re-INVITE that adds an m-line adds a stream, named by the partial metadata that
    /// comes with it; the existing streams keep their ports.
    #[test]
    fn reinvite_adding_a_stream_with_partial_metadata() {
        let (response, outputs, mut recorder) = run(&invite(
            true,
            true,
            Some(rs_body(&["1", "2"], &["1", "2"], false)),
        ));
        let before = started(&outputs);
        let to = response.headers.get("To").unwrap().to_owned();
        let partial = "<recording xmlns='urn:ietf:params:xml:ns:recording:1'>\
            <datamode>partial</datamode>\
            <participant participant_id='cg=='><nameID aor='sip:carol@example.org'/></participant>\
            <stream stream_id='s2' session_id='c2Vzc2lvbg=='><label>3</label></stream>\
            <participantstreamassoc participant_id='cg=='><send>s2</send></participantstreamassoc>\
            </recording>";
        let body = multipart_body(
            &sdp(&["1", "2", "3"], false, Direction::SendOnly),
            "application/rs-metadata+xml",
            partial,
        );
        let (response, outputs) = step(
            &mut recorder,
            &in_dialog("INVITE", 2, &to, "", Some((&body.0, &body.1))),
        );
        assert_eq!(response.status(), Some(200), "{:?}", response.reason());
        let answer = answer_of(&response);
        assert_eq!(answer.media.len(), 3);
        assert_eq!(answer.media[0].port, before[0].local_port);
        assert_eq!(answer.media[1].port, before[1].local_port);
        assert_ne!(answer.media[2].port, 0);
        let (added, renamed) = outputs
            .iter()
            .find_map(|o| match o {
                RecorderOutput::SessionUpdated { added, renamed, .. } => {
                    Some((added.clone(), renamed.clone()))
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(added.len(), 1);
        assert_eq!(
            (added[0].label.as_str(), added[0].participant.as_str()),
            ("3", "carol")
        );
        assert!(renamed.is_empty(), "{renamed:?}");
        // Removing an m-line is not a thing a re-offer may do.
        let (response, _) = step(
            &mut recorder,
            &in_dialog(
                "INVITE",
                3,
                &to,
                "",
                Some((
                    "application/sdp",
                    sdp(&["1"], false, Direction::SendOnly).as_bytes(),
                )),
            ),
        );
        assert_eq!(response.status(), Some(488));
    }

    #[test]
    fn metadata_in_a_foreign_namespace_is_refused_naming_the_expected_one() {
        let xml = metadata_xml(&["1", "2"]).replace(metadata::NAMESPACE, "urn:example:calls");
        let body = multipart_body(
            &sdp(&["1", "2"], false, Direction::SendOnly),
            "application/rs-metadata+xml",
            &xml,
        );
        let (response, _, _) = run(&invite(true, true, Some(body)));
        assert_eq!(response.status(), Some(488));
        let reason = response.reason().unwrap();
        assert!(
            reason.contains("urn:ietf:params:xml:ns:recording:1"),
            "{reason}"
        );
        assert!(reason.contains("urn:example:calls"), "{reason}");
    }

    #[test]
    fn unknown_required_option_in_dialog_gets_420() {
        let (response, _, mut recorder) = run(&invite(
            true,
            true,
            Some(rs_body(&["1", "2"], &["1", "2"], false)),
        ));
        let to = response.headers.get("To").unwrap().to_owned();
        let (response, _) = step(
            &mut recorder,
            &in_dialog("UPDATE", 2, &to, "Require: 100rel\r\n", None),
        );
        assert_eq!(response.status(), Some(420));
        assert_eq!(response.headers.get("Unsupported"), Some("100rel"));
    }

    #[test]
    fn tel_and_parameterised_aors_name_the_participant() {
        let mut metadata = metadata::parse(&metadata_xml(&["1", "2"])).unwrap();
        metadata.participants[0].aor = "tel:+15550001111;phone-context=example.com".into();
        metadata.participants[1].aor = "sips:bob;ext=1@example.com".into();
        assert_eq!(participant_for_label(&metadata, "1"), "+15550001111");
        assert_eq!(participant_for_label(&metadata, "2"), "bob");
    }

    /// A stream the client drops (port 0) is answered with port 0 and no longer recorded;
    /// offered again, it is a new stream on a new port.
    #[test]
    fn a_stream_dropped_and_offered_again_is_a_new_stream() {
        let (response, outputs, mut recorder) = run(&invite(
            true,
            true,
            Some(rs_body(&["1", "2"], &["1", "2"], false)),
        ));
        let first = started(&outputs);
        let to = response.headers.get("To").unwrap().to_owned();
        let dropped = sdp_with(&[
            &format!("m=audio 6000 RTP/AVP 0\n{PCMU_LINE}\na=sendonly\na=label:1"),
            &format!("m=audio 0 RTP/AVP 0\n{PCMU_LINE}\na=sendonly\na=label:2"),
        ]);
        let (response, outputs) = step(
            &mut recorder,
            &in_dialog(
                "INVITE",
                2,
                &to,
                "",
                Some(("application/sdp", dropped.as_bytes())),
            ),
        );
        let answer = answer_of(&response);
        assert_eq!(answer.media[0].port, first[0].local_port);
        assert_eq!(answer.media[1].port, 0);
        assert_eq!(
            answer.media[1].attribute("label").unwrap().value.as_deref(),
            Some("2")
        );
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, RecorderOutput::SessionUpdated { .. })),
            "nothing for the driver to do"
        );
        let again = sdp(&["1", "2"], false, Direction::SendOnly);
        let (response, outputs) = step(
            &mut recorder,
            &in_dialog(
                "INVITE",
                3,
                &to,
                "",
                Some(("application/sdp", again.as_bytes())),
            ),
        );
        let answer = answer_of(&response);
        assert_ne!(answer.media[1].port, 0);
        let added = outputs
            .iter()
            .find_map(|o| match o {
                RecorderOutput::SessionUpdated { added, .. } => Some(added.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].label, "2");
        assert_eq!(added[0].local_port, answer.media[1].port);
        assert_eq!(added[0].participant, "bob");
    }
}
