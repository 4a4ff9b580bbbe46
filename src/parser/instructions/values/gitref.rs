//! Git references for `ADD <git-url>` and git build contexts.
//!
//! Mirrors BuildKit's `dfgitutil.ParseGitRef` and `FragmentFormat`. Syntax:
//! `URL[?query][#ref[:subdir]]`, where URL is one of
//!
//! * `http(s)://...` whose path ends in `.git` (`http` marks unencrypted TCP),
//! * `git://...` (unencrypted TCP) or `ssh://...`,
//! * scp-like `user@host:path`,
//! * the deprecated `github.com/owner/repo`, indistinguishable from a local path, which
//!   BuildKit accepts only for build contexts.
//!
//! Anything else (`./x`, `../x`, other schemes, http URLs without `.git`) is not a git
//! reference: [`parse_git_ref`] returns `Ok(None)` and the caller treats the text as a URL
//! or a path. A recognised git URL with bad options is an error.
//!
//! Query keys: `ref`; `tag` and `branch` (prefixed with `refs/tags/`, `refs/heads/`);
//! `subdir`; `checksum` (alias `commit`); `keep-git-dir`, `submodules` and
//! `fetch-by-commit` (booleans, bare means true); `mtime` (`checkout` or `commit`). Each
//! key may appear once with a non-empty value, must agree with the fragment, and unknown
//! keys are errors. BuildKit visits the keys in Go map order; rbuild visits them sorted, so
//! when several keys are wrong the error reported is the first in that order.

use std::collections::BTreeMap;

use super::error::{Error, Result};
use super::giturl::{self, UrlParts};
use super::golang::parse_bool;

/// How file modification times are set in a git checkout (`?mtime=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GitMtime {
    /// The time of the checkout (git's behaviour).
    Checkout,
    /// The commit time, for reproducible contexts.
    Commit,
}

impl GitMtime {
    /// The query spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            GitMtime::Checkout => "checkout",
            GitMtime::Commit => "commit",
        }
    }
}

/// A parsed git reference (`dfgitutil.GitRef`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GitRef {
    /// The repository URL passed to git, without query and fragment; for the
    /// `github.com/...` form, without a scheme.
    pub remote: String,
    /// The repository's directory name (`buildkit` for `.../buildkit.git`).
    pub short_name: String,
    /// Commit, tag or branch to check out (`refs/tags/X` for `?tag=X`).
    pub reference: Option<String>,
    /// Expected commit (`?checksum=`/`?commit=`).
    pub checksum: Option<String>,
    /// Directory inside the repository, as written.
    pub subdir: Option<String>,
    /// The deprecated `github.com/owner/repo` form (build contexts only).
    pub indistinguishable_from_local: bool,
    /// `http://` or `git://`: the fetch is not encrypted.
    pub unencrypted_tcp: bool,
    /// `?keep-git-dir=`: keep the `.git` directory.
    pub keep_git_dir: Option<bool>,
    /// `?submodules=`: fetch submodules.
    pub submodules: Option<bool>,
    /// `?mtime=`.
    pub mtime: Option<GitMtime>,
    /// `?fetch-by-commit`: fetch the checksum commit directly.
    pub fetch_by_commit: bool,
}

/// Whether BuildKit reads `input` as a git reference (valid or not).
pub fn is_git_ref(input: &str) -> bool {
    !matches!(parse_git_ref(input), Ok(None))
}

/// Parses a git reference: `Ok(None)` when `input` is not one, an error when it is one
/// with invalid options.
pub fn parse_git_ref(input: &str) -> Result<Option<GitRef>> {
    let Some((parts, mut git_ref)) = recognise(input) else {
        return Ok(None);
    };
    let UrlParts {
        remote,
        query,
        fragment,
        ..
    } = parts;
    if !fragment.is_empty() {
        let (reference, subdir) = fragment.split_once(':').unwrap_or((&fragment, ""));
        git_ref.reference = non_empty(reference);
        git_ref.subdir = non_empty(subdir);
    }
    let last = remote.rsplit('/').next().unwrap_or_default();
    git_ref.short_name = last.strip_suffix(".git").unwrap_or(last).to_owned();
    git_ref.remote = remote;
    load_query(&mut git_ref, &query)?;
    Ok(Some(git_ref))
}

