//! `rbuild save` and `rbuild load`: images to and from docker-archive and OCI archive
//! files, as `docker save`/`docker load` and `podman save`/`podman load` do.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::context_arg::{spool_stdin, unpack};
use super::store_cmds::{open, resolve};
use crate::image::Descriptor;
use crate::publish::export::{export_docker, export_oci_tar, ArchiveImage};
use crate::publish::import::import_dir;
use crate::store::{ImageName, NamedImage, Store};

/// `--format` of `rbuild save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ArchiveFormat {
    /// Docker's `docker save` format (`manifest.json`, `RepoTags`).
    DockerArchive,
    /// An OCI image layout in a tar.
    OciArchive,
}

/// Arguments of `rbuild save`.
#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    /// The images: names (`repo` alone: each of its tags), image IDs or digests; one
    /// archive holds them all, each image once with the names given for it.
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to this file (default: standard output, which must not be a terminal).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The archive format.
    #[arg(long, value_enum, default_value_t = ArchiveFormat::DockerArchive)]
    format: ArchiveFormat,
    /// How to reach the registry that keeps an image's lazy layers (those of a build
    /// from a registry cache, fetched now).
    #[command(flatten)]
    registry: super::registry_cmds::RegistryArgs,
}

/// Arguments of `rbuild load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Read this archive (a docker archive or an OCI archive, plain or compressed;
    /// default: standard input).
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Print only the loaded images' names (or image IDs).
    #[arg(short, long)]
    quiet: bool,
}

/// `rbuild save IMAGE... [-o FILE]`: every image named, in one archive (as `docker
/// save`): a name lists the image under that name, a repository without a tag under
/// each of its tags, an image ID or digest unnamed (unless a name lists it too).
pub fn run_save(root: &Path, args: &SaveArgs) -> anyhow::Result<ExitCode> {
    let store = open(root)?;
    let _gc = store.gc_shared()?;
    let images = archive_images(&store, &args.images)?;
    let client = crate::registry::Client::new(args.registry.options(root)?);
    let view = super::progress::TransferView::new(false);
    for image in &images {
        super::registry_cmds::fetch_lazy_layers(&client, &store, &image.descriptor, &view)?;
    }
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None if std::io::stdout().is_terminal() => {
            bail!("refusing to write an archive to a terminal: use -o FILE or redirect")
        }
        None => Box::new(std::io::stdout()),
    };
    let out = std::io::BufWriter::new(out);
    let mut out = match args.format {
        ArchiveFormat::DockerArchive => export_docker(&store, &images, out)?,
        ArchiveFormat::OciArchive => export_oci_tar(&store, &images, out)?,
    };
    out.flush().context("writing the archive")?;
    Ok(ExitCode::SUCCESS)
}

/// The images `references` name, each once (in the order first named) with all the
/// names given for it.
fn archive_images(store: &Store, references: &[String]) -> anyhow::Result<Vec<ArchiveImage>> {
    let named = store.list()?;
    let mut images: Vec<ArchiveImage> = Vec::new();
    for reference in references {
        let found: Vec<(Descriptor, Option<ImageName>)> = match repository_tags(reference, &named) {
            Some(tags) => tags,
            None => vec![(resolve(store, reference)?, None)],
        };
        for (descriptor, name) in found {
            let slot = match images
                .iter_mut()
                .position(|i| i.descriptor.digest == descriptor.digest)
            {
                Some(i) => &mut images[i],
                None => {
                    images.push(ArchiveImage::new(descriptor, Vec::new()));
                    images.last_mut().context("an image was just added")?
                }
            };
            if let Some(name) = name.filter(|n| !slot.names.contains(n)) {
                slot.names.push(name);
            }
        }
    }
    Ok(images)
}

/// What `reference` names as a name: `repo:tag` that image, `repo` (no tag) every tag
/// of `repo` as `docker save` takes it (or `repo:latest`); `None` when it is no name
/// of the store (an image ID or digest, or nothing).
fn repository_tags(
    reference: &str,
    named: &[NamedImage],
) -> Option<Vec<(Descriptor, Option<ImageName>)>> {
    let name = ImageName::parse(reference).ok()?;
    let tagged = reference
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    let found: Vec<(Descriptor, Option<ImageName>)> = named
        .iter()
        .filter(|i| {
            if tagged {
                i.name == name
            } else {
                i.name.repository() == name.repository()
            }
        })
        .map(|i| (i.descriptor.clone(), Some(i.name.clone())))
        .collect();
    (!found.is_empty()).then_some(found)
}

/// `rbuild load [-i FILE]`.
pub fn run_load(root: &Path, args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let store = open(root)?;
    let _gc = store.gc_shared()?;
    let spooled;
    let file = match &args.input {
        Some(path) => path.clone(),
        None => {
            spooled = spool_stdin(&store)?;
            spooled.path().to_owned()
        }
    };
    // Removed with the store's work directory when the command ends.
    let dir = store.temp_path("load");
    if unpack(&file, &dir)?.is_none() {
        bail!(
            "{} is not a tar archive (plain, gzip, bzip2, xz or zstd)",
            file.display()
        );
    }
    let loaded =
        import_dir(&store, &dir).with_context(|| format!("cannot load {}", file.display()))?;
    let mut text = String::new();
    for image in &loaded {
        if image.names.is_empty() {
            // Listed as `<none>` and found by ID, as docker shows such an image.
            store.add_unnamed(&image.descriptor)?;
            let id = store.image_id(&image.descriptor)?;
            text.push_str(&format!("Loaded image ID: {id}\n"));
        }
        for name in &image.names {
            text.push_str(&format!("Loaded image: {name}\n"));
        }
    }
    if args.quiet {
        text = text
            .replace("Loaded image: ", "")
            .replace("Loaded image ID: ", "");
    }
    super::store_cmds::print(&text)?;
    Ok(ExitCode::SUCCESS)
}
