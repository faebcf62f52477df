//! The io_uring backend of a worker's I/O: the same work as the epoll one, asked of the kernel
//! as completions instead of readiness.
//!
//! Every socket has one multishot `recvmsg` armed on it, which takes a buffer from a ring of
//! provided buffers for each datagram (Linux 6.0+); a wakeup reaps every completion at once,
//! with no system call per socket. The datagrams are handled in place in those buffers; each
//! datagram to send is a `sendmsg` entry (its tag detached into the entry's own trailer), and
//! all of a wakeup's entries go to the kernel in the one `io_uring_enter` that also waits for
//! the next completions. A buffer goes back to the ring once its datagram was handled, or
//! once the send that carries it completed.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use io_uring::types::{BufRingEntry, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue, types};

use super::driver::{Backend, BatchHandler, Datagram, IoCounters, Outbox, WakeHandle};
use crate::call::{CallNo, MAX_DATAGRAM, SocketId, Transmit};
use crate::net::MAX_TRAILER;

/// Submission queue entries (the completion queue has twice as many).
const ENTRIES: u32 = 4096;
/// Provided receive buffers (a power of two).
const BUFS: u16 = 4096;
/// Bytes of a receive buffer: the `io_uring_recvmsg_out` header, the sender's address, and
/// the largest datagram handled.
const BUF_SIZE: usize = 64 + MAX_DATAGRAM;
/// The provided buffers' group.
const GROUP: u16 = 1;
/// Sends in flight at once.
const SEND_SLOTS: usize = 4096;
/// Of them, sends of packets the endpoint made itself, copied into buffers of their own.
const OWN_SLOTS: usize = 512;
/// Datagrams handed to the handler at once.
const BATCH: usize = 2048;

/// What a completion is about, in the top byte of its user data.
const RECV: u64 = 1;
const SEND: u64 = 2;
const WAKE: u64 = 3;
const CANCEL: u64 = 4;

fn user_data(kind: u64, generation: u32, index: u32) -> u64 {
    kind << 56 | u64::from(generation & 0xff_ffff) << 32 | u64::from(index)
}

/// A socket and the generation of its multishot receive (a late completion of a closed
/// socket's receive carries an older one).
struct Sock {
    socket: UdpSocket,
    generation: u32,
}

/// A send in flight: its message, which must stay put until it completes.
struct SendSlot {
    msg: libc::msghdr,
    iov: [libc::iovec; 2],
    addr: libc::sockaddr_in6,
    trailer: [u8; MAX_TRAILER],
    /// The receive buffer it sends from, given back once it completed.
    buffer: Option<u16>,
    /// The buffer of its own it sends from (packets the endpoint made).
    own: Option<u16>,
    /// The call it sends for.
    call: CallNo,
}

/// The ring of provided buffers: entries the kernel takes buffers from, and the buffers.
struct BufRing {
    entries: *mut BufRingEntry,
    tail: u16,
    published: u16,
    bufs: Box<[u8]>,
    /// Where `bufs`' block starts: it stays there while `bufs` is lent to a handler.
    base: *mut u8,
}

impl BufRing {
    fn layout() -> Layout {
        Layout::from_size_align(
            usize::from(BUFS) * std::mem::size_of::<BufRingEntry>(),
            4096,
        )
        .expect("a valid layout")
    }

    fn new() -> Self {
        // SAFETY: a non-zero size; zeroed entries are valid.
        let entries = unsafe { alloc_zeroed(Self::layout()) }.cast::<BufRingEntry>();
        assert!(!entries.is_null(), "allocating the buffer ring");
        let mut bufs = vec![0u8; usize::from(BUFS) * BUF_SIZE].into_boxed_slice();
        let base = bufs.as_mut_ptr();
        let mut ring = BufRing {
            entries,
            tail: 0,
            published: 0,
            bufs,
            base,
        };
        for bid in 0..BUFS {
            ring.give_back(bid);
        }
        ring.publish();
        ring
    }

