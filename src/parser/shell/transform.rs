//! The value operations behind `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`, `${V/p/r}` and
//! `${V//p/r}`.
//!
//! Owns what happens to a variable's value once the pattern and replacement are expanded;
//! reading the `${…}` syntax is the scanner's job (`lex.rs`, `param.rs`) and matching is
//! [`super::pattern`]'s.
//! Two BuildKit behaviours are kept on purpose:
//!
//! * Suffix trimming reverses the pattern and the value and trims a prefix, so a pattern
//!   is validated (and reported) in its reversed form.
//! * `${V//p/r}` goes through Go's `Regexp.ReplaceAllString`, which expands `$` in the
//!   replacement: `$0`/`${0}` is the matched text, `$$` is `$`, any other well-formed
//!   reference (`$1`, `$name`, `${x}`) is empty, and a malformed one is a literal `$`.
//!   `${V/p/r}` (first match only) inserts the replacement as is.

use std::ops::Range;

use super::chars::is_name_char;
use super::error::PatternError;
use super::pattern::{reverse_pattern, reverse_string, Pattern};

/// `s[range]`, or `""` if the range is not valid for `s` (it always is: ranges come from
/// the matcher, which reports character boundaries).
fn slice(s: &str, range: Range<usize>) -> &str {
    s.get(range).unwrap_or_default()
}

/// `${V#pattern}` (`greedy == false`) and `${V##pattern}` (`greedy == true`).
pub fn trim_prefix(value: &str, pattern: &str, greedy: bool) -> Result<String, PatternError> {
    let pattern = Pattern::parse(pattern)?;
    Ok(match pattern.match_prefix(value, greedy) {
        Some(end) => slice(value, end..value.len()).to_owned(),
        None => value.to_owned(),
    })
}

/// `${V%pattern}` (`greedy == false`) and `${V%%pattern}` (`greedy == true`).
///
/// An invalid pattern is reported for its reversed form, [`reverse_pattern`]`(pattern)`.
pub fn trim_suffix(value: &str, pattern: &str, greedy: bool) -> Result<String, PatternError> {
    let trimmed = trim_prefix(&reverse_string(value), &reverse_pattern(pattern), greedy)?;
    Ok(reverse_string(&trimmed))
}

/// `${V/pattern/replacement}` (`all == false`) and `${V//pattern/replacement}`.
pub fn replace(
    value: &str,
    pattern: &str,
    replacement: &str,
    all: bool,
) -> Result<String, PatternError> {
    let pattern = Pattern::parse(pattern)?;
    if !all {
        return Ok(match pattern.find(value) {
            Some(m) => {
                let mut out = slice(value, 0..m.start).to_owned();
                out.push_str(replacement);
                out.push_str(slice(value, m.end..value.len()));
                out
            }
            None => value.to_owned(),
        });
    }
    let mut out = String::with_capacity(value.len());
    let mut last = 0;
    for m in pattern.replace_all_ranges(value) {
        out.push_str(slice(value, last..m.start));
        expand_template(&mut out, replacement, slice(value, m.clone()));
        last = m.end;
    }
    out.push_str(slice(value, last..value.len()));
    Ok(out)
}

/// Appends `template` to `out` with Go's `Regexp.Expand` rules for a regex whose only group
/// is the whole match, `matched`.
fn expand_template(out: &mut String, template: &str, matched: &str) {
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('$') {
        out.push_str(before);
        if let Some(after_dollar) = after.strip_prefix('$') {
            out.push('$');
            rest = after_dollar;
            continue;
        }
        match group_reference(after) {
            Some((name, tail)) => {
                // Group 0 is the only group; "00" and other names refer to nothing.
                if name == "0" {
                    out.push_str(matched);
                }
                rest = tail;
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// Reads `name` or `{name}` at the start of `s` (the text after a `$`), returning the name
/// and the text after the reference, or `None` when it is malformed.
fn group_reference(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let len = body
        .char_indices()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(body.len(), |(i, _)| i);
    if len == 0 {
        return None;
    }
    let (name, tail) = body.split_at_checked(len)?;
    if braced {
        tail.strip_prefix('}').map(|tail| (name, tail))
    } else {
        Some((name, tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims() {
        assert_eq!(trim_prefix("xxyy", "*x", false).unwrap(), "xyy");
        assert_eq!(trim_prefix("xxyy", "*x", true).unwrap(), "yy");
        assert_eq!(trim_suffix("xxyy", "y*", false).unwrap(), "xxy");
        assert_eq!(trim_suffix("xxyy", "y*", true).unwrap(), "xx");
        assert_eq!(trim_suffix("a***yy*", r"\**\*", true).unwrap(), "a");
        assert_eq!(trim_suffix("안녕하세요", "?세요", false).unwrap(), "안녕");
    }

    #[test]
    fn suffix_patterns_are_checked_reversed() {
        assert_eq!(
            trim_prefix("x", "ab\\", false),
            Err(PatternError::TrailingEscape)
        );
        assert_eq!(
            trim_suffix("x", "ab\\", false),
            Err(PatternError::InvalidEscape('b'))
        );
    }

    #[test]
    fn replaces_first_or_all() {
        assert_eq!(replace("/a/b/a", "a", "x", false).unwrap(), "/x/b/a");
        assert_eq!(replace("/a/b/a", "a", "x", true).unwrap(), "/x/b/x");
        assert_eq!(replace("xxyy", "", "ww", false).unwrap(), "wwxxyy");
        assert_eq!(replace("ab", "", "-", true).unwrap(), "-a-b-");
        assert_eq!(replace("ab", "z", "-", true).unwrap(), "ab");
    }

    #[test]
    fn replace_all_expands_go_templates() {
        assert_eq!(replace("ab", "a", "[$0]", true).unwrap(), "[a]b");
        assert_eq!(replace("ab", "a", "[${0}]", true).unwrap(), "[a]b");
        assert_eq!(replace("ab", "a", "$$", true).unwrap(), "$b");
        assert_eq!(replace("ab", "a", "$1$x${y}$00", true).unwrap(), "b");
        assert_eq!(replace("ab", "a", "$", true).unwrap(), "$b");
        assert_eq!(replace("ab", "a", "${0", true).unwrap(), "${0b");
        assert_eq!(replace("ab", "a", "$.", true).unwrap(), "$.b");
        // A single replacement is literal.
        assert_eq!(replace("ab", "a", "$0", false).unwrap(), "$0b");
    }
}
