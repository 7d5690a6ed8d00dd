//! WAV files in place of a microphone and a speaker, for headless calls. Neither side keeps
//! time: the caller asks for or hands over one frame per tick of its own clock.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use super::AudioError;
use super::resample::CaptureConverter;
use crate::media::SAMPLE_RATE;

/// Frames read from the file per refill.
const READ_FRAMES: usize = 4096;

/// A WAV file of any rate, channel count and sample format, read as 48 kHz mono frames.
pub struct WavSource {
    path: PathBuf,
    reader: hound::WavReader<BufReader<File>>,
    spec: hound::WavSpec,
    looping: bool,
    converter: CaptureConverter,
    block: Vec<f32>,
    ready: VecDeque<f32>,
    at_end: bool,
    error: Option<AudioError>,
}

impl std::fmt::Debug for WavSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSource")
            .field("path", &self.path)
            .field("spec", &self.spec)
            .field("looping", &self.looping)
            .finish_non_exhaustive()
    }
}

impl WavSource {
    /// Opens `path` for reading; it plays once unless [`WavSource::looping`] says otherwise.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AudioError> {
        let path = path.as_ref().to_path_buf();
        let reader = hound::WavReader::open(&path).map_err(|source| AudioError::WavRead {
            path: path.clone(),
            source,
        })?;
        let spec = reader.spec();
        let unsupported = |reason: String| AudioError::UnsupportedWav {
            path: path.clone(),
            reason,
        };
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(unsupported(format!(
                "{} channels at {} Hz",
                spec.channels, spec.sample_rate
            )));
        }
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, 1..=32) | (hound::SampleFormat::Float, 32) => {}
            (format, bits) => {
                return Err(unsupported(format!("{bits}-bit {format:?} samples")));
            }
        }
        let mut converter = CaptureConverter::new(spec.sample_rate, spec.channels, SAMPLE_RATE)?;
        converter.resampler().trim_start_delay();
        Ok(Self {
            path,
            reader,
            spec,
            looping: false,
            converter,
            block: Vec::with_capacity(READ_FRAMES * usize::from(spec.channels)),
            ready: VecDeque::new(),
            at_end: false,
            error: None,
        })
    }

    /// Whether to start again from the top at the end instead of ending.
    #[must_use]
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = looping;
        self
    }

    /// The file's own sample rate and channel count.
    pub fn source_format(&self) -> (u32, u16) {
        (self.spec.sample_rate, self.spec.channels)
    }

    /// Fills `out` (normally [`crate::media::FRAME_SAMPLES`] long) with the next 48 kHz mono samples. The
    /// last frame is padded with silence; after it, returns false. A read error also ends the
    /// source; [`WavSource::error`] then tells what happened.
    pub fn next_frame(&mut self, out: &mut [f32]) -> bool {
        match self.try_next_frame(out) {
            Ok(more) => more,
            Err(error) => {
                self.error = Some(error);
                false
            }
        }
    }

    /// The read error that ended [`WavSource::next_frame`], if one did.
    pub fn error(&self) -> Option<&AudioError> {
        self.error.as_ref()
    }

    /// Like [`WavSource::next_frame`], with read errors returned.
    pub fn try_next_frame(&mut self, out: &mut [f32]) -> Result<bool, AudioError> {
        while self.ready.len() < out.len() && !self.at_end {
            self.refill()?;
        }
        if self.ready.is_empty() {
            return Ok(false);
        }
        let mut samples = self.ready.drain(..out.len().min(self.ready.len()));
        for slot in out.iter_mut() {
            *slot = samples.next().unwrap_or(0.0);
        }
        Ok(true)
    }

    fn refill(&mut self) -> Result<(), AudioError> {
        self.read_block()?;
        let Self {
            converter,
            block,
            ready,
            ..
        } = self;
        if block.is_empty() {
            if self.looping && self.reader.duration() > 0 {
                self.reader.seek(0).map_err(|e| AudioError::WavRead {
                    path: self.path.clone(),
                    source: hound::Error::IoError(e),
                })?;
                return Ok(());
            }
            converter.resampler().finish(&mut |out| ready.extend(out))?;
            self.at_end = true;
            return Ok(());
        }
        converter.convert(block, &mut |out| ready.extend(out))
    }

    /// Reads up to [`READ_FRAMES`] frames into `block` as `f32` in -1..1.
    fn read_block(&mut self) -> Result<(), AudioError> {
        let wanted = READ_FRAMES * usize::from(self.spec.channels);
        self.block.clear();
        let path = &self.path;
        let failed = |source| AudioError::WavRead {
            path: path.clone(),
            source,
        };
        match self.spec.sample_format {
            hound::SampleFormat::Float => {
                for sample in self.reader.samples::<f32>().take(wanted) {
                    self.block.push(sample.map_err(failed)?);
                }
            }
            hound::SampleFormat::Int => {
                let full_scale = (1_u64 << (self.spec.bits_per_sample.max(1) - 1)) as f32;
                for sample in self.reader.samples::<i32>().take(wanted) {
                    self.block.push(sample.map_err(failed)? as f32 / full_scale);
                }
            }
        }
        // A file cut short mid-frame would shift every later frame's channels.
        let whole = self.block.len() - self.block.len() % usize::from(self.spec.channels);
        self.block.truncate(whole);
        Ok(())
    }
}

