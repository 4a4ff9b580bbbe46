//! Conformance corpora of the instruction value parsers (`instructions/`): EXPOSE ports,
//! HEALTHCHECK durations, `RUN --device` and git references. One test per corpus file;
//! every field a vector gives is checked.

use rbuild::parser::instructions::values::{
    fragment_format, parse_device, parse_git_ref, parse_opt_interval, parse_port_spec, parse_ports,
    GitRef, PortKey,
};
use serde_json::Value;

use crate::support::{read_json, Tally};

/// The vector's array `key`, or a loud failure (an empty corpus must not pass silently).
fn cases<'a>(doc: &'a Value, key: &str) -> &'a [Value] {
    match doc.get(key).and_then(Value::as_array) {
        Some(cases) => cases,
        None => panic!("corpus has no `{key}` array"),
    }
}

fn text<'a>(case: &'a Value, key: &str) -> Result<&'a str, String> {
    case.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("vector has no string `{key}`"))
}

fn strings(case: &Value, key: &str) -> Result<Vec<String>, String> {
    case.get(key)
        .and_then(Value::as_array)
        .and_then(|items| {
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| format!("vector has no string array `{key}`"))
}

/// Compares a port parse with the vector's `expect` list or `error` (string or `true`).
fn check_ports(case: &Value, got: Result<Vec<PortKey>, String>) -> Result<(), String> {
    match (case.get("error"), got) {
        (Some(Value::Bool(true)), Err(_)) => Ok(()),
        (Some(Value::String(want)), Err(got)) if got == *want => Ok(()),
        (Some(want), got) => Err(format!("want error {want}, got {got:?}")),
        (None, Err(got)) => Err(format!("unexpected error: {got}")),
        (None, Ok(keys)) => {
            let got: Vec<String> = keys.iter().map(ToString::to_string).collect();
            let want = strings(case, "expect")?;
            (got == want)
                .then_some(())
                .ok_or(format!("want {want:?}, got {got:?}"))
        }
    }
}

#[test]
fn expose_ports() {
    let corpus = "instructions/expose-ports.json";
    let doc = read_json(corpus);
    let mut tally = Tally::new(corpus);
    for (i, case) in cases(&doc, "port").iter().enumerate() {
        let outcome = text(case, "spec")
            .and_then(|spec| check_ports(case, parse_port_spec(spec).map_err(|e| e.to_string())));
        tally.check(&format!("port/{i}"), outcome);
    }
    for (i, case) in cases(&doc, "ports").iter().enumerate() {
        let outcome = strings(case, "specs")
            .and_then(|specs| check_ports(case, parse_ports(&specs).map_err(|e| e.to_string())));
        tally.check(&format!("ports/{i}"), outcome);
    }
    tally.finish();
}

#[test]
fn healthcheck_interval() {
    let corpus = "instructions/healthcheck-interval.json";
    let doc = read_json(corpus);
    let mut tally = Tally::new(corpus);
    for (i, case) in cases(&doc, "cases").iter().enumerate() {
        let outcome = (|| {
            let got = parse_opt_interval(text(case, "flag")?, text(case, "value")?);
            match (case.get("error_contains").and_then(Value::as_str), got) {
                (Some(want), Err(e)) if e.to_string().contains(want) => Ok(()),
                (Some(want), got) => Err(format!("want error containing {want:?}, got {got:?}")),
                (None, Ok(_)) if case.get("ok") == Some(&Value::Bool(true)) => Ok(()),
                (None, got) => Err(format!("want ok, got {got:?}")),
            }
        })();
        tally.check(&format!("cases/{i}"), outcome);
    }
    tally.finish();
}

#[test]
fn run_device() {
    let corpus = "instructions/run-device.json";
    let doc = read_json(corpus);
    let mut tally = Tally::new(corpus);
    for (i, case) in cases(&doc, "cases").iter().enumerate() {
        let outcome = (|| {
            let got = parse_device(text(case, "input")?).map_err(|e| e.to_string());
            match (case.get("error").and_then(Value::as_str), got) {
                (Some(want), Err(got)) if got == want => Ok(()),
                (Some(want), got) => Err(format!("want error {want:?}, got {got:?}")),
                (None, Err(got)) => Err(format!("unexpected error: {got}")),
                (None, Ok(device)) => {
                    let want_name = text(case, "name")?;
                    let want_required = case.get("required").and_then(Value::as_bool);
                    if device.name != want_name || Some(device.required) != want_required {
                        return Err(format!(
                            "want name {want_name:?} required {want_required:?}, got {device:?}"
                        ));
                    }
                    Ok(())
                }
            }
        })();
        tally.check(&format!("cases/{i}"), outcome);
    }
    tally.finish();
}

/// Compares every field of a `parse` vector's `expected` object (absent = zero value).
fn check_git_fields(want: &Value, got: &GitRef) -> Result<(), String> {
    let field = |key: &str| want.get(key).and_then(Value::as_str).unwrap_or_default();
    let flag = |key: &str| want.get(key).and_then(Value::as_bool).unwrap_or_default();
    let fields = [
        ("remote", got.remote.clone(), field("remote").to_owned()),
        (
            "short_name",
            got.short_name.clone(),
            field("short_name").to_owned(),
        ),
        (
            "ref",
            got.reference.clone().unwrap_or_default(),
            field("ref").to_owned(),
        ),
        (
            "subdir",
            got.subdir.clone().unwrap_or_default(),
            field("subdir").to_owned(),
        ),
        (
            "checksum",
            got.checksum.clone().unwrap_or_default(),
            field("checksum").to_owned(),
        ),
        (
            "mtime",
            got.mtime.map(|m| m.as_str()).unwrap_or_default().to_owned(),
            field("mtime").to_owned(),
        ),
        (
            "indistinguishable_from_local",
            got.indistinguishable_from_local.to_string(),
            flag("indistinguishable_from_local").to_string(),
        ),
        (
            "unencrypted_tcp",
            got.unencrypted_tcp.to_string(),
            flag("unencrypted_tcp").to_string(),
        ),
        (
            "fetch_by_commit",
            got.fetch_by_commit.to_string(),
            flag("fetch_by_commit").to_string(),
        ),
    ];
    let known: Vec<&str> = fields.iter().map(|(name, _, _)| *name).collect();
    if let Some(unknown) = want
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        return Err(format!("vector field `{unknown}` is not checked"));
    }
    match fields.iter().find(|(_, got, want)| got != want) {
        Some((name, got, want)) => Err(format!("{name}: want {want:?}, got {got:?}")),
        None => Ok(()),
    }
}

