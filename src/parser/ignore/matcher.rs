//! The pattern list: BuildKit's "parents" matching, its incremental form for walks, the
//! directory-pruning test and the deprecated legacy matcher.
//!
//! Semantics (moby/patternmatcher `MatchesOrParentMatches`): start unmatched; go through
//! the patterns in order, skipping a pattern whose polarity cannot change the current
//! answer (an exception while unmatched, a normal pattern while matched); a pattern hits
//! when it matches the path or any parent prefix of it; a hit sets the answer to "matched"
//! for a normal pattern and "not matched" for an exception. A pattern whose expression is
//! invalid fails the match only when it is actually consulted.
//!
//! Invariant of the incremental API: for a clean relative path and a parent info that was
//! computed for its parent directory (itself chained the same way from the top),
//! [`IgnoreMatcher::matches_with_parent`] returns exactly what
//! [`IgnoreMatcher::matches`] returns, errors included. Unlike upstream's
//! `MatchesUsingParentResults`, it records a hit for *every* pattern, consulted or not,
//! which is what makes the two agree.

use super::error::{Error, Result};
use super::path::{clean, dir, leading_components, parent_prefixes};
use super::pattern::Pattern;

/// A compiled `.dockerignore` (or include) pattern list.
///
/// ```
/// use rbuild::parser::ignore::IgnoreMatcher;
///
/// let m = IgnoreMatcher::new(["node_modules", "!node_modules/keep"])?;
/// assert!(m.matches("node_modules/x/y.js")?);
/// assert!(!m.matches("node_modules/keep/a")?);
/// # Ok::<(), rbuild::parser::ignore::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

/// Per-pattern results for one directory, handed to its children by a walk.
///
/// Entry `i` records whether pattern `i` matched the directory or any of its ancestors.
/// The default value means "nothing known", and makes the matcher check every parent
/// prefix itself (use it for entries at the top of the walk).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    hits: Vec<bool>,
}

impl IgnoreMatcher {
    /// Builds a matcher; blank entries are dropped. Fails on a bare `!` or on a pattern
    /// that is not valid Go `filepath.Match` syntax.
    pub fn new<I>(patterns: I) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut compiled = Vec::new();
        for raw in patterns {
            compiled.extend(Pattern::parse(raw.as_ref())?);
        }
        Ok(IgnoreMatcher { patterns: compiled })
    }

    /// The active patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is a `!` exception.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(Pattern::is_exclusion)
    }

    /// Whether there are no active patterns (such a matcher matches nothing).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (`/`-separated, relative to the context) is matched, counting a match
    /// of any parent directory (BuildKit's `MatchesOrParentMatches`).
    pub fn matches(&self, path: &str) -> Result<bool> {
        let parents = parent_prefixes(path);
        self.fold(|_, pattern| pattern.hits(path, &parents))
    }

    /// Like [`matches`](Self::matches), reusing the results of `path`'s parent directory
    /// so that a walk matches each path once per pattern instead of once per prefix.
    /// Returns the answer and the info to pass to `path`'s children.
    pub fn matches_with_parent(&self, path: &str, parent: &MatchInfo) -> Result<(bool, MatchInfo)> {
        let known = !parent.hits.is_empty();
        if known && parent.hits.len() != self.patterns.len() {
            return Err(Error::MatchInfoMismatch {
                expected: self.patterns.len(),
                actual: parent.hits.len(),
            });
        }
        let parents = if known {
            Vec::new()
        } else {
            parent_prefixes(path)
        };
        let hits: Vec<bool> = self
            .patterns
            .iter()
            .enumerate()
            .map(|(i, pattern)| {
                // An unusable pattern yields `false` here and fails in the fold below.
                parent.hits.get(i).copied().unwrap_or(false)
                    || pattern.hits(path, &parents).unwrap_or(false)
            })
            .collect();
        let matched = self.fold(|i, pattern| {
            pattern.check()?;
            Ok(hits.get(i).copied().unwrap_or(false))
        })?;
        Ok((matched, MatchInfo { hits }))
    }

    /// For a directory that [`matches`](Self::matches) reported as matched: `true` only
    /// when every path below it is matched too, so an excluded directory can be skipped
    /// without being read. It is `false` as soon as some exception could match a path
    /// `dir/…` (e.g. `!dir/sub/file`) or is unusable.
    pub fn can_skip_excluded_dir(&self, dir: &str) -> bool {
        self.nothing_below(dir, true)
    }

    /// For a directory that [`matches`](Self::matches) reported as not matched: `true`
    /// only when no path below it is matched either, so a directory outside an include
    /// list can be skipped.
    pub fn can_skip_unmatched_dir(&self, dir: &str) -> bool {
        self.nothing_below(dir, false)
    }

    /// No pattern of the given polarity can match below `dir`. Then a path below `dir`
    /// gets the same hits as `dir` from that polarity and at least as many from the other,
    /// so the last hit (which decides) keeps `dir`'s answer, and no unusable pattern is
    /// consulted that was not consulted for `dir`.
    fn nothing_below(&self, dir: &str, exclusion: bool) -> bool {
        !self
            .patterns
            .iter()
            .filter(|p| p.is_exclusion() == exclusion)
            .any(|p| p.may_match_below(dir))
    }

    /// The ordered fold shared by every matching entry point: `hit` is asked only for
    /// the patterns that can change the answer.
    fn fold(&self, mut hit: impl FnMut(usize, &Pattern) -> Result<bool>) -> Result<bool> {
        let mut matched = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            if pattern.is_exclusion() != matched {
                continue;
            }
            if hit(i, pattern)? {
                matched = !pattern.is_exclusion();
            }
        }
        Ok(matched)
    }
}

