//! Filters and the stacked filter pipeline of a walk (tonistiigi/fsutil's `filterFS`).
//!
//! A [`Filter`] is an optional allow-list (`include`) plus an optional `.dockerignore`
//! list (`exclude`); a path passes when it is included and not excluded. Filters stack:
//! each one sees the *output* of the one before, so a directory that an inner filter
//! emitted only for the sake of a re-included child is, for the next filter, a plain
//! directory entry.
//!
//! Each layer of the [`Pipeline`] is a stream transformer over the pre-order stream of
//! entries. It keeps the chain of directories above the current entry with their
//! per-pattern match results (so each path is matched once per pattern, see
//! [`IgnoreMatcher::matches_with_parent`]). A directory that does not pass is held back
//! and emitted just before the first entry below it that does pass, which is how an
//! excluded directory still shows up when `!` re-includes something inside it. A
//! directory proven to contain nothing that could pass is marked pruned; the walker
//! then never reads it.

use super::error::{Error, PatternList, Result};
use super::Entry;
use crate::parser::ignore::{IgnoreMatcher, MatchInfo};

/// One filtering layer: an optional allow-list and an optional exclude list.
///
/// An include matcher with no patterns lets nothing through; leave it unset for "no
/// allow-list" ([`Filter::from_patterns`] does this for empty lists, as fsutil does).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Option<IgnoreMatcher>,
    exclude: Option<IgnoreMatcher>,
}

/// The decision of one filter about one path.
#[derive(Debug, Default)]
struct Verdict {
    passes: bool,
    prune: bool,
    include: MatchInfo,
    exclude: MatchInfo,
}

impl Filter {
    /// A filter that lets everything through.
    pub fn new() -> Self {
        Self::default()
    }

    /// A filter from raw pattern lists; an empty list means "no such list".
    pub fn from_patterns<S: AsRef<str>>(include: &[S], exclude: &[S]) -> Result<Self> {
        let compile = |patterns: &[S], list| {
            (!patterns.is_empty())
                .then(|| {
                    IgnoreMatcher::new(patterns).map_err(|source| Error::Patterns { list, source })
                })
                .transpose()
        };
        Ok(Filter {
            include: compile(include, PatternList::Include)?,
            exclude: compile(exclude, PatternList::Exclude)?,
        })
    }

    /// Sets the allow-list.
    pub fn with_include(mut self, matcher: IgnoreMatcher) -> Self {
        self.include = Some(matcher);
        self
    }

    /// Sets the exclude list (the `.dockerignore` patterns).
    pub fn with_exclude(mut self, matcher: IgnoreMatcher) -> Self {
        self.exclude = Some(matcher);
        self
    }

    /// Whether `path` passes this filter on its own (full parent matching, no walk
    /// state): included, or no allow-list, and not excluded.
    pub fn admits(&self, path: &str) -> Result<bool> {
        if let Some(include) = &self.include {
            if !include
                .matches(path)
                .map_err(|e| match_error(path, PatternList::Include, e))?
            {
                return Ok(false);
            }
        }
        match &self.exclude {
            Some(exclude) => Ok(!exclude
                .matches(path)
                .map_err(|e| match_error(path, PatternList::Exclude, e))?),
            None => Ok(true),
        }
    }

    /// Judges `path` given its parent's results. Like fsutil, a directory outside the
    /// allow-list that can be pruned is not even matched against the exclude list.
    fn judge(&self, path: &str, is_dir: bool, parent: Option<&Frame>) -> Result<Verdict> {
        let none = MatchInfo::default();
        let mut verdict = Verdict::default();
        let included = match &self.include {
            None => true,
            Some(m) => {
                let info = parent.map_or(&none, |f| &f.include);
                let (hit, info) = m
                    .matches_with_parent(path, info)
                    .map_err(|e| match_error(path, PatternList::Include, e))?;
                verdict.include = info;
                if !hit && is_dir && m.can_skip_unmatched_dir(path) {
                    verdict.prune = true;
                    return Ok(verdict);
                }
                hit
            }
        };
        let excluded = match &self.exclude {
            None => false,
            Some(m) => {
                let info = parent.map_or(&none, |f| &f.exclude);
                let (hit, info) = m
                    .matches_with_parent(path, info)
                    .map_err(|e| match_error(path, PatternList::Exclude, e))?;
                verdict.exclude = info;
                verdict.prune = hit && is_dir && m.can_skip_excluded_dir(path);
                hit
            }
        };
        verdict.passes = included && !excluded;
        Ok(verdict)
    }
}

fn match_error(path: &str, list: PatternList, source: crate::parser::ignore::Error) -> Error {
    Error::Match {
        path: path.to_owned(),
        list,
        source,
    }
}

/// A directory above the current position, as one layer saw it.
#[derive(Debug)]
struct Frame {
    depth: usize,
    include: MatchInfo,
    exclude: MatchInfo,
    /// The directory's entry while it has not been emitted.
    pending: Option<Entry>,
    /// Nothing below this directory can pass this layer.
    pruned: bool,
}

