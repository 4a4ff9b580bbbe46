//! One stage, step by step: its base layers, then per step the cache key; a step the
//! cache has is taken from its record, any other one runs (a file step, `file_steps.rs`,
//! or RUN, `run.rs`, each on a root holding the layers below) and is recorded;
//! metadata steps only date their history entry (`history.rs`). In explain mode the
//! steps are keyed and explained, never run.

mod history;
mod tree_base;

use std::cell::OnceCell;
use std::time::{Duration, Instant};

use self::history::StageConfig;
use self::tree_base::tree_layer;
use super::caching::{layer_of, layer_record, reasons, BuildCache, Sources};
use super::copy::{changed_files, Reuse};
use super::env::{Layer, Mode, StageOutput};
use super::error::{BuildError, ExecError};
use super::events::{BuildEvent, StepId};
use super::file_steps::fs_step;
use super::run::run_step;
use super::stage_env::StageEnv;
use super::step_root::Committed;
use crate::cache::{CacheKey, LayerRecord, PortableRecord, Record, StageLog, StepInputs};
use crate::plan::{base_key, step_key, Base, Op, StagePlan, Step};

/// Builds `stage` (or, in explain mode, keys and explains its steps).
pub fn run_stage(
    env: &StageEnv<'_>,
    cache: &BuildCache<'_>,
    stage: &StagePlan,
) -> Result<StageOutput, BuildError> {
    let at = |step: Option<&Step>, source: ExecError| {
        BuildError::step(
            env.build.options,
            step.map_or(stage.span, |s| s.span),
            step.map(|s| s.original.clone()),
            source,
        )
    };
    let mut run = start_reported(env, cache, stage).map_err(|e| at(None, e))?;
    for (i, step) in stage.steps.iter().enumerate() {
        run.step(i, step).map_err(|e| at(Some(step), e))?;
    }
    run.finish().map_err(|e| at(None, e))
}

/// [`StageRun::start`], reported as the stage's `FROM` step (step 0) when building.
fn start_reported<'s>(
    env: &'s StageEnv<'s>,
    cache: &'s BuildCache<'s>,
    stage: &'s StagePlan,
) -> Result<StageRun<'s>, ExecError> {
    if env.build.mode != Mode::Build {
        return StageRun::start(env, cache, stage);
    }
    let reporter = env.build.reporter;
    let id = StepId {
        stage: stage.index,
        stage_name: stage.name.clone(),
        step: 0,
        steps: stage.steps.len(),
        text: stage.from.clone(),
        line: stage.span.line,
    };
    reporter.event(BuildEvent::StepStarted { id: id.clone() });
    let started = Instant::now();
    let run = StageRun::start(env, cache, stage).inspect_err(|e| reporter.event(failed(&id, e)))?;
    reporter.event(BuildEvent::StepFinished {
        id,
        elapsed: started.elapsed(),
        layer: false,
        commit: None,
        patched: None,
    });
    Ok(run)
}

/// The event of step `id` ending with `error`: cancelled, or failed.
fn failed(id: &StepId, error: &ExecError) -> BuildEvent {
    match error {
        ExecError::Interrupted => BuildEvent::StepCancelled { id: id.clone() },
        _ => BuildEvent::StepFailed {
            id: id.clone(),
            error: error.to_string(),
        },
    }
}

/// A stage being built.
struct StageRun<'s> {
    env: &'s StageEnv<'s>,
    cache: &'s BuildCache<'s>,
    stage: &'s StagePlan,
    sources: Sources<'s>,
    /// Whether the cache may be used (`--no-cache`, `--no-cache-filter`).
    lookups: bool,
    /// The step keys of the last build of the stage.
    last_keys: Vec<CacheKey>,
    /// The last build's inputs, read only when a step misses.
    last_log: OnceCell<StageLog>,
    layers: Vec<Layer>,
    config: StageConfig,
    /// The key of the last step so far (or of the base).
    key: CacheKey,
    /// This build's inputs so far.
    log: StageLog,
    /// Whether a step missed (the rest are not looked up).
    missed: bool,
    /// The records of the steps so far (a `FROM` stage's first), for `--cache-to`.
    records: Vec<PortableRecord>,
}

