//! Conformance corpus: `dockerignore` (README section 5).
//!
//! One test per corpus file. The pattern corpora drive `rbuild::parser::ignore`; the walk
//! and build corpora drive `rbuild::context` over trees built in temporary directories.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;

use rbuild::context::{dockerignore_for, BuildContext, Entry, Filter};
use rbuild::parser::ignore::{legacy_matches, read_all, IgnoreMatcher, MatchInfo, MatchType};
use serde_json::Value;

use crate::support::{read, read_json, Tally};

/// Runs `check` on every case of a JSON corpus, naming each by its `name` (if any) and index.
fn run_json(corpus: &str, check: fn(&Value) -> Result<(), String>) {
    let json = read_json(corpus);
    let mut tally = Tally::new(corpus);
    for (i, case) in json["cases"].as_array().into_iter().flatten().enumerate() {
        let name = case["name"].as_str().unwrap_or("case");
        tally.check(&format!("{name}#{i}"), check(case));
    }
    tally.finish();
}

/// A JSON array of strings (absent or malformed: empty).
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

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

// ---------------------------------------------------------------------------------------
// Context corpora: walk-cases.json and build-cases.json.

/// Creates the case's tree (empty files, in the listed order).
fn build_tree(root: &Path, tree: &Value) -> std::io::Result<()> {
    for item in tree.as_array().into_iter().flatten() {
        let (Some(path), Some(kind)) = (item[0].as_str(), item[1].as_str()) else {
            continue;
        };
        let full = root.join(path);
        if kind == "dir" {
            fs::create_dir_all(&full)?;
        } else {
            fs::create_dir_all(full.parent().unwrap_or(root))?;
            fs::write(&full, b"")?;
        }
    }
    Ok(())
}

/// The filter layers of a case: `filter_layers`, or the top-level `include`/`exclude`.
fn layers(case: &Value) -> Result<Vec<Filter>, String> {
    let specs: Vec<&Value> = match case["filter_layers"].as_array() {
        Some(layers) => layers.iter().collect(),
        None => vec![case],
    };
    specs
        .into_iter()
        .map(|s| Filter::from_patterns(&strings(&s["include"]), &strings(&s["exclude"])))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

/// Every pattern of the case with its `!` removed.
fn all_patterns(case: &Value) -> Vec<String> {
    let mut specs = vec![case];
    specs.extend(case["filter_layers"].as_array().into_iter().flatten());
    specs
        .iter()
        .flat_map(|s| [strings(&s["include"]), strings(&s["exclude"])].concat())
        .map(|p| p.trim_start_matches('!').to_owned())
        .collect()
}

/// The error and its causes, lower-cased, for `error_contains`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.to_lowercase()
}

#[test]
fn walk_cases_json() {
    run_json("dockerignore/walk-cases.json", check_walk);
}

fn check_walk(case: &Value) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    build_tree(dir.path(), &case["tree"]).map_err(|e| e.to_string())?;
    let unreadable = strings(&case["unreadable"]);
    set_modes(dir.path(), &unreadable, 0o000)?;
    let result = walk_and_check(dir.path(), case, &unreadable);
    set_modes(dir.path(), &unreadable, 0o755)?;
    result?;
    check_open(dir.path(), case)
}

fn set_modes(root: &Path, dirs: &[String], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for d in dirs {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {d}: {e}"))?;
    }
    Ok(())
}

