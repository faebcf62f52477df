//! srtpd's logs: to standard error or a file, through a writer thread (a media worker never
//! waits on a disk or a pipe), with a level that SIGHUP can change and a file SIGHUP reopens.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use srtpd::config::{Config, LogFormat};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// A log file that can be reopened at its path (after logrotate moved it away).
struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    fn open(path: &Path) -> io::Result<File> {
        OpenOptions::new().create(true).append(true).open(path)
    }
}

/// Where the writer thread writes.
struct Sink(Option<Arc<LogFile>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.0 {
            Some(f) => f.file.lock().expect("log file lock").write(buf),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &self.0 {
            Some(f) => f.file.lock().expect("log file lock").flush(),
            None => io::stderr().flush(),
        }
    }
}

/// The running logger.
pub struct Logging {
    filter: reload::Handle<EnvFilter, Registry>,
    file: Option<Arc<LogFile>>,
    /// Whether `RUST_LOG` chose the filter: then a reload leaves it.
    from_env: bool,
    /// Flushes what is queued when srtpd exits.
    _guard: WorkerGuard,
}

impl Logging {
    /// Starts logging as `config.log` says (`RUST_LOG`, when set, is the filter).
    pub fn init(config: &Config) -> Result<Logging, String> {
        let file = if config.log.file.as_os_str().is_empty() {
            None
        } else {
            let path = config.log.file.clone();
            let file = LogFile::open(&path)
                .map_err(|e| format!("cannot open log.file {}: {e}", path.display()))?;
            Some(Arc::new(LogFile {
                path,
                file: Mutex::new(file),
            }))
        };
        let env = EnvFilter::try_from_default_env().ok();
        let from_env = env.is_some();
        let filter = env.unwrap_or_else(|| EnvFilter::new(&config.log.level));
        let (filter, handle) = reload::Layer::new(filter);
        let ansi = file.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let (writer, guard) = tracing_appender::non_blocking(Sink(file.clone()));
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi);
        let registry = tracing_subscriber::registry().with(filter);
        match config.log.format {
            LogFormat::Json => registry.with(layer.json()).init(),
            LogFormat::Text => registry.with(layer).init(),
        }
        Ok(Logging {
            filter: handle,
            file,
            from_env,
            _guard: guard,
        })
    }

    /// Reopens the log file at its path, if logs go to one.
    pub fn reopen(&self) -> io::Result<()> {
        if let Some(f) = &self.file {
            let fresh = LogFile::open(&f.path)?;
            *f.file.lock().expect("log file lock") = fresh;
        }
        Ok(())
    }

    /// Sets the level (one of [`srtpd::config::LOG_LEVELS`]), unless `RUST_LOG` set the
    /// filter; returns whether it changed anything.
    pub fn set_level(&self, level: &str) -> Result<bool, String> {
        if self.from_env {
            return Ok(false);
        }
        self.filter
            .reload(EnvFilter::new(level))
            .map(|()| true)
            .map_err(|e| e.to_string())
    }
}
