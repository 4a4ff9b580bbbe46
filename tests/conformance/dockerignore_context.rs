//! Conformance corpus: `dockerignore` (README section 5), its context files
//! `walk-cases.json` and `build-cases.json`: they drive `rbuild::context` over trees
//! built in temporary directories.

use std::fs;
use std::io::Read;
use std::path::Path;

use rbuild::context::{dockerignore_for, BuildContext, Entry, Filter};
use serde_json::Value;

use crate::support::{run_json, strings};

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
