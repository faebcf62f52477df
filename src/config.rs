//! The daemon's configuration: `config/srtpd.toml`, whose values are also the built-in
//! defaults.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// Every setting of the daemon. `Config::default()` equals `config/srtpd.toml`.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The control socket.
    pub control: ControlConfig,
    /// Media sockets.
    pub media: MediaConfig,
    /// SRTP contexts.
    pub srtp: SrtpConfig,
    /// Call limits and timers.
    pub calls: CallsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Defaults for calls set up by `call.stanza`.
    pub stanza: StanzaConfig,
    /// The Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
}

/// `[control]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Socket path; empty for `srtpd.sock` in the runtime directory.
    pub socket: PathBuf,
    /// Longest accepted request line.
    pub max_line_bytes: usize,
    /// Most clients connected at once.
    pub max_connections: usize,
    /// Time by which a request line, once begun, must end.
    pub line_timeout_ms: u64,
    /// Bytes of responses and events queued to one client at most; events beyond it are
    /// lost to that client (it is told how many).
    pub queue_bytes: usize,
    /// A group whose members may connect too (the socket becomes 0660 and the group's);
    /// empty for none.
    pub socket_group: String,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: PathBuf::new(),
            max_line_bytes: 1 << 20,
            max_connections: 64,
            line_timeout_ms: 10_000,
            queue_bytes: 4 << 20,
            socket_group: String::new(),
        }
    }
}

/// `[media]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Default IPv4 bind address.
    pub bind_v4: IpAddr,
    /// Default IPv6 bind address.
    pub bind_v6: IpAddr,
    /// Lowest media port.
    pub port_min: u16,
    /// Highest media port.
    pub port_max: u16,
    /// DSCP for audio-only calls.
    pub dscp_audio: u8,
    /// DSCP for calls with video.
    pub dscp_video: u8,
    /// SO_RCVBUF, 0 for the system default.
    pub recv_buffer_bytes: usize,
    /// SO_SNDBUF, 0 for the system default.
    pub send_buffer_bytes: usize,
    /// SO_RCVBUF and SO_SNDBUF of the shared ports (media ports in the shared layout, the
    /// producer port of sources given by SSRC), which carry many calls' packets.
    pub shared_buffer_bytes: usize,
    /// How calls get their media sockets.
    pub layout: Layout,
    /// The first shared media port (`layout = "shared"`): worker i uses `shared_port + i` on
    /// `bind_v4` and on `bind_v6`.
    pub shared_port: u16,
    /// Worker threads, each running its share of the calls; 0 for one per core.
    pub workers: usize,
    /// How workers ask the kernel for I/O.
    pub io: IoMode,
    /// Where relative file paths of requests (played clips, recordings) are; empty for the
    /// daemon's working directory.
    pub files_dir: PathBuf,
    /// Networks media may be sent to and taken from (any, when empty).
    pub remote_allow: Vec<IpNet>,
    /// Networks media is never sent to or taken from.
    pub remote_deny: Vec<IpNet>,
    /// Networks whose plain RTP a track's local source takes (loopback by default).
    pub producer_allow: Vec<IpNet>,
    /// Replaced by `layout` and `shared_port`; refused with a message naming them.
    #[serde(default)]
    pub single_port: Option<toml::Value>,
    /// Replaced by `workers`; refused with a message naming it.
    #[serde(default)]
    pub single_port_workers: Option<toml::Value>,
}

/// How workers ask the kernel for I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum IoMode {
    /// Readiness: epoll over the sockets, `recvmmsg` per readable socket, `sendmmsg` per
    /// socket with datagrams to send.
    #[serde(rename = "epoll")]
    Epoll,
    /// Completions: io_uring, a multishot receive per socket into provided buffers, and all
    /// of a batch's sends in one submission.
    #[serde(rename = "io_uring")]
    IoUring,
}

