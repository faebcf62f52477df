//! `srtpd demo`: one command that shows srtpd working. Two daemons with their own control
//! sockets set up a call through those sockets with `call.stanza` (the spec's accept stanza,
//! its candidate swapped for loopback), one plays a bundled Ogg Opus clip and the other
//! records it, audio is muted for a second (sent as silence, the default mute mode) and a
//! stand-in video track toggled, and a table shows the tracks. The summary checks that every
//! packet played was recorded, the muted ones replaced by silence; the demo's working
//! directory is removed at the end and the recording kept where it says.

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use srtpd::control::client::ControlClient;
use srtpd::control::view::{Sample, track_table};
use srtpd::media::AudioClip;
use srtpd::media::codec::OPUS_SILENCE;

/// The bundled clip: 6 s of tones, Opus 24 kb/s in 20 ms packets.
const CLIP: &[u8] = include_bytes!("../../../assets/demo.opus");
const CALLER: &str = "A@s.whatsapp.net";
const CALLEE: &str = "B.0:7@s.whatsapp.net";
const CALL_ID: &str = "CALLID-0001-synthetic";

/// The spec's accept stanza, with the documentation address swapped for a loopback one.
fn accept_stanza(to: SocketAddr) -> String {
    format!(
        r#"<call from="{CALLEE}" to="{CALLER}" id="2B3C4D5E6F">
  <accept call-id="{CALL_ID}" call-creator="{CALLER}">
    <enc v="2" type="msg"><!-- optional callee keying contribution --></enc>
    <destination>
      <te ip="{}" port="{}"/>
    </destination>
  </accept>
</call>"#,
        to.ip(),
        to.port()
    )
}

fn offer_stanza(relay: SocketAddr) -> String {
    format!(
        r#"<call from="{CALLER}" to="{CALLEE}" id="1A2B3C"><offer call-id="{CALL_ID}" call-creator="{CALLER}"><audio enc="opus" rate="48000"/><video enc="vp8"/><relay><te2 relay_id="0" relay_name="loopback" ip="{}" port="{}"/></relay></offer></call>"#,
        relay.ip(),
        relay.port()
    )
}

struct Daemon {
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, name: &str) -> Result<Daemon, String> {
        let socket = dir.join(format!("{name}.sock"));
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[control]\nsocket = {socket:?}\n[media]\nbind_v4 = \"127.0.0.1\"\n[calls]\nrtcp_interval_ms = 1000\n[log]\nlevel = \"warn\"\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start daemon {name}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if Instant::now() > deadline {
                return Err(format!("daemon {name} did not open {}", socket.display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Daemon { child, socket })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> Result<SocketAddr, String> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    s.local_addr().map_err(|e| e.to_string())
}

fn parse_addr(v: &Value) -> Result<SocketAddr, String> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an address: {v}"))
}

/// The demo's working directory (sockets, configurations, logs, the clip), removed when the
/// demo ends, however it ends. Declared before the daemons, so it outlives them.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the recording is kept unless `--recording` says otherwise: one file, replaced by
/// each run, so runs leave nothing else behind.
pub fn default_recording() -> PathBuf {
    std::env::temp_dir().join("srtpd-demo-recording.opus")
}

