//! The command-line edge: clap arguments, rendering of results and errors.
//!
//! No build logic lives here: flags become options, the library does the work, and this
//! module renders what comes back (data on stdout, diagnostics on stderr).

mod annotation_arg;
mod archive_cmds;
mod build;
mod build_context_arg;
mod build_options;
mod cache_arg;
mod compat;
mod compat_flags;
mod context_arg;
mod docker_load;
mod docs;
mod history;
mod inspect;
mod limits;
mod output_arg;
mod parse;
mod progress;
mod prune_cmds;
mod registry_cmds;
mod rootless;
mod store_check;
mod store_cmds;
mod template;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

pub use rootless::enter_user_namespace;

/// rbuild: build OCI images from Dockerfiles, without a daemon.
#[derive(Debug, Parser)]
#[command(name = "rbuild", version, about, max_term_width = 100)]
pub struct Args {
    /// The store directory [default: /var/lib/rbuild as root, else
    /// $XDG_DATA_HOME/rbuild or ~/.local/share/rbuild]
    #[arg(long, global = true, env = "RBUILD_ROOT", value_name = "DIR")]
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
    /// List the images in the store.
    Images(store_cmds::ImagesArgs),
    /// Give an image another name.
    Tag(store_cmds::TagArgs),
    /// Remove image names.
    Rmi(store_cmds::RmiArgs),
    /// Print an image's manifest and config as JSON.
    Inspect(inspect::InspectArgs),
    /// Show an image's history, newest first (as `docker history`).
    History(history::HistoryArgs),
    /// Write an image to a docker-archive or OCI archive file (as `docker save`).
    Save(archive_cmds::SaveArgs),
    /// Load images from a docker-archive or OCI archive file (as `docker load`).
    Load(archive_cmds::LoadArgs),
    /// Show what the store holds: images, blobs, snapshots, cache, by size.
    Du(prune_cmds::DuArgs),
    /// Remove build cache and blobs no image needs.
    Prune(prune_cmds::PruneArgs),
    /// Manage the store itself (`rbuild store check [--repair]`).
    Store(store_check::StoreArgs),
    /// Pull an image from a registry into the store.
    Pull(registry_cmds::PullArgs),
    /// Push an image from the store to a registry.
    Push(registry_cmds::PushArgs),
    /// Log in to a registry (saved in Docker's config.json).
    Login(registry_cmds::LoginArgs),
    /// Log out from a registry.
    Logout(registry_cmds::LogoutArgs),
    /// Print a shell completion script (`bash`, `zsh`, `fish`, ...).
    Completion(docs::CompletionArgs),
    /// Print the manual page, or write one per command with `--dir`.
    Man(docs::ManArgs),
}

/// The store root: `--root`/`RBUILD_ROOT`, else the default for this user.
fn store_root(root: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let root = match root {
        // Absolute: the sandbox bind-mounts paths under it (cache mounts).
        Some(root) => std::path::absolute(&root)
            .with_context(|| format!("invalid store directory {}", root.display()))?,
        // Root of a rootless namespace is still the user: the store is theirs.
        None => crate::store::default_root(
            rustix::process::geteuid().is_root() && !crate::userns::active(),
            std::env::var_os("XDG_DATA_HOME").as_deref(),
            std::env::var_os("HOME").as_deref(),
        )
        .context(
            "cannot choose a store directory (HOME is not set): pass --root or set RBUILD_ROOT",
        )?,
    };
    rootless::check_store_owner(&root)?;
    Ok(root)
}

/// The subcommands' names, as clap knows them (and `help`).
fn subcommands() -> Vec<String> {
    use clap::CommandFactory;
    let mut names: Vec<String> = Args::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    names.push("help".to_owned());
    names
}

/// Commands of `docker` and `podman` that rbuild does not have: a word that names one
/// is a mistaken command, not a build context.
const FOREIGN_COMMANDS: [&str; 9] = [
    "run", "version", "info", "ps", "exec", "rm", "commit", "export", "import",
];

