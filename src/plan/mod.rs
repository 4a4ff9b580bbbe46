//! The plan: a typed [`Dockerfile`] plus build options in, a [`Plan`] out.
//!
//! Owns stages (`FROM` resolution to scratch, a stage or an image), global versus stage
//! `ARG`s, `--build-arg`, `--target`, which stages the target needs (and cycles among
//! them), word expansion of every instruction BuildKit expands, and the image
//! configuration each stage ends with. It runs nothing and reads no files: base images
//! come through the [`BaseResolver`] the caller passes.

mod dispatch;
mod entitlements;
mod error;
mod git;
mod history;
mod keys;
mod platform;
mod stages;

use std::collections::{BTreeMap, BTreeSet};

pub use dispatch::{empty_image, DEFAULT_PATH};
pub use entitlements::{Entitlement, EntitlementError, Entitlements};
pub use error::{BaseError, NoNamedContext, PlanError, Result};
pub use history::{go_duration, healthcheck_created_by};
pub use keys::{base_key, step_key, KeyOptions, KeySources, KeyedStep};
pub use platform::{parse_list as parse_platforms, Platform, PlatformError};

use crate::digest::Digest;
use crate::image::{History, ImageConfig};
use crate::parser::instructions::values::Mount as MountSpec;
use crate::parser::instructions::values::{redact_url_credentials, GitRef};
use crate::parser::instructions::{CopyOptions, Dockerfile, InlineFile, SourceContent};
use crate::parser::Span;

/// What the caller decides about a build.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--build-arg KEY=VALUE`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (case-insensitive); the last stage when `None`.
    pub target: Option<String>,
    /// `--platform`; the host when `None`.
    pub platform: Option<Platform>,
    /// `--label`, added to the target's configuration.
    pub labels: BTreeMap<String, String>,
    /// `--allow`: what RUN steps may ask for (`--network=host`, `--security=insecure`).
    pub entitlements: Entitlements,
}

/// A base image the resolver found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The reference as written after expansion (`alpine:3.20`).
    pub reference: String,
    /// The manifest digest (what cache keys use).
    pub digest: Digest,
    /// Its configuration.
    pub config: ImageConfig,
}

/// Looks up base images (in the local store, or pulled from a registry) and the named
/// contexts of a build (`--build-context NAME=VALUE`).
pub trait BaseResolver {
    /// Resolves `reference` for `platform`; the error says why it failed.
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> std::result::Result<BaseImage, BaseError>;

    /// The key of the named context that `name` (a stage name, a `FROM` base or a
    /// `--from`, as written after expansion) refers to, matched as BuildKit matches
    /// (`alpine`, `alpine:latest` and `docker.io/library/alpine` are one name); `None`
    /// when no named context has that name. Cheap: nothing is loaded.
    fn context_key(&self, name: &str) -> Option<String> {
        let _ = name;
        None
    }

    /// Loads the named context `key` (a key [`BaseResolver::context_key`] gave) for
    /// `platform`: an image is resolved (pulled, imported) only when a stage uses it.
    fn named_context(
        &self,
        key: &str,
        platform: &Platform,
    ) -> std::result::Result<NamedContext, BaseError> {
        let _ = platform;
        Err(BaseError::new(NoNamedContext {
            key: key.to_owned(),
        }))
    }
}

/// What a named context (`--build-context NAME=VALUE`) is, once loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A directory tree (a local directory, a git checkout, a download): read like the
    /// build context; `FROM NAME` makes a stage of it with an empty configuration and
    /// one layer, whose history says `description` (BuildKit's text for that source).
    Tree { description: String },
    /// An image (`docker-image://`, `oci-layout://`), used with its configuration.
    Image(Box<BaseImage>),
    /// `docker-image://scratch`: nothing.
    Scratch,
}

/// Where a stage starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// `FROM <earlier stage>`: its index.
    Stage(usize),
    /// `FROM <image>`.
    Image(Box<BaseImage>),
    /// `FROM <named context>` of a directory tree: a layer holding the tree (the
    /// context's key).
    Named(String),
}

/// Where a `COPY --from` or `RUN --mount from=` reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Source {
    /// The build context.
    #[default]
    Context,
    /// Another stage's final filesystem.
    Stage(usize),
    /// An image's filesystem.
    Image(Box<BaseImage>),
    /// A named context that is a directory tree, read as the build context is (the
    /// context's key; `docker-image://scratch` is an empty tree).
    Named(String),
}

