//! Readable tables of call statistics, for `srtpctl top` and `srtpd demo`.

use std::time::Instant;

use serde_json::Value;

/// `text` with its control characters (newlines, ESC, NUL, ...) written as escapes, so that
/// a string from outside cannot forge lines or drive the terminal it is printed on.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// One call's statistics at one moment, under a label (the call id, or a side of the demo).
#[derive(Clone, Debug)]
pub struct Sample {
    /// Row label.
    pub label: String,
    /// `call.stats` result.
    pub stats: Value,
    /// When it was taken.
    pub at: Instant,
}

/// A table with a row per track: packets and bitrate each way (bitrate from the previous
/// sample with the same label), loss, jitter, and whether we or the peer muted it.
pub fn track_table(now: &[Sample], before: &[Sample]) -> String {
    let mut out = format!(
        "{:<22} {:<6} {:<10} {:<22} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:<6}\n",
        "CALL",
        "TRACK",
        "STATE",
        "REMOTE",
        "OUT",
        "OUT kb/s",
        "IN",
        "IN kb/s",
        "LOST",
        "JITTER",
        "MUTED"
    );
    for s in now {
        let prev = before.iter().find(|b| b.label == s.label);
        for kind in ["audio", "video"] {
            let t = &s.stats[kind];
            if t.is_null() {
                continue;
            }
            let rate = |dir: &str| -> String {
                let Some(p) = prev else { return "-".into() };
                let secs = s.at.duration_since(p.at).as_secs_f64();
                let bytes = t[dir]["bytes"].as_u64().unwrap_or(0);
                let was = p.stats[kind][dir]["bytes"].as_u64().unwrap_or(0);
                if secs <= 0.0 {
                    "-".into()
                } else {
                    format!(
                        "{:.1}",
                        bytes.saturating_sub(was) as f64 * 8.0 / 1000.0 / secs
                    )
                }
            };
            let muted = match (t["muted"].as_bool(), s.stats["peer_muted"].as_bool()) {
                (Some(true), _) => "self",
                (_, Some(true)) if kind == "audio" => "peer",
                _ => "no",
            };
            out += &format!(
                "{:<22} {:<6} {:<10} {:<22} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:<6}\n",
                truncate(&printable(&s.label), 22),
                kind,
                printable(s.stats["state"].as_str().unwrap_or("?")),
                printable(s.stats["remote"].as_str().unwrap_or("-")),
                t["sent"]["packets"],
                rate("sent"),
                t["received"]["packets"],
                rate("received"),
                t["received"]["lost"],
                format!(
                    "{:.1}ms",
                    t["received"]["jitter_ms"].as_f64().unwrap_or(0.0)
                ),
                muted,
            );
        }
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}
