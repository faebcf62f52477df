//! UDP sockets for media, bound with socket2 so DSCP marking and buffer sizes are set before
//! the first packet.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;

use socket2::{Domain, Protocol, Socket, Type};

/// How a media socket is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaSocketOptions {
    /// DSCP code point (0..=63) for the IP header's TOS / traffic class.
    pub dscp: u8,
    /// SO_RCVBUF, 0 for the system default.
    pub recv_buffer: usize,
    /// SO_SNDBUF, 0 for the system default.
    pub send_buffer: usize,
}

/// Why no media socket could be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Every port of the range is taken.
    #[error("no free UDP port on {ip} in {first}..={last}")]
    NoFreePort {
        /// The address.
        ip: IpAddr,
        /// First port of the range.
        first: u16,
        /// Last port of the range.
        last: u16,
    },
    /// The requested address and port could not be bound.
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
}

/// Binds a non-blocking UDP socket on `addr` (port 0 for any) with `options` applied.
pub fn bind_udp(addr: SocketAddr, options: MediaSocketOptions) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let tos = u32::from(options.dscp) << 2;
    match addr {
        SocketAddr::V4(_) => socket.set_tos_v4(tos)?,
        SocketAddr::V6(_) => {
            socket.set_only_v6(true)?;
            socket.set_tclass_v6(tos)?;
        }
    }
    if options.recv_buffer > 0 {
        socket.set_recv_buffer_size(options.recv_buffer)?;
    }
    if options.send_buffer > 0 {
        socket.set_send_buffer_size(options.send_buffer)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Sends one datagram now on a non-blocking socket: a real `sendto` whatever the async
/// runtime last saw of the socket's readiness (tokio's `try_send_to` refuses without trying
/// until its reactor has seen the socket writable). A full socket buffer is `WouldBlock`,
/// and the datagram is the caller's to drop.
pub fn send_now(socket: &impl std::os::fd::AsFd, data: &[u8], to: SocketAddr) -> io::Result<usize> {
    socket2::SockRef::from(socket).send_to(data, &to.into())
}

/// Binds a media socket on `ip`, on the given port if it is non-zero, else on a free port of
/// `range`, trying them from a random starting point.
pub fn bind_media(
    ip: IpAddr,
    port: u16,
    range: RangeInclusive<u16>,
    options: MediaSocketOptions,
) -> Result<UdpSocket, BindError> {
    if port != 0 {
        let addr = SocketAddr::new(ip, port);
        return bind_udp(addr, options).map_err(|source| BindError::Bind { addr, source });
    }
    let (first, last) = (*range.start(), *range.end());
    let span = u32::from(last - first) + 1;
    let start = rand::random::<u32>() % span;
    for i in 0..span {
        let port = first + ((start + i) % span) as u16;
        let addr = SocketAddr::new(ip, port);
        match bind_udp(addr, options) {
            Ok(socket) => return Ok(socket),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(source) => return Err(BindError::Bind { addr, source }),
        }
    }
    Err(BindError::NoFreePort { ip, first, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: MediaSocketOptions = MediaSocketOptions {
        dscp: 46,
        recv_buffer: 1 << 16,
        send_buffer: 1 << 16,
    };

    #[test]
    fn marks_dscp_and_stays_in_range() {
        let s = bind_media("127.0.0.1".parse().unwrap(), 0, 47000..=47010, OPTIONS).unwrap();
        let port = s.local_addr().unwrap().port();
        assert!((47000..=47010).contains(&port));
        let tos = Socket::from(s).tos_v4().unwrap();
        assert_eq!(tos >> 2, 46);
        let s6 = bind_media("::1".parse().unwrap(), 0, 47000..=47010, OPTIONS).unwrap();
        assert!(s6.local_addr().unwrap().is_ipv6());
    }

    #[test]
    fn a_full_range_is_a_clear_error() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let taken = bind_udp(SocketAddr::new(ip, 0), OPTIONS).unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = bind_media(ip, 0, port..=port, OPTIONS).unwrap_err();
        assert!(matches!(err, BindError::NoFreePort { .. }), "{err}");
        assert!(err.to_string().contains(&format!("{port}..={port}")));
    }
}
