//! Single-port mode: a worker is a thread that owns one media socket and one local socket and
//! runs many calls on them; the daemon starts one per core, each on a port of its own. Datagrams from peers are told apart by remote address and SSRC,
//! plain RTP from local producers by SSRC. Both sockets receive with UDP GRO and send with
//! `sendmmsg` and UDP GSO, so one system call carries many packets, of many calls.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::call_task::{CallCore, Command, Flow};
use crate::call::{Inbound, MediaKind};
use crate::net::{Received, SendQueue, enable_gro, recv_batch, supports_gso};
use crate::rtp::{PacketKind, classify};

/// Receive buffer of one batch: the most UDP GRO delivers at once.
const BATCH_BYTES: usize = 1 << 16;
/// Datagrams one batch can hold (GRO coalesces at most 64).
const BATCH_DATAGRAMS: usize = 128;
/// Receives per wakeup before the other sockets and the timers get their turn.
const RECV_BUDGET: usize = 32;
/// How many datagrams ahead of the one at hand a batch's call state is prefetched (and the
/// fields that lead to it twice as many).
const PREFETCH_AHEAD: usize = 4;
/// How long a full socket may hold up a batch before its rest is dropped.
const SEND_STALL: Duration = Duration::from_millis(20);

/// What the daemon asks of the worker.
pub enum WorkerMsg {
    /// Run a new call.
    Add {
        /// The daemon's id of the call.
        id: u64,
        /// The call.
        core: Box<CallCore>,
        /// SSRCs of the call's local producers, by track.
        sources: Vec<(u32, MediaKind)>,
        /// Told once the call's packets find it.
        added: oneshot::Sender<()>,
    },
    /// A command for call `id`.
    Command {
        /// The call.
        id: u64,
        /// The command.
        command: Command,
    },
}

/// Counters of the shared port, for `daemon.status`.
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Calls the worker runs (counted up by the daemon as it hands one over, down by the
    /// worker as one ends), to place new calls on the least loaded worker.
    pub calls: AtomicU64,
    /// Receive system calls that returned datagrams.
    pub receives: AtomicU64,
    /// Datagrams they returned.
    pub datagrams_in: AtomicU64,
    /// `sendmmsg` calls.
    pub sends: AtomicU64,
    /// Datagrams sent.
    pub datagrams_out: AtomicU64,
    /// Datagrams no call claimed (unknown SSRC or address, failed authentication, not
    /// RTP/RTCP/STUN), dropped.
    pub unclaimed: AtomicU64,
    /// Datagrams that could not be sent (refused, or the socket stayed full), dropped.
    pub send_failed: AtomicU64,
}

/// A snapshot of [`PortCounters`].
#[derive(Debug, Serialize)]
pub struct PortStats {
    /// The shared media socket's address.
    pub media: SocketAddr,
    /// The local socket's address (plain RTP in from producers, out to sinks).
    pub local: SocketAddr,
    /// Whether sends are coalesced with UDP GSO.
    pub gso: bool,
    /// Calls the worker runs.
    pub calls: u64,
    /// Receive system calls that returned datagrams.
    pub receives: u64,
    /// Datagrams received.
    pub datagrams_in: u64,
    /// `sendmmsg` calls.
    pub sends: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams no call claimed, dropped.
    pub unclaimed: u64,
    /// Datagrams that could not be sent, dropped.
    pub send_failed: u64,
}

/// The daemon's handle on the running worker.
pub struct SharedPort {
    /// The shared media socket's address.
    pub media: SocketAddr,
    /// The local socket's address.
    pub local: SocketAddr,
    /// The worker's media socket, for its calls' rare-path sends (STUN, RTCP, keepalives,
    /// clips), which run on the worker's thread.
    pub media_socket: Arc<UdpSocket>,
    /// Messages to the worker.
    pub tx: mpsc::Sender<WorkerMsg>,
    gso: bool,
    counters: Arc<PortCounters>,
}

