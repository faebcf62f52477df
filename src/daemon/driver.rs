//! The worker driver: a thread that owns one [`Endpoint`] and the sockets of its calls, waits
//! on them with epoll (through mio), and moves datagrams between the sockets and the endpoint
//! in batches.
//!
//! One wakeup, top to bottom:
//! 1. `epoll_wait` returns the sockets that became readable (and the waker, when the control
//!    plane sent a message); the timeout is the endpoint's next deadline.
//! 2. Messages: new calls (their sockets are registered here), removals, commands.
//! 3. Receive: one `recvmmsg` per readable socket, into consecutive slots of one arena
//!    (64 KiB slots with UDP GRO on shared ports, 2 KiB on a call's own sockets). A socket
//!    that filled every slot it was given may hold more and is read again before the next
//!    wait; one that did not is drained (epoll is edge-triggered, and each new datagram
//!    raises a new edge).
//! 4. Handle: every datagram of the arena is routed first, then handled in order while the
//!    call state of the datagrams a few ahead is prefetched. The endpoint works in place: what
//!    it sends on is a range of the arena plus a detached tag.
//! 5. Send: one `sendmmsg` per socket with datagrams to send (UDP GSO for runs to one
//!    destination). A full socket buffer drops (and counts) rather than waits.
//! 6. Timers, then the endpoint's own packets (STUN, RTCP, clips, comfort silence), events
//!    to the control plane, recordings' bytes to the file writer, counters.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::files::FileSink;
use crate::call::{
    CallNo, CallSpec, CallStats, Endpoint, EndpointError, EndpointLimits, Event, MAX_DATAGRAM,
    Outcome, OwnSockets, RemotePolicy, Route, SharedSocket, SocketId, Transmit,
};
use crate::net::{GRO_SLOT, RecvBatch, SendQueue, enable_gro, supports_gso};

/// The waker's token; sockets use their [`SocketId`].
const WAKER: Token = Token(usize::MAX);
/// Bytes of the receive arena: what one batch can hold (a shared port's datagrams take a
/// GRO slot of 64 KiB each; only the pages they fill are ever touched).
const ARENA: usize = 8 << 20;
/// Messages one `recvmmsg` takes from a call's own socket (2 KiB slots).
const OWN_SLOTS: usize = 8;
/// Messages one `recvmmsg` takes from a shared socket (64 KiB slots, for GRO).
const SHARED_SLOTS: usize = 32;
/// `recvmmsg` calls a shared socket gets per wakeup, at most, before the others' turn.
const SHARED_ROUNDS: usize = 8;
/// Datagrams one batch can hold: every slot of the arena, each a full GRO message of 64.
const BATCH_DATAGRAMS: usize = 2048;
/// How many datagrams ahead of the one at hand a batch's call state is prefetched (and the
/// fields that lead to it twice as many).
const PREFETCH_AHEAD: usize = 4;
/// Messages waiting for a worker.
const QUEUE: usize = 1024;

/// How a call being added names its sockets before they have ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketRef {
    /// The n-th socket of [`NewCall::sockets`].
    New(usize),
    /// The worker's shared media port of IPv4 (`false`) or IPv6 (`true`).
    SharedMedia(bool),
    /// The worker's shared producer port.
    SharedLocal,
}

/// A call for a worker: its spec and the sockets opened for it (which become the worker's).
pub struct NewCall {
    /// The call, its sockets named by [`SocketRef`].
    pub spec: CallSpec<SocketRef>,
    /// Sockets of this call alone.
    pub sockets: Vec<UdpSocket>,
}

/// The sockets a worker shares among its calls.
pub struct SharedSockets {
    /// Media ports (shared layout), IPv4 and IPv6.
    pub media_v4: Option<UdpSocket>,
    /// The IPv6 one.
    pub media_v6: Option<UdpSocket>,
    /// The producer port for sources given by SSRC (127.0.0.1).
    pub local: UdpSocket,
}

