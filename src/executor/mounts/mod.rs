//! `RUN --mount`: turns a step's parsed mounts into sandbox mounts and extra
//! environment, and keeps what backs them (overlay views, cache locks, the secrets
//! tmpfs, ssh agent proxies) alive until the step ends.
//!
//! | type | what the step gets |
//! |---|---|
//! | `bind` | a context path (as `.dockerignore` filters it; also a named context's tree), or a stage's or image's path; read-only unless `rw`, and then writes are discarded (`bind.rs`) |
//! | `cache` | a directory kept in the store between builds, seeded from `from=`/`source=` when new, with `shared`/`locked`/`private` sharing (`cache.rs`) |
//! | `tmpfs` | a fresh tmpfs (`size=`) |
//! | `secret` | a read-only file on a tmpfs and/or an environment variable, from `--secret` (`secret.rs`) |
//! | `ssh` | a socket forwarding to an agent given with `--ssh`, and `SSH_AUTH_SOCK` (`ssh.rs`) |
//!
//! Everything lives in a scratch directory of the store's work dir (`scratch.rs`);
//! dropping [`StepMounts`] undoes it in reverse order.

mod bind;
mod cache;
mod scratch;
mod secret;
mod ssh;

pub use secret::{FlagError, SecretSource, SecretSpec};
pub use ssh::SshSpec;

use std::path::{Path, PathBuf};

use self::scratch::{Keeper, Scratch};
use super::copy::{self, Attrs, CopyRequest, SourceTree};
use super::error::ExecError;
use super::sandbox::Mount;
use super::stage_env::StageEnv;
use crate::parser::instructions::values::{clean_path, Mount as MountSpec, MountType, Sharing};
use crate::plan::{CopyOp, RunMount, Source};

/// The sandbox side of a step's `--mount`s.
pub(super) struct StepMounts {
    /// Mounts for the sandbox, in the order written.
    pub mounts: Vec<Mount>,
    /// `KEY=VALUE` the step's environment gets (secret `env=`).
    pub env: Vec<String>,
    /// `SSH_AUTH_SOCK` for the step unless its environment has one.
    pub ssh_auth_sock: Option<String>,
    /// ssh mounts so far (each gets a socket of its own).
    ssh_count: usize,
    scratch: Scratch,
}

/// Prepares every mount of `mounts` for a step whose working directory is `workdir`.
pub(super) fn prepare(
    env: &StageEnv<'_>,
    mounts: &[RunMount],
    workdir: &str,
) -> Result<StepMounts, ExecError> {
    let mut out = StepMounts {
        mounts: Vec::new(),
        env: Vec::new(),
        ssh_auth_sock: None,
        ssh_count: 0,
        scratch: Scratch::new(env.build.store.work_dir())?,
    };
    out.lock_caches(env, mounts)?;
    for m in mounts {
        out.add(env, m, workdir)?;
    }
    Ok(out)
}

impl StepMounts {
    /// Takes the locks of every `locked` cache mount first, all at once.
    fn lock_caches(&mut self, env: &StageEnv<'_>, mounts: &[RunMount]) -> Result<(), ExecError> {
        let locked: Vec<PathBuf> = mounts
            .iter()
            .filter(|m| m.spec.kind == MountType::Cache && m.spec.sharing_mode() == Sharing::Locked)
            .map(|m| {
                let seed = cache_seed(env, m)?;
                cache::dir_for(env.build.store, &m.spec, seed.as_deref())
            })
            .collect::<Result<_, ExecError>>()?;
        for lock in cache::lock_all(locked)? {
            self.scratch.keep(Keeper::Lock(lock));
        }
        Ok(())
    }

