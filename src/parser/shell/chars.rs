//! Character classes of the expander, with Go's Unicode definitions.
//!
//! BuildKit reads parameter names with Go's `unicode.IsLetter` (general category L) and
//! `unicode.IsDigit` (category Nd), and splits words with `unicode.IsSpace`. Rust's
//! `char::is_alphabetic` and `char::is_numeric` are wider (they include Nl, No and combining
//! marks), so the non-ASCII cases go through the `regex` crate's general-category tables.
//! `char::is_whitespace` is the Unicode White_Space property, the same set as Go's
//! `unicode.IsSpace`, and is used as is.

use std::sync::LazyLock;

use regex::Regex;

/// `\p{L}` and `\p{Nd}`, compiled once. `None` only if the regex crate was built without
/// Unicode tables, in which case the std approximations below are used.
static LETTER: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^\p{L}$").ok());
static DIGIT: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^\p{Nd}$").ok());

/// Whether `c` matches `re`, falling back to `fallback` when `re` is unavailable.
fn in_class(re: &Option<Regex>, c: char, fallback: fn(char) -> bool) -> bool {
    match re {
        Some(re) => re.is_match(c.encode_utf8(&mut [0; 4])),
        None => fallback(c),
    }
}

/// Go's `unicode.IsLetter`: general category L.
pub(crate) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    in_class(&LETTER, c, char::is_alphabetic)
}

/// Go's `unicode.IsDigit`: general category Nd.
pub(crate) fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    in_class(&DIGIT, c, char::is_numeric)
}

/// A character that may continue a parameter name (`[\p{L}\p{Nd}_]`).
pub(crate) fn is_name_char(c: char) -> bool {
    c == '_' || is_letter(c) || is_digit(c)
}

/// Go's `unicode.IsSpace`: where unquoted expansion results are split into words.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// POSIX special parameters (`$@ $* $# $? $- $$ $! $0`), which are one character long.
/// See <https://pubs.opengroup.org/onlinepubs/009695399/utilities/xcu_chap02.html#tag_02_05_02>.
pub(crate) fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_follow_go_categories() {
        assert!(is_letter('a') && is_letter('Z') && is_letter('한') && is_letter('é'));
        // Nl (letter number) and Mc (spacing mark) are alphabetic in Rust, not letters in Go.
        assert!('Ⅳ'.is_alphabetic() && !is_letter('Ⅳ'));
        assert!('\u{093E}'.is_alphabetic() && !is_letter('\u{093E}'));
        assert!(!is_letter('_') && !is_letter('1'));
    }

    #[test]
    fn digits_follow_go_categories() {
        assert!(is_digit('0') && is_digit('9') && is_digit('٣'));
        // No (other number) is numeric in Rust, not a digit in Go.
        assert!('²'.is_numeric() && !is_digit('²'));
        assert!(!is_digit('a'));
    }

    #[test]
    fn spaces_match_go() {
        for c in [
            '\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{85}', '\u{a0}', '\u{3000}',
        ] {
            assert!(is_space(c), "{c:?}");
        }
        assert!(!is_space('\u{200b}') && !is_space('x'));
    }
}
