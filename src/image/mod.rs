//! OCI and Docker image types: configuration, history, descriptors, manifests and
//! indexes (all serialized through [`canonical_json`], parsed through [`decode_json`]).
//!
//! Pure types and their parsing: no storage, no network. The store keeps them on disk;
//! `publish/` assembles images into the store and exports them from it.

mod config;
mod decode;
mod descriptor;
mod manifest;
pub mod media_types;
mod nullable;

pub use config::{
    add_env, canonical_json, parse_key_value, Empty, Extra, Healthcheck, History, ImageConfig,
    RootFs, RunConfig,
};
pub use decode::{decode_json, JsonError};
pub use descriptor::{host_architecture, Descriptor, LayerDescriptor, Platform};
pub use manifest::{Index, Manifest};
pub use media_types::Format;
