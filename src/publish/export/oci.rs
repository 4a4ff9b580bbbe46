//! `type=oci`: the image as an OCI image layout, in a tar stream or a directory.
//!
//! Layout order: `oci-layout`, `blobs/sha256/...` (children before parents), then
//! `index.json` last, so in a directory the entry point appears only once everything
//! it points to is written.

use std::io::Write;
use std::path::Path;

use super::sink::{DirSink, Sink, TarSink};
use super::{archive_blobs, encode, export_index, ArchiveImage};
use crate::image::Descriptor;
use crate::publish::error::Result;
use crate::store::Store;

/// The `oci-layout` marker file.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes `images` (manifests or indexes in `store`) as an OCI layout tar to `out`;
/// returns `out`.
pub fn export_oci_tar<W: Write>(store: &Store, images: &[ArchiveImage], out: W) -> Result<W> {
    let mut sink = TarSink::new(out);
    write_layout(store, images, &mut sink)?;
    sink.finish()
}

/// Writes `images` as an OCI layout into the directory `dest` (created if absent; it
/// must be empty if present).
pub fn export_oci_dir(store: &Store, images: &[ArchiveImage], dest: &Path) -> Result<()> {
    let mut sink = DirSink::create(dest)?;
    write_layout(store, images, &mut sink)
}

/// Writes the layout's files into `sink` (the docker archive adds `manifest.json`).
pub(crate) fn write_layout(
    store: &Store,
    images: &[ArchiveImage],
    sink: &mut dyn Sink,
) -> Result<()> {
    let roots: Vec<Descriptor> = images.iter().map(|i| i.descriptor.clone()).collect();
    let blobs = archive_blobs(store, &roots)?;
    sink.file("oci-layout", OCI_LAYOUT)?;
    sink.dir("blobs")?;
    sink.dir("blobs/sha256")?;
    for blob in &blobs {
        sink.blob(store, blob)?;
    }
    let index = encode(&export_index(images), "index.json")?;
    sink.file("index.json", &index)
}
