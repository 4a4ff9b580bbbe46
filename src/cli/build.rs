//! `rbuild build` (and the shorthand `rbuild -t app:1 .`): flags -> [`BuildOptions`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::context_arg::{prepare, Prepared, Request};
use super::output_arg::{self, ImageSettings, Target};
use super::progress::ProgressMode;
use crate::executor::{
    BuildOptions, CompressionKind, PullPolicy, SecretSpec, Snapshotter, SshSpec,
};

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    Gzip,
    Zstd,
    Uncompressed,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageFormat {
    /// OCI image manifest and config media types.
    Oci,
    /// Docker image manifest v2, schema 2.
    Docker,
}

/// `--snapshotter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SnapshotterArg {
    /// Overlay mounts (fast; needs overlayfs and the right to mount).
    Overlayfs,
    /// Plain directory copies, diffed after each step (slower; works anywhere).
    Native,
    /// overlayfs, or native with a warning if overlayfs cannot be mounted.
    Auto,
}

/// Arguments of `rbuild build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The build context: a directory, `-` (a tar archive or a Dockerfile on standard
    /// input), a git URL (`https://host/org/repo.git#REF:SUBDIR`, `git@host:org/repo`)
    /// or an http(s) URL of a tarball.
    #[arg(default_value = ".", value_name = "PATH|URL|-")]
    pub context: String,
    /// Name (and tag) for the image; may be repeated.
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// The Dockerfile (default: `Dockerfile`, `Containerfile` or `dockerfile` in the
    /// context; `-` reads standard input). Inside the context for a URL or `-` context.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// A build argument `KEY=VALUE` (or `KEY` to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// `NAME:IP` (or `NAME=IP`): a line for RUN steps' `/etc/hosts`; may be repeated.
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_hosts: Vec<String>,
    /// The ignore file to filter the context with, instead of `.dockerignore` or
    /// `.containerignore` (podman's flag).
    #[arg(long = "ignorefile", value_name = "FILE")]
    pub ignore_file: Option<PathBuf>,
    /// A file of build arguments, one `KEY=VALUE` (or `KEY`) per line; `#` comments
    /// and blank lines are skipped; `--build-arg` wins (podman's flag); may be repeated.
    #[arg(long = "build-arg-file", value_name = "FILE")]
    pub build_arg_files: Vec<PathBuf>,
    /// The stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Target platform (`linux/amd64`).
    #[arg(long)]
    pub platform: Option<String>,
    /// A label `KEY=VALUE` for the image; may be repeated.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Export: `type=oci|docker|local|tar,dest=PATH[,tar=false]`, or a directory.
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// How to show progress.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Print nothing but the image ID (and errors): `--progress quiet`.
    #[arg(short = 'q', long, conflicts_with = "progress")]
    pub quiet: bool,
    /// Layer compression.
    #[arg(long, value_enum, default_value_t = Compression::Gzip)]
    pub compression: Compression,
    /// Manifest format of the image.
    #[arg(long, value_enum, default_value_t = ImageFormat::Oci)]
    pub format: ImageFormat,
    /// Compression level (gzip 0-9, zstd 1-22).
    #[arg(long = "compression-level")]
    pub compression_level: Option<i32>,
    /// Write the image ID to this file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Write build metadata (JSON) to this file.
    #[arg(long = "metadata-file")]
    pub metadata_file: Option<PathBuf>,
    /// How step root filesystems are made.
    #[arg(long, value_enum, env = "RBUILD_SNAPSHOTTER", default_value_t = SnapshotterArg::Auto)]
    pub snapshotter: SnapshotterArg,
    /// Build nothing: say which steps the cache would give and why the others would
    /// run.
    #[arg(long)]
    pub explain: bool,
    /// Run every step, using no cached result (results are still cached).
    #[arg(long)]
    pub no_cache: bool,
    /// Run every step of these stages (names or indexes); may be repeated.
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',')]
    pub no_cache_filter: Vec<String>,
    /// Stages to build at the same time at most (default: the number of CPUs).
    #[arg(short = 'j', long, env = "RBUILD_JOBS", value_name = "N")]
    pub jobs: Option<std::num::NonZeroUsize>,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=PATH` or `id=ID,env=VAR`.
    #[arg(long = "secret", value_name = "id=ID,src=PATH|env=VAR")]
    pub secrets: Vec<String>,
    /// An ssh agent for `RUN --mount=type=ssh`: `default` (`$SSH_AUTH_SOCK`) or
    /// `ID=SOCKET`.
    #[arg(long = "ssh", value_name = "default|ID=SOCKET")]
    pub ssh: Vec<String>,
    /// Network of RUN steps that do not say: `default` (the host's, as `docker build`),
    /// `none` (only loopback) or `host`.
    #[arg(long, value_enum)]
    pub network: Option<NetworkMode>,
    /// After the build, prune least recently used cache until the store is at most
    /// this size (`10GB`; default: `maxStoreSize` of `<store>/config.json`, else none).
    #[arg(long, value_name = "SIZE")]
    pub max_store_size: Option<String>,
    /// When to pull `FROM` images: `missing` (the default), `always` (`--pull` alone)
    /// or `never`.
    #[arg(long, value_enum, value_name = "POLICY", num_args = 0..=1, require_equals = true,
          default_missing_value = "always", default_value = "missing")]
    pub pull: PullArg,
    /// Push the image to the registry of each `-t` name after the build.
    #[arg(long)]
    pub push: bool,
    #[command(flatten)]
    pub registry: super::registry_cmds::RegistryArgs,
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

/// `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullArg {
    #[value(alias = "true")]
    Always,
    #[value(alias = "false")]
    Missing,
    Never,
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
            let asked = match kind {
                CompressionKind::Gzip => Compression::Gzip,
                CompressionKind::Zstd => Compression::Zstd,
                CompressionKind::Uncompressed => Compression::Uncompressed,
            };
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

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkMode {
    Default,
    None,
    Host,
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

impl BuildArgs {
    /// Validates the flags into [`BuildOptions`] for store `root`.
    pub fn into_options(
        self,
        root: PathBuf,
    ) -> anyhow::Result<(BuildOptions, ProgressMode, bool, Prepared)> {
        let mut build_args = BTreeMap::new();
        for file in &self.build_arg_files {
            build_args.append(&mut build_arg_file(file)?);
        }
        build_args.append(&mut key_values(&self.build_args, "--build-arg", true)?);
        let keep_git_dir = build_args
            .get("BUILDKIT_CONTEXT_KEEP_GIT_DIR")
            .is_some_and(|v| is_true(v));
        if let Some(file) = &self.ignore_file {
            // Read when the context is first used: a typo must fail even if no step does.
            std::fs::metadata(file)
                .with_context(|| format!("cannot read --ignorefile {}", file.display()))?;
        }
        let prepared = prepare(
            &Request {
                context: &self.context,
                file: self.file.as_deref(),
                keep_git_dir,
            },
            &root,
        )?;
        let source_date_epoch = match build_args
            .get("SOURCE_DATE_EPOCH")
            .cloned()
            .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        {
            Some(v) => crate::plan::source_date_epoch(&v)?,
            None => None,
        };
        let mut tags = self.tags;
        let mut push = self.push;
        let mut outputs = Vec::new();
        let mut image = ImageFlags {
            compression: self.compression,
            level: self.compression_level,
            format: self.format,
            asked: None,
        };
        for spec in &self.outputs {
            let output = output_arg::parse(spec)?;
            image.merge(&output.image, spec)?;
            match output.target {
                Target::Image {
                    names,
                    push: and_push,
                } => {
                    tags.extend(names);
                    push |= and_push;
                }
                Target::Export(o) => outputs.push(o),
            }
        }
        if push && tags.is_empty() {
            bail!("--push needs a name to push to: add -t REGISTRY/REPOSITORY:TAG");
        }
        let registry = self.registry.options(&root)?;
        let platform = self
            .platform
            .as_deref()
            .map(str::parse)
            .transpose()
            .context("--platform")?;
        let options = BuildOptions {
            root,
            context: prepared.context.clone(),
            dockerfile: prepared.dockerfile.clone(),
            ignore_file: self.ignore_file,
            add_hosts: self
                .add_hosts
                .iter()
                .map(|h| add_host(h))
                .collect::<anyhow::Result<_>>()?,
            tags,
            build_args,
            target: self.target,
            platform,
            labels: key_values(&self.labels, "--label", false)?,
            outputs,
            compression: match image.compression {
                Compression::Gzip => CompressionKind::Gzip,
                Compression::Zstd => CompressionKind::Zstd,
                Compression::Uncompressed => CompressionKind::Uncompressed,
            },
            compression_level: image.level,
            format: match image.format {
                ImageFormat::Oci => crate::image::Format::Oci,
                ImageFormat::Docker => crate::image::Format::Docker,
            },
            iidfile: self.iidfile,
            metadata_file: self.metadata_file,
            source_date_epoch,
            snapshotter: match self.snapshotter {
                SnapshotterArg::Overlayfs => Snapshotter::Overlayfs,
                SnapshotterArg::Native => Snapshotter::Native,
                SnapshotterArg::Auto => Snapshotter::Auto,
            },
            jobs: self.jobs,
            cancel: Default::default(),
            no_cache: self.no_cache,
            no_cache_filter: self.no_cache_filter,
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
            network: self.network.map(|n| {
                match n {
                    NetworkMode::Default => "default",
                    NetworkMode::None => "none",
                    NetworkMode::Host => "host",
                }
                .to_owned()
            }),
            pull: match self.pull {
                PullArg::Always => PullPolicy::Always,
                PullArg::Missing => PullPolicy::Missing,
                PullArg::Never => PullPolicy::Never,
            },
            registry,
            limits: self.limits.limits()?,
        };
        let progress = if self.quiet {
            ProgressMode::Quiet
        } else {
            self.progress
        };
        Ok((options, progress, push, prepared))
    }
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
/// docker's `host-gateway` is refused (RUN steps use the host's network, where
/// `127.0.0.1` is the host).
fn add_host(spec: &str) -> anyhow::Result<(String, String)> {
    let split = spec.split_once('=').or_else(|| spec.split_once(':'));
    let Some((name, ip)) = split.filter(|(n, i)| !n.is_empty() && !i.is_empty()) else {
        bail!("invalid --add-host {spec:?}: expected NAME:IP");
    };
    if ip == "host-gateway" {
        bail!("--add-host {spec}: host-gateway needs a bridge network; RUN steps use the host's network, where the host is 127.0.0.1");
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

/// Runs `rbuild build`.
pub fn run(args: BuildArgs, root: PathBuf) -> anyhow::Result<ExitCode> {
    let cap = super::prune_cmds::max_store_size(&root, args.max_store_size.as_deref())?;
    let explain = args.explain;
    // `_prepared` keeps fetched contexts until the build is done.
    let (options, progress, push, _prepared) = args.into_options(root)?;
    private_mounts();
    // First Ctrl-C: stop at the next step and clean up; a second one exits at once
    // (mounts still vanish with the process's mount namespace). The build also sets
    // `cancel` when a stage fails, so whether the user interrupted is a flag of its own.
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, interrupted.clone());
        let _ = signal_hook::flag::register(signal, interrupted.clone());
        let _ = signal_hook::flag::register(signal, options.cancel.clone());
    }
    if explain {
        let reporter = super::progress::ExplainReporter;
        crate::executor::explain(&options, &reporter)?;
        return Ok(ExitCode::SUCCESS);
    }
    let reporter = super::progress::reporter(progress);
    let result = match crate::executor::build(&options, reporter.as_ref()) {
        Ok(r) => r,
        Err(e) if interrupted.load(std::sync::atomic::Ordering::SeqCst) => {
            super::write_stderr(&format!("error: build interrupted ({e})"));
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e.into()),
    };
    {
        let mut stdout = std::io::stdout().lock();
        use std::io::Write;
        writeln!(stdout, "{}", result.manifest).context("writing to stdout")?;
    }
    if push {
        push_tags(&options, &result.manifest, progress == ProgressMode::Quiet)?;
    }
    if let Some(cap) = cap {
        // The build's shared gc lock is released: prunes only if no other build runs.
        // The image is built: a failure here is a warning, not a failed build.
        if let Err(e) = super::prune_cmds::enforce_cap(&options.root, cap, &result.manifest) {
            super::write_stderr(&format!("warning: {e:#}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--push`: the built image to each `-t` name's registry (blobs already pushed for
/// the first name are found by `HEAD` for the next ones).
fn push_tags(
    options: &BuildOptions,
    manifest: &crate::digest::Digest,
    quiet: bool,
) -> anyhow::Result<()> {
    let store = crate::store::Store::open(&options.root)?;
    let _gc = store.gc_shared()?;
    let image = store
        .resolve(&manifest.to_string())?
        .with_context(|| format!("the built image {manifest} is not in the store"))?;
    let client = crate::registry::Client::new(options.registry.clone());
    for tag in &options.tags {
        let dest = crate::registry::Reference::parse(tag)?;
        // The build's --metadata-file already names this digest.
        super::registry_cmds::push_one(&client, &store, &image, &dest, quiet)?;
    }
    Ok(())
}

/// Moves this process into its own mount namespace with private propagation, so every
/// overlay mount of the build disappears with the process, however it ends (even
/// `kill -9`), and none leaks into the host's view. Without privileges this does
/// nothing (the build then fails at its first mount with a clear error).
fn private_mounts() {
    use rustix::mount::{mount_change, MountPropagationFlags};
    use rustix::thread::{unshare_unsafe, UnshareFlags};
    // SAFETY: called before any thread is spawned; unsharing the mount namespace does
    // not invalidate any memory or file descriptor this process holds.
    let unshared = unsafe { unshare_unsafe(UnshareFlags::NEWNS) };
    if unshared.is_ok() {
        let _ = mount_change(
            "/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        );
    }
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
