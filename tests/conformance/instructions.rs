//! Conformance corpus `instructions/`: instruction conversion, flags, command lines and
//! doc comments. (`expose-ports`, `healthcheck-interval`, `run-device` and `git-ref` are
//! in `values.rs`; the whole-Dockerfile `convert.json` and `error-lines.json` in
//! `convert.rs`.)

use rbuild::parser::instructions::{self, FlagKind, Flags, Instruction, Parsed};
use rbuild::parser::{self, Node};
use serde_json::{json, Value};

use crate::support::{self, Tally};

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// The node a vector is about: the first instruction of `dockerfile`, or a hand-built
/// node from `ast` (`value` = keyword, `next` = argument values).
fn first_node(case: &Value) -> Result<Node, String> {
    if let Some(text) = case["dockerfile"].as_str() {
        let ast = parser::parse_ast(text).map_err(|e| format!("parse failed: {e}"))?;
        return ast
            .children
            .first()
            .cloned()
            .ok_or_else(|| "no instruction".to_owned());
    }
    let ast = &case["ast"];
    let keyword = ast["value"].as_str().unwrap_or_default().to_owned();
    let mut node = parser::node_from_line(&keyword, '\\').map_err(|e| e.to_string())?;
    node.args = strs(&ast["next"]);
    node.original = case["original"].as_str().unwrap_or_default().to_owned();
    Ok(node)
}

#[test]
fn errors() {
    let mut tally = Tally::new("instructions/errors.json");
    let v = support::read_json("instructions/errors.json");
    for (i, case) in v["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let outcome =
            first_node(case).and_then(|node| match instructions::parse_instruction(&node) {
                Ok(p) => Err(format!("converted without error: {p:?}")),
                Err(e) => {
                    let msg = e.to_string();
                    match (case["error"].as_str(), case["error_contains"].as_str()) {
                        (Some(want), _) if msg == want => Ok(()),
                        (_, Some(want)) if msg.contains(want) => Ok(()),
                        _ => Err(format!("wrong error {msg:?}")),
                    }
                }
            });
        tally.check(
            &format!("{i}:{}", case["source"].as_str().unwrap_or_default()),
            outcome,
        );
    }
    tally.finish();
}

fn check_command(case: &Value, parsed: &Parsed) -> Result<(), String> {
    let want = &case["expect"];
    let mut got = serde_json::Map::new();
    match parsed {
        Parsed::Instruction(Instruction::Healthcheck(h)) => {
            got.insert("healthcheck_test".into(), json!(h.test));
        }
        Parsed::Instruction(Instruction::Run(r)) => {
            if want.get("run_flags_used").is_some() {
                got.insert("run_flags_used".into(), json!(r.flags_used));
            }
            let files: Vec<Value> = r
                .command
                .files
                .iter()
                .map(|f| json!({"name": f.name, "data": f.data, "chomp": f.chomp}))
                .collect();
            if want.get("run").is_some() {
                got.insert(
                    "run".into(),
                    json!({"prepend_shell": r.command.prepend_shell, "cmdline": r.command.args, "files": files}),
                );
            }
        }
        Parsed::Instruction(Instruction::Copy(c) | Instruction::Add(c)) => {
            let contents: Vec<Value> = c
                .contents
                .iter()
                .map(|s| json!({"path": s.path, "data": s.data, "expand": s.expand}))
                .collect();
            got.insert(
                "copy".into(),
                json!({"dest": c.dest, "source_paths": c.sources, "source_contents": contents}),
            );
        }
        other => return Err(format!("unexpected {other:?}")),
    }
    let got = Value::Object(got);
    if &got == want {
        Ok(())
    } else {
        Err(format!("got {got}, want {want}"))
    }
}

#[test]
fn commands() {
    let mut tally = Tally::new("instructions/commands.json");
    let v = support::read_json("instructions/commands.json");
    for (i, case) in v["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let outcome = first_node(case).and_then(|node| {
            let parsed = instructions::parse_instruction(&node).map_err(|e| e.to_string())?;
            check_command(case, &parsed)
        });
        tally.check(
            &format!("{i}:{}", case["source"].as_str().unwrap_or_default()),
            outcome,
        );
    }
    tally.finish();
}

#[test]
fn flags() {
    let mut tally = Tally::new("instructions/flags.json");
    let v = support::read_json("instructions/flags.json");
    for (i, case) in v["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let mut flags = Flags::default();
        for def in case["defs"].as_array().into_iter().flatten() {
            let name = def["name"].as_str().unwrap_or_default();
            let (kind, default) = match def["type"].as_str() {
                Some("bool") => (
                    FlagKind::Bool,
                    def["default"].as_bool().unwrap_or(false).to_string(),
                ),
                _ => (
                    FlagKind::String,
                    def["default"].as_str().unwrap_or_default().to_owned(),
                ),
            };
            flags.declare(name, kind, &default);
        }
        let result = flags.parse(&strs(&case["args"]));
        let want_ok = case["ok"].as_bool().unwrap_or(false);
        let mut problems = Vec::new();
        if result.is_ok() != want_ok {
            problems.push(format!("ok={} ({result:?})", result.is_ok()));
        }
        if result.is_ok() {
            if let Some(values) = case["values"].as_object() {
                for (name, want) in values {
                    let got = match want {
                        Value::Bool(_) => json!(flags.bool(name)),
                        _ => json!(flags.string(name)),
                    };
                    if &got != want {
                        problems.push(format!("{name}={got}"));
                    }
                }
            }
            if case.get("used").is_some() && flags.used() != strs(&case["used"]) {
                problems.push(format!("used {:?}", flags.used()));
            }
        }
        tally.check(
            &format!("{i}"),
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            },
        );
    }
    tally.finish();
}

#[test]
fn json_args() {
    let mut tally = Tally::new("instructions/json-args.json");
    let v = support::read_json("instructions/json-args.json");
    for (i, case) in v["cases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let got = instructions::json_args(
            &strs(&case["args"]),
            case["json"].as_bool().unwrap_or(false),
        );
        let want = strs(&case["expect"]);
        tally.check(
            &format!("{i}"),
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            },
        );
    }
    tally.finish();
}

#[test]
fn doc_comments() {
    let mut tally = Tally::new("instructions/doc-comments.json");
    let v = support::read_json("instructions/doc-comments.json");
    let df =
        instructions::parse_text(v["dockerfile"].as_str().unwrap_or_default()).expect("parses");
    let args_json = |args: &[instructions::ArgDef]| -> Vec<Value> {
        args.iter()
            .map(|a| json!({"key": a.key, "doc_comment": a.doc_comment}))
            .collect()
    };
    let stages: Vec<Value> = df
        .stages
        .iter()
        .map(|s| {
            let commands: Vec<Value> = s
                .commands
                .iter()
                .filter_map(|c| match &c.instruction {
                    Instruction::Arg { args } => Some(json!({"arg": args_json(args)})),
                    _ => None,
                })
                .collect();
            json!({"doc_comment": s.from.doc_comment, "commands": commands})
        })
        .collect();
    let got = json!({"stages": stages, "meta_args": args_json(&df.meta_args)});
    let want = &v["expect"];
    tally.check(
        "stages",
        if got["stages"] == want["stages"] {
            Ok(())
        } else {
            Err(format!("{}", got["stages"]))
        },
    );
    tally.check(
        "meta_args",
        if got["meta_args"] == want["meta_args"] {
            Ok(())
        } else {
            Err(format!("{}", got["meta_args"]))
        },
    );
    tally.finish();
}
