//! Whether the app runs inside a Flatpak sandbox, where some desktop services are reached
//! through portals instead of the files and bus names a host app uses.

/// Flatpak puts this file at the root of every sandbox it runs.
const FLATPAK_INFO: &str = "/.flatpak-info";

pub fn inside_flatpak() -> bool {
    std::path::Path::new(FLATPAK_INFO).exists()
}
