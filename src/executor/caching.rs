//! The build cache inside a build: every step gets its key (`plan::step_key`, with the
//! content identities this module reads: files of the context and of named contexts'
//! trees, through the stat cache of each directory the user owns; stage keys, fetched
//! URLs, the commits of git repositories); a step whose key has a usable record is not run; a step that
//! ran gets a record; and a miss is explained against the last build of the same
//! Dockerfile and stage. A key the store has no record of is looked up in the caches
//! of `--cache-from` (`cache_io/`), whose hits say where they came from.
//!
//! `--no-cache` and `--no-cache-filter` only skip lookups: results are still recorded,
//! as `docker build --no-cache` leaves a cache for the next build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use super::cache_io::RemoteCache;
use super::context::LazyContext;
use super::copy::{self, Attrs, ContextIndex, CopyRequest};
use super::env::{BuildEnv, Layer};
use super::error::ExecError;
use super::stage_env::StageOutputs;
use super::{BuildOptions, CompressionKind};
use crate::cache::{
    explain, hash_reader, BuildLogs, CacheKey, LayerRecord, Record, Records, StageLog, StatCache,
    StepInputs,
};
use crate::plan::{CopyOp, GitSource, KeyOptions, KeySources, Source, StagePlan};
use crate::store::{chain_id, Store};

/// The cache state of one build.
pub struct BuildCache<'s> {
    store: &'s Store,
    records: Records<'s>,
    /// The caches of `--cache-from`.
    remote: &'s RemoteCache,
    logs: BuildLogs<'s>,
    /// The stat caches of the trees read so far, by directory.
    stat: Mutex<BTreeMap<PathBuf, StatCache>>,
    key_options: KeyOptions,
    no_cache: bool,
    no_cache_filter: BTreeSet<String>,
    dockerfile: String,
    /// Stops a walk of the context for keys.
    cancel: Arc<AtomicBool>,
}

impl<'s> BuildCache<'s> {
    pub fn new(store: &'s Store, remote: &'s RemoteCache, options: &BuildOptions) -> Self {
        let compression = match options.compression {
            CompressionKind::Gzip => format!("gzip-{}", options.compression_level.unwrap_or(6)),
            CompressionKind::Zstd => format!("zstd-{}", options.compression_level.unwrap_or(3)),
            CompressionKind::Uncompressed => "none".to_owned(),
        };
        let dockerfile = std::path::absolute(&options.dockerfile)
            .unwrap_or_else(|_| options.dockerfile.clone())
            .display()
            .to_string();
        BuildCache {
            store,
            records: Records::new(store),
            remote,
            logs: BuildLogs::new(store),
            stat: Mutex::new(BTreeMap::new()),
            key_options: KeyOptions {
                compression,
                epoch: options.source_date_epoch,
                network: options.network.clone(),
                run: run_key_inputs(&options.limits, &options.add_hosts),
            },
            no_cache: options.no_cache,
            no_cache_filter: options
                .no_cache_filter
                .iter()
                .map(|s| s.to_lowercase())
                .collect(),
            dockerfile,
            cancel: options.cancel.clone(),
        }
    }

    pub fn key_options(&self) -> &KeyOptions {
        &self.key_options
    }

    /// Whether lookups are allowed for `stage` (`--no-cache`, `--no-cache-filter`).
    pub fn lookups_for(&self, stage: &StagePlan) -> bool {
        if self.no_cache {
            return false;
        }
        let by_name = stage
            .name
            .as_ref()
            .is_some_and(|n| self.no_cache_filter.contains(&n.to_lowercase()));
        !(by_name || self.no_cache_filter.contains(&stage.index.to_string()))
    }

    /// The usable record of `key`, if any: the store's, else an imported one with
    /// the cache it came from (`registry REF`, `local DIR`).
    pub fn lookup(&self, key: &CacheKey) -> Result<Option<(Record, Option<String>)>, ExecError> {
        if let Some(record) = self.records.get(key)? {
            return Ok(Some((record, None)));
        }
        Ok(self
            .remote
            .lookup(key)
            .map(|(record, from)| (record, Some(from))))
    }

    /// This store's record of `key` (none from a `--cache-from` source).
    pub fn local_record(&self, key: &CacheKey) -> Option<Record> {
        self.records.get(key).ok().flatten()
    }

