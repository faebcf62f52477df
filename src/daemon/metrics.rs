//! What srtpd measures for Prometheus, and its exposition in the Prometheus text format
//! (0.0.4), through `prometheus-client`. Counters of traffic are the sum of the calls that
//! ended and those running, taken from the workers at each scrape; calls ended, per-call
//! quality at hangup and control requests are counted as they happen.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::driver::WorkerStats;
use crate::call::{CallStats, MediaTotals, TrackStats, TrafficTotals};

/// Distinct `reason` labels of `srtpd_calls_ended_total` at most: reasons come from clients
/// and peers, and a label per distinct string would grow without bound. Later ones count
/// as `other`.
pub const MAX_REASONS: usize = 32;

/// Reasons longer than this are counted as `other` too.
const MAX_REASON_LABEL: usize = 64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MediaLabel {
    media: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    method: &'static str,
    code: i64,
}

/// The measurements made as things happen; shared by the control plane and the workers.
#[derive(Debug)]
pub struct Metrics {
    calls_started: Counter,
    calls_ended: Family<ReasonLabel, Counter>,
    reasons: Mutex<HashSet<String>>,
    jitter: Family<MediaLabel, Histogram>,
    loss: Family<MediaLabel, Histogram>,
    rtt: Histogram,
    requests: Family<MethodLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            calls_started: Counter::default(),
            calls_ended: Family::default(),
            reasons: Mutex::new(HashSet::new()),
            jitter: Family::new_with_constructor(|| {
                Histogram::new([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5])
            }),
            loss: Family::new_with_constructor(|| {
                Histogram::new([0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5])
            }),
            rtt: Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0]),
            requests: Family::default(),
            errors: Family::default(),
        }
    }
}

/// What is read from the daemon at a scrape.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// Calls running.
    pub calls: u64,
    /// Traffic of every call, ended and running.
    pub traffic: TrafficTotals,
    /// Every worker's counters.
    pub workers: Vec<WorkerStats>,
}

impl Metrics {
    /// A call was started.
    pub fn call_started(&self) {
        self.calls_started.inc();
    }

    /// A call ended, for `reason`, with these final statistics: its quality at hangup goes
    /// into the histograms.
    pub fn call_ended(&self, reason: &str, stats: &CallStats) {
        let reason = {
            let mut known = self.reasons.lock().expect("reasons lock");
            let fits = reason.len() <= MAX_REASON_LABEL
                && (known.contains(reason) || known.len() < MAX_REASONS);
            if fits {
                known.insert(reason.to_owned());
                reason.to_owned()
            } else {
                "other".to_owned()
            }
        };
        self.calls_ended
            .get_or_create(&ReasonLabel { reason })
            .inc();
        for (media, track) in [("audio", &stats.audio), ("video", &stats.video)] {
            let Some(t) = track.as_ref().filter(|t| t.received.packets > 0) else {
                continue;
            };
            let label = MediaLabel { media };
            self.jitter
                .get_or_create(&label)
                .observe(t.received.jitter_ms / 1000.0);
            self.loss.get_or_create(&label).observe(loss_ratio(t));
        }
        if let Some(rtt) = stats.rtt_ms {
            self.rtt.observe(rtt / 1000.0);
        }
    }

    /// A control request for `method` was answered: `Ok`, or `Err` with its JSON-RPC code.
    pub fn request(&self, method: &str, result: Result<(), i64>) {
        let method = crate::control::dispatch::METHODS
            .iter()
            .copied()
            .find(|m| *m == method)
            .unwrap_or("unknown");
        self.requests.get_or_create(&MethodLabel { method }).inc();
        if let Err(code) = result {
            self.errors
                .get_or_create(&ErrorLabel { method, code })
                .inc();
        }
    }

    /// The exposition of everything, with `snapshot` for what is read at the scrape.
    pub fn encode(&self, snapshot: Snapshot) -> String {
        let mut r = Registry::with_prefix("srtpd");
        r.register(
            "build",
            "srtpd's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        r.register(
            "calls_started",
            "Calls started (call.start, and call.stanza offers and accepts that started one)",
            self.calls_started.clone(),
        );
        r.register(
            "calls_ended",
            "Calls ended, by reason (at most 32 distinct reasons; later ones are \"other\")",
            self.calls_ended.clone(),
        );
        r.register_with_unit(
            "call_jitter",
            "Each ended call's interarrival jitter (RFC 3550) of what it received, per track",
            Unit::Seconds,
            self.jitter.clone(),
        );
        r.register(
            "call_loss_ratio",
            "Each ended call's fraction of the peer's packets lost, per track",
            self.loss.clone(),
        );
        r.register_with_unit(
            "call_rtt",
            "Each ended call's round-trip time from RTCP, when it had one",
            Unit::Seconds,
            self.rtt.clone(),
        );
        r.register(
            "control_requests",
            "Control requests answered, by method",
            self.requests.clone(),
        );
        r.register(
            "control_errors",
            "Control requests answered with an error, by method and JSON-RPC code",
            self.errors.clone(),
        );
        r.register_collector(Box::new(snapshot));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &r)
            .expect("writing into a String cannot fail");
        text
    }
}

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

fn loss_ratio(t: &TrackStats) -> f64 {
    let expected = t.received.packets + t.received.lost;
    if expected == 0 {
        0.0
    } else {
        t.received.lost as f64 / expected as f64
    }
}

