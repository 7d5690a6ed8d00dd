//! Verbatim: a SIP softphone that is its own SIPREC recording client.
//!
//! The protocol core (`engine`, `sip`, `sdp`) is sans-IO: it takes the time and bytes in and
//! gives bytes, timers and events out. `driver` does the I/O with tokio; `cli` is the headless
//! command line on top of it, and `ui` the desktop app.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod archive;
pub mod audio;
pub mod cli;
pub mod driver;
pub mod engine;
pub mod fuzzing;
pub mod links;
pub mod logging;
pub mod media;
pub mod phone;
pub mod private_fs;
pub mod recording;
pub mod sdp;
pub mod secrets;
pub mod settings;
pub mod sim;
pub mod sip;
pub mod srs;
pub mod ui;
pub mod xml_tree;
