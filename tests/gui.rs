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

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use support::desktop::{BackgroundPortal, PrivateBus, click_tray_item, tray_item};
use support::{
    Account, Peer, Proto, START_TIMEOUT, Scenario, free_port, read_recorded, sipp_scenario,
    start_kamailio, start_recorder, start_sipp_uas, start_verbatim,
};
use verbatim::engine::EngineConfig;
use verbatim::ui::{Bridge, BridgeConfig, VerbatimApp};

/// Steps the window until `done`; fails saying `what` after `seconds`.
fn step_until(
    harness: &mut Harness<'_, VerbatimApp>,
    seconds: u64,
    what: &str,
    mut done: impl FnMut(&Harness<'_, VerbatimApp>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done(harness) {
        assert!(Instant::now() < deadline, "{what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

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

fn app(recordings: &std::path::Path, srs: Option<&str>) -> VerbatimApp {
    app_on(recordings, srs, "127.0.0.1:0")
}

fn app_on(recordings: &std::path::Path, srs: Option<&str>, listen: &str) -> VerbatimApp {
    let recording = verbatim::settings::Recording {
        srs: srs.map(|uri| verbatim::sip::uri::Uri::parse(uri).unwrap()),
        ..verbatim::settings::RecordingSettings::default()
            .validate()
            .unwrap()
    };
    app_recording(recordings, recording, listen)
}

fn app_recording(
    recordings: &std::path::Path,
    recording: verbatim::settings::Recording,
    listen: &str,
) -> VerbatimApp {
    app_notifying(
        recordings,
        recording,
        listen,
        verbatim::ui::call_notifications::NotificationBus::Off,
    )
}

fn app_notifying(
    recordings: &std::path::Path,
    recording: verbatim::settings::Recording,
    listen: &str,
    notifications: verbatim::ui::call_notifications::NotificationBus,
) -> VerbatimApp {
    let config = bridge_config(recordings, recording, listen, notifications);
    VerbatimApp::new(Bridge::start(config, || {}))
}

fn bridge_config(
    recordings: &std::path::Path,
    mut recording: verbatim::settings::Recording,
    listen: &str,
    notifications: verbatim::ui::call_notifications::NotificationBus,
) -> BridgeConfig {
    // The window's recorder encrypts to the test key, never the user's.
    if recording.storage.key_file.is_none() {
        recording.storage.key_file = Some(support::test_key_file());
    }
    BridgeConfig {
        listen: listen.parse().unwrap(),
        recordings: Some(recordings.to_owned()),
        recording,
        engine: EngineConfig {
            wall_clock_at_start: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap(),
            ..EngineConfig::default()
        },
        audio: None,
        ringer: None,
        card_clock: None,
        problems: Vec::new(),
        history: Some(recordings.to_owned()),
        accounts: Vec::new(),
        audio_control: None,
        admin: verbatim::settings::AdminPolicy::default(),
        stun_server: None,
        notifications,
        tray: None,
        autostart: None,
    }
}

/// Type a URI, click Call, see the call connect; click Record and see the indicator say
/// "Recording" only once the recorder answered; pause and resume; hang up and find the
/// recording on disk.
#[test]
fn call_record_pause_and_resume_from_the_window() {
    let recordings = tempfile::tempdir().unwrap();
    let (mut far_end, far_port) = far_end("gui-far-end");

    let mut harness = ready_window(recordings.path(), None);
    dial(&mut harness, &format!("sip:bob@127.0.0.1:{far_port}"));
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
    // The history says the call was recorded, on screen and on disk.
    wait_for(&mut harness, "· recorded");
    far_end.expect_success(Duration::from_secs(20));
    // Dropping the window stops the phone and its recorder, which finishes the files.
    drop(harness);
    let folders = verbatim::archive::session::session_folders(recordings.path());
    assert_eq!(folders.len(), 1, "one recording");
    let summary = read_recorded(&folders[0], "summary.json");
    assert!(summary.contains("\"pauses\""), "{summary}");
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["pauses"].as_array().unwrap().len(), 1, "{summary}");
}

/// Types `target` in the dial field and clicks Call.
fn dial(harness: &mut Harness<'_, VerbatimApp>, target: &str) {
    show_phone(harness);
    harness.get_by_label("Dial").focus();
    // Whatever the field held before is replaced.
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.get_by_label("Dial").type_text(target);
    harness.step();
    harness.get_by_label("Call").click();
}

/// The calls' page, when the settings are showing.
fn show_phone(harness: &mut Harness<'_, VerbatimApp>) {
    if harness.query_by_label("Dial").is_none() {
        harness.get_by_label("Phone").click();
        harness.step();
    }
}

/// The window with the real phone behind it, once it says it is ready.
fn ready_window(recordings: &std::path::Path, srs: Option<&str>) -> Harness<'static, VerbatimApp> {
    let mut harness = Harness::new_ui_state(
        |ui, app: &mut VerbatimApp| app.show(ui),
        app(recordings, srs),
    );
    wait_for(&mut harness, "Ready on");
    harness
}

/// Starts `verbatim answer` on a free port for one call; returns it and its port.
fn far_end(name: &str) -> (Peer, u16) {
    far_end_for(name, 1)
}

/// As [`far_end`], for `calls` calls.
fn far_end_for(name: &str, calls: u32) -> (Peer, u16) {
    let port = free_port();
    let mut peer = Peer::new(name);
    start_verbatim(
        &mut peer,
        [
            "answer",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--calls",
            &calls.to_string(),
        ],
    );
    peer.wait_until_listening(Proto::Tcp, port, START_TIMEOUT);
    (peer, port)
}

/// The recorder dies mid-call (killed, so it says nothing): the indicator stops saying
/// "Recording" and gives the reason, and the call goes on.
#[test]
fn a_recorder_that_dies_shows_as_not_recording_with_the_reason() {
    let recordings = tempfile::tempdir().unwrap();
    let srs_dir = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) = start_recorder("gui-recorder", srs_dir.path(), &[]);
    let (mut far, far_port) = far_end("gui-far-end-2");
    let srs_uri = format!("sip:srs@127.0.0.1:{srs_port};transport=tcp");
    let mut harness = ready_window(recordings.path(), Some(&srs_uri));
    dial(&mut harness, &format!("sip:bob@127.0.0.1:{far_port}"));
    wait_for(&mut harness, "Connected");
    harness.get_by_label("Record").click();
    wait_for(&mut harness, "Recording 0:");
    srs.stop();
    wait_for(&mut harness, "connection to the recorder closed");
    assert!(harness.query_by_label_contains("Recording 0:").is_none());
    assert!(
        harness.query_by_label_contains("Connected").is_some(),
        "the call goes on"
    );
    harness.get_by_label("Hang up").click();
    wait_for(&mut harness, "ended");
    wait_for(&mut harness, "recorded with gaps");
    far.expect_success(Duration::from_secs(20));
    drop(harness);
    let history = std::fs::read_to_string(recordings.path().join("history.jsonl")).unwrap();
    assert!(history.contains("\"recording\":\"partial\""), "{history}");
    assert!(
        history.contains("connection to the recorder closed"),
        "the gap and its reason are kept: {history}"
    );
}

/// `from` calls the window on `port` (`verbatim call`, as peer `name`) and hangs up
/// `seconds` after it is answered.
fn call_the_window(name: &str, from: &str, port: u16, seconds: u32) -> Peer {
    let mut caller = Peer::new(name);
    start_verbatim(
        &mut caller,
        [
            "call",
            &format!("sip:me@127.0.0.1:{port}"),
            "--from",
            from,
            "--duration",
            &seconds.to_string(),
        ],
    );
    caller
}

const CAROL: &str = "\"Carol\" <sip:carol@127.0.0.1>";