/// Work on the endpoint; what it returns answers the control plane once the work's events
/// and file writes went out.
type Job = Box<dyn FnOnce(&mut Endpoint, Instant) -> Reply + Send>;
type Reply = Box<dyn FnOnce() + Send>;

enum Msg {
    Add(Box<NewCall>, oneshot::Sender<Result<(), EndpointError>>),
    Remove(
        CallNo,
        String,
        oneshot::Sender<Result<CallStats, EndpointError>>,
    ),
    Run(Job),
    Stop,
}

/// Hands a worker work from a task of its own; waits while the worker's queue is full.
#[derive(Clone)]
pub struct WorkerHandle {
    tx: mpsc::Sender<Msg>,
    waker: Arc<WakeHandle>,
}

impl WorkerHandle {
    /// Runs `job` on the worker's endpoint, without waiting for it to run.
    pub async fn tell(
        &self,
        job: impl FnOnce(&mut Endpoint, Instant) + Send + 'static,
    ) -> Result<(), WorkerGone> {
        let job: Job = Box::new(move |endpoint, now| {
            job(endpoint, now);
            Box::new(|| {})
        });
        self.tx.send(Msg::Run(job)).await.map_err(|_| WorkerGone)?;
        self.waker.wake().map_err(|_| WorkerGone)
    }
}

/// A worker is gone (stopped, or its thread died).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the media worker stopped")]
pub struct WorkerGone;

/// Counters of a worker's calls, written by its thread, read by `daemon.status`.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    unclaimed: AtomicU64,
    limited: AtomicU64,
}

/// What every worker shares with the daemon: where events and recordings go, and the rules
/// and bounds of its endpoint.
#[derive(Clone)]
pub struct WorkerContext {
    /// Events to the control plane.
    pub events: broadcast::Sender<Event>,
    /// Where ended calls are counted.
    pub metrics: Arc<super::metrics::Metrics>,
    /// Recordings' bytes to the file writer.
    pub files: FileSink,
    /// Which remotes and producers are acceptable; its own-socket table is kept up to date
    /// by the workers as they take sockets in and close them.
    pub policy: Arc<RemotePolicy>,
    /// Bounds on the work unknown senders may cause.
    pub limits: EndpointLimits,
}

/// A snapshot of a worker, for `daemon.status`.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerStats {
    /// How it asks the kernel for I/O: `epoll` or `io_uring`.
    pub io: &'static str,
    /// The shared media ports (shared layout).
    pub media: Vec<SocketAddr>,
    /// The shared producer port.
    pub local: SocketAddr,
    /// Whether sends are coalesced with UDP GSO.
    pub gso: bool,
    /// Calls it runs.
    pub calls: u64,
    /// Receive system calls that returned datagrams.
    pub receives: u64,
    /// Datagrams received.
    pub datagrams_in: u64,
    /// `sendmmsg` calls.
    pub sends: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams no call could claim, dropped.
    pub unclaimed: u64,
    /// Datagrams dropped because their source had spent its trial authentications or the
    /// STUN reply budget was spent.
    pub limited: u64,
    /// Datagrams that could not be sent, dropped.
    pub send_failed: u64,
}

