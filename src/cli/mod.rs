//! The command-line edge: clap arguments, rendering of results and errors.
//!
//! No build logic lives here: flags become options, the library does the work, and this
//! module renders what comes back (data on stdout, diagnostics on stderr).

mod build;
mod parse;
mod progress;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// rbuild: build OCI images from Dockerfiles, without a daemon.
#[derive(Debug, Parser)]
#[command(name = "rbuild", version, about, max_term_width = 100)]
pub struct Args {
    /// The store directory (default: /var/lib/rbuild as root, else $XDG_DATA_HOME/rbuild).
    #[arg(long, global = true, env = "RBUILD_ROOT")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an image from a Dockerfile (`rbuild -t app:1 .` is short for this).
    Build(Box<build::BuildArgs>),
    /// Parse a Dockerfile and print its syntax tree.
    Parse(parse::ParseArgs),
}

const SUBCOMMANDS: [&str; 3] = ["build", "parse", "help"];

/// `rbuild -t app:1 .` means `rbuild build -t app:1 .`: inserts `build` before the
/// first argument that is not a global option when no subcommand is named.
fn with_default_subcommand(mut argv: Vec<OsString>) -> Vec<OsString> {
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i].to_string_lossy();
        if arg == "--root" {
            i += 2;
            continue;
        }
        if arg.starts_with("--root=") {
            i += 1;
            continue;
        }
        let keep = SUBCOMMANDS.contains(&arg.as_ref())
            || matches!(arg.as_ref(), "-h" | "--help" | "-V" | "--version");
        if !keep {
            argv.insert(i, OsString::from("build"));
        }
        break;
    }
    argv
}

/// The store root: `--root`, `RBUILD_ROOT`, or the default for this user.
fn store_root(root: Option<PathBuf>) -> PathBuf {
    if let Some(root) = root {
        return root;
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/rbuild");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("rbuild")
}

/// Entry point of the `rbuild` binary.
pub fn run() -> ExitCode {
    let args = Args::parse_from(with_default_subcommand(std::env::args_os().collect()));
    let root = store_root(args.root);
    let result = match args.command {
        Command::Build(a) => build::run(*a, root),
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