/// A call comes in: the window shows who calls, Answer connects it, the keypad sends DTMF
/// the caller hears, and the caller's hang-up ends it.
#[test]
fn an_incoming_call_is_answered_from_the_window_and_hears_the_keypad() {
    let recordings = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut harness = Harness::new_ui_state(
        |ui, app: &mut VerbatimApp| app.show(ui),
        app_on(recordings.path(), None, &format!("127.0.0.1:{port}")),
    );
    wait_for(&mut harness, "Ready on");
    let mut caller = call_the_window("gui-caller", CAROL, port, 3);
    wait_for(&mut harness, "Incoming call");
    assert!(harness.query_by_label_contains("carol").is_some());
    harness.get_by_label("Answer").click();
    wait_for(&mut harness, "Connected");
    harness.get_by_label("Keypad").click();
    harness.step();
    harness.get_by_label("5").click();
    harness.step();
    // The quality line opens onto the live plot.
    wait_for(&mut harness, "jitter");
    assert!(
        harness.query_by_label("jitter ms").is_none(),
        "folded at first"
    );
    harness.get_by_label_contains("loss").click_accesskit();
    harness.step();
    harness.step();
    assert!(
        harness.query_by_label("jitter ms").is_some(),
        "the plot's legend shows"
    );
    wait_for(&mut harness, "Call with");
    caller.expect_success(Duration::from_secs(20));
    assert!(
        caller.stderr().contains("dtmf received: 5"),
        "{}",
        caller.stderr()
    );
}

/// The recording settings: a bad recorder URI is refused next to the field; a good one with
/// "Record every call" is written to the file, and the next call is recorded without a
/// click.
#[test]
fn recording_settings_are_checked_saved_and_applied() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let srs_dir = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) = start_recorder("gui-settings-recorder", srs_dir.path(), &[]);
    let mut harness = settings_window(recordings.path(), &path);
    let field = harness.get_by_label("Recorder URI");
    field.focus();
    field.type_text("not a uri");
    harness.step();
    harness.get_by_label("Save settings").click();
    wait_for(&mut harness, "recording.srs");
    assert!(!path.exists(), "nothing written");

    let field = harness.get_by_label("Recorder URI");
    field.focus();
    for _ in 0.."not a uri".len() {
        harness.key_press(egui::Key::Backspace);
    }
    harness
        .get_by_label("Recorder URI")
        .type_text(&format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"));
    // The field's error line goes away as it changes, moving what is below: let the layout
    // settle before clicking by position.
    harness.step();
    harness.step();
    harness.get_by_label("Record every call").click();
    harness.step();
    harness.get_by_label("Save settings").click();
    wait_for(&mut harness, "Saved to");
    let written = verbatim::settings::Settings::load(&path).unwrap();
    assert_eq!(written.recording.auto, "all");
    assert_eq!(
        written.recording.srs.as_deref(),
        Some(format!("sip:srs@127.0.0.1:{srs_port};transport=tcp").as_str())
    );

    let (mut far, far_port) = far_end("gui-settings-far-end");
    dial(&mut harness, &format!("sip:bob@127.0.0.1:{far_port}"));
    wait_for(&mut harness, "Recording 0:");
    harness.get_by_label("Hang up").click();
    wait_for(&mut harness, "ended");
    far.expect_success(Duration::from_secs(20));
    srs.stop();
    assert_eq!(
        verbatim::archive::session::session_folders(srs_dir.path()).len(),
        1,
        "recorded by the recorder the settings name"
    );
}

/// Call waiting: a second call rings while the first is connected; both are shown, and
/// Enter answers the one that rings.
#[test]
fn a_second_call_rings_beside_the_first_and_enter_answers_it() {
    let recordings = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut harness = Harness::new_ui_state(
        |ui, app: &mut VerbatimApp| app.show(ui),
        app_on(recordings.path(), None, &format!("127.0.0.1:{port}")),
    );
    wait_for(&mut harness, "Ready on");
    let call = |name: &str| call_the_window(name, &format!("<sip:{name}@127.0.0.1>"), port, 3);
    let mut first = call("first");
    wait_for(&mut harness, "Incoming call");
    harness.get_by_label("Answer").click();
    wait_for(&mut harness, "Connected");
    let mut second = call("second");
    wait_for(&mut harness, "Incoming call");
    assert!(
        harness.query_by_label_contains("Connected").is_some(),
        "the first call stays on screen"
    );
    harness.key_press(egui::Key::Enter);
    step_until(&mut harness, 10, "the second call was not answered", |h| {
        h.query_all_by_label_contains("Connected").count() >= 2
    });
    first.expect_success(Duration::from_secs(20));
    second.expect_success(Duration::from_secs(20));
}

/// The window with default settings that save to `path`, its Settings open.
fn settings_window(
    recordings: &std::path::Path,
    path: &std::path::Path,
) -> Harness<'static, VerbatimApp> {
    settings_window_under(recordings, path, verbatim::settings::AdminPolicy::default())
}

/// As [`settings_window`], with what `admin` fixes.
fn settings_window_under(
    recordings: &std::path::Path,
    path: &std::path::Path,
    admin: verbatim::settings::AdminPolicy,
) -> Harness<'static, VerbatimApp> {
    // Tall enough for the whole settings screen, which scrolls in a real window.
    let mut harness = Harness::builder()
        .with_size(egui::vec2(800.0, 1800.0))
        .build_ui_state(
            |ui, app: &mut VerbatimApp| app.show(ui),
            app(recordings, None)
                .with_settings(path.to_owned(), verbatim::settings::Settings::default())
                .with_admin_policy(admin),
        );
    wait_for(&mut harness, "Ready on");
    harness.get_by_label("Settings").click();
    harness.step();
    harness
}

/// Replaces what a text field holds with `text`.
fn retype(harness: &mut Harness<'_, VerbatimApp>, label: &str, text: &str) {
    let field = harness.get_by_label(label);
    field.focus();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.key_press(egui::Key::Backspace);
    harness.get_by_label(label).type_text(text);
    harness.step();
}

/// The account from the settings screen: a wrong password shows the registrar's refusal, the
/// right one registers; the password never reaches the file (the keyring has it, or, with no
/// keyring service, the window says it is kept until quitting); a number in the dial field
/// completes to the account's domain and the call authenticates with the account.
#[test]
fn an_account_registers_from_the_settings_and_calls_a_number_in_its_domain() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let credentials = [
        "-set",
        "auth_user",
        "alice",
        "-set",
        "auth_pass",
        "gui-secret",
    ];
    let registrar_port = free_port();
    let mut registrar = Peer::new("gui-registrar");
    start_sipp_uas(
        &mut registrar,
        &Scenario::File(sipp_scenario("registrar_digest.xml")),
        registrar_port,
        "u1",
        // Each registration is a call to SIPp: the refused one, the accepted one, refreshes.
        &[&credentials[..], &["-m", "10"]].concat(),
    );
    let domain_port = free_port();
    let mut far_end = Peer::new("gui-account-far-end");
    start_sipp_uas(
        &mut far_end,
        &Scenario::File(sipp_scenario("uas_digest.xml")),
        domain_port,
        "u1",
        &credentials,
    );

    let mut harness = settings_window(recordings.path(), &path);
    // The account line above moves as the registration changes state, so clicks go by
    // AccessKit action, not by position.
    retype(&mut harness, "SIP address", "alice at nowhere");
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "account.uri");
    assert!(!path.exists(), "nothing written");

    retype(
        &mut harness,
        "SIP address",
        &format!("sip:alice@127.0.0.1:{domain_port}"),
    );
    retype(
        &mut harness,
        "Registrar",
        &format!("sip:127.0.0.1:{registrar_port}"),
    );
    retype(&mut harness, "Password", "not-the-password");
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "registration failed: 403");

    retype(&mut harness, "Password", "gui-secret");
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, ": registered");
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(!written.contains("gui-secret"), "{written}");
    let keyring_missing = harness
        .query_all_by_label_contains("no keyring service")
        .next()
        .is_some();
    let key = verbatim::secrets::SecretKey::Account(format!("sip:alice@127.0.0.1:{domain_port}"));
    let stored = verbatim::secrets::load(&key);
    assert!(
        keyring_missing || stored == Ok(Some("gui-secret".into())),
        "the password is in the keyring, or the window says why not: {stored:?}"
    );
    let _ = verbatim::secrets::forget(&key);

    show_phone(&mut harness);
    let dial = harness.get_by_label("Dial");
    dial.focus();
    dial.type_text("2000");
    harness.step();
    harness.get_by_label("Call").click_accesskit();
    wait_for(&mut harness, &format!("sip:2000@127.0.0.1:{domain_port}"));
    wait_for(&mut harness, "Connected");
    harness.get_by_label("Hang up").click_accesskit();
    wait_for(&mut harness, "ended");
    far_end.expect_success(Duration::from_secs(20));
    registrar.stop();
}

