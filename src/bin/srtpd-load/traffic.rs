//! The load's traffic: the producers, the peers and the sinks of N calls, and what came back.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use srtpd::net::{GRO_SLOT, RecvBatch, SendQueue, enable_gro, supports_gso};
use srtpd::rtp::{PacketKind, RtpHeader, RtpPacket, SeqNo, Ssrc, classify, stream_ssrc};
use srtpd::srtp::{MasterKey, SrtpContext, SrtpOptions, SrtpProfile};

/// Every call's SRTP profile.
pub const PROFILE: SrtpProfile = SrtpProfile::AesCm128HmacSha1_80;
const PAYLOAD: usize = 80;
const RTP_LEN: usize = 12 + PAYLOAD;
/// SSRCs: the relay sends call i as `OUT_BASE + i`; the producer and the peer send it as
/// `IN_BASE + i`.
pub const OUT_BASE: u32 = 0x1000_0000;
/// See [`OUT_BASE`].
pub const IN_BASE: u32 = 0x2000_0000;
/// Key seed of the relay → peer direction.
pub const TO_PEER: u8 = 0x11;
/// Key seed of the peer → relay direction.
pub const FROM_PEER: u8 = 0x22;
/// Histogram of inter-packet times: 0.1 ms buckets up to 1 s.
const BUCKETS: usize = 10_000;
/// Datagrams per `sendmmsg` of the per-call peers.
const PKTINFO_BATCH: usize = 256;
/// Threads that send the load.
const SENDERS: usize = 2;

/// Key‖salt of call `i` in one direction.
pub fn call_key(i: usize, seed: u8) -> [u8; 30] {
    let mut k = [seed; 30];
    k[..4].copy_from_slice(&(i as u32).to_be_bytes());
    k
}

/// A context for call `i`'s keys in one direction.
pub fn context(i: usize, seed: u8) -> SrtpContext {
    let key = MasterKey::from_concatenated(PROFILE, &call_key(i, seed)).expect("a valid key");
    SrtpContext::new(PROFILE, &key, &SrtpOptions::default()).expect("a valid context")
}

/// The peers' topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peers {
    /// A distinct address per call.
    PerCall,
    /// One address for every call.
    Shared,
}

/// Where each call's media and producer packets go.
#[derive(Default, Debug)]
pub struct Calls {
    /// The relay's media address of each call.
    pub media: Vec<SocketAddr>,
    /// The address each call's producer sends to.
    pub sources: Vec<SocketAddr>,
}

/// What a run measured.
#[derive(Debug)]
pub struct Report {
    pub send_wall_s: f64,
    pub achieved_pps_per_call: f64,
    pub sent_rtp: u64,
    pub sent_srtp: u64,
    pub got_srtp: u64,
    pub got_rtp: u64,
    pub undecryptable: u64,
    pub cpu_s: f64,
    hist: Vec<u64>,
    /// Time from the producer's send to the peer's receipt, through the relay.
    pub transit_to_peer: Vec<u64>,
    /// Time from the peer's send to the sink's receipt, through the relay.
    pub transit_to_sink: Vec<u64>,
}

impl Report {
    /// Packets that came through, both ways.
    pub fn through(&self) -> u64 {
        self.got_srtp + self.got_rtp
    }

    /// The share of packets lost, both ways.
    pub fn loss_ratio(&self) -> f64 {
        1.0 - self.through() as f64 / (self.sent_rtp + self.sent_srtp).max(1) as f64
    }

    /// The inter-packet times (ms) at the receiver of the relay's SRTP.
    pub fn interpacket(&self) -> &[u64] {
        &self.hist
    }
}

/// The value (ms) of a 0.1 ms histogram below which a share `p` of its counts lie.
pub fn percentile(hist: &[u64], p: f64) -> f64 {
    let total: u64 = hist.iter().sum();
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if total > 0 && seen as f64 >= p * total as f64 {
            return i as f64 / 10.0;
        }
    }
    0.0
}

/// The largest value (ms) a 0.1 ms histogram counted.
pub fn max(hist: &[u64]) -> f64 {
    hist.iter()
        .rposition(|&c| c > 0)
        .map_or(0.0, |i| i as f64 / 10.0)
}

