//! Image annotations as buildx and BuildKit take them: `--annotation
//! [TYPE[,TYPE...]:]KEY=VALUE` (buildx) and the `-o` keys
//! `annotation[-TYPE][[PLATFORM]].KEY=VALUE` (BuildKit's image, registry, oci and
//! docker exporters).
//!
//! A TYPE is `manifest` (the default), `manifest-descriptor`, `index` or
//! `index-descriptor`, optionally qualified by a platform (`manifest[linux/amd64]`).
//! A build of one platform makes no image index, so, as BuildKit does for a
//! single-platform export, `index` and `index-descriptor` annotations are refused
//! there; a multi-platform build puts them on its index and the index's descriptor. A
//! platform qualifier must name a platform of the build (BuildKit: "no platform ...
//! found in source"). BuildKit turns OCI media types on for descriptor and index
//! annotations; rbuild refuses them with `--format docker` instead of changing the
//! format asked for.

use std::collections::BTreeMap;

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
    let (_, mut images) = resolve_all(annotations, std::slice::from_ref(platform), oci)?;
    Ok(images.pop().unwrap_or_default())
}

/// The annotations of a multi-platform build of `platforms`: its index's (`index`,
/// `index_descriptor`), and each platform's image's (`manifest`, `descriptor`; the
/// unqualified ones on every platform, `[PLATFORM]` ones on that one), in order.
pub fn resolve_index(
    annotations: &[Annotation],
    platforms: &[Platform],
    oci: bool,
) -> anyhow::Result<(ImageAnnotations, Vec<ImageAnnotations>)> {
    resolve_all(annotations, platforms, oci)
}

/// The annotations an output of a multi-platform build adds (`-o type=oci,annotation-index.k=v`):
/// to its index and the index's descriptor. Manifest ones, which would need every
/// platform's manifest made again for that output, are refused.
pub fn resolve_output_index(
    own: &[Annotation],
    platforms: &[Platform],
    oci: bool,
) -> anyhow::Result<ImageAnnotations> {
    let manifest = |a: &&Annotation| matches!(a.kind, Kind::Manifest | Kind::ManifestDescriptor);
    if let Some(a) = own.iter().find(manifest) {
        bail!(
            "{}: manifest and manifest-descriptor annotation keys on an output of a build of several --platform values are not supported: give them with --annotation (every output and the pushed index carry them), or build one platform; index and index-descriptor keys are",
            a.origin
        );
    }
    Ok(resolve_all(own, platforms, oci)?.0)
}

/// Places each annotation (later ones win on a key); one platform is a
/// single-platform build, which has no index.
fn resolve_all(
    annotations: &[Annotation],
    platforms: &[Platform],
    oci: bool,
) -> anyhow::Result<(ImageAnnotations, Vec<ImageAnnotations>)> {
    let mut index = ImageAnnotations::default();
    let mut images = vec![ImageAnnotations::default(); platforms.len()];
    for a in annotations {
        check(a, platforms, oci)?;
        if matches!(a.kind, Kind::Index | Kind::IndexDescriptor) {
            slot(&mut index, a.kind).insert(a.key.clone(), a.value.clone());
            continue;
        }
        for (platform, image) in platforms.iter().zip(&mut images) {
            if a.platform
                .as_ref()
                .is_none_or(|p| same_platform(p, platform))
            {
                slot(image, a.kind).insert(a.key.clone(), a.value.clone());
            }
        }
    }
    Ok((index, images))
}

/// The map of `annotations` that annotations of `kind` go in.
fn slot(annotations: &mut ImageAnnotations, kind: Kind) -> &mut BTreeMap<String, String> {
    match kind {
        Kind::Manifest => &mut annotations.manifest,
        Kind::ManifestDescriptor => &mut annotations.descriptor,
        Kind::Index => &mut annotations.index,
        Kind::IndexDescriptor => &mut annotations.index_descriptor,
    }
}

/// Refuses what has no place in a build of `platforms`.
fn check(a: &Annotation, platforms: &[Platform], oci: bool) -> anyhow::Result<()> {
    let single = platforms.len() == 1;
    let index = matches!(a.kind, Kind::Index | Kind::IndexDescriptor);
    if index && single {
        bail!(
            "invalid {}: index annotations not supported for single platform export (a build of one platform writes no image index): annotate the manifest (`manifest:` / `annotation.`) or its descriptor (`manifest-descriptor:`), or build several --platform values",
            a.origin
        );
    }
    if index && a.platform.is_some() {
        bail!(
            "invalid {}: a [PLATFORM] qualifier is for manifest and manifest-descriptor annotations; the index is every platform's",
            a.origin
        );
    }
    if let Some(p) = a.platform.as_ref() {
        if !platforms.iter().any(|b| same_platform(p, b)) {
            let builds: Vec<String> = platforms.iter().map(Platform::to_string).collect();
            bail!("invalid {}: no platform {p} in this build (it builds {}; BuildKit: \"invalid annotation: no platform {p} found in source\")", a.origin, builds.join(", "));
        }
    }
    if !oci && a.kind != Kind::Manifest {
        bail!(
            "invalid {}: descriptor and index annotations need OCI media types (BuildKit switches to them): drop --format docker / oci-mediatypes=false, or annotate the manifest",
            a.origin
        );
    }
    Ok(())
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

    #[test]
    fn several_platforms_place_each_annotation_where_buildkit_does() {
        let platforms: Vec<Platform> =
            crate::plan::parse_platforms("linux/amd64,linux/arm64").unwrap();
        let all = |texts: &[&str]| -> Vec<Annotation> {
            texts.iter().flat_map(|t| parse_flag(t).unwrap()).collect()
        };
        let notes = all(&[
            "k=every",
            "manifest[linux/arm64/v8]:k=arm",
            "manifest-descriptor:d=1",
            "index:i=2",
            "index-descriptor:x=3",
        ]);
        let (index, images) = resolve_index(&notes, &platforms, true).unwrap();
        assert_eq!(index.index["i"], "2");
        assert_eq!(index.index_descriptor["x"], "3");
        assert!(index.manifest.is_empty() && index.descriptor.is_empty());
        assert_eq!(images[0].manifest["k"], "every");
        assert_eq!(images[1].manifest["k"], "arm");
        assert!(images
            .iter()
            .all(|i| i.descriptor["d"] == "1" && i.index.is_empty()));
        let err = |texts: &[&str], oci: bool| {
            resolve_index(&all(texts), &platforms, oci)
                .unwrap_err()
                .to_string()
        };
        let missing = err(&["manifest[linux/s390x]:k=v"], true);
        assert!(
            missing.contains("no platform linux/s390x")
                && missing.contains("linux/amd64, linux/arm64"),
            "{missing}"
        );
        assert!(err(&["index:k=v"], false).contains("OCI media types"));
        assert!(err(&["index-descriptor:k=v"], false).contains("OCI media types"));
        assert!(err(&["index[linux/amd64]:k=v"], true).contains("qualifier"));
        assert!(resolve_index(&all(&["k=v"]), &platforms, false).is_ok());
        let own = resolve_output_index(
            &all(&["index:a=1", "index-descriptor:b=2"]),
            &platforms,
            true,
        )
        .unwrap();
        assert_eq!(
            (own.index["a"].as_str(), own.index_descriptor["b"].as_str()),
            ("1", "2")
        );
        let refused = resolve_output_index(&all(&["k=v"]), &platforms, true).unwrap_err();
        assert!(refused.to_string().contains("--annotation"), "{refused}");
    }
}