/// Blind transfer from the window: the far end (`verbatim answer`, which follows REFER) is
/// asked to call a third phone; once that one answers, the window's call ends as
/// "transferred" and the third phone has the far end on the line.
#[test]
fn a_call_is_transferred_from_the_window() {
    let recordings = tempfile::tempdir().unwrap();
    let (mut transferee, far_port) = far_end("gui-transferee");
    let (mut target, target_port) = far_end("gui-transfer-target");
    let mut harness = ready_window(recordings.path(), None);
    dial(&mut harness, &format!("sip:bob@127.0.0.1:{far_port}"));
    wait_for(&mut harness, "Connected");
    harness.get_by_label("Transfer").click();
    harness.step();
    let field = harness.get_by_label("Transfer to");
    field.focus();
    field.type_text(&format!("sip:carol@127.0.0.1:{target_port}"));
    harness.step();
    harness.get_by_label("Transfer call").click_accesskit();
    wait_for(&mut harness, "transferred");
    let log = target.wait_for_output("incoming call from", Duration::from_secs(10));
    assert!(log.contains("incoming call from"), "{log}");
    let log = transferee.wait_for_output("transferred to", Duration::from_secs(5));
    assert!(
        log.contains(&format!("carol@127.0.0.1:{target_port}")),
        "{log}"
    );
    transferee.stop();
    target.stop();
}

/// "Test recorder" in the settings: the built-in recorder answers OPTIONS with siprec and
/// takes a test session; a recorder URI where nobody listens is reported as not working.
#[test]
fn the_recorder_test_in_the_settings_says_what_it_found() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let mut harness = settings_window(recordings.path(), &config_dir.path().join("config.toml"));
    harness.get_by_label("Test recorder").click_accesskit();
    wait_for(&mut harness, "The recorder works");
    assert!(harness.query_by_label_contains("supports siprec").is_some());
    assert!(
        harness
            .query_by_label_contains("test recording session accepted")
            .is_some()
    );

    let nobody = free_port();
    retype(
        &mut harness,
        "Recorder URI",
        &format!("sip:srs@127.0.0.1:{nobody};transport=tcp"),
    );
    harness.get_by_label("Test recorder").click_accesskit();
    wait_for(&mut harness, "The recorder does not take recordings");
    assert!(
        harness
            .query_all_by_label_contains("no answer")
            .next()
            .is_some()
    );
}

/// The audio part of the settings: the codec order changes with Up and Down and is saved
/// (and applied to the next call: the far end gets our new first choice); offering no
/// codec at all is refused next to the list.
#[test]
fn the_codec_order_is_edited_saved_and_used_by_the_next_call() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let mut harness = settings_window(recordings.path(), &path);
    assert!(
        harness
            .query_by_label_contains("No microphone in use")
            .is_some()
    );
    for codec in ["OPUS", "G722", "PCMU", "PCMA"] {
        harness.get_by_label(codec).click_accesskit();
        harness.step();
    }
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "media.codecs: offer at least one codec");
    assert!(!path.exists());

    for codec in ["OPUS", "G722", "PCMU", "PCMA"] {
        harness.get_by_label(codec).click_accesskit();
        harness.step();
    }
    // PCMA up three times: it becomes the first choice.
    for _ in 0..3 {
        harness.get_by_label("Move PCMA up").click();
        harness.step();
        harness.step();
    }
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "Saved to");
    let written = verbatim::settings::Settings::load(&path).unwrap();
    assert_eq!(written.media.codecs, ["pcma", "opus", "g722", "pcmu"]);

    let (mut far, far_port) = far_end("gui-codec-far-end");
    dial(&mut harness, &format!("sip:bob@127.0.0.1:{far_port}"));
    wait_for(&mut harness, "Connected");
    // The call's quality line names the codec the far end took: our new first choice.
    wait_for(&mut harness, "PCMA ·");
    harness.get_by_label("Hang up").click_accesskit();
    wait_for(&mut harness, "ended");
    far.expect_success(Duration::from_secs(20));
}

/// The first call a new user can make: Echo test, no account and no server; recorded by the
/// built-in recorder.
#[test]
fn the_echo_test_answers_and_its_call_is_recorded() {
    let recordings = tempfile::tempdir().unwrap();
    let mut harness = ready_window(recordings.path(), None);
    harness.get_by_label("Echo test").click();
    wait_for(&mut harness, "Connected");
    assert!(
        harness
            .query_by_label("sip:echo@verbatim.invalid")
            .is_some()
    );
    harness.get_by_label("Record").click();
    wait_for(&mut harness, "Recording 0:");
    harness.get_by_label("Hang up").click();
    wait_for(&mut harness, "· recorded");
    // The history finds the call's files (here there is no sound card to play them on).
    harness.get_by_label("Play").click();
    wait_for(
        &mut harness,
        "the recording is there, but playing it needs a sound card",
    );
    let folders = verbatim::archive::session::session_folders(recordings.path());
    assert_eq!(folders.len(), 1);
    // Out of the box the recording is encrypted: the history opened it with the key.
    let label = support::find_wav(&folders[0], "label-1-");
    assert!(
        label.to_string_lossy().ends_with(".wav.age"),
        "{}",
        label.display()
    );
    std::fs::remove_dir_all(&folders[0]).unwrap();
    harness.get_by_label("Play").click();
    wait_for(&mut harness, "this call's recording is not in");
}