/// One layer's state.
#[derive(Debug)]
struct Layer<'a> {
    filter: &'a Filter,
    stack: Vec<Frame>,
}

/// What the walker should do after an entry went through the pipeline.
#[derive(Debug, Clone, Copy)]
pub(super) struct Decision {
    /// Read the directory and walk its children.
    pub descend: bool,
    /// The directory itself did not pass the innermost filter, so (like fsutil) an
    /// unreadable directory is skipped rather than reported.
    pub tolerate_denied: bool,
}

/// The stacked filters of one walk.
#[derive(Debug)]
pub(super) struct Pipeline<'a> {
    layers: Vec<Layer<'a>>,
}

impl<'a> Pipeline<'a> {
    /// A pipeline of `filters`, innermost first.
    pub(super) fn new(filters: &'a [Filter]) -> Self {
        let layers = filters
            .iter()
            .map(|filter| Layer {
                filter,
                stack: Vec::new(),
            })
            .collect();
        Pipeline { layers }
    }

    /// Sends one raw entry through every layer; whatever comes out is visited.
    pub(super) fn process(
        &mut self,
        entry: Entry,
        visit: &mut dyn FnMut(Entry),
    ) -> Result<Decision> {
        let (depth, is_dir) = (entry.depth, entry.is_dir());
        // The walk has left every directory at this depth or deeper, in every layer.
        for layer in &mut self.layers {
            layer.leave_to(depth);
        }
        let mut batch = vec![entry];
        let mut innermost_passes = true;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let mut out = Vec::new();
            for e in batch {
                let passes = layer.accept(e, &mut out)?;
                if i == 0 {
                    innermost_passes = passes;
                }
            }
            batch = out;
        }
        batch.into_iter().for_each(&mut *visit);
        Ok(Decision {
            descend: is_dir && !self.is_pruned(depth),
            tolerate_denied: !innermost_passes,
        })
    }

    /// Whether some layer pruned a directory at `depth` or above on the current chain:
    /// the walker must stop reading at that depth.
    pub(super) fn is_pruned(&self, depth: usize) -> bool {
        self.layers
            .iter()
            .any(|l| l.stack.iter().any(|f| f.pruned && f.depth <= depth))
    }
}

impl Layer<'_> {
    /// Drops the frames of directories the stream has left.
    fn leave_to(&mut self, depth: usize) {
        while self.stack.last().is_some_and(|f| f.depth >= depth) {
            self.stack.pop();
        }
    }

    /// Judges one entry of this layer's input; emits held-back parents and the entry
    /// into `out` if it passes. Returns whether it passed.
    fn accept(&mut self, entry: Entry, out: &mut Vec<Entry>) -> Result<bool> {
        self.leave_to(entry.depth);
        if self.stack.iter().any(|f| f.pruned) {
            return Ok(false);
        }
        let parent = self.stack.last().filter(|f| f.depth + 1 == entry.depth);
        let verdict = self
            .filter
            .judge(entry.path_str(), entry.is_dir(), parent)?;
        if verdict.passes {
            out.extend(self.stack.iter_mut().filter_map(|f| f.pending.take()));
        }
        if entry.is_dir() {
            let held = !verdict.passes && !verdict.prune;
            self.stack.push(Frame {
                depth: entry.depth,
                include: verdict.include,
                exclude: verdict.exclude,
                pending: held.then(|| entry.clone()),
                pruned: verdict.prune,
            });
        }
        if verdict.passes {
            out.push(entry);
        }
        Ok(verdict.passes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> Filter {
        Filter::from_patterns(include, exclude).unwrap()
    }

    #[test]
    fn admits_combines_both_lists() {
        let f = filter(&["bar*"], &["bar/x"]);
        assert!(f.admits("bar/foo").unwrap());
        assert!(!f.admits("baz").unwrap());
        assert!(!f.admits("bar/x/y").unwrap());
        assert!(Filter::new().admits("anything").unwrap());
    }

    #[test]
    fn empty_lists_mean_no_list() {
        let f = filter(&[], &[]);
        assert!(f.include.is_none() && f.exclude.is_none());
        let err = Filter::from_patterns(&["!"], &[]).unwrap_err();
        assert!(matches!(
            err,
            Error::Patterns {
                list: PatternList::Include,
                ..
            }
        ));
    }

    #[test]
    fn judge_prunes_only_when_safe() {
        let f = filter(&[], &["foo", "!foo/bar"]);
        let v = f.judge("foo", true, None).unwrap();
        assert!(!v.passes && !v.prune);
        let v = filter(&[], &["foo"]).judge("foo", true, None).unwrap();
        assert!(!v.passes && v.prune);
        let v = filter(&["foo", "!**/bar"], &[])
            .judge("foo/bar", true, None)
            .unwrap();
        assert!(!v.passes && v.prune);
    }
}
