//! OCI and Docker image types: configuration, history, canonical JSON.
//!
//! Owns the image formats; knows nothing of the network or the store's layout.

mod config;

pub use config::{
    add_env, canonical_json, parse_key_value, Empty, Healthcheck, History, ImageConfig, RootFs,
    RunConfig,
};
