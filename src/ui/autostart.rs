//! Starting with the desktop session: an XDG autostart entry
//! (`$XDG_CONFIG_HOME/autostart/org.verbatim.Verbatim.desktop`, the Desktop Application
//! Autostart Specification) that the session runs at login. It is written or removed when
//! the settings are saved, and names the program that is running now. Inside a Flatpak
//! sandbox the desktop's Background portal is asked instead.

use std::path::{Path, PathBuf};

use super::call_notifications::NotificationBus;

const FILE: &str = "org.verbatim.Verbatim.desktop";

/// Where the entry goes: `autostart` in the user's config directory.
pub fn entry_path() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|dirs| dirs.config_dir().join("autostart").join(FILE))
}

/// The entry's text for starting `program` with `arguments` (the window; it hides itself
/// when the settings say so).
pub fn entry(program: &Path, arguments: &[String]) -> String {
    let mut exec = exec_quoted(&program.display().to_string());
    for argument in arguments {
        exec.push(' ');
        exec.push_str(&exec_quoted(argument));
    }
    format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=Verbatim\n\
         Comment=SIP phone that records its calls\n\
         Exec={}\n\
         Icon=org.verbatim.Verbatim\n\
         Terminal=false\n\
         X-GNOME-Autostart-enabled=true\n",
        exec
    )
}

/// One Exec argument (the Desktop Entry Specification's quoting; `%` doubled, since it
/// starts a field code).
fn exec_quoted(text: &str) -> String {
    let text = text.replace('%', "%%");
    if !text.contains(|c: char| c.is_whitespace() || "\"'\\`$;&|<>()*?#~".contains(c)) {
        return text;
    }
    let mut quoted = String::from("\"");
    for c in text.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// How this app is started at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Autostart {
    /// An entry this app writes: where it goes, and what starts this same app (its settings
    /// file when it was given one).
    Entry {
        entry: PathBuf,
        program: PathBuf,
        arguments: Vec<String>,
    },
    /// Inside a Flatpak sandbox an entry in the sandbox's own config folder is never read:
    /// the Background portal on `bus` asks the desktop to start the app (`verbatim` with
    /// `arguments`) at login, and the user may be asked.
    Portal {
        bus: NotificationBus,
        arguments: Vec<String>,
        /// What the settings said when the app started: the portal was asked for it then
        /// (an earlier run), so saving it unchanged asks nothing.
        asked_before: bool,
    },
}

impl Autostart {
    /// What starts the program running now at login: the portal inside a Flatpak sandbox,
    /// else an entry in the user's autostart folder.
    /// `on_now`: what the settings say at start.
    pub fn for_this_program(arguments: Vec<String>, on_now: bool) -> Option<Autostart> {
        if super::sandbox::inside_flatpak() {
            return Some(Autostart::Portal {
                bus: NotificationBus::Session,
                arguments,
                asked_before: on_now,
            });
        }
        Some(Autostart::Entry {
            entry: entry_path()?,
            program: std::env::current_exe().ok()?,
            arguments,
        })
    }

    /// Starts the app at login (`start_at_login`) or no more. Blocks while the portal asks
    /// the user, for as long as they take: see [`AutostartRequests`].
    pub fn apply(&self, start_at_login: bool) -> Result<(), String> {
        match self {
            Autostart::Entry {
                entry,
                program,
                arguments,
            } => apply(entry, start_at_login, program, arguments),
            Autostart::Portal { bus, arguments, .. } => ask_portal(bus, start_at_login, arguments),
        }
    }
}

const PORTAL: &str = "org.freedesktop.portal.Desktop";
const PORTAL_PATH: &str = "/org/freedesktop/portal/desktop";
const BACKGROUND: &str = "org.freedesktop.portal.Background";
const REQUEST: &str = "org.freedesktop.portal.Request";

/// "Start at login" carried out in the order chosen, on a thread of its own: the portal may
/// wait on the user for as long as they take, a later choice must not be overtaken by an
/// earlier one, and quitting must not wait for either.
#[derive(Debug)]
pub struct AutostartRequests {
    wanted: std::sync::mpsc::Sender<bool>,
}

impl AutostartRequests {
    /// The thread that applies `autostart`; what goes wrong is handed to `problem`.
    pub fn start(
        autostart: Autostart,
        problem: impl Fn(String) + Send + 'static,
    ) -> Result<AutostartRequests, String> {
        let (wanted, choices) = std::sync::mpsc::channel::<bool>();
        std::thread::Builder::new()
            .name("autostart".into())
            .spawn(move || {
                // The portal is asked only for a change, since each ask may put a question
                // to the user: what it last granted (None: not known). An entry is written at
                // each save instead (a deleted one is mended).
                let portal = matches!(autostart, Autostart::Portal { .. });
                let mut granted = match &autostart {
                    Autostart::Portal { asked_before, .. } => Some(*asked_before),
                    Autostart::Entry { .. } => None,
                };
                while let Ok(mut start_at_login) = choices.recv() {
                    // Only the latest choice counts.
                    while let Ok(later) = choices.try_recv() {
                        start_at_login = later;
                    }
                    if portal && granted == Some(start_at_login) {
                        continue;
                    }
                    match autostart.apply(start_at_login) {
                        Ok(()) => granted = Some(start_at_login),
                        Err(reason) => {
                            granted = None;
                            problem(reason);
                        }
                    }
                }
            })
            .map_err(|e| format!("Start at login: no thread for it: {e}"))?;
        Ok(AutostartRequests { wanted })
    }

