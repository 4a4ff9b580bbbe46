//! The build entry point: one platform (`build.rs`) or several into an index
//! (`multi.rs`), then the one flush of what the build wrote.

use super::build::build_one;
use super::error::{BuildError, ExecError};
use super::events::Reporter;
use super::finish::BuildResult;
use super::BuildOptions;

/// Runs a build: of one platform, or of several into an index (`multi.rs`).
pub fn build(options: &BuildOptions, reporter: &dyn Reporter) -> Result<BuildResult, BuildError> {
    let result = if options.platforms.len() > 1 {
        super::multi::build_platforms(options, reporter)?
    } else {
        build_one(options, reporter, None)?
    };
    // One flush for every snapshot the build made (they are not flushed one by one).
    crate::store::layout::sync_filesystem(&options.root).map_err(ExecError::from)?;
    Ok(result)
}
