//! The desktop app (eframe). It talks to the engine only through the bridge's commands and
//! events ([`bridge`]), draws what [`model`] derives from them ([`app`]), and repaints only
//! when the phone has news or a clock on screen moves.

mod account;
pub mod app;
pub mod autostart;
pub mod bridge;
pub mod call_notifications;
pub mod history;
pub mod model;
mod playback;
pub(crate) mod sandbox;
mod settings_view;
pub mod tray;

use eframe::egui;

pub use app::VerbatimApp;
pub use bridge::{AudioControl, Bridge, BridgeConfig, Password, UiCommand, UiEvent};

/// Opens the window and runs until it is closed; with `settings`, the window can edit and
/// save them (the file's path, and what it holds now).
/// Links the window dials: one that opened it, and where later ones arrive
/// ([`crate::links`]).
#[derive(Debug, Default)]
pub struct LinkSetup {
    pub dial_first: Option<String>,
    pub socket: Option<std::path::PathBuf>,
}

pub fn run(
    mut config: BridgeConfig,
    settings: Option<(std::path::PathBuf, crate::settings::Settings)>,
    links: LinkSetup,
) -> Result<(), String> {
    let window: std::sync::Arc<std::sync::OnceLock<egui::Context>> = std::sync::Arc::default();
    let prefs = settings
        .as_ref()
        .map(|(_, s)| s.window.clone())
        .unwrap_or_default();
    if prefs.tray {
        let wake = window.clone();
        let shown = tray::TrayIcon::start(
            &call_notifications::NotificationBus::Session,
            tray::ItemName::for_this_process(),
            move || {
                if let Some(ctx) = wake.get() {
                    ctx.send_viewport_cmd(egui::ViewportCommand::Visible(true));
                    ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
                    ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                    ctx.request_repaint();
                }
            },
        );
        match shown {
            Ok(icon) => config.tray = Some(icon),
            Err(problem) => {
                tracing::info!(%problem, "no tray icon");
                if prefs.start_hidden || prefs.close_to_tray {
                    config.problems.push(format!(
                        "No tray here ({problem}): the window stays shown, and closing it quits"
                    ));
                }
            }
        }
    }
    let has_tray = config.tray.is_some();
    let mut viewport = egui::ViewportBuilder::default();
    // The same icon the desktop entry names; a window without it still opens.
    if let Ok(icon) = eframe::icon_data::from_png_bytes(include_bytes!(
        "../../assets/icons/256x256/org.verbatim.Verbatim.png"
    )) {
        viewport = viewport.with_icon(std::sync::Arc::new(icon));
    }
    let options = eframe::NativeOptions {
        viewport: viewport
            .with_app_id("org.verbatim.Verbatim")
            .with_title("Verbatim")
            .with_inner_size([460.0, 560.0])
            .with_min_inner_size([360.0, 420.0]),
        renderer: eframe::Renderer::Glow,
        ..eframe::NativeOptions::default()
    };
    let admin = config.admin.clone();
    // Links are taken from before the window is up, so that a second click while it starts
    // does not open a second phone; the window is woken for each once it exists.
    let links_in = links.socket.as_ref().and_then(|socket| {
        let (tx, rx) = std::sync::mpsc::channel();
        let wake = window.clone();
        match crate::links::listen(socket, move |dial| {
            let taken = tx.send(dial).is_ok();
            if let Some(ctx) = wake.get() {
                ctx.request_repaint();
            }
            taken
        }) {
            Ok(_) => Some(rx),
            // Links then open a window of their own; this one still works.
            Err(problem) => {
                tracing::warn!(%problem, "links are not taken here");
                None
            }
        }
    });
    eframe::run_native(
        "Verbatim",
        options,
        Box::new(move |creation| {
            let ctx = creation.egui_ctx.clone();
            let bridge = Bridge::start(config, move || ctx.request_repaint());
            let mut app = VerbatimApp::new(bridge);
            if has_tray {
                app = app.with_tray(prefs.close_to_tray);
                // Hidden only where the tray can bring it back.
                if prefs.start_hidden {
                    app = app.starting_hidden();
                }
                if std::env::var_os("WAYLAND_DISPLAY").is_some() {
                    app = app.hiding_by_minimizing();
                }
            }
            let _ = window.set(creation.egui_ctx.clone());
            if let Some(rx) = links_in {
                app = app.with_links(rx);
            }
            if let Some(dial) = links.dial_first {
                app = app.dialling(dial);
            }
            Ok(Box::new(match settings {
                Some((path, settings)) => {
                    app.with_settings(path, settings).with_admin_policy(admin)
                }
                None => app,
            }))
        }),
    )
    .map_err(|e| format!("the window could not open: {e}"))
}
