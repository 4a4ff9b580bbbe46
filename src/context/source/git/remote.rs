//! A git reference resolved to a commit without cloning: what BuildKit's git source
//! does before it keys a step (`resolveMetadata`).
//!
//! - A ref that is a full commit id is the commit: nothing is asked of the remote.
//! - `?fetch-by-commit` with a full commit id as checksum: that commit, also without
//!   asking (BuildKit 0.29's pinned fetch).
//! - Otherwise `git ls-remote`: the default branch (`--symref HEAD`) when no ref is
//!   given, else `REF` and `REF^{}`; as `git checkout` does, an exact `refs/...` name
//!   wins, then a branch, then a tag (an annotated tag is followed to its commit).
//!
//! `?checksum=`/`--checksum` (a commit id or a prefix of one, hex) must then match the
//! commit, or the annotated tag object the ref names.

use super::command::Git;
use super::GitError;
use crate::parser::instructions::values::{redact_url_credentials, GitRef};

/// A reference resolved: the commit a checkout gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The commit id (hex).
    pub commit: String,
    /// The ref the commit was found under (`refs/heads/main`, `refs/tags/v1`, or `HEAD`
    /// when the remote does not say which branch is its default): fetched by that
    /// name, so a kept `.git` has it. `None` for a commit named by its id.
    pub ref_name: Option<String>,
}

/// Resolves `url`'s ref (the default branch when it names none) to a commit.
pub fn resolve(url: &GitRef) -> Result<Resolved, GitError> {
    let remote = redact_url_credentials(&url.remote);
    if let Some(checksum) = &url.checksum {
        let hex = !checksum.is_empty() && checksum.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex {
            return Err(GitError::BadChecksum {
                remote,
                checksum: checksum.clone(),
            });
        }
    }
    if let Some(commit) = url.reference.as_deref().filter(|r| is_commit_id(r)) {
        return checked(url, commit, None, None);
    }
    if url.fetch_by_commit {
        return match url.checksum.as_deref().filter(|c| is_commit_id(c)) {
            Some(commit) => checked(url, commit, None, None),
            None => Err(GitError::FetchByCommit { remote }),
        };
    }
    let found = match url.reference.as_deref() {
        Some(reference) => look_up(url, reference)?,
        None => default_branch(url)?,
    };
    checked(
        url,
        &found.commit,
        found.ref_name,
        found.tag_object.as_deref(),
    )
}

/// Whether `s` is a full commit id (SHA-1 or SHA-256, lowercase hex).
pub fn is_commit_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `commit` when the checksum (if any) is a prefix of it or of the tag object.
fn checked(
    url: &GitRef,
    commit: &str,
    ref_name: Option<String>,
    tag_object: Option<&str>,
) -> Result<Resolved, GitError> {
    if let Some(expected) = &url.checksum {
        let matches = commit.starts_with(expected.as_str())
            || tag_object.is_some_and(|t| t.starts_with(expected.as_str()));
        if !matches {
            return Err(GitError::Checksum {
                remote: redact_url_credentials(&url.fragment_form(false)),
                expected: expected.clone(),
                actual: commit.to_owned(),
            });
        }
    }
    Ok(Resolved {
        commit: commit.to_owned(),
        ref_name,
    })
}

/// What `ls-remote` said about a ref.
#[derive(Debug, PartialEq, Eq)]
struct Found {
    commit: String,
    ref_name: Option<String>,
    /// The annotated tag object, when the ref is one (`commit` is what it points to).
    tag_object: Option<String>,
}

/// The remote's default branch and its commit.
fn default_branch(url: &GitRef) -> Result<Found, GitError> {
    let out =
        Git::new(&url.remote).output(&["ls-remote", "--symref", "--", &url.remote, "HEAD"])?;
    parse_head(&out).ok_or_else(|| GitError::NoRef {
        remote: redact_url_credentials(&url.remote),
        reference: "HEAD".into(),
    })
}

/// `reference` on the remote.
fn look_up(url: &GitRef, reference: &str) -> Result<Found, GitError> {
    let peeled = format!("{reference}^{{}}");
    let args = ["ls-remote", "--", &url.remote, reference, &peeled];
    let out = Git::new(&url.remote).output(&args)?;
    pick(&out, reference).ok_or_else(|| GitError::NoRef {
        remote: redact_url_credentials(&url.remote),
        reference: reference.to_owned(),
    })
}

