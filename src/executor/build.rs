//! A whole build: read and parse the Dockerfile, plan it, build the stages the target
//! needs, assemble the image in the store, name it and export it.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use super::caching::BuildCache;
use super::copy::ContextIndex;
use super::error::{BuildError, ExecError};
use super::events::{BuildEvent, Reporter};
use super::export::export;
use super::limits::RunCgroups;
use super::resolver::StoreResolver;
use super::sandbox::Sandbox;
use super::schedule::{self, Job, ScheduleError};
use super::stage::{run_stage, StageEnv, StageOutput};
use super::step_root::StepRoots;
use super::{BuildOptions, CompressionKind};
use crate::context::{dockerignore_for, BuildContext, Filter};
use crate::digest::Digest;
use crate::image::LayerDescriptor;
use crate::layers::{Compression, WriteOptions};
use crate::parser::instructions;
use crate::plan::{self, Plan, PlanOptions};
use crate::publish::assemble;
use crate::store::{ImageName, Store};

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The manifest digest.
    pub manifest: Digest,
    /// The config digest (the image ID).
    pub config: Digest,
    /// Names given in the store.
    pub names: Vec<String>,
}

/// Runs a build.
pub fn build(options: &BuildOptions, reporter: &dyn Reporter) -> Result<BuildResult, BuildError> {
    let mut options = options.clone();
    options.explain = false;
    build_or_explain(&options, reporter)?.ok_or_else(|| {
        BuildError::from(ExecError::Internal {
            what: "a build ended without an image",
        })
    })
}

/// Says, step by step, what a build would take from the cache and why each other step
/// would run (`StepCached` and `CacheMiss` events), without running, recording or
/// naming anything.
pub fn explain(options: &BuildOptions, reporter: &dyn Reporter) -> Result<(), BuildError> {
    let mut options = options.clone();
    options.explain = true;
    build_or_explain(&options, reporter).map(|_| ())
}

fn build_or_explain(
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Option<BuildResult>, BuildError> {
    let path = &options.dockerfile;
    let bytes = std::fs::read(path).map_err(|source| BuildError::ReadDockerfile {
        path: path.clone(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let name = path.display().to_string();
    let dockerfile = instructions::parse_text(&text).map_err(|e| BuildError::Parse {
        rendered: e.in_file(&name).render(&text),
    })?;
    let store = Store::open(&options.root).map_err(ExecError::from)?;
    // Held for the whole build: `rbuild prune` waits until no build runs (cache::prune).
    let _gc = match store.try_gc_shared().map_err(ExecError::from)? {
        Some(lock) => lock,
        None => {
            reporter.event(BuildEvent::Note {
                message: "waiting for `rbuild prune` to finish".to_owned(),
            });
            store.gc_shared().map_err(ExecError::from)?
        }
    };
    let plan_options = PlanOptions {
        build_args: options.build_args.clone(),
        target: options.target.clone(),
        platform: options.platform.clone(),
        labels: options.labels.clone(),
    };
    let mut registry = options.registry.clone();
    registry.cancel = options.cancel.clone();
    let client = crate::push::Client::new(registry);
    let resolver = StoreResolver {
        store: &store,
        client: &client,
        policy: options.pull,
        reporter,
    };
    let plan = plan::plan(&dockerfile, &plan_options, &resolver).map_err(|source| {
        let line = source
            .span()
            .map_or(String::new(), |s| format!(":{}", s.line));
        BuildError::Plan {
            location: format!("{name}{line}"),
            error: Box::new(source),
        }
    })?;

    let context = LazyContext {
        cell: OnceLock::new(),
        walking: Mutex::new(()),
        options,
    };
    let sandbox = Sandbox::new().with_cancel(options.cancel.clone());
    let cgroups = RunCgroups::default();
    let roots = StepRoots::new(options.snapshotter);
    let cache = BuildCache::new(&store, options);
    let shared = Shared {
        store: &store,
        options,
        reporter,
        context: &context,
        executor: &sandbox,
        cgroups: &cgroups,
        roots: &roots,
        cache: &cache,
        timestamp: timestamp(options.source_date_epoch),
    };
    let built = build_stages(&plan, &shared);
    // What was learnt about context files is kept even when a step failed.
    cache.finish()?;
    let outputs = built?;
    if options.explain {
        return Ok(None);
    }
    let target = outputs
        .get(plan.target)
        .and_then(Option::as_ref)
        .ok_or(ExecError::Internal {
            what: "the target stage was not built",
        })?;
    let layers: Vec<LayerDescriptor> = target.layers.iter().map(|l| l.blob.clone()).collect();
    let image =
        assemble(&store, &target.config, &layers, options.format).map_err(ExecError::from)?;
    let mut names = Vec::new();
    for tag in &options.tags {
        let name = ImageName::parse(tag).map_err(ExecError::from)?;
        store
            .set_name(&name, &image.descriptor)
            .map_err(ExecError::from)?;
        names.push(name.to_string());
        reporter.event(BuildEvent::ImageWritten {
            name: Some(name.to_string()),
            digest: image.descriptor.digest.to_string(),
        });
    }
    if names.is_empty() {
        reporter.event(BuildEvent::ImageWritten {
            name: None,
            digest: image.descriptor.digest.to_string(),
        });
    }
    for output in &options.outputs {
        export(&store, &image, target, options, output, reporter)?;
    }
    let result = BuildResult {
        manifest: image.descriptor.digest,
        config: image.config.digest,
        names,
    };
    write_result_files(options, &result)?;
    Ok(Some(result))
}

/// What every stage of a build shares.
struct Shared<'a> {
    store: &'a Store,
    options: &'a BuildOptions,
    reporter: &'a dyn Reporter,
    context: &'a LazyContext<'a>,
    executor: &'a Sandbox,
    cgroups: &'a RunCgroups,
    roots: &'a StepRoots,
    cache: &'a BuildCache<'a>,
    /// `created` (RFC 3339) and the Unix time it is.
    timestamp: (String, i64),
}

/// Builds the stages the target needs, each as soon as the stages it reads are built,
/// up to `--jobs` at once (see [`schedule`]); returns the outputs by stage index.
fn build_stages(plan: &Plan, shared: &Shared<'_>) -> Result<Vec<Option<StageOutput>>, BuildError> {
    let jobs: Vec<Job> = plan
        .order
        .iter()
        .filter_map(|&index| {
            let stage = plan.stages.get(index)?.as_ref()?;
            Some(Job {
                id: index,
                deps: stage.deps.iter().copied().collect(),
            })
        })
        .collect();
    let limit = shared
        .options
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN));
    let result = schedule::run(
        &jobs,
        plan.stages.len(),
        limit,
        &shared.options.cancel,
        |index, done| {
            let stage =
                plan.stages
                    .get(index)
                    .and_then(Option::as_ref)
                    .ok_or(ExecError::Internal {
                        what: "a scheduled stage is not in the plan",
                    })?;
            // The stage sees the outputs of the stages it reads, and only those.
            let mut outputs: Vec<Option<StageOutput>> = vec![None; plan.stages.len()];
            for &dep in &stage.deps {
                if let (Some(slot), Some(output)) = (outputs.get_mut(dep), done.get(dep)) {
                    *slot = output.get().cloned();
                }
            }
            let env = StageEnv {
                store: shared.store,
                options: shared.options,
                reporter: shared.reporter,
                context: shared.context,
                outputs: &outputs,
                write: write_options(shared.options),
                created: shared.timestamp.0.clone(),
                epoch: shared.timestamp.1,
                executor: shared.executor,
                cgroups: shared.cgroups,
                roots: shared.roots,
                cache: shared.cache,
            };
            run_stage(&env, stage)
        },
    );
    result.map_err(|e| match e {
        ScheduleError::Job { error, .. } => error,
        ScheduleError::Panicked { .. } => ExecError::Internal {
            what: "a stage's thread panicked",
        }
        .into(),
        ScheduleError::Cancelled => ExecError::Interrupted.into(),
        ScheduleError::Unsatisfiable { .. } => ExecError::Internal {
            what: "the stage graph cannot be scheduled",
        }
        .into(),
    })
}

/// The build context, walked on first use (a build that copies nothing from it never
/// reads it) and once, however many stages ask at the same time.
pub struct LazyContext<'a> {
    cell: OnceLock<ContextIndex>,
    /// Held while walking, so that concurrent first users wait for one walk.
    walking: Mutex<()>,
    options: &'a BuildOptions,
}

