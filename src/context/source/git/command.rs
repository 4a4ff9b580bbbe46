//! Running the `git` program for one remote.
//!
//! git never prompts (`GIT_TERMINAL_PROMPT=0`, standard input closed: a CI job must
//! fail, not hang), never runs the `ext::` transport, fetches `file://` URLs only when
//! rbuild itself asks (`protocol.file.allow=user`: never for a repository's
//! submodules), and ignores `GIT_DIR`/`GIT_WORK_TREE` from the environment. A failure
//! carries git's last lines, with credentials in URLs masked, as do the arguments.

use std::path::Path;
use std::process::{Command, Stdio};

use super::GitError;
use crate::parser::instructions::values::redact_url_credentials;

/// Lines of git's standard error an error keeps.
const STDERR_LINES: usize = 3;

/// Runs git for `remote`, outside any repository or in `dir`.
pub(super) struct Git<'a> {
    remote: &'a str,
    dir: Option<&'a Path>,
}

impl<'a> Git<'a> {
    /// git for `remote`, run outside any repository (`ls-remote`, `init`).
    pub(super) fn new(remote: &'a str) -> Self {
        Git { remote, dir: None }
    }

    /// git for `remote`, run in the repository at `dir`.
    pub(super) fn in_dir(remote: &'a str, dir: &'a Path) -> Self {
        Git {
            remote,
            dir: Some(dir),
        }
    }

    /// The remote, as given (credentials included: mask it before showing it).
    pub(super) fn remote(&self) -> &str {
        self.remote
    }

    /// Runs `git ARGS`, failing with git's own words.
    pub(super) fn run(&self, args: &[&str]) -> Result<(), GitError> {
        self.output(args).map(drop)
    }

    /// Runs `git ARGS` and returns its standard output.
    pub(super) fn output(&self, args: &[&str]) -> Result<String, GitError> {
        let mut cmd = Command::new("git");
        if let Some(dir) = self.dir {
            cmd.arg("-C").arg(dir);
        }
        let out = cmd
            .args(["-c", "protocol.ext.allow=never"])
            .args(["-c", "protocol.file.allow=user"])
            .args(["-c", "advice.detachedHead=false"])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .stdin(Stdio::null())
            .output()
            .map_err(GitError::NoGit)?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.trim().lines().rev().take(STDERR_LINES).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(GitError::Command {
            args: redact_url_credentials(&args.join(" ")),
            remote: redact_url_credentials(self.remote),
            stderr: redact_url_credentials(&tail.join("; ")),
        })
    }
}
