//! The named contexts the plan reads as trees, made ready before the stages run: a
//! local directory as it is; a git repository fetched (as a git build context is) and
//! an http(s) URL downloaded into the store's work directory, which the build removes;
//! `docker-image://scratch` an empty directory. A download is not unpacked: BuildKit
//! makes it one file named `context` (mode 0600, root's, the server's `Last-Modified`
//! time, else the time of the build).

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::context::source::git;
use crate::context::source::named::NamedSource;
use crate::executor::context::{LazyContext, NamedTrees};
use crate::executor::copy::{fetch, write_stream};
use crate::executor::error::ExecError;
use crate::executor::events::{BuildEvent, Reporter};
use crate::executor::BuildOptions;
use crate::plan::{Base, Op, Plan, Source};
use crate::store::Store;

/// The trees of the named contexts `plan` reads, fetched into `store`'s work directory
/// where they are not local; `now`: the mtime of a download without `Last-Modified`.
pub fn prepare_trees(
    store: &Store,
    options: &BuildOptions,
    plan: &Plan,
    now: i64,
    reporter: &dyn Reporter,
) -> Result<NamedTrees, ExecError> {
    let mut trees = NamedTrees::new();
    for key in used_trees(plan) {
        let source = options
            .named_contexts
            .get(&key)
            .ok_or(ExecError::Internal {
                what: "the plan reads a named context the build was not given",
            })?;
        let tree = match source {
            NamedSource::Dir(dir) => LazyContext::named(dir, true),
            other => {
                if matches!(other, NamedSource::Git(_) | NamedSource::Url(_)) {
                    reporter.event(BuildEvent::Note {
                        message: format!("fetching build context {key}"),
                    });
                }
                let dir = fetch_tree(store, other, now).map_err(|source| ExecError::Named {
                    name: key.clone(),
                    source: Box::new(source),
                })?;
                LazyContext::named(&dir, false)
            }
        };
        trees.insert(key, tree);
    }
    Ok(trees)
}

/// The named contexts the stages of `plan` read as trees.
fn used_trees(plan: &Plan) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for stage in plan.stages.iter().flatten() {
        if let Base::Named(key) = &stage.base {
            used.insert(key.clone());
        }
        for step in &stage.steps {
            let sources: Vec<&Source> = match &step.op {
                Op::Copy(copy) => vec![&copy.source],
                Op::Run(run) => run.mounts.iter().filter_map(|m| m.from.as_ref()).collect(),
                Op::Meta | Op::Workdir { .. } => Vec::new(),
            };
            for source in sources {
                if let Source::Named(key) = source {
                    used.insert(key.clone());
                }
            }
        }
    }
    used
}

/// Fetches a tree that is not a local directory; its directory.
fn fetch_tree(store: &Store, source: &NamedSource, now: i64) -> Result<PathBuf, ExecError> {
    let dest = store.temp_path("named-context");
    match source {
        NamedSource::Git(url) => Ok(git::fetch(url, &dest, false)?),
        NamedSource::Url(url) => {
            let download = fetch::fetch(url, None, store.work_dir())?;
            std::fs::create_dir(&dest).map_err(ExecError::fs("cannot create", &dest))?;
            let file = dest.join("context");
            let mut input = download.file.reopen().map_err(ExecError::fs(
                "cannot read the download of",
                download.file.path(),
            ))?;
            write_stream(
                &file,
                &mut input,
                0o600,
                (0, 0),
                download.mtime.unwrap_or(now),
            )?;
            Ok(dest)
        }
        // `docker-image://scratch` read as a tree: nothing in it.
        NamedSource::Image(_) | NamedSource::Dir(_) | NamedSource::Layout(_) => {
            std::fs::create_dir(&dest).map_err(ExecError::fs("cannot create", &dest))?;
            Ok(dest)
        }
    }
}
