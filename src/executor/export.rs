//! Exports besides the store: OCI layout and docker-archive (written by `publish::export`
//! from the store's blobs), and the final root filesystem as a directory or a tar.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use super::env::StageOutput;
use super::error::{BuildError, ExecError};
use super::events::{BuildEvent, Reporter};
use super::{BuildOptions, ImageAnnotations, Output};
use crate::image::Descriptor;
use crate::layers::{apply_layer, write_tar, ApplyOptions, Compression, TarOptions, WhiteoutMode};
use crate::publish::export::{export_docker, export_oci_dir, export_oci_tar, ArchiveImage};
use crate::publish::{assemble, assemble_index, ManifestRef};
use crate::store::{ImageName, Store};

/// Writes `output` for the built `image` (the target stage `stage`).
pub fn export(
    store: &Store,
    image: &ManifestRef,
    stage: &StageOutput,
    options: &BuildOptions,
    output: &Output,
    reporter: &dyn Reporter,
) -> Result<(), BuildError> {
    let what = describe(output);
    reporter.event(BuildEvent::ExportStarted { what: what.clone() });
    let started = std::time::Instant::now();
    write_output(store, image, stage, options, output)?;
    reporter.event(BuildEvent::ExportFinished {
        what,
        elapsed: started.elapsed(),
    });
    Ok(())
}

/// Writes `output`, an OCI layout or a docker archive (its `manifest.json` entering
/// this machine's platform; see `publish::export`), for the index `index` of a
/// multi-platform build (named by the output's `name=`s, else the build's tags);
/// `type=local` and `type=tar` are written per platform by the caller. Index annotations the
/// output adds make an index of its own for it (listing the same `manifests`); its
/// index-descriptor annotations go on its `index.json` entries.
pub fn export_index(
    store: &Store,
    index: &Descriptor,
    manifests: &[Descriptor],
    options: &BuildOptions,
    output: &Output,
    reporter: &dyn Reporter,
) -> Result<(), BuildError> {
    let (dest, tar, names, added) = match output {
        Output::Oci {
            dest,
            tar,
            names,
            annotations,
        } => (dest, Some(*tar), names, annotations),
        Output::Docker {
            dest,
            names,
            annotations,
        } => (dest, None, names, annotations),
        Output::Local { .. } | Output::Tar { .. } => return Ok(()),
    };
    let what = describe(output);
    reporter.event(BuildEvent::ExportStarted { what: what.clone() });
    let started = std::time::Instant::now();
    let all = options.annotations.merged(added);
    let descriptor = if added.index.is_empty() {
        index.clone()
    } else {
        assemble_index(store, manifests, options.format, &all.index).map_err(ExecError::from)?
    };
    let images = [ArchiveImage {
        descriptor,
        names: archive_names(names, options)?,
        annotations: all.index_descriptor,
    }];
    match tar {
        Some(false) => export_oci_dir(store, &images, dest).map_err(ExecError::from)?,
        Some(true) => {
            let file = create(dest)?;
            let mut out = export_oci_tar(store, &images, file).map_err(ExecError::from)?;
            out.flush().map_err(ExecError::fs("cannot write", dest))?;
        }
        None => {
            let file = create(dest)?;
            let mut out = export_docker(store, &images, file).map_err(ExecError::from)?;
            out.flush().map_err(ExecError::fs("cannot write", dest))?;
        }
    }
    reporter.event(BuildEvent::ExportFinished {
        what,
        elapsed: started.elapsed(),
    });
    Ok(())
}

/// Writes one output.
fn write_output(
    store: &Store,
    image: &ManifestRef,
    stage: &StageOutput,
    options: &BuildOptions,
    output: &Output,
) -> Result<(), BuildError> {
    match output {
        Output::Oci {
            dest,
            tar: true,
            names,
            annotations,
        } => {
            let images = archive(store, image, stage, names, annotations, options)?;
            let file = create(dest)?;
            let mut out = export_oci_tar(store, &images, file).map_err(ExecError::from)?;
            out.flush().map_err(ExecError::fs("cannot write", dest))?;
        }
        Output::Oci {
            dest,
            tar: false,
            names,
            annotations,
        } => {
            let images = archive(store, image, stage, names, annotations, options)?;
            export_oci_dir(store, &images, dest).map_err(ExecError::from)?;
        }
        Output::Docker {
            dest,
            names,
            annotations,
        } => {
            let images = archive(store, image, stage, names, annotations, options)?;
            let file = create(dest)?;
            let mut out = export_docker(store, &images, file).map_err(ExecError::from)?;
            out.flush().map_err(ExecError::fs("cannot write", dest))?;
        }
        Output::Local { dest } => rootfs_dir(store, stage, dest)?,
        Output::Tar { dest } => rootfs_tar(store, stage, dest, options.source_date_epoch)?,
    }
    Ok(())
}

