//! What the engine sends: responses on server transactions (and statelessly, to what the
//! transaction layer never saw), requests on new client transactions, ACKs for 2xx, and the
//! Via and Contact they carry.

use core::net::{IpAddr, SocketAddr};

use super::invite_session::InviteSession;
use super::{ALLOW, CallId, Engine, TxOwner, UDP_SIZE_LIMIT};
use crate::sip::message::{Message, Method, reason_phrase};
use crate::sip::session_id;
use crate::sip::transaction::{TxKey, response_destination};
use crate::sip::transport::{Destination, Transport};

impl Engine {
    /// A new INVITE session with a UUID of its own for Session-ID (RFC 7989), drawn from the
    /// engine's seeded RNG.
    pub(super) fn new_invite_session(
        &mut self,
        dialog: crate::sip::dialog::Dialog,
        first_hop: Destination,
    ) -> InviteSession {
        let uuid = session_id::uuid_from_random_hex(&self.rng.token(32));
        InviteSession::new(dialog, first_hop, uuid)
    }

    /// Every request and response of an INVITE session says whose session it is (RFC 7989
    /// 6): `Session-ID: <ours>;remote=<theirs>`.
    fn stamp_session_id(&self, message: &mut Message) {
        if message.headers.contains("Session-ID") {
            return;
        }
        let Some(call_id) = message.call_id() else {
            return;
        };
        let value = self
            .call_session(call_id)
            .or_else(|| self.recording_session(call_id))
            .map(InviteSession::session_id_header);
        if let Some(value) = value {
            message.headers.push("Session-ID", value);
        }
    }

    /// Learns the other end's Session-ID UUID from what it sent in one of our sessions;
    /// returns the call when a call's far end said a new one (its recordings' metadata
    /// names it).
    pub(super) fn learn_session_id(&mut self, message: &Message) -> Option<CallId> {
        let call_id = message.call_id()?.to_owned();
        if let Some((call, session)) = self.call_session_mut(&call_id) {
            return session.learn_remote_uuid(message).then_some(call);
        }
        if let Some(session) = self.recording_session_mut(&call_id) {
            session.learn_remote_uuid(message);
        }
        None
    }