    /// Puts buffer `bid` back (seen by the kernel once published).
    fn give_back(&mut self, bid: u16) {
        let addr = self.base.wrapping_add(usize::from(bid) * BUF_SIZE) as u64;
        // SAFETY: the index is masked into the ring.
        let entry = unsafe { &mut *self.entries.add(usize::from(self.tail & (BUFS - 1))) };
        entry.set_addr(addr);
        entry.set_len(BUF_SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Lets the kernel see the buffers given back.
    fn publish(&mut self) {
        if self.published == self.tail {
            return;
        }
        // SAFETY: the tail field of the first entry, per the io_uring ABI; the kernel reads it
        // with acquire semantics.
        unsafe {
            let tail = BufRingEntry::tail(self.entries).cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
        self.published = self.tail;
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.entries.cast(), Self::layout()) };
    }
}

/// A worker's I/O through io_uring.
pub struct Uring {
    ring: IoUring,
    bufs: BufRing,
    /// The multishot receives' template: only its name and control lengths matter.
    recv_msg: Box<libc::msghdr>,
    sockets: Vec<Option<Sock>>,
    free: Vec<usize>,
    generation: u32,
    slots: Box<[SendSlot]>,
    free_slots: Vec<u16>,
    own_bufs: Box<[u8]>,
    free_own: Vec<u16>,
    /// Whether a send references each receive buffer.
    buffer_sent: Vec<bool>,
    batch: Vec<Datagram>,
    batch_bufs: Vec<u16>,
    completions: Vec<(u64, i32, u32)>,
    /// The calls of refused sends, until taken (at most [`SEND_SLOTS`]).
    send_failures: Vec<CallNo>,
    eventfd: OwnedFd,
    wake_buf: Box<u64>,
    counters: Arc<IoCounters>,
}

// SAFETY: the raw pointers (the buffer ring's entries, the send slots' messages) point into
// memory this value owns, and the ring is used by one thread at a time.
unsafe impl Send for Uring {}

impl Uring {
    /// A ring with its provided buffers registered and its waker armed.
    pub fn new() -> io::Result<Uring> {
        let ring = IoUring::builder()
            .setup_coop_taskrun()
            .setup_cqsize(ENTRIES * 4)
            .build(ENTRIES)?;
        let bufs = BufRing::new();
        // SAFETY: the entries stay allocated (and unmoved) as long as the ring, which is
        // dropped first (field order).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(bufs.entries as u64, BUFS, GROUP, 0)?;
        }
        // SAFETY: eventfd has no memory preconditions.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor just created and owned by nobody else.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: msghdr is plain data; zeroes are valid.
        let mut recv_msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        recv_msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as u32;
        let slots = (0..SEND_SLOTS)
            .map(|_| SendSlot {
                // SAFETY: plain data; the pointers are set before each use.
                msg: unsafe { std::mem::zeroed() },
                iov: [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; 2],
                // SAFETY: plain data.
                addr: unsafe { std::mem::zeroed() },
                trailer: [0; MAX_TRAILER],
                buffer: None,
                own: None,
                call: CallNo(0),
            })
            .collect();
        let mut uring = Uring {
            ring,
            bufs,
            recv_msg,
            sockets: Vec::new(),
            free: Vec::new(),
            generation: 0,
            slots,
            free_slots: (0..SEND_SLOTS as u16).rev().collect(),
            own_bufs: vec![0u8; OWN_SLOTS * MAX_DATAGRAM].into_boxed_slice(),
            free_own: (0..OWN_SLOTS as u16).rev().collect(),
            buffer_sent: vec![false; usize::from(BUFS)],
            batch: Vec::with_capacity(BATCH),
            batch_bufs: Vec::with_capacity(BATCH),
            completions: Vec::with_capacity(ENTRIES as usize * 4),
            send_failures: Vec::with_capacity(SEND_SLOTS),
            eventfd,
            wake_buf: Box::new(0),
            counters: Arc::new(IoCounters::default()),
        };
        uring.arm_waker();
        Ok(uring)
    }

