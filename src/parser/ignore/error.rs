//! Errors of the `.dockerignore` reader and matcher.
//!
//! One enum for the module ([`Error`]) plus [`PatternErrorKind`], which says what is wrong
//! with one pattern. Pattern errors arise in two phases, as in BuildKit: syntax errors
//! (Go `filepath.Match` rules) when the matcher is built, and errors of the generated
//! regular expression (e.g. a reversed range such as `[z-a]`) the first time the
//! pattern is used to match.

use std::fmt;

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong while reading ignore patterns or matching paths against them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A pattern that is only `!`: an exception of nothing.
    #[error("illegal exclusion pattern \"!\"")]
    BareExclusion,
    /// A pattern that cannot be used. `pattern` is the cleaned pattern without its `!`.
    #[error("bad pattern `{pattern}`: {kind}")]
    BadPattern {
        /// The offending pattern as cleaned by the matcher.
        pattern: String,
        /// What is wrong with it.
        kind: PatternErrorKind,
    },
    /// A non-comment line of an ignore file that is not UTF-8.
    #[error("line {line} is not valid UTF-8")]
    InvalidUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// A [`MatchInfo`](super::MatchInfo) from a different matcher was passed in.
    #[error("parent match info has {actual} entries but the matcher has {expected} patterns")]
    MatchInfoMismatch {
        /// Number of patterns of the matcher.
        expected: usize,
        /// Number of entries in the info that was passed.
        actual: usize,
    },
}

/// Why a single pattern is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternErrorKind {
    /// A `\` with nothing after it.
    TrailingBackslash,
    /// A `[` class that is not closed.
    UnterminatedClass,
    /// A `-` or `]` where a class member was expected (e.g. `[-a]`, `[a-]`, `[]a]`).
    MisplacedInClass {
        /// The character found.
        ch: char,
    },
    /// A class range whose end comes before its start (`[z-a]`), rejected at match time.
    ReversedRange {
        /// Start of the range.
        lo: char,
        /// End of the range.
        hi: char,
    },
    /// An unknown named class such as `[[:foo:]]` or `\pX`, rejected at match time.
    UnknownClass {
        /// The class as written.
        name: String,
    },
    /// An escape that BuildKit's regular expression engine rejects (e.g. `\y`, `\é`).
    InvalidEscape {
        /// The escape as written.
        escape: String,
    },
    /// Unbalanced parentheses in the generated expression. A validated pattern cannot
    /// produce this; the variant keeps the expression parser total.
    UnbalancedGroup,
    /// A repetition with nothing to repeat, or a repeated repetition. Like
    /// [`PatternErrorKind::UnbalancedGroup`], unreachable from validated patterns.
    MisplacedRepeat,
    /// Alternation or a `(?` group in the generated expression; unreachable from
    /// validated patterns.
    UnsupportedSyntax {
        /// The construct found.
        construct: char,
    },
}

impl fmt::Display for PatternErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TrailingBackslash => write!(f, "trailing backslash"),
            Self::UnterminatedClass => write!(f, "unterminated character class"),
            Self::MisplacedInClass { ch } => write!(f, "misplaced `{ch}` in character class"),
            Self::ReversedRange { lo, hi } => write!(f, "invalid character range `{lo}-{hi}`"),
            Self::UnknownClass { name } => write!(f, "unknown character class `{name}`"),
            Self::InvalidEscape { escape } => write!(f, "invalid escape `{escape}`"),
            Self::UnbalancedGroup => write!(f, "unbalanced parentheses"),
            Self::MisplacedRepeat => write!(f, "misplaced repetition operator"),
            Self::UnsupportedSyntax { construct } => write!(f, "unsupported `{construct}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_pattern() {
        let e = Error::BadPattern {
            pattern: "a[".into(),
            kind: PatternErrorKind::UnterminatedClass,
        };
        assert_eq!(
            e.to_string(),
            "bad pattern `a[`: unterminated character class"
        );
        assert_eq!(
            Error::BareExclusion.to_string(),
            "illegal exclusion pattern \"!\""
        );
    }
}
