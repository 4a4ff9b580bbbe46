//! `rbuild build`'s flags validated into [`BuildOptions`]: build args (files, then
//! flags), the context and Dockerfile prepared, the named contexts read, `-o` outputs
//! read, the image's compression and format settled, enums mapped onto the library's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};

use super::annotation_arg;
use super::build::{BuildArgs, Compression, ImageFormat, NetworkMode, PullArg, SnapshotterArg};
use super::context_arg::{prepare, Prepared, Request};
use super::output_arg::{self, ImageSettings, Target};
use super::progress::ProgressMode;
use crate::executor::{
    BuildOptions, CompressionKind, ImageAnnotations, Output, PullPolicy, SecretSpec, Snapshotter,
    SshSpec,
};
use crate::plan::{Entitlement, Entitlements, Platform};

/// What `-t`, `--push` and the `-o` values ask for, read together.
struct Outputs {
    tags: Vec<String>,
    push: bool,
    exports: Vec<Output>,
    image: ImageFlags,
    /// `--annotation`s and those of `type=image|registry` outputs: the image's (of
    /// several platforms, the index's).
    annotations: ImageAnnotations,
    /// Of several platforms, each one's image's annotations.
    platform_annotations: Vec<ImageAnnotations>,
}

impl BuildArgs {
    /// Validates the flags into [`BuildOptions`] for store `root`; also returns the
    /// progress mode, whether to push, and the prepared inputs (kept until the build
    /// ends: fetched contexts live in the store's work directory).
    pub fn into_options(
        mut self,
        root: PathBuf,
    ) -> anyhow::Result<(BuildOptions, ProgressMode, bool, Prepared)> {
        let effects = self.compat.effects()?;
        for note in &effects.notes {
            super::write_stderr(note);
        }
        self.no_cache |= effects.no_cache;
        if effects.uncompressed {
            self.compression = Compression::Uncompressed;
        }
        self.platform = self
            .platform
            .or(effects.platform)
            .or_else(platform_from_env);
        let build_args = self.all_build_args()?;
        let prepared = self.prepare_inputs(&build_args, &root)?;
        let source_date_epoch =
            one_epoch(source_date_epoch(&build_args)?, effects.source_date_epoch)?;
        let outputs = self.outputs()?;
        let progress = if self.quiet {
            ProgressMode::Quiet
        } else {
            self.progress
        };
        let push = outputs.push;
        let options = self.options(root, &prepared, build_args, source_date_epoch, outputs)?;
        Ok((options, progress, push, prepared))
    }

    /// `--build-arg-file`s, then `--build-arg`s (which win).
    fn all_build_args(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut build_args = BTreeMap::new();
        for file in &self.build_arg_files {
            build_args.append(&mut build_arg_file(file)?);
        }
        build_args.append(&mut key_values(&self.build_args, "--build-arg", true)?);
        Ok(build_args)
    }

    /// The context and Dockerfile, fetched or read from stdin when they are not local.
    fn prepare_inputs(
        &self,
        build_args: &BTreeMap<String, String>,
        root: &std::path::Path,
    ) -> anyhow::Result<Prepared> {
        if let Some(file) = &self.ignore_file {
            // Read when the context is first used: a typo must fail even if no step does.
            std::fs::metadata(file)
                .with_context(|| format!("cannot read --ignorefile {}", file.display()))?;
        }
        let keep_git_dir = build_args
            .get("BUILDKIT_CONTEXT_KEEP_GIT_DIR")
            .is_some_and(|v| is_true(v));
        let request = Request {
            context: &self.context,
            file: self.file.as_deref(),
            keep_git_dir,
        };
        prepare(&request, root)
    }

    /// `-t`, `--push`, `--annotation` and each `-o`.
    fn outputs(&self) -> anyhow::Result<Outputs> {
        let mut out = Outputs {
            tags: self.tags.clone(),
            push: self.push,
            exports: Vec::new(),
            image: ImageFlags {
                compression: self.compression,
                level: self.compression_level,
                format: self.format,
                asked: None,
            },
            annotations: ImageAnnotations::default(),
            platform_annotations: Vec::new(),
        };
        let mut annotations = Vec::new();
        for text in &self.annotations {
            annotations.extend(annotation_arg::parse_flag(text)?);
        }
        let mut exports = Vec::new();
        for spec in &self.outputs {
            let output = output_arg::parse(spec)?;
            out.image.merge(&output.image, spec)?;
            match output.target {
                Target::Image { names, push } => {
                    out.tags.extend(names);
                    out.push |= push;
                    annotations.extend(output.annotations);
                }
                Target::Export(o) => exports.push((o, output.annotations)),
            }
        }
        // Checked once the platforms and the media types are known.
        self.resolve_annotations(&mut out, &annotations, exports)?;
        let stdout = out.exports.iter().filter(|o| o.to_stdout()).count();
        if stdout > 1 {
            bail!("only one --output can write to standard output (dest=-)");
        }
        if out.push && out.tags.is_empty() {
            bail!("--push needs a name to push to: add -t REGISTRY/REPOSITORY:TAG");
        }
        Ok(out)
    }