/// The deprecated package-level `Matches(path, patterns)` of moby/patternmatcher: the path
/// is cleaned, `.` never matches, and only the one parent prefix with as many components
/// as the pattern is checked. Kept for conformance with the upstream test vectors; use
/// [`IgnoreMatcher::matches`].
pub fn legacy_matches<I>(path: &str, patterns: I) -> Result<bool>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let matcher = IgnoreMatcher::new(patterns)?;
    let path = clean(path);
    if path == "." {
        return Ok(false);
    }
    let parent = dir(&path);
    matcher.fold(|_, pattern| {
        if pattern.is_match(&path)? {
            return Ok(true);
        }
        if parent == "." {
            return Ok(false);
        }
        let prefix = leading_components(&parent, pattern.components());
        Ok(prefix.is_some_and(|p| pattern.is_match(p).unwrap_or(false)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str]) -> IgnoreMatcher {
        IgnoreMatcher::new(patterns).unwrap()
    }

    #[test]
    fn later_patterns_win() {
        let matcher = m(&["**", "!util/docker/web", "util/docker/web/foo"]);
        assert!(matcher.matches("util/docker/web/foo").unwrap());
        assert!(!matcher.matches("util/docker/web/bar").unwrap());
        assert!(matcher.has_exclusions());
    }

    #[test]
    fn incremental_records_skipped_patterns() {
        // Upstream's incremental API says `true` here while the full matcher says `false`.
        let matcher = m(&["a/b", "!a"]);
        let (_, info) = matcher
            .matches_with_parent("a", &MatchInfo::default())
            .unwrap();
        let (hit, _) = matcher.matches_with_parent("a/b", &info).unwrap();
        assert_eq!(hit, matcher.matches("a/b").unwrap());
        assert!(!hit);
    }

    #[test]
    fn mismatched_info_is_an_error() {
        let info = m(&["a"])
            .matches_with_parent("a", &MatchInfo::default())
            .unwrap()
            .1;
        let err = m(&["a", "b"])
            .matches_with_parent("a/x", &info)
            .unwrap_err();
        assert_eq!(
            err,
            Error::MatchInfoMismatch {
                expected: 2,
                actual: 1
            }
        );
    }

    #[test]
    fn bad_patterns_fail_only_when_consulted() {
        let matcher = m(&["x", "![z-a]"]);
        assert!(!matcher.matches("y").unwrap());
        assert!(matcher.matches("x").is_err());
    }

    #[test]
    fn pruning_is_exact_for_exceptions() {
        let matcher = m(&["dir", "!dir/sub/file"]);
        assert!(!matcher.can_skip_excluded_dir("dir"));
        assert!(!matcher.can_skip_excluded_dir("dir/sub"));
        assert!(matcher.can_skip_excluded_dir("dir/other"));
        assert!(m(&["**/bar"]).can_skip_excluded_dir("foo/bar"));
        assert!(!m(&["x", "![z-a]"]).can_skip_excluded_dir("x"));
        assert!(m(&["foo", "!**/bar"]).can_skip_unmatched_dir("foo/bar"));
        assert!(!m(&["bar/foo"]).can_skip_unmatched_dir("bar"));
    }

    #[test]
    fn legacy_checks_one_parent() {
        assert!(legacy_matches("ab/c", ["a*"]).unwrap());
        assert!(!legacy_matches("a/c/b", ["a*/b"]).unwrap());
        assert!(!legacy_matches(".", ["*.go"]).unwrap());
        assert!(legacy_matches("x", ["["]).is_err());
    }
}