/// Counts `d` into a 0.1 ms histogram (up to 1 s).
fn count(hist: &mut [u64], d: Duration) {
    let bucket = (d.as_secs_f64() * 10_000.0) as usize;
    hist[bucket.min(BUCKETS - 1)] += 1;
}

/// When a plain RTP packet of the load was sent: the nanoseconds after `start` its payload
/// begins with.
fn sent_at(rtp: &[u8], start: Instant) -> Option<Instant> {
    let packet = RtpPacket::new_checked(rtp).ok()?;
    let ns = u64::from_be_bytes(packet.payload().get(..8)?.try_into().ok()?);
    Some(start + Duration::from_nanos(ns))
}

impl Report {}

/// The load side's sockets.
pub struct Traffic {
    n: usize,
    peers: Peers,
    peer: Arc<UdpSocket>,
    sink: Arc<UdpSocket>,
    producer: UdpSocket,
}

/// A UDP socket on `addr` with 16 MiB buffers and a 100 ms read timeout.
pub fn big_socket(addr: SocketAddr) -> Result<UdpSocket, String> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
        .map_err(|e| e.to_string())?;
    let _ = s.set_recv_buffer_size(16 << 20);
    let _ = s.set_send_buffer_size(16 << 20);
    s.bind(&addr.into())
        .map_err(|e| format!("bind {addr}: {e}"))?;
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

