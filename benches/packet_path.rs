//! The packet path through real loopback sockets, in packets per second: the send path
//! (plain RTP into a track's source socket → rewrite → SRTP protect → UDP to the peer) and the
//! receive path (SRTP from the peer → unprotect → plain RTP out of the sink socket), in both
//! socket layouts.
//!
//! A call runs in-process on a worker thread; the benchmark thread plays producer, peer and
//! sink, pushing packets in bursts of 32 (one UDP GSO message) and waiting for each burst to
//! come out the other side (read with UDP GRO), so the figure includes the kernel's loopback
//! path for both hops.
//!
//! `per-call`: the call on a media socket of its own; `shared`: on the worker's shared media
//! port (GRO receives, demultiplexing by address and SSRC). Either way the producer sends to a
//! port of the track's own, and the worker sends each batch with sendmmsg and UDP GSO.
//! `kernel/loopback_send_recv` is the kernel's own cost of one datagram sent and received
//! between two loopback sockets, for scale.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use base64::Engine;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use srtpd::config::{Config, Layout};
use srtpd::daemon::Daemon;
use srtpd::srtp::{MasterKey, SrtpContext, SrtpOptions, SrtpProfile};

const BURST: u64 = 32;
const PAYLOAD: usize = 160;

struct Setup {
    _runtime: tokio::runtime::Runtime,
    source: SocketAddr,
    local: SocketAddr,
    peer: UdpSocket,
    sink: UdpSocket,
    producer: UdpSocket,
    peer_tx: SrtpContext,
}

fn setup(layout: Layout) -> Setup {
    let (ours, theirs) = ([1u8; 30], [2u8; 30]);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&peer, &sink] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    }
    let mut config = Config::default();
    config.calls.rtcp_interval_ms = 600_000;
    config.calls.keepalive_interval_ms = 600_000;
    config.calls.candidate_check_timeout_ms = 1;
    config.media.bind_v4 = "127.0.0.1".parse().unwrap();
    config.media.layout = layout;
    config.media.shared_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.media.workers = 1;
    for s in [&peer, &sink] {
        srtpd::net::enable_gro(s);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let params = json!({
        "call_id": "BENCH", "bind": "127.0.0.1",
        "candidates": [{"ip": "127.0.0.1", "port": peer.local_addr().unwrap().port()}],
        "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": b64.encode(ours), "rx": b64.encode(theirs)},
        "audio": {"payload_type": 111, "clock_rate": 48000, "source": {"kind": "rtp"},
                  "sink": {"kind": "rtp", "forward": sink.local_addr().unwrap()}},
    });
    let daemon = Daemon::new(config).unwrap();
    let started = runtime.block_on(async {
        let r = srtpd::control::dispatch::handle(&daemon, "call.start", &params)
            .await
            .unwrap();
        // Keep the daemon (and its call) alive for the whole benchmark.
        std::mem::forget(daemon);
        r
    });
    let addr = |v: &serde_json::Value| v.as_str().unwrap().parse::<SocketAddr>().unwrap();
    let profile = SrtpProfile::AesCm128HmacSha1_80;
    let peer_key = MasterKey::from_concatenated(profile, &theirs).unwrap();
    Setup {
        _runtime: runtime,
        source: addr(&started["audio"]["source"]),
        local: addr(&started["local"]),
        peer,
        sink,
        producer: UdpSocket::bind("127.0.0.1:0").unwrap(),
        peer_tx: SrtpContext::new(profile, &peer_key, &SrtpOptions::default()).unwrap(),
    }
}

fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(12 + PAYLOAD, 0x5a);
    p
}

/// Plain RTP packets for the send path, with the next sequence numbers.
fn source_packets(seq: &mut u16, n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            *seq = seq.wrapping_add(1);
            rtp(*seq, u32::from(*seq) * 960, 7)
        })
        .collect()
}

/// SRTP packets of the peer for the receive path, protected outside the timing.
fn peer_packets(s: &mut Setup, seq: &mut u16, n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            *seq = seq.wrapping_add(1);
            let mut p = rtp(*seq, u32::from(*seq) * 960, 9);
            let len = p.len();
            p.resize(len + 10, 0);
            let n = s.peer_tx.protect(&mut p, len).unwrap();
            p.truncate(n);
            p
        })
        .collect()
}

/// Sends each burst as one GSO message and reads it back with GRO.
fn batched(from: &UdpSocket, to: SocketAddr, at: &UdpSocket, packets: &[Vec<u8>]) -> Duration {
    let mut buf = vec![0u8; 1 << 16];
    let size = packets[0].len();
    let flat = packets.concat();
    let mut queue = srtpd::net::SendQueue::new(BURST as usize, srtpd::net::supports_gso(from));
    let start = Instant::now();
    for (k, burst) in packets.chunks(BURST as usize).enumerate() {
        let first = k * BURST as usize;
        for i in 0..burst.len() {
            queue.push(from.as_raw_fd(), to, (first + i) * size, size, 0, 0);
        }
        queue.flush(&flat);
        let mut got = 0;
        while got < burst.len() {
            got += srtpd::net::recv_batch(at, &mut buf)
                .expect("the burst comes out the other side")
                .count();
        }
    }
    start.elapsed()
}

fn packet_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("packet_path");
    group.throughput(Throughput::Elements(1));
    for (name, layout) in [("per-call", Layout::PerCall), ("shared", Layout::Shared)] {
        let mut s = setup(layout);
        let path = batched;
        let mut seq = 0u16;
        group.bench_function(format!("send/{name}"), |b| {
            b.iter_custom(|iters| {
                let packets = source_packets(&mut seq, iters);
                path(&s.producer, s.source, &s.peer, &packets)
            });
        });
        let mut peer_seq = 0u16;
        group.bench_function(format!("receive/{name}"), |b| {
            b.iter_custom(|iters| {
                let wires = peer_packets(&mut s, &mut peer_seq, iters);
                path(&s.peer, s.local, &s.sink, &wires)
            });
        });
    }
    // What the kernel alone charges for a datagram here: one `sendto` and one `recv` of the
    // same size between two loopback sockets, a datagram at a time (no batching, no SRTP).
    let (from, to) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let dest = to.local_addr().unwrap();
    let datagram = rtp(1, 0, 1);
    let mut buf = [0u8; 2048];
    group.bench_function("kernel/loopback_send_recv", |b| {
        b.iter(|| {
            from.send_to(&datagram, dest).unwrap();
            to.recv(&mut buf).unwrap()
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = packet_path
}
criterion_main!(benches);
