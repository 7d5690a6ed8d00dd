//! `verbatim bench`: N concurrent calls between two engines in this process, over loopback,
//! with file audio, reporting CPU per call-second, loss, late frames, memory and the time a
//! frame takes from capture to its packet leaving.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::Failure;
use crate::audio::WavSource;
use crate::driver::media::{AudioFactory, CallAudio};
use crate::driver::{self, DriverConfig, LatencyLog, RecordingLatency};
use crate::engine::{CallId, CallState, Command, EngineConfig, Event, RecordingState};
use crate::media::SAMPLE_RATE;
use crate::media::session::MediaStats;
use crate::media::srtp::SrtpPolicy;
use crate::media::tone::Sine;
use crate::phone::{Outgoing, Phone, RecordFromStart, RecordingPolicy};
use crate::sdp::Codec;
use crate::sip::transport::{Destination, Transport};
use crate::sip::uri::{NameAddr, Uri};

#[derive(Debug, serde::Serialize)]
struct BenchReport {
    calls: u32,
    duration_s: u64,
    codec: String,
    srtp: bool,
    /// The calling side's calls were merged into one conference that it mixes.
    conference: bool,
    /// CPU time of this process (both ends of every call) per call-second, divided by two
    /// so that it is the cost of one phone's side of one call.
    cpu_ms_per_call_s: f64,
    cpu_ms_total: f64,
    /// CPU time of this process (every side of every call) per second of the measurement.
    cpu_ms_per_s: f64,
    packets_sent: u64,
    packets_lost: i64,
    /// Frames late or concealed during the measured time (after setup settled).
    late_frames: u64,
    concealed_frames: u64,
    peak_rss_kb: u64,
    frame_to_packet_us_p50: u32,
    frame_to_packet_us_p99: u32,
    recorded_calls: usize,
    /// Packets the recorder received and counted lost over all recordings (both labels).
    rs_packets_received: Option<u64>,
    rs_packets_lost: Option<u64>,
    /// From a call packet entering the engine to its recording copy leaving (p50, p99).
    rs_lag_p50_us: Option<u32>,
    rs_lag_p99_us: Option<u32>,
    /// From the record command to the recording's first packet leaving (p50, p99 over the
    /// recordings, which all start at once).
    record_to_first_rs_packet_ms_p50: Option<f64>,
    record_to_first_rs_packet_ms_p99: Option<f64>,
}

/// `verbatim srs` in a child process, recording into a temporary folder, encrypted as by
/// default (to a key of its own, deleted with the folder).
struct Recorder {
    child: tokio::process::Child,
    dir: std::path::PathBuf,
    key_file: std::path::PathBuf,
    uri: Uri,
}

