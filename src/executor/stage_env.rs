//! What the steps of one stage see: the build's [`BuildEnv`], the roots they run on
//! ([`StepRoots`]), and the outputs of the stages this one reads, only those, from
//! which `COPY --from` and `RUN --mount from=` take their layers.

use super::env::{BuildEnv, Layer, StageOutput};
use super::error::ExecError;
use super::snapshots::image_layers;
use super::step_root::{RootView, StepRoots};
use crate::layers::WriteOptions;
use crate::plan::{Base, Source};

/// The environment of one stage's steps.
pub struct StageEnv<'a> {
    pub build: &'a BuildEnv<'a>,
    /// Makes step roots and read-only views with the build's snapshotter.
    pub roots: &'a StepRoots<'a>,
    /// Outputs by stage index: those of the stages this one reads, `None` elsewhere.
    pub outputs: &'a [Option<StageOutput>],
    /// The stage uses no cached result (`--no-cache`, `--no-cache-filter`): its cache
    /// mounts start empty too.
    pub no_cache: bool,
    /// The stage's layers are the image's (the target, or a stage it starts `FROM`):
    /// written in the image's compression. Other stages' layers stay uncompressed
    /// tars, as nothing reads them compressed unless a later image takes them in
    /// (`publish::compress_made_layers` then compresses them once).
    pub exported: bool,
}

impl StageEnv<'_> {
    /// How this stage's layers are written (see [`StageEnv::exported`]).
    pub fn write(&self) -> WriteOptions {
        let write = self.build.write.clone();
        if self.exported {
            return write;
        }
        WriteOptions {
            compression: crate::layers::Compression::None,
            ..write
        }
    }

    /// The output of stage `index`, if this stage reads it.
    pub fn output(&self, index: usize) -> Option<&StageOutput> {
        self.outputs.get(index).and_then(Option::as_ref)
    }

    /// The layers of stage `index` (none if this stage does not read it).
    pub fn stage_layers(&self, index: usize) -> Vec<Layer> {
        self.output(index)
            .map(|o| o.layers.clone())
            .unwrap_or_default()
    }

    /// The layers a stage starts from, the snapshots of an image's made when missing.
    pub fn base_layers(&self, base: &Base) -> Result<Vec<Layer>, ExecError> {
        match base {
            Base::Scratch => Ok(Vec::new()),
            Base::Stage(j) => Ok(self.stage_layers(*j)),
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
            Source::Stage(j) => (self.stage_layers(*j), format!("stage {j}")),
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
