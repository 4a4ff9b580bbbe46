//! Conformance corpora `parser/`, `parser-negative/` and the Dockerfiles of
//! `parser-extra/` (line numbers, heredocs, empty continuation lines). The JSON
//! vectors of `parser-extra/` are in `parser_functions.rs`.

use std::path::Path;
use std::process::Command;

use rbuild::parser;
use serde_json::Value;

use crate::support::{self, Tally};

fn case_dirs(corpus: &str) -> Vec<(String, std::path::PathBuf)> {
    let mut out: Vec<_> = std::fs::read_dir(support::dir().join(corpus))
        .unwrap_or_else(|e| panic!("reading {corpus}: {e}"))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

fn parse_file(path: &Path) -> Result<parser::Ast, parser::ParseError> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    parser::parse_ast(&String::from_utf8_lossy(&bytes))
}

fn diff(expected: &str, actual: &str) -> String {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}: expected {e:?}, got {a:?}", i + 1);
        }
    }
    format!(
        "expected {} lines, got {}",
        expected.lines().count(),
        actual.lines().count()
    )
}

#[test]
fn dump_matches_buildkit() {
    let mut tally = Tally::new("parser");
    for (name, dir) in case_dirs("parser") {
        let expected = std::fs::read_to_string(dir.join("result")).unwrap_or_default();
        let outcome = match parse_file(&dir.join("Dockerfile")) {
            Err(e) => Err(format!("parse failed: {e}")),
            Ok(ast) if ast.dump() == expected => Ok(()),
            Ok(ast) => Err(diff(&expected, &ast.dump())),
        };
        tally.check(&name, outcome);
    }
    tally.finish();
}

#[test]
fn cli_dump_matches_buildkit() {
    let mut tally = Tally::new("parser(cli)");
    for (name, dir) in case_dirs("parser") {
        let expected = std::fs::read(dir.join("result")).unwrap_or_default();
        let out = Command::new(env!("CARGO_BIN_EXE_rbuild"))
            .args(["parse", "--format", "dump", "-f"])
            .arg(dir.join("Dockerfile"))
            .output()
            .expect("running rbuild");
        let outcome = if !out.status.success() {
            Err(format!(
                "exit {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        } else if out.stdout == expected {
            Ok(())
        } else {
            Err(diff(
                &String::from_utf8_lossy(&expected),
                &String::from_utf8_lossy(&out.stdout),
            ))
        };
        tally.check(&name, outcome);
    }
    tally.finish();
}

#[test]
fn negative_cases_fail() {
    let mut tally = Tally::new("parser-negative");
    for (name, dir) in case_dirs("parser-negative") {
        let outcome = match parse_file(&dir.join("Dockerfile"))
            .map(|ast| rbuild::parser::instructions::parse(&ast))
        {
            Ok(Ok(_)) => Err("parsed without error".to_owned()),
            _ => Ok(()),
        };
        tally.check(&name, outcome);
    }
    tally.finish();
}

#[test]
fn line_numbers() {
    let mut tally = Tally::new("parser-extra/line-numbers");
    let expected = support::read_json("parser-extra/line-numbers/expected.json");
    let ast =
        parse_file(&support::dir().join("parser-extra/line-numbers/Dockerfile")).expect("parses");
    let lines = |v: &Value| {
        (
            v["start_line"].as_u64().unwrap_or(0) as usize,
            v["end_line"].as_u64().unwrap_or(0) as usize,
        )
    };
    let root = lines(&expected["root"]);
    tally.check(
        "root",
        if ast.line_range() == root {
            Ok(())
        } else {
            Err(format!("{:?} != {root:?}", ast.line_range()))
        },
    );
    let children = expected["children"].as_array().cloned().unwrap_or_default();
    for (i, want) in children.iter().enumerate() {
        let got = ast.children.get(i).map(|n| (n.start_line, n.end_line));
        let outcome = if got == Some(lines(want)) {
            Ok(())
        } else {
            Err(format!("{got:?} != {:?}", lines(want)))
        };
        tally.check(&format!("child{i}"), outcome);
    }
    tally.check(
        "count",
        if ast.children.len() == children.len() {
            Ok(())
        } else {
            Err("child count".into())
        },
    );
    tally.finish();
}

fn check_heredocs(tally: &mut Tally, case: &str) {
    let expected = support::read_json(&format!("parser-extra/{case}/expected.json"));
    let ast = parse_file(&support::dir().join(format!("parser-extra/{case}/Dockerfile")))
        .expect("parses");
    for want in expected["children"].as_array().cloned().unwrap_or_default() {
        let index = want["index"].as_u64().unwrap_or(0) as usize;
        let Some(node) = ast.children.get(index) else {
            tally.check(&format!("{index}"), Err("missing child".into()));
            continue;
        };
        let got: Vec<Value> = node
            .heredocs
            .iter()
            .map(|h| {
                serde_json::json!({"name": h.name, "content": h.content, "expand": h.expand, "chomp": h.chomp, "fd": h.fd})
            })
            .collect();
        let got = if got.is_empty() {
            Value::Null
        } else {
            Value::Array(got)
        };
        let outcome = if node.original != want["instruction"].as_str().unwrap_or_default() {
            Err(format!("instruction {:?}", node.original))
        } else if got == want["heredocs"] {
            Ok(())
        } else {
            Err(format!("got {got}, want {}", want["heredocs"]))
        };
        tally.check(&format!("{index}"), outcome);
    }
}

#[test]
fn heredoc_extraction() {
    let mut tally = Tally::new("parser-extra/heredocs");
    check_heredocs(&mut tally, "heredoc-extract");
    check_heredocs(&mut tally, "heredoc-json");
    tally.finish();
}

#[test]
fn empty_continuation_warnings() {
    let mut tally = Tally::new("parser-extra/empty-continuation-warning");
    let expected = support::read_json("parser-extra/empty-continuation-warning/expected.json");
    let ast =
        parse_file(&support::dir().join("parser-extra/empty-continuation-warning/Dockerfile"))
            .expect("parses");
    let count = expected["warning_count"].as_u64().unwrap_or(0) as usize;
    tally.check(
        "count",
        if ast.warnings.len() == count {
            Ok(())
        } else {
            Err(format!("{} warnings", ast.warnings.len()))
        },
    );
    for (i, want) in expected["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let Some(got) = ast.warnings.get(i) else {
            continue;
        };
        let mut problems = Vec::new();
        for s in want["short_contains"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !got.short.contains(s) {
                problems.push(format!("short {:?} lacks {s:?}", got.short));
            }
        }
        if let Some(d) = want["detail_contains"].as_str() {
            if !got.detail.contains(d) {
                problems.push(format!("detail lacks {d:?}"));
            }
        }
        if want["short_per_source"]
            .as_str()
            .is_some_and(|s| s != got.short)
        {
            problems.push("short differs".into());
        }
        if want["url_per_source"]
            .as_str()
            .is_some_and(|s| s != got.url)
        {
            problems.push("url differs".into());
        }
        if want["line_per_source"]
            .as_u64()
            .is_some_and(|l| l as usize != got.line)
        {
            problems.push(format!("line {}", got.line));
        }
        tally.check(
            &format!("warning{i}"),
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            },
        );
    }
    tally.finish();
}
