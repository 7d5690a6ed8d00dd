//! The transaction layer (RFC 3261 17, with the Accepted state of RFC 6026).
//!
//! Four state machines share one table. The layer owns retransmission and the timers A to M;
//! the layer above (the transaction user) sees each request once, each response once (2xx
//! retransmissions for INVITE excepted: those belong to the dialog), and a timeout event when
//! a peer went silent. Nothing here reads a clock: `now` comes in with every call.

use core::time::Duration;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use super::message::{Message, Method, ParseError, StartLine, Via};
use super::transport::{Destination, Transport};

/// RFC 3261 17.1.1.1 timer values. Tests shrink nothing: virtual time makes them cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
    /// Timer C (RFC 3261 16.6): how long an INVITE may stay in Proceeding without a final.
    pub timer_c: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_c: Duration::from_secs(180),
        }
    }
}

/// Identifies a transaction: the top Via branch and the method (ACK folds into INVITE on the
/// server side, RFC 3261 17.2.3), plus the sent-by for server transactions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxKey {
    pub branch: String,
    pub method: String,
    pub sent_by: String,
    pub server: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InviteClient,
    NonInviteClient,
    InviteServer,
    NonInviteServer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

#[derive(Debug)]
struct Transaction {
    kind: Kind,
    state: TxState,
    request: Message,
    request_bytes: Vec<u8>,
    peer: Destination,
    last_response: Option<Vec<u8>>,
    /// The ACK a client INVITE sends for a non-2xx final; resent on retransmitted finals.
    ack: Option<Vec<u8>>,
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    expires_at: Option<Instant>,
    /// The entry this transaction has in the layer's deadline index.
    scheduled: Option<Instant>,
}

impl Transaction {
    fn deadline(&self) -> Option<Instant> {
        match (self.retransmit_at, self.expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub destination: Destination,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// A new request for the transaction user, with the server transaction to answer it on.
    Request {
        key: TxKey,
        request: Message,
        source: Destination,
    },
    /// A response on one of our client transactions.
    Response { key: TxKey, response: Message },
    /// An ACK that belongs to no transaction: the ACK for a 2xx, handled by the dialog.
    Ack {
        request: Message,
        source: Destination,
    },
    /// A response that matches no transaction, e.g. a 2xx retransmitted after the INVITE
    /// transaction ended; the dialog decides whether to ACK it.
    StrayResponse { response: Message },
    /// Timer B, F or C: the peer never answered.
    Timeout { key: TxKey },
    /// The connection carrying the request failed or could not be opened (RFC 3261 17.1.4).
    TransportError { key: TxKey, reason: String },
    /// Timer H: our final response to an INVITE was never acknowledged.
    NoAck { key: TxKey },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("no such transaction")]
    NoTransaction,
    #[error("transaction already sent a final response")]
    AlreadyFinal,
    #[error("ACK is not sent in a transaction")]
    AckNotATransaction,
    #[error("request has no usable Via: {0}")]
    BadVia(ParseError),
}

#[derive(Debug, Default)]
pub struct TransactionLayer {
    timers: TimerConfig,
    transactions: HashMap<TxKey, Transaction>,
    /// Deadlines ordered by time, so that the next one is found without a scan: a UA under
    /// load holds thousands of transactions in their Timer J/K waits.
    deadlines: BTreeSet<(Instant, TxKey)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
    /// Keys of transactions that ended, so owners can forget them.
    ended: VecDeque<TxKey>,
}

/// Where RFC 3261 18.2.2 and RFC 3581 say responses to this request go.
pub fn response_destination(request: &Message, source: Destination) -> Destination {
    if source.transport.is_reliable() {
        return source;
    }
    let mut address = source.address;
    if let Ok(via) = request.top_via()
        && via.param("rport").is_none()
    {
        address.set_port(via.port.unwrap_or(Transport::Udp.default_port()));
    }
    Destination::new(source.transport, address)
}

impl TransactionLayer {
    pub fn new(timers: TimerConfig) -> TransactionLayer {
        TransactionLayer {
            timers,
            ..TransactionLayer::default()
        }
    }

