//! `rbuild save` and `rbuild load`: images to and from docker-archive and OCI archive
//! files, as `docker save`/`docker load` and `podman save`/`podman load` do.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::context_arg::{spool_stdin, unpack};
use super::store_cmds::{open, resolve};
use crate::publish::export::{export_docker, export_oci_tar};
use crate::publish::import::import_dir;
use crate::store::ImageName;

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
    /// The image, by one or more of its names (or its digest).
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to this file (default: standard output, which must not be a terminal).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The archive format.
    #[arg(long, value_enum, default_value_t = ArchiveFormat::DockerArchive)]
    format: ArchiveFormat,
}

/// Arguments of `rbuild load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Read this archive (a docker archive or an OCI archive, plain or compressed;
    /// default: standard input).
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Print only the loaded images' names (or digests).
    #[arg(short, long)]
    quiet: bool,
}

/// `rbuild save IMAGE... [-o FILE]`.
pub fn run_save(root: &Path, args: &SaveArgs) -> anyhow::Result<ExitCode> {
    let store = open(root)?;
    let _gc = store.gc_shared()?;
    let descriptor = resolve(&store, &args.images[0])?;
    let mut names = Vec::new();
    for image in &args.images {
        if resolve(&store, image)?.digest != descriptor.digest {
            bail!(
                "{image} and {} are different images: rbuild saves one image per archive",
                args.images[0]
            );
        }
        if let Ok(name) = ImageName::parse(image) {
            if !image.starts_with("sha256:") {
                names.push(name);
            }
        }
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
        ArchiveFormat::DockerArchive => export_docker(&store, &descriptor, &names, out)?,
        ArchiveFormat::OciArchive => export_oci_tar(&store, &descriptor, &names, out)?,
    };
    out.flush().context("writing the archive")?;
    Ok(ExitCode::SUCCESS)
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
