//! `--cache-to` and `--cache-from` values as buildx reads them: `type=registry,ref=…`,
//! `type=local,dest=…` / `src=…`, `mode=min|max`, `type=inline` (export only), or a
//! plain image reference (a registry cache, or an image with an inline one). A key rbuild cannot honour is refused with what to do instead;
//! an unknown key is an error, never ignored.

use std::path::Path;

use anyhow::{anyhow, bail, Context};

use crate::executor::{CacheExport, CacheLocation, CacheMode};
use crate::registry::Reference;

/// Keys of buildx's cache exporters that rbuild refuses, with the reason.
const REFUSED: [(&str, &str); 4] = [
    (
        "compression-level",
        "the cache holds the build's own layer blobs: use --compression-level",
    ),
    (
        "force-compression",
        "the cache holds the build's own layer blobs: use --compression",
    ),
    ("ignore-error", "a failed cache export fails the build"),
    (
        "tag",
        "the cache's layout is read through its only index.json entry",
    ),
];

/// What `mounts=true` exports at most, in all, without `mounts-max-size=`.
const DEFAULT_MOUNTS_MAX_SIZE: u64 = 4 << 30;

/// One `--cache-to` value: an export, or `None` for `type=inline` (the cache goes into
/// the image's config). `compression` is the build's (`gzip`, `zstd`, `uncompressed`):
/// the cache holds the image's own layer blobs, so `compression=` must name it.
pub fn cache_to(value: &str, compression: &str) -> anyhow::Result<Option<CacheExport>> {
    let flag = || format!("--cache-to {value}");
    let fields = fields(value).with_context(flag)?;
    if fields.iter().any(|(k, v)| k == "type" && v == "inline") {
        inline(&fields).with_context(flag)?;
        return Ok(None);
    }
    let mut mode = CacheMode::Min;
    let mut location = None;
    let (mut mounts, mut mounts_cap) = (false, None);
    let kind = kind(&fields).with_context(flag)?;
    for (key, val) in &fields {
        match (key.as_str(), val.as_str()) {
            ("type", _) => {}
            ("mode", "min") => mode = CacheMode::Min,
            ("mode", "max") => mode = CacheMode::Max,
            ("mode", other) => bail!("{}: mode={other:?}: expected min or max", flag()),
            ("ref", r) if kind == "registry" => location = Some(registry(r).with_context(flag)?),
            ("dest", d) if kind == "local" => location = Some(local(d)),
            ("mounts", "true") => mounts = true,
            ("mounts", "false") => mounts = false,
            ("mounts", other) => bail!("{}: mounts={other:?}: expected true or false", flag()),
            ("mounts-max-size", size) => {
                let bytes =
                    super::prune_cmds::size_arg(size, "mounts-max-size").with_context(flag)?;
                mounts_cap = Some(bytes);
            }
            ("compression", c) if c == compression => {}
            ("compression", c) => bail!(
                "{}: compression={c}: the cache holds the build's own layer blobs, which are \
                 {compression}: build with --compression {c} (the image's layers too)",
                flag()
            ),
            ("image-manifest" | "oci-mediatypes", "true") => {}
            ("image-manifest" | "oci-mediatypes", _) => bail!(
                "{}: {key}={val}: rbuild always exports an OCI image manifest ({key}=true)",
                flag()
            ),
            (key, _) => bail!("{}: {}", flag(), unknown(key, kind, "dest")),
        }
    }
    let location = location.ok_or_else(|| anyhow!("{}: {}", flag(), missing(kind, "dest")))?;
    if mounts_cap.is_some() && !mounts {
        bail!("{}: mounts-max-size= needs mounts=true", flag());
    }
    let mounts = mounts.then(|| mounts_cap.unwrap_or(DEFAULT_MOUNTS_MAX_SIZE));
    Ok(Some(CacheExport {
        location,
        mode,
        mounts,
    }))
}

/// `type=inline` takes no key but `mode=min` (the image holds only its own layers).
fn inline(fields: &[(String, String)]) -> anyhow::Result<()> {
    for (key, val) in fields {
        match (key.as_str(), val.as_str()) {
            ("type", _) | ("mode", "min") => {}
            ("mode", _) => bail!(
                "type=inline holds the image's own steps only (mode=min): use type=registry,ref=REF,mode=max for every stage"
            ),
            (key, _) => bail!("unknown key {key:?} for type=inline (expected type, mode)"),
        }
    }
    Ok(())
}

/// One `--cache-from` value.
pub fn cache_from(value: &str) -> anyhow::Result<CacheLocation> {
    let flag = || format!("--cache-from {value}");
    let fields = fields(value).with_context(flag)?;
    let kind = kind(&fields).with_context(flag)?;
    let mut location = None;
    for (key, val) in &fields {
        match key.as_str() {
            "type" => {}
            "ref" if kind == "registry" => location = Some(registry(val).with_context(flag)?),
            "src" if kind == "local" => location = Some(local(val)),
            key => bail!("{}: {}", flag(), unknown(key, kind, "src")),
        }
    }
    location.ok_or_else(|| anyhow!("{}: {}", flag(), missing(kind, "src")))
}

