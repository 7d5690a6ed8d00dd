//! One call's audio stream: 20 ms frames in and out on one side, RTP/RTCP packets on the
//! other, with the codec, jitter buffer, DTMF, statistics and (when negotiated) SRTP between.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::VecDeque;
use std::time::Instant;

use super::codec::{CodecError, CodecKind, Decoder, Encoder};
use super::dtmf::{DtmfError, DtmfReceiver, DtmfSender};
use super::jitter::{JitterBuffer, JitterConfig, Playout};
use super::rtcp::{self, RtcpState, SenderInfo};
use super::rtp::{ReceiveStats, RtpPacket, RtpSender, is_rtcp};
use super::srtp::SrtpSession;
use super::{FRAME_SAMPLES, SAMPLE_RATE};

/// What the session was told by offer/answer, plus the random starting points of our stream.
#[derive(Debug)]
pub struct MediaConfig {
    pub codec: CodecKind,
    /// The peer's `a=fmtp` for the codec: what it can receive.
    pub peer_fmtp: Option<String>,
    pub payload_type: u8,
    /// The telephone-event payload type and its clock rate, when negotiated.
    pub telephone_event: Option<(u8, u32)>,
    pub remote_rtp: SocketAddr,
    pub remote_rtcp: SocketAddr,
    /// We may send (the negotiated direction includes send and we are not on hold).
    pub send: bool,
    /// The peer may send to us.
    pub receive: bool,
    pub ssrc: u32,
    pub initial_sequence: u16,
    pub initial_timestamp: u32,
    pub cname: String,
    /// A random value that spreads RTCP report times.
    pub rtcp_seed: u32,
    pub srtp: Option<SrtpSession>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOutput {
    /// A packet to send: RTP to the peer's RTP address, RTCP to its RTCP address.
    Packet {
        destination: SocketAddr,
        data: Vec<u8>,
        rtcp: bool,
    },
    /// A DTMF digit the peer sent (RFC 4733).
    Dtmf(char),
    /// A copy of a media payload for the call's recording (only while tapping): what we
    /// sent, or what the peer sent us, in the clear.
    Tap(TappedPacket),
}

/// Which side of the call a tapped packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapSide {
    /// What the local user says (RFC 7866 convention: label 1).
    Local,
    /// What the far end says (label 2).
    Remote,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TappedPacket {
    pub side: TapSide,
    pub payload_type: u8,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// Figures for the UI and for `--stats`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MediaStats {
    pub codec: &'static str,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_lost: i64,
    /// Loss seen by us, percent of expected packets.
    pub loss_percent: f64,
    pub jitter_ms: f64,
    pub rtt_ms: Option<f64>,
    pub late_packets: u64,
    pub concealed_frames: u64,
    pub srtp: bool,
    pub srtp_failures: u64,
}

pub struct MediaSession {
    config: MediaConfig,
    encoder: Encoder,
    decoder: Decoder,
    sender: RtpSender,
    /// Timestamp of the next frame we send; advances every tick, sending or not, so the
    /// timeline keeps running across hold and mute (RFC 3550 5.1).
    next_timestamp: u32,
    talkspurt_start: bool,
    jitter: JitterBuffer<Vec<u8>>,
    receive_stats: Option<ReceiveStats>,
    rtcp: RtcpState,
    next_rtcp_at: Option<Instant>,
    rtcp_random: u32,
    dtmf_sender: Option<DtmfSender>,
    dtmf_receiver: DtmfReceiver,
    dtmf_timestamp: u32,
    muted: bool,
    /// Local hold: nothing is sent from the moment the user holds, before the re-INVITE
    /// completes.
    sending_paused: bool,
    packets_sent: u64,
    sent_since_report: bool,
    srtp_failures: u64,
    latched: bool,
    /// A recording wants copies of both directions.
    tapping: bool,
    scratch: Vec<u8>,
    packet: Vec<u8>,
    outputs: VecDeque<MediaOutput>,
    epoch: Instant,
    /// Wall-clock time at `epoch` since the Unix epoch, for RTCP's NTP timestamps.
    wall_at_epoch: Duration,
}

impl core::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MediaSession")
            .field("codec", &self.config.codec)
            .field("remote_rtp", &self.config.remote_rtp)
            .field("send", &self.config.send)
            .field("receive", &self.config.receive)
            .finish()
    }
}

