//! The headless command line. Its flags are a stable interface for automation.

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "verbatim", version, about = "A SIP softphone that is its own call recorder")]
pub struct Cli {}

pub fn run() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
