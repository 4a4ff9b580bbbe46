//! The VALUE of `--build-context NAME=VALUE`, classified as buildx and BuildKit read
//! it (buildx's `loadInputs`, BuildKit's `dockerui/namedcontext.go`):
//!
//! - `docker-image://REF`: an image, resolved like a `FROM` image (`scratch`: nothing);
//! - `oci-layout://PATH[:TAG][@DIGEST]`: an image of an OCI layout on disk, found by
//!   its tag (`latest` when none is given) or digest (buildx's `parseOCILayoutPath`:
//!   the last `@` followed by a digest, then the last `:` followed by a tag);
//! - a git URL or an `http(s)://` URL, as the main context argument reads them
//!   ([`ContextArg::parse`]); an http(s) URL that is not a git repository is one file
//!   named `context`, not unpacked: BuildKit's `llb.HTTP(url, Filename("context"))`;
//! - any other `SCHEME://` is refused (buildx would stat it as a path and fail), as are
//!   `target:` (a bake target) and `-`;
//! - anything else: a local directory.
//!
//! Classifying is pure: nothing is read or fetched here.

use std::path::PathBuf;

use super::ContextArg;
use crate::digest::Digest;
use crate::parser::instructions::values::{self, GitRef};

/// What a named build context is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedSource {
    /// A local directory, filtered by its own `.dockerignore`.
    Dir(PathBuf),
    /// A git repository (`#REF:SUBDIR` and the query options of a git context).
    Git(Box<GitRef>),
    /// An `http(s)://` URL that is not a git repository: a tree holding the download
    /// as one file named `context` (mode 0600, the server's `Last-Modified` time).
    Url(String),
    /// `docker-image://REF`: an image reference (`scratch` for an empty tree).
    Image(String),
    /// `oci-layout://PATH[:TAG][@DIGEST]`.
    Layout(LayoutRef),
}

/// An image in an OCI layout directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    /// The layout directory (as written; the CLI makes it absolute).
    pub path: PathBuf,
    /// The tag to look up in `index.json` (`latest` when none was written).
    pub tag: String,
    /// The manifest (or index) digest, which wins over the tag.
    pub digest: Option<Digest>,
}

