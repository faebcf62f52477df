//! srtpctl: drives a running srtpd over its control socket. Every control method is a
//! subcommand; output is readable by default and raw JSON with --json.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser, Subcommand};
use serde_json::{Map, Value, json};
use srtpd::control::client::ControlClient;
use srtpd::control::params::{SinkParams, SourceParams};
use srtpd::control::view::{Align, Sample, Table, cell, count_of, printable, track_table};
use zeroize::Zeroizing;

/// srtpctl: drives a running srtpd over its control socket: start and end calls, play and
/// record audio, bridge a call to a voice bot, watch calls live.
#[derive(Parser, Debug)]
#[command(name = "srtpctl", version)]
struct Cli {
    /// The daemon's control socket [default: $SRTPD_SOCKET, else srtpd's default:
    /// $XDG_RUNTIME_DIR/srtpd.sock, or /tmp/srtpd-UID/srtpd.sock without XDG_RUNTIME_DIR].
    #[arg(long, global = true, env = "SRTPD_SOCKET")]
    socket: Option<PathBuf>,
    /// Print the raw JSON result instead of readable text.
    #[arg(long, global = true)]
    json: bool,
    /// Wait up to SECS for the daemon to answer (for scripts that have just started it).
    #[arg(long, global = true, value_name = "SECS", default_value_t = 0.0)]
    wait: f64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start media for an accepted call (call.start).
    Start(Box<StartArgs>),
    /// Forward a <call> stanza (call.stanza).
    Stanza {
        /// The stanza, as an XML file (- for standard input).
        file: PathBuf,
        /// Our device id.
        #[arg(long = "self")]
        self_id: String,
        /// Base64 of the decrypted enc payload (wa-e2e).
        #[arg(long)]
        enc_plaintext: Option<String>,
        /// Base64 of the call key (wa-e2e).
        #[arg(long, conflicts_with = "enc_plaintext")]
        call_key: Option<String>,
        /// Bind address, with or without a port.
        #[arg(long)]
        bind: Option<String>,
    },
    /// Mute or unmute a track (call.mute).
    Mute {
        /// The call id.
        #[arg(long)]
        call_id: String,
        /// audio or video.
        #[arg(long, default_value = "audio")]
        media: String,
        /// Unmute instead.
        #[arg(long)]
        off: bool,
    },
    /// Send DTMF digits to the peer as RFC 4733 telephone-events (call.dtmf).
    Dtmf {
        /// The call id.
        #[arg(long)]
        call_id: String,
        /// The digits: 0-9, *, #, A-D.
        digits: String,
        /// Each tone's length, ms (40 to 5000).
        #[arg(long, default_value_t = 100)]
        duration_ms: u32,
    },
    /// Turn our video on or off (call.video).
    Video {
        /// The call id.
        #[arg(long)]
        call_id: String,
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// A call's statistics (call.stats).
    Stats {
        /// The call id.
        #[arg(long)]
        call_id: String,
    },
    /// The calls the daemon carries (call.list).
    List,
    /// Bridge a call's audio to a voice bot's WebSocket server, or detach it (call.bridge).
    Bridge {
        /// The call id.
        #[arg(long)]
        call_id: String,
        /// The bot's ws://HOST:PORT/PATH; without it, the bridge is detached.
        url: Option<String>,
        /// twilio (Media Streams, µ-law 8 kHz) or l16 (16-bit PCM frames).
        #[arg(long, default_value = "twilio", value_parser = ["twilio", "l16"])]
        format: String,
        /// The l16 format's rate: 8000, 16000, 24000 or 48000.
        #[arg(long)]
        rate: Option<u32>,
        /// End the call when the bot goes away (else it goes on without it).
        #[arg(long)]
        terminate_on_close: bool,
    },
    /// End a call (call.terminate).
    Terminate {
        /// The call id.
        #[arg(long)]
        call_id: String,
        /// Why (reported in call.ended).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Version, uptime and call count (daemon.status).
    Status,
    /// Stop the daemon (daemon.shutdown).
    Shutdown,
    /// A live view of every call: state, remote, per-track packets, bitrate, loss, jitter,
    /// mute (refreshes in place on a terminal).
    Top {
        /// Refresh interval, ms.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Stop after this many refreshes.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Follow events until interrupted (events.subscribe).
    Events {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
    },
    /// Play an Ogg Opus or WAV file to the peer over the audio source, which goes on when the clip ends (call.play).
    Play {
        /// The call id.
        #[arg(long)]
        call_id: String,
        /// The file; a relative path is taken from the current directory.
        path: PathBuf,
        /// Start again at its end, until the call ends or something else is played.
        #[arg(long = "loop")]
        looping: bool,
    },
    /// Record the peer's audio (call.record): to WAV when the name ends in .wav, else Ogg Opus.
    Record {
        /// The call id.
        #[arg(long)]
        call_id: String,
        /// The file; a relative path is taken from the current directory. Without it, the
        /// recording stops.
        path: Option<PathBuf>,
        /// Replace an existing file.
        #[arg(long)]
        overwrite: bool,
    },
    #[command(flatten)]
    Docs(srtpd::cli_docs::DocCommand),
    /// Call any method with JSON params (paths in them are the daemon's: relative ones are
    /// inside its media.files_dir).
    Call {
        /// The method, e.g. call.stats.
        method: String,
        /// The params object.
        #[arg(default_value = "{}")]
        params: String,
    },
}

#[derive(clap::Args, Debug)]
struct StartArgs {
    /// The call id.
    #[arg(long)]
    call_id: String,
    /// A peer candidate, IP:PORT or IP:PORT@PRIORITY (repeatable).
    #[arg(long = "candidate")]
    candidates: Vec<String>,
    /// Bind address, with or without a port.
    #[arg(long)]
    bind: Option<String>,
    /// SDES profile (e.g. AES_CM_128_HMAC_SHA1_80); needs --tx and --rx.
    #[arg(long, conflicts_with_all = ["call_key", "enc_plaintext"])]
    sdes: Option<String>,
    /// Our base64 key||salt (SDES).
    #[arg(long, requires = "sdes")]
    tx: Option<String>,
    /// The peer's base64 key||salt (SDES).
    #[arg(long, requires = "sdes")]
    rx: Option<String>,
    /// wa-e2e: base64 of the 32-byte call key.
    #[arg(long)]
    call_key: Option<String>,
    /// wa-e2e: base64 of the decrypted enc payload.
    #[arg(long, conflicts_with = "call_key")]
    enc_plaintext: Option<String>,
    /// Read keys from a file (- for standard input) instead of the command line, where other
    /// users can see them: lines `profile=`, `tx=` and `rx=` (SDES), or `call_key=` or
    /// `enc_plaintext=` (wa-e2e); `#` starts a comment.
    #[arg(long, value_name = "PATH|-", conflicts_with_all = ["tx", "rx", "call_key", "enc_plaintext"])]
    keys_file: Option<PathBuf>,
    /// Our device id (wa-e2e).
    #[arg(long = "self")]
    self_id: Option<String>,
    /// The peer's device id (wa-e2e).
    #[arg(long)]
    peer: Option<String>,
    /// Audio payload type.
    #[arg(long, default_value_t = 111)]
    audio_pt: u8,
    /// Audio clock rate.
    #[arg(long, default_value_t = 48000)]
    audio_clock: u32,
    /// Audio packet time, ms.
    #[arg(long, default_value_t = 20)]
    audio_ptime: u32,
    /// What we send as audio: rtp (a local port of its own, given in the result, where any RTP
    /// producer such as ffmpeg sends plain RTP), rtp:IP:PORT (that port), silence, file:PATH
    /// (an Ogg Opus or WAV file, played once; relative to the current directory) or none.
    #[arg(long, default_value = "rtp", value_name = "SPEC")]
    audio_source: String,
    /// SSRC of the producer feeding an rtp audio source: it then sends to the worker's
    /// shared producer port (given in the result) instead of a port of the track's own.
    #[arg(long)]
    audio_source_ssrc: Option<u32>,
    /// Where the peer's audio goes: rtp:IP:PORT (decrypted RTP forwarded there, e.g. to
    /// ffmpeg or ffplay with an SDP file), file:PATH (recorded: WAV when PATH ends in .wav,
    /// else Ogg Opus; relative to the current directory) or none.
    #[arg(long, default_value = "none", value_name = "SPEC")]
    audio_sink: String,
    /// Add a video track with this payload type.
    #[arg(long)]
    video_pt: Option<u8>,
    /// Video clock rate.
    #[arg(long, default_value_t = 90000)]
    video_clock: u32,
    /// What we send as video: rtp, rtp:IP:PORT or none (as --audio-source).
    #[arg(long, default_value = "none", value_name = "SPEC")]
    video_source: String,
    /// SSRC of the producer feeding an rtp video source (as --audio-source-ssrc).
    #[arg(long)]
    video_source_ssrc: Option<u32>,
    /// Where the peer's video goes: rtp:IP:PORT or none.
    #[arg(long, default_value = "none", value_name = "SPEC")]
    video_sink: String,
}

fn source(spec: &str, producer_ssrc: Option<u32>, flag: &str) -> Result<Value, String> {
    let mut parsed = SourceParams::from_spec(spec).map_err(|e| format!("--{flag}: {e}"))?;
    if let SourceParams::File { path, .. } = &mut parsed {
        *path = from_here(path)?;
    }
    if let Some(given) = producer_ssrc {
        match &mut parsed {
            SourceParams::Rtp { ssrc, .. } => *ssrc = Some(given),
            _ => return Err(format!("--{flag}-ssrc needs an rtp source, not {spec:?}")),
        }
    }
    serde_json::to_value(parsed).map_err(|e| e.to_string())
}

fn sink(spec: &str, flag: &str) -> Result<Value, String> {
    let mut parsed = SinkParams::from_spec(spec).map_err(|e| format!("--{flag}: {e}"))?;
    if let SinkParams::File { path, .. } = &mut parsed {
        *path = from_here(path)?;
    }
    serde_json::to_value(parsed).map_err(|e| e.to_string())
}

/// `path` as the daemon should read it: srtpctl's users mean their own working directory,
/// while the daemon takes a relative path to be inside its `media.files_dir`.
fn from_here(path: &std::path::Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Keys read from `--keys-file`.
#[derive(Default)]
struct KeysFile {
    profile: Option<String>,
    tx: Option<Zeroizing<String>>,
    rx: Option<Zeroizing<String>>,
    call_key: Option<Zeroizing<String>>,
    enc_plaintext: Option<Zeroizing<String>>,
}

fn read_keys_file(path: &std::path::Path) -> Result<KeysFile, String> {
    let text = Zeroizing::new(if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("--keys-file -: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("--keys-file {}: {e}", path.display()))?
    });
    let mut keys = KeysFile::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("--keys-file line {}: expected NAME=VALUE", n + 1));
        };
        let value = Zeroizing::new(value.trim().to_owned());
        let slot = match name.trim() {
            "profile" => {
                keys.profile = Some(value.as_str().to_owned());
                continue;
            }
            "tx" => &mut keys.tx,
            "rx" => &mut keys.rx,
            "call_key" => &mut keys.call_key,
            "enc_plaintext" => &mut keys.enc_plaintext,
            other => {
                return Err(format!(
                    "--keys-file line {}: unknown name {:?}; expected profile, tx, rx, call_key or enc_plaintext",
                    n + 1,
                    printable(other)
                ));
            }
        };
        *slot = Some(value);
    }
    Ok(keys)
}

fn start_params(a: &StartArgs) -> Result<Value, String> {
    let mut candidates = Vec::new();
    for c in &a.candidates {
        let (addr, priority) = match c.rsplit_once('@') {
            Some((addr, p)) => (
                addr,
                p.parse::<u32>()
                    .map_err(|_| format!("--candidate {c}: bad priority"))?,
            ),
            None => (c.as_str(), 1),
        };
        let addr: std::net::SocketAddr = addr
            .parse()
            .map_err(|_| format!("--candidate {c}: expected IP:PORT"))?;
        candidates.push(json!({"ip": addr.ip(), "port": addr.port(), "priority": priority}));
    }
    let file = match &a.keys_file {
        Some(path) => read_keys_file(path)?,
        None => KeysFile::default(),
    };
    let pick = |flag: &Option<String>, field: &Option<Zeroizing<String>>| {
        flag.clone()
            .or_else(|| field.as_ref().map(|v| v.as_str().to_owned()))
    };
    let profile = a.sdes.clone().or(file.profile.clone());
    let (tx, rx) = (pick(&a.tx, &file.tx), pick(&a.rx, &file.rx));
    let (call_key, enc) = (
        pick(&a.call_key, &file.call_key),
        pick(&a.enc_plaintext, &file.enc_plaintext),
    );
    let keying = match (&profile, &call_key, &enc) {
        (Some(profile), None, None) => json!({
            "scheme": "sdes", "profile": profile,
            "tx": tx.as_deref().ok_or("--sdes needs --tx (or tx= in --keys-file)")?,
            "rx": rx.as_deref().ok_or("--sdes needs --rx (or rx= in --keys-file)")?,
        }),
        (None, Some(k), None) => json!({"scheme": "wa-e2e", "call_key": k}),
        (None, None, Some(p)) => json!({"scheme": "wa-e2e", "enc_plaintext": p}),
        _ => {
            return Err(
                "give --sdes PROFILE --tx KEY --rx KEY, or --call-key, or --enc-plaintext (or the same in --keys-file)".into(),
            );
        }
    };
    let mut p = Map::new();
    p.insert("call_id".into(), json!(a.call_id));
    p.insert("candidates".into(), json!(candidates));
    p.insert("keying".into(), keying);
    if let Some(b) = &a.bind {
        p.insert("bind".into(), json!(b));
    }
    if let Some(s) = &a.self_id {
        p.insert("self".into(), json!(s));
    }
    if let Some(s) = &a.peer {
        p.insert("peer".into(), json!(s));
    }
    p.insert(
        "audio".into(),
        json!({
            "payload_type": a.audio_pt, "clock_rate": a.audio_clock, "ptime_ms": a.audio_ptime,
            "source": source(&a.audio_source, a.audio_source_ssrc, "audio-source")?,
            "sink": sink(&a.audio_sink, "audio-sink")?,
        }),
    );
    if let Some(pt) = a.video_pt {
        p.insert(
            "video".into(),
            json!({
                "payload_type": pt, "clock_rate": a.video_clock,
                "source": source(&a.video_source, a.video_source_ssrc, "video-source")?,
                "sink": sink(&a.video_sink, "video-sink")?,
            }),
        );
    }
    Ok(Value::Object(p))
}

/// Why srtpctl stops early.
enum Stop {
    /// Something failed; the message says what.
    Failed(String),
    /// Whoever reads our output went away (`srtpctl top | head -1`): a normal end.
    OutputClosed,
}

impl From<String> for Stop {
    fn from(e: String) -> Stop {
        Stop::Failed(e)
    }
}

impl From<&str> for Stop {
    fn from(e: &str) -> Stop {
        Stop::Failed(e.to_owned())
    }
}

/// Writes `text` to standard output at once (a pipe sees it as it happens).
fn emit(text: &str) -> Result<(), Stop> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Stop::OutputClosed),
        Err(e) => Err(Stop::Failed(format!("writing to standard output: {e}"))),
    }
}