    /// Records what the step of `key` produced.
    pub fn record(
        &self,
        key: &CacheKey,
        layer: Option<&Layer>,
        created: &str,
    ) -> Result<(), ExecError> {
        let mut record = Record::new(*key, layer.map(layer_record));
        record.created = Some(created.to_owned());
        Ok(self.records.put(&record)?)
    }

    /// The last build's inputs of `stage`.
    pub fn last_log(&self, stage: &StagePlan) -> StageLog {
        self.logs.load(&self.dockerfile, &stage_name(stage))
    }

    /// The step keys of the last build of `stage`.
    pub fn last_keys(&self, stage: &StagePlan) -> Vec<CacheKey> {
        self.logs.load_keys(&self.dockerfile, &stage_name(stage))
    }

    /// Keeps this build's inputs of `stage` for the next explanation.
    pub fn save_log(&self, stage: &StagePlan, log: &StageLog) -> Result<(), ExecError> {
        Ok(self.logs.save(&self.dockerfile, &stage_name(stage), log)?)
    }

    /// Writes the stat caches back (after the build).
    pub fn finish(&self) -> Result<(), ExecError> {
        let mut guard = self.stat.lock().unwrap_or_else(|p| p.into_inner());
        for stat in guard.values_mut() {
            stat.save(self.store)?;
        }
        Ok(())
    }

    /// The content sources for keys of a stage's steps: the trees of the `build`
    /// (context and named contexts), and the `outputs` of the stages it reads.
    pub fn sources<'e>(
        &'e self,
        build: &'e BuildEnv<'e>,
        outputs: &'e StageOutputs<'e>,
    ) -> Sources<'e> {
        Sources {
            cache: self,
            build,
            outputs,
        }
    }
}

fn stage_name(stage: &StagePlan) -> String {
    stage
        .name
        .clone()
        .unwrap_or_else(|| stage.index.to_string())
}

/// Why `now` missed, against the same step of the last build.
pub fn reasons(
    last: &StageLog,
    index: usize,
    now: &StepInputs,
    parent_missed: bool,
) -> Vec<String> {
    explain(last.steps.get(index), now, parent_missed)
}

/// What a record keeps of `layer`.
pub fn layer_record(layer: &Layer) -> LayerRecord {
    LayerRecord {
        digest: layer.blob.digest,
        size: layer.blob.size,
        media_type: layer.blob.media_type.clone(),
        diff_id: layer.diff_id,
        chain: Some(layer.chain),
    }
}

/// The layer a record describes, on top of `below`.
pub fn layer_of(record: &LayerRecord, below: &[Layer]) -> Result<Layer, ExecError> {
    let mut diff_ids: Vec<_> = below.iter().map(|l| l.diff_id).collect();
    diff_ids.push(record.diff_id);
    let chain = chain_id(&diff_ids).ok_or(ExecError::Internal {
        what: "chain ID of an empty layer list",
    })?;
    Ok(Layer {
        blob: record.descriptor(),
        diff_id: record.diff_id,
        chain,
    })
}

/// What keys read in a stage's environment.
pub struct Sources<'e> {
    cache: &'e BuildCache<'e>,
    build: &'e BuildEnv<'e>,
    outputs: &'e StageOutputs<'e>,
}

