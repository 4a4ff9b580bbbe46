//! Conformance corpus: `shell`, BuildKit's word-expansion vectors (README section 4).
//!
//! One test per corpus file. Every vector must pass; the only rows not run are the
//! Windows-only (`W`) rows of `envVarTest`, which test case-insensitive variable names and
//! do not apply to rbuild's Linux builds.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rbuild::parser::shell::pattern::{reverse_pattern, reverse_string, Pattern};
use rbuild::parser::shell::{EnvList, Lex};
use regex::Regex;
use serde_json::Value;

use crate::support::{self, Tally};

/// Runs `f`, turning a panic into a failure so one bad vector cannot hide the others.
fn guarded(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err("panicked".to_owned()))
}

/// Compares an expansion with a corpus expectation, where `"error"` means it must fail.
fn expect<T: PartialEq + std::fmt::Debug>(
    got: Result<T, rbuild::parser::shell::Error>,
    want: Option<T>,
) -> Result<(), String> {
    match (got, want) {
        (Ok(got), Some(want)) if got == want => Ok(()),
        (Err(_), None) => Ok(()),
        (Ok(got), Some(want)) => Err(format!("got {got:?}, want {want:?}")),
        (Ok(got), None) => Err(format!("got {got:?}, want an error")),
        (Err(e), Some(want)) => Err(format!("got error `{e}`, want {want:?}")),
    }
}

#[test]
fn env_var_test() {
    let mut tally = Tally::new("shell/envVarTest");
    let env = EnvList::from_slice(&["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
    let lex = Lex::new('\\');
    for (n, line) in support::read("shell/envVarTest").lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id = format!("line{}", n + 1);
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let [platform, input, expected] = fields[..] else {
            tally.check(&id, Err(format!("{} fields, want 3", fields.len())));
            continue;
        };
        // W rows are Windows-only (case-insensitive names): not applicable, not counted.
        if platform == "W" {
            continue;
        }
        let want = (expected != "error").then(|| expected.to_owned());
        let outcome = guarded(|| expect(lex.process_word(input, &env), want));
        tally.check(&format!("{id} {input}"), outcome);
    }
    tally.finish();
}

#[test]
fn words_test() {
    let mut tally = Tally::new("shell/wordsTest");
    let lex = Lex::new('\\');
    let mut env = EnvList::new();
    for (n, line) in support::read("shell/wordsTest").lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(entry) = line.strip_prefix("ENV ") {
            // Leading spaces go, trailing spaces are part of the value.
            env.push_entry(entry.trim_start_matches(' '));
            continue;
        }
        let id = format!("line{}", n + 1);
        let Some((input, expected)) = line.split_once('|') else {
            tally.check(&id, Err("no `|` in line".to_owned()));
            continue;
        };
        let (input, expected) = (input.trim(), expected.trim_start_matches(' '));
        let want = (expected != "error")
            .then(|| expected.split(',').map(str::to_owned).collect::<Vec<_>>());
        let outcome = guarded(|| expect(lex.process_words(input, &env), want));
        tally.check(&format!("{id} {input}"), outcome);
    }
    tally.finish();
}

