//! The Dockerfile front end: bytes in, a typed syntax tree with positions out.
//!
//! Owns logical lines, parser directives, comments, continuations, heredocs, instruction
//! flags, JSON versus shell form, word expansion ([`shell`]) and `.dockerignore` patterns
//! ([`ignore`]). It never touches the filesystem beyond reading its two inputs.

pub mod ignore;
pub mod instructions;
pub mod shell;
