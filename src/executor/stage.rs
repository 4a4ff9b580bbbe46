//! One stage, step by step: base layers, then each filesystem step on a root holding the
//! layers below (`step_root.rs`: an overlay, or a native copy; what the step changed
//! becomes its layer and the snapshot the next step stacks on), metadata steps folded
//! into the configuration.

use std::path::Path;
use std::time::Instant;

use super::caching::{layer_of, reasons, BuildCache};
use super::copy::{self, Attrs, CopyRequest, SourceTree};
use super::error::{BuildError, ExecError};
use super::events::{BuildEvent, Reporter, StepId};
use super::snapshots::image_layers;
use super::users::resolve_user;
use super::BuildOptions;
use crate::cache::{CacheKey, StageLog, StepInputs};
use crate::digest::Digest;
use crate::image::{ImageConfig, LayerDescriptor};
use crate::layers::WriteOptions;
use crate::plan::{base_key, step_key, Base, CopyOp, Op, Source, StagePlan, Step};
use crate::store::Store;

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
}

/// Everything a stage needs from the build.
pub struct StageEnv<'a> {
    pub store: &'a Store,
    pub options: &'a BuildOptions,
    pub reporter: &'a dyn Reporter,
    pub context: &'a super::build::LazyContext<'a>,
    pub outputs: &'a [Option<StageOutput>],
    pub write: WriteOptions,
    pub created: String,
    pub epoch: i64,
    /// Runs RUN steps.
    pub executor: &'a dyn super::sandbox::Executor,
    /// Where RUN steps' cgroups go (found at the first RUN).
    pub cgroups: &'a super::limits::RunCgroups,
    /// Makes step roots with the build's snapshotter.
    pub roots: &'a super::step_root::StepRoots,
    /// Keys, records and explanations.
    pub cache: &'a BuildCache<'a>,
}

/// Builds `stage`.
pub fn run_stage(env: &StageEnv<'_>, stage: &StagePlan) -> Result<StageOutput, BuildError> {
    let at = |step: Option<&Step>, source: ExecError| {
        BuildError::step(
            env.options,
            step.map_or(stage.span, |s| s.span),
            step.map(|s| s.original.clone()),
            source,
        )
    };
    let mut layers = base_layers(env, &stage.base).map_err(|e| at(None, e))?;
    let mut config = stage.config.clone();
    let base_history = config.history.len().saturating_sub(stage.steps.len());
    if let Base::Stage(j) = &stage.base {
        // The base stage's history as built (timestamps, which steps made layers).
        if let Some(parent) = env.outputs.get(*j).and_then(Option::as_ref) {
            if parent.config.history.len() == base_history {
                config.history[..base_history].clone_from_slice(&parent.config.history);
            }
        }
    }
    let sources = env.cache.sources(env);
    let mut key = base_key(&stage.base, &sources).map_err(|e| at(None, e))?;
    let lookups = env.cache.lookups_for(stage);
    // The last build's inputs, read only when a step misses.
    let last_log = std::cell::OnceCell::new();
    let last = || last_log.get_or_init(|| env.cache.last_log(stage));
    let last_keys = env.cache.last_keys(stage);
    let mut log = StageLog::default();
    let mut missed = false;
    let mut created = None::<String>;
    let mut undated: Vec<usize> = Vec::new();
    for (i, step) in stage.steps.iter().enumerate() {
        // Ctrl-C, or another stage failed: stop before the next step.
        if env.options.cancel.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(at(Some(step), ExecError::Interrupted));
        }
        let id = StepId {
            stage: stage.index,
            stage_name: stage.name.clone(),
            step: i + 1,
            steps: stage.steps.len(),
            text: step.original.clone(),
            line: step.span.line,
        };
        let keyed = step_key(&key, step, env.cache.key_options(), &sources)
            .map_err(|e| at(Some(step), e))?;
        let Some((step_key, inputs)) = keyed else {
            // Metadata: no layer, no key; its history entry dates from the step before
            // (or, before any, from the next one), so a rebuild from the cache gives
            // the same image.
            let history = &mut config.history[base_history + i];
            history.created = created.clone();
            history.empty_layer = true;
            if created.is_none() {
                undated.push(base_history + i);
            }
            continue;
        };
        let record = if lookups && !missed {
            env.cache.lookup(&step_key).map_err(|e| at(Some(step), e))?
        } else {
            None
        };
        let mut inputs = inputs;
        if log.steps.is_empty() {
            // Explanation only (the parent key already covers it): what the stage starts from.
            let (name, value) = match &stage.base {
                Base::Image(image) => ("base", image.digest.to_string()),
                Base::Stage(_) => ("base-stage", key.to_string()),
                Base::Scratch => ("base", "scratch".to_owned()),
            };
            inputs.push((name.to_owned(), value));
        }
        let step_inputs = StepInputs {
            text: step.original.clone(),
            key: step_key,
            inputs,
        };
        if let Some(record) = record {
            let layer = match &record.layer {
                Some(l) => Some(layer_of(l, &layers).map_err(|e| at(Some(step), e))?),
                None => None,
            };
            let when = record.created.unwrap_or_else(|| env.created.clone());
            let history = &mut config.history[base_history + i];
            history.created = Some(when.clone());
            history.empty_layer = layer.is_none();
            for j in undated.drain(..) {
                config.history[j].created = Some(when.clone());
            }
            created = Some(when);
            env.reporter.event(BuildEvent::StepCached { id });
            layers.extend(layer);
            key = step_key;
            log.steps.push(step_inputs);
            continue;
        }
        if env.options.explain || (lookups && !last_keys.is_empty()) {
            let reasons = if lookups {
                reasons(last(), log.steps.len(), &step_inputs, missed)
            } else {
                vec!["the cache is not used for this stage (--no-cache)".to_owned()]
            };
            env.reporter.event(BuildEvent::CacheMiss {
                id: id.clone(),
                reasons,
            });
        }
        missed = true;
        if env.options.explain {
            // Nothing runs: later steps miss because this one does.
            key = step_key;
            log.steps.push(step_inputs);
            continue;
        }
        env.reporter
            .event(BuildEvent::StepStarted { id: id.clone() });
        let started = Instant::now();
        let result = match &step.op {
            Op::Meta => Ok(None),
            Op::Run(run) => super::run::run_step(env, &layers, run, step, &id),
            op => fs_step(env, &layers, op, step),
        };
        let layer = match result {
            Ok(layer) => layer,
            Err(e) => {
                env.reporter.event(match e {
                    ExecError::Interrupted => BuildEvent::StepCancelled { id },
                    _ => BuildEvent::StepFailed {
                        id,
                        error: e.to_string(),
                    },
                });
                return Err(at(Some(step), e));
            }
        };
        env.cache
            .record(&step_key, layer.as_ref(), &env.created)
            .map_err(|e| at(Some(step), e))?;
        let history = &mut config.history[base_history + i];
        history.created = Some(env.created.clone());
        history.empty_layer = layer.is_none();
        for j in undated.drain(..) {
            config.history[j].created = Some(env.created.clone());
        }
        created = Some(env.created.clone());
        env.reporter.event(BuildEvent::StepFinished {
            id,
            elapsed: started.elapsed(),
            layer: layer.is_some(),
        });
        layers.extend(layer);
        key = step_key;
        log.steps.push(step_inputs);
    }
    // Written only when a key changed (it can hold an input per context file).
    let same = log.steps.len() == last_keys.len()
        && log.steps.iter().zip(&last_keys).all(|(a, b)| a.key == *b);
    if !env.options.explain && !same {
        env.cache.save_log(stage, &log).map_err(|e| at(None, e))?;
    }
    config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id).collect();
    for j in undated {
        config.history[j].created = Some(env.created.clone());
    }
    config.created = Some(created.unwrap_or_else(|| env.created.clone()));
    Ok(StageOutput {
        layers,
        config,
        key,
    })
}

