//! Images made from layer blobs and taken out of the store: assembly (config and layers
//! -> config blob and manifest blob), reading an image's manifest and config back, and
//! the exports of a stored image (OCI layout, docker archive).
//!
//! Sits above `store/` (it reads and writes blobs through [`crate::store::Store`], never
//! through the store's paths) and `image/` (the types it writes); knows nothing of the
//! network (`registry/` moves images to and from registries).

mod assemble;
mod error;
pub mod export;
pub mod import;
mod layout_image;

pub use assemble::{assemble, assemble_index, read_config, read_manifest, ManifestRef};
pub use error::{Error, Result};
pub use layout_image::{
    copy_blob as copy_layout_blob, import_layout_image, layout_manifest, LayoutPick,
};
