//! Each call's media I/O: its RTP/RTCP socket pair, the reader tasks that hand datagrams to
//! the engine, and the audio source and sink that the 20 ms tick moves frames through.

use core::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::engine::{CallId, MediaSocket};

/// Where a call's audio comes from and goes to, on the driver side of the engine.
pub trait CallAudio: Send {
    /// Fills the next 20 ms frame to send (48 kHz mono).
    fn capture(&mut self, frame: &mut [f32]);
    /// Takes the 20 ms frame to play.
    fn play(&mut self, frame: &[f32]);
    /// The call ended: flush what was written.
    fn finish(&mut self) {}
    /// A 20 ms step of every call begins (`step` counts them). Audio that several calls
    /// share (the sound card) reads the microphone once per step for all of them, and sums
    /// what they play.
    fn begin_step(&mut self, _step: u64) {}
    /// The step ended: what the calls played goes out.
    fn end_step(&mut self) {}
}

/// Makes the audio for each new call.
pub type AudioFactory = Arc<dyn Fn(CallId) -> Box<dyn CallAudio> + Send + Sync>;

/// Silence in, nothing out.
#[derive(Debug, Default)]
pub struct Silence;

impl CallAudio for Silence {
    fn capture(&mut self, frame: &mut [f32]) {
        frame.fill(0.0);
    }

    fn play(&mut self, _frame: &[f32]) {}
}

pub(super) struct MediaPacketNote {
    pub socket: MediaSocket,
    pub source: SocketAddr,
    pub data: Vec<u8>,
    /// Instead of a packet: an ICMP error said this destination cannot be reached.
    pub unreachable: Option<SocketAddr>,
}

pub(super) struct CallMediaIo {
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
    readers: [tokio::task::JoinHandle<()>; 2],
    pub audio: Box<dyn CallAudio>,
    /// Ticks start once offer/answer has set up the engine's side.
    pub ticking: bool,
    /// While the far end rings and no media flows yet, the caller hears ringback.
    pub ringback: Option<crate::media::tone::Cadence>,
}

impl CallMediaIo {
    /// Binds an even RTP port and the odd RTCP port above it (RFC 3550 11) on `ip`.
    pub async fn bind(
        socket: MediaSocket,
        ip: IpAddr,
        audio: Box<dyn CallAudio>,
        notes: &mpsc::UnboundedSender<MediaPacketNote>,
    ) -> std::io::Result<CallMediaIo> {
        let mut last_error = None;
        for _ in 0..64 {
            let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
            let port = rtp.local_addr()?.port();
            if port % 2 == 1 || port == u16::MAX {
                continue;
            }
            match UdpSocket::bind(SocketAddr::new(ip, port + 1)).await {
                Ok(rtcp) => {
                    if matches!(socket, MediaSocket::Recording { .. }) {
                        // A recorder gone away answers our media with port unreachable.
                        for pair in [&rtp, &rtcp] {
                            if let Err(error) = super::icmp::report_icmp_errors(pair) {
                                tracing::debug!(%error, "no ICMP errors on a recording socket");
                            }
                        }
                    }
                    // tokio knows a new socket's readiness only once asked: without this
                    // the first datagrams (STUN's first request) fail with WouldBlock.
                    for pair in [&rtp, &rtcp] {
                        pair.writable().await?;
                    }
                    let rtp = Arc::new(rtp);
                    let rtcp = Arc::new(rtcp);
                    let readers = [
                        spawn_reader(socket, rtp.clone(), notes.clone()),
                        spawn_reader(socket, rtcp.clone(), notes.clone()),
                    ];
                    return Ok(CallMediaIo {
                        rtp,
                        rtcp,
                        readers,
                        audio,
                        ticking: false,
                        ringback: None,
                    });
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no free RTP/RTCP port pair")))
    }

    pub fn port(&self) -> u16 {
        self.rtp.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn send(&self, destination: SocketAddr, data: &[u8], rtcp: bool) {
        let socket = if rtcp { &self.rtcp } else { &self.rtp };
        if let Err(error) = socket.try_send_to(data, destination) {
            tracing::debug!(%error, %destination, "media send failed");
        }
    }
}

impl Drop for CallMediaIo {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
        self.audio.finish();
    }
}

fn spawn_reader(
    socket_id: MediaSocket,
    socket: Arc<UdpSocket>,
    notes: mpsc::UnboundedSender<MediaPacketNote>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 2048];
        loop {
            match socket.recv_from(&mut buffer).await {
                Ok((len, source)) => {
                    let data = buffer.get(..len).unwrap_or(&[]).to_vec();
                    let note = MediaPacketNote {
                        socket: socket_id,
                        source,
                        data,
                        unreachable: None,
                    };
                    if notes.send(note).is_err() {
                        return;
                    }
                }
                // ICMP errors from a peer that closed its port are not fatal; where they are
                // queued (recording sockets), each unreachable destination is news.
                Err(error) => {
                    if error.kind() == std::io::ErrorKind::ConnectionRefused {
                        for destination in super::icmp::unreachable_destinations(&socket) {
                            let note = MediaPacketNote {
                                socket: socket_id,
                                source: destination,
                                data: Vec::new(),
                                unreachable: Some(destination),
                            };
                            if notes.send(note).is_err() {
                                return;
                            }
                        }
                    }
                    tokio::time::sleep(core::time::Duration::from_millis(5)).await;
                }
            }
        }
    })
}

