//! Build progress as events: the executor emits [`BuildEvent`]s to a [`Reporter`]; the
//! CLI renders them (a live view on a terminal, plain lines in CI, JSON for tools). The
//! library never prints.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Identifies one step of one stage in events.
///
/// `step` and `steps` keep their meaning for JSON readers (the `FROM` is step 0 and
/// not counted); [`StepId::position`] numbers steps as BuildKit shows them.
/// How much of a layer was copied from the step's last one (`layers::patch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Patched {
    /// Chunks copied compressed.
    pub copied: usize,
    /// Chunks in the layer.
    pub chunks: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepId {
    /// Stage index.
    pub stage: usize,
    /// Stage name, if any.
    pub stage_name: Option<String>,
    /// Step number within the stage, 1-based (0 for the `FROM` step).
    pub step: usize,
    /// Steps in the stage, `FROM` excluded.
    pub steps: usize,
    /// The instruction as written, for display.
    pub text: String,
    /// Its first Dockerfile line.
    pub line: usize,
}

impl StepId {
    /// `(k, n)` of BuildKit's `[stage k/n]`: the `FROM` is 1, the first instruction
    /// after it 2, and `n` counts the `FROM` too.
    pub fn position(&self) -> (usize, usize) {
        (self.step + 1, self.steps + 1)
    }

    /// Whether this is the stage's `FROM`.
    pub fn is_from(&self) -> bool {
        self.step == 0
    }
}

/// Something that happened during a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BuildEvent {
    /// The plan is made: the Dockerfile has `stages` stages; `steps` steps will be
    /// shown, over the stages the target needs, each stage's `FROM` included.
    Planned { stages: usize, steps: usize },
    /// A step started (step 0: the stage's `FROM`, its base prepared).
    StepStarted { id: StepId },
    /// A metadata step (`ENV`, `LABEL`, `CMD`...): it sets the image config, nothing
    /// runs and no cache key is made.
    StepMetadata { id: StepId },
    /// A step was satisfied from the cache: the store's, or (`from`) an imported
    /// cache's, `registry REG/REPO:TAG` or `local DIR`.
    StepCached {
        id: StepId,
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    /// A step's key had no usable result: why, against the last build of the stage.
    CacheMiss { id: StepId, reasons: Vec<String> },
    /// Output of a step (a line, without newline).
    StepLog { id: StepId, line: String },
    /// A step finished; `layer` tells whether it added a layer.
    StepFinished {
        id: StepId,
        #[serde(with = "millis")]
        elapsed: Duration,
        layer: bool,
        /// Of `elapsed`, the part spent turning the step's changes into its layer
        /// blob and snapshot (`None` for a `FROM`); the rest is the step's own work
        /// (the command, the copy) and its set-up.
        #[serde(with = "opt_millis", skip_serializing_if = "Option::is_none")]
        commit: Option<Duration>,
        /// For a layer patched from the step's last one (a COPY's edit): how many of
        /// its gzip chunks were copied from there, of how many.
        #[serde(skip_serializing_if = "Option::is_none")]
        patched: Option<Patched>,
    },
    /// A step failed; the build stops.
    StepFailed { id: StepId, error: String },
    /// A step was stopped because the build was interrupted or another stage failed.
    StepCancelled { id: StepId },
    /// An image was written to the store or exported: `digest` is its manifest's,
    /// `id` its image ID (the config digest, as docker and podman name images).
    ImageWritten {
        name: Option<String>,
        digest: String,
        id: String,
    },
    /// A layer blob is being unpacked into its snapshot (a base image's layer, or a
    /// cached step's that was never unpacked in this store): `size` compressed bytes.
    LayerUnpacking { digest: String, size: u64 },
    /// That layer is unpacked.
    LayerUnpacked {
        digest: String,
        #[serde(with = "millis")]
        elapsed: Duration,
    },
    /// A `FROM` image is being pulled from its registry.
    PullStarted { reference: String },
    /// Bytes of a blob of a pull received so far (`done == total`: it is in the store).
    BlobProgress {
        digest: String,
        done: u64,
        total: u64,
    },
    /// That pull is done: the manifest `digest`, `blobs` blobs of `bytes` bytes moved.
    PullFinished {
        reference: String,
        digest: String,
        blobs: usize,
        bytes: u64,
        #[serde(with = "millis")]
        elapsed: Duration,
    },
    /// An export (`--output`) started: `what` says where to.
    ExportStarted { what: String },
    /// That export is written.
    ExportFinished {
        what: String,
        #[serde(with = "millis")]
        elapsed: Duration,
    },
    /// A free-form note (warnings).
    Note { message: String },
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

mod opt_millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::millis::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}

/// Receives build events. Implementations must be cheap and thread-safe: parallel
/// stages report concurrently.
pub trait Reporter: Send + Sync {
    /// Handles one event.
    fn event(&self, event: BuildEvent);
}

/// Discards events.
pub struct NoReporter;

impl Reporter for NoReporter {
    fn event(&self, _event: BuildEvent) {}
}

/// Keeps every event, for tests.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<BuildEvent>>,
}

impl Recorder {
    /// The events so far.
    pub fn events(&self) -> Vec<BuildEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Reporter for Recorder {
    fn event(&self, event: BuildEvent) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }
}