/// The canonical `remote#ref[:subdir]` form of a git reference, or `None` when `input` is
/// not a valid one (BuildKit then keeps the input unchanged).
pub fn fragment_format(input: &str, keep_subdir: bool) -> Option<String> {
    parse_git_ref(input)
        .ok()
        .flatten()
        .map(|git_ref| git_ref.fragment_form(keep_subdir))
}

impl GitRef {
    /// `remote#ref`, plus `:subdir` (without leading slashes) when `keep_subdir`; no `#`
    /// when there is nothing to put after it.
    pub fn fragment_form(&self, keep_subdir: bool) -> String {
        let mut fragment = self.reference.clone().unwrap_or_default();
        let subdir = self
            .subdir
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/');
        if keep_subdir && !subdir.is_empty() {
            fragment.push(':');
            fragment.push_str(subdir);
        }
        if fragment.is_empty() {
            self.remote.clone()
        } else {
            format!("{}#{fragment}", self.remote)
        }
    }
}

/// Recognises the URL forms; the returned `GitRef` has only its two transport flags set.
fn recognise(input: &str) -> Option<(UrlParts, GitRef)> {
    if input.starts_with("./") || input.starts_with("../") {
        return None;
    }
    let mut git_ref = GitRef::default();
    let parts = if input.starts_with("github.com/") {
        git_ref.indistinguishable_from_local = true;
        giturl::parse_without_scheme(input)?
    } else if let Some(scheme) = explicit_scheme(input) {
        let scheme = scheme.to_lowercase();
        if !matches!(scheme.as_str(), "http" | "https" | "ssh" | "git") {
            return None;
        }
        let parts = giturl::parse_with_scheme(input)?;
        git_ref.unencrypted_tcp = matches!(scheme.as_str(), "http" | "git");
        // An HTTP(S) URL is a git reference only with the `.git` suffix.
        if matches!(scheme.as_str(), "http" | "https") && !parts.path.ends_with(b".git") {
            return None;
        }
        parts
    } else {
        giturl::parse_scp_like(input)?
    };
    Some((parts, git_ref))
}

