//! srtpctl drives every method of a running srtpd, through the binary.

mod common;

use std::process::{Command, Output, Stdio};

use base64::Engine;
use common::daemon::{Layout, TestDaemon};
use serde_json::{Value, json};

fn ctl(daemon: &TestDaemon, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_srtpctl"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(args)
        .output()
        .expect("srtpctl runs")
}

fn ok(daemon: &TestDaemon, args: &[&str]) -> String {
    let out = ctl(daemon, args);
    assert!(
        out.status.success(),
        "srtpctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `srtpctl --json ARGS`'s result, checked against the contract (docs/srtpd.openrpc.json)
/// as the result of the method the subcommand calls.
fn json(daemon: &TestDaemon, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let result: Value = serde_json::from_str(&ok(daemon, &all)).expect("--json prints JSON");
    let method = match args[0] {
        "call" => args[1],
        "status" => "daemon.status",
        "shutdown" => "daemon.shutdown",
        "list" => "call.list",
        sub => &format!("call.{sub}"),
    };
    common::contract::check_result(method, &result);
    result
}

/// `srtpctl start` for an SDES call on loopback with audio and a video track, plus `extra`.
fn start_args<'a>(
    call_id: &'a str,
    candidate: &'a str,
    key: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "start",
        "--call-id",
        call_id,
        "--bind",
        "127.0.0.1",
        "--candidate",
        candidate,
        "--sdes",
        "AES_CM_128_HMAC_SHA1_80",
        "--tx",
        key,
        "--rx",
        key,
        "--video-pt",
        "97",
    ];
    args.extend_from_slice(extra);
    args
}

