//! The whole packet path, socket to socket, allocates nothing per packet in steady state:
//! source socket → gate → rewrite → SRTP protect → UDP, and UDP → demux → SRTP unprotect →
//! sink socket, in both socket layouts. The daemon runs in-process (its control plane on a
//! current-thread runtime on this test's thread, its worker on a thread of its own);
//! allocations are counted on every thread but the peer's (webrtc-srtp), the RTP producer's
//! and the sink reader's, which opt out.

mod common;

use common::alloc::{CountingAllocator, allocations, ignore_this_thread, process_allocations};

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use common::peer::Peer;
use common::rtp_packet;
use serde_json::json;
use srtpd::config::{Config, IoMode, Layout};
use srtpd::daemon::Daemon;
use webrtc_srtp::protection_profile::ProtectionProfile;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const WARM_UP: usize = 500;
const MEASURED: usize = 10_000;
/// Packets each way sent ahead of what has come out the other side.
const IN_FLIGHT: usize = 100;

/// Phases of the worker thread, published to the test thread.
const WARMING: usize = 0;
const WARM: usize = 1;
const GO: usize = 2;
const DONE: usize = 3;

/// A call on a media socket of its own, its producer on a port of its own.
#[test]
fn ten_thousand_packets_each_way_allocate_nothing_per_packet_per_call_layout() {
    drive(Layout::PerCall, None);
}

/// A call on the worker's shared media port (GRO receives, demultiplexing by address and
/// SSRC), its producer on a port of its own.
#[test]
fn ten_thousand_packets_each_way_allocate_nothing_per_packet_shared_layout() {
    drive(Layout::Shared, None);
}

/// A call on the shared media port, its producer on the worker's shared producer port.
#[test]
fn the_shared_producer_port_allocates_nothing_per_packet() {
    drive(Layout::Shared, Some(5));
}

/// The same path through io_uring workers (provided buffers, batched submissions), where the
/// kernel has it.
#[test]
fn io_uring_workers_allocate_nothing_per_packet() {
    for layout in [Layout::PerCall, Layout::Shared] {
        drive_with(layout, None, IoMode::IoUring);
    }
}

/// One measurement at a time: two at once would share the machine's cores and lose packets.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Drives a call on a daemon in `layout`, its producer sending SSRC `producer_ssrc` to the
/// shared producer port if given, else to a port of the track's own.
fn drive(layout: Layout, producer_ssrc: Option<u32>) {
    drive_with(layout, producer_ssrc, IoMode::Epoll);
}

