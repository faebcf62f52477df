//! The voice bot of the bridge tests (tests/bots/bot.py, on Python's `websockets`) and the
//! Python that runs it and the other external peers written in Python.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::daemon::free_port;

/// The Python the bot runs on: `SRTPD_TEST_PYTHON`, else the system's (where Debian's
/// python3-websockets lives).
pub fn python() -> String {
    std::env::var("SRTPD_TEST_PYTHON").unwrap_or_else(|_| {
        if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3".to_owned()
        } else {
            "python3".to_owned()
        }
    })
}

/// tests/bots/bot.py, serving on a port of its own, saying 1 kHz for 2 s to every stream.
pub struct Bot {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Bot {
    pub fn start() -> Bot {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port("127.0.0.1");
        let mut child = Command::new(python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bots/bot.py"))
            .args([
                &port.to_string(),
                dir.path().to_str().unwrap(),
                "1000",
                "2000",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the bot starts");
        Bot { child, dir, port }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/bot", self.port)
    }

    /// What the bot heard on call `call_id` (samples at the stream's rate) and every message
    /// it got, once the stream ended.
    pub fn heard(&self, call_id: &str) -> (Vec<i16>, Vec<Value>) {
        let path = |ext: &str| -> PathBuf { self.dir.path().join(format!("{call_id}.{ext}")) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path("done").exists() {
            assert!(
                Instant::now() < deadline,
                "the bot's stream of {call_id} never ended"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let raw = std::fs::read(path("raw")).unwrap();
        let samples = raw
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let events = std::fs::read_to_string(path("jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (samples, events)
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