impl Sources<'_> {
    fn stat_loaded(&self, dir: &Path) -> bool {
        self.cache
            .stat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(dir)
    }

    /// Runs `f` with the stat cache of directory `dir` (loaded on first use).
    fn with_stat<T>(&self, dir: &Path, f: impl FnOnce(&mut StatCache) -> T) -> T {
        let mut guard = self.cache.stat.lock().unwrap_or_else(|p| p.into_inner());
        let stat = guard
            .entry(dir.to_owned())
            .or_insert_with(|| StatCache::load(self.cache.store, dir));
        f(stat)
    }

    /// The `file:PATH` inputs of what `op` selects in the tree it reads.
    fn inputs(&self, op: &CopyOp) -> Result<Vec<(String, String)>, ExecError> {
        let tree = self.build.tree(&op.source)?.ok_or(ExecError::Internal {
            what: "file inputs asked of a stage or image",
        })?;
        let req = CopyRequest {
            op,
            attrs: Attrs::default(),
            created: 0,
            cancel: Some(&self.cache.cancel),
            backing: None,
            reuse: None,
        };
        if !tree.lasting() {
            // Fetched for this build: nothing to keep for the next one.
            let index = tree.get()?;
            return copy::source_inputs(index, &req, &mut |_, exact, meta| {
                hash_reader(index.open_rel(exact, meta)?)
            });
        }
        let index = self.walk_and_load(tree)?;
        self.with_stat(tree.dir(), |stat| {
            copy::source_inputs(index, &req, &mut |rel, exact, meta| {
                stat.digest_opened(rel, meta, || index.open_rel(exact, meta))
            })
        })
    }

    /// Walks `tree` while its stat cache (one record per file) loads.
    fn walk_and_load<'t>(&self, tree: &'t LazyContext) -> Result<&'t ContextIndex, ExecError> {
        let dir = tree.dir();
        std::thread::scope(|scope| {
            let loading =
                (!self.stat_loaded(dir)).then(|| scope.spawn(|| self.with_stat(dir, |_| ())));
            let index = tree.get();
            if let Some(loading) = loading {
                // A panic while loading leaves the cache unloaded: it loads again later.
                let _ = loading.join();
            }
            index
        })
    }

    /// `file:` inputs of the subtree `rel` of the tree `source`, named at `target`.
    fn tree_inputs(
        &self,
        source: Source,
        rel: &str,
        target: &str,
    ) -> Result<Vec<(String, String)>, ExecError> {
        let path = if rel.is_empty() { "." } else { rel };
        let op = CopyOp {
            source,
            sources: vec![path.to_owned()],
            ..CopyOp::default()
        };
        let inputs = self.inputs(&op).map_err(ExecError::for_mount)?;
        let prefix = format!("file:{path}");
        Ok(inputs
            .into_iter()
            .map(|(name, value)| {
                let tail = name.strip_prefix(&prefix).unwrap_or(&name);
                (format!("file:{target}{tail}"), value)
            })
            .collect())
    }
}

impl KeySources for Sources<'_> {
    type Error = ExecError;

    fn context_files(&self, op: &CopyOp) -> Result<Vec<(String, String)>, ExecError> {
        self.inputs(op)
    }

    fn context_tree(&self, rel: &str, target: &str) -> Result<Vec<(String, String)>, ExecError> {
        self.tree_inputs(Source::Context, rel, target)
    }

    fn named_tree(
        &self,
        name: &str,
        rel: &str,
        target: &str,
    ) -> Result<Vec<(String, String)>, ExecError> {
        self.tree_inputs(Source::Named(name.to_owned()), rel, target)
    }

    fn stage_key(&self, index: usize) -> Result<CacheKey, ExecError> {
        self.outputs
            .get(index)?
            .map(|o| o.key)
            .ok_or(ExecError::Internal {
                what: "a stage was keyed before the stage it reads",
            })
    }

    fn url_identity(&self, url: &str) -> Result<String, ExecError> {
        copy::url_identity(url, self.cache.store.work_dir())
    }

    fn git_commit(&self, source: &GitSource) -> Result<String, ExecError> {
        Ok(self.build.git.resolve(source)?.commit)
    }
}
/// The RUN key inputs of the build's limits: `--ulimit`s and a `--shm-size` other
/// than the default change what a step sees (BuildKit keys them too); cgroup limits
/// only decide whether it gets that far.
fn run_key_inputs(
    limits: &super::sandbox::Limits,
    add_hosts: &[(String, String)],
) -> Vec<(String, String)> {
    let value = |v: Option<u64>| v.map_or_else(|| "-1".to_owned(), |n| n.to_string());
    let mut out: Vec<(String, String)> = limits
        .ulimits
        .iter()
        .map(|u| {
            let limits = format!("{}:{}", value(u.soft), value(u.hard));
            (format!("ulimit:{}", u.name.as_str()), limits)
        })
        .collect();
    out.sort();
    if limits.shm_size != super::sandbox::DEFAULT_SHM_SIZE {
        out.push(("shm-size".to_owned(), limits.shm_size.to_string()));
    }
    // As BuildKit keys an exec op by its extra hosts.
    out.extend(
        add_hosts
            .iter()
            .map(|(n, ip)| (format!("add-host:{n}"), ip.clone())),
    );
    out
}
