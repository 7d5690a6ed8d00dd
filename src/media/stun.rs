//! STUN Binding (RFC 8489) from a media socket: how a NAT maps it, so that the SDP names the
//! address the far end can reach. Sans-IO: [`BindingTransaction`] says what to send and when,
//! and reads what comes back; the driver moves the bytes.
//!
//! Only what a client needs for Binding is here: the request (no attributes, so any server
//! answers it without credentials), the success response's XOR-MAPPED-ADDRESS (or the
//! MAPPED-ADDRESS of RFC 3489 servers), and the error response's ERROR-CODE.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_LEN: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;
const MAPPED_ADDRESS: u16 = 0x0001;
const ERROR_CODE: u16 = 0x0009;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const FAMILY_IPV4: u8 = 0x01;
const FAMILY_IPV6: u8 = 0x02;

/// RFC 8489 6.2.1's initial retransmission timeout, doubled after each try.
const INITIAL_RTO: Duration = Duration::from_millis(500);
/// How long RTCP's answer is waited for once RTP has its own: the call should not wait the
/// whole give-up time for the socket that matters less.
const RTCP_GRACE: Duration = Duration::from_millis(200);

pub type TransactionId = [u8; 12];

/// RFC 7983's demultiplexing: a datagram whose first byte is 0 to 3 is STUN, not RTP or RTCP.
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|first| *first <= 3)
        && datagram.len() >= HEADER_LEN
        && datagram.get(4..8) == Some(&MAGIC_COOKIE.to_be_bytes()[..])
}

/// A Binding request with no attributes.
pub fn binding_request(transaction: &TransactionId) -> Vec<u8> {
    let mut message = Vec::with_capacity(HEADER_LEN);
    message.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    message.extend_from_slice(&0u16.to_be_bytes());
    message.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    message.extend_from_slice(transaction);
    message
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    #[error("not a STUN message")]
    NotStun,
    #[error("a STUN message of {0} bytes whose header says otherwise")]
    Truncated(usize),
    #[error("an answer to another request")]
    OtherTransaction,
    #[error("STUN message type {0:#06x} is not an answer to Binding")]
    NotBindingAnswer(u16),
    #[error("the STUN server refused: {code} {reason}")]
    Refused { code: u16, reason: String },
    #[error("the STUN server's answer names no mapped address")]
    NoMappedAddress,
    #[error("the STUN server's answer has a mapped address that cannot be read")]
    BadAddress,
}

/// Reads a Binding response to `transaction`: the mapped address of a success, the code and
/// reason of an error.
pub fn parse_binding_response(
    message: &[u8],
    transaction: &TransactionId,
) -> Result<SocketAddr, StunError> {
    let Some(([type_high, type_low, length_high, length_low], rest)) = message
        .split_first_chunk::<4>()
        .filter(|_| is_stun(message))
    else {
        return Err(StunError::NotStun);
    };
    // The transaction first: a datagram that does not know it cannot end the request,
    // however broken it is.
    if rest.get(4..16) != Some(&transaction[..]) {
        return Err(StunError::OtherTransaction);
    }
    let message_type = u16::from_be_bytes([*type_high, *type_low]);
    let length = usize::from(u16::from_be_bytes([*length_high, *length_low]));
    if length % 4 != 0 || message.len() != HEADER_LEN + length {
        return Err(StunError::Truncated(message.len()));
    }
    let attributes = message.get(HEADER_LEN..).unwrap_or_default();
    let mut mapped = None;
    let mut xor_mapped = None;
    let mut error = None;
    // RFC 8489 14: of an attribute given twice, the first counts.
    for (kind, value) in Attributes(attributes) {
        match kind {
            XOR_MAPPED_ADDRESS if xor_mapped.is_none() => {
                xor_mapped = Some(read_address(value, Some(transaction)));
            }
            MAPPED_ADDRESS if mapped.is_none() => mapped = Some(read_address(value, None)),
            ERROR_CODE if error.is_none() => error = Some(read_error(value)),
            _ => {}
        }
    }
    match message_type {
        BINDING_SUCCESS => xor_mapped
            .or(mapped)
            .ok_or(StunError::NoMappedAddress)?
            .ok_or(StunError::BadAddress),
        BINDING_ERROR => Err(error.unwrap_or(StunError::Refused {
            code: 0,
            reason: "no ERROR-CODE".into(),
        })),
        other => Err(StunError::NotBindingAnswer(other)),
    }
}

