//! srtpd-load: puts N calls on a running srtpd through its control socket and plays the other
//! end of every call for S seconds: plain RTP into each call's source at 50 packets/s, SRTP
//! into each call's media address at 50 packets/s, counting what comes back. With `--floor`
//! it then puts the same load, in the same minute, on a floor: a minimal relay
//! with the same sockets and system calls (srtpd's worker I/O) and the same SRTP (srtpd's
//! `SrtpContext`), and no endpoint, in a process of its own as the daemon is, so that the
//! daemon's cost is also a ratio to the cost of the kernel and SRTP alone.
//!
//! The peer side has two topologies (`--peers`): `per-call`, a distinct peer address per call
//! (SIP phones, trunks; each call's peer is a 127.1.x.y address of its own, sent from with
//! IP_PKTINFO so one socket serves them all), and `shared`, one peer address for every call
//! (a relay). Each call has its own SDES keys; the tool tells calls apart by SSRC. It sends
//! each 20 ms tick in batches (sendmmsg; UDP GSO where a run goes to one address) and receives
//! with recvmmsg (UDP GRO), so that on a machine it shares with the daemon it spends little
//! of the CPU it measures.
//!
//! Prints one JSON line: packets each way, loss, CPU time per packet (the daemon's from
//! /proc/PID/stat, the floor's likewise), the daemon's RSS per call, the spread of inter-packet
//! times at the receiver, and the time packets spent crossing the relay.

mod bridged;
mod floor;
mod traffic;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use srtpd::control::client::ControlClient;

use traffic::{Calls, Peers, Report, Traffic};

