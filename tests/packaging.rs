//! The desktop integration files in packaging/ and assets/ are what desktops and software
//! centres read: each is checked with the freedesktop tools (desktop-file-utils, appstream)
//! and against the crate itself.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed (installed by .ci/run): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

#[test]
fn the_desktop_entry_is_valid_and_starts_the_window() {
    let entry = repo("packaging/org.verbatim.Verbatim.desktop");
    let text = run("desktop-file-validate", &[entry.to_str().unwrap()]);
    assert!(!text.contains("error"), "{text}");
    let entry = std::fs::read_to_string(&entry).unwrap();
    assert!(entry.contains("\nExec=verbatim gui\n"), "{entry}");
    assert!(entry.contains("\nIcon=org.verbatim.Verbatim\n"), "{entry}");
}

#[test]
fn the_appstream_metadata_is_valid_and_matches_the_crate() {
    let metainfo = repo("packaging/org.verbatim.Verbatim.metainfo.xml");
    run(
        "appstreamcli",
        &["validate", "--no-net", metainfo.to_str().unwrap()],
    );
    let text = std::fs::read_to_string(&metainfo).unwrap();
    assert!(
        text.contains(&format!(
            "<release version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "the newest release is this version"
    );
    assert!(text.contains(&format!(
        "<project_license>{}</project_license>",
        env!("CARGO_PKG_LICENSE")
    )));
    assert!(text.contains("<launchable type=\"desktop-id\">org.verbatim.Verbatim.desktop<"));
}

/// The PNG sizes a desktop looks for, each really that size, beside the SVG they come from.
#[test]
fn the_icon_comes_in_the_sizes_desktops_use() {
    assert!(repo("assets/icons/scalable/org.verbatim.Verbatim.svg").is_file());
    for size in [48u32, 128, 256] {
        let path = repo(&format!(
            "assets/icons/{size}x{size}/org.verbatim.Verbatim.png"
        ));
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
        // IHDR: width and height, big-endian, right after the chunk's length and type.
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((width, height), (size, size), "{}", path.display());
    }
}