/// The same with workers asking the kernel through `io`.
fn drive_with(layout: Layout, producer_ssrc: Option<u32>, io: IoMode) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (ours, theirs) = ([7u8; 30], [8u8; 30]);
    let mut config = Config::default();
    config.media.layout = layout;
    config.media.shared_port = common::daemon::free_ports_v4_v6(1);
    config.media.workers = 1;
    config.media.io = io;
    config.media.bind_v4 = "127.0.0.1".parse().unwrap();
    // Timers that allocate (RTCP reports, keepalives, STUN checks) stay out of the window.
    config.calls.rtcp_interval_ms = 600_000;
    config.calls.keepalive_interval_ms = 600_000;
    config.calls.candidate_check_timeout_ms = 1;

    let mut peer = Peer::new(
        "127.0.0.1",
        ProtectionProfile::Aes128CmHmacSha1_80,
        &theirs,
        &ours,
        16,
    );
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let daemon = Daemon::new(config).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        let source = match producer_ssrc {
            Some(ssrc) => json!({"kind": "rtp", "ssrc": ssrc}),
            None => json!({"kind": "rtp"}),
        };
        let started = srtpd::control::dispatch::handle(
            &daemon,
            "call.start",
            &json!({
                "call_id": "ALLOC", "bind": "127.0.0.1",
                "candidates": [{"ip": "127.0.0.1", "port": peer.addr().port()}],
                "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80", "tx": b64.encode(ours), "rx": b64.encode(theirs)},
                "audio": {"payload_type": 111, "clock_rate": 48000, "source": source,
                          "sink": {"kind": "rtp", "forward": sink.local_addr().unwrap()}},
            }),
        )
        .await
        .unwrap();
        let local: SocketAddr = started["local"].as_str().unwrap().parse().unwrap();
        let source: SocketAddr = started["audio"]["source"].as_str().unwrap().parse().unwrap();

        let phase = Arc::new(AtomicUsize::new(WARMING));
        let at_sink = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (sink, at_sink) = (sink.try_clone().unwrap(), at_sink.clone());
            std::thread::spawn(move || {
                ignore_this_thread();
                let mut buf = [0u8; 2048];
                while at_sink.load(Ordering::Relaxed) < WARM_UP + MEASURED && sink.recv(&mut buf).is_ok() {
                    at_sink.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let worker = {
            let (phase, at_sink) = (phase.clone(), at_sink.clone());
            std::thread::spawn(move || {
                ignore_this_thread();
                let producer = UdpSocket::bind("127.0.0.1:0").unwrap();
                // Until `total` packets have reached both the peer and the sink (or 5 s).
                let settle = |peer: &mut Peer, total: usize| {
                    let deadline = std::time::Instant::now() + Duration::from_secs(5);
                    while (peer.seen.rtp.len() < total || at_sink.load(Ordering::Relaxed) < total)
                        && std::time::Instant::now() < deadline
                    {
                        peer.pump(Duration::from_millis(20), total);
                    }
                };
                // As fast as the daemon takes them, with at most IN_FLIGHT packets each way
                // in flight, so that a slow moment of the machine fills no socket buffer.
                let send = |range: std::ops::Range<usize>, peer: &mut Peer| {
                    for i in range {
                        let (seq, ts) = (i as u16, (i * 960) as u32);
                        producer.send_to(&rtp_packet(96, seq, ts, 5, &[0x33; 120]), source).unwrap();
                        peer.send_rtp(&rtp_packet(111, seq, ts, 6, &[0x44; 120]), local);
                        if i % 50 == 49 {
                            settle(peer, (i + 1).saturating_sub(IN_FLIGHT));
                        }
                    }
                };
                send(0..WARM_UP, &mut peer);
                settle(&mut peer, WARM_UP);
                phase.store(WARM, Ordering::SeqCst);
                while phase.load(Ordering::SeqCst) != GO {
                    std::thread::sleep(Duration::from_millis(1));
                }
                send(WARM_UP..WARM_UP + MEASURED, &mut peer);
                settle(&mut peer, WARM_UP + MEASURED);
                phase.store(DONE, Ordering::SeqCst);
                peer
            })
        };

        // Let the daemon run on this thread while the worker warms up.
        while phase.load(Ordering::SeqCst) != WARM {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // The first time a task spends its whole cooperative budget, tokio grows the runtime's
        // list of deferred wakers once (and reuses it after): spend it here, not in the window.
        for _ in 0..1_000 {
            tokio::task::consume_budget().await;
        }
        let before = process_allocations();
        phase.store(GO, Ordering::SeqCst);
        while phase.load(Ordering::SeqCst) != DONE {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let during = process_allocations() - before;

        let peer = worker.join().unwrap();
        reader.join().unwrap();
        assert_eq!(peer.seen.rtp.len(), WARM_UP + MEASURED, "every packet reached the peer");
        assert_eq!(at_sink.load(Ordering::Relaxed), WARM_UP + MEASURED, "every packet reached the sink");
        assert_eq!(peer.seen.undecryptable, 0);
        assert_eq!(during, 0, "{during} allocations on the packet path over {MEASURED} packets each way");
    });
}

#[test]
fn the_counters_see_allocations_on_this_thread_and_in_the_process() {
    // Not during another test's window: this thread's allocations count in the process.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (before, in_process) = (allocations(), process_allocations());
    std::hint::black_box(vec![0u8; 16]);
    assert_eq!(allocations() - before, 1);
    assert!(process_allocations() > in_process);
    let spawned = std::thread::spawn(|| {
        let before = process_allocations();
        std::hint::black_box(vec![0u8; 16]);
        process_allocations() - before
    });
    assert!(
        spawned.join().unwrap() >= 1,
        "another thread's allocation counts"
    );
}