/// Whether standard output is a pipe or socket whose reader has gone (`srtpctl events |
/// head -1` after the first line), found without writing to it.
fn output_closed() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: poll reads and writes only the one pollfd given, and waits not at all.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) | Err(Stop::OutputClosed) => ExitCode::SUCCESS,
        Err(Stop::Failed(e)) => {
            eprintln!("srtpctl: {}", printable(&e));
            ExitCode::FAILURE
        }
    }
}

/// Connects to the daemon (trying again for up to `wait`), saying which socket was tried
/// and how to name another.
fn connect(given: Option<&std::path::Path>, wait: Duration) -> Result<ControlClient, String> {
    let path = given.map_or_else(
        || srtpd::config::Config::default().socket_path(),
        std::path::Path::to_path_buf,
    );
    let deadline = Instant::now() + wait;
    let mut attempt = ControlClient::connect(&path);
    while attempt.is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        attempt = ControlClient::connect(&path);
    }
    attempt.map_err(|e| {
        let from = if given.is_some() {
            "given by --socket or $SRTPD_SOCKET"
        } else {
            "srtpd's default"
        };
        format!(
            "{e}\n  the socket tried is {from}; is srtpd running? Start it with `srtpd` \
             (it prints its socket), or name its socket with --socket PATH or $SRTPD_SOCKET"
        )
    })
}

