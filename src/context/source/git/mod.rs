//! A git context, fetched with the `git` program as the docker CLI and BuildKit do:
//! a shallow fetch of the one reference (a full fetch when the remote refuses a
//! shallow one, e.g. for a commit it does not advertise), a checkout, the submodules,
//! then the subdirectory chosen by `#REF:SUBDIR`.
//!
//! The `.git` directory is removed unless asked to keep it (BuildKit's
//! `BUILDKIT_CONTEXT_KEEP_GIT_DIR`), so the context is the tree and nothing else.
//! git never prompts (`GIT_TERMINAL_PROMPT=0`: a CI job must fail, not hang) and never
//! runs the `ext::` transport, whatever the repository's submodules ask for.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::parser::instructions::values::{GitMtime, GitRef};

/// Why a git context could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The `git` program could not be started.
    #[error("a git context needs the `git` program, which could not be run (install git)")]
    NoGit(#[source] std::io::Error),
    /// A git command failed.
    #[error("`git {args}` failed for {remote}: {stderr}")]
    Command {
        /// The arguments, joined.
        args: String,
        /// The repository.
        remote: String,
        /// What git said (its last lines).
        stderr: String,
    },
    /// The checkout is not the commit `?checksum=` names.
    #[error("{remote}: checked out commit {actual}, but the URL asks for {expected}")]
    Checksum {
        /// The repository.
        remote: String,
        /// The commit (or prefix) asked for.
        expected: String,
        /// What was checked out.
        actual: String,
    },
    /// An option of the URL that a context cannot honour.
    #[error("{remote}: {option} is not supported for build contexts")]
    Unsupported {
        /// The repository.
        remote: String,
        /// The option.
        option: String,
    },
    /// The `:SUBDIR` of the URL is not a directory of the checkout.
    #[error("{remote}: `{subdir}` is not a directory of the repository")]
    NoSubdir {
        /// The repository.
        remote: String,
        /// The subdirectory asked for.
        subdir: String,
    },
}

/// Fetches `url` into `dest` (a directory to create) and returns the context
/// directory: `dest` or its `SUBDIR`. `keep_git_dir` is the default when the URL does
/// not say (`?keep-git-dir=`).
pub fn fetch(url: &GitRef, dest: &Path, keep_git_dir: bool) -> Result<PathBuf, GitError> {
    if url.mtime == Some(GitMtime::Commit) {
        return Err(GitError::Unsupported {
            remote: url.remote.clone(),
            option: "?mtime=commit".into(),
        });
    }
    let git = Git { url, dir: dest };
    git.run(&["init", "-q", &path_arg(dest)], false)?;
    git.run(&["remote", "add", "origin", &url.remote], true)?;
    let reference = url.reference.as_deref().unwrap_or("HEAD");
    let shallow = git.run(
        &["fetch", "-q", "--depth", "1", "origin", "--", reference],
        true,
    );
    if shallow.is_err() {
        // A commit id the server does not serve shallowly: fetch everything.
        git.run(&["fetch", "-q", "--tags", "origin"], true)?;
        git.run(&["checkout", "-q", reference], true)?;
    } else {
        git.run(&["checkout", "-q", "FETCH_HEAD"], true)?;
    }
    if url.submodules != Some(false) {
        let update = ["submodule", "update", "-q", "--init", "--recursive"];
        git.run(&[&update[..], &["--depth", "1"]].concat(), true)?;
    }
    if let Some(expected) = &url.checksum {
        git.check_commit(expected)?;
    }
    if !url.keep_git_dir.unwrap_or(keep_git_dir) {
        let dot_git = dest.join(".git");
        // A checkout without its metadata is what BuildKit hands on; nothing in the
        // tree can depend on `.git` being there.
        let _ = std::fs::remove_dir_all(&dot_git);
    }
    subdir(url, dest)
}

/// `dest/SUBDIR`, which must be a directory inside `dest` (a symlink in the
/// repository may not lead out of it).
fn subdir(url: &GitRef, dest: &Path) -> Result<PathBuf, GitError> {
    let Some(sub) = &url.subdir else {
        return Ok(dest.to_owned());
    };
    let not_found = || GitError::NoSubdir {
        remote: url.remote.clone(),
        subdir: sub.clone(),
    };
    let root = dest.canonicalize().map_err(|_| not_found())?;
    let dir = root
        .join(sub.trim_start_matches('/'))
        .canonicalize()
        .map_err(|_| not_found())?;
    if !dir.starts_with(&root) || !dir.is_dir() {
        return Err(not_found());
    }
    Ok(dir)
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Runs git commands for one fetch.
struct Git<'a> {
    url: &'a GitRef,
    dir: &'a Path,
}

