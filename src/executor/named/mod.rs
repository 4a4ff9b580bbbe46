//! Named contexts (`--build-context NAME=VALUE`) as a build uses them.
//!
//! - Planning: [`NamedResolver`] answers the plan's questions about names: which named
//!   context a stage name, a `FROM` or a `--from` refers to (BuildKit's matching: the
//!   name's familiar form without `:latest`, `scratch` and `context` never looked up),
//!   and, only for the contexts a needed stage uses, what it is: a tree (a directory,
//!   a git repository, an http(s) download) or an image (`docker-image://` resolved like
//!   a `FROM` image, per `--pull`; `oci-layout://` imported from the layout, no network).
//! - Before the stages run: [`prepare_trees`] makes the trees the plan reads ready
//!   (`trees.rs`): a directory as it is, a repository or download fetched into the
//!   store's work directory.
//!
//! A named context nothing uses is never loaded or fetched, and is no error, as in
//! BuildKit.

mod trees;

use std::collections::BTreeMap;

pub use trees::prepare_trees;

use super::resolver::StoreResolver;
use crate::context::source::named::{LayoutRef, NamedSource};
use crate::plan::{BaseError, BaseImage, BaseResolver, NamedContext, NoNamedContext, Platform};
use crate::publish::{import_layout_image, read_config, read_manifest, LayoutPick};
use crate::registry::Reference;

/// Resolves base images through [`StoreResolver`] and names through the build's named
/// contexts.
pub struct NamedResolver<'a> {
    pub images: StoreResolver<'a>,
    /// The named contexts by key (their names' [`Reference::context_name`]).
    pub contexts: &'a BTreeMap<String, NamedSource>,
}

impl BaseResolver for NamedResolver<'_> {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<BaseImage, BaseError> {
        self.images.resolve(reference, platform)
    }

    fn context_key(&self, name: &str) -> Option<String> {
        // BuildKit never looks these two up (`namedContext` in dockerfile2llb).
        if self.contexts.is_empty()
            || name.eq_ignore_ascii_case("scratch")
            || name.eq_ignore_ascii_case("context")
        {
            return None;
        }
        let key = Reference::parse(name).ok()?.context_name();
        self.contexts.contains_key(&key).then_some(key)
    }

    fn named_context(&self, key: &str, platform: &Platform) -> Result<NamedContext, BaseError> {
        let source = self.contexts.get(key).ok_or_else(|| {
            BaseError::new(NoNamedContext {
                key: key.to_owned(),
            })
        })?;
        Ok(match source {
            NamedSource::Image(reference) if reference == "scratch" => NamedContext::Scratch,
            NamedSource::Image(reference) => {
                let image = self.images.base(reference, platform);
                NamedContext::Image(Box::new(image.map_err(BaseError::new)?))
            }
            NamedSource::Layout(layout) => {
                NamedContext::Image(Box::new(self.layout(layout, platform)?))
            }
            tree => NamedContext::Tree {
                description: description(key, tree),
            },
        })
    }
}

impl NamedResolver<'_> {
    /// The image `layout` names, imported into the store.
    fn layout(&self, layout: &LayoutRef, platform: &Platform) -> Result<BaseImage, BaseError> {
        let store = self.images.store;
        let pick = LayoutPick {
            tag: &layout.tag,
            digest: layout.digest,
            platform: (&platform.os, &platform.architecture, &platform.variant),
        };
        let descriptor = import_layout_image(store, &layout.path, pick).map_err(BaseError::new)?;
        let manifest = read_manifest(store, &descriptor.digest).map_err(BaseError::new)?;
        let config = read_config(store, &manifest.config.digest).map_err(BaseError::new)?;
        Ok(BaseImage {
            reference: format!(
                "oci-layout://{}@{}",
                layout.path.display(),
                descriptor.digest
            ),
            digest: descriptor.digest,
            config,
        })
    }
}

/// The history text of a tree's layer: BuildKit's description of the source its
/// snapshot came from.
fn description(key: &str, tree: &NamedSource) -> String {
    match tree {
        NamedSource::Git(git) => format!(
            "git snapshot for {}#{}",
            redact_password(&git.remote),
            git.reference.as_deref().unwrap_or("HEAD")
        ),
        NamedSource::Url(url) => format!("http url {}", redact_password(url)),
        _ => format!("local source for {key}"),
    }
}

/// `scheme://user:password@host/...` with the password replaced (BuildKit's
/// `RedactCredentials`): history is published with the image.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:xxxxx@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{NoReporter, PullPolicy};
    use crate::registry::{Client, RegistryOptions};
    use crate::store::Store;

    #[test]
    fn names_are_matched_as_buildkit_matches_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let client = Client::new(RegistryOptions::default());
        let contexts: BTreeMap<String, NamedSource> = [
            ("alpine", NamedSource::Image("busybox".into())),
            ("src", NamedSource::Dir("/x".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let resolver = NamedResolver {
            images: StoreResolver {
                store: &store,
                client: &client,
                policy: PullPolicy::Never,
                reporter: &NoReporter,
            },
            contexts: &contexts,
        };
        for name in ["alpine", "alpine:latest", "docker.io/library/alpine:latest"] {
            assert_eq!(
                resolver.context_key(name).as_deref(),
                Some("alpine"),
                "{name}"
            );
        }
        assert_eq!(resolver.context_key("alpine:3"), None);
        assert_eq!(resolver.context_key("Src"), None, "not a valid name");
        let tree = resolver.named_context("src", &Platform::host()).unwrap();
        assert_eq!(
            tree,
            NamedContext::Tree {
                description: "local source for src".into()
            }
        );
    }

    #[test]
    fn passwords_stay_out_of_history() {
        assert_eq!(
            redact_password("https://u:secret@h/r.git"),
            "https://u:xxxxx@h/r.git"
        );
        assert_eq!(redact_password("https://h/a@b"), "https://h/a@b");
        assert_eq!(redact_password("git@h:r.git"), "git@h:r.git");
    }
}
