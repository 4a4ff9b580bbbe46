//! Character classes of the RE2 subset: literal ranges, the ASCII POSIX and Perl classes,
//! and Unicode general categories, with Go's (not Rust's) definitions.
//!
//! Go's `\d`, `\s`, `\w` and `[[:alpha:]]` are ASCII-only; `\s` is `[\t\n\f\r ]` (no `\v`);
//! `.` excludes only `\n`; negated classes include `\n`. The single-letter Unicode
//! categories (`\pL`, `\PN`, …) are answered by small precompiled `regex` sets; Go's `C`
//! omits unassigned code points, so it is spelled out as `Cc|Cf|Co` (surrogates cannot
//! occur in a `&str`).

/// One character test: a union of members, optionally negated.
#[derive(Debug, Clone)]
pub(super) struct CharClass {
    negated: bool,
    members: Vec<Member>,
}

/// One member of a class.
#[derive(Debug, Clone)]
pub(super) enum Member {
    /// An inclusive range of characters (a literal is a one-character range).
    Range(char, char),
    /// A fixed ASCII table (POSIX or Perl class), possibly negated.
    Table {
        ranges: &'static [(char, char)],
        negated: bool,
    },
    /// A Unicode general category, possibly negated.
    Category { set: regex::Regex, negated: bool },
}

impl CharClass {
    /// A class from its members.
    pub(super) fn new(negated: bool, members: Vec<Member>) -> Self {
        CharClass { negated, members }
    }

    /// Exactly one character.
    pub(super) fn literal(c: char) -> Self {
        Self::new(false, vec![Member::Range(c, c)])
    }

    /// Go's `.` without the `s` flag: anything but a newline.
    pub(super) fn any_but_newline() -> Self {
        Self::new(true, vec![Member::Range('\n', '\n')])
    }

    /// Whether `c` belongs to the class.
    pub(super) fn contains(&self, c: char) -> bool {
        self.members.iter().any(|m| m.contains(c)) != self.negated
    }
}

impl Member {
    fn contains(&self, c: char) -> bool {
        match self {
            Member::Range(lo, hi) => (*lo..=*hi).contains(&c),
            Member::Table { ranges, negated } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
            Member::Category { set, negated } => {
                let mut buf = [0u8; 4];
                set.is_match(c.encode_utf8(&mut buf)) != *negated
            }
        }
    }
}

const DIGIT: &[(char, char)] = &[('0', '9')];
const PERL_SPACE: &[(char, char)] = &[('\t', '\n'), ('\x0c', '\r'), (' ', ' ')];
const WORD: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];

/// Go's Perl classes after a `\`: `d`, `s`, `w` and their negated upper-case forms.
pub(super) fn perl_class(letter: char) -> Option<Member> {
    let ranges = match letter.to_ascii_lowercase() {
        'd' => DIGIT,
        's' => PERL_SPACE,
        'w' => WORD,
        _ => return None,
    };
    Some(Member::Table {
        ranges,
        negated: letter.is_ascii_uppercase(),
    })
}

/// Go's POSIX classes, by the name between `[:` and `:]` (optionally starting with `^`).
pub(super) fn posix_class(name: &str) -> Option<Member> {
    let (negated, bare) = match name.strip_prefix('^') {
        Some(bare) => (true, bare),
        None => (false, name),
    };
    let ranges: &'static [(char, char)] = match bare {
        "alnum" => &[('0', '9'), ('A', 'Z'), ('a', 'z')],
        "alpha" => &[('A', 'Z'), ('a', 'z')],
        "ascii" => &[('\0', '\x7f')],
        "blank" => &[('\t', '\t'), (' ', ' ')],
        "cntrl" => &[('\0', '\x1f'), ('\x7f', '\x7f')],
        "digit" => DIGIT,
        "graph" => &[('!', '~')],
        "lower" => &[('a', 'z')],
        "print" => &[(' ', '~')],
        "punct" => &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        "space" => &[('\t', '\r'), (' ', ' ')],
        "upper" => &[('A', 'Z')],
        "word" => WORD,
        "xdigit" => &[('0', '9'), ('A', 'F'), ('a', 'f')],
        _ => return None,
    };
    Some(Member::Table { ranges, negated })
}

/// A single-letter Unicode category as Go defines it (`\pL`), or `None` for names Go
/// does not know.
pub(super) fn unicode_category(letter: char, negated: bool) -> Option<Member> {
    let expr = match letter {
        'C' => r"\A[\p{Cc}\p{Cf}\p{Co}]\z",
        'L' => r"\A\p{L}\z",
        'M' => r"\A\p{M}\z",
        'N' => r"\A\p{N}\z",
        'P' => r"\A\p{P}\z",
        'S' => r"\A\p{S}\z",
        'Z' => r"\A\p{Z}\z",
        _ => return None,
    };
    // These fixed expressions always compile; a failure would only disable the class.
    let set = regex::Regex::new(expr).ok()?;
    Some(Member::Category { set, negated })
}

/// Go's ASCII word characters, for `\b` and `\B`.
pub(super) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(m: Member) -> CharClass {
        CharClass::new(false, vec![m])
    }

    #[test]
    fn perl_classes_are_ascii() {
        let digit = class(perl_class('d').unwrap());
        assert!(digit.contains('7'));
        assert!(!digit.contains('٣'), "Arabic-Indic digit is not Go's \\d");
        let not_space = class(perl_class('S').unwrap());
        assert!(not_space.contains('\x0b'), "Go's \\s has no vertical tab");
    }

    #[test]
    fn posix_and_categories() {
        assert!(class(posix_class("alpha").unwrap()).contains('q'));
        assert!(class(posix_class("^alpha").unwrap()).contains('1'));
        assert!(posix_class("foo").is_none());
        assert!(class(unicode_category('L', false).unwrap()).contains('α'));
        assert!(class(unicode_category('N', true).unwrap()).contains('x'));
        assert!(unicode_category('l', false).is_none());
    }

    #[test]
    fn dot_and_negation() {
        let dot = CharClass::any_but_newline();
        assert!(dot.contains('/') && !dot.contains('\n'));
        let not_slash = CharClass::new(true, vec![Member::Range('/', '/')]);
        assert!(not_slash.contains('\n') && !not_slash.contains('/'));
    }
}
