//! Which addresses a call may send media to, or take it from: the one check every path goes
//! through (candidates of `call.start` and of stanzas, candidates an accept adds to a ringing
//! call, a remote that moves, a local producer).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

use super::own_sockets::{OwnSockets, canonical};

/// The remote-address rules of a daemon (`media.remote_allow`, `media.remote_deny`,
/// `media.producer_allow`) and its own sockets. The default allows any remote and producers
/// on loopback, as the built-in configuration does.
#[derive(Debug)]
pub struct RemotePolicy {
    /// Remotes must be in one of these networks (all, when empty).
    pub allow: Vec<IpNet>,
    /// Remotes must be in none of these.
    pub deny: Vec<IpNet>,
    /// Producers of plain RTP must be in one of these.
    pub producers: Vec<IpNet>,
    /// The daemon's own sockets.
    pub own: Arc<OwnSockets>,
}

impl Default for RemotePolicy {
    fn default() -> Self {
        RemotePolicy {
            allow: Vec::new(),
            deny: Vec::new(),
            producers: crate::config::MediaConfig::default().producer_allow,
            own: Arc::default(),
        }
    }
}

impl RemotePolicy {
    /// Checks an address media would be sent to or latched onto; the error says why it is
    /// refused.
    pub fn check_remote(&self, addr: SocketAddr) -> Result<(), String> {
        let ip = canonical(addr.ip());
        if addr.port() == 0 {
            return Err(format!("{addr}: port 0"));
        }
        if ip != addr.ip() {
            return Err(format!(
                "{addr}: an IPv4-mapped IPv6 address (srtpd's IPv6 sockets are IPv6 only; \
                 give the IPv4 address {ip})"
            ));
        }
        if let Some(what) = special(ip) {
            return Err(format!("{addr}: {what} address"));
        }
        if self.own.is_broadcast(ip) {
            return Err(format!("{addr}: broadcast address"));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(&ip)) {
            return Err(format!("{addr}: not in media.remote_allow"));
        }
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return Err(format!("{addr}: in media.remote_deny"));
        }
        if self.own.contains(addr) {
            return Err(format!("{addr}: one of srtpd's own sockets"));
        }
        Ok(())
    }

    /// Whether plain RTP from `from` may feed a track's source: a configured producer
    /// address, never one of the daemon's own sockets.
    pub fn allows_producer(&self, from: SocketAddr) -> bool {
        let ip = canonical(from.ip());
        self.producers.iter().any(|n| n.contains(&ip)) && !self.own.contains(from)
    }
}

/// What makes `ip` no unicast peer: unspecified, multicast or broadcast.
fn special(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
        Some("broadcast")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_addresses_and_lists() {
        let mut p = RemotePolicy::default();
        assert!(p.check_remote(addr("127.0.0.1:5000")).is_ok());
        assert!(p.check_remote(addr("[::1]:5000")).is_ok());
        for (bad, why) in [
            ("0.0.0.0:5000", "unspecified"),
            ("[::]:5000", "unspecified"),
            ("224.0.0.1:5000", "multicast"),
            ("[ff02::1]:5000", "multicast"),
            ("255.255.255.255:5000", "broadcast"),
            ("127.255.255.255:5000", "broadcast"),
            ("[::ffff:127.0.0.1]:5000", "IPv4-mapped"),
            ("127.0.0.1:0", "port 0"),
        ] {
            let e = p.check_remote(addr(bad)).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        p.deny = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(
            p.check_remote(addr("10.1.2.3:5000"))
                .unwrap_err()
                .contains("remote_deny")
        );
        p.allow = vec!["192.0.2.0/24".parse().unwrap()];
        assert!(p.check_remote(addr("192.0.2.9:5000")).is_ok());
        assert!(
            p.check_remote(addr("198.51.100.1:5000"))
                .unwrap_err()
                .contains("remote_allow")
        );
        p.own.claim(40000);
        p.allow.clear();
        assert!(
            p.check_remote(addr("127.0.0.1:40000"))
                .unwrap_err()
                .contains("own")
        );
    }

    #[test]
    fn producers_from_configured_networks_only() {
        let p = RemotePolicy::default();
        assert!(p.allows_producer(addr("127.0.0.1:5004")));
        assert!(p.allows_producer(addr("[::1]:5004")));
        assert!(!p.allows_producer(addr("192.0.2.1:5004")));
        p.own.claim(41000);
        assert!(!p.allows_producer(addr("127.0.0.1:41000")));
    }
}
