//! Batched UDP I/O: many datagrams per system call, with no allocation and no copy.
//!
//! Receiving ([`RecvBatch`]) uses `recvmmsg` into consecutive slots of the caller's buffer,
//! and, on sockets with UDP GRO on (Linux 5.0+), datagrams of one sender that queue up
//! together come out of one message back to back, `stride` bytes apart. Sending collects
//! datagrams as ranges of the caller's buffer ([`SendQueue`]), for any number of sockets, and
//! hands each socket's run of them to one `sendmmsg`; runs of datagrams of one size to one
//! destination go as one UDP GSO message (Linux 4.18+), whose segments the kernel cuts. Each
//! datagram may carry a detached trailer (an SRTP tag kept in the queue), sent as its own
//! iovec, so a packet protected in a receive buffer needs no room behind it and is never moved.
//!
//! `quinn-udp` does GSO and GRO too, but takes each batch as one contiguous buffer, which
//! would mean copying every packet whose length SRTP changes; this module gathers them
//! instead. Without GSO or GRO in the kernel it falls back to one datagram per message (still
//! one system call per socket and batch).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use socket2::{SockAddr, SockAddrStorage};

/// `UDP_SEGMENT` (linux/udp.h): the GSO segment size, as a socket option or control message.
const UDP_SEGMENT: libc::c_int = 103;
/// `UDP_GRO` (linux/udp.h): deliver coalesced datagrams, with their size in a control message.
const UDP_GRO: libc::c_int = 104;
/// Most segments in one GSO message (`UDP_MAX_SEGMENTS` is 64 on older kernels).
const MAX_SEGMENTS: usize = 64;
/// Most payload bytes in one GSO message (one IP datagram's worth, less the headers).
const MAX_GSO_BYTES: usize = 65_000;
/// Longest detached trailer: an SRTP tag.
pub const MAX_TRAILER: usize = 16;
/// Bytes a receive slot needs to take whatever UDP GRO coalesces into one message.
pub const GRO_SLOT: usize = 1 << 16;

/// Turns UDP GRO on for `socket`; returns whether the kernel supports it.
pub fn enable_gro(socket: &impl AsRawFd) -> bool {
    setsockopt_int(socket.as_raw_fd(), UDP_GRO, 1)
}

/// Whether `socket` can send GSO messages (probed by setting the option to its neutral value).
pub fn supports_gso(socket: &impl AsRawFd) -> bool {
    setsockopt_int(socket.as_raw_fd(), UDP_SEGMENT, 0)
}

fn setsockopt_int(fd: RawFd, option: libc::c_int, value: libc::c_int) -> bool {
    // SAFETY: `value` outlives the call and its size is passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// What one received message holds: `len` bytes at `start` of the buffer from `from`,
/// datagrams `stride` bytes apart (the last may be shorter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Where the message starts in the receive buffer.
    pub start: usize,
    /// Bytes received.
    pub len: usize,
    /// Size of each datagram but the last.
    pub stride: usize,
    /// The sender.
    pub from: SocketAddr,
}

impl Received {
    /// How many datagrams arrived.
    pub fn count(&self) -> usize {
        self.len.div_ceil(self.stride.max(1))
    }

    /// The datagrams, as byte ranges of the receive buffer.
    pub fn datagrams(&self) -> impl Iterator<Item = std::ops::Range<usize>> + use<> {
        let (start, len, stride) = (self.start, self.len, self.stride.max(1));
        (0..len)
            .step_by(stride)
            .map(move |at| start + at..start + (at + stride).min(len))
    }
}