/// A recorder over TLS that demands a client certificate: with the recording settings' CA
/// and client certificate the call is recorded; without the certificate the recorder turns
/// the phone away and the indicator says the recording is not running.
#[test]
fn a_recorder_over_mutual_tls_records_with_the_settings_certificate() {
    let pki = support::Pki::new(&["127.0.0.1"]);
    let srs_dir = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) = start_recorder(
        "gui-tls-recorder",
        srs_dir.path(),
        &[
            "--transport",
            "tls",
            "--tls-cert",
            pki.path("server.pem").to_str().unwrap(),
            "--tls-key",
            pki.path("server.key").to_str().unwrap(),
            "--tls-client-ca",
            pki.path("ca.pem").to_str().unwrap(),
        ],
    );
    let settings = |with_certificate: bool| {
        let mut settings = verbatim::settings::RecordingSettings {
            srs: Some(format!("sips:srs@127.0.0.1:{srs_port}")),
            tls_ca_file: Some(pki.path("ca.pem")),
            ..Default::default()
        };
        if with_certificate {
            settings.tls_client_certificate = Some(pki.path("client.pem"));
            settings.tls_client_key = Some(pki.path("client.key"));
        }
        settings.validate().unwrap()
    };
    for with_certificate in [true, false] {
        let recordings = tempfile::tempdir().unwrap();
        let (mut far, far_port) = far_end("gui-tls-far-end");
        let mut harness = Harness::new_ui_state(
            |ui, app: &mut VerbatimApp| app.show(ui),
            app_recording(recordings.path(), settings(with_certificate), "127.0.0.1:0"),
        );
        wait_for(&mut harness, "Ready on");
        dial(&mut harness, &format!("sip:bob@127.0.0.1:{far_port}"));
        wait_for(&mut harness, "Connected");
        harness.get_by_label("Record").click();
        if with_certificate {
            wait_for(&mut harness, "Recording 0:");
        } else {
            wait_for(&mut harness, "retrying");
        }
        harness.get_by_label("Hang up").click();
        wait_for(&mut harness, "ended");
        far.expect_success(Duration::from_secs(20));
    }
    srs.stop();
    assert_eq!(
        verbatim::archive::session::session_folders(srs_dir.path()).len(),
        1,
        "only the phone with the certificate got in"
    );
}

/// The first start (no settings file): a welcome panel offers the echo test, an account and
/// a recorder; it goes away once the settings are saved.
#[test]
fn the_first_start_welcomes_with_the_echo_test_an_account_and_a_recorder() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let mut harness = Harness::builder()
        .with_size(egui::vec2(800.0, 1800.0))
        .build_ui_state(
            |ui, app: &mut VerbatimApp| app.show(ui),
            app(recordings.path(), None)
                .with_settings(path.clone(), verbatim::settings::Settings::default()),
        );
    wait_for(&mut harness, "Welcome to Verbatim");
    harness.get_by_label("Try the echo test").click();
    wait_for(&mut harness, "Connected");
    harness.get_by_label("Hang up").click();
    wait_for(&mut harness, "ended");
    assert!(
        harness.query_by_label("SIP address").is_none(),
        "settings folded"
    );
    harness.get_by_label("Add a SIP account").click();
    harness.step();
    harness.step();
    assert!(
        harness.query_by_label("SIP address").is_some(),
        "settings opened"
    );
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "Saved to");
    assert!(harness.query_by_label("Welcome to Verbatim").is_none());
    assert!(path.exists());
}

/// "Test recorder" against a recorder nobody here wrote: sipp answers the OPTIONS with
/// siprec and takes the test session (checking its Require, Contact, inactive labelled
/// streams and metadata), which the phone then ends.
#[test]
fn the_recorder_test_works_against_sipp_as_the_recorder() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut sipp = Peer::new("gui-sipp-recorder-check");
    start_sipp_uas(
        &mut sipp,
        &Scenario::File(sipp_scenario("srs_check.xml")),
        port,
        "t1",
        &["-m", "2"],
    );
    let mut harness = settings_window(recordings.path(), &config_dir.path().join("config.toml"));
    retype(
        &mut harness,
        "Recorder URI",
        &format!("sip:srs@127.0.0.1:{port};transport=tcp"),
    );
    harness.get_by_label("Test recorder").click_accesskit();
    wait_for(&mut harness, "The recorder works");
    assert!(harness.query_by_label_contains("supports siprec").is_some());
    assert!(harness.query_by_label_contains("ended (200)").is_some());
    sipp.expect_success(Duration::from_secs(20));
}

/// A flood of INVITEs and OPTIONS (500 a second for 8 s) reaches the window's phone during a
/// recorded call: at most 16 of them ring, the rest are refused by the phone before the
/// window hears of them, the window keeps drawing, and the call's own buttons still work.
#[test]
fn the_window_stays_usable_under_a_sip_flood() {
    let recordings = tempfile::tempdir().unwrap();
    let (mut far, far_port) = far_end("gui-flood-far-end");
    let port = free_port();
    let mut harness = Harness::new_ui_state(
        |ui, app: &mut VerbatimApp| app.show(ui),
        app_on(recordings.path(), None, &format!("127.0.0.1:{port}")),
    );
    wait_for(&mut harness, "Ready on");
    dial(&mut harness, &format!("sip:bob@127.0.0.1:{far_port}"));
    wait_for(&mut harness, "Connected");
    harness.get_by_label("Record").click();
    wait_for(&mut harness, "Recording 0:");

    let flood = std::thread::spawn(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = socket.local_addr().unwrap();
        let started = Instant::now();
        let mut sent = 0u32;
        while started.elapsed() < Duration::from_secs(8) {
            for _ in 0..10 {
                let (method, cseq) = if sent.is_multiple_of(2) {
                    ("INVITE", "1 INVITE")
                } else {
                    ("OPTIONS", "1 OPTIONS")
                };
                let request = format!(
                    "{method} sip:x@127.0.0.1:{port} SIP/2.0\r\n\
                     Via: SIP/2.0/UDP {local};branch=z9hG4bKgui{sent}\r\nMax-Forwards: 70\r\n\
                     From: <sip:flood@{local}>;tag=g{sent}\r\nTo: <sip:x@127.0.0.1:{port}>\r\n\
                     Call-ID: gui-flood-{sent}\r\nCSeq: {cseq}\r\nContact: <sip:flood@{local}>\r\n\
                     Content-Length: 0\r\n\r\n"
                );
                let _ = socket.send_to(request.as_bytes(), ("127.0.0.1", port));
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        sent
    });

    let mut slowest = Duration::ZERO;
    let mut frames = 0u32;
    let mut most_ringing = 0;
    while !flood.is_finished() {
        let frame = Instant::now();
        harness.step();
        slowest = slowest.max(frame.elapsed());
        frames += 1;
        most_ringing = most_ringing.max(harness.query_all_by_label("Answer").count());
        assert!(
            harness.query_by_label_contains("Recording 0:").is_some(),
            "the recorded call's indicator went away during the flood"
        );
        std::thread::sleep(Duration::from_millis(15));
    }
    let sent = flood.join().unwrap();
    println!(
        "window under a flood of {sent} requests in 8 s: {frames} frames, slowest {slowest:?}, \
         at most {most_ringing} calls ringing"
    );
    assert!(
        most_ringing <= 16,
        "{most_ringing} calls ring in the window"
    );
    assert!(frames > 100, "only {frames} frames in 8 s");

    // The call's own controls still answer.
    harness.get_by_label("Hang up").click();
    wait_for(&mut harness, "ended");
    far.expect_success(Duration::from_secs(20));
}

/// The recording notice is set in the settings: a bad interval is refused with the field's
/// name, a good one is saved under `[recording.notice]`.
#[test]
fn the_recording_notice_is_set_in_the_settings() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let mut harness = settings_window(recordings.path(), &path);
    harness.step();
    harness.get_by_label("Warning tone every").click();
    harness.step();
    harness
        .get_by_label("Announce \"This call is being recorded\" when recording starts")
        .click();
    harness.step();
    retype(&mut harness, "seconds", "ten");
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "recording.notice.tone_every_seconds");
    assert!(!path.exists());

    retype(&mut harness, "seconds", "10");
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "Saved to");
    let written = verbatim::settings::Settings::load(&path).unwrap();
    let notice = &written.recording.notice;
    assert!(notice.tone && notice.announcement, "{notice:?}");
    assert_eq!(notice.tone_every_seconds, 10);
    assert!(notice.skip_for_record_aware && notice.local_cues);
}