/// A 48 kHz mono 16-bit PCM WAV file written a frame at a time.
pub struct WavSink {
    path: PathBuf,
    writer: hound::WavWriter<BufWriter<File>>,
}

impl std::fmt::Debug for WavSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WavSink {
    /// Creates (or truncates) `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, AudioError> {
        let path = path.as_ref().to_path_buf();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer =
            hound::WavWriter::create(&path, spec).map_err(|source| AudioError::WavWrite {
                path: path.clone(),
                source,
            })?;
        Ok(Self { path, writer })
    }

    /// Appends 48 kHz mono samples, clipped to -1..1.
    pub fn write_frame(&mut self, frame: &[f32]) -> Result<(), AudioError> {
        for &sample in frame {
            let pcm = (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16;
            self.writer
                .write_sample(pcm)
                .map_err(|source| AudioError::WavWrite {
                    path: self.path.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Writes the final lengths into the header. Dropping a sink without this also tries to,
    /// but swallows any error.
    pub fn finish(self) -> Result<(), AudioError> {
        let Self { path, writer } = self;
        writer
            .finalize()
            .map_err(|source| AudioError::WavWrite { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tone::{level_db, peak_frequency, rms, sine};
    use super::*;
    use crate::media::FRAME_SAMPLES;

    fn write_int16(path: &Path, rate: u32, channels: u16, mono: &[f32]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        for &s in mono {
            for _ in 0..channels {
                writer.write_sample((s * 32767.0).round() as i16).unwrap();
            }
        }
        writer.finalize().unwrap();
    }

    fn read_all(source: &mut WavSource) -> Vec<f32> {
        let mut all = Vec::new();
        let mut frame = vec![0.0; FRAME_SAMPLES];
        while source.next_frame(&mut frame) {
            all.extend_from_slice(&frame);
        }
        assert!(source.error().is_none());
        all
    }

    /// Reads `input`, writes what came out through a sink, and reads the sink's file back.
    fn round_trip(rate: u32, channels: u16) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.wav");
        let output = dir.path().join("out.wav");
        let seconds = 1;
        let tone = sine(rate, 1000.0, 0.5, rate as usize * seconds);
        write_int16(&input, rate, channels, &tone);

        let mut source = WavSource::open(&input).unwrap();
        assert_eq!(source.source_format(), (rate, channels));
        let mut sink = WavSink::create(&output).unwrap();
        let mut frame = vec![0.0; FRAME_SAMPLES];
        let mut frames = 0;
        while source.next_frame(&mut frame) {
            sink.write_frame(&frame).unwrap();
            frames += 1;
        }
        sink.finish().unwrap();
        assert_eq!(frames, 50 * seconds, "one second is fifty 20 ms frames");

        let mut reader = hound::WavReader::open(&output).unwrap();
        assert_eq!(
            reader.spec(),
            hound::WavSpec {
                channels: 1,
                sample_rate: 48_000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            }
        );
        let written: Vec<f32> = reader
            .samples::<i16>()
            .map(|s| f32::from(s.unwrap()) / 32768.0)
            .collect();
        assert_eq!(written.len(), 48_000 * seconds);
        let middle = &written[4800..43_200];
        assert!((peak_frequency(middle, 48_000) - 1000.0).abs() <= 2.0);
        let change = level_db(rms(middle), rms(&tone));
        assert!(change.abs() < 1.0, "{rate} Hz x{channels}: {change:.2} dB");

        // Read back through a source too: 48 kHz mono passes straight through.
        let mut again = WavSource::open(&output).unwrap();
        let reread = read_all(&mut again);
        assert_eq!(reread.len(), written.len());
        assert!(
            reread
                .iter()
                .zip(&written)
                .all(|(a, b)| (a - b).abs() < 1e-4)
        );
    }

    #[test]
    fn round_trip_of_an_8khz_mono_file() {
        round_trip(8_000, 1);
    }

    #[test]
    fn round_trip_of_a_44k1_stereo_file() {
        round_trip(44_100, 2);
    }

    #[test]
    fn float_and_24_bit_files_are_read_at_their_level() {
        let dir = tempfile::tempdir().unwrap();
        for (format, bits) in [
            (hound::SampleFormat::Float, 32),
            (hound::SampleFormat::Int, 24),
        ] {
            let path = dir.path().join(format!("{bits}.wav"));
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 16_000,
                bits_per_sample: bits,
                sample_format: format,
            };
            let tone = sine(16_000, 1000.0, 0.25, 16_000);
            let mut writer = hound::WavWriter::create(&path, spec).unwrap();
            for &s in &tone {
                match format {
                    hound::SampleFormat::Float => writer.write_sample(s).unwrap(),
                    hound::SampleFormat::Int => writer
                        .write_sample((s * 8_388_607.0).round() as i32)
                        .unwrap(),
                }
            }
            writer.finalize().unwrap();
            let all = read_all(&mut WavSource::open(&path).unwrap());
            let middle = &all[4800..43_200];
            let change = level_db(rms(middle), rms(&tone));
            assert!(change.abs() < 1.0, "{bits}-bit: {change:.2} dB");
        }
    }

    #[test]
    fn a_looping_source_does_not_end_and_keeps_the_tone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.wav");
        // 0.1 s: five frames per pass.
        write_int16(&path, 8_000, 1, &sine(8_000, 1000.0, 0.5, 800));
        let mut source = WavSource::open(&path).unwrap().looping(true);
        let mut all = Vec::new();
        let mut frame = vec![0.0; FRAME_SAMPLES];
        for _ in 0..60 {
            assert!(source.next_frame(&mut frame));
            all.extend_from_slice(&frame);
        }
        assert!((peak_frequency(&all[4800..], 48_000) - 1000.0).abs() <= 2.0);
        assert!(rms(&all[4800..]) > 0.3);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-file.wav");
        let err = WavSource::open(&path).unwrap_err();
        assert!(matches!(err, AudioError::WavRead { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_wav_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.wav");
        std::fs::write(&path, b"these are not the samples you are looking for").unwrap();
        let err = WavSource::open(&path).unwrap_err();
        assert!(matches!(err, AudioError::WavRead { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_sink_in_a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone").join("out.wav");
        let err = WavSink::create(&path).unwrap_err();
        assert!(matches!(err, AudioError::WavWrite { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
