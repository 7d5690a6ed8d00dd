//! The sans-IO side of the Session Recording Server: SIP in, responses and session events out.
//!
//! The core checks that an INVITE really opens a recording session (RFC 7866: `Require:
//! siprec`, a `+sip.src` Contact, a multipart body with SDP and metadata whose labels agree)
//! and answers each offered stream `recvonly` on a port the caller hands out. Media, files and
//! sockets are the driver's business.

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
        streams: Vec<StreamSetup>,
        metadata_xml: String,
        metadata: Box<Metadata>,
    },
    /// A re-INVITE paused (`paused`) or resumed the session; new metadata if it carried some.
    SessionUpdated {
        key: SessionKey,
        paused: bool,
        metadata_xml: Option<String>,
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
}

fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

/// An INVITE that passed every check.
#[derive(Debug, Clone)]
pub struct ValidOffer {
    pub sdp: SessionDescription,
    pub labels: Vec<String>,
    pub metadata: Metadata,
    pub metadata_xml: String,
}

/// Checks an initial INVITE for a recording session (RFC 7866 6.1.1, 7.1.1, 9.1).
pub fn validate_invite(request: &Message) -> Result<ValidOffer, Refusal> {
    if !request.headers.has_token("Require", "siprec") {
        return Err(refuse(488, "Not a recording session (no Require: siprec)"));
    }
    let contacts = request.contacts().map_err(|_| refuse(400, "Bad Contact"))?;
    let from_src = contacts
        .iter()
        .any(|contact| contact.param("+sip.src").is_some());
    if !from_src {
        return Err(refuse(
            400,
            "Not from a Session Recording Client (Contact without +sip.src)",
        ));
    }
    if request.body.is_empty() {
        return Err(refuse(
            488,
            "Offerless recording sessions are not supported",
        ));
    }
    let content_type = request.headers.get("Content-Type").unwrap_or_default();
    let parts = multipart::parse(content_type, &request.body).map_err(|error| {
        refuse(
            415,
            format!("Body must be multipart/mixed with SDP and metadata ({error})"),
        )
    })?;
    let sdp_part = multipart::find(&parts, "application/sdp")
        .ok_or_else(|| refuse(415, "Multipart body has no application/sdp part"))?;
    let metadata_part = multipart::find(&parts, "application/rs-metadata+xml")
        .ok_or_else(|| refuse(415, "Multipart body has no recording metadata part"))?;
    let sdp_text = String::from_utf8_lossy(&sdp_part.body);
    let sdp = SessionDescription::parse(&sdp_text)
        .map_err(|error| refuse(400, format!("Bad SDP: {error}")))?;
    let metadata_xml = String::from_utf8_lossy(&metadata_part.body).into_owned();
    let metadata = metadata::parse(&metadata_xml)
        .map_err(|error| refuse(400, format!("Bad metadata: {error}")))?;
    let mut labels = Vec::new();
    for media in &sdp.media {
        match media.attribute("label").and_then(|a| a.value.clone()) {
            Some(label) => labels.push(label),
            None => return Err(refuse(400, "An m-line of the recording SDP has no a=label")),
        }
    }
    if labels.is_empty() {
        return Err(refuse(488, "The recording SDP offers no stream"));
    }
    metadata.validate_against_labels(&labels).map_err(|error| {
        refuse(
            400,
            format!("Metadata does not match the SDP labels: {error}"),
        )
    })?;
    Ok(ValidOffer {
        sdp,
        labels,
        metadata,
        metadata_xml,
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
    let user = aor.and_then(|aor| {
        let rest = aor.split_once(':').map_or(aor.as_str(), |(_, rest)| rest);
        rest.split_once('@').map(|(user, _)| user.to_owned())
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
    streams: Vec<StreamSetup>,
    codecs: Vec<(CodecKind, u8, u32)>,
    crypto_tags: Vec<Option<u32>>,
    version: u64,
    session_id: u64,
    paused: bool,
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
        match request.method() {
            Some(Method::Invite) if to_tag.is_none() => {
                self.on_initial_invite(now, key, request, call_id, source, resources)
            }
            Some(Method::Invite) => self.on_reinvite(now, key, request, &call_id),
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
            Ok((session, metadata_xml, metadata)) => {
                let answer = self.answer_sdp(&session);
                let mut response = request.response(200, "OK", Some(&local_tag));
                self.decorate(&mut response, source.transport);
                response.set_body("application/sdp", answer.to_string().into_bytes());
                let streams = session.streams.clone();
                self.sessions.insert(call_id.clone(), session);
                self.pending.insert(call_id.clone(), key.clone());
                self.respond(now, &key, response);
                self.outputs.push_back(RecorderOutput::SessionStarted {
                    key: call_id,
                    streams,
                    metadata_xml,
                    metadata: Box::new(metadata),
                });
            }
            Err(refusal) => {
                tracing::info!(status = refusal.status, reason = %refusal.reason, "srs: INVITE refused");
                let response = request.response(refusal.status, &refusal.reason, Some(&local_tag));
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
    ) -> Result<(RsSession, String, Metadata), Refusal> {
        let mut streams = Vec::new();
        let mut codecs = Vec::new();
        let mut crypto_tags = Vec::new();
        for (media, label) in offer.sdp.media.iter().zip(&offer.labels) {
            let offered = || {
                media
                    .formats
                    .iter()
                    .filter_map(|f| CodecKind::from_encoding(&f.encoding).map(|kind| (kind, f)))
            };
            let preferred = self
                .codec_preference
                .iter()
                .find_map(|wanted| offered().find(|(kind, _)| kind == wanted));
            let format = preferred.or_else(|| offered().next()).ok_or_else(|| {
                refuse(
                    488,
                    format!("Stream {label}: no PCMU, PCMA or opus offered"),
                )
            })?;
            let (codec, payload) = format;
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
            codecs.push((codec, payload.payload_type, payload.clock_rate));
            crypto_tags.push(crypto.as_ref().map(|(tag, _)| *tag));
            streams.push(StreamSetup {
                label: label.clone(),
                local_port,
                codec,
                payload_type: payload.payload_type,
                crypto: crypto.map(|(_, c)| c),
                participant: participant_for_label(&offer.metadata, label),
            });
        }
        let paused = offer
            .sdp
            .media
            .iter()
            .all(|m| m.direction == Direction::Inactive);
        Ok((
            RsSession {
                local_tag: dialog.local_tag.clone(),
                dialog,
                peer,
                streams,
                codecs,
                crypto_tags,
                version: 1,
                session_id: resources.token() >> 1,
                paused,
            },
            offer.metadata_xml,
            offer.metadata,
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
        for ((stream, (_, payload_type, _)), tag) in session
            .streams
            .iter()
            .zip(&session.codecs)
            .zip(&session.crypto_tags)
        {
            let proto = if stream.crypto.is_some() {
                "RTP/SAVP"
            } else {
                "RTP/AVP"
            };
            let mut media =
                MediaDescription::new(crate::sdp::MediaKind::Audio, stream.local_port, proto);
            let format = payload_format(stream.codec, *payload_type);
            media.formats.push(format);
            media.direction = if session.paused {
                Direction::Inactive
            } else {
                Direction::RecvOnly
            };
            media
                .attributes
                .push(Attribute::new("label", stream.label.clone()));
            if let (Some(crypto), Some(tag)) = (&stream.crypto, tag) {
                let line = CryptoAttribute::new(*tag, crypto.suite, crypto.local_key);
                media
                    .attributes
                    .push(Attribute::new("crypto", line.to_string()));
            }
            sdp.media.push(media);
        }
        sdp
    }

    fn on_reinvite(&mut self, now: Instant, key: TxKey, request: &Message, call_id: &str) {
        let Some(session) = self.sessions.get(call_id) else {
            let response = request.response(481, "Call/Transaction Does Not Exist", None);
            self.respond(now, &key, response);
            return;
        };
        let local_tag = session.local_tag.clone();
        // The body is SDP alone or multipart with SDP and new metadata.
        let content_type = request.headers.get("Content-Type").unwrap_or_default();
        let (sdp_text, metadata_xml) = if content_type
            .trim()
            .to_ascii_lowercase()
            .starts_with("multipart/")
        {
            match multipart::parse(content_type, &request.body) {
                Ok(parts) => (
                    multipart::find(&parts, "application/sdp")
                        .map(|p| String::from_utf8_lossy(&p.body).into_owned()),
                    multipart::find(&parts, "application/rs-metadata+xml")
                        .map(|p| String::from_utf8_lossy(&p.body).into_owned()),
                ),
                Err(_) => (None, None),
            }
        } else if request.body.is_empty() {
            (None, None)
        } else {
            (
                Some(String::from_utf8_lossy(&request.body).into_owned()),
                None,
            )
        };
        let sdp = match sdp_text.as_deref().map(SessionDescription::parse) {
            Some(Ok(sdp)) => Some(sdp),
            Some(Err(error)) => {
                let response = request.response(400, &format!("Bad SDP: {error}"), None);
                self.respond(now, &key, response);
                return;
            }
            None => None,
        };
        if let Some(sdp) = &sdp
            && sdp.media.len() != session.streams.len()
        {
            let response = request.response(488, "Re-INVITE changes the number of streams", None);
            self.respond(now, &key, response);
            return;
        }
        let paused = sdp.as_ref().map_or(session.paused, |sdp| {
            sdp.media.iter().all(|m| m.direction == Direction::Inactive)
        });
        let Some(session) = self.sessions.get_mut(call_id) else {
            return;
        };
        let changed = paused != session.paused;
        session.paused = paused;
        session.version += 1;
        let Some(session) = self.sessions.get(call_id) else {
            return;
        };
        let answer = self.answer_sdp(session);
        let transport = session.peer.transport;
        let mut response = request.response(200, "OK", Some(&local_tag));
        self.decorate(&mut response, transport);
        response.set_body("application/sdp", answer.to_string().into_bytes());
        self.respond(now, &key, response);
        if changed || metadata_xml.is_some() {
            self.outputs.push_back(RecorderOutput::SessionUpdated {
                key: call_id.to_owned(),
                paused,
                metadata_xml,
            });
        }
    }
}

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS";

fn payload_format(codec: CodecKind, payload_type: u8) -> crate::sdp::PayloadFormat {
    match codec {
        CodecKind::Opus => crate::sdp::PayloadFormat::new(payload_type, "opus", 48_000, Some(2)),
        CodecKind::Pcmu => crate::sdp::PayloadFormat::new(payload_type, "PCMU", 8000, None),
        CodecKind::Pcma => crate::sdp::PayloadFormat::new(payload_type, "PCMA", 8000, None),
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
            port: 5004,
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
        let mut resources = Fixed { next_port: 30_000 };
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
        (response.expect("a response"), outputs, recorder)
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
        assert_eq!(response.status(), Some(400));
        assert!(
            response
                .reason()
                .unwrap()
                .contains("Session Recording Client")
        );
    }

    #[test]
    fn plain_sdp_body_is_refused_as_unsupported_media() {
        let body = (
            "application/sdp".to_owned(),
            sdp(&["1", "2"], false, Direction::SendOnly).into_bytes(),
        );
        let (response, _, _) = run(&invite(true, true, Some(body)));
        assert_eq!(response.status(), Some(415));
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
}
