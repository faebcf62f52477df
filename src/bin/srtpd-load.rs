//! srtpd-load: puts N calls on a running srtpd through its control socket and plays the other
//! end of every call for S seconds: plain RTP into each call's source at 50 packets/s, SRTP
//! into each call's media port at 50 packets/s, counting what comes back. Prints one JSON line:
//! packets each way, loss, the daemon's CPU time per packet (from /proc/PID/stat), its RSS per
//! call, and the spread of inter-packet times at the receiver.
//!
//! Every call has its own SDES keys; the load side tells the calls apart by SSRC, so it needs
//! three sockets whatever N is. It sends each 20 ms tick as batches (sendmmsg, and UDP GSO for
//! runs to one address, as against a daemon in single-port mode) and receives with UDP GRO,
//! so that on a machine it shares with the daemon it spends little of the CPU it measures.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use serde_json::json;
use srtpd::control::client::ControlClient;
use srtpd::srtp::{MasterKey, SrtpContext, SrtpOptions, SrtpProfile};

/// Load a running srtpd with N calls and measure it.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The daemon's control socket.
    #[arg(long, env = "SRTPD_SOCKET")]
    socket: PathBuf,
    /// Number of calls.
    #[arg(long, default_value_t = 100)]
    calls: u32,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
}

const PROFILE: SrtpProfile = SrtpProfile::AesCm128HmacSha1_80;
const PAYLOAD: usize = 80;
const RTP_LEN: usize = 12 + PAYLOAD;
/// SSRCs: the daemon sends call i as `OUT_BASE + i`; we send it as `IN_BASE + i`.
const OUT_BASE: u32 = 0x1000_0000;
const IN_BASE: u32 = 0x2000_0000;
/// Histogram of inter-packet times: 0.1 ms buckets up to 1 s.
const BUCKETS: usize = 10_000;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("srtpd-load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Key‖salt of call `i` in one direction (`seed` 0x11: daemon → us, 0x22: us → daemon).
fn call_key(i: usize, seed: u8) -> [u8; 30] {
    let mut k = [seed; 30];
    k[..4].copy_from_slice(&(i as u32).to_be_bytes());
    k
}

fn big_socket() -> Result<UdpSocket, String> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
        .map_err(|e| e.to_string())?;
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .map_err(|e| e.to_string())?;
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    srtpd::net::enable_gro(&s);
    Ok(s)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u64) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    let after_name = &stat[stat.rfind(')').ok_or("malformed /proc stat")? + 2..];
    let f: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name.
    let ticks: u64 = f[11].parse::<u64>().map_err(|e| e.to_string())?
        + f[12].parse::<u64>().map_err(|e| e.to_string())?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks as f64 / hz)
}

fn rss_kib(pid: u64) -> Result<u64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

