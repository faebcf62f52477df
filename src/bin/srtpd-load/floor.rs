//! The floor: a minimal relay of the same socket layout as the daemon under test, run as a
//! process of its own (`srtpd-load --serve-floor`, started by the load tool) so that it is
//! scheduled and measured as the daemon is. Its workers run srtpd's worker I/O (`daemon::driver::Io`: epoll, recvmmsg into one
//! arena, sendmmsg with GSO) and srtpd's SRTP (`SrtpContext`, in place, tags detached), and
//! nothing else: a datagram's call is found by an index (its socket, or on a shared port its
//! SSRC), there are no timers, no statistics, no checks. Its CPU time per packet is what the
//! kernel and SRTP alone cost.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use srtpd::call::{CallNo, SocketId};
use srtpd::daemon::driver::{Backend, BatchHandler, Datagram, Io, Outbox};
use srtpd::net::{MediaSocketOptions, bind_udp};
use srtpd::rtp::{RtpPacket, Ssrc};
use srtpd::srtp::SrtpContext;

use crate::traffic::{Calls, FROM_PEER, IN_BASE, OUT_BASE, Peers, TO_PEER, context, peer_addr};

/// Socket buffers of the floor's sockets of one call: the daemon's defaults.
const BUFFERS: usize = 1 << 20;
/// Socket buffers of a shared port: the daemon's default.
const SHARED_BUFFERS: usize = 4 << 20;

/// What a socket is to a floor worker.
#[derive(Clone, Copy)]
enum Role {
    /// Call i's media socket.
    Media(usize),
    /// Call i's local port (its producer sends there, its sink is fed from there).
    Local(usize),
    /// The shared media port: the call is the SSRC's index.
    Shared,
    /// The shared producer port: the call is the producer SSRC's index.
    SharedLocal,
}

struct Call {
    media: SocketId,
    local: SocketId,
    peer: SocketAddr,
    tx: SrtpContext,
    rx: SrtpContext,
}

struct Relay {
    roles: Vec<Option<Role>>,
    /// The calls, by index (`None` for another worker's).
    calls: Vec<Option<Call>>,
    sink: SocketAddr,
}

impl Relay {
    fn set_role(&mut self, id: SocketId, role: Role) {
        let k = id.0 as usize;
        if self.roles.len() <= k {
            self.roles.resize(k + 1, None);
        }
        self.roles[k] = Some(role);
    }
}

impl BatchHandler for Relay {
    fn handle_batch(
        &mut self,
        _now: Instant,
        arena: &mut [u8],
        batch: &[Datagram],
        out: &mut impl Outbox,
    ) {
        for d in batch {
            let packet = &mut arena[d.start..d.end];
            let role = self.roles.get(d.socket.0 as usize).copied().flatten();
            let by_ssrc = |packet: &[u8]| {
                RtpPacket::new_checked(packet)
                    .ok()
                    .map(|p| p.ssrc().0.wrapping_sub(IN_BASE) as usize)
            };
            let (i, from_peer) = match role {
                Some(Role::Media(i)) => (i, true),
                Some(Role::Local(i)) => (i, false),
                Some(Role::Shared) => match by_ssrc(packet) {
                    Some(i) => (i, true),
                    None => continue,
                },
                Some(Role::SharedLocal) => match by_ssrc(packet) {
                    Some(i) => (i, false),
                    None => continue,
                },
                None => continue,
            };
            let Some(Some(call)) = self.calls.get_mut(i) else {
                continue;
            };
            if from_peer {
                if let Ok(n) = call.rx.unprotect(packet) {
                    out.push(CallNo(0), call.local, self.sink, d.start, n, 0);
                }
            } else {
                let Ok(mut view) = RtpPacket::new_checked(&mut *packet) else {
                    continue;
                };
                view.set_ssrc(Ssrc(OUT_BASE + i as u32));
                let tag = call.tx.overhead();
                let Some(trailer) = out.next_trailer() else {
                    continue;
                };
                if call
                    .tx
                    .protect_detached(packet, &mut trailer[..tag])
                    .is_ok()
                {
                    out.push(
                        CallNo(0),
                        call.media,
                        call.peer,
                        d.start,
                        d.end - d.start,
                        tag,
                    );
                }
            }
        }
    }
}

