//! Plan errors: each names the Dockerfile line it comes from when there is one.

use std::fmt;
use std::sync::Arc;

use crate::parser::{shell, Span};

/// Why a Dockerfile cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("Dockerfile contains no stages to build")]
    NoStages,
    #[error("target stage {target:?} could not be found")]
    UnknownTarget { target: String },
    #[error("circular dependency detected on stage: {stage}")]
    Cycle { stage: String },
    #[error("base name ({base}) should not be blank")]
    BlankBase { base: String, span: Span },
    #[error("{what}: {source}")]
    Expand {
        what: String,
        span: Span,
        source: shell::Error,
    },
    #[error("cannot resolve base image {reference}: {reason}")]
    Base {
        reference: String,
        reason: BaseError,
        span: Span,
    },
    /// A named context (`--build-context`) a stage uses cannot be loaded.
    #[error("cannot load build context {name} (--build-context): {reason}")]
    Named {
        name: String,
        reason: BaseError,
        span: Span,
    },
    #[error("{message}")]
    Invalid { message: String, span: Span },
    /// `--from=NAME` names neither a stage nor an image, and a stage has a similar name.
    #[error("no stage named '{name}' (did you mean '{suggestion}'?), and as an image: {cause}")]
    NoStage {
        name: String,
        suggestion: String,
        cause: Box<PlanError>,
        span: Span,
    },
    #[error("unsupported frontend {reference:?}: rbuild builds Dockerfiles itself and accepts only docker/dockerfile syntax references")]
    Frontend { reference: String, span: Span },
}

impl PlanError {
    /// The Dockerfile location of the error, when it has one.
    pub fn span(&self) -> Option<Span> {
        match self {
            PlanError::BlankBase { span, .. }
            | PlanError::Expand { span, .. }
            | PlanError::Base { span, .. }
            | PlanError::Named { span, .. }
            | PlanError::Invalid { span, .. }
            | PlanError::NoStage { span, .. }
            | PlanError::Frontend { span, .. } => Some(*span),
            _ => None,
        }
    }
}

/// Why a [`BaseResolver`](super::BaseResolver) could not resolve a base image: the
/// resolver's own typed error (store, registry, image), kept whole with its causes. Shared,
/// so that plan errors stay cheap to clone; two are equal when their messages are.
#[derive(Debug, Clone)]
pub struct BaseError(Arc<dyn std::error::Error + Send + Sync>);

impl BaseError {
    /// Wraps the resolver's error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        BaseError(Arc::new(error))
    }
}

impl fmt::Display for BaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for BaseError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for BaseError {}

/// A resolver was asked for a named context it never named (a bug of the caller).
#[derive(Debug, Clone, thiserror::Error)]
#[error("no build context is named {key}")]
pub struct NoNamedContext {
    pub key: String,
}

/// Result of planning.
pub type Result<T, E = PlanError> = std::result::Result<T, E>;
