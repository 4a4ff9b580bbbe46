//! Where a build context comes from: the `PATH | URL | -` argument of `rbuild build`,
//! read as `docker build` reads it, and the fetching of remote ones into a directory.
//!
//! - `-`: standard input, either a tar archive (plain or compressed: the context) or a
//!   Dockerfile (no context), told apart by its first bytes as the docker CLI does.
//! - A git URL as BuildKit reads one (`git://…`, `git@host:org/repo.git`, `ssh://…`,
//!   `github.com/org/repo`, or an `http(s)://` URL whose path ends in `.git`; `#REF:SUBDIR`
//!   and the `?ref=&subdir=&keep-git-dir=&submodules=&checksum=` query: the parser's
//!   [`parse_git_ref`]): cloned with the `git` program ([`git`], which also fetches
//!   ADD's git sources for the executor).
//! - Any other `http(s)://` URL: a tarball (or a lone Dockerfile) to download.
//! - Anything else: a local directory.
//!
//! [`named`] reads the values of `--build-context NAME=VALUE` the same way, plus the
//! image kinds (`docker-image://`, `oci-layout://`).
//!
//! Classifying is pure ([`ContextArg::parse`]); fetching writes only below the
//! directory it is given.

pub mod git;
pub mod named;

use std::path::PathBuf;

use crate::parser::instructions::values::{parse_git_ref, GitRef};

/// The context argument of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextArg {
    /// A local directory.
    Dir(PathBuf),
    /// `-`: a tar archive or a Dockerfile on standard input.
    Stdin,
    /// A git repository (BuildKit's git reference syntax: `#REF:SUBDIR` and the
    /// `?ref=&subdir=&keep-git-dir=&submodules=&checksum=` query).
    Git(Box<GitRef>),
    /// An `http(s)://` URL that is not a git repository.
    Url(String),
}

impl ContextArg {
    /// Reads the context argument as `docker build` and BuildKit do; a git URL with
    /// invalid options is an error.
    pub fn parse(arg: &str) -> Result<ContextArg, crate::parser::instructions::values::Error> {
        if arg == "-" {
            return Ok(ContextArg::Stdin);
        }
        if let Some(mut git_ref) = parse_git_ref(arg)? {
            if git_ref.indistinguishable_from_local {
                // `github.com/org/repo`: BuildKit fetches it over https.
                git_ref.remote = format!("https://{}", git_ref.remote);
            }
            return Ok(ContextArg::Git(Box::new(git_ref)));
        }
        if arg.starts_with("http://") || arg.starts_with("https://") {
            return Ok(ContextArg::Url(arg.to_owned()));
        }
        Ok(ContextArg::Dir(PathBuf::from(arg)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(arg: &str) -> (String, Option<String>, Option<String>) {
        match ContextArg::parse(arg).unwrap() {
            ContextArg::Git(g) => (g.remote, g.reference, g.subdir),
            other => panic!("{arg}: {other:?}"),
        }
    }

    fn pair(
        remote: &str,
        r: Option<&str>,
        s: Option<&str>,
    ) -> (String, Option<String>, Option<String>) {
        (remote.into(), r.map(Into::into), s.map(Into::into))
    }

    #[test]
    fn arguments_are_read_as_docker_reads_them() {
        assert_eq!(ContextArg::parse("-").unwrap(), ContextArg::Stdin);
        assert_eq!(ContextArg::parse(".").unwrap(), ContextArg::Dir(".".into()));
        assert_eq!(
            ContextArg::parse("app.git").unwrap(),
            ContextArg::Dir("app.git".into())
        );
        assert_eq!(
            git("https://h/org/repo.git#v1:docs"),
            pair("https://h/org/repo.git", Some("v1"), Some("docs"))
        );
        assert_eq!(
            git("git@h:org/repo.git#:sub"),
            pair("git@h:org/repo.git", None, Some("sub"))
        );
        assert_eq!(
            git("github.com/org/repo#main"),
            pair("https://github.com/org/repo", Some("main"), None)
        );
        assert_eq!(
            git("git://127.0.0.1:9418/r?ref=v2"),
            pair("git://127.0.0.1:9418/r", Some("v2"), None)
        );
        assert_eq!(
            ContextArg::parse("https://h/ctx.tar.gz").unwrap(),
            ContextArg::Url("https://h/ctx.tar.gz".into())
        );
        assert!(ContextArg::parse("https://h/r.git?bogus=1").is_err());
    }
}