/// A running floor.
pub struct Floor {
    /// Where each call's media and producer go.
    pub calls: Calls,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// What a floor relays: as many calls as the load has, to its peers and sink, in a layout.
#[derive(Clone, Copy, Debug)]
pub struct FloorSpec {
    /// Calls.
    pub calls: usize,
    /// The peers' topology.
    pub peers: Peers,
    /// The load's peer port.
    pub peer_port: u16,
    /// Where every call's sink goes.
    pub sink: SocketAddr,
    /// Calls on one media port per worker (else a media socket each).
    pub shared: bool,
    /// Producers on one port per worker (else a port each).
    pub shared_sources: bool,
    /// Worker threads.
    pub workers: usize,
}

fn bind(addr: SocketAddr, buffers: usize) -> Result<UdpSocket, String> {
    let options = MediaSocketOptions {
        dscp: 0,
        recv_buffer: buffers,
        send_buffer: buffers,
    };
    bind_udp(addr, options).map_err(|e| format!("floor: bind {addr}: {e}"))
}

impl Floor {
    /// Starts the workers relaying `spec`'s calls: each call with a media socket of its own,
    /// or on its worker's one media port; each with a local port of its own, or on its
    /// worker's one producer port.
    pub fn start(spec: &FloorSpec) -> Result<Floor, String> {
        let FloorSpec {
            calls: n,
            shared,
            shared_sources,
            workers,
            ..
        } = *spec;
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut calls = Calls::default();
        let mut relays = Vec::new();
        for w in 0..workers.max(1) {
            let mut io = Io::new(true).map_err(|e| e.to_string())?;
            let mut relay = Relay {
                roles: Vec::new(),
                calls: (0..n).map(|_| None).collect(),
                sink: spec.sink,
            };
            let shared_port = if shared {
                let socket = bind(loopback, SHARED_BUFFERS)?;
                let addr = socket.local_addr().map_err(|e| e.to_string())?;
                let id = io.register(socket, true).map_err(|e| e.to_string())?;
                relay.set_role(id, Role::Shared);
                Some((id, addr))
            } else {
                None
            };
            let shared_local = if shared_sources {
                let socket = bind(loopback, SHARED_BUFFERS)?;
                let addr = socket.local_addr().map_err(|e| e.to_string())?;
                let id = io.register(socket, true).map_err(|e| e.to_string())?;
                relay.set_role(id, Role::SharedLocal);
                Some((id, addr))
            } else {
                None
            };
            relays.push((io, relay, shared_port, shared_local, w));
        }
        for i in 0..n {
            let (io, relay, shared_port, shared_local, _) = &mut relays[i % workers.max(1)];
            let (media, media_addr) = match shared_port {
                Some((id, addr)) => (*id, *addr),
                None => {
                    let socket = bind(loopback, BUFFERS)?;
                    let addr = socket.local_addr().map_err(|e| e.to_string())?;
                    (io.register(socket, false).map_err(|e| e.to_string())?, addr)
                }
            };
            let (local, local_addr) = match shared_local {
                Some((id, addr)) => (*id, *addr),
                None => {
                    let socket = bind(loopback, BUFFERS)?;
                    let addr = socket.local_addr().map_err(|e| e.to_string())?;
                    let id = io.register(socket, false).map_err(|e| e.to_string())?;
                    relay.set_role(id, Role::Local(i));
                    (id, addr)
                }
            };
            if shared_port.is_none() {
                relay.set_role(media, Role::Media(i));
            }
            relay.calls[i] = Some(Call {
                media,
                local,
                peer: peer_addr(spec.peers, spec.peer_port, i),
                tx: context(i, TO_PEER),
                rx: context(i, FROM_PEER),
            });
            calls.media.push(media_addr);
            calls.sources.push(local_addr);
        }
        let mut threads = Vec::new();
        for (mut io, mut relay, _, _, w) in relays {
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("floor-{w}"))
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if io.wait(Some(Duration::from_millis(100))).is_err() {
                            return;
                        }
                        io.receive(Instant::now(), &mut relay);
                    }
                })
                .map_err(|e| e.to_string())?;
            threads.push(thread);
        }
        Ok(Floor {
            calls,
            stop,
            threads,
        })
    }

    /// Stops the workers.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}