    /// Places `annotations` (the image's) and each export's own, for the platforms built.
    fn resolve_annotations(
        &self,
        out: &mut Outputs,
        annotations: &[annotation_arg::Annotation],
        exports: Vec<(Output, Vec<annotation_arg::Annotation>)>,
    ) -> anyhow::Result<()> {
        let oci = out.image.format == ImageFormat::Oci;
        let platforms = self.asked_platforms()?;
        if platforms.len() < 2 {
            let platform = self.target_platform()?;
            out.annotations = annotation_arg::resolve(annotations, &platform, oci)?;
            for (output, own) in exports {
                let own = annotation_arg::resolve(&own, &platform, oci)?;
                out.exports.push(with_annotations(output, own));
            }
            return Ok(());
        }
        let (index, images) = annotation_arg::resolve_index(annotations, &platforms, oci)?;
        out.annotations = index;
        out.platform_annotations = images;
        for (output, own) in exports {
            let own = annotation_arg::resolve_output_index(&own, &platforms, oci)?;
            out.exports.push(with_annotations(output, own));
        }
        if out.push && !out.annotations.index_descriptor.is_empty() {
            super::write_stderr(
                "note: index-descriptor annotations are not pushed (a registry keeps no descriptor of a pushed index, and BuildKit drops them too): they are on the index's entry in the store and in -o type=oci layouts",
            );
        }
        Ok(())
    }

    /// `--platform`, else this machine's.
    fn target_platform(&self) -> anyhow::Result<Platform> {
        Ok(self.asked_platform()?.unwrap_or_else(Platform::host))
    }

    /// The platform `--platform` (or its environment variables) names, if one.
    fn asked_platform(&self) -> anyhow::Result<Option<Platform>> {
        let mut list = self.asked_platforms()?;
        Ok(if list.len() == 1 { list.pop() } else { None })
    }

    /// Every platform `--platform` (or its environment variables) names.
    fn asked_platforms(&self) -> anyhow::Result<Vec<Platform>> {
        match &self.platform {
            None => Ok(Vec::new()),
            Some(text) => {
                crate::plan::parse_platforms(text).with_context(|| format!("--platform {text}"))
            }
        }
    }

