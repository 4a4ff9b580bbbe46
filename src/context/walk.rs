//! The filtered, deterministic walk over a context directory, and opening files through
//! the same filtered view.
//!
//! Order: depth-first pre-order, names sorted bytewise within each directory (what
//! fsutil's walk gives, and what makes layer digests reproducible). Symlinks are reported
//! as symlinks and never followed; metadata comes from `lstat` once and travels with the
//! entry. Each directory's names are read in full before its children are visited; the
//! listings themselves (names + `lstat`) are made ahead on other threads
//! ([`readahead`]), one handle per thread.
//!
//! Errors follow fsutil: a directory or entry that vanishes during the walk is skipped;
//! a directory that cannot be read for lack of permission is skipped when it is itself
//! filtered out (it may still have been entered because an exception could match inside
//! it); any other failure ends the walk with the path in the error.

use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::filter::{Filter, Pipeline};
use super::readahead::{self, ReadAhead};
use super::{Entry, EntryKind, Stat};

/// A build context directory seen through stacked filters.
#[derive(Debug, Clone)]
pub struct BuildContext {
    root: PathBuf,
    filters: Vec<Filter>,
}

/// A directory being walked.
struct DirRef {
    path: PathBuf,
    path_str: String,
    depth: usize,
}

impl BuildContext {
    /// The unfiltered context at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        BuildContext {
            root: root.into(),
            filters: Vec::new(),
        }
    }

    /// Adds a filter on top of the existing ones (it sees their output).
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filters.push(filter);
        self
    }

    /// Whether any filter (`.dockerignore`, ...) may hide part of the directory.
    pub fn is_filtered(&self) -> bool {
        !self.filters.is_empty()
    }

    /// The context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// All entries that pass the filters, in walk order.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        self.walk(&mut |entry| entries.push(entry))?;
        Ok(entries)
    }

    /// Visits every entry that passes the filters, in walk order.
    pub fn walk(&self, visit: &mut dyn FnMut(Entry)) -> Result<()> {
        self.walk_observed(&mut |_| Ok(()), visit)
    }

    /// Like [`walk`](Self::walk), calling `before_read` with the relative path of each
    /// directory (`""` for the root) just before it is read. An error it returns is
    /// treated exactly like a failure of the read itself. This is the seam that lets tests
    /// prove a pruned directory is never read, and simulate unreadable ones.
    pub fn walk_observed(
        &self,
        before_read: &mut dyn FnMut(&str) -> io::Result<()>,
        visit: &mut dyn FnMut(Entry),
    ) -> Result<()> {
        let ahead = ReadAhead::default();
        let workers = readahead::threads();
        let mut walker = Walker {
            root: &self.root,
            pipeline: Pipeline::new(&self.filters),
            before_read,
            visit,
            ahead: (workers > 0).then_some(&ahead),
        };
        let top = DirRef {
            path: PathBuf::new(),
            path_str: String::new(),
            depth: 0,
        };
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| ahead.work(&self.root));
            }
            let result = walker.walk_dir(&top, false);
            ahead.stop();
            result
        })
    }

    /// Whether the `/`-separated relative `path` passes every filter.
    pub fn admits(&self, path: &str) -> Result<bool> {
        for filter in &self.filters {
            if !filter.admits(path)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Opens a context file through the filters: an excluded path is
    /// [`Error::Excluded`]. `path` is relative to the context (a leading `/` is allowed,
    /// `..` is not), and no component may be a symlink.
    pub fn open(&self, path: &str) -> Result<File> {
        let rel = context_relative(path)?;
        if !self.admits(&rel)? {
            return Err(Error::Excluded { path: rel });
        }
        let mut full = self.root.clone();
        for component in rel.split('/') {
            full.push(component);
            match fs::symlink_metadata(&full) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Error::Symlink { path: full })
                }
                Ok(_) => {}
                Err(source) => return Err(Error::Open { path: full, source }),
            }
        }
        File::open(&full).map_err(|source| Error::Open { path: full, source })
    }
}

/// Normalizes an `open` argument to `a/b/c`; rejects `..` and the root itself.
fn context_relative(path: &str) -> Result<String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(outside(path)),
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err(outside(path));
    }
    Ok(parts.join("/"))
}

fn outside(path: &str) -> Error {
    Error::OutsideContext {
        path: path.to_owned(),
    }
}

struct Walker<'w> {
    root: &'w Path,
    pipeline: Pipeline<'w>,
    before_read: &'w mut dyn FnMut(&str) -> io::Result<()>,
    visit: &'w mut dyn FnMut(Entry),
    /// Lists subdirectories on other threads (none on a single core).
    ahead: Option<&'w ReadAhead>,
}