/// How calls get their media sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Layout {
    /// Each call a media socket of its own from `port_min..=port_max`, as SIP peers and
    /// firewalls expect.
    #[serde(rename = "per-call")]
    PerCall,
    /// Calls share one media port per worker, told apart by remote address and SSRC.
    #[serde(rename = "shared")]
    Shared,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind_v4: IpAddr::from([0, 0, 0, 0]),
            bind_v6: IpAddr::from([0u16; 8]),
            port_min: 40000,
            port_max: 49999,
            dscp_audio: 46,
            dscp_video: 34,
            recv_buffer_bytes: 1 << 20,
            send_buffer_bytes: 1 << 20,
            shared_buffer_bytes: 4 << 20,
            layout: Layout::PerCall,
            shared_port: 30000,
            workers: 0,
            io: IoMode::Epoll,
            files_dir: PathBuf::new(),
            remote_allow: Vec::new(),
            remote_deny: Vec::new(),
            producer_allow: vec![
                "127.0.0.0/8".parse().expect("a network"),
                "::1/128".parse().expect("a network"),
            ],
            single_port: None,
            single_port_workers: None,
        }
    }
}

impl MediaConfig {
    /// How many workers run: `workers`, or one per core when 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// `[srtp]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrtpConfig {
    /// Replay window per stream.
    pub replay_window: usize,
}

impl Default for SrtpConfig {
    fn default() -> Self {
        SrtpConfig {
            replay_window: 1024,
        }
    }
}

/// `[calls]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// Most concurrent calls.
    pub max_calls: usize,
    /// How long candidate checks are retried, ms.
    pub candidate_check_timeout_ms: u64,
    /// Keepalive after this long without sending, ms.
    pub keepalive_interval_ms: u64,
    /// RTCP report interval, ms.
    pub rtcp_interval_ms: u64,
    /// Media timeout, s.
    pub media_timeout_s: u64,
    /// Media timeout while the peer is muted or on hold, s.
    pub media_timeout_held_s: u64,
    /// What muted audio sends: nothing, or silence packets at the packet time.
    pub mute_mode: crate::call::MuteMode,
    /// Candidates one call may have.
    pub max_candidates: usize,
    /// Trial authentications a second that datagrams from one source address may cost
    /// (streams no call knows, on a shared port, from an address no call knows).
    pub trials_per_source_per_s: u64,
    /// Bytes of STUN Binding responses a worker sends a second at most.
    pub stun_reply_bytes_per_s: u64,
    /// How much of a bot's audio may wait to be sent, ms (a bot sends faster than real time
    /// up to this; beyond it, its audio is dropped and counted).
    pub bridge_queue_ms: u32,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            max_calls: 1000,
            candidate_check_timeout_ms: 3000,
            keepalive_interval_ms: 5000,
            rtcp_interval_ms: 5000,
            media_timeout_s: 30,
            media_timeout_held_s: 120,
            mute_mode: crate::call::MuteMode::Silence,
            max_candidates: 16,
            trials_per_source_per_s: 100,
            stun_reply_bytes_per_s: 64 * 1024,
            bridge_queue_ms: 30_000,
        }
    }
}

/// `[stanza]`: what a call set up from stanzas uses where the stanza and the request are silent.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StanzaConfig {
    /// Audio payload type.
    pub audio_payload_type: u8,
    /// Audio clock rate when the stanza has no `<audio rate>`.
    pub audio_clock_rate: u32,
    /// Audio packet time, ms.
    pub audio_ptime_ms: u32,
    /// Audio source: `none`, `rtp` or `rtp:IP:PORT`.
    pub audio_source: String,
    /// Audio sink: `none` or `rtp:IP:PORT`.
    pub audio_sink: String,
    /// Video payload type.
    pub video_payload_type: u8,
    /// Video clock rate.
    pub video_clock_rate: u32,
    /// Video source: `none`, `rtp` or `rtp:IP:PORT`.
    pub video_source: String,
    /// Video sink: `none` or `rtp:IP:PORT`.
    pub video_sink: String,
    /// RTP tag length of wa-e2e calls.
    pub tag_len: usize,
}

