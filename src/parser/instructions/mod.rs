//! The typed layer of the front end: [`Node`]s in, a [`Dockerfile`] out.
//!
//! Converts each instruction (argument counts, flags, heredoc sources, ONBUILD rules),
//! groups them into stages at each `FROM`, keeps the `ARG`s before the first `FROM`, and
//! attaches doc comments. Nothing is expanded here: the plan expands values with the
//! `ARG`/`ENV` state of each stage, as BuildKit does at dispatch.

mod commands;
mod convert;
mod error;
mod flags;
pub mod values;

pub use commands::{
    ArgDef, Command, CommandLine, CopyOptions, CopySpec, From, HealthSpec, InlineFile, Instruction,
    KeyValue, RunSpec, SourceContent,
};
pub use convert::{doc_comment, json_args, parse_instruction, Parsed};
pub use error::{DockerfileError, DockerfileErrorKind, InstructionError};
pub use flags::{FlagKind, Flags};

use serde::Serialize;

use super::directives::Directive;
use super::{Ast, Node, Span, Warning};

/// A build stage: its `FROM` line and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub from: From,
    pub commands: Vec<Command>,
}

impl Stage {
    /// The stage's name (`AS name`), lowercased.
    pub fn name(&self) -> Option<&str> {
        self.from.name.as_deref()
    }
}

/// A whole Dockerfile, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// Parser directives (`syntax`, `escape`, `check`).
    pub directives: Vec<Directive>,
    /// The escape token in effect.
    pub escape: char,
    /// `ARG`s before the first `FROM` (global build arguments).
    pub meta_args: Vec<ArgDef>,
    /// Stages in file order.
    pub stages: Vec<Stage>,
    /// Non-fatal findings.
    pub warnings: Vec<Warning>,
}

fn span_of(node: &Node) -> Span {
    Span::new(node.start_line, node.end_line, node.col)
}

/// The span of an error in `node`, pointing at the flag or word it names when that is
/// on the instruction's first line.
fn error_span(node: &Node, err: &InstructionError) -> Span {
    let needle = match err {
        InstructionError::UnknownFlag { flag, .. }
        | InstructionError::DuplicateFlag { flag }
        | InstructionError::MissingFlagValue { flag }
        | InstructionError::BadBool { flag, .. } => format!("--{flag}"),
        InstructionError::OnbuildTrigger { trigger } => trigger.clone(),
        _ => return span_of(node),
    };
    let first_line = node.original.lines().next().unwrap_or_default();
    let found = first_line
        .to_ascii_lowercase()
        .find(&needle.to_ascii_lowercase());
    let col = found.map_or(node.col, |at| node.col + first_line[..at].chars().count());
    Span::new(node.start_line, node.end_line, col)
}

/// Converts the untyped tree into a [`Dockerfile`].
pub fn parse(ast: &Ast) -> Result<Dockerfile, DockerfileError> {
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &ast.children {
        let at = |e: InstructionError| DockerfileError::new(error_span(node, &e), e);
        match parse_instruction(node).map_err(at)? {
            Parsed::From(mut from) => {
                from.doc_comment =
                    doc_comment(&node.comments, from.name.as_deref().unwrap_or_default());
                stages.push(Stage {
                    from,
                    commands: Vec::new(),
                });
            }
            Parsed::Instruction(instruction) => match stages.last_mut() {
                Some(stage) => {
                    let command = Command {
                        instruction,
                        original: node.original.clone(),
                        span: span_of(node),
                    };
                    stage.commands.push(command);
                }
                None => match instruction {
                    Instruction::Arg { args } => meta_args.extend(args),
                    _ => return Err(at(InstructionError::NoStage)),
                },
            },
        }
    }
    Ok(Dockerfile {
        directives: ast.directives.clone(),
        escape: ast.escape,
        meta_args,
        stages,
        warnings: ast.warnings.clone(),
    })
}

/// Parses Dockerfile text all the way to the typed [`Dockerfile`].
pub fn parse_text(text: &str) -> Result<Dockerfile, DockerfileError> {
    parse(&super::parse_ast(text)?)
}

/// A HEALTHCHECK duration flag in nanoseconds (0 when empty), with BuildKit's rules.
pub fn parse_duration_flag(flag: &str, value: &str) -> Result<i64, values::Error> {
    let d = values::parse_opt_interval(flag, value)?;
    Ok(d.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
}

/// The `ExposedPorts` keys (`80/tcp`) of EXPOSE arguments, in order.
pub fn expose_keys(specs: &[String]) -> Result<Vec<String>, values::Error> {
    Ok(values::parse_ports(specs)?
        .iter()
        .map(ToString::to_string)
        .collect())
}

#[cfg(test)]
mod fuzz {
    //! No input may make the front end panic: arbitrary text biased towards Dockerfile
    //! syntax goes through both layers and the dump. `PROPTEST_CASES` raises the count.

    use proptest::prelude::*;

    fn dockerfile_like() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("FROM ".to_owned()),
            Just("RUN ".to_owned()),
            Just("COPY ".to_owned()),
            Just("ONBUILD ".to_owned()),
            Just("HEALTHCHECK ".to_owned()),
            Just("ENV ".to_owned()),
            Just("ARG ".to_owned()),
            Just("--mount=".to_owned()),
            Just("<<".to_owned()),
            Just("<<-".to_owned()),
            Just("EOF".to_owned()),
            Just("# escape=`\n".to_owned()),
            Just("\\\n".to_owned()),
            Just("`\n".to_owned()),
            Just("[\"a\", 1]".to_owned()),
            "[ \t\r\n\"'\\\\`=#${}\\[\\]:,-]{1,4}",
            "\\PC{0,6}",
        ];
        proptest::collection::vec(token, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000)))]

        #[test]
        fn never_panics(text in dockerfile_like()) {
            if let Ok(ast) = crate::parser::parse_ast(&text) {
                let _ = ast.dump();
                let _ = super::parse(&ast);
            }
        }

        #[test]
        fn never_panics_on_any_text(text in "\\PC{0,200}") {
            let _ = super::parse_text(&text);
        }
    }
}
