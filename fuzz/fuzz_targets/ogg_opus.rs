//! The Ogg Opus reader behind `file` sources and `call.play`: any bytes load to a clip or a
//! typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(clip) = srtpd::media::AudioClip::read_ogg_opus(std::io::Cursor::new(data), "fuzz") {
        assert!(!clip.packets.is_empty());
        let _ = clip.samples();
    }
});