    /// The library's options from the flags and what was read from them.
    fn options(
        self,
        root: PathBuf,
        prepared: &Prepared,
        build_args: BTreeMap<String, String>,
        source_date_epoch: Option<i64>,
        outputs: Outputs,
    ) -> anyhow::Result<BuildOptions> {
        let cache_to: Vec<_> = self
            .cache_to
            .iter()
            .map(|v| super::cache_arg::cache_to(v, outputs.image.compression.name()))
            .collect::<anyhow::Result<_>>()?;
        let platform = self.asked_platform()?;
        let platforms = match self.asked_platforms()? {
            list if list.len() > 1 => list,
            _ => Vec::new(),
        };
        Ok(BuildOptions {
            registry: self.registry.options(&root)?,
            root,
            context: prepared.context.clone(),
            dockerfile: prepared.dockerfile.clone(),
            ignore_file: self.ignore_file,
            named_contexts: super::build_context_arg::named_contexts(&self.build_contexts)?,
            add_hosts: self
                .add_hosts
                .iter()
                .map(|h| add_host(h))
                .collect::<anyhow::Result<_>>()?,
            tags: outputs.tags,
            build_args,
            target: self.target,
            platform,
            platforms,
            index_part: false,
            labels: key_values(&self.labels, "--label", false)?,
            annotations: outputs.annotations,
            platform_annotations: outputs.platform_annotations,
            outputs: outputs.exports,
            compression: outputs.image.compression.into(),
            compression_level: outputs.image.level,
            format: outputs.image.format.into(),
            iidfile: self.iidfile,
            metadata_file: self.metadata_file,
            source_date_epoch,
            snapshotter: self.snapshotter.into(),
            jobs: self.jobs,
            cancel: Default::default(),
            no_cache: self.no_cache,
            no_cache_filter: self.no_cache_filter,
            cache_from: self
                .cache_from
                .iter()
                .map(|v| super::cache_arg::cache_from(v))
                .collect::<anyhow::Result<_>>()?,
            cache_to: cache_to.iter().flatten().cloned().collect(),
            cache_inline: cache_to.iter().any(Option::is_none),
            secrets: self
                .secrets
                .iter()
                .map(|s| SecretSpec::parse(s))
                .collect::<Result<_, _>>()?,
            ssh: self
                .ssh
                .iter()
                .map(|s| SshSpec::parse(s))
                .collect::<Result<_, _>>()?,
            network: self.network.map(|n| n.as_str().to_owned()),
            entitlements: Entitlements::new(
                self.allow
                    .iter()
                    .map(|a| a.parse::<Entitlement>())
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            pull: self.pull.into(),
            limits: self.limits.limits()?,
        })
    }
}

/// An image output with the annotations only it adds (a root filesystem output has
/// none: `-o` refuses annotation keys there).
fn with_annotations(output: Output, added: ImageAnnotations) -> Output {
    match output {
        Output::Oci {
            dest, tar, names, ..
        } => Output::Oci {
            dest,
            tar,
            names,
            annotations: added,
        },
        Output::Docker { dest, names, .. } => Output::Docker {
            dest,
            names,
            annotations: added,
        },
        other => other,
    }
}

/// `SOURCE_DATE_EPOCH` from the build args, else rbuild's environment.
fn source_date_epoch(build_args: &BTreeMap<String, String>) -> anyhow::Result<Option<i64>> {
    match build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
    {
        Some(v) => Ok(crate::plan::source_date_epoch(&v)?),
        None => Ok(None),
    }
}

/// `SOURCE_DATE_EPOCH` (build arg or environment) and podman's `--timestamp` /
/// `--source-date-epoch`: either, or both when they agree.
fn one_epoch(from_args: Option<i64>, from_flag: Option<i64>) -> anyhow::Result<Option<i64>> {
    match (from_args, from_flag) {
        (Some(a), Some(f)) if a != f => bail!(
            "--timestamp/--source-date-epoch {f} disagrees with SOURCE_DATE_EPOCH={a}: give one"
        ),
        (a, f) => Ok(f.or(a)),
    }
}

impl From<Compression> for CompressionKind {
    fn from(c: Compression) -> Self {
        match c {
            Compression::Gzip => CompressionKind::Gzip,
            Compression::Zstd => CompressionKind::Zstd,
            Compression::Uncompressed => CompressionKind::Uncompressed,
        }
    }
}

impl From<CompressionKind> for Compression {
    fn from(c: CompressionKind) -> Self {
        match c {
            CompressionKind::Gzip => Compression::Gzip,
            CompressionKind::Zstd => Compression::Zstd,
            CompressionKind::Uncompressed => Compression::Uncompressed,
        }
    }
}

impl From<ImageFormat> for crate::image::Format {
    fn from(f: ImageFormat) -> Self {
        match f {
            ImageFormat::Oci => crate::image::Format::Oci,
            ImageFormat::Docker => crate::image::Format::Docker,
        }
    }
}

impl From<SnapshotterArg> for Snapshotter {
    fn from(s: SnapshotterArg) -> Self {
        match s {
            SnapshotterArg::Overlayfs => Snapshotter::Overlayfs,
            SnapshotterArg::Native => Snapshotter::Native,
            SnapshotterArg::Auto => Snapshotter::Auto,
        }
    }
}

impl From<PullArg> for PullPolicy {
    fn from(p: PullArg) -> Self {
        match p {
            PullArg::Always => PullPolicy::Always,
            PullArg::Missing => PullPolicy::Missing,
            PullArg::Never => PullPolicy::Never,
        }
    }
}

impl NetworkMode {
    fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Default => "default",
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
        }
    }
}

/// The image's compression and format: the flags, then what `-o` keys ask.
struct ImageFlags {
    compression: Compression,
    level: Option<i32>,
    format: ImageFormat,
    /// The compression an earlier `-o` asked for.
    asked: Option<Compression>,
}

