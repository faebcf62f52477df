//! `srtpd demo` runs by itself and its summary balances.

#[test]
fn the_demo_runs_and_every_played_packet_is_accounted_for() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_srtpd"))
        .arg("demo")
        .output()
        .expect("srtpd demo runs");
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
    assert_eq!(played, 301, "the bundled clip");
    assert!(
        (40..=80).contains(&muted),
        "a one-second mute drops about 50 packets: {muted}"
    );
    assert_eq!(played, recorded + muted);
    assert_eq!(number("received by callee"), recorded);
    let recording = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("recording:"))
        .unwrap()
        .trim();
    assert!(std::path::Path::new(recording).exists());
}
