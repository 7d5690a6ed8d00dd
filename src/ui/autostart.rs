//! Starting with the desktop session: an XDG autostart entry
//! (`$XDG_CONFIG_HOME/autostart/org.verbatim.Verbatim.desktop`, the Desktop Application
//! Autostart Specification) that the session runs at login. It is written or removed when
//! the settings are saved, and names the program that is running now.

use std::path::{Path, PathBuf};

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

/// The entry this app manages: where it goes, and what starts this same app (its settings
/// file when it was given one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autostart {
    pub entry: PathBuf,
    pub program: PathBuf,
    pub arguments: Vec<String>,
}

impl Autostart {
    /// The entry in the user's autostart folder for the program running now.
    pub fn for_this_program(arguments: Vec<String>) -> Option<Autostart> {
        Some(Autostart {
            entry: entry_path()?,
            program: std::env::current_exe().ok()?,
            arguments,
        })
    }

    /// Writes the entry (`start_at_login`) or removes it.
    pub fn apply(&self, start_at_login: bool) -> Result<(), String> {
        apply(&self.entry, start_at_login, &self.program, &self.arguments)
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