impl<'s> StageRun<'s> {
    /// The stage's base: its layers, its history, its key.
    fn start(
        env: &'s StageEnv<'s>,
        cache: &'s BuildCache<'s>,
        stage: &'s StagePlan,
    ) -> Result<Self, ExecError> {
        let parent = match &stage.base {
            Base::Stage(j) => env.output(*j)?,
            Base::Scratch | Base::Image(_) | Base::Named(_) => None,
        };
        let records = parent.map(|p| p.records.clone()).unwrap_or_default();
        let sources = cache.sources(env.build, env.outputs);
        let key = base_key(&stage.base, &sources)?;
        let lookups = cache.lookups_for(stage);
        let mut config = StageConfig::new(stage, parent);
        let layers = match &stage.base {
            Base::Named(name) => match tree_layer(env, cache, name, &key, lookups)? {
                Some((layer, when)) => {
                    config.base_dated(&when, true);
                    vec![layer]
                }
                None => {
                    config.base_dated(&env.build.created.text, false);
                    Vec::new()
                }
            },
            base => env.base_layers(base)?,
        };
        Ok(StageRun {
            env,
            cache,
            stage,
            sources,
            lookups,
            last_keys: cache.last_keys(stage),
            last_log: OnceCell::new(),
            layers,
            config,
            key,
            log: StageLog::default(),
            missed: false,
            records,
        })
    }

    /// Step `i` (0-based): keyed, then taken from the cache, explained, or run.
    fn step(&mut self, i: usize, step: &Step) -> Result<(), ExecError> {
        // Ctrl-C, or another stage failed: stop before the next step.
        if self.env.build.cancelled() {
            return Err(ExecError::Interrupted);
        }
        let keyed = step_key(&self.key, step, self.cache.key_options(), &self.sources)?;
        let Some((key, inputs)) = keyed else {
            self.config.metadata(i);
            let id = self.step_id(i, step);
            self.env
                .build
                .reporter
                .event(BuildEvent::StepMetadata { id });
            return Ok(());
        };
        let record = if self.lookups && !self.missed {
            self.cache.lookup(&key)?
        } else {
            None
        };
        let inputs = self.step_inputs(step, key, inputs);
        let id = self.step_id(i, step);
        if let Some((record, from)) = record {
            return self.cached(i, id, record, from, inputs);
        }
        let reuse = self.reuse_for(step, &inputs);
        self.explain_miss(&id, &inputs);
        self.missed = true;
        if self.env.build.mode == Mode::Explain {
            // Nothing runs: later steps miss because this one does.
            self.advance(None, inputs);
            return Ok(());
        }
        let layer = self.execute(step, id, &inputs.key, reuse.as_ref())?;
        let created = self.env.build.created.text.clone();
        self.config.dated(i, &created, layer.is_some());
        let record = layer.as_ref().map(layer_record);
        self.remember(inputs.key, record, created);
        self.advance(layer, inputs);
        Ok(())
    }

    /// Keeps the record of the step keyed `key` for `--cache-to`.
    fn remember(&mut self, key: CacheKey, layer: Option<LayerRecord>, created: String) {
        self.records.push(PortableRecord {
            key,
            parent: Some(self.key),
            layer,
            created: Some(created),
        });
    }

    fn step_id(&self, i: usize, step: &Step) -> StepId {
        StepId {
            stage: self.stage.index,
            stage_name: self.stage.name.clone(),
            step: i + 1,
            steps: self.stage.steps.len(),
            text: step.original.clone(),
            line: step.span.line,
        }
    }

    /// The inputs of a step as the explanation log keeps them; the first one also
    /// says what the stage starts from (the parent key already covers it).
    fn step_inputs(
        &self,
        step: &Step,
        key: CacheKey,
        mut inputs: Vec<(String, String)>,
    ) -> StepInputs {
        if self.log.steps.is_empty() {
            let (name, value) = match &self.stage.base {
                Base::Image(image) => ("base".to_owned(), image.digest.to_string()),
                Base::Stage(_) => ("base-stage".to_owned(), self.key.to_string()),
                Base::Named(name) => (format!("base-context:{name}"), self.key.to_string()),
                Base::Scratch => ("base".to_owned(), "scratch".to_owned()),
            };
            inputs.push((name, value));
        }
        StepInputs {
            text: step.original.clone(),
            key,
            inputs,
        }
    }

    /// Step `i` as the cache recorded it.
    fn cached(
        &mut self,
        i: usize,
        id: StepId,
        record: Record,
        from: Option<String>,
        inputs: StepInputs,
    ) -> Result<(), ExecError> {
        let layer = match &record.layer {
            Some(l) => Some(layer_of(l, &self.layers)?),
            None => None,
        };
        let when = match record.created {
            Some(when) => when,
            None => self.env.build.created.text.clone(),
        };
        self.config.dated(i, &when, layer.is_some());
        self.remember(inputs.key, record.layer, when);
        let reporter = self.env.build.reporter;
        reporter.event(BuildEvent::StepCached { id, from });
        self.advance(layer, inputs);
        Ok(())
    }