/// `rbuild -t app:1 .` means `rbuild build -t app:1 .`: inserts `build` before the
/// first argument that is not a global option when no subcommand is named. A first
/// word that is not an existing path but looks like a command (a known docker command,
/// or a subcommand misspelt) is refused instead of being built as a directory.
fn with_default_subcommand(mut argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i].to_string_lossy().into_owned();
        if arg == "--root" {
            i += 2;
            continue;
        }
        if arg.starts_with("--root=") {
            i += 1;
            continue;
        }
        let keep = subcommands().contains(&arg)
            || matches!(arg.as_str(), "-h" | "--help" | "-V" | "--version");
        if !keep {
            if let Some(message) = unknown_command(&arg) {
                return Err(message);
            }
            argv.insert(i, OsString::from("build"));
        }
        break;
    }
    Ok(argv)
}

/// The error for `word` when it is meant as a command rather than a context path.
fn unknown_command(word: &str) -> Option<String> {
    let bare = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !bare || word.starts_with('-') || std::path::Path::new(word).exists() {
        return None;
    }
    // Short names (`du`, `tag`) are one or two edits from too many words to guess.
    let all = subcommands();
    let long_names: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|c| c.len() > 3 && *c != "help")
        .collect();
    match crate::parser::instructions::values::closest(word, &long_names) {
        Some(c) => Some(format!("unknown command '{word}': did you mean '{c}'?")),
        None if FOREIGN_COMMANDS.contains(&word) => Some(format!(
            "unknown command '{word}': rbuild builds, stores and pushes images (see `rbuild --help`)"
        )),
        None => None,
    }
}

/// The command line parsed; a flag of docker or podman that rbuild refuses gets the
/// reason and what to use instead (`cli-compat.tsv`), other errors clap's message.
fn parse_args(argv: Vec<OsString>) -> Result<Args, ExitCode> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let error = match Args::try_parse_from(argv) {
        Ok(args) => return Ok(args),
        Err(e) => e,
    };
    let flag = match (error.kind(), error.get(ContextKind::InvalidArg)) {
        (ErrorKind::UnknownArgument, Some(ContextValue::String(flag))) => Some(flag.clone()),
        _ => None,
    };
    match flag.as_deref().and_then(compat::refusal) {
        Some(message) => {
            write_stderr(&format!("error: {message}"));
            Err(ExitCode::from(2))
        }
        None => error.exit(),
    }
}

