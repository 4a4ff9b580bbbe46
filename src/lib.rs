//! rbuild: a daemonless Dockerfile -> OCI image builder.
//!
//! The crate is cut along one-way data flow (see `ARCHITECTURE.md`):
//!
//! ```text
//! parser/  Dockerfile bytes -> typed AST with positions; word expansion; .dockerignore
//! context/ the build context: filtered walk honouring .dockerignore
//! plan/    stages, ARG/ENV expansion, the op graph
//! store/   the on-disk store: an OCI layout with blobs, names, snapshots, locks, tmp
//! image/   config/manifest/index types (canonical JSON), assembly, OCI/docker exports
//! cli/     command-line edge: flags -> options, rendering of results and errors
//! ```
//!
//! Later stages (executor, layers, cache, push) are added as the issues that deliver
//! them land.

pub mod cli;
pub mod context;
pub mod digest;
pub mod executor;
pub mod image;
pub mod layers;
pub mod parser;
pub mod plan;
pub mod store;
