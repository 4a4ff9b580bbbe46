//! From an untyped [`Node`] to a typed instruction (BuildKit's `ParseInstruction`):
//! argument counts, flags, heredoc sources, ONBUILD triggers, HEALTHCHECK options.

use super::commands::{
    ArgDef, CommandLine, CopyOptions, CopySpec, From, HealthSpec, InlineFile, Instruction,
    KeyValue, RunSpec, SourceContent,
};
use super::error::InstructionError as E;
use super::flags::{FlagKind, Flags};
use crate::parser::heredoc::{chomp_tabs, parse_heredoc};
use crate::parser::Node;

/// A converted node: the start of a stage, or an instruction inside one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    From(From),
    Instruction(Instruction),
}

/// Converts one node.
pub fn parse_instruction(node: &Node) -> Result<Parsed, E> {
    let instruction = match node.name().as_str() {
        "from" => return parse_from(node).map(Parsed::From),
        "env" => Instruction::Env {
            pairs: key_values(node, "ENV")?,
        },
        "label" => Instruction::Label {
            pairs: key_values(node, "LABEL")?,
        },
        "maintainer" => Instruction::Maintainer {
            name: exactly_one(node, "MAINTAINER")?,
        },
        "workdir" => Instruction::Workdir {
            path: exactly_one(node, "WORKDIR")?,
        },
        "user" => Instruction::User {
            user: exactly_one(node, "USER")?,
        },
        "stopsignal" => Instruction::Stopsignal {
            signal: exactly_one(node, "STOPSIGNAL")?,
        },
        "add" => Instruction::Add(parse_copy(node, "ADD")?),
        "copy" => Instruction::Copy(parse_copy(node, "COPY")?),
        "onbuild" => parse_onbuild(node)?,
        "run" => Instruction::Run(parse_run(node)?),
        "cmd" => Instruction::Cmd(command_line(node, "CMD")?),
        "entrypoint" => Instruction::Entrypoint(command_line(node, "ENTRYPOINT")?),
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(node)?),
        "expose" => Instruction::Expose {
            ports: at_least_one(node, "EXPOSE")?,
        },
        "volume" => parse_volume(node)?,
        "arg" => Instruction::Arg {
            args: parse_arg(node)?,
        },
        "shell" => parse_shell(node)?,
        _ => {
            return Err(E::UnknownInstruction {
                keyword: node.keyword.clone(),
            })
        }
    };
    Ok(Parsed::Instruction(instruction))
}

/// Parses the node's flags against `decl` (name, kind, default).
fn flags(node: &Node, decl: &[(&str, FlagKind, &str)]) -> Result<Flags, E> {
    // Most instructions have no flags: nothing to declare then (every bool flag here
    // defaults to false and string flags are read as options, so an empty set answers
    // the same).
    if node.flags.is_empty() {
        return Ok(Flags::default());
    }
    let mut flags = Flags::default();
    for (name, kind, default) in decl {
        flags.declare(name, *kind, default);
    }
    flags.parse(&node.flags)?;
    Ok(flags)
}

fn no_flags(node: &Node) -> Result<(), E> {
    flags(node, &[]).map(drop)
}

fn exactly_one(node: &Node, keyword: &'static str) -> Result<String, E> {
    no_flags(node)?;
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(E::ExactlyOneArgument { keyword }),
    }
}

fn at_least_one(node: &Node, keyword: &'static str) -> Result<Vec<String>, E> {
    if node.args.is_empty() {
        return Err(E::AtLeastOneArgument { keyword });
    }
    no_flags(node)?;
    Ok(node.args.clone())
}

fn key_values(node: &Node, keyword: &'static str) -> Result<Vec<KeyValue>, E> {
    no_flags(node)?;
    if node.args.is_empty() {
        return Err(E::AtLeastOneArgument { keyword });
    }
    if !node.args.len().is_multiple_of(3) {
        return Err(E::TooManyArguments { keyword });
    }
    node.args
        .chunks(3)
        .map(|c| match c {
            [key, _, _] if key.is_empty() => Err(E::BlankName { keyword }),
            [key, value, delim] => Ok(KeyValue {
                key: key.clone(),
                value: value.clone(),
                legacy: delim.is_empty(),
            }),
            _ => Err(E::TooManyArguments { keyword }),
        })
        .collect()
}