/// Why a named context's value is refused.
#[derive(Debug, thiserror::Error)]
pub enum NamedSourceError {
    #[error("docker-image:// needs an image reference, such as docker-image://alpine:3.20")]
    EmptyImage,
    #[error("oci-layout:// needs the path of an OCI layout directory, such as oci-layout://./layout:1.0")]
    EmptyLayout,
    #[error("{value:?}: {digest:?} is not a digest rbuild reads (sha256:<64 hex digits>)")]
    BadDigest { value: String, digest: String },
    #[error("{scheme}:// is not a kind of build context: use a directory, docker-image://, oci-layout://, a git URL or an http(s) URL")]
    UnknownScheme { scheme: String },
    #[error("target: names a bake target, and rbuild has no bake: build that stage with --target and pass it as docker-image:// or oci-layout://")]
    Target,
    #[error("standard input (-) can only be the main build context")]
    Stdin,
    #[error(transparent)]
    Git(#[from] values::Error),
}

impl NamedSource {
    /// Classifies a `--build-context` value.
    pub fn parse(value: &str) -> Result<NamedSource, NamedSourceError> {
        if let Some(reference) = value.strip_prefix("docker-image://") {
            if reference.is_empty() {
                return Err(NamedSourceError::EmptyImage);
            }
            return Ok(NamedSource::Image(reference.to_owned()));
        }
        if let Some(rest) = value.strip_prefix("oci-layout://") {
            return layout_ref(value, rest).map(NamedSource::Layout);
        }
        if value.starts_with("target:") {
            return Err(NamedSourceError::Target);
        }
        match ContextArg::parse(value)? {
            ContextArg::Stdin => Err(NamedSourceError::Stdin),
            ContextArg::Git(git) => Ok(NamedSource::Git(git)),
            ContextArg::Url(url) => Ok(NamedSource::Url(url)),
            ContextArg::Dir(dir) => match scheme(value) {
                Some(scheme) => Err(NamedSourceError::UnknownScheme {
                    scheme: scheme.to_owned(),
                }),
                None => Ok(NamedSource::Dir(dir)),
            },
        }
    }
}

/// The `SCHEME` of a `SCHEME://...` value (letters, digits, `+`, `-`, `.`, starting
/// with a letter, as URL schemes are).
fn scheme(value: &str) -> Option<&str> {
    let (scheme, _) = value.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// `PATH[:TAG][@DIGEST]` of `oci-layout://` as buildx splits it.
fn layout_ref(value: &str, rest: &str) -> Result<LayoutRef, NamedSourceError> {
    let mut path = rest;
    let mut digest = None;
    if let Some((before, after)) = rest.rsplit_once('@') {
        if looks_like_digest(after) {
            digest = Some(after.parse().map_err(|_| NamedSourceError::BadDigest {
                value: value.to_owned(),
                digest: after.to_owned(),
            })?);
            path = before;
        }
    }
    let mut tag = "latest";
    if let Some((before, after)) = path.rsplit_once(':') {
        if is_tag(after) {
            tag = after;
            path = before;
        }
    }
    if path.is_empty() {
        return Err(NamedSourceError::EmptyLayout);
    }
    Ok(LayoutRef {
        path: PathBuf::from(path),
        tag: tag.to_owned(),
        digest,
    })
}

/// distribution/reference's `DigestRegexp`: `ALGORITHM:HEX` with at least 32 hex digits.
fn looks_like_digest(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.starts_with(|c: char| c.is_ascii_alphabetic())
        && algorithm
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.'));
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// distribution/reference's `TagRegexp`: `[\w][\w.-]{0,127}`.
fn is_tag(text: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.len() <= 128
        && text.starts_with(word)
        && text.chars().all(|c| word(c) || matches!(c, '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(value: &str) -> LayoutRef {
        match NamedSource::parse(value).unwrap() {
            NamedSource::Layout(l) => l,
            other => panic!("{value}: {other:?}"),
        }
    }

    #[test]
    fn values_are_classified_as_buildx_does() {
        assert_eq!(
            NamedSource::parse("docker-image://alpine:3.20").unwrap(),
            NamedSource::Image("alpine:3.20".into())
        );
        assert_eq!(
            NamedSource::parse("./src").unwrap(),
            NamedSource::Dir("./src".into())
        );
        assert!(matches!(
            NamedSource::parse("https://h/r.git#v1:sub").unwrap(),
            NamedSource::Git(g) if g.reference.as_deref() == Some("v1")
        ));
        assert!(matches!(
            NamedSource::parse("git@h:org/r.git").unwrap(),
            NamedSource::Git(_)
        ));
        assert_eq!(
            NamedSource::parse("http://h/files.tar.gz").unwrap(),
            NamedSource::Url("http://h/files.tar.gz".into())
        );
    }

    #[test]
    fn oci_layouts_split_tag_and_digest_from_the_path() {
        let hex = "a".repeat(64);
        let l = layout("oci-layout://./out:v1");
        assert_eq!(
            (l.path, l.tag, l.digest),
            ("./out".into(), "v1".into(), None)
        );
        let l = layout("oci-layout:///abs/dir");
        assert_eq!((l.path, l.tag), ("/abs/dir".into(), "latest".into()));
        let l = layout(&format!("oci-layout://d@sha256:{hex}"));
        assert_eq!(l.path, PathBuf::from("d"));
        assert_eq!(l.digest.unwrap().to_string(), format!("sha256:{hex}"));
        // An `@` or `:` that does not start a digest or tag is part of the path.
        assert_eq!(
            layout("oci-layout://a@b:c/d").path,
            PathBuf::from("a@b:c/d")
        );
    }

    #[test]
    fn malformed_values_are_refused_with_what_to_use() {
        let err = |v: &str| NamedSource::parse(v).unwrap_err().to_string();
        assert!(err("foo://x").contains("foo:// is not a kind of build context"));
        assert!(err("docker-image://").contains("needs an image reference"));
        assert!(err("oci-layout://").contains("needs the path"));
        assert!(err("oci-layout://:v1").contains("needs the path"));
        assert!(err(&format!("oci-layout://d@sha512:{}", "a".repeat(128))).contains("sha512"));
        assert!(err("target:app").contains("bake"));
        assert!(err("-").contains("standard input"));
        assert!(NamedSource::parse("https://h/r.git?bogus=1").is_err());
    }
}