/// The control plane's handle on a worker thread.
pub struct Worker {
    tx: mpsc::Sender<Msg>,
    waker: Arc<WakeHandle>,
    counters: Arc<Counters>,
    io: Arc<IoCounters>,
    io_name: &'static str,
    media: Vec<SocketAddr>,
    local: SocketAddr,
    gso: bool,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Worker {
    /// Starts worker `index` on its shared sockets.
    pub fn spawn(
        index: usize,
        shared: SharedSockets,
        io_mode: crate::config::IoMode,
        context: WorkerContext,
    ) -> io::Result<Worker> {
        let gso = supports_gso(&shared.local);
        if io_mode == crate::config::IoMode::IoUring {
            match super::uring::Uring::new() {
                Ok(uring) => {
                    return Self::spawn_on(uring, "io_uring", index, shared, gso, context);
                }
                // A kernel before 6.0, or a sandbox that forbids io_uring: epoll still works.
                Err(e) => tracing::warn!("io_uring unavailable ({e}); worker {index} uses epoll"),
            }
        }
        Self::spawn_on(Io::new(gso)?, "epoll", index, shared, gso, context)
    }

    fn spawn_on<B: Backend>(
        mut io: B,
        io_name: &'static str,
        index: usize,
        shared: SharedSockets,
        gso: bool,
        context: WorkerContext,
    ) -> io::Result<Worker> {
        let waker = Arc::new(io.waker()?);
        let (tx, rx) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let io_counters = io.counters();
        let media: Vec<SocketAddr> = [&shared.media_v4, &shared.media_v6]
            .into_iter()
            .flatten()
            .map(UdpSocket::local_addr)
            .collect::<io::Result<_>>()?;
        let local = shared.local.local_addr()?;
        let mut endpoint = Endpoint::new(context.policy.clone(), context.limits);
        let mut shared_ids = [None, None, None];
        for (i, (socket, kind)) in [
            (shared.media_v4, SharedSocket::Media),
            (shared.media_v6, SharedSocket::Media),
            (Some(shared.local), SharedSocket::Local),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(socket) = socket {
                context.policy.own.claim(socket.local_addr()?.port());
                let id = io.register(socket, true)?;
                endpoint.add_shared_socket(id, kind);
                shared_ids[i] = Some(id);
            }
        }
        let driver = Driver {
            io,
            endpoint,
            routes: Vec::with_capacity(BATCH_DATAGRAMS),
            rx,
            shared_ids,
            ports: Vec::new(),
            counters: counters.clone(),
            events: context.events,
            metrics: context.metrics,
            files: context.files,
            own: context.policy.own.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("srtpd-worker-{index}"))
            .spawn(move || driver.run())?;
        Ok(Worker {
            tx,
            waker,
            counters,
            io: io_counters,
            io_name,
            media,
            local,
            gso,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    async fn send(&self, msg: Msg) -> Result<(), WorkerGone> {
        self.tx.send(msg).await.map_err(|_| WorkerGone)?;
        self.waker.wake().map_err(|_| WorkerGone)
    }

    /// Hands the worker a call; returns once its packets find it.
    pub async fn add(&self, call: NewCall) -> Result<Result<(), EndpointError>, WorkerGone> {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let result = match self.send(Msg::Add(Box::new(call), reply)).await {
            Ok(()) => answer.await.map_err(|_| WorkerGone),
            Err(e) => Err(e),
        };
        if !matches!(result, Ok(Ok(()))) {
            self.counters.calls.fetch_sub(1, Ordering::Relaxed);
        }
        result
    }

    /// Ends a call on the worker; returns its final statistics.
    pub async fn remove(
        &self,
        no: CallNo,
        reason: String,
    ) -> Result<Result<CallStats, EndpointError>, WorkerGone> {
        let answer = self.remove_soon(no, reason).await?;
        answer.await.map_err(|_| WorkerGone)
    }

    /// Asks the worker to remove call `no` without waiting for it: the answer comes on the
    /// receiver (so that many removals can be in flight at once, as on shutdown).
    pub async fn remove_soon(
        &self,
        no: CallNo,
        reason: String,
    ) -> Result<oneshot::Receiver<Result<CallStats, EndpointError>>, WorkerGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Msg::Remove(no, reason, reply)).await?;
        Ok(answer)
    }

    /// Runs `job` on the worker's endpoint, with the worker's clock, and returns its answer.
    pub async fn ask<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Endpoint, Instant) -> T + Send + 'static,
    ) -> Result<T, WorkerGone> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |endpoint, now| {
            let answer = job(endpoint, now);
            Box::new(move || {
                let _ = reply.send(answer);
            })
        });
        self.send(Msg::Run(job)).await?;
        answer.await.map_err(|_| WorkerGone)
    }

    /// A handle that tasks of their own (a bot bridge) can hand the worker work with.
    pub fn handle(&self) -> WorkerHandle {
        WorkerHandle {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Calls the worker runs or is being handed.
    pub fn load(&self) -> u64 {
        self.counters.calls.load(Ordering::Relaxed)
    }

    /// The worker's shared media ports.
    pub fn media_ports(&self) -> &[SocketAddr] {
        &self.media
    }

    /// The worker's shared producer port.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A snapshot of its counters.
    pub fn stats(&self) -> WorkerStats {
        let (c, io) = (&self.counters, &self.io);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WorkerStats {
            io: self.io_name,
            media: self.media.clone(),
            local: self.local,
            gso: self.gso,
            calls: get(&c.calls),
            receives: get(&io.receives),
            datagrams_in: get(&io.datagrams_in),
            sends: get(&io.sends),
            datagrams_out: get(&io.datagrams_out),
            unclaimed: get(&c.unclaimed),
            limited: get(&c.limited),
            send_failed: get(&io.send_failed),
        }
    }

    /// Stops the thread (its calls should have ended: the ones left are dropped without
    /// events) and waits for it.
    pub async fn stop(&self) {
        let _ = self.send(Msg::Stop).await;
        let thread = self.thread.lock().expect("worker lock").take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.tx.try_send(Msg::Stop);
        let _ = self.waker.wake();
    }
}

/// A socket of the worker's.
struct Sock {
    socket: UdpSocket,
    /// Shared sockets take GRO messages (64 KiB slots); a call's own take one datagram each.
    shared: bool,
    /// Whether it is in the list of sockets to read.
    queued: bool,
}

/// A datagram of the batch at hand: the socket it came in on, its sender, its bytes
/// (`start..end` of the arena).
#[derive(Clone, Copy, Debug)]
pub struct Datagram {
    /// The socket it came in on.
    pub socket: SocketId,
    /// Its sender.
    pub from: SocketAddr,
    /// Where it starts in the arena.
    pub start: usize,
    /// Where it ends.
    pub end: usize,
}

/// Where a batch's handler puts what is to be sent.
pub trait Outbox {
    /// The trailer the next [`Self::push`] may carry (a detached SRTP tag is written there);
    /// `None` when no more can be sent in this batch.
    fn next_trailer(&mut self) -> Option<&mut [u8]>;

    /// Sends `len` bytes at `start` of the arena, then `trailer` bytes of the trailer, from
    /// `socket` to `dest`, for `call`. A closed socket's datagram is dropped.
    fn push(
        &mut self,
        call: CallNo,
        socket: SocketId,
        dest: SocketAddr,
        start: usize,
        len: usize,
        trailer: usize,
    );
}

/// What handles a batch of received datagrams: the endpoint in srtpd, a bare relay in the
/// load tool's floor.
pub trait BatchHandler {
    /// Handles `batch` (datagrams in `arena`, in arrival order per socket), in place, putting
    /// what is to be sent into `out`.
    fn handle_batch(
        &mut self,
        now: Instant,
        arena: &mut [u8],
        batch: &[Datagram],
        out: &mut impl Outbox,
    );
}

/// A worker's I/O, whichever way the kernel is asked: readiness ([`Io`]: epoll, `recvmmsg`,
/// `sendmmsg`) or completions ([`super::uring::Uring`]: io_uring).
pub trait Backend: Send + 'static {
    /// Takes a socket in; `shared` sockets may receive many calls' datagrams.
    fn register(&mut self, socket: UdpSocket, shared: bool) -> io::Result<SocketId>;
    /// Closes a socket.
    fn close(&mut self, id: SocketId);
    /// Waits until there is something to receive, the waker is woken, or `timeout` passes.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()>;
    /// Receives what arrived; `handler` takes it batch by batch, and what it sends goes out.
    fn receive(&mut self, now: Instant, handler: &mut impl BatchHandler);
    /// Sends `transmits`, ranges of `bytes` (packets made elsewhere than in a receive buffer;
    /// `bytes` may be reused once this returns).
    fn send(&mut self, bytes: &[u8], transmits: &[Transmit]);
    /// Hands `each` the call of every datagram the kernel refused since the last call (a
    /// bounded number; all are counted in `send_failed`).
    fn take_send_failures(&mut self, each: impl FnMut(CallNo));
    /// The counters, to read from another thread.
    fn counters(&self) -> Arc<IoCounters>;
    /// What interrupts [`Self::wait`] from another thread.
    fn waker(&self) -> io::Result<WakeHandle>;
}