/// Writes one metric family of `samples`, one sample per label set.
fn family<M: EncodeMetric, L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: impl IntoIterator<Item = (L, M)>,
) -> Result<(), std::fmt::Error> {
    let mut samples = samples.into_iter().peekable();
    let Some((_, first)) = samples.peek() else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, unit, first.metric_type())?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = |v: u64| ConstCounter::new(v);
        let none: [(&str, &str); 0] = [];
        family(
            &mut e,
            "uptime",
            "Time since srtpd started",
            Some(&Unit::Seconds),
            [(none, ConstGauge::new(self.uptime_s))],
        )?;
        family(
            &mut e,
            "calls",
            "Calls running",
            None,
            [(none, ConstGauge::new(self.calls as i64))],
        )?;
        let media: [(&str, &MediaTotals); 2] = [
            ("audio", &self.traffic.audio),
            ("video", &self.traffic.video),
        ];
        let by = |f: fn(&MediaTotals) -> u64, dir: &'static str| {
            media
                .iter()
                .map(move |(m, t)| ([("direction", dir), ("media", *m)], c(f(t))))
        };
        family(
            &mut e,
            "packets",
            "RTP packets sent and received (authenticated), by media",
            None,
            by(|t| t.sent_packets, "sent").chain(by(|t| t.received_packets, "received")),
        )?;
        family(
            &mut e,
            "payload",
            "RTP payload sent and received, by media",
            Some(&Unit::Bytes),
            by(|t| t.sent_bytes, "sent").chain(by(|t| t.received_bytes, "received")),
        )?;
        family(
            &mut e,
            "packets_lost",
            "Packets of the peers lost on the way, as their sequence numbers tell (RFC 3550)",
            None,
            media.iter().map(|(m, t)| ([("media", *m)], c(t.lost))),
        )?;
        let t = &self.traffic;
        let workers = |f: fn(&WorkerStats) -> u64| self.workers.iter().map(f).sum::<u64>();
        family(
            &mut e,
            "dropped_datagrams",
            "Datagrams received and dropped, by reason: srtp_auth (failed SRTP authentication), \
             srtp_replay (replayed or too old), malformed (unusable RTP), unclaimed (no call \
             could claim it), limited (its source spent its trial or STUN budget)",
            None,
            [
                ("srtp_auth", t.audio.dropped_auth + t.video.dropped_auth),
                (
                    "srtp_replay",
                    t.audio.dropped_replay + t.video.dropped_replay,
                ),
                ("malformed", t.audio.dropped_other + t.video.dropped_other),
                ("unclaimed", workers(|w| w.unclaimed)),
                ("limited", workers(|w| w.limited)),
            ]
            .map(|(reason, n)| ([("reason", reason)], c(n))),
        )?;
        family(
            &mut e,
            "send_failures",
            "Datagrams the kernel refused to send, or that found a full socket buffer",
            None,
            [(none, c(workers(|w| w.send_failed)))],
        )?;
        let per_worker = |f: fn(&WorkerStats) -> u64| {
            self.workers
                .iter()
                .enumerate()
                .map(move |(i, w)| ([("worker", i.to_string())], c(f(w))))
        };
        family(
            &mut e,
            "worker_receive_batches",
            "Receive system calls (io_uring: completion batches) that returned datagrams",
            None,
            per_worker(|w| w.receives),
        )?;
        family(
            &mut e,
            "worker_datagrams_received",
            "Datagrams received, per worker",
            None,
            per_worker(|w| w.datagrams_in),
        )?;
        family(
            &mut e,
            "worker_send_batches",
            "Send system calls (sendmmsg; io_uring: submissions)",
            None,
            per_worker(|w| w.sends),
        )?;
        family(
            &mut e,
            "worker_datagrams_sent",
            "Datagrams sent, per worker",
            None,
            per_worker(|w| w.datagrams_out),
        )?;
        family(
            &mut e,
            "worker_calls",
            "Calls each worker runs",
            None,
            self.workers
                .iter()
                .enumerate()
                .map(|(i, w)| ([("worker", i.to_string())], ConstGauge::new(w.calls as i64))),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(m: &Metrics, reason: &str) {
        let stats = CallStats {
            call_id: "c".into(),
            state: crate::call::CallState::Connected,
            remote: None,
            audio: None,
            video: None,
            rtt_ms: Some(40.0),
            peer_muted: false,
            peer_video: None,
            send_errors: 0,
            bridge: None,
        };
        m.call_ended(reason, &stats);
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            uptime_s: 1.0,
            calls: 0,
            traffic: TrafficTotals::default(),
            workers: Vec::new(),
        }
    }

    #[test]
    fn reasons_from_outside_make_a_bounded_number_of_labels() {
        let m = Metrics::default();
        for i in 0..100 {
            ended(&m, &format!("reason-{i}"));
        }
        ended(&m, "reason-3");
        ended(&m, &"x".repeat(200));
        let text = m.encode(snapshot());
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("srtpd_calls_ended_total{"))
            .collect();
        assert_eq!(lines.len(), MAX_REASONS + 1, "{text}");
        assert!(lines.contains(&"srtpd_calls_ended_total{reason=\"reason-3\"} 2"));
        assert!(lines.contains(&"srtpd_calls_ended_total{reason=\"other\"} 69"));
        assert!(text.contains("srtpd_call_rtt_seconds_count 102"));
    }

    #[test]
    fn methods_from_outside_are_labelled_only_when_srtpd_has_them() {
        let m = Metrics::default();
        m.request("call.start", Ok(()));
        m.request("no.such\nmethod", Err(-32601));
        let text = m.encode(snapshot());
        assert!(text.contains("srtpd_control_requests_total{method=\"call.start\"} 1"));
        assert!(text.contains("srtpd_control_errors_total{method=\"unknown\",code=\"-32601\"} 1"));
        assert!(!text.contains("no.such"));
    }
}
