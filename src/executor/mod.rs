//! The executor: walks the plan, runs each step and produces layers and images.
//!
//! Owns scheduling (independent stages build in parallel, `schedule.rs`), the file
//! steps (COPY/ADD/WORKDIR), RUN's sandbox (`sandbox/`), and progress events. It knows
//! nothing of tar or compression (`layers/` does).

mod build;
mod caching;
pub mod copy;
mod error;
mod events;
mod export;
mod limits;
mod mounts;
mod options;
mod resolver;
mod run;
pub mod sandbox;
mod schedule;
mod snapshots;
mod stage;
mod step_root;
pub mod users;

pub use build::{build, explain, rfc3339, BuildResult};
pub use error::{BuildError, ExecError, Result};
pub use events::{BuildEvent, NoReporter, Recorder, Reporter, StepId};
pub use mounts::{FlagError, SecretSource, SecretSpec, SshSpec};
pub use options::{BuildOptions, CompressionKind, Output, OutputError, Snapshotter};
pub use resolver::PullPolicy;
