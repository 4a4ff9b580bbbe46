//! The executor: walks the plan, runs each step and produces layers and images.
//!
//! Owns scheduling, the file steps (COPY/ADD/WORKDIR), RUN's sandbox (`sandbox/`), and
//! progress events. It knows nothing of tar or compression (`layers/` does).

mod build;
pub mod copy;
mod error;
mod events;
mod export;
mod options;
mod resolver;
mod run;
pub mod sandbox;
mod stage;
mod step_root;
pub mod users;

pub use build::{build, rfc3339, BuildResult};
pub use error::{BuildError, ExecError, Result};
pub use events::{BuildEvent, NoReporter, Recorder, Reporter, StepId};
pub use options::{BuildOptions, CompressionKind, Output, OutputError, Snapshotter};