/// Plain files are a deliberate choice: unticking encryption shows the warning at once, and
/// the file says `encrypt = false` once saved.
#[test]
fn plain_recordings_are_chosen_in_the_settings_with_a_warning() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let mut harness = settings_window(recordings.path(), &path);
    let warning = "Recordings will be stored as plain files";
    assert!(harness.query_by_label_contains(warning).is_none());
    harness
        .get_by_label_contains("Encrypt stored recordings")
        .click();
    harness.step();
    assert!(harness.query_by_label_contains(warning).is_some());
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "Saved to");
    let written = verbatim::settings::Settings::load(&path).unwrap();
    assert!(!written.recording.encrypt);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("encrypt = false")
    );
}

/// The first start makes the recordings key and says where it is kept, and that without
/// it the recordings cannot be played.
#[test]
fn a_new_recordings_key_is_announced_with_where_it_is_kept() {
    let recordings = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("new.key");
    let mut recording = verbatim::settings::RecordingSettings::default()
        .validate()
        .unwrap();
    recording.storage.key_file = Some(key_file.clone());
    let app = app_recording(recordings.path(), recording, "127.0.0.1:0");
    let mut harness = Harness::builder()
        .with_size(egui::vec2(800.0, 900.0))
        .build_ui_state(|ui, app: &mut VerbatimApp| app.show(ui), app);
    wait_for(
        &mut harness,
        "Recordings are encrypted with a new key kept in",
    );
    assert!(
        harness
            .query_by_label_contains(key_file.to_str().unwrap())
            .is_some()
    );
    assert!(key_file.is_file());
}

/// What the administrator's policy fixes is shown with its value, cannot be changed, and
/// says who set it; saving leaves the user's own values in the file.
#[test]
fn settings_the_administrator_fixed_are_shown_and_cannot_be_changed() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let admin = verbatim::settings::AdminPolicy::parse(
        "[recording]\nauto = \"all\"\npolicy = \"mandatory\"\n",
    )
    .unwrap();
    let mut harness = settings_window_under(recordings.path(), &path, admin);
    harness.step();
    for label in ["Record every call", "Recording is mandatory"] {
        let checkbox = harness.get_by_label(label);
        assert!(checkbox.accesskit_node().is_disabled(), "{label} is fixed");
        assert_eq!(
            checkbox.accesskit_node().toggled(),
            Some(egui::accesskit::Toggled::True),
            "{label} shows the policy's value"
        );
    }
    assert_eq!(
        harness
            .query_all_by_label("Set by your administrator")
            .count(),
        2
    );
    assert!(
        !harness
            .get_by_label("Mix both voices into one stream")
            .accesskit_node()
            .is_disabled(),
        "what the policy leaves alone stays the user's"
    );
    harness.get_by_label("Recording is mandatory").click();
    harness.step();
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "Saved to");
    // The file keeps the user's own values: the policy holds while it is there, and a
    // policy the administrator lifts leaves nothing of it behind.
    let written = verbatim::settings::Settings::load(&path).unwrap();
    assert_eq!(written.recording.policy, "optional");
    assert_eq!(written.recording.auto, "none");
}

/// A link opened elsewhere (`verbatim open`) reaches the window: an address waits in the
/// dial field for the user's Call (a page must not send calls, and the account's login, to
/// any server unasked), and then the call connects.
#[test]
fn a_link_handed_to_the_window_waits_in_the_dial_field_and_is_called() {
    let recordings = tempfile::tempdir().unwrap();
    let (mut far_end, far_port) = far_end("gui-link-far-end");
    let (links, received) = std::sync::mpsc::channel();
    let mut harness = Harness::new_ui_state(
        |ui, app: &mut VerbatimApp| app.show(ui),
        app(recordings.path(), None).with_links(received),
    );
    wait_for(&mut harness, "Ready on");
    let target = format!("sip:bob@127.0.0.1:{far_port}");
    links.send(target.clone()).unwrap();
    wait_for(&mut harness, "then press Call");
    assert_eq!(
        harness.get_by_label("Dial").value().as_deref(),
        Some(target.as_str())
    );
    assert!(
        harness.query_by_label("Hang up").is_none(),
        "not called unasked"
    );
    harness.get_by_label("Call").click();
    wait_for(&mut harness, "Connected");
    harness.get_by_label("Hang up").click();
    wait_for(&mut harness, "ended");
    far_end.expect_success(Duration::from_secs(20));
}

/// The history is searched and a call in it is placed again with one click; the welcome
/// that a first start shows is gone once the first call is made.
#[test]
fn a_call_is_found_in_the_history_and_placed_again() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let (mut far, far_port) = far_end_for("gui-history-far-end", 2);
    let mut harness = Harness::new_ui_state(
        |ui, app: &mut VerbatimApp| app.show(ui),
        app(recordings.path(), None).with_settings(
            config_dir.path().join("config.toml"),
            verbatim::settings::Settings::default(),
        ),
    );
    wait_for(&mut harness, "Ready on");
    assert!(harness.query_by_label("Welcome to Verbatim").is_some());
    dial(&mut harness, &format!("sip:bob@127.0.0.1:{far_port}"));
    wait_for(&mut harness, "Connected");
    assert!(
        harness.query_by_label("Welcome to Verbatim").is_none(),
        "the welcome is gone once a call is made"
    );
    harness.get_by_label("Hang up").click();
    wait_for(&mut harness, "ended");
    wait_for(&mut harness, "Call again");

    let search = harness.get_by_label("Search");
    search.focus();
    search.type_text("nobody");
    // The text is in after this frame; the list is drawn from it in the next.
    harness.step();
    harness.step();
    assert!(harness.query_by_label("No calls match").is_some());
    assert!(harness.query_by_label("Call again").is_none());
    let search = harness.get_by_label("Search");
    search.focus();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.key_press(egui::Key::Backspace);
    harness.get_by_label("Search").type_text("BOB");
    harness.step();
    harness.step();
    assert!(harness.query_by_label("No calls match").is_none());

    harness.get_by_label("Call again").click();
    wait_for(&mut harness, "Connected");
    harness.get_by_label("Hang up").click();
    wait_for(&mut harness, "ended");
    far.expect_success(Duration::from_secs(20));
}

/// Attended transfer from the window: the first call is put on hold, a second is placed
/// (the consultation), and "Transfer A to B" puts the two far ends through to each other:
/// both calls end here as transferred, and the target's phone took the transferee's call
/// in place of the consultation.
#[test]
fn a_held_call_is_transferred_to_the_consultation_from_the_window() {
    let recordings = tempfile::tempdir().unwrap();
    let (_transferee, transferee_port) = far_end("gui-attended-transferee");
    let (mut target, target_port) = far_end("gui-attended-target");
    let mut harness = ready_window(recordings.path(), None);
    let first = format!("sip:bob@127.0.0.1:{transferee_port}");
    dial(&mut harness, &first);
    wait_for(&mut harness, "Connected");
    harness.get_by_label("Hold").click();
    wait_for(&mut harness, "Resume");
    let second = format!("sip:carol@127.0.0.1:{target_port}");
    dial(&mut harness, &second);
    let button = format!("Transfer {first} to {second}");
    wait_for(&mut harness, &button);
    harness.get_by_label(&button).click();
    wait_for(&mut harness, "transferred");
    let deadline = Instant::now() + Duration::from_secs(10);
    while harness.query_by_label("Hang up").is_some() {
        assert!(
            Instant::now() < deadline,
            "a call is still up in the window"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    target.wait_for_output("replaces ours (attended transfer)", Duration::from_secs(5));
}

/// The microphone's processing is set in the audio settings and saved.
#[test]
fn echo_cancellation_and_noise_suppression_are_set_and_saved() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let mut harness = settings_window(recordings.path(), &path);
    let echo = harness.get_by_label("Echo cancellation");
    assert_eq!(
        echo.accesskit_node().toggled(),
        Some(egui::accesskit::Toggled::True)
    );
    echo.click_accesskit();
    harness.step();
    harness.get_by_label("Automatic gain").click_accesskit();
    harness.step();
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "Saved to");
    let written = verbatim::settings::Settings::load(&path).unwrap();
    assert!(!written.audio.echo_cancellation);
    assert!(written.audio.auto_gain);
    assert_eq!(
        written.audio.noise_suppression,
        verbatim::audio::NoiseLevel::Off
    );
}