/// `ls-remote --symref HEAD` output: the branch HEAD points to and its commit (or the
/// commit of `HEAD` alone, fetched as `HEAD`, when the remote names no branch).
fn parse_head(out: &str) -> Option<Found> {
    let mut branch = None;
    let mut commit = None;
    for line in out.lines() {
        if let Some(target) = line.strip_prefix("ref: ") {
            branch = target.strip_suffix("\tHEAD").map(str::to_owned);
        } else if let Some((sha, "HEAD")) = line.split_once('\t') {
            commit = Some(sha.to_owned());
        }
    }
    let commit = commit.filter(|c| is_commit_id(c))?;
    Some(Found {
        commit,
        ref_name: Some(branch.unwrap_or_else(|| "HEAD".into())),
        tag_object: None,
    })
}

/// The commit `reference` names in `ls-remote` output, preferring as `git checkout`
/// and BuildKit do: the exact `refs/...` name, then a branch, then a tag.
fn pick(out: &str, reference: &str) -> Option<Found> {
    let bare = reference.strip_prefix("refs/").unwrap_or(reference);
    let exact = format!("refs/{bare}");
    let head = format!("refs/heads/{}", reference.trim_start_matches("refs/heads/"));
    let tag = format!("refs/tags/{}", reference.trim_start_matches("refs/tags/"));
    let peeled = format!("{tag}^{{}}");
    let find = |name: &str| {
        out.lines().find_map(|line| {
            let (sha, r) = line.split_once('\t')?;
            (r == name && is_commit_id(sha)).then(|| sha.to_owned())
        })
    };
    let found = |commit: String, name: &str, tag_object: Option<String>| Found {
        commit,
        ref_name: Some(name.to_owned()),
        tag_object,
    };
    if let Some(sha) = find(&exact).filter(|_| exact != tag) {
        return Some(found(sha, &exact, None));
    }
    if let Some(sha) = find(&head) {
        return Some(found(sha, &head, None));
    }
    let object = find(&tag)?;
    Some(match find(&peeled) {
        Some(commit) => found(commit, &tag, Some(object)),
        None => found(object, &tag, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

    fn found(commit: &str, name: &str, tag: Option<&str>) -> Option<Found> {
        Some(Found {
            commit: commit.into(),
            ref_name: Some(name.into()),
            tag_object: tag.map(Into::into),
        })
    }

    #[test]
    fn refs_are_picked_as_git_checkout_does() {
        let out = format!(
            "{A}\trefs/heads/v1\n{B}\trefs/tags/v1\n{C}\trefs/tags/v1^{{}}\n{A}\trefs/remotes/o/v1\n"
        );
        assert_eq!(pick(&out, "v1"), found(A, "refs/heads/v1", None));
        assert_eq!(
            pick(&out, "refs/tags/v1"),
            found(C, "refs/tags/v1", Some(B))
        );
        let tags = format!("{B}\trefs/tags/v2\n");
        assert_eq!(pick(&tags, "v2"), found(B, "refs/tags/v2", None));
        let pull = format!("{C}\trefs/pull/4/head\n");
        assert_eq!(
            pick(&pull, "pull/4/head"),
            found(C, "refs/pull/4/head", None)
        );
        assert_eq!(pick(&out, "nope"), None);
        assert_eq!(pick("", "v1"), None);
    }

    #[test]
    fn the_default_branch_comes_from_the_head_symref() {
        let out = format!("ref: refs/heads/trunk\tHEAD\n{A}\tHEAD\n");
        assert_eq!(parse_head(&out), found(A, "refs/heads/trunk", None));
        assert_eq!(parse_head(&format!("{B}\tHEAD\n")), found(B, "HEAD", None));
        assert_eq!(parse_head("ref: refs/heads/x\tHEAD\n"), None);
    }

    #[test]
    fn commits_and_checksums_need_no_remote() {
        let url = |reference: Option<&str>, checksum: Option<&str>| GitRef {
            remote: "https://u:pw@h.invalid/r.git".into(),
            reference: reference.map(Into::into),
            checksum: checksum.map(Into::into),
            ..Default::default()
        };
        let pinned = resolve(&url(Some(A), Some("aaaa"))).unwrap();
        assert_eq!((pinned.commit.as_str(), pinned.ref_name), (A, None));
        let err = resolve(&url(Some(A), Some("abc"))).unwrap_err().to_string();
        assert!(err.contains(A) && err.contains("abc"), "{err}");
        assert!(!err.contains("pw"), "{err}");
        let err = resolve(&url(None, Some("main"))).unwrap_err();
        assert!(matches!(err, GitError::BadChecksum { .. }), "{err}");
        let mut by_commit = url(Some("main"), Some(B));
        by_commit.fetch_by_commit = true;
        assert_eq!(resolve(&by_commit).unwrap().commit, B);
        by_commit.checksum = Some("bbbb".into());
        let err = resolve(&by_commit).unwrap_err();
        assert!(matches!(err, GitError::FetchByCommit { .. }), "{err}");
        assert!(is_commit_id(A) && !is_commit_id("abc") && !is_commit_id(&A.to_uppercase()));
    }
}