    /// The settings were saved with "Start at login" on or off.
    pub fn want(&self, start_at_login: bool) {
        let _ = self.wanted.send(start_at_login);
    }
}

/// Asks the Background portal (RequestBackground) to start the app at login or not, and
/// waits for its answer (a Response signal on the request's own object).
fn ask_portal(
    bus: &NotificationBus,
    start_at_login: bool,
    arguments: &[String],
) -> Result<(), String> {
    use zbus::zvariant::Value;
    let connection = bus
        .builder()
        .ok_or("no session bus to reach the desktop's portal")?
        .and_then(zbus::blocking::connection::Builder::build)
        .map_err(|e| format!("no session bus to reach the desktop's portal: {e}"))?;
    // The request's object is named after our connection and a token of ours, so its
    // answer can be listened for before the request goes out (the portal's documented way).
    let token = format!("verbatim_autostart_{}", std::process::id());
    let sender = connection
        .unique_name()
        .map(|name| name.trim_start_matches(':').replace('.', "_"))
        .ok_or("the bus gave this connection no name")?;
    let handle = format!("{PORTAL_PATH}/request/{sender}/{token}");
    let request = zbus::blocking::Proxy::new(&connection, PORTAL, handle.as_str(), REQUEST)
        .map_err(|e| format!("the desktop's portal: {e}"))?;
    let responses = request
        .receive_signal("Response")
        .map_err(|e| format!("the desktop's portal: {e}"))?;
    let commandline: Vec<String> = std::iter::once("verbatim".to_owned())
        .chain(arguments.iter().cloned())
        .collect();
    let options: std::collections::HashMap<&str, Value<'_>> = [
        ("handle_token", Value::from(token.as_str())),
        (
            "reason",
            Value::from("Verbatim starts at login to take your calls"),
        ),
        ("autostart", Value::from(start_at_login)),
        ("commandline", Value::from(commandline)),
        ("dbus-activatable", Value::from(false)),
    ]
    .into_iter()
    .collect();
    zbus::blocking::Proxy::new(&connection, PORTAL, PORTAL_PATH, BACKGROUND)
        .and_then(|portal| portal.call_method("RequestBackground", &("", options)))
        .map_err(|e| format!("the desktop's portal would not start Verbatim at login: {e}"))?;
    // The user may be asked: the answer takes as long as they do.
    let (response, results) = responses
        .into_iter()
        .next()
        .ok_or("the desktop's portal went away without an answer")?
        .body()
        .deserialize::<(
            u32,
            std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
        )>()
        .map_err(|e| format!("the desktop's portal answered something else: {e}"))?;
    match response {
        0 => {
            let granted = results
                .get("autostart")
                .and_then(|value| bool::try_from(value).ok())
                .unwrap_or(false);
            if start_at_login && !granted {
                Err("the desktop does not let Verbatim start at login".into())
            } else {
                Ok(())
            }
        }
        1 if start_at_login => Err("starting at login was refused".into()),
        1 => Err("the desktop was asked to stop starting Verbatim at login, and refused".into()),
        _ => Err("the desktop's portal could not set Verbatim to start at login".into()),
    }
}

/// Makes the entry at `path` exist (starting `program` with `arguments`) or not.
pub fn apply(
    path: &Path,
    start_at_login: bool,
    program: &Path,
    arguments: &[String],
) -> Result<(), String> {
    if start_at_login {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(path, entry(program, arguments))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    } else {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_entry_starts_this_program_and_goes_when_switched_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autostart").join(FILE);
        apply(&path, true, Path::new("/usr/bin/verbatim"), &[]).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.starts_with("[Desktop Entry]\n"), "{written}");
        assert!(written.contains("\nExec=/usr/bin/verbatim\n"), "{written}");
        assert!(written.contains("\nType=Application\n"), "{written}");
        apply(&path, false, Path::new("/usr/bin/verbatim"), &[]).unwrap();
        assert!(!path.exists());
        // Switching off what is not there is no error.
        apply(&path, false, Path::new("/usr/bin/verbatim"), &[]).unwrap();
        // Its settings file goes with it.
        let config = ["--config".to_owned(), "/home/a/my phone.toml".to_owned()];
        apply(&path, true, Path::new("/usr/bin/verbatim"), &config).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(
            written.contains("\nExec=/usr/bin/verbatim --config \"/home/a/my phone.toml\"\n"),
            "{written}"
        );
    }

    #[test]
    fn a_path_with_spaces_or_quotes_is_one_exec_argument() {
        assert_eq!(
            exec_quoted("/home/a b/ver\"batim"),
            "\"/home/a b/ver\\\"batim\""
        );
        assert_eq!(exec_quoted("/opt/verbatim"), "/opt/verbatim");
        assert_eq!(exec_quoted("/opt/100%"), "/opt/100%%");
    }
}
