//! Engine behaviour between simulated peers, in virtual time.

use core::time::Duration;

use super::*;
use crate::media::codec::CodecKind;
use crate::sim::{LinkConfig, NodeId, SimNet};
use crate::sip::transport::Transport;

mod admission;
mod calls;
mod conference;
mod conference_recording;
mod conference_watch;
mod media;
mod recorder_check;
mod recorder_initiated;
mod recorder_liveness;
mod recording;
mod recording_dialog;
mod recording_offer;
mod registration;
mod scripted;
mod secure_signalling;
mod session_ids;
mod session_timers;
mod transfer;

fn config(seed: u64) -> EngineConfig {
    EngineConfig {
        seed,
        ..EngineConfig::default()
    }
}

fn dial(net: &mut SimNet, from: NodeId, to: NodeId, transport: Transport) -> CallId {
    dial_with_srtp(net, from, to, transport, None)
}

/// As [`dial`], with the call's own SRTP policy (an account's).
fn dial_with_srtp(
    net: &mut SimNet,
    from: NodeId,
    to: NodeId,
    transport: Transport,
    srtp: Option<crate::media::srtp::SrtpPolicy>,
) -> CallId {
    dial_on_account(net, from, to, transport, srtp, None)
}

/// As [`dial`], with the call's own SRTP policy and notice (an account's).
fn dial_on_account(
    net: &mut SimNet,
    from: NodeId,
    to: NodeId,
    transport: Transport,
    srtp: Option<crate::media::srtp::SrtpPolicy>,
    notice: Option<crate::recording::notice::NoticeConfig>,
) -> CallId {
    let destination = net.address(to, transport).unwrap();
    let target = Uri::parse(&format!("sip:bob@{}", destination.address)).unwrap();
    let call = CallId(713);
    net.command(
        from,
        Command::Dial {
            call,
            request: DialRequest {
                target,
                from: NameAddr::parse("\"Alice\" <sip:alice@127.0.0.1>").unwrap(),
                destination,
                route: None,
                credentials: None,
                media_port: 40000,
                record: None,
                srtp,
                notice,
            },
        },
    );
    call
}

/// A notice with only a one-second 500 Hz "announcement", and no cues.
pub(super) fn announcement_only() -> crate::recording::notice::NoticeConfig {
    let announcement: std::sync::Arc<[f32]> = (0..crate::media::SAMPLE_RATE as usize)
        .map(|i| {
            0.3 * (core::f32::consts::TAU * 500.0 * i as f32 / crate::media::SAMPLE_RATE as f32)
                .sin()
        })
        .collect();
    crate::recording::notice::NoticeConfig {
        announcement: Some(announcement),
        tone: None,
        skip_for_record_aware: false,
        local_cues: false,
    }
}

fn incoming(net: &SimNet, node: NodeId) -> Option<CallId> {
    net.events(node).iter().find_map(|e| match e {
        Event::IncomingCall { call, .. } => Some(*call),
        _ => None,
    })
}

