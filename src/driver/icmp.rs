//! ICMP errors on a UDP socket that is not connected. Linux reports them only when asked
//! (IP_RECVERR), in an error queue read apart from the data: a recorder whose process is gone
//! answers our media with "port unreachable", which tells us at once what probes would only
//! tell in seconds.

use core::net::SocketAddr;

use tokio::net::UdpSocket;

/// Asks the kernel to queue the socket's ICMP errors for [`unreachable_destinations`].
#[cfg(target_os = "linux")]
pub fn report_icmp_errors(socket: &UdpSocket) -> std::io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    let result = match socket.local_addr()? {
        SocketAddr::V4(_) => setsockopt(socket, sockopt::Ipv4RecvErr, &true),
        SocketAddr::V6(_) => setsockopt(socket, sockopt::Ipv6RecvErr, &true),
    };
    result.map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
pub fn report_icmp_errors(_socket: &UdpSocket) -> std::io::Result<()> {
    Ok(())
}

/// Empties the socket's error queue; returns the destinations an ICMP error said cannot be
/// reached (the packets' own destinations, not the hosts that reported it).
#[cfg(target_os = "linux")]
pub fn unreachable_destinations(socket: &UdpSocket) -> Vec<SocketAddr> {
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{MsgFlags, SockaddrStorage, recvmsg};

    let mut found = Vec::new();
    let mut data = [0u8; 64];
    let mut control = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
    // Bounded: the queue holds at most a socket buffer's worth.
    for _ in 0..64 {
        let mut iov = [IoSliceMut::new(&mut data)];
        let received = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        );
        let Ok(message) = received else {
            break;
        };
        let destination = message.address.and_then(|address| {
            address
                .as_sockaddr_in()
                .map(|v4| SocketAddr::from((v4.ip(), v4.port())))
                .or_else(|| {
                    address
                        .as_sockaddr_in6()
                        .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
                })
        });
        if let Some(destination) = destination
            && !found.contains(&destination)
        {
            found.push(destination);
        }
    }
    found
}

#[cfg(not(target_os = "linux"))]
pub fn unreachable_destinations(_socket: &UdpSocket) -> Vec<SocketAddr> {
    Vec::new()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A datagram to a closed port on loopback comes back as ICMP port unreachable.
    #[tokio::test]
    async fn a_closed_port_on_loopback_is_reported_unreachable() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let gone = closed.local_addr().unwrap();
        drop(closed);
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        report_icmp_errors(&socket).unwrap();
        socket.send_to(b"rtp", gone).await.unwrap();
        let mut buffer = [0u8; 16];
        let error = tokio::time::timeout(
            core::time::Duration::from_secs(2),
            socket.recv_from(&mut buffer),
        )
        .await
        .unwrap()
        .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(unreachable_destinations(&socket), vec![gone]);
        assert!(
            unreachable_destinations(&socket).is_empty(),
            "the queue is empty"
        );
    }
}