impl LazyContext<'_> {
    /// The context index, walking the context the first time.
    pub fn get(&self) -> Result<&ContextIndex, ExecError> {
        if let Some(index) = self.cell.get() {
            return Ok(index);
        }
        // The lock guards no data: a panic while it was held leaves nothing to repair.
        let _walking = self.walking.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = self.cell.get() {
            return Ok(index);
        }
        let index = context_index(&self.options.context, &self.options.dockerfile)?;
        Ok(self.cell.get_or_init(|| index))
    }
}

impl Drop for LazyContext<'_> {
    fn drop(&mut self) {
        // A big context's index is 100k+ small allocations: free them off the build's
        // critical path (a process that exits first just skips the work).
        if let Some(index) = self.cell.take().filter(|i| i.len() > 10_000) {
            let _ = std::thread::Builder::new().spawn(move || drop(index));
        }
    }
}

fn context_index(context: &Path, dockerfile: &Path) -> Result<ContextIndex, ExecError> {
    let mut ctx = BuildContext::new(context);
    if let Some(ignore) = dockerignore_for(context, dockerfile)? {
        ctx = ctx.with_filter(Filter::new().with_exclude(ignore.matcher().clone()));
    }
    ContextIndex::new(&ctx)
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

/// `created` for the config and history (RFC 3339, UTC) and the Unix time it is.
fn timestamp(epoch: Option<i64>) -> (String, i64) {
    let secs = epoch.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    (rfc3339(secs), secs)
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

fn write_result_files(options: &BuildOptions, result: &BuildResult) -> Result<(), ExecError> {
    if let Some(path) = &options.iidfile {
        std::fs::write(path, result.config.to_string())
            .map_err(ExecError::fs("cannot write", path))?;
    }
    if let Some(path) = &options.metadata_file {
        let meta = serde_json::json!({
            "containerimage.digest": result.manifest.to_string(),
            "containerimage.config.digest": result.config.to_string(),
            "image.name": result.names.join(","),
        });
        let text = serde_json::to_string_pretty(&meta).unwrap_or_default();
        std::fs::write(path, text).map_err(ExecError::fs("cannot write", path))?;
    }
    Ok(())
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