/// The layers a stage starts from, their snapshots made when missing.
fn base_layers(env: &StageEnv<'_>, base: &Base) -> Result<Vec<Layer>, ExecError> {
    match base {
        Base::Scratch => Ok(Vec::new()),
        Base::Stage(j) => Ok(env
            .outputs
            .get(*j)
            .and_then(Option::as_ref)
            .map(|o| o.layers.clone())
            .unwrap_or_default()),
        Base::Image(image) => image_layers(env.store, image),
    }
}

/// Runs a WORKDIR or COPY/ADD on a root holding `layers`; returns the new layer, or
/// `None` when the step changed nothing.
fn fs_step(
    env: &StageEnv<'_>,
    layers: &[Layer],
    op: &Op,
    step: &Step,
) -> Result<Option<Layer>, ExecError> {
    let step_root = env.roots.root(env, layers)?;
    let root = step_root.target();
    match op {
        Op::Workdir { path } => {
            let owner = owner_of(&root, &step.state.user)?;
            copy::ensure_dir(&root, path, owner)?;
        }
        Op::Copy(c) => copy_step(env, c, &root)?,
        Op::Meta | Op::Run(_) => {}
    }
    step_root.commit(env, layers)
}

/// uid/gid of `user` resolved in the root filesystem's passwd and group files.
fn owner_of(root: &Path, user: &str) -> Result<(u32, u32), ExecError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let u = resolve_user(user, &read_etc(root, "passwd"), &read_etc(root, "group"))?;
    Ok((u.uid, u.gid))
}

fn read_etc(root: &Path, name: &str) -> String {
    copy::host_path(root, &format!("/etc/{name}"), true)
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

fn copy_step(env: &StageEnv<'_>, op: &CopyOp, root: &Path) -> Result<(), ExecError> {
    let owner = match &op.chown {
        Some(spec) => Some(owner_of(root, spec)?),
        None => None,
    };
    let mode = match &op.chmod {
        Some(m) => {
            Some(u32::from_str_radix(m, 8).map_err(|_| ExecError::BadChmod { value: m.clone() })?)
        }
        None => None,
    };
    let keep_owner = !matches!(op.source, Source::Context);
    let req = CopyRequest {
        sources: &op.sources,
        contents: &op.contents,
        dest: &op.dest,
        attrs: Attrs {
            owner,
            keep_owner,
            mode,
        },
        parents: op.parents,
        exclude: &op.exclude,
        extract_archives: op.is_add && op.unpack != Some(false),
        urls: op.is_add,
        checksum: op.checksum.as_deref(),
        created: env.epoch,
        cancel: Some(&env.options.cancel),
    };
    match &op.source {
        Source::Context => copy::copy(&SourceTree::Context(env.context.get()?), &req, root),
        Source::Stage(j) => {
            let layers = env
                .outputs
                .get(*j)
                .and_then(Option::as_ref)
                .map(|o| o.layers.clone())
                .unwrap_or_default();
            copy_from_layers(env, &layers, &req, root)
        }
        Source::Image(image) => {
            let layers = image_layers(env.store, image)?;
            copy_from_layers(env, &layers, &req, root)
        }
    }
}

/// COPY --from: a read-only view of `layers` (its writes are discarded).
fn copy_from_layers(
    env: &StageEnv<'_>,
    layers: &[Layer],
    req: &CopyRequest<'_>,
    root: &Path,
) -> Result<(), ExecError> {
    let mut view = env.roots.view(env, layers)?;
    let result = copy::copy(&SourceTree::Root(&view.target()), req, root);
    view.unmount()?;
    result
}
