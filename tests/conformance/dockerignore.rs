//! Conformance corpus: `dockerignore` (README section 5), its pattern files.
//!
//! One test per corpus file. The pattern corpora drive `rbuild::parser::ignore`; the walk
//! and build corpora (`dockerignore_context.rs`) drive `rbuild::context`.

use std::collections::BTreeSet;

use rbuild::parser::ignore::{legacy_matches, read_all, IgnoreMatcher, MatchInfo, MatchType};
use serde_json::Value;

use crate::support::{read, run_json, strings, Tally};

/// One data row of `cases.tsv`.
struct Case<'a> {
    id: String,
    api: &'a str,
    platform: &'a str,
    expect: &'a str,
    path: &'a str,
    patterns: Vec<&'a str>,
}

fn cases(text: &str) -> Vec<Case<'_>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#') && !line.is_empty())
        .filter_map(|(n, line)| {
            let mut cols = line.split('\t');
            let source = cols.next()?;
            Some(Case {
                id: format!("{source}@{}", n + 1),
                api: cols.next()?,
                platform: cols.next()?,
                expect: cols.next()?,
                path: cols.next()?,
                patterns: cols.collect(),
            })
        })
        .collect()
}

fn outcome(result: &Result<bool, rbuild::parser::ignore::Error>) -> String {
    match result {
        Ok(b) => b.to_string(),
        Err(_) => "error".to_owned(),
    }
}

/// Go's `filepath.Dir` for the clean paths of the corpus (no `.`, `..` or `//`).
fn go_dir(path: &str) -> &str {
    match path.rfind('/') {
        None => ".",
        Some(i) => match path[..i].trim_end_matches('/') {
            "" if path.starts_with('/') => "/",
            "" => ".",
            dir => dir,
        },
    }
}

/// The upstream incremental check: feed each parent prefix in turn, then the path.
fn incremental(matcher: &IgnoreMatcher, path: &str) -> Result<bool, rbuild::parser::ignore::Error> {
    let parent = go_dir(path);
    let mut info = MatchInfo::default();
    if parent != "." {
        let dirs: Vec<&str> = parent.split('/').collect();
        for i in 1..=dirs.len() {
            info = matcher.matches_with_parent(&dirs[..i].join("/"), &info)?.1;
        }
    }
    matcher.matches_with_parent(path, &info).map(|(hit, _)| hit)
}

fn check_case(case: &Case) -> Result<(), String> {
    let got = match case.api {
        "legacy" => legacy_matches(case.path, &case.patterns),
        "parents" => {
            let full = IgnoreMatcher::new(&case.patterns).and_then(|m| m.matches(case.path));
            let step = IgnoreMatcher::new(&case.patterns).and_then(|m| incremental(&m, case.path));
            if outcome(&full) != outcome(&step) {
                return Err(format!(
                    "incremental gave {} but matches gave {}",
                    outcome(&step),
                    outcome(&full)
                ));
            }
            full
        }
        other => return Err(format!("unknown api {other}")),
    };
    match outcome(&got) == case.expect {
        true => Ok(()),
        false => Err(format!("expected {}, got {got:?}", case.expect)),
    }
}

#[test]
fn cases_tsv() {
    let text = read("dockerignore/cases.tsv");
    let mut tally = Tally::new("dockerignore/cases.tsv");
    for case in cases(&text) {
        // `U` rows use `\` as an escape: they hold on every Unix, which is all rbuild runs on.
        if case.platform == "U" && !cfg!(unix) {
            continue;
        }
        tally.check(&case.id, check_case(&case));
    }
    tally.finish();
}

#[test]
fn compile_tsv() {
    let text = read("dockerignore/compile.tsv");
    let mut tally = Tally::new("dockerignore/compile.tsv");
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let [pattern, kind, regexp_slash, _regexp_backslash] = cols[..] else {
            tally.check(line, Err("malformed row".into()));
            continue;
        };
        tally.check(pattern, check_compiled(pattern, kind, regexp_slash));
    }
    tally.finish();
}

fn type_name(kind: MatchType) -> &'static str {
    match kind {
        MatchType::Exact => "exact",
        MatchType::Prefix => "prefix",
        MatchType::Suffix => "suffix",
        MatchType::Regexp => "regexp",
    }
}