    fn add(&mut self, env: &StageEnv<'_>, m: &RunMount, workdir: &str) -> Result<(), ExecError> {
        let spec = &m.spec;
        let target = || {
            spec.resolve_target(workdir)
                .map_err(|e| ExecError::BadMount {
                    value: format!("type={}", spec.kind.as_str()),
                    reason: e.to_string(),
                })
        };
        match spec.kind {
            MountType::Tmpfs => self.mounts.push(Mount::Tmpfs {
                target: target()?,
                size: spec.size_limit,
            }),
            MountType::Bind => {
                let target = target()?;
                let from = m.from.as_ref().unwrap_or(&Source::Context);
                let mut host = source_path(env, from, &source_rel(spec), &mut self.scratch)?;
                if !spec.read_only {
                    host = bind::writable(&host, &mut self.scratch)?;
                }
                self.bind(host, target, spec.read_only);
            }
            MountType::Cache => {
                let target = target()?;
                let path = cache_mount(env, m, &mut self.scratch)?;
                self.bind(path, target, spec.read_only);
            }
            MountType::Secret => self.secret(env, spec, workdir)?,
            MountType::Ssh => self.ssh(env, spec, workdir)?,
        }
        Ok(())
    }

    fn bind(&mut self, source: PathBuf, target: String, readonly: bool) {
        self.mounts.push(Mount::Bind {
            source,
            target,
            readonly,
        });
    }

    /// A secret as a read-only file on the secrets tmpfs and/or an environment variable.
    fn secret(
        &mut self,
        env: &StageEnv<'_>,
        spec: &MountSpec,
        workdir: &str,
    ) -> Result<(), ExecError> {
        let secret::Resolved::Value(value) = secret::resolve(spec, &env.build.options.secrets)?
        else {
            return Ok(());
        };
        if let Some(name) = secret::env_name(spec) {
            self.env
                .push(format!("{name}={}", String::from_utf8_lossy(&value)));
        }
        if let Some(target) = spec.secret_target() {
            let dir = self.scratch.secrets_dir()?;
            let name = format!("{}", self.mounts.len());
            let file = secret::write_file(&dir, &name, &value, spec)?;
            self.bind(file, absolute(&target, workdir), true);
        }
        Ok(())
    }

    /// A socket forwarding to an `--ssh` agent.
    fn ssh(
        &mut self,
        env: &StageEnv<'_>,
        spec: &MountSpec,
        workdir: &str,
    ) -> Result<(), ExecError> {
        let index = self.ssh_count;
        self.ssh_count += 1;
        let Some(agent) = ssh::resolve(spec, &env.build.options.ssh)? else {
            return Ok(());
        };
        let target = absolute(&spec.ssh_target(index), workdir);
        let listen = self.scratch.socket_path(index)?;
        let owner = (spec.uid.unwrap_or(0), spec.gid.unwrap_or(0));
        let mode = spec.file_mode().unwrap_or(0o600);
        let proxy = ssh::AgentProxy::start(&listen, &agent.socket, owner, mode)?;
        self.scratch.keep(Keeper::Agent(proxy));
        self.ssh_auth_sock.get_or_insert_with(|| target.clone());
        self.bind(listen, target, false);
        Ok(())
    }
}

/// `source=` as a root-relative path (`..` cannot climb above the root).
fn source_rel(spec: &MountSpec) -> String {
    let cleaned = clean_path(&format!("/{}", spec.source.as_deref().unwrap_or_default()));
    cleaned.trim_start_matches('/').to_owned()
}

fn absolute(target: &str, workdir: &str) -> String {
    if target.starts_with('/') {
        target.to_owned()
    } else {
        clean_path(&format!("/{workdir}/{target}"))
    }
}

/// The host path of `rel` in `from` (views are kept alive in `scratch`).
fn source_path(
    env: &StageEnv<'_>,
    from: &Source,
    rel: &str,
    scratch: &mut Scratch,
) -> Result<PathBuf, ExecError> {
    if let Some(tree) = env.build.tree(from)? {
        return bind::from_context(tree.get()?, rel, &tree_origin(from), scratch);
    }
    match view(env, from, scratch)? {
        None => Err(tree_missing()),
        Some((root, origin)) => bind::from_root(&root, rel, &origin),
    }
}

