//! The packet path through real loopback sockets, in packets per second: the send path
//! (plain RTP into a track's source socket → rewrite → SRTP protect → UDP to the peer) and the
//! receive path (SRTP from the peer → unprotect → plain RTP out of the sink socket).
//!
//! A call runs in-process on a tokio runtime; the benchmark thread plays producer, peer and
//! sink, pushing packets in bursts of 32 and waiting for each burst to come out the other
//! side, so the figure includes the kernel's loopback path for both hops. These are the
//! unbatched figures (one syscall per packet).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use base64::Engine;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use srtpd::config::Config;
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

fn setup() -> Setup {
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
    let daemon = Daemon::new(config);
    let started = runtime.block_on(async {
        let r = daemon.handle("call.start", &params).await.unwrap();
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

fn packet_path(c: &mut Criterion) {
    let mut s = setup();
    let mut group = c.benchmark_group("packet_path");
    group.throughput(Throughput::Elements(1));

    let mut seq = 0u16;
    group.bench_function("send/unbatched", |b| {
        b.iter_custom(|iters| {
            let mut buf = [0u8; 2048];
            let packets: Vec<Vec<u8>> = (0..iters)
                .map(|_| {
                    seq = seq.wrapping_add(1);
                    rtp(seq, u32::from(seq) * 960, 7)
                })
                .collect();
            let start = Instant::now();
            for burst in packets.chunks(BURST as usize) {
                for p in burst {
                    s.producer.send_to(p, s.source).unwrap();
                }
                for _ in burst {
                    s.peer
                        .recv(&mut buf)
                        .expect("the protected packet reaches the peer");
                }
            }
            start.elapsed()
        });
    });

    let mut peer_seq = 0u16;
    let mut peer_ts = 0u32;
    group.bench_function("receive/unbatched", |b| {
        b.iter_custom(|iters| {
            let mut buf = [0u8; 2048];
            // Protected outside the timing: the peer's cost is not srtpd's.
            let wires: Vec<Vec<u8>> = (0..iters)
                .map(|_| {
                    peer_seq = peer_seq.wrapping_add(1);
                    peer_ts = peer_ts.wrapping_add(960);
                    let mut p = rtp(peer_seq, peer_ts, 9);
                    let len = p.len();
                    p.resize(len + 10, 0);
                    let n = s.peer_tx.protect(&mut p, len).unwrap();
                    p.truncate(n);
                    p
                })
                .collect();
            let start = Instant::now();
            for burst in wires.chunks(BURST as usize) {
                for p in burst {
                    s.peer.send_to(p, s.local).unwrap();
                }
                for _ in burst {
                    s.sink
                        .recv(&mut buf)
                        .expect("the plain packet reaches the sink");
                }
            }
            start.elapsed()
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
