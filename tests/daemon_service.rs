//! srtpd as a service: readiness notification (systemd's protocol), SIGHUP reopening the
//! log file and taking the configuration's log level again, and STOPPING on SIGTERM.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::Client;
use serde_json::json;

/// srtpd with `config`, told to notify `notify` (no RUST_LOG: the configuration's level
/// rules).
fn start(config: &Path, notify: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_srtpd"))
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
