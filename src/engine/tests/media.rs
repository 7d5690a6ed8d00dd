//! The call's audio end to end: codecs, SRTP, the recording notice, DTMF, hold and mute.

use super::*;
use crate::media::srtp::SrtpPolicy;
use crate::media::tone::{goertzel_amplitude, rms};
use crate::media::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::sdp::Codec;

fn phones(link: LinkConfig, codec: Codec, srtp: SrtpPolicy) -> SimNet {
    let mut net = SimNet::new(7, link);
    for seed in [40, 41] {
        net.add_node(EngineConfig {
            codecs: vec![codec],
            srtp,
            // Deterministic keys keep the run reproducible; real use takes the OS CSPRNG.
            key_source: KeySource::new(move |buffer: &mut [u8]| {
                for (i, b) in buffer.iter_mut().enumerate() {
                    *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
                }
            }),
            ..config(seed.into())
        });
    }
    net
}

fn tail(samples: &[f32], seconds: f32) -> &[f32] {
    let n = (seconds * SAMPLE_RATE as f32) as usize;
    &samples[samples.len().saturating_sub(n)..]
}

#[test]
fn every_codec_carries_audio_both_ways() {
    for codec in [
        Codec::Pcmu,
        Codec::Pcma,
        Codec::G722,
        Codec::Opus { inband_fec: true },
    ] {
        let mut net = phones(LinkConfig::default(), codec, SrtpPolicy::Off);
        let (a, b) = talk(&mut net);
        net.run_for(Duration::from_secs(2));
        let at_a = tail(net.heard(0, a), 1.0);
        let at_b = tail(net.heard(1, b), 1.0);
        assert!(
            goertzel_amplitude(at_a, SAMPLE_RATE, 440.0) > 0.3,
            "{codec:?}: A hears B"
        );
        assert!(
            goertzel_amplitude(at_a, SAMPLE_RATE, 1000.0) < 0.05,
            "{codec:?}: no echo of A"
        );
        assert!(
            goertzel_amplitude(at_b, SAMPLE_RATE, 1000.0) > 0.3,
            "{codec:?}: B hears A"
        );
    }
}

