//! A stage's image configuration as its steps finish, each history entry dated once:
//! a step that ran is dated with the build, one taken from the cache with its record,
//! and a metadata step (no layer, no key) like the step before it or, before any, like
//! the next one, so that a rebuild from the cache gives the same image.

use crate::executor::env::{Layer, StageOutput};
use crate::image::ImageConfig;
use crate::plan::StagePlan;

/// The configuration a stage is building up.
pub(super) struct StageConfig {
    config: ImageConfig,
    /// Index of the first step's entry (the entries before it are the base's).
    base: usize,
    /// The date of the last dated step.
    last: Option<String>,
    /// Entries of metadata steps waiting for the next dated step.
    undated: Vec<usize>,
}

impl StageConfig {
    /// The configuration `stage` was planned to end with; when it starts from the
    /// stage `parent`, the base entries as that stage was built (dates, which steps
    /// made layers).
    pub(super) fn new(stage: &StagePlan, parent: Option<&StageOutput>) -> Self {
        let mut config = stage.config.clone();
        let base = config.history.len().saturating_sub(stage.steps.len());
        if let Some(parent) = parent {
            if parent.config.history.len() == base {
                config.history[..base].clone_from_slice(&parent.config.history);
            }
        }
        StageConfig {
            config,
            base,
            last: None,
            undated: Vec::new(),
        }
    }

    /// The base's entries that have no date yet (the entry of a named context's tree
    /// layer) were made `when`; `layer`: whether the base made a layer at all.
    pub(super) fn base_dated(&mut self, when: &str, layer: bool) {
        for entry in &mut self.config.history[..self.base] {
            if entry.created.is_none() {
                entry.created = Some(when.to_owned());
                entry.empty_layer = !layer;
            }
        }
    }

    /// Step `step` (0-based) changed only the configuration.
    pub(super) fn metadata(&mut self, step: usize) {
        let index = self.base + step;
        if let Some(entry) = self.config.history.get_mut(index) {
            entry.created = self.last.clone();
            entry.empty_layer = true;
        }
        if self.last.is_none() {
            self.undated.push(index);
        }
    }

    /// Step `step` (0-based) ran, or came from the cache, at `when`, with a layer or
    /// without; metadata steps waiting for a date get it too.
    pub(super) fn dated(&mut self, step: usize, when: &str, layer: bool) {
        if let Some(entry) = self.config.history.get_mut(self.base + step) {
            entry.created = Some(when.to_owned());
            entry.empty_layer = !layer;
        }
        self.date_undated(when);
        self.last = Some(when.to_owned());
    }

    /// The finished configuration of a stage of `layers` built at `now`: entries still
    /// undated and the config's `created` are `now` unless a step was dated.
    pub(super) fn finish(mut self, layers: &[Layer], now: &str) -> ImageConfig {
        self.config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id).collect();
        self.date_undated(now);
        self.config.created = Some(self.last.unwrap_or_else(|| now.to_owned()));
        self.config
    }

    fn date_undated(&mut self, when: &str) {
        for j in self.undated.drain(..) {
            if let Some(entry) = self.config.history.get_mut(j) {
                entry.created = Some(when.to_owned());
            }
        }
    }
}