impl ImageFlags {
    /// Takes the `-o` settings of `spec`; the layers are written once, so two outputs
    /// asking for different settings are refused.
    fn merge(&mut self, settings: &ImageSettings, spec: &str) -> anyhow::Result<()> {
        let conflict = |what: &str| {
            anyhow::anyhow!("--output {spec:?}: {what} differs from another output or flag; every output of a build gets the same layers")
        };
        if let Some(kind) = settings.compression {
            let asked = Compression::from(kind);
            // `--compression` defaults to gzip: only another value can conflict.
            let flag = (self.asked.is_none() && self.compression != Compression::Gzip)
                .then_some(self.compression);
            if self.asked.or(flag).is_some_and(|c| c != asked) {
                return Err(conflict("compression"));
            }
            self.compression = asked;
            self.asked = Some(asked);
        }
        if let Some(level) = settings.compression_level {
            if self.level.is_some_and(|l| l != level) {
                return Err(conflict("compression-level"));
            }
            self.level = Some(level);
        }
        if let Some(oci) = settings.oci_mediatypes {
            self.format = if oci {
                ImageFormat::Oci
            } else {
                ImageFormat::Docker
            };
        }
        Ok(())
    }
}

fn key_values(
    items: &[String],
    what: &str,
    from_env: bool,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_owned(), v.to_owned());
            }
            None if from_env && !item.is_empty() => {
                // `--build-arg KEY` takes the value from rbuild's own environment.
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            _ => bail!("invalid {what} {item:?}: expected KEY=VALUE"),
        }
    }
    Ok(out)
}

/// `--build-arg-file FILE`: its `KEY=VALUE` lines, as podman reads them.
fn build_arg_file(file: &std::path::Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read --build-arg-file {}", file.display()))?;
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    key_values(&lines, &format!("line in {}", file.display()), true)
}

/// `--add-host NAME:IP` (or `NAME=IP`, docker 26+): the IP must be an address;
/// docker's `host-gateway` is refused (RUN steps reach the host at its own
/// non-loopback addresses, through `pasta`; there is no gateway address for it).
fn add_host(spec: &str) -> anyhow::Result<(String, String)> {
    let split = spec.split_once('=').or_else(|| spec.split_once(':'));
    let Some((name, ip)) = split.filter(|(n, i)| !n.is_empty() && !i.is_empty()) else {
        bail!("invalid --add-host {spec:?}: expected NAME:IP");
    };
    if ip == "host-gateway" {
        bail!("--add-host {spec}: host-gateway is not supported: RUN steps reach the host at its own non-loopback addresses, so give one of those (or use --network host, where the host is 127.0.0.1)");
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>()
        .with_context(|| format!("invalid --add-host {spec:?}: {ip:?} is not an IP address"))?;
    Ok((name.to_owned(), ip.to_owned()))
}

/// A build-arg's boolean value as BuildKit reads it (Go's `strconv.ParseBool`).
fn is_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// `--platform` from the environment when the flag is not given: `RBUILD_PLATFORM`,
/// else `DOCKER_DEFAULT_PLATFORM` (what docker reads); empty values are unset.
fn platform_from_env() -> Option<String> {
    ["RBUILD_PLATFORM", "DOCKER_DEFAULT_PLATFORM"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_host_reads_docker_forms() {
        assert_eq!(
            add_host("db:10.0.0.2").unwrap(),
            ("db".into(), "10.0.0.2".into())
        );
        assert_eq!(add_host("v6:::1").unwrap(), ("v6".into(), "::1".into()));
        assert_eq!(
            add_host("v6=[fe80::1]").unwrap(),
            ("v6".into(), "fe80::1".into())
        );
        assert!(add_host("db:nope")
            .unwrap_err()
            .to_string()
            .contains("not an IP"));
        assert!(add_host("db").is_err());
        assert!(add_host("gw:host-gateway")
            .unwrap_err()
            .to_string()
            .contains("host-gateway"));
    }

    #[test]
    fn build_arg_files_skip_comments_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("argfile.conf");
        std::fs::write(&file, "# versions\nA=1\n\n  B=two words  \nC=\n").unwrap();
        let args = build_arg_file(&file).unwrap();
        assert_eq!(args["A"], "1");
        assert_eq!(args["B"], "two words");
        assert_eq!(args["C"], "");
        std::fs::write(&file, "=x\n").unwrap();
        let err = build_arg_file(&file).unwrap_err().to_string();
        assert!(
            err.contains("argfile.conf") && err.contains("\"=x\""),
            "{err}"
        );
    }
}
