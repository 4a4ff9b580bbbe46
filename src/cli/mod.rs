//! The command-line edge: clap arguments, rendering of results and errors.
//!
//! No build logic lives here: flags become options, the library does the work.

use std::process::ExitCode;

/// Entry point of the `rbuild` binary.
pub fn run() -> ExitCode {
    ExitCode::SUCCESS
}
