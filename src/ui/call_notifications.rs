//! Incoming calls as desktop notifications with Answer and Decline (the freedesktop
//! Notifications interface on the session bus, through zbus), so that a call is noticed and
//! taken while the window is hidden or behind others. A choice in the notification comes
//! back as the same command as the window's button; the notification goes once the call is
//! answered, declined or gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc::WeakUnboundedSender;
use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::Value;

use super::bridge::UiCommand;
use crate::engine::CallId;

const DESTINATION: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
const ANSWER: &str = "answer";
const DECLINE: &str = "decline";

/// Which bus to show notifications on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NotificationBus {
    /// None are shown.
    #[default]
    Off,
    /// The user's session bus.
    Session,
    /// The bus at this D-Bus address.
    At(String),
}

/// The incoming calls notified, by the notification server's id.
type Shown = Arc<Mutex<HashMap<u32, CallId>>>;

#[derive(Debug)]
pub struct CallNotifications {
    proxy: Proxy<'static>,
    shown: Shown,
}

impl CallNotifications {
    /// Connects to the notification server on `bus`; choices made in a notification go to
    /// `commands` while the phone takes commands (a weak sender: the notifications must not
    /// keep the phone running once the window is gone). None when there is no bus or no
    /// server to use (said in the log).
    pub fn connect(
        bus: &NotificationBus,
        commands: WeakUnboundedSender<UiCommand>,
    ) -> Option<Self> {
        let connection = match bus {
            NotificationBus::Off => return None,
            NotificationBus::Session => Connection::session(),
            NotificationBus::At(address) => {
                zbus::blocking::connection::Builder::address(address.as_str())
                    .and_then(zbus::blocking::connection::Builder::build)
            }
        };
        let proxy = connection
            .and_then(|connection| Proxy::new(&connection, DESTINATION, PATH, DESTINATION))
            .map_err(|error| tracing::warn!(%error, "no desktop notifications"))
            .ok()?;
        let shown = Shown::default();
        let signals = match proxy.receive_all_signals() {
            Ok(signals) => signals,
            Err(error) => {
                tracing::warn!(%error, "desktop notifications cannot report choices");
                return None;
            }
        };
        let listening = Arc::clone(&shown);
        let spawned = std::thread::Builder::new()
            .name("verbatim-notifications".into())
            .spawn(move || {
                for signal in signals {
                    if !choice_made(&signal, &listening, &commands) {
                        return;
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "desktop notifications cannot report choices");
            return None;
        }
        Some(CallNotifications { proxy, shown })
    }

    /// Shows that `from` calls, with Answer and Decline.
    pub fn incoming(&self, call: CallId, from: &str) {
        let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
        // Critical: it stays until the user acts (the spec's urgency byte).
        hints.insert("urgency", Value::U8(2));
        hints.insert("desktop-entry", Value::from("org.verbatim.Verbatim"));
        let actions = vec![ANSWER, "Answer", DECLINE, "Decline"];
        let sent = self.proxy.call::<_, _, u32>(
            "Notify",
            &(
                "Verbatim",
                0u32,
                "org.verbatim.Verbatim",
                "Incoming call",
                from,
                actions,
                hints,
                0i32,
            ),
        );
        match sent {
            Ok(id) => {
                self.shown
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id, call);
            }
            Err(error) => tracing::warn!(%error, "the incoming call was not notified"),
        }
    }

    /// The call was answered, declined or ended: its notification goes.
    pub fn done(&self, call: CallId) {
        let ids: Vec<u32> = {
            let mut shown = self.shown.lock().unwrap_or_else(PoisonError::into_inner);
            let ids = shown
                .iter()
                .filter(|(_, c)| **c == call)
                .map(|(id, _)| *id)
                .collect();
            shown.retain(|_, c| *c != call);
            ids
        };
        for id in ids {
            if let Err(error) = self.proxy.call::<_, _, ()>("CloseNotification", &(id,)) {
                tracing::debug!(%error, id, "the notification could not be closed");
            }
        }
    }
}

/// Turns an ActionInvoked signal for one of our notifications into the window's command;
/// false once nobody takes commands any more.
fn choice_made(
    signal: &zbus::Message,
    shown: &Shown,
    commands: &WeakUnboundedSender<UiCommand>,
) -> bool {
    let header = signal.header();
    let Some(member) = header.member() else {
        return true;
    };
    if member.as_str() != "ActionInvoked" {
        return true;
    }
    let Ok((id, action)) = signal.body().deserialize::<(u32, String)>() else {
        return true;
    };
    let call = shown
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .copied();
    let command = match (call, action.as_str()) {
        (Some(call), ANSWER) => UiCommand::Answer(call),
        (Some(call), DECLINE) => UiCommand::Decline(call),
        _ => return true,
    };
    commands
        .upgrade()
        .is_some_and(|commands| commands.send(command).is_ok())
}
