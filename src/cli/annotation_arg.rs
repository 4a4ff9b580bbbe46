//! Image annotations as buildx and BuildKit take them: `--annotation
//! [TYPE[,TYPE...]:]KEY=VALUE` (buildx) and the `-o` keys
//! `annotation[-TYPE][[PLATFORM]].KEY=VALUE` (BuildKit's image, registry, oci and
//! docker exporters).
//!
//! A TYPE is `manifest` (the default), `manifest-descriptor`, `index` or
//! `index-descriptor`, optionally qualified by a platform (`manifest[linux/amd64]`).
//! rbuild builds one platform and makes no image index, so, as BuildKit does for a
//! single-platform export, `index` and `index-descriptor` annotations are refused, and
//! a platform qualifier must be the build's platform (BuildKit: "no platform ... found
//! in source"). BuildKit turns OCI media types on for descriptor annotations; rbuild
//! refuses them with `--format docker` instead of changing the format asked for.

use anyhow::bail;

use crate::executor::ImageAnnotations;
use crate::plan::Platform;

/// Where an annotation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    ManifestDescriptor,
    Index,
    IndexDescriptor,
}

impl Kind {
    fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "manifest" => Kind::Manifest,
            "manifest-descriptor" => Kind::ManifestDescriptor,
            "index" => Kind::Index,
            "index-descriptor" => Kind::IndexDescriptor,
            _ => return None,
        })
    }
}

/// One annotation as written, before it is checked against the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub kind: Kind,
    /// `[PLATFORM]`: only for the manifest of that platform.
    pub platform: Option<Platform>,
    pub key: String,
    pub value: String,
    /// Where it was written (`--annotation "..."`, `--output "..."`), for errors.
    pub origin: String,
}

/// `--annotation [TYPE[,TYPE...]:]KEY=VALUE`: one annotation per type, as buildx reads
/// it (split at the first `=`, then at the first `:` of the key).
pub fn parse_flag(text: &str) -> anyhow::Result<Vec<Annotation>> {
    let origin = format!("--annotation {text:?}");
    let Some((left, value)) = text.split_once('=') else {
        bail!("invalid {origin}: expected KEY=VALUE (or TYPE:KEY=VALUE)");
    };
    let Some((types, key)) = left.split_once(':') else {
        return Ok(vec![annotation(
            &origin,
            Kind::Manifest,
            None,
            left,
            value,
        )?]);
    };
    types
        .split(',')
        .map(|t| {
            let (kind, platform) = type_and_platform(&origin, t)?;
            annotation(&origin, kind, platform, key, value)
        })
        .collect()
}

/// An `-o` key: `Some` for `annotation[-TYPE][[PLATFORM]].KEY` (BuildKit's syntax),
/// `None` for any other key.
pub fn parse_output_key(spec: &str, key: &str, value: &str) -> anyhow::Result<Option<Annotation>> {
    let Some(rest) = key.strip_prefix("annotation") else {
        return Ok(None);
    };
    if !rest.starts_with(['-', '.', '[']) {
        return Ok(None);
    }
    let origin = format!("--output {spec:?}");
    let Some((head, name)) = split_head(rest) else {
        bail!("invalid {origin}: {key}: expected annotation[-TYPE][[PLATFORM]].KEY=VALUE");
    };
    let head = head.strip_prefix('-').unwrap_or(head);
    let (kind, platform) = match head {
        "" => (Kind::Manifest, None),
        h if h.starts_with('[') => (Kind::Manifest, Some(platform_of(&origin, h)?)),
        h => type_and_platform(&origin, h)?,
    };
    annotation(&origin, kind, platform, name, value).map(Some)
}

/// `-TYPE[PLATFORM].KEY` -> (`-TYPE[PLATFORM]`, `KEY`): the key starts after the first
/// `.` that follows the closing `]`, if any.
fn split_head(rest: &str) -> Option<(&str, &str)> {
    let from = rest.find(']').map_or(0, |i| i + 1);
    let dot = from + rest[from..].find('.')?;
    Some((&rest[..dot], &rest[dot + 1..]))
}

/// `TYPE` or `TYPE[PLATFORM]`.
fn type_and_platform(origin: &str, text: &str) -> anyhow::Result<(Kind, Option<Platform>)> {
    let (name, platform) = match text.find('[') {
        Some(i) => (&text[..i], Some(platform_of(origin, &text[i..])?)),
        None => (text, None),
    };
    let Some(kind) = Kind::parse(name) else {
        bail!("invalid {origin}: unknown annotation type {name:?} (manifest, manifest-descriptor, index or index-descriptor)");
    };
    Ok((kind, platform))
}

/// `[os/arch[/variant]]`.
fn platform_of(origin: &str, text: &str) -> anyhow::Result<Platform> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .filter(|t| !t.is_empty());
    let Some(inner) = inner else {
        bail!("invalid {origin}: {text:?} is not a [PLATFORM] qualifier");
    };
    inner
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid {origin}: {e}"))
}

fn annotation(
    origin: &str,
    kind: Kind,
    platform: Option<Platform>,
    key: &str,
    value: &str,
) -> anyhow::Result<Annotation> {
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        bail!("invalid {origin}: the annotation key {key:?} must be non-empty, without spaces");
    }
    Ok(Annotation {
        kind,
        platform,
        key: key.to_owned(),
        value: value.to_owned(),
        origin: origin.to_owned(),
    })
}

