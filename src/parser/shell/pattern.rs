//! Shell wildcard patterns of `${V#p}`, `${V%p}` and `${V/p/r}`, and their matcher.
//!
//! Owns parsing a pattern and finding where it matches. BuildKit translates the pattern into
//! a Go regular expression (`*` → `.*` or `.*?`, `?` → `.`, everything else literal) and
//! lets RE2 find the leftmost-first match. This module reproduces the *matches* of that
//! translation without building a regex:
//!
//! * `*` matches any run of characters, `?` any one character, but neither matches `\n`
//!   (RE2's `.` does not).
//! * There are no bracket expressions: `[`, `]` and every other character are literal.
//! * `\` escapes `*`, `?` and `\`; before `}` or `/` it is dropped (it only protected the
//!   character from the `${…}` syntax); anything else after it is a [`PatternError`].
//! * A search prefers, at the leftmost position that matches, the alternative a
//!   backtracking regex tries first: the longest run for a greedy `*`, the shortest for a
//!   lazy one, first star first.
//! * A leading U+FEFF is dropped from the pattern, as Go's `text/scanner` does.
//!
//! The search is a depth-first walk over (pattern position, text position) states in that
//! priority order, remembering states that cannot lead to a match, so each state is
//! explored once: `O(pattern × text)` per match, like RE2, and without recursion.

use std::collections::HashSet;
use std::ops::Range;

use super::error::PatternError;

/// One element of a parsed pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// This character.
    Char(char),
    /// `?`: any one character except `\n`.
    Any,
    /// `*`: any run of characters except `\n`.
    Star,
}

/// A parsed shell pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Parses `pattern` (already expanded) the way BuildKit's `convertShellPatternToRegex`
    /// reads it.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let mut chars = pattern.strip_prefix('\u{feff}').unwrap_or(pattern).chars();
        let mut tokens = Vec::new();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' => Token::Star,
                '?' => Token::Any,
                '\\' => match chars.clone().next() {
                    // The escape only protected `}` or `/` from the `${…}` syntax: drop it
                    // and read the character normally.
                    Some('}' | '/') => continue,
                    Some(e @ ('*' | '?' | '\\')) => {
                        chars.next();
                        Token::Char(e)
                    }
                    Some(other) => return Err(PatternError::InvalidEscape(other)),
                    None => return Err(PatternError::TrailingEscape),
                },
                c => Token::Char(c),
            };
            tokens.push(token);
        }
        Ok(Pattern { tokens })
    }

    /// The length in bytes of the prefix of `text` that the pattern matches when anchored at
    /// the start, or `None` when it does not match there.
    ///
    /// `greedy` selects `*` as longest (`##`, `%%`) or shortest (`#`, `%`).
    pub fn match_prefix(&self, text: &str, greedy: bool) -> Option<usize> {
        let mut search = Search::new(&self.tokens, text, greedy);
        let end = search.match_at(0)?;
        Some(search.byte_offset(end))
    }

    /// The leftmost-first match of the pattern in `text` with greedy stars, as a byte range.
    pub fn find(&self, text: &str) -> Option<Range<usize>> {
        let mut search = Search::new(&self.tokens, text, true);
        let (start, end) = search.find_from(0)?;
        Some(search.byte_offset(start)..search.byte_offset(end))
    }

    /// Every match Go's `Regexp.ReplaceAllString` would replace, as byte ranges, in order.
    ///
    /// Matches do not overlap; an empty match right after a previous match is skipped, and
    /// the search always moves at least one character forward.
    pub fn replace_all_ranges(&self, text: &str) -> Vec<Range<usize>> {
        let mut search = Search::new(&self.tokens, text, true);
        let mut ranges = Vec::new();
        let mut last_end = 0;
        let mut pos = 0;
        while let Some((start, end)) = search.find_from(pos) {
            if end > last_end || start == 0 {
                ranges.push(search.byte_offset(start)..search.byte_offset(end));
            }
            last_end = end;
            pos = end.max(pos + 1);
        }
        ranges
    }
}

/// One search of a pattern in one text.
struct Search<'p> {
    tokens: &'p [Token],
    text: Vec<char>,
    /// Byte offset of each character, plus the text length at the end.
    offsets: Vec<usize>,
    greedy: bool,
    /// States (token index, char index) from which no match is possible.
    dead: HashSet<(usize, usize)>,
}

impl<'p> Search<'p> {
    fn new(tokens: &'p [Token], text: &str, greedy: bool) -> Self {
        let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        offsets.push(text.len());
        Search {
            tokens,
            text: text.chars().collect(),
            offsets,
            greedy,
            dead: HashSet::new(),
        }
    }

    fn byte_offset(&self, char_index: usize) -> usize {
        // invariant: indices come from the search and are at most `text.len()`; the
        // fallback only keeps this total.
        self.offsets
            .get(char_index)
            .copied()
            .unwrap_or_else(|| self.offsets.last().copied().unwrap_or(0))
    }

    /// The leftmost match starting at or after char `from`, as char indices.
    fn find_from(&mut self, from: usize) -> Option<(usize, usize)> {
        (from..=self.text.len()).find_map(|start| self.match_at(start).map(|end| (start, end)))
    }