/// A `COPY` or `ADD`, expanded: what the executor copies (its copy request refers to
/// this op) and what the step's cache key holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyOp {
    pub is_add: bool,
    pub source: Source,
    /// Source paths, patterns or URLs, expanded.
    pub sources: Vec<String>,
    /// Inline heredoc files (expanded when their delimiter was unquoted).
    pub contents: Vec<SourceContent>,
    /// The destination, expanded and made absolute against the working directory; a
    /// trailing `/` is kept (it means "into this directory").
    pub dest: String,
    /// The flags, expanded (`--chown`, `--chmod`, `--exclude`, `--checksum`).
    pub options: CopyOptions,
    /// The sources that are git repositories (`ADD` only), in source order.
    pub git: Vec<GitSource>,
}

impl CopyOp {
    /// The git repository source `written` (an entry of `sources`) is, if it is one.
    pub fn git_source(&self, written: &str) -> Option<&GitSource> {
        self.git.iter().find(|g| g.written == written)
    }
}

/// An `ADD` source that is a git repository, read as BuildKit reads one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The source as written (expanded): the entry of [`CopyOp::sources`] it is.
    pub written: String,
    /// The reference, with `--keep-git-dir` and `--checksum` folded into its
    /// `keep_git_dir` and `checksum`.
    pub url: GitRef,
}

impl GitSource {
    /// `remote#ref:subdir` with credentials masked: how keys and messages name it.
    pub fn display(&self) -> String {
        redact_url_credentials(&self.url.fragment_form(true))
    }
}

/// A `RUN`, expanded as far as BuildKit expands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOp {
    /// The argv to execute (shell form already wrapped in `SHELL`).
    pub argv: Vec<String>,
    /// Heredoc files that are not the script itself.
    pub files: Vec<InlineFile>,
    /// `--mount`s, expanded and parsed, with their `from=` resolved.
    pub mounts: Vec<RunMount>,
    /// `--network` (`default`, `none`, `host`) when given.
    pub network: Option<String>,
    /// `--security` when given.
    pub security: Option<String>,
}

/// One `RUN --mount`, parsed after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// The mount as written (BuildKit's defaults are methods of it).
    pub spec: MountSpec,
    /// Where a bind mount reads, or what seeds a new cache mount (`from=`); `None` for
    /// a cache without `from=`, tmpfs, secret and ssh mounts.
    pub from: Option<Source>,
}

/// What a step does to the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Configuration only (ENV, LABEL, CMD, ...): no layer.
    Meta,
    /// `WORKDIR`: the directory is created when missing.
    Workdir {
        path: String,
    },
    Copy(Box<CopyOp>),
    Run(Box<RunOp>),
}

/// The process state a step sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepState {
    /// Environment: the stage's ENV plus the build args in scope.
    pub env: Vec<String>,
    /// Build args in scope with their values (`ARG` declared in this stage).
    pub build_args: Vec<(String, String)>,
    pub user: String,
    pub workdir: String,
    pub shell: Vec<String>,
    /// The stage's platform (a RUN's key input: the same command differs per platform).
    pub platform: Platform,
}

/// One instruction of a stage, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub span: Span,
    /// The instruction as written (logical line), for progress.
    pub original: String,
    pub op: Op,
    /// The state in effect when the step runs.
    pub state: StepState,
    /// The history entry the step adds.
    pub history: History,
}

/// A stage, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    pub index: usize,
    pub name: Option<String>,
    pub base: Base,
    /// The `FROM` as progress shows it: `FROM <image | stage | scratch>`, expanded.
    pub from: String,
    pub platform: Platform,
    pub steps: Vec<Step>,
    /// The configuration the stage ends with (history included; `rootfs` is filled in
    /// by the executor from the layers it makes).
    pub config: ImageConfig,
    /// Stages this one needs (FROM, COPY --from, RUN --mount from=).
    pub deps: BTreeSet<usize>,
    pub span: Span,
}

/// A whole build: the stages the target needs, in an order that builds dependencies
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Planned stages by index (`None`: not needed by the target).
    pub stages: Vec<Option<StagePlan>>,
    /// The stage to export.
    pub target: usize,
    /// Needed stages, dependencies first.
    pub order: Vec<usize>,
}

impl Plan {
    /// The target stage.
    pub fn target_stage(&self) -> Option<&StagePlan> {
        self.stages.get(self.target).and_then(Option::as_ref)
    }
}

