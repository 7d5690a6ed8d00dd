//! The built-in echo test from the command line: `verbatim call sip:echo@verbatim.invalid`
//! reaches the in-process echo phone over loopback, which sends back what it hears a second
//! later; recorded, the call lands in the built-in recorder like any other.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use support::{Audio, Peer, start_verbatim_with_env, tone_amplitude, write_tone_wav};

#[test]
fn the_echo_test_plays_back_what_it_hears_a_second_later_and_records() {
    let mut caller = Peer::new("verbatim-echo-caller");
    let tone = caller.path("tone.wav");
    // One second of 700 Hz, then the file ends (silence follows).
    write_tone_wav(&tone, 48_000, 1000, 700.0);
    let heard = caller.path("heard.wav");
    let data = caller.path("data");
    start_verbatim_with_env(
        &mut caller,
        [
            "call",
            "sip:echo@verbatim.invalid",
            "--play",
            tone.to_str().unwrap(),
            "--save-received",
            heard.to_str().unwrap(),
            "--duration",
            "4",
            "--record",
        ],
        &[("XDG_DATA_HOME", data.to_str().unwrap())],
    );
    caller.expect_success(Duration::from_secs(20));
    let audio = Audio::read_wav(&heard);
    let rate = audio.sample_rate;
    let second = |from: f64, to: f64| {
        let at = |s: f64| ((s * f64::from(rate)) as usize).min(audio.samples.len());
        &audio.samples[at(from)..at(to)]
    };
    // Our tone plays in the first second; the echo sends it back during the second one.
    let early = tone_amplitude(second(0.1, 0.8), rate, 700.0);
    let echoed = tone_amplitude(second(1.3, 1.9), rate, 700.0);
    assert!(early < 0.02, "nothing comes back at once ({early:.3})");
    assert!(
        echoed > 0.1,
        "the tone comes back after the delay ({echoed:.3})"
    );
    // The recording of the call is in the built-in recorder's folder.
    let recordings = data.join("verbatim/recordings");
    let folders = verbatim::archive::session::session_folders(&recordings);
    assert_eq!(folders.len(), 1, "{}", caller.report());
    // Encrypted, as every recording is unless the user asks for plain files.
    let summary = verbatim::archive::session::stored(&folders[0], "summary.json").unwrap();
    assert!(
        summary.to_string_lossy().ends_with("summary.json.age"),
        "{}",
        summary.display()
    );
    assert!(!folders[0].join("summary.json").exists());
}

/// `[recording] folder` moves the built-in recorder's files.
#[test]
fn the_built_in_recorder_writes_where_the_settings_say() {
    let mut caller = Peer::new("verbatim-echo-folder");
    let folder = caller.path("elsewhere");
    let config = caller.path("config.toml");
    std::fs::write(
        &config,
        format!("[recording]\nfolder = {:?}\n", folder.to_str().unwrap()),
    )
    .unwrap();
    let data = caller.path("data");
    start_verbatim_with_env(
        &mut caller,
        [
            "call",
            "sip:echo@verbatim.invalid",
            "--config",
            config.to_str().unwrap(),
            "--duration",
            "1",
            "--record",
        ],
        &[("XDG_DATA_HOME", data.to_str().unwrap())],
    );
    caller.expect_success(Duration::from_secs(20));
    assert_eq!(
        verbatim::archive::session::session_folders(&folder).len(),
        1,
        "{}",
        caller.report()
    );
    assert!(!data.join("verbatim/recordings").exists());

    // Recordings are the user's alone: the folders 0700, every file in them 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode =
            |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let session = &verbatim::archive::session::session_folders(&folder)[0];
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(session), 0o700);
        let files: Vec<_> = std::fs::read_dir(session)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(files.len() >= 4, "{files:?}");
        for file in files {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
}