fn run(cli: Cli) -> Result<(), Stop> {
    if let Cmd::Docs(docs) = &cli.command {
        return docs
            .run(Cli::command())
            .map_err(|e| Stop::Failed(e.to_string()));
    }
    let wait = Duration::try_from_secs_f64(cli.wait)
        .map_err(|_| format!("--wait {}: a number of seconds is needed", cli.wait))?;
    let mut conn = connect(cli.socket.as_deref(), wait)?;
    let (method, params) = match &cli.command {
        Cmd::Start(a) => ("call.start", start_params(a)?),
        Cmd::Stanza {
            file,
            self_id,
            enc_plaintext,
            call_key,
            bind,
        } => {
            let xml = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| format!("reading the stanza: {e}"))?
            } else {
                std::fs::read_to_string(file)
                    .map_err(|e| format!("reading {}: {e}", file.display()))?
            };
            let mut p = json!({"xml": xml, "self": self_id});
            for (k, v) in [
                ("enc_plaintext", enc_plaintext),
                ("call_key", call_key),
                ("bind", bind),
            ] {
                if let Some(v) = v {
                    p[k] = json!(v);
                }
            }
            ("call.stanza", p)
        }
        Cmd::Mute {
            call_id,
            media,
            off,
        } => (
            "call.mute",
            json!({"call_id": call_id, "media": media, "muted": !off}),
        ),
        Cmd::Dtmf {
            call_id,
            digits,
            duration_ms,
        } => (
            "call.dtmf",
            json!({"call_id": call_id, "digits": digits, "duration_ms": duration_ms}),
        ),
        Cmd::Video { call_id, state } => (
            "call.video",
            json!({"call_id": call_id, "enabled": state == "on"}),
        ),
        Cmd::Stats { call_id } => ("call.stats", json!({"call_id": call_id})),
        Cmd::List => ("call.list", json!({})),
        Cmd::Bridge {
            call_id,
            url,
            format,
            rate,
            terminate_on_close,
        } => {
            let mut p = json!({"call_id": call_id, "url": url});
            if url.is_some() {
                p["format"] = json!(format);
                if let Some(rate) = rate {
                    p["rate"] = json!(rate);
                }
                if *terminate_on_close {
                    p["on_close"] = json!("terminate");
                }
            }
            ("call.bridge", p)
        }
        Cmd::Play {
            call_id,
            path,
            looping,
        } => (
            "call.play",
            json!({"call_id": call_id, "path": from_here(path)?, "loop": looping}),
        ),
        Cmd::Record {
            call_id,
            path,
            overwrite,
        } => {
            let path = path.as_deref().map(from_here).transpose()?;
            (
                "call.record",
                json!({"call_id": call_id, "path": path, "overwrite": overwrite}),
            )
        }
        Cmd::Terminate { call_id, reason } => (
            "call.terminate",
            json!({"call_id": call_id, "reason": reason}),
        ),
        Cmd::Status => ("daemon.status", json!({})),
        Cmd::Shutdown => ("daemon.shutdown", json!({})),
        Cmd::Docs(_) => unreachable!("answered without a daemon"),
        Cmd::Events { count } => return follow_events(&mut conn, *count, cli.json),
        Cmd::Top { interval_ms, count } => {
            return top(&mut conn, Duration::from_millis(*interval_ms), *count);
        }
        Cmd::Call { method, params } => {
            let params: Value =
                serde_json::from_str(params).map_err(|e| format!("params are not JSON: {e}"))?;
            (method.as_str(), params)
        }
    };
    let result = conn.call(method, params)?;
    if cli.json {
        emit(&format!("{result}\n"))
    } else {
        emit(&render(method, &result))
    }
}

