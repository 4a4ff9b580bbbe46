//! Property test: expansion never panics.
//!
//! Arbitrary words, biased towards the characters the expander treats specially, go
//! through every entry point with both escape tokens and all 16 option combinations. The
//! case count is proptest's default (256), which `PROPTEST_CASES` overrides for longer
//! runs.

use proptest::prelude::*;

use regex::Regex;

use super::pattern::Pattern;
use super::{EnvList, Lex};

/// Words made mostly of expander syntax, plus some multi-byte and whitespace characters.
fn shell_word() -> impl Strategy<Value = String> {
    let biased = prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(vec![
                "$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "\\", "`", "'", "\"", "*",
                "=", "@", "!", "0", "1",
            ]),
            4 => prop::sample::select(vec!["A", "B", "EMPTY", "PAT", "x", "_"]),
            1 => prop::sample::select(vec![" ", "\t", "\n", "한", "🚀", "\u{feff}", "ǅ"]),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat());
    prop_oneof![4 => biased, 1 => any::<String>()]
}

fn env() -> EnvList {
    EnvList::from_slice(&["A=a b*c", "B=\\*/?x", "EMPTY=", "PAT=#*\\", "x=$0${0}$$ 한"])
}

fn lexers() -> Vec<Lex> {
    let mut lexers = Vec::new();
    for escape in ['\\', '`'] {
        for bits in 0..16u8 {
            lexers.push(Lex {
                raw_quotes: bits & 1 != 0,
                raw_escapes: bits & 2 != 0,
                skip_unset_env: bits & 4 != 0,
                skip_process_quotes: bits & 8 != 0,
                ..Lex::new(escape)
            });
        }
    }
    lexers
}

proptest! {
    #[test]
    fn expansion_never_panics(word in shell_word()) {
        let env = env();
        for lex in lexers() {
            let one = lex.process_word(&word, &env);
            let words = lex.process_words(&word, &env);
            let full = lex.process_word_with_matches(&word, &env);
            // The three entry points agree with one another.
            prop_assert_eq!(one.clone().ok(), full.as_ref().ok().map(|r| r.result.clone()));
            prop_assert_eq!(words.ok(), full.as_ref().ok().map(|r| r.words.clone()));
            prop_assert_eq!(one.err(), full.err());
        }
    }
}

/// A pattern over a small alphabet, so that matches are frequent.
fn small_pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a", "b", "한", "*", "?", "\\*", "\\?", "\\\\", "\n", ".",
        ]),
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

fn small_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "한", "*", "?", "\\", "\n", "."]),
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// BuildKit's translation of a shell pattern into a regex (`convertShellPatternToRegex`),
/// used as the oracle for the matcher.
fn oracle(pattern: &str, greedy: bool, anchored: bool) -> Regex {
    let mut out = String::from(if anchored { "^" } else { "" });
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' if greedy => out.push_str(".*"),
            '*' => out.push_str(".*?"),
            '?' => out.push('.'),
            '\\' => out.push_str(&regex::escape(&chars.next().unwrap_or('\\').to_string())),
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    Regex::new(&out).unwrap()
}

proptest! {
    #[test]
    fn matcher_agrees_with_regex_translation(pattern in small_pattern(), text in small_text()) {
        let parsed = Pattern::parse(&pattern).unwrap();
        for greedy in [false, true] {
            let want = oracle(&pattern, greedy, true).find(&text).map(|m| m.end());
            prop_assert_eq!(parsed.match_prefix(&text, greedy), want);
        }
        let unanchored = oracle(&pattern, true, false);
        let want = unanchored.find(&text).map(|m| m.range());
        prop_assert_eq!(parsed.find(&text), want);
        let want: Vec<_> = unanchored.find_iter(&text).map(|m| m.range()).collect();
        prop_assert_eq!(parsed.replace_all_ranges(&text), want);
    }
}
