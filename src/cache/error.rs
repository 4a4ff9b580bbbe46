//! Errors of the cache.

use std::path::PathBuf;

/// What went wrong reading or writing cache state.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot access cache file `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove `{}`", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode a cache record: {reason}")]
    Encode { reason: String },
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

/// The cache's result type.
pub type Result<T, E = CacheError> = std::result::Result<T, E>;