/// The sound card for a call: frames move through the audio thread's rings. The capture ring
/// runs on the card's clock and the tick on ours; when the card gets ahead by more than a few
/// frames the oldest one is dropped, so the delay it adds stays bounded.
pub struct DeviceCallAudio {
    ports: Arc<std::sync::Mutex<crate::audio::AudioPorts>>,
    volumes: Arc<crate::audio::Volumes>,
    scaled: Vec<f32>,
    /// What every call on the card shares in one step.
    card: Arc<std::sync::Mutex<CardStep>>,
    step: u64,
}

/// One step of the sound card, shared by the calls on it: two calls (call waiting, a
/// conference) each get the same microphone frame instead of every other one, and the
/// speaker gets their sum once instead of a frame from each.
#[derive(Debug, Default)]
pub struct CardStep {
    /// The step whose microphone frame `captured` is.
    captured_in: Option<u64>,
    captured: Vec<f32>,
    /// What the calls played in the step, not yet sent to the speaker.
    mix: Vec<f32>,
    mixed: bool,
    /// Microphone audio that waits through every step is delay only: dropped.
    standing: crate::audio::StandingQueue,
}

/// Frames of capture backlog tolerated before one is dropped at once; a smaller leftover
/// that never drains is trimmed by [`crate::audio::StandingQueue`].
const MAX_CAPTURE_BACKLOG_FRAMES: usize = 3;

/// The sound card's microphone as the clock of the calls' media steps. A step on a timer of
/// our own takes a frame that has waited anywhere from nothing to a whole frame (the two
/// clocks' phase is chance) and that wait is heard as delay; a step run as soon as the card
/// has captured a whole frame sends it at once. The card's clock is also the speaker's, so
/// the far end's frames are played out at the pace they are heard.
#[derive(Clone)]
pub struct CardClock {
    frame_ready: Arc<tokio::sync::Notify>,
    ports: Arc<std::sync::Mutex<crate::audio::AudioPorts>>,
}

impl core::fmt::Debug for CardClock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CardClock")
    }
}

impl CardClock {
    /// The clock of the card whose audio thread signals `frame_ready` and whose capture ring
    /// is in `ports`.
    pub fn new(
        frame_ready: Arc<tokio::sync::Notify>,
        ports: Arc<std::sync::Mutex<crate::audio::AudioPorts>>,
    ) -> CardClock {
        CardClock { frame_ready, ports }
    }

    /// Until the card may have a whole frame.
    pub(super) async fn frame_ready(&self) {
        self.frame_ready.notified().await;
    }