    /// The end (char index) of the preferred match starting at char `start`.
    fn match_at(&mut self, start: usize) -> Option<usize> {
        let mut stack = vec![(0, start)];
        while let Some((pi, ti)) = stack.pop() {
            let Some(&token) = self.tokens.get(pi) else {
                // States explored on the way to a match may still lead elsewhere to one
                // from another start: forget them.
                self.dead.clear();
                return Some(ti);
            };
            if !self.dead.insert((pi, ti)) {
                continue;
            }
            // Every transition moves forward, so no state is reached from its own subtree
            // and a state seen again has been fully explored without success.
            let next = self.text.get(ti).copied().filter(|&c| c != '\n');
            match token {
                Token::Char(c) if self.text.get(ti) == Some(&c) => stack.push((pi + 1, ti + 1)),
                Token::Char(_) => {}
                Token::Any if next.is_some() => stack.push((pi + 1, ti + 1)),
                Token::Any => {}
                Token::Star => {
                    // Pushed last is tried first.
                    let eat = next.map(|_| (pi, ti + 1));
                    let skip = (pi + 1, ti);
                    if self.greedy {
                        stack.push(skip);
                        stack.extend(eat);
                    } else {
                        stack.extend(eat);
                        stack.push(skip);
                    }
                }
            }
        }
        None
    }
}

/// Reverses a pattern by character, keeping each escape in front of the character it
/// escapes (`a\*c` → `c\*a`). A trailing `\` is reversed as a plain character.
pub fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut rest = chars.as_slice();
    while !rest.is_empty() {
        let len = if rest.len() >= 2 && rest.first() == Some(&'\\') {
            2
        } else {
            1
        };
        let (unit, tail) = rest.split_at(len);
        units.push(unit);
        rest = tail;
    }
    units.iter().rev().flat_map(|unit| unit.iter()).collect()
}

/// Reverses a string by Unicode code point.
pub fn reverse_string(s: &str) -> String {
    s.chars().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(pattern: &str, text: &str, greedy: bool) -> Option<usize> {
        Pattern::parse(pattern).ok()?.match_prefix(text, greedy)
    }

    #[test]
    fn stars_are_shortest_or_longest() {
        assert_eq!(prefix("*x", "axbx", false), Some(2));
        assert_eq!(prefix("*x", "axbx", true), Some(4));
        assert_eq!(prefix("*", "abc", false), Some(0));
        assert_eq!(prefix("*", "abc", true), Some(3));
        assert_eq!(prefix("*x*y", "xxyy", false), Some(3));
        assert_eq!(prefix("?b", "ab", false), Some(2));
        assert_eq!(prefix("b", "ab", false), None);
    }

    #[test]
    fn wildcards_do_not_match_newline() {
        assert_eq!(prefix("*b", "a\nb", true), None);
        assert_eq!(prefix("?", "\n", true), None);
        assert_eq!(prefix("a*", "ab\nc", true), Some(2));
    }

    #[test]
    fn brackets_and_regex_characters_are_literal() {
        assert_eq!(prefix("[ab]", "a", true), None);
        assert_eq!(prefix("[ab]", "[ab]x", true), Some(4));
        assert_eq!(prefix("a.c", "abc", true), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(prefix(r"\*", "*a", true), Some(1));
        assert_eq!(prefix(r"\*", "a", true), None);
        assert_eq!(prefix(r"a\}\/", "a}/", true), Some(3));
        assert_eq!(prefix(r"\\", "\\", true), Some(1));
        assert_eq!(Pattern::parse(r"\x"), Err(PatternError::InvalidEscape('x')));
        assert_eq!(Pattern::parse("a\\"), Err(PatternError::TrailingEscape));
    }

    #[test]
    fn leading_bom_is_dropped() {
        assert_eq!(prefix("\u{feff}a", "a", true), Some(1));
    }

    #[test]
    fn find_is_leftmost_then_longest() {
        let p = Pattern::parse("b*").unwrap();
        assert_eq!(p.find("abbc"), Some(1..4));
        assert_eq!(Pattern::parse("").unwrap().find("ab"), Some(0..0));
        assert_eq!(Pattern::parse("z").unwrap().find("ab"), None);
        assert_eq!(Pattern::parse("한").unwrap().find("a한b"), Some(1..4));
    }

    #[test]
    fn replace_all_ranges_follow_go() {
        let empty = Pattern::parse("").unwrap();
        assert_eq!(empty.replace_all_ranges("ab"), [0..0, 1..1, 2..2]);
        let star = Pattern::parse("*").unwrap();
        assert_eq!(
            star.replace_all_ranges("ab"),
            vec![Range { start: 0, end: 2 }]
        );
        let b_star = Pattern::parse("b*").unwrap();
        // A glob, not a regex: `b*` is "b, then anything".
        assert_eq!(
            b_star.replace_all_ranges("abab"),
            vec![Range { start: 1, end: 4 }]
        );
        let x = Pattern::parse("x").unwrap();
        assert_eq!(x.replace_all_ranges("axbx"), [1..2, 3..4]);
    }

    #[test]
    fn reversal() {
        assert_eq!(reverse_pattern(r"a\*c"), r"c\*a");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern(""), "");
        assert_eq!(reverse_string("한국어"), "어국한");
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "*a".repeat(200) + "b";
        let text = "a".repeat(2000);
        assert_eq!(prefix(&pattern, &text, true), None);
        assert_eq!(prefix(&pattern, &text, false), None);
    }
}