impl SharedPort {
    /// Starts a worker thread on `media` (facing peers) and `local` (producers and sinks).
    /// The sockets are registered with the worker's own runtime only, so that their traffic
    /// wakes no other thread.
    pub fn spawn(media: std::net::UdpSocket, local: std::net::UdpSocket) -> io::Result<Self> {
        enable_gro(&media);
        enable_gro(&local);
        let gso = supports_gso(&media) && supports_gso(&local);
        let (media_addr, local_addr) = (media.local_addr()?, local.local_addr()?);
        let (tx, rx) = mpsc::channel(1024);
        let counters = Arc::new(PortCounters::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (ready, registered) = std::sync::mpsc::sync_channel(1);
        let worker_counters = counters.clone();
        std::thread::Builder::new()
            .name(format!("srtpd-port-{}", media_addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let sockets = UdpSocket::from_std(media)
                        .and_then(|m| Ok((Arc::new(m), Arc::new(UdpSocket::from_std(local)?))));
                    let (media, local) = match sockets {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(media.clone()));
                    let worker = Worker {
                        media,
                        local,
                        calls: Calls::default(),
                        to_peer: SendQueue::new(BATCH_DATAGRAMS, gso),
                        to_sink: SendQueue::new(BATCH_DATAGRAMS, gso),
                        routes: Vec::with_capacity(BATCH_DATAGRAMS),
                        counters: worker_counters,
                        rx,
                    };
                    worker.run().await;
                })
            })?;
        let media_socket = registered
            .recv()
            .map_err(|_| io::Error::other("the single-port worker did not start"))??;
        Ok(SharedPort {
            media: media_addr,
            local: local_addr,
            media_socket,
            tx,
            gso,
            counters,
        })
    }

    /// Calls the worker runs or has been handed.
    pub fn load(&self) -> u64 {
        self.counters.calls.load(Ordering::Relaxed)
    }

    /// Hands call `id` to the worker and returns once the worker routes its packets to it
    /// (so that none the peer sends after `call.start` answers goes unclaimed); `Err` if the
    /// worker stopped.
    pub async fn add(
        &self,
        id: u64,
        core: Box<CallCore>,
        sources: Vec<(u32, MediaKind)>,
    ) -> Result<(), ()> {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        let (added, on_added) = oneshot::channel();
        let add = WorkerMsg::Add {
            id,
            core,
            sources,
            added,
        };
        if self.tx.send(add).await.is_err() || on_added.await.is_err() {
            self.counters.calls.fetch_sub(1, Ordering::Relaxed);
            return Err(());
        }
        Ok(())
    }

    /// The counters.
    pub fn stats(&self) -> PortStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PortStats {
            media: self.media,
            local: self.local,
            gso: self.gso,
            calls: get(&c.calls),
            receives: get(&c.receives),
            datagrams_in: get(&c.datagrams_in),
            sends: get(&c.sends),
            datagrams_out: get(&c.datagrams_out),
            unclaimed: get(&c.unclaimed),
            send_failed: get(&c.send_failed),
        }
    }
}

struct Entry {
    core: Box<CallCore>,
    /// The earliest deadline with an entry in the timer heap.
    due: Instant,
    /// Peer SSRCs of RTP learned so far (a call claims at most one per track by trial).
    learned: usize,
    /// Its keys in `by_peer`.
    peer_keys: Vec<(SocketAddr, u32)>,
    /// Its keys in `by_source`.
    sources: Vec<u32>,
}

/// Where a call sits in [`Calls::slab`].
type Slot = usize;