fn follow_events(conn: &mut ControlClient, count: Option<usize>, raw: bool) -> Result<(), Stop> {
    conn.call("events.subscribe", json!({}))?;
    let mut seen = 0;
    while count.is_none_or(|c| seen < c) {
        // Quiet stretches are looked through once a second for a reader that went away.
        let Some(e) = conn.next_event(Some(Duration::from_secs(1)))? else {
            if output_closed() {
                return Err(Stop::OutputClosed);
            }
            continue;
        };
        if raw {
            emit(&format!("{e}\n"))?;
        } else {
            let mut rest = e.as_object().cloned().unwrap_or_default();
            let name = rest.remove("event").unwrap_or(Value::Null);
            let call = rest.remove("call_id").unwrap_or(Value::Null);
            emit(&format!(
                "{} {} {}\n",
                plain(&name),
                plain(&call),
                Value::Object(rest)
            ))?;
        }
        seen += 1;
    }
    Ok(())
}

fn top(conn: &mut ControlClient, interval: Duration, count: Option<usize>) -> Result<(), Stop> {
    let live = std::io::stdout().is_terminal();
    let mut before: Vec<Sample> = Vec::new();
    let mut shown = 0;
    while count.is_none_or(|c| shown < c) {
        let mut now = Vec::new();
        for call in conn
            .call("call.list", json!({}))?
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let id = call["call_id"].as_str().unwrap_or_default().to_owned();
            if let Ok(stats) = conn.call("call.stats", json!({"call_id": id})) {
                now.push(Sample {
                    label: id,
                    stats,
                    at: Instant::now(),
                });
            }
        }
        let status = conn.call("daemon.status", json!({}))?;
        let table = track_table(&now, &before);
        // On a terminal: clear the screen and draw from the top left.
        emit(&format!(
            "{}srtpd {}  up {} s  {}\n{table}",
            if live { "\x1b[2J\x1b[H" } else { "" },
            plain(&status["version"]),
            plain(&status["uptime_s"]),
            count_of(status["calls"].as_u64().unwrap_or(0), "call"),
        ))?;
        before = now;
        shown += 1;
        if count.is_none_or(|c| shown < c) {
            std::thread::sleep(interval);
        }
    }
    Ok(())
}

