//! `rbuild build --load` (buildx's flag): the built image, as a docker archive, streamed
//! into `docker load`. The image stays in rbuild's store as every build's does.

use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::image::Descriptor;
use crate::publish::export::{export_docker, ArchiveImage};
use crate::store::{ImageName, Store};

/// Streams `image` of `store` (the caller holds its shared gc lock), named `tags`, into
/// `docker load` (found in `PATH`). Docker's own output goes to standard error:
/// standard output carries the image ID.
pub fn load(store: &Store, image: &Descriptor, tags: &[String]) -> anyhow::Result<()> {
    let names = tags
        .iter()
        .map(|t| ImageName::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
    let mut docker = Command::new("docker")
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::from(stderr))
        .spawn()
        .context("--load: cannot run `docker load` (is docker installed and in PATH? the image is in rbuild's store: `rbuild save NAME | docker load`)")?;
    let stdin = docker
        .stdin
        .take()
        .context("--load: no pipe to docker load")?;
    let images = [ArchiveImage::new(image.clone(), names)];
    let written = export_docker(store, &images, std::io::BufWriter::new(stdin))
        .map_err(anyhow::Error::from)
        .and_then(|mut out| out.flush().map_err(anyhow::Error::from));
    // The pipe is closed (the writer dropped) before waiting, so docker sees the end.
    let status = docker.wait().context("--load: waiting for docker load")?;
    if !status.success() {
        bail!("--load: docker load failed ({status}); the image is in rbuild's store");
    }
    written.context("--load: writing the image to docker load")
}
