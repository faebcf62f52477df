//! Media sources and sinks: Ogg Opus playback paced by packet duration, Ogg Opus recording.

pub mod ogg_opus;
pub mod opus;
pub mod playback;

pub use ogg_opus::{OggOpusError, OggOpusRecorder, OpusClip, open_regular};
pub use playback::Playback;
