//! Control request lines through the parser and the real dispatch, into a running daemon
//! (one worker, a few calls at most, media to loopback only by `media.remote_allow`): any
//! line gets a response or an error with a JSON-RPC code, and the daemon keeps answering.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use srtpd::config::Config;
use srtpd::control::{dispatch, parse_request};
use srtpd::daemon::Daemon;

struct Harness {
    runtime: tokio::runtime::Runtime,
    daemon: Arc<Daemon>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let mut config = Config::default();
        config.media.bind_v4 = "127.0.0.1".parse().unwrap();
        config.media.bind_v6 = "::1".parse().unwrap();
        config.media.workers = 1;
        config.calls.max_calls = 4;
        // Whatever the fuzzer writes into candidates, media goes to loopback only.
        config.media.remote_allow =
            vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let files = std::env::temp_dir().join(format!("srtpd-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&files).expect("a files directory");
        config.media.files_dir = files;
        let daemon = runtime
            .block_on(async { Daemon::new(config) })
            .expect("a daemon");
        Harness { runtime, daemon }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let Ok(request) = parse_request(data) else {
        return;
    };
    // Paths are confined to the fuzz directory: no absolute ones.
    if serde_json::to_string(&request.params).is_ok_and(|t| t.contains("\"/")) {
        return;
    }
    if request.method == "daemon.shutdown" {
        return;
    }
    let result = h.runtime.block_on(dispatch::handle(
        &h.daemon,
        &request.method,
        &request.params,
    ));
    if let Err(e) = result {
        assert!((-32799..=-32000).contains(&e.code), "{e:?}");
    }
    // Whatever came before, the daemon still answers.
    h.runtime
        .block_on(dispatch::handle(
            &h.daemon,
            "call.list",
            &serde_json::json!({}),
        ))
        .expect("call.list");
});