/// Load a running srtpd with N calls and measure it (and, with --floor, a minimal relay).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The daemon's control socket.
    #[arg(long, env = "SRTPD_SOCKET", required_unless_present = "serve_floor")]
    socket: Option<PathBuf>,
    /// Number of calls.
    #[arg(long, default_value_t = 100)]
    calls: u32,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// The peers' topology: a peer address per call, or one for all.
    #[arg(long, value_enum, default_value_t = PeersArg::PerCall)]
    peers: PeersArg,
    /// Then run the same load on the floor relay of the daemon's layout and worker count.
    #[arg(long)]
    floor: bool,
    /// Where the producers send: a port of each track's own, or (`shared`) each worker's
    /// shared producer port, told apart by their SSRC (`source.ssrc`).
    #[arg(long, value_enum, default_value_t = SourcesArg::Own)]
    sources: SourcesArg,
    /// Steps of each 20 ms period the calls' packets are spread over (as independent phones
    /// send at their own phases); 1 sends every call's packets at once, in one burst.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=20))]
    phases: u64,
    /// Bridged calls instead: each call's audio goes to a voice bot in this process over
    /// srtpd's WebSocket bridge, in this dialect (see `bridged.rs`).
    #[arg(long, value_enum, conflicts_with_all = ["floor", "sources", "peers", "phases"])]
    bridge: Option<BridgeArg>,
    /// (Internal) run the floor relay for a load tool: a JSON `FloorSpec`; prints the calls'
    /// addresses, relays until standard input closes.
    #[arg(long, hide = true)]
    serve_floor: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BridgeArg {
    /// Twilio Media Streams (µ-law 8 kHz).
    Twilio,
    /// L16 at 16 kHz.
    L16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SourcesArg {
    /// A producer port per track.
    Own,
    /// The workers' shared producer ports.
    Shared,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PeersArg {
    /// A distinct peer address per call.
    PerCall,
    /// One peer address for every call.
    Shared,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("srtpd-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    if let Some(spec) = &cli.serve_floor {
        return serve_floor(spec);
    }
    let n = cli.calls as usize;
    let peers = match cli.peers {
        PeersArg::PerCall => Peers::PerCall,
        PeersArg::Shared => Peers::Shared,
    };
    let socket = cli.socket.as_deref().ok_or("--socket is required")?;
    let mut control = ControlClient::connect(socket)?;
    let status = control.call("daemon.status", json!({}))?;
    let pid = status["pid"].as_u64().ok_or("daemon.status has no pid")?;
    let layout = status["layout"]
        .as_str()
        .ok_or("daemon.status has no layout")?
        .to_owned();
    let workers = status["workers"].as_array().map_or(1, Vec::len);
    let io = status["workers"][0]["io"]
        .as_str()
        .unwrap_or("epoll")
        .to_owned();
    if let Some(bridge) = cli.bridge {
        let dialect = match bridge {
            BridgeArg::Twilio => bridged::Dialect::Twilio,
            BridgeArg::L16 => bridged::Dialect::L16,
        };
        let cpu = || cpu_seconds(&format!("/proc/{pid}/stat"));
        let own_before = cpu_seconds("/proc/self/stat")?;
        let mut out = bridged::run(&mut control, n, cli.seconds, dialect, &cpu)?;
        out["layout"] = json!(layout);
        out["workers"] = json!(workers);
        out["load_tool_cpu_s"] =
            json!(((cpu_seconds("/proc/self/stat")? - own_before) * 100.0).round() / 100.0);
        println!("{out}");
        return Ok(());
    }
    let traffic = Traffic::new(n, peers)?;

    let rss_before = rss_kib(pid)?;
    let shared_sources = cli.sources == SourcesArg::Shared;
    let calls = start_calls(&mut control, &traffic, shared_sources)?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_per_call = rss_kib(pid)?.saturating_sub(rss_before) as f64 / n.max(1) as f64;
    let cpu = || cpu_seconds(&format!("/proc/{pid}/stat"));
    let own_before = cpu_seconds("/proc/self/stat")?;
    let daemon = traffic.run(&calls, cli.seconds, cli.phases as usize, &cpu)?;
    for i in 0..n {
        let _ = control.call("call.terminate", json!({"call_id": format!("load-{i}")}));
    }
    let mut out = json!({
        "calls": n, "seconds": cli.seconds, "layout": layout, "workers": workers, "io": io,
        "phases": cli.phases, "sources": if shared_sources { "shared" } else { "own" },
        "peers": match peers { Peers::PerCall => "per-call", Peers::Shared => "shared" },
        "daemon": report_json(&daemon),
    });
    out["daemon"]["rss_per_call_kib"] = json!((rss_per_call * 10.0).round() / 10.0);
    // What generating the load cost, to judge whether the machine had room for both.
    out["daemon"]["load_tool_cpu_s"] =
        json!(((cpu_seconds("/proc/self/stat")? - own_before) * 100.0).round() / 100.0);
    if cli.floor {
        let spec = floor::FloorSpec {
            calls: n,
            peers,
            peer_port: traffic.peer_port(),
            sink: traffic.sink_addr(),
            shared: layout == "shared",
            shared_sources,
            workers,
        };
        let (mut relay, calls) = start_floor(&spec)?;
        let pid = relay.id();
        let cpu = || cpu_seconds(&format!("/proc/{pid}/stat"));
        let floor = traffic.run(&calls, cli.seconds, cli.phases as usize, &cpu);
        drop(relay.stdin.take());
        let _ = relay.wait();
        let floor = floor?;
        out["floor"] = report_json(&floor);
        let per_packet = |r: &Report| r.cpu_s / r.through().max(1) as f64;
        out["ratio"] = json!((per_packet(&daemon) / per_packet(&floor) * 1000.0).round() / 1000.0);
    }
    println!("{out}");
    Ok(())
}

/// Starts the floor relay as a process of its own (so that it is scheduled and measured as the
/// daemon is); returns it and where each call's media and producer go.
fn start_floor(spec: &floor::FloorSpec) -> Result<(std::process::Child, Calls), String> {
    use std::io::BufRead;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .arg("--serve-floor")
        .arg(serde_json::to_string(&floor_spec_json(spec)).map_err(|e| e.to_string())?)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the floor: {e}"))?;
    let stdout = child.stdout.take().ok_or("the floor's output")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let v: Value =
        serde_json::from_str(&line).map_err(|e| format!("the floor said {line:?}: {e}"))?;
    let addrs = |k: &str| -> Result<Vec<SocketAddr>, String> {
        v[k].as_array()
            .ok_or_else(|| format!("the floor said {line:?}"))?
            .iter()
            .map(reachable)
            .collect()
    };
    let calls = Calls {
        media: addrs("media")?,
        sources: addrs("sources")?,
    };
    Ok((child, calls))
}

fn floor_spec_json(spec: &floor::FloorSpec) -> Value {
    json!({
        "calls": spec.calls,
        "peers": match spec.peers { Peers::PerCall => "per-call", Peers::Shared => "shared" },
        "peer_port": spec.peer_port, "sink": spec.sink, "shared": spec.shared,
        "shared_sources": spec.shared_sources, "workers": spec.workers,
    })
}

/// The floor's side: relays until standard input closes.
fn serve_floor(spec: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    let v: Value = serde_json::from_str(spec).map_err(|e| e.to_string())?;
    let spec = floor::FloorSpec {
        calls: v["calls"].as_u64().ok_or("calls")? as usize,
        peers: if v["peers"] == "shared" {
            Peers::Shared
        } else {
            Peers::PerCall
        },
        peer_port: v["peer_port"].as_u64().ok_or("peer_port")? as u16,
        sink: v["sink"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or("sink")?,
        shared: v["shared"].as_bool().ok_or("shared")?,
        shared_sources: v["shared_sources"].as_bool().ok_or("shared_sources")?,
        workers: v["workers"].as_u64().ok_or("workers")? as usize,
    };
    let relay = floor::Floor::start(&spec)?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "{}",
        json!({"media": relay.calls.media, "sources": relay.calls.sources})
    )
    .and_then(|()| out.flush())
    .map_err(|e| e.to_string())?;
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    relay.stop();
    Ok(())
}

/// Starts every call on the daemon; returns where each call's media and producer go.
fn start_calls(
    control: &mut ControlClient,
    traffic: &Traffic,
    shared_sources: bool,
) -> Result<Calls, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let n = traffic.calls();
    let mut calls = Calls::default();
    let started = std::time::Instant::now();
    for i in 0..n {
        let peer = traffic.peer_addr(i);
        let source = if shared_sources {
            json!({"kind": "rtp", "ssrc": traffic::IN_BASE + i as u32})
        } else {
            json!({"kind": "rtp"})
        };
        let r = control.call(
            "call.start",
            json!({
                "call_id": format!("load-{i}"), "mute_mode": "drop",
                "candidates": [{"ip": peer.ip(), "port": peer.port()}],
                "keying": {"scheme": "sdes", "profile": traffic::PROFILE.name(),
                           "tx": b64.encode(traffic::call_key(i, traffic::TO_PEER)),
                           "rx": b64.encode(traffic::call_key(i, traffic::FROM_PEER))},
                "audio": {"payload_type": 111, "clock_rate": 48000, "ssrc": traffic::OUT_BASE + i as u32,
                          "source": source,
                          "sink": {"kind": "rtp", "forward": traffic.sink_addr()}},
            }),
        )?;
        calls.media.push(reachable(&r["local"])?);
        calls.sources.push(reachable(&r["audio"]["source"])?);
        if i % 100 == 99 {
            eprint!("\rsetting up calls: {}/{n}", i + 1);
        }
    }
    eprintln!(
        "\r{n} calls set up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(calls)
}

/// An address from a result, with an unspecified IP (a socket bound to any) made loopback.
fn reachable(v: &Value) -> Result<SocketAddr, String> {
    let mut addr: SocketAddr = v
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an address: {v}"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        });
    }
    Ok(addr)
}

fn report_json(r: &Report) -> Value {
    json!({
        // When the load side cannot keep up, sending takes longer than `seconds` and the
        // achieved rate per call falls below 50 packets/s each way.
        "send_wall_s": (r.send_wall_s * 100.0).round() / 100.0,
        "achieved_pps_per_call": (r.achieved_pps_per_call * 10.0).round() / 10.0,
        "to_peer": {"sent_to_source": r.sent_rtp, "received_srtp": r.got_srtp, "lost": r.sent_rtp.saturating_sub(r.got_srtp)},
        "from_peer": {"sent_srtp": r.sent_srtp, "received_at_sink": r.got_rtp, "lost": r.sent_srtp.saturating_sub(r.got_rtp)},
        "loss_ratio": r.loss_ratio(),
        "undecryptable": r.undecryptable,
        "cpu_s": (r.cpu_s * 100.0).round() / 100.0,
        "cpu_ns_per_packet": (r.cpu_s * 1e9 / r.through().max(1) as f64).round(),
        "interpacket_ms": ms(r.interpacket()),
        // How long the relay (and the receivers' polling) held packets: the spread of the
        // inter-packet times beyond it is the load side's own.
        "transit_to_peer_ms": ms(&r.transit_to_peer),
        "transit_to_sink_ms": ms(&r.transit_to_sink),
    })
}

/// A histogram's median, 99th percentile and maximum, ms.
fn ms(hist: &[u64]) -> Value {
    json!({"p50": traffic::percentile(hist, 0.5), "p99": traffic::percentile(hist, 0.99), "max": traffic::max(hist)})
}

/// utime + stime from a `/proc/.../stat` file, in seconds.
pub fn cpu_seconds(stat_path: &str) -> Result<f64, String> {
    let stat = std::fs::read_to_string(stat_path).map_err(|e| format!("{stat_path}: {e}"))?;
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