impl MediaSession {
    pub fn new(config: MediaConfig, now: Instant, wall_now: Duration) -> Result<Self, CodecError> {
        let mut encoder = Encoder::new(config.codec)?;
        if let Some(fmtp) = &config.peer_fmtp {
            encoder.apply_peer_fmtp(fmtp);
        }
        let decoder = Decoder::new(config.codec)?;
        let sender = RtpSender::new(
            config.ssrc,
            config.initial_sequence,
            config.initial_timestamp,
        );
        let jitter = JitterBuffer::new(JitterConfig {
            clock_rate: config.codec.clock_rate(),
            ..JitterConfig::default()
        });
        let dtmf_sender = config
            .telephone_event
            .map(|(_, rate)| DtmfSender::new(rate, 20));
        Ok(MediaSession {
            encoder,
            decoder,
            sender,
            next_timestamp: config.initial_timestamp,
            talkspurt_start: true,
            jitter,
            receive_stats: None,
            rtcp: RtcpState::new(config.ssrc),
            next_rtcp_at: Some(now + rtcp::report_interval(config.rtcp_seed, true)),
            rtcp_random: config.rtcp_seed | 1,
            dtmf_sender,
            dtmf_receiver: DtmfReceiver::new(),
            dtmf_timestamp: 0,
            muted: false,
            sending_paused: false,
            packets_sent: 0,
            sent_since_report: false,
            srtp_failures: 0,
            latched: false,
            tapping: false,
            scratch: Vec::with_capacity(1500),
            packet: Vec::with_capacity(1500),
            outputs: VecDeque::new(),
            epoch: now,
            wall_at_epoch: wall_now,
            config,
        })
    }

    /// A new offer/answer outcome for the same call. The stream keeps its SSRC, sequence and
    /// timeline; the codec changes only if the negotiation changed it.
    pub fn update(&mut self, mut config: MediaConfig) -> Result<(), CodecError> {
        // Only Opus reads the peer's fmtp; rebuilding another encoder mid-stream would reset
        // state (G.722's ADPCM) that the far end's decoder keeps.
        let fmtp_matters = config.codec == CodecKind::Opus;
        if config.codec != self.config.codec
            || (fmtp_matters && config.peer_fmtp != self.config.peer_fmtp)
        {
            self.encoder = Encoder::new(config.codec)?;
            if let Some(fmtp) = &config.peer_fmtp {
                self.encoder.apply_peer_fmtp(fmtp);
            }
        }
        if config.codec != self.config.codec {
            self.decoder = Decoder::new(config.codec)?;
            self.jitter = JitterBuffer::new(JitterConfig {
                clock_rate: config.codec.clock_rate(),
                ..JitterConfig::default()
            });
        }
        // Same keys after a re-offer: keep the contexts (rollover counter, replay window).
        if config.srtp.is_none() {
            config.srtp = self.config.srtp.take();
        }
        if config.send && !self.config.send {
            self.talkspurt_start = true;
        }
        config.ssrc = self.config.ssrc;
        self.dtmf_sender = config
            .telephone_event
            .map(|(_, rate)| DtmfSender::new(rate, 20));
        self.latched = false;
        self.config = config;
        Ok(())
    }

    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    pub fn is_muted(&self) -> bool {
        self.muted
    }

    /// Whether the microphone's audio goes to the far end now (not muted, on hold or
    /// receive-only): what a recording of the local side should hear.
    pub fn sends_voice(&self) -> bool {
        self.config.send && !self.sending_paused && !self.muted
    }