/// Interrupts a worker's wait.
pub enum WakeHandle {
    /// An epoll worker's.
    Mio(Waker),
    /// An io_uring worker's eventfd.
    EventFd(std::os::fd::OwnedFd),
}

impl WakeHandle {
    /// Wakes the worker.
    pub fn wake(&self) -> io::Result<()> {
        match self {
            WakeHandle::Mio(w) => w.wake(),
            WakeHandle::EventFd(fd) => {
                let one = 1u64;
                // SAFETY: writes 8 bytes from a live u64 to an eventfd.
                let n = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
                if n == 8 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            }
        }
    }
}

/// The epoll side's outbox: a send queue and the sockets' descriptors.
struct QueueOutbox<'a> {
    queue: &'a mut SendQueue,
    sockets: &'a [Option<Sock>],
}

impl Outbox for QueueOutbox<'_> {
    fn next_trailer(&mut self) -> Option<&mut [u8]> {
        self.queue.next_trailer().map(|t| &mut t[..])
    }

    fn push(
        &mut self,
        call: CallNo,
        socket: SocketId,
        dest: SocketAddr,
        start: usize,
        len: usize,
        trailer: usize,
    ) {
        if let Some(Some(sock)) = self.sockets.get(socket.0 as usize) {
            self.queue
                .push(sock.socket.as_raw_fd(), dest, start, len, trailer, call.0);
        }
    }
}

