//! Pattern → match type and RE2 expression text, exactly as BuildKit derives them.
//!
//! moby/patternmatcher turns each cleaned pattern into either a plain string test
//! (`exact`, `prefix`, `suffix`) or a Go regular expression, and the choice leaks into the
//! semantics: `**file` is a suffix test (it matches `xfile`), `abc**` a prefix test. The
//! expression text is produced character by character with these rules:
//!
//! | pattern | expression | note |
//! |---|---|---|
//! | `**` then `/`? then end | `.*` | prefix test if nothing special came before |
//! | `**` then `/`? then more | `(.*/)?` | |
//! | `*` | `[^/]*` | |
//! | `?` | `[^/]` | |
//! | one of `.+()\|{}$` | escaped | |
//! | `\` + c | `\` + c, verbatim | so `\d` keeps its regex meaning, as in BuildKit |
//! | `[`, `]` | verbatim | classes are left to the regex parser |
//! | anything else | verbatim | including `^`, which the regex reads as an anchor |
//!
//! A pattern starting with `**` is a suffix test whatever follows, unless a later
//! character makes it a regex. The text is then parsed by [`super::re2`]; no Go regex
//! syntax is ever handed to a Rust regex engine.

/// How a pattern is tested against a path (BuildKit's `matchType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    /// The path equals the pattern.
    Exact,
    /// The path starts with the pattern minus its trailing `**`.
    Prefix,
    /// The path ends with the pattern minus its leading `**` (or, for `**/x`, is `x`).
    Suffix,
    /// The path matches the generated regular expression.
    Regexp,
}

/// The outcome of translating one cleaned pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Translation {
    /// The match type BuildKit would pick.
    pub kind: MatchType,
    /// The RE2 expression text, anchored with `^`…`$`; meaningful only for
    /// [`MatchType::Regexp`].
    pub regex: String,
}

/// Characters that are plain in a pattern but special in a regex (Go's `shouldEscape`).
const REGEX_SPECIAL: &str = ".+()|{}$";

/// Translates a cleaned, validated pattern (without its `!`).
pub(super) fn translate(pattern: &str) -> Translation {
    // Go's text/scanner skips a byte-order mark at the very start of its input.
    let body = pattern.strip_prefix('\u{feff}').unwrap_or(pattern);
    let mut chars = body.chars().peekable();
    let mut regex = String::from("^");
    let mut kind = MatchType::Exact;
    let mut first = true;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if kind == MatchType::Exact {
                        kind = MatchType::Prefix;
                    } else {
                        regex.push_str(".*");
                        kind = MatchType::Regexp;
                    }
                } else {
                    regex.push_str("(.*/)?");
                    kind = MatchType::Regexp;
                }
                if first {
                    kind = MatchType::Suffix;
                }
            }
            '*' => {
                regex.push_str("[^/]*");
                kind = MatchType::Regexp;
            }
            '?' => {
                regex.push_str("[^/]");
                kind = MatchType::Regexp;
            }
            c if REGEX_SPECIAL.contains(c) => {
                regex.push('\\');
                regex.push(c);
            }
            '\\' => {
                regex.push('\\');
                if let Some(next) = chars.next() {
                    regex.push(next);
                    kind = MatchType::Regexp;
                }
            }
            '[' | ']' => {
                regex.push(ch);
                kind = MatchType::Regexp;
            }
            c => regex.push(c),
        }
        first = false;
    }
    if kind == MatchType::Regexp {
        regex.push('$');
    }
    Translation { kind, regex }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: &str) -> (MatchType, String) {
        let tr = translate(p);
        (tr.kind, tr.regex)
    }

    #[test]
    fn match_types() {
        use MatchType::*;
        for (p, want) in [
            ("abc.def", Exact),
            ("a(b)c/def", Exact),
            ("dir/**", Prefix),
            ("abc**", Prefix),
            ("**", Suffix),
            ("**/dir", Suffix),
            ("**file", Suffix),
            ("**/**", Regexp),
            ("**/dir2/*", Regexp),
            ("a\\\\", Regexp),
            ("a[b-d]e", Regexp),
        ] {
            assert_eq!(translate(p).kind, want, "{p:?}");
        }
    }

    #[test]
    fn expressions() {
        assert_eq!(t("a*/b").1, "^a[^/]*/b$");
        assert_eq!(t("**/**").1, "^(.*/)?.*$");
        assert_eq!(t("**/**/*.txt").1, "^(.*/)?(.*/)?[^/]*\\.txt$");
        assert_eq!(t("abc?def").1, "^abc[^/]def$");
        assert_eq!(t("a/*.txt**").1, "^a/[^/]*\\.txt.*$");
        assert_eq!(t("[a*]").1, "^[a[^/]*]$");
    }

    #[test]
    fn leading_bom_is_skipped_like_go_scanner() {
        assert_eq!(translate("\u{feff}**/x").kind, MatchType::Suffix);
        assert_eq!(t("\u{feff}a*").1, "^a[^/]*$");
    }
}
