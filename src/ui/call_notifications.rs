//! Incoming calls as desktop notifications with Answer and Decline (the freedesktop
//! Notifications interface on the session bus, through zbus), so that a call is noticed and
//! taken while the window is hidden or behind others. A choice in the notification comes
//! back as the same command as the window's button; the notification goes once the call is
//! answered, declined or gone, or the phone stops. The D-Bus calls are made on a thread of
//! their own, each given [`METHOD_TIMEOUT`]: a slow or wedged notification server must not
//! hold up the phone.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc::WeakUnboundedSender;
use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::Value;

use super::bridge::UiCommand;
use crate::engine::CallId;

const DESTINATION: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
const ANSWER: &str = "answer";
const DECLINE: &str = "decline";
/// How long a call to the notification server may take.
const METHOD_TIMEOUT: Duration = Duration::from_secs(2);

/// What the D-Bus thread is asked to do.
enum Request {
    Incoming(CallId, String),
    Done(CallId),
}

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

impl NotificationBus {
    /// A connection to this bus, to be built; None when it is switched off.
    pub fn builder(&self) -> Option<zbus::Result<zbus::blocking::connection::Builder<'static>>> {
        match self {
            NotificationBus::Off => None,
            NotificationBus::Session => Some(zbus::blocking::connection::Builder::session()),
            NotificationBus::At(address) => Some(zbus::blocking::connection::Builder::address(
                address.as_str(),
            )),
        }
    }
}

/// The incoming calls notified, by the notification server's id.
type Shown = Arc<Mutex<HashMap<u32, CallId>>>;

/// The phone's handle on its notifications; dropping it closes those still shown.
#[derive(Debug)]
pub struct CallNotifications {
    requests: Sender<Request>,
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
        let builder = bus.builder()?;
        let connection: zbus::Result<Connection> = builder
            .map(|b| b.method_timeout(METHOD_TIMEOUT))
            .and_then(zbus::blocking::connection::Builder::build);
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
        let (requests, received) = channel();
        let worker = Worker { proxy, shown };
        let spawned = std::thread::Builder::new()
            .name("verbatim-notify".into())
            .spawn(move || worker.serve(&received));
        if let Err(error) = spawned {
            tracing::warn!(%error, "no desktop notifications");
            return None;
        }
        Some(CallNotifications { requests })
    }

    /// Shows that `from` calls, with Answer and Decline.
    pub fn incoming(&self, call: CallId, from: &str) {
        let _ = self.requests.send(Request::Incoming(call, from.to_owned()));
    }

    /// The call was answered, declined or ended: its notification goes.
    pub fn done(&self, call: CallId) {
        let _ = self.requests.send(Request::Done(call));
    }
}

/// The D-Bus side: shows and closes notifications as asked, in order.
struct Worker {
    proxy: Proxy<'static>,
    shown: Shown,
}

impl Worker {
    /// Until the phone drops its handle; then every notification still shown goes.
    fn serve(&self, requests: &Receiver<Request>) {
        for request in requests {
            match request {
                Request::Incoming(call, from) => self.incoming(call, &from),
                Request::Done(call) => self.done(call),
            }
        }
        let calls: Vec<CallId> = self
            .shown
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .copied()
            .collect();
        for call in calls {
            self.done(call);
        }
    }

    fn incoming(&self, call: CallId, from: &str) {
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
                escape_markup(from).as_str(),
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

    fn done(&self, call: CallId) {
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

/// Servers that take markup in the body (GNOME, KDE, dunst) would read `<sip:...>` as a tag;
/// a caller's display name must not become a link or an image either.
fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_name_cannot_become_markup() {
        assert_eq!(
            escape_markup("\"<b>Boss</b>\" <sip:a@b> & co"),
            "\"&lt;b&gt;Boss&lt;/b&gt;\" &lt;sip:a@b&gt; &amp; co"
        );
    }
}
