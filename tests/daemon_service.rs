//! srtpd as a service: readiness notification (systemd's protocol), SIGHUP reopening the
//! log file and taking the configuration's log level again, STOPPING on SIGTERM, and the
//! service unit's system-call filter, which must allow every call srtpd makes.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::daemon::{Client, addr, free_port, free_ports_v4_v6};
use common::peer::Peer;
use common::rtp_packet;
use serde_json::json;
use webrtc_srtp::protection_profile::ProtectionProfile;

/// srtpd with `config`, told to notify `notify` (no RUST_LOG: the configuration's level
/// rules).
fn start(config: &Path, notify: &Path) -> Child {
    start_under(&[], config, notify)
}

/// srtpd as [`start`] does, run by `wrapper` (a command and its arguments, srtpd's command
/// line appended), if any.
fn start_under(wrapper: &[&str], config: &Path, notify: &Path) -> Child {
    let srtpd = env!("CARGO_BIN_EXE_srtpd");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(srtpd);
            c
        }
        None => Command::new(srtpd),
    };
    command
        .arg("--config")
        .arg(config)
        .env("NOTIFY_SOCKET", notify)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("srtpd starts")
}

fn next_notice(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notification in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn notifies_readiness_reopens_its_log_on_sighup_and_takes_the_level_again() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, log, config) = (
        dir.path().join("srtpd.sock"),
        dir.path().join("srtpd.log"),
        dir.path().join("srtpd.toml"),
    );
    let write_config = |level: &str| {
        std::fs::write(
            &config,
            format!(
                "[control]\nsocket = {socket:?}\n[media]\nbind_v4 = \"127.0.0.1\"\nworkers = 1\n[log]\nlevel = \"{level}\"\nfile = {log:?}\n"
            ),
        )
        .unwrap();
    };
    write_config("warn");
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = start(&config, &notify_path);

    assert_eq!(next_notice(&notify), "READY=1\n");
    // Ready means ready: the control socket answers at once.
    let mut client = Client::connect(&socket);
    client.ok("daemon.status", json!({}));

    let start_call = |client: &mut Client, id: &str| {
        client.ok(
            "call.start",
            json!({
                "call_id": id, "candidates": [{"ip": "127.0.0.1", "port": 20991}],
                "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                           "tx": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "rx": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
                "audio": {"payload_type": 111, "clock_rate": 48000},
            }),
        );
    };
    // At warn, a call's start is not logged.
    start_call(&mut client, "QUIET-1");
    std::thread::sleep(Duration::from_millis(300));
    let before = std::fs::read_to_string(&log).unwrap();
    assert!(!before.contains("call started"), "{before}");

    // logrotate moves the file away; the configuration now says info; SIGHUP.
    let rotated = dir.path().join("srtpd.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    write_config("info");
    signal(&child, libc::SIGHUP);
    let reloading = next_notice(&notify);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(next_notice(&notify), "READY=1\n");
    wait_for("a new log file", || log.exists());
    start_call(&mut client, "LOUD-1");
    wait_for("the call's start in the new file", || {
        std::fs::read_to_string(&log)
            .is_ok_and(|t| t.contains("call started") && t.contains("LOUD-1"))
    });
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(
        !old.contains("LOUD-1"),
        "nothing more goes to the moved file: {old}"
    );
    // The calls still run: a SIGHUP changes nothing else.
    assert_eq!(client.ok("daemon.status", json!({}))["calls"], 2);

    // A configuration that no longer parses: logged, and nothing else changes.
    std::fs::write(&config, "[log]\nlevel = 7\n").unwrap();
    signal(&child, libc::SIGHUP);
    next_notice(&notify);
    assert_eq!(next_notice(&notify), "READY=1\n");
    wait_for("the refusal in the log", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("configuration not read again"))
    });
    assert_eq!(client.ok("daemon.status", json!({}))["calls"], 2);

    signal(&child, libc::SIGTERM);
    assert_eq!(next_notice(&notify), "STOPPING=1\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "srtpd exits on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
    let last = std::fs::read_to_string(&log).unwrap();
    assert!(
        last.contains("srtpd stopped"),
        "the last lines are flushed on exit: {last}"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_command_lines() {
    for (bin, sub) in [
        (env!("CARGO_BIN_EXE_srtpd"), "demo"),
        (env!("CARGO_BIN_EXE_srtpctl"), "play"),
    ] {
        let name = Path::new(bin).file_name().unwrap().to_str().unwrap();
        // bash loads the script and then completes the binary's subcommands.
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source <(\"$BIN\" completions bash) && complete -p {name} && \
                 COMP_WORDS=({name} ''); COMP_CWORD=1; _{name} {name} '' {name}; printf '%s\\n' \"${{COMPREPLY[@]}}\""
            ))
            .env("BIN", bin)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.lines().any(|l| l == sub),
            "{name} completes {sub}: {text}"
        );
        for shell in ["zsh", "fish"] {
            let out = Command::new(bin)
                .args(["completions", shell])
                .output()
                .unwrap();
            assert!(
                out.status.success() && !out.stdout.is_empty(),
                "{name} {shell}"
            );
        }

        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(bin)
            .arg("man")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let page = std::fs::read_to_string(dir.path().join(format!("{name}.1"))).unwrap();
        assert!(page.contains(".TH"), "{page}");
        assert!(page.contains(sub), "{name}.1 lists {sub}");
        let sub_page = dir.path().join(format!("{name}-{sub}.1"));
        assert!(sub_page.exists(), "{}", sub_page.display());
        // man (man-db, installed by .ci/run) renders it.
        let shown = Command::new("man")
            .arg("-l")
            .arg(&sub_page)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .output()
            .expect("man runs");
        assert!(shown.status.success());
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(
            shown.contains("SYNOPSIS") && shown.contains(&format!("{name}-{sub}")),
            "{shown}"
        );
    }
}

