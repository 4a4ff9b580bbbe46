//! `rbuild build` (and the shorthand `rbuild -t app:1 .`): flags -> [`BuildOptions`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use super::progress::{Outcome, Progress, ProgressMode, TransferView};
use crate::executor::BuildOptions;

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    Gzip,
    Zstd,
    Uncompressed,
}

impl Compression {
    /// The name `--compression` and the `compression=` keys give it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Uncompressed => "uncompressed",
        }
    }
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
    /// A named context `NAME=VALUE` for `FROM NAME`, `COPY --from=NAME` and
    /// `RUN --mount from=NAME` (a stage called NAME is replaced by it): a directory,
    /// `docker-image://REF`, `oci-layout://PATH[:TAG|@DIGEST]`, a git URL, or an
    /// http(s) URL (one file named `context`); may be repeated.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
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
    /// Target platform (`linux/amd64`), or several separated by commas (an image
    /// index); default `RBUILD_PLATFORM`, else `DOCKER_DEFAULT_PLATFORM`, else this
    /// machine's.
    #[arg(long)]
    pub platform: Option<String>,
    /// A label `KEY=VALUE` for the image; may be repeated.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// An OCI annotation `[TYPE:]KEY=VALUE` (buildx's syntax): on the manifest by
    /// default or with `manifest:`, on its descriptor in exported layouts with
    /// `manifest-descriptor:`; a type may name the build's platform
    /// (`manifest[linux/amd64]:`); may be repeated.
    #[arg(long = "annotation", value_name = "[TYPE:]KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Export: `type=oci|docker|local|tar,dest=PATH[,tar=false]`, or a directory.
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// How to show progress.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Print nothing but the image ID (the config digest) and errors: `--progress
    /// quiet`.
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
    /// Write the image ID (`sha256:` and the config digest, as docker) to this file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Write build metadata (JSON, BuildKit's keys: `containerimage.digest` the
    /// manifest digest, `containerimage.config.digest` the image ID,
    /// `containerimage.descriptor`, `image.name`) to this file.
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
    /// Import a build cache (repeatable): `type=registry,ref=REG/REPO:TAG`,
    /// `type=local,src=DIR`, or a plain image reference (a cache, or an image pushed
    /// with `--cache-to type=inline`). A step the store has no record of is looked
    /// up there; a layer is downloaded only when needed.
    #[arg(
        long = "cache-from",
        value_name = "type=registry,ref=REF|type=local,src=DIR|REF"
    )]
    pub cache_from: Vec<String>,
    /// Export the build cache (repeatable): `type=registry,ref=REG/REPO:TAG` or
    /// `type=local,dest=DIR`, with `mode=min` (the final image's steps, the default)
    /// or `mode=max` (every stage's), and `mounts=true` for the contents of the
    /// `RUN --mount=type=cache` directories used (`mounts-max-size=SIZE` in all);
    /// `type=inline`: in the image's config.
    #[arg(
        long = "cache-to",
        value_name = "type=registry,ref=REF|type=local,dest=DIR[,mode=min|max]|type=inline"
    )]
    pub cache_to: Vec<String>,
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
    /// Network of RUN steps that do not say: `default` (a namespace of its own with
    /// outbound access through `pasta`; the host's loopback unreachable), `none` (only
    /// loopback) or `host` (the host's network).
    #[arg(long, value_enum)]
    pub network: Option<NetworkMode>,
    /// Grant an entitlement to RUN steps (repeatable): `network.host` (`RUN
    /// --network=host`) or `security.insecure` (`RUN --security=insecure`).
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
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
    #[command(flatten)]
    pub compat: super::compat_flags::CompatArgs,
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

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

