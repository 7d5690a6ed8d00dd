//! The tray icon: a StatusNotifierItem (the freedesktop/KDE protocol every Linux panel with a
//! tray speaks) on the session bus, through zbus. It shows whether a call is being recorded
//! (its icon, status and tooltip follow the window's indicator) and a click on it brings the
//! window back, which is what lets the window close into the tray or start hidden.
//!
//! The D-Bus work runs on a thread of its own: the window only hands over the state it shows,
//! and a slow or absent panel never holds up a frame.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use zbus::blocking::{Connection, Proxy};
use zbus::object_server::SignalEmitter;

use super::call_notifications::NotificationBus;

const PATH: &str = "/StatusNotifierItem";
const WATCHER: &str = "org.kde.StatusNotifierWatcher";
const WATCHER_PATH: &str = "/StatusNotifierWatcher";
const APP_ICON: &str = "org.verbatim.Verbatim";
/// The freedesktop icon name every theme has for "recording".
const RECORDING_ICON: &str = "media-record";
/// The icons' own pixels, for a panel whose theme has no icon by the name: a build run from
/// source has installed none.
const PIXMAP_SIZE: u32 = 48;

/// An icon's pixels as StatusNotifierItem carries them: width, height, ARGB32 in network
/// byte order.
type Pixmap = (i32, i32, Vec<u8>);

/// The application's icon, from the PNG the desktop entry installs.
fn app_pixmap() -> Vec<Pixmap> {
    let Ok(icon) = eframe::icon_data::from_png_bytes(include_bytes!(
        "../../assets/icons/48x48/org.verbatim.Verbatim.png"
    )) else {
        return Vec::new();
    };
    let (Ok(width), Ok(height)) = (i32::try_from(icon.width), i32::try_from(icon.height)) else {
        return Vec::new();
    };
    let argb = icon
        .rgba
        .chunks_exact(4)
        .flat_map(|pixel| match *pixel {
            [red, green, blue, alpha] => [alpha, red, green, blue],
            _ => [0; 4],
        })
        .collect();
    vec![(width, height, argb)]
}

/// A red disc, as recording is drawn everywhere, with a soft edge.
fn recording_pixmap() -> Vec<Pixmap> {
    let centre = PIXMAP_SIZE as f32 / 2.0;
    let radius = centre * 0.75;
    let argb = (0..PIXMAP_SIZE * PIXMAP_SIZE)
        .flat_map(|at| {
            let x = (at % PIXMAP_SIZE) as f32 + 0.5 - centre;
            let y = (at / PIXMAP_SIZE) as f32 + 0.5 - centre;
            let coverage = (radius - x.hypot(y) + 0.5).clamp(0.0, 1.0);
            [(coverage * 255.0) as u8, 0xd3, 0x2f, 0x2f]
        })
        .collect();
    let side = PIXMAP_SIZE as i32;
    vec![(side, side, argb)]
}

/// What the tray shows: the state of the calls as the window's indicator has it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrayState {
    /// At least one call is being recorded as it should be.
    pub recording: bool,
    /// Something wants the user: a call rings, or a recording is in trouble.
    pub attention: bool,
    /// One line per call (who, and its recording), or that there is no call.
    pub summary: String,
}

impl TrayState {
    fn icon(&self) -> &'static str {
        if self.recording {
            RECORDING_ICON
        } else {
            APP_ICON
        }
    }

    fn pixmap(&self) -> Vec<Pixmap> {
        // Made once: panels read the icon at every change.
        static APP: std::sync::LazyLock<Vec<Pixmap>> = std::sync::LazyLock::new(app_pixmap);
        static RECORDING: std::sync::LazyLock<Vec<Pixmap>> =
            std::sync::LazyLock::new(recording_pixmap);
        if self.recording {
            RECORDING.clone()
        } else {
            APP.clone()
        }
    }

    fn status(&self) -> &'static str {
        if self.attention {
            "NeedsAttention"
        } else {
            "Active"
        }
    }
}

/// The item on the bus: its properties read the shared state; a click calls `activated`.
struct Item {
    state: Arc<Mutex<TrayState>>,
    activated: Box<dyn Fn() + Send + Sync>,
}

impl Item {
    fn state(&self) -> TrayState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The tooltip's D-Bus shape: icon name, icon pixmaps, title, text.
type ToolTip = (String, Vec<Pixmap>, String, String);

#[zbus::interface(name = "org.kde.StatusNotifierItem")]
impl Item {
    #[zbus(property)]
    fn category(&self) -> String {
        "Communications".into()
    }

    #[zbus(property)]
    fn id(&self) -> String {
        APP_ICON.into()
    }

    #[zbus(property)]
    fn title(&self) -> String {
        "Verbatim".into()
    }

    #[zbus(property)]
    fn status(&self) -> String {
        self.state().status().into()
    }

    #[zbus(property)]
    fn icon_name(&self) -> String {
        self.state().icon().into()
    }

    #[zbus(property)]
    fn icon_pixmap(&self) -> Vec<Pixmap> {
        self.state().pixmap()
    }

    #[zbus(property)]
    fn attention_icon_name(&self) -> String {
        self.state().icon().into()
    }

    #[zbus(property)]
    fn attention_icon_pixmap(&self) -> Vec<Pixmap> {
        self.state().pixmap()
    }

    #[zbus(property)]
    fn tool_tip(&self) -> ToolTip {
        let state = self.state();
        (
            state.icon().into(),
            Vec::new(),
            "Verbatim".into(),
            state.summary,
        )
    }

    /// No menu of its own: a click shows the window, which has everything.
    #[zbus(property)]
    fn item_is_menu(&self) -> bool {
        false
    }