#[test]
fn srtp_mandatory_protects_the_audio() {
    let mut net = phones(LinkConfig::default(), Codec::Pcmu, SrtpPolicy::Mandatory);
    let (a, _) = talk(&mut net);
    net.run_for(Duration::from_secs(2));
    let invite = String::from_utf8_lossy(&net.trace[0].3).into_owned();
    assert!(invite.contains("RTP/SAVP") && invite.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"));
    assert!(goertzel_amplitude(tail(net.heard(0, a), 1.0), SAMPLE_RATE, 440.0) > 0.3);
    let stats = net.engine(0).unwrap().media_stats(a).unwrap();
    assert!(stats.srtp && stats.srtp_failures == 0 && stats.packets_received > 50);
}

/// A call placed on an account whose SRTP policy differs from the phone's follows the
/// account: mandatory SRTP offered though the phone's default is off.
#[test]
fn a_call_follows_its_own_srtp_policy_over_the_phones() {
    let mut net = phones(LinkConfig::default(), Codec::Pcmu, SrtpPolicy::Off);
    dial_with_srtp(&mut net, 0, 1, Transport::Udp, Some(SrtpPolicy::Mandatory));
    net.run_for(Duration::from_millis(200));
    let invite = String::from_utf8_lossy(&net.trace[0].3).into_owned();
    assert!(
        invite.contains("RTP/SAVP") && invite.contains("a=crypto:1"),
        "{invite}"
    );
    // The phone's own policy (off) for a call without one: plain RTP.
    let mut net = phones(LinkConfig::default(), Codec::Pcmu, SrtpPolicy::Off);
    let (plain, _) = establish(&mut net, Transport::Udp);
    let stats = net.engine(0).unwrap().media_stats(plain);
    assert!(stats.is_some_and(|s| !s.srtp));
}

fn noticing_phones(skip_for_record_aware: bool) -> SimNet {
    use crate::recording::notice::{NoticeConfig, WarningTone};
    let announcement: std::sync::Arc<[f32]> = (0..SAMPLE_RATE as usize)
        .map(|i| 0.3 * (core::f32::consts::TAU * 500.0 * i as f32 / SAMPLE_RATE as f32).sin())
        .collect();
    let mut net = SimNet::new(7, LinkConfig::default());
    net.add_node(EngineConfig {
        codecs: vec![Codec::Pcmu],
        notice: NoticeConfig {
            announcement: Some(announcement),
            tone: Some(WarningTone {
                interval: Duration::from_secs(3),
                ..WarningTone::default()
            }),
            skip_for_record_aware,
            local_cues: true,
        },
        ..config(40)
    });
    net.add_node(EngineConfig {
        codecs: vec![Codec::Pcmu],
        ..config(41)
    });
    net
}

/// Starts recording A's call and returns, in seconds, where A's and B's heard audio
/// stood when the recorder answered.
fn record_until_recording(net: &mut SimNet, a: CallId, b: CallId) -> (NodeId, f64, f64) {
    let recorder = net.add_recorder(vec![CodecKind::Pcmu]);
    let request = to_recorder(net, recorder);
    start_recording(net, a, request);
    assert!(net.run_until(Duration::from_secs(5), |n| {
        recording_states(n, 0).contains(&RecordingState::Recording)
    }));
    let seconds = |samples: usize| samples as f64 / f64::from(SAMPLE_RATE);
    let at_a = seconds(net.heard(0, a).len());
    let at_b = seconds(net.heard(1, b).len());
    (recorder, at_a, at_b)
}

fn level(audio: &[f32], from: f64, to: f64, frequency: f32) -> f32 {
    let a = (from * f64::from(SAMPLE_RATE)) as usize;
    let b = ((to * f64::from(SAMPLE_RATE)) as usize).min(audio.len());
    goertzel_amplitude(audio.get(a..b).unwrap_or(&[]), SAMPLE_RATE, frequency)
}

/// RFC 7245 3.4: the far end hears the announcement when recording starts, then the
/// warning tone every interval; the recorder's stream of our side has them too; our own
/// user hears a rising cue. Pausing stops the notice; resuming announces again.
#[test]
fn the_far_end_and_the_recorder_hear_the_notice_and_we_hear_the_cue() {
    let mut net = noticing_phones(false);
    let (a, b) = talk(&mut net);
    net.run_for(Duration::from_secs(1));
    let (recorder, at_a, at_b) = record_until_recording(&mut net, a, b);
    net.run_for(Duration::from_secs(6));

    let heard_by_b = net.heard(1, b);
    assert!(
        level(heard_by_b, at_b + 0.2, at_b + 0.9, 500.0) > 0.2,
        "announcement"
    );
    assert!(level(heard_by_b, at_b + 0.2, at_b + 0.9, 1400.0) < 0.02);
    for start in [1.0, 4.0] {
        let tone = level(heard_by_b, at_b + start + 0.15, at_b + start + 0.45, 1400.0);
        assert!(tone > 0.07, "tone at +{start} s: {tone}");
    }
    assert!(
        level(heard_by_b, at_b + 1.8, at_b + 3.9, 1400.0) < 0.01,
        "quiet between"
    );
    assert!(
        level(heard_by_b, at_b + 1.8, at_b + 3.9, 1000.0) > 0.3,
        "A still heard"
    );

    let ours = net.recorder(recorder).unwrap().recordings[0].audio("1");
    assert!(
        level(ours, 0.2, 0.9, 500.0) > 0.2,
        "the recorder has the announcement"
    );
    assert!(level(ours, 4.15, 4.45, 1400.0) > 0.07, "and the tone");
    let theirs = net.recorder(recorder).unwrap().recordings[0].audio("2");
    assert!(
        level(theirs, 0.2, 5.0, 1400.0) < 0.01,
        "not on the far end's stream"
    );

    let heard_by_a = net.heard(0, a);
    assert!(
        level(heard_by_a, at_a, at_a + 0.09, 660.0) > 0.1,
        "the cue rises"
    );
    assert!(level(heard_by_a, at_a + 0.15, at_a + 0.27, 990.0) > 0.1);

    net.command(0, Command::PauseRecording { call: a });
    net.run_for(Duration::from_secs(1));
    let paused_at = net.heard(1, b).len() as f64 / f64::from(SAMPLE_RATE);
    net.run_for(Duration::from_secs(4));
    let heard_by_b = net.heard(1, b);
    assert!(
        level(heard_by_b, paused_at, paused_at + 4.0, 1400.0) < 0.01,
        "paused"
    );
    assert!(level(heard_by_b, paused_at, paused_at + 4.0, 500.0) < 0.01);
}

#[test]
fn a_record_aware_far_end_gets_no_audio_notice_when_the_setting_says_so() {
    let mut net = noticing_phones(true);
    let (a, b) = talk(&mut net);
    net.run_for(Duration::from_secs(1));
    let (_, at_a, at_b) = record_until_recording(&mut net, a, b);
    net.run_for(Duration::from_secs(5));
    let heard_by_b = net.heard(1, b);
    assert!(level(heard_by_b, at_b, at_b + 5.0, 500.0) < 0.01);
    assert!(level(heard_by_b, at_b, at_b + 5.0, 1400.0) < 0.01);
    // Our own user still hears the cue.
    assert!(level(net.heard(0, a), at_a, at_a + 0.09, 660.0) > 0.1);
}

/// How loud the announcement is at the far end once node 0 records its call, on a phone
/// with no notice of its own: node 0 places the call (`incoming` false, with `dialled` as
/// the call's own notice) or takes it as bob, with an account for `account_user` whose own
/// notice is the announcement.
fn announcement_at_far_end(
    incoming: bool,
    dialled: Option<crate::recording::notice::NoticeConfig>,
    account_user: Option<&str>,
) -> f32 {
    let mut net = SimNet::new(7, LinkConfig::default());
    for seed in [40, 41] {
        net.add_node(EngineConfig {
            codecs: vec![Codec::Pcmu],
            ..config(seed)
        });
    }
    if let Some(user) = account_user {
        let here = net.address(0, Transport::Udp).unwrap().address.ip();
        let account = CalledAccount {
            name: user.to_owned(),
            aor: Uri::parse(&format!("sip:{user}@{here}")).unwrap(),
            srtp: None,
            notice: Some(announcement_only()),
        };
        net.command(0, Command::SetCalledAccounts(vec![account]));
    }
    let (a, b) = if incoming {
        let b = dial(&mut net, 1, 0, Transport::Udp);
        (answer_when_ringing(&mut net, 0), b)
    } else {
        let a = dial_on_account(&mut net, 0, 1, Transport::Udp, None, dialled);
        (a, answer_when_ringing(&mut net, 1))
    };
    assert!(net.run_until(Duration::from_secs(5), |n| connected(n, 0)
        && connected(n, 1)));
    net.attach_media(0, a, None);
    net.attach_media(1, b, None);
    net.run_for(Duration::from_secs(1));
    let (_, _, at_b) = record_until_recording(&mut net, a, b);
    net.run_for(Duration::from_secs(2));
    level(net.heard(1, b), at_b + 0.2, at_b + 0.9, 500.0)
}

/// Each account's own notice is heard on its calls, placed or taken, while the phone's
/// (none here) stays on the others.
#[test]
fn a_call_on_an_account_with_its_own_notice_announces_the_recording() {
    assert!(announcement_at_far_end(false, Some(announcement_only()), None) > 0.2);
    assert!(announcement_at_far_end(false, None, None) < 0.01);
    // The far end calls bob: bob's notice when bob is an account, the phone's otherwise.
    assert!(announcement_at_far_end(true, None, Some("bob")) > 0.2);
    assert!(announcement_at_far_end(true, None, Some("carol")) < 0.01);
}

/// The SDES master keys (`inline:`) in a message's body.
fn inline_keys(message: &Message) -> Vec<String> {
    String::from_utf8_lossy(&message.body)
        .split("inline:")
        .skip(1)
        .map(|rest| rest.chars().take_while(|c| !c.is_whitespace()).collect())
        .collect()
}

/// RFC 7866 12.2: the recording session must not reuse the call's SRTP keys, or the
/// recorder could decrypt the call itself, and each recorded stream gets its own.
#[test]
fn the_recording_gets_srtp_keys_of_its_own_never_the_calls() {
    let mut net = SimNet::new(7, LinkConfig::default());
    for seed in [40, 41] {
        // The real key source (the OS CSPRNG), as a user's phone has it.
        net.add_node(EngineConfig {
            codecs: vec![Codec::Pcmu],
            srtp: SrtpPolicy::Mandatory,
            key_source: crate::phone::os_key_source(),
            ..config(seed)
        });
    }
    let recorder = net.add_recorder(vec![CodecKind::Pcmu]);
    let (a, _) = talk(&mut net);
    let mut request = to_recorder(&net, recorder);
    request.srtp = true;
    start_recording(&mut net, a, request);
    net.run_for(Duration::from_secs(3));

    let messages: Vec<Message> = net
        .trace
        .iter()
        .filter_map(|(_, _, _, data)| Message::parse(data).ok())
        .collect();
    let recording_call_id = messages
        .iter()
        .find(|m| {
            m.headers
                .get("Require")
                .is_some_and(|r| r.contains("siprec"))
        })
        .and_then(|m| m.headers.get("Call-ID"))
        .expect("a recording session was offered")
        .to_owned();
    let keys_of = |recording: bool| -> Vec<String> {
        messages
            .iter()
            .filter(|m| (m.headers.get("Call-ID") == Some(recording_call_id.as_str())) == recording)
            .flat_map(inline_keys)
            .collect()
    };
    let call_keys = keys_of(false);
    let recording_keys = keys_of(true);
    assert!(call_keys.len() >= 2, "{call_keys:?}");
    assert!(recording_keys.len() >= 2, "{recording_keys:?}");
    for key in &recording_keys {
        assert!(
            !call_keys.contains(key),
            "the recording reuses a call key {key}"
        );
    }
    let ours: std::collections::HashSet<_> = messages
        .iter()
        .filter(|m| m.is_request())
        .filter(|m| {
            m.headers
                .get("Require")
                .is_some_and(|r| r.contains("siprec"))
        })
        .flat_map(inline_keys)
        .collect();
    assert_eq!(ours.len(), 2, "one key per recorded stream: {ours:?}");
    // And the recorder, holding only its own keys, recorded both voices.
    let recording = &net.recorder(recorder).unwrap().recordings[0];
    assert!(amplitude_at(recording.audio("1"), 1.5, 2.5, 1000.0) > 0.3);
    assert!(amplitude_at(recording.audio("2"), 1.5, 2.5, 440.0) > 0.3);
}

#[test]
fn srtp_survives_hold_and_resume_with_the_same_keys() {
    let mut net = phones(
        LinkConfig::default(),
        Codec::Opus { inband_fec: true },
        SrtpPolicy::Mandatory,
    );
    let (a, b) = talk(&mut net);
    net.run_for(Duration::from_secs(1));
    net.command(0, Command::Hold { call: a });
    net.run_for(Duration::from_secs(1));
    net.command(0, Command::Resume { call: a });
    net.run_for(Duration::from_secs(2));
    assert!(goertzel_amplitude(tail(net.heard(0, a), 1.0), SAMPLE_RATE, 440.0) > 0.3);
    assert!(goertzel_amplitude(tail(net.heard(1, b), 1.0), SAMPLE_RATE, 1000.0) > 0.3);
    for (node, call) in [(0, a), (1, b)] {
        let stats = net.engine(node).unwrap().media_stats(call).unwrap();
        assert!(stats.srtp);
        assert_eq!(
            stats.srtp_failures, 0,
            "node {node}: replays or auth failures after re-INVITE"
        );
    }
}

#[test]
fn five_percent_loss_and_40_ms_jitter_leave_no_audible_gap() {
    let link = LinkConfig {
        latency: Duration::from_millis(30),
        jitter: Duration::from_millis(40),
        loss: 0.05,
        duplicate: 0.0,
    };
    let mut net = phones(link, Codec::Opus { inband_fec: true }, SrtpPolicy::Off);
    let (a, b) = talk(&mut net);
    net.run_for(Duration::from_secs(20));
    // After the first second, every 20 ms frame B plays carries sound: losses are
    // concealed, never played as silence.
    let heard = &net.heard(1, b)[SAMPLE_RATE as usize..];
    let silent_frames = heard
        .chunks(FRAME_SAMPLES)
        .filter(|frame| rms(frame) < 0.05)
        .count();
    assert_eq!(silent_frames, 0);
    assert!(goertzel_amplitude(tail(heard, 5.0), SAMPLE_RATE, 1000.0) > 0.3);
    let stats = net.engine(1).unwrap().media_stats(b).unwrap();
    assert!(
        (2.0..10.0).contains(&stats.loss_percent),
        "loss {}",
        stats.loss_percent
    );
    assert!(stats.jitter_ms > 5.0, "jitter {}", stats.jitter_ms);
    assert!(
        net.events(1)
            .iter()
            .any(|e| matches!(e, Event::MediaStats { stats, .. } if stats.packets_lost > 0))
    );
    let _ = a;
}

#[test]
fn dtmf_digits_arrive_once_each_in_order() {
    let mut net = phones(LinkConfig::default(), Codec::Pcmu, SrtpPolicy::Off);
    let (a, _) = talk(&mut net);
    net.run_for(Duration::from_millis(200));
    net.command(
        0,
        Command::SendDtmf {
            call: a,
            digits: "19*#".into(),
        },
    );
    net.run_for(Duration::from_secs(2));
    let digits: String = net
        .events(1)
        .iter()
        .filter_map(|e| match e {
            Event::Dtmf { digit, .. } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, "19*#");
}

#[test]
fn hold_stops_the_held_side_and_mute_sends_silence() {
    let mut net = phones(LinkConfig::default(), Codec::Pcma, SrtpPolicy::Off);
    let (a, b) = talk(&mut net);
    net.run_for(Duration::from_secs(1));
    net.command(
        0,
        Command::Mute {
            call: a,
            muted: true,
        },
    );
    net.run_for(Duration::from_secs(1));
    assert!(
        rms(tail(net.heard(1, b), 0.5)) < 0.01,
        "B hears silence from muted A"
    );
    net.command(
        0,
        Command::Mute {
            call: a,
            muted: false,
        },
    );
    net.run_for(Duration::from_secs(1));
    assert!(goertzel_amplitude(tail(net.heard(1, b), 0.5), SAMPLE_RATE, 1000.0) > 0.3);
    // A holds: A sends (sendonly) but B may not, so A hears nothing.
    net.command(0, Command::Hold { call: a });
    net.run_for(Duration::from_secs(1));
    assert!(
        rms(tail(net.heard(0, a), 0.5)) < 0.01,
        "held: B no longer sends"
    );
    net.command(0, Command::Resume { call: a });
    net.run_for(Duration::from_secs(1));
    assert!(goertzel_amplitude(tail(net.heard(0, a), 0.5), SAMPLE_RATE, 440.0) > 0.3);
}