/// The annotations of an image of `platform` (later ones win on a key), checked as
/// BuildKit checks them for a single-platform export; `oci`: OCI media types.
pub fn resolve(
    annotations: &[Annotation],
    platform: &Platform,
    oci: bool,
) -> anyhow::Result<ImageAnnotations> {
    let mut out = ImageAnnotations::default();
    for a in annotations {
        if let Some(p) = a.platform.as_ref().filter(|p| !same_platform(p, platform)) {
            bail!("invalid {}: no platform {p} in this build (it builds {platform}; BuildKit: \"invalid annotation: no platform {p} found in source\")", a.origin);
        }
        let map = match a.kind {
            Kind::Manifest => &mut out.manifest,
            Kind::ManifestDescriptor if oci => &mut out.descriptor,
            Kind::ManifestDescriptor => bail!(
                "invalid {}: descriptor annotations need OCI media types (BuildKit switches to them): drop --format docker / oci-mediatypes=false, or annotate the manifest",
                a.origin
            ),
            Kind::Index | Kind::IndexDescriptor => bail!(
                "invalid {}: index annotations not supported for single platform export (rbuild builds one platform and writes no image index): annotate the manifest (`manifest:` / `annotation.`) or its descriptor (`manifest-descriptor:`)",
                a.origin
            ),
        };
        map.insert(a.key.clone(), a.value.clone());
    }
    Ok(out)
}

/// Platforms as containerd matches them: arm64 means arm64/v8, arm means arm/v7.
fn same_platform(a: &Platform, b: &Platform) -> bool {
    let variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_str()) {
        ("arm64", "") => "v8".to_owned(),
        ("arm", "") => "v7".to_owned(),
        (_, v) => v.to_owned(),
    };
    a.os == b.os && a.architecture == b.architecture && variant(a) == variant(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(text: &str) -> Vec<(Kind, Option<String>, String, String)> {
        parse_flag(text)
            .unwrap()
            .into_iter()
            .map(|a| (a.kind, a.platform.map(|p| p.to_string()), a.key, a.value))
            .collect()
    }

    fn key(k: &str) -> Option<(Kind, Option<String>, String)> {
        parse_output_key("spec", k, "v")
            .unwrap()
            .map(|a| (a.kind, a.platform.map(|p| p.to_string()), a.key))
    }

    #[test]
    fn flags_read_as_buildx_reads_them() {
        let title = "org.opencontainers.image.title".to_owned();
        assert_eq!(
            flag("org.opencontainers.image.title=a=b:c"),
            [(Kind::Manifest, None, title.clone(), "a=b:c".into())]
        );
        assert_eq!(
            flag("manifest,manifest-descriptor:k=v"),
            [
                (Kind::Manifest, None, "k".into(), "v".into()),
                (Kind::ManifestDescriptor, None, "k".into(), "v".into())
            ]
        );
        assert_eq!(
            flag("manifest[linux/amd64]:k=v"),
            [(
                Kind::Manifest,
                Some("linux/amd64".into()),
                "k".into(),
                "v".into()
            )]
        );
        assert_eq!(flag("index:k=")[0].0, Kind::Index);
        for (bad, says) in [
            ("novalue", "expected KEY=VALUE"),
            ("layer:k=v", "unknown annotation type \"layer\""),
            ("manifest[linux/]:k=v", "invalid platform"),
            ("=v", "must be non-empty"),
            ("manifest:a b=v", "without spaces"),
        ] {
            let err = parse_flag(bad).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn output_keys_read_as_buildkit_reads_them() {
        assert_eq!(
            key("annotation.a.b"),
            Some((Kind::Manifest, None, "a.b".into()))
        );
        assert_eq!(
            key("annotation-manifest-descriptor.k"),
            Some((Kind::ManifestDescriptor, None, "k".into()))
        );
        assert_eq!(
            key("annotation[linux/arm64].k.x"),
            Some((Kind::Manifest, Some("linux/arm64".into()), "k.x".into()))
        );
        assert_eq!(
            key("annotation-manifest[linux/amd64].k"),
            Some((Kind::Manifest, Some("linux/amd64".into()), "k".into()))
        );
        assert_eq!(key("annotation-index.k").map(|k| k.0), Some(Kind::Index));
        assert_eq!(key("annotations"), None);
        assert_eq!(key("compression"), None);
        assert!(parse_output_key("s", "annotation-bogus.k", "v").is_err());
        assert!(parse_output_key("s", "annotation-manifest", "v").is_err());
    }

    #[test]
    fn single_platform_builds_refuse_what_has_no_place() {
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let all = |text: &str| parse_flag(text).unwrap();
        let mut notes = all("k=1");
        notes.extend(all("manifest[linux/amd64]:k=2"));
        notes.extend(all("manifest-descriptor:d=3"));
        let resolved = resolve(&notes, &amd64, true).unwrap();
        assert_eq!(resolved.manifest["k"], "2", "later wins");
        assert_eq!(resolved.descriptor["d"], "3");
        let err = |text: &str, oci: bool| resolve(&all(text), &amd64, oci).unwrap_err().to_string();
        assert!(err("manifest[linux/arm64]:k=v", true).contains("no platform linux/arm64"));
        assert!(err("index:k=v", true).contains("index annotations not supported"));
        assert!(err("index-descriptor:k=v", true).contains("single platform"));
        assert!(err("manifest-descriptor:k=v", false).contains("OCI media types"));
        let arm64: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(resolve(&all("manifest[linux/arm64]:k=v"), &arm64, true).is_ok());
    }
}
