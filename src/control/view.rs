//! Readable output for people: tables whose headings line up, counts with their nouns, and
//! text from outside made safe to print (`srtpctl`, `srtpd demo`).

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

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text: flush left.
    Left,
    /// Numbers: flush right, so digits line up.
    Right,
}

/// A text table whose columns are as wide as their widest cell, heading included, so every
/// heading stands over its values whatever they are. The heading is always printed.
#[derive(Clone, Debug)]
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these headings.
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; its cells are made printable (see [`printable`]), and missing ones are
    /// blank.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| printable(c.as_ref()).into_owned())
                .collect(),
        );
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (heading, _))| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .chain([heading.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let headings = self.columns.iter().map(|(h, _)| h.to_string()).collect();
        for cells in std::iter::once(&headings).chain(&self.rows) {
            let mut line = String::new();
            for (i, ((_, align), width)) in self.columns.iter().zip(&widths).enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                if i > 0 {
                    line.push_str("  ");
                }
                match align {
                    Align::Left => line.push_str(&format!("{cell:<width$}")),
                    Align::Right => line.push_str(&format!("{cell:>width$}")),
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `n` and the noun, singular or plural as `n` asks: "1 call", "2 calls".
pub fn count_of(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A JSON value as a cell: a string without its quotes, `-` for null or missing.
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// A table with a row per track: packets and bitrate each way (bitrate from the previous
/// sample with the same label), loss, jitter, and whether we or the peer muted it.
pub fn track_table(now: &[Sample], before: &[Sample]) -> Table {
    use Align::{Left, Right};
    let mut table = Table::new(&[
        ("CALL", Left),
        ("TRACK", Left),
        ("STATE", Left),
        ("REMOTE", Left),
        ("OUT", Right),
        ("OUT kb/s", Right),
        ("IN", Right),
        ("IN kb/s", Right),
        ("LOST", Right),
        ("JITTER ms", Right),
        ("MUTED", Left),
    ]);
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
            table.row([
                truncate(&s.label, 40),
                kind.to_owned(),
                cell(&s.stats["state"]),
                cell(&s.stats["remote"]),
                cell(&t["sent"]["packets"]),
                rate("sent"),
                cell(&t["received"]["packets"]),
                rate("received"),
                cell(&t["received"]["lost"]),
                format!("{:.1}", t["received"]["jitter_ms"].as_f64().unwrap_or(0.0)),
                muted.to_owned(),
            ]);
        }
    }
    table
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_stand_over_their_columns_whatever_the_values() {
        let mut t = Table::new(&[
            ("CALL", Align::Left),
            ("IN", Align::Right),
            ("MUTED", Align::Left),
        ]);
        t.row(["a-very-long-call-id", "1234567", "no"]);
        t.row(["x", "5", "self"]);
        let text = t.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let in_end = lines[0].find("IN").unwrap() + 2;
        for row in &lines[1..] {
            assert!(row.as_bytes()[in_end - 1].is_ascii_digit(), "{text}");
            assert_eq!(row.as_bytes()[in_end], b' ', "{text}");
        }
        let muted = lines[0].find("MUTED").unwrap();
        assert_eq!(&lines[1][muted..], "no");
        assert_eq!(&lines[2][muted..], "self");
    }

    #[test]
    fn an_empty_table_still_has_its_heading_and_cells_cannot_forge_lines() {
        let mut t = Table::new(&[("CALL", Align::Left)]);
        assert_eq!(t.to_string(), "CALL\n");
        t.row(["evil\nline"]);
        assert_eq!(t.to_string().lines().count(), 2);
    }

    #[test]
    fn counts_are_singular_only_for_one() {
        assert_eq!(count_of(0, "call"), "0 calls");
        assert_eq!(count_of(1, "call"), "1 call");
        assert_eq!(count_of(2, "call"), "2 calls");
    }
}
