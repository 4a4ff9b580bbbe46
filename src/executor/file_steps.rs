//! The file steps: `WORKDIR` (the directory made when missing) and `COPY`/`ADD` (from
//! the context or a named context's tree, a read-only view of a stage or image, or git
//! repositories), each on a step root holding the layers below and committed as the
//! step's layer.

use std::path::Path;

use super::copy::{self, Attrs, Backing, CopyRequest, Reuse, SourceTree};
use super::env::Layer;
use super::error::ExecError;
use super::stage_env::StageEnv;
use super::step_root::{Committed, LastLayer};
use super::step_user::owner_in;
use crate::plan::{CopyOp, Op, Source, Step};

/// Runs a WORKDIR or COPY/ADD on a root holding `layers`; returns what its commit
/// made (no layer when the step changed nothing). `reuse`: the step's last snapshot,
/// whose unchanged files a COPY links.
pub fn fs_step(
    env: &StageEnv<'_>,
    layers: &[Layer],
    op: &Op,
    step: &Step,
    reuse: Option<&Reuse>,
) -> Result<Committed, ExecError> {
    let step_root = env.roots.root(layers)?;
    let root = step_root.target();
    match op {
        Op::Workdir { path } => {
            let owner = owner_in(&root, &step.state.user)?;
            copy::ensure_dir(&root, path, owner)?;
        }
        Op::Copy(c) => copy_step(env, c, &root, step_root.upperdir().as_deref(), reuse)?,
        Op::Meta | Op::Run(_) => {}
    }
    let last = reuse
        .and_then(Reuse::patch_source)
        .map(|(blob, chunks, linked)| LastLayer {
            blob,
            chunks,
            linked,
        });
    step_root.commit_patching(&env.write(), last)
}

/// Copies what `op` selects into `root` (a step root being written; `upper`: its
/// overlay's upperdir; `reuse`: where unchanged files are linked from).
pub(super) fn copy_step(
    env: &StageEnv<'_>,
    op: &CopyOp,
    root: &Path,
    upper: Option<&Path>,
    reuse: Option<&Reuse>,
) -> Result<(), ExecError> {
    let owner = match &op.options.chown {
        Some(spec) => Some(owner_in(root, spec)?),
        None => None,
    };
    let mode = match &op.options.chmod {
        Some(m) => {
            Some(u32::from_str_radix(m, 8).map_err(|_| ExecError::BadChmod { value: m.clone() })?)
        }
        None => None,
    };
    let req = CopyRequest {
        op,
        attrs: Attrs {
            owner,
            // Files of a tree are the user's: they get root's, as BuildKit's local
            // sources send them.
            keep_owner: !matches!(op.source, Source::Context | Source::Named(_)),
            mode,
        },
        created: env.build.created.epoch,
        cancel: Some(&env.build.options.cancel),
        backing: upper.map(|upper| Backing {
            merged: root,
            upper,
        }),
        reuse,
    };
    if let Some(tree) = env.build.tree(&op.source)? {
        copy::copy(&SourceTree::Context(tree.get()?), &req, root)?;
    } else {
        // COPY --from: what is written to the view is discarded.
        let Some((mut view, _)) = env.view(&op.source)? else {
            return Err(ExecError::Internal {
                what: "a COPY source is neither a tree nor a stage or image",
            });
        };
        let result = copy::copy(&SourceTree::Root(&view.target()), &req, root);
        view.unmount()?;
        result?;
    }
    // The checkout goes beside the root, in the step's work directory.
    let work = root.parent().unwrap_or(root);
    for source in &op.git {
        copy::add_git(&req, source, &env.build.git, root, work)?;
    }
    Ok(())
}