/// Counters of a worker's system calls.
#[derive(Debug, Default)]
pub struct IoCounters {
    /// Receive system calls that returned datagrams.
    pub receives: AtomicU64,
    /// Datagrams they returned.
    pub datagrams_in: AtomicU64,
    /// `sendmmsg` calls.
    pub sends: AtomicU64,
    /// Datagrams sent.
    pub datagrams_out: AtomicU64,
    /// Datagrams that could not be sent, dropped.
    pub send_failed: AtomicU64,
}

/// A worker's sockets and its batched I/O: epoll over every socket, one `recvmmsg` per
/// readable socket into one arena, one `sendmmsg` per socket with datagrams to send.
pub struct Io {
    poll: Poll,
    events: Events,
    sockets: Vec<Option<Sock>>,
    free: Vec<usize>,
    arena: Box<[u8]>,
    batch: Vec<Datagram>,
    readable: Vec<SocketId>,
    still_readable: Vec<SocketId>,
    recv: RecvBatch,
    to_send: SendQueue,
    counters: Arc<IoCounters>,
}

impl Io {
    /// I/O with no sockets yet; `gso` says whether sends may be coalesced.
    pub fn new(gso: bool) -> io::Result<Io> {
        Ok(Io {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            sockets: Vec::new(),
            free: Vec::new(),
            arena: vec![0u8; ARENA].into_boxed_slice(),
            batch: Vec::with_capacity(BATCH_DATAGRAMS),
            readable: Vec::new(),
            still_readable: Vec::new(),
            recv: RecvBatch::new(SHARED_SLOTS.max(OWN_SLOTS)),
            to_send: SendQueue::new(BATCH_DATAGRAMS, gso),
            counters: Arc::new(IoCounters::default()),
        })
    }

