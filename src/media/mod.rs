//! Media sources and sinks: Ogg Opus playback paced by packet duration, Ogg Opus recording;
//! and for tracks that need PCM, the codecs (Opus, G.711), rate conversion and WAV files.

pub mod bridge_audio;
pub mod bridge_frame;
pub mod clip;
pub mod codec;
pub mod dtmf;
pub mod file_clip;
pub mod jitter;
pub mod ogg_opus;
pub mod opus;
pub mod playback;
pub mod resample;
pub mod wav;

pub use clip::AudioClip;
pub use ogg_opus::{OggOpusError, OggOpusRecorder, open_regular};
pub use playback::Playback;