/// Plans `dockerfile` with `options`, resolving base images through `resolver`.
pub fn plan(
    dockerfile: &Dockerfile,
    options: &PlanOptions,
    resolver: &dyn BaseResolver,
) -> Result<Plan> {
    check_syntax(dockerfile)?;
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let graph = stages::resolve(dockerfile, options, &platform, resolver)?;
    let mut planned: Vec<Option<StagePlan>> = vec![None; dockerfile.stages.len()];
    for &index in &graph.order {
        let stage = dispatch::dispatch(
            dockerfile, &graph, index, options, &platform, resolver, &planned,
        )?;
        planned[index] = Some(stage);
    }
    if let (Some(target), Some(Some(stage))) = (&options.platform, planned.get_mut(graph.target)) {
        label_platform(&mut stage.config, target);
    }
    Ok(Plan {
        stages: planned,
        target: graph.target,
        order: graph.order,
    })
}

/// An image built for a `--platform` is labelled with it, whatever its base's platform
/// (`FROM --platform=$BUILDPLATFORM`), as BuildKit labels it: OS and architecture; the
/// variant too when the target names one or the OS or architecture changed (an
/// `arm64` build of an `arm64/v8` base keeps `v8`).
fn label_platform(config: &mut ImageConfig, target: &Platform) {
    let same = config.os == target.os && config.architecture == target.architecture;
    config.os.clone_from(&target.os);
    config.architecture.clone_from(&target.architecture);
    if !target.variant.is_empty() || !same {
        config.variant.clone_from(&target.variant);
    }
}

/// The proxy variables a build passes to every `RUN` without an `ARG` (BuildKit's
/// predefined proxy args), lower-case names; the lower-case spelling of a build arg wins
/// over the upper-case one. `None` when no proxy is set.
pub fn proxy_env(build_args: &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for name in [
        "http_proxy",
        "https_proxy",
        "ftp_proxy",
        "no_proxy",
        "all_proxy",
    ] {
        let value = build_args
            .get(name)
            .or_else(|| build_args.get(&name.to_ascii_uppercase()));
        if let Some(v) = value {
            out.insert(name.to_owned(), v.clone());
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Why a `SOURCE_DATE_EPOCH` value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SOURCE_DATE_EPOCH: {value:?} is not a Unix timestamp")]
pub struct EpochError {
    pub value: String,
}

/// The `SOURCE_DATE_EPOCH` build-arg value: a decimal Unix timestamp, or `context`
/// (no fixed time).
pub fn source_date_epoch(value: &str) -> std::result::Result<Option<i64>, EpochError> {
    if value == "context" || value.is_empty() {
        return Ok(None);
    }
    value.parse::<i64>().map(Some).map_err(|_| EpochError {
        value: value.to_owned(),
    })
}

/// rbuild implements the Dockerfile frontend itself: a `# syntax=` directive may name
/// only a `docker/dockerfile` frontend (whose syntax rbuild follows).
fn check_syntax(dockerfile: &Dockerfile) -> Result<()> {
    let Some(d) = dockerfile.directives.iter().find(|d| d.name == "syntax") else {
        return Ok(());
    };
    let reference = d.value.split_whitespace().next().unwrap_or_default();
    let repo = reference.split(['@', ':']).next().unwrap_or_default();
    let repo = repo.trim_start_matches("docker.io/");
    if matches!(repo, "docker/dockerfile" | "docker/dockerfile-upstream") {
        return Ok(());
    }
    Err(PlanError::Frontend {
        reference: reference.to_owned(),
        span: Span::new(d.line, d.line, 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_labelled_with_its_target_platform_as_buildkit_labels_it() {
        let labelled = |base: (&str, &str), target: &str| {
            let mut config = ImageConfig {
                architecture: base.0.into(),
                variant: base.1.into(),
                os: "linux".into(),
                ..Default::default()
            };
            label_platform(&mut config, &target.parse().unwrap());
            (config.architecture, config.variant)
        };
        let pair = |a: &str, v: &str| (a.to_owned(), v.to_owned());
        assert_eq!(labelled(("amd64", ""), "linux/arm64"), pair("arm64", ""));
        assert_eq!(
            labelled(("arm64", "v8"), "linux/arm64"),
            pair("arm64", "v8")
        );
        assert_eq!(labelled(("arm64", "v8"), "linux/amd64"), pair("amd64", ""));
        assert_eq!(labelled(("arm", "v6"), "linux/arm/v7"), pair("arm", "v7"));
    }
}