/// What a notification showed: summary, body and actions.
type Shown = (String, String, Vec<String>);

/// A desktop's notification server (the freedesktop interface), on a bus of the test's own:
/// it keeps what it was asked to show and close.
#[derive(Default, Clone)]
struct NotificationServer {
    /// Each notification, by id (from 1).
    shown: std::sync::Arc<std::sync::Mutex<Vec<Shown>>>,
    closed: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl NotificationServer {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut shown = self.shown.lock().unwrap();
        shown.push((summary, body, actions));
        u32::try_from(shown.len()).unwrap()
    }

    fn close_notification(&self, id: u32) {
        self.closed.lock().unwrap().push(id);
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("test".into(), "verbatim".into(), "1".into(), "1.2".into())
    }
}

/// An incoming call shows a desktop notification with Answer and Decline; choosing Answer
/// there answers the call (as the window's button would), and the notification goes.
#[test]
fn an_incoming_call_is_notified_on_the_desktop_and_answered_from_the_notification() {
    let bus = PrivateBus::start();
    let server = NotificationServer::default();
    let desktop = bus.serve(
        "org.freedesktop.Notifications",
        "/org/freedesktop/Notifications",
        server.clone(),
    );
    let recordings = tempfile::tempdir().unwrap();
    let port = free_port();
    let recording = verbatim::settings::RecordingSettings::default()
        .validate()
        .unwrap();
    let mut harness = Harness::new_ui_state(
        |ui, app: &mut VerbatimApp| app.show(ui),
        app_notifying(
            recordings.path(),
            recording,
            &format!("127.0.0.1:{port}"),
            verbatim::ui::call_notifications::NotificationBus::At(bus.address.clone()),
        ),
    );
    wait_for(&mut harness, "Ready on");
    let mut caller = call_the_window("gui-notified-caller", CAROL, port, 2);
    wait_for(&mut harness, "Incoming call");
    step_until(&mut harness, 5, "no notification was shown", |_| {
        !server.shown.lock().unwrap().is_empty()
    });
    let (summary, body, actions) = server.shown.lock().unwrap()[0].clone();
    assert_eq!(summary, "Incoming call");
    assert!(body.contains("carol"), "{body}");
    assert_eq!(actions, ["answer", "Answer", "decline", "Decline"]);
    // The user clicks Answer in the notification.
    desktop
        .emit_signal(
            None::<()>,
            "/org/freedesktop/Notifications",
            "org.freedesktop.Notifications",
            "ActionInvoked",
            &(1u32, "answer"),
        )
        .unwrap();
    wait_for(&mut harness, "Connected");
    step_until(
        &mut harness,
        5,
        "the notification stayed after the answer",
        |_| server.closed.lock().unwrap().contains(&1),
    );
    caller.expect_success(Duration::from_secs(20));
}

/// `verbatim call TARGET` in `peer` as `user` (with its password) through the proxy on
/// `proxy_port` (kamailio), without registering, for one second.
fn call_through_proxy(
    peer: &mut Peer,
    (user, password): (&str, &str),
    proxy_port: u16,
    target: &str,
) {
    let config = Account::new(user, password)
        .outbound_proxy(&format!("127.0.0.1:{proxy_port}"))
        .write_config(peer, "caller.toml");
    start_verbatim(
        peer,
        [
            "call",
            target,
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--duration",
            "1",
        ],
    );
}

/// Two accounts behind the window, both registered with kamailio: each shows its own state;
/// a call to the second is shown as for it; the picker places the next call from it.
#[test]
fn two_accounts_register_take_their_own_calls_and_the_picker_chooses_the_caller() {
    let recordings = tempfile::tempdir().unwrap();
    let kamailio_port = free_port();
    let mut kamailio = Peer::new("gui-two-accounts-kamailio");
    start_kamailio(&mut kamailio, kamailio_port);
    let file = format!(
        "[[account]]\nname = \"home\"\nuri = \"sip:alice@127.0.0.1\"\n\
         registrar = \"sip:127.0.0.1:{kamailio_port}\"\npassword = \"alicepw\"\n\
         [[account]]\nname = \"work\"\nuri = \"sip:bob@127.0.0.1\"\n\
         registrar = \"sip:127.0.0.1:{kamailio_port}\"\npassword = \"bobpw\"\n"
    );
    let settings = verbatim::settings::Settings::parse(&file).unwrap();
    let accounts = settings.validate_accounts().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let recording = verbatim::settings::RecordingSettings::default()
        .validate()
        .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut config = bridge_config(
        recordings.path(),
        recording,
        &listen,
        verbatim::ui::call_notifications::NotificationBus::Off,
    );
    config.accounts = accounts;
    let mut harness = Harness::builder()
        .with_size(egui::vec2(800.0, 1800.0))
        .build_ui_state(
            |ui, app: &mut VerbatimApp| app.show(ui),
            VerbatimApp::new(Bridge::start(config, || {})).with_settings(path.clone(), settings),
        );
    wait_for(&mut harness, "home: sip:alice@127.0.0.1: registered");
    wait_for(&mut harness, "work: sip:bob@127.0.0.1: registered");

    // alice calls bob through kamailio (as an outbound proxy, without registering).
    let mut caller = Peer::new("gui-two-accounts-caller");
    call_through_proxy(
        &mut caller,
        ("alice", "alicepw"),
        kamailio_port,
        "sip:bob@127.0.0.1",
    );
    wait_for(&mut harness, "for work");
    harness.get_by_label("Answer").click_accesskit();
    wait_for(&mut harness, "Connected");
    // The caller hangs up after a second.
    wait_for(&mut harness, "ended");
    caller.expect_success(Duration::from_secs(10));

    // The next call goes out as bob: chosen in the picker.
    let (mut far_end, far_port) = far_end("gui-two-accounts-far-end");
    harness.get_by_label("from").click();
    harness.step();
    harness.step();
    harness.get_by_label("work").click();
    harness.step();
    dial(&mut harness, &format!("sip:someone@127.0.0.1:{far_port}"));
    wait_for(&mut harness, "Connected");
    harness.get_by_label("Hang up").click_accesskit();
    wait_for(&mut harness, "ended");
    far_end.expect_success(Duration::from_secs(20));
    let heard = far_end.stderr();
    assert!(
        heard.lines().any(
            |line| line.starts_with("incoming call from") && line.contains("sip:bob@127.0.0.1")
        ),
        "the far end was not called by bob (the account chosen):\n{heard}"
    );

    // An account edited and saved registers again, and the registrar keeps it: the old
    // registration goes before the new one comes (they share a Contact).
    harness.get_by_label("Settings").click();
    harness.step();
    retype(&mut harness, "Display name", "Alice at home");
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "Saved to");
    kamailio.wait_for_output(
        "interop: unregistered sip:alice@127.0.0.1",
        Duration::from_secs(10),
    );
    step_until(&mut harness, 15, "alice registered again", |_| {
        kamailio
            .stderr()
            .matches("interop: registered sip:alice@127.0.0.1")
            .count()
            >= 2
    });
    show_phone(&mut harness);
    let mut second = Peer::new("gui-two-accounts-second-caller");
    call_through_proxy(
        &mut second,
        ("bob", "bobpw"),
        kamailio_port,
        "sip:alice@127.0.0.1",
    );
    wait_for(&mut harness, "for home");
    harness.get_by_label("Answer").click_accesskit();
    wait_for(&mut harness, "Connected");
    step_until(&mut harness, 15, "the second caller hung up", |_| {
        !second.is_running()
    });
    second.expect_success(Duration::from_secs(5));
    kamailio.stop();
}

