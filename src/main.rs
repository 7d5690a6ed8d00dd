//! The `verbatim` binary: the headless command line (and later the desktop app).

use std::process::ExitCode;

fn main() -> ExitCode {
    verbatim::cli::run()
}
