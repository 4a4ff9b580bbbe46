//! The Dockerfile front end: bytes in, a typed syntax tree with positions out.
//!
//! Owns logical lines, parser directives, comments, continuations, heredocs, instruction
//! flags, JSON versus shell form, word expansion ([`shell`]) and `.dockerignore` patterns
//! ([`ignore`]). It never touches the filesystem beyond reading its two inputs.
//!
//! Two layers, as in BuildKit: [`parse_ast`] turns text into untyped [`Node`]s (one per
//! instruction, arguments split the way each instruction splits them, the form the AST
//! dump shows); [`instructions`] turns nodes into typed [`instructions::Instruction`]s and the
//! [`instructions::Dockerfile`] value (directives, global `ARG`s, stages).

pub mod args;
pub mod directives;
mod error;
pub mod heredoc;
pub mod ignore;
pub mod instructions;
mod node;
pub mod quote;
mod scan;
pub mod shell;
pub mod words;

pub use error::{ErrorKind, Located, ParseError, Result, Span};
pub use node::{Ast, Heredoc, Node, Warning};
pub use scan::{node_from_line, parse_ast, MAX_LINE};