/// The calls and how datagrams find them. Calls sit in a slab, so that a datagram's one
/// lookup (by peer or by producer SSRC) gives its call's slot directly.
#[derive(Default)]
struct Calls {
    slab: Vec<Option<Entry>>,
    /// Free slots of `slab`.
    free: Vec<Slot>,
    /// Call id → slot, for commands and timers.
    slots: HashMap<u64, Slot>,
    /// (remote address, SSRC) → call.
    by_peer: HashMap<(SocketAddr, u32), Slot>,
    /// Peer SSRC → call, for a known stream arriving from a new address (NAT rebinding).
    by_ssrc: HashMap<u32, Slot>,
    /// Local producer SSRC → call and track.
    by_source: HashMap<u32, (Slot, MediaKind)>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Calls {
    fn add(&mut self, id: u64, mut core: Box<CallCore>, sources: Vec<(u32, MediaKind)>) {
        let now = Instant::now();
        core.start(now);
        let due = core.next_deadline();
        self.timers.push(Reverse((due, id)));
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slab.push(None);
            self.slab.len() - 1
        });
        for &(ssrc, kind) in &sources {
            self.by_source.insert(ssrc, (slot, kind));
        }
        self.slots.insert(id, slot);
        self.slab[slot] = Some(Entry {
            core,
            due,
            learned: 0,
            peer_keys: Vec::new(),
            sources: sources.into_iter().map(|(s, _)| s).collect(),
        });
    }

    fn remove(&mut self, id: u64) {
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        if let Some(e) = self.slab[slot].take() {
            for key in e.peer_keys {
                self.by_peer.remove(&key);
                if self.by_ssrc.get(&key.1) == Some(&slot) {
                    self.by_ssrc.remove(&key.1);
                }
            }
            for s in e.sources {
                self.by_source.remove(&s);
            }
        }
        self.free.push(slot);
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        let slot = *self.slots.get(&id)?;
        self.slab[slot].as_mut()
    }

    /// Carries out a command; `Flow::Ended` when the call ended and is gone.
    fn command(&mut self, id: u64, command: Command) -> Flow {
        let Some(e) = self.get_mut(id) else {
            // The call is gone; dropping the command drops its reply channel, which the
            // daemon reports as "no such call".
            return Flow::Continue;
        };
        if e.core.on_command(Some(command), Instant::now()) == Flow::Ended {
            self.remove(id);
            return Flow::Ended;
        }
        let due = e.core.next_deadline();
        if due < e.due {
            e.due = due;
            self.timers.push(Reverse((due, id)));
        }
        Flow::Continue
    }

    fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    fn run_timers(&mut self, now: Instant) {
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(e) = self.get_mut(id) else {
                continue;
            };
            if e.due != t {
                continue; // superseded by an earlier entry that already ran
            }
            e.core.on_timer(now);
            let due = e.core.next_deadline();
            e.due = due;
            self.timers.push(Reverse((due, id)));
        }
    }

    /// Which call a datagram from a peer belongs to, if a known stream: `None` for STUN,
    /// for a stream not seen from this address, and for what is not RTP or RTCP.
    fn find_peer(&self, datagram: &[u8], from: SocketAddr) -> Option<Slot> {
        let ssrc_at = match classify(datagram) {
            PacketKind::Rtp => 8,
            PacketKind::Rtcp => 4,
            _ => return None,
        };
        let ssrc = datagram.get(ssrc_at..ssrc_at + 4)?;
        let ssrc = u32::from_be_bytes(ssrc.try_into().expect("four bytes"));
        self.by_peer.get(&(from, ssrc)).copied()
    }

    /// Hints the slot itself (which points to the call).
    fn prefetch_slot(&self, slot: Slot) {
        crate::prefetch::prefetch(&self.slab[slot]);
    }

    /// Hints the call's fields that lead to its per-packet state: the first of two steps,
    /// a few datagrams before [`Self::prefetch_network`] or [`Self::prefetch_source`].
    fn prefetch_outer(&self, slot: Slot) {
        if let Some(e) = &self.slab[slot] {
            e.core.prefetch_outer();
        }
    }

    /// Hints the state of the call in `slot` that a datagram from its peer reads.
    fn prefetch_network(&self, slot: Slot) {
        if let Some(e) = &self.slab[slot] {
            e.core.prefetch_network();
        }
    }

    /// A datagram from a peer: demultiplexed (`known`: the slot [`Self::find_peer`] found),
    /// then handled by its call (and recorded, if its track records). `Err` when no call
    /// claimed it; `Ok(Some((sink, len)))` when its first `len` bytes are now plain RTP for
    /// the track's sink.
    fn on_network(
        &mut self,
        datagram: &mut [u8],
        from: SocketAddr,
        known: Option<Slot>,
        now: Instant,
    ) -> Result<Option<(SocketAddr, usize)>, ()> {
        if let Some(e) = known.and_then(|slot| self.slab[slot].as_mut()) {
            let inbound = e.core.session.on_network(datagram, from, now);
            return Ok(deliver(e, datagram, inbound, now));
        }
        let kind = classify(datagram);
        let ssrc_at = match kind {
            PacketKind::Rtp => 8,
            PacketKind::Rtcp => 4,
            PacketKind::Stun => {
                self.on_stun(datagram, from, now);
                return Ok(None);
            }
            PacketKind::Dtls | PacketKind::Other => return Err(()),
        };
        let ssrc = match datagram.get(ssrc_at..ssrc_at + 4) {
            Some(b) => u32::from_be_bytes(b.try_into().expect("four bytes")),
            None => return Err(()),
        };
        // A stream we have not seen from this address: whichever call it authenticates with.
        let rtp = kind == PacketKind::Rtp;
        let known = self.by_ssrc.get(&ssrc).copied();
        let claimant = self.slab.iter_mut().enumerate().find_map(|(slot, e)| {
            let e = e.as_mut()?;
            let session = &e.core.session;
            let eligible = if known.is_some() {
                known == Some(slot)
            } else {
                (session.knows(from) || session.waiting())
                    && (!rtp || e.learned < session.track_count())
            };
            if !eligible {
                return None;
            }
            let inbound = e.core.session.try_claim(datagram, from, now)?;
            Some((slot, inbound))
        });
        let (slot, inbound) = claimant.ok_or(())?;
        let e = self.slab[slot].as_mut().ok_or(())?;
        self.by_peer.insert((from, ssrc), slot);
        e.peer_keys.push((from, ssrc));
        if rtp && known.is_none() {
            e.learned += 1;
            self.by_ssrc.insert(ssrc, slot);
        }
        Ok(deliver(e, datagram, inbound, now))
    }

    /// STUN: binding responses go to the calls checking that address (each matches its own
    /// transaction ids); requests and indications to any one call that knows the address.
    fn on_stun(&mut self, datagram: &mut [u8], from: SocketAddr, now: Instant) {
        // Message type 0x0101: Binding success response (RFC 5389 §6).
        let response = datagram.get(..2) == Some(&[0x01, 0x01][..]);
        for e in self.slab.iter_mut().flatten() {
            if e.core.session.knows(from) {
                e.core.session.on_network(datagram, from, now);
                e.core.after(now);
                if !response {
                    return;
                }
            }
        }
    }

    /// Which call and track plain RTP from a local producer belongs to.
    fn find_source(&self, packet: &[u8]) -> Option<(Slot, MediaKind)> {
        let ssrc = packet.get(8..12)?;
        let ssrc = u32::from_be_bytes(ssrc.try_into().expect("four bytes"));
        self.by_source.get(&ssrc).copied()
    }

    /// Hints the state of the call in `slot` that a packet from its producer reads.
    fn prefetch_source(&self, slot: Slot, kind: MediaKind) {
        if let Some(e) = &self.slab[slot] {
            e.core.prefetch_source(kind);
        }
    }
}