/// A JSON array of strings as a set.
fn string_set(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Checks one `process-word.json` case.
fn process_word_case(case: &Value) -> Result<(), String> {
    let input = case["input"].as_str().ok_or("case without input")?;
    let env: EnvList = case["envs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    let lex = Lex::new('\\');
    let got = lex.process_word_with_matches(input, &env);
    if case["unstable"].as_bool() == Some(true) {
        // Upstream does not guarantee these results: returning at all is the check.
        return Ok(());
    }
    if case["error"].as_bool() == Some(true) {
        let err = match got {
            Ok(r) => return Err(format!("got {:?}, want an error", r.result)),
            Err(e) => e.to_string(),
        };
        return match case["error_contains"].as_str() {
            Some(part) if !err.contains(part) => Err(format!("error `{err}` lacks {part:?}")),
            _ => Ok(()),
        };
    }
    let got = got.map_err(|e| format!("got error `{e}`"))?;
    let want = case["expected"].as_str().ok_or("case without expected")?;
    if got.result != want {
        return Err(format!("got {:?}, want {want:?}", got.result));
    }
    let single = lex.process_word(input, &env).map_err(|e| e.to_string())?;
    if single != want {
        return Err(format!("process_word gave {single:?}, want {want:?}"));
    }
    for (key, actual) in [("matched", &got.matched), ("unmatched", &got.unmatched)] {
        if case.get(key).is_some() && *actual != string_set(&case[key]) {
            return Err(format!("{key} {actual:?}, want {}", case[key]));
        }
    }
    Ok(())
}

#[test]
fn process_word_json() {
    let mut tally = Tally::new("shell/process-word.json");
    let corpus = support::read_json("shell/process-word.json");
    for (n, case) in corpus["cases"].as_array().into_iter().flatten().enumerate() {
        let id = format!("case{n} {}", case["input"].as_str().unwrap_or_default());
        tally.check(&id, guarded(|| process_word_case(case)));
    }
    tally.finish();
}

#[test]
fn env_from_slice_json() {
    let mut tally = Tally::new("shell/env-from-slice.json");
    let corpus = support::read_json("shell/env-from-slice.json");
    for (n, case) in corpus["cases"].as_array().into_iter().flatten().enumerate() {
        let entries: Vec<&str> = case["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let env = EnvList::from_slice(&entries);
        let outcome = guarded(|| {
            for lookup in case["lookups"].as_array().into_iter().flatten() {
                let name = lookup[0].as_str().ok_or("lookup without name")?;
                let want = lookup[1].as_str().ok_or("lookup without value")?;
                // Set iff some entry names it ("foo" alone sets foo to "").
                let listed = entries.iter().any(|e| e.split('=').next() == Some(name));
                let got = env.get(name);
                if got.is_some() != listed || got.unwrap_or_default() != want {
                    return Err(format!("{name}: got {got:?}, want {want:?}"));
                }
            }
            Ok(())
        });
        tally.check(&format!("case{n} {entries:?}"), outcome);
    }
    tally.finish();
}

/// Texts on which a pattern and its expected regex are compared: fixed samples, the
/// pattern itself and its unescaped form, each alone, with text around it, and cut short.
fn sample_texts(pattern: &str) -> Vec<String> {
    let unescaped: String = {
        let mut out = String::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            out.extend(if c == '\\' { chars.next() } else { Some(c) });
        }
        out
    };
    let bases = [
        "", "a", "abc", "*", "?", "\\", "\n", "a\nb", "x*y", "🚀", pattern, &unescaped,
    ];
    let mut texts = Vec::new();
    for base in bases {
        texts.extend([base.to_owned(), format!("{base}zz"), format!("zz{base}")]);
        let chars: Vec<char> = base.chars().collect();
        texts.extend((0..chars.len()).map(|n| chars[..n].iter().collect()));
    }
    texts
}

/// Checks that `pattern`, anchored with greedy stars, matches the same prefix as `regex`.
fn same_matches(pattern: &str, regex: &str) -> Result<(), String> {
    let regex = Regex::new(regex).map_err(|e| format!("expected regex invalid: {e}"))?;
    let parsed = Pattern::parse(pattern).map_err(|e| format!("rejected: {e}"))?;
    for text in sample_texts(pattern) {
        let want = regex.find(&text).map(|m| m.end());
        let got = parsed.match_prefix(&text, true);
        if got != want {
            return Err(format!("on {text:?}: matched {got:?}, regex {want:?}"));
        }
    }
    Ok(())
}

#[test]
fn shell_pattern_internal_json() {
    let mut tally = Tally::new("shell/shell-pattern-internal.json");
    let corpus = support::read_json("shell/shell-pattern-internal.json");
    for case in corpus["to_regex"].as_array().into_iter().flatten() {
        let pattern = case["pattern"].as_str().unwrap_or_default();
        let regex = case["regex"].as_str().unwrap_or_default();
        let outcome = guarded(|| same_matches(pattern, regex));
        tally.check(&format!("to_regex {pattern:?}"), outcome);
    }
    for case in corpus["to_regex_error"].as_array().into_iter().flatten() {
        let pattern = case.as_str().unwrap_or_default();
        let outcome = guarded(|| match Pattern::parse(pattern) {
            Err(_) => Ok(()),
            Ok(p) => Err(format!("accepted as {p:?}")),
        });
        tally.check(&format!("to_regex_error {pattern:?}"), outcome);
    }
    let pairs = [
        ("reverse_string", reverse_string as fn(&str) -> String),
        ("reverse_pattern", reverse_pattern),
    ];
    for (key, reverse) in pairs {
        for case in corpus[key].as_array().into_iter().flatten() {
            let input = case[0].as_str().unwrap_or_default();
            let want = case[1].as_str().unwrap_or_default();
            let outcome = guarded(|| match reverse(input) {
                got if got == want => Ok(()),
                got => Err(format!("got {got:?}, want {want:?}")),
            });
            tally.check(&format!("{key} {input:?}"), outcome);
        }
    }
    tally.finish();
}
