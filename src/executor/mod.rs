//! The executor: walks the plan, runs each step and produces layers and images.
//!
//! Owns scheduling (independent stages build in parallel, `schedule.rs`), the file
//! steps (COPY/ADD/WORKDIR), RUN's sandbox (`sandbox/`), and progress events. It knows
//! nothing of tar or compression (`layers/` does).
//!
//! Imports run one way: `build.rs` (the phases of a build) down through `stage/`, the
//! steps (`run.rs`, `file_steps.rs`, `mounts/`), `stage_env.rs`, `step_root.rs` and
//! `snapshots.rs` to `env.rs`, what every step shares, and the leaves below it.

mod build;
mod cache_io;
mod caching;
mod compress_layers;
mod context;
pub mod copy;
mod default_network;
mod emulation;
mod entry;
mod env;
mod error;
mod events;
mod export;
mod file_steps;
mod finish;
mod limits;
mod mounts;
mod multi;
mod named;
mod options;
mod resolver;
mod run;
pub mod sandbox;
mod schedule;
mod snapshots;
mod stage;
mod stage_env;
mod step_root;
mod step_user;
pub mod users;

pub use build::explain;
pub use entry::build;
pub use env::rfc3339;
pub use error::{BuildError, ExecError, Result};
pub use events::{BuildEvent, NoReporter, Patched, Recorder, Reporter, StepId};
pub use finish::BuildResult;
pub use mounts::{FlagError, SecretSource, SecretSpec, SshSpec};
pub use options::{
    BuildOptions, CacheExport, CacheLocation, CacheMode, CompressionKind, ImageAnnotations, Output,
    OutputError, Snapshotter,
};
pub use resolver::PullPolicy;
pub use snapshots::unpack_image;