/// After `e`'s session took a datagram: its output goes out, and media is recorded and
/// handed on to the track's sink, if any.
fn deliver(
    e: &mut Entry,
    datagram: &[u8],
    inbound: Inbound,
    now: Instant,
) -> Option<(SocketAddr, usize)> {
    if e.core.session.has_output() {
        e.core.after(now);
    }
    match inbound {
        Inbound::Media { kind, len } => {
            let to = e.core.io_mut(kind).deliver(&datagram[..len])?;
            Some((to, len))
        }
        _ => None,
    }
}

struct Worker {
    media: Arc<UdpSocket>,
    local: Arc<UdpSocket>,
    calls: Calls,
    to_peer: SendQueue,
    to_sink: SendQueue,
    /// The datagrams of the batch at hand and their calls, found before any is handled so
    /// that the state of the next few can be prefetched.
    routes: Vec<Route>,
    counters: Arc<PortCounters>,
    rx: mpsc::Receiver<WorkerMsg>,
}

/// A datagram of a batch: its byte range and, if known, its call's slot and track.
#[derive(Clone, Copy)]
struct Route {
    start: usize,
    end: usize,
    call: Option<(Slot, MediaKind)>,
}

impl Worker {
    async fn run(mut self) {
        let mut net_buf = vec![0u8; BATCH_BYTES].into_boxed_slice();
        let mut local_buf = vec![0u8; BATCH_BYTES].into_boxed_slice();
        let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
        let timer = tokio::time::sleep_until(far());
        tokio::pin!(timer);
        let (media, local) = (self.media.clone(), self.local.clone());
        loop {
            let next = self
                .calls
                .next_timer()
                .map_or_else(far, tokio::time::Instant::from_std);
            if timer.deadline() != next {
                timer.as_mut().reset(next);
            }
            tokio::select! {
                r = media.readable() => if r.is_ok() {
                    self.drain_network(&mut net_buf).await;
                },
                r = local.readable() => if r.is_ok() {
                    self.drain_sources(&mut local_buf).await;
                },
                _ = &mut timer => self.calls.run_timers(Instant::now()),
                msg = self.rx.recv() => match msg {
                    Some(WorkerMsg::Add { id, core, sources, added }) => {
                        self.calls.add(id, core, sources);
                        // The daemon may have given up waiting; the call runs either way.
                        let _ = added.send(());
                    }
                    Some(WorkerMsg::Command { id, command }) => {
                        if self.calls.command(id, command) == Flow::Ended {
                            self.counters.calls.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                    None => {
                        for e in self.calls.slab.iter_mut().flatten() {
                            e.core.on_command(None, Instant::now());
                        }
                        return;
                    }
                },
            }
        }
    }

    /// Receives batches from peers, decrypts them in place and forwards the media to the
    /// sinks, one `sendmmsg` per batch.
    async fn drain_network(&mut self, buf: &mut [u8]) {
        for _ in 0..RECV_BUDGET {
            let Some(r) = self.receive(&self.media.clone(), buf) else {
                return;
            };
            let now = Instant::now();
            self.routes.clear();
            for (start, end) in segments(r) {
                let slot = self.calls.find_peer(&buf[start..end], r.from);
                if let Some(slot) = slot {
                    self.calls.prefetch_slot(slot);
                }
                self.routes.push(Route {
                    start,
                    end,
                    call: slot.map(|s| (s, MediaKind::Audio)),
                });
            }
            for i in 0..self.routes.len() {
                if let Some(&Route {
                    call: Some((slot, _)),
                    ..
                }) = self.routes.get(i + 2 * PREFETCH_AHEAD)
                {
                    self.calls.prefetch_outer(slot);
                }
                if let Some(&Route {
                    call: Some((slot, _)),
                    ..
                }) = self.routes.get(i + PREFETCH_AHEAD)
                {
                    self.calls.prefetch_network(slot);
                }
                let Route { start, end, call } = self.routes[i];
                let known = call.map(|(slot, _)| slot);
                match self
                    .calls
                    .on_network(&mut buf[start..end], r.from, known, now)
                {
                    Ok(Some((to, len))) => {
                        self.to_sink.push(to, start, len, 0);
                    }
                    Ok(None) => {}
                    Err(()) => {
                        self.counters.unclaimed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let local = self.local.clone();
            send(&local, &mut self.to_sink, buf, &self.counters).await;
        }
    }

    /// Receives batches of plain RTP from local producers, rewrites and protects them in
    /// place (tags detached) and sends them to the peers, one `sendmmsg` per batch.
    async fn drain_sources(&mut self, buf: &mut [u8]) {
        for _ in 0..RECV_BUDGET {
            let Some(r) = self.receive(&self.local.clone(), buf) else {
                return;
            };
            let now = Instant::now();
            self.routes.clear();
            for (start, end) in segments(r) {
                let call = self.calls.find_source(&buf[start..end]);
                if let Some((slot, _)) = call {
                    self.calls.prefetch_slot(slot);
                }
                self.routes.push(Route { start, end, call });
            }
            for i in 0..self.routes.len() {
                if let Some(&Route {
                    call: Some((slot, _)),
                    ..
                }) = self.routes.get(i + 2 * PREFETCH_AHEAD)
                {
                    self.calls.prefetch_outer(slot);
                }
                if let Some(&Route {
                    call: Some((slot, kind)),
                    ..
                }) = self.routes.get(i + PREFETCH_AHEAD)
                {
                    self.calls.prefetch_source(slot, kind);
                }
                let Route { start, end, call } = self.routes[i];
                let Some((slot, kind)) = call else {
                    self.counters.unclaimed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let Some(e) = self.calls.slab[slot].as_mut() else {
                    continue;
                };
                if !e.core.takes_source(kind) {
                    continue;
                }
                let tag_len = e.core.session.overhead();
                let Some(tag) = self.to_peer.next_trailer() else {
                    continue;
                };
                let packet = &mut buf[start..end];
                if let Some(to) = e.core.session.on_source_detached(kind, packet, tag, now) {
                    self.to_peer.push(to, start, end - start, tag_len);
                }
            }
            let media = self.media.clone();
            send(&media, &mut self.to_peer, buf, &self.counters).await;
        }
    }

    /// One batch from `socket`, or `None` when nothing waits.
    fn receive(&self, socket: &UdpSocket, buf: &mut [u8]) -> Option<Received> {
        loop {
            match socket.try_io(Interest::READABLE, || recv_batch(socket, buf)) {
                Ok(r) => {
                    self.counters.receives.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .datagrams_in
                        .fetch_add(r.count() as u64, Ordering::Relaxed);
                    return Some(r);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                // An ICMP error queued on the socket, or a sender that is not IP: next.
                Err(_) => continue,
            }
        }
    }
}

/// The datagrams of a batch, as byte ranges of the receive buffer.
fn segments(r: Received) -> impl Iterator<Item = (usize, usize)> {
    let stride = r.stride.max(1);
    (0..r.len)
        .step_by(stride)
        .map(move |start| (start, (start + stride).min(r.len)))
}

/// Flushes `queue` (ranges of `buf`) on `socket`; when the socket is full, waits for it to
/// drain, up to [`SEND_STALL`], then drops the rest.
async fn send(socket: &UdpSocket, queue: &mut SendQueue, buf: &[u8], counters: &PortCounters) {
    let before = queue.counters();
    let deadline = tokio::time::Instant::now() + SEND_STALL;
    while !queue.is_empty() {
        match socket.try_io(Interest::WRITABLE, || queue.flush(socket, buf)) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if tokio::time::timeout_at(deadline, socket.writable())
                    .await
                    .is_err()
                {
                    queue.discard();
                    break;
                }
            }
            Err(_) => {
                queue.discard();
                break;
            }
        }
    }
    let after = queue.counters();
    counters
        .sends
        .fetch_add(after.syscalls - before.syscalls, Ordering::Relaxed);
    counters
        .datagrams_out
        .fetch_add(after.sent - before.sent, Ordering::Relaxed);
    counters
        .send_failed
        .fetch_add(after.failed - before.failed, Ordering::Relaxed);
}
