//! Image references as Docker normalizes them (`distribution/reference`'s
//! `ParseNormalizedNamed` + `TagNameOnly`): `alpine` is `docker.io/library/alpine:latest`,
//! `host:5000/ns/repo:tag@sha256:...` keeps its registry, tag and pinned digest.
//!
//! Grammar: `name[:tag][@digest]`; `name` is `[domain/]component(/component)*` where the
//! first part is a domain only if it has a `.` or a `:`, is `localhost`, or has an
//! upper-case letter (which then fails as a repository); components are lower-case
//! alphanumerics joined by `.`, `_`, `__` or runs of `-`; a tag is `[A-Za-z0-9_]` then up
//! to 127 of `[A-Za-z0-9_.-]`; the whole name is at most 255 characters.

use std::fmt;
use std::net::Ipv4Addr;

use crate::digest::Digest;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's registry API answers on.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a reference is malformed (Docker's wording where it has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: {reference:?}: {reason}")]
    Format { reference: String, reason: String },
    #[error("invalid reference format: repository name ({reference:?}) must be lowercase")]
    Uppercase { reference: String },
    #[error("invalid repository name ({reference:?}), cannot specify 64-byte hexadecimal strings")]
    HexName { reference: String },
    #[error(
        "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters: {reference:?}"
    )]
    TooLong { reference: String },
}

/// A fully qualified image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `registry.corp:5000`, `127.0.0.1:5000`, `[::1]:5000`.
    pub registry: String,
    /// `library/alpine`, `team/app`.
    pub repository: String,
    /// `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// A pinned manifest digest.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes `text`.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let bad = |reason: &str| ReferenceError::Format {
            reference: text.to_owned(),
            reason: reason.to_owned(),
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((name, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|_| bad("the digest is not sha256:<64 hex digits>"))?;
                (name, Some(digest))
            }
            None => (text, None),
        };
        // A tag follows the last ':' after the last '/'.
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|r| bad(&r))?;
        }
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::TooLong {
                reference: text.to_owned(),
            });
        }
        let (registry, remainder) = split_domain(name);
        if remainder.len() == 64 && remainder.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexName {
                reference: text.to_owned(),
            });
        }
        if remainder.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                reference: text.to_owned(),
            });
        }
        check_domain(&registry).map_err(|r| bad(&r))?;
        for component in remainder.split('/') {
            check_component(component).map_err(|r| bad(&r))?;
        }
        let repository = if registry == DOCKER_HUB && !remainder.contains('/') {
            format!("library/{remainder}")
        } else {
            remainder.to_owned()
        };
        let tag = match (tag, digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the registry API is reached at (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What the registry API calls the manifest: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// Whether plain HTTP is the default for this registry: `localhost` and loopback
    /// addresses, as Docker treats them.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }

    /// The short form Docker prints (`alpine:latest`, `team/app:1`).
    pub fn familiar(&self) -> String {
        let name = match (
            self.registry.as_str(),
            self.repository.strip_prefix("library/"),
        ) {
            (DOCKER_HUB, Some(short)) if !short.contains('/') => short.to_owned(),
            (DOCKER_HUB, _) => self.repository.clone(),
            _ => format!("{}/{}", self.registry, self.repository),
        };
        self.with_suffix(name)
    }

    /// The name BuildKit looks a named build context up by (`--build-context NAME=...`
    /// and a Dockerfile's `FROM NAME`, `--from=NAME`): the familiar form without a
    /// `:latest` tag, so `alpine`, `alpine:latest` and `docker.io/library/alpine` are
    /// one name (buildx's `ParseContextNames`, BuildKit's `Client.NamedContext`).
    pub fn context_name(&self) -> String {
        let familiar = self.familiar();
        match familiar.strip_suffix(":latest") {
            Some(short) => short.to_owned(),
            None => familiar,
        }
    }

    fn with_suffix(&self, mut name: String) -> String {
        if let Some(tag) = &self.tag {
            name.push(':');
            name.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            name.push('@');
            name.push_str(&digest.to_string());
        }
        name
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(format!("{}/{}", self.registry, self.repository)))
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// `distribution/reference.splitDockerDomain`.
fn split_domain(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            let domain = if first == "index.docker.io" {
                DOCKER_HUB
            } else {
                first
            };
            (domain.to_owned(), rest)
        }
        _ => (DOCKER_HUB.to_owned(), name),
    }
}