    /// A request we could not parse still gets a 400 when its Via, From, To, Call-ID and CSeq
    /// can be recovered (RFC 4475 asks for it); otherwise it is dropped.
    pub(super) fn reject_unparseable(
        &mut self,
        source: Destination,
        data: &[u8],
        status: u16,
        reason: &str,
    ) {
        let Some(head_end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            return;
        };
        let head = String::from_utf8_lossy(data.get(..head_end).unwrap_or(&[]));
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or("");
        if first.starts_with("SIP/") || first.starts_with("ACK ") {
            return;
        }
        let mut response = Message {
            start: crate::sip::message::StartLine::Response {
                status,
                reason: if status == 400 {
                    sanitize_reason(reason)
                } else {
                    reason_phrase(status).to_owned()
                },
            },
            headers: Default::default(),
            body: Vec::new(),
        };
        let mut has_via = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = crate::sip::message::canonical_name(name.trim());
            if matches!(name, "Via" | "From" | "To" | "Call-ID" | "CSeq") {
                has_via |= name == "Via";
                response.headers.push(name, value.trim());
            }
        }
        if !has_via {
            return;
        }
        let destination = match response.top_via() {
            Ok(_) => response_destination(&response, source),
            Err(_) => source,
        };
        self.transmits.push_back((destination, response.to_bytes()));
    }

    pub(super) fn respond_stateless(
        &mut self,
        request: &Message,
        source: Destination,
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
    ) {
        let tag = self.rng.token(8);
        let mut response = request.response(status, reason, Some(&tag));
        for (name, value) in headers {
            response.headers.push(name, *value);
        }
        self.decorate_response(&mut response);
        self.transmits
            .push_back((response_destination(request, source), response.to_bytes()));
    }

    /// Sends a response with our standard headers on a server transaction.
    pub(super) fn respond(
        &mut self,
        key: &TxKey,
        request: &Message,
        status: u16,
        to_tag: Option<&str>,
    ) {
        let tag = match to_tag {
            Some(t) => t.to_owned(),
            None => self.rng.token(8),
        };
        let response = request.response(status, reason_phrase(status), Some(&tag));
        self.send_response(key, response);
    }

    pub(super) fn send_response(&mut self, key: &TxKey, mut response: Message) {
        self.decorate_response(&mut response);
        if let Err(error) = self.transactions.respond(self.now, key, response) {
            tracing::debug!(%error, "response not sent");
        }
        self.pump_transmits();
    }

    pub(super) fn decorate_response(&self, response: &mut Message) {
        self.stamp_session_id(response);
        if !response.headers.contains("Server") {
            response
                .headers
                .push("Server", self.config.user_agent.clone());
        }
        if response
            .status()
            .is_some_and(|s| s == 405 || (200..300).contains(&s))
            && !response.headers.contains("Allow")
        {
            response.headers.push("Allow", ALLOW);
        }
    }

    pub(super) fn pump_transmits(&mut self) {
        while let Some(t) = self.transactions.poll_transmit() {
            self.transmits.push_back((t.destination, t.data));
        }
    }

    /// Starts a client transaction for `request` towards `destination`, adding Via and the
    /// common headers, switching to TCP when a UDP request would be too large.
    pub(super) fn start_client_tx(
        &mut self,
        mut request: Message,
        mut destination: Destination,
        owner: TxOwner,
    ) -> Option<TxKey> {
        self.stamp_session_id(&mut request);
        if !request.headers.contains("User-Agent") {
            request
                .headers
                .push("User-Agent", self.config.user_agent.clone());
        }
        // We understand a=record from the other side (RFC 7866 6.1.2). Never `siprec` here:
        // ordinary calls must not look like recording sessions. We refresh sessions and
        // watch those the peer refreshes (RFC 4028), recording sessions too. A call may be
        // replaced by another (RFC 3891), which attended transfer needs.
        if request.method() == Some(&Method::Invite) {
            let call = !request.headers.has_token("Require", "siprec");
            let mut supported = Vec::new();
            if call {
                supported.extend(["record-aware", "replaces"]);
            }
            if !request.headers.has_token("Supported", "timer") {
                supported.push("timer");
            }
            if !supported.is_empty() {
                request.headers.push("Supported", supported.join(", "));
            }
        }
        let mut udp_if_tcp_fails = None;
        if destination.transport == Transport::Udp
            && request.to_bytes().len() + 100 > UDP_SIZE_LIMIT
            && self.listener(Transport::Tcp).is_some()
        {
            // RFC 3261 18.1.1; many peers listen on UDP only, so a refused connection
            // sends the request over UDP after all.
            udp_if_tcp_fails = Some((request.clone(), destination));
            destination.transport = Transport::Tcp;
        }
        let Some(via) = self.via_for(destination.transport) else {
            tracing::warn!(transport = %destination.transport, "no listener for transport");
            return None;
        };
        request.headers.insert_first("Via", via);
        match self
            .transactions
            .send_request(self.now, request, destination)
        {
            Ok(key) => {
                self.tx_owner.insert(key.clone(), owner);
                if let Some(fallback) = udp_if_tcp_fails {
                    self.udp_fallbacks.insert(key.clone(), fallback);
                }
                self.pump_transmits();
                Some(key)
            }
            Err(error) => {
                tracing::warn!(%error, "request not sent");
                None
            }
        }
    }

    /// A large request moved to TCP could not be sent that way (the peer does not listen on
    /// TCP): it goes over UDP as first asked, in a new transaction that takes the old one's
    /// place. Returns the new transaction, or None when there was nothing to fall back to.
    pub(super) fn fall_back_to_udp(&mut self, failed: &TxKey, owner: TxOwner) -> Option<TxKey> {
        let (mut request, destination) = self.udp_fallbacks.remove(failed)?;
        tracing::info!(%destination, "TCP refused for a large request: sending it over UDP");
        let via = self.via_for(destination.transport)?;
        request.headers.insert_first("Via", via);
        let key = match self
            .transactions
            .send_request(self.now, request, destination)
        {
            Ok(key) => key,
            Err(error) => {
                tracing::warn!(%error, "request not sent over UDP either");
                return None;
            }
        };
        self.tx_owner.insert(key.clone(), owner);
        self.pump_transmits();
        self.rekey_sessions(failed, &key);
        Some(key)
    }

    fn rekey_sessions(&mut self, old: &TxKey, new: &TxKey) {
        self.rekey_call_transaction(old, new);
        self.rekey_recording_transaction(old, new);
    }

    pub(super) fn listener(&self, transport: Transport) -> Option<SocketAddr> {
        self.config
            .listeners
            .iter()
            .find(|l| l.transport == transport)
            .map(|l| l.address)
    }

    /// Sends the ACK for a 2xx with a Via of its own and returns what was sent, which the
    /// session keeps to answer a retransmitted 2xx. None when no transport can carry it.
    pub(super) fn send_2xx_ack(
        &mut self,
        mut ack: Message,
        destination: Destination,
    ) -> Option<(Destination, Vec<u8>)> {
        let via = self.via_for(destination.transport)?;
        ack.headers.insert_first("Via", via);
        self.stamp_session_id(&mut ack);
        ack.headers
            .push("User-Agent", self.config.user_agent.clone());
        let bytes = ack.to_bytes();
        self.transmits.push_back((destination, bytes.clone()));
        Some((destination, bytes))
    }

    pub(super) fn via_for(&mut self, transport: Transport) -> Option<String> {
        let local = self.listener(transport)?;
        let branch = format!("z9hG4bK{}", self.rng.token(16));
        Some(format!(
            "SIP/2.0/{} {};branch={branch};rport",
            transport.via_token(),
            host_port(local)
        ))
    }

    /// Our Contact in a dialog or binding whose requests take the first hop `towards`: the
    /// address that hop sees us at when a registrar showed a NAT in between, else our own.
    pub(super) fn contact_towards(&self, towards: Destination, user: &str) -> String {
        // Another server of the same provider (SRV picks one at random, a cluster's other
        // node) sees us through the same NAT; a peer on this machine does not.
        let public = self.nat_public.get(&towards).copied().or_else(|| {
            (!towards.address.ip().is_loopback())
                .then(|| {
                    self.nat_public
                        .iter()
                        .find(|(hop, _)| hop.transport == towards.transport)
                        .map(|(_, public)| *public)
                })
                .flatten()
        });
        self.binding_contact(towards.transport, public, user)
    }

    /// Our Contact over `transport` at `public`, or at our own address.
    pub(super) fn binding_contact(
        &self,
        transport: Transport,
        public: Option<SocketAddr>,
        user: &str,
    ) -> String {
        match public {
            Some(public) => match transport {
                Transport::Udp => format!("<sip:{user}@{}>", host_port(public)),
                Transport::Tcp => format!("<sip:{user}@{};transport=tcp>", host_port(public)),
                Transport::Tls => format!("<sips:{user}@{}>", host_port(public)),
            },
            None => self.contact_for(transport, user),
        }
    }

    /// Our Contact for requests and responses sent over `transport`.
    pub(super) fn contact_for(&self, transport: Transport, user: &str) -> String {
        let Some(local) = self.listener(transport) else {
            return format!("<sip:{user}@invalid>");
        };
        match transport {
            Transport::Udp => format!("<sip:{user}@{}>", host_port(local)),
            Transport::Tcp => format!("<sip:{user}@{};transport=tcp>", host_port(local)),
            Transport::Tls => format!("<sips:{user}@{}>", host_port(local)),
        }
    }

    pub(super) fn local_ip(&self) -> IpAddr {
        self.config
            .listeners
            .first()
            .map(|l| l.address.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }

    /// Refuses a request whose session interval is under our minimum (RFC 4028 6).
    pub(super) fn refuse_session_too_small(&mut self, key: &TxKey, request: &Message, tag: &str) {
        let mut too_small = request.response(422, reason_phrase(422), Some(tag));
        too_small
            .headers
            .push("Min-SE", crate::sip::session_timer::MIN_SE.to_string());
        self.send_response(key, too_small);
    }
}

pub(super) fn host_port(address: SocketAddr) -> String {
    match address {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// A reason phrase must be one line of printable text.
pub(super) fn sanitize_reason(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(120)
        .collect();
    format!("Bad Request ({cleaned})")
}
