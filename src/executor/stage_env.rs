//! What the steps of one stage see: the build's [`BuildEnv`], the roots they run on
//! ([`StepRoots`]), and the outputs of the stages this one reads, only those, from
//! which `COPY --from` and `RUN --mount from=` take their layers.

use std::collections::BTreeSet;

use super::env::{BuildEnv, Layer, StageOutput};
use super::error::ExecError;
use super::schedule::Slots;
use super::snapshots::image_layers;
use super::step_root::{RootView, StepRoots};
use crate::layers::WriteOptions;
use crate::plan::{Base, Source};

/// The environment of one stage's steps.
pub struct StageEnv<'a> {
    pub build: &'a BuildEnv<'a>,
    /// Makes step roots and read-only views with the build's snapshotter.
    pub roots: &'a StepRoots<'a>,
    /// The outputs of the stages this one reads, waited for when first needed.
    pub outputs: &'a StageOutputs<'a>,
    /// The stage uses no cached result (`--no-cache`, `--no-cache-filter`): its cache
    /// mounts start empty too.
    pub no_cache: bool,
    /// The stage's layers are the image's (the target, or a stage it starts `FROM`):
    /// written in the image's compression. Other stages' layers stay uncompressed
    /// tars, as nothing reads them compressed unless a later image takes them in
    /// (`compress_layers` then compresses them once).
    pub exported: bool,
}

impl StageEnv<'_> {
    /// How this stage's layers are written (see [`StageEnv::exported`]).
    pub fn write(&self) -> WriteOptions {
        let mut write = self.build.write.clone();
        if !self.exported {
            write.compression = crate::layers::Compression::None;
        }
        write
    }

    /// The output of stage `index`, if this stage reads it (see [`StageOutputs::get`]).
    pub fn output(&self, index: usize) -> Result<Option<&StageOutput>, ExecError> {
        self.outputs.get(index)
    }

    /// The layers of stage `index` (none if this stage does not read it).
    pub fn stage_layers(&self, index: usize) -> Result<Vec<Layer>, ExecError> {
        Ok(self
            .output(index)?
            .map(|o| o.layers.clone())
            .unwrap_or_default())
    }

    /// The layers a stage starts from, the snapshots of an image's made when missing.
    pub fn base_layers(&self, base: &Base) -> Result<Vec<Layer>, ExecError> {
        match base {
            Base::Scratch => Ok(Vec::new()),
            Base::Stage(j) => self.stage_layers(*j),
            Base::Image(image) => image_layers(
                self.build.store,
                self.build.remote,
                image,
                self.build.reporter,
            ),
            Base::Named(_) => Err(ExecError::Internal {
                what: "a named context's layer is made by its stage, not read as a base",
            }),
        }
    }

    /// A read-only view of a stage or an image, and how errors name it (`stage 1`,
    /// `image alpine`); `None` for the build context and named contexts' trees, which
    /// are read through their indexes.
    pub fn view(&self, source: &Source) -> Result<Option<(RootView, String)>, ExecError> {
        let (layers, origin) = match source {
            Source::Context | Source::Named(_) => return Ok(None),
            Source::Stage(j) => (self.stage_layers(*j)?, format!("stage {j}")),
            Source::Image(image) => (
                image_layers(
                    self.build.store,
                    self.build.remote,
                    image,
                    self.build.reporter,
                )?,
                format!("image {}", image.reference),
            ),
        };
        Ok(Some((self.roots.view(&layers)?, origin)))
    }
}

/// The outputs of the stages one stage reads. The stage it starts `FROM` is built
/// before it starts; another (`COPY --from`, `RUN --mount from=`) is waited for at the
/// first step that needs it, so the steps before run meanwhile (see
/// [`super::schedule`]).
pub struct StageOutputs<'a> {
    slots: &'a Slots<'a, StageOutput>,
    /// The stages it reads: it sees those only.
    reads: &'a BTreeSet<usize>,
}

impl<'a> StageOutputs<'a> {
    /// The outputs in `slots` of the stages in `reads`.
    pub fn new(slots: &'a Slots<'a, StageOutput>, reads: &'a BTreeSet<usize>) -> Self {
        StageOutputs { slots, reads }
    }

    /// The output of stage `index` once it is built; `None` if this stage does not
    /// read it; interrupted if the build stops first (a failure elsewhere, Ctrl-C).
    pub fn get(&self, index: usize) -> Result<Option<&'a StageOutput>, ExecError> {
        if !self.reads.contains(&index) {
            return Ok(None);
        }
        self.slots
            .wait(index)
            .map(Some)
            .ok_or(ExecError::Interrupted)
    }
}