/// The archive's one image, named by the output's `name=`s, else the build's tags.
/// Annotations the output adds (BuildKit's are per exporter) to the manifest make a
/// manifest of its own for it (the same config and layers); its descriptor
/// annotations go on its `index.json` entries.
fn archive(
    store: &Store,
    image: &ManifestRef,
    stage: &StageOutput,
    names: &[String],
    added: &ImageAnnotations,
    options: &BuildOptions,
) -> Result<[ArchiveImage; 1], ExecError> {
    let names = archive_names(names, options)?;
    let all = options.annotations.merged(added);
    let descriptor = if added.manifest.is_empty() {
        image.descriptor.clone()
    } else {
        let layers: Vec<_> = stage.layers.iter().map(|l| l.blob.clone()).collect();
        assemble(store, &stage.config, &layers, options.format, &all.manifest)?.descriptor
    };
    Ok([ArchiveImage {
        descriptor,
        names,
        annotations: all.descriptor,
    }])
}

/// An archive's names: the output's `name=`s, else the build's tags.
fn archive_names(names: &[String], options: &BuildOptions) -> Result<Vec<ImageName>, ExecError> {
    let names = if names.is_empty() {
        &options.tags
    } else {
        names
    };
    Ok(names
        .iter()
        .map(|t| ImageName::parse(t))
        .collect::<Result<Vec<_>, _>>()?)
}

/// The archive's file, or standard output for `dest=-` (`-o type=docker,dest=- | docker
/// load`; progress goes to stderr).
fn create(dest: &Path) -> Result<BufWriter<Box<dyn Write>>, ExecError> {
    let out: Box<dyn Write> = if dest == Path::new("-") {
        Box::new(std::io::stdout())
    } else {
        Box::new(File::create(dest).map_err(ExecError::fs("cannot create", dest))?)
    };
    Ok(BufWriter::new(out))
}

fn describe(output: &Output) -> String {
    match output {
        Output::Oci { dest, .. } => format!("OCI layout to {}", dest.display()),
        Output::Docker { dest, .. } => format!("docker archive to {}", dest.display()),
        Output::Local { dest } => format!("root filesystem to {}", dest.display()),
        Output::Tar { dest } => format!("root filesystem tar to {}", dest.display()),
    }
}

/// Applies every layer, whiteouts carried out, into directory `dest`.
fn rootfs_dir(store: &Store, stage: &StageOutput, dest: &Path) -> Result<(), ExecError> {
    std::fs::create_dir_all(dest).map_err(ExecError::fs("cannot create", dest))?;
    for layer in &stage.layers {
        let blob = store.open_blob(&layer.blob.digest)?;
        let opts = ApplyOptions {
            whiteouts: WhiteoutMode::Delete,
            compression: Compression::from_media_type(&layer.blob.media_type),
        };
        let applied = apply_layer(BufReader::new(blob), dest, &opts).map_err(|source| {
            ExecError::ApplyLayer {
                digest: layer.blob.digest,
                source,
            }
        })?;
        // Checked in the same pass: a damaged blob fails the export, naming the blob.
        if applied.digest != layer.blob.digest {
            return Err(ExecError::CorruptBlob {
                digest: layer.blob.digest,
                actual: applied.digest,
                size: applied.size,
            });
        }
    }
    Ok(())
}

/// The root filesystem as one uncompressed tar.
fn rootfs_tar(
    store: &Store,
    stage: &StageOutput,
    dest: &Path,
    epoch: Option<i64>,
) -> Result<(), ExecError> {
    let dir = super::env::scratch_dir(store, "rootfs-")?;
    rootfs_dir(store, stage, dir.path())?;
    dir_tar(dir.path(), dest, epoch)
}

/// Directory `dir` as one uncompressed tar at `dest` (`-`: stdout), its entries named
/// relative to `dir`: a multi-platform build's platform directories (`linux_amd64/`).
pub fn dir_tar(dir: &Path, dest: &Path, epoch: Option<i64>) -> Result<(), ExecError> {
    let set = crate::layers::tree_changes(dir)?;
    let mut out = create(dest)?;
    write_tar(
        &set,
        &TarOptions {
            source_date_epoch: epoch,
        },
        &mut out,
    )?;
    out.flush().map_err(ExecError::fs("cannot write", dest))?;
    Ok(())
}
