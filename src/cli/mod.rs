//! The command-line edge: clap arguments, rendering of results and errors.
//!
//! No build logic lives here: flags become options, the library does the work, and this
//! module renders what comes back (data on stdout, diagnostics on stderr).

mod parse;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// rbuild: build OCI images from Dockerfiles, without a daemon.
#[derive(Debug, Parser)]
#[command(name = "rbuild", version, about, max_term_width = 100)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse a Dockerfile and print its syntax tree.
    Parse(parse::ParseArgs),
}

/// Entry point of the `rbuild` binary.
pub fn run() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Parse(a) => parse::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

/// Prints an error and its cause chain to stderr.
fn report(err: &anyhow::Error) {
    let mut text = format!("error: {err}");
    for cause in err.chain().skip(1) {
        text.push_str(&format!("\ncaused by: {cause}"));
    }
    write_stderr(&text);
}

fn write_stderr(text: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    // Nothing sensible is left to do when stderr itself fails.
    let _ = writeln!(err, "{text}");
}
