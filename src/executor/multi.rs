//! Multi-platform builds (`--platform a,b`): the plan built once per platform, one
//! after the other, sharing the store (its cache records, snapshots and context stat
//! cache); their images listed in one image index (a Docker manifest list with the
//! Docker format), which is what the build's tags name, what is pushed and what a
//! `type=oci` output holds. A `type=local` output gets one directory per platform
//! (`linux_arm64`), as BuildKit's.

use super::build::build_one;
use super::error::{BuildError, ExecError};
use super::events::{BuildEvent, Reporter};
use super::export::export_index;
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
    let mut manifests: Vec<Descriptor> = Vec::new();
    let count = options.platforms.len();
    for (i, platform) in options.platforms.iter().enumerate() {
        reporter.event(BuildEvent::Note {
            message: format!("platform {platform} ({}/{count})", i + 1),
        });
        let built = build_one(&part_options(options, platform), reporter)?;
        let mut descriptor = built.descriptor;
        descriptor.annotations.clear();
        manifests.push(descriptor);
    }
    let index = assemble_index(&store, &manifests, options.format).map_err(ExecError::from)?;
    let names = name(&store, options, reporter, &index, &index.digest)?;
    for output in &options.outputs {
        export_index(&store, &index, options, output, reporter)?;
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

/// The options of `platform`'s build: that platform, no names or result files, local
/// outputs in the platform's subdirectory.
fn part_options(options: &BuildOptions, platform: &Platform) -> BuildOptions {
    // The index's outputs (an OCI layout) are written once all platforms are built.
    let outputs = options
        .outputs
        .iter()
        .filter_map(|output| match output {
            Output::Local { dest } => Some(Output::Local {
                dest: dest.join(platform_dir(platform)),
            }),
            _ => None,
        })
        .collect();
    BuildOptions {
        platform: Some(platform.clone()),
        platforms: Vec::new(),
        index_part: true,
        tags: Vec::new(),
        outputs,
        iidfile: None,
        metadata_file: None,
        ..options.clone()
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
