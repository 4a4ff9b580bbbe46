//! The build context, walked on first use (a build that copies nothing from it never
//! reads it) and once, however many stages ask at the same time.

use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use super::copy::ContextIndex;
use super::error::ExecError;
use crate::context::{dockerignore_for, read_ignore_file, BuildContext, Filter};

/// The context index of a build, made by the first caller of [`LazyContext::get`].
pub struct LazyContext<'a> {
    cell: OnceLock<ContextIndex>,
    /// Held while walking, so that concurrent first users wait for one walk.
    walking: Mutex<()>,
    /// The context directory.
    dir: &'a Path,
    /// The Dockerfile (its `.dockerignore` may sit beside it).
    dockerfile: &'a Path,
    /// `--ignorefile`: the ignore file to use instead of looking for one.
    ignore_file: Option<&'a Path>,
}

impl<'a> LazyContext<'a> {
    /// The context `dir` of a build of `dockerfile`, filtered by `ignore_file` or
    /// else by the ignore file found for the Dockerfile; not walked yet.
    pub fn new(dir: &'a Path, dockerfile: &'a Path, ignore_file: Option<&'a Path>) -> Self {
        LazyContext {
            cell: OnceLock::new(),
            walking: Mutex::new(()),
            dir,
            dockerfile,
            ignore_file,
        }
    }

    /// The context index, walking the context the first time.
    pub fn get(&self) -> Result<&ContextIndex, ExecError> {
        if let Some(index) = self.cell.get() {
            return Ok(index);
        }
        // The lock guards no data: a panic while it was held leaves nothing to repair.
        let _walking = self.walking.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = self.cell.get() {
            return Ok(index);
        }
        let index = context_index(self.dir, self.dockerfile, self.ignore_file)?;
        Ok(self.cell.get_or_init(|| index))
    }
}

impl Drop for LazyContext<'_> {
    fn drop(&mut self) {
        // A big context's index is 100k+ small allocations: free them off the build's
        // critical path (a process that exits first just skips the work).
        if let Some(index) = self.cell.take().filter(|i| i.len() > 10_000) {
            let _ = std::thread::Builder::new().spawn(move || drop(index));
        }
    }
}

fn context_index(
    context: &Path,
    dockerfile: &Path,
    ignore_file: Option<&Path>,
) -> Result<ContextIndex, ExecError> {
    let mut ctx = BuildContext::new(context);
    let ignore = match ignore_file {
        Some(path) => Some(read_ignore_file(path)?),
        None => dockerignore_for(context, dockerfile)?,
    };
    if let Some(ignore) = ignore {
        ctx = ctx.with_filter(Filter::new().with_exclude(ignore.matcher().clone()));
    }
    ContextIndex::new(&ctx)
}
