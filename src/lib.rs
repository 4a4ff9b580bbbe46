//! rbuild: a daemonless Dockerfile -> OCI image builder.
//!
//! The crate is cut along one-way data flow (see `ARCHITECTURE.md`):
//!
//! ```text
//! parser/  Dockerfile bytes -> typed AST with positions; word expansion; .dockerignore
//! context/ the build context: filtered walk honouring .dockerignore
//! plan/    stages, ARG/ENV expansion, the op graph
//! store/   the on-disk store: an OCI layout with blobs, names, snapshots, locks, tmp;
//!          exact disk accounting (`usage`), the gc lock, integrity (snapshot
//!          fingerprints, `store check`)
//! cache/   step keys, records (with blob stamps), miss explanations, stat cache, prune
//!          policy, `du`
//! image/   config/manifest/index types (canonical JSON), assembly, OCI/docker exports
//! executor/ the build: stages scheduled (independent ones in parallel), per-step file
//!          ops and RUN on overlays or native copies, progress events, exports
//! cli/     command-line edge: flags -> options, rendering of results and errors
//! layers/  overlay mounts, native step roots, change sets (upperdir, full tree, native
//!          diff), deterministic
//!          tar + compression + digests in one pass, safe layer application
//! reexec   hidden helper entry points (the RUN sandbox), dispatched first by main.rs
//! ```
//!
//! The executor (`executor/`) walks the plan; `push/` (the registry client) so far holds
//! image references. `ARCHITECTURE.md` has the full map.

pub mod cache;
pub mod cli;
pub mod context;
pub mod digest;
pub mod executor;
pub mod fs_error;
pub mod image;
pub mod layers;
pub mod parser;
pub mod plan;
pub mod publish;
pub mod push;
pub mod reexec;
pub mod store;
