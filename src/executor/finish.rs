//! After the stages: the target stage assembled into an image in the store, named with
//! the build's tags, exported to each `--output`, and the result files written
//! (`--iidfile`, `--metadata-file`).

use super::cache_io::with_inline_cache;
use super::compress_layers::compress_made_layers;
use super::env::{BuildEnv, StageOutput};
use super::error::{BuildError, ExecError};
use super::events::{BuildEvent, Reporter};
use super::export::export;
use super::BuildOptions;
use crate::digest::Digest;
use crate::image::{Descriptor, LayerDescriptor};
use crate::plan::Plan;
use crate::publish::assemble;
use crate::store::{ImageName, Store};

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The manifest digest.
    pub manifest: Digest,
    /// The config digest (the image ID).
    pub config: Digest,
    /// The manifest's descriptor (media type, size, platform, descriptor annotations).
    pub descriptor: Descriptor,
    /// Names given in the store.
    pub names: Vec<String>,
}

/// Makes the image of the plan's target from the built `outputs`, names and exports it.
pub fn finish(
    env: &BuildEnv<'_>,
    plan: &Plan,
    outputs: &[Option<StageOutput>],
) -> Result<BuildResult, BuildError> {
    let target = outputs
        .get(plan.target)
        .and_then(Option::as_ref)
        .ok_or(ExecError::Internal {
            what: "the target stage was not built",
        })?;
    // Layers a builder stage left uncompressed get the image's compression first, so
    // that the inline cache names the blobs the manifest has.
    let target = compress_made_layers(env, target)?;
    // Every manifest of the image (its exports' too) has the inline cache, if asked.
    let target = &StageOutput {
        config: with_inline_cache(env.options, &target)?,
        ..target
    };
    // Layers of registry cache hits stay there (lazy blobs); a local cache's are copied.
    for layer in &target.layers {
        env.remote
            .ensure_blob_or_lazy(env.store, &layer.blob, env.reporter)?;
    }
    let layers: Vec<LayerDescriptor> = target.layers.iter().map(|l| l.blob.clone()).collect();
    let annotations = &env.options.annotations;
    let image = assemble(
        env.store,
        &target.config,
        &layers,
        env.options.format,
        &annotations.manifest,
    )
    .map_err(ExecError::from)?;
    let names = if env.options.index_part {
        Vec::new()
    } else {
        name(
            env.store,
            env.options,
            env.reporter,
            &image.descriptor,
            &image.config.digest,
        )?
    };
    if !env.options.outputs.is_empty() {
        // Outputs read every layer: lazy ones are fetched once, here.
        env.remote
            .fetch_image(env.store, &image.descriptor, env.reporter)?;
    }
    for output in &env.options.outputs {
        export(env.store, &image, target, env.options, output, env.reporter)?;
    }
    let result = BuildResult {
        manifest: image.descriptor.digest,
        config: image.config.digest,
        descriptor: Descriptor {
            // As BuildKit describes it: with the `manifest-descriptor` annotations.
            annotations: annotations.descriptor.clone(),
            ..image.descriptor.clone()
        },
        names,
    };
    if !env.options.index_part {
        write_result_files(env.options, &result)?;
    }
    Ok(result)
}

/// Gives `image` (a manifest or an index) the build's tags; returns them as written.
/// `id` is what `ImageWritten` reports as the image ID.
pub(super) fn name(
    store: &Store,
    options: &BuildOptions,
    reporter: &dyn Reporter,
    image: &Descriptor,
    id: &Digest,
) -> Result<Vec<String>, ExecError> {
    let digest = image.digest.to_string();
    let id = id.to_string();
    let mut names = Vec::new();
    for tag in &options.tags {
        let name = ImageName::parse(tag)?;
        store.set_name(&name, image)?;
        names.push(name.to_string());
        reporter.event(BuildEvent::ImageWritten {
            name: Some(name.to_string()),
            digest: digest.clone(),
            id: id.clone(),
        });
    }
    if names.is_empty() {
        // Listed (`rbuild images`: `<none>`) and found by ID until named or pruned.
        store.add_unnamed(image)?;
        reporter.event(BuildEvent::ImageWritten {
            name: None,
            digest,
            id,
        });
    }
    Ok(names)
}

/// `--iidfile` and `--metadata-file` (also of a multi-platform build's index).
pub(super) fn write_result_files(
    options: &BuildOptions,
    result: &BuildResult,
) -> Result<(), ExecError> {
    if let Some(path) = &options.iidfile {
        std::fs::write(path, result.config.to_string())
            .map_err(ExecError::fs("cannot write", path))?;
    }
    if let Some(path) = &options.metadata_file {
        // BuildKit's image exporter keys (buildx writes the descriptor as an object).
        let meta = serde_json::json!({
            "containerimage.digest": result.manifest.to_string(),
            "containerimage.config.digest": result.config.to_string(),
            "containerimage.descriptor": result.descriptor,
            "image.name": result.names.join(","),
        });
        let text = serde_json::to_string_pretty(&meta).unwrap_or_default();
        std::fs::write(path, text).map_err(ExecError::fs("cannot write", path))?;
    }
    Ok(())
}
