//! A clip in memory: a track's audio as encoded packets, ready to be paced out one by one
//! (a file source, `call.play`, the `silence` source).

use super::codec::CodecKind;

/// Encoded packets of one codec, each with its duration in 48 kHz samples (whatever the
/// codec's rate, so that pacing is the same for every codec).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioClip {
    /// The codec of the packets.
    pub codec: CodecKind,
    /// The channels of the audio, as its file said (1 or 2).
    pub channels: u8,
    /// The packets with their durations in 48 kHz samples.
    pub packets: Vec<(Vec<u8>, u32)>,
}

impl AudioClip {
    /// One 20 ms packet of silence in `codec`: looped, it is the `silence` source.
    pub fn silence(codec: CodecKind) -> AudioClip {
        AudioClip {
            codec,
            channels: 1,
            packets: vec![(codec.silence(20).to_vec(), 960)],
        }
    }

    /// Total duration in 48 kHz samples.
    pub fn samples(&self) -> u64 {
        self.packets.iter().map(|(_, s)| u64::from(*s)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_one_packet_time_in_the_codec() {
        let opus = AudioClip::silence(CodecKind::Opus);
        assert_eq!(
            opus.packets,
            [(crate::media::codec::OPUS_SILENCE.to_vec(), 960)]
        );
        let pcmu = AudioClip::silence(CodecKind::Pcmu);
        assert_eq!(pcmu.packets[0].0, [0xff; 160]);
        let pcma = AudioClip::silence(CodecKind::Pcma);
        assert_eq!(pcma.packets[0].0, [0xd5; 160]);
        assert_eq!(pcma.samples(), 960);
    }
}