/// Runs the demo, recording to `recording`; `Ok` when the summary balances.
pub fn run(recording: &Path) -> Result<(), String> {
    let recording = std::path::absolute(recording).map_err(|e| e.to_string())?;
    let work = WorkDir(std::env::temp_dir().join(format!("srtpd-demo-{}", std::process::id())));
    let dir = work.0.clone();
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let clip_path = dir.join("demo.opus");
    std::fs::write(&clip_path, CLIP).map_err(|e| e.to_string())?;
    let clip = AudioClip::load_ogg_opus(&clip_path).map_err(|e| e.to_string())?;

    println!(
        "srtpd demo: two daemons, one call set up with <call> stanzas, a 6 s clip played and recorded"
    );
    println!(
        "  audio: the bundled clip (Opus, 20 ms packets), muted for a second at 2 s: srtpd sends\n  \
         silence meanwhile (mute_mode \"silence\", the default)"
    );
    println!(
        "  video: a stand-in camera (dummy 400-byte frames at 30/s, not a real codec), so that\n  \
         \"video off\" at 4 s and \"on\" at 4.6 s have something to stop and restart\n"
    );
    let caller = Daemon::start(&dir, "caller")?;
    let callee = Daemon::start(&dir, "callee")?;
    let mut a = ControlClient::connect(&caller.socket)?;
    let mut b = ControlClient::connect(&callee.socket)?;
    let mut events = ControlClient::connect(&caller.socket)?;
    events.call("events.subscribe", json!({}))?;
    println!("  caller daemon: {}", caller.socket.display());
    println!("  callee daemon: {}", callee.socket.display());

    let key: [u8; 32] = rand::random();
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    let (a_addr, b_addr) = (free_udp_port()?, free_udp_port()?);
    let ra = a.call(
        "call.stanza",
        json!({
            "xml": offer_stanza(b_addr), "self": CALLER, "call_key": key, "bind": a_addr.to_string(),
            "audio": {"payload_type": 111, "clock_rate": 48000, "source": {"kind": "file", "path": clip_path}},
            "video": {"payload_type": 97, "clock_rate": 90000, "source": {"kind": "rtp"}},
        }),
    )?;
    b.call(
        "call.stanza",
        json!({
            "xml": offer_stanza(a_addr), "self": CALLEE, "call_key": key, "bind": b_addr.to_string(),
            "audio": {"payload_type": 111, "clock_rate": 48000, "sink": {"kind": "file", "path": recording, "overwrite": true}},
            "video": {"payload_type": 97, "clock_rate": 90000},
        }),
    )?;
    println!(
        "  offer → both ringing; the callee accepts with the spec's <accept> stanza (loopback candidate)\n"
    );
    b.call(
        "call.stanza",
        json!({"xml": accept_stanza(a_addr), "self": CALLEE}),
    )?;
    a.call(
        "call.stanza",
        json!({"xml": accept_stanza(b_addr), "self": CALLER}),
    )?;

    // The camera stand-in: 30 frames/s of dummy video into the caller's video source.
    let video_source = parse_addr(&ra["video"]["source"])?;
    let stop = Arc::new(AtomicBool::new(false));
    let camera = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
                return;
            };
            let mut i: u32 = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut p = vec![0x80, 100, (i >> 8) as u8, i as u8];
                p.extend_from_slice(&(i * 3000).to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, 9]);
                p.extend_from_slice(&[0x42; 400]);
                let _ = s.send_to(&p, video_source);
                i = i.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(33));
            }
        })
    };

    let live = std::io::stdout().is_terminal();
    let start = Instant::now();
    let mut before: Vec<Sample> = Vec::new();
    let mut drawn_lines = 0;
    let mut steps = vec![
        (2.0, "mute audio"),
        (3.0, "unmute audio"),
        (4.0, "video off"),
        (4.6, "video on"),
    ];
    let mut ended = false;
    let mut last_plain = Instant::now() - Duration::from_secs(1);
    while !ended && start.elapsed() < Duration::from_secs(15) {
        let t = start.elapsed().as_secs_f64();
        while steps.first().is_some_and(|(at, _)| t >= *at) {
            let (_, what) = steps.remove(0);
            match what {
                "mute audio" => a.call(
                    "call.mute",
                    json!({"call_id": CALL_ID, "media": "audio", "muted": true}),
                )?,
                "unmute audio" => a.call(
                    "call.mute",
                    json!({"call_id": CALL_ID, "media": "audio", "muted": false}),
                )?,
                "video off" => {
                    a.call("call.video", json!({"call_id": CALL_ID, "enabled": false}))?
                }
                _ => a.call("call.video", json!({"call_id": CALL_ID, "enabled": true}))?,
            };
            if !live {
                println!("  t={t:.1}s caller: {what}");
            }
        }
        let now = vec![
            Sample {
                label: "caller".into(),
                stats: a.call("call.stats", json!({"call_id": CALL_ID}))?,
                at: Instant::now(),
            },
            Sample {
                label: "callee".into(),
                stats: b.call("call.stats", json!({"call_id": CALL_ID}))?,
                at: Instant::now(),
            },
        ];
        let table = track_table(&now, &before).to_string();
        if live {
            if drawn_lines > 0 {
                print!("\x1b[{drawn_lines}A\x1b[J");
            }
            let header =
                format!("  t={t:4.1}s  (mute at 2 s for 1 s, video off at 4 s, on at 4.6 s)\n");
            print!("{header}{table}");
            drawn_lines = table.lines().count() + 1;
            std::io::stdout().flush().ok();
        } else if last_plain.elapsed() >= Duration::from_secs(1) {
            println!("  t={t:4.1}s\n{table}");
            last_plain = Instant::now();
        }
        before = now;
        while let Some(e) = events.next_event(Some(Duration::from_millis(250)))? {
            if e["event"] == "track.source_ended" {
                ended = true;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = camera.join();
    std::thread::sleep(Duration::from_millis(300));

    let sent = a.call(
        "call.terminate",
        json!({"call_id": CALL_ID, "reason": "demo finished"}),
    )?;
    let got = b.call(
        "call.terminate",
        json!({"call_id": CALL_ID, "reason": "demo finished"}),
    )?;
    let _ = a.call("daemon.shutdown", json!({}));
    let _ = b.call("daemon.shutdown", json!({}));
    let recorded = AudioClip::load_ogg_opus(&recording).map_err(|e| e.to_string())?;

    let played = clip.packets.len() as u64;
    let muted = sent["audio"]["gated"].as_u64().unwrap_or(0);
    let on_wire = sent["audio"]["sent"]["packets"].as_u64().unwrap_or(0);
    let received = got["audio"]["received"]["packets"].as_u64().unwrap_or(0);
    let recorded_n = recorded.packets.len() as u64;
    let silence = recorded
        .packets
        .iter()
        .filter(|(p, _)| p.as_slice() == OPUS_SILENCE)
        .count() as u64;
    println!("\nsummary");
    println!(
        "  clip played:          {played} packets ({:.2} s)",
        clip.samples() as f64 / 48_000.0
    );
    println!("  muted:                {muted} packets of the clip, not sent");
    println!("  sent by the caller:   {on_wire} packets");
    println!(
        "  received by callee:   {received} packets, {} lost",
        got["audio"]["received"]["lost"]
    );
    println!(
        "  recorded:             {recorded_n} packets ({:.2} s of audio), {silence} of them the silence sent while muted",
        recorded.samples() as f64 / 48_000.0
    );
    println!(
        "  video (stand-in):     {} sent, {} received",
        sent["video"]["sent"]["packets"], got["video"]["received"]["packets"]
    );
    println!("  recording:            {}", recording.display());
    if played == recorded_n - silence + muted && silence > 0 && ended {
        println!(
            "\nOK: every packet played was recorded, the {muted} muted ones replaced by {silence} of silence"
        );
        println!(
            "Listen to the recording: ffplay -nodisp -autoexit {} (or mpv, VLC: any player of Ogg Opus)",
            recording.display()
        );
        Ok(())
    } else {
        Err(format!(
            "played {played} ≠ recorded {recorded_n} − silence {silence} + muted {muted} (clip ended: {ended})"
        ))
    }
}
