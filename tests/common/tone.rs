//! Tones to send and the frequency analysis that checks what came out.

/// `n` samples of a `freq` Hz sine at `rate`, amplitude 10,000, from sample `phase` on.
pub fn tone(freq: f64, rate: u32, n: usize, phase: usize) -> Vec<i16> {
    (phase..phase + n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (10_000.0 * (std::f64::consts::TAU * freq * t).sin()) as i16
        })
        .collect()
}

/// The frequency among `candidates` (1 Hz apart) with the most energy in `pcm` at `rate`.
pub fn dominant(pcm: &[i16], rate: u32, candidates: std::ops::RangeInclusive<u32>) -> u32 {
    let power = |f: u32| {
        let w = std::f64::consts::TAU * f64::from(f) / f64::from(rate);
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in pcm.iter().enumerate() {
            re += f64::from(s) * (w * i as f64).cos();
            im += f64::from(s) * (w * i as f64).sin();
        }
        re * re + im * im
    };
    candidates
        .max_by(|&a, &b| power(a).total_cmp(&power(b)))
        .expect("candidates")
}
