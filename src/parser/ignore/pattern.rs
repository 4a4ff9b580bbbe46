//! One `.dockerignore` pattern: cleaned text, polarity, match type and compiled test.
//!
//! Building a pattern follows moby/patternmatcher's `New`: trim, drop if blank, Go
//! `filepath.Clean` (applied *before* the `!` is stripped, so `!/` is a bare `!`), split
//! off the `!`, then check the syntax with `filepath.Match` rules. The generated
//! expression is compiled eagerly, but a failure there is stored and only reported when
//! the pattern is used, because BuildKit accepts such patterns (`[Local-Only]`) and fails
//! at match time.

use super::error::{Error, PatternErrorKind, Result};
use super::nfa::Program;
use super::path::clean;
use super::re2;
use super::syntax::validate;
use super::translate::{translate, MatchType};

/// A single compiled pattern of an [`IgnoreMatcher`](super::IgnoreMatcher).
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    components: usize,
    test: std::result::Result<Test, PatternErrorKind>,
}

/// The compiled form of each match type.
#[derive(Debug, Clone)]
enum Test {
    Exact,
    Prefix,
    Suffix,
    Regexp(Program),
}

impl Pattern {
    /// Builds a pattern from one raw entry; `Ok(None)` for a blank one.
    pub(super) fn parse(raw: &str) -> Result<Option<Self>> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let cleaned = clean(trimmed);
        let (exclusion, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err(Error::BareExclusion),
            Some(rest) => (true, rest.to_owned()),
            None => (false, cleaned),
        };
        validate(&text).map_err(|kind| Error::BadPattern {
            pattern: text.clone(),
            kind,
        })?;
        Ok(Some(Pattern {
            components: text.split('/').count(),
            test: compile(&text),
            text,
            exclusion,
        }))
    }

    /// The cleaned pattern, without its leading `!`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` exception (it re-includes what earlier patterns matched).
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// How the pattern is tested; an error if its generated expression is invalid.
    pub fn match_type(&self) -> Result<MatchType> {
        match &self.test {
            Ok(Test::Exact) => Ok(MatchType::Exact),
            Ok(Test::Prefix) => Ok(MatchType::Prefix),
            Ok(Test::Suffix) => Ok(MatchType::Suffix),
            Ok(Test::Regexp(_)) => Ok(MatchType::Regexp),
            Err(kind) => Err(self.error(kind)),
        }
    }

    /// Whether the pattern matches exactly `path` (no parent-directory rule): BuildKit's
    /// `Pattern.match`.
    pub fn is_match(&self, path: &str) -> Result<bool> {
        let test = self.test.as_ref().map_err(|kind| self.error(kind))?;
        let (bytes, text) = (path.as_bytes(), self.text.as_bytes());
        // Byte-level like Go: the prefix/suffix cuts may split a leading byte-order mark.
        Ok(match test {
            Test::Exact => bytes == text,
            Test::Prefix => bytes.starts_with(&text[..text.len().saturating_sub(2)]),
            Test::Suffix => {
                let suffix = text.get(2..).unwrap_or_default();
                bytes.ends_with(suffix) || (suffix.first() == Some(&b'/') && bytes == &suffix[1..])
            }
            Test::Regexp(program) => program.is_match(path),
        })
    }

    /// Whether the pattern matches `path` or one of `parents` (its parent prefixes).
    /// Only a failure on `path` itself is reported, as upstream does.
    pub(super) fn hits(&self, path: &str, parents: &[String]) -> Result<bool> {
        if self.is_match(path)? {
            return Ok(true);
        }
        Ok(parents.iter().any(|p| self.is_match(p).unwrap_or(false)))
    }

    /// Fails if the pattern is unusable, without matching anything.
    pub(super) fn check(&self) -> Result<()> {
        self.test
            .as_ref()
            .map(|_| ())
            .map_err(|kind| self.error(kind))
    }

    /// Number of `/`-separated components (the legacy matcher's one parent check).
    pub(super) fn components(&self) -> usize {
        self.components
    }

    /// Whether the pattern could match some path strictly below `dir` (`dir/…`).
    /// Over-approximates: `true` whenever that cannot be ruled out, including for an
    /// unusable pattern.
    pub(super) fn may_match_below(&self, dir: &str) -> bool {
        let Ok(test) = &self.test else {
            return true;
        };
        let prefix = format!("{dir}/");
        let (dir, text) = (prefix.as_bytes(), self.text.as_bytes());
        match test {
            Test::Exact => text.len() > dir.len() && text.starts_with(dir),
            Test::Prefix => {
                let stem = &text[..text.len().saturating_sub(2)];
                stem.starts_with(dir) || dir.starts_with(stem)
            }
            // `**…x` matches `dir/…x` for every `dir`.
            Test::Suffix => true,
            Test::Regexp(program) => program.may_match_with_prefix(&prefix),
        }
    }

    fn error(&self, kind: &PatternErrorKind) -> Error {
        Error::BadPattern {
            pattern: self.text.clone(),
            kind: kind.clone(),
        }
    }
}

fn compile(text: &str) -> std::result::Result<Test, PatternErrorKind> {
    let translation = translate(text);
    Ok(match translation.kind {
        MatchType::Exact => Test::Exact,
        MatchType::Prefix => Test::Prefix,
        MatchType::Suffix => Test::Suffix,
        MatchType::Regexp => Test::Regexp(Program::compile(&re2::parse(&translation.regex)?)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(raw: &str) -> Pattern {
        Pattern::parse(raw).unwrap().unwrap()
    }

    #[test]
    fn parse_trims_cleans_and_splits_polarity() {
        assert!(Pattern::parse("   ").unwrap().is_none());
        let p = pattern("  !docs/./README.md/ ");
        assert!(p.is_exclusion());
        assert_eq!(p.text(), "docs/README.md");
        assert_eq!(Pattern::parse("!").unwrap_err(), Error::BareExclusion);
        assert_eq!(Pattern::parse("!/").unwrap_err(), Error::BareExclusion);
        assert!(matches!(
            Pattern::parse("a["),
            Err(Error::BadPattern { .. })
        ));
    }

    #[test]
    fn regex_errors_wait_for_use() {
        let p = pattern("[Local-Only]/");
        assert!(p.is_match("x").is_err());
        assert!(p.match_type().is_err());
        assert!(p.may_match_below("x"));
    }

    #[test]
    fn string_tests() {
        assert!(pattern("**file").is_match("dir/afile").unwrap());
        assert!(pattern("**/dir").is_match("dir").unwrap());
        assert!(!pattern("**/dir").is_match("adir").unwrap());
        assert!(pattern("abc**").is_match("abcd/e").unwrap());
        assert!(!pattern("abc/**").is_match("abc").unwrap());
        assert!(pattern("abc.def").is_match("abc.def").unwrap());
    }

    #[test]
    fn below() {
        assert!(pattern("foo/bar/baz").may_match_below("foo/bar"));
        assert!(!pattern("foo/bar").may_match_below("foo/bar"));
        assert!(!pattern("foo/bar/baz").may_match_below("foo/b"));
        assert!(pattern("fo**").may_match_below("foo/bar"));
        assert!(pattern("foo/bar/**").may_match_below("foo"));
        assert!(!pattern("*.md").may_match_below("node_modules"));
        assert!(pattern("**/*.md").may_match_below("node_modules"));
        assert!(pattern("node_modules/*/keep").may_match_below("node_modules/x"));
    }
}
