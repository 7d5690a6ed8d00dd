//! The call's offer/answer setup: the SRTP policy a hop allows, and applying what was agreed.

use super::*;

/// Whether `peer` is on this machine or, as far as addresses tell, our own network: loopback,
/// link-local, or the same /24 (IPv4) or /64 (IPv6) as `local`.
fn on_our_network(local: core::net::IpAddr, peer: core::net::IpAddr) -> bool {
    use core::net::IpAddr;
    match (local, peer) {
        _ if peer.is_loopback() => true,
        (IpAddr::V4(local), IpAddr::V4(peer)) => {
            peer.is_link_local() || local.octets()[..3] == peer.octets()[..3]
        }
        (IpAddr::V6(local), IpAddr::V6(peer)) => {
            peer.is_unicast_link_local() || local.segments()[..4] == peer.segments()[..4]
        }
        _ => false,
    }
}

/// Where a NAT maps a call's media sockets, as a STUN server saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::engine) struct MappedMedia {
    pub rtp: core::net::SocketAddr,
    pub rtcp: Option<core::net::SocketAddr>,
}

impl Engine {
    /// The SRTP policy for a call under `policy` whose signalling goes through `hop`. SDES
    /// puts the keys in the SDP, so a hop anyone else can read gets no keys: SRTP is dropped
    /// where it is optional, and the call refused where it is mandatory.
    pub(super) fn srtp_policy_of(
        &self,
        policy: SrtpPolicy,
        hop: Destination,
    ) -> Result<SrtpPolicy, String> {
        match policy {
            _ if hop.is_confidential() => Ok(policy),
            SrtpPolicy::Mandatory => Err(format!(
                "SRTP is mandatory, but its keys would travel in the clear over {} to {}: \
                 use TLS (a sips: URI or transport tls)",
                hop.transport, hop.address
            )),
            _ => Ok(SrtpPolicy::Off),
        }
    }

    /// A new offer/answer for a call whose media arrives at `media_port`; with `public`,
    /// the call's SDP names where a STUN server saw its sockets instead.
    pub(super) fn new_offer_answer(
        &mut self,
        media_port: u16,
        srtp: SrtpPolicy,
        public: Option<MappedMedia>,
    ) -> OfferAnswer {
        let key = match srtp {
            SrtpPolicy::Off => None,
            _ => self.config.key_source.key_salt(),
        };
        let mut caps =
            LocalCapabilities::new(self.local_ip(), media_port, self.config.codecs.clone());
        if let Some(public) = public {
            caps.address = public.rtp.ip();
            caps.audio_port = public.rtp.port();
            caps.rtcp = public.rtcp;
        }
        caps.srtp = srtp;
        caps.srtp_key_salt = key;
        // RFC 4566 suggests an NTP timestamp for the session id; a random one serves the same
        // purpose (uniqueness) without a clock.
        let session_id = self.rng.next_u64() >> 2;
        OfferAnswer::new(caps, session_id, session_id)
    }

    /// Where a STUN server saw the call's media, when its signalling takes `hop` beyond our
    /// own network: a peer on this machine or our LAN reaches the local address, and many
    /// routers do not loop back to their own public address.
    pub(super) fn public_media(&self, call: CallId, hop: Destination) -> Option<MappedMedia> {
        if on_our_network(self.local_ip(), hop.address.ip()) {
            return None;
        }
        self.media_public.get(&call).copied()
    }

    /// Applies a completed offer/answer: the peer's hold state, the call state, and the media
    /// the driver should now use.
    pub(super) fn apply_negotiated(&mut self, id: CallId, negotiated: Negotiated) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.remote_hold = negotiated.remote_on_hold;
        call.state = CallState::Connected {
            local_hold: call.local_hold,
            remote_hold: call.remote_hold,
        };
        let state = call.state;
        self.events.push_back(Event::CallState { call: id, state });
        self.on_media_negotiated(id, negotiated);
    }
}