/// Walks the case's context. Unreadable directories fail to read through the hook too,
/// since mode 000 does not stop root; every read is recorded to prove pruning.
fn walk_and_check(root: &Path, case: &Value, unreadable: &[String]) -> Result<(), String> {
    let ctx = layers(case)?
        .into_iter()
        .fold(BuildContext::new(root), BuildContext::with_filter);
    let mut read = Vec::new();
    let mut listing = Vec::new();
    let result = ctx.walk_observed(
        &mut |dir| {
            read.push(dir.to_owned());
            match unreadable.iter().any(|u| u == dir) {
                true => Err(std::io::ErrorKind::PermissionDenied.into()),
                false => Ok(()),
            }
        },
        &mut |entry| listing.push(describe(&entry)),
    );
    if let Some(want) = case["error_contains"].as_str() {
        return match result {
            Err(e) if chain(&e).contains(want) => Ok(()),
            Err(e) => Err(format!("error {:?} lacks {want:?}", chain(&e))),
            Ok(()) => Err(format!(
                "walk succeeded with {listing:?}; expected an error"
            )),
        };
    }
    result.map_err(|e| chain(&e))?;
    if !case["expected"].is_null() && listing != strings(&case["expected"]) {
        return Err(format!(
            "expected {:?}, got {listing:?}",
            strings(&case["expected"])
        ));
    }
    // Pruning: unless some pattern names a path below it, an unreadable directory must
    // not even be read.
    for u in unreadable {
        let named_below = all_patterns(case)
            .iter()
            .any(|p| p.starts_with(&format!("{u}/")));
        if !named_below && read.contains(u) {
            return Err(format!("walker read pruned directory {u:?}"));
        }
    }
    Ok(())
}

fn describe(entry: &Entry) -> String {
    // `Dir` → `dir`, `File` → `file`: the corpus spelling.
    let kind = format!("{:?}", entry.kind()).to_lowercase();
    format!("{kind} {}", entry.path_str())
}

fn check_open(root: &Path, case: &Value) -> Result<(), String> {
    let Some(opens) = case["open"].as_object() else {
        return Ok(());
    };
    let ctx = layers(case)?
        .into_iter()
        .fold(BuildContext::new(root), BuildContext::with_filter);
    for (path, want) in opens {
        let got = match ctx.open(path) {
            Ok(_) => "ok".to_owned(),
            Err(e) if e.is_not_found() => "not-exist".to_owned(),
            Err(e) => chain(&e),
        };
        if Some(got.as_str()) != want.as_str() {
            return Err(format!("open {path}: expected {want}, got {got}"));
        }
    }
    Ok(())
}

#[test]
fn build_cases_json() {
    run_json("dockerignore/build-cases.json", check_build);
}

/// What `COPY . .` would see: the context filtered by the selected ignore file.
fn check_build(case: &Value) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    for (name, content) in case["context"].as_object().into_iter().flatten() {
        fs::write(dir.path().join(name), content.as_str().unwrap_or_default())
            .map_err(|e| e.to_string())?;
    }
    let dockerfile = dir
        .path()
        .join(case["dockerfile"].as_str().unwrap_or("Dockerfile"));
    let selected = dockerignore_for(dir.path(), &dockerfile);
    if case["expect_error"].as_bool() == Some(true) {
        return match selected {
            Err(_) => Ok(()),
            Ok(_) => Err("ignore file accepted; expected an error".into()),
        };
    }
    let mut filter = Filter::new();
    if let Some(file) = selected.map_err(|e| chain(&e))? {
        filter = filter.with_exclude(file.matcher().clone());
    }
    let ctx = BuildContext::new(dir.path()).with_filter(filter);
    let copied: Vec<String> = ctx
        .entries()
        .map_err(|e| chain(&e))?
        .iter()
        .map(describe)
        .collect();
    for (name, content) in case["present"].as_object().into_iter().flatten() {
        if !copied.contains(&format!("file {name}")) {
            return Err(format!("{name} missing from {copied:?}"));
        }
        let mut got = String::new();
        let mut file = ctx.open(name).map_err(|e| chain(&e))?;
        file.read_to_string(&mut got).map_err(|e| e.to_string())?;
        if Some(got.as_str()) != content.as_str() {
            return Err(format!("{name}: content {got:?}"));
        }
    }
    for name in strings(&case["absent"]) {
        let leaked = copied
            .iter()
            .any(|c| c.split_once(' ').map(|c| c.1) == Some(&name));
        if leaked || !ctx.open(&name).is_err_and(|e| e.is_not_found()) {
            return Err(format!("{name} is in the context"));
        }
    }
    Ok(())
}