    /// Whole microphone frames waiting to be stepped.
    pub(super) fn frames_waiting(&self) -> usize {
        self.ports.lock().map_or(0, |ports| {
            ports.capture.slots() / crate::media::FRAME_SAMPLES
        })
    }

    /// Media starts (a call, a ringtone): what the microphone captured before is not part
    /// of it, and would only be delay.
    pub(super) fn start_afresh(&self) {
        if let Ok(mut ports) = self.ports.lock() {
            let whole = ports.capture.slots() / crate::media::FRAME_SAMPLES;
            crate::audio::discard(&mut ports.capture, whole * crate::media::FRAME_SAMPLES);
        }
    }
}

impl core::fmt::Debug for DeviceCallAudio {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DeviceCallAudio")
    }
}

impl DeviceCallAudio {
    /// The audio of one call on the card; every call on it shares `card`.
    pub fn new(
        ports: Arc<std::sync::Mutex<crate::audio::AudioPorts>>,
        volumes: Arc<crate::audio::Volumes>,
        card: Arc<std::sync::Mutex<CardStep>>,
    ) -> DeviceCallAudio {
        DeviceCallAudio {
            ports,
            volumes,
            scaled: Vec::new(),
            card,
            step: 0,
        }
    }

    fn read_microphone(&self, frame: &mut [f32], standing: &mut crate::audio::StandingQueue) {
        // The lock is the driver's own (the audio callbacks never take it).
        let Ok(mut ports) = self.ports.lock() else {
            frame.fill(0.0);
            return;
        };
        while ports.capture.slots() > MAX_CAPTURE_BACKLOG_FRAMES * frame.len() {
            if !ports.read_capture(frame) {
                break;
            }
        }
        if !ports.read_capture(frame) {
            frame.fill(0.0);
        }
        let queued = ports.capture.slots();
        let excess = standing.excess(queued, std::time::Instant::now());
        crate::audio::discard(&mut ports.capture, excess);
        self.volumes.apply_input(frame);
    }
}

impl CallAudio for DeviceCallAudio {
    fn begin_step(&mut self, step: u64) {
        self.step = step;
    }

    fn capture(&mut self, frame: &mut [f32]) {
        let Ok(mut card) = self.card.lock() else {
            frame.fill(0.0);
            return;
        };
        if card.captured_in != Some(self.step) || card.captured.len() != frame.len() {
            self.read_microphone(frame, &mut card.standing);
            card.captured.clear();
            card.captured.extend_from_slice(frame);
            card.captured_in = Some(self.step);
        } else {
            frame.copy_from_slice(&card.captured);
        }
    }

    fn play(&mut self, frame: &[f32]) {
        if let Ok(mut card) = self.card.lock() {
            // Sized once: the frames are all one length.
            card.mix.resize(frame.len(), 0.0);
            crate::media::mix_into(&mut card.mix, frame);
            card.mixed = true;
        }
    }

    fn end_step(&mut self) {
        let Ok(mut card) = self.card.lock() else {
            return;
        };
        if !std::mem::replace(&mut card.mixed, false) {
            return;
        }
        // Reused step to step: no allocation after the first.
        self.scaled.clear();
        self.scaled.extend_from_slice(&card.mix);
        card.mix.fill(0.0);
        drop(card);
        self.volumes.apply_output(&mut self.scaled);
        if let Ok(mut ports) = self.ports.lock() {
            // A full ring means the card is behind: dropping this frame keeps the delay short.
            let _ = ports.write_playback(&self.scaled);
        }
    }
}

/// The ringing device's ring: ringtones for incoming calls go there, so they can sound on a
/// loudspeaker while calls use a headset.
#[derive(Clone)]
pub struct Ringer(Arc<std::sync::Mutex<rtrb::Producer<f32>>>);

impl Ringer {
    pub fn new(ring: rtrb::Producer<f32>) -> Ringer {
        Ringer(Arc::new(std::sync::Mutex::new(ring)))
    }

