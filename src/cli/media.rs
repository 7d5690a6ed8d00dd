//! The call and answer commands' media flags: audio from and to WAV files, codec choice,
//! SRTP policy, DTMF to send, and the final statistics line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use clap::{Args, ValueEnum};

use std::sync::Mutex;

use crate::audio::{DeviceConfig, WavSink, WavSource, start_devices};
use crate::driver::media::{AudioFactory, CallAudio, CardStep, DeviceCallAudio, Ringer};
use crate::media::srtp::SrtpPolicy;
use crate::sdp::Codec;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum CodecArg {
    Opus,
    G722,
    Pcmu,
    Pcma,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum SrtpArg {
    Off,
    Optional,
    Mandatory,
}

#[derive(Debug, Clone, Default, Args)]
pub(super) struct MediaArgs {
    /// Send this WAV file (any rate and channel count); silence when it ends.
    #[arg(long, value_name = "FILE.wav")]
    play: Option<PathBuf>,
    /// Write what we hear to this WAV file (48 kHz mono); with several calls, the second
    /// and later get -2, -3, ... before the extension.
    #[arg(long, value_name = "FILE.wav")]
    save_received: Option<PathBuf>,
    /// Offer and accept only this codec (default: opus, g722, pcmu, pcma in that order).
    #[arg(long, value_enum)]
    codec: Option<CodecArg>,
    /// SRTP policy (default: the account's, else optional).
    #[arg(long, value_enum)]
    srtp: Option<SrtpArg>,
    /// DTMF digits to send once the call is answered.
    #[arg(long, value_name = "DIGITS")]
    dtmf: Option<String>,
    /// Print the final RTP statistics of each call as one JSON line on stdout.
    #[arg(long)]
    pub stats: bool,
    /// Use the sound card (the system's default microphone and speaker) for call audio.
    #[arg(long, conflicts_with_all = ["play", "save_received"])]
    devices: bool,
}

impl CodecArg {
    pub fn codec(self) -> Codec {
        match self {
            CodecArg::Opus => Codec::Opus { inband_fec: true },
            CodecArg::G722 => Codec::G722,
            CodecArg::Pcmu => Codec::Pcmu,
            CodecArg::Pcma => Codec::Pcma,
        }
    }

    pub fn kind(self) -> crate::media::codec::CodecKind {
        use crate::media::codec::CodecKind;
        match self {
            CodecArg::Opus => CodecKind::Opus,
            CodecArg::G722 => CodecKind::G722,
            CodecArg::Pcmu => CodecKind::Pcmu,
            CodecArg::Pcma => CodecKind::Pcma,
        }
    }
}

impl SrtpArg {
    pub fn policy(self) -> SrtpPolicy {
        match self {
            SrtpArg::Off => SrtpPolicy::Off,
            SrtpArg::Optional => SrtpPolicy::Optional,
            SrtpArg::Mandatory => SrtpPolicy::Mandatory,
        }
    }
}

impl MediaArgs {
    pub fn codecs(&self) -> Option<Vec<Codec>> {
        self.codec.map(|c| vec![c.codec()])
    }

    pub fn srtp(&self) -> Option<SrtpPolicy> {
        self.srtp.map(SrtpArg::policy)
    }

    pub fn dtmf(&self) -> Option<&str> {
        self.dtmf.as_deref()
    }

    /// Checks the files now, so a typo fails before any call is placed, and returns the
    /// per-call audio factory.
    pub fn audio(&self, devices: &DeviceConfig) -> Result<AudioSetup, String> {
        if self.devices {
            return device_audio(devices.clone(), Default::default())
                .map_err(|e| format!("--devices: {e}"));
        }
        if self.play.is_none() && self.save_received.is_none() {
            return Ok(AudioSetup::default());
        }
        if let Some(play) = &self.play {
            WavSource::open(play).map_err(|e| format!("--play: {e}"))?;
        }
        if let Some(save) = &self.save_received {
            WavSink::create(save).map_err(|e| format!("--save-received: {e}"))?;
        }
        let play = self.play.clone();
        let save = self.save_received.clone();
        let calls = Arc::new(AtomicU32::new(0));
        let factory: AudioFactory = Arc::new(move |_call| {
            let index = calls.fetch_add(1, Ordering::Relaxed) + 1;
            let source = play.as_ref().and_then(|p| match WavSource::open(p) {
                Ok(source) => Some(source),
                Err(error) => {
                    tracing::warn!(%error, "cannot play the file into this call");
                    None
                }
            });
            let sink = save
                .as_ref()
                .and_then(|p| match WavSink::create(numbered(p, index)) {
                    Ok(sink) => Some(sink),
                    Err(error) => {
                        tracing::warn!(%error, "cannot save this call's audio");
                        None
                    }
                });
            Box::new(FileAudio { source, sink }) as Box<dyn CallAudio>
        });
        Ok(AudioSetup {
            factory: Some(factory),
            ..AudioSetup::default()
        })
    }
}

/// Where calls' audio and ringtones go.
#[derive(Default)]
pub(crate) struct AudioSetup {
    pub factory: Option<AudioFactory>,
    pub ringer: Option<Ringer>,
    /// With the sound card: its microphone paces the media.
    pub clock: Option<crate::driver::media::CardClock>,
    /// With the sound card: its thread (devices, level meter) and the volumes.
    pub control: Option<crate::ui::AudioControl>,
}

/// Opens the default devices once; every call uses them in turn.
pub(crate) fn device_audio(
    config: DeviceConfig,
    volumes: Arc<crate::audio::Volumes>,
) -> Result<AudioSetup, String> {
    let devices = start_devices(config).map_err(|e| format!("cannot open the sound card: {e}"))?;
    let ports = Arc::new(Mutex::new(devices.ports));
    let clock = crate::driver::media::CardClock::new(devices.frame_ready, ports.clone());
    let ringer = Ringer::new(devices.ringer);
    let thread = devices.thread;
    let events = devices.events;
    // Device changes are reported as they happen; the thread ends with the process.
    std::thread::spawn(move || {
        while let Ok(event) = events.recv() {
            eprintln!("audio: {event:?}");
        }
    });
    let holder = Arc::new(Mutex::new(thread));
    let control = crate::ui::AudioControl {
        thread: holder.clone(),
        volumes: volumes.clone(),
        ports: ports.clone(),
    };
    // One step of the card for all the calls on it.
    let card = Arc::new(Mutex::new(CardStep::default()));
    let factory: AudioFactory = Arc::new(move |_call| {
        // The factory owns the audio thread: the devices stay open while calls can happen.
        let _keep = &holder;
        Box::new(DeviceCallAudio::new(
            ports.clone(),
            volumes.clone(),
            card.clone(),
        )) as Box<dyn CallAudio>
    });
    Ok(AudioSetup {
        factory: Some(factory),
        ringer: Some(ringer),
        clock: Some(clock),
        control: Some(control),
    })
}

/// `out.wav` for the first call, `out-2.wav` for the second, ...
fn numbered(path: &Path, index: u32) -> PathBuf {
    if index <= 1 {
        return path.to_owned();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}"),
    };
    path.with_file_name(name)
}