/// The system calls a `SystemCallFilter=` value names: each `@group` expanded by
/// `systemd-analyze syscall-filter`, groups within groups included.
fn syscall_set(names: &str) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    let mut todo: Vec<String> = names.split_whitespace().map(str::to_owned).collect();
    let mut seen = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !name.starts_with('@') {
            set.insert(name);
            continue;
        }
        if !seen.insert(name.clone()) {
            continue;
        }
        let out = Command::new("systemd-analyze")
            .args(["syscall-filter", &name])
            .output()
            .expect("systemd-analyze runs (systemd, installed by .ci/run)");
        assert!(
            out.status.success(),
            "systemd-analyze syscall-filter {name}"
        );
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            let entry = line.trim();
            if !entry.is_empty() && !entry.starts_with('#') {
                todo.push(entry.to_owned());
            }
        }
    }
    set
}

/// What `contrib/srtpd.service` lets srtpd call: the union of its allow lists less the
/// union of its deny lists (`~`).
fn unit_syscall_filter() -> BTreeSet<String> {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/srtpd.service"
    ))
    .unwrap();
    let (mut allowed, mut denied) = (BTreeSet::new(), BTreeSet::new());
    for value in unit
        .lines()
        .filter_map(|l| l.strip_prefix("SystemCallFilter="))
    {
        match value.strip_prefix('~') {
            Some(deny) => denied.extend(syscall_set(deny)),
            None => allowed.extend(syscall_set(value)),
        }
    }
    assert!(
        !allowed.is_empty(),
        "the unit has a SystemCallFilter= allow list"
    );
    allowed.difference(&denied).cloned().collect()
}

/// The system calls in `strace -c`'s summary.
fn traced_syscalls(summary: &str) -> BTreeSet<String> {
    summary
        .lines()
        .filter(|l| !l.starts_with('%') && !l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last())
        .filter(|name| *name != "total")
        .map(str::to_owned)
        .collect()
}

/// The pid of `parent`'s only child (srtpd, run by strace).
fn child_of(parent: &Child) -> i32 {
    let path = format!("/proc/{0}/task/{0}/children", parent.id());
    let mut pid = None;
    wait_for("srtpd under strace", || {
        pid = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse().ok()));
        pid.is_some()
    });
    pid.unwrap()
}