fn ended(net: &SimNet, node: NodeId) -> Option<EndReason> {
    net.events(node).iter().find_map(|e| match e {
        Event::CallEnded { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

fn connected(net: &SimNet, node: NodeId) -> bool {
    net.events(node).iter().any(|e| {
        matches!(
            e,
            Event::CallState {
                state: CallState::Connected { .. },
                ..
            }
        )
    })
}

fn answer_when_ringing(net: &mut SimNet, node: NodeId) -> CallId {
    assert!(net.run_until(Duration::from_secs(5), |n| incoming(n, node).is_some()));
    let call = incoming(net, node).unwrap();
    net.command(
        node,
        Command::Answer {
            call,
            media_port: 41000,
            record: None,
        },
    );
    call
}

fn establish(net: &mut SimNet, transport: Transport) -> (CallId, CallId) {
    let a = dial(net, 0, 1, transport);
    let b = answer_when_ringing(net, 1);
    assert!(net.run_until(Duration::from_secs(5), |n| connected(n, 0)
        && connected(n, 1)));
    (a, b)
}

fn two_phones(link: LinkConfig) -> SimNet {
    let mut net = SimNet::new(1, link);
    net.add_node(config(10));
    net.add_node(config(20));
    net
}

/// Builds a request inside the call's dialog as the callee (node 1) would send it, from what
/// the trace shows of the INVITE and its 200.
fn callee_request(net: &SimNet, method: &str, cseq: u32, body: &str) -> Vec<u8> {
    let invite = net
        .trace
        .iter()
        .map(|(_, _, _, d)| Message::parse(d).unwrap())
        .find(|m| m.method() == Some(&Method::Invite))
        .unwrap();
    let ok = net
        .trace
        .iter()
        .map(|(_, _, _, d)| Message::parse(d).unwrap())
        .find(|m| m.status() == Some(200))
        .unwrap();
    let caller_contact = invite.contacts().unwrap()[0].uri.to_string();
    let content = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_owned()
    };
    format!(
        "{method} {caller_contact} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK{method}{cseq}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:bob@127.0.0.2:5060>\r\n{content}Content-Length: {}\r\n\r\n{body}",
        ok.headers.get("To").unwrap(),
        ok.headers.get("From").unwrap(),
        ok.call_id().unwrap(),
        body.len()
    )
    .into_bytes()
}

fn callee_source(net: &SimNet) -> Destination {
    net.address(1, Transport::Udp).unwrap()
}

/// A recording request towards the simulated recorder `recorder` (TCP, as the CLI does).
fn to_recorder(net: &SimNet, recorder: NodeId) -> RecordingRequest {
    recording_request(net.recorder_address(recorder, Transport::Tcp).unwrap())
}

/// A recording to `primary` that fails over to `secondary`.
fn to_recorders(net: &SimNet, primary: NodeId, secondary: NodeId) -> RecordingRequest {
    let mut request = to_recorder(net, primary);
    let second = to_recorder(net, secondary);
    request.secondary = Some((second.srs, second.destination));
    request
}

/// An optional, separate-streams, plain recording to the recorder at `destination` (TCP).
fn recording_request(destination: Destination) -> RecordingRequest {
    RecordingRequest {
        srs: Uri::parse(&format!("sip:srs@{};transport=tcp", destination.address)).unwrap(),
        destination,
        media_ports: vec![42000, 42002],
        secondary: None,
        mandatory: false,
        mode: RecordingMode::Separate,
        srtp: false,
        credentials: None,
    }
}

/// Node 0 starts recording `call` as `request` says.
fn start_recording(net: &mut SimNet, call: CallId, request: RecordingRequest) {
    net.command(
        0,
        Command::StartRecording {
            call,
            recording: RecordingId(711),
            request,
        },
    );
}

fn recording_states(net: &SimNet, node: NodeId) -> Vec<RecordingState> {
    net.events(node)
        .iter()
        .filter_map(|e| match e {
            Event::Recording { state, .. } => Some(state.clone()),
            _ => None,
        })
        .collect()
}

fn amplitude_at(audio: &[f32], from_s: f64, to_s: f64, frequency: f32) -> f32 {
    let rate = crate::media::SAMPLE_RATE;
    let a = (from_s * f64::from(rate)) as usize;
    let b = ((to_s * f64::from(rate)) as usize).min(audio.len());
    crate::media::tone::goertzel_amplitude(audio.get(a..b).unwrap_or(&[]), rate, frequency)
}

/// Records an Opus call (1 kHz from us, 440 Hz from the far end) to a recorder with the given
/// codec preference and mode; returns the net and our call after hang-up.
fn recorded_call(codecs: Vec<CodecKind>, mode: RecordingMode) -> (SimNet, NodeId) {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(codecs);
    let (a, _) = talk(&mut net);
    let mut request = to_recorder(&net, recorder);
    request.mode = mode;
    start_recording(&mut net, a, request);
    net.run_for(Duration::from_secs(3));
    net.command(0, Command::Hangup { call: a });
    net.run_for(Duration::from_secs(2));
    (net, recorder)
}

fn dial_recorded(net: &mut SimNet, recorder: NodeId, mandatory: bool) -> CallId {
    let destination = net.address(1, Transport::Udp).unwrap();
    let mut request = to_recorder(net, recorder);
    request.mandatory = mandatory;
    let call = CallId(714);
    net.command(
        0,
        Command::Dial {
            call,
            request: DialRequest {
                target: Uri::parse(&format!("sip:bob@{}", destination.address)).unwrap(),
                from: NameAddr::parse("\"Alice\" <sip:alice@127.0.0.1>").unwrap(),
                destination,
                route: None,
                credentials: None,
                media_port: 40000,
                record: Some(Box::new(RecordingStart {
                    recording: RecordingId(712),
                    request,
                })),
                srtp: None,
                notice: None,
            },
        },
    );
    call
}

/// Starts recording an established call (1 kHz / 440 Hz) to `recorder`.
fn record_call(net: &mut SimNet, recorder: NodeId, mandatory: bool) -> (CallId, CallId) {
    let (a, b) = establish(net, Transport::Udp);
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    let mut request = to_recorder(net, recorder);
    request.mandatory = mandatory;
    start_recording(net, a, request);
    (a, b)
}

/// The responses the phone sent to `to`, as text.
fn responses_to(net: &SimNet, to: core::net::SocketAddr) -> Vec<String> {
    net.trace
        .iter()
        .filter(|(_, _, dest, data)| dest.address == to && data.starts_with(b"SIP/2.0"))
        .map(|(_, _, _, data)| String::from_utf8_lossy(data).into_owned())
        .collect()
}

/// A calls B over UDP; A sends 1 kHz, B sends 440 Hz; returns both call ids.
fn talk(net: &mut SimNet) -> (CallId, CallId) {
    let (a, b) = establish(net, Transport::Udp);
    net.attach_media(0, a, Some(1000.0));
    net.attach_media(1, b, Some(440.0));
    (a, b)
}
