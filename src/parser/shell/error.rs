//! Errors of shell-word expansion.
//!
//! Owns [`Error`], the one error type of the module, and [`PatternError`], the reason a
//! `${V#p}`, `${V%p}` or `${V/p/r}` pattern is rejected. Every [`Error`] variant carries the
//! word being expanded, and its message reads like BuildKit's
//! (`failed to process "<word>": <reason>`), so users moving from `docker build` see the
//! errors they know. Where BuildKit's message is meaningless (it prints U+FFFD for "end of
//! input"), the variant says what happened instead; those spots are marked below.

use std::fmt;

/// Result of an expansion.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which quote was left open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// `'…`
    Single,
    /// `"…`
    Double,
}

impl fmt::Display for Quote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quote::Single => "single-quote",
            Quote::Double => "double-quote",
        })
    }
}

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A `'` or `"` quote is not closed before the end of the word.
    #[error("failed to process {word:?}: unexpected end of statement while looking for matching {quote}")]
    UnterminatedQuote {
        /// The word being expanded.
        word: String,
        /// The quote that was left open.
        quote: Quote,
    },
    /// A `${` is not closed by `}` before the end of the word.
    ///
    /// Also used for `${NAME` followed directly by the end of the word, where BuildKit says
    /// `unsupported modifier (\u{FFFD}) in substitution`.
    #[error("failed to process {word:?}: syntax error: missing '}}'")]
    MissingBrace {
        /// The word being expanded.
        word: String,
    },
    /// The pattern of `${V/pattern/replacement}` is not closed by `/`.
    #[error("failed to process {word:?}: syntax error: missing '/' in ${{}}")]
    MissingSlash {
        /// The word being expanded.
        word: String,
    },
    /// `${}`, `${{…}`, `${:…}`: a brace expression without a parameter name.
    #[error("failed to process {word:?}: syntax error: bad substitution")]
    BadSubstitution {
        /// The word being expanded.
        word: String,
    },
    /// `${V<op>…}` with an operator BuildKit does not support, such as `:=`, `=` or `:#`.
    #[error("failed to process {word:?}: unsupported modifier ({modifier}) in substitution")]
    UnsupportedModifier {
        /// The word being expanded.
        word: String,
        /// The operator as written, e.g. `:=`.
        modifier: String,
    },
    /// `${V?message}` with `V` unset, or `${V:?message}` with `V` unset or empty.
    #[error("failed to process {word:?}: {name}: {message}")]
    Required {
        /// The word being expanded.
        word: String,
        /// The variable that is required.
        name: String,
        /// The expanded message, or BuildKit's default (`is not allowed to be unset` or
        /// `is not allowed to be empty`) when none was given.
        message: String,
    },
    /// The pattern of `${V#p}`, `${V%p}` or `${V/p/r}` is invalid.
    #[error("failed to process {word:?}: invalid pattern ({pattern}) in substitution: {source}")]
    InvalidPattern {
        /// The word being expanded.
        word: String,
        /// The pattern after expansion, as BuildKit prints it (reversed for `%`).
        pattern: String,
        /// What is wrong with it.
        source: PatternError,
    },
    /// Expansions are nested deeper than [`MAX_NESTING`](super::MAX_NESTING).
    ///
    /// BuildKit has no such limit (Go stacks grow); rbuild has one so that no input can
    /// overflow the stack.
    #[error("failed to process {word:?}: expansions nested deeper than {limit} levels")]
    NestingTooDeep {
        /// The word being expanded.
        word: String,
        /// The limit that was exceeded.
        limit: usize,
    },
}

/// Why a shell pattern is invalid.
///
/// Inside a pattern, `\` may only escape `*`, `?` and `\` (or drop itself before `}` and
/// `/`); anything else is rejected, as BuildKit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// `\` followed by a character it cannot escape.
    #[error("invalid escape '\\{0}'")]
    InvalidEscape(char),
    /// `\` at the end of the pattern. BuildKit prints this as `invalid escape '\\\u{FFFD}'`.
    #[error("invalid escape '\\' at end of pattern")]
    TrailingEscape,
}