/// How errors name a tree: `the build context`, `build context NAME`.
fn tree_origin(from: &Source) -> String {
    match from {
        Source::Named(name) => format!("build context {name}"),
        _ => "the build context".to_owned(),
    }
}

fn tree_missing() -> ExecError {
    ExecError::Internal {
        what: "a mount source is neither a tree nor a stage or image",
    }
}

/// A read-only view of a stage or image, kept mounted for the step, and how errors
/// name it; `None` for the build context.
fn view(
    env: &StageEnv<'_>,
    from: &Source,
    scratch: &mut Scratch,
) -> Result<Option<(PathBuf, String)>, ExecError> {
    let Some((view, origin)) = env.view(from)? else {
        return Ok(None);
    };
    let root = view.target();
    scratch.keep(Keeper::View(view));
    Ok(Some((root, origin)))
}

/// The cache directory of `m`; a new one is seeded from `from=` before it is published.
fn cache_mount(
    env: &StageEnv<'_>,
    m: &RunMount,
    scratch: &mut Scratch,
) -> Result<PathBuf, ExecError> {
    let rel = source_rel(&m.spec);
    let seed = cache_seed(env, m)?;
    let fresh = env.no_cache.then_some(&env.build.fresh_caches);
    let store = env.build.store;
    let key = cache::dir_for(store, &m.spec, seed.as_deref())?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A new directory: seeded from `from=`, else restored from an imported cache.
    let dir = cache::open(store, &m.spec, seed.as_deref(), fresh, |new| {
        match &m.from {
            Some(from) => seed_cache(env, from, &rel, new, scratch),
            None => env
                .build
                .remote
                .restore_mount(store, &key, new, env.build.reporter),
        }
    })?;
    let mut used = env
        .build
        .used_mounts
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    used.insert(key, dir.path.clone());
    drop(used);
    if let Some(lock) = dir.lock {
        scratch.keep(Keeper::Lock(lock));
    }
    scratch.keep(Keeper::InUse(dir.in_use));
    Ok(dir.path)
}

/// What seeds a cache mount with `from=`: the source's identity and path.
fn cache_seed(env: &StageEnv<'_>, m: &RunMount) -> Result<Option<String>, ExecError> {
    let Some(from) = m.from.as_ref() else {
        return Ok(None);
    };
    let base = match from {
        Source::Context => "context".to_owned(),
        Source::Stage(j) => env
            .stage_layers(*j)?
            .last()
            .map_or("scratch".to_owned(), |l| l.chain.to_string()),
        Source::Image(image) => image.digest.to_string(),
        Source::Named(name) => format!("context {name}"),
    };
    Ok(Some(format!("{base}:/{}", source_rel(&m.spec))))
}

/// Copies `rel` of `from` into `dir`, a new cache directory not yet published, owners
/// kept.
fn seed_cache(
    env: &StageEnv<'_>,
    from: &Source,
    rel: &str,
    dir: &Path,
    scratch: &mut Scratch,
) -> Result<(), ExecError> {
    let op = CopyOp {
        sources: vec![format!("/{rel}")],
        dest: "/".to_owned(),
        ..CopyOp::default()
    };
    let req = CopyRequest {
        op: &op,
        attrs: Attrs {
            owner: None,
            keep_owner: true,
            mode: None,
        },
        created: env.build.created.epoch,
        cancel: Some(&env.build.options.cancel),
        backing: None,
        reuse: None,
    };
    if let Some(tree) = env.build.tree(from)? {
        return copy::copy(&SourceTree::Context(tree.get()?), &req, dir);
    }
    match view(env, from, scratch)? {
        None => Err(tree_missing()),
        Some((root, _)) => copy::copy(&SourceTree::Root(&root), &req, dir),
    }
}