/// The GRO segment size a received message's control data carries, if any.
///
/// # Safety
/// `msg`'s control fields must describe control data the kernel wrote.
unsafe fn gro_segment(msg: &libc::msghdr) -> Option<usize> {
    // SAFETY: the caller guarantees the control data; the CMSG macros walk it within
    // `msg_controllen`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                return (size > 0).then_some(size as usize);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

/// Receives once from the non-blocking `socket` into `buf`: one datagram, or with GRO on,
/// several of one sender. `buf` should hold [`GRO_SLOT`] bytes for GRO; `WouldBlock` when
/// nothing waits.
pub fn recv_batch(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut addr = SockAddrStorage::zeroed();
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut addr as *mut SockAddrStorage).cast();
    msg.msg_namelen = addr.size_of();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` points at a live buffer of the stated size.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = n as usize;
    // SAFETY: the kernel wrote `msg`'s control data.
    let stride = unsafe { gro_segment(&msg) }.unwrap_or(len);
    // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes into `addr`.
    let from = unsafe { SockAddr::new(addr, msg.msg_namelen) }
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP sender"))?;
    Ok(Received {
        start: 0,
        len,
        stride,
        from,
    })
}

/// Scratch for `recvmmsg` of up to `capacity` messages, allocated once.
pub struct RecvBatch {
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
    addrs: Vec<SockAddrStorage>,
    controls: Vec<[u64; 8]>,
}

// SAFETY: the raw pointers in `headers` and `iovecs` are scratch, written and read only inside
// `recv`, never dereferenced after it returns.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// Scratch for batches of up to `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        RecvBatch {
            headers: Vec::with_capacity(capacity),
            iovecs: Vec::with_capacity(capacity),
            addrs: (0..capacity).map(|_| SockAddrStorage::zeroed()).collect(),
            controls: vec![[0u64; 8]; capacity],
        }
    }

    /// Receives once from the non-blocking socket `fd` into consecutive `slot`-byte slots of
    /// `buf` (as many as fit, at most the capacity), and calls `each` with the slot index and
    /// each message received. Returns how many messages came; `WouldBlock` when none waited.
    /// A message longer than its slot is cut by the kernel and skipped, as is one from a
    /// sender that is not IP.
    pub fn recv(
        &mut self,
        fd: RawFd,
        buf: &mut [u8],
        slot: usize,
        mut each: impl FnMut(usize, Received),
    ) -> io::Result<usize> {
        let slots = (buf.len() / slot.max(1)).min(self.addrs.len());
        if slots == 0 {
            return Ok(0);
        }
        self.headers.clear();
        self.iovecs.clear();
        let base = buf.as_mut_ptr();
        for i in 0..slots {
            self.iovecs.push(libc::iovec {
                // SAFETY: slot i lies within `buf`.
                iov_base: unsafe { base.add(i * slot) }.cast(),
                iov_len: slot,
            });
        }
        for i in 0..slots {
            // SAFETY: msghdr is plain data; all zeroes is a valid value.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = (&mut self.addrs[i] as *mut SockAddrStorage).cast();
            msg.msg_namelen = self.addrs[i].size_of();
            msg.msg_iov = &mut self.iovecs[i];
            msg.msg_iovlen = 1;
            msg.msg_control = self.controls[i].as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of::<[u64; 8]>() as _;
            self.headers.push(libc::mmsghdr {
                msg_hdr: msg,
                msg_len: 0,
            });
        }
        // SAFETY: every pointer in `headers` points at live scratch or into `buf`, of the
        // stated sizes.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                slots as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, h) in self.headers[..n].iter().enumerate() {
            let len = h.msg_len as usize;
            if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                continue;
            }
            // SAFETY: the kernel wrote this message's control data and address.
            let stride = unsafe { gro_segment(&h.msg_hdr) }.unwrap_or(len);
            let addr = std::mem::replace(&mut self.addrs[i], SockAddrStorage::zeroed());
            // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes into `addr`.
            let Some(from) = unsafe { SockAddr::new(addr, h.msg_hdr.msg_namelen) }.as_socket()
            else {
                continue;
            };
            each(
                i,
                Received {
                    start: i * slot,
                    len,
                    stride,
                    from,
                },
            );
        }
        Ok(n)
    }
}

