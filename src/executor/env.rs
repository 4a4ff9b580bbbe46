//! The bottom of the executor: what every step of a build shares ([`BuildEnv`]: the
//! store, the options and [`Mode`], progress, the context, how layers are written, the
//! build's timestamp, the sandbox, the commits of ADD's git sources) and what steps and stages produce ([`Layer`],
//! [`StageOutput`]). Nothing here imports the files above it.

use crate::cache::{CacheKey, PortableRecord};
use crate::digest::Digest;
use crate::image::{ImageConfig, LayerDescriptor};
use crate::layers::{Compression, WriteOptions};
use crate::store::Store;

use super::cache_io::RemoteCache;
use super::context::{tree_of, LazyContext, NamedTrees};
use super::copy::GitPins;
use super::error::ExecError;
use super::events::Reporter;
use super::limits::RunCgroups;
use super::sandbox::Executor;
use super::sandbox::NetPool;
use super::{BuildOptions, CompressionKind};
use std::sync::Arc;

/// A directory in the store's work dir (same filesystem as the snapshots), named
/// `PREFIX…`, removed on drop.
pub fn scratch_dir(store: &Store, prefix: &str) -> Result<tempfile::TempDir, ExecError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(store.work_dir())
        .map_err(ExecError::fs(
            "cannot create a directory in",
            store.work_dir(),
        ))
}

/// A layer of a built stage: its blob and where its snapshot is.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: LayerDescriptor,
    pub diff_id: Digest,
    /// Chain ID of the layers up to and including this one (the snapshot's name).
    pub chain: Digest,
}

/// What a stage produced.
#[derive(Debug, Clone)]
pub struct StageOutput {
    pub layers: Vec<Layer>,
    pub config: ImageConfig,
    /// The cache key of the stage's last step (or of its base).
    pub key: CacheKey,
    /// The records of the steps whose layers the stage holds (those of a `FROM`
    /// stage first), as `--cache-to` exports them.
    pub records: Vec<PortableRecord>,
}

/// What a build does with its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run the steps the cache does not have, record them, and make the image.
    Build,
    /// Only say what the cache has and why each other step would run (`StepCached`
    /// and `CacheMiss` events): nothing runs, nothing is recorded or named.
    Explain,
}

/// The build's `created` (config and history of the steps it runs): RFC 3339 text and
/// the Unix time it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub text: String,
    pub epoch: i64,
}

impl Created {
    /// `SOURCE_DATE_EPOCH` when given, else now.
    pub fn new(source_date_epoch: Option<i64>) -> Self {
        let epoch = source_date_epoch.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
        Created {
            text: rfc3339(epoch),
            epoch,
        }
    }
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What every stage and step of a build shares.
pub struct BuildEnv<'a> {
    pub store: &'a Store,
    pub options: &'a BuildOptions,
    pub mode: Mode,
    pub reporter: &'a dyn Reporter,
    /// The caches of `--cache-from`, and where their layer blobs come from.
    pub remote: &'a RemoteCache,
    /// The build context, walked on first use (shared by a multi-platform build's
    /// platforms).
    pub context: Arc<LazyContext>,
    /// The named contexts that are trees (`--build-context`), walked on first use.
    pub named: NamedTrees,
    /// How layers are written (compression, mtime clamp).
    pub write: WriteOptions,
    /// `created` of what this build makes.
    pub created: Created,
    /// Runs RUN steps.
    pub executor: &'a dyn Executor,
    /// Where RUN steps' cgroups go (found at the first RUN).
    pub cgroups: RunCgroups,
    /// The default network's namespaces, reused from step to step.
    pub netns: NetPool,
    /// The cache-mount directories this build has already emptied (`--no-cache`
    /// empties each once, at its first use, as BuildKit does).
    pub fresh_caches: FreshCaches,
    /// The commits ADD's git sources resolved to (keyed once, checked out as keyed).
    pub git: GitPins,
    /// The cache-mount directories steps used, by key (for `--cache-to …,mounts=true`).
    pub used_mounts: UsedMounts,
}

/// Cache-mount directory key (its name in `cache/mounts/`) -> the directory a step used.
pub type UsedMounts = std::sync::Mutex<std::collections::BTreeMap<String, std::path::PathBuf>>;

/// The cache-mount directories a build has started afresh.
pub type FreshCaches = std::sync::Mutex<std::collections::HashSet<std::path::PathBuf>>;

impl<'a> BuildEnv<'a> {
    /// The environment of a build of `options` in `store`, RUN steps run by `executor`,
    /// reading the trees of the named contexts in `named`.
    pub fn new(
        store: &'a Store,
        options: &'a BuildOptions,
        mode: Mode,
        reporter: &'a dyn Reporter,
        remote: &'a RemoteCache,
        executor: &'a dyn Executor,
        (context, named): (Arc<LazyContext>, NamedTrees),
    ) -> Self {
        BuildEnv {
            store,
            options,
            mode,
            reporter,
            remote,
            context,
            named,
            write: write_options(options),
            created: Created::new(options.source_date_epoch),
            executor,
            cgroups: RunCgroups::default(),
            netns: NetPool::new("/proc/self/exe"),
            fresh_caches: FreshCaches::default(),
            git: GitPins::default(),
            used_mounts: UsedMounts::default(),
        }
    }

    /// The tree `source` reads (the build context or a named context's tree), indexed
    /// on first use; `None` for a stage or an image.
    pub fn tree(&self, source: &crate::plan::Source) -> Result<Option<&LazyContext>, ExecError> {
        tree_of(&self.context, &self.named, source)
    }

    /// Whether the build was cancelled (Ctrl-C, or another stage failed).
    pub fn cancelled(&self) -> bool {
        self.options
            .cancel
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn write_options(options: &BuildOptions) -> WriteOptions {
    let compression = match options.compression {
        CompressionKind::Gzip => Compression::Gzip {
            level: options
                .compression_level
                .map_or(6, |l| l.clamp(0, 9) as u32),
        },
        CompressionKind::Zstd => Compression::Zstd {
            level: options.compression_level.unwrap_or(3),
        },
        CompressionKind::Uncompressed => Compression::None,
    };
    WriteOptions {
        compression,
        source_date_epoch: options.source_date_epoch,
        threads: 0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_501), "2023-11-14T22:21:41Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
