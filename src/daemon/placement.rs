//! Placement: which worker runs a call, and the sockets the call gets. In the per-call layout
//! a call binds a media socket of its own from the port range; in the shared layout it uses
//! its worker's shared media port of its address family. Either way, a track whose producer
//! sends plain RTP gets a local port of its own (or, given the producer's SSRC, the worker's
//! shared producer port), and its sink is fed from that port where it can reach the sink.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use super::driver::{SocketRef, Worker};
use super::error::DaemonError;
use super::setup::{CallPlan, SinkPlan, SourcePlan, TrackAddrs, TrackPlan};
use crate::call::RtpSource;
use crate::config::{Layout, MediaConfig};
use crate::net::{BindError, MediaSocketOptions, bind_media, bind_udp};

/// A track's sockets.
#[derive(Debug, Default)]
pub struct TrackSockets {
    /// Where its producer's packets arrive.
    pub rtp_source: Option<RtpSource<SocketRef>>,
    /// Where decrypted RTP goes, and from which socket.
    pub sink: Option<(SocketRef, SocketAddr)>,
    /// The addresses to report.
    pub addrs: Option<TrackAddrs>,
}

/// Where a call runs and what it was given.
#[derive(Debug)]
pub struct Placement {
    /// The worker.
    pub worker: usize,
    /// Its media socket.
    pub media: SocketRef,
    /// The media socket's address.
    pub local: SocketAddr,
    /// Sockets opened for this call alone ([`SocketRef::New`] indexes them).
    pub sockets: Vec<UdpSocket>,
    /// The audio track's.
    pub audio: TrackSockets,
    /// The video track's.
    pub video: TrackSockets,
}

/// Chooses a worker for a call and opens its sockets; on error nothing stays open.
pub fn place(
    plan: &CallPlan,
    media: &MediaConfig,
    workers: &[Worker],
) -> Result<Placement, DaemonError> {
    let family_ip = |v6: bool| if v6 { media.bind_v6 } else { media.bind_v4 };
    let least_loaded = || {
        (0..workers.len())
            .min_by_key(|&i| workers[i].load())
            .expect("at least one worker")
    };
    let mut sockets = Vec::new();
    let (worker, media_ref, local) = match media.layout {
        Layout::PerCall => {
            let (ip, port) = plan.bind.unwrap_or((family_ip(plan.ipv6), 0));
            let options = MediaSocketOptions {
                dscp: if plan.video.is_some() {
                    media.dscp_video
                } else {
                    media.dscp_audio
                },
                recv_buffer: media.recv_buffer_bytes,
                send_buffer: media.send_buffer_bytes,
            };
            let socket = bind_media(ip, port, media.port_min..=media.port_max, options)
                .map_err(|e| DaemonError::NoFreePort(e.to_string()))?;
            let local = socket.local_addr().map_err(DaemonError::internal)?;
            sockets.push(socket);
            (least_loaded(), SocketRef::New(0), local)
        }
        Layout::Shared => {
            let ip = family_ip(plan.ipv6);
            let ports = media.shared_port..=media.shared_port + (workers.len() - 1) as u16;
            let worker = match plan.bind {
                Some((bind_ip, port)) if bind_ip != ip || (port != 0 && !ports.contains(&port)) => {
                    return Err(DaemonError::invalid(
                        "bind",
                        format!(
                            "the shared layout serves calls on {ip} ports {}..={}",
                            ports.start(),
                            ports.end()
                        ),
                    ));
                }
                Some((_, port)) if port != 0 => usize::from(port - media.shared_port),
                _ => least_loaded(),
            };
            let local = workers[worker]
                .media_ports()
                .iter()
                .copied()
                .find(|a| a.is_ipv6() == plan.ipv6)
                .ok_or_else(|| {
                    DaemonError::NoFreePort(format!(
                        "no shared media port of {ip}: it could not be bound at start-up"
                    ))
                })?;
            (worker, SocketRef::SharedMedia(plan.ipv6), local)
        }
    };
    let shared_local = workers[worker].local_addr();
    let plain = MediaSocketOptions {
        dscp: 0,
        recv_buffer: media.recv_buffer_bytes,
        send_buffer: media.send_buffer_bytes,
    };
    let audio = track_sockets(
        plan.audio.as_ref(),
        "audio",
        shared_local,
        plain,
        &mut sockets,
    )?;
    let video = track_sockets(
        plan.video.as_ref(),
        "video",
        shared_local,
        plain,
        &mut sockets,
    )?;
    Ok(Placement {
        worker,
        media: media_ref,
        local,
        sockets,
        audio,
        video,
    })
}

/// Whether a socket bound at `local` can send to `to`.
fn can_send(local: SocketAddr, to: SocketAddr) -> bool {
    local.is_ipv6() == to.is_ipv6()
        && (local.ip().is_unspecified() || local.ip().is_loopback() == to.ip().is_loopback())
}

/// The address a socket that sends to `to` binds: loopback for a loopback sink, else any.
fn sender_for(to: SocketAddr) -> SocketAddr {
    let ip: IpAddr = match (to.is_ipv6(), to.ip().is_loopback()) {
        (false, true) => Ipv4Addr::LOCALHOST.into(),
        (false, false) => Ipv4Addr::UNSPECIFIED.into(),
        (true, true) => Ipv6Addr::LOCALHOST.into(),
        (true, false) => Ipv6Addr::UNSPECIFIED.into(),
    };
    SocketAddr::new(ip, 0)
}