    /// For a COPY that misses: the snapshot its last build made, with the files it
    /// copies unchanged, which are linked from there (see `copy::Reuse`). That build
    /// must have run the steps before with the same keys, and this step with the same
    /// instruction and the same inputs but for files.
    fn reuse_for(&self, step: &Step, inputs: &StepInputs) -> Option<Reuse> {
        let build = self.env.build;
        if !matches!(step.op, Op::Copy(_)) || build.mode != Mode::Build || !self.lookups {
            return None;
        }
        let index = self.log.steps.len();
        let before = self.last_keys.get(..=index)?;
        if before.iter().zip(&self.log.steps).any(|(k, s)| *k != s.key) {
            return None;
        }
        let last = self
            .last_log
            .get_or_init(|| self.cache.last_log(self.stage));
        let then = last.steps.get(index).filter(|t| t.text == inputs.text)?;
        let changed = changed_files(&then.inputs, &inputs.inputs)?;
        let record = self.cache.local_record(&then.key)?;
        let layer = layer_of(record.layer.as_ref()?, &self.layers).ok()?;
        let (snapshot, chunks) = build.store.link_source(&layer.chain)?;
        let blob = chunks.map(|c| (layer.blob.digest, c));
        Reuse::open(&snapshot, changed, blob)
    }

    /// Says why a step misses when asked (explain mode), or when there is a last build
    /// to compare with.
    fn explain_miss(&mut self, id: &StepId, inputs: &StepInputs) {
        let explain = self.env.build.mode == Mode::Explain;
        let has_last = self.lookups && !self.last_keys.is_empty();
        if !explain && !has_last {
            return;
        }
        let reasons = if self.lookups {
            let index = self.log.steps.len();
            let last = self
                .last_log
                .get_or_init(|| self.cache.last_log(self.stage));
            let reasons = reasons(last, index, inputs, self.missed);
            // Later steps compare with later entries only: the inputs of this one (one
            // per context file for a COPY) are not kept while the step runs.
            if let Some(step) = self.last_log.get_mut().and_then(|l| l.steps.get_mut(index)) {
                step.inputs = Vec::new();
            }
            reasons
        } else {
            vec!["the cache is not used for this stage (--no-cache)".to_owned()]
        };
        self.env.build.reporter.event(BuildEvent::CacheMiss {
            id: id.clone(),
            reasons,
        });
    }

    /// Runs a step the cache does not have and records what it made under `key`.
    fn execute(
        &self,
        step: &Step,
        id: StepId,
        key: &CacheKey,
        reuse: Option<&Reuse>,
    ) -> Result<Option<Layer>, ExecError> {
        let reporter = self.env.build.reporter;
        reporter.event(BuildEvent::StepStarted { id: id.clone() });
        let started = Instant::now();
        let result = match &step.op {
            Op::Meta => Ok(Committed {
                layer: None,
                took: Duration::ZERO,
                patched: None,
            }),
            Op::Run(run) => run_step(self.env, &self.layers, run, step, &id),
            op => fs_step(self.env, &self.layers, op, step, reuse),
        };
        let Committed {
            layer,
            took,
            patched,
        } = result.inspect_err(|e| reporter.event(failed(&id, e)))?;
        let created = &self.env.build.created.text;
        self.cache.record(key, layer.as_ref(), created)?;
        reporter.event(BuildEvent::StepFinished {
            id,
            elapsed: started.elapsed(),
            layer: layer.is_some(),
            commit: Some(took),
            patched,
        });
        Ok(layer)
    }

    /// Moves past a step that left `layer` (or none).
    fn advance(&mut self, layer: Option<Layer>, inputs: StepInputs) {
        self.layers.extend(layer);
        self.key = inputs.key;
        self.log.steps.push(inputs);
    }

    /// The stage's output; its inputs kept for the next explanation when a key changed
    /// (the log can hold an input per context file).
    fn finish(self) -> Result<StageOutput, ExecError> {
        let same = self.log.steps.len() == self.last_keys.len()
            && self
                .log
                .steps
                .iter()
                .zip(&self.last_keys)
                .all(|(a, b)| a.key == *b);
        if self.env.build.mode == Mode::Build && !same {
            self.cache.save_log(self.stage, &self.log)?;
        }
        let config = self
            .config
            .finish(&self.layers, &self.env.build.created.text);
        Ok(StageOutput {
            layers: self.layers,
            config,
            key: self.key,
            records: self.records,
        })
    }
}
