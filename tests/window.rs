#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The real window (eframe on X11, OpenGL through Mesa) on an X server of the test's own
//! (Xvfb), not the test harness: it opens at its default size; set to start hidden, it stays
//! hidden in the tray until the tray icon is clicked. Windows are looked up with xdotool and
//! measured with xwininfo.
//!
//! Needs the Debian packages xvfb, xdotool and x11-utils (and Mesa's OpenGL).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::desktop::{PrivateBus, click_tray_item};
use support::{Peer, free_port};

/// An X server of the test's own on a display nobody uses; stopped on drop.
struct XServer {
    server: Child,
    display: String,
}

impl XServer {
    fn start() -> XServer {
        for tool in ["Xvfb", "xdotool", "xwininfo"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success()),
                "{tool} is missing: apt-get install xvfb xdotool x11-utils"
            );
        }
        // Xvfb picks a free display itself and says which once it takes connections.
        let mut server = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x900x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts");
        let mut number = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(server.stdout.take().unwrap()),
            &mut number,
        )
        .unwrap();
        let display = format!(":{}", number.trim());
        assert!(display.len() > 1, "Xvfb named no display");
        XServer { server, display }
    }

    /// The windows called Verbatim; only the mapped (shown) ones with `visible`.
    fn windows(&self, visible: bool) -> Vec<String> {
        let mut search = Command::new("xdotool");
        search.env("DISPLAY", &self.display).arg("search");
        if visible {
            search.arg("--onlyvisible");
        }
        let found = search.args(["--name", "^Verbatim$"]).output().unwrap();
        String::from_utf8_lossy(&found.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Width and height of a window, as xwininfo measures it.
    fn size(&self, window: &str) -> (u32, u32) {
        let info = Command::new("xwininfo")
            .env("DISPLAY", &self.display)
            .args(["-id", window])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&info.stdout);
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.trim().strip_prefix(name))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in xwininfo's answer:\n{text}"))
        };
        (field("Width:"), field("Height:"))
    }
}

impl Drop for XServer {
    fn drop(&mut self) {
        // SIGTERM, so that it removes its lock file and socket.
        let _ = Command::new("kill")
            .args(["-TERM", &self.server.id().to_string()])
            .status();
        let _ = self.server.wait();
    }
}

fn wait(seconds: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the desktop app in `peer` on `x`, with its own home (and `config` as its
/// settings file) and `bus` as its session bus when given.
fn start_window(peer: &mut Peer, x: &XServer, config: &str, bus: Option<&str>) {
    let home = peer.path("home");
    let settings = home.join(".config").join("verbatim");
    std::fs::create_dir_all(&settings).unwrap();
    std::fs::write(settings.join("config.toml"), config).unwrap();
    let mut command = peer.command(support::verbatim_bin());
    command
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local").join("share"))
        .env("XDG_RUNTIME_DIR", &home)
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    if let Some(bus) = bus {
        command.env("DBUS_SESSION_BUS_ADDRESS", bus);
    }
    peer.start(command);
}

/// The window opens shown, at the size it was designed for (460 by 560).
#[test]
fn the_window_opens_at_its_default_size() {
    let x = XServer::start();
    let mut app = Peer::new("window-default-size");
    start_window(&mut app, &x, "", None);
    wait(20, "no window called Verbatim was shown", || {
        !x.windows(true).is_empty()
    });
    let window = x.windows(true).remove(0);
    assert_eq!(x.size(&window), (460, 560));
    assert!(app.is_running(), "{}", app.report());
}

/// Set to start hidden, the window waits unseen while its tray icon is in the panel; a click
/// on the icon shows it.
#[test]
fn a_window_started_hidden_is_shown_by_a_click_on_its_tray_icon() {
    let x = XServer::start();
    let bus = PrivateBus::start();
    let (panel, watcher) = bus.panel();
    let mut app = Peer::new("window-start-hidden");
    start_window(
        &mut app,
        &x,
        "[window]\ntray = true\nstart_hidden = true\n",
        Some(&bus.address),
    );
    wait(20, "the tray icon never registered", || {
        !watcher.items.lock().unwrap().is_empty()
    });
    wait(20, "the window was never made", || {
        !x.windows(false).is_empty()
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        x.windows(true).is_empty(),
        "the window showed although it was to start hidden:\n{}",
        app.report()
    );
    let item = watcher.items.lock().unwrap()[0].clone();
    click_tray_item(&panel, &item);
    wait(
        10,
        "a click on the tray icon did not show the window",
        || !x.windows(true).is_empty(),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(!x.windows(true).is_empty(), "the window hid itself again");
    assert!(app.is_running(), "{}", app.report());
}