/// Accounts are added, named, switched off and removed in the settings; the file gets one
/// `[[account]]` table each.
#[test]
fn accounts_are_added_named_switched_off_and_removed_in_the_settings() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let mut harness = settings_window(recordings.path(), &path);
    retype(&mut harness, "Account name", "home");
    retype(&mut harness, "SIP address", "sip:alice@home.example.net");
    harness.get_by_label("Add account").click_accesskit();
    harness.step();
    retype(&mut harness, "Account name", "home");
    retype(&mut harness, "SIP address", "sip:alice@work.example.com");
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "two accounts are called \"home\"");
    assert!(!path.exists(), "nothing written");

    retype(&mut harness, "Account name", "work");
    harness
        .get_by_label("Enabled (registers and takes calls)")
        .click_accesskit();
    harness.step();
    harness.get_by_label("Add account").click_accesskit();
    harness.step();
    retype(&mut harness, "SIP address", "sip:old@example.org");
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "Saved to");
    let written = verbatim::settings::Settings::load(&path).unwrap();
    let names: Vec<String> = written.accounts.iter().map(|a| a.name()).collect();
    assert_eq!(names, ["home", "work", "old@example.org"]);
    assert!(written.accounts[0].is_enabled() && !written.accounts[1].is_enabled());

    // An emptied address does not delete an account (Remove account does).
    retype(&mut harness, "SIP address", "");
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "use Remove account");
    retype(&mut harness, "SIP address", "sip:old@example.org");

    // The form shows the third; removing it leaves two.
    harness.get_by_label("Remove account").click_accesskit();
    harness.step();
    harness.get_by_label("Save settings").click_accesskit();
    step_until(&mut harness, 10, "the file lost the third account", |_| {
        verbatim::settings::Settings::load(&path).is_ok_and(|s| s.accounts.len() == 2)
    });
}

/// A StatusNotifierItem's tooltip: icon name, pixmaps, title, text.
type ToolTip = (String, Vec<(i32, i32, Vec<u8>)>, String, String);

