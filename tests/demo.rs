//! `srtpd demo` runs by itself, its summary balances, it keeps the recording where it says
//! and leaves nothing else behind.

#[test]
fn the_demo_runs_and_every_played_packet_is_accounted_for() {
    let keep = tempfile::tempdir().unwrap();
    let recording = keep.path().join("demo.opus");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_srtpd"))
        .arg("demo")
        .arg("--recording")
        .arg(&recording)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("srtpd demo runs");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("OK: every packet played was recorded"),
        "{stdout}"
    );
    let number = |label: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("{label}"));
        line.split(':')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (played, muted, recorded) = (number("clip played"), number("muted"), number("recorded"));
    let silence: u64 = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("recorded"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the silence count");
    assert_eq!(played, 301, "the bundled clip");
    assert!(
        (40..=80).contains(&muted),
        "a one-second mute holds back about 50 packets: {muted}"
    );
    assert!(
        muted.abs_diff(silence) <= 3,
        "the muted second is sent as silence (the default mute mode): {muted} muted, {silence} silence"
    );
    assert_eq!(played, recorded - silence + muted);
    assert_eq!(number("received by callee"), recorded);
    assert_eq!(number("sent by the caller"), recorded);
    // Not a terminal: the table comes with its heading every time it is printed.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("CALL") && l.contains("OUT kb/s")),
        "{stdout}"
    );
    assert!(stdout.contains("stand-in"), "{stdout}");
    assert!(
        stdout.contains(&format!("ffplay -nodisp -autoexit {}", recording.display())),
        "{stdout}"
    );
    let kept = srtpd::media::AudioClip::load_ogg_opus(&recording).expect("the recording plays");
    assert_eq!(kept.packets.len() as u64, recorded);
    assert!(
        !std::env::temp_dir()
            .join(format!("srtpd-demo-{pid}"))
            .exists(),
        "the demo's working directory is removed"
    );
}
