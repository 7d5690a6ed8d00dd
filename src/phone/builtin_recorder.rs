//! The built-in recorder as a front end starts it: on loopback, writing into the recordings
//! folder, its files sealed to the recordings key (found or made first), and the URI the
//! phone's recordings go to.

use core::net::SocketAddr;
use core::time::Duration;
use std::path::PathBuf;

use crate::archive::sealed::Sealing;
use crate::archive::{Prepared, Storage};
use crate::sip::uri::Uri;
use crate::srs::{SrsConfig, SrsHandle};

/// The built-in recorder, running.
#[derive(Debug)]
pub struct BuiltinRecorder {
    pub handle: SrsHandle,
    /// Where recording sessions reach it (TCP on loopback).
    pub uri: Uri,
}

/// The recordings key found or made, for the recorder to seal to. The keyring may ask the
/// user to unlock it, so this runs off the runtime's workers. An error means no recording,
/// never plain files nobody asked for.
pub async fn prepare_storage(storage: Storage) -> Result<Prepared, String> {
    tokio::task::spawn_blocking(move || storage.prepare())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("recordings cannot be encrypted: {e}"))
}

/// Starts the built-in recorder on loopback, writing into `folder`, deleting recordings
/// older than `keep`, and sealing as `sealing` says.
pub async fn start(
    folder: PathBuf,
    keep: Option<Duration>,
    sealing: Sealing,
) -> Result<BuiltinRecorder, String> {
    let mut config = SrsConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), folder);
    config.keep = keep;
    config.sealing = sealing;
    let handle = crate::srs::run(config)
        .await
        .map_err(|e| format!("the built-in recorder did not start: {e}"))?;
    let uri = Uri::parse(&format!(
        "sip:recorder@{};transport=tcp",
        handle.local_addr()
    ))
    .map_err(|e| format!("the built-in recorder did not start: {e}"))?;
    Ok(BuiltinRecorder { handle, uri })
}