/// Entry point of the `rbuild` binary.
pub fn run() -> ExitCode {
    let argv = match with_default_subcommand(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(message) => {
            write_stderr(&format!("error: {message}"));
            return ExitCode::from(2);
        }
    };
    let Args { root, command } = match parse_args(argv) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let result = match command {
        Command::Build(a) => store_root(root).and_then(|r| build::run(*a, r)),
        Command::Parse(a) => parse::run(a),
        Command::Images(a) => store_root(root).and_then(|r| store_cmds::run_images(&r, &a)),
        Command::Tag(a) => store_root(root).and_then(|r| store_cmds::run_tag(&r, &a)),
        Command::Rmi(a) => store_root(root).and_then(|r| store_cmds::run_rmi(&r, &a)),
        Command::Inspect(a) => store_root(root).and_then(|r| inspect::run_inspect(&r, &a)),
        Command::History(a) => store_root(root).and_then(|r| history::run_history(&r, &a)),
        Command::Save(a) => store_root(root).and_then(|r| archive_cmds::run_save(&r, &a)),
        Command::Load(a) => store_root(root).and_then(|r| archive_cmds::run_load(&r, &a)),
        Command::Du(a) => store_root(root).and_then(|r| prune_cmds::run_du(&r, &a)),
        Command::Prune(a) => store_root(root).and_then(|r| prune_cmds::run_prune(&r, &a)),
        Command::Store(a) => store_root(root).and_then(|r| store_check::run(&r, &a)),
        Command::Pull(a) => store_root(root).and_then(|r| registry_cmds::run_pull(&r, &a)),
        Command::Push(a) => store_root(root).and_then(|r| registry_cmds::run_push(&r, &a)),
        Command::Login(a) => store_root(root).and_then(|r| registry_cmds::run_login(&r, &a)),
        Command::Logout(a) => registry_cmds::run_logout(&a),
        Command::Completion(a) => docs::run_completion(&a),
        Command::Man(a) => docs::run_man(&a),
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
    write_stderr(&render(err));
}

/// An error and its cause chain, one line each; a cause whose text is already shown
/// is not repeated (a step error shows its cause after the Dockerfile location, a
/// context may repeat it).
fn render(err: &anyhow::Error) -> String {
    let mut text = format!("error: {err}");
    for cause in err.chain().skip(1) {
        let shown = cause.to_string();
        if !text.contains(&shown) {
            text.push_str(&format!("\ncaused by: {shown}"));
        }
    }
    text
}

fn write_stderr(text: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    // Nothing sensible is left to do when stderr itself fails.
    let _ = writeln!(err, "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistyped_and_foreign_commands_are_refused_not_built() {
        let argv = |words: &[&str]| {
            let mut v = vec![OsString::from("rbuild")];
            v.extend(words.iter().map(OsString::from));
            with_default_subcommand(v)
        };
        assert_eq!(
            argv(&["imags"]).unwrap_err(),
            "unknown command 'imags': did you mean 'images'?"
        );
        assert!(argv(&["run", "app:1"]).unwrap_err().contains("'run'"));
        assert_eq!(argv(&["history", "app:1"]).unwrap()[1], "history");
        assert!(argv(&["--root", "/s", "pusj"])
            .unwrap_err()
            .contains("'push'"));
        let built = argv(&["-t", "a:1", "."]).unwrap();
        assert_eq!(built[1], "build");
        assert_eq!(argv(&["images"]).unwrap()[1], "images");
        // Another word is a context path; the build says when it does not exist.
        assert_eq!(argv(&["myapp"]).unwrap()[1], "build");
    }

    #[test]
    fn causes_already_shown_are_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("Dockerfile:3: ADD x: {0}")]
        struct Step(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("cannot extract archive `x`")]
        struct Inner(#[source] std::io::Error);
        let err = anyhow::Error::new(Step(Inner(std::io::Error::other("bad entry"))));
        assert_eq!(
            render(&err),
            "error: Dockerfile:3: ADD x: cannot extract archive `x`\ncaused by: bad entry"
        );
    }

    #[test]
    fn a_failed_download_is_reported_once() {
        let download = crate::executor::ExecError::Download {
            url: "https://h/f".into(),
            reason: "error sending request: tcp connect error: Connection refused".into(),
        };
        let step = crate::executor::BuildError::Step {
            location: "Dockerfile:2".into(),
            instruction: Some("ADD https://h/f /x".into()),
            source: Box::new(download),
        };
        let once = "error: Dockerfile:2: ADD https://h/f /x: cannot download https://h/f: \
                    error sending request: tcp connect error: Connection refused";
        assert_eq!(render(&anyhow::Error::new(step)), once);
        // A wrapper between them does not bring the same text back as a cause.
        #[derive(Debug, thiserror::Error)]
        #[error("Dockerfile:2: ADD https://h/f /x: cannot download https://h/f: refused")]
        struct Step(#[source] Stage);
        #[derive(Debug, thiserror::Error)]
        #[error("stage 0 failed")]
        struct Stage(#[source] Download);
        #[derive(Debug, thiserror::Error)]
        #[error("cannot download https://h/f: refused")]
        struct Download;
        assert_eq!(
            render(&anyhow::Error::new(Step(Stage(Download)))),
            "error: Dockerfile:2: ADD https://h/f /x: cannot download https://h/f: refused\n\
             caused by: stage 0 failed"
        );
    }
}