struct FileAudio {
    source: Option<WavSource>,
    sink: Option<WavSink>,
}

impl CallAudio for FileAudio {
    fn capture(&mut self, frame: &mut [f32]) {
        let filled = self
            .source
            .as_mut()
            .is_some_and(|source| source.next_frame(frame));
        if !filled {
            frame.fill(0.0);
        }
    }

    fn play(&mut self, frame: &[f32]) {
        if let Some(sink) = self.sink.as_mut()
            && let Err(error) = sink.write_frame(frame)
        {
            tracing::warn!(%error, "received audio not saved");
            self.sink = None;
        }
    }

    fn finish(&mut self) {
        if let Some(sink) = self.sink.take()
            && let Err(error) = sink.finish()
        {
            tracing::warn!(%error, "received audio file not finished");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_calls_get_numbered_files() {
        assert_eq!(
            numbered(Path::new("/t/out.wav"), 1),
            PathBuf::from("/t/out.wav")
        );
        assert_eq!(
            numbered(Path::new("/t/out.wav"), 3),
            PathBuf::from("/t/out-3.wav")
        );
        assert_eq!(numbered(Path::new("rec"), 2), PathBuf::from("rec-2"));
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(super) enum RecordPolicyArg {
    #[default]
    Optional,
    Mandatory,
}

/// Recording flags of `call` and `answer`.
#[derive(Debug, Clone, Default, Args)]
pub(super) struct RecordArgs {
    /// Record the call through a SIPREC recording session.
    #[arg(long)]
    pub record: bool,
    /// The recorder (SRS) URI, e.g. sip:srs@127.0.0.1:5080;transport=tcp.
    #[arg(long, requires = "record")]
    pub srs: Option<String>,
    /// mandatory: no call is placed or answered before its recording is up, and a call
    /// whose recording is lost for 10 s is ended (default: [recording] policy, optional).
    #[arg(long, value_enum, requires = "record")]
    pub record_policy: Option<RecordPolicyArg>,
    /// A second recorder, tried in turn with the first when recording fails.
    #[arg(long, requires = "srs")]
    pub srs_secondary: Option<String>,
    /// Pause the recording this many seconds after the call connects.
    #[arg(long, requires = "record", value_name = "SECS")]
    pub pause_at: Option<u64>,
    /// Resume it this many seconds after the call connects.
    #[arg(long, requires = "pause_at", value_name = "SECS")]
    pub resume_at: Option<u64>,
    /// separate: one stream per side (label 1 you, label 2 the far end); mixed: one stream
    /// with both voices (default: [recording] mode, separate).
    #[arg(long, value_enum, requires = "record")]
    pub record_mode: Option<RecordModeArg>,
    /// Encrypt the recording's media (SRTP) even when the call itself is plain RTP.
    #[arg(long, requires = "record")]
    pub srs_srtp: bool,
    /// The user name for a recorder that asks for digest authentication; the password
    /// comes from the VERBATIM_SRS_PASSWORD environment variable.
    #[arg(long, requires = "srs", value_name = "USER")]
    pub srs_user: Option<String>,
    /// Let the recorder at this address start recording the call in progress itself
    /// (SRS-initiated, an INVITE with +sip.srs); repeatable. Others get 403.
    #[arg(long, value_name = "IP")]
    pub allow_recorder: Vec<core::net::IpAddr>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(super) enum RecordModeArg {
    #[default]
    Separate,
    Mixed,
}
