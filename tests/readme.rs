//! Every shell block of README.md runs as written, in order, in one shell, from a copy of
//! the checkout (every top-level entry linked into a temporary directory, where the blocks'
//! files and sockets go), and what they made is checked. So the README cannot rot.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The ```sh blocks of `markdown`, with the line each starts on.
fn shell_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        match &mut current {
            None if line.trim_end() == "```sh" => current = Some((n + 2, String::new())),
            Some(_) if line.trim_end() == "```" => blocks.push(current.take().unwrap()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block");
    blocks
}

#[test]
fn the_blocks_are_found() {
    let md = "text\n```sh\necho a\n```\n```rust\nfn x() {}\n```\n```sh\necho b\necho c\n```\n";
    assert_eq!(
        shell_blocks(md),
        [
            (3, "echo a\n".to_owned()),
            (9, "echo b\necho c\n".to_owned())
        ]
    );
}

#[test]
#[ignore = "builds the release binaries and needs ffmpeg, python3, pip and curl; run by .ci/run"]
fn every_shell_block_of_the_readme_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    assert!(blocks.len() >= 10, "{} blocks", blocks.len());

    let sandbox = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), sandbox.path().join(entry.file_name())).unwrap();
    }
    let mut script = String::from("set -e\n");
    for (line, text) in &blocks {
        script.push_str(&format!("echo '== README.md line {line}' >&2\n{text}"));
    }
    script.push_str("echo '== README.md: every block ran' >&2\n");
    std::fs::write(sandbox.path().join("readme.sh"), &script).unwrap();

    let mut shell = Command::new("bash")
        .args(["--noprofile", "--norc", "readme.sh"])
        .current_dir(sandbox.path())
        .env_remove("SRTPD_SOCKET")
        // As a reader's shell: the release binaries go to the checkout's target/.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let (mut out, mut err) = (shell.stdout.take().unwrap(), shell.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        out.read_to_string(&mut text).unwrap();
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        err.read_to_string(&mut text).unwrap();
        text
    });
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    let status = loop {
        if let Some(status) = shell.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whatever the blocks left running (daemons, bots) goes with the shell's group.
    // SAFETY: kill only signals the process group we made.
    unsafe { libc::kill(-(shell.id() as i32), libc::SIGKILL) };
    let _ = shell.wait();
    let (stdout, stderr) = (reader.join().unwrap(), err_reader.join().unwrap());
    let status = status.expect("the README's blocks finish within 20 minutes");
    assert!(
        status.success(),
        "a README block failed ({status}); the last block begins at the last '== README.md line':\n\
         --- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stderr.contains("== README.md: every block ran"), "{stderr}");

    // What the blocks made.
    let file_len = |name: &str| {
        std::fs::metadata(sandbox.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{stdout}\n{stderr}"))
            .len()
    };
    // 16-bit mono at 48 kHz is 96,000 bytes a second.
    assert!(
        file_len("heard.wav") > 5 * 96_000,
        "the clip, recorded by B"
    );
    assert!(
        file_len("live.wav") > 3 * 96_000,
        "ffmpeg's listener decoded B's audio"
    );
    assert!(
        file_len("from-srtpd.wav") > 3 * 96_000,
        "ffmpeg decoded srtpd's SRTP"
    );
    assert!(
        file_len("from-ffmpeg.opus") > 20_000,
        "srtpd recorded ffmpeg's SRTP"
    );
    assert!(
        file_len("echoed.wav") > 4 * 96_000,
        "the bot's echo, recorded by A"
    );
    assert!(file_len("man1/srtpctl-start.1") > 1_000);
    assert!(file_len("srtpctl.bash") > 1_000);
    for needle in [
        "srtpd 0.1.0 carries",
        "srtpd_build_info{version=",
        "action: ringing",
        "action: started",
        "action: ended",
        "\"packets_from_bot\":",
        "\"loss_ratio\":",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }
}
