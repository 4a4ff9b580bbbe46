//! The executor: walks the plan, runs each step and produces layers and images.
//!
//! Owns scheduling, the file steps (COPY/ADD/WORKDIR), RUN's sandbox (`sandbox/`), and
//! progress events. It knows nothing of tar or compression (`layers/` does).

pub mod copy;
mod error;
mod events;
mod options;
pub mod sandbox;
pub mod users;

pub use error::{ExecError, Result};
pub use events::{BuildEvent, NoReporter, Recorder, Reporter, StepId};
pub use options::{BuildOptions, CompressionKind, Output, OutputError};
