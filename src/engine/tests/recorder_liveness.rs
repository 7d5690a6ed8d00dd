//! A recorder that goes silent mid-call (a frozen process, a host without power, a network
//! that partitions: nothing comes back, not even a reset) is noticed within seconds by the
//! in-dialog probes, and the stretch it missed is a gap that starts when it was last heard.

use core::time::Duration;

use super::*;
use crate::recording::metadata;

/// The recording of `a` to `recorder` is up; returns after a few seconds of it.
fn recording_for_a_while(net: &mut SimNet, a: CallId, request: RecordingRequest) {
    start_recording(net, a, request);
    assert!(net.run_until(Duration::from_secs(5), |n| {
        recording_states(n, 0).contains(&RecordingState::Recording)
    }));
    net.run_for(Duration::from_secs(3));
}

/// Two phones talking, node 0 recording the call to a recorder for a while.
fn talking_and_recorded() -> (SimNet, NodeId, CallId) {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    let (a, _) = talk(&mut net);
    let request = to_recorder(&net, recorder);
    recording_for_a_while(&mut net, a, request);
    (net, recorder, a)
}

/// The wall clock of node 0 at the simulation's `elapsed`.
fn wall_at(net: &SimNet, elapsed: Duration) -> Duration {
    net.engine(0).unwrap().config().wall_clock_at_start + elapsed
}

fn first_retry_reason(net: &SimNet) -> Option<String> {
    recording_states(net, 0).into_iter().find_map(|s| match s {
        RecordingState::Retrying { reason, .. } => Some(reason),
        _ => None,
    })
}

#[test]
fn a_recorder_gone_silent_is_noticed_within_seconds_and_its_gap_starts_when_it_was_last_heard() {
    let (mut net, recorder, a) = talking_and_recorded();
    net.recorder_mut(recorder).unwrap().down = true;
    let went_silent = net.elapsed();
    assert!(net.run_until(Duration::from_secs(20), |n| first_retry_reason(n).is_some()));
    let noticed_after = net.elapsed() - went_silent;
    eprintln!("a silent recorder was noticed after {noticed_after:?}");
    assert!(
        noticed_after <= Duration::from_secs(10),
        "noticed after {noticed_after:?}"
    );
    let reason = first_retry_reason(&net).unwrap();
    assert!(
        reason.starts_with("the recorder has not answered since "),
        "{reason}"
    );
    // It comes back: a new session, and the gap in its metadata closes.
    net.recorder_mut(recorder).unwrap().down = false;
    assert!(net.run_until(Duration::from_secs(40), |n| {
        recording_states(n, 0).contains(&RecordingState::RecordingWithGaps)
    }));
    net.run_for(Duration::from_secs(1));
    net.command(0, Command::Hangup { call: a });
    net.run_for(Duration::from_secs(2));
    let recordings = &net.recorder(recorder).unwrap().recordings;
    let resumed = recordings.last().unwrap();
    let latest = metadata::parse(resumed.metadata.last().unwrap()).unwrap();
    assert_eq!(latest.gaps.len(), 1, "{latest:?}");
    let gap = &latest.gaps[0];
    let from = metadata::parse_time(&gap.from).unwrap();
    let probe = net
        .engine(0)
        .unwrap()
        .config()
        .recorder_probe_interval
        .unwrap();
    assert!(
        from <= wall_at(&net, went_silent) && from + probe >= wall_at(&net, went_silent),
        "the gap starts when the recorder was last heard, at most one probe before it went \
         silent: {} for silence at {}",
        gap.from,
        metadata::format_time(wall_at(&net, went_silent))
    );
    assert!(gap.to.is_some(), "closed when recording came back");
}

#[test]
fn a_silent_recorder_fails_over_to_the_secondary_while_it_stays_silent() {
    let mut net = two_phones(LinkConfig::default());
    let primary = net.add_recorder(Vec::new());
    let secondary = net.add_recorder(Vec::new());
    let (a, _) = talk(&mut net);
    let request = to_recorders(&net, primary, secondary);
    recording_for_a_while(&mut net, a, request);
    net.recorder_mut(primary).unwrap().down = true;
    assert!(net.run_until(Duration::from_secs(30), |n| {
        recording_states(n, 0).contains(&RecordingState::RecordingWithGaps)
    }));
    net.run_for(Duration::from_secs(2));
    let taken_over = &net.recorder(secondary).unwrap().recordings[0];
    assert!(amplitude_at(taken_over.audio("1"), 0.2, 1.8, 1000.0) > 0.2);
    assert!(amplitude_at(taken_over.audio("2"), 0.2, 1.8, 440.0) > 0.2);
    net.command(0, Command::Hangup { call: a });
    net.run_for(Duration::from_secs(2));
}

#[test]
fn a_mandatory_recordings_grace_runs_from_when_the_recorder_was_last_heard() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    record_call(&mut net, recorder, true);
    assert!(net.run_until(Duration::from_secs(5), |n| {
        recording_states(n, 0).contains(&RecordingState::Recording)
    }));
    net.run_for(Duration::from_secs(3));
    net.recorder_mut(recorder).unwrap().down = true;
    let went_silent = net.elapsed();
    assert!(net.run_until(Duration::from_secs(30), |n| ended(n, 0).is_some()));
    let ended_after = net.elapsed() - went_silent;
    assert!(
        ended_after <= crate::engine::recording::MANDATORY_GRACE + Duration::from_millis(500),
        "the grace counts from the last answer, not from the missed deadline: {ended_after:?}"
    );
    assert!(
        ended_after >= crate::engine::recording::MANDATORY_GRACE - Duration::from_secs(3),
        "{ended_after:?}"
    );
}

#[test]
fn a_bye_the_recorder_never_answers_at_the_end_of_the_call_is_reported() {
    let (mut net, recorder, a) = talking_and_recorded();
    // Gone just before the call ends, too soon for a probe to miss it.
    net.recorder_mut(recorder).unwrap().down = true;
    net.command(0, Command::Hangup { call: a });
    net.run_for(Duration::from_secs(70));
    let warned = net.events(0).iter().any(|e| {
        matches!(e, Event::Warning { message, .. } if message.contains("did not answer the BYE"))
    });
    assert!(warned, "{:?}", net.events(0));
}