/// Readable output for a method's result.
fn render(method: &str, r: &Value) -> String {
    match method {
        "call.stats" | "call.terminate" => render_stats(r),
        "call.list" => {
            let calls = r.as_array().cloned().unwrap_or_default();
            if calls.is_empty() {
                return "no calls\n".into();
            }
            let mut table = Table::new(&[
                ("CALL", Align::Left),
                ("STATE", Align::Left),
                ("REMOTE", Align::Left),
            ]);
            for c in calls {
                table.row([cell(&c["call_id"]), cell(&c["state"]), cell(&c["remote"])]);
            }
            table.to_string()
        }
        "daemon.status" => render_status(r),
        _ => match r.as_object() {
            Some(obj) => obj
                .iter()
                .map(|(k, v)| format!("{k}: {}\n", plain(v)))
                .collect(),
            None => format!("{}\n", plain(r)),
        },
    }
}

/// `daemon.status`: the daemon, then a line per worker.
fn render_status(r: &Value) -> String {
    use Align::{Left, Right};
    let head = format!(
        "srtpd {}  pid {}  up {} s  calls {}  layout {}\n",
        plain(&r["version"]),
        plain(&r["pid"]),
        plain(&r["uptime_s"]),
        plain(&r["calls"]),
        plain(&r["layout"]),
    );
    let mut table = Table::new(&[
        ("WORKER", Right),
        ("IO", Left),
        ("CALLS", Right),
        ("IN", Right),
        ("OUT", Right),
        ("UNCLAIMED", Right),
        ("SEND FAIL", Right),
        ("PRODUCER PORT", Left),
        ("MEDIA PORTS", Left),
    ]);
    for (i, w) in r["workers"].as_array().into_iter().flatten().enumerate() {
        let media: Vec<String> = w["media"]
            .as_array()
            .into_iter()
            .flatten()
            .map(cell)
            .collect();
        table.row([
            i.to_string(),
            cell(&w["io"]),
            cell(&w["calls"]),
            cell(&w["datagrams_in"]),
            cell(&w["datagrams_out"]),
            cell(&w["unclaimed"]),
            cell(&w["send_failed"]),
            cell(&w["local"]),
            if media.is_empty() {
                "-".to_owned()
            } else {
                media.join(" ")
            },
        ]);
    }
    head + &table.to_string()
}

