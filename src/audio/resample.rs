//! Conversion between a device's (or file's) rate and channel layout and the engine's 48 kHz
//! mono. Channels are mixed down before resampling on the way in and duplicated after it on
//! the way out, so the resampler always works on one channel.

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::AudioError;

/// Input chunk of the streaming resampler: 10 ms keeps the added latency small.
const CHUNKS_PER_SECOND: u32 = 100;

/// A streaming single-channel resampler that takes input of any length and hands out whatever
/// output each full chunk gives.
pub(crate) struct MonoResampler {
    from: u32,
    to: u32,
    fft: Option<Fft<f32>>,
    chunk: usize,
    pending: Vec<f32>,
    output: Vec<f32>,
    frames_in: u64,
    frames_out: u64,
    skip: usize,
}

impl std::fmt::Debug for MonoResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonoResampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

impl MonoResampler {
    pub(crate) fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        let error = |reason: String| AudioError::Resampler { from, to, reason };
        if from == 0 || to == 0 {
            return Err(error("a sample rate of 0 Hz".to_owned()));
        }
        let (fft, chunk, output_len) = if from == to {
            (None, 0, 0)
        } else {
            let wanted = usize::try_from((from / CHUNKS_PER_SECOND).max(1)).unwrap_or(1);
            let fft = Fft::<f32>::new(
                usize::try_from(from).unwrap_or(usize::MAX),
                usize::try_from(to).unwrap_or(usize::MAX),
                wanted,
                1,
                FixedSync::Input,
            )
            .map_err(|e| error(e.to_string()))?;
            let chunk = fft.input_frames_next();
            let output_len = fft.output_frames_max();
            (Some(fft), chunk, output_len)
        };
        Ok(Self {
            from,
            to,
            fft,
            chunk,
            pending: Vec::with_capacity(chunk),
            output: vec![0.0; output_len],
            frames_in: 0,
            frames_out: 0,
            skip: 0,
        })
    }

    /// How many output samples an input sample is late by.
    pub(crate) fn delay(&self) -> usize {
        self.fft.as_ref().map_or(0, |fft| fft.output_delay())
    }

    /// Drops the leading silence the filter delay adds, so output sample n lines up with
    /// input time n / rate (wanted for files, not worth the wait for live audio).
    pub(crate) fn trim_start_delay(&mut self) {
        self.skip = self.delay();
    }

    pub(crate) fn process(
        &mut self,
        mut input: &[f32],
        emit: &mut dyn FnMut(&[f32]),
    ) -> Result<(), AudioError> {
        self.frames_in += input.len() as u64;
        if self.fft.is_none() {
            self.frames_out += input.len() as u64;
            emit(input);
            return Ok(());
        }
        while !input.is_empty() {
            let room = self.chunk.saturating_sub(self.pending.len());
            let (now, later) = input.split_at(room.min(input.len()));
            self.pending.extend_from_slice(now);
            input = later;
            if self.pending.len() >= self.chunk {
                self.run_chunk(u64::MAX, emit)?;
            }
        }
        Ok(())
    }

    /// Pushes out what is still inside (the partial chunk and the filter's tail) so that the
    /// total output is exactly the input length times the rate ratio, then starts afresh.
    pub(crate) fn finish(&mut self, emit: &mut dyn FnMut(&[f32])) -> Result<(), AudioError> {
        if self.fft.is_some() {
            let expected =
                (u128::from(self.frames_in) * u128::from(self.to)).div_ceil(u128::from(self.from));
            let limit = u64::try_from(expected)
                .unwrap_or(u64::MAX)
                .saturating_add(self.delay() as u64);
            while self.frames_out < limit {
                self.pending.resize(self.chunk, 0.0);
                self.run_chunk(limit, emit)?;
            }
            if let Some(fft) = self.fft.as_mut() {
                fft.reset();
            }
        }
        self.pending.clear();
        self.frames_in = 0;
        self.frames_out = 0;
        Ok(())
    }

    /// Resamples the full pending chunk, handing out at most up to `limit` total frames.
    fn run_chunk(&mut self, limit: u64, emit: &mut dyn FnMut(&[f32])) -> Result<(), AudioError> {
        let (from, to) = (self.from, self.to);
        let error = |reason: String| AudioError::Resampler { from, to, reason };
        let Some(fft) = self.fft.as_mut() else {
            return Ok(());
        };
        let input = SequentialSlice::new(&self.pending[..], 1, self.pending.len())
            .map_err(|e| error(e.to_string()))?;
        let output_len = self.output.len();
        let mut output = SequentialSlice::new_mut(&mut self.output[..], 1, output_len)
            .map_err(|e| error(e.to_string()))?;
        let (_, produced) = fft
            .process_into_buffer(&input, &mut output, None)
            .map_err(|e| error(e.to_string()))?;
        self.pending.clear();
        let allowed = usize::try_from(limit.saturating_sub(self.frames_out)).unwrap_or(usize::MAX);
        let produced = produced.min(allowed);
        self.frames_out += produced as u64;
        let fresh = self.output.get(..produced).unwrap_or_default();
        let skipped = self.skip.min(fresh.len());
        self.skip -= skipped;
        if let Some(kept) = fresh.get(skipped..).filter(|kept| !kept.is_empty()) {
            emit(kept);
        }
        Ok(())
    }
}

