//! The bridged load (`--bridge`): N Opus calls whose audio goes to voice bots over
//! srtpd's WebSocket bridge. The bots run in this process (a WebSocket server on tokio,
//! one task per stream): each hears the peer's 20 ms frames and talks back, a tone at
//! real time after 100 ms sent ahead, as a text-to-speech bot does. The peers are one
//! socket here that sends each call 20 ms of Opus (a 440 Hz tone) every 20 ms over SRTP
//! and decrypts what srtpd sends back, telling calls apart by SSRC.
//!
//! Measured over a steady window (from 2 s in to just before the peers stop), from
//! `call.stats` and from the wire: what the jitter buffers lost, concealed or dropped
//! (underruns towards the bot), the packet times whose bot audio never reached the peer
//! (gaps in the RTP timestamps it receives: underruns towards the peer), the daemon's CPU
//! per bridged call; and, once everything has drained, the packets lost each way.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use srtpd::control::client::ControlClient;
use srtpd::media::codec::{AudioEncoder, CodecKind};
use srtpd::rtp::{PacketKind, RtpHeader, RtpPacket, SeqNo, Ssrc, classify};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::traffic::{self, FROM_PEER, IN_BASE, OUT_BASE, TO_PEER, big_socket, context};

/// The bridge's dialect in the load.
#[derive(Clone, Copy, Debug)]
pub enum Dialect {
    /// Twilio Media Streams: base64 µ-law 8 kHz in JSON.
    Twilio,
    /// Binary 16-bit PCM at 16 kHz.
    L16,
}

impl Dialect {
    fn rate(self) -> u32 {
        match self {
            Dialect::Twilio => 8_000,
            Dialect::L16 => 16_000,
        }
    }

    fn bridge(self, url: &str) -> Value {
        match self {
            Dialect::Twilio => json!({"url": url, "format": "twilio"}),
            Dialect::L16 => json!({"url": url, "format": "l16", "rate": 16_000}),
        }
    }
}

/// Per-call counters, shared between the bots, the peer and the report.
struct Counters {
    /// Frames each bot heard.
    bot_heard: Vec<AtomicU64>,
    /// Frames each bot said.
    bot_said: Vec<AtomicU64>,
    /// Packets each call's peer decrypted.
    peer_got: Vec<AtomicU64>,
    /// Packet times missing between consecutive packets the peer got.
    peer_gaps: Vec<AtomicU64>,
    /// Datagrams the peer could not decrypt.
    undecryptable: AtomicU64,
    /// Streams that began (a `start` came).
    streams: AtomicU64,
    /// Streams that ended.
    ended: AtomicU64,
}

impl Counters {
    fn new(n: usize) -> Self {
        let v = || (0..n).map(|_| AtomicU64::new(0)).collect();
        Counters {
            bot_heard: v(),
            bot_said: v(),
            peer_got: v(),
            peer_gaps: v(),
            undecryptable: AtomicU64::new(0),
            streams: AtomicU64::new(0),
            ended: AtomicU64::new(0),
        }
    }
}

fn sum(v: &[AtomicU64]) -> u64 {
    v.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}

/// `n` samples of a `freq` Hz tone at `rate`.
fn tone(freq: f64, rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            (9_000.0 * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin()) as i16
        })
        .collect()
}

