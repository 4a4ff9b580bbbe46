//! A whole build, in phases: prepare ([`read_dockerfile`], [`gc_lock`] on the store,
//! [`make_plan`], the named contexts' trees it reads), [`build_stages`] (the stages the target needs, on the schedule of
//! `schedule.rs`), then, unless only explaining, finish (`finish.rs`: assemble, name,
//! export, result files).

use std::num::NonZeroUsize;
use std::sync::Arc;

use super::cache_io::{export_caches, RemoteCache};
use super::caching::BuildCache;
use super::context::LazyContext;
use super::env::{BuildEnv, Created, Mode, StageOutput};
use super::error::{BuildError, ExecError};
use super::events::{BuildEvent, Reporter};
use super::finish::{finish, BuildResult};
use super::named::{prepare_trees, NamedResolver};
use super::resolver::StoreResolver;
use super::sandbox::Sandbox;
use super::schedule::{self, Job, ScheduleError};
use super::stage::run_stage;
use super::stage_env::{StageEnv, StageOutputs};
use super::step_root::StepRoots;
use super::BuildOptions;
use crate::parser::instructions::{self, Dockerfile};
use crate::plan::{self, Plan, PlanOptions};
use crate::store::{FileLock, Store};

/// Builds the image of one platform, reading the build `context` given (a
/// multi-platform build's shared one) or its own.
pub(super) fn build_one(
    options: &BuildOptions,
    reporter: &dyn Reporter,
    context: Option<Arc<LazyContext>>,
) -> Result<BuildResult, BuildError> {
    run(options, Mode::Build, reporter, context)?.ok_or_else(|| {
        BuildError::from(ExecError::Internal {
            what: "a build ended without an image",
        })
    })
}

/// Says, step by step, what a build would take from the cache and why each other step
/// would run (`StepCached` and `CacheMiss` events), without running, recording or
/// naming anything.
pub fn explain(options: &BuildOptions, reporter: &dyn Reporter) -> Result<(), BuildError> {
    run(options, Mode::Explain, reporter, None).map(|_| ())
}

/// A build in `mode`: its result, or `None` when explaining.
fn run(
    options: &BuildOptions,
    mode: Mode,
    reporter: &dyn Reporter,
    context: Option<Arc<LazyContext>>,
) -> Result<Option<BuildResult>, BuildError> {
    let dockerfile = read_dockerfile(options)?;
    let store = Store::open(&options.root).map_err(ExecError::from)?;
    let _gc = gc_lock(&store, reporter)?;
    let plan = make_plan(&store, options, reporter, &dockerfile)?;
    reporter.event(planned(&plan));
    let now = Created::new(options.source_date_epoch).epoch;
    let named = prepare_trees(&store, options, &plan, now, reporter)?;
    let sandbox = Sandbox::new().with_cancel(options.cancel.clone());
    let remote = RemoteCache::load(&store, options, reporter);
    let context = context.unwrap_or_else(|| Arc::new(build_context(options)));
    let trees = (context, named);
    let env = BuildEnv::new(&store, options, mode, reporter, &remote, &sandbox, trees);
    if mode == Mode::Build {
        super::run::prewarm_network(&env, &plan);
    }
    let outputs = build_stages(&env, &plan)?;
    match mode {
        Mode::Explain => Ok(None),
        Mode::Build => {
            let result = finish(&env, &plan, &outputs)?;
            export_caches(&env, &plan, &outputs)?;
            Ok(Some(result))
        }
    }
}

/// The build context of `options`, not walked yet.
pub(super) fn build_context(options: &BuildOptions) -> LazyContext {
    LazyContext::new(
        &options.context,
        &options.dockerfile,
        options.ignore_file.as_deref(),
    )
}

/// The Dockerfile's stages, and how many steps (each needed stage's `FROM` included)
/// the build will show.
fn planned(plan: &Plan) -> BuildEvent {
    let needed = plan
        .order
        .iter()
        .filter_map(|&i| plan.stages.get(i)?.as_ref());
    BuildEvent::Planned {
        stages: plan.stages.len(),
        steps: needed.map(|stage| stage.steps.len() + 1).sum(),
    }
}