impl Default for StanzaConfig {
    fn default() -> Self {
        StanzaConfig {
            audio_payload_type: 120,
            audio_clock_rate: 16000,
            audio_ptime_ms: 20,
            audio_source: "rtp".into(),
            audio_sink: "none".into(),
            video_payload_type: 97,
            video_clock_rate: 90000,
            video_source: "none".into(),
            video_sink: "none".into(),
            tag_len: 4,
        }
    }
}

/// `[metrics]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `IP:PORT` where `/metrics` is served over HTTP; empty for nowhere (the default).
    pub listen: String,
}

impl MetricsConfig {
    /// The address to serve metrics on, if any.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        self.listen.parse().map(Some).map_err(|_| {
            ConfigError::Invalid(format!(
                "metrics.listen {:?} is not IP:PORT (e.g. \"127.0.0.1:9464\"), nor empty",
                self.listen
            ))
        })
    }
}

/// The values `log.level` (and `srtpd --log-level`) accept. `RUST_LOG`, when set, takes
/// full filter directives instead.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// error, warn, info, debug, trace or off.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
    /// A file to append logs to (reopened on SIGHUP); empty for standard error.
    pub file: PathBuf,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
            file: PathBuf::new(),
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads and validates a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges that the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.metrics.listen_addr()?;
        let m = &self.media;
        if m.port_min == 0 || m.port_min > m.port_max {
            return Err(ConfigError::Invalid(format!(
                "media.port_min ({}) must be at least 1 and at most media.port_max ({})",
                m.port_min, m.port_max
            )));
        }
        if m.dscp_audio > 63 || m.dscp_video > 63 {
            return Err(ConfigError::Invalid(
                "media.dscp_audio and media.dscp_video must be 0..=63".into(),
            ));
        }
        if m.single_port.is_some() {
            return Err(ConfigError::Invalid(
                "media.single_port is gone: set media.layout = \"shared\" and media.shared_port (the first of one port per worker)".into(),
            ));
        }
        if m.single_port_workers.is_some() {
            return Err(ConfigError::Invalid(
                "media.single_port_workers is gone: set media.workers (worker threads, in either layout)".into(),
            ));
        }
        if m.workers > 1024 {
            return Err(ConfigError::Invalid(format!(
                "media.workers ({}) must be at most 1024",
                m.workers
            )));
        }
        if m.layout == Layout::Shared
            && (m.shared_port == 0
                || usize::from(m.shared_port) + m.worker_count() - 1 > usize::from(u16::MAX))
        {
            return Err(ConfigError::Invalid(format!(
                "media.shared_port ({}) must be at least 1, and with one port per worker ({}) stay at or below 65535",
                m.shared_port,
                m.worker_count()
            )));
        }
        if self.srtp.replay_window < 64 {
            return Err(ConfigError::Invalid(
                "srtp.replay_window must be at least 64".into(),
            ));
        }
        if !LOG_LEVELS.contains(&self.log.level.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "log.level {:?} is not one of {}",
                self.log.level,
                LOG_LEVELS.join(", ")
            )));
        }
        if !(1..=256).contains(&self.calls.max_candidates) {
            return Err(ConfigError::Invalid(
                "calls.max_candidates must be 1..=256".into(),
            ));
        }
        if self.calls.trials_per_source_per_s == 0 {
            return Err(ConfigError::Invalid(
                "calls.trials_per_source_per_s must be at least 1".into(),
            ));
        }
        if !(20..=600_000).contains(&self.calls.bridge_queue_ms) {
            return Err(ConfigError::Invalid(
                "calls.bridge_queue_ms must be 20 to 600000".into(),
            ));
        }
        if self.calls.stun_reply_bytes_per_s < 64 {
            return Err(ConfigError::Invalid(
                "calls.stun_reply_bytes_per_s must be at least 64 (one reply)".into(),
            ));
        }
        if self.calls.max_calls == 0 {
            return Err(ConfigError::Invalid(
                "calls.max_calls must be at least 1".into(),
            ));
        }
        let st = &self.stanza;
        for (field, pt) in [
            ("stanza.audio_payload_type", st.audio_payload_type),
            ("stanza.video_payload_type", st.video_payload_type),
        ] {
            crate::rtp::check_payload_type(pt)
                .map_err(|e| ConfigError::Invalid(format!("{field}: {e}")))?;
        }
        for (field, spec, sink) in [
            ("stanza.audio_source", &st.audio_source, false),
            ("stanza.audio_sink", &st.audio_sink, true),
            ("stanza.video_source", &st.video_source, false),
            ("stanza.video_sink", &st.video_sink, true),
        ] {
            let parsed = if sink {
                crate::control::params::SinkParams::from_spec(spec).map(|_| ())
            } else {
                crate::control::params::SourceParams::from_spec(spec).map(|_| ())
            };
            parsed.map_err(|e| ConfigError::Invalid(format!("{field}: {e}")))?;
        }
        if !(4..=10).contains(&st.tag_len) {
            return Err(ConfigError::Invalid("stanza.tag_len must be 4..=10".into()));
        }
        let c = &self.control;
        if c.max_line_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "control.max_line_bytes must be at least 1024".into(),
            ));
        }
        if c.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "control.max_connections must be at least 1".into(),
            ));
        }
        if c.line_timeout_ms < 100 {
            return Err(ConfigError::Invalid(
                "control.line_timeout_ms must be at least 100".into(),
            ));
        }
        if c.queue_bytes < c.max_line_bytes.min(64 << 10) {
            return Err(ConfigError::Invalid(
                "control.queue_bytes must be at least 65536".into(),
            ));
        }
        Ok(())
    }

    /// The control socket path: the configured one, or `srtpd.sock` in the runtime directory.
    pub fn socket_path(&self) -> PathBuf {
        if !self.control.socket.as_os_str().is_empty() {
            return self.control.socket.clone();
        }
        runtime_dir().join("srtpd.sock")
    }
}

