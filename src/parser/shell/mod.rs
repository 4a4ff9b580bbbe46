//! BuildKit-compatible shell-word expansion (BuildKit's `frontend/dockerfile/shell`).
//!
//! Owns turning one Dockerfile word into its expanded text or its list of words: quotes,
//! escapes, `$NAME` and `${NAME…}` parameter expansion with BuildKit's operators, and the
//! variables referenced along the way (for the linter). It does not decide which words are
//! expanded, nor where the variables come from: that is the instruction layer's job, which
//! passes an [`EnvGetter`] (usually an [`EnvList`]).
//!
//! The contract is BuildKit's behaviour, corners included, as pinned by the conformance
//! vectors in `shared/conformance/shell/`. The few deliberate differences are listed where
//! they live: a nesting limit ([`MAX_NESTING`]), clearer messages where BuildKit prints
//! U+FFFD ([`Error`]), and per-scan word buffers (`lex.rs`).
//!
//! Layout: `lex.rs` scans quotes and escapes and splits words, `param.rs` expands what
//! follows `$`, [`pattern`] parses and matches `#`/`%`/`/` patterns, [`transform`] applies
//! them to values, `env.rs` holds the variables, `chars.rs` has Go's character classes.
//!
//! Invariant: expansion is total. Every input string, escape token and option combination
//! gives `Ok` or an [`Error`]; nothing panics (checked by a property test).

use std::collections::BTreeSet;

mod chars;
mod env;
mod error;
mod lex;
mod param;
pub mod pattern;
pub mod transform;

#[cfg(test)]
mod proptests;

pub use env::{EnvGetter, EnvList};
pub use error::{Error, PatternError, Quote, Result};

/// How many `${…}` may be open inside one another. BuildKit has no limit; this one keeps
/// hostile input from overflowing the stack and is far above what Dockerfiles use.
pub const MAX_NESTING: usize = 100;

/// A word expander, BuildKit's `shell.Lex`.
///
/// The options default to off, which is how Dockerfile instructions expand words.
///
/// ```
/// use rbuild::parser::shell::{EnvList, Lex};
///
/// let env = EnvList::from_slice(&["NAME=world", "GREETING=hello  there"]);
/// let lex = Lex::new('\\');
/// assert_eq!(lex.process_word("${NAME:-x}!", &env)?, "world!");
/// assert_eq!(lex.process_words("$GREETING '$NAME'", &env)?, ["hello", "there", "$NAME"]);
/// # Ok::<(), rbuild::parser::shell::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lex {
    /// The escape token: `\` by default, `` ` `` after `# escape=```. Any character is
    /// accepted; the Dockerfile parser only ever passes those two.
    pub escape: char,
    /// Keep the quote characters in the result instead of removing them.
    pub raw_quotes: bool,
    /// Keep the escape token in the result (it still protects the next character).
    /// As in BuildKit, the words of `${V:-w}`-style operators always drop it and the
    /// patterns and replacements of `#`, `%` and `/` always keep it.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written (`$X`, `${X:-w}` with `w` expanded)
    /// instead of expanding them.
    pub skip_unset_env: bool,
    /// Treat `'` and `"` as ordinary characters.
    pub skip_process_quotes: bool,
}

/// Everything one expansion produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessWordResult {
    /// The word expanded, without splitting.
    pub result: String,
    /// The word expanded and split on unquoted whitespace.
    pub words: Vec<String>,
    /// Referenced variables that are set.
    pub matched: BTreeSet<String>,
    /// Referenced variables that are not set.
    pub unmatched: BTreeSet<String>,
}

