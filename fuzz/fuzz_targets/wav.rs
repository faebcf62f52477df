//! The WAV reader behind `file` sources: any bytes load to a mono clip or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(clip) = srtpd::media::wav::WavClip::read(std::io::Cursor::new(data), "fuzz") {
        assert!(!clip.samples.is_empty());
        assert!(clip.rate % 50 == 0 && (8_000..=48_000).contains(&clip.rate));
    }
});