    pub fn timers(&self) -> TimerConfig {
        self.timers
    }

    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    pub fn state(&self, key: &TxKey) -> Option<TxState> {
        self.transactions.get(key).map(|t| t.state)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// Starts a client transaction. The request must carry its top Via with a branch.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
        destination: Destination,
    ) -> Result<TxKey, TxError> {
        let method = request.method().cloned().unwrap_or(Method::Options);
        if method == Method::Ack {
            return Err(TxError::AckNotATransaction);
        }
        let via = request.top_via().map_err(TxError::BadVia)?;
        let key = TxKey {
            branch: via.branch().unwrap_or("").to_owned(),
            method: method.as_str().to_owned(),
            sent_by: String::new(),
            server: false,
        };
        let kind = if method == Method::Invite {
            Kind::InviteClient
        } else {
            Kind::NonInviteClient
        };
        let bytes = request.to_bytes();
        let unreliable = !destination.transport.is_reliable();
        let t1 = self.timers.t1;
        let tx = Transaction {
            kind,
            state: if kind == Kind::InviteClient {
                TxState::Calling
            } else {
                TxState::Trying
            },
            request,
            request_bytes: bytes.clone(),
            peer: destination,
            last_response: None,
            ack: None,
            retransmit_at: unreliable.then(|| now + t1),
            retransmit_interval: t1,
            expires_at: Some(now + 64 * t1),
            scheduled: None,
        };
        self.transmits.push_back(Transmit {
            destination,
            data: bytes,
        });
        self.transactions.insert(key.clone(), tx);
        self.resync(&key);
        Ok(key)
    }

    /// Answers a request received on a server transaction.
    pub fn respond(&mut self, now: Instant, key: &TxKey, response: Message) -> Result<(), TxError> {
        let timers = self.timers;
        let tx = self
            .transactions
            .get_mut(key)
            .ok_or(TxError::NoTransaction)?;
        if !matches!(tx.state, TxState::Trying | TxState::Proceeding) {
            return Err(TxError::AlreadyFinal);
        }
        let status = response.status().unwrap_or(500);
        let bytes = response.to_bytes();
        let unreliable = !tx.peer.transport.is_reliable();
        self.transmits.push_back(Transmit {
            destination: tx.peer,
            data: bytes.clone(),
        });
        tx.last_response = Some(bytes);
        match (tx.kind, status) {
            (_, 100..=199) => tx.state = TxState::Proceeding,
            (Kind::InviteServer, 200..=299) => {
                tx.state = TxState::Accepted;
                tx.expires_at = Some(now + 64 * timers.t1); // Timer L
            }
            (Kind::InviteServer, _) => {
                tx.state = TxState::Completed;
                tx.retransmit_interval = timers.t1;
                tx.retransmit_at = unreliable.then(|| now + timers.t1); // Timer G
                tx.expires_at = Some(now + 64 * timers.t1); // Timer H
            }
            _ => {
                tx.state = TxState::Completed;
                // Timer J
                tx.expires_at = Some(
                    now + if unreliable {
                        64 * timers.t1
                    } else {
                        Duration::ZERO
                    },
                );
            }
        }
        self.resync(key);
        Ok(())
    }

    /// Whether `request` would open a new server transaction (not a retransmission, not an
    /// ACK). Its top Via must parse; one that does not is not new either.
    pub fn is_new_request(&self, request: &Message) -> bool {
        let (Some(method), Ok(via)) = (request.method(), request.top_via()) else {
            return false;
        };
        *method != Method::Ack
            && !self
                .transactions
                .contains_key(&server_key(request, &via, method))
    }

    /// Feeds one message that arrived from `source`.
    pub fn on_message(&mut self, now: Instant, message: Message, source: Destination) {
        if message.is_request() {
            self.on_request(now, message, source);
        } else {
            self.on_response(now, message);
        }
    }

