//! Property tests of the matcher: no input panics; the incremental API agrees with
//! [`IgnoreMatcher::matches`] on every prefix of a walk path; pruning never skips a
//! directory below which some path would get a different answer.
//!
//! Inputs are biased towards the characters that matter (`* ? [ ] ^ \ ! / . -`, `**`).
//! The case count is proptest's default (256) unless `PROPTEST_CASES` says otherwise.

use proptest::prelude::*;

use super::{legacy_matches, read_all, IgnoreMatcher, MatchInfo};

const TOKENS: &[&str] = &[
    "a",
    "b",
    "ab",
    ".",
    "-",
    "*",
    "**",
    "?",
    "/",
    "[",
    "]",
    "^",
    "\\",
    "!",
    "[a-b]",
    "[^a]",
    "[b-a]",
    "..",
    "\\*",
    "a/b",
    "\\d",
    "[[:alpha:]]",
    "$",
    "{",
    "(",
    " ",
];

/// Names a walk can produce: no `.`, `..` or empty components.
const NAMES: &[&str] = &[
    "a", "b", "ab", "ba", "a.b", "-", "[", "]", "*", "^", "\\", "!", "d",
];

fn pattern() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.3),
        prop::collection::vec(prop::sample::select(TOKENS), 1..6),
    )
        .prop_map(|(bang, tokens)| format!("{}{}", if bang { "!" } else { "" }, tokens.concat()))
}

fn patterns() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(pattern(), 0..5)
}

fn walk_path() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(NAMES), 1..5)
}

fn outcome(r: Result<bool, super::Error>) -> Option<bool> {
    r.ok()
}

proptest! {
    #[test]
    fn nothing_panics(list in patterns(), raw in "[ab./\\\\*?\\[\\]^!-]{0,12}") {
        let _ = legacy_matches(&raw, &list);
        let _ = read_all(list.join("\n").as_bytes());
        if let Ok(m) = IgnoreMatcher::new(&list) {
            let _ = m.matches(&raw);
            let mut info = MatchInfo::default();
            let parts: Vec<&str> = raw.split('/').collect();
            for k in 1..=parts.len() {
                let prefix = parts[..k].join("/");
                let _ = m.can_skip_excluded_dir(&prefix);
                let _ = m.can_skip_unmatched_dir(&prefix);
                if let Ok((_, next)) = m.matches_with_parent(&prefix, &info) {
                    info = next;
                }
            }
        }
    }

    #[test]
    fn incremental_agrees_on_every_prefix(list in patterns(), names in walk_path()) {
        let Ok(m) = IgnoreMatcher::new(&list) else { return Ok(()) };
        let mut info = MatchInfo::default();
        for k in 1..=names.len() {
            let prefix = names[..k].join("/");
            let step = m.matches_with_parent(&prefix, &info);
            prop_assert_eq!(
                step.as_ref().ok().map(|s| s.0),
                outcome(m.matches(&prefix)),
                "prefix {:?}", prefix
            );
            match step {
                Ok((_, next)) => info = next,
                Err(_) => break,
            }
        }
    }

    #[test]
    fn pruning_is_sound(list in patterns(), names in walk_path()) {
        let Ok(m) = IgnoreMatcher::new(&list) else { return Ok(()) };
        let path = names.join("/");
        let below = outcome(m.matches(&path));
        for k in 1..names.len() {
            let dir = names[..k].join("/");
            match outcome(m.matches(&dir)) {
                Some(true) if m.can_skip_excluded_dir(&dir) => {
                    prop_assert_eq!(below, Some(true), "skipped excluded {:?}", dir);
                }
                Some(false) if m.can_skip_unmatched_dir(&dir) => {
                    prop_assert_eq!(below, Some(false), "skipped unmatched {:?}", dir);
                }
                _ => {}
            }
        }
    }
}
