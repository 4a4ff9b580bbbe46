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

pub use commands::{
    ArgDef, Command, CommandLine, CopySpec, From, HealthSpec, InlineFile, Instruction, KeyValue, RunSpec,
    SourceContent,
};
pub use convert::{doc_comment, json_args, parse_instruction, Parsed};
pub use error::InstructionError;
pub use flags::{FlagKind, Flags};

use serde::Serialize;

use super::directives::Directive;
use super::{Ast, Node, ParseError, Span, Warning};

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

/// Converts the untyped tree into a [`Dockerfile`].
pub fn parse(ast: &Ast) -> Result<Dockerfile, ParseError> {
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &ast.children {
        let at = |e: InstructionError| ParseError::new(span_of(node), e);
        match parse_instruction(node).map_err(at)? {
            Parsed::From(mut from) => {
                from.doc_comment = doc_comment(&node.comments, from.name.as_deref().unwrap_or_default());
                stages.push(Stage { from, commands: Vec::new() });
            }
            Parsed::Instruction(instruction) => match stages.last_mut() {
                Some(stage) => {
                    let command = Command { instruction, original: node.original.clone(), span: span_of(node) };
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
pub fn parse_text(text: &str) -> Result<Dockerfile, ParseError> {
    parse(&super::parse_ast(text)?)
}