impl Recorder {
    async fn start() -> Result<Recorder, Failure> {
        use tokio::io::AsyncBufReadExt;
        let exe = std::env::current_exe()
            .map_err(|e| Failure::new(format!("bench: cannot find our own binary: {e}")))?;
        let dir = std::env::temp_dir().join(format!("verbatim-bench-{}", std::process::id()));
        let key_file = dir.with_extension("key");
        let mut child = tokio::process::Command::new(exe)
            .args(["srs", "--listen", "127.0.0.1:0", "--dir"])
            .arg(&dir)
            .arg("--key-file")
            .arg(&key_file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure::new(format!("bench: cannot start the recorder: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Failure::new("bench: the recorder has no output"))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            .unwrap_or_default();
        let address: SocketAddr = line
            .strip_prefix("srs: listening on ")
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| Failure::new(format!("bench: the recorder said {line:?}")))?;
        // Keep reading so the recorder never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let uri = Uri::parse(&format!("sip:recorder@{address};transport=tcp"))
            .map_err(|e| Failure::new(e.to_string()))?;
        Ok(Recorder {
            child,
            dir,
            key_file,
            uri,
        })
    }

    /// Stops the recorder and sums what its summaries say: (received, lost). Fails when a
    /// recording it should have kept cannot be read: a figure it cannot back is no figure.
    async fn finish(mut self, recordings: usize) -> Result<(u64, u64), Failure> {
        // Its sessions ended with the calls' BYEs; give the summaries a moment, then stop.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = self.child.kill().await;
        let totals = self.read_totals(recordings);
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.key_file);
        totals
    }

    fn read_totals(&self, recordings: usize) -> Result<(u64, u64), Failure> {
        let source = crate::archive::key::KeySource::File(self.key_file.clone());
        let keys: Vec<_> = match crate::archive::key::RecordingsKey::load(&source) {
            Ok(Some(key)) => vec![key.identity().clone()],
            Ok(None) => return Err(Failure::new("bench: the recorder's key is gone")),
            Err(error) => {
                return Err(Failure::new(format!(
                    "bench: cannot read the recorder's key: {error}"
                )));
            }
        };
        let folders = crate::archive::session::session_folders(&self.dir);
        if folders.len() < recordings {
            return Err(Failure::new(format!(
                "bench: the recorder kept {} recordings of {recordings}",
                folders.len()
            )));
        }
        let mut totals = (0, 0);
        for folder in folders {
            let summary = crate::archive::session::read_summary(&folder, &keys).map_err(|e| {
                Failure::new(format!(
                    "bench: cannot read the recorder's summary in {}: {e}",
                    folder.display()
                ))
            })?;
            for label in &summary.labels {
                totals.0 += label.packets_received;
                totals.1 += label.packets_lost;
            }
        }
        Ok(totals)
    }
}

/// A looping tone per call; its frames cost what a file's would once read.
struct ToneAudio {
    source: Option<WavSource>,
    sine: Sine,
}

impl CallAudio for ToneAudio {
    fn capture(&mut self, frame: &mut [f32]) {
        let filled = self
            .source
            .as_mut()
            .is_some_and(|source| source.next_frame(frame));
        if !filled {
            self.sine.fill(frame);
        }
    }

