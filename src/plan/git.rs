//! Which COPY/ADD sources are git repositories, and the checks BuildKit's
//! `dispatchCopy` makes of them and of `--checksum` and `--keep-git-dir`.
//!
//! A source is a git repository when BuildKit's `dfgitutil.ParseGitRef` reads it as
//! one ([`parse_git_ref`]: `https://…/*.git`, `git://…`, `ssh://…`, `user@host:path`,
//! with `#ref:subdir` or the `?ref=&subdir=&checksum=…` query), except the deprecated
//! `github.com/owner/repo` form, which BuildKit takes for a local path here. Only ADD
//! takes one. The flags are folded into each reference: `--keep-git-dir` must agree with
//! `?keep-git-dir=`, `--checksum` with `?checksum=`. `--checksum` needs exactly one
//! source, an http(s) URL or a git repository; `--keep-git-dir` needs a git source
//! (BuildKit ignores it elsewhere; rbuild says so rather than ignore a flag).

use super::error::{PlanError, Result};
use super::GitSource;
use crate::parser::instructions::values::{parse_git_ref, redact_url_credentials};
use crate::parser::instructions::CopyOptions;
use crate::parser::Span;

/// The git sources among `sources` (expanded), with the flags of `options` folded in;
/// an error names what BuildKit refuses.
pub(super) fn git_sources(
    sources: &[String],
    options: &CopyOptions,
    is_add: bool,
    span: Span,
) -> Result<Vec<GitSource>> {
    let invalid = |message: String| PlanError::Invalid { message, span };
    let mut found = Vec::new();
    for written in sources {
        let parsed = parse_git_ref(written).map_err(|e| {
            invalid(format!(
                "invalid git URL {}: {e}",
                redact_url_credentials(written)
            ))
        })?;
        let Some(mut url) = parsed.filter(|g| !g.indistinguishable_from_local) else {
            continue;
        };
        if !is_add {
            return Err(invalid("source can't be a git ref for COPY".into()));
        }
        url.keep_git_dir = agree(options.keep_git_dir, url.keep_git_dir)
            .map_err(|_| invalid("inconsistent keep-git-dir configuration".into()))?;
        url.checksum = agree(options.checksum.clone(), url.checksum.take())
            .map_err(|(flag, query)| invalid(format!("checksum mismatch {flag:?} != {query:?}")))?;
        found.push(GitSource {
            written: written.clone(),
            url,
        });
    }
    check_flags(sources, options, !found.is_empty()).map_err(invalid)?;
    Ok(found)
}

/// The flag's value and the URL's must be the same when both are given.
fn agree<T: PartialEq>(flag: Option<T>, query: Option<T>) -> Result<Option<T>, (T, T)> {
    match (flag, query) {
        (Some(f), Some(q)) if f != q => Err((f, q)),
        (f, q) => Ok(f.or(q)),
    }
}

/// `--checksum` on one http(s) or git source; `--keep-git-dir` with a git source.
fn check_flags(
    sources: &[String],
    options: &CopyOptions,
    has_git: bool,
) -> std::result::Result<(), String> {
    if options.checksum.is_some() {
        let [source] = sources else {
            return Err("checksum can't be specified for multiple sources".into());
        };
        let http = source.starts_with("http://") || source.starts_with("https://");
        if !http && !has_git {
            return Err("checksum requires HTTP(S) or Git sources".into());
        }
    }
    if options.keep_git_dir.is_some() && !has_git {
        return Err(
            "--keep-git-dir applies to git repository sources only, and no source of this \
             ADD is one (a git URL such as https://host/repo.git#ref or git@host:repo.git)"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn classify(list: &[&str], options: &CopyOptions, is_add: bool) -> Result<Vec<GitSource>> {
        git_sources(&sources(list), options, is_add, Span::default())
    }

    fn message(list: &[&str], options: &CopyOptions, is_add: bool) -> String {
        match classify(list, options, is_add) {
            Err(e) => e.to_string(),
            Ok(found) => panic!("{list:?}: {found:?}"),
        }
    }

    #[test]
    fn git_sources_are_recognised_as_buildkit_does() {
        let list = [
            "https://h/org/r.git#v1:docs",
            "git@h:org/r",
            "git://h/r",
            "ssh://git@h/r.git",
            "https://h/r.git?branch=main&subdir=app",
            "https://h/archive.tar.gz",
            "github.com/org/r",
            "src/",
            "a:b",
        ];
        let found = classify(&list, &CopyOptions::default(), true).unwrap();
        let written: Vec<&str> = found.iter().map(|g| g.written.as_str()).collect();
        assert_eq!(written, &list[..5]);
        assert_eq!(found[0].url.reference.as_deref(), Some("v1"));
        assert_eq!(found[0].url.subdir.as_deref(), Some("docs"));
        assert_eq!(found[4].url.reference.as_deref(), Some("refs/heads/main"));
        assert_eq!(found[4].display(), "https://h/r.git#refs/heads/main:app");
    }

    #[test]
    fn flags_are_folded_into_the_reference() {
        let options = CopyOptions {
            keep_git_dir: Some(true),
            checksum: Some("abc".into()),
            ..Default::default()
        };
        let found = classify(&["https://h/r.git?keep-git-dir"], &options, true).unwrap();
        assert_eq!(found[0].url.keep_git_dir, Some(true));
        assert_eq!(found[0].url.checksum.as_deref(), Some("abc"));
        let found = classify(&["git://h/r?checksum=abc"], &CopyOptions::default(), true).unwrap();
        assert_eq!(found[0].url.checksum.as_deref(), Some("abc"));
        assert_eq!(found[0].url.keep_git_dir, None);
    }

    #[test]
    fn what_buildkit_refuses_is_refused() {
        let plain = CopyOptions::default();
        assert_eq!(
            message(&["https://h/r.git"], &plain, false),
            "source can't be a git ref for COPY"
        );
        let keep = CopyOptions {
            keep_git_dir: Some(false),
            ..Default::default()
        };
        assert_eq!(
            message(&["https://h/r.git?keep-git-dir=true"], &keep, true),
            "inconsistent keep-git-dir configuration"
        );
        assert!(message(&["file.txt"], &keep, true).contains("--keep-git-dir applies"));
        let sum = CopyOptions {
            checksum: Some("abc".into()),
            ..Default::default()
        };
        assert_eq!(
            message(&["https://h/r.git?checksum=def"], &sum, true),
            r#"checksum mismatch "abc" != "def""#
        );
        assert_eq!(
            message(&["https://h/r.git", "git://h/s"], &sum, true),
            "checksum can't be specified for multiple sources"
        );
        assert_eq!(
            message(&["file.txt"], &sum, true),
            "checksum requires HTTP(S) or Git sources"
        );
        classify(&["https://h/file.tar"], &sum, true).unwrap();
        let err = message(&["https://u:pw@h/r.git?bogus=1"], &plain, true);
        assert_eq!(
            err,
            r#"invalid git URL https://u:xxxxx@h/r.git?bogus=1: unexpected query "bogus""#
        );
    }
}