/// The attributes of a message body: type and value, each padded to four bytes.
struct Attributes<'a>(&'a [u8]);

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let ([kind_high, kind_low, length_high, length_low], _) = self.0.split_first_chunk()?;
        let kind = u16::from_be_bytes([*kind_high, *kind_low]);
        let length = usize::from(u16::from_be_bytes([*length_high, *length_low]));
        let value = self.0.get(4..4 + length)?;
        let padded = (4 + length).next_multiple_of(4);
        self.0 = self.0.get(padded..).unwrap_or_default();
        Some((kind, value))
    }
}

/// A (XOR-)MAPPED-ADDRESS value; `transaction` given for the XOR form.
fn read_address(value: &[u8], transaction: Option<&TransactionId>) -> Option<SocketAddr> {
    let family = *value.get(1)?;
    let mut port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]);
    // The XOR form masks the address with the cookie, then (IPv6) the transaction ID.
    let mask: Vec<u8> = match transaction {
        Some(transaction) => {
            port ^= (MAGIC_COOKIE >> 16) as u16;
            MAGIC_COOKIE
                .to_be_bytes()
                .iter()
                .chain(transaction)
                .copied()
                .collect()
        }
        None => vec![0; 16],
    };
    let unmask = |bytes: &[u8], out: &mut [u8]| {
        for ((out, byte), mask) in out.iter_mut().zip(bytes).zip(&mask) {
            *out = byte ^ mask;
        }
    };
    let ip = match family {
        FAMILY_IPV4 => {
            let mut octets = [0u8; 4];
            unmask(value.get(4..8)?, &mut octets);
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        FAMILY_IPV6 => {
            let mut octets = [0u8; 16];
            unmask(value.get(4..20)?, &mut octets);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn read_error(value: &[u8]) -> StunError {
    let class = value.get(2).map_or(0, |c| u16::from(c & 0x07));
    let number = value.get(3).map_or(0, |n| u16::from(*n));
    let reason = value
        .get(4..)
        .map(|r| String::from_utf8_lossy(r).trim().to_owned())
        .unwrap_or_default();
    StunError::Refused {
        code: class * 100 + number,
        reason,
    }
}

/// One Binding request to one server, retransmitted as RFC 8489 6.2.1 says (500 ms, then
/// doubling) but given up after `give_up_after`: a call should not wait 40 s for a STUN
/// server that is gone.
#[derive(Debug)]
pub struct BindingTransaction {
    transaction: TransactionId,
    server: SocketAddr,
    next_send: Instant,
    rto: Duration,
    deadline: Instant,
}

/// What the transaction wants done now.
#[derive(Debug, PartialEq, Eq)]
pub enum BindingStep {
    /// Send this request to the server.
    Send(Vec<u8>, SocketAddr),
    /// Wait (until [`BindingTransaction::next_timeout`] or a datagram).
    Wait,
    /// No answer in time.
    GaveUp,
}

impl BindingTransaction {
    pub fn new(
        server: SocketAddr,
        transaction: TransactionId,
        now: Instant,
        give_up_after: Duration,
    ) -> BindingTransaction {
        BindingTransaction {
            transaction,
            server,
            next_send: now,
            rto: INITIAL_RTO,
            deadline: now + give_up_after,
        }
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The request to send now, if one is due, or whether the transaction has given up.
    pub fn poll(&mut self, now: Instant) -> BindingStep {
        if now >= self.deadline {
            return BindingStep::GaveUp;
        }
        if now < self.next_send {
            return BindingStep::Wait;
        }
        self.next_send = now + self.rto;
        self.rto *= 2;
        BindingStep::Send(binding_request(&self.transaction), self.server)
    }

    /// When [`poll`](Self::poll) has something new to say.
    pub fn next_timeout(&self) -> Instant {
        self.next_send.min(self.deadline)
    }

    /// Reads a datagram that arrived on the socket: `None` when it is not this transaction's
    /// answer (RTP, another server, another request), else the mapped address or why not.
    pub fn receive(
        &self,
        datagram: &[u8],
        from: SocketAddr,
    ) -> Option<Result<SocketAddr, StunError>> {
        if from != self.server || !is_stun(datagram) {
            return None;
        }
        match parse_binding_response(datagram, &self.transaction) {
            Err(StunError::OtherTransaction) => None,
            answer => Some(answer),
        }
    }
}

/// How a NAT maps a call's RTP/RTCP socket pair: one Binding transaction from each socket
/// to the same server. RTP's answer is what matters; RTCP's is kept when it came.
#[derive(Debug)]
pub struct SocketPairMapping {
    rtp: Side,
    rtcp: Side,
    /// When RTP's answer came.
    rtp_done_at: Option<Instant>,
}

#[derive(Debug)]
enum Side {
    Asking(BindingTransaction),
    Mapped(SocketAddr),
    Failed(String),
}

impl Side {
    fn is_done(&self) -> bool {
        !matches!(self, Side::Asking(_))
    }
}

/// A request one of the pair's sockets should send now.
#[derive(Debug, PartialEq, Eq)]
pub struct PairRequest {
    pub rtcp: bool,
    pub request: Vec<u8>,
    pub to: SocketAddr,
}

/// What [`SocketPairMapping`] learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairOutcome {
    /// Where the server saw the RTP socket, or why it did not say.
    pub rtp: Result<SocketAddr, String>,
    /// Where it saw the RTCP socket, when it said.
    pub rtcp: Option<SocketAddr>,
}

impl SocketPairMapping {
    /// `ids`: the RTP and RTCP transactions' IDs, random (RFC 8489 6: cryptographically
    /// random, so an off-path attacker cannot answer for the server).
    pub fn new(
        server: SocketAddr,
        ids: [TransactionId; 2],
        now: Instant,
        give_up_after: Duration,
    ) -> SocketPairMapping {
        let [rtp, rtcp] = ids;
        SocketPairMapping {
            rtp: Side::Asking(BindingTransaction::new(server, rtp, now, give_up_after)),
            rtcp: Side::Asking(BindingTransaction::new(server, rtcp, now, give_up_after)),
            rtp_done_at: None,
        }
    }

    /// The requests due now; a side that has waited long enough gives up.
    pub fn poll(&mut self, now: Instant) -> Vec<PairRequest> {
        if let (Some(done), Side::Asking(transaction)) = (self.rtp_done_at, &self.rtcp)
            && now >= done + RTCP_GRACE
        {
            self.rtcp = Side::Failed(format!(
                "no answer for RTCP from the STUN server {}",
                transaction.server()
            ));
        }
        let mut due = Vec::new();
        for (rtcp, side) in [(false, &mut self.rtp), (true, &mut self.rtcp)] {
            let Side::Asking(transaction) = side else {
                continue;
            };
            match transaction.poll(now) {
                BindingStep::Send(request, to) => due.push(PairRequest { rtcp, request, to }),
                BindingStep::Wait => {}
                BindingStep::GaveUp => {
                    *side = Side::Failed(format!(
                        "no answer from the STUN server {}",
                        transaction.server()
                    ));
                }
            }
        }
        due
    }

    /// Takes a datagram that arrived on either socket at `now`: true when it was an answer
    /// to one of the pair's requests (so it is not media).
    pub fn receive(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) -> bool {
        for (rtcp, side) in [(false, &mut self.rtp), (true, &mut self.rtcp)] {
            let Side::Asking(transaction) = side else {
                continue;
            };
            if let Some(answer) = transaction.receive(datagram, from) {
                *side = match answer {
                    Ok(mapped) => Side::Mapped(mapped),
                    Err(error) => Side::Failed(error.to_string()),
                };
                if !rtcp {
                    self.rtp_done_at = Some(now);
                }
                return true;
            }
        }
        false
    }

    /// Both sides answered or gave up: what was learnt.
    pub fn outcome(&self) -> Option<PairOutcome> {
        if !(self.rtp.is_done() && self.rtcp.is_done()) {
            return None;
        }
        let rtp = match &self.rtp {
            Side::Mapped(mapped) => Ok(*mapped),
            Side::Failed(reason) => Err(reason.clone()),
            Side::Asking(_) => return None,
        };
        let rtcp = match &self.rtcp {
            Side::Mapped(mapped) => Some(*mapped),
            _ => None,
        };
        Some(PairOutcome { rtp, rtcp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: TransactionId = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    fn response(message_type: u16, attributes: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attributes {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut message = Vec::new();
        message.extend_from_slice(&message_type.to_be_bytes());
        message.extend_from_slice(&(body.len() as u16).to_be_bytes());
        message.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        message.extend_from_slice(&ID);
        message.extend_from_slice(&body);
        message
    }

    /// The XOR-MAPPED-ADDRESS value of 192.0.2.1:32853 from RFC 5769 2.2's test vector.
    fn rfc5769_ipv4_value() -> Vec<u8> {
        vec![0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43]
    }

    #[test]
    fn the_request_is_a_bare_binding_with_the_magic_cookie() {
        let request = binding_request(&ID);
        assert_eq!(request.len(), 20);
        assert_eq!(&request[..4], &[0x00, 0x01, 0x00, 0x00]);
        assert_eq!(&request[4..8], &[0x21, 0x12, 0xa4, 0x42]);
        assert_eq!(&request[8..], &ID);
        assert!(is_stun(&request));
    }

    #[test]
    fn the_rfc5769_xor_mapped_addresses_read_back() {
        let answer = response(
            BINDING_SUCCESS,
            &[(XOR_MAPPED_ADDRESS, rfc5769_ipv4_value())],
        );
        assert_eq!(
            parse_binding_response(&answer, &ID),
            Ok("192.0.2.1:32853".parse().unwrap())
        );
        // RFC 5769 2.3: 2001:db8:1234:5678:11:2233:4455:6677 port 32853, with that vector's
        // transaction ID.
        let id: TransactionId = [
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ];
        let value = [
            0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25,
            0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
        ];
        assert_eq!(
            read_address(&value, Some(&id)),
            Some(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .unwrap()
            )
        );
    }

    #[test]
    fn an_old_server_s_mapped_address_is_taken_when_there_is_no_xor_form() {
        let plain = vec![0x00, 0x01, 0x1f, 0x90, 203, 0, 113, 7];
        let answer = response(BINDING_SUCCESS, &[(MAPPED_ADDRESS, plain)]);
        assert_eq!(
            parse_binding_response(&answer, &ID),
            Ok("203.0.113.7:8080".parse().unwrap())
        );
        // With both, the XOR form wins (a NAT rewriting addresses in payloads misses it).
        let both = response(
            BINDING_SUCCESS,
            &[
                (MAPPED_ADDRESS, vec![0x00, 0x01, 0, 1, 10, 0, 0, 1]),
                (XOR_MAPPED_ADDRESS, rfc5769_ipv4_value()),
            ],
        );
        assert_eq!(
            parse_binding_response(&both, &ID),
            Ok("192.0.2.1:32853".parse().unwrap())
        );
    }

    fn answer_with_id() -> Vec<u8> {
        response(
            BINDING_SUCCESS,
            &[(XOR_MAPPED_ADDRESS, rfc5769_ipv4_value())],
        )
    }

    #[test]
    fn a_broken_datagram_without_the_transaction_id_does_not_end_the_request() {
        let mut spoofed = answer_with_id();
        spoofed.truncate(20);
        spoofed[3] = 4;
        spoofed[8] ^= 0xff;
        assert_eq!(
            parse_binding_response(&spoofed, &ID),
            Err(StunError::OtherTransaction)
        );
        let mut trailing = answer_with_id();
        trailing.extend_from_slice(&[0; 4]);
        assert_eq!(
            parse_binding_response(&trailing, &ID),
            Err(StunError::Truncated(36))
        );
    }

    #[test]
    fn errors_and_broken_answers_say_what_is_wrong() {
        let mut code = vec![0, 0, 4, 20];
        code.extend_from_slice(b"Unknown Attribute");
        let refused = response(BINDING_ERROR, &[(ERROR_CODE, code)]);
        assert_eq!(
            parse_binding_response(&refused, &ID),
            Err(StunError::Refused {
                code: 420,
                reason: "Unknown Attribute".into()
            })
        );
        let empty = response(BINDING_SUCCESS, &[]);
        assert_eq!(
            parse_binding_response(&empty, &ID),
            Err(StunError::NoMappedAddress)
        );
        let other = response(
            BINDING_SUCCESS,
            &[(XOR_MAPPED_ADDRESS, rfc5769_ipv4_value())],
        );
        assert_eq!(
            parse_binding_response(&other, &[0; 12]),
            Err(StunError::OtherTransaction)
        );
        let mut cut = answer_with_id();
        cut.truncate(26);
        assert_eq!(
            parse_binding_response(&cut, &ID),
            Err(StunError::Truncated(26))
        );
        let odd_family = response(BINDING_SUCCESS, &[(XOR_MAPPED_ADDRESS, vec![0, 7, 0, 0])]);
        assert_eq!(
            parse_binding_response(&odd_family, &ID),
            Err(StunError::BadAddress)
        );
        // RTP is not STUN: its first byte is 0x80 or more.
        assert!(!is_stun(&[0x80; 172]));
        assert_eq!(
            parse_binding_response(&[0x80; 172], &ID),
            Err(StunError::NotStun)
        );
    }

    #[test]
    fn any_bytes_are_read_without_panicking() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8489);
        let valid = response(
            BINDING_SUCCESS,
            &[(XOR_MAPPED_ADDRESS, rfc5769_ipv4_value())],
        );
        for _ in 0..5000 {
            let mut message = valid.clone();
            let flips = rng.random_range(1..6);
            for _ in 0..flips {
                let at = rng.random_range(0..message.len());
                message[at] = rng.random();
            }
            message.truncate(rng.random_range(0..=message.len()));
            let _ = parse_binding_response(&message, &ID);
        }
    }

    #[test]
    fn the_request_is_retransmitted_doubling_and_given_up_at_the_deadline() {
        let start = Instant::now();
        let server: SocketAddr = "10.0.0.1:3478".parse().unwrap();
        let mut binding = BindingTransaction::new(server, ID, start, Duration::from_secs(2));
        let ms = |n| start + Duration::from_millis(n);
        let mut sent = Vec::new();
        for now in (0..=2500).step_by(10).map(ms) {
            match binding.poll(now) {
                BindingStep::Send(request, to) => {
                    assert_eq!((request, to), (binding_request(&ID), server));
                    sent.push(now.duration_since(start).as_millis());
                }
                BindingStep::Wait => assert!(binding.next_timeout() > now),
                BindingStep::GaveUp => {
                    assert_eq!(now, ms(2000));
                    break;
                }
            }
        }
        assert_eq!(sent, [0, 500, 1500]);
    }

    #[test]
    fn only_the_server_s_answer_to_this_request_ends_the_transaction() {
        let server: SocketAddr = "10.0.0.1:3478".parse().unwrap();
        let binding = BindingTransaction::new(server, ID, Instant::now(), Duration::from_secs(2));
        let answer = response(
            BINDING_SUCCESS,
            &[(XOR_MAPPED_ADDRESS, rfc5769_ipv4_value())],
        );
        assert_eq!(
            binding.receive(&answer, "10.0.0.9:3478".parse().unwrap()),
            None
        );
        assert_eq!(binding.receive(&[0x80; 172], server), None);
        let mut other = answer.clone();
        other[8] ^= 1;
        assert_eq!(binding.receive(&other, server), None);
        assert_eq!(
            binding.receive(&answer, server),
            Some(Ok("192.0.2.1:32853".parse().unwrap()))
        );
    }

    #[test]
    fn a_socket_pair_is_mapped_when_both_answer_or_gives_up_on_a_silent_side() {
        let start = Instant::now();
        let server: SocketAddr = "10.0.0.1:3478".parse().unwrap();
        let rtcp_id: TransactionId = [9; 12];
        let mut pair = SocketPairMapping::new(server, [ID, rtcp_id], start, Duration::from_secs(2));
        let first = pair.poll(start);
        assert_eq!(first.len(), 2);
        assert_eq!((first[0].rtcp, first[1].rtcp), (false, true));
        assert_eq!(first[1].request, binding_request(&rtcp_id));
        assert!(
            !pair.receive(&[0x80; 172], server, start),
            "RTP is left alone"
        );
        let answer = answer_with_id();
        let answered = start + Duration::from_millis(400);
        assert!(pair.receive(&answer, server, answered));
        assert_eq!(pair.outcome(), None, "RTCP has not answered yet");
        assert!(
            !pair.receive(&answer, server, answered),
            "an answer is taken once"
        );
        // RTCP hears nothing: it is asked again, then given up 200 ms after RTP's answer,
        // long before the deadline.
        let again = pair.poll(start + Duration::from_millis(500));
        assert_eq!(again.len(), 1);
        assert!(again[0].rtcp);
        assert_eq!(pair.poll(start + Duration::from_millis(590)), []);
        assert_eq!(pair.outcome(), None);
        assert_eq!(pair.poll(start + Duration::from_millis(600)), []);
        assert_eq!(
            pair.outcome(),
            Some(PairOutcome {
                rtp: Ok("192.0.2.1:32853".parse().unwrap()),
                rtcp: None
            })
        );
    }
}
