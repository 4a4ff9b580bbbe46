//! `.dockerignore` patterns: reading the file, compiling the patterns and matching
//! `/`-separated context paths with BuildKit's semantics. No filesystem access: the
//! build-context walk that uses this lives in [`crate::context`].
//!
//! * [`read_all`] turns the file's bytes into a pattern list.
//! * [`IgnoreMatcher::new`] compiles a list: trim, Go `filepath.Clean`, `!` exceptions,
//!   syntax checked with Go `filepath.Match` rules.
//! * [`IgnoreMatcher::matches`] answers with the "parents" rule (a pattern that matches a
//!   parent directory matches everything below it; the last hit wins);
//!   [`IgnoreMatcher::matches_with_parent`] is the same answer computed incrementally
//!   during a walk; [`IgnoreMatcher::can_skip_excluded_dir`] tells when a walk may skip
//!   an excluded directory without reading it.
//! * [`legacy_matches`] is upstream's deprecated one-parent matcher, for its test vectors.
//!
//! # Why a hand-written engine
//!
//! BuildKit (moby/patternmatcher) does not implement glob semantics directly: it turns
//! each pattern into an exact, prefix or suffix string test or into a Go regular
//! expression, and what users observe is that translation. `**file` is a suffix test
//! (it matches `xfile`), `abc**` a prefix test, `\d` is a digit, `[a*]` means something
//! quite unlike `filepath.Match`, `[z-a]` is accepted when the list is built but fails
//! every match, `{a,b}` is literal. To reproduce this exactly rbuild performs the same
//! translation (module `translate`), parses the resulting RE2 text with Go's rules
//! (module `re2`) and runs it on a small NFA (module `nfa`).
//!
//! * `globset` was rejected: it treats `{a,b}` as alternation and `[!a]` as negation,
//!   has its own `**` rules and knows nothing of the prefix/suffix quirks or the
//!   deferred range errors; patching around that is a second matcher anyway.
//! * Handing the translated text to the `regex` crate was rejected: Rust's class syntax
//!   differs from Go's (nested `[…]`, `&&`/`--`, Unicode `\d`/`\w`/`\s`), so the text
//!   would need a Go-to-Rust rewrite, and the directory-pruning question ("can this
//!   pattern match anything below `dir/`?") needs access to the automaton, which a regex
//!   library does not give. The NFA answers it exactly enough to be safe.

mod class;
mod error;
mod file;
mod matcher;
mod nfa;
mod path;
mod pattern;
mod re2;
mod syntax;
mod translate;

#[cfg(test)]
mod proptests;

pub use error::{Error, PatternErrorKind, Result};
pub use file::read_all;
pub use matcher::{legacy_matches, IgnoreMatcher, MatchInfo};
pub use path::clean as go_clean;
pub use pattern::Pattern;
pub use translate::MatchType;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_to_matcher_end_to_end() {
        let patterns = read_all(b"# build output\n/target\n*.log\n!keep.log\n").unwrap();
        let matcher = IgnoreMatcher::new(&patterns).unwrap();
        assert!(matcher.matches("target/debug/x").unwrap());
        assert!(matcher.matches("a.log").unwrap());
        assert!(!matcher.matches("keep.log").unwrap());
        assert!(
            !matcher.matches("sub/a.log").unwrap(),
            "`*` does not cross `/`"
        );
        assert_eq!(
            matcher.patterns()[1].match_type().unwrap(),
            MatchType::Regexp
        );
    }
}
