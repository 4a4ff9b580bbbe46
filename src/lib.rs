//! rbuild: a daemonless Dockerfile -> OCI image builder.
//!
//! The crate is cut along one-way data flow (see `ARCHITECTURE.md`):
//!
//! ```text
//! parser/  Dockerfile bytes -> typed AST with positions; word expansion; .dockerignore
//! context/ the build context: filtered walk honouring .dockerignore
//! cli/     command-line edge: flags -> options, rendering of results and errors
//! layers/  overlay mounts, change sets (upperdir, full tree, native diff), deterministic
//!          tar + compression + digests in one pass, safe layer application
//! ```
//!
//! Later stages (plan, executor, cache, store, image, push) are added as the
//! issues that deliver them land.

pub mod cli;
pub mod context;
pub mod digest;
pub mod layers;
pub mod parser;
