//! The daemon's own sockets, as a peer or producer address would name them: a datagram from
//! one of them, or a candidate pointing at one, would make srtpd talk to itself (a media
//! loop at wire speed). Shared by every worker and the control plane; the per-packet check
//! is one atomic load.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

/// The UDP ports the daemon has bound (counted: a port may be bound on IPv4 and IPv6) and
/// the machine's interfaces: their own addresses and their broadcast addresses.
pub struct OwnSockets {
    ports: Box<[AtomicU16]>,
    /// The interfaces, as last listed.
    interfaces: RwLock<Interfaces>,
}

/// The machine's interfaces as listed at `at`.
#[derive(Default)]
struct Interfaces {
    addresses: Vec<IpAddr>,
    broadcasts: Vec<Ipv4Addr>,
    at: Option<Instant>,
}

/// The broadcast address of the IPv4 loopback network, which `lo` does not list.
const LOOPBACK_BROADCAST: Ipv4Addr = Ipv4Addr::new(127, 255, 255, 255);

impl Default for OwnSockets {
    fn default() -> Self {
        OwnSockets {
            ports: (0..=u16::MAX).map(|_| AtomicU16::new(0)).collect(),
            interfaces: RwLock::new(Interfaces::default()),
        }
    }
}

impl std::fmt::Debug for OwnSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnSockets").finish_non_exhaustive()
    }
}

impl OwnSockets {
    /// A socket was bound on `port`.
    pub fn claim(&self, port: u16) {
        self.ports[usize::from(port)].fetch_add(1, Ordering::Relaxed);
    }

    /// A socket bound on `port` was closed.
    pub fn release(&self, port: u16) {
        let _ =
            self.ports[usize::from(port)]
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// The machine's addresses (its interfaces'), besides loopback and unspecified, and
    /// their broadcast addresses, as listed at `now`.
    pub fn set_addresses(&self, addresses: Vec<IpAddr>, broadcasts: Vec<Ipv4Addr>, now: Instant) {
        *self.interfaces.write().unwrap_or_else(|e| e.into_inner()) = Interfaces {
            addresses,
            broadcasts,
            at: Some(now),
        };
    }

    /// When the addresses were last set.
    pub fn addresses_set_at(&self) -> Option<Instant> {
        self.interfaces.read().unwrap_or_else(|e| e.into_inner()).at
    }

    /// Whether `ip` is the broadcast address of one of the machine's networks (loopback's
    /// among them): the kernel refuses to send there without `SO_BROADCAST`.
    pub fn is_broadcast(&self, ip: IpAddr) -> bool {
        let IpAddr::V4(v4) = canonical(ip) else {
            return false;
        };
        v4 == LOOPBACK_BROADCAST
            || self
                .interfaces
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .broadcasts
                .contains(&v4)
    }

    /// Whether `addr` reaches one of the daemon's sockets.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        if self.ports[usize::from(addr.port())].load(Ordering::Relaxed) == 0 {
            return false;
        }
        let ip = canonical(addr.ip());
        ip.is_loopback()
            || ip.is_unspecified()
            || self
                .interfaces
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .addresses
                .iter()
                .any(|&a| canonical(a) == ip)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ports_on_own_addresses() {
        let own = OwnSockets::default();
        let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert!(!own.contains(a));
        own.claim(40000);
        own.claim(40000);
        assert!(own.contains(a));
        assert!(own.contains("[::1]:40000".parse().unwrap()));
        assert!(own.contains("[::ffff:127.0.0.1]:40000".parse().unwrap()));
        assert!(own.contains("0.0.0.0:40000".parse().unwrap()));
        assert!(!own.contains("192.0.2.7:40000".parse().unwrap()));
        own.set_addresses(vec!["192.0.2.7".parse().unwrap()], vec![], Instant::now());
        assert!(own.contains("192.0.2.7:40000".parse().unwrap()));
        assert!(!own.contains("127.0.0.1:40001".parse().unwrap()));
        own.release(40000);
        assert!(own.contains(a), "still bound once");
        own.release(40000);
        own.release(40000);
        assert!(!own.contains(a));
    }

    #[test]
    fn broadcast_addresses_of_loopback_and_the_interfaces() {
        let own = OwnSockets::default();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(own.is_broadcast(ip("127.255.255.255")));
        assert!(own.is_broadcast(ip("::ffff:127.255.255.255")));
        assert!(!own.is_broadcast(ip("192.0.2.255")));
        own.set_addresses(
            vec![ip("192.0.2.7")],
            vec![Ipv4Addr::new(192, 0, 2, 255)],
            Instant::now(),
        );
        assert!(own.is_broadcast(ip("192.0.2.255")));
        assert!(!own.is_broadcast(ip("192.0.2.254")));
        assert!(!own.is_broadcast(ip("::1")));
    }
}