fn track_sockets(
    plan: Option<&TrackPlan>,
    name: &str,
    shared_local: SocketAddr,
    options: MediaSocketOptions,
    sockets: &mut Vec<UdpSocket>,
) -> Result<TrackSockets, DaemonError> {
    let Some(plan) = plan else {
        return Ok(TrackSockets::default());
    };
    let mut bind = |addr: SocketAddr, field: String| {
        let socket = bind_udp(addr, options)
            .map_err(|source| BindError::Bind { addr, source })
            .map_err(|e| DaemonError::invalid(field, e))?;
        let local = socket.local_addr().map_err(DaemonError::internal)?;
        sockets.push(socket);
        Ok::<_, DaemonError>((SocketRef::New(sockets.len() - 1), local))
    };
    let forward = match plan.sink {
        SinkPlan::Rtp(to) => Some(to),
        _ => None,
    };
    let mut out = TrackSockets::default();
    let mut own = None;
    match plan.source {
        SourcePlan::Rtp { listen } => {
            let addr = listen.unwrap_or_else(|| match forward {
                Some(to) if to.is_ipv6() && to.ip().is_loopback() => sender_for(to),
                _ => SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            });
            let (socket, local) = bind(addr, format!("{name}.source.listen"))?;
            out.rtp_source = Some(RtpSource::Own(socket));
            out.addrs = Some(TrackAddrs { source: local });
            own = Some((socket, local));
        }
        SourcePlan::SharedRtp { ssrc } => {
            out.rtp_source = Some(RtpSource::Shared {
                socket: SocketRef::SharedLocal,
                ssrc,
            });
            out.addrs = Some(TrackAddrs {
                source: shared_local,
            });
            own = Some((SocketRef::SharedLocal, shared_local));
        }
        SourcePlan::None | SourcePlan::Silence | SourcePlan::File { .. } => {}
    }
    if let Some(to) = forward {
        let from = match own {
            Some((socket, local)) if can_send(local, to) => socket,
            _ => bind(sender_for(to), format!("{name}.sink.forward"))?.0,
        };
        out.sink = Some((from, to));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_are_fed_from_a_socket_that_can_reach_them() {
        let v4: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        let far: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        assert!(can_send("127.0.0.1:1".parse().unwrap(), v4));
        assert!(!can_send("127.0.0.1:1".parse().unwrap(), far));
        assert!(can_send("0.0.0.0:1".parse().unwrap(), far));
        assert!(!can_send("127.0.0.1:1".parse().unwrap(), v6));
        assert_eq!(sender_for(v6), "[::1]:0".parse().unwrap());
        assert_eq!(sender_for(far), "0.0.0.0:0".parse().unwrap());
    }
}

/// The address a peer can reach a media socket bound at `local` at, as `call.start` reports
/// it: `local` itself when it is bound to one address; when bound to the unspecified
/// address (0.0.0.0, ::, the default `bind_v4`/`bind_v6`), the address the kernel would send
/// from towards `toward` (the call's preferred candidate; without one, the default route),
/// else the first interface address of the family, else loopback. Never unspecified.
pub fn reachable_local(local: SocketAddr, toward: Option<SocketAddr>) -> SocketAddr {
    if !local.ip().is_unspecified() {
        return local;
    }
    let v6 = local.is_ipv6();
    // Any address the default route leads to: connecting a UDP socket sends nothing.
    let documentation: SocketAddr = if v6 {
        (std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into()
    } else {
        (std::net::Ipv4Addr::new(192, 0, 2, 1), 9).into()
    };
    let target = toward
        .filter(|t| t.is_ipv6() == v6)
        .unwrap_or(documentation);
    let routed = std::net::UdpSocket::bind(SocketAddr::new(local.ip(), 0))
        .and_then(|s| s.connect(target).and_then(|()| s.local_addr()))
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified());
    let ip = routed
        .or_else(|| {
            if_addrs::get_if_addrs()
                .ok()?
                .into_iter()
                .map(|i| i.ip())
                .find(|ip| ip.is_ipv6() == v6 && !ip.is_loopback())
        })
        .unwrap_or(if v6 {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        });
    SocketAddr::new(ip, local.port())
}

#[cfg(test)]
mod reachable_tests {
    use super::*;

    #[test]
    fn a_bound_address_is_reported_as_it_is() {
        let a: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert_eq!(reachable_local(a, None), a);
    }

    #[test]
    fn an_unspecified_bind_reports_the_address_towards_the_candidate() {
        let any: SocketAddr = "0.0.0.0:40430".parse().unwrap();
        let toward: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            reachable_local(any, Some(toward)),
            "127.0.0.1:40430".parse().unwrap()
        );
        let any6: SocketAddr = "[::]:40430".parse().unwrap();
        let toward6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(
            reachable_local(any6, Some(toward6)),
            "[::1]:40430".parse().unwrap()
        );
    }

    #[test]
    fn without_a_candidate_it_is_still_an_address() {
        for any in ["0.0.0.0:40430", "[::]:40430"] {
            let any: SocketAddr = any.parse().unwrap();
            let got = reachable_local(any, None);
            assert!(!got.ip().is_unspecified(), "{got}");
            assert_eq!((got.is_ipv6(), got.port()), (any.is_ipv6(), 40430));
        }
    }
}