/// `$XDG_RUNTIME_DIR`, or `/tmp/srtpd-<uid>` where that is unset.
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // SAFETY: getuid has no preconditions and cannot fail.
        _ => std::env::temp_dir().join(format!("srtpd-{}", unsafe { libc::getuid() })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_equals_the_built_in_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/srtpd.toml");
        assert_eq!(Config::from_file(&path).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_refused() {
        let err = toml::from_str::<Config>("[media]\nport_mni = 3\n").unwrap_err();
        assert!(err.to_string().contains("port_mni"), "{err}");
        let old = toml::from_str::<Config>("[media]\nsingle_port = 4000\n").unwrap();
        let err = old.validate().unwrap_err().to_string();
        assert!(
            err.contains("media.layout") && err.contains("media.shared_port"),
            "{err}"
        );
        let old = toml::from_str::<Config>("[media]\nsingle_port_workers = 2\n").unwrap();
        assert!(
            old.validate()
                .unwrap_err()
                .to_string()
                .contains("media.workers")
        );
        let shared = toml::from_str::<Config>(
            "[media]\nlayout = \"shared\"\nshared_port = 65535\nworkers = 2\n",
        )
        .unwrap();
        assert!(shared.validate().unwrap_err().to_string().contains("65535"));
        let mut c = Config::default();
        c.media.port_min = 50000;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("media.port_min")
        );
        let mut c = Config::default();
        c.log.level = "verbose".into();
        assert!(c.validate().unwrap_err().to_string().contains("log.level"));
        let mut c = Config::default();
        c.stanza.audio_payload_type = 72;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("stanza.audio_payload_type")
        );
    }
}
