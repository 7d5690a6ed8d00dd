//! The desktop's D-Bus side for tests: a bus of the test's own, and a panel's tray watcher
//! on it.

/// A D-Bus daemon of the test's own, killed on drop.
pub struct PrivateBus {
    daemon: std::process::Child,
    pub address: String,
}

impl PrivateBus {
    pub fn start() -> PrivateBus {
        use std::io::BufRead;
        let mut daemon = std::process::Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dbus-daemon (apt-get install dbus)");
        let mut address = String::new();
        std::io::BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        PrivateBus {
            daemon,
            address: address.trim().to_owned(),
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A panel's StatusNotifierWatcher (the KDE/freedesktop tray protocol), on a bus of the
/// test's own: it keeps the names of the items registered with it.
#[derive(Default, Clone)]
pub struct TrayWatcher {
    pub items: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl TrayWatcher {
    fn register_status_notifier_item(&self, service: String) {
        self.items.lock().unwrap().push(service);
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

impl PrivateBus {
    /// Serves `server` on this bus as `name` at `path` (a desktop service a test plays).
    pub fn serve<T: zbus::object_server::Interface>(
        &self,
        name: &str,
        path: &str,
        server: T,
    ) -> zbus::blocking::Connection {
        zbus::blocking::connection::Builder::address(self.address.as_str())
            .unwrap()
            .name(name)
            .unwrap()
            .serve_at(path, server)
            .unwrap()
            .build()
            .unwrap()
    }

    /// A panel that shows tray icons: its watcher, and the connection it serves on.
    pub fn panel(&self) -> (zbus::blocking::Connection, TrayWatcher) {
        let watcher = TrayWatcher::default();
        let connection = self.serve(
            "org.kde.StatusNotifierWatcher",
            "/StatusNotifierWatcher",
            watcher.clone(),
        );
        (connection, watcher)
    }
}

/// The tray item a panel's watcher was given (its bus name), as the panel talks to it.
pub fn tray_item<'a>(
    panel: &'a zbus::blocking::Connection,
    item: &'a str,
) -> zbus::blocking::Proxy<'a> {
    zbus::blocking::Proxy::new(
        panel,
        item,
        "/StatusNotifierItem",
        "org.kde.StatusNotifierItem",
    )
    .unwrap()
}

/// A click on the tray item, as the panel reports one.
pub fn click_tray_item(panel: &zbus::blocking::Connection, item: &str) {
    tray_item(panel, item)
        .call_method("Activate", &(0i32, 0i32))
        .unwrap();
}

/// What an app asked the Background portal.
#[derive(Debug, Clone)]
pub struct BackgroundAsked {
    pub autostart: bool,
    pub commandline: Vec<String>,
    pub reason: String,
}

/// The desktop's Background portal (org.freedesktop.portal.Background) as a test plays it:
/// it keeps what it was asked and answers by a Response signal on the request's object
/// (granted, or refused as when the user says no) at once, before its reply, as a portal
/// that needs no question does: an app that listens only after its call misses it.
#[derive(Default, Clone)]
pub struct BackgroundPortal {
    asked: std::sync::Arc<std::sync::Mutex<Vec<BackgroundAsked>>>,
    refusing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl BackgroundPortal {
    pub fn asked(&self) -> Vec<BackgroundAsked> {
        self.asked.lock().unwrap().clone()
    }

    /// From now on it answers as a user who said no.
    pub fn refuse(&self) {
        self.refusing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[zbus::interface(name = "org.freedesktop.portal.Background")]
impl BackgroundPortal {
    async fn request_background(
        &self,
        #[zbus(connection)] connection: &zbus::Connection,
        #[zbus(header)] header: zbus::message::Header<'_>,
        _parent_window: String,
        options: std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
    ) -> zbus::zvariant::OwnedObjectPath {
        let text = |key: &str| {
            options
                .get(key)
                .and_then(|v| String::try_from(v.clone()).ok())
                .unwrap_or_default()
        };
        let autostart = options
            .get("autostart")
            .and_then(|v| bool::try_from(v).ok())
            .unwrap_or(false);
        let commandline = options
            .get("commandline")
            .and_then(|v| Vec::<String>::try_from(v.clone()).ok())
            .unwrap_or_default();
        self.asked.lock().unwrap().push(BackgroundAsked {
            autostart,
            commandline,
            reason: text("reason"),
        });
        let sender = header
            .sender()
            .map(|s| s.trim_start_matches(':').replace('.', "_"))
            .unwrap_or_default();
        let handle = format!(
            "/org/freedesktop/portal/desktop/request/{sender}/{}",
            text("handle_token")
        );
        let refused = self.refusing.load(std::sync::atomic::Ordering::SeqCst);
        let results: std::collections::HashMap<&str, zbus::zvariant::Value<'_>> = [(
            "autostart",
            zbus::zvariant::Value::from(autostart && !refused),
        )]
        .into_iter()
        .collect();
        let response: u32 = if refused { 1 } else { 0 };
        connection
            .emit_signal(
                None::<&str>,
                handle.as_str(),
                "org.freedesktop.portal.Request",
                "Response",
                &(response, results),
            )
            .await
            .unwrap();
        zbus::zvariant::OwnedObjectPath::try_from(handle).unwrap()
    }
}