    fn on_request(&mut self, now: Instant, mut request: Message, source: Destination) {
        stamp_received(&mut request, source);
        let Ok(via) = request.top_via() else {
            return;
        };
        let method = request.method().cloned().unwrap_or(Method::Options);
        let key = server_key(&request, &via, &method);
        if let Some(tx) = self.transactions.get_mut(&key) {
            let timers = self.timers;
            match (method, tx.state) {
                (Method::Ack, TxState::Completed) if tx.kind == Kind::InviteServer => {
                    tx.state = TxState::Confirmed;
                    tx.retransmit_at = None;
                    tx.expires_at = Some(
                        now + if tx.peer.transport.is_reliable() {
                            Duration::ZERO
                        } else {
                            timers.t4
                        },
                    ); // Timer I
                }
                (Method::Ack, _) => {}
                (_, TxState::Proceeding | TxState::Completed) => {
                    if let Some(last) = &tx.last_response {
                        self.transmits.push_back(Transmit {
                            destination: tx.peer,
                            data: last.clone(),
                        });
                    }
                }
                _ => {}
            }
            self.resync(&key);
            return;
        }
        if method == Method::Ack {
            self.events.push_back(TxEvent::Ack { request, source });
            return;
        }
        let kind = if method == Method::Invite {
            Kind::InviteServer
        } else {
            Kind::NonInviteServer
        };
        let peer = response_destination(&request, source);
        let mut tx = Transaction {
            kind,
            state: TxState::Trying,
            request_bytes: Vec::new(),
            request: request.clone(),
            peer,
            last_response: None,
            ack: None,
            retransmit_at: None,
            retransmit_interval: self.timers.t1,
            expires_at: None,
            scheduled: None,
        };
        if kind == Kind::InviteServer {
            // Sent at once rather than after 200 ms: it costs one datagram and stops the
            // caller's Timer A retransmissions early.
            let trying = request.response(100, "Trying", None).to_bytes();
            self.transmits.push_back(Transmit {
                destination: peer,
                data: trying.clone(),
            });
            tx.last_response = Some(trying);
            tx.state = TxState::Proceeding;
        }
        self.transactions.insert(key.clone(), tx);
        self.events.push_back(TxEvent::Request {
            key,
            request,
            source,
        });
    }

    fn on_response(&mut self, now: Instant, response: Message) {
        let (Ok(via), Ok(cseq)) = (response.top_via(), response.cseq()) else {
            return;
        };
        let key = TxKey {
            branch: via.branch().unwrap_or("").to_owned(),
            method: cseq.method.as_str().to_owned(),
            sent_by: String::new(),
            server: false,
        };
        let status = response.status().unwrap_or(500);
        let timers = self.timers;
        let Some(tx) = self.transactions.get_mut(&key) else {
            self.events.push_back(TxEvent::StrayResponse { response });
            return;
        };
        let unreliable = !tx.peer.transport.is_reliable();
        match (tx.kind, tx.state, status) {
            (Kind::InviteClient, TxState::Calling | TxState::Proceeding, 100..=199) => {
                tx.state = TxState::Proceeding;
                tx.retransmit_at = None;
                tx.expires_at = Some(now + timers.timer_c);
                self.events.push_back(TxEvent::Response {
                    key: key.clone(),
                    response,
                });
            }
            (Kind::InviteClient, TxState::Calling | TxState::Proceeding, 200..=299) => {
                tx.state = TxState::Accepted;
                tx.retransmit_at = None;
                tx.expires_at = Some(now + 64 * timers.t1); // Timer M
                self.events.push_back(TxEvent::Response {
                    key: key.clone(),
                    response,
                });
            }
            (Kind::InviteClient, TxState::Accepted, 200..=299) => {
                self.events.push_back(TxEvent::Response {
                    key: key.clone(),
                    response,
                });
            }
            (Kind::InviteClient, TxState::Calling | TxState::Proceeding, _) => {
                let ack = ack_for_failure(&tx.request, &response).to_bytes();
                self.transmits.push_back(Transmit {
                    destination: tx.peer,
                    data: ack.clone(),
                });
                tx.ack = Some(ack);
                tx.state = TxState::Completed;
                tx.retransmit_at = None;
                // Timer D: 32 s covers the peer's final-response retransmissions over UDP.
                tx.expires_at = Some(
                    now + if unreliable {
                        Duration::from_secs(32).max(64 * timers.t1)
                    } else {
                        Duration::ZERO
                    },
                );
                self.events.push_back(TxEvent::Response {
                    key: key.clone(),
                    response,
                });
            }
            (Kind::InviteClient, TxState::Completed, 300..) => {
                if let Some(ack) = &tx.ack {
                    self.transmits.push_back(Transmit {
                        destination: tx.peer,
                        data: ack.clone(),
                    });
                }
            }
            (Kind::NonInviteClient, TxState::Trying | TxState::Proceeding, 100..=199) => {
                tx.state = TxState::Proceeding;
                self.events.push_back(TxEvent::Response {
                    key: key.clone(),
                    response,
                });
            }
            (Kind::NonInviteClient, TxState::Trying | TxState::Proceeding, _) => {
                tx.state = TxState::Completed;
                tx.retransmit_at = None;
                // Timer K
                tx.expires_at = Some(
                    now + if unreliable {
                        timers.t4
                    } else {
                        Duration::ZERO
                    },
                );
                self.events.push_back(TxEvent::Response {
                    key: key.clone(),
                    response,
                });
            }
            _ => {}
        }
        self.resync(&key);
    }