/// One datagram waiting in a [`SendQueue`]: `len` bytes at `start` of the buffer given to
/// [`SendQueue::flush`], then `trailer` bytes of trailer slot `slot`, from socket `fd`, on
/// behalf of `tag`.
#[derive(Clone, Copy, Debug)]
struct Datagram {
    fd: RawFd,
    dest: SocketAddr,
    start: usize,
    len: usize,
    slot: usize,
    trailer: usize,
    tag: u64,
}

/// What sending did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendCounters {
    /// `sendmmsg` calls made.
    pub syscalls: u64,
    /// Datagrams the kernel took.
    pub sent: u64,
    /// Datagrams refused (an unreachable destination, a full socket buffer) and dropped.
    pub failed: u64,
}

/// Datagrams to send from any number of sockets, as ranges of one buffer plus detached
/// trailers, sent with as few system calls as the kernel allows and never waiting: a socket
/// whose buffer is full drops the rest of its run (counted). Its storage is allocated once,
/// for `capacity` datagrams; a full queue takes no more until flushed.
pub struct SendQueue {
    datagrams: Vec<Datagram>,
    trailers: Box<[[u8; MAX_TRAILER]]>,
    gso: bool,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    addrs: Vec<SockAddr>,
    controls: Vec<[u64; 4]>,
    /// Datagrams in each message of the last `sendmmsg`.
    spans: Vec<usize>,
    counters: SendCounters,
    /// The tags of refused datagrams, until taken (at most `capacity`).
    failed: Vec<u64>,
}

// SAFETY: the raw pointers in `iovecs` and `headers` are scratch space, written and read only
// inside `flush`, never dereferenced after it returns.
unsafe impl Send for SendQueue {}

impl SendQueue {
    /// A queue for `capacity` datagrams; `gso` says whether to coalesce (see
    /// [`supports_gso`]).
    pub fn new(capacity: usize, gso: bool) -> Self {
        SendQueue {
            datagrams: Vec::with_capacity(capacity),
            trailers: vec![[0u8; MAX_TRAILER]; capacity].into_boxed_slice(),
            gso,
            iovecs: Vec::with_capacity(capacity * 2),
            headers: Vec::with_capacity(capacity),
            addrs: Vec::with_capacity(capacity),
            controls: Vec::with_capacity(capacity),
            spans: Vec::with_capacity(capacity),
            counters: SendCounters::default(),
            failed: Vec::with_capacity(capacity),
        }
    }

    /// Whether the queue has room for another datagram.
    pub fn has_room(&self) -> bool {
        self.datagrams.len() < self.datagrams.capacity()
    }

    /// How many datagrams wait.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    /// Whether nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Whether messages are coalesced with GSO.
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// Counters since the queue was made.
    pub fn counters(&self) -> SendCounters {
        self.counters
    }

    /// The trailer slot the next [`Self::push`] may use, to write a detached tag into.
    /// `None` when the queue is full.
    pub fn next_trailer(&mut self) -> Option<&mut [u8; MAX_TRAILER]> {
        let slot = self.datagrams.len();
        self.trailers.get_mut(slot)
    }

    /// Queues `len` bytes at `start` of the flush buffer, followed by `trailer` bytes of the
    /// slot [`Self::next_trailer`] gave, to send from socket `fd` to `dest`; `tag` (whose
    /// datagram it is) comes back from [`Self::take_failed`] if the kernel refuses it.
    /// Returns `false` (and queues nothing) when the queue is full or `trailer` is longer
    /// than a slot.
    pub fn push(
        &mut self,
        fd: RawFd,
        dest: SocketAddr,
        start: usize,
        len: usize,
        trailer: usize,
        tag: u64,
    ) -> bool {
        if !self.has_room() || trailer > MAX_TRAILER {
            return false;
        }
        let slot = self.datagrams.len();
        self.datagrams.push(Datagram {
            fd,
            dest,
            start,
            len,
            slot,
            trailer,
            tag,
        });
        true
    }

