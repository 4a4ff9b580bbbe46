//! What a build is asked to do: the validated options the CLI hands to the library.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::plan::Platform;

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionKind {
    /// gzip (the default, what every registry and runtime reads).
    #[default]
    Gzip,
    /// zstd.
    Zstd,
    /// No compression.
    Uncompressed,
}

/// How a step's root filesystem is made (`--snapshotter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Snapshotter {
    /// An overlay mount of the layers below and a fresh upperdir (fast; needs overlayfs).
    Overlayfs,
    /// A plain directory holding a copy of the layers below, diffed after the step (a
    /// full copy per step; works wherever files can be copied).
    Native,
    /// Overlayfs; if the first overlay mount is refused (`EPERM`, `ENODEV`, `EINVAL`...),
    /// native for the rest of the build, with one warning.
    #[default]
    Auto,
}

/// OCI annotations of an image (BuildKit's `annotation*` exporter keys, buildx's
/// `--annotation`). Index annotations are only those of a multi-platform build (a
/// single-platform build writes no index; the CLI refuses them there, as BuildKit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageAnnotations {
    /// In the manifest (so in its digest): `manifest` annotations, the default.
    pub manifest: BTreeMap<String, String>,
    /// On the manifest's descriptor (BuildKit's `manifest-descriptor`): its entries in
    /// an exported layout's `index.json`, or in a multi-platform build's index (so
    /// pushed with it); a single-platform push has no index to carry them.
    pub descriptor: BTreeMap<String, String>,
    /// In a multi-platform build's index (so in its digest): `index` annotations.
    pub index: BTreeMap<String, String>,
    /// On the index's descriptor (`index-descriptor`): its entries in an exported
    /// layout's `index.json` and the store's; a push has no place for them.
    pub index_descriptor: BTreeMap<String, String>,
}

impl ImageAnnotations {
    /// These, with `over`'s values where both have a key.
    pub fn merged(&self, over: &ImageAnnotations) -> ImageAnnotations {
        let join = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
            let mut out = a.clone();
            out.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
            out
        };
        ImageAnnotations {
            manifest: join(&self.manifest, &over.manifest),
            descriptor: join(&self.descriptor, &over.descriptor),
            index: join(&self.index, &over.index),
            index_descriptor: join(&self.index_descriptor, &over.index_descriptor),
        }
    }
}

/// Where the result goes besides the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An OCI image layout, as a tar file or (with `tar=false`) a directory; `-` is
    /// standard output. `names` (`name=`) replace the build's tags in the archive;
    /// `annotations` (`annotation.*=`) are added to the build's in this output only.
    Oci {
        dest: PathBuf,
        tar: bool,
        names: Vec<String>,
        annotations: ImageAnnotations,
    },
    /// A docker-archive tar (`docker load`, `podman load`); `-` is standard output.
    /// `names` (`name=`) replace the build's tags as its `RepoTags`; `annotations` as
    /// for `Oci`.
    Docker {
        dest: PathBuf,
        names: Vec<String>,
        annotations: ImageAnnotations,
    },
    /// The final root filesystem as a directory.
    Local { dest: PathBuf },
    /// The final root filesystem as a tar file.
    Tar { dest: PathBuf },
}

/// Why an `--output` value is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    #[error("invalid --output {spec:?}: {reason}")]
    Invalid { spec: String, reason: String },
}

impl Output {
    /// Whether the output streams to standard output (`dest=-`; `type=local` takes a
    /// directory, so `-` is a directory named `-` there, as in BuildKit).
    pub fn to_stdout(&self) -> bool {
        match self {
            Output::Oci {
                dest, tar: true, ..
            }
            | Output::Docker { dest, .. }
            | Output::Tar { dest } => dest.as_os_str() == "-",
            Output::Oci { .. } | Output::Local { .. } => false,
        }
    }

    /// Parses `type=oci,dest=out.tar[,tar=false]` (a bare path means `type=local`).
    pub fn parse(spec: &str) -> Result<Output, OutputError> {
        let invalid = |reason: &str| OutputError::Invalid {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        if !spec.contains('=') {
            return Ok(Output::Local {
                dest: PathBuf::from(spec),
            });
        }
        let mut fields = BTreeMap::new();
        let mut names = Vec::new();
        for field in spec.split(',') {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| invalid(&format!("field {field:?} is not key=value")))?;
            let key = k.trim().to_ascii_lowercase();
            if key == "name" {
                names.push(v.trim().to_owned());
            }
            fields.insert(key, v.trim().to_owned());
        }
        let dest = fields.get("dest").map(PathBuf::from);
        let need_dest = || dest.clone().ok_or_else(|| invalid("dest= is required"));
        let tar = match fields.get("tar").map(String::as_str) {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err(invalid("tar= must be true or false")),
        };
        match fields.get("type").map(String::as_str) {
            Some("oci") => Ok(Output::Oci {
                dest: need_dest()?,
                tar,
                names,
                annotations: ImageAnnotations::default(),
            }),
            Some("docker") => Ok(Output::Docker {
                dest: need_dest()?,
                names,
                annotations: ImageAnnotations::default(),
            }),
            Some("local") => Ok(Output::Local { dest: need_dest()? }),
            Some("tar") => Ok(Output::Tar { dest: need_dest()? }),
            Some(other) => Err(invalid(&format!(
                "unknown type {other:?} (expected oci, docker, local or tar)"
            ))),
            None => Err(invalid("type= is required")),
        }
    }
}

/// Where a build cache is kept outside the store (`--cache-to`, `--cache-from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// `type=registry,ref=REF` (or a plain reference): an OCI artifact in a registry.
    Registry(crate::registry::Reference),
    /// `type=local,dest|src=DIR`: an OCI image layout directory.
    Local(PathBuf),
}

