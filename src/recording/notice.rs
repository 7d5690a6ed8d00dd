//! Telling people by ear that the call is recorded (RFC 7245 3.4): most far ends ignore the
//! SDP recording indication, so the phone mixes a spoken announcement (when recording starts
//! or resumes) and a periodic warning tone into what it sends. Both are part of what the far
//! end hears, and so of the local user's recorded stream. The local user gets short cues of
//! their own when recording starts, pauses, resumes or fails.
//!
//! Everything here runs on the engine's 20 ms ticks: sample counts, no clocks, no allocation
//! per frame.

use std::sync::Arc;
use std::time::Duration;

use crate::media::tone::Cadence;
use crate::media::{FRAME_SAMPLES, SAMPLE_RATE, mix_into};

/// The periodic warning tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarningTone {
    pub frequency_hz: u32,
    pub duration: Duration,
    /// From the start of one tone to the start of the next.
    pub interval: Duration,
    /// Peak amplitude in thousandths of full scale.
    pub level_permille: u16,
}

impl Default for WarningTone {
    /// 1400 Hz for half a second every 15 s, as ITU-T and telephone regulators describe the
    /// recorder warning tone, at -20 dBFS.
    fn default() -> Self {
        WarningTone {
            frequency_hz: 1400,
            duration: Duration::from_millis(500),
            interval: Duration::from_secs(15),
            level_permille: 100,
        }
    }
}

/// What the phone does to tell people about recording.
#[derive(Debug, Clone, Default)]
pub struct NoticeConfig {
    /// Played to the far end when recording starts or resumes (48 kHz mono).
    pub announcement: Option<Arc<[f32]>>,
    pub tone: Option<WarningTone>,
    /// Leave out the audio notices when the far end said `Supported: record-aware` and was
    /// told in SDP: it shows recording to its user itself.
    pub skip_for_record_aware: bool,
    /// Cues the local user hears when recording starts, pauses, resumes or fails.
    pub local_cues: bool,
}

/// Announcements compare sample by sample (bit for bit), so the same file read twice is
/// the same notice.
impl PartialEq for NoticeConfig {
    fn eq(&self, other: &Self) -> bool {
        let same_announcement = match (&self.announcement, &other.announcement) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                Arc::ptr_eq(a, b)
                    || (a.len() == b.len()
                        && a.iter()
                            .zip(b.iter())
                            .all(|(x, y)| x.to_bits() == y.to_bits()))
            }
            _ => false,
        };
        same_announcement
            && self.tone == other.tone
            && self.skip_for_record_aware == other.skip_for_record_aware
            && self.local_cues == other.local_cues
    }
}

impl Eq for NoticeConfig {}

impl NoticeConfig {
    /// Whether anything at all is sent to the far end.
    pub fn tells_far_end(&self) -> bool {
        self.announcement.is_some() || self.tone.is_some()
    }
}

/// The bundled announcement ("This call is being recorded."), made with espeak-ng.
pub fn bundled_announcement() -> Result<Arc<[f32]>, String> {
    const WAV: &[u8] = include_bytes!("../../assets/sounds/recording-announcement.wav");
    read_announcement(WAV)
}

/// Reads an announcement WAV: 48 kHz mono, 16-bit (the bundled one, or a user's file
/// converted to that form).
pub fn read_announcement(wav: &[u8]) -> Result<Arc<[f32]>, String> {
    let reader =
        hound::WavReader::new(wav).map_err(|e| format!("the announcement is no WAV: {e}"))?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(format!(
            "the announcement must be 48 kHz mono 16-bit PCM, not {} Hz, {} channels, {} bits",
            spec.sample_rate, spec.channels, spec.bits_per_sample
        ));
    }
    reader
        .into_samples::<i16>()
        .map(|s| s.map(|v| f32::from(v) / 32768.0))
        .collect::<Result<Vec<f32>, _>>()
        .map(Arc::from)
        .map_err(|e| format!("the announcement cannot be read: {e}"))
}

impl WarningTone {
    /// The tone as a repeating cadence: on for its duration, off for the rest of the interval.
    fn cadence(&self) -> Cadence {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let on = ms(self.duration).min(ms(self.interval));
        let off = ms(self.interval) - on;
        let level = f32::from(self.level_permille.min(1000)) / 1000.0;
        Cadence::new(
            &[self.frequency_hz as f32],
            level,
            &[(on, off)],
            SAMPLE_RATE,
        )
    }
}

