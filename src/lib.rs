//! rbuild: a daemonless Dockerfile -> OCI image builder.
//!
//! The crate is cut along one-way data flow, parse -> plan -> execute -> layers -> store
//! -> export/push (see `ARCHITECTURE.md`):
//!
//! ```text
//! parser/   Dockerfile bytes -> typed AST with positions; word expansion; .dockerignore
//! plan/     stages, ARG/ENV expansion, the op graph
//! context/  the build context: filtered walk honouring .dockerignore
//! executor/ the build: stages scheduled (independent ones in parallel), per-step file
//!           ops and RUN on overlays or native copies, progress events, exports
//! cache/    step keys, records (with blob stamps), miss explanations, stat cache, prune
//!           policy, `du`, the portable cache of `--cache-to` / `--cache-from`
//! layers/   overlay mounts, native step roots, change sets (upperdir, full tree, native
//!           diff), deterministic tar + compression + digests in one pass, safe layer
//!           application
//! store/    the on-disk store: an OCI layout with blobs, names, snapshots, locks, tmp;
//!           exact disk accounting (`usage`), the gc lock, integrity (snapshot
//!           fingerprints, `store check`)
//! publish/  image assembly into the store, reading images back, OCI/docker exports
//! registry/ the registry client: references, credentials, auth, pull and push (the
//!           design card's `src/push/`)
//! cli/      command-line edge: flags -> options, rendering of results and errors
//! reexec    hidden helper entry points (the RUN sandbox), dispatched first by main.rs
//! userns    rootless: a non-root user's command re-run as root of a user namespace
//! leaves:   image/ (config/manifest/index types, canonical JSON), digest, fs_error, cpus
//! ```
//!
//! `ARCHITECTURE.md` has the full map.

pub mod cache;
pub mod cli;
pub mod context;
pub mod cpus;
pub mod digest;
pub mod executor;
pub mod fs_error;
pub mod image;
pub mod layers;
pub mod parser;
pub mod plan;
pub mod publish;
pub mod reexec;
pub mod registry;
pub mod store;
pub mod userns;