impl std::fmt::Display for CacheLocation {
    /// As progress names where a hit came from: `registry REG/REPO:TAG`, `local DIR`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheLocation::Registry(r) => write!(f, "registry {r}"),
            CacheLocation::Local(dir) => write!(f, "local {}", dir.display()),
        }
    }
}

/// Which steps `--cache-to` exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// The steps of the final image's layers (the target stage's chain), BuildKit's
    /// default.
    #[default]
    Min,
    /// Every step of every stage built, intermediate stages included.
    Max,
}

/// One `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheExport {
    pub location: CacheLocation,
    pub mode: CacheMode,
    /// `mounts=true`: also the contents of the `RUN --mount=type=cache` directories
    /// the build used, up to this many bytes in all (`mounts-max-size`), the most
    /// recently used first.
    pub mounts: Option<u64>,
}

/// Everything a build needs to know.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The store root.
    pub root: PathBuf,
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (`<context>/Dockerfile` by default).
    pub dockerfile: PathBuf,
    /// `--add-host NAME:IP`: lines added to every RUN step's `/etc/hosts`.
    pub add_hosts: Vec<(String, String)>,
    /// The ignore file to filter the context with (`--ignorefile`), instead of the
    /// one found for the Dockerfile.
    pub ignore_file: Option<PathBuf>,
    /// `--build-context NAME=VALUE`, by key (the name's familiar form without
    /// `:latest`); local paths absolute.
    pub named_contexts: BTreeMap<String, crate::context::source::named::NamedSource>,
    /// Names to give the image in the store.
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// The platform built (`--platform`); `None`: this machine's.
    pub platform: Option<Platform>,
    /// Several platforms (`--platform a,b`): the plan is built once per platform and
    /// the result is an index of their images (`multi.rs`); empty for one platform.
    pub platforms: Vec<Platform>,
    /// This build makes one platform's image of a multi-platform build: its image is
    /// left unnamed and unexported, no result files written (the index is all that).
    pub index_part: bool,
    pub labels: BTreeMap<String, String>,
    /// Annotations of the image (in the store, pushed, and in every export); of a
    /// multi-platform build, its index's (`index`, `index_descriptor`).
    pub annotations: ImageAnnotations,
    /// A multi-platform build's annotations of each of `platforms`' images (`manifest`
    /// and `descriptor`, in `platforms` order); empty for one platform.
    pub platform_annotations: Vec<ImageAnnotations>,
    pub outputs: Vec<Output>,
    pub compression: CompressionKind,
    /// Manifest and config media types: OCI (default) or Docker schema 2.
    pub format: crate::image::Format,
    pub compression_level: Option<i32>,
    /// Write the image ID (config digest) here.
    pub iidfile: Option<PathBuf>,
    /// Write build metadata JSON here.
    pub metadata_file: Option<PathBuf>,
    /// `SOURCE_DATE_EPOCH`: clamp mtimes and fix `created`.
    pub source_date_epoch: Option<i64>,
    /// Stages built at the same time at most; `None`: the number of CPUs.
    pub jobs: Option<std::num::NonZeroUsize>,
    /// How step roots are made.
    pub snapshotter: Snapshotter,
    /// Set (by a Ctrl-C handler) to stop the build at the next step boundary; the build
    /// then unwinds, unmounting and removing what it made. The build sets it too when a
    /// stage fails, to stop the stages running beside it: a caller that needs to know
    /// whether the user interrupted keeps its own flag.
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// `--no-cache`: run every step (results are still recorded for later builds).
    pub no_cache: bool,
    /// `--no-cache-filter`: stages (names or indexes) whose steps all run.
    pub no_cache_filter: Vec<String>,
    /// `--cache-from`: caches consulted, in order, when the store has no record.
    pub cache_from: Vec<CacheLocation>,
    /// `--cache-to`: where the build's cache is exported after the build.
    pub cache_to: Vec<CacheExport>,
    /// `--cache-to type=inline`: the cache description of the image's steps goes into
    /// its config, so the image itself serves as a `--cache-from`.
    pub cache_inline: bool,
    /// `--secret`s a step may mount (`RUN --mount=type=secret`).
    pub secrets: Vec<super::mounts::SecretSpec>,
    /// `--ssh` agents a step may mount (`RUN --mount=type=ssh`).
    pub ssh: Vec<super::mounts::SshSpec>,
    /// `--network`: the network of RUN steps without `--network` (`default`, `none`,
    /// `host`).
    pub network: Option<String>,
    /// `--allow`: the entitlements RUN steps may use.
    pub entitlements: crate::plan::Entitlements,
    /// `--pull`: when `FROM` images are pulled.
    pub pull: super::PullPolicy,
    /// How registries are reached (for pulls of `FROM` images).
    pub registry: crate::registry::RegistryOptions,
    /// What each RUN step may use (`--memory`, `--pids-limit`, `--ulimit`, ...).
    pub limits: super::sandbox::Limits,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_outputs() {
        assert_eq!(
            Output::parse("type=oci,dest=a.tar").unwrap(),
            Output::Oci {
                dest: "a.tar".into(),
                tar: true,
                names: Vec::new(),
                annotations: ImageAnnotations::default(),
            }
        );
        assert_eq!(
            Output::parse("type=oci,dest=d,tar=false").unwrap(),
            Output::Oci {
                dest: "d".into(),
                tar: false,
                names: Vec::new(),
                annotations: ImageAnnotations::default(),
            }
        );
        assert_eq!(
            Output::parse("out").unwrap(),
            Output::Local { dest: "out".into() }
        );
        assert!(Output::parse("type=oci").is_err());
        assert!(Output::parse("type=zip,dest=x").is_err());
    }
}