in_both_layouts! {
fn drives_every_method(layout: Layout) {
    let mut daemon = TestDaemon::start(layout);
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 30]);

    let status = ok(&daemon, &["status"]);
    assert!(
        status.starts_with("srtpd 0.1.0") && status.contains("calls 0"),
        "{status}"
    );
    // A line per worker, its counters under the header's columns.
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(lines.len(), 2 + usize::from(common::daemon::WORKERS), "{status}");
    let header = lines[1];
    for (name, value) in [("IO", "epoll"), ("UNCLAIMED", "0")] {
        let column = header.find(name).unwrap();
        let end = column + name.len();
        let cell = &lines[2][..end.max(column + value.len())];
        assert!(cell.trim_end().ends_with(value), "{name} column: {status}");
    }
    let layout_name = match layout {
        Layout::PerCall => "per-call",
        Layout::Shared => "shared",
    };
    assert!(status.contains(&format!("layout {layout_name}")), "{status}");
    assert_eq!(json(&daemon, &["status"])["calls"], 0);

    // Follow events in the background while the call runs.
    let events = Command::new(env!("CARGO_BIN_EXE_srtpctl"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["events", "--count", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));

    let started = json(
        &daemon,
        &start_args(
            "CTL-1",
            "127.0.0.1:20999@5",
            &key,
            &[
                "--audio-source",
                "rtp",
                "--audio-sink",
                "rtp:127.0.0.1:6000",
            ],
        ),
    );
    assert_eq!(started["call_id"], "CTL-1");
    assert!(started["local"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(started["audio"]["source"].is_string());

    let list = ok(&daemon, &["list"]);
    assert!(
        list.contains("CTL-1") && list.contains("checking") && list.contains("127.0.0.1:20999"),
        "{list}"
    );

    ok(&daemon, &["mute", "--call-id", "CTL-1", "--media", "audio"]);
    let stats = ok(&daemon, &["stats", "--call-id", "CTL-1"]);
    assert!(
        stats.contains("call CTL-1") && stats.contains("audio") && stats.contains("video"),
        "{stats}"
    );
    // Every number of a track's row ends where its heading does; text starts where it does.
    let lines: Vec<&str> = stats.lines().collect();
    let heading = lines
        .iter()
        .find(|l| l.starts_with("TRACK"))
        .expect("a heading");
    let audio = lines
        .iter()
        .find(|l| l.starts_with("audio"))
        .expect("an audio row");
    for column in ["SENT B", "RECV B", "LOST", "JITTER ms"] {
        let end = heading.find(column).unwrap() + column.len();
        assert_ne!(audio.as_bytes()[end - 1], b' ', "{column} column:\n{stats}");
        assert!(
            audio.as_bytes().get(end).is_none_or(|&b| b == b' '),
            "{column} column:\n{stats}"
        );
    }
    let muted = heading.find("MUTED").unwrap();
    assert_eq!(&audio[muted - 2..], "  true", "MUTED column:\n{stats}");
    assert_eq!(
        json(&daemon, &["stats", "--call-id", "CTL-1"])["audio"]["muted"],
        true
    );
    ok(
        &daemon,
        &["mute", "--call-id", "CTL-1", "--media", "audio", "--off"],
    );
    assert_eq!(
        json(&daemon, &["stats", "--call-id", "CTL-1"])["audio"]["muted"],
        false
    );

    assert_eq!(
        json(&daemon, &["dtmf", "--call-id", "CTL-1", "12#", "--duration-ms", "60"]),
        json!({"call_id": "CTL-1", "digits": "12#", "duration_ms": 60})
    );
    let refused = ctl(&daemon, &["dtmf", "--call-id", "CTL-1", "9x"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("digits"));
    assert_eq!(
        json(&daemon, &["bridge", "--call-id", "CTL-1"]),
        json!({"call_id": "CTL-1", "bridged": false})
    );
    let refused = ctl(&daemon, &["bridge", "--call-id", "CTL-1", "wss://127.0.0.1:1/"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("url"));

    ok(&daemon, &["video", "--call-id", "CTL-1", "off"]);
    assert_eq!(
        json(&daemon, &["stats", "--call-id", "CTL-1"])["video"]["muted"],
        true
    );
    ok(&daemon, &["video", "--call-id", "CTL-1", "on"]);
    assert_eq!(
        json(&daemon, &["stats", "--call-id", "CTL-1"])["video"]["muted"],
        false
    );

    let generic = json(&daemon, &["call", "call.stats", r#"{"call_id":"CTL-1"}"#]);
    assert_eq!(generic["state"], "checking");

    let failed = ctl(&daemon, &["stats", "--call-id", "nope"]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("-32001"));

    let ended = json(
        &daemon,
        &["terminate", "--call-id", "CTL-1", "--reason", "done"],
    );
    assert_eq!(ended["call_id"], "CTL-1");
    assert_eq!(ok(&daemon, &["list"]), "no calls\n");

    let out = events.wait_with_output().unwrap();
    let lines = String::from_utf8(out.stdout).unwrap();
    assert!(lines.contains("call.started CTL-1"), "{lines}");
    assert!(
        lines.contains("track.keyframe_needed CTL-1 {\"media\":\"video\"}"),
        "{lines}"
    );
    assert!(lines.contains("call.ended CTL-1"), "{lines}");

    ok(&daemon, &["shutdown"]);
    assert!(
        daemon
            .wait_exit(std::time::Duration::from_secs(5))
            .unwrap()
            .success()
    );
}
}

in_both_layouts! {
fn forwards_stanza_files(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let key = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let offer = dir.path().join("offer.xml");
    // A candidate on loopback (127.0.0.1:20999) as 6-byte te2 content.
    std::fs::write(
        &offer,
        r#"<call from="1:0@lid" to="2:0@lid"><offer call-id="CTL-ST"><relay><te2>7f0000015207</te2></relay></offer></call>"#,
    )
    .unwrap();
    let ringing = json(
        &daemon,
        &[
            "stanza",
            offer.to_str().unwrap(),
            "--self",
            "2:0@lid",
            "--call-key",
            &key,
            "--bind",
            "127.0.0.1",
        ],
    );
    assert_eq!(ringing["action"], "ringing");
    assert_eq!(
        json(&daemon, &["stats", "--call-id", "CTL-ST"])["remote"],
        "127.0.0.1:20999"
    );

    let end = dir.path().join("end.xml");
    std::fs::write(
        &end,
        r#"<call from="1:0@lid"><terminate call-id="CTL-ST" reason="timeout"/></call>"#,
    )
    .unwrap();
    let text = ok(
        &daemon,
        &["stanza", end.to_str().unwrap(), "--self", "2:0@lid"],
    );
    assert!(
        text.contains("action: ended") && text.contains("reason: timeout"),
        "{text}"
    );

    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, "<call><mute").unwrap();
    let out = ctl(
        &daemon,
        &["stanza", bad.to_str().unwrap(), "--self", "2:0@lid"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not XML"));
}
}

in_both_layouts! {
fn top_shows_every_call_with_its_tracks(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let key = base64::engine::general_purpose::STANDARD.encode([8u8; 30]);
    for id in ["TOP-1", "TOP-2"] {
        ok(&daemon, &start_args(id, "127.0.0.1:20998", &key, &[]));
    }
    ok(&daemon, &["mute", "--call-id", "TOP-2"]);
    let out = ok(&daemon, &["top", "--count", "2", "--interval-ms", "200"]);
    assert_eq!(
        out.matches("srtpd 0.1.0").count(),
        2,
        "two refreshes: {out}"
    );
    assert!(out.contains("2 calls"), "{out}");
    let last = out.rsplit("srtpd 0.1.0").next().unwrap();
    for needle in [
        "CALL",
        "OUT kb/s",
        "TOP-1",
        "TOP-2",
        "audio",
        "video",
        "checking",
        "127.0.0.1:20998",
    ] {
        assert!(last.contains(needle), "{needle} missing from: {last}");
    }
    let top2_audio = last
        .lines()
        .find(|l| l.starts_with("TOP-2") && l.contains("audio"))
        .unwrap();
    assert!(top2_audio.trim_end().ends_with("self"), "{top2_audio}");
}
}

in_both_layouts! {
fn start_puts_a_producer_given_by_ssrc_on_the_shared_producer_port(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 30]);
    let own = json(&daemon, &start_args("OWN-CTL", "127.0.0.1:20997", &key, &[]));
    let started = json(
        &daemon,
        &start_args(
            "SP-CTL",
            "127.0.0.1:20997",
            &key,
            &["--audio-source-ssrc", "4660"],
        ),
    );
    let status = json(&daemon, &["status"]);
    let shared: Vec<&Value> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["local"])
        .collect();
    assert!(shared.contains(&&started["audio"]["source"]), "{started} {status}");
    assert!(!shared.contains(&&own["audio"]["source"]), "{own} {status}");
    let wrong = ctl(
        &daemon,
        &start_args(
            "SP-CTL-2",
            "127.0.0.1:20997",
            &key,
            &["--audio-source", "none", "--audio-source-ssrc", "1"],
        ),
    );
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("--audio-source-ssrc needs an rtp source"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}
}

#[test]
fn start_reads_keys_from_a_file_or_standard_input() {
    let daemon = TestDaemon::start(Layout::PerCall);
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 30]);
    let file = daemon.dir.path().join("keys");
    std::fs::write(
        &file,
        format!("# our keys\nprofile=AES_CM_128_HMAC_SHA1_80\ntx={key}\nrx = {key}\n"),
    )
    .unwrap();
    let started = json(
        &daemon,
        &[
            "start",
            "--call-id",
            "KF-1",
            "--candidate",
            "127.0.0.1:20996",
            "--keys-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(started["call_id"], "KF-1");

    let mut child = Command::new(env!("CARGO_BIN_EXE_srtpctl"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args([
            "start",
            "--call-id",
            "KF-2",
            "--candidate",
            "127.0.0.1:20996",
            "--keys-file",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    write!(
        child.stdin.take().unwrap(),
        "profile=AES_CM_128_HMAC_SHA1_80\ntx={key}\nrx={key}\n"
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::write(&file, "tx=abc\nsecret-ish line\n").unwrap();
    let bad = ctl(
        &daemon,
        &[
            "start",
            "--call-id",
            "KF-3",
            "--keys-file",
            file.to_str().unwrap(),
        ],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("line 2") && err.contains("NAME=VALUE"),
        "{err}"
    );
}

#[test]
fn list_escapes_control_characters_from_the_daemon() {
    // A daemon refuses such ids now; srtpctl still never prints them raw (an older daemon,
    // or a stanza string in another field).
    let daemon = TestDaemon::start(Layout::PerCall);
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 30]);
    let refused = ctl(
        &daemon,
        &start_args("A\u{1b}[2JB", "127.0.0.1:20995", &key, &[]),
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !err.contains('\u{1b}'),
        "the refusal quotes the id escaped: {err:?}"
    );
}

#[test]
fn names_itself_and_documents_every_source_and_sink() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_srtpctl"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        run(&["--version"]),
        format!("srtpctl {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = run(&["--help"]);
    assert!(
        help.starts_with("srtpctl: drives a running srtpd"),
        "{help}"
    );
    assert!(!help.contains("A media endpoint daemon"), "{help}");
    for sub in ["play", "record", "bridge", "dtmf", "top", "events"] {
        assert!(help.contains(&format!("\n  {sub} ")), "{sub}: {help}");
    }
    let start = run(&["start", "--help"]);
    for spec in ["rtp:IP:PORT", "silence", "file:PATH", ".wav", "none"] {
        assert!(start.contains(spec), "{spec}: {start}");
    }
}

#[test]
fn a_missing_daemon_is_explained_with_the_socket_tried_and_how_to_name_another() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nobody.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_srtpctl"))
        .arg("--socket")
        .arg(&socket)
        .arg("status")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        socket.to_str().unwrap(),
        "No such file or directory",
        "is srtpd running?",
        "--socket PATH",
        "$SRTPD_SOCKET",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

in_both_layouts! {
fn a_reader_that_goes_away_ends_it_quietly(layout: Layout) {
    let daemon = TestDaemon::start(layout);
    let key = base64::engine::general_purpose::STANDARD.encode([5u8; 30]);
    ok(&daemon, &start_args("PIPE-1", "127.0.0.1:20994", &key, &[]));
    for (command, prints) in [
        ("srtpctl top --interval-ms 50 | head -1", true),
        ("srtpctl top --interval-ms 50 | head -c 10", true),
        ("srtpctl status | true", false),
        // Nothing more happens after the first event: srtpctl finds the reader gone anyway.
        ("{ srtpctl events | head -1; } & P=$!; sleep 0.5; srtpctl terminate --call-id PIPE-1 >/dev/null; wait $P", true),
    ] {
        // Bounded: a srtpctl that never notices its reader left fails here rather than hangs.
        let out = Command::new("timeout")
            .args(["20", "bash", "-c"])
            .arg(format!(
                "set -o pipefail; srtpctl() {{ \"$SRTPCTL\" \"$@\"; }}; {command}"
            ))
            .env("SRTPCTL", env!("CARGO_BIN_EXE_srtpctl"))
            .env("SRTPD_SOCKET", &daemon.socket)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command}: {:?} {err}", out.status);
        assert!(err.is_empty(), "{command}: {err}");
        assert_eq!(!out.stdout.is_empty(), prints, "{command}");
    }
}
}

in_both_layouts! {
fn plays_and_records_files_named_from_the_current_directory(layout: Layout) {
    let (a, b) = (TestDaemon::start(layout), TestDaemon::start(layout));
    let here = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.opus"),
        here.path().join("clip.opus"),
    )
    .unwrap();
    let in_here = |daemon: &TestDaemon, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_srtpctl"))
            .current_dir(here.path())
            .arg("--socket")
            .arg(&daemon.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let b64 = |k: u8| base64::engine::general_purpose::STANDARD.encode([k; 30]);
    let (ab, ba) = (b64(1), b64(2));
    let (pa, pb) = (a.bind_port(), b.bind_port());
    let (bind_a, bind_b) = (format!("127.0.0.1:{pa}"), format!("127.0.0.1:{pb}"));
    for (daemon, bind, peer, tx, rx) in [(&a, &bind_a, &bind_b, &ab, &ba), (&b, &bind_b, &bind_a, &ba, &ab)] {
        in_here(
            daemon,
            &[
                "start", "--call-id", "FILES-1", "--bind", bind, "--candidate", peer, "--sdes",
                "AES_CM_128_HMAC_SHA1_80", "--tx", tx, "--rx", rx, "--audio-source", "silence",
            ],
        );
    }
    let recording = in_here(&b, &["record", "--call-id", "FILES-1", "heard.wav"]);
    assert!(recording.contains("heard.wav"), "{recording}");
    let played = in_here(&a, &["--json", "play", "--call-id", "FILES-1", "clip.opus"]);
    let played: Value = serde_json::from_str(&played).unwrap();
    assert_eq!(played["packets"], 301);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    in_here(&b, &["record", "--call-id", "FILES-1"]);
    let wav = std::fs::read(here.path().join("heard.wav")).unwrap();
    // 16-bit mono at 48 kHz: well over a second of the clip (and the silence before it).
    assert!(wav.len() > 44 + 96_000, "{} bytes", wav.len());
    // The file exists now: kept unless --overwrite says otherwise.
    let again = Command::new(env!("CARGO_BIN_EXE_srtpctl"))
        .current_dir(here.path())
        .arg("--socket")
        .arg(&b.socket)
        .args(["record", "--call-id", "FILES-1", "heard.wav"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("heard.wav"));
    in_here(&b, &["record", "--call-id", "FILES-1", "heard.wav", "--overwrite"]);
}
}
