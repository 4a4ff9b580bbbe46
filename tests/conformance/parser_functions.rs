//! Conformance corpus `parser-extra/`, its JSON vectors: the parser's functions one at
//! a time (heredoc words, directives, JSON arrays, word splitting, name=value, the
//! line length limit).

use rbuild::parser::{self, args, directives, heredoc, words};
use serde_json::Value;

use crate::support::{self, Tally};

#[test]
fn heredoc_words() {
    let mut tally = Tally::new("parser-extra/heredoc-words.json");
    let v = support::read_json("parser-extra/heredoc-words.json");
    for (i, case) in v["parse_heredoc"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let input = case["input"].as_str().unwrap_or_default();
        let got = heredoc::parse_heredoc(input);
        let outcome = match (&got, case.get("error"), &case["name"]) {
            (Err(_), Some(_), _) => Ok(()),
            (Ok(None), None, Value::Null) => Ok(()),
            (Ok(Some(h)), None, Value::String(n)) if &h.name == n => Ok(()),
            _ => Err(format!("{input:?}: got {got:?}")),
        };
        tally.check(&format!("parse_heredoc[{i}]"), outcome);
    }
    for (i, case) in v["heredocs_from_line"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let line = case["line"].as_str().unwrap_or_default();
        let want: Vec<&str> = case["names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let outcome = match heredoc::heredocs_from_line(line) {
            Ok(docs)
                if docs
                    .iter()
                    .map(|d| d.name.as_str())
                    .eq(want.iter().copied()) =>
            {
                Ok(())
            }
            other => Err(format!("{line:?}: got {other:?}")),
        };
        tally.check(&format!("heredocs_from_line[{i}]"), outcome);
    }
    for (i, case) in v["chomp"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let got = heredoc::chomp_tabs(case["input"].as_str().unwrap_or_default());
        let want = case["expect"].as_str().unwrap_or_default();
        tally.check(
            &format!("chomp[{i}]"),
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            },
        );
    }
    tally.finish();
}

fn opt_str(v: &Value) -> Option<&str> {
    v.as_str()
}