/// Runs the bridged load on the daemon behind `control` for `seconds`; `cpu` reads the
/// daemon's CPU seconds. Returns the report.
pub fn run(
    control: &mut ControlClient,
    n: usize,
    seconds: u64,
    dialect: Dialect,
    cpu: &dyn Fn() -> Result<f64, String>,
) -> Result<Value, String> {
    if seconds < 4 {
        return Err("--bridge needs --seconds of 4 or more (2 s of warm-up)".into());
    }
    let counters = Arc::new(Counters::new(n));
    let quiet = Arc::new(AtomicBool::new(false));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let url = format!(
        "ws://{}/bot",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let bots = {
        let (counters, quiet) = (counters.clone(), quiet.clone());
        std::thread::spawn(move || serve_bots(listener, dialect, counters, quiet))
    };

    let peer = Arc::new(big_socket("127.0.0.1:0".parse().expect("an address"))?);
    let peer_addr = peer.local_addr().map_err(|e| e.to_string())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut media = Vec::with_capacity(n);
    for i in 0..n {
        let r = control.call(
            "call.start",
            json!({
                "call_id": format!("load-{i}"), "mute_mode": "drop",
                "candidates": [{"ip": peer_addr.ip(), "port": peer_addr.port()}],
                "keying": {"scheme": "sdes", "profile": traffic::PROFILE.name(),
                           "tx": b64.encode(traffic::call_key(i, TO_PEER)),
                           "rx": b64.encode(traffic::call_key(i, FROM_PEER))},
                "audio": {"payload_type": 111, "clock_rate": 48000, "ssrc": OUT_BASE + i as u32},
                "bridge": dialect.bridge(&url),
            }),
        )?;
        media.push(crate::reachable(&r["local"])?);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while counters.streams.load(Ordering::Relaxed) < n as u64 {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {n} bot streams started",
                counters.streams.load(Ordering::Relaxed)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let stop_receiving = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (peer, counters, stop) = (peer.clone(), counters.clone(), stop_receiving.clone());
        std::thread::spawn(move || receive(&peer, n, &counters, &stop))
    };
    let start = Instant::now();
    let sender = {
        let peer = peer.clone();
        std::thread::spawn(move || send(&peer, &media, seconds, start))
    };
    std::thread::sleep(Duration::from_secs(2));
    let before = Snapshot::take(control, n, &counters, cpu)?;
    std::thread::sleep(
        (start + Duration::from_millis(seconds * 1000 - 300))
            .saturating_duration_since(Instant::now()),
    );
    let after = Snapshot::take(control, n, &counters, cpu)?;
    let peer_sent = sender.join().map_err(|_| "the peers' sender panicked")?;
    // Let the bots fall silent and every queue drain, then count what arrived each way.
    quiet.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(600));
    let end = Snapshot::take(control, n, &counters, cpu)?;
    stop_receiving.store(true, Ordering::Relaxed);
    receiver
        .join()
        .map_err(|_| "the peers' receiver panicked")?;
    for i in 0..n {
        let _ = control.call("call.terminate", json!({"call_id": format!("load-{i}")}));
    }
    // The bots close their side once told `stop`.
    let deadline = Instant::now() + Duration::from_secs(5);
    while counters.ended.load(Ordering::Relaxed) < n as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(bots);

    let window = after.at.duration_since(before.at).as_secs_f64();
    let cpu_s = after.cpu_s - before.cpu_s;
    let d = |k: &dyn Fn(&Snapshot) -> u64| k(&after) - k(&before);
    let bot_said = sum(&counters.bot_said);
    Ok(json!({
        "calls": n,
        "bridge": dialect.bridge("ws://…"),
        "window_s": (window * 100.0).round() / 100.0,
        "to_bot": {
            "peer_sent": peer_sent,
            "srtpd_received": end.received,
            "lost": peer_sent.saturating_sub(end.received),
            "frames_to_bot_in_window": d(&|s| s.frames_to_bot),
            "frames_per_call_per_s": (d(&|s| s.frames_to_bot) as f64 / window / n as f64 * 10.0).round() / 10.0,
            "jitter_lost_in_window": d(&|s| s.jitter_lost),
            "jitter_late_in_window": d(&|s| s.jitter_late),
            "underruns_in_window": d(&|s| s.jitter_concealed),
            "jitter_skipped_in_window": d(&|s| s.jitter_skipped),
            "bot_heard": sum(&counters.bot_heard),
        },
        "to_peer": {
            "bot_said": bot_said,
            "packets_from_bot": end.packets_from_bot,
            "bot_audio_dropped_samples": end.bot_audio_dropped,
            "peer_received": end.peer_got,
            "lost": end.packets_from_bot.saturating_sub(end.peer_got),
            "underruns_in_window": d(&|s| s.peer_gaps),
            "undecryptable": counters.undecryptable.load(Ordering::Relaxed),
        },
        "daemon": {
            "cpu_s_in_window": (cpu_s * 100.0).round() / 100.0,
            "cpu_per_call_pct_of_core": (cpu_s / window / n as f64 * 100.0 * 1000.0).round() / 1000.0,
            "cpu_per_call_us_per_20ms": (cpu_s / window / n as f64 * 20_000.0 * 10.0).round() / 10.0,
        },
    }))
}

/// The counters at one moment.
struct Snapshot {
    at: Instant,
    cpu_s: f64,
    received: u64,
    frames_to_bot: u64,
    packets_from_bot: u64,
    bot_audio_dropped: u64,
    jitter_lost: u64,
    jitter_late: u64,
    jitter_concealed: u64,
    jitter_skipped: u64,
    peer_got: u64,
    peer_gaps: u64,
}

impl Snapshot {
    fn take(
        control: &mut ControlClient,
        n: usize,
        counters: &Counters,
        cpu: &dyn Fn() -> Result<f64, String>,
    ) -> Result<Snapshot, String> {
        let at = Instant::now();
        let cpu_s = cpu()?;
        let (peer_got, peer_gaps) = (sum(&counters.peer_got), sum(&counters.peer_gaps));
        let mut s = Snapshot {
            at,
            cpu_s,
            received: 0,
            frames_to_bot: 0,
            packets_from_bot: 0,
            bot_audio_dropped: 0,
            jitter_lost: 0,
            jitter_late: 0,
            jitter_concealed: 0,
            jitter_skipped: 0,
            peer_got,
            peer_gaps,
        };
        for i in 0..n {
            let st = control.call("call.stats", json!({"call_id": format!("load-{i}")}))?;
            let u = |v: &Value| v.as_u64().unwrap_or(0);
            let b = &st["bridge"];
            s.received += u(&st["audio"]["received"]["packets"]);
            s.frames_to_bot += u(&b["frames_to_bot"]);
            s.packets_from_bot += u(&b["packets_from_bot"]);
            s.bot_audio_dropped += u(&b["bot_audio_dropped"]);
            s.jitter_lost += u(&b["jitter"]["lost"]);
            s.jitter_late += u(&b["jitter"]["late"]);
            s.jitter_concealed += u(&b["jitter"]["concealed"]);
            s.jitter_skipped += u(&b["jitter"]["skipped"]);
        }
        Ok(s)
    }
}

/// The peers' side: every call 20 ms of Opus every 20 ms for `seconds`, the calls spread
/// over the period in 1 ms steps. Returns the packets sent.
fn send(peer: &UdpSocket, media: &[SocketAddr], seconds: u64, start: Instant) -> u64 {
    let mut encoder = AudioEncoder::new(CodecKind::Opus).expect("libopus");
    let pcm = tone(440.0, 48_000, 48_000);
    let frames: Vec<Vec<u8>> = pcm
        .chunks(960)
        .map(|f| {
            let mut out = [0u8; 1_500];
            let len = encoder.encode(f, &mut out).expect("an Opus frame");
            out[..len].to_vec()
        })
        .collect();
    let mut contexts: Vec<_> = (0..media.len()).map(|i| context(i, FROM_PEER)).collect();
    let mut buf = [0u8; 1_600];
    let mut sent = 0;
    for tick in 0..seconds * 50 {
        for phase in 0..20u64 {
            for (i, to) in media.iter().enumerate().skip(phase as usize).step_by(20) {
                let payload = &frames[tick as usize % frames.len()];
                let header = RtpHeader {
                    payload_type: 111,
                    marker: false,
                    seq: SeqNo(tick as u16),
                    timestamp: (tick * 960) as u32,
                    ssrc: Ssrc(IN_BASE + i as u32),
                };
                let Some(len) = header.emit(&mut buf, payload) else {
                    continue;
                };
                let Ok(len) = contexts[i].protect(&mut buf, len) else {
                    continue;
                };
                if peer.send_to(&buf[..len], to).is_ok() {
                    sent += 1;
                }
            }
            let due = start + Duration::from_micros(20_000 * tick + 1_000 * (phase + 1));
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }
    sent
}

/// The peers' side: decrypts what srtpd sends each call and counts it, and the packet times
/// skipped between consecutive packets (RTP timestamps 960 apart).
fn receive(peer: &UdpSocket, n: usize, counters: &Counters, stop: &AtomicBool) {
    let mut contexts: Vec<_> = (0..n).map(|i| context(i, TO_PEER)).collect();
    let mut last_ts: Vec<Option<u32>> = vec![None; n];
    let mut buf = [0u8; 2_048];
    while !stop.load(Ordering::Relaxed) {
        let Ok(len) = peer.recv(&mut buf) else {
            continue;
        };
        let datagram = &mut buf[..len];
        if classify(datagram) != PacketKind::Rtp {
            continue;
        }
        let Some(i) = RtpPacket::new_checked(&*datagram)
            .ok()
            .and_then(|p| p.ssrc().0.checked_sub(OUT_BASE))
            .map(|i| i as usize)
            .filter(|&i| i < n)
        else {
            counters.undecryptable.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let Ok(plain) = contexts[i].unprotect(datagram) else {
            counters.undecryptable.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let Ok(p) = RtpPacket::new_checked(&datagram[..plain]) else {
            continue;
        };
        let ts = p.timestamp();
        if let Some(last) = last_ts[i] {
            let skipped = (ts.wrapping_sub(last) / 960).saturating_sub(1);
            if skipped < 1_000 {
                counters.peer_gaps[i].fetch_add(u64::from(skipped), Ordering::Relaxed);
            }
        }
        last_ts[i] = Some(ts);
        counters.peer_got[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// The bots: a WebSocket server on its own runtime, one task per stream, until the process
/// ends.
fn serve_bots(
    listener: std::net::TcpListener,
    dialect: Dialect,
    counters: Arc<Counters>,
    quiet: Arc<AtomicBool>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        while let Ok((stream, _)) = listener.accept().await {
            let (counters, quiet) = (counters.clone(), quiet.clone());
            tokio::spawn(async move {
                // Small reads: tungstenite zeroes its whole read buffer before each.
                let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
                if let Ok(ws) =
                    tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
                {
                    bot(ws, dialect, &counters, &quiet).await;
                    counters.ended.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
}

/// One bot: waits for `start`, then says 20 ms of a 300 Hz tone every 20 ms (100 ms ahead)
/// until told to be quiet, counting the frames it hears.
async fn bot(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    dialect: Dialect,
    counters: &Counters,
    quiet: &AtomicBool,
) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let rate = dialect.rate();
    let frame = rate as usize / 50;
    let voice = tone(300.0, rate, rate as usize);
    let mut call: Option<(usize, String)> = None;
    let mut said = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            message = ws.next() => {
                let Some(Ok(message)) = message else { return };
                match message {
                    Message::Binary(_) => {
                        if let Some((i, _)) = &call {
                            counters.bot_heard[*i].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Message::Text(text) => {
                        let Ok(m) = serde_json::from_str::<Value>(&text) else { continue };
                        match m["event"].as_str() {
                            Some("start") => {
                                let i = m["start"]["callSid"]
                                    .as_str()
                                    .and_then(|s| s.strip_prefix("load-"))
                                    .and_then(|s| s.parse::<usize>().ok())
                                    .filter(|&i| i < counters.bot_said.len());
                                let sid = m["streamSid"].as_str().unwrap_or_default().to_owned();
                                if let Some(i) = i {
                                    call = Some((i, sid));
                                    counters.streams.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Some("media") => {
                                if let Some((i, _)) = &call {
                                    counters.bot_heard[*i].fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Some("stop") => {
                                let _ = ws.close(None).await;
                                return;
                            }
                            _ => {}
                        }
                    }
                    Message::Close(_) => return,
                    _ => {}
                }
            }
            _ = tick.tick(), if call.is_some() && !quiet.load(Ordering::Relaxed) => {
                let Some((i, sid)) = &call else { continue };
                // 100 ms ahead at first, then one frame a period.
                let frames = if said == 0 { 5 } else { 1 };
                for _ in 0..frames {
                    let at = (said * frame) % voice.len();
                    let pcm = &voice[at..at + frame];
                    let message = match dialect {
                        Dialect::Twilio => {
                            let ulaw: Vec<u8> =
                                pcm.iter().map(|&s| audio_codec_algorithms::encode_ulaw(s)).collect();
                            Message::text(
                                json!({"event": "media", "streamSid": sid,
                                       "media": {"payload": b64.encode(ulaw)}})
                                .to_string(),
                            )
                        }
                        Dialect::L16 => {
                            Message::binary(pcm.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>())
                        }
                    };
                    if ws.send(message).await.is_err() {
                        return;
                    }
                    said += 1;
                    counters.bot_said[*i].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
