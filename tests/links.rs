//! Links that dial, between two processes: `verbatim open LINK` (what the desktop runs for a
//! sip:, sips:, tel: or callto: link) hands the link to the window already running, which
//! listens in the user's runtime directory (here the test plays that window with the same
//! listener), and exits; a link that is no dialling link is refused with the reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;
use std::time::Duration;

fn open(runtime: &std::path::Path, link: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(["open", link])
        .env("XDG_RUNTIME_DIR", runtime)
        .env("XDG_CONFIG_HOME", runtime.join("config"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap()
}

#[test]
fn a_link_opened_in_another_process_is_dialled_by_the_running_window() {
    let runtime = tempfile::tempdir().unwrap();
    let socket = runtime.path().join("verbatim").join("links.sock");
    let (tx, rx) = std::sync::mpsc::channel();
    let _window = verbatim::links::listen(&socket, move |dial| tx.send(dial).is_ok()).unwrap();

    let output = open(runtime.path(), "tel:+1 (555) 123-4567");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("the running Verbatim dials +15551234567"),
        "{stderr}"
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).as_deref(),
        Ok("+15551234567")
    );

    let output = open(runtime.path(), "sip:bob@example.com");
    assert!(output.status.success());
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).as_deref(),
        Ok("sip:bob@example.com")
    );

    let refused = open(runtime.path(), "https://example.com/");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("only sip:, sips:, tel: and callto:"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(rx.try_recv().is_err(), "nothing reached the window");
}