    /// Moves a transaction's entry in the deadline index to its current earliest deadline.
    fn resync(&mut self, key: &TxKey) {
        let Some(tx) = self.transactions.get_mut(key) else {
            return;
        };
        let wanted = tx.deadline();
        if tx.scheduled == wanted {
            return;
        }
        if let Some(old) = tx.scheduled.take() {
            self.deadlines.remove(&(old, key.clone()));
        }
        if let Some(at) = wanted {
            tx.scheduled = Some(at);
            self.deadlines.insert((at, key.clone()));
        }
    }

    fn forget(&mut self, key: &TxKey) {
        if let Some(tx) = self.transactions.remove(key) {
            if let Some(at) = tx.scheduled {
                self.deadlines.remove(&(at, key.clone()));
            }
            self.ended.push_back(key.clone());
        }
    }

    /// A transaction that has ended since the last call.
    pub fn poll_ended(&mut self) -> Option<TxKey> {
        self.ended.pop_front()
    }

    /// The earliest instant at which [`TransactionLayer::on_timeout`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Fires every timer due at `now`.
    pub fn on_timeout(&mut self, now: Instant) {
        let timers = self.timers;
        while let Some((at, key)) = self.deadlines.first().cloned() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, key.clone()));
            let Some(tx) = self.transactions.get_mut(&key) else {
                continue;
            };
            tx.scheduled = None;
            if tx.expires_at.is_some_and(|at| at <= now) {
                match (tx.kind, tx.state) {
                    (Kind::InviteClient, TxState::Calling | TxState::Proceeding)
                    | (Kind::NonInviteClient, TxState::Trying | TxState::Proceeding) => {
                        self.events.push_back(TxEvent::Timeout { key: key.clone() });
                    }
                    (Kind::InviteServer, TxState::Completed) => {
                        self.events.push_back(TxEvent::NoAck { key: key.clone() });
                    }
                    _ => {}
                }
                self.forget(&key);
                continue;
            }
            if tx.retransmit_at.is_some_and(|at| at <= now) {
                let data = match tx.kind {
                    Kind::InviteClient | Kind::NonInviteClient => Some(tx.request_bytes.clone()),
                    Kind::InviteServer | Kind::NonInviteServer => tx.last_response.clone(),
                };
                if let Some(data) = data {
                    self.transmits.push_back(Transmit {
                        destination: tx.peer,
                        data,
                    });
                }
                tx.retransmit_interval = match (tx.kind, tx.state) {
                    (Kind::InviteClient, _) => tx.retransmit_interval * 2, // Timer A
                    (Kind::NonInviteClient, TxState::Proceeding) => timers.t2, // Timer E
                    _ => (tx.retransmit_interval * 2).min(timers.t2),      // Timers E and G
                };
                tx.retransmit_at = Some(now + tx.retransmit_interval);
            }
            self.resync(&key);
        }
    }

    /// The INVITE server transaction a CANCEL refers to (RFC 3261 9.2).
    pub fn invite_for_cancel(&self, cancel_key: &TxKey) -> Option<TxKey> {
        let key = TxKey {
            method: Method::Invite.as_str().to_owned(),
            ..cancel_key.clone()
        };
        self.transactions.contains_key(&key).then_some(key)
    }

    /// The request that opened a server transaction.
    pub fn request(&self, key: &TxKey) -> Option<&Message> {
        self.transactions.get(key).map(|t| &t.request)
    }

    /// Forgets a client transaction at once, e.g. when the transport to its peer failed.
    pub fn abandon(&mut self, key: &TxKey) {
        self.forget(key);
    }

    /// Ends every client transaction towards `peer` with a timeout, because the connection
    /// that carried them closed (RFC 3261 17.1.4 transport error).
    pub fn transport_failed(&mut self, peer: Destination, reason: &str) {
        let failed: Vec<TxKey> = self
            .transactions
            .iter()
            .filter(|(k, t)| {
                !k.server
                    && t.peer == peer
                    && !matches!(
                        t.state,
                        TxState::Completed | TxState::Accepted | TxState::Terminated
                    )
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in failed {
            self.forget(&key);
            self.events.push_back(TxEvent::TransportError {
                key,
                reason: reason.to_owned(),
            });
        }
    }
}

fn server_key(request: &Message, via: &Via, method: &Method) -> TxKey {
    let method = match method {
        Method::Ack => Method::Invite,
        other => other.clone(),
    };
    let branch = match via.branch() {
        Some(b) if b.starts_with("z9hG4bK") => b.to_owned(),
        // RFC 2543 peers: no magic cookie, so identify by dialog and sequence instead.
        _ => format!(
            "2543:{}:{}:{}",
            request.call_id().unwrap_or(""),
            request
                .from_header()
                .ok()
                .and_then(|f| f.tag().map(str::to_owned))
                .unwrap_or_default(),
            request.cseq().map(|c| c.number).unwrap_or(0)
        ),
    };
    TxKey {
        branch,
        method: method.as_str().to_owned(),
        sent_by: format!("{}:{}", via.host, via.port.unwrap_or(0)),
        server: true,
    }
}

/// RFC 3261 18.2.1 and RFC 3581: tell the upper layers where the request really came from.
fn stamp_received(request: &mut Message, source: Destination) {
    let Ok(mut via) = request.top_via() else {
        return;
    };
    let source_ip = source.address.ip().to_string();
    let host = via.host.trim_start_matches('[').trim_end_matches(']');
    let mut changed = false;
    if host != source_ip {
        via.set_param("received", Some(source_ip));
        changed = true;
    }
    if via.param("rport") == Some(None) {
        via.set_param("rport", Some(source.address.port().to_string()));
        changed = true;
    }
    if !changed {
        return;
    }
    let mut vias: Vec<String> = request
        .headers
        .list("Via")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if let Some(first) = vias.first_mut() {
        *first = via.to_string();
    }
    request.headers.remove("Via");
    for v in vias.iter().rev() {
        request.headers.insert_first("Via", v.clone());
    }
}

/// RFC 3261 17.1.1.3: the ACK for a non-2xx final is part of the INVITE transaction.
fn ack_for_failure(invite: &Message, response: &Message) -> Message {
    let uri = match &invite.start {
        StartLine::Request { uri, .. } => uri.clone(),
        StartLine::Response { .. } => super::uri::Uri::sip(None, "invalid", None),
    };
    let mut ack = Message::request(Method::Ack, uri);
    if let Some(via) = invite.headers.list("Via").first() {
        ack.headers.push("Via", *via);
    }
    for name in ["Max-Forwards", "From"] {
        if let Some(v) = invite.headers.get(name) {
            ack.headers.push(name, v);
        }
    }
    if let Some(to) = response.headers.get("To") {
        ack.headers.push("To", to);
    }
    if let Some(call_id) = invite.headers.get("Call-ID") {
        ack.headers.push("Call-ID", call_id);
    }
    let number = invite.cseq().map(|c| c.number).unwrap_or(1);
    ack.headers.push("CSeq", format!("{number} ACK"));
    for route in invite.headers.all("Route") {
        ack.headers.push("Route", route);
    }
    ack
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::uri::Uri;

    fn dest(transport: Transport) -> Destination {
        Destination::new(transport, "127.0.0.1:5060".parse().unwrap())
    }

    fn request(method: Method, branch: &str) -> Message {
        let mut m = Message::request(
            method.clone(),
            Uri::sip(Some("bob"), "127.0.0.1", Some(5060)),
        );
        m.headers.push(
            "Via",
            format!("SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport"),
        );
        m.headers.push("Max-Forwards", "70");
        m.headers.push("From", "<sip:alice@127.0.0.1>;tag=a1");
        m.headers.push("To", "<sip:bob@127.0.0.1>");
        m.headers.push("Call-ID", "call-1");
        m.headers.push("CSeq", format!("1 {method}"));
        m
    }

    fn reply(req: &Message, status: u16) -> Message {
        req.response(status, "x", Some("b1"))
    }

    fn drain(layer: &mut TransactionLayer) -> Vec<Transmit> {
        std::iter::from_fn(|| layer.poll_transmit()).collect()
    }

    /// Advances virtual time to each deadline until `until`, counting datagrams sent.
    fn run_until(layer: &mut TransactionLayer, start: Instant, until: Duration) -> Vec<Duration> {
        let mut sent_at = Vec::new();
        while let Some(at) = layer.next_deadline() {
            if at > start + until {
                break;
            }
            layer.on_timeout(at);
            for _ in drain(layer) {
                sent_at.push(at - start);
            }
        }
        sent_at
    }

    #[test]
    fn timer_a_doubles_and_timer_b_times_out_after_64_t1() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let key = layer
            .send_request(
                now,
                request(Method::Invite, "z9hG4bKa"),
                dest(Transport::Udp),
            )
            .unwrap();
        assert_eq!(drain(&mut layer).len(), 1);
        let sent = run_until(&mut layer, now, Duration::from_secs(40));
        let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(layer.poll_event(), Some(TxEvent::Timeout { key }));
        assert!(layer.is_empty());
    }

    #[test]
    fn timer_e_caps_at_t2_and_timer_f_times_out() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        layer
            .send_request(
                now,
                request(Method::Options, "z9hG4bKe"),
                dest(Transport::Udp),
            )
            .unwrap();
        drain(&mut layer);
        let sent = run_until(&mut layer, now, Duration::from_secs(40));
        let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
        assert_eq!(&ms[..5], &[500, 1500, 3500, 7500, 11500]);
        assert!(ms.windows(2).skip(3).all(|w| w[1] - w[0] == 4000));
        assert!(matches!(layer.poll_event(), Some(TxEvent::Timeout { .. })));
    }

    #[test]
    fn no_retransmissions_over_tcp() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        layer
            .send_request(
                now,
                request(Method::Options, "z9hG4bKt"),
                dest(Transport::Tcp),
            )
            .unwrap();
        drain(&mut layer);
        let sent = run_until(&mut layer, now, Duration::from_secs(40));
        assert!(sent.is_empty());
        assert!(matches!(layer.poll_event(), Some(TxEvent::Timeout { .. })));
    }

    #[test]
    fn provisional_stops_timer_a_and_failure_is_acked_and_absorbed() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let invite = request(Method::Invite, "z9hG4bKp");
        layer
            .send_request(now, invite.clone(), dest(Transport::Udp))
            .unwrap();
        drain(&mut layer);
        layer.on_message(now, reply(&invite, 180), dest(Transport::Udp));
        assert!(matches!(layer.poll_event(), Some(TxEvent::Response { .. })));
        assert!(run_until(&mut layer, now, Duration::from_secs(10)).is_empty());
        let busy = reply(&invite, 486);
        layer.on_message(now, busy.clone(), dest(Transport::Udp));
        let acks = drain(&mut layer);
        assert_eq!(acks.len(), 1);
        let ack = Message::parse(&acks[0].data).unwrap();
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(ack.top_via().unwrap().branch(), Some("z9hG4bKp"));
        assert_eq!(ack.to_header().unwrap().tag(), Some("b1"));
        assert!(matches!(layer.poll_event(), Some(TxEvent::Response { .. })));
        // The retransmitted 486 is answered with the same ACK and not reported again.
        layer.on_message(now, busy, dest(Transport::Udp));
        assert_eq!(drain(&mut layer).len(), 1);
        assert_eq!(layer.poll_event(), None);
        // Timer D: 32 s, then the transaction is gone.
        layer.on_timeout(now + Duration::from_secs(33));
        assert!(layer.is_empty());
    }

    #[test]
    fn server_invite_sends_trying_absorbs_retransmissions_and_retransmits_final() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let invite = request(Method::Invite, "z9hG4bKs");
        layer.on_message(now, invite.clone(), dest(Transport::Udp));
        let trying = drain(&mut layer);
        assert_eq!(Message::parse(&trying[0].data).unwrap().status(), Some(100));
        let Some(TxEvent::Request { key, request, .. }) = layer.poll_event() else {
            panic!("no request event");
        };
        // rport was filled in from the source (RFC 3581).
        assert_eq!(
            request.top_via().unwrap().param("rport"),
            Some(Some("5060"))
        );
        layer.on_message(now, invite.clone(), dest(Transport::Udp));
        assert_eq!(
            drain(&mut layer).len(),
            1,
            "retransmitted INVITE gets the 100 again"
        );
        assert_eq!(layer.poll_event(), None);
        layer.respond(now, &key, reply(&request, 486)).unwrap();
        drain(&mut layer);
        let sent = run_until(&mut layer, now, Duration::from_secs(40));
        let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
        assert_eq!(&ms[..4], &[500, 1500, 3500, 7500]);
        assert_eq!(layer.poll_event(), Some(TxEvent::NoAck { key }));
    }

    #[test]
    fn ack_confirms_server_invite_and_timer_i_ends_it() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let invite = request(Method::Invite, "z9hG4bKc");
        layer.on_message(now, invite.clone(), dest(Transport::Udp));
        let Some(TxEvent::Request { key, request, .. }) = layer.poll_event() else {
            panic!("no request event");
        };
        layer.respond(now, &key, reply(&request, 603)).unwrap();
        let mut ack = invite.clone();
        ack.start = StartLine::Request {
            method: Method::Ack,
            uri: Uri::sip(Some("bob"), "127.0.0.1", None),
        };
        ack.headers.set("CSeq", "1 ACK");
        layer.on_message(now, ack, dest(Transport::Udp));
        assert_eq!(layer.state(&key), Some(TxState::Confirmed));
        assert_eq!(layer.poll_event(), None);
        layer.on_timeout(now + Duration::from_secs(5));
        assert!(layer.is_empty());
    }

    #[test]
    fn non_invite_server_replays_final_until_timer_j() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let bye = request(Method::Bye, "z9hG4bKb");
        layer.on_message(now, bye.clone(), dest(Transport::Udp));
        let Some(TxEvent::Request { key, request, .. }) = layer.poll_event() else {
            panic!("no request event");
        };
        layer.on_message(now, bye.clone(), dest(Transport::Udp));
        assert!(
            drain(&mut layer).is_empty(),
            "nothing to replay before the TU answers"
        );
        layer.respond(now, &key, reply(&request, 200)).unwrap();
        drain(&mut layer);
        layer.on_message(now, bye.clone(), dest(Transport::Udp));
        assert_eq!(drain(&mut layer).len(), 1);
        layer.on_timeout(now + Duration::from_secs(32));
        assert!(layer.is_empty());
    }

    #[test]
    fn ack_for_2xx_goes_to_the_dialog() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let mut ack = request(Method::Ack, "z9hG4bKnew");
        ack.headers.set("CSeq", "1 ACK");
        layer.on_message(now, ack, dest(Transport::Udp));
        assert!(matches!(layer.poll_event(), Some(TxEvent::Ack { .. })));
    }

    #[test]
    fn cancel_finds_its_invite() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        layer.on_message(
            now,
            request(Method::Invite, "z9hG4bKx"),
            dest(Transport::Udp),
        );
        let mut cancel = request(Method::Cancel, "z9hG4bKx");
        cancel.headers.set("CSeq", "1 CANCEL");
        layer.on_message(now, cancel, dest(Transport::Udp));
        let _invite = layer.poll_event();
        let Some(TxEvent::Request { key, .. }) = layer.poll_event() else {
            panic!("no cancel event");
        };
        assert_eq!(
            layer.invite_for_cancel(&key).map(|k| k.method),
            Some("INVITE".to_owned())
        );
    }

    #[test]
    fn invite_2xx_retransmissions_reach_the_dialog_in_accepted() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let invite = request(Method::Invite, "z9hG4bKok");
        layer
            .send_request(now, invite.clone(), dest(Transport::Udp))
            .unwrap();
        let ok = reply(&invite, 200);
        layer.on_message(now, ok.clone(), dest(Transport::Udp));
        layer.on_message(now, ok, dest(Transport::Udp));
        assert!(matches!(layer.poll_event(), Some(TxEvent::Response { .. })));
        assert!(matches!(layer.poll_event(), Some(TxEvent::Response { .. })));
        layer.on_timeout(now + Duration::from_secs(33));
        assert!(layer.is_empty());
    }

    #[test]
    fn timer_k_keeps_a_completed_non_invite_client_for_t4() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let options = request(Method::Options, "z9hG4bKk");
        let key = layer
            .send_request(now, options.clone(), dest(Transport::Udp))
            .unwrap();
        layer.on_message(now, reply(&options, 200), dest(Transport::Udp));
        assert_eq!(layer.state(&key), Some(TxState::Completed));
        // A late retransmission of the 200 is absorbed, not reported twice.
        layer.on_message(now, reply(&options, 200), dest(Transport::Udp));
        assert!(matches!(layer.poll_event(), Some(TxEvent::Response { .. })));
        assert_eq!(layer.poll_event(), None);
        layer.on_timeout(now + Duration::from_millis(4999));
        assert_eq!(layer.state(&key), Some(TxState::Completed));
        layer.on_timeout(now + Duration::from_secs(5));
        assert_eq!(layer.state(&key), None);
    }

    #[test]
    fn timer_l_keeps_an_accepted_invite_server_for_64_t1() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let invite = request(Method::Invite, "z9hG4bKl");
        layer.on_message(now, invite.clone(), dest(Transport::Udp));
        let Some(TxEvent::Request { key, request, .. }) = layer.poll_event() else {
            panic!("no request event");
        };
        layer.respond(now, &key, reply(&request, 200)).unwrap();
        assert_eq!(layer.state(&key), Some(TxState::Accepted));
        drain(&mut layer);
        // Retransmitted INVITEs are absorbed in Accepted: the dialog resends the 2xx.
        layer.on_message(now, invite, dest(Transport::Udp));
        assert!(drain(&mut layer).is_empty());
        assert_eq!(layer.poll_event(), None);
        layer.on_timeout(now + Duration::from_millis(31_999));
        assert_eq!(layer.state(&key), Some(TxState::Accepted));
        layer.on_timeout(now + Duration::from_secs(32));
        assert_eq!(layer.state(&key), None);
    }

    #[test]
    fn timer_m_and_timer_c_bound_client_invites() {
        let now = Instant::now();
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let invite = request(Method::Invite, "z9hG4bKm");
        let key = layer
            .send_request(now, invite.clone(), dest(Transport::Udp))
            .unwrap();
        layer.on_message(now, reply(&invite, 200), dest(Transport::Udp));
        layer.on_timeout(now + Duration::from_secs(32));
        assert_eq!(layer.state(&key), None, "Timer M ends Accepted after 64*T1");

        let ringing = request(Method::Invite, "z9hG4bKc2");
        let key = layer
            .send_request(now, ringing.clone(), dest(Transport::Udp))
            .unwrap();
        layer.on_message(now, reply(&ringing, 180), dest(Transport::Udp));
        while layer.poll_event().is_some() {}
        layer.on_timeout(now + Duration::from_secs(179));
        assert_eq!(layer.state(&key), Some(TxState::Proceeding));
        layer.on_timeout(now + Duration::from_secs(180));
        assert_eq!(layer.poll_event(), Some(TxEvent::Timeout { key }));
    }
}
