//! `-o/--output` values as buildx reads them: `type=` and the keys of BuildKit's
//! image, registry, oci, docker, local and tar exporters. A key is honoured, or refused
//! with what to use instead; an unknown key (`destt=`) is an error, never ignored.
//! `annotation*` keys are read by `annotation_arg.rs`.

use anyhow::bail;

use super::annotation_arg::{self, Annotation};

use crate::executor::{CompressionKind, Output};

/// One `--output`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputArg {
    /// Where the image goes.
    pub target: Target,
    /// Settings of the image itself (the same for every output of a build).
    pub image: ImageSettings,
    /// `annotation*` keys, as written (checked against the build later).
    pub annotations: Vec<Annotation>,
}

/// Where an output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `type=image` / `type=registry`: names in the store, pushed when `push`.
    Image { names: Vec<String>, push: bool },
    /// An exporter of the executor.
    Export(Output),
}

/// `compression=`, `compression-level=`, `oci-mediatypes=`: how the image is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSettings {
    pub compression: Option<CompressionKind>,
    pub compression_level: Option<i32>,
    /// `true`: OCI media types; `false`: Docker schema 2.
    pub oci_mediatypes: Option<bool>,
}

/// Keys every image-writing exporter takes (BuildKit's image/oci/docker exporters).
const IMAGE_KEYS: [&str; 5] = [
    "compression",
    "compression-level",
    "force-compression",
    "oci-mediatypes",
    "rewrite-timestamp",
];

/// Keys BuildKit has that rbuild refuses, with what to use instead.
const REFUSED: [(&str, &str); 13] = [
    (
        "context",
        "--load, or -o type=docker,dest=- piped to docker load",
    ),
    (
        "push-by-digest",
        "push with a tag (-t REGISTRY/REPO:TAG --push)",
    ),
    ("insecure", "--insecure-registry / --tls-verify=false"),
    (
        "registry.insecure",
        "--insecure-registry / --tls-verify=false",
    ),
    (
        "unpack",
        "nothing: rbuild's store keeps snapshots of every layer it builds",
    ),
    ("store", "nothing: every image is kept in rbuild's store"),
    ("dangling-name-prefix", "-t to name the image"),
    ("name-canonical", "-t with the full name"),
    ("buildinfo", "nothing: rbuild writes no build info"),
    ("buildinfo-attrs", "nothing: rbuild writes no build info"),
    (
        "attestation-inline",
        "nothing: rbuild makes no attestations yet",
    ),
    ("oci-artifact", "nothing: rbuild writes image manifests"),
    (
        "platform-split",
        "a directory per platform with several --platform values, always \
         (platform-split=false, one merged tree, is not supported)",
    ),
];

/// Reads `spec` (`type=oci,dest=x.tar,...`, or a bare path: `type=local`).
pub fn parse(spec: &str) -> anyhow::Result<OutputArg> {
    if !spec.contains('=') {
        return Ok(OutputArg {
            target: Target::Export(Output::parse(spec)?),
            image: ImageSettings::default(),
            annotations: Vec::new(),
        });
    }
    let fields = fields(spec)?;
    let kind = fields
        .iter()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let allowed: &[&str] = match kind {
        "image" | "registry" => &["type", "name", "push"],
        "oci" => &["type", "dest", "tar", "name"],
        "docker" => &["type", "dest", "name"],
        "local" | "tar" => &["type", "dest"],
        _ => &["type"],
    };
    let writes_image = matches!(kind, "image" | "registry" | "oci" | "docker");
    let mut image = ImageSettings::default();
    let mut annotations = Vec::new();
    for (key, value) in &fields {
        let known = allowed.contains(&key.as_str());
        if writes_image && IMAGE_KEYS.contains(&key.as_str()) {
            image_key(spec, key, value, &mut image)?;
        } else if let Some(a) = annotation_arg::parse_output_key(spec, key, value)? {
            if !writes_image {
                bail!("invalid --output {spec:?}: {key}=: type={kind} writes no image (annotations go on type=image, registry, oci or docker, or --annotation)");
            }
            annotations.push(a);
        } else if !known {
            refuse(spec, kind, key, allowed, writes_image)?;
        }
    }
    let target = match kind {
        "image" | "registry" => image_target(spec, kind, &fields)?,
        _ => Target::Export(Output::parse(&exporter_spec(&fields))?),
    };
    Ok(OutputArg {
        target,
        image,
        annotations,
    })
}

/// The `key=value` fields; a field without `=` after `name=` is one more name
/// (`name=a,b`, as buildx reads it).
fn fields(spec: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for field in spec.split(',') {
        match field.split_once('=') {
            Some((k, v)) => out.push((k.trim().to_ascii_lowercase(), v.trim().to_owned())),
            None if out.last().is_some_and(|(k, _)| k == "name") => {
                out.push(("name".into(), field.trim().to_owned()));
            }
            None => bail!("invalid --output {spec:?}: field {field:?} is not key=value"),
        }
    }
    Ok(out)
}

