//! Multi-platform builds (`--platform a,b`): the plan built once per platform, all at
//! the same time (a thread each), sharing one walk of the build context and the store
//! (its cache records, snapshots and context stat cache); their images listed in one image index (a Docker manifest list with the
//! Docker format), which is what the build's tags name, what is pushed and what a
//! `type=oci` output holds. A `type=local` output gets one directory per platform
//! (`linux_arm64`), as BuildKit's, and a `type=tar` output one tar of those
//! directories.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::build::{build_context, build_one};
use super::context::LazyContext;
use super::error::{BuildError, ExecError};
use super::events::{BuildEvent, Reporter};
use super::export::{dir_tar, export_index};
use super::finish::{name, write_result_files, BuildResult};
use super::{BuildOptions, Output};
use crate::image::Descriptor;
use crate::plan::Platform;
use crate::publish::assemble_index;
use crate::store::Store;

/// Builds every platform of `options.platforms`; the result is the index.
pub fn build_platforms(
    options: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<BuildResult, BuildError> {
    let store = Store::open(&options.root).map_err(ExecError::from)?;
    // Held until the index names the images: a prune between platforms keeps them.
    let _gc = store.gc_shared().map_err(ExecError::from)?;
    let context = Arc::new(build_context(options));
    // The platforms' root filesystems of `type=tar` outputs, tarred once all are built.
    let staging = super::env::scratch_dir(&store, "platforms-")?;
    let manifests = build_all(options, reporter, &context, staging.path())?;
    let (walks, entries) = context.walks();
    reporter.event(BuildEvent::Note {
        message: format!(
            "{} platforms built in parallel; build context walked {walks} time(s) ({entries} entries)",
            manifests.len()
        ),
    });
    let annotations = &options.annotations;
    let index = assemble_index(&store, &manifests, options.format, &annotations.index)
        .map_err(ExecError::from)?;
    // As BuildKit's image exporter describes it: with the `index-descriptor` annotations.
    let index = Descriptor {
        annotations: annotations.index_descriptor.clone(),
        ..index
    };
    let names = name(&store, options, reporter, &index, &index.digest)?;
    for output in &options.outputs {
        match output {
            Output::Tar { dest } => dir_tar(staging.path(), dest, options.source_date_epoch)?,
            _ => export_index(&store, &index, &manifests, options, output, reporter)?,
        }
    }
    let result = BuildResult {
        manifest: index.digest,
        config: index.digest,
        descriptor: index,
        names,
    };
    write_result_files(options, &result)?;
    Ok(result)
}

/// Builds the platforms at the same time (one thread each, every one scheduling its
/// stages as a single-platform build does), sharing `context`; their manifests in
/// `options.platforms` order, each labelled with the platform it was built for (as
/// BuildKit labels them, whatever its base's platform: the index never lists one
/// platform twice) and carrying its `manifest-descriptor` annotations. The first
/// failure cancels the others and is the error.
fn build_all(
    options: &BuildOptions,
    reporter: &dyn Reporter,
    context: &Arc<LazyContext>,
    staging: &Path,
) -> Result<Vec<Descriptor>, BuildError> {
    let count = options.platforms.len();
    let results: Vec<Result<Descriptor, BuildError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = options
            .platforms
            .iter()
            .enumerate()
            .map(|(i, platform)| {
                reporter.event(BuildEvent::Note {
                    message: format!("platform {platform} ({}/{count})", i + 1),
                });
                let part = part_options(options, i, platform, staging);
                let context = Arc::clone(context);
                scope.spawn(move || {
                    let built = build_one(&part, reporter, Some(context));
                    if built.is_err() {
                        part.cancel.store(true, Ordering::SeqCst);
                    }
                    built.map(|b| Descriptor {
                        platform: Some(index_platform(platform)),
                        ..b.descriptor
                    })
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join().unwrap_or_else(|_| {
                    Err(ExecError::Internal {
                        what: "a platform's build thread panicked",
                    }
                    .into())
                })
            })
            .collect()
    });
    first_failure(results)
}

/// The manifests, or the first error that is not the
/// cancellation another platform's failure caused.
fn first_failure(
    results: Vec<Result<Descriptor, BuildError>>,
) -> Result<Vec<Descriptor>, BuildError> {
    let interrupted =
        |e: &BuildError| matches!(e, BuildError::Exec(x) if matches!(**x, ExecError::Interrupted));
    let mut errors: Vec<BuildError> = Vec::new();
    let mut manifests = Vec::new();
    for result in results {
        match result {
            Ok(descriptor) => manifests.push(descriptor),
            Err(e) => errors.push(e),
        }
    }
    match errors.iter().position(|e| !interrupted(e)) {
        Some(i) => Err(errors.swap_remove(i)),
        None => errors.into_iter().next().map_or(Ok(manifests), Err),
    }
}

/// The options of `platform`'s build (the `i`th): that platform and its annotations, no
/// names or result files, local outputs in the platform's subdirectory, a tar output's
/// in `staging`'s.
fn part_options(
    options: &BuildOptions,
    i: usize,
    platform: &Platform,
    staging: &Path,
) -> BuildOptions {
    let dir = platform_dir(platform);
    // The index's outputs (an OCI layout) are written once all platforms are built.
    let mut outputs: Vec<Output> = options
        .outputs
        .iter()
        .filter_map(|output| match output {
            Output::Local { dest } => Some(Output::Local {
                dest: dest.join(&dir),
            }),
            _ => None,
        })
        .collect();
    if options
        .outputs
        .iter()
        .any(|o| matches!(o, Output::Tar { .. }))
    {
        outputs.push(Output::Local {
            dest: staging.join(&dir),
        });
    }
    BuildOptions {
        platform: Some(platform.clone()),
        platforms: Vec::new(),
        index_part: true,
        annotations: options
            .platform_annotations
            .get(i)
            .cloned()
            .unwrap_or_default(),
        platform_annotations: Vec::new(),
        tags: Vec::new(),
        outputs,
        iidfile: None,
        metadata_file: None,
        ..options.clone()
    }
}

/// The platform of an index entry: the target platform, normalized as containerd
/// normalizes it (`linux/arm64`, no `v8`), as BuildKit writes it.
fn index_platform(platform: &Platform) -> crate::image::Platform {
    crate::image::Platform {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        ..Default::default()
    }
}

/// BuildKit's directory name for a platform's files: `linux_arm_v7`.
pub fn platform_dir(platform: &Platform) -> String {
    platform.to_string().replace('/', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_directories_are_buildkits() {
        let dir = |p: &str| platform_dir(&p.parse().unwrap());
        assert_eq!(dir("linux/amd64"), "linux_amd64");
        assert_eq!(dir("linux/arm/v7"), "linux_arm_v7");
        assert_eq!(dir("linux/arm64/v8"), "linux_arm64");
    }
}
