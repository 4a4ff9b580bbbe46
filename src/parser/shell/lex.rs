//! The word scanner: quotes, escapes and word splitting around `$` expansions.
//!
//! Owns the walk over one word, mirroring BuildKit's `processStopOn`, `processSingleQuote`
//! and `processDoubleQuote`; the `$` forms are in [`super::param`]. The scanner reads
//! characters, never bytes, so any `&str` is handled without slicing inside a character.
//!
//! Rules kept from BuildKit:
//!
//! * Outside quotes the escape token makes the next character literal and is removed (kept
//!   too with `raw_escapes`); at the end of the word it is dropped.
//! * Inside `"…"` the escape token only escapes `"`, `$` and itself; before anything else
//!   it stays. With raw escapes that stay-case writes it twice, as BuildKit does.
//! * Inside `'…'` nothing is special.
//! * Word splitting happens only on whitespace that is unquoted and unescaped: literal
//!   text and the results of `$` expansions. Quoted results and escaped characters join
//!   the current word. Empty words are dropped (`""` alone gives no word).
//! * A leading U+FEFF is skipped, as Go's `text/scanner` does.
//!
//! One BuildKit behaviour is deliberately not copied: BuildKit shares one word buffer
//! between nested `${…}` scans, so `process_words("ab${X:-c}d")` loses `ab`. Here every
//! scan has its own buffer and the result is `["abcd"]`.

use std::collections::BTreeSet;

use super::chars::is_space;
use super::env::EnvGetter;
use super::error::{Error, Quote, Result};
use super::Lex;

/// A character cursor over the word.
#[derive(Debug, Clone)]
pub(super) struct Scanner<'a> {
    rest: &'a str,
}

impl<'a> Scanner<'a> {
    fn new(word: &'a str) -> Self {
        Scanner {
            rest: word.strip_prefix('\u{feff}').unwrap_or(word),
        }
    }

    /// The next character, without consuming it.
    pub(super) fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    /// Consumes and returns the next character.
    pub(super) fn next(&mut self) -> Option<char> {
        let mut chars = self.rest.chars();
        let c = chars.next();
        self.rest = chars.as_str();
        c
    }

    /// Whether the whole word has been read.
    pub(super) fn at_end(&self) -> bool {
        self.rest.is_empty()
    }
}

/// Collects the words of `process_words`.
#[derive(Debug, Default)]
pub(super) struct Words {
    done: Vec<String>,
    current: String,
}

impl Words {
    /// Adds unquoted text: whitespace ends the current word.
    fn push_splitting(&mut self, text: &str) {
        for c in text.chars() {
            if is_space(c) {
                self.flush();
            } else {
                self.current.push(c);
            }
        }
    }

    /// Adds quoted or escaped text to the current word.
    fn push_raw(&mut self, text: &str) {
        self.current.push_str(text);
    }

    fn push_raw_char(&mut self, c: char) {
        self.current.push(c);
    }

    fn flush(&mut self) {
        if !self.current.is_empty() {
            self.done.push(std::mem::take(&mut self.current));
        }
    }

    pub(super) fn finish(mut self) -> Vec<String> {
        self.flush();
        self.done
    }
}

/// The state of one expansion.
pub(super) struct Expander<'a, E: ?Sized> {
    pub(super) lex: &'a Lex,
    /// The whole word, for error messages.
    pub(super) src: &'a str,
    pub(super) scan: Scanner<'a>,
    pub(super) env: &'a E,
    /// How many `${…}` are open, bounded by [`super::MAX_NESTING`].
    pub(super) depth: usize,
    pub(super) matched: BTreeSet<String>,
    pub(super) unmatched: BTreeSet<String>,
}

/// What one expansion produced.
pub(super) struct Expansion {
    pub(super) result: String,
    pub(super) words: Vec<String>,
    pub(super) matched: BTreeSet<String>,
    pub(super) unmatched: BTreeSet<String>,
}

/// Expands `word` completely.
pub(super) fn expand<E: EnvGetter + ?Sized>(lex: &Lex, word: &str, env: &E) -> Result<Expansion> {
    let mut expander = Expander {
        lex,
        src: word,
        scan: Scanner::new(word),
        env,
        depth: 0,
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
    };
    let (result, words) = expander.scan_until(None, lex.raw_escapes)?;
    Ok(Expansion {
        result,
        words: words.finish(),
        matched: expander.matched,
        unmatched: expander.unmatched,
    })
}