impl Lex {
    /// An expander with escape token `escape` and all options off.
    ///
    /// Options are set on the fields: `Lex { raw_quotes: true, ..Lex::new('\\') }`.
    pub fn new(escape: char) -> Self {
        Lex {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }

    /// Expands `word` as one word: quotes removed, no splitting.
    pub fn process_word<E: EnvGetter + ?Sized>(&self, word: &str, env: &E) -> Result<String> {
        lex::expand(self, word, env).map(|e| e.result)
    }

    /// Expands `word` and splits the result into words on whitespace that is neither
    /// quoted nor escaped; empty words are dropped.
    pub fn process_words<E: EnvGetter + ?Sized>(&self, word: &str, env: &E) -> Result<Vec<String>> {
        lex::expand(self, word, env).map(|e| e.words)
    }

    /// Expands `word` and reports both forms and the variables it referenced.
    pub fn process_word_with_matches<E: EnvGetter + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<ProcessWordResult> {
        lex::expand(self, word, env).map(|e| ProcessWordResult {
            result: e.result,
            words: e.words,
            matched: e.matched,
            unmatched: e.unmatched,
        })
    }
}

impl Default for Lex {
    /// `Lex::new('\\')`.
    fn default() -> Self {
        Lex::new('\\')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> EnvList {
        EnvList::from_slice(&["PWD=/home", "E=", "P=#*x", "V=xxyy", "S=a b"])
    }

    fn word(input: &str) -> Result<String> {
        Lex::default().process_word(input, &env())
    }

    #[test]
    fn expands_parameters() {
        assert_eq!(word("he$PWD").unwrap(), "he/home");
        assert_eq!(word("${PWD:+[$PWD]}").unwrap(), "[/home]");
        assert_eq!(word("${E:-d} ${E-d} ${U:-${PWD}}").unwrap(), "d  /home");
        assert_eq!(word("$12a ${#} $@x $").unwrap(), "a  x $");
        assert_eq!(word("${V#$P}").unwrap(), "yy");
        assert_eq!(word("${V%y} ${V/x/-} ${V//x/-}").unwrap(), "xxy -xyy --yy");
    }

    #[test]
    fn reports_references() {
        let out = Lex::default()
            .process_word_with_matches("$PWD ${U:-$E} ${N?}x", &EnvList::from_slice(&["N"]))
            .unwrap();
        assert_eq!(out.result, "  x");
        assert_eq!(out.words, ["x"]);
        assert_eq!(Vec::from_iter(out.matched), ["N"]);
        assert_eq!(Vec::from_iter(out.unmatched), ["E", "PWD", "U"]);
    }

    #[test]
    fn errors_name_the_problem() {
        let msg = |input: &str| word(input).map_err(|e| e.to_string()).unwrap_err();
        assert_eq!(
            msg("${U?must be set}"),
            r#"failed to process "${U?must be set}": U: must be set"#
        );
        assert!(msg("${E:?}").ends_with("E: is not allowed to be empty"));
        assert!(msg("${U?}").ends_with("U: is not allowed to be unset"));
        assert!(msg("${PWD:=x}").ends_with("unsupported modifier (:=) in substitution"));
        assert!(msg("${V:#x}").ends_with("unsupported modifier (:#) in substitution"));
        assert!(msg("${}").ends_with("syntax error: bad substitution"));
        assert!(msg("${PWD").ends_with("syntax error: missing '}'"));
        assert!(msg("${PWD/x").ends_with("syntax error: missing '/' in ${}"));
        assert!(msg("'x").ends_with("matching single-quote"));
        assert!(msg("\"x").ends_with("matching double-quote"));
        assert!(
            msg(r"${V%\x}").ends_with(r"invalid pattern (\x) in substitution: invalid escape '\x'")
        );
        // With the backtick escape, `\` reaches the pattern unprotected.
        let backtick = Lex::new('`').process_word(r"${V#a\}", &env());
        assert!(matches!(
            backtick,
            Err(Error::InvalidPattern {
                source: PatternError::TrailingEscape,
                ..
            })
        ));
    }

    #[test]
    fn word_errors_win_over_unused_words() {
        // The word is expanded even though `PWD` is set and it is not used.
        assert!(matches!(
            word("${PWD:-${U?no}}"),
            Err(Error::Required { .. })
        ));
        // At the end of input, an inner error becomes the missing brace.
        assert!(matches!(
            word("${PWD:-${U?no}"),
            Err(Error::MissingBrace { .. })
        ));
    }

    #[test]
    fn skip_unset_env_writes_references_back() {
        let lex = Lex {
            skip_unset_env: true,
            ..Lex::default()
        };
        let out = |w: &str| lex.process_word(w, &env()).unwrap();
        assert_eq!(out("$U ${U} $PWD"), "$U ${U} /home");
        assert_eq!(out("${U:-$PWD} ${U//a/$PWD}"), "${U:-/home} ${U/a//home}");
        assert_eq!(out("${U:?x}"), "${U:?x}");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| "${U:-".repeat(n) + "x" + &"}".repeat(n);
        assert_eq!(word(&deep(MAX_NESTING)).unwrap(), "x");
        assert!(matches!(
            word(&deep(MAX_NESTING + 1)),
            Err(Error::NestingTooDeep { .. })
        ));
        assert!(word(&"\"${U:-".repeat(10_000)).is_err());
    }

    #[test]
    fn utf8_words() {
        let env = EnvList::from_slice(&["K=한국어"]);
        let lex = Lex::default();
        assert_eq!(lex.process_word("안녕$K", &env).unwrap(), "안녕한국어");
        assert_eq!(lex.process_word("${K#한}", &env).unwrap(), "국어");
        assert_eq!(lex.process_word("${K%?}", &env).unwrap(), "한국");
        assert_eq!(lex.process_word("${K/국/-}", &env).unwrap(), "한-어");
    }
}
