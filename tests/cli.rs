//! The command line's own surface: `--help` as a snapshot (a change to it is a change to a
//! stable interface, so it must be deliberate), `--version`, the completion scripts and the
//! manual page that packages install.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;

fn verbatim(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "verbatim {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Set VERBATIM_UPDATE_SNAPSHOTS=1 to accept a deliberate change.
fn matches_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/snapshots")
        .join(name);
    if std::env::var_os("VERBATIM_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{name} changed; if that is meant, run with VERBATIM_UPDATE_SNAPSHOTS=1.\n\
         --- expected\n{expected}\n--- actual\n{actual}"
    );
}

#[test]
fn help_is_the_stable_interface_it_was() {
    matches_snapshot("help.txt", &verbatim(&["--help"]));
    matches_snapshot("call-help.txt", &verbatim(&["call", "--help"]));
}

#[test]
fn version_names_the_crate_version() {
    assert_eq!(
        verbatim(&["--version"]).trim(),
        format!("verbatim {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_and_the_manual_cover_the_subcommands() {
    let bash = verbatim(&["completions", "bash"]);
    assert!(bash.contains("_verbatim()"), "{bash}");
    assert!(bash.contains("--transfer-to"));
    for shell in ["zsh", "fish"] {
        assert!(verbatim(&["completions", shell]).contains("transfer-to"));
    }
    let man = verbatim(&["manpage"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH verbatim"),
        "{man}"
    );
    for subcommand in ["call", "answer", "srs", "bench"] {
        assert!(man.contains(subcommand), "{subcommand} in the manual");
    }
}

/// Runs a one-second call to the echo test with these extra flags and returns what the log
/// file in a fresh data directory holds.
fn log_of_echo_call(flags: &[&str]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut args = vec![
        "call",
        "sip:echo@verbatim.invalid",
        "--duration",
        "1",
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(flags);
    let output = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(&args)
        .env("XDG_DATA_HOME", data.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let logs = data.path().join("verbatim/logs");
    let mut text = String::new();
    for entry in std::fs::read_dir(&logs).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

/// `--sip-trace` puts every SIP message in the daily log file, with who called whom hidden;
/// `--log-reveal` keeps it; without either, no SIP message is logged.
#[test]
fn sip_traces_go_to_the_log_file_redacted_unless_revealed() {
    let traced = log_of_echo_call(&["--sip-trace"]);
    assert!(
        traced.contains("INVITE sip:***@verbatim.invalid SIP/2.0"),
        "{traced}"
    );
    assert!(traced.contains("SIP/2.0 200 OK"), "{traced}");
    assert!(!traced.contains("sip:echo@"), "{traced}");
    assert!(
        traced
            .split("inline:")
            .skip(1)
            .all(|key| key.starts_with("***")),
        "no SRTP keys: {traced}"
    );
    let revealed = log_of_echo_call(&["--sip-trace", "--log-reveal"]);
    assert!(
        revealed.contains("INVITE sip:echo@verbatim.invalid SIP/2.0"),
        "{revealed}"
    );
    let quiet = log_of_echo_call(&[]);
    assert!(!quiet.contains("INVITE"), "{quiet}");
}
