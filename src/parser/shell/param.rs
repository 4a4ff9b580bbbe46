//! Parameter expansion: `$NAME`, `${NAME}` and the `${NAME<op>word}` forms.
//!
//! Owns everything after a `$`, mirroring BuildKit's `processDollar` and `processName`.
//! Behaviour kept from BuildKit, including its corners:
//!
//! * Names are a run of letters, digits and `_` (Unicode categories L and Nd). A name that
//!   starts with a digit is all digits (`$12a` is `$12` then `a`); `@ * # ? - $ ! 0` are
//!   one-character special parameters. Positional and special parameters are looked up
//!   like any name, so they expand to `""` unless the environment sets them.
//! * `$` followed by no name is a literal `$`.
//! * The word after an operator is expanded *before* the variable is looked up, even when
//!   it is not used, so its errors surface and its variables are recorded as referenced.
//! * An error inside that word that leaves the scanner at the end of the input is
//!   reported as the missing `}` (or `/`) instead.
//! * `:#`, `:%`, `=`, `:=` and other operators are [`Error::UnsupportedModifier`].
//! * With `skip_unset_env`, an expansion of an unset variable is written back in `${…}`
//!   form with its word expanded (and `${V//p/r}` comes back as `${V/p/r}`).
//! * `${V#p}` is greedy when the *expanded* pattern starts with another `#` (same for
//!   `%`), so `${V#$P}` with `P=#x` means `${V##x}`.

use super::env::EnvGetter;
use super::error::{Error, PatternError, Result};
use super::lex::Expander;
use super::pattern::reverse_pattern;
use super::{chars, transform, MAX_NESTING};

impl<'a, E: EnvGetter + ?Sized> Expander<'a, E> {
    /// Expands what follows a `$` (already consumed).
    pub(super) fn dollar(&mut self) -> Result<String> {
        if self.scan.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value.to_owned(),
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.scan.next();
        if self.depth >= MAX_NESTING {
            return Err(Error::NestingTooDeep {
                word: self.src.to_owned(),
                limit: MAX_NESTING,
            });
        }
        self.depth += 1;
        let value = self.braced();
        self.depth -= 1;
        value
    }

    /// Expands `${…}` after the `{`.
    fn braced(&mut self) -> Result<String> {
        match self.scan.peek() {
            None => return Err(self.missing_brace()),
            Some('{' | '}' | ':') => {
                return Err(Error::BadSubstitution {
                    word: self.src.to_owned(),
                })
            }
            Some(_) => {}
        }
        let name = self.name();
        match self.scan.next() {
            // BuildKit reports `unsupported modifier (\u{FFFD})` here.
            None => Err(self.missing_brace()),
            Some('}') => Ok(match self.lookup(&name) {
                Some(value) => value.to_owned(),
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.scan.next();
                self.modifier(&name, true, op)
            }
            Some(op @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(&name, false, Some(op)),
            Some('/') => self.substitute(&name),
            Some(other) => Err(self.unsupported(other.to_string())),
        }
    }

    /// `${NAME op word}` and `${NAME:op word}` (`colon`), after the operator.
    fn modifier(&mut self, name: &str, colon: bool, op: Option<char>) -> Result<String> {
        let written = format!(
            "{}{}",
            if colon { ":" } else { "" },
            op.map(String::from).unwrap_or_default()
        );
        let is_pattern = matches!(op, Some('#' | '%'));
        if colon && is_pattern {
            return Err(self.unsupported(written));
        }
        let word = self.nested('}', is_pattern)?;
        let value = self.lookup(name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{written}{word}}}"));
        }
        // With `:`, an empty value counts as unset.
        let unset = value.is_none_or(|v| colon && v.is_empty());
        match op {
            Some('-') => Ok(if unset {
                word
            } else {
                value.unwrap_or_default().to_owned()
            }),
            Some('+') => Ok(if unset { String::new() } else { word }),
            Some('?') if unset => {
                let default = if value.is_none() { "unset" } else { "empty" };
                Err(Error::Required {
                    word: self.src.to_owned(),
                    name: name.to_owned(),
                    message: if word.is_empty() {
                        format!("is not allowed to be {default}")
                    } else {
                        word
                    },
                })
            }
            Some('?') => Ok(value.unwrap_or_default().to_owned()),
            Some(op @ ('#' | '%')) => self.trim(value.unwrap_or_default(), &word, op),
            _ => Err(self.unsupported(written)),
        }
    }

    /// `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}` once the pattern is expanded.
    fn trim(&self, value: &str, word: &str, op: char) -> Result<String> {
        let (pattern, greedy) = match word.strip_prefix(op) {
            Some(rest) => (rest, true),
            None => (word, false),
        };
        if op == '%' {
            transform::trim_suffix(value, pattern, greedy)
                .map_err(|e| self.invalid_pattern(&reverse_pattern(pattern), e))
        } else {
            transform::trim_prefix(value, pattern, greedy)
                .map_err(|e| self.invalid_pattern(pattern, e))
        }
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`, after the first `/`.
    fn substitute(&mut self, name: &str) -> Result<String> {
        let all = self.scan.peek() == Some('/');
        if all {
            self.scan.next();
        }
        let pattern = self.nested('/', true)?;
        let replacement = self.nested('}', true)?;
        let value = self.lookup(name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        transform::replace(value.unwrap_or_default(), &pattern, &replacement, all)
            .map_err(|e| self.invalid_pattern(&pattern, e))
    }

    /// Expands the word inside `${…}` up to `stop`. Its words are not needed: the result
    /// is split, if at all, by the caller as the result of the `$` expansion.
    fn nested(&mut self, stop: char, raw_escapes: bool) -> Result<String> {
        match self.scan_until(Some(stop), raw_escapes) {
            Ok((text, _)) => Ok(text),
            Err(_) if self.scan.at_end() && stop == '/' => Err(Error::MissingSlash {
                word: self.src.to_owned(),
            }),
            Err(_) if self.scan.at_end() => Err(self.missing_brace()),
            Err(e) => Err(e),
        }
    }

    /// Reads a parameter name; empty when none starts here.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.scan.peek() {
            Some(c) if chars::is_digit(c) => {
                while let Some(c) = self.scan.peek().filter(|&c| chars::is_digit(c)) {
                    self.scan.next();
                    name.push(c);
                }
                return name;
            }
            Some(c) if chars::is_special_param(c) => {
                self.scan.next();
                name.push(c);
                return name;
            }
            _ => {}
        }
        while let Some(c) = self.scan.peek().filter(|&c| chars::is_name_char(c)) {
            self.scan.next();
            name.push(c);
        }
        name
    }

    /// Looks `name` up and records it as matched (set) or unmatched (unset).
    fn lookup(&mut self, name: &str) -> Option<&'a str> {
        let env: &'a E = self.env;
        let value = env.get(name);
        let seen = if value.is_some() {
            &mut self.matched
        } else {
            &mut self.unmatched
        };
        if !seen.contains(name) {
            seen.insert(name.to_owned());
        }
        value
    }

    fn unsupported(&self, modifier: String) -> Error {
        Error::UnsupportedModifier {
            word: self.src.to_owned(),
            modifier,
        }
    }

    fn invalid_pattern(&self, pattern: &str, source: PatternError) -> Error {
        Error::InvalidPattern {
            word: self.src.to_owned(),
            pattern: pattern.to_owned(),
            source,
        }
    }
}