/// srtpd under strace, in each I/O backend and layout, through what a service does: calls on
/// IPv4 and IPv6 with SRTP both ways, a recording started with the call and one started
/// later (Ogg Opus, WAV), a clip played, DTMF, mute, stats, a metrics scrape, a SIGHUP that
/// reopens the log, readiness notices, and SIGTERM. Every system call it made must pass
/// the unit's `SystemCallFilter=`, or systemd would refuse it in production.
#[test]
#[ignore = "needs strace and systemd-analyze (installed by .ci/run)"]
fn the_service_units_system_call_filter_allows_every_call_srtpd_makes() {
    let allowed = unit_syscall_filter();
    let b64 = |k: [u8; 30]| base64::engine::general_purpose::STANDARD.encode(k);
    let (ours, theirs) = ([5u8; 30], [6u8; 30]);
    let mut used_by_any = BTreeSet::new();
    for (io, layout) in [("io_uring", "per-call"), ("epoll", "shared")] {
        let dir = tempfile::tempdir().unwrap();
        let (socket, log, config, trace) = (
            dir.path().join("srtpd.sock"),
            dir.path().join("srtpd.log"),
            dir.path().join("srtpd.toml"),
            dir.path().join("strace.txt"),
        );
        let metrics = free_port("127.0.0.1");
        std::fs::write(
            &config,
            format!(
                "[control]\nsocket = {socket:?}\n[media]\nbind_v4 = \"127.0.0.1\"\nbind_v6 = \"::1\"\n\
                 workers = 2\nio = \"{io}\"\nlayout = \"{layout}\"\nshared_port = {}\nfiles_dir = {:?}\n\
                 [metrics]\nlisten = \"127.0.0.1:{metrics}\"\n[log]\nlevel = \"info\"\nfile = {log:?}\n",
                free_ports_v4_v6(2),
                dir.path(),
            ),
        )
        .unwrap();
        let notify_path = dir.path().join("notify");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let trace_arg = trace.to_str().unwrap();
        let mut strace = start_under(
            &["strace", "-f", "-qq", "-c", "-o", trace_arg, "--"],
            &config,
            &notify_path,
        );
        assert_eq!(next_notice(&notify), "READY=1\n", "{io}");
        let srtpd = child_of(&strace);
        let mut client = Client::connect(&socket);
        client.ok("events.subscribe", json!({}));

        let clip = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.opus");
        let mut peers = Vec::new();
        for (id, ip) in [("V4", "127.0.0.1"), ("V6", "::1")] {
            let peer = Peer::new(
                ip,
                ProtectionProfile::Aes128CmHmacSha1_80,
                &theirs,
                &ours,
                16,
            );
            let started = client.ok(
                "call.start",
                json!({
                    "call_id": id, "bind": ip,
                    "candidates": [{"ip": ip, "port": peer.addr().port()}],
                    "keying": {"scheme": "sdes", "profile": "AES_CM_128_HMAC_SHA1_80",
                               "tx": b64(ours), "rx": b64(theirs)},
                    "audio": {"payload_type": 111, "clock_rate": 48000,
                              "source": {"kind": "silence"},
                              "sink": {"kind": "file", "path": format!("{id}.opus")}},
                }),
            );
            peers.push((id, peer, addr(&started["local"])));
        }
        // The peers speak (Opus silence, which decodes), and hear srtpd.
        for round in 0..40u16 {
            for (_, peer, local) in &mut peers {
                let plain = rtp_packet(
                    111,
                    round,
                    u32::from(round) * 960,
                    0x5eed_0001,
                    &srtpd::call::OPUS_SILENCE,
                );
                peer.send_rtp(&plain, *local);
                peer.pump(Duration::from_millis(10), usize::MAX);
            }
            if round == 10 {
                client.ok("call.record", json!({"call_id": "V4", "path": "later.wav"}));
                client.ok("call.play", json!({"call_id": "V6", "path": clip}));
                client.ok("call.dtmf", json!({"call_id": "V4", "digits": "12"}));
                client.ok(
                    "call.mute",
                    json!({"call_id": "V6", "media": "audio", "muted": true}),
                );
            }
        }
        for (id, peer, _) in &peers {
            assert!(!peer.seen.rtp.is_empty(), "{io}: {id} heard srtpd");
            let stats = client.ok("call.stats", json!({"call_id": id}));
            assert!(
                stats["audio"]["received"]["packets"].as_u64() > Some(0),
                "{io} {id}: {stats}"
            );
        }
        let mut http = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
        http.write_all(b"GET /metrics HTTP/1.1\r\nHost: srtpd\r\n\r\n")
            .unwrap();
        let mut exposition = String::new();
        http.read_to_string(&mut exposition).unwrap();
        assert!(exposition.contains("srtpd_calls 2"), "{exposition}");

        // SAFETY: signals go to our own child's child, srtpd.
        assert_eq!(unsafe { libc::kill(srtpd, libc::SIGHUP) }, 0);
        assert!(next_notice(&notify).starts_with("RELOADING=1"));
        assert_eq!(next_notice(&notify), "READY=1\n");
        client.ok("call.terminate", json!({"call_id": "V4"}));
        assert_eq!(unsafe { libc::kill(srtpd, libc::SIGTERM) }, 0);
        assert_eq!(next_notice(&notify), "STOPPING=1\n");
        let deadline = Instant::now() + Duration::from_secs(30);
        while strace.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{io}: srtpd exits on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            strace.wait().unwrap().success(),
            "{io}: srtpd exited with 0"
        );
        for recording in ["V4.opus", "V6.opus", "later.wav"] {
            let len = std::fs::metadata(dir.path().join(recording)).map_or(0, |m| m.len());
            assert!(len > 100, "{io}: {recording} was written ({len} bytes)");
        }

        let used = traced_syscalls(&std::fs::read_to_string(&trace).unwrap());
        // The trace saw the packet path and the control plane, or it proves nothing.
        let fell_back =
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("io_uring unavailable"));
        let packet_path = match io {
            "io_uring" if !fell_back => ["io_uring_enter"].as_slice(),
            _ => ["recvmmsg", "sendmmsg", "epoll_wait"].as_slice(),
        };
        for name in packet_path.iter().chain(&["accept4", "openat", "write"]) {
            assert!(used.contains(*name), "{io}: {name} traced: {used:?}");
        }
        let refused: Vec<&String> = used.difference(&allowed).collect();
        assert!(
            refused.is_empty(),
            "{io}, {layout}: srtpd called {refused:?}, which contrib/srtpd.service's SystemCallFilter= refuses"
        );
        used_by_any.extend(used);
    }
    eprintln!("system calls made: {used_by_any:?}");
}
