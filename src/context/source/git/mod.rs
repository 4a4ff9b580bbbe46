//! Git repositories fetched with the `git` program, as BuildKit's git source fetches
//! them: for a git build context ([`fetch`]) and for `ADD <git URL>` (the executor
//! resolves the ref with [`resolve`] to key the step, then calls [`checkout()`]).
//!
//! - [`remote`]: the ref resolved to a commit with `git ls-remote`, nothing cloned.
//! - `checkout`: that commit fetched shallowly into a new directory, submodules, the
//!   `.git` directory removed unless asked to keep it (`?keep-git-dir`,
//!   `--keep-git-dir`, BuildKit's `BUILDKIT_CONTEXT_KEEP_GIT_DIR`), the subdirectory
//!   chosen by `#REF:SUBDIR`; nothing is written outside that directory, and git's own
//!   checkout never writes through a symlink of the repository.
//! - `command`: how git is run (no prompts, no `ext::` transport, credentials masked in
//!   errors).

mod checkout;
mod command;
pub mod remote;

use std::path::{Path, PathBuf};

pub use checkout::checkout;
pub use remote::{is_commit_id, resolve, Resolved};

use crate::fs_error::FsError;
use crate::parser::instructions::values::GitRef;

/// Why a git repository could not be resolved or fetched. Remotes are named with their
/// credentials masked.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The `git` program could not be started.
    #[error("git URLs need the `git` program, which could not be run (install git)")]
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
    /// The remote has no such branch, tag or ref.
    #[error("{remote} has no branch, tag or other ref named {reference:?}")]
    NoRef {
        /// The repository.
        remote: String,
        /// The ref asked for.
        reference: String,
    },
    /// The commit the ref resolves to is not the one `--checksum`/`?checksum=` names.
    #[error("{remote} is at commit {actual}, but the checksum asks for {expected}")]
    Checksum {
        /// The repository and ref.
        remote: String,
        /// The commit (or prefix) asked for.
        expected: String,
        /// The commit the ref resolves to.
        actual: String,
    },
    /// A checksum that is not a hex commit id.
    #[error("invalid checksum {checksum:?} for {remote}: expected a hex commit hash")]
    BadChecksum {
        /// The repository.
        remote: String,
        /// The checksum given.
        checksum: String,
    },
    /// `?fetch-by-commit` without the full commit id to fetch.
    #[error("{remote}: fetch-by-commit needs the full commit id as checksum (?checksum=<40 hex digits>)")]
    FetchByCommit {
        /// The repository.
        remote: String,
    },
    /// The resolved commit could not be fetched (the ref moved, and the server serves
    /// only what it advertises).
    #[error("{remote}: commit {commit} cannot be fetched (the ref moved and the server does not serve the old commit)")]
    CommitNotFound {
        /// The repository.
        remote: String,
        /// The commit.
        commit: String,
    },
    /// The `:SUBDIR` of the URL is not a directory of the checkout.
    #[error("{remote}: `{subdir}` is not a directory of the repository")]
    NoSubdir {
        /// The repository.
        remote: String,
        /// The subdirectory asked for.
        subdir: String,
    },
    /// A filesystem operation on the checkout failed.
    #[error("{op} `{}`", path.display())]
    Fs {
        /// What was done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

impl FsError for GitError {
    fn from_io(op: &'static str, path: PathBuf, source: std::io::Error) -> Self {
        GitError::Fs { op, path, source }
    }
}

/// Fetches the git context `url` into `dest` (a directory to create) and returns the
/// context directory: `dest` or its `SUBDIR`. `keep_git_dir` is the default when the
/// URL does not say (`?keep-git-dir=`).
pub fn fetch(url: &GitRef, dest: &Path, keep_git_dir: bool) -> Result<PathBuf, GitError> {
    let mut url = url.clone();
    url.keep_git_dir = Some(url.keep_git_dir.unwrap_or(keep_git_dir));
    let pin = resolve(&url)?;
    checkout(&url, &pin, dest)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;

    use super::*;
    use crate::parser::instructions::values::GitMtime;

    /// The committer time of every test commit.
    const COMMIT_TIME: i64 = 981_173_106;

    fn sh(dir: &Path, script: &str) {
        let ok = Command::new("sh")
            .arg("-ec")
            .arg(script)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .env("GIT_COMMITTER_DATE", format!("@{COMMIT_TIME} +0000"))
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

    #[test]
    fn a_moved_ref_still_gets_the_commit_it_resolved_to() {
        let Some(t) = repo() else { return };
        let main = url(t.path(), "#main");
        let pin = resolve(&main).unwrap();
        assert_eq!(pin.ref_name.as_deref(), Some("refs/heads/main"));
        sh(
            t.path(),
            "cd work && echo 3 > docs/a && git commit -qam three && git push -q ../repo.git main",
        );
        assert_ne!(resolve(&main).unwrap().commit, pin.commit);
        let dir = checkout(&main, &pin, &t.path().join("c")).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("docs/a")).unwrap(), "2\n");
    }

    #[test]
    fn commit_times_and_a_kept_git_dir_at_its_ref() {
        let Some(t) = repo() else { return };
        let mut v1 = url(t.path(), "#v1");
        v1.mtime = Some(GitMtime::Commit);
        v1.keep_git_dir = Some(true);
        let pin = resolve(&v1).unwrap();
        let dir = checkout(&v1, &pin, &t.path().join("c")).unwrap();
        for rel in ["docs/a", "docs", ".git/HEAD", ""] {
            let meta = std::fs::symlink_metadata(dir.join(rel)).unwrap();
            assert_eq!(meta.mtime(), COMMIT_TIME, "{rel}");
        }
        let head = Command::new("git")
            .args([
                "-C",
                &dir.to_string_lossy(),
                "rev-parse",
                "HEAD",
                "refs/tags/v1",
            ])
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&head.stdout);
        assert_eq!(head, format!("{0}\n{0}\n", pin.commit));
        assert!(!dir.join(".git/FETCH_HEAD").exists());
    }
}