/// Device or file frames (any rate, any channel count) in, 48 kHz mono out.
#[derive(Debug)]
pub(crate) struct CaptureConverter {
    channels: usize,
    mono: Vec<f32>,
    resampler: MonoResampler,
}

impl CaptureConverter {
    pub(crate) fn new(rate: u32, channels: u16, engine_rate: u32) -> Result<Self, AudioError> {
        Ok(Self {
            channels: usize::from(channels.max(1)),
            mono: Vec::new(),
            resampler: MonoResampler::new(rate, engine_rate)?,
        })
    }

    pub(crate) fn resampler(&mut self) -> &mut MonoResampler {
        &mut self.resampler
    }

    /// `interleaved` holds whole frames; a trailing partial frame is ignored.
    pub(crate) fn convert(
        &mut self,
        interleaved: &[f32],
        emit: &mut dyn FnMut(&[f32]),
    ) -> Result<(), AudioError> {
        self.mono.clear();
        let scale = 1.0 / self.channels as f32;
        self.mono.extend(
            interleaved
                .chunks_exact(self.channels)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
        self.resampler.process(&self.mono, emit)
    }
}

/// 48 kHz mono in, device frames (any rate, any channel count) out.
#[derive(Debug)]
pub(crate) struct PlaybackConverter {
    channels: usize,
    interleaved: Vec<f32>,
    resampler: MonoResampler,
}

impl PlaybackConverter {
    pub(crate) fn new(engine_rate: u32, rate: u32, channels: u16) -> Result<Self, AudioError> {
        Ok(Self {
            channels: usize::from(channels.max(1)),
            interleaved: Vec::new(),
            resampler: MonoResampler::new(engine_rate, rate)?,
        })
    }

