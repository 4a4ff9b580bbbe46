//! `rbuild inspect NAME [--format TEMPLATE]`: the image's manifest and config as JSON,
//! or a Go template run on the image as `docker image inspect` shows it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Value};

use super::store_cmds::{open, print, resolve};
use crate::image::media_types;
use crate::publish;
use crate::store::Store;

/// Arguments of `rbuild inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The image (a name, or an image ID or manifest digest, whole or a unique prefix).
    pub(super) name: String,
    /// A Go template run on the image as `docker image inspect` shows it
    /// (`{{.Id}}`, `{{.Config.Env}}`, `{{json .Config}}`, `{{index .Config.Labels "k"}}`,
    /// `{{range .RepoTags}}...{{end}}`); `.Digest`, `.Manifest` and `.ImageConfig` hold
    /// the manifest digest, the manifest and the whole config.
    #[arg(short, long, value_name = "TEMPLATE")]
    pub(super) format: Option<String>,
}

/// `rbuild inspect NAME`: `{"digest", "manifest", "config"}` (or `"index"`) as JSON,
/// or `--format`.
pub fn run_inspect(root: &Path, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let store = open(root)?;
    let descriptor = resolve(&store, &args.name)?;
    let what = || format!("cannot inspect image {}", args.name);
    let value = |digest| -> anyhow::Result<Value> {
        let bytes = store.read_blob(digest).with_context(what)?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("blob {digest} is not JSON"))
            .with_context(what)
    };
    let mut out = serde_json::Map::new();
    out.insert("digest".into(), descriptor.digest.to_string().into());
    if media_types::is_manifest(&descriptor.media_type) {
        let manifest = publish::read_manifest(&store, &descriptor.digest).with_context(what)?;
        out.insert("manifest".into(), value(&descriptor.digest)?);
        out.insert("config".into(), value(&manifest.config.digest)?);
        out.insert(
            "config_digest".into(),
            manifest.config.digest.to_string().into(),
        );
    } else {
        out.insert("index".into(), value(&descriptor.digest)?);
    }
    let text = match &args.format {
        Some(template) => {
            let image = docker_view(&store, &Value::Object(out))?;
            let mut text = super::template::render(template, &image)?;
            text.push('\n');
            text
        }
        None => {
            out.remove("config_digest");
            let mut text =
                serde_json::to_string_pretty(&out).context("serializing the inspection")?;
            text.push('\n');
            text
        }
    };
    print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The image as `docker image inspect` shows it: `Id` (the config digest),
/// `RepoTags`, `Created`, `Author`, `Config`, `Architecture`, `Os`, `Variant`, `Size`,
/// `RootFS`; plus rbuild's `Digest`, `Manifest` and `ImageConfig`.
fn docker_view(store: &Store, inspected: &Value) -> anyhow::Result<Value> {
    let digest = inspected["digest"].as_str().unwrap_or_default();
    let tags: Vec<String> = store
        .list()?
        .into_iter()
        .filter(|i| i.descriptor.digest.to_string() == digest)
        .map(|i| i.name.to_string())
        .collect();
    let config = &inspected["config"];
    let manifest = &inspected["manifest"];
    let size: u64 = manifest["layers"]
        .as_array()
        .map(|l| l.iter().filter_map(|d| d["size"].as_u64()).sum())
        .unwrap_or(0);
    Ok(json!({
        "Id": inspected["config_digest"],
        "RepoTags": tags,
        "RepoDigests": [],
        "Created": config["created"],
        "Author": config.get("author").cloned().unwrap_or_else(|| "".into()),
        "Config": config["config"],
        "Architecture": config["architecture"],
        "Os": config["os"],
        "Variant": config.get("variant").cloned().unwrap_or(Value::Null),
        "Size": size,
        "RootFS": {"Type": "layers", "Layers": config["rootfs"]["diff_ids"]},
        "Digest": digest,
        "Manifest": manifest,
        "ImageConfig": config,
    }))
}
