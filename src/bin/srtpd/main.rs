//! srtpd: the media endpoint daemon. Started with no arguments it runs on the built-in
//! defaults (those of config/srtpd.toml) and prints where its control socket is.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use srtpd::config::{Config, LogFormat};
use srtpd::control::{bind_control_socket, serve};
use srtpd::daemon::Daemon;
mod demo;
mod logging;

use logging::Logging;

/// srtpd: SRTP media for call-signaling clients, driven over a local control socket.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML; see config/srtpd.toml). Without it the built-in defaults apply.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Control socket path (overrides control.socket).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace or off (overrides log.level).
    #[arg(long, value_parser = srtpd::config::LOG_LEVELS.to_vec())]
    log_level: Option<String>,
    /// Log format: text or json (overrides log.format).
    #[arg(long, value_parser = ["text", "json"])]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Two daemons, a call set up with <call> stanzas, a clip played and recorded, a live
    /// table and a summary: srtpd working, in one command.
    Demo {
        /// Where to keep the recording (Ogg Opus; replaced if it exists)
        /// [default: srtpd-demo-recording.opus in the temporary directory].
        #[arg(long, value_name = "FILE")]
        recording: Option<PathBuf>,
    },
    #[command(flatten)]
    Docs(srtpd::cli_docs::DocCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Sub::Docs(docs)) = &cli.command {
        return match docs.run(Cli::command()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("srtpd: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Sub::Demo { recording }) = &cli.command {
        let recording = recording.clone().unwrap_or_else(demo::default_recording);
        return match demo::run(&recording) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("srtpd demo: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut config = match &cli.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("srtpd: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(socket) = cli.socket {
        config.control.socket = socket;
    }
    let level_given = cli.log_level.is_some();
    if let Some(level) = cli.log_level {
        config.log.level = level;
    }
    if let Some(format) = cli.log_format {
        config.log.format = if format == "json" {
            LogFormat::Json
        } else {
            LogFormat::Text
        };
    }
    let logging = match Logging::init(&config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("srtpd: {e}");
            return ExitCode::from(2);
        }
    };
    raise_open_file_limit();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("srtpd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reload = Reload {
        logging,
        config_file: cli.config,
        level_given,
    };
    runtime.block_on(run(config, std::sync::Arc::new(reload)))
}

/// What SIGHUP does: reopen the log file, and take the configuration file's log level again.
struct Reload {
    logging: Logging,
    config_file: Option<PathBuf>,
    /// `--log-level` was given: it stays.
    level_given: bool,
}

impl Reload {
    fn hup(&self) {
        let _ = sd_notify::notify(&[
            sd_notify::NotifyState::Reloading,
            sd_notify::NotifyState::monotonic_usec_now()
                .unwrap_or(sd_notify::NotifyState::Status("reloading")),
        ]);
        if let Err(e) = self.logging.reopen() {
            eprintln!("srtpd: SIGHUP: cannot reopen the log file: {e}");
        }
        match (&self.config_file, self.level_given) {
            (Some(path), false) => match Config::from_file(path) {
                Ok(c) => match self.logging.set_level(&c.log.level) {
                    Ok(true) => {
                        tracing::info!(level = %c.log.level, "SIGHUP: log reopened, level set")
                    }
                    Ok(false) => tracing::info!("SIGHUP: log reopened (RUST_LOG sets the level)"),
                    Err(e) => tracing::warn!("SIGHUP: log level not changed: {e}"),
                },
                Err(e) => tracing::warn!("SIGHUP: log reopened; configuration not read again: {e}"),
            },
            _ => tracing::info!("SIGHUP: log reopened"),
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
}

/// Raises the soft limit on open files to the hard one: each call holds a few sockets, and
/// the default soft limit (1024) would cap a daemon at a few hundred calls.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::warn!("could not raise the open-file limit");
            }
        }
    }
}

async fn run(config: Config, reload: std::sync::Arc<Reload>) -> ExitCode {
    let path = config.socket_path();
    let group = Some(config.control.socket_group.as_str()).filter(|g| !g.is_empty());
    let listener = match bind_control_socket(&path, group) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "srtpd: cannot open the control socket {}: {e}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    println!(
        "srtpd {} listening on control socket {}",
        env!("CARGO_PKG_VERSION"),
        path.display()
    );
    tracing::info!(socket = %path.display(), "srtpd started");

    let daemon = match Daemon::new(config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("srtpd: cannot start the media workers: {e}");
            let _ = std::fs::remove_file(&path);
            return ExitCode::FAILURE;
        }
    };
    if let Ok(Some(addr)) = daemon.config().metrics.listen_addr() {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                let bound = l.local_addr().map_or(addr, |a| a);
                println!("srtpd metrics on http://{bound}/metrics");
                tracing::info!(%bound, "metrics endpoint listening");
                tokio::spawn(srtpd::daemon::metrics_server::serve_metrics(
                    daemon.clone(),
                    l,
                ));
            }
            Err(e) => {
                eprintln!("srtpd: cannot listen for metrics on {addr} (metrics.listen): {e}");
                daemon.stop("shutdown").await;
                let _ = std::fs::remove_file(&path);
                return ExitCode::FAILURE;
            }
        }
    }
    let server = tokio::spawn(serve(daemon.clone(), listener));
    // Ready: the control socket answers and the workers run (systemd Type=notify).
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let mut shutdown = daemon.shutdown_requested();
    let signal = async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        loop {
            tokio::select! {
                _ = term.recv() => return "SIGTERM",
                _ = tokio::signal::ctrl_c() => return "SIGINT",
                _ = hup.recv() => {
                    // Files are opened and read on a blocking thread, never on the control
                    // runtime, and a slow one does not hold SIGTERM up.
                    let reload = reload.clone();
                    tokio::task::spawn_blocking(move || reload.hup());
                }
            }
        }
    };
    tokio::select! {
        which = signal => {
            tracing::info!("{which}: shutting down");
            daemon.request_shutdown();
        }
        _ = shutdown.wait_for(|&s| s) => tracing::info!("shutdown requested over the control socket"),
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    daemon.stop("shutdown").await;
    // The server returns once every connection delivered what it had queued (the final
    // call.ended events among it), or after SHUTDOWN_GRACE.
    let _ = server.await;
    let _ = std::fs::remove_file(&path);
    tracing::info!("srtpd stopped");
    ExitCode::SUCCESS
}
