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
