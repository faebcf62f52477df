//! Starts the real `srtpd` binary with a temporary config and socket, and talks to it over
//! the control socket as a signaling client would.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The two socket layouts every daemon test runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A media socket per call.
    PerCall,
    /// Shared media ports, one per worker.
    Shared,
}

/// Workers of a test daemon (fixed, so that tests behave alike on any machine).
pub const WORKERS: u16 = 2;

/// Runs each test body once per layout: `fn name(layout: Layout) { ... }` becomes the tests
/// `name::per_call` and `name::shared`.
#[macro_export]
macro_rules! in_both_layouts {
    ($($(#[$meta:meta])* fn $name:ident($layout:ident: Layout) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[test]
                $(#[$meta])*
                fn per_call() {
                    body($crate::common::daemon::Layout::PerCall)
                }
                #[test]
                $(#[$meta])*
                fn shared() {
                    body($crate::common::daemon::Layout::Shared)
                }
                fn body($layout: $crate::common::daemon::Layout) $body
            }
        )*
    };
}

/// A running srtpd, killed on drop.
pub struct TestDaemon {
    child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
    pub layout: Layout,
    /// The first shared port (shared layout).
    pub shared_port: u16,
}

impl TestDaemon {
    /// Starts srtpd in `layout` with `extra` TOML appended to a config that sets the socket,
    /// fast timers, loopback binds and two workers (`extra`'s first lines still belong to
    /// `[media]`).
    pub fn start_with(layout: Layout, extra: &str) -> Self {
        // A shared port picked free may be taken by the time the daemon binds it: try again.
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(layout, extra) {
                Ok(d) => return d,
                Err(log) => last = log,
            }
        }
        panic!("srtpd did not start: {last}");
    }

    fn try_start(layout: Layout, extra: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("srtpd.sock");
        let config = dir.path().join("srtpd.toml");
        let shared_port = match layout {
            Layout::PerCall => 0,
            Layout::Shared => free_ports_v4_v6(WORKERS),
        };
        let layout_lines = match layout {
            Layout::PerCall => "layout = \"per-call\"\n".to_owned(),
            Layout::Shared => format!("layout = \"shared\"\nshared_port = {shared_port}\n"),
        };
        // The socket goes into the extra's own [control] table when it has one.
        let control = format!("[control]\nsocket = {socket:?}\n");
        let (head, extra) = match extra.contains("[control]\n") {
            true => (String::new(), extra.replacen("[control]\n", &control, 1)),
            false => (format!("{control}\n"), extra.to_owned()),
        };
        // Loopback binds, unless the extra names its own.
        let binds = if extra.contains("bind_v4") {
            ""
        } else {
            "bind_v4 = \"127.0.0.1\"\nbind_v6 = \"::1\"\n"
        };
        let mut text =
            format!("{head}[media]\n{binds}workers = {WORKERS}\n{layout_lines}{extra}\n");
        if !extra.contains("[calls]") {
            text.push_str("[calls]\nrtcp_interval_ms = 500\nkeepalive_interval_ms = 1000\n");
        }
        std::fs::write(&config, text).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_srtpd"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "srtpd=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("srtpd.log")).unwrap(),
            ))
            .spawn()
            .expect("srtpd starts");
        let mut daemon = TestDaemon {
            child,
            socket,
            dir,
            layout,
            shared_port,
        };
        daemon.wait_for_socket()?;
        Ok(daemon)
    }

    pub fn start(layout: Layout) -> Self {
        Self::start_with(layout, "")
    }

    /// Checks that a call that was on media address `local` let go of it: its port is free
    /// again (per-call layout), or no worker runs a call any more (shared).
    pub fn expect_released(&self, local: SocketAddr) {
        match self.layout {
            Layout::PerCall => {
                UdpSocket::bind(local).expect("the call's media port was released");
            }
            Layout::Shared => {
                let status = self.client().ok("daemon.status", json!({}));
                let workers = status["workers"].as_array().expect("workers");
                assert!(workers.iter().all(|w| w["calls"] == 0), "{status}");
            }
        }
    }

    /// A port a call's `bind` may name on 127.0.0.1: a free one (per-call layout) or the
    /// first worker's shared port.
    pub fn bind_port(&self) -> u16 {
        match self.layout {
            Layout::PerCall => free_port("127.0.0.1"),
            Layout::Shared => self.shared_port,
        }
    }

    fn wait_for_socket(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("srtpd exited ({status}): {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "srtpd did not open {}: {}",
            self.socket.display(),
            self.log()
        );
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("srtpd.log")).unwrap_or_default()
    }

    /// The log once it holds `needle`, waiting up to `within`: srtpd writes its log lines
    /// from a thread of their own, a moment after what they tell.
    pub fn wait_log(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not logged within {within:?}: {log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the media workers (threads `srtpd-worker-*`) have used so far, from
    /// `/proc/PID/task/*/stat` (user + system).
    pub fn worker_cpu(&self) -> Duration {
        let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let mut ticks = 0;
        let tasks =
            std::fs::read_dir(format!("/proc/{}/task", self.pid())).expect("the daemon's threads");
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("srtpd-worker") {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // Fields after the command (which ends at the last ')'): utime is the 14th of
            // the line, stime the 15th.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or("", |(_, r)| r)
                .split_whitespace()
                .collect();
            for i in [11, 12] {
                ticks += fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        Duration::from_millis(ticks * 1000 / ticks_per_s)
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- srtpd log (last 40 lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A control connection.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    pending_events: VecDeque<Value>,
}

impl Client {
    pub fn connect(path: &Path) -> Self {
        let stream = UnixStream::connect(path).expect("control socket connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            next_id: 1,
            pending_events: VecDeque::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Reads one line (a response or a notification); notifications and errors are checked
    /// against the contract (docs/srtpd.openrpc.json).
    pub fn read_line(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let v: Value = serde_json::from_str(&line).expect("srtpd writes JSON lines");
                assert_eq!(v["jsonrpc"], "2.0", "{line}");
                if v.get("method").is_some() {
                    assert_eq!(v["method"], "event", "{line}");
                    assert!(v.get("id").is_none(), "a notification has no id: {line}");
                    super::contract::check_event(&v["params"]);
                } else if let Some(e) = v.get("error") {
                    super::contract::check_error(e);
                }
                Some(v)
            }
        }
    }

    /// Calls `method`; `Err((code, message))` for an error response.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, (i64, String)> {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(format!("{line}\n").as_bytes());
        loop {
            let v = self.read_line().expect("a response");
            if v.get("method").is_some() {
                self.pending_events.push_back(v["params"].clone());
                continue;
            }
            assert_eq!(v["id"], json!(id), "response id");
            if let Some(e) = v.get("error") {
                return Err((
                    e["code"].as_i64().unwrap(),
                    e["message"].as_str().unwrap().to_owned(),
                ));
            }
            // Accepted: the request and its result are what the contract says.
            super::contract::check_exchange(method, &params, &v["result"]);
            return Ok(v["result"].clone());
        }
    }

    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        self.call(method, params)
            .unwrap_or_else(|e| panic!("{method} failed: {e:?}"))
    }

    /// The events read so far and not yet taken, in the order they came (those that came
    /// before a response are read with it).
    pub fn take_read_events(&mut self) -> Vec<Value> {
        self.pending_events.drain(..).collect()
    }

    /// The next event, whatever it is, within `within`.
    pub fn next_event(&mut self, within: Duration) -> Option<Value> {
        if let Some(e) = self.pending_events.pop_front() {
            return Some(e);
        }
        self.writer.set_read_timeout(Some(within)).unwrap();
        let mut found = None;
        while let Some(v) = self.read_line() {
            if v.get("method").is_some() {
                found = Some(v["params"].clone());
                break;
            }
        }
        self.writer
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        found
    }

    /// Waits up to `within` for an event named `name` (for `call_id`, if given).
    pub fn wait_event(
        &mut self,
        name: &str,
        call_id: Option<&str>,
        within: Duration,
    ) -> Option<Value> {
        let matches = |e: &Value| e["event"] == name && call_id.is_none_or(|id| e["call_id"] == id);
        if let Some(i) = self.pending_events.iter().position(matches) {
            return self.pending_events.remove(i);
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            self.writer.set_read_timeout(Some(left)).unwrap();
            let Some(v) = self.read_line() else { break };
            if v.get("method").is_some() {
                let e = v["params"].clone();
                if matches(&e) {
                    self.writer
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    return Some(e);
                }
                self.pending_events.push_back(e);
            }
        }
        self.writer
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        None
    }

    /// The digits of the `call.dtmf` events of `call_id`, up to `n` of them, each waited for
    /// up to `within`.
    pub fn dtmf_digits(&mut self, call_id: &str, n: usize, within: Duration) -> String {
        let mut digits = String::new();
        while digits.len() < n {
            let Some(e) = self.wait_event("call.dtmf", Some(call_id), within) else {
                break;
            };
            digits.push_str(e["digit"].as_str().expect("a digit"));
        }
        digits
    }
}

/// A free UDP port on `ip` (bound and released: good enough on a test machine).
pub fn free_port(ip: &str) -> u16 {
    UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first of `n` consecutive UDP ports free on `ip` at the moment of the call.
pub fn free_ports(ip: &str, n: u16) -> u16 {
    loop {
        let first = free_port(ip);
        if first.checked_add(n - 1).is_none() {
            continue;
        }
        let held: Vec<_> = (1..n)
            .map_while(|k| UdpSocket::bind((ip, first + k)).ok())
            .collect();
        if held.len() == usize::from(n - 1) {
            return first;
        }
    }
}

/// The first of `n` consecutive UDP ports free on both 127.0.0.1 and ::1 at the moment of
/// the call.
pub fn free_ports_v4_v6(n: u16) -> u16 {
    loop {
        let first = free_ports("127.0.0.1", n);
        let held: Vec<_> = (0..n)
            .map_while(|k| UdpSocket::bind(("::1", first + k)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return first;
        }
    }
}

/// A UDP socket on loopback with a receive timeout, and room for the bursts a test sends
/// faster than real time (a worker forwards a whole batch at once; the default buffer holds
/// about 256 small datagrams).
pub fn udp(ip: &str) -> UdpSocket {
    let addr: SocketAddr = SocketAddr::new(ip.parse().unwrap(), 0);
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )
    .unwrap();
    s.set_recv_buffer_size(4 << 20).unwrap();
    s.bind(&addr.into()).unwrap();
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    s
}

/// Receives datagrams until `count` arrived or `idle` passes with none.
pub fn receive_all(socket: &UdpSocket, count: usize, idle: Duration) -> Vec<(Vec<u8>, SocketAddr)> {
    socket.set_read_timeout(Some(idle)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while out.len() < count {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => out.push((buf[..n].to_vec(), from)),
            Err(_) => break,
        }
    }
    out
}

pub fn addr(v: &Value) -> SocketAddr {
    v.as_str()
        .expect("an address string")
        .parse()
        .expect("a socket address")
}