/// The far end's notice for one call.
#[derive(Debug)]
pub struct FarEndNotice {
    config: NoticeConfig,
    active: bool,
    /// Where the announcement is, while it plays.
    announcement_at: Option<usize>,
    /// The warning tone, from its first burst at each start.
    tone: Option<Cadence>,
}

impl FarEndNotice {
    pub fn new(config: NoticeConfig) -> FarEndNotice {
        FarEndNotice {
            config,
            active: false,
            announcement_at: None,
            tone: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Recording started or resumed: the announcement plays from its start, then the tone
    /// period begins.
    pub fn start(&mut self) {
        if self.active {
            return;
        }
        self.active = true;
        self.announcement_at = self.config.announcement.as_ref().map(|_| 0);
        self.tone = self.config.tone.as_ref().map(WarningTone::cadence);
    }

    /// Recording paused, stopped or failed: no more notices until it starts again.
    pub fn stop(&mut self) {
        self.active = false;
        self.announcement_at = None;
        self.tone = None;
    }

    /// Adds this frame's share of the notice to `frame` (what the far end is sent).
    pub fn mix_into(&mut self, frame: &mut [f32]) {
        if !self.active {
            return;
        }
        if let (Some(at), Some(announcement)) =
            (self.announcement_at, self.config.announcement.as_ref())
        {
            mix_into(frame, announcement.get(at..).unwrap_or(&[]));
            let next = at + frame.len();
            self.announcement_at = (next < announcement.len()).then_some(next);
            // The tone waits for the announcement, so the two never talk over each other.
            return;
        }
        let Some(tone) = self.tone.as_mut() else {
            return;
        };
        let mut sound = [0.0f32; FRAME_SAMPLES];
        for chunk in frame.chunks_mut(FRAME_SAMPLES) {
            let Some(part) = sound.get_mut(..chunk.len()) else {
                return;
            };
            tone.fill(part);
            mix_into(chunk, part);
        }
    }
}

/// What the local user's cue says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    Started,
    Paused,
    Resumed,
    Failed,
}

impl Cue {
    /// Beeps as (frequency, milliseconds), with 60 ms between them: rising for on, falling
    /// for off, three low ones for a failure.
    fn beeps(self) -> &'static [(f32, u32)] {
        match self {
            Cue::Started | Cue::Resumed => &[(660.0, 90), (990.0, 120)],
            Cue::Paused => &[(990.0, 90), (660.0, 120)],
            Cue::Failed => &[(440.0, 120), (440.0, 120), (440.0, 120)],
        }
    }
}

const CUE_LEVEL: f32 = 0.2;
const CUE_GAP_MS: u32 = 60;

/// The local user's cue that is playing, if any.
#[derive(Debug, Default)]
pub struct LocalCue {
    playing: Option<(Cue, u64)>,
}

impl LocalCue {
    pub fn play(&mut self, cue: Cue) {
        self.playing = Some((cue, 0));
    }