/// A value as text: a string without its quotes, its control characters escaped; `-` for
/// null.
fn plain(v: &Value) -> String {
    printable(&cell(v)).into_owned()
}

fn render_stats(s: &Value) -> String {
    use Align::{Left, Right};
    let head = format!(
        "call {}  state {}  remote {}  rtt {}\n",
        plain(&s["call_id"]),
        plain(&s["state"]),
        plain(&s["remote"]),
        s["rtt_ms"]
            .as_f64()
            .map_or("-".into(), |r| format!("{r:.1} ms")),
    );
    let mut table = Table::new(&[
        ("TRACK", Left),
        ("SENT", Right),
        ("SENT B", Right),
        ("RECV", Right),
        ("RECV B", Right),
        ("LOST", Right),
        ("JITTER ms", Right),
        ("DROP a/r/o", Right),
        ("MUTED", Left),
    ]);
    for kind in ["audio", "video"] {
        let t = &s[kind];
        if t.is_null() {
            continue;
        }
        let dropped = &t["dropped"];
        table.row([
            kind.to_owned(),
            cell(&t["sent"]["packets"]),
            cell(&t["sent"]["bytes"]),
            cell(&t["received"]["packets"]),
            cell(&t["received"]["bytes"]),
            cell(&t["received"]["lost"]),
            format!("{:.2}", t["received"]["jitter_ms"].as_f64().unwrap_or(0.0)),
            format!(
                "{}/{}/{}",
                cell(&dropped["auth"]),
                cell(&dropped["replay"]),
                cell(&dropped["other"])
            ),
            cell(&t["muted"]),
        ]);
    }
    head + &table.to_string()
}