/// `KEY=VALUE` fields; a value without `=` is a registry reference.
fn fields(value: &str) -> anyhow::Result<Vec<(String, String)>> {
    if !value.contains('=') {
        return Ok(vec![
            ("type".to_owned(), "registry".to_owned()),
            ("ref".to_owned(), value.to_owned()),
        ]);
    }
    value
        .split(',')
        .map(|field| {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| anyhow!("{field:?} is not KEY=VALUE"))?;
            Ok((k.trim().to_lowercase(), v.to_owned()))
        })
        .collect()
}

/// The `type=`: `registry` (the default) or `local`.
fn kind(fields: &[(String, String)]) -> anyhow::Result<&'static str> {
    let given = fields
        .iter()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.as_str());
    match given {
        None | Some("registry") => Ok("registry"),
        Some("local") => Ok("local"),
        Some(other) => bail!(
            "type={other}: rbuild keeps caches in a registry (type=registry,ref=REG/REPO:TAG) or a directory (type=local)"
        ),
    }
}

fn registry(reference: &str) -> anyhow::Result<CacheLocation> {
    let parsed = Reference::parse(reference).with_context(|| format!("ref={reference}"))?;
    Ok(CacheLocation::Registry(parsed))
}

fn local(dir: &str) -> CacheLocation {
    let path = Path::new(dir);
    CacheLocation::Local(std::path::absolute(path).unwrap_or_else(|_| path.to_owned()))
}

fn unknown(key: &str, kind: &str, dir_key: &str) -> String {
    if let Some((_, why)) = REFUSED.iter().find(|(k, _)| *k == key) {
        return format!("{key}= is not supported: {why}");
    }
    let expected = match kind {
        "registry" => "type, ref, mode, mounts, mounts-max-size".to_owned(),
        _ => format!("type, {dir_key}, mode, mounts, mounts-max-size"),
    };
    format!("unknown key {key:?} for type={kind} (expected {expected})")
}

fn missing(kind: &str, dir_key: &str) -> String {
    match kind {
        "registry" => "type=registry needs ref=REG/REPO:TAG".to_owned(),
        _ => format!("type=local needs {dir_key}=DIR"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_and_local_caches_are_read_as_buildx_reads_them() {
        let to = cache_to(
            "type=registry,ref=127.0.0.1:5000/app:cache,mode=max",
            "gzip",
        )
        .unwrap()
        .unwrap();
        assert_eq!(to.mode, CacheMode::Max);
        assert_eq!(to.location.to_string(), "registry 127.0.0.1:5000/app:cache");
        let plain = cache_from("127.0.0.1:5000/app:cache").unwrap();
        assert_eq!(plain, to.location);
        let to = cache_to("type=local,dest=/tmp/c", "gzip").unwrap().unwrap();
        assert_eq!(cache_to("type=inline", "gzip").unwrap(), None);
        let with = cache_to(
            "type=local,dest=/c,mounts=true,mounts-max-size=1MiB",
            "gzip",
        )
        .unwrap();
        assert_eq!(with.unwrap().mounts, Some(1 << 20));
        let default = cache_to("type=local,dest=/c,mounts=true", "gzip").unwrap();
        assert_eq!(default.unwrap().mounts, Some(DEFAULT_MOUNTS_MAX_SIZE));
        assert_eq!(to.mode, CacheMode::Min, "min is the default");
        assert_eq!(to.location, CacheLocation::Local("/tmp/c".into()));
        assert_eq!(
            cache_from("type=local,src=/tmp/c").unwrap(),
            CacheLocation::Local("/tmp/c".into())
        );
        assert!(cache_to(
            "type=registry,ref=r/a,image-manifest=true,oci-mediatypes=true",
            "gzip"
        )
        .is_ok());
    }

    #[test]
    fn what_rbuild_cannot_honour_is_refused_by_name() {
        let err = |r: anyhow::Result<Option<CacheExport>>| format!("{:#}", r.unwrap_err());
        assert!(err(cache_to("type=inline,mode=max", "gzip")).contains("mode=min"));
        assert!(err(cache_to("type=gha", "gzip")).contains("type=gha"));
        assert!(err(cache_to("type=local,dest=d,mode=all", "gzip")).contains("mode=\"all\""));
        assert!(
            err(cache_to("type=local,dest=d,mounts-max-size=1G", "gzip")).contains("mounts=true")
        );
        assert!(err(cache_to("type=local,dest=d,mounts=yes", "gzip")).contains("true or false"));
        assert!(err(cache_to("type=local,dest=d,compression=zstd", "gzip"))
            .contains("--compression zstd"));
        assert!(cache_to("type=local,dest=d,compression=zstd", "zstd").is_ok());
        assert!(cache_to("type=local,dest=d,compression=gzip", "gzip").is_ok());
        assert!(err(cache_to(
            "type=registry,ref=r/a,image-manifest=false",
            "gzip"
        ))
        .contains("image-manifest"));
        assert!(err(cache_to("type=local,src=d", "gzip")).contains("unknown key \"src\""));
        assert!(err(cache_to("type=local", "gzip")).contains("dest=DIR"));
        assert!(format!("{:#}", cache_from("type=local,dest=d").unwrap_err()).contains("\"dest\""));
        assert!(format!("{:#}", cache_from("type=registry").unwrap_err()).contains("ref="));
    }
}
