//! The driver's side of STUN: finding the server, and the calls waiting on its answers. The
//! protocol is [`crate::media::stun`].

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use crate::media::stun::SocketPairMapping;

/// How long a call waits for the STUN server before its SDP names the local address: three
/// requests (at 0, 0.5 and 1.5 s) and half a second more for the last answer.
pub(super) const GIVE_UP_AFTER: Duration = Duration::from_secs(2);

/// RFC 8489 18.6's default port for STUN over UDP.
const DEFAULT_PORT: u16 = 3478;

/// A call's socket pair asking the STUN server, and the front end waiting for its port.
pub(super) struct Gathering {
    pub mapping: SocketPairMapping,
    pub port: u16,
    pub reply: tokio::sync::oneshot::Sender<Result<u16, String>>,
}

/// The server's address from `host`, `host:port`, `ip` or `[ipv6]:port`, of the family of
/// `media_ip` (which the media sockets are bound to); a name that does not resolve leaves
/// the calls without STUN (said in the log) rather than the phone without calls.
pub(super) async fn resolve(server: &str, media_ip: IpAddr) -> Option<SocketAddr> {
    let with_port = if server.parse::<SocketAddr>().is_ok() || has_port(server) {
        server.to_owned()
    } else {
        let host = server.trim_start_matches('[').trim_end_matches(']');
        if host.contains(':') {
            format!("[{host}]:{DEFAULT_PORT}")
        } else {
            format!("{host}:{DEFAULT_PORT}")
        }
    };
    match tokio::net::lookup_host(&with_port).await {
        Ok(mut addresses) => {
            let found = addresses.find(|a| a.is_ipv4() == media_ip.is_ipv4());
            if found.is_none() {
                tracing::warn!(
                    server,
                    %media_ip,
                    "the STUN server has no address of the media's family; calls go without"
                );
            }
            found
        }
        Err(error) => {
            tracing::warn!(server, %error, "the STUN server cannot be found; calls go without");
            None
        }
    }
}

/// `host:port` (one colon, a number after it) or `[v6]:port`.
fn has_port(server: &str) -> bool {
    let Some((host, port)) = server.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

    #[tokio::test]
    async fn a_server_without_a_port_gets_stun_s_default() {
        assert_eq!(
            resolve("127.0.0.1", V4).await,
            Some("127.0.0.1:3478".parse().unwrap())
        );
        assert_eq!(
            resolve("127.0.0.1:19302", V4).await,
            Some("127.0.0.1:19302".parse().unwrap())
        );
        assert_eq!(
            resolve("::1", V6).await,
            Some("[::1]:3478".parse().unwrap())
        );
        assert_eq!(
            resolve("[::1]:5349", V6).await,
            Some("[::1]:5349".parse().unwrap())
        );
        assert_eq!(resolve("localhost:notaport", V4).await, None);
    }

    #[tokio::test]
    async fn only_an_address_the_media_sockets_can_reach_is_taken() {
        // IPv4 media sockets cannot send to an IPv6 server.
        assert_eq!(resolve("::1", V4).await, None);
        assert_eq!(resolve("127.0.0.1", V6).await, None);
    }
}