fn check_git_parse(case: &Value) -> Result<(), String> {
    let got = parse_git_ref(text(case, "ref")?);
    let error_contains = case.get("error_contains").and_then(Value::as_str);
    match (case.get("expected"), got) {
        // `null`: rejected, either as "not a git reference" or with an error.
        (Some(Value::Null), Ok(None)) if error_contains.is_none() => Ok(()),
        (Some(Value::Null), Err(e)) if error_contains.is_none_or(|w| e.to_string().contains(w)) => {
            Ok(())
        }
        (Some(Value::Null), got) => {
            Err(format!("want rejection ({error_contains:?}), got {got:?}"))
        }
        (Some(want), Ok(Some(got))) => check_git_fields(want, &got),
        (want, got) => Err(format!("want {want:?}, got {got:?}")),
    }
}

fn check_fragment_format(case: &Value) -> Result<(), String> {
    let input = text(case, "ref")?;
    let keep_subdir = case.get("keep_subdir").and_then(Value::as_bool);
    let want_ok = case.get("ok").and_then(Value::as_bool);
    let (Some(keep_subdir), Some(want_ok)) = (keep_subdir, want_ok) else {
        return Err("vector lacks keep_subdir or ok".to_owned());
    };
    let formatted = fragment_format(input, keep_subdir);
    let got_ok = formatted.is_some();
    let got = formatted.unwrap_or_else(|| input.to_owned());
    let want = text(case, "expected")?;
    if got != want || got_ok != want_ok {
        return Err(format!(
            "want ({want:?}, {want_ok}), got ({got:?}, {got_ok})"
        ));
    }
    Ok(())
}

#[test]
fn git_ref() {
    let corpus = "instructions/git-ref.json";
    let doc = read_json(corpus);
    let mut tally = Tally::new(corpus);
    for (i, case) in cases(&doc, "parse").iter().enumerate() {
        tally.check(&format!("parse/{i}"), check_git_parse(case));
    }
    for (i, case) in cases(&doc, "fragment_format").iter().enumerate() {
        tally.check(&format!("fragment_format/{i}"), check_fragment_format(case));
    }
    tally.finish();
}
