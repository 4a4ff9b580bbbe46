//! OCI and Docker image types: configuration, history, descriptors, manifests and
//! indexes (all serialized through [`canonical_json`]), image assembly, and exports.
//!
//! Owns the image formats; knows nothing of the network. Reads and writes blobs through
//! [`crate::store::Store`], never through the store's paths.

mod assemble;
mod config;
mod decode;
mod descriptor;
mod error;
pub mod export;
mod manifest;
pub mod media_types;
mod nullable;

pub use assemble::{assemble, read_config, read_manifest, LayerDescriptor, ManifestRef};
pub use config::{
    add_env, canonical_json, parse_key_value, Empty, Extra, Healthcheck, History, ImageConfig,
    RootFs, RunConfig,
};
pub use decode::{decode_json, JsonError};
pub use descriptor::{Descriptor, Platform};
pub use error::{Error, Result};
pub use manifest::{Index, Manifest};
pub use media_types::Format;