    /// Queues an entry, flushing the submission queue to the kernel if it is full.
    ///
    /// # Safety
    /// Whatever the entry points at must stay valid until it completes.
    unsafe fn push(&mut self, entry: &squeue::Entry) {
        // SAFETY: the caller's promise.
        while unsafe { self.ring.submission().push(entry) }.is_err() {
            if self.ring.submit().is_err() {
                std::thread::yield_now();
            }
        }
    }

    fn arm_waker(&mut self) {
        let entry = opcode::Read::new(
            types::Fd(self.eventfd.as_raw_fd()),
            (&mut *self.wake_buf as *mut u64).cast(),
            8,
        )
        .build()
        .user_data(user_data(WAKE, 0, 0));
        // SAFETY: the buffer is boxed and lives as long as the ring.
        unsafe { self.push(&entry) };
    }

    fn arm_recv(&mut self, index: usize) {
        let Some(sock) = &self.sockets[index] else {
            return;
        };
        let entry =
            opcode::RecvMsgMulti::new(types::Fd(sock.socket.as_raw_fd()), &*self.recv_msg, GROUP)
                .build()
                .user_data(user_data(RECV, sock.generation, index as u32));
        // SAFETY: the template is boxed and lives as long as the ring.
        unsafe { self.push(&entry) };
    }

    /// Takes every completion waiting, handling batches of datagrams as they fill.
    fn reap(&mut self, now: Instant, handler: &mut impl BatchHandler) {
        loop {
            self.completions.clear();
            self.completions.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            if self.completions.is_empty() {
                return;
            }
            let mut rearm = Vec::new();
            for k in 0..self.completions.len() {
                let (data, result, flags) = self.completions[k];
                let index = (data & 0xffff_ffff) as usize;
                match data >> 56 {
                    RECV => {
                        let generation = ((data >> 32) & 0xff_ffff) as u32;
                        let live = matches!(&self.sockets.get(index), Some(Some(s)) if s.generation & 0xff_ffff == generation);
                        if let Some(bid) = cqueue::buffer_select(flags) {
                            if !live
                                || result < 0
                                || !self.take_datagram(index, bid, result as usize)
                            {
                                self.bufs.give_back(bid);
                            }
                        }
                        if live && !cqueue::more(flags) {
                            rearm.push(index);
                        }
                        if self.batch.len() >= BATCH {
                            self.handle(now, handler);
                        }
                    }
                    SEND => self.sent(index, result),
                    WAKE => self.arm_waker(),
                    _ => {}
                }
            }
            self.handle(now, handler);
            for index in rearm {
                self.arm_recv(index);
            }
            self.bufs.publish();
        }
    }

    /// Adds the datagram in buffer `bid` (`len` bytes with the header) to the batch; `false`
    /// if there is none to add (truncated, or from no IP sender).
    fn take_datagram(&mut self, index: usize, bid: u16, len: usize) -> bool {
        let at = usize::from(bid) * BUF_SIZE;
        let buf = &self.bufs.bufs[at..at + len.min(BUF_SIZE)];
        let Ok(out) = RecvMsgOut::parse(buf, &self.recv_msg) else {
            return false;
        };
        if out.is_payload_truncated() || out.is_name_data_truncated() {
            return false;
        }
        let Some(from) = sockaddr(out.name_data()) else {
            return false;
        };
        let payload = out.payload_data();
        let start = at + (payload.as_ptr() as usize - buf.as_ptr() as usize);
        self.batch.push(Datagram {
            socket: SocketId(index as u32),
            from,
            start,
            end: start + payload.len(),
        });
        self.batch_bufs.push(bid);
        true
    }

    /// A send completed.
    fn sent(&mut self, slot: usize, result: i32) {
        let Some(call) = self.slots.get(slot).map(|s| s.call) else {
            return;
        };
        if result >= 0 {
            self.counters.datagrams_out.fetch_add(1, Ordering::Relaxed);
        } else {
            self.send_failed(call);
        }
        let s = &mut self.slots[slot];
        if let Some(bid) = s.buffer.take() {
            self.buffer_sent[usize::from(bid)] = false;
            self.bufs.give_back(bid);
        }
        if let Some(own) = s.own.take() {
            self.free_own.push(own);
        }
        self.free_slots.push(slot as u16);
    }