    /// Starts or stops handing copies of every media payload to the recording.
    pub fn set_tapping(&mut self, tapping: bool) {
        self.tapping = tapping;
    }

    pub fn codec(&self) -> CodecKind {
        self.config.codec
    }

    pub fn telephone_event(&self) -> Option<(u8, u32)> {
        self.config.telephone_event
    }

    pub fn payload_type(&self) -> u8 {
        self.config.payload_type
    }

    pub fn set_sending_paused(&mut self, paused: bool) {
        if self.sending_paused && !paused {
            self.talkspurt_start = true;
        }
        self.sending_paused = paused;
    }

    pub fn send_dtmf(&mut self, digits: &str) -> Result<(), MediaError> {
        match self.dtmf_sender.as_mut() {
            Some(sender) => sender.queue(digits).map_err(MediaError::Dtmf),
            None => Err(MediaError::NoTelephoneEvent),
        }
    }

    pub fn poll_output(&mut self) -> Option<MediaOutput> {
        self.outputs.pop_front()
    }

    /// One 20 ms tick: sends the captured frame (or a DTMF packet in its place) and writes
    /// the frame to play into `playback`.
    pub fn tick(&mut self, now: Instant, captured: &[f32], playback: &mut [f32]) {
        self.tick_with_overlay(now, captured, None, playback);
    }

    /// [`MediaSession::tick`], with `overlay` added to what is sent whether or not the
    /// microphone is muted (the recording notice).
    pub fn tick_with_overlay(
        &mut self,
        now: Instant,
        captured: &[f32],
        overlay: Option<&[f32]>,
        playback: &mut [f32],
    ) {
        self.send_frame(captured, overlay);
        self.play_frame(now, playback);
        if self.next_rtcp_at.is_some_and(|at| now >= at) {
            self.send_report(now);
        }
    }

    fn send_frame(&mut self, captured: &[f32], overlay: Option<&[f32]>) {
        let timestamp = self.next_timestamp;
        self.next_timestamp = self
            .next_timestamp
            .wrapping_add(self.config.codec.timestamp_step());
        if !self.config.send || self.sending_paused {
            self.talkspurt_start = true;
            return;
        }
        if let Some(packet) = self.dtmf_sender.as_mut().and_then(DtmfSender::tick) {
            if packet.starts_event {
                self.dtmf_timestamp = timestamp;
            }
            let Some((payload_type, _)) = self.config.telephone_event else {
                return;
            };
            let dtmf_timestamp = self.dtmf_timestamp;
            self.emit_rtp(
                payload_type,
                dtmf_timestamp,
                packet.marker,
                packet.payload.as_ref(),
            );
            return;
        }
        self.scratch.clear();
        let mut mixed = [0.0f32; FRAME_SAMPLES];
        if !self.muted {
            super::mix_into(&mut mixed, captured);
        }
        if let Some(overlay) = overlay {
            super::mix_into(&mut mixed, overlay);
        }
        let encoded = self.encoder.encode(&mixed, &mut self.scratch);
        if let Err(error) = encoded {
            tracing::warn!(%error, "frame not encoded");
            return;
        }
        let marker = std::mem::take(&mut self.talkspurt_start);
        let payload = std::mem::take(&mut self.scratch);
        self.emit_rtp(self.config.payload_type, timestamp, marker, &payload);
        self.scratch = payload;
    }

    fn emit_rtp(&mut self, payload_type: u8, timestamp: u32, marker: bool, payload: &[u8]) {
        if self
            .sender
            .build(payload_type, timestamp, marker, payload, &mut self.packet)
            .is_err()
        {
            return;
        }
        let data = match self.config.srtp.as_mut() {
            Some(srtp) => match srtp.protect_rtp(&self.packet) {
                Ok(protected) => protected,
                Err(error) => {
                    tracing::warn!(%error, "SRTP protect failed");
                    return;
                }
            },
            None => self.packet.clone(),
        };
        self.packets_sent += 1;
        self.sent_since_report = true;
        self.outputs.push_back(MediaOutput::Packet {
            destination: self.config.remote_rtp,
            data,
            rtcp: false,
        });
        if self.tapping {
            self.outputs.push_back(MediaOutput::Tap(TappedPacket {
                side: TapSide::Local,
                payload_type,
                timestamp,
                marker,
                payload: payload.to_vec(),
            }));
        }
    }

