//! The desktop app driven like a user would (egui_kittest, through the AccessKit tree), with
//! the real phone behind it on loopback: silent audio, `verbatim answer` as the far end and
//! the built-in recorder writing into a temporary folder.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use support::{Peer, Proto, START_TIMEOUT, free_port, start_verbatim};
use verbatim::engine::EngineConfig;
use verbatim::ui::{Bridge, BridgeConfig, VerbatimApp};

/// Steps the window until a label containing `text` shows (the phone answers on its own
/// threads, so time must pass between frames).
fn wait_for(harness: &mut Harness<'_, VerbatimApp>, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        harness.step();
        if harness.query_by_label_contains(text).is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {text:?} on screen; the window says: {:?}",
            harness
                .query_all_by_label_contains("")
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn app(recordings: &std::path::Path) -> VerbatimApp {
    let config = BridgeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        recordings: Some(recordings.to_owned()),
        srs: None,
        engine: EngineConfig {
            wall_clock_at_start: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap(),
            ..EngineConfig::default()
        },
        audio: None,
        ringer: None,
        problems: Vec::new(),
    };
    VerbatimApp::new(Bridge::start(config, || {}))
}

/// Type a URI, click Call, see the call connect; click Record and see the indicator say
/// "Recording" only once the recorder answered; pause and resume; hang up and find the
/// recording on disk.
#[test]
fn call_record_pause_and_resume_from_the_window() {
    let recordings = tempfile::tempdir().unwrap();
    let far_port = free_port();
    let mut far_end = Peer::new("gui-far-end");
    start_verbatim(
        &mut far_end,
        [
            "answer",
            "--listen",
            &format!("127.0.0.1:{far_port}"),
            "--calls",
            "1",
        ],
    );
    far_end.wait_until_listening(Proto::Tcp, far_port, START_TIMEOUT);

    let mut harness = Harness::new_ui_state(
        |ui, app: &mut VerbatimApp| app.show(ui),
        app(recordings.path()),
    );
    wait_for(&mut harness, "Ready on");
    let dial = harness.get_by_label("Dial");
    dial.focus();
    dial.type_text(&format!("sip:bob@127.0.0.1:{far_port}"));
    harness.step();
    harness.get_by_label("Call").click();
    wait_for(&mut harness, "Connected");
    assert!(harness.query_by_label("Not recording").is_some());

    harness.get_by_label("Record").click();
    // The click alone changes nothing but the request: the indicator waits for the recorder.
    harness.step();
    assert!(harness.query_by_label_contains("Recording 0:").is_none());
    wait_for(&mut harness, "Recording 0:");
    assert!(harness.query_by_label("Stop recording").is_some());

    harness.get_by_label("Pause recording").click();
    wait_for(&mut harness, "Recording paused by you");
    harness.get_by_label("Resume recording").click();
    wait_for(&mut harness, "Recording 0:");

    harness.get_by_label("Hang up").click();
    wait_for(&mut harness, "ended");
    far_end.expect_success(Duration::from_secs(20));
    // Dropping the window stops the phone and its recorder, which finishes the files.
    drop(harness);
    let folders = verbatim::srs::session_folders(recordings.path());
    assert_eq!(folders.len(), 1, "one recording");
    let summary = std::fs::read_to_string(folders[0].join("summary.json")).unwrap();
    assert!(summary.contains("\"pauses\""), "{summary}");
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["pauses"].as_array().unwrap().len(), 1, "{summary}");
}