    /// Queues a frame if there is room; a ringtone can skip a frame unnoticed.
    pub fn play(&self, frame: &[f32]) {
        let Ok(mut ring) = self.0.lock() else {
            return;
        };
        if ring.slots() < frame.len() {
            return;
        }
        if let Ok(chunk) = ring.write_chunk_uninit(frame.len()) {
            chunk.fill_from_iter(frame.iter().copied());
        }
    }
}

impl core::fmt::Debug for Ringer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ringer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::AudioPorts;
    use rtrb::{Consumer, Producer};

    const FRAME: usize = crate::media::FRAME_SAMPLES;

    /// Two calls' audio on one card, and the card's own ends of its rings.
    fn two_calls_on_a_card() -> (
        DeviceCallAudio,
        DeviceCallAudio,
        Producer<f32>,
        Consumer<f32>,
    ) {
        let (ports, card_side) = AudioPorts::pair();
        let ports = Arc::new(std::sync::Mutex::new(ports));
        let volumes = Arc::new(crate::audio::Volumes::default());
        let card = Arc::new(std::sync::Mutex::new(CardStep::default()));
        let call = || DeviceCallAudio::new(ports.clone(), volumes.clone(), card.clone());
        (call(), call(), card_side.capture, card_side.playback)
    }

    /// The card's clock counts whole captured frames, and a fresh start keeps only the
    /// frame being captured: nothing from before the call is sent as part of it.
    #[test]
    fn the_card_clock_counts_whole_frames_and_starts_afresh() {
        let (ports, card_side) = AudioPorts::pair();
        let ports = Arc::new(std::sync::Mutex::new(ports));
        let clock = CardClock::new(Arc::new(tokio::sync::Notify::new()), ports.clone());
        let mut microphone = card_side.capture;
        let push = |microphone: &mut Producer<f32>, samples: usize, value: f32| {
            for _ in 0..samples {
                microphone.push(value).unwrap();
            }
        };
        push(&mut microphone, FRAME / 2, 0.1);
        assert_eq!(clock.frames_waiting(), 0);
        push(&mut microphone, FRAME * 2, 0.2);
        assert_eq!(clock.frames_waiting(), 2);
        clock.start_afresh();
        assert_eq!(clock.frames_waiting(), 0);
        // Half a frame was left: the newest samples, the frame now being captured.
        push(&mut microphone, FRAME / 2, 0.3);
        let mut frame = [0.0f32; FRAME];
        assert!(ports.lock().unwrap().read_capture(&mut frame));
        assert!((frame[0] - 0.2).abs() < 1e-6 && (frame[FRAME - 1] - 0.3).abs() < 1e-6);
    }

    #[test]
    fn calls_on_one_card_share_each_steps_microphone_frame_and_sum_into_one_speaker_frame() {
        let (mut first, mut second, mut microphone, mut speaker) = two_calls_on_a_card();
        for step in 1..=3u64 {
            for n in 0..FRAME {
                let sample = step as f32 / 10.0 + n as f32 * 1e-6;
                microphone.push(sample).unwrap();
            }
            for call in [&mut first, &mut second] {
                call.begin_step(step);
            }
            let (mut a, mut b) = ([0.0f32; FRAME], [0.0f32; FRAME]);
            first.capture(&mut a);
            second.capture(&mut b);
            assert_eq!(a, b, "step {step}: both calls get the same frame");
            assert!(
                (a[0] - step as f32 / 10.0).abs() < 1e-6,
                "and the step's own"
            );
            first.play(&[0.25; FRAME]);
            second.play(&[0.5; FRAME]);
            first.end_step();
            second.end_step();
            let played: Vec<f32> = std::iter::from_fn(|| speaker.pop().ok()).collect();
            assert_eq!(played.len(), FRAME, "step {step}: one frame to the speaker");
            assert!(played.iter().all(|s| (*s - 0.75).abs() < 1e-6), "their sum");
        }
    }
}