fn parse_from(node: &Node) -> Result<From, E> {
    let flags = flags(node, &[("platform", FlagKind::String, "")])?;
    let name = match node.args.as_slice() {
        [_] => None,
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !valid_stage_name(&lower) {
                return Err(E::InvalidStageName { name: name.clone() });
            }
            Some(lower)
        }
        _ => return Err(E::FromArguments),
    };
    Ok(From {
        base: node.args[0].clone(),
        name,
        platform: flags.opt_string("platform"),
        original: node.original.clone(),
        span: crate::parser::Span::new(node.start_line, node.end_line, node.col),
        doc_comment: String::new(),
    })
}

/// BuildKit's `^[a-z][a-z0-9-_.]*$`.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn parse_copy(node: &Node, keyword: &'static str) -> Result<CopySpec, E> {
    let is_add = keyword == "ADD";
    let mut decl = vec![
        ("chown", FlagKind::String, ""),
        ("chmod", FlagKind::String, ""),
        ("link", FlagKind::Bool, "false"),
        ("parents", FlagKind::Bool, "false"),
        ("exclude", FlagKind::Strings, ""),
    ];
    if is_add {
        decl.extend([
            ("checksum", FlagKind::String, ""),
            ("keep-git-dir", FlagKind::Bool, "false"),
            ("unpack", FlagKind::Bool, "false"),
        ]);
    } else {
        decl.push(("from", FlagKind::String, ""));
    }
    if node.args.len() < 2 {
        return Err(E::NoDestination { keyword });
    }
    let flags = flags(node, &decl)?;
    let (dest, sources) = node.args.split_last().ok_or(E::NoDestination { keyword })?;
    if matches!(parse_heredoc(dest), Ok(Some(_))) {
        return Err(E::BadHeredoc {
            keyword,
            role: "a destination",
        });
    }
    let mut spec = CopySpec {
        sources: Vec::new(),
        contents: Vec::new(),
        dest: dest.clone(),
        from: flags.opt_string("from"),
        options: CopyOptions {
            chown: flags.opt_string("chown"),
            chmod: flags.opt_string("chmod"),
            link: flags.bool("link"),
            parents: flags.bool("parents"),
            exclude: flags.strings("exclude"),
            checksum: flags.opt_string("checksum"),
            keep_git_dir: flags
                .is_used("keep-git-dir")
                .then(|| flags.bool("keep-git-dir")),
            unpack: flags.is_used("unpack").then(|| flags.bool("unpack")),
        },
    };
    for src in sources {
        match parse_heredoc(src) {
            Ok(Some(doc)) if !node.json => {
                let body = node
                    .heredocs
                    .iter()
                    .find(|h| h.name == doc.name)
                    .map(|h| h.content.as_str());
                let body = body.unwrap_or_default();
                let data = if doc.chomp {
                    chomp_tabs(body)
                } else {
                    body.to_owned()
                };
                spec.contents.push(SourceContent {
                    path: doc.name,
                    data,
                    expand: doc.expand,
                });
            }
            _ => {
                if !is_add && (src.starts_with("http://") || src.starts_with("https://")) {
                    return Err(E::CopyFromUrl);
                }
                spec.sources.push(src.clone());
            }
        }
    }
    Ok(spec)
}

fn parse_onbuild(node: &Node) -> Result<Instruction, E> {
    let Some(sub) = &node.sub else {
        return Err(E::AtLeastOneArgument { keyword: "ONBUILD" });
    };
    no_flags(node)?;
    let trigger = sub.keyword.trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err(E::OnbuildChained),
        "MAINTAINER" | "FROM" => return Err(E::OnbuildTrigger { trigger }),
        _ => {}
    }
    // The trigger is validated now so errors point at the ONBUILD line.
    parse_instruction(sub)?;
    let original = node.original.trim_start();
    let expression = original
        .get(node.keyword.len()..)
        .unwrap_or_default()
        .trim_start();
    Ok(Instruction::Onbuild {
        expression: expression.to_owned(),
    })
}

/// The command list of a CMD/ENTRYPOINT/RUN/SHELL node: exec form as-is, shell form
/// joined into one string (BuildKit's `handleJSONArgs`).
pub fn json_args(args: &[String], json: bool) -> Vec<String> {
    if json || args.is_empty() {
        return args.to_vec();
    }
    vec![args.join(" ")]
}

