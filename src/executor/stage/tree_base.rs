//! `FROM <named context>` of a directory tree (`--build-context NAME=DIR`, a git
//! checkout, a download): the stage starts from one layer holding the tree as
//! `COPY . /` from it would write it (filtered by its `.dockerignore`, owned by root),
//! as BuildKit starts it from the tree's snapshot. The layer is keyed by the tree's
//! content (the stage's base key) and taken from the cache when it has it.

use super::super::caching::{layer_of, BuildCache};
use super::super::env::{Layer, Mode};
use super::super::error::ExecError;
use super::super::events::BuildEvent;
use super::super::file_steps::copy_step;
use super::super::stage_env::StageEnv;
use crate::cache::CacheKey;
use crate::plan::{CopyOp, Source};

/// The tree's layer and when it was made; `None` for an empty tree, or in explain
/// mode when the cache does not have it (nothing is made then).
pub(super) fn tree_layer(
    env: &StageEnv<'_>,
    cache: &BuildCache<'_>,
    name: &str,
    key: &CacheKey,
    lookups: bool,
) -> Result<Option<(Layer, String)>, ExecError> {
    let now = &env.build.created.text;
    if lookups {
        if let Some((record, _)) = cache.lookup(key)? {
            let when = record.created.clone().unwrap_or_else(|| now.clone());
            let layer = record
                .layer
                .as_ref()
                .map(|l| layer_of(l, &[]))
                .transpose()?;
            return Ok(layer.map(|l| (l, when)));
        }
    }
    if env.build.mode == Mode::Explain {
        return Ok(None);
    }
    env.build.reporter.event(BuildEvent::Note {
        message: format!("loading build context {name}"),
    });
    let op = CopyOp {
        source: Source::Named(name.to_owned()),
        sources: vec![".".to_owned()],
        dest: "/".to_owned(),
        ..CopyOp::default()
    };
    let step_root = env.roots.root(&[])?;
    copy_step(
        env,
        &op,
        &step_root.target(),
        step_root.upperdir().as_deref(),
        None,
    )?;
    let layer = step_root.commit(&env.write())?.layer;
    cache.record(key, layer.as_ref(), now)?;
    Ok(layer.map(|l| (l, now.clone())))
}