/// The scheme of `^[A-Za-z0-9]+://`.
fn explicit_scheme(input: &str) -> Option<&str> {
    let (scheme, _) = input.split_once("://")?;
    (!scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(scheme)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Applies the query options (BuildKit's `loadQuery`).
fn load_query(git_ref: &mut GitRef, query: &[(String, String)]) -> Result<()> {
    let mut grouped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, value) in query {
        grouped.entry(key).or_default().push(value);
    }
    let (mut tag, mut branch) = (None, None);
    for (key, values) in grouped {
        let value = match values.as_slice() {
            [value] if !value.is_empty() => Some(*value),
            [_] if matches!(key, "keep-git-dir" | "submodules" | "fetch-by-commit") => None,
            [_] => {
                return Err(Error::GitQueryNoValue {
                    key: key.to_owned(),
                })
            }
            _ => {
                return Err(Error::GitQueryMultipleValues {
                    key: key.to_owned(),
                })
            }
        };
        let text = || value.unwrap_or_default().to_owned();
        match key {
            "ref" => set_reference(git_ref, text())?,
            "tag" => tag = value,
            "branch" => branch = value,
            "subdir" => set_subdir(git_ref, text())?,
            "checksum" | "commit" => git_ref.checksum = Some(text()),
            "keep-git-dir" => git_ref.keep_git_dir = Some(flag(key, value)?),
            "submodules" => git_ref.submodules = Some(flag(key, value)?),
            "fetch-by-commit" => git_ref.fetch_by_commit = flag(key, value)?,
            "mtime" => git_ref.mtime = Some(mtime(text())?),
            _ => {
                return Err(Error::GitUnexpectedQuery {
                    key: key.to_owned(),
                })
            }
        }
    }
    if let Some(tag) = tag {
        set_reference(git_ref, with_prefix("refs/tags/", tag))?;
    }
    if let Some(branch) = branch {
        if tag.is_some() {
            return Err(Error::GitBranchAndTag);
        }
        set_reference(git_ref, with_prefix("refs/heads/", branch))?;
    }
    Ok(())
}

fn set_reference(git_ref: &mut GitRef, reference: String) -> Result<()> {
    match &git_ref.reference {
        Some(existing) if *existing != reference => Err(Error::GitRefConflict {
            first: existing.clone(),
            second: reference,
        }),
        _ => {
            git_ref.reference = Some(reference);
            Ok(())
        }
    }
}

fn set_subdir(git_ref: &mut GitRef, subdir: String) -> Result<()> {
    match &git_ref.subdir {
        Some(existing) if *existing != subdir => Err(Error::GitSubdirConflict {
            first: existing.clone(),
            second: subdir,
        }),
        _ => {
            git_ref.subdir = Some(subdir);
            Ok(())
        }
    }
}

fn with_prefix(prefix: &str, name: &str) -> String {
    if name.starts_with(prefix) {
        name.to_owned()
    } else {
        format!("{prefix}{name}")
    }
}

/// A boolean query value; `None` is the bare key, meaning true.
fn flag(key: &str, value: Option<&str>) -> Result<bool> {
    match value {
        None => Ok(true),
        Some(v) => parse_bool(v).ok_or_else(|| Error::GitQueryValue {
            key: key.to_owned(),
            value: v.to_owned(),
        }),
    }
}

fn mtime(value: String) -> Result<GitMtime> {
    match value.as_str() {
        "checkout" => Ok(GitMtime::Checkout),
        "commit" => Ok(GitMtime::Commit),
        _ => Err(Error::GitQueryValue {
            key: "mtime".to_owned(),
            value,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(input: &str) -> GitRef {
        match parse_git_ref(input) {
            Ok(Some(r)) => r,
            other => panic!("{input}: {other:?}"),
        }
    }

    fn message(input: &str) -> String {
        match parse_git_ref(input) {
            Err(e) => e.to_string(),
            other => panic!("{input}: {other:?}"),
        }
    }

    #[test]
    fn recognises_git_urls() {
        assert!(is_git_ref("ssh://git@host/repo"));
        assert!(is_git_ref("GIT://host/repo"));
        assert!(is_git_ref("https://h/r.git?nope=1"));
        assert!(!is_git_ref("ftp://h/r.git"));
        assert!(!is_git_ref("../r.git"));
        assert!(!is_git_ref("http://h/r.git/"));
        assert!(!is_git_ref("/abs/path.git"));
        assert!(!is_git_ref(""));
        assert_eq!(parsed("ssh://git@host/x/repo.git").short_name, "repo");
        assert_eq!(parsed("git@host:repo").short_name, "git@host:repo");
    }

    #[test]
    fn query_options() {
        let r = parsed("https://h/r.git?keep-git-dir&submodules=false&mtime=commit&commit=abc");
        assert_eq!(r.keep_git_dir, Some(true));
        assert_eq!(r.submodules, Some(false));
        assert_eq!(r.mtime, Some(GitMtime::Commit));
        assert_eq!(r.checksum.as_deref(), Some("abc"));
        assert_eq!(r.reference, None);
        let r = parsed("https://h/r.git?tag=refs/tags/v1#refs/tags/v1");
        assert_eq!(r.reference.as_deref(), Some("refs/tags/v1"));
        assert_eq!(
            parsed("https://h/r.git?subdir=a#:a").subdir.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn query_errors() {
        assert_eq!(
            message("https://h/r.git?ref="),
            r#"query "ref" has no value"#
        );
        assert_eq!(
            message("https://h/r.git?ref=a&ref=b"),
            r#"query "ref" has multiple values"#
        );
        assert_eq!(
            message("https://h/r.git?subdir=a#:b"),
            r#"subdir conflicts: "b" vs "a""#
        );
        assert_eq!(
            message("https://h/r.git?branch=x#y"),
            r#"ref conflicts: "y" vs "refs/heads/x""#
        );
        assert_eq!(
            message("https://h/r.git?submodules=2"),
            r#"invalid submodules value: "2""#
        );
        assert_eq!(
            message("https://h/r.git?mtime="),
            r#"query "mtime" has no value"#
        );
    }

    #[test]
    fn fragment_form_renders_ref_and_subdir() {
        assert_eq!(
            fragment_format("git@h:r.git?subdir=/a/b#v1", true).as_deref(),
            Some("git@h:r.git#v1:a/b")
        );
        assert_eq!(
            fragment_format("https://h/r.git#:/x", false).as_deref(),
            Some("https://h/r.git")
        );
        assert_eq!(fragment_format("https://h/r.git?ref=a&ref=b", false), None);
    }
}
