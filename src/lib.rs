//! rbuild: a daemonless Dockerfile -> OCI image builder.
//!
//! The crate is cut along one-way data flow (see `ARCHITECTURE.md`):
//!
//! ```text
//! parser/  Dockerfile bytes -> typed AST with positions; word expansion; .dockerignore
//! context/ the build context: filtered walk honouring .dockerignore
//! cli/     command-line edge: flags -> options, rendering of results and errors
//! reexec   hidden helper entry points (the RUN sandbox), dispatched first by main.rs
//! ```
//!
//! Later stages (plan, executor, layers, cache, store, image, push) are added as the
//! issues that deliver them land.

pub mod cli;
pub mod context;
pub mod digest;
pub mod executor;
pub mod image;
pub mod layers;
pub mod parser;
pub mod plan;
pub mod reexec;
