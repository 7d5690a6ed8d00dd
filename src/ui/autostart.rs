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

/// The entry's text for starting `program` (the window; it hides itself when the settings
/// say so).
pub fn entry(program: &Path) -> String {
    format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=Verbatim\n\
         Comment=SIP phone that records its calls\n\
         Exec={}\n\
         Icon=org.verbatim.Verbatim\n\
         Terminal=false\n\
         X-GNOME-Autostart-enabled=true\n",
        exec_quoted(program)
    )
}

/// A path as one Exec argument (the Desktop Entry Specification's quoting).
fn exec_quoted(program: &Path) -> String {
    let text = program.display().to_string();
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

/// Makes the entry at `path` exist (starting `program`) or not.
pub fn apply(path: &Path, start_at_login: bool, program: &Path) -> Result<(), String> {
    if start_at_login {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(path, entry(program))
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
        apply(&path, true, Path::new("/usr/bin/verbatim")).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.starts_with("[Desktop Entry]\n"), "{written}");
        assert!(written.contains("\nExec=/usr/bin/verbatim\n"), "{written}");
        assert!(written.contains("\nType=Application\n"), "{written}");
        apply(&path, false, Path::new("/usr/bin/verbatim")).unwrap();
        assert!(!path.exists());
        // Switching off what is not there is no error.
        apply(&path, false, Path::new("/usr/bin/verbatim")).unwrap();
    }

    #[test]
    fn a_path_with_spaces_or_quotes_is_one_exec_argument() {
        assert_eq!(
            exec_quoted(Path::new("/home/a b/ver\"batim")),
            "\"/home/a b/ver\\\"batim\""
        );
        assert_eq!(exec_quoted(Path::new("/opt/verbatim")), "/opt/verbatim");
    }
}
