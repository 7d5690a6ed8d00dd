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
fn the_desktop_entry_is_valid_starts_the_window_and_dials_links() {
    let entry = repo("packaging/org.verbatim.Verbatim.desktop");
    let text = run("desktop-file-validate", &[entry.to_str().unwrap()]);
    assert!(!text.contains("error"), "{text}");
    let entry = std::fs::read_to_string(&entry).unwrap();
    // Without a link it opens the window; with one it dials it (in the running window).
    assert!(entry.contains("\nExec=verbatim open %u\n"), "{entry}");
    for scheme in ["sip", "sips", "tel", "callto"] {
        assert!(
            entry.contains(&format!("x-scheme-handler/{scheme};")),
            "handles {scheme}: links: {entry}"
        );
    }
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

fn stdout_of(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} could not start (installed by .ci/run?): {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Builds the .deb the way a release is built (packaging/deb/build.sh, cargo-deb), from the
/// debug binary this test run already has, then installs it into a dpkg root of its own, so
/// nothing on the machine is touched and nothing installed earlier can hide a missing file.
#[test]
fn the_debian_package_installs_cleanly_and_runs() {
    let work = tempfile::tempdir().unwrap();
    let output = work.path().join("deb");
    stdout_of(
        Command::new(repo("packaging/deb/build.sh"))
            .arg(&output)
            .env("VERBATIM_DEB_PROFILE", "dev"),
    );
    let deb = std::fs::read_dir(&output)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "deb"))
        .expect("build.sh wrote a .deb");
    let deb = deb.to_str().unwrap();

    let field = |name: &str| stdout_of(Command::new("dpkg-deb").args(["--field", deb, name]));
    assert_eq!(field("Package").trim(), "verbatim");
    assert_eq!(
        field("Version").trim(),
        format!("{}-1", env!("CARGO_PKG_VERSION"))
    );
    let depends = field("Depends");
    for library in [
        "libasound2",
        "libc6",
        "libx11-6",
        "libxkbcommon0",
        "libegl1",
    ] {
        assert!(
            depends.contains(library),
            "Depends lacks {library}: {depends}"
        );
    }
    // Every dependency resolves against this machine's package archive.
    let plan = stdout_of(Command::new("apt-get").args(["install", "--simulate", deb]));
    assert!(plan.contains("Conf verbatim "), "{plan}");

    let root = work.path().join("root");
    let admin = root.join("var/lib/dpkg");
    std::fs::create_dir_all(admin.join("info")).unwrap();
    std::fs::create_dir_all(admin.join("updates")).unwrap();
    std::fs::write(admin.join("status"), "").unwrap();
    // dpkg wants ldconfig and start-stop-daemon on the PATH, which for a user who is not
    // root lacks the sbin folders (found on a fresh Debian).
    let path = format!(
        "{}:/usr/local/sbin:/usr/sbin:/sbin",
        std::env::var("PATH").unwrap_or_default()
    );
    let dpkg = |args: &[&str]| {
        stdout_of(
            Command::new("dpkg")
                .env("PATH", &path)
                .arg(format!("--root={}", root.display()))
                // The fresh root has no libc6 and friends registered; apt resolved them above.
                .args(["--force-not-root", "--force-depends", "--log=/dev/null"])
                .args(args),
        )
    };
    dpkg(&["--install", deb]);
    for installed in [
        "usr/bin/verbatim",
        "usr/share/applications/org.verbatim.Verbatim.desktop",
        "usr/share/metainfo/org.verbatim.Verbatim.metainfo.xml",
        "usr/share/icons/hicolor/scalable/apps/org.verbatim.Verbatim.svg",
        "usr/share/icons/hicolor/48x48/apps/org.verbatim.Verbatim.png",
        "usr/share/icons/hicolor/128x128/apps/org.verbatim.Verbatim.png",
        "usr/share/icons/hicolor/256x256/apps/org.verbatim.Verbatim.png",
        "usr/share/doc/verbatim/copyright",
        "usr/share/doc/verbatim/README.md",
    ] {
        assert!(
            root.join(installed).is_file(),
            "{installed} is not installed"
        );
    }
    let installed = |path: &str| std::fs::read(root.join(path)).unwrap();
    let bash =
        String::from_utf8(installed("usr/share/bash-completion/completions/verbatim")).unwrap();
    assert!(
        bash.contains("complete -F") && bash.contains("transfer-to"),
        "{bash}"
    );
    let zsh = String::from_utf8(installed("usr/share/zsh/vendor-completions/_verbatim")).unwrap();
    assert!(zsh.starts_with("#compdef verbatim"), "{zsh}");
    let fish = String::from_utf8(installed(
        "usr/share/fish/vendor_completions.d/verbatim.fish",
    ))
    .unwrap();
    assert!(fish.contains("complete -c verbatim"), "{fish}");
    let manual = stdout_of(Command::new("zcat").arg(root.join("usr/share/man/man1/verbatim.1.gz")));
    assert!(manual.contains(".TH verbatim 1"), "{manual}");
    let copyright = String::from_utf8(installed("usr/share/doc/verbatim/copyright")).unwrap();
    assert!(
        copyright.contains("License: MIT OR Apache-2.0")
            && copyright.contains("Permission is hereby granted"),
        "{copyright}"
    );

    let verbatim = root.join("usr/bin/verbatim");
    let version = stdout_of(Command::new(&verbatim).arg("--version"));
    assert_eq!(
        version.trim(),
        format!("verbatim {}", env!("CARGO_PKG_VERSION"))
    );
    let help = stdout_of(Command::new(&verbatim).arg("--help"));
    assert!(help.contains("Usage: verbatim"), "{help}");
    // The installed desktop entry still validates where it is installed.
    run(
        "desktop-file-validate",
        &[root
            .join("usr/share/applications/org.verbatim.Verbatim.desktop")
            .to_str()
            .unwrap()],
    );

    // Removal takes every file the package brought.
    dpkg(&["--purge", "verbatim"]);
    let left: Vec<_> = walk(&root.join("usr"));
    assert!(left.is_empty(), "left behind after purge: {left:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}
