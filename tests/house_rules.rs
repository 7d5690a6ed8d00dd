//! The rules of the house: the protocol core is sans-IO. engine, sip, sdp, media, recording
//! and the recorder's SIP side (srs/core.rs) never import tokio, cpal, egui or std::net, and
//! never read a clock, so that every test can drive them in virtual time. And the top-level
//! modules depend on each other in one direction only: no cycles.

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

/// The top-level module a `src/` file belongs to (`engine` for src/engine/call/mod.rs, `sim`
/// for src/sim.rs); None for the crate roots.
fn top_level_module(src: &Path, path: &Path) -> Option<String> {
    let first = path.strip_prefix(src).ok()?.components().next()?;
    let name = first.as_os_str().to_str()?.trim_end_matches(".rs");
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// Which top-level modules each one's shipped code names through `crate::` (comments left
/// out: naming a module in prose is no dependency).
fn module_dependencies() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: std::collections::BTreeSet<String> = files
        .iter()
        .filter_map(|f| top_level_module(&src, f))
        .collect();
    let mut graph: std::collections::BTreeMap<_, std::collections::BTreeSet<_>> = modules
        .iter()
        .map(|m| (m.clone(), Default::default()))
        .collect();
    for file in &files {
        let Some(from) = top_level_module(&src, file) else {
            continue;
        };
        for line in shipped_code(file).lines() {
            let code = line.split("//").next().unwrap_or_default();
            for (at, _) in code.match_indices("crate::") {
                let name: String = code
                    .get(at + "crate::".len()..)
                    .unwrap_or_default()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != from && modules.contains(&name) {
                    graph.entry(from.clone()).or_default().insert(name);
                }
            }
        }
    }
    graph
}

#[test]
fn top_level_modules_depend_on_each_other_without_cycles() {
    let graph = module_dependencies();
    assert!(
        graph.get("engine").is_some_and(|d| d.contains("sip")),
        "the scan sees the engine's use of sip: {graph:?}"
    );
    // Depth-first search; a module met again while it is still on the path closes a cycle.
    fn visit(
        module: &str,
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path.get(start..).unwrap_or_default().to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for module in graph.keys() {
        let cycle = visit(module, &graph, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "a module cycle: {}",
            cycle.unwrap_or_default().join(" -> ")
        );
    }
}