impl<'a, E: EnvGetter + ?Sized> Expander<'a, E> {
    /// Scans up to and including `stop` (or to the end of the word when `stop` is `None`),
    /// returning the expanded text and its words.
    ///
    /// Running out of input before `stop` is [`Error::MissingBrace`] (`}`) or
    /// [`Error::MissingSlash`] (`/`), the errors BuildKit reports for it.
    pub(super) fn scan_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Words)> {
        let mut result = String::new();
        let mut words = Words::default();
        let process_quotes = !self.lex.skip_process_quotes;
        while let Some(c) = self.scan.peek() {
            if Some(c) == stop {
                self.scan.next();
                return Ok((result, words));
            }
            match c {
                '$' => {
                    self.scan.next();
                    let value = self.dollar()?;
                    words.push_splitting(&value);
                    result.push_str(&value);
                }
                '\'' if process_quotes => {
                    let text = self.single_quote()?;
                    words.push_raw(&text);
                    result.push_str(&text);
                }
                '"' if process_quotes => {
                    let text = self.double_quote(raw_escapes)?;
                    words.push_raw(&text);
                    result.push_str(&text);
                }
                _ => {
                    self.scan.next();
                    if c != self.lex.escape {
                        words.push_splitting(c.encode_utf8(&mut [0; 4]));
                        result.push(c);
                        continue;
                    }
                    if raw_escapes {
                        words.push_raw_char(c);
                        result.push(c);
                    }
                    let Some(escaped) = self.scan.next() else {
                        break;
                    };
                    words.push_raw_char(escaped);
                    result.push(escaped);
                }
            }
        }
        match stop {
            None => Ok((result, words)),
            Some('/') => Err(Error::MissingSlash {
                word: self.src.to_owned(),
            }),
            Some(_) => Err(self.missing_brace()),
        }
    }

    /// `'…'`, starting at the opening quote: everything up to the next `'` is literal.
    fn single_quote(&mut self) -> Result<String> {
        let mut out = String::new();
        self.scan.next();
        if self.lex.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.scan.next() {
                None => return Err(self.unterminated(Quote::Single)),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// `"…"`, starting at the opening quote: `$` expands, the escape token escapes `"`,
    /// `$` and itself.
    fn double_quote(&mut self, raw_escapes: bool) -> Result<String> {
        let escape = self.lex.escape;
        let mut out = String::new();
        self.scan.next();
        if self.lex.raw_quotes {
            out.push('"');
        }
        loop {
            match self.scan.next() {
                None => return Err(self.unterminated(Quote::Double)),
                Some('"') => {
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(c) if c == escape => {
                    if raw_escapes {
                        out.push(c);
                    }
                    match self.scan.peek() {
                        // Dropped; the loop then reports the open quote.
                        None => {}
                        Some(next) if next == '"' || next == '$' || next == escape => {
                            self.scan.next();
                            out.push(next);
                        }
                        Some(_) => out.push(c),
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn unterminated(&self, quote: Quote) -> Error {
        Error::UnterminatedQuote {
            word: self.src.to_owned(),
            quote,
        }
    }

    pub(super) fn missing_brace(&self) -> Error {
        Error::MissingBrace {
            word: self.src.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::shell::EnvList;

    fn words(lex: &Lex, word: &str) -> Vec<String> {
        let env = EnvList::from_slice(&["S=a  b", "E="]);
        expand(lex, word, &env).map(|e| e.words).unwrap_or_default()
    }

    #[test]
    fn splitting_only_on_unquoted_whitespace() {
        let lex = Lex::new('\\');
        assert_eq!(words(&lex, "x$S y"), ["xa", "b", "y"]);
        assert_eq!(words(&lex, "x\"$S\" y"), ["xa  b", "y"]);
        assert_eq!(words(&lex, "a\\ b"), ["a b"]);
        assert_eq!(words(&lex, "a \"\" $E b"), ["a", "b"]);
        assert_eq!(words(&lex, "ab${X:-c}d"), ["abcd"]);
        assert_eq!(words(&lex, "a${X:-b c}d"), ["ab", "cd"]);
    }

    #[test]
    fn raw_quotes_and_escapes() {
        let env = EnvList::new();
        let lex = Lex {
            raw_quotes: true,
            raw_escapes: true,
            ..Lex::new('\\')
        };
        let out = |w: &str| expand(&lex, w, &env).map(|e| e.result);
        assert_eq!(out(r#"'a'"b"\c"#).unwrap(), r#"'a'"b"\c"#);
        // BuildKit writes an escape that escapes nothing twice inside "…" in raw mode.
        assert_eq!(out(r#""\x""#).unwrap(), r#""\\x""#);
        assert_eq!(out(r#""\$""#).unwrap(), r#""\$""#);
    }

    #[test]
    fn skip_process_quotes_keeps_quotes_literal() {
        let lex = Lex {
            skip_process_quotes: true,
            ..Lex::new('\\')
        };
        assert_eq!(words(&lex, "'a b"), ["'a", "b"]);
    }

    #[test]
    fn backtick_escape() {
        let lex = Lex::new('`');
        let env = EnvList::new();
        let out = |w: &str| expand(&lex, w, &env).map(|e| e.result);
        assert_eq!(out(r"a`$b\c").unwrap(), r"a$b\c");
        assert_eq!(out(r#""`"`x""#).unwrap(), r#""`x"#);
    }

    #[test]
    fn leading_bom_is_skipped() {
        let env = EnvList::new();
        let out = expand(&Lex::new('\\'), "\u{feff}a\u{feff}", &env).map(|e| e.result);
        assert_eq!(out.unwrap(), "a\u{feff}");
    }
}
