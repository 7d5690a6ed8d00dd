//! The three SIP transports and the address a message travels to.

use core::fmt;
use core::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
    }

    /// Reliable transports need no retransmissions and no Timer D/K/I waits (RFC 3261 17).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The token used in Via headers (`SIP/2.0/UDP`).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// Parses a `transport=` URI parameter or the transport part of a Via.
    pub fn from_token(token: &str) -> Option<Transport> {
        if token.eq_ignore_ascii_case("udp") {
            Some(Transport::Udp)
        } else if token.eq_ignore_ascii_case("tcp") {
            Some(Transport::Tcp)
        } else if token.eq_ignore_ascii_case("tls") {
            Some(Transport::Tls)
        } else {
            None
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        })
    }
}

/// Where a message goes (or came from): one transport and one socket address. Over TCP and TLS
/// this names the connection too, because the driver keeps one connection per peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    pub transport: Transport,
    pub address: SocketAddr,
}

impl Destination {
    pub fn new(transport: Transport, address: SocketAddr) -> Destination {
        Destination { transport, address }
    }

    /// Whether what is sent here is seen by nobody but the peer: over TLS, or over loopback,
    /// which never leaves this machine. SRTP keys (SDES) travel in SDP only on such a hop.
    pub fn is_confidential(&self) -> bool {
        self.transport == Transport::Tls || self.address.ip().is_loopback()
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.address)
    }
}