    fn play(&mut self, _frame: &[f32]) {}
}

pub(super) async fn run(
    calls: u32,
    duration: u64,
    codec: Option<Codec>,
    srtp: SrtpPolicy,
    play: Option<std::path::PathBuf>,
    record: bool,
    conference: bool,
) -> Result<(), Failure> {
    if conference && calls < 2 {
        return Err(Failure::usage(
            "bench: --conference needs --calls 2 or more",
        ));
    }
    // The recorder runs as its own process so this process's CPU is the phones' alone.
    let recorder = if record {
        Some(Recorder::start().await?)
    } else {
        None
    };
    if calls == 0 || duration == 0 {
        return Err(Failure::usage(
            "bench: --calls and --duration must be at least 1",
        ));
    }
    if let Some(path) = &play {
        WavSource::open(path).map_err(|e| Failure::usage(format!("--play: {e}")))?;
    }
    let codecs = codec
        .map(|c| vec![c])
        .unwrap_or_else(|| EngineConfig::default().codecs);
    let codec_name = codecs
        .first()
        .map(|c| c.encoding().to_owned())
        .unwrap_or_default();
    let latency = Arc::new(LatencyLog::default());
    let recording_latency = Arc::new(RecordingLatency::default());
    let mut answerer = start(
        codecs.clone(),
        srtp,
        play.clone(),
        Some(latency.clone()),
        None,
    )
    .await?;
    let mut caller = start(
        codecs,
        srtp,
        play,
        Some(latency.clone()),
        Some(recording_latency.clone()),
    )
    .await?;
    let target = answerer
        .handle
        .listeners
        .first()
        .map(|l| l.address)
        .ok_or_else(|| Failure::new("bench: the answering engine has no address"))?;

    let mut dialled = HashSet::new();
    for _ in 0..calls {
        let call = caller
            .dial(outgoing(target), RecordFromStart::No)
            .await
            .map_err(Failure::new)?;
        dialled.insert(call);
    }
    // Both ends must be up before the clock starts.
    let mut connected = HashSet::new();
    let setup_deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while connected.len() < dialled.len() {
        tokio::select! {
            event = caller.handle.events.recv() => match event {
                Some(Event::CallState { call, state: CallState::Connected { .. } }) => {
                    connected.insert(call);
                }
                Some(Event::CallEnded { reason, .. }) => {
                    return Err(Failure::new(format!("bench: a call failed: {}", reason.text)));
                }
                Some(_) => {}
                None => return Err(Failure::new("bench: the calling engine stopped")),
            },
            event = answerer.handle.events.recv() => {
                if let Some(Event::IncomingCall { call, .. }) = event {
                    answerer.answer(call).await.map_err(Failure::new)?;
                }
            }
            () = tokio::time::sleep_until(setup_deadline) => {
                return Err(Failure::new(format!(
                    "bench: only {} of {calls} calls connected in 60 s", connected.len()
                )));
            }
        }
    }
    if conference {
        // Every call joins the first one's conference: the caller mixes them all.
        let mut members = dialled.iter().copied();
        if let Some(first) = members.next() {
            for with in members {
                super::calls::send(&mut caller, Command::Merge { call: first, with })?;
            }
        }
        // A figure for calls that did not merge would not be a conference's.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            tokio::select! {
                event = caller.handle.events.recv() => match event {
                    Some(Event::LocalConference { members })
                        if members.len() == dialled.len() => break,
                    Some(Event::Warning { message, .. }) => {
                        return Err(Failure::new(format!("bench: the merge failed: {message}")));
                    }
                    Some(_) => {}
                    None => return Err(Failure::new("bench: the calling engine stopped")),
                },
                _ = answerer.handle.events.recv() => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(Failure::new("bench: the calls did not merge in 10 s"));
                }
            }
        }
    }
    let mut recording = HashSet::new();
    if let Some(recorder) = &recorder {
        caller.policy.srs = Some(recorder.uri.clone());
        // A conference is one recording session, with a stream per party: it is started
        // on one of its calls and takes the others.
        let to_record: Vec<CallId> = if conference {
            dialled.iter().copied().take(1).collect()
        } else {
            dialled.iter().copied().collect()
        };
        for call in &to_record {
            caller.record(*call).await.map_err(Failure::new)?;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while recording.len() < to_record.len() {
            tokio::select! {
                event = caller.handle.events.recv() => match event {
                    // A conference's other calls report its recording too: one session.
                    Some(Event::Recording { call, state: RecordingState::Recording, .. })
                        if to_record.contains(&call) => {
                        recording.insert(call);
                    }
                    Some(Event::Recording { state: RecordingState::Failed { reason }, .. })
                    | Some(Event::Recording { state: RecordingState::Retrying { reason, .. }, .. }) => {
                        return Err(Failure::new(format!("bench: a recording failed: {reason}")));
                    }
                    Some(_) => {}
                    None => return Err(Failure::new("bench: the calling engine stopped")),
                },
                _ = answerer.handle.events.recv() => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(Failure::new(format!(
                        "bench: only {} of {calls} recordings started in 60 s", recording.len()
                    )));
                }
            }
        }
    }
    // Setting up many calls at once is a burst; the steady state is what is measured. The
    // last statistics before the clock starts are subtracted at the end.
    let mut baseline = HashMap::new();
    let settle_until = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let event = tokio::select! {
            event = caller.handle.events.recv() => event,
            event = answerer.handle.events.recv() => event,
            () = tokio::time::sleep_until(settle_until) => break,
        };
        if let Some(Event::MediaStats { call, stats }) = event {
            baseline.insert(call, stats);
        }
    }
    let cpu_before = process_cpu()?;
    let measure_until = tokio::time::Instant::now() + Duration::from_secs(duration);
    loop {
        tokio::select! {
            _ = caller.handle.events.recv() => {}
            _ = answerer.handle.events.recv() => {}
            () = tokio::time::sleep_until(measure_until) => break,
        }
    }
    let cpu_used = process_cpu()?.saturating_sub(cpu_before);
    for call in &dialled {
        super::calls::send(&mut caller, Command::Hangup { call: *call })?;
    }
    let mut stats = HashMap::new();
    let mut ended = 0;
    let end_deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    // Each side sends a last MediaStats and then CallEnded per call.
    while ended < 2 * dialled.len() {
        let event = tokio::select! {
            event = caller.handle.events.recv() => event,
            event = answerer.handle.events.recv() => event,
            () = tokio::time::sleep_until(end_deadline) => None,
        };
        match event {
            Some(Event::MediaStats { call, stats: s }) => {
                stats.insert(call, s);
            }
            Some(Event::CallEnded { .. }) => ended += 1,
            Some(_) => {}
            None => break,
        }
    }
    caller.shut_down(super::calls::SHUTDOWN_LIMIT).await;
    answerer.shut_down(super::calls::SHUTDOWN_LIMIT).await;

    let recorder_report = match recorder {
        Some(recorder) => Some(recorder.finish(recording.len()).await?),
        None => None,
    };
    let samples = latency.sorted();
    let recorded = recorder_report.is_some();
    let rs_lag = recording_latency.lag.sorted();
    let first_packet = recording_latency.first_packet.sorted();
    let frame_to_packet = |p| {
        percentile(&samples, p).ok_or_else(|| {
            Failure::new("bench: no frame reached the network: no latency to report")
        })
    };
    let (frame_to_packet_us_p50, frame_to_packet_us_p99) =
        (frame_to_packet(50)?, frame_to_packet(99)?);
    let recording_figures = if recorded {
        let lag = |p| {
            percentile(&rs_lag, p).ok_or_else(|| {
                Failure::new("bench: no recording packet left: no recording lag to report")
            })
        };
        let first = |p| {
            percentile(&first_packet, p)
                .map(|us| f64::from(us) / 1000.0)
                .ok_or_else(|| {
                    Failure::new("bench: no recording sent its first packet: no start time")
                })
        };
        Some((lag(50)?, lag(99)?, first(50)?, first(99)?))
    } else {
        None
    };
    let cpu_ms = cpu_used.as_secs_f64() * 1000.0;
    let call_seconds = f64::from(calls) * duration as f64;
    let report = BenchReport {
        calls,
        duration_s: duration,
        codec: codec_name,
        srtp: stats.values().any(|s| s.srtp),
        conference,
        cpu_ms_per_call_s: cpu_ms / call_seconds / 2.0,
        cpu_ms_total: cpu_ms,
        cpu_ms_per_s: cpu_ms / duration as f64,
        packets_sent: stats.values().map(|s| s.packets_sent).sum(),
        packets_lost: stats.values().map(|s| s.packets_lost.max(0)).sum(),
        late_frames: since_baseline(&stats, &baseline, |s| s.late_packets),
        concealed_frames: since_baseline(&stats, &baseline, |s| s.concealed_frames),
        peak_rss_kb: peak_rss_kb()?,
        frame_to_packet_us_p50,
        frame_to_packet_us_p99,
        recorded_calls: recording.len(),
        rs_packets_received: recorder_report.as_ref().map(|r| r.0),
        rs_packets_lost: recorder_report.as_ref().map(|r| r.1),
        rs_lag_p50_us: recording_figures.map(|f| f.0),
        rs_lag_p99_us: recording_figures.map(|f| f.1),
        record_to_first_rs_packet_ms_p50: recording_figures.map(|f| f.2),
        record_to_first_rs_packet_ms_p99: recording_figures.map(|f| f.3),
    };
    match serde_json::to_string(&report) {
        Ok(line) => println!("{line}"),
        Err(error) => return Err(Failure::new(format!("bench: {error}"))),
    }
    Ok(())
}