fn command_line(node: &Node, _keyword: &'static str) -> Result<CommandLine, E> {
    no_flags(node)?;
    Ok(shell_dependent(node))
}

fn shell_dependent(node: &Node) -> CommandLine {
    let files = node
        .heredocs
        .iter()
        .map(|h| InlineFile {
            name: h.name.clone(),
            data: h.content.clone(),
            chomp: h.chomp,
            expand: h.expand,
        })
        .collect();
    CommandLine {
        args: json_args(&node.args, node.json),
        prepend_shell: !node.json,
        files,
    }
}

fn parse_run(node: &Node) -> Result<RunSpec, E> {
    let flags = flags(
        node,
        &[
            ("mount", FlagKind::Strings, ""),
            ("network", FlagKind::String, "default"),
            ("security", FlagKind::String, "sandbox"),
            ("device", FlagKind::Strings, ""),
        ],
    )?;
    Ok(RunSpec {
        command: shell_dependent(node),
        mounts: flags.strings("mount"),
        network: flags.opt_string("network"),
        security: flags.opt_string("security"),
        devices: flags.strings("device"),
        flags_used: flags.used(),
    })
}

fn parse_healthcheck(node: &Node) -> Result<HealthSpec, E> {
    let Some((kind, rest)) = node.args.split_first() else {
        return Err(E::AtLeastOneArgument {
            keyword: "HEALTHCHECK",
        });
    };
    let kind = kind.to_uppercase();
    if kind == "NONE" {
        if !rest.is_empty() {
            return Err(E::HealthcheckNoneArgs);
        }
        let test = vec![kind];
        return Ok(HealthSpec {
            test,
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        });
    }
    let s = FlagKind::String;
    let names = [
        "interval",
        "timeout",
        "start-period",
        "start-interval",
        "retries",
    ];
    let flags = flags(node, &names.map(|n| (n, s, "")))?;
    if kind != "CMD" {
        return Err(E::HealthcheckType { kind });
    }
    let cmd = json_args(rest, node.json);
    if cmd.is_empty() {
        return Err(E::HealthcheckMissingCmd);
    }
    let mut test = vec![if node.json {
        "CMD".to_owned()
    } else {
        "CMD-SHELL".to_owned()
    }];
    test.extend(cmd);
    let retries = match flags.opt_string("retries").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n < 0 => return Err(E::NegativeRetries { value: n }),
            Ok(n) => Some(u32::try_from(n).map_err(|_| E::BadRetries { value: v.clone() })?),
            Err(_) => return Err(E::BadRetries { value: v }),
        },
    };
    Ok(HealthSpec {
        test,
        interval: flags.opt_string("interval"),
        timeout: flags.opt_string("timeout"),
        start_period: flags.opt_string("start-period"),
        start_interval: flags.opt_string("start-interval"),
        retries,
    })
}

fn parse_volume(node: &Node) -> Result<Instruction, E> {
    let paths = at_least_one(node, "VOLUME")?;
    let paths: Vec<String> = paths.iter().map(|p| p.trim().to_owned()).collect();
    if paths.iter().any(String::is_empty) {
        return Err(E::EmptyVolume);
    }
    Ok(Instruction::Volume { paths })
}

fn parse_arg(node: &Node) -> Result<Vec<ArgDef>, E> {
    if node.args.is_empty() {
        return Err(E::AtLeastOneArgument { keyword: "ARG" });
    }
    no_flags(node)?;
    Ok(node
        .args
        .iter()
        .map(|arg| {
            let (key, default) = match arg.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let doc_comment = doc_comment(&node.comments, &key);
            ArgDef {
                key,
                default,
                doc_comment,
            }
        })
        .collect())
}

/// The text after `name ` on the first comment line that starts with it.
pub fn doc_comment(comments: &[String], name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let prefix = format!("{name} ");
    comments
        .iter()
        .find_map(|c| c.strip_prefix(&prefix))
        .unwrap_or_default()
        .to_owned()
}

fn parse_shell(node: &Node) -> Result<Instruction, E> {
    no_flags(node)?;
    let shell = json_args(&node.args, node.json);
    if shell.is_empty() {
        return Err(E::AtLeastOneArgument { keyword: "SHELL" });
    }
    if !node.json {
        return Err(E::NotJson { keyword: "SHELL" });
    }
    Ok(Instruction::Shell { shell })
}