    pub(crate) fn convert(
        &mut self,
        mono: &[f32],
        emit: &mut dyn FnMut(&[f32]),
    ) -> Result<(), AudioError> {
        let Self {
            channels,
            interleaved,
            resampler,
        } = self;
        resampler.process(mono, &mut |out| {
            interleaved.clear();
            interleaved.extend(
                out.iter()
                    .flat_map(|&sample| std::iter::repeat_n(sample, *channels)),
            );
            emit(interleaved);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tone::{level_db, peak_frequency, rms, sine};
    use super::*;

    const ENGINE: u32 = 48_000;

    fn interleave(mono: &[f32], channels: usize) -> Vec<f32> {
        mono.iter()
            .flat_map(|&s| std::iter::repeat_n(s, channels))
            .collect()
    }

    fn channel(interleaved: &[f32], channels: usize, which: usize) -> Vec<f32> {
        interleaved
            .iter()
            .skip(which)
            .step_by(channels)
            .copied()
            .collect()
    }

    /// Middle of a signal, away from the filter's start and end transients.
    fn steady(signal: &[f32], rate: u32) -> &[f32] {
        let margin = (rate / 10) as usize;
        &signal[margin..signal.len() - margin]
    }

    fn capture(rate: u32, channels: u16, input: &[f32], piece: usize) -> Vec<f32> {
        let mut converter = CaptureConverter::new(rate, channels, ENGINE).unwrap();
        let mut out = Vec::new();
        // Odd-sized pieces, as device callbacks deliver them.
        for part in input.chunks(piece * usize::from(channels)) {
            converter
                .convert(part, &mut |o| out.extend_from_slice(o))
                .unwrap();
        }
        out
    }

    #[test]
    fn a_1khz_tone_survives_44k1_stereo_to_48k_mono_and_back() {
        let tone = sine(44_100, 1000.0, 0.5, 44_100);
        let stereo = interleave(&tone, 2);
        let mono48 = capture(44_100, 2, &stereo, 441);
        assert!(
            mono48.len() > 46_000,
            "about a second came out: {}",
            mono48.len()
        );
        let middle = steady(&mono48, ENGINE);
        assert!((peak_frequency(middle, ENGINE) - 1000.0).abs() <= 2.0);
        let change = level_db(rms(middle), rms(steady(&tone, 44_100)));
        assert!(change.abs() < 1.0, "level changed by {change:.2} dB");

        let mut back = PlaybackConverter::new(ENGINE, 44_100, 2).unwrap();
        let mut out = Vec::new();
        for part in mono48.chunks(960) {
            back.convert(part, &mut |o| out.extend_from_slice(o))
                .unwrap();
        }
        assert_eq!(out.len() % 2, 0);
        for which in 0..2 {
            let ch = channel(&out, 2, which);
            let middle = steady(&ch, 44_100);
            assert!((peak_frequency(middle, 44_100) - 1000.0).abs() <= 2.0);
            let change = level_db(rms(middle), rms(steady(&tone, 44_100)));
            assert!(
                change.abs() < 1.0,
                "channel {which} level changed by {change:.2} dB"
            );
        }
    }

    #[test]
    fn any_device_rate_and_channel_count_becomes_48k_mono() {
        for (rate, channels) in [
            (8_000, 1),
            (16_000, 2),
            (22_050, 1),
            (48_000, 6),
            (96_000, 2),
        ] {
            let tone = sine(rate, 1000.0, 0.25, rate as usize);
            let input = interleave(&tone, usize::from(channels));
            let out = capture(rate, channels, &input, 333);
            let expected = 48_000.0;
            let ratio = out.len() as f64 / expected;
            assert!(
                ratio > 0.9 && ratio <= 1.0,
                "{rate} Hz x{channels}: {} samples",
                out.len()
            );
            let middle = steady(&out, ENGINE);
            let peak = peak_frequency(middle, ENGINE);
            assert!((peak - 1000.0).abs() <= 2.0, "{rate} Hz: peak at {peak} Hz");
            let change = level_db(rms(middle), rms(steady(&tone, rate)));
            assert!(
                change.abs() < 1.0,
                "{rate} Hz: level changed by {change:.2} dB"
            );
        }
    }

    #[test]
    fn equal_rates_pass_samples_through_untouched() {
        let input: Vec<f32> = (0..1000).map(|n| n as f32 / 1000.0).collect();
        let mut resampler = MonoResampler::new(48_000, 48_000).unwrap();
        let mut out = Vec::new();
        resampler
            .process(&input, &mut |o| out.extend_from_slice(o))
            .unwrap();
        assert_eq!(out, input);
        assert_eq!(resampler.delay(), 0);
    }

    #[test]
    fn finishing_gives_exactly_the_scaled_length_without_the_start_delay() {
        let mut resampler = MonoResampler::new(8_000, 48_000).unwrap();
        resampler.trim_start_delay();
        let tone = sine(8_000, 1000.0, 0.5, 1234);
        let mut out = Vec::new();
        resampler
            .process(&tone, &mut |o| out.extend_from_slice(o))
            .unwrap();
        resampler.finish(&mut |o| out.extend_from_slice(o)).unwrap();
        assert_eq!(out.len(), 1234 * 6);
        // Delay trimmed: the tone starts at once instead of after a gap of silence.
        assert!(
            rms(&out[..48]) > 0.1,
            "start is silent: {}",
            rms(&out[..48])
        );
    }

    #[test]
    fn a_zero_rate_is_an_error_that_names_the_rates() {
        let err = MonoResampler::new(0, 48_000).unwrap_err();
        assert!(err.to_string().contains("from 0 Hz to 48000 Hz"), "{err}");
    }
}
