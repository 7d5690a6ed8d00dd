//! "Test recorder": OPTIONS, then a test recording session, each step reported.

use super::*;

fn check_recorder(net: &mut SimNet, recorder: NodeId) -> (bool, Vec<String>) {
    let to = to_recorder(net, recorder);
    let check = CheckId(705);
    net.command(
        0,
        Command::CheckRecorder {
            check,
            request: RecorderCheckRequest {
                srs: to.srs,
                destination: to.destination,
                credentials: None,
                identity: NameAddr::parse("\"Alice\" <sip:alice@127.0.0.1>").unwrap(),
            },
        },
    );
    // A recorder that never answers takes Timer F for the OPTIONS and Timer B for the
    // INVITE (32 s each).
    assert!(net.run_until(Duration::from_secs(70), |n| {
        n.events(0)
            .iter()
            .any(|e| matches!(e, Event::RecorderChecked { check: c, .. } if *c == check))
    }));
    net.events(0)
        .iter()
        .find_map(|e| match e {
            Event::RecorderChecked {
                works, findings, ..
            } => Some((*works, findings.clone())),
            _ => None,
        })
        .unwrap()
}

#[test]
fn testing_the_recorder_asks_its_options_then_opens_and_ends_a_test_session() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    let (works, findings) = check_recorder(&mut net, recorder);
    assert!(works, "{findings:?}");
    assert!(findings[0].contains("supports siprec"), "{findings:?}");
    assert!(
        findings[1].starts_with("test recording session accepted: label 1 in"),
        "{findings:?}"
    );
    assert!(findings[2].contains("ended (200)"), "{findings:?}");
    let session = &net.recorder(recorder).unwrap().recordings[0];
    assert!(session.ended, "the test session was hung up");
    let metadata = crate::recording::metadata::parse(&session.metadata[0]).unwrap();
    assert!(
        metadata
            .participants
            .iter()
            .any(|p| p.aor.contains("recording-test")),
        "a made-up call, not a real one"
    );
}

#[test]
fn testing_a_recorder_that_refuses_or_is_down_says_why() {
    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    net.recorder_mut(recorder).unwrap().refuse_with = Some(420);
    let (works, findings) = check_recorder(&mut net, recorder);
    assert!(!works);
    assert!(
        findings
            .iter()
            .any(|f| f.contains("refused: 420") && f.contains("not a SIPREC recorder")),
        "{findings:?}"
    );

    let mut net = two_phones(LinkConfig::default());
    let recorder = net.add_recorder(Vec::new());
    net.recorder_mut(recorder).unwrap().down = true;
    let (works, findings) = check_recorder(&mut net, recorder);
    assert!(!works);
    assert!(
        findings.iter().any(|f| f.contains("no answer")),
        "{findings:?}"
    );
}