/// The host part of `host[:port]` / `[v6]:port`.
/// Whether `registry` (`host[:port]`) is `localhost` or a loopback address.
pub(super) fn is_loopback_host(registry: &str) -> bool {
    let host = host_of(registry);
    host == "localhost"
        || host == "::1"
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    registry.split(':').next().unwrap_or_default()
}

fn check_domain(domain: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("bad IPv6 registry address {domain:?}"))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("bad IPv6 registry address {domain:?}"));
        }
        (None, after.strip_prefix(':'))
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(format!("bad registry host {host:?}"));
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad registry port {port:?}"));
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn check_component(component: &str) -> Result<(), String> {
    let bad = || format!("bad repository path component {component:?}");
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(bad());
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// `[\w][\w.-]{0,127}`
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("bad tag {tag:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_names_are_familiar_without_latest() {
        let name = |t: &str| Reference::parse(t).unwrap().context_name();
        assert_eq!(name("alpine"), "alpine");
        assert_eq!(name("docker.io/library/alpine:latest"), "alpine");
        assert_eq!(name("alpine:3.20"), "alpine:3.20");
        assert_eq!(name("127.0.0.1:5000/busybox"), "127.0.0.1:5000/busybox");
        assert_eq!(name("team/app"), "team/app");
        assert!(Reference::parse("Alpine").is_err());
    }

    fn full(text: &str) -> String {
        match Reference::parse(text) {
            Ok(r) => r.to_string(),
            Err(e) => panic!("{text}: {e}"),
        }
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes_as_docker_does() {
        assert_eq!(full("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(full("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(full("team/app"), "docker.io/team/app:latest");
        assert_eq!(
            full("index.docker.io/alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            full("registry.corp:5000/base/python:3.12"),
            "registry.corp:5000/base/python:3.12"
        );
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("localhost:5000/a/b/c:v1"), "localhost:5000/a/b/c:v1");
        assert_eq!(
            full(&format!("alpine@{D}")),
            format!("docker.io/library/alpine@{D}")
        );
        assert_eq!(
            full(&format!("127.0.0.1:5000/x:1@{D}")),
            format!("127.0.0.1:5000/x:1@{D}")
        );
        assert_eq!(full("[::1]:5000/app"), "[::1]:5000/app:latest");
        assert_eq!(
            full("a_b__c-d---e/f.g"),
            "docker.io/a_b__c-d---e/f.g:latest"
        );
    }

    #[test]
    fn familiar_names_and_api_hosts() {
        let r = Reference::parse("alpine").unwrap();
        assert_eq!(r.familiar(), "alpine:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.manifest_ref(), "latest");
        let r = Reference::parse("team/app:1").unwrap();
        assert_eq!(r.familiar(), "team/app:1");
        let r = Reference::parse(&format!("127.0.0.1:5000/x@{D}")).unwrap();
        assert_eq!(r.familiar(), format!("127.0.0.1:5000/x@{D}"));
        assert_eq!(r.manifest_ref(), D);
        assert!(r.is_loopback());
        assert!(Reference::parse("localhost:5000/x").unwrap().is_loopback());
        assert!(Reference::parse("[::1]:5000/x").unwrap().is_loopback());
        assert!(!Reference::parse("registry.corp:5000/x")
            .unwrap()
            .is_loopback());
    }

    #[test]
    fn rejects_what_docker_rejects() {
        for bad in [
            "",
            "Alpine",
            "team/App",
            "alpine:",
            "alpine:-x",
            "alpine@sha256:abc",
            "a//b",
            "a/b/",
            "-a",
            "a..b",
            "a.-b",
            "host:port/x",
            "[zz]:5000/x",
            &"a".repeat(256),
            &format!("alpine:{}", "t".repeat(129)),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should fail");
        }
        let hex = "a".repeat(64);
        assert!(matches!(
            Reference::parse(&hex),
            Err(ReferenceError::HexName { .. })
        ));
        // An upper-case first part is a registry host (hosts are case-insensitive).
        assert_eq!(full("Upper/app"), "Upper/app:latest");
        assert!(matches!(
            Reference::parse("team/App"),
            Err(ReferenceError::Uppercase { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(s in "\\PC{0,200}") {
            let _ = Reference::parse(&s);
        }
    }
}