    fn play_frame(&mut self, now: Instant, playback: &mut [f32]) {
        let result = match self.jitter.pop(now) {
            Playout::Frame(payload) => self.decoder.decode(&payload, playback),
            Playout::Lost { next } => {
                let next = next.cloned();
                self.decoder.conceal(next.as_deref(), playback)
            }
            Playout::Stretch => self.decoder.conceal(None, playback),
            Playout::Empty => {
                playback.fill(0.0);
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "frame not decoded");
            playback.fill(0.0);
        }
    }

    /// A datagram that arrived on the call's RTP or RTCP socket from `source`.
    pub fn on_packet(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        if is_rtcp(data) {
            self.on_rtcp(now, data);
            return;
        }
        let plain;
        let bytes = match self.config.srtp.as_mut() {
            Some(srtp) => match srtp.unprotect_rtp(data) {
                Ok(p) => {
                    plain = p;
                    plain.as_slice()
                }
                Err(_) => {
                    // Forged, replayed or for another session: never played, only counted.
                    self.srtp_failures += 1;
                    return;
                }
            },
            None => data,
        };
        let Ok(packet) = RtpPacket::parse(bytes) else {
            return;
        };
        // Symmetric RTP (RFC 4961): a peer behind NAT is reached where its packets come from.
        if !self.latched && source != self.config.remote_rtp {
            tracing::debug!(from = %self.config.remote_rtp, to = %source, "latching RTP to the source address");
            self.config.remote_rtp = source;
        }
        self.latched = true;
        if !self.config.receive {
            return;
        }
        // Statistics cover the whole stream, telephone-events included: they share its
        // sequence numbers, so leaving them out would look like loss.
        let stats = self
            .receive_stats
            .get_or_insert_with(|| ReceiveStats::new(packet.ssrc));
        if stats.ssrc() != packet.ssrc {
            *stats = ReceiveStats::new(packet.ssrc);
            self.dtmf_receiver.reset();
        }
        let arrival = now.saturating_duration_since(self.epoch);
        let rate = u128::from(self.config.codec.clock_rate());
        let arrival_rtp = (arrival.as_micros() * rate / 1_000_000) as u32;
        let is_event = self
            .config
            .telephone_event
            .is_some_and(|(pt, _)| pt == packet.payload_type);
        // Events hold one timestamp across many packets, which would read as jitter.
        if !is_event {
            stats.update(packet.sequence, packet.timestamp, arrival_rtp);
        } else {
            stats.update_sequence_only(packet.sequence);
        }
        if self.tapping {
            self.outputs.push_back(MediaOutput::Tap(TappedPacket {
                side: TapSide::Remote,
                payload_type: packet.payload_type,
                timestamp: packet.timestamp,
                marker: packet.marker,
                payload: packet.payload.to_vec(),
            }));
        }
        if is_event {
            match self
                .dtmf_receiver
                .on_packet(packet.timestamp, packet.payload)
            {
                Ok(Some(digit)) => self.outputs.push_back(MediaOutput::Dtmf(digit)),
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "bad telephone-event"),
            }
            return;
        }
        if packet.payload_type != self.config.payload_type {
            return; // comfort noise and unnegotiated formats are not played
        }
        self.jitter.push(
            now,
            packet.sequence,
            packet.timestamp,
            packet.payload.to_vec(),
        );
    }

    fn on_rtcp(&mut self, now: Instant, data: &[u8]) {
        let plain;
        let bytes = match self.config.srtp.as_mut() {
            Some(srtp) => match srtp.unprotect_rtcp(data) {
                Ok(p) => {
                    plain = p;
                    plain.as_slice()
                }
                Err(_) => {
                    self.srtp_failures += 1;
                    return;
                }
            },
            None => data,
        };
        if let Ok(packets) = rtcp::parse(bytes) {
            let ntp = rtcp::ntp_from_duration(self.wall(now));
            self.rtcp.on_receive(&packets, now, ntp);
        }
    }

    /// The wall clock at `now` counted from the NTP epoch (1900), as RTCP carries it: the
    /// engine's wall clock counts from the Unix epoch.
    fn wall(&self, now: Instant) -> Duration {
        rtcp::NTP_UNIX_OFFSET + self.wall_at_epoch + now.saturating_duration_since(self.epoch)
    }

    fn send_report(&mut self, now: Instant) {
        self.rtcp_random = xorshift(self.rtcp_random);
        self.next_rtcp_at = Some(now + rtcp::report_interval(self.rtcp_random, false));
        let sender = self.sent_since_report.then(|| SenderInfo {
            ntp_time: rtcp::ntp_from_duration(self.wall(now)),
            rtp_timestamp: self.next_timestamp,
            packet_count: self.sender.packets_sent(),
            octet_count: self.sender.octets_sent(),
        });
        self.sent_since_report = false;
        let blocks = match self.receive_stats.as_mut() {
            Some(stats) => vec![self.rtcp.report_block(stats, now)],
            None => Vec::new(),
        };
        let packets = rtcp::compound_report(self.config.ssrc, sender, blocks, &self.config.cname);
        let mut data = Vec::with_capacity(128);
        if rtcp::write(&packets, &mut data).is_err() {
            return;
        }
        let data = match self.config.srtp.as_mut() {
            Some(srtp) => match srtp.protect_rtcp(&data) {
                Ok(p) => p,
                Err(_) => return,
            },
            None => data,
        };
        self.outputs.push_back(MediaOutput::Packet {
            destination: self.config.remote_rtcp,
            data,
            rtcp: true,
        });
    }

    pub fn stats(&self) -> MediaStats {
        let jitter = self.jitter.stats();
        let (received, lost, jitter_units, expected) = match &self.receive_stats {
            Some(s) => {
                let received = s.packets_received();
                let lost = i64::from(s.cumulative_lost());
                (received, lost, s.jitter(), received as i64 + lost)
            }
            None => (0, 0, 0, 0),
        };
        let loss_percent = if expected > 0 {
            (lost.max(0) as f64) * 100.0 / expected as f64
        } else {
            0.0
        };
        MediaStats {
            codec: self.config.codec.name(),
            packets_sent: self.packets_sent,
            packets_received: received,
            packets_lost: lost,
            loss_percent,
            jitter_ms: f64::from(jitter_units) * 1000.0 / f64::from(self.config.codec.clock_rate()),
            rtt_ms: self.rtcp.rtt().map(|d| d.as_secs_f64() * 1000.0),
            late_packets: jitter.late,
            concealed_frames: jitter.lost,
            srtp: self.config.srtp.is_some(),
            srtp_failures: self.srtp_failures,
        }
    }

    pub fn remote_rtp(&self) -> SocketAddr {
        self.config.remote_rtp
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the call has no telephone-event payload negotiated, so it cannot send DTMF")]
    NoTelephoneEvent,
    #[error(transparent)]
    Dtmf(DtmfError),
}

fn xorshift(mut x: u32) -> u32 {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    x
}

/// How many samples one tick moves at the engine's rate.
pub const TICK_SAMPLES: usize = FRAME_SAMPLES;
/// The tick length.
pub const TICK: Duration = Duration::from_millis(20);
const _: () = assert!(SAMPLE_RATE as usize / 50 == TICK_SAMPLES);
