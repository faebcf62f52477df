//! Rate conversion of mono 16-bit PCM in whole frames (20 ms each side), between a track's
//! clock and the rate a bot bridge or a file wants, through rubato's FFT resampler. Buffers
//! are made once: converting a frame allocates nothing.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

/// Why a resampler could not be made or a frame not converted.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// The rates make no whole 20 ms frame (each must be a multiple of 50 Hz) or rubato
    /// refused them.
    #[error("cannot resample {from} Hz to {to} Hz: {why}")]
    Rates {
        /// The input rate.
        from: u32,
        /// The output rate.
        to: u32,
        /// Why not.
        why: String,
    },
    /// A frame of the wrong size was handed in or asked for.
    #[error("a frame of {got} samples, {want} expected")]
    FrameSize {
        /// What was given.
        got: usize,
        /// What the rate makes of 20 ms.
        want: usize,
    },
}

/// The length of the frames PCM moves in (bridges, files): 20 ms.
pub const FRAME_MS: u32 = 20;

/// The samples of a 20 ms frame at `rate`.
pub fn frame_samples(rate: u32) -> usize {
    (rate * FRAME_MS / 1000) as usize
}

/// Converts 20 ms frames from one rate to another, keeping the filter's state across frames
/// (its delay, [`Self::delay`], is paid once, at the start).
pub struct FrameResampler {
    from: u32,
    to: u32,
    fft: Option<Fft<f32>>,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl FrameResampler {
    /// A resampler from `from` Hz to `to` Hz (the same rate passes frames through).
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        let rates = |why: String| ResampleError::Rates { from, to, why };
        if from == 0 || to == 0 || from % 50 != 0 || to % 50 != 0 {
            return Err(rates(
                "each rate must be a positive multiple of 50 Hz".into(),
            ));
        }
        let (n_in, n_out) = (frame_samples(from), frame_samples(to));
        let fft = if from == to {
            None
        } else {
            let fft = Fft::new(from as usize, to as usize, n_in, 1, FixedSync::Both)
                .map_err(|e| rates(e.to_string()))?;
            if fft.input_frames_next() != n_in || fft.output_frames_next() != n_out {
                return Err(rates(format!(
                    "rubato chose chunks of {} and {} samples",
                    fft.input_frames_next(),
                    fft.output_frames_next()
                )));
            }
            Some(fft)
        };
        Ok(FrameResampler {
            from,
            to,
            fft,
            input: vec![0.0; n_in],
            output: vec![0.0; n_out],
        })
    }

    /// The input rate.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// The output rate.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// How many output samples late the input appears (the filter's delay).
    pub fn delay(&self) -> usize {
        self.fft.as_ref().map_or(0, |f| f.output_delay())
    }

    /// Converts one 20 ms frame `input` (at the input rate) into `output` (20 ms at the output
    /// rate).
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> Result<(), ResampleError> {
        let (n_in, n_out) = (self.input.len(), self.output.len());
        if input.len() != n_in {
            return Err(ResampleError::FrameSize {
                got: input.len(),
                want: n_in,
            });
        }
        if output.len() != n_out {
            return Err(ResampleError::FrameSize {
                got: output.len(),
                want: n_out,
            });
        }
        let Some(fft) = self.fft.as_mut() else {
            output.copy_from_slice(input);
            return Ok(());
        };
        for (f, &s) in self.input.iter_mut().zip(input) {
            *f = f32::from(s) / 32768.0;
        }
        let adapter_in =
            InterleavedSlice::new(&self.input[..], 1, n_in).expect("sized for one frame");
        let mut adapter_out =
            InterleavedSlice::new_mut(&mut self.output[..], 1, n_out).expect("sized for one frame");
        fft.process_into_buffer(&adapter_in, &mut adapter_out, None)
            .expect("buffers of the chunk sizes the resampler was made for");
        for (o, &f) in output.iter_mut().zip(&self.output) {
            *o = (f * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_rates_and_frames_are_refused() {
        assert!(matches!(
            FrameResampler::new(44_123, 8_000),
            Err(ResampleError::Rates { .. })
        ));
        assert!(matches!(
            FrameResampler::new(0, 8_000),
            Err(ResampleError::Rates { .. })
        ));
        let mut r = FrameResampler::new(48_000, 8_000).unwrap();
        assert!(matches!(
            r.process(&[0; 100], &mut [0; 160]),
            Err(ResampleError::FrameSize {
                got: 100,
                want: 960
            })
        ));
        assert!(matches!(
            r.process(&[0; 960], &mut [0; 100]),
            Err(ResampleError::FrameSize {
                got: 100,
                want: 160
            })
        ));
    }
}
