//! A blocking control-socket client, for srtpctl and `srtpd demo`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// One connection to a daemon's control socket.
pub struct ControlClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    events: VecDeque<Value>,
}

impl ControlClient {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Self, String> {
        let stream = UnixStream::connect(path)
            .map_err(|e| format!("cannot connect to srtpd at {}: {e}", path.display()))?;
        Ok(ControlClient {
            reader: BufReader::new(stream.try_clone().map_err(|e| e.to_string())?),
            writer: stream,
            next_id: 1,
            events: VecDeque::new(),
        })
    }

    fn read(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("srtpd closed the connection".into()),
            Ok(_) => {
                serde_json::from_str(&line).map_err(|e| format!("srtpd sent invalid JSON: {e}"))
            }
            Err(e) => Err(format!("reading from srtpd: {e}")),
        }
    }

    /// Calls `method`; an error response becomes `Err("message (code)")`. Event
    /// notifications that arrive meanwhile are kept for [`Self::next_event`].
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(self.writer, "{request}").map_err(|e| format!("writing to srtpd: {e}"))?;
        loop {
            let v = self.read()?;
            if v.get("method") == Some(&json!("event")) {
                self.events.push_back(v["params"].clone());
                continue;
            }
            if v.get("id") != Some(&json!(id)) {
                continue;
            }
            if let Some(e) = v.get("error") {
                return Err(format!(
                    "{} ({})",
                    e["message"].as_str().unwrap_or("error"),
                    e["code"]
                ));
            }
            return Ok(v["result"].clone());
        }
    }

    /// The next event notification's params, waiting at most `timeout` (`None`: forever).
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Value>, String> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        self.writer
            .set_read_timeout(timeout)
            .map_err(|e| e.to_string())?;
        let result = loop {
            match self.read() {
                Ok(v) if v.get("method") == Some(&json!("event")) => {
                    break Ok(Some(v["params"].clone()));
                }
                Ok(_) => continue,
                Err(e)
                    if e.contains("timed out")
                        || e.contains("Resource temporarily unavailable") =>
                {
                    break Ok(None);
                }
                Err(e) => break Err(e),
            }
        };
        self.writer
            .set_read_timeout(None)
            .map_err(|e| e.to_string())?;
        result
    }
}