fn outgoing(target: SocketAddr) -> Outgoing {
    Outgoing {
        target: Uri::sip(Some("bench"), &target.ip().to_string(), Some(target.port())),
        from: NameAddr::new(Uri::sip(Some("bench"), "127.0.0.1", None)),
        destination: Destination::new(Transport::Udp, target),
        route: None,
        credentials: None,
        recording: Default::default(),
        srtp: None,
    }
}

async fn start(
    codecs: Vec<Codec>,
    srtp: SrtpPolicy,
    play: Option<std::path::PathBuf>,
    latency: Option<Arc<LatencyLog>>,
    recording_latency: Option<Arc<RecordingLatency>>,
) -> Result<Phone, Failure> {
    let factory: AudioFactory = Arc::new(move |_call| {
        let source = play
            .as_ref()
            .and_then(|p| WavSource::open(p).ok())
            .map(|s| s.looping(true));
        Box::new(ToneAudio {
            source,
            sine: Sine::new(1000.0, 0.3, SAMPLE_RATE),
        }) as Box<dyn CallAudio>
    });
    let config = crate::phone::live_engine_config(EngineConfig {
        codecs,
        srtp,
        // A bench call is silent on the far side only if something is broken; do not let
        // the no-media guard end it.
        no_media_timeout: None,
        // A load tool: every call it places or receives is wanted.
        admission: crate::engine::AdmissionConfig::unlimited(),
        ..EngineConfig::default()
    });
    let handle = driver::start(
        config,
        DriverConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            audio: Some(factory),
            frame_latency: latency,
            recording_latency,
            ..DriverConfig::default()
        },
    )
    .await
    .map_err(|e| Failure::new(e.to_string()))?;
    Ok(Phone::new(handle, RecordingPolicy::default()))
}