    fn activate(&self, _x: i32, _y: i32) {
        (self.activated)();
    }

    fn secondary_activate(&self, _x: i32, _y: i32) {
        (self.activated)();
    }

    fn context_menu(&self, _x: i32, _y: i32) {
        (self.activated)();
    }

    fn scroll(&self, _delta: i32, _orientation: String) {}

    #[zbus(signal)]
    async fn new_icon(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn new_attention_icon(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn new_tool_tip(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn new_status(emitter: &SignalEmitter<'_>, status: &str) -> zbus::Result<()>;
}

/// The bus name the item is offered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemName {
    /// `org.kde.StatusNotifierItem-PID-1`, as the protocol suggests.
    WellKnown,
    /// The connection's own unique name. A Flatpak sandbox may own no other name, and its
    /// process ids are its own, so another sandbox's item could take ours.
    Unique,
}

impl ItemName {
    /// The name an item of this process can have where it runs.
    pub fn for_this_process() -> ItemName {
        if super::sandbox::inside_flatpak() {
            ItemName::Unique
        } else {
            ItemName::WellKnown
        }
    }
}

/// The window's handle on its tray icon, which stays in the panel while the app runs.
#[derive(Debug, Clone)]
pub struct TrayIcon {
    updates: Sender<TrayState>,
    shown: TrayState,
}

impl TrayIcon {
    /// Puts the icon in the panel of the desktop on `bus`; a click calls `activated` (on the
    /// D-Bus thread). An error says why there is no tray (no bus, no panel that shows
    /// StatusNotifierItems): the window then must not hide, since nothing could bring it
    /// back.
    pub fn start(
        bus: &NotificationBus,
        naming: ItemName,
        activated: impl Fn() + Send + Sync + 'static,
    ) -> Result<TrayIcon, String> {
        let builder = bus
            .builder()
            .ok_or("the tray is switched off")?
            .map_err(|e| format!("no session bus for the tray: {e}"))?;
        let state = Arc::new(Mutex::new(TrayState {
            summary: "No call".into(),
            ..TrayState::default()
        }));
        let item = Item {
            state: state.clone(),
            activated: Box::new(activated),
        };
        let well_known = format!("org.kde.StatusNotifierItem-{}-1", std::process::id());
        let builder = match naming {
            ItemName::WellKnown => builder.name(well_known.clone()),
            ItemName::Unique => Ok(builder),
        };
        let connection = builder
            .and_then(|b| b.serve_at(PATH, item))
            .and_then(zbus::blocking::connection::Builder::build)
            .map_err(|e| format!("the tray icon cannot be offered on the bus: {e}"))?;
        let name = match naming {
            ItemName::WellKnown => well_known,
            ItemName::Unique => connection
                .unique_name()
                .map(ToString::to_string)
                .ok_or("the bus gave the tray's connection no name")?,
        };
        register(&connection, &name).map_err(|e| format!("no panel shows tray icons here: {e}"))?;
        // A panel that restarts (or a watcher that comes back) forgets its items: ours
        // registers again each time the watcher's name gets an owner.
        let watching = connection.clone();
        let listening = zbus::blocking::fdo::DBusProxy::new(&watching)
            .and_then(|bus| bus.receive_name_owner_changed_with_args(&[(0, WATCHER)]));
        match listening {
            Ok(changes) => {
                let spawned = std::thread::Builder::new()
                    .name("tray-watcher".into())
                    .spawn(move || {
                        for change in changes {
                            let back = change
                                .args()
                                .is_ok_and(|args| args.new_owner().as_ref().is_some());
                            if back && let Err(error) = register(&watching, &name) {
                                tracing::info!(%error, "the tray icon could not register again");
                            }
                        }
                    });
                if let Err(error) = spawned {
                    tracing::info!(%error, "a restarted panel will not show the tray icon");
                }
            }
            Err(error) => tracing::info!(%error, "a restarted panel will not show the tray icon"),
        }
        let (updates, incoming) = channel();
        std::thread::Builder::new()
            .name("tray".into())
            .spawn(move || publish(&connection, &state, &incoming))
            .map_err(|e| format!("the tray's thread did not start: {e}"))?;
        Ok(TrayIcon {
            updates,
            shown: TrayState::default(),
        })
    }

    /// Shows `state` if it is news; cheap to call every frame.
    pub fn show(&mut self, state: TrayState) {
        if state != self.shown {
            let _ = self.updates.send(state.clone());
            self.shown = state;
        }
    }
}

/// Tells the panel's watcher our item's bus name.
fn register(connection: &Connection, name: &str) -> zbus::Result<()> {
    Proxy::new(connection, WATCHER, WATCHER_PATH, WATCHER)?
        .call_method("RegisterStatusNotifierItem", &(name))
        .map(drop)
}

/// The D-Bus thread: each new state goes into the item and the panel is told what changed.
/// It ends when every handle is dropped.
fn publish(connection: &Connection, state: &Arc<Mutex<TrayState>>, updates: &Receiver<TrayState>) {
    while let Ok(new) = updates.recv() {
        let old = std::mem::replace(
            &mut *state.lock().unwrap_or_else(PoisonError::into_inner),
            new.clone(),
        );
        let Ok(emitter) = SignalEmitter::new(connection.inner(), PATH) else {
            continue;
        };
        let told = zbus::block_on(async {
            if old.icon() != new.icon() {
                Item::new_icon(&emitter).await?;
                Item::new_attention_icon(&emitter).await?;
            }
            if old.status() != new.status() {
                Item::new_status(&emitter, new.status()).await?;
            }
            Item::new_tool_tip(&emitter).await
        });
        if let Err(error) = told {
            tracing::debug!(%error, "the tray could not tell the panel");
        }
    }
}