fn percentile(hist: &[u64], p: f64) -> f64 {
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

fn run(cli: Cli) -> Result<(), String> {
    let n = cli.calls as usize;
    let mut control = ControlClient::connect(&cli.socket)?;
    let pid = control.call("daemon.status", json!({}))?["pid"]
        .as_u64()
        .ok_or("daemon.status has no pid")?;
    let peer = Arc::new(big_socket()?);
    let sink = Arc::new(big_socket()?);
    let producer = big_socket()?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let rss_before = rss_kib(pid)?;

    let mut media = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let setup_start = Instant::now();
    for i in 0..n {
        let r = control.call(
            "call.start",
            json!({
                "call_id": format!("load-{i}"), "bind": "127.0.0.1", "mute_mode": "drop",
                "candidates": [{"ip": "127.0.0.1", "port": peer.local_addr().map_err(|e| e.to_string())?.port()}],
                "keying": {"scheme": "sdes", "profile": PROFILE.name(), "tx": b64.encode(call_key(i, 0x11)), "rx": b64.encode(call_key(i, 0x22))},
                "audio": {"payload_type": 111, "clock_rate": 48000, "ssrc": OUT_BASE + i as u32,
                          // The producer's SSRC tells the sources apart in single-port mode.
                          "source": {"kind": "rtp", "ssrc": IN_BASE + i as u32},
                          "sink": {"kind": "rtp", "forward": sink.local_addr().map_err(|e| e.to_string())?}},
            }),
        )?;
        let addr = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|s| s.parse::<SocketAddr>().ok())
                .ok_or("bad address")
        };
        media.push(addr(&r["local"])?);
        sources.push(addr(&r["audio"]["source"])?);
        if i % 100 == 99 {
            eprint!("\rsetting up calls: {}/{n}", i + 1);
        }
    }
    eprintln!(
        "\r{n} calls set up in {:.1} s",
        setup_start.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(500));
    let rss_per_call = (rss_kib(pid)?.saturating_sub(rss_before)) as f64 / n.max(1) as f64;

    let stop = Arc::new(AtomicBool::new(false));
    let (got_srtp, got_rtp, bad) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    // SRTP from the daemon: decrypt, count, and time the gaps per call.
    let srtp_rx = {
        let (peer, stop, got, bad) = (peer.clone(), stop.clone(), got_srtp.clone(), bad.clone());
        std::thread::spawn(move || {
            let mut rx: Vec<SrtpContext> = (0..n)
                .map(|i| {
                    let key =
                        MasterKey::from_concatenated(PROFILE, &call_key(i, 0x11)).expect("key");
                    SrtpContext::new(PROFILE, &key, &SrtpOptions::default()).expect("context")
                })
                .collect();
            let mut last = vec![None::<Instant>; n];
            let mut hist = vec![0u64; BUCKETS];
            let mut batch = vec![0u8; 1 << 16];
            while !stop.load(Ordering::Relaxed) {
                let Ok(r) = srtpd::net::recv_batch(&*peer, &mut batch) else {
                    continue;
                };
                let now = Instant::now();
                for buf in batch[..r.len].chunks_mut(r.stride.max(1)) {
                    if buf.len() < 12 || buf[0] >> 6 != 2 || (192..=223).contains(&buf[1]) {
                        continue; // STUN or RTCP
                    }
                    let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                    let Some(i) = ssrc
                        .checked_sub(OUT_BASE)
                        .map(|i| i as usize)
                        .filter(|&i| i < n)
                    else {
                        continue;
                    };
                    if rx[i].unprotect(buf).is_err() {
                        bad.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if let Some(prev) = last[i] {
                        let bucket = ((now - prev).as_secs_f64() * 10_000.0) as usize;
                        hist[bucket.min(BUCKETS - 1)] += 1;
                    }
                    last[i] = Some(now);
                    got.fetch_add(1, Ordering::Relaxed);
                }
            }
            hist
        })
    };
    let rtp_rx = {
        let (sink, stop, got) = (sink.clone(), stop.clone(), got_rtp.clone());
        std::thread::spawn(move || {
            let mut batch = vec![0u8; 1 << 16];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = srtpd::net::recv_batch(&*sink, &mut batch) {
                    got.fetch_add(r.count() as u64, Ordering::Relaxed);
                }
            }
        })
    };

    // Sender: every 20 ms, one plain RTP packet into each call's source and one SRTP packet
    // into each call's media port, paced by absolute deadlines.
    let mut tx: Vec<SrtpContext> = (0..n)
        .map(|i| {
            let key = MasterKey::from_concatenated(PROFILE, &call_key(i, 0x22))?;
            SrtpContext::new(PROFILE, &key, &SrtpOptions::default())
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let cpu_before = cpu_seconds(pid)?;
    let start = Instant::now();
    let ticks = cli.seconds * 50;
    let (mut sent_rtp, mut sent_srtp) = (0u64, 0u64);
    // Each tick's packets sit side by side and go out as batches.
    let srtp_len = RTP_LEN + tx.first().map_or(0, SrtpContext::overhead);
    let mut rtp_buf = vec![0u8; n * RTP_LEN];
    let mut srtp_buf = vec![0u8; n * srtp_len];
    let gso = srtpd::net::supports_gso(&producer);
    let mut to_sources = srtpd::net::SendQueue::new(n, gso);
    let mut to_media = srtpd::net::SendQueue::new(n, gso);
    // Calls of one daemon port side by side, so that each port's packets go out as GSO runs.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| media[i]);
    for tick in 0..ticks {
        let (seq, ts) = (tick as u16, (tick * 960) as u32);
        for &i in &order {
            let packet = &mut rtp_buf[i * RTP_LEN..(i + 1) * RTP_LEN];
            packet[..12].copy_from_slice(&[0x80, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&ts.to_be_bytes());
            packet[8..12].copy_from_slice(&(IN_BASE + i as u32).to_be_bytes());
            packet[12..].fill(0x5a);
            to_sources.push(producer.as_raw_fd(), sources[i], i * RTP_LEN, RTP_LEN, 0);
            let wire = &mut srtp_buf[i * srtp_len..(i + 1) * srtp_len];
            wire[..RTP_LEN].copy_from_slice(packet);
            if tx[i].protect(wire, RTP_LEN).is_ok() {
                to_media.push(peer.as_raw_fd(), media[i], i * srtp_len, srtp_len, 0);
            }
        }
        let (rtp_before, srtp_before) = (to_sources.counters().sent, to_media.counters().sent);
        to_sources.flush(&rtp_buf);
        to_media.flush(&srtp_buf);
        sent_rtp += to_sources.counters().sent - rtp_before;
        sent_srtp += to_media.counters().sent - srtp_before;
        if tick % 50 == 49 {
            eprint!(
                "\r{:>4}/{} s  sent {} rtp + {} srtp  received {} srtp + {} rtp   ",
                (tick + 1) / 50,
                cli.seconds,
                sent_rtp,
                sent_srtp,
                got_srtp.load(Ordering::Relaxed),
                got_rtp.load(Ordering::Relaxed)
            );
        }
        let due = start + Duration::from_millis(20 * (tick + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let send_wall = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let cpu = cpu_seconds(pid)? - cpu_before;
    stop.store(true, Ordering::Relaxed);
    let hist = srtp_rx.join().map_err(|_| "receiver panicked")?;
    rtp_rx.join().map_err(|_| "receiver panicked")?;
    eprintln!();
    for i in 0..n {
        let _ = control.call("call.terminate", json!({"call_id": format!("load-{i}")}));
    }

    let (rx_srtp, rx_rtp) = (
        got_srtp.load(Ordering::Relaxed),
        got_rtp.load(Ordering::Relaxed),
    );
    let through = rx_srtp + rx_rtp;
    let max = hist
        .iter()
        .rposition(|&c| c > 0)
        .map_or(0.0, |i| i as f64 / 10.0);
    println!(
        "{}",
        json!({
            "calls": n, "seconds": cli.seconds,
            // When the load side cannot keep up, sending takes longer than `seconds` and the
            // achieved rate per call falls below 50 packets/s each way.
            "send_wall_s": (send_wall * 100.0).round() / 100.0,
            "achieved_pps_per_call": ((sent_rtp as f64 / n.max(1) as f64 / send_wall) * 10.0).round() / 10.0,
            "daemon_out": {"sent_to_source": sent_rtp, "received_srtp": rx_srtp, "lost": sent_rtp.saturating_sub(rx_srtp)},
            "daemon_in": {"sent_srtp": sent_srtp, "received_at_sink": rx_rtp, "lost": sent_srtp.saturating_sub(rx_rtp)},
            "loss_ratio": 1.0 - through as f64 / (sent_rtp + sent_srtp).max(1) as f64,
            "undecryptable": bad.load(Ordering::Relaxed),
            "daemon_cpu_s": (cpu * 100.0).round() / 100.0,
            "daemon_cpu_ns_per_packet": (cpu * 1e9 / through.max(1) as f64).round(),
            "daemon_rss_per_call_kib": (rss_per_call * 10.0).round() / 10.0,
            "interpacket_ms": {"p50": percentile(&hist, 0.5), "p99": percentile(&hist, 0.99), "max": max},
        })
    );
    Ok(())
}
