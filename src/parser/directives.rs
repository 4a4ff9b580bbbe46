//! Parser directives: `# syntax=`, `# escape=` and `# check=` at the top of a Dockerfile.
//!
//! A directive is a leading comment `# name = value`. Scanning stops at the first line
//! that is not a directive (an instruction, a blank line, any other comment); names are
//! case-insensitive and only `syntax`, `escape` and `check` count. A directive given twice
//! is an error. Syntax detection (for `--check`-style tooling) also accepts `//` comments
//! and a whole-file JSON object, after an optional `#!` line.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::Regex;

use super::error::ErrorKind;

/// The directives BuildKit knows.
const KNOWN: [&str; 3] = ["syntax", "escape", "check"];

/// One parser directive, name lowercased, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Directive {
    /// `syntax`, `escape` or `check`.
    pub name: String,
    /// The value with surrounding blanks removed.
    pub value: String,
    /// 1-based line of the directive.
    pub line: usize,
}

/// Which comment prefix directives use: `#` in Dockerfiles, `//` as a detection fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Hash,
    Slashes,
}

fn directive_regex(prefix: Prefix) -> &'static Regex {
    // Go's RE2 `\s` is `[\t\n\f\r ]`; spelled out so Unicode spaces do not count.
    static HASH: OnceLock<Regex> = OnceLock::new();
    static SLASHES: OnceLock<Regex> = OnceLock::new();
    let (cell, p) = match prefix {
        Prefix::Hash => (&HASH, "#"),
        Prefix::Slashes => (&SLASHES, "//"),
    };
    cell.get_or_init(|| {
        let ws = r"[\t\n\f\r ]";
        let re = format!(r"^{p}{ws}*([a-zA-Z][a-zA-Z0-9]*){ws}*={ws}*(.+?){ws}*$");
        // invariant: the pattern is a constant and valid.
        Regex::new(&re).expect("directive regex is valid")
    })
}

/// Reads directives line by line until the first line that is not one.
#[derive(Debug, Clone)]
pub struct DirectiveParser {
    line: usize,
    prefix: Prefix,
    seen: BTreeSet<String>,
    done: bool,
}

impl Default for DirectiveParser {
    fn default() -> Self {
        DirectiveParser {
            line: 0,
            prefix: Prefix::Hash,
            seen: BTreeSet::new(),
            done: false,
        }
    }
}

impl DirectiveParser {
    /// Examines the next physical line (newline already removed). Returns the directive
    /// it holds, if scanning is still open and the line is one.
    pub fn parse_line(&mut self, line: &str) -> Result<Option<Directive>, ErrorKind> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        let Some(caps) = directive_regex(self.prefix).captures(line) else {
            self.done = true;
            return Ok(None);
        };
        let name = caps[1].to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if !self.seen.insert(name.clone()) {
            return Err(ErrorKind::DuplicateDirective { name });
        }
        Ok(Some(Directive {
            name,
            value: caps[2].to_owned(),
            line: self.line,
        }))
    }

    /// Whether scanning has stopped (a non-directive line was seen).
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn parse_all(mut self, text: &str) -> Result<Vec<Directive>, ErrorKind> {
        let mut out = Vec::new();
        for line in text.lines() {
            if self.done {
                break;
            }
            if let Some(d) = self.parse_line(line)? {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// All leading `#` directives of `text` (BuildKit's `ParseAll`).
pub fn parse_all(text: &str) -> Result<Vec<Directive>, ErrorKind> {
    DirectiveParser::default().parse_all(text)
}

/// A directive found by [`detect_syntax`] or [`parse_directive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The value up to its first space (the frontend reference for `syntax`).
    pub reference: String,
    /// The whole value.
    pub cmdline: String,
    /// 1-based line (a skipped `#!` line counts).
    pub line: usize,
}

/// Finds the `syntax` directive: `# syntax=`, else `// syntax=`, else a whole-file JSON
/// object with a string `"syntax"` key.
pub fn detect_syntax(text: &str) -> Option<Found> {
    find_directive("syntax", text, true)
}

/// Finds directive `key` in `#` form only.
pub fn parse_directive(key: &str, text: &str) -> Option<Found> {
    find_directive(key, text, false)
}

fn find_directive(key: &str, text: &str, fallbacks: bool) -> Option<Found> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (text, skipped) = match text.strip_prefix("#!") {
        Some(rest) => (rest.split_once('\n').map_or("", |(_, r)| r), 1),
        None => (text, 0),
    };
    let found = |d: Directive| {
        let reference = d.value.split(' ').next().unwrap_or_default().to_owned();
        Found {
            reference,
            cmdline: d.value,
            line: d.line,
        }
    };
    let prefixes: &[Prefix] = if fallbacks {
        &[Prefix::Hash, Prefix::Slashes]
    } else {
        &[Prefix::Hash]
    };
    for &prefix in prefixes {
        let parser = DirectiveParser {
            line: skipped,
            prefix,
            ..DirectiveParser::default()
        };
        if let Ok(all) = parser.parse_all(text) {
            if let Some(d) = all.into_iter().find(|d| d.name == key) {
                return Some(found(d));
            }
        }
    }
    if !fallbacks {
        return None;
    }
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    let value = json.get(key)?.as_str()?.to_owned();
    Some(Found {
        reference: value.clone(),
        cmdline: value,
        line: skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_first_non_directive() {
        let all = parse_all("# escape=`\n# syntax=x\nFROM a\n# check=skip=all\n").unwrap();
        let names: Vec<_> = all.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["escape", "syntax"]);
    }

    #[test]
    fn rejects_duplicates() {
        let err = parse_all("# escape=`\n# ESCAPE=\\\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "only one escape parser directive can be used"
        );
    }

    #[test]
    fn unknown_directive_ends_scanning() {
        let all = parse_all("# foo=bar\n# escape=`\n").unwrap();
        assert!(all.is_empty());
    }
}
