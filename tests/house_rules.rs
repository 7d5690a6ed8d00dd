//! The rule of the house: the protocol core is sans-IO. engine, sip, sdp, media, recording
//! and the recorder's SIP side (srs/core.rs) never import tokio, cpal, egui or std::net, and never read a clock, so that every test can
//! drive them in virtual time.

use std::fs;
use std::path::{Path, PathBuf};

const SANS_IO: &[&str] = &[
    "src/engine",
    "src/sip",
    "src/sdp",
    "src/media",
    "src/recording",
    "src/srs/core.rs",
];
const FORBIDDEN: &[&str] = &[
    "tokio",
    "cpal",
    "egui",
    "eframe",
    "std::net",
    "Instant::now",
    "SystemTime::now",
    "std::thread::sleep",
    "std::fs",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    if dir.is_file() {
        out.push(dir.to_owned());
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The part of a file that ships: unit tests (after `#[cfg(test)]`, `tests.rs` modules and
/// every file under a `tests` folder) may use a real clock as the origin of virtual time.
fn shipped_code(path: &Path) -> String {
    let is_test_module = path.file_name().is_some_and(|n| n == "tests.rs")
        || path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .ok()
            .and_then(Path::parent)
            .is_some_and(|dir| dir.components().any(|c| c.as_os_str() == "tests"));
    if is_test_module {
        return String::new();
    }
    let text = fs::read_to_string(path).unwrap_or_default();
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end].to_owned()
}

#[test]
fn sans_io_modules_do_no_io_and_read_no_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in SANS_IO {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 5, "the sans-IO modules were not found");
    let mut violations = Vec::new();
    for file in &files {
        for (number, line) in shipped_code(file).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    violations.push(format!("{}:{}: {word}", file.display(), number + 1));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "sans-IO rule broken:\n{}",
        violations.join("\n")
    );
}