    /// Hands the batch to `handler`; buffers no send needs go back at once.
    fn handle(&mut self, now: Instant, handler: &mut impl BatchHandler) {
        if self.batch.is_empty() {
            return;
        }
        self.counters.receives.fetch_add(1, Ordering::Relaxed);
        self.counters
            .datagrams_in
            .fetch_add(self.batch.len() as u64, Ordering::Relaxed);
        let batch = std::mem::take(&mut self.batch);
        let mut bufs = std::mem::take(&mut self.bufs.bufs);
        {
            let mut out = UringOutbox {
                uring: self,
                reserved: None,
            };
            handler.handle_batch(now, &mut bufs, &batch, &mut out);
        }
        self.bufs.bufs = bufs;
        self.batch = batch;
        self.batch.clear();
        for k in 0..self.batch_bufs.len() {
            let bid = self.batch_bufs[k];
            if !self.buffer_sent[usize::from(bid)] {
                self.bufs.give_back(bid);
            }
        }
        self.batch_bufs.clear();
    }

    /// Queues a send from the slot `slot`, whose trailer holds `trailer` bytes.
    /// Counts a datagram of `call` that could not be sent.
    fn send_failed(&mut self, call: CallNo) {
        self.counters.send_failed.fetch_add(1, Ordering::Relaxed);
        if self.send_failures.len() < self.send_failures.capacity() {
            self.send_failures.push(call);
        }
    }

    /// Queues `t`'s send in `slot`, its `len` bytes read from `bytes` (its `start` is not
    /// used).
    fn queue_send(&mut self, slot: u16, t: Transmit, bytes: *const u8) {
        let Transmit {
            call,
            socket,
            dest,
            len,
            trailer,
            ..
        } = t;
        let Some(Some(sock)) = self.sockets.get(socket.0 as usize) else {
            self.free_slots.push(slot);
            return;
        };
        let fd = sock.socket.as_raw_fd();
        let s = &mut self.slots[usize::from(slot)];
        s.call = call;
        let namelen = write_sockaddr(&mut s.addr, dest);
        s.iov[0] = libc::iovec {
            iov_base: bytes as *mut libc::c_void,
            iov_len: len,
        };
        s.iov[1] = libc::iovec {
            iov_base: s.trailer.as_mut_ptr().cast(),
            iov_len: trailer,
        };
        s.msg.msg_name = (&mut s.addr as *mut libc::sockaddr_in6).cast();
        s.msg.msg_namelen = namelen;
        s.msg.msg_iov = s.iov.as_mut_ptr();
        s.msg.msg_iovlen = if trailer > 0 { 2 } else { 1 };
        let entry = opcode::SendMsg::new(types::Fd(fd), &s.msg)
            .build()
            .user_data(user_data(SEND, 0, u32::from(slot)));
        // SAFETY: the slot (and the buffer it points into) stays put until the send completes.
        unsafe { self.push(&entry) };
    }
}

/// The io_uring side's outbox: sends go out as `sendmsg` entries of send slots.
struct UringOutbox<'a> {
    uring: &'a mut Uring,
    reserved: Option<u16>,
}

impl Outbox for UringOutbox<'_> {
    fn next_trailer(&mut self) -> Option<&mut [u8]> {
        if self.reserved.is_none() {
            self.reserved = self.uring.free_slots.pop();
        }
        let slot = self.reserved?;
        Some(&mut self.uring.slots[usize::from(slot)].trailer[..])
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
        let Some(slot) = self.reserved.take().or_else(|| self.uring.free_slots.pop()) else {
            self.uring.send_failed(call);
            return;
        };
        let bid = (start / BUF_SIZE) as u16;
        self.uring.buffer_sent[usize::from(bid)] = true;
        self.uring.slots[usize::from(slot)].buffer = Some(bid);
        // The receive buffers are taken out of `bufs.bufs` while the handler runs; the heap
        // block (and so this address) stays where it is.
        let bytes = self.uring.bufs.base.cast_const().wrapping_add(start);
        let t = Transmit {
            call,
            socket,
            dest,
            start,
            len,
            trailer,
        };
        self.uring.queue_send(slot, t, bytes);
    }
}