impl Traffic {
    /// Sockets for `n` calls with `peers`.
    pub fn new(n: usize, peers: Peers) -> Result<Traffic, String> {
        if peers == Peers::PerCall && n > 1 << 16 {
            return Err("at most 65,536 calls with a peer address each".into());
        }
        let peer = match peers {
            // Bound to any address: it takes what comes to every 127.1.x.y peer address.
            Peers::PerCall => big_socket(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?,
            Peers::Shared => {
                let s = big_socket(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
                enable_gro(&s);
                s
            }
        };
        let sink = big_socket(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        enable_gro(&sink);
        Ok(Traffic {
            n,
            peers,
            peer: Arc::new(peer),
            sink: Arc::new(sink),
            producer: big_socket(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?,
        })
    }

    /// How many calls.
    pub fn calls(&self) -> usize {
        self.n
    }

    /// Call `i`'s peer address.
    pub fn peer_addr(&self, i: usize) -> SocketAddr {
        peer_addr(self.peers, self.peer_port(), i)
    }

    /// The port every peer address has.
    pub fn peer_port(&self) -> u16 {
        self.peer.local_addr().expect("bound").port()
    }

    /// Where every call's sink goes.
    pub fn sink_addr(&self) -> SocketAddr {
        self.sink.local_addr().expect("bound")
    }

    /// Plays every call's producer and peer for `seconds`, against `calls`, the calls spread
    /// over `phases` steps of each 20 ms period (1: every call's packets at once); `cpu` reads
    /// the CPU time of what is measured.
    pub fn run(
        &self,
        calls: &Calls,
        seconds: u64,
        phases: usize,
        cpu: &dyn Fn() -> Result<f64, String>,
    ) -> Result<Report, String> {
        let n = self.n;
        let stop = Arc::new(AtomicBool::new(false));
        let (got_srtp, got_rtp, bad) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        // Let what is still in flight from an earlier run drain first.
        drain(&self.peer);
        drain(&self.sink);
        // Every packet carries the time it was sent (ns since `start`, in its first payload
        // bytes), so that the receivers can tell the relay's delay from the senders'.
        let start = Instant::now();
        // SRTP from the relay: decrypt, count, and time the gaps per call and the transit.
        let srtp_rx = {
            let (peer, stop, got, bad) = (
                self.peer.clone(),
                stop.clone(),
                got_srtp.clone(),
                bad.clone(),
            );
            std::thread::spawn(move || {
                let mut rx: Vec<SrtpContext> = (0..n).map(|i| context(i, TO_PEER)).collect();
                let mut last = vec![None::<Instant>; n];
                let mut hist = vec![0u64; BUCKETS];
                let mut transit = vec![0u64; BUCKETS];
                receive_until(&peer, &stop, |buf| {
                    if classify(buf) != PacketKind::Rtp {
                        return; // STUN or RTCP
                    }
                    let Some(Ssrc(ssrc)) = stream_ssrc(buf) else {
                        return;
                    };
                    let Some(i) = ssrc
                        .checked_sub(OUT_BASE)
                        .map(|i| i as usize)
                        .filter(|&i| i < n)
                    else {
                        return;
                    };
                    let Ok(len) = rx[i].unprotect(buf) else {
                        bad.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    let now = Instant::now();
                    if let Some(prev) = last[i] {
                        count(&mut hist, now - prev);
                    }
                    last[i] = Some(now);
                    if let Some(sent) = sent_at(&buf[..len], start) {
                        count(&mut transit, now.saturating_duration_since(sent));
                    }
                    got.fetch_add(1, Ordering::Relaxed);
                });
                (hist, transit)
            })
        };
        let rtp_rx = {
            let (sink, stop, got) = (self.sink.clone(), stop.clone(), got_rtp.clone());
            std::thread::spawn(move || {
                let mut transit = vec![0u64; BUCKETS];
                receive_until(&sink, &stop, |buf| {
                    if let Some(sent) = sent_at(buf, start) {
                        count(&mut transit, Instant::now().saturating_duration_since(sent));
                    }
                    got.fetch_add(1, Ordering::Relaxed);
                });
                transit
            })
        };

        // Every 20 ms, one plain RTP packet into each call's source and one SRTP packet into
        // each call's media address, paced by absolute deadlines; the calls shared among a few
        // sending threads, so that sending (which pays for loopback delivery) keeps pace.
        let cpu_before = cpu()?;
        let (sent_rtp, sent_srtp) = std::thread::scope(|scope| {
            let senders: Vec<_> = (0..SENDERS)
                .map(|t| {
                    let mine: Vec<usize> = (t..n).step_by(SENDERS).collect();
                    let progress = (t == 0).then_some((&*got_srtp, &*got_rtp));
                    scope.spawn(move || self.send(calls, &mine, seconds, phases, start, progress))
                })
                .collect();
            senders
                .into_iter()
                .map(|h| h.join().expect("a sender thread"))
                .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
        });
        let send_wall = start.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(500));
        let cpu_s = cpu()? - cpu_before;
        stop.store(true, Ordering::Relaxed);
        let (hist, transit_to_peer) = srtp_rx.join().map_err(|_| "receiver panicked")?;
        let transit_to_sink = rtp_rx.join().map_err(|_| "receiver panicked")?;
        eprintln!();
        Ok(Report {
            send_wall_s: send_wall,
            achieved_pps_per_call: sent_rtp as f64 / n.max(1) as f64 / send_wall,
            sent_rtp,
            sent_srtp,
            got_srtp: got_srtp.load(Ordering::Relaxed),
            got_rtp: got_rtp.load(Ordering::Relaxed),
            undecryptable: bad.load(Ordering::Relaxed),
            cpu_s,
            hist,
            transit_to_peer,
            transit_to_sink,
        })
    }
}

impl Traffic {
    /// Plays the producers and peers of calls `mine` (see [`Traffic::run`]); returns the
    /// packets sent each way. With `progress`, prints what was sent and received each second.
    fn send(
        &self,
        calls: &Calls,
        mine: &[usize],
        seconds: u64,
        phases: usize,
        start: Instant,
        progress: Option<(&AtomicU64, &AtomicU64)>,
    ) -> (u64, u64) {
        let n = self.n;
        let mut tx: Vec<Option<SrtpContext>> = (0..n).map(|_| None).collect();
        for &i in mine {
            tx[i] = Some(context(i, FROM_PEER));
        }
        let ticks = seconds * 50;
        let (mut sent_rtp, mut sent_srtp) = (0u64, 0u64);
        let srtp_len = RTP_LEN + context(0, FROM_PEER).overhead();
        let mut rtp_buf = vec![0u8; n * RTP_LEN];
        let mut srtp_buf = vec![0u8; n * srtp_len];
        let gso = supports_gso(&self.producer);
        let mut to_sources = SendQueue::new(mine.len().max(1), gso);
        let mut to_media = SendQueue::new(mine.len().max(1), gso);
        let mut pktinfo = PktinfoSender::new(PKTINFO_BATCH);
        // Calls spread over `phases` steps of the 20 ms period (as independent phones are),
        // and within a step, calls of one relay address side by side, so that each address's
        // packets go out as GSO runs (shared peers).
        let phases = phases.clamp(1, 20) as u64;
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); phases as usize];
        for &i in mine {
            groups[i % phases as usize].push(i);
        }
        for g in &mut groups {
            g.sort_by_key(|&i| calls.media[i]);
        }
        for tick in 0..ticks {
            let (seq, ts) = (tick as u16, (tick * 960) as u32);
            for (phase, group) in groups.iter().enumerate() {
                let mut payload = [0x5a; PAYLOAD];
                payload[..8].copy_from_slice(&(start.elapsed().as_nanos() as u64).to_be_bytes());
                for &i in group {
                    let packet = &mut rtp_buf[i * RTP_LEN..(i + 1) * RTP_LEN];
                    let header = RtpHeader {
                        payload_type: 111,
                        marker: false,
                        seq: SeqNo(seq),
                        timestamp: ts,
                        ssrc: Ssrc(IN_BASE + i as u32),
                    };
                    header.emit(packet, &payload);
                    to_sources.push(
                        self.producer.as_raw_fd(),
                        calls.sources[i],
                        i * RTP_LEN,
                        RTP_LEN,
                        0,
                        0,
                    );
                    let wire = &mut srtp_buf[i * srtp_len..(i + 1) * srtp_len];
                    wire[..RTP_LEN].copy_from_slice(packet);
                    let Some(ctx) = tx[i].as_mut() else { continue };
                    if ctx.protect(wire, RTP_LEN).is_err() {
                        continue;
                    }
                    let at = i * srtp_len;
                    match self.peers {
                        Peers::Shared => {
                            to_media.push(
                                self.peer.as_raw_fd(),
                                calls.media[i],
                                at,
                                srtp_len,
                                0,
                                0,
                            );
                        }
                        Peers::PerCall => {
                            let SocketAddr::V4(from) = self.peer_addr(i) else {
                                unreachable!("IPv4 peers")
                            };
                            if !pktinfo.push(*from.ip(), calls.media[i], at, srtp_len) {
                                sent_srtp += pktinfo.flush(&self.peer, &srtp_buf);
                                pktinfo.push(*from.ip(), calls.media[i], at, srtp_len);
                            }
                        }
                    }
                }
                let (rtp_before, srtp_before) =
                    (to_sources.counters().sent, to_media.counters().sent);
                to_sources.flush(&rtp_buf);
                to_media.flush(&srtp_buf);
                sent_rtp += to_sources.counters().sent - rtp_before;
                sent_srtp += to_media.counters().sent - srtp_before;
                sent_srtp += pktinfo.flush(&self.peer, &srtp_buf);
                let due = start
                    + Duration::from_micros(20_000 * tick + 20_000 * (phase as u64 + 1) / phases);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
            if let (Some((got_srtp, got_rtp)), 49) = (progress, tick % 50) {
                eprint!(
                    "\r{:>4}/{} s  received {} srtp + {} rtp   ",
                    (tick + 1) / 50,
                    seconds,
                    got_srtp.load(Ordering::Relaxed),
                    got_rtp.load(Ordering::Relaxed)
                );
            }
        }
        (sent_rtp, sent_srtp)
    }
}

/// Call `i`'s peer address, with peers `peers` on port `port`: 127.1.x.y of its own, or
/// 127.0.0.1 for all.
pub fn peer_addr(peers: Peers, port: u16, i: usize) -> SocketAddr {
    match peers {
        Peers::PerCall => SocketAddr::from((Ipv4Addr::new(127, 1, (i >> 8) as u8, i as u8), port)),
        Peers::Shared => SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    }
}

/// Reads whatever waits on `socket` and drops it.
fn drain(socket: &UdpSocket) {
    let _ = socket.set_nonblocking(true);
    let mut buf = vec![0u8; GRO_SLOT];
    while socket.recv(&mut buf).is_ok() {}
    let _ = socket.set_nonblocking(false);
}

/// Receives batches from `socket` until `stop`, calling `each` with every datagram. It looks
/// every half millisecond rather than sleeping in the kernel until a datagram comes: on
/// loopback, a receiver that sleeps is woken by the sender, inside the sender's system call,
/// and that would charge the relay under test for waking its own load generator (across a
/// network, a peer's wakeup costs the relay nothing).
fn receive_until(socket: &UdpSocket, stop: &AtomicBool, mut each: impl FnMut(&mut [u8])) {
    let mut batch = RecvBatch::new(16);
    let mut buf = vec![0u8; 16 * GRO_SLOT];
    let mut received = Vec::with_capacity(16);
    let fd = socket.as_raw_fd();
    while !stop.load(Ordering::Relaxed) {
        received.clear();
        match batch.recv(fd, &mut buf, GRO_SLOT, |_, r| received.push(r)) {
            Ok(_) => {
                for r in &received {
                    for range in r.datagrams() {
                        each(&mut buf[range]);
                    }
                }
            }
            Err(_) => std::thread::sleep(Duration::from_micros(500)),
        }
    }
}

/// Sends datagrams from one socket bound to any address, each with its own source address
/// (IP_PKTINFO), many per `sendmmsg`: the peers of many calls, each on an address of its own.
/// Its scratch is allocated once.
struct PktinfoSender {
    queued: Vec<(Ipv4Addr, SocketAddr, usize, usize)>,
    iovecs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_in>,
    controls: Vec<u64>,
    headers: Vec<libc::mmsghdr>,
    capacity: usize,
}

/// `u64`s of control buffer per message: one `in_pktinfo` cmsg.
fn control_words() -> usize {
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::in_pktinfo>() as u32) };
    (space as usize).div_ceil(8)
}

impl PktinfoSender {
    fn new(capacity: usize) -> Self {
        PktinfoSender {
            queued: Vec::with_capacity(capacity),
            iovecs: Vec::with_capacity(capacity),
            names: Vec::with_capacity(capacity),
            controls: vec![0u64; capacity * control_words()],
            headers: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Queues `len` bytes at `start` of the flush buffer, from `src` to `dest`; `false` (and
    /// nothing queued) when full: flush, then push again.
    fn push(&mut self, src: Ipv4Addr, dest: SocketAddr, start: usize, len: usize) -> bool {
        if self.queued.len() == self.capacity {
            return false;
        }
        self.queued.push((src, dest, start, len));
        true
    }

    /// Sends what is queued, its bytes taken from `buf`; returns how many the kernel took.
    fn flush(&mut self, socket: &UdpSocket, buf: &[u8]) -> u64 {
        let n = self.queued.len();
        if n == 0 {
            return 0;
        }
        self.iovecs.clear();
        self.names.clear();
        self.headers.clear();
        for &(_, dest, start, len) in &self.queued {
            let bytes = &buf[start..start + len];
            self.iovecs.push(libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: len,
            });
            let SocketAddr::V4(d) = dest else {
                unreachable!("IPv4 relay addresses")
            };
            self.names.push(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: d.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*d.ip()).to_be(),
                },
                sin_zero: [0; 8],
            });
        }
        let words = control_words();
        for (k, &(src, _, _, _)) in self.queued.iter().enumerate() {
            // SAFETY: zeroed msghdr is valid; its pointers go to this message's name, iovec
            // and control words, which have room for one in_pktinfo cmsg.
            unsafe {
                let control = self.controls.as_mut_ptr().add(k * words);
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_name = self.names.as_mut_ptr().add(k).cast();
                msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                msg.msg_iov = self.iovecs.as_mut_ptr().add(k);
                msg.msg_iovlen = 1;
                msg.msg_control = control.cast();
                msg.msg_controllen = (words * 8) as _;
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::IPPROTO_IP;
                (*cmsg).cmsg_type = libc::IP_PKTINFO;
                (*cmsg).cmsg_len =
                    libc::CMSG_LEN(std::mem::size_of::<libc::in_pktinfo>() as u32) as _;
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(src).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in_pktinfo>(), info);
                self.headers.push(libc::mmsghdr {
                    msg_hdr: msg,
                    msg_len: 0,
                });
            }
        }
        let (mut at, mut taken) = (0, 0);
        while at < n {
            // SAFETY: every header points at live names, iovecs and controls.
            let r = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.headers.as_mut_ptr().add(at),
                    (n - at) as u32,
                    0,
                )
            };
            if r <= 0 {
                // A refused datagram: skip it.
                at += 1;
                continue;
            }
            at += r as usize;
            taken += r as u64;
        }
        self.queued.clear();
        taken
    }
}
