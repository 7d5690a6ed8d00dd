//! Files that hold calls (recordings, their metadata, the history, settings, logs) belong to
//! the user alone: on Unix, folders are created 0700 and files 0600 whatever the umask, so
//! no other account on the machine can read them. Folders and files that already exist keep
//! their permissions: a recording folder the user chose to share stays shared.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `path` and any missing parents, each owner-only.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Creates one folder owner-only, failing when anything is there already.
pub fn create_dir_new(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)
}

fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Creates (or truncates) a file only its owner can read.
pub fn create(path: &Path) -> io::Result<File> {
    owner_only(OpenOptions::new().write(true).create(true).truncate(true)).open(path)
}

/// Creates a file owner-only, failing when it exists already (never replaces a key).
pub fn create_new(path: &Path) -> io::Result<File> {
    owner_only(OpenOptions::new().write(true).create_new(true)).open(path)
}

/// Opens a file for appending, creating it owner-only when it is new.
pub fn append(path: &Path) -> io::Result<File> {
    owner_only(OpenOptions::new().create(true).append(true)).open(path)
}

/// Writes `contents` to a file created owner-only.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> io::Result<()> {
    use std::io::Write as _;
    create(path)?.write_all(contents.as_ref())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_and_files_are_the_owners_alone_but_existing_ones_keep_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();

        let nested = shared.join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&shared.join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(&shared), 0o755);

        write(&nested.join("f"), b"x").unwrap();
        assert_eq!(mode(&nested.join("f")), 0o600);
        append(&nested.join("g")).unwrap();
        assert_eq!(mode(&nested.join("g")), 0o600);
        create(&nested.join("h")).unwrap();
        assert_eq!(mode(&nested.join("h")), 0o600);
    }
}