/// Checks the match type, then compares the compiled pattern with an oracle (the row's
/// regex, or the string test its type names) on sample paths, which must include
/// matching and (unless the pattern matches everything) non-matching ones.
fn check_compiled(pattern: &str, kind: &str, regexp: &str) -> Result<(), String> {
    let matcher = IgnoreMatcher::new([pattern]).map_err(|e| e.to_string())?;
    let compiled = matcher.patterns().first().ok_or("no pattern compiled")?;
    let got = compiled.match_type().map_err(|e| e.to_string())?;
    if type_name(got) != kind {
        return Err(format!("match type {} instead of {kind}", type_name(got)));
    }
    let oracle = oracle(pattern, kind, regexp)?;
    let (mut yes, mut no) = (0, 0);
    for sample in samples(pattern) {
        let want = oracle(&sample);
        let have = compiled.is_match(&sample).map_err(|e| e.to_string())?;
        if want != have {
            return Err(format!("{sample:?}: expected {want}, got {have}"));
        }
        *(if want { &mut yes } else { &mut no }) += 1;
    }
    // Patterns of only `*` and `/` (`**`, `**/**`) match everything; others must reject some.
    let universal = pattern.chars().all(|c| c == '*' || c == '/');
    if yes == 0 || (no == 0 && !universal) {
        return Err(format!(
            "samples not discriminating: {yes} match, {no} do not"
        ));
    }
    Ok(())
}

type Oracle = Box<dyn Fn(&str) -> bool>;

fn oracle(pattern: &str, kind: &str, regexp: &str) -> Result<Oracle, String> {
    let text = pattern.to_owned();
    Ok(match kind {
        "regexp" => {
            let re = regex::Regex::new(regexp).map_err(|e| e.to_string())?;
            Box::new(move |s| re.is_match(s))
        }
        "exact" => Box::new(move |s| s == text),
        "prefix" => Box::new(move |s| s.starts_with(&text[..text.len() - 2])),
        "suffix" => Box::new(move |s| {
            let suffix = &text[2..];
            s.ends_with(suffix) || suffix.strip_prefix('/') == Some(s)
        }),
        other => return Err(format!("unknown match type {other}")),
    })
}

/// Paths built from a fixed vocabulary plus instances of the pattern itself.
fn samples(pattern: &str) -> BTreeSet<String> {
    const WORDS: [&str; 12] = [
        "a", "ace", "abc", "dir", "dir2", "file", "file.txt", ".foo", "foo", "x", "def", "abc.def",
    ];
    let mut out = BTreeSet::new();
    for a in WORDS {
        out.insert(a.to_owned());
        for b in WORDS {
            out.insert(format!("{a}/{b}"));
        }
    }
    for fill in ["", "q", "q/r"] {
        let instance = instantiate(pattern, fill);
        for variant in [
            instance.clone(),
            format!("dir/{instance}"),
            format!("{instance}/x"),
            format!("{instance}z"),
        ] {
            out.insert(variant);
        }
    }
    out
}

/// The pattern with its wildcards filled in: `**` and `*` by `fill` (stars cannot cross
/// `/`, so `*` keeps only its first component), `?` and classes by a member.
fn instantiate(pattern: &str, fill: &str) -> String {
    let star = fill.split('/').next().unwrap_or("");
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str(fill);
            }
            '*' => out.push_str(star),
            '?' => out.push('Z'),
            '[' => {
                let class: String = chars.by_ref().take_while(|&c| c != ']').collect();
                let last = class.chars().last().unwrap_or('x');
                out.push(if class.starts_with('^') { 'z' } else { last });
            }
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[test]
fn new_patterns_json() {
    run_json("dockerignore/new-patterns.json", check_new);
}

fn check_new(case: &Value) -> Result<(), String> {
    let built = IgnoreMatcher::new(strings(&case["patterns"]));
    if let Some(want) = case["error"].as_bool() {
        if built.is_err() != want {
            return Err(format!("expected error={want}, got {built:?}"));
        }
    }
    let Ok(matcher) = built else {
        return Ok(());
    };
    if let Some(count) = case["count"].as_u64() {
        if matcher.patterns().len() as u64 != count {
            return Err(format!(
                "expected {count} patterns, got {}",
                matcher.patterns().len()
            ));
        }
    }
    if let Some(want) = case["has_exclusions"].as_bool() {
        if matcher.has_exclusions() != want {
            return Err(format!("expected has_exclusions={want}"));
        }
    }
    Ok(())
}

#[test]
fn readall_json() {
    run_json("dockerignore/readall.json", |case| {
        let input = case["input"].as_str().unwrap_or_default();
        let want = strings(&case["patterns"]);
        match read_all(input.as_bytes()) {
            Ok(got) if got == want => Ok(()),
            Ok(got) => Err(format!("expected {want:?}, got {got:?}")),
            Err(e) => Err(e.to_string()),
        }
    });
}