    /// Hands the batch to `handler` and sends what it made of it.
    fn handle(&mut self, now: Instant, handler: &mut impl BatchHandler) {
        if self.batch.is_empty() {
            return;
        }
        self.counters
            .datagrams_in
            .fetch_add(self.batch.len() as u64, Ordering::Relaxed);
        let mut out = QueueOutbox {
            queue: &mut self.to_send,
            sockets: &self.sockets,
        };
        handler.handle_batch(now, &mut self.arena, &self.batch, &mut out);
        self.batch.clear();
        flush(&mut self.to_send, &self.counters, &self.arena);
    }
}

impl Backend for Io {
    fn counters(&self) -> Arc<IoCounters> {
        self.counters.clone()
    }

    fn waker(&self) -> io::Result<WakeHandle> {
        Waker::new(self.poll.registry(), WAKER).map(WakeHandle::Mio)
    }

    /// Shared sockets get UDP GRO and large receive slots.
    fn register(&mut self, socket: UdpSocket, shared: bool) -> io::Result<SocketId> {
        socket.set_nonblocking(true)?;
        if shared {
            enable_gro(&socket);
        }
        let index = self.free.pop().unwrap_or_else(|| {
            self.sockets.push(None);
            self.sockets.len() - 1
        });
        let fd = socket.as_raw_fd();
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), Token(index), Interest::READABLE)
        {
            self.free.push(index);
            return Err(e);
        }
        self.sockets[index] = Some(Sock {
            socket,
            shared,
            queued: false,
        });
        Ok(SocketId(index as u32))
    }

    fn close(&mut self, id: SocketId) {
        let index = id.0 as usize;
        if let Some(Some(sock)) = self.sockets.get_mut(index).map(Option::take) {
            let fd = sock.socket.as_raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            self.free.push(index);
        }
    }

    /// Not at all while sockets may hold more than was read.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let timeout = if self.readable.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for event in self.events.iter() {
            match event.token() {
                WAKER => {}
                Token(index) => {
                    if let Some(Some(sock)) = self.sockets.get_mut(index) {
                        if !sock.queued {
                            sock.queued = true;
                            self.readable.push(SocketId(index as u32));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads every readable socket into the arena, one `recvmmsg` each; `handler` takes each
    /// arena-full batch, and what it sends goes out before the arena is reused.
    fn receive(&mut self, now: Instant, handler: &mut impl BatchHandler) {
        let mut list = std::mem::take(&mut self.readable);
        let mut used = 0;
        for &id in &list {
            let Some(Some(sock)) = self.sockets.get_mut(id.0 as usize) else {
                continue;
            };
            sock.queued = false;
            // A shared port carries as many calls as a worker's own sockets together: it is
            // read until it is empty (or for a while), not once per wakeup like those.
            let (slot, slots, rounds) = if sock.shared {
                (GRO_SLOT, SHARED_SLOTS, SHARED_ROUNDS)
            } else {
                (MAX_DATAGRAM, OWN_SLOTS, 1)
            };
            let fd = sock.socket.as_raw_fd();
            let mut more = true;
            for _ in 0..rounds {
                if ARENA - used < slot * slots || self.batch.len() + slots * 64 > BATCH_DATAGRAMS {
                    self.handle(now, handler);
                    used = 0;
                }
                let region = &mut self.arena[used..used + slot * slots];
                let batch = &mut self.batch;
                match self.recv.recv(fd, region, slot, |_, r| {
                    for range in r.datagrams() {
                        batch.push(Datagram {
                            socket: id,
                            from: r.from,
                            start: used + range.start,
                            end: used + range.end,
                        });
                    }
                }) {
                    Ok(n) => {
                        self.counters.receives.fetch_add(1, Ordering::Relaxed);
                        used += slot * n;
                        if n < slots {
                            more = false;
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        more = false;
                        break;
                    }
                    // An ICMP error queued on the socket: data may follow it.
                    Err(_) => break,
                }
            }
            if more {
                let sock = self.sockets[id.0 as usize].as_mut().expect("checked above");
                sock.queued = true;
                self.still_readable.push(id);
            }
        }
        self.handle(now, handler);
        list.clear();
        self.readable = std::mem::replace(&mut self.still_readable, list);
    }

    fn send(&mut self, bytes: &[u8], transmits: &[Transmit]) {
        for t in transmits {
            if let Some(Some(sock)) = self.sockets.get(t.socket.0 as usize) {
                self.to_send
                    .push(sock.socket.as_raw_fd(), t.dest, t.start, t.len, 0, t.call.0);
            }
        }
        flush(&mut self.to_send, &self.counters, bytes);
    }

    fn take_send_failures(&mut self, each: impl FnMut(CallNo)) {
        self.to_send.take_failed().map(CallNo).for_each(each);
    }
}

/// Sends what `queue` holds (ranges of `buf`) and counts it.
fn flush(queue: &mut SendQueue, counters: &IoCounters, buf: &[u8]) {
    if queue.is_empty() {
        return;
    }
    let before = queue.counters();
    queue.flush(buf);
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

/// The endpoint's side of a batch: every datagram is routed first, then handled in order
/// while the call state of the datagrams a few ahead is prefetched.
struct EndpointBatch<'a> {
    endpoint: &'a mut Endpoint,
    routes: &'a mut Vec<Route>,
}

impl BatchHandler for EndpointBatch<'_> {
    fn handle_batch(
        &mut self,
        now: Instant,
        arena: &mut [u8],
        batch: &[Datagram],
        out: &mut impl Outbox,
    ) {
        self.routes.clear();
        for d in batch {
            let route = self
                .endpoint
                .route(d.socket, d.from, &arena[d.start..d.end]);
            self.routes.push(route);
        }
        for (i, d) in batch.iter().enumerate() {
            if let Some(&route) = self.routes.get(i + 2 * PREFETCH_AHEAD) {
                self.endpoint.prefetch(route, true);
            }
            if let Some(&route) = self.routes.get(i + PREFETCH_AHEAD) {
                self.endpoint.prefetch(route, false);
            }
            let Some(trailer) = out.next_trailer() else {
                break;
            };
            let outcome = self.endpoint.handle(
                now,
                self.routes[i],
                d.from,
                &mut arena[d.start..d.end],
                trailer,
            );
            if let Outcome::Send(t) = outcome {
                out.push(
                    t.call,
                    t.socket,
                    t.dest,
                    d.start + t.start,
                    t.len,
                    t.trailer,
                );
            }
        }
    }
}

struct Driver<B> {
    io: B,
    endpoint: Endpoint,
    routes: Vec<Route>,
    rx: mpsc::Receiver<Msg>,
    /// Ids of the shared sockets: IPv4 media, IPv6 media, local.
    shared_ids: [Option<SocketId>; 3],
    /// The port of each of the calls' sockets, by id (0 for none).
    ports: Vec<u16>,
    counters: Arc<Counters>,
    events: broadcast::Sender<Event>,
    metrics: Arc<super::metrics::Metrics>,
    files: FileSink,
    own: Arc<OwnSockets>,
}

impl<B: Backend> Driver<B> {
    fn run(mut self) {
        loop {
            let timeout = self
                .endpoint
                .poll_timeout()
                .map(|t| t.saturating_duration_since(Instant::now()));
            if let Err(e) = self.io.wait(timeout) {
                tracing::error!("worker poll failed: {e}");
                return;
            }
            let now = Instant::now();
            if !self.take_messages(now) {
                return;
            }
            let mut batch = EndpointBatch {
                endpoint: &mut self.endpoint,
                routes: &mut self.routes,
            };
            self.io.receive(now, &mut batch);
            while self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                self.endpoint.handle_timeout(now);
                if self.endpoint.outgoing().1.is_empty() {
                    break;
                }
                self.send_outgoing();
            }
            self.send_outgoing();
            let endpoint = &mut self.endpoint;
            self.io.take_send_failures(|no| endpoint.on_send_failed(no));
            self.publish();
        }
    }

    /// Carries out the control plane's messages; `false` when the worker is to stop.
    fn take_messages(&mut self, now: Instant) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(Msg::Add(call, reply)) => {
                    let _ = reply.send(self.add_call(*call, now));
                }
                Ok(Msg::Remove(no, reason, reply)) => {
                    let result = self.endpoint.remove_call(no, reason).map(|(stats, own)| {
                        for id in own {
                            self.close(id);
                        }
                        stats
                    });
                    if result.is_ok() {
                        self.counters.calls.fetch_sub(1, Ordering::Relaxed);
                    }
                    // `call.ended` and the recording's last bytes go out before the answer.
                    self.publish();
                    let _ = reply.send(result);
                }
                Ok(Msg::Run(job)) => {
                    let reply = job(&mut self.endpoint, now);
                    self.publish();
                    reply();
                }
                Ok(Msg::Stop) => {
                    self.publish();
                    return false;
                }
                Err(mpsc::error::TryRecvError::Empty) => return true,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// Registers a new call's sockets and hands the call to the endpoint; on refusal the
    /// sockets are closed again.
    fn add_call(&mut self, call: NewCall, now: Instant) -> Result<(), EndpointError> {
        let mut ids = Vec::with_capacity(call.sockets.len());
        for socket in call.sockets {
            let port = socket.local_addr().map_or(0, |a| a.port());
            match self.io.register(socket, false) {
                Ok(id) => {
                    ids.push(id);
                    let index = id.0 as usize;
                    if self.ports.len() <= index {
                        self.ports.resize(index + 1, 0);
                    }
                    self.ports[index] = port;
                    self.own.claim(port);
                }
                Err(e) => {
                    tracing::error!("registering a call's socket: {e}");
                }
            }
        }
        let shared = self.shared_ids;
        let missing = SocketId(u32::MAX);
        let spec = call.spec.map_sockets(|r| match r {
            SocketRef::New(i) => ids.get(i).copied().unwrap_or(missing),
            SocketRef::SharedMedia(v6) => shared[usize::from(v6)].unwrap_or(missing),
            SocketRef::SharedLocal => shared[2].unwrap_or(missing),
        });
        let result = self.endpoint.add_call(spec, now, SystemTime::now());
        if result.is_err() {
            for id in ids {
                self.close(id);
            }
        }
        result
    }

    /// Closes one of a call's sockets; its port is no longer one of srtpd's own.
    fn close(&mut self, id: SocketId) {
        self.io.close(id);
        if let Some(port) = self.ports.get_mut(id.0 as usize) {
            self.own.release(std::mem::take(port));
        }
    }

    /// Sends what the endpoint made itself.
    fn send_outgoing(&mut self) {
        let (bytes, transmits) = self.endpoint.outgoing();
        if transmits.is_empty() {
            return;
        }
        self.io.send(bytes, transmits);
        self.endpoint.clear_outgoing();
    }

    /// Events to the control plane, recordings' bytes to the file writer, counters.
    fn publish(&mut self) {
        while let Some(event) = self.endpoint.poll_event() {
            tracing::debug!(call_id = event.call_id(), ?event, "call event");
            if let Event::CallEnded { reason, stats, .. } = &event {
                self.metrics.call_ended(reason, stats);
            }
            let _ = self.events.send(event);
        }
        while let Some(w) = self.endpoint.poll_file_write() {
            self.files.write(w);
        }
        let counters = self.endpoint.counters();
        self.counters
            .unclaimed
            .store(counters.unclaimed, Ordering::Relaxed);
        self.counters
            .limited
            .store(counters.limited, Ordering::Relaxed);
    }
}