/// The parsed Dockerfile.
fn read_dockerfile(options: &BuildOptions) -> Result<Dockerfile, BuildError> {
    let path = &options.dockerfile;
    let bytes = std::fs::read(path).map_err(|source| BuildError::ReadDockerfile {
        path: path.clone(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let name = path.display().to_string();
    instructions::parse_text(&text).map_err(|e| BuildError::Parse {
        rendered: e.in_file(&name).render(&text),
    })
}

/// The store's gc lock, held shared for the whole build: `rbuild prune` waits until no
/// build runs (`cache::prune`).
fn gc_lock(store: &Store, reporter: &dyn Reporter) -> Result<FileLock, ExecError> {
    if let Some(lock) = store.try_gc_shared()? {
        return Ok(lock);
    }
    reporter.event(BuildEvent::Note {
        message: "waiting for `rbuild prune` to finish".to_owned(),
    });
    Ok(store.gc_shared()?)
}

/// The plan, `FROM` images resolved in the store or pulled, names resolved against the
/// named contexts.
fn make_plan(
    store: &Store,
    options: &BuildOptions,
    reporter: &dyn Reporter,
    dockerfile: &Dockerfile,
) -> Result<Plan, BuildError> {
    let plan_options = PlanOptions {
        build_args: options.build_args.clone(),
        target: options.target.clone(),
        platform: options.platform.clone(),
        labels: options.labels.clone(),
        entitlements: options.entitlements.clone(),
    };
    let mut registry = options.registry.clone();
    registry.cancel = options.cancel.clone();
    let client = crate::registry::Client::new(registry);
    let resolver = NamedResolver {
        images: StoreResolver {
            store,
            client: &client,
            policy: options.pull,
            reporter,
        },
        contexts: &options.named_contexts,
    };
    plan::plan(dockerfile, &plan_options, &resolver).map_err(|source| {
        let line = source
            .span()
            .map_or(String::new(), |s| format!(":{}", s.line));
        BuildError::Plan {
            location: format!("{}{line}", options.dockerfile.display()),
            error: Box::new(source),
        }
    })
}

/// Builds the stages the target needs, each as soon as the stages it reads are built,
/// up to `--jobs` at once (see [`schedule`]); returns the outputs by stage index. What
/// was learnt about context files is kept even when a step failed.
fn build_stages(env: &BuildEnv<'_>, plan: &Plan) -> Result<Vec<Option<StageOutput>>, BuildError> {
    let options = env.options;
    let roots = StepRoots::new(
        options.snapshotter,
        env.store,
        env.reporter,
        env.remote,
        &options.cancel,
    );
    let cache = BuildCache::new(env.store, env.remote, options);
    let exported = exported_stages(plan);
    let limit = options.jobs.unwrap_or_else(|| {
        NonZeroUsize::new(crate::cpus::available()).unwrap_or(NonZeroUsize::MIN)
    });
    let result = schedule::run(
        &jobs(plan),
        plan.stages.len(),
        limit,
        &options.cancel,
        |index, done| {
            let stage =
                plan.stages
                    .get(index)
                    .and_then(Option::as_ref)
                    .ok_or(ExecError::Internal {
                        what: "a scheduled stage is not in the plan",
                    })?;
            // The stage sees the outputs of the stages it reads, and only those.
            let outputs = StageOutputs::new(done, &stage.deps);
            let stage_env = StageEnv {
                build: env,
                roots: &roots,
                outputs: &outputs,
                no_cache: !cache.lookups_for(stage),
                exported: exported.contains(&index),
            };
            run_stage(&stage_env, &cache, stage)
        },
    );
    cache.finish()?;
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

/// The stages whose layers are the image's: the target and the stages it starts
/// `FROM`, down the chain. The others' layers never leave the store.
fn exported_stages(plan: &Plan) -> std::collections::BTreeSet<usize> {
    let mut exported = std::collections::BTreeSet::new();
    let mut next = Some(plan.target);
    while let Some(index) = next.filter(|i| exported.insert(*i)) {
        next = plan
            .stages
            .get(index)
            .and_then(Option::as_ref)
            .and_then(base_stage);
    }
    exported
}

/// The stage `stage` starts `FROM`, if it starts from a stage.
fn base_stage(stage: &crate::plan::StagePlan) -> Option<usize> {
    match stage.base {
        crate::plan::Base::Stage(base) => Some(base),
        _ => None,
    }
}

/// The plan's stages as jobs: each starts once the stage it starts `FROM` is built,
/// and waits for the others it reads at the step that reads them.
fn jobs(plan: &Plan) -> Vec<Job> {
    plan.order
        .iter()
        .filter_map(|&index| {
            let stage = plan.stages.get(index)?.as_ref()?;
            let base = base_stage(stage);
            Some(Job {
                id: index,
                deps: base.into_iter().collect(),
                reads: stage
                    .deps
                    .iter()
                    .copied()
                    .filter(|&d| Some(d) != base)
                    .collect(),
            })
        })
        .collect()
}