/// Runs `rbuild build`.
pub fn run(args: BuildArgs, root: PathBuf) -> anyhow::Result<ExitCode> {
    let cap = super::prune_cmds::max_store_size(&root, args.max_store_size.as_deref())?;
    let explain = args.explain;
    let load = args.compat.load;
    // `_prepared` keeps fetched contexts until the build is done.
    let (options, progress, push, _prepared) = args.into_options(root)?;
    if load && !options.platforms.is_empty() {
        anyhow::bail!(
            "--load with several --platform values: Docker loads one platform's image; \
             build with one --platform to load it, or --push the index"
        );
    }
    private_mounts();
    let interrupted = on_interrupt(&options.cancel);
    if explain {
        let reporter = super::progress::ExplainReporter::default();
        crate::executor::explain(&options, &reporter)?;
        return Ok(ExitCode::SUCCESS);
    }
    let view = Progress::start(progress);
    let built = crate::executor::build(&options, view.reporter());
    let was_interrupted = interrupted.load(Ordering::SeqCst);
    // The view's last frame first: nothing else is printed while it is live.
    view.finish(match (&built, was_interrupted) {
        (Ok(_), _) => Outcome::Finished,
        (Err(_), true) => Outcome::Interrupted,
        (Err(_), false) => Outcome::Failed,
    });
    let result = match built {
        Ok(r) => r,
        Err(e) if was_interrupted => {
            super::write_stderr(&format!("error: build interrupted ({e})"));
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e.into()),
    };
    // The image ID (config digest), as `docker build` prints it.
    if options.outputs.iter().any(|o| o.to_stdout()) {
        // Standard output carries the archive.
        super::write_stderr(&result.config.to_string());
    } else {
        let mut stdout = std::io::stdout().lock();
        use std::io::Write;
        writeln!(stdout, "{}", result.config).context("writing to stdout")?;
    }
    if push || load {
        let store = crate::store::Store::open(&options.root)?;
        let _gc = store.gc_shared()?;
        let image = store
            .resolve(&result.manifest.to_string())?
            .with_context(|| format!("the built image {} is not in the store", result.manifest))?;
        if push {
            if options.compression == crate::executor::CompressionKind::Zstd {
                super::write_stderr(
                    "note: zstd layers: podman, containerd 1.5+ and Docker 23+ pull this image; Docker 20.10 cannot",
                );
            }
            push_tags(&options, &store, &image, &TransferView::for_mode(progress))?;
        }
        if load {
            let client = crate::registry::Client::new(options.registry.clone());
            let view = TransferView::for_mode(progress);
            super::registry_cmds::fetch_lazy_layers(&client, &store, &image, &view)?;
            super::docker_load::load(&store, &image, &options.tags)?;
        }
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
    store: &crate::store::Store,
    image: &crate::image::Descriptor,
    view: &TransferView,
) -> anyhow::Result<()> {
    let client = crate::registry::Client::new(options.registry.clone());
    for tag in &options.tags {
        let dest = crate::registry::Reference::parse(tag)?;
        // The build's --metadata-file already names this digest.
        super::registry_cmds::push_one(&client, store, image, &dest, view)?;
    }
    Ok(())
}

/// First Ctrl-C (or SIGTERM): stop at the next step and clean up; a second one exits
/// at once with 130, the terminal view's live lines replaced by its last frame first
/// (mounts still vanish with the process's mount namespace). The build also sets
/// `cancel` when a stage fails, so whether the user interrupted is a flag of its own,
/// returned.
fn on_interrupt(cancel: &Arc<AtomicBool>) -> Arc<AtomicBool> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        let _ = signal_hook::flag::register(signal, interrupted.clone());
        let _ = signal_hook::flag::register(signal, cancel.clone());
    }
    let watcher = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).and_then(|mut signals| {
        std::thread::Builder::new()
            .name("interrupts".to_owned())
            .spawn(move || {
                // The first signal only sets the flags (above); the second ends it all.
                if signals.forever().nth(1).is_some() {
                    super::progress::abandon();
                    std::process::exit(130);
                }
            })
    });
    if watcher.is_err() {
        // No watcher thread: the second signal exits from the handler, view or not.
        for signal in [SIGINT, SIGTERM] {
            let _ =
                signal_hook::flag::register_conditional_shutdown(signal, 130, interrupted.clone());
        }
    }
    interrupted
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