impl Walker<'_> {
    fn walk_dir(&mut self, dir: &DirRef, tolerate_denied: bool) -> Result<()> {
        let Some(children) = self.read_dir(dir, tolerate_denied)? else {
            return Ok(());
        };
        for entry in children {
            let sub = entry.is_dir().then(|| DirRef {
                path: entry.path().to_path_buf(),
                path_str: entry.path_str().to_owned(),
                depth: entry.depth,
            });
            let decision = self.pipeline.process(entry, &mut *self.visit)?;
            if let Some(sub) = sub.filter(|_| decision.descend) {
                self.walk_dir(&sub, decision.tolerate_denied)?;
            }
            if self.pipeline.is_pruned(dir.depth) {
                break;
            }
        }
        Ok(())
    }

    /// The sorted children of `dir`, or `None` if it vanished or is an unreadable
    /// directory that may be skipped.
    fn read_dir(&mut self, dir: &DirRef, tolerate_denied: bool) -> Result<Option<Vec<Entry>>> {
        let full = self.root.join(&dir.path);
        let listing = match (self.before_read)(&dir.path_str) {
            Err(e) => Ok(Err(e)),
            Ok(()) => match self.ahead.and_then(|a| a.take(&dir.path)) {
                Some(listing) => listing,
                None => readahead::list(&full, self.ahead.is_none()),
            },
        };
        let mut named = match listing? {
            Ok(named) => named,
            // A directory removed during the walk is skipped; a missing context is an error.
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir.depth > 0 => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied && tolerate_denied => {
                return Ok(None)
            }
            Err(source) => return Err(Error::ReadDir { path: full, source }),
        };
        named.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
        if let Some(ahead) = self.ahead {
            for (name, meta) in &named {
                if meta.is_dir() {
                    ahead.push(&dir.path.join(name));
                }
            }
        }
        Ok(Some(
            named
                .into_iter()
                .map(|(name, meta)| child(dir, name, meta))
                .collect(),
        ))
    }
}

fn child(dir: &DirRef, name: OsString, metadata: Metadata) -> Entry {
    let lossy = name.to_string_lossy();
    let path_str = if dir.path_str.is_empty() {
        lossy.into_owned()
    } else {
        format!("{}/{lossy}", dir.path_str)
    };
    let path = dir.path.join(&name);
    let exact = (path.as_os_str() != path_str.as_str()).then(|| path.into_boxed_path());
    Entry {
        exact,
        path_str,
        kind: EntryKind::of(metadata.file_type()),
        metadata: Stat::from(&metadata),
        depth: dir.depth + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(paths: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for p in paths {
            let full = dir.path().join(p.trim_end_matches('/'));
            if p.ends_with('/') {
                fs::create_dir_all(full).unwrap();
            } else {
                fs::create_dir_all(full.parent().unwrap()).unwrap();
                fs::write(full, p).unwrap();
            }
        }
        dir
    }

    #[test]
    fn large_directories_are_listed_whole_and_sorted() {
        use crate::context::readahead::PARALLEL_STAT_MIN;
        let dir = tempfile::tempdir().unwrap();
        let mut expected = Vec::new();
        for i in 0..(PARALLEL_STAT_MIN * 2 + 7) {
            let name = format!("f{i:05}");
            fs::write(dir.path().join(&name), "x").unwrap();
            expected.push(format!("File {name}"));
        }
        expected.sort();
        assert_eq!(listing(&BuildContext::new(dir.path())), expected);
    }

    fn listing(ctx: &BuildContext) -> Vec<String> {
        let entries = ctx.entries().unwrap();
        entries
            .iter()
            .map(|e| format!("{:?} {}", e.kind(), e.path_str()))
            .collect()
    }

    #[test]
    fn sorted_depth_first_and_symlinks_not_followed() {
        let t = tree(&["b", "a/z", "a/y/", "a.txt"]);
        std::os::unix::fs::symlink("a", t.path().join("link")).unwrap();
        let got = listing(&BuildContext::new(t.path()));
        assert_eq!(
            got,
            [
                "Dir a",
                "Dir a/y",
                "File a/z",
                "File a.txt",
                "File b",
                "Symlink link"
            ]
        );
    }

    #[test]
    fn excluded_parent_is_emitted_for_reincluded_child() {
        let t = tree(&["d/keep", "d/drop", "e"]);
        let ctx = BuildContext::new(t.path())
            .with_filter(Filter::from_patterns(&[], &["d", "!d/keep"]).unwrap());
        assert_eq!(listing(&ctx), ["Dir d", "File d/keep", "File e"]);
    }

    #[test]
    fn pruned_directories_are_never_read() {
        let t = tree(&["skip/deep/file", "keep/x"]);
        let ctx =
            BuildContext::new(t.path()).with_filter(Filter::from_patterns(&[], &["skip"]).unwrap());
        let mut read = Vec::new();
        let mut record = |d: &str| {
            read.push(d.to_owned());
            Ok(())
        };
        ctx.walk_observed(&mut record, &mut |_| {}).unwrap();
        assert_eq!(read, ["", "keep"]);
    }

    #[test]
    fn missing_context_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let err = BuildContext::new(t.path().join("nope"))
            .entries()
            .unwrap_err();
        assert!(matches!(err, Error::ReadDir { .. }), "{err}");
    }

    #[test]
    fn open_goes_through_the_filters() {
        let t = tree(&["a", "b"]);
        std::os::unix::fs::symlink("a", t.path().join("l")).unwrap();
        let ctx =
            BuildContext::new(t.path()).with_filter(Filter::from_patterns(&[], &["b"]).unwrap());
        assert!(ctx.open("/a").is_ok());
        assert!(ctx.open("b").unwrap_err().is_not_found());
        assert!(ctx.open("missing").unwrap_err().is_not_found());
        assert!(matches!(ctx.open("l"), Err(Error::Symlink { .. })));
        assert!(matches!(
            ctx.open("../x"),
            Err(Error::OutsideContext { .. })
        ));
    }
}