/// The fields the executor's [`Output::parse`] reads.
fn exporter_spec(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "type" | "dest" | "tar" | "name"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn image_target(spec: &str, kind: &str, fields: &[(String, String)]) -> anyhow::Result<Target> {
    let names: Vec<String> = fields
        .iter()
        .filter(|(k, v)| k == "name" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    if names.is_empty() {
        bail!("invalid --output {spec:?}: name= is required");
    }
    let push = match fields.iter().rev().find(|(k, _)| k == "push") {
        Some((_, v)) => bool_value(spec, "push", v)?,
        None => kind == "registry",
    };
    Ok(Target::Image { names, push })
}

fn image_key(spec: &str, key: &str, value: &str, image: &mut ImageSettings) -> anyhow::Result<()> {
    match key {
        "compression" => {
            image.compression = Some(match value {
                "gzip" => CompressionKind::Gzip,
                "zstd" => CompressionKind::Zstd,
                "uncompressed" => CompressionKind::Uncompressed,
                "estargz" => bail!("invalid --output {spec:?}: estargz layers are not supported (gzip, zstd or uncompressed)"),
                other => bail!("invalid --output {spec:?}: compression={other:?} (gzip, zstd or uncompressed)"),
            });
        }
        "compression-level" => {
            let level = value.parse::<i32>().ok().filter(|l| (0..=22).contains(l));
            let Some(level) = level else {
                bail!(
                    "invalid --output {spec:?}: compression-level={value:?} (gzip 0-9, zstd 1-22)"
                );
            };
            image.compression_level = Some(level);
        }
        // Layers are compressed as asked whatever the cache holds: the cache keys
        // layers by their compression, so a change makes new blobs, never reuses old.
        "force-compression" => {
            bool_value(spec, key, value)?;
        }
        "oci-mediatypes" => image.oci_mediatypes = Some(bool_value(spec, key, value)?),
        "rewrite-timestamp" if !bool_value(spec, key, value)? => {
            bail!("invalid --output {spec:?}: rewrite-timestamp=false: with SOURCE_DATE_EPOCH rbuild always clamps file times in new layers to it");
        }
        _ => {}
    }
    Ok(())
}

fn refuse(
    spec: &str,
    kind: &str,
    key: &str,
    allowed: &[&str],
    writes_image: bool,
) -> anyhow::Result<()> {
    if let Some((_, instead)) = REFUSED.iter().find(|(k, _)| *k == key) {
        bail!("invalid --output {spec:?}: {key}= is not supported by rbuild; use {instead}");
    }
    if kind.is_empty() {
        bail!("invalid --output {spec:?}: type= is required (image, registry, oci, docker, local or tar)");
    }
    let mut known: Vec<&str> = allowed.to_vec();
    if writes_image {
        known.extend(IMAGE_KEYS);
    }
    bail!(
        "invalid --output {spec:?}: unknown key {key:?} for type={kind} (known: {})",
        known.join(", ")
    )
}

fn bool_value(spec: &str, key: &str, value: &str) -> anyhow::Result<bool> {
    match value {
        "true" | "" => Ok(true),
        "false" => Ok(false),
        other => bail!("invalid --output {spec:?}: {key}={other:?} (true or false)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(spec: &str) -> String {
        parse(spec).unwrap_err().to_string()
    }

    #[test]
    fn exporters_and_their_keys() {
        let oci = parse("type=oci,dest=a.tar,compression=zstd,compression-level=5").unwrap();
        assert_eq!(
            oci.target,
            Target::Export(Output::Oci {
                dest: "a.tar".into(),
                tar: true,
                names: Vec::new(),
                annotations: Default::default(),
            })
        );
        assert_eq!(oci.image.compression, Some(CompressionKind::Zstd));
        assert_eq!(oci.image.compression_level, Some(5));
        let docker = parse("type=docker,dest=d.tar,oci-mediatypes=false").unwrap();
        assert_eq!(docker.image.oci_mediatypes, Some(false));
        assert_eq!(
            parse("out").unwrap().target,
            Target::Export(Output::Local { dest: "out".into() })
        );
        assert_eq!(
            parse("type=registry,name=r/a:1,r/a:2").unwrap().target,
            Target::Image {
                names: vec!["r/a:1".into(), "r/a:2".into()],
                push: true
            }
        );
    }

    #[test]
    fn unknown_and_unsupported_keys_are_refused() {
        assert!(err("type=local,destt=x").contains("unknown key \"destt\" for type=local"));
        assert!(err("type=local,dest=x,compression=zstd").contains("unknown key"));
        assert!(err("type=image,name=a,push-by-digest=true").contains("use push with a tag"));
        assert!(err("type=local,dest=x,annotation.a=b").contains("writes no image"));
        assert!(err("type=oci,dest=x,annotation-layer.a=b").contains("unknown annotation type"));
        let annotated = parse("type=oci,dest=x,annotation.a=b,annotation-manifest-descriptor.c=d");
        assert_eq!(annotated.unwrap().annotations.len(), 2);
        assert!(err("type=oci,dest=x,compression=lz4").contains("gzip, zstd or uncompressed"));
        assert!(err("type=oci,dest=x,rewrite-timestamp=false").contains("always clamps"));
        assert!(err("dest=x").contains("type= is required"));
        assert!(err("type=image").contains("name= is required"));
    }
}