/// A counter's growth over the measured time, summed over calls.
fn since_baseline(
    end: &HashMap<CallId, MediaStats>,
    start: &HashMap<CallId, MediaStats>,
    counter: impl Fn(&MediaStats) -> u64,
) -> u64 {
    end.iter()
        .map(|(call, stats)| {
            counter(stats).saturating_sub(start.get(call).map(&counter).unwrap_or(0))
        })
        .sum()
}

/// The sample at `percent` of `sorted`; None when there are no samples.
fn percentile(sorted: &[u32], percent: usize) -> Option<u32> {
    let index = (sorted.len() * percent / 100).min(sorted.len().checked_sub(1)?);
    sorted.get(index).copied()
}

/// User plus system CPU time of this process, from /proc (Linux).
fn process_cpu() -> Result<Duration, Failure> {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| Failure::new(format!("bench: cannot read /proc/self/stat: {e}")))?;
    cpu_of_stat(&stat).ok_or_else(|| Failure::new(format!("bench: /proc/self/stat reads {stat:?}")))
}

/// utime + stime of a `/proc/PID/stat` line.
fn cpu_of_stat(stat: &str) -> Option<Duration> {
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let (_, after) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    // The kernel reports in clock ticks of 1/100 s on Linux (USER_HZ).
    Some(Duration::from_millis((user + system) * 10))
}

fn peak_rss_kb() -> Result<u64, Failure> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| Failure::new(format!("bench: cannot read /proc/self/status: {e}")))?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Failure::new("bench: /proc/self/status has no VmHWM"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_sorted_samples() {
        let samples: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50), Some(51));
        assert_eq!(percentile(&samples, 99), Some(100));
        assert_eq!(percentile(&[], 99), None, "no samples is no figure, not 0");
    }

    #[test]
    fn a_stat_line_it_cannot_read_is_no_cpu_figure() {
        let line = "42 (verbatim bench) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0";
        assert_eq!(cpu_of_stat(line), Some(Duration::from_millis(3000)));
        assert_eq!(cpu_of_stat("42 (verbatim) S 1"), None);
        assert_eq!(cpu_of_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu_and_memory() {
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(process_cpu().is_ok_and(|cpu| cpu > Duration::ZERO));
        assert!(peak_rss_kb().is_ok_and(|kb| kb > 0));
    }
}
