//! A repository checked out at a resolved commit into a new directory, as BuildKit's
//! git source leaves it: the one commit fetched shallowly (by its ref's name, or by id
//! when the ref has moved since it was resolved or there is no name; everything when the
//! server serves neither), detached at that commit, submodules fetched unless
//! `?submodules=false`, then the `.git` directory removed, or kept with its remote URL
//! masked (`?keep-git-dir`/`--keep-git-dir`), mtimes set to the commit time with
//! `?mtime=commit` (else they are the checkout's), and the `:SUBDIR` chosen.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Timespec, Timestamps, CWD};

use super::command::Git;
use super::remote::Resolved;
use super::GitError;
use crate::fs_error::FsError;
use crate::parser::instructions::values::{redact_url_credentials, GitMtime, GitRef};

/// Checks `url` out at `pin` into `dest` (which must not exist) and returns the
/// directory it names: `dest`, or its `SUBDIR`.
pub fn checkout(url: &GitRef, pin: &Resolved, dest: &Path) -> Result<PathBuf, GitError> {
    let dest_arg = dest.to_string_lossy();
    Git::new(&url.remote).run(&["init", "-q", "--", &dest_arg])?;
    let git = Git::in_dir(&url.remote, dest);
    git.run(&["remote", "add", "--", "origin", &url.remote])?;
    fetch(&git, pin, dest)?;
    git.run(&["checkout", "-q", &pin.commit])?;
    if url.submodules != Some(false) {
        git.run(&[
            "submodule",
            "update",
            "-q",
            "--init",
            "--recursive",
            "--depth",
            "1",
        ])?;
    }
    let mtime = match url.mtime {
        Some(GitMtime::Commit) => Some(commit_time(&git, &pin.commit)?),
        Some(GitMtime::Checkout) | None => None,
    };
    if url.keep_git_dir == Some(true) {
        mask_remote(url, &git, dest)?;
    } else {
        let dot_git = dest.join(".git");
        fs::remove_dir_all(&dot_git).map_err(GitError::fs("cannot remove", &dot_git))?;
    }
    let dir = subdir(url, dest)?;
    if let Some(secs) = mtime {
        set_times(&dir, secs)?;
    }
    Ok(dir)
}

/// Brings `pin.commit` into the repository at `dest`.
fn fetch(git: &Git<'_>, pin: &Resolved, dest: &Path) -> Result<(), GitError> {
    let shallow = [
        "fetch",
        "-q",
        "-u",
        "--depth",
        "1",
        "--no-tags",
        "origin",
        "--",
    ];
    if let Some(name) = &pin.ref_name {
        let refspec = if name.starts_with("refs/") {
            format!("+{name}:{name}")
        } else {
            name.clone()
        };
        if git.run(&[&shallow[..], &[&refspec]].concat()).is_ok() && has_commit(git, pin) {
            return Ok(());
        }
    }
    // A commit named by id, or a ref that moved since it was resolved (the key holds
    // the commit it had then): ask for the commit itself.
    if git.run(&[&shallow[..], &[&pin.commit]].concat()).is_ok() && has_commit(git, pin) {
        return Ok(());
    }
    // A server that serves only what it advertises: every branch and tag.
    let mut all = vec!["fetch", "-q", "-u", "--tags"];
    if dest.join(".git/shallow").exists() {
        all.push("--unshallow");
    }
    all.extend(["origin", "--", "+refs/heads/*:refs/remotes/origin/*"]);
    git.run(&all)?;
    if has_commit(git, pin) {
        return Ok(());
    }
    Err(GitError::CommitNotFound {
        remote: redact_url_credentials(git.remote()),
        commit: pin.commit.clone(),
    })
}

fn has_commit(git: &Git<'_>, pin: &Resolved) -> bool {
    let object = format!("{}^{{commit}}", pin.commit);
    git.run(&["cat-file", "-e", &object]).is_ok()
}

/// The committer time of `commit`, Unix seconds.
fn commit_time(git: &Git<'_>, commit: &str) -> Result<i64, GitError> {
    let out = git.output(&["show", "-s", "--format=%ct", commit])?;
    out.trim().parse().map_err(|_| GitError::Command {
        args: format!("show -s --format=%ct {commit}"),
        remote: redact_url_credentials(git.remote()),
        stderr: format!("not a time: {:?}", out.trim()),
    })
}

/// A kept `.git` names its remote without credentials and keeps no fetch log.
fn mask_remote(url: &GitRef, git: &Git<'_>, dest: &Path) -> Result<(), GitError> {
    let masked = redact_url_credentials(&url.remote);
    git.run(&["remote", "set-url", "--", "origin", &masked])?;
    git.run(&["reflog", "expire", "--all", "--expire=now"])?;
    let fetch_head = dest.join(".git/FETCH_HEAD");
    match fs::remove_file(&fetch_head) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(GitError::fs("cannot remove", &fetch_head)(e))
        }
        _ => Ok(()),
    }
}

/// `dest/SUBDIR`, which must be a directory inside `dest` (a symlink in the
/// repository may not lead out of it).
fn subdir(url: &GitRef, dest: &Path) -> Result<PathBuf, GitError> {
    let Some(sub) = &url.subdir else {
        return Ok(dest.to_owned());
    };
    let not_found = || GitError::NoSubdir {
        remote: redact_url_credentials(&url.remote),
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

/// Gives every entry below and including `dir` the modification time `secs`
/// (symlinks themselves, never what they point to).
fn set_times(dir: &Path, secs: i64) -> Result<(), GitError> {
    let ts = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = fs::symlink_metadata(&path).map_err(GitError::fs("cannot stat", &path))?;
        if meta.is_dir() {
            for entry in fs::read_dir(&path).map_err(GitError::fs("cannot list", &path))? {
                pending.push(entry.map_err(GitError::fs("cannot list", &path))?.path());
            }
        }
        rfs::utimensat(CWD, &path, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| GitError::fs("cannot set times of", &path)(e.into()))?;
    }
    Ok(())
}
