//! The directory trees a build reads, each walked on first use (a build that copies
//! nothing from one never reads it) and once, however many stages ask at the same
//! time: the build context, and the named contexts that are trees (`--build-context
//! NAME=DIR`, a git checkout, a download), each filtered by its own ignore rule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::copy::ContextIndex;
use super::error::ExecError;
use crate::context::{
    dockerignore_for, read_ignore_file, root_dockerignore, BuildContext, Filter, IgnoreFile,
};
use crate::plan::Source;

/// Which ignore file filters a tree.
#[derive(Debug, Clone)]
enum IgnoreRule {
    /// The build context: the file found for the Dockerfile (`<Dockerfile>.dockerignore`,
    /// `.containerignore`, `.dockerignore`).
    ForDockerfile(PathBuf),
    /// `--ignorefile`.
    File(PathBuf),
    /// A named context: its root's `.dockerignore`, as BuildKit reads it.
    Root,
}

/// A tree's index, made by the first caller of [`LazyContext::get`].
pub struct LazyContext {
    cell: OnceLock<ContextIndex>,
    /// Held while walking, so that concurrent first users wait for one walk.
    walking: Mutex<()>,
    /// How many times the tree was walked (at most once: a multi-platform build's
    /// platforms share one context, and say so).
    walks: AtomicUsize,
    /// The tree's directory.
    dir: PathBuf,
    ignore: IgnoreRule,
    /// Whether content digests of its files are kept across builds (the stat cache):
    /// a directory of the user's, not a copy fetched for this build.
    lasting: bool,
}

impl LazyContext {
    /// The context `dir` of a build of `dockerfile`, filtered by `ignore_file` or
    /// else by the ignore file found for the Dockerfile; not walked yet.
    pub fn new(dir: &Path, dockerfile: &Path, ignore_file: Option<&Path>) -> Self {
        let ignore = match ignore_file {
            Some(file) => IgnoreRule::File(file.to_owned()),
            None => IgnoreRule::ForDockerfile(dockerfile.to_owned()),
        };
        Self::with(dir, ignore, true)
    }

    /// A named context's tree at `dir`, filtered by its root's `.dockerignore`;
    /// `lasting` when `dir` is the user's (not fetched for this build).
    pub fn named(dir: &Path, lasting: bool) -> Self {
        Self::with(dir, IgnoreRule::Root, lasting)
    }

    fn with(dir: &Path, ignore: IgnoreRule, lasting: bool) -> Self {
        LazyContext {
            cell: OnceLock::new(),
            walking: Mutex::new(()),
            walks: AtomicUsize::new(0),
            dir: dir.to_owned(),
            ignore,
            lasting,
        }
    }

    /// The tree's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the stat cache keeps its files' digests across builds.
    pub fn lasting(&self) -> bool {
        self.lasting
    }

    /// The index, walking the tree the first time.
    pub fn get(&self) -> Result<&ContextIndex, ExecError> {
        if let Some(index) = self.cell.get() {
            return Ok(index);
        }
        // The lock guards no data: a panic while it was held leaves nothing to repair.
        let _walking = self.walking.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = self.cell.get() {
            return Ok(index);
        }
        let index = context_index(&self.dir, &self.ignore)?;
        self.walks.fetch_add(1, Ordering::Relaxed);
        Ok(self.cell.get_or_init(|| index))
    }

    /// How many times the tree was walked, and its entries (0 if never walked).
    pub fn walks(&self) -> (usize, usize) {
        let entries = self.cell.get().map_or(0, ContextIndex::len);
        (self.walks.load(Ordering::Relaxed), entries)
    }
}

impl Drop for LazyContext {
    fn drop(&mut self) {
        // A big context's index is 100k+ small allocations: free them off the build's
        // critical path (a process that exits first just skips the work).
        if let Some(index) = self.cell.take().filter(|i| i.len() > 10_000) {
            let _ = std::thread::Builder::new().spawn(move || drop(index));
        }
    }
}

/// The named contexts of a build that are trees, by key.
pub type NamedTrees = BTreeMap<String, LazyContext>;

/// The tree `source` reads when it is the build context or a named context's tree;
/// `None` for a stage or an image.
pub fn tree_of<'t>(
    context: &'t LazyContext,
    named: &'t NamedTrees,
    source: &Source,
) -> Result<Option<&'t LazyContext>, ExecError> {
    match source {
        Source::Context => Ok(Some(context)),
        Source::Named(name) => named.get(name).map(Some).ok_or(ExecError::Internal {
            what: "a named context was planned but not prepared",
        }),
        Source::Stage(_) | Source::Image(_) => Ok(None),
    }
}

fn context_index(dir: &Path, ignore: &IgnoreRule) -> Result<ContextIndex, ExecError> {
    let mut ctx = BuildContext::new(dir);
    let file: Option<IgnoreFile> = match ignore {
        IgnoreRule::File(path) => Some(read_ignore_file(path)?),
        IgnoreRule::ForDockerfile(dockerfile) => dockerignore_for(dir, dockerfile)?,
        IgnoreRule::Root => root_dockerignore(dir)?,
    };
    if let Some(file) = file {
        ctx = ctx.with_filter(Filter::new().with_exclude(file.matcher().clone()));
    }
    ContextIndex::new(&ctx)
}