    /// The tags of the datagrams refused since the last call, oldest first (those beyond the
    /// queue's capacity are counted in [`SendCounters::failed`] only).
    pub fn take_failed(&mut self) -> std::vec::Drain<'_, u64> {
        self.failed.drain(..)
    }

    /// Counts datagrams `from..to` as refused and keeps their tags.
    fn refuse(&mut self, from: usize, to: usize) {
        self.counters.failed += (to - from) as u64;
        let room = self.failed.capacity() - self.failed.len();
        let tags = self.datagrams[from..to].iter().map(|d| d.tag).take(room);
        self.failed.extend(tags);
    }

    /// Sends what is queued, taking the datagrams' bytes from `buf` (the buffer their ranges
    /// refer to): one `sendmmsg` per socket's run of consecutive datagrams (more when the
    /// kernel takes part of one). Datagrams the kernel refuses, or that a full socket buffer
    /// has no room for, are dropped and counted. The queue is empty afterwards.
    ///
    /// # Panics
    /// If a queued range lies outside `buf`.
    pub fn flush(&mut self, buf: &[u8]) {
        let mut i = 0;
        while i < self.datagrams.len() {
            let fd = self.datagrams[i].fd;
            let end = self.datagrams[i..]
                .iter()
                .position(|d| d.fd != fd)
                .map_or(self.datagrams.len(), |k| i + k);
            self.send_run(fd, i, end, buf);
            i = end;
        }
        self.datagrams.clear();
    }

    /// Sends datagrams `i..end`, all from `fd`.
    fn send_run(&mut self, fd: RawFd, mut i: usize, end: usize, buf: &[u8]) {
        while i < end {
            self.build(buf, i, end);
            // SAFETY: `headers` points at `iovecs`, `addrs` and `controls`, all alive and
            // unmoved until the call returns; the iovecs point into `buf` and `trailers`.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.headers.as_mut_ptr(),
                    self.headers.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            self.counters.syscalls += 1;
            if n >= 0 {
                let sent: usize = self.spans[..n as usize].iter().sum();
                self.counters.sent += sent as u64;
                i += sent;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => {
                    // The socket's buffer is full: media that waits is late media.
                    self.refuse(i, end);
                    return;
                }
                io::ErrorKind::Interrupted => continue,
                _ if e.raw_os_error() == Some(libc::EIO) && self.gso && self.spans[0] > 1 => {
                    // The route cannot offload segmentation: send datagram by datagram.
                    self.gso = false;
                }
                _ => {
                    // The first message was refused (ICMP unreachable, EMSGSIZE, ...): drop it
                    // and go on with the rest.
                    self.refuse(i, i + self.spans[0]);
                    i += self.spans[0];
                }
            }
        }
    }

    /// Builds the messages for datagrams `from..end`: consecutive datagrams of one size to one
    /// destination share a GSO message.
    fn build(&mut self, buf: &[u8], from: usize, end: usize) {
        self.iovecs.clear();
        self.headers.clear();
        self.addrs.clear();
        self.controls.clear();
        self.spans.clear();
        let mut i = from;
        while i < end {
            let first = self.datagrams[i];
            let size = first.len + first.trailer;
            let mut span = 1;
            if self.gso {
                let mut bytes = size;
                while let Some(next) = self.datagrams[..end].get(i + span) {
                    let next_size = next.len + next.trailer;
                    // All segments but the last have the message's segment size.
                    if next.dest != first.dest
                        || next_size > size
                        || span == MAX_SEGMENTS
                        || bytes + next_size > MAX_GSO_BYTES
                    {
                        break;
                    }
                    span += 1;
                    bytes += next_size;
                    if next_size < size {
                        break;
                    }
                }
            }
            let iov_first = self.iovecs.len();
            for d in &self.datagrams[i..i + span] {
                let bytes = &buf[d.start..d.start + d.len];
                self.iovecs.push(libc::iovec {
                    iov_base: bytes.as_ptr() as *mut libc::c_void,
                    iov_len: bytes.len(),
                });
                if d.trailer > 0 {
                    self.iovecs.push(libc::iovec {
                        iov_base: self.trailers[d.slot].as_ptr() as *mut libc::c_void,
                        iov_len: d.trailer,
                    });
                }
            }
            self.addrs.push(SockAddr::from(first.dest));
            let mut control = [0u64; 4];
            let controllen = if span > 1 {
                // SAFETY: `control` has room for one cmsghdr with a u16 (CMSG_SPACE(2) is 24
                // bytes on 64-bit Linux, 16 on 32-bit).
                unsafe {
                    let cmsg = control.as_mut_ptr().cast::<libc::cmsghdr>();
                    (*cmsg).cmsg_level = libc::SOL_UDP;
                    (*cmsg).cmsg_type = UDP_SEGMENT;
                    (*cmsg).cmsg_len = libc::CMSG_LEN(2) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), size as u16);
                    libc::CMSG_SPACE(2) as usize
                }
            } else {
                0
            };
            self.controls.push(control);
            self.spans.push(span);
            self.headers.push(libc::mmsghdr {
                // SAFETY: msghdr is plain data; the pointers are set below.
                msg_hdr: unsafe { std::mem::zeroed() },
                msg_len: 0,
            });
            let h = self.headers.last_mut().expect("just pushed");
            h.msg_hdr.msg_iovlen = (self.iovecs.len() - iov_first) as _;
            h.msg_hdr.msg_controllen = controllen as _;
            // The iovec start is fixed up once `iovecs` stops growing.
            h.msg_hdr.msg_iov = iov_first as *mut libc::iovec;
            i += span;
        }
        let iov_base = self.iovecs.as_mut_ptr();
        for (k, h) in self.headers.iter_mut().enumerate() {
            // SAFETY: the offset stored above is within `iovecs`.
            h.msg_hdr.msg_iov = unsafe { iov_base.add(h.msg_hdr.msg_iov as usize) };
            h.msg_hdr.msg_name = self.addrs[k].as_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_namelen = self.addrs[k].len();
            if h.msg_hdr.msg_controllen > 0 {
                h.msg_hdr.msg_control = self.controls[k].as_mut_ptr().cast();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn pair() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        (tx, rx)
    }

    fn recv_all(rx: &UdpSocket, expect: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while out.len() < expect {
            let n = rx.recv(&mut buf).expect("datagram");
            out.push(buf[..n].to_vec());
        }
        out
    }

    #[test]
    fn gathers_ranges_and_trailers_into_separate_datagrams() {
        let (tx, rx) = pair();
        let dest = rx.local_addr().unwrap();
        let buf: Vec<u8> = (0..=255u8).collect();
        for gso in [false, supports_gso(&tx)] {
            let mut q = SendQueue::new(8, gso);
            let fd = tx.as_raw_fd();
            for k in 0..5usize {
                let t = q.next_trailer().unwrap();
                t[..4].copy_from_slice(&[0xee, 0xee, 0xee, k as u8]);
                assert!(q.push(fd, dest, k * 20, 10, 4, 0));
            }
            // A shorter one ends the GSO run; a longer one starts a new message.
            assert!(q.push(fd, dest, 200, 3, 0, 0));
            assert!(q.push(fd, dest, 100, 30, 0, 0));
            q.flush(&buf);
            let got = recv_all(&rx, 7);
            for (k, d) in got.iter().take(5).enumerate() {
                let mut want: Vec<u8> = (k as u8 * 20..k as u8 * 20 + 10).collect();
                want.extend_from_slice(&[0xee, 0xee, 0xee, k as u8]);
                assert_eq!(d, &want, "gso {gso}, datagram {k}");
            }
            assert_eq!(got[5], vec![200, 201, 202]);
            assert_eq!(got[6], (100..130).collect::<Vec<u8>>());
            assert!(q.is_empty());
            let c = q.counters();
            assert_eq!((c.sent, c.failed), (7, 0));
            if gso {
                assert_eq!(c.syscalls, 1);
            }
        }
    }

    #[test]
    fn gro_receives_a_gso_batch_as_strided_datagrams() {
        let (tx, rx) = pair();
        if !supports_gso(&tx) || !enable_gro(&rx) {
            return;
        }
        let dest = rx.local_addr().unwrap();
        let buf = [7u8; 1000];
        let mut q = SendQueue::new(16, true);
        for k in 0..10 {
            assert!(q.push(tx.as_raw_fd(), dest, k * 50, 50, 0, 0));
        }
        q.flush(&buf);
        rx.set_nonblocking(true).unwrap();
        let mut big = vec![0u8; 1 << 16];
        let mut got = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while got < 10 && std::time::Instant::now() < deadline {
            match recv_batch(&rx, &mut big) {
                Ok(r) => {
                    assert_eq!(r.stride, 50);
                    assert_eq!(r.from, tx.local_addr().unwrap());
                    assert_eq!(r.datagrams().count(), r.count());
                    got += r.count();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, 10);
    }

    #[test]
    fn one_flush_serves_many_sockets_and_recvmmsg_takes_many_senders() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = rx.local_addr().unwrap();
        let senders: Vec<UdpSocket> = (0..4)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let buf: Vec<u8> = (0..64u8).collect();
        let mut q = SendQueue::new(16, false);
        for (k, s) in senders.iter().enumerate() {
            for j in 0..2 {
                assert!(q.push(s.as_raw_fd(), dest, k * 8 + j, 4, 0, 0));
            }
        }
        q.flush(&buf);
        assert_eq!(q.counters().sent, 8);
        assert_eq!(q.counters().syscalls, 4, "one sendmmsg per socket");
        let mut batch = RecvBatch::new(16);
        let mut big = vec![0u8; 16 * 2048];
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while got.len() < 8 && std::time::Instant::now() < deadline {
            match batch.recv(rx.as_raw_fd(), &mut big, 2048, |slot, r| {
                got.push((slot, r))
            }) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got.len(), 8);
        for (k, s) in senders.iter().enumerate() {
            let mine: Vec<&Received> = got
                .iter()
                .map(|g| &g.1)
                .filter(|r| r.from == s.local_addr().unwrap())
                .collect();
            assert_eq!(mine.len(), 2);
            for (j, r) in mine.iter().enumerate() {
                assert_eq!(
                    &big[r.start..r.start + r.len],
                    &buf[k * 8 + j..k * 8 + j + 4]
                );
                assert_eq!(r.start % 2048, 0);
            }
        }
    }

    #[test]
    fn a_refused_message_is_dropped_and_the_rest_still_go() {
        let (tx, rx) = pair();
        let good = rx.local_addr().unwrap();
        let buf = [1u8; 64];
        let mut q = SendQueue::new(4, false);
        // Port 0 cannot be sent to: sendmmsg stops there (a partly sent batch), the next
        // call refuses that message alone, and the rest still go, in order.
        let fd = tx.as_raw_fd();
        q.push(fd, good, 0, 8, 0, 1);
        q.push(fd, "127.0.0.1:0".parse().unwrap(), 8, 8, 0, 2);
        q.push(fd, good, 16, 9, 0, 3);
        q.push(fd, good, 32, 10, 0, 4);
        q.flush(&buf);
        let lens: Vec<usize> = recv_all(&rx, 3).iter().map(Vec::len).collect();
        assert_eq!(lens, vec![8, 9, 10]);
        let c = q.counters();
        assert_eq!((c.sent, c.failed), (3, 1));
        assert!(c.syscalls >= 2, "{c:?}");
        assert_eq!(
            q.take_failed().collect::<Vec<_>>(),
            vec![2],
            "whose datagram failed"
        );
        assert_eq!(q.take_failed().count(), 0, "taken once");
    }
}
