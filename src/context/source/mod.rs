//! Where a build context comes from: the `PATH | URL | -` argument of `rbuild build`,
//! read as `docker build` reads it, and the fetching of remote ones into a directory.
//!
//! - `-`: standard input, either a tar archive (plain or compressed: the context) or a
//!   Dockerfile (no context), told apart by its first bytes as the docker CLI does.
//! - A git URL (`git://…`, `git@host:org/repo.git`, `ssh://…`, `github.com/org/repo`, or
//!   an `http(s)://` URL whose path ends in `.git`), optionally `#REF[:SUBDIR]`: cloned
//!   with the `git` program ([`git`]).
//! - Any other `http(s)://` URL: a tarball (or a lone Dockerfile) to download.
//! - Anything else: a local directory.
//!
//! Classifying is pure ([`ContextArg::parse`]); fetching writes only below the
//! directory it is given.

pub mod git;

use std::path::PathBuf;

/// The context argument of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextArg {
    /// A local directory.
    Dir(PathBuf),
    /// `-`: a tar archive or a Dockerfile on standard input.
    Stdin,
    /// A git repository.
    Git(GitUrl),
    /// An `http(s)://` URL that is not a git repository.
    Url(String),
}

/// A git context: the repository, and the `#REF:SUBDIR` fragment split in two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitUrl {
    /// What `git` fetches from (the argument without its fragment).
    pub remote: String,
    /// The branch, tag or commit to check out (the remote's HEAD when `None`).
    pub reference: Option<String>,
    /// The directory of the repository that is the context (its root when `None`).
    pub subdir: Option<String>,
}

impl ContextArg {
    /// Reads the context argument as `docker build` does.
    pub fn parse(arg: &str) -> ContextArg {
        if arg == "-" {
            return ContextArg::Stdin;
        }
        if is_git_url(arg) {
            return ContextArg::Git(GitUrl::parse(arg));
        }
        if arg.starts_with("http://") || arg.starts_with("https://") {
            return ContextArg::Url(arg.to_owned());
        }
        ContextArg::Dir(PathBuf::from(arg))
    }
}

/// Docker's rule (`urlutil.IsGitURL`), plus `ssh://`: the git prefixes, or an http(s)
/// URL whose path ends in `.git` (a `#fragment` may follow).
fn is_git_url(arg: &str) -> bool {
    if ["git://", "git@", "github.com/", "ssh://"]
        .iter()
        .any(|p| arg.starts_with(p))
    {
        return true;
    }
    let is_http = arg.starts_with("http://") || arg.starts_with("https://");
    let path = arg.split_once('#').map_or(arg, |(path, _)| path);
    is_http && path.len() > ".git".len() && path.ends_with(".git")
}

impl GitUrl {
    /// Splits `REMOTE#REF:SUBDIR`; `github.com/…` gets the `https://` scheme git needs.
    pub fn parse(arg: &str) -> GitUrl {
        let (remote, fragment) = match arg.split_once('#') {
            Some((remote, fragment)) => (remote, Some(fragment)),
            None => (arg, None),
        };
        let remote = if remote.starts_with("github.com/") {
            format!("https://{remote}")
        } else {
            remote.to_owned()
        };
        let (reference, subdir) = match fragment.map(|f| f.split_once(':').unwrap_or((f, ""))) {
            Some((reference, subdir)) => (non_empty(reference), non_empty(subdir)),
            None => (None, None),
        };
        GitUrl {
            remote,
            reference,
            subdir,
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(remote: &str, reference: Option<&str>, subdir: Option<&str>) -> ContextArg {
        ContextArg::Git(GitUrl {
            remote: remote.into(),
            reference: reference.map(Into::into),
            subdir: subdir.map(Into::into),
        })
    }

    #[test]
    fn arguments_are_read_as_docker_reads_them() {
        assert_eq!(ContextArg::parse("-"), ContextArg::Stdin);
        assert_eq!(ContextArg::parse("."), ContextArg::Dir(".".into()));
        assert_eq!(
            ContextArg::parse("app.git"),
            ContextArg::Dir("app.git".into())
        );
        assert_eq!(
            ContextArg::parse("https://h/org/repo.git#v1:docs"),
            git("https://h/org/repo.git", Some("v1"), Some("docs"))
        );
        assert_eq!(
            ContextArg::parse("git@h:org/repo.git#:sub"),
            git("git@h:org/repo.git", None, Some("sub"))
        );
        assert_eq!(
            ContextArg::parse("github.com/org/repo#main"),
            git("https://github.com/org/repo", Some("main"), None)
        );
        assert_eq!(
            ContextArg::parse("git://127.0.0.1:9418/r"),
            git("git://127.0.0.1:9418/r", None, None)
        );
        assert_eq!(
            ContextArg::parse("https://h/ctx.tar.gz"),
            ContextArg::Url("https://h/ctx.tar.gz".into())
        );
    }
}