#[test]
fn directives() {
    let mut tally = Tally::new("parser-extra/directives.json");
    let v = support::read_json("parser-extra/directives.json");
    for (i, case) in v["parse_all"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let got = directives::parse_all(case["input"].as_str().unwrap_or_default());
        let want: Vec<(String, String)> = case["directives"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                (
                    d["name"].as_str().unwrap_or_default().to_owned(),
                    d["value"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let outcome = match got {
            Ok(ds)
                if ds
                    .iter()
                    .map(|d| (d.name.clone(), d.value.clone()))
                    .eq(want.iter().cloned()) =>
            {
                Ok(())
            }
            other => Err(format!("got {other:?}")),
        };
        tally.check(&format!("parse_all[{i}]"), outcome);
    }
    let mut detect = |section: &str, f: &dyn Fn(&Value, &str) -> Option<directives::Found>| {
        for (i, case) in v[section]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let input = case["input"].as_str().unwrap_or_default();
            let got = f(case, input);
            let want_found = case["found"].as_bool().unwrap_or(false);
            let mut problems = Vec::new();
            if got.is_some() != want_found {
                problems.push(format!("found={}", got.is_some()));
            }
            let (r, c, l) = got.as_ref().map_or((String::new(), String::new(), 0), |f| {
                (f.reference.clone(), f.cmdline.clone(), f.line)
            });
            if opt_str(&case["ref"]).is_some_and(|w| w != r) {
                problems.push(format!("ref {r:?}"));
            }
            if opt_str(&case["cmdline"]).is_some_and(|w| w != c) {
                problems.push(format!("cmdline {c:?}"));
            }
            if case["line"].as_u64().is_some_and(|w| w as usize != l) {
                problems.push(format!("line {l}"));
            }
            tally.check(
                &format!("{section}[{i}]"),
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(problems.join("; "))
                },
            );
        }
    };
    detect("detect_syntax", &|_, input| {
        directives::detect_syntax(input)
    });
    detect("parse_directive", &|case, input| {
        directives::parse_directive(case["key"].as_str().unwrap_or_default(), input)
    });
    tally.finish();
}

#[test]
fn json_arrays() {
    let mut tally = Tally::new("parser-extra/json-arrays.json");
    let v = support::read_json("parser-extra/json-arrays.json");
    for (i, case) in v["valid"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let input = case["input"].as_str().unwrap_or_default();
        let want: Vec<&str> = case["expect"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let outcome = match args::parse_json_array(input) {
            args::Json::Strings(got) if got.iter().map(String::as_str).eq(want.iter().copied()) => {
                Ok(())
            }
            _ => Err(format!("{input:?} not parsed as {want:?}")),
        };
        tally.check(&format!("valid[{i}]"), outcome);
    }
    for (i, case) in v["not_string_array"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let input = case.as_str().unwrap_or_default();
        let whole = parser::parse_ast(&format!("FROM x\nCMD {input}\n"));
        let outcome = match (args::parse_json_array(input), whole) {
            (args::Json::NotStrings, Err(e)) if e.kind == parser::ErrorKind::NotStringArray => {
                Ok(())
            }
            _ => Err(format!("{input:?} accepted")),
        };
        tally.check(&format!("not_string_array[{i}]"), outcome);
    }
    tally.finish();
}

#[test]
fn parse_words() {
    let mut tally = Tally::new("parser-extra/parse-words.json");
    let v = support::read_json("parser-extra/parse-words.json");
    for (i, case) in v["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let input = case["input"].as_str().unwrap_or_default();
        let want: Vec<&str> = case["expect"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let got = words::parse_words(input, '\\');
        tally.check(
            &format!("{i}"),
            if got.iter().map(String::as_str).eq(want.iter().copied()) {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            },
        );
    }
    tally.finish();
}

#[test]
fn name_values() {
    let mut tally = Tally::new("parser-extra/nameval.json");
    let v = support::read_json("parser-extra/nameval.json");
    for (i, case) in v["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let line = format!(
            "{} {}",
            case["instruction"].as_str().unwrap_or_default(),
            case["args"].as_str().unwrap_or_default()
        );
        let got = parser::node_from_line(&line, '\\');
        let outcome = match (&got, case.get("error").and_then(Value::as_str)) {
            (Err(e), Some(want)) if e.to_string() == want => Ok(()),
            (Ok(node), None) => {
                let want: Vec<&str> = case["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if node
                    .args
                    .iter()
                    .map(String::as_str)
                    .eq(want.iter().copied())
                {
                    Ok(())
                } else {
                    Err(format!("{:?}", node.args))
                }
            }
            _ => Err(format!("{line:?}: got {got:?}")),
        };
        tally.check(&format!("{i}"), outcome);
    }
    tally.finish();
}

#[test]
fn line_too_long() {
    let mut tally = Tally::new("parser-extra/line-too-long.json");
    let v = support::read_json("parser-extra/line-too-long.json");
    for (i, case) in v["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let text = format!(
            "{}{}{}",
            case["prefix"].as_str().unwrap_or_default(),
            case["repeat"]
                .as_str()
                .unwrap_or_default()
                .repeat(case["repeat_count"].as_u64().unwrap_or(0) as usize),
            case["suffix"].as_str().unwrap_or_default()
        );
        let want = case["error"].as_str().unwrap_or_default();
        let outcome = match parser::parse_ast(&text) {
            Err(e) if e.kind.to_string() == want => Ok(()),
            other => Err(format!("got {:?}", other.map(|a| a.children.len()))),
        };
        tally.check(&format!("{i}"), outcome);
    }
    // The limit is exact: a line of 65535 bytes is fine.
    let ok = format!("FROM x\nLABEL a={}\n", "a".repeat(parser::MAX_LINE - 8));
    tally.check(
        "boundary",
        parser::parse_ast(&ok)
            .map(|_| ())
            .map_err(|e| e.to_string()),
    );
    tally.finish();
}