impl Git<'_> {
    /// Fails unless the checked-out commit starts with `expected`.
    fn check_commit(&self, expected: &str) -> Result<(), GitError> {
        let actual = self.output(&["rev-parse", "HEAD"], true)?;
        let actual = actual.trim().to_owned();
        if actual.starts_with(expected) {
            return Ok(());
        }
        Err(GitError::Checksum {
            remote: self.url.remote.clone(),
            expected: expected.to_owned(),
            actual,
        })
    }

    /// Runs `git ARGS` (in the checkout when `inside`), failing with git's own words.
    fn run(&self, args: &[&str], inside: bool) -> Result<(), GitError> {
        self.output(args, inside).map(drop)
    }

    /// Runs `git ARGS` and returns its standard output.
    fn output(&self, args: &[&str], inside: bool) -> Result<String, GitError> {
        let mut cmd = Command::new("git");
        if inside {
            cmd.arg("-C").arg(self.dir);
        }
        let out = cmd
            .args([
                "-c",
                "protocol.ext.allow=never",
                "-c",
                "advice.detachedHead=false",
            ])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .map_err(GitError::NoGit)?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.trim().lines().rev().take(3).collect();
        Err(GitError::Command {
            args: args.join(" "),
            remote: self.url.remote.clone(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, script: &str) {
        let ok = Command::new("sh")
            .arg("-ec")
            .arg(script)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap();
        assert!(ok.success(), "{script}");
    }

    /// A bare repository with two commits: tag `v1` has `docs/a` = 1, `main` = 2.
    fn repo() -> Option<tempfile::TempDir> {
        if Command::new("git").arg("--version").output().is_err() {
            eprintln!("skipping: git is not installed");
            return None;
        }
        let t = tempfile::tempdir().unwrap();
        sh(
            t.path(),
            "git init -q -b main work && cd work && mkdir docs && echo 1 > docs/a \
             && git add . && git commit -qm one && git tag v1 \
             && echo 2 > docs/a && ln -s /etc docs/out && git add . && git commit -qm two \
             && cd .. && git clone -q --bare work repo.git",
        );
        Some(t)
    }

    /// A reference to the test repository (`file://` is not a context URL docker
    /// recognises, but git fetches it like any other).
    fn url(t: &Path, fragment: &str) -> GitRef {
        let (reference, subdir) = match fragment.strip_prefix('#') {
            Some(f) => {
                let (r, s) = f.split_once(':').unwrap_or((f, ""));
                (
                    (!r.is_empty()).then(|| r.to_owned()),
                    (!s.is_empty()).then(|| s.to_owned()),
                )
            }
            None => (None, None),
        };
        GitRef {
            remote: format!("file://{}/repo.git", t.display()),
            reference,
            subdir,
            ..Default::default()
        }
    }

    #[test]
    fn fetches_a_reference_and_a_subdirectory() {
        let Some(t) = repo() else { return };
        let dir = fetch(&url(t.path(), "#v1:docs"), &t.path().join("c1"), false).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "1\n");
        assert!(!t.path().join("c1/.git").exists(), ".git is not context");
        let dir = fetch(&url(t.path(), ""), &t.path().join("c2"), true).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("docs/a")).unwrap(), "2\n");
        assert!(dir.join(".git").is_dir(), "kept when asked");
    }

    #[test]
    fn a_missing_reference_or_subdirectory_is_a_clear_error() {
        let Some(t) = repo() else { return };
        let err = fetch(&url(t.path(), "#nope"), &t.path().join("c1"), false).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        let err = fetch(
            &url(t.path(), "#main:docs/out"),
            &t.path().join("c2"),
            false,
        )
        .unwrap_err();
        assert!(matches!(err, GitError::NoSubdir { .. }), "{err}");
        let err = fetch(&url(t.path(), "#:missing"), &t.path().join("c3"), false).unwrap_err();
        assert!(matches!(err, GitError::NoSubdir { .. }), "{err}");
        let mut wrong = url(t.path(), "#v1");
        wrong.checksum = Some("0000000".into());
        let err = fetch(&wrong, &t.path().join("c4"), false).unwrap_err();
        assert!(matches!(err, GitError::Checksum { .. }), "{err}");
    }
}