/// The tray icon registers with the panel, says "No call", turns into the recording icon
/// with the call's line while a call is recorded, and a click on it brings the window back.
#[test]
fn the_tray_icon_shows_the_recording_and_brings_the_window_back() {
    let bus = PrivateBus::start();
    let (panel, watcher) = bus.panel();
    let clicked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let click = clicked.clone();
    let tray = verbatim::ui::tray::TrayIcon::start(
        &verbatim::ui::call_notifications::NotificationBus::At(bus.address.clone()),
        verbatim::ui::tray::ItemName::WellKnown,
        move || click.store(true, std::sync::atomic::Ordering::SeqCst),
    )
    .unwrap();
    let item = watcher
        .items
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("registered");
    // What the panel hears: the item's signals.
    let (signals, heard) = std::sync::mpsc::channel();
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface("org.kde.StatusNotifierItem")
        .unwrap()
        .build();
    let listening = zbus::blocking::MessageIterator::for_match_rule(rule, &panel, None).unwrap();
    std::thread::spawn(move || {
        for message in listening.flatten() {
            let member = message.header().member().map(|m| m.to_string());
            if signals.send(member.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let property = |name: &str| -> zbus::zvariant::OwnedValue {
        tray_item(&panel, &item).get_property(name).unwrap()
    };
    let tooltip = |value: zbus::zvariant::OwnedValue| {
        let (_, _, _, text): ToolTip = value.try_into().unwrap();
        text
    };
    let text = |value: zbus::zvariant::OwnedValue| String::try_from(value).unwrap();
    assert_eq!(text(property("Title")), "Verbatim");
    assert_eq!(text(property("IconName")), "org.verbatim.Verbatim");
    // Its own pixels too, for a panel whose theme has no icon by that name (a build run
    // from source installs none): 48 by 48 ARGB, not blank.
    let pixmap = |value: zbus::zvariant::OwnedValue| {
        let mut pixmaps: Vec<(i32, i32, Vec<u8>)> = value.try_into().unwrap();
        assert_eq!(pixmaps.len(), 1);
        let (width, height, argb) = pixmaps.remove(0);
        assert_eq!((width, height, argb.len()), (48, 48, 48 * 48 * 4));
        assert!(argb.chunks(4).any(|pixel| pixel[0] > 0), "not blank");
        argb
    };
    // Alpha first: the corners of both icons are clear.
    let corner = |argb: &[u8]| argb[0];
    let app_pixels = pixmap(property("IconPixmap"));

    let recordings = tempfile::tempdir().unwrap();
    let recording = verbatim::settings::RecordingSettings::default()
        .validate()
        .unwrap();
    let mut config = bridge_config(
        recordings.path(),
        recording,
        "127.0.0.1:0",
        verbatim::ui::call_notifications::NotificationBus::Off,
    );
    config.tray = Some(tray);
    let mut harness = Harness::new_ui_state(
        |ui, app: &mut VerbatimApp| app.show(ui),
        VerbatimApp::new(Bridge::start(config, || {})).with_tray(true),
    );
    wait_for(&mut harness, "Ready on");
    step_until(&mut harness, 5, "the tooltip never said no call", |_| {
        tooltip(property("ToolTip")) == "No call"
    });
    harness.get_by_label("Echo test").click();
    wait_for(&mut harness, "Connected");
    harness.get_by_label("Record").click();
    wait_for(&mut harness, "Recording");
    step_until(
        &mut harness,
        10,
        "the tray did not show the recording",
        |_| text(property("IconName")) == "media-record",
    );
    let line = tooltip(property("ToolTip"));
    assert!(line.ends_with(": recording"), "{line}");
    let recording_pixels = pixmap(property("IconPixmap"));
    assert_ne!(
        recording_pixels, app_pixels,
        "the pixels show the recording too"
    );
    let centre = (24 * 48 + 24) * 4;
    assert_eq!(
        &recording_pixels[centre..centre + 4],
        &[255, 0xd3, 0x2f, 0x2f],
        "an opaque red disc, alpha first"
    );
    assert_eq!(corner(&recording_pixels), 0);
    assert_eq!(corner(&app_pixels), 0);
    assert_eq!(pixmap(property("AttentionIconPixmap")), recording_pixels);
    let told: Vec<String> = heard.try_iter().collect();
    assert!(
        told.iter().any(|s| s == "NewIcon") && told.iter().any(|s| s == "NewToolTip"),
        "the panel was not told of the new icon: {told:?}"
    );
    harness.get_by_label("Hang up").click();
    wait_for(&mut harness, "ended");
    step_until(&mut harness, 10, "the tray kept the recording icon", |_| {
        text(property("IconName")) == "org.verbatim.Verbatim"
    });

    click_tray_item(&panel, &item);
    assert!(clicked.load(std::sync::atomic::Ordering::SeqCst));

    // The panel restarts: a new watcher gets the item again.
    drop(panel);
    let (_panel, watcher) = bus.panel();
    step_until(&mut harness, 10, "the item did not register again", |_| {
        !watcher.items.lock().unwrap().is_empty()
    });
}

/// The window, with "Start at login" ticked on its settings page and saved to `path`, once;
/// `autostart` carries it out.
fn tick_start_at_login_and_save(
    recordings: &std::path::Path,
    path: &std::path::Path,
    autostart: verbatim::ui::autostart::Autostart,
) -> Harness<'static, VerbatimApp> {
    let recording = verbatim::settings::RecordingSettings::default()
        .validate()
        .unwrap();
    let mut config = bridge_config(
        recordings,
        recording,
        "127.0.0.1:0",
        verbatim::ui::call_notifications::NotificationBus::Off,
    );
    config.autostart = Some(autostart);
    let mut harness = Harness::builder()
        .with_size(egui::vec2(800.0, 2200.0))
        .build_ui_state(
            |ui, app: &mut VerbatimApp| app.show(ui),
            VerbatimApp::new(Bridge::start(config, || {}))
                .with_settings(path.to_owned(), verbatim::settings::Settings::default()),
        );
    wait_for(&mut harness, "Ready on");
    harness.get_by_label("Settings").click();
    harness.step();
    harness.get_by_label("Start at login").click_accesskit();
    harness.step();
    harness.get_by_label("Save settings").click_accesskit();
    harness
}

/// "Start at login" writes an XDG autostart entry that starts this program, and switching
/// it off removes the entry.
#[test]
fn start_at_login_writes_and_removes_the_autostart_entry() {
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let entry = config_dir
        .path()
        .join("autostart")
        .join("org.verbatim.Verbatim.desktop");
    let program = std::env::current_exe().unwrap();
    let autostart = verbatim::ui::autostart::Autostart::Entry {
        entry: entry.clone(),
        program: program.clone(),
        arguments: vec!["--config".into(), path.display().to_string()],
    };
    let mut harness = tick_start_at_login_and_save(recordings.path(), &path, autostart);
    wait_for(&mut harness, "Saved to");
    step_until(&mut harness, 5, "no autostart entry", |_| entry.exists());
    let written = std::fs::read_to_string(&entry).unwrap();
    assert!(written.contains("\nType=Application\n"), "{written}");
    let exec = written
        .lines()
        .find_map(|line| line.strip_prefix("Exec="))
        .unwrap();
    assert_eq!(
        exec,
        format!("{} --config {}", program.display(), path.display()),
        "the entry starts this program with its settings file"
    );
    // A deleted entry is written again by the next save while the box stays ticked.
    std::fs::remove_file(&entry).unwrap();
    harness.get_by_label("Save settings").click_accesskit();
    step_until(&mut harness, 5, "the entry was not mended", |_| {
        entry.exists()
    });
    assert!(
        verbatim::settings::Settings::load(&path)
            .unwrap()
            .window
            .start_at_login
    );

    harness.get_by_label("Start at login").click_accesskit();
    harness.step();
    harness.get_by_label("Save settings").click_accesskit();
    step_until(&mut harness, 5, "the autostart entry stayed", |_| {
        !entry.exists()
    });
}

/// Inside a Flatpak sandbox the item may own no well-known name: it registers its
/// connection's unique name, and the panel reaches it there.
#[test]
fn a_tray_item_in_a_sandbox_registers_its_unique_name() {
    let bus = PrivateBus::start();
    let (panel, watcher) = bus.panel();
    let _tray = verbatim::ui::tray::TrayIcon::start(
        &verbatim::ui::call_notifications::NotificationBus::At(bus.address.clone()),
        verbatim::ui::tray::ItemName::Unique,
        || {},
    )
    .unwrap();
    let item = watcher.items.lock().unwrap().first().cloned().unwrap();
    assert!(item.starts_with(':'), "{item}");
    let title: String = tray_item(&panel, &item).get_property("Title").unwrap();
    assert_eq!(title, "Verbatim");
}

/// Inside a Flatpak sandbox "Start at login" asks the desktop's Background portal (here a
/// portal of the test's own on a bus of its own), which answers later by a Response signal:
/// it is asked to start `verbatim --config FILE` at login, then no more; a portal that
/// refuses is shown as a problem.
#[test]
fn start_at_login_in_a_sandbox_asks_the_background_portal() {
    let bus = PrivateBus::start();
    let portal = BackgroundPortal::default();
    let _served = bus.serve(
        "org.freedesktop.portal.Desktop",
        "/org/freedesktop/portal/desktop",
        portal.clone(),
    );
    let recordings = tempfile::tempdir().unwrap();
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("config.toml");
    let autostart = verbatim::ui::autostart::Autostart::Portal {
        bus: verbatim::ui::call_notifications::NotificationBus::At(bus.address.clone()),
        arguments: vec!["--config".into(), path.display().to_string()],
        asked_before: false,
    };
    let mut harness = tick_start_at_login_and_save(recordings.path(), &path, autostart);
    step_until(&mut harness, 5, "the portal was not asked", |_| {
        portal.asked().len() == 1
    });
    let asked = portal.asked().remove(0);
    assert!(asked.autostart);
    harness.step();
    assert!(
        harness.query_by_label_contains("Start at login:").is_none(),
        "a granted request is no problem"
    );
    assert_eq!(
        asked.commandline,
        [
            "verbatim".to_owned(),
            "--config".into(),
            path.display().to_string()
        ]
    );
    assert!(!asked.reason.is_empty());

    harness.get_by_label("Start at login").click_accesskit();
    harness.step();
    harness.get_by_label("Save settings").click_accesskit();
    step_until(&mut harness, 5, "the portal was not told", |_| {
        portal.asked().len() == 2
    });
    assert!(!portal.asked()[1].autostart);
    // Saving again without a change asks the user nothing.
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(&mut harness, "Saved to");
    for _ in 0..20 {
        harness.step();
    }
    assert_eq!(portal.asked().len(), 2, "no second question for no change");

    // The user says no: the window says so.
    portal.refuse();
    harness.get_by_label("Start at login").click_accesskit();
    harness.step();
    harness.get_by_label("Save settings").click_accesskit();
    wait_for(
        &mut harness,
        "Start at login: starting at login was refused",
    );
}

/// With a tray and "closing keeps Verbatim running", closing the window cancels the close
/// and hides it; without the setting the close goes through.
#[test]
fn closing_the_window_hides_it_in_the_tray_when_set() {
    let close_and_look = |app: VerbatimApp, quit_first: bool| {
        let mut harness = Harness::new_ui_state(|ui, app: &mut VerbatimApp| app.show(ui), app);
        harness.step();
        if quit_first {
            harness.get_by_label("Quit").click();
            harness.step();
        }
        harness
            .input_mut()
            .viewports
            .entry(egui::ViewportId::ROOT)
            .or_default()
            .events
            .push(egui::ViewportEvent::Close);
        harness.step();
        harness
            .output()
            .viewport_output
            .get(&egui::ViewportId::ROOT)
            .map(|viewport| viewport.commands.clone())
            .unwrap_or_default()
    };
    let recordings = tempfile::tempdir().unwrap();
    let commands = close_and_look(app(recordings.path(), None).with_tray(true), false);
    assert!(
        commands.contains(&egui::ViewportCommand::CancelClose)
            && commands.contains(&egui::ViewportCommand::Visible(false)),
        "{commands:?}"
    );
    let commands = close_and_look(app(recordings.path(), None).with_tray(false), false);
    assert!(
        !commands.contains(&egui::ViewportCommand::CancelClose),
        "{commands:?}"
    );
    // Quit stops the phone however closing is set.
    let commands = close_and_look(app(recordings.path(), None).with_tray(true), true);
    assert!(
        !commands.contains(&egui::ViewportCommand::CancelClose),
        "{commands:?}"
    );
    // On Wayland, where a window cannot hide itself, it is minimized.
    let commands = close_and_look(
        app(recordings.path(), None)
            .with_tray(true)
            .hiding_by_minimizing(),
        false,
    );
    assert!(
        commands.contains(&egui::ViewportCommand::Minimized(true)),
        "{commands:?}"
    );
}