impl Drop for UringOutbox<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.reserved.take() {
            self.uring.free_slots.push(slot);
        }
    }
}

impl Backend for Uring {
    fn register(&mut self, socket: UdpSocket, _shared: bool) -> io::Result<SocketId> {
        socket.set_nonblocking(true)?;
        let index = self.free.pop().unwrap_or_else(|| {
            self.sockets.push(None);
            self.sockets.len() - 1
        });
        self.generation = self.generation.wrapping_add(1);
        self.sockets[index] = Some(Sock {
            socket,
            generation: self.generation,
        });
        self.arm_recv(index);
        Ok(SocketId(index as u32))
    }

    fn close(&mut self, id: SocketId) {
        let index = id.0 as usize;
        if let Some(Some(sock)) = self.sockets.get_mut(index).map(Option::take) {
            let entry = opcode::AsyncCancel::new(user_data(RECV, sock.generation, index as u32))
                .build()
                .user_data(user_data(CANCEL, 0, 0));
            // SAFETY: a cancel points at nothing.
            unsafe { self.push(&entry) };
            self.free.push(index);
        }
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.bufs.publish();
        if !self.ring.completion().is_empty() {
            self.ring.submit()?;
            return Ok(());
        }
        let result = match timeout {
            Some(t) => {
                let ts = Timespec::from(t);
                let args = SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn receive(&mut self, now: Instant, handler: &mut impl BatchHandler) {
        self.reap(now, handler);
    }

    fn send(&mut self, bytes: &[u8], transmits: &[Transmit]) {
        for t in transmits {
            if t.len > MAX_DATAGRAM {
                continue;
            }
            let (Some(own), Some(slot)) = (self.free_own.pop(), self.free_slots.pop()) else {
                // Every slot is in flight: let some sends complete first.
                self.send_failed(t.call);
                continue;
            };
            let at = usize::from(own) * MAX_DATAGRAM;
            self.own_bufs[at..at + t.len].copy_from_slice(&bytes[t.start..t.start + t.len]);
            self.slots[usize::from(slot)].own = Some(own);
            let ptr = self.own_bufs[at..].as_ptr();
            self.queue_send(slot, Transmit { trailer: 0, ..*t }, ptr);
        }
    }

    fn take_send_failures(&mut self, each: impl FnMut(CallNo)) {
        self.send_failures.drain(..).for_each(each);
    }

    fn counters(&self) -> Arc<IoCounters> {
        self.counters.clone()
    }

    fn waker(&self) -> io::Result<WakeHandle> {
        Ok(WakeHandle::EventFd(self.eventfd.try_clone()?))
    }
}

impl Drop for Uring {
    /// Cancels every request in flight and waits (briefly) until the kernel let go of them:
    /// they point into buffers this value owns.
    fn drop(&mut self) {
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(user_data(CANCEL, 0, 0));
        // SAFETY: a cancel points at nothing.
        if unsafe { self.ring.submission().push(&cancel) }.is_err() {
            return;
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        let tick = Timespec::from(Duration::from_millis(10));
        while Instant::now() < deadline {
            let args = SubmitArgs::new().timespec(&tick);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            let mut cancelled = false;
            for c in self.ring.completion() {
                cancelled |= c.user_data() >> 56 == CANCEL;
            }
            if cancelled {
                return;
            }
        }
    }
}

/// Writes `addr` as a `sockaddr_in` or `sockaddr_in6`; returns its length.
fn write_sockaddr(out: &mut libc::sockaddr_in6, addr: SocketAddr) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let v4 = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: a sockaddr_in fits in a sockaddr_in6.
            unsafe { std::ptr::write_unaligned((out as *mut libc::sockaddr_in6).cast(), v4) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            *out = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Reads a sender's address as the kernel wrote it.
fn sockaddr(name: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(name.get(..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match i32::from(family) {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                0,
                scope,
            )))
        }
        _ => None,
    }
}