    /// Adds the cue to `frame` (what the local user hears).
    pub fn mix_into(&mut self, frame: &mut [f32]) {
        let Some((cue, mut at)) = self.playing else {
            return;
        };
        let per_ms = u64::from(SAMPLE_RATE / 1000);
        let mut total = 0;
        for (_, ms) in cue.beeps() {
            total += u64::from(ms + CUE_GAP_MS) * per_ms;
        }
        for out in frame.iter_mut() {
            let mut start = 0;
            for &(frequency, ms) in cue.beeps() {
                let length = u64::from(ms) * per_ms;
                if at >= start && at < start + length {
                    let t = (at - start) as f32 / SAMPLE_RATE as f32;
                    let value = CUE_LEVEL * (core::f32::consts::TAU * frequency * t).sin();
                    *out = (*out + value).clamp(-1.0, 1.0);
                }
                start += length + u64::from(CUE_GAP_MS) * per_ms;
            }
            at += 1;
        }
        self.playing = (at < total).then_some((cue, at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::goertzel_amplitude;

    fn run(notice: &mut FarEndNotice, seconds: f32) -> Vec<f32> {
        let frames = (seconds * 50.0) as usize;
        let mut out = Vec::with_capacity(frames * FRAME_SAMPLES);
        for _ in 0..frames {
            let mut frame = [0.0f32; FRAME_SAMPLES];
            notice.mix_into(&mut frame);
            out.extend_from_slice(&frame);
        }
        out
    }

    fn amplitude(audio: &[f32], from: f32, to: f32, frequency: f32) -> f32 {
        let a = (from * SAMPLE_RATE as f32) as usize;
        let b = ((to * SAMPLE_RATE as f32) as usize).min(audio.len());
        goertzel_amplitude(&audio[a..b], SAMPLE_RATE, frequency)
    }

    #[test]
    fn the_tone_sounds_for_its_duration_once_per_interval_and_only_while_recording() {
        let mut notice = FarEndNotice::new(NoticeConfig {
            tone: Some(WarningTone {
                interval: Duration::from_secs(2),
                ..WarningTone::default()
            }),
            ..NoticeConfig::default()
        });
        assert!(run(&mut notice, 1.0).iter().all(|s| *s == 0.0), "not yet");
        notice.start();
        let audio = run(&mut notice, 5.0);
        for start in [0.0, 2.0, 4.0] {
            assert!(
                amplitude(&audio, start, start + 0.5, 1400.0) > 0.09,
                "{start}"
            );
            assert!(amplitude(&audio, start + 0.6, start + 1.9, 1400.0) < 0.001);
        }
        notice.stop();
        assert!(run(&mut notice, 3.0).iter().all(|s| *s == 0.0), "stopped");
    }

    #[test]
    fn the_announcement_plays_on_each_start_before_the_tone() {
        let announcement: Arc<[f32]> = (0..SAMPLE_RATE as usize)
            .map(|i| 0.3 * (core::f32::consts::TAU * 500.0 * i as f32 / SAMPLE_RATE as f32).sin())
            .collect();
        let mut notice = FarEndNotice::new(NoticeConfig {
            announcement: Some(announcement),
            tone: Some(WarningTone::default()),
            ..NoticeConfig::default()
        });
        notice.start();
        let audio = run(&mut notice, 2.0);
        assert!(amplitude(&audio, 0.0, 1.0, 500.0) > 0.29);
        assert!(
            amplitude(&audio, 0.0, 1.0, 1400.0) < 0.01,
            "no tone over it"
        );
        assert!(
            amplitude(&audio, 1.0, 1.5, 1400.0) > 0.09,
            "the tone follows"
        );
        notice.stop();
        notice.start();
        let again = run(&mut notice, 1.0);
        assert!(amplitude(&again, 0.0, 1.0, 500.0) > 0.29, "again on resume");
    }

    #[test]
    fn the_bundled_announcement_is_a_second_or_more_of_speech() {
        let announcement = bundled_announcement().unwrap();
        let seconds = announcement.len() as f32 / SAMPLE_RATE as f32;
        assert!((1.0..4.0).contains(&seconds), "{seconds} s");
        let peak = announcement.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.3, "{peak}");
    }

    #[test]
    fn a_wav_in_another_form_is_refused_with_the_reason() {
        let mut bytes = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut bytes, spec).unwrap();
        writer.write_sample(0i16).unwrap();
        writer.write_sample(0i16).unwrap();
        writer.finalize().unwrap();
        let error = read_announcement(bytes.get_ref()).unwrap_err();
        assert!(error.contains("48 kHz mono"), "{error}");
        assert!(read_announcement(b"not a wav").is_err());
    }

    #[test]
    fn cues_rise_for_on_fall_for_off_and_end() {
        let listen = |cue: Cue| {
            let mut local = LocalCue::default();
            local.play(cue);
            let mut audio = Vec::new();
            for _ in 0..25 {
                let mut frame = [0.0f32; FRAME_SAMPLES];
                local.mix_into(&mut frame);
                audio.extend_from_slice(&frame);
            }
            audio
        };
        let started = listen(Cue::Started);
        assert!(amplitude(&started, 0.0, 0.09, 660.0) > 0.15);
        assert!(amplitude(&started, 0.15, 0.27, 990.0) > 0.15);
        let paused = listen(Cue::Paused);
        assert!(amplitude(&paused, 0.0, 0.09, 990.0) > 0.15);
        let failed = listen(Cue::Failed);
        assert!(amplitude(&failed, 0.0, 0.12, 440.0) > 0.15);
        assert!(
            started[(0.3 * SAMPLE_RATE as f32) as usize..]
                .iter()
                .all(|s| *s == 0.0)
        );
    }
}
