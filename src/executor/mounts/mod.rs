//! `RUN --mount`: turns a step's parsed mounts into sandbox mounts and extra
//! environment, and keeps what backs them (overlay views, cache locks, the secrets
//! tmpfs, ssh agent proxies) alive until the step ends.
//!
//! | type | what the step gets |
//! |---|---|
//! | `bind` | a context path (as `.dockerignore` filters it), or a stage's or image's path; read-only unless `rw`, and then writes are discarded (`bind.rs`) |
//! | `cache` | a directory kept in the store between builds, seeded from `from=`/`source=` when new, with `shared`/`locked`/`private` sharing (`cache.rs`) |
//! | `tmpfs` | a fresh tmpfs (`size=`) |
//! | `secret` | a read-only file on a tmpfs and/or an environment variable, from `--secret` (`secret.rs`) |
//! | `ssh` | a socket forwarding to an agent given with `--ssh`, and `SSH_AUTH_SOCK` (`ssh.rs`) |
//!
//! Everything lives in a scratch directory of the store's work dir ([`Scratch`]);
//! dropping [`StepMounts`] undoes it in reverse order.

mod bind;
mod cache;
mod secret;
mod ssh;

pub use secret::{FlagError, SecretSource, SecretSpec};
pub use ssh::SshSpec;

use std::path::{Path, PathBuf};

use super::copy::{self, Attrs, CopyRequest, SourceTree};
use super::error::ExecError;
use super::sandbox::Mount;
use super::snapshots::image_layers;
use super::stage::{Layer, StageEnv};
use super::step_root::StepRoot;
use crate::layers::OverlayMount;
use crate::parser::instructions::values::{clean_path, Mount as MountSpec, MountType, Sharing};
use crate::plan::{RunMount, Source};
use crate::store::FileLock;

/// Size of the tmpfs that holds a step's secret files.
const SECRETS_TMPFS_SIZE: &str = "16m";

/// The sandbox side of a step's `--mount`s.
pub(super) struct StepMounts {
    /// Mounts for the sandbox, in the order written.
    pub mounts: Vec<Mount>,
    /// `KEY=VALUE` the step's environment gets (secret `env=`).
    pub env: Vec<String>,
    /// `SSH_AUTH_SOCK` for the step unless its environment has one.
    pub ssh_auth_sock: Option<String>,
    _scratch: Scratch,
}

/// Prepares every mount of `mounts` for a step whose working directory is `workdir`.
pub(super) fn prepare(
    env: &StageEnv<'_>,
    mounts: &[RunMount],
    workdir: &str,
) -> Result<StepMounts, ExecError> {
    let mut scratch = Scratch::new(env.store.work_dir())?;
    let mut out = Vec::new();
    let mut vars = Vec::new();
    let mut ssh_auth_sock = None;
    let mut ssh_index = 0;
    let locked: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| m.spec.kind == MountType::Cache && m.spec.sharing_mode() == Sharing::Locked)
        .map(|m| cache::dir_for(env.store, &m.spec, cache_seed(env, m).as_deref()))
        .collect::<Result<_, _>>()?;
    for lock in cache::lock_all(locked)? {
        scratch.keep(Keeper::Lock(lock));
    }
    for m in mounts {
        let spec = &m.spec;
        let bad = |reason: String| ExecError::BadMount {
            value: format!("type={}", spec.kind.as_str()),
            reason,
        };
        match spec.kind {
            MountType::Tmpfs => out.push(Mount::Tmpfs {
                target: spec
                    .resolve_target(workdir)
                    .map_err(|e| bad(e.to_string()))?,
                size: spec.size_limit,
            }),
            MountType::Bind => {
                let target = spec
                    .resolve_target(workdir)
                    .map_err(|e| bad(e.to_string()))?;
                let from = m.from.as_ref().unwrap_or(&Source::Context);
                let mut host = source_path(env, from, &source_rel(spec), &mut scratch)?;
                if !spec.read_only {
                    host = bind::writable(&host, &mut scratch)?;
                }
                out.push(Mount::Bind {
                    source: host,
                    target,
                    readonly: spec.read_only,
                });
            }
            MountType::Cache => {
                let target = spec
                    .resolve_target(workdir)
                    .map_err(|e| bad(e.to_string()))?;
                let path = cache_mount(env, m, &mut scratch)?;
                out.push(Mount::Bind {
                    source: path,
                    target,
                    readonly: spec.read_only,
                });
            }
            MountType::Secret => {
                let secret::Resolved::Value(value) = secret::resolve(spec, &env.options.secrets)?
                else {
                    continue;
                };
                if let Some(name) = secret::env_name(spec) {
                    vars.push(format!("{name}={}", String::from_utf8_lossy(&value)));
                }
                if let Some(target) = spec.secret_target() {
                    let dir = scratch.secrets_dir()?;
                    let name = format!("{}", out.len());
                    let file = secret::write_file(&dir, &name, &value, spec)?;
                    out.push(Mount::Bind {
                        source: file,
                        target: absolute(&target, workdir),
                        readonly: true,
                    });
                }
            }
            MountType::Ssh => {
                let index = ssh_index;
                ssh_index += 1;
                let Some(agent) = ssh::resolve(spec, &env.options.ssh)? else {
                    continue;
                };
                let target = absolute(&spec.ssh_target(index), workdir);
                let listen = scratch.socket_path(index)?;
                let owner = (spec.uid.unwrap_or(0), spec.gid.unwrap_or(0));
                let mode = spec.file_mode().unwrap_or(0o600);
                let proxy = ssh::AgentProxy::start(&listen, &agent.socket, owner, mode)?;
                scratch.keep(Keeper::Agent(proxy));
                ssh_auth_sock.get_or_insert_with(|| target.clone());
                out.push(Mount::Bind {
                    source: listen,
                    target,
                    readonly: false,
                });
            }
        }
    }
    Ok(StepMounts {
        mounts: out,
        env: vars,
        ssh_auth_sock,
        _scratch: scratch,
    })
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
    match from {
        Source::Context => bind::from_context(env.context.get()?, rel, scratch),
        other => {
            let (root, origin) = view(env, other, scratch)?;
            bind::from_root(&root, rel, &origin)
        }
    }
}

/// A read-only view of a stage or image, mounted for the step.
fn view(
    env: &StageEnv<'_>,
    from: &Source,
    scratch: &mut Scratch,
) -> Result<(PathBuf, String), ExecError> {
    let (layers, origin) = match from {
        Source::Context => {
            return Err(ExecError::Internal {
                what: "a view of the build context",
            })
        }
        Source::Stage(j) => (stage_layers(env, *j), format!("stage {j}")),
        Source::Image(image) => (
            image_layers(env.store, image)?,
            format!("image {}", image.reference),
        ),
    };
    let view = env.roots.view(env, &layers)?;
    let root = view.target();
    scratch.keep(Keeper::View(Box::new(view)));
    Ok((root, origin))
}

fn stage_layers(env: &StageEnv<'_>, j: usize) -> Vec<Layer> {
    env.outputs
        .get(j)
        .and_then(Option::as_ref)
        .map(|o| o.layers.clone())
        .unwrap_or_default()
}

/// The cache directory of `m`; a new one is seeded from `from=` before it is published.
fn cache_mount(
    env: &StageEnv<'_>,
    m: &RunMount,
    scratch: &mut Scratch,
) -> Result<PathBuf, ExecError> {
    let rel = source_rel(&m.spec);
    let seed = cache_seed(env, m);
    let dir = cache::open(env.store, &m.spec, seed.as_deref(), |new| match &m.from {
        Some(from) => seed_cache(env, from, &rel, new, scratch),
        None => Ok(()),
    })?;
    if let Some(lock) = dir.lock {
        scratch.keep(Keeper::Lock(lock));
    }
    Ok(dir.path)
}

/// What seeds a cache mount with `from=`: the source's identity and path.
fn cache_seed(env: &StageEnv<'_>, m: &RunMount) -> Option<String> {
    let from = m.from.as_ref()?;
    let base = match from {
        Source::Context => "context".to_owned(),
        Source::Stage(j) => stage_layers(env, *j)
            .last()
            .map_or("scratch".to_owned(), |l| l.chain.to_string()),
        Source::Image(image) => image.digest.to_string(),
    };
    Some(format!("{base}:/{}", source_rel(&m.spec)))
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
    let sources = [format!("/{rel}")];
    let req = CopyRequest {
        sources: &sources,
        contents: &[],
        dest: "/",
        attrs: Attrs {
            owner: None,
            keep_owner: true,
            mode: None,
        },
        parents: false,
        exclude: &[],
        extract_archives: false,
        urls: false,
        checksum: None,
        created: env.epoch,
        cancel: Some(&env.options.cancel),
    };
    match from {
        Source::Context => copy::copy(&SourceTree::Context(env.context.get()?), &req, dir),
        other => {
            let (root, _) = view(env, other, scratch)?;
            copy::copy(&SourceTree::Root(&root), &req, dir)
        }
    }
}

/// What keeps a mount's backing alive until the step ends (held only to be dropped).
#[allow(dead_code)]
enum Keeper {
    /// A read-only view of a stage or image.
    View(Box<StepRoot>),
    /// The overlay of an `rw` bind.
    Overlay(OverlayMount),
    /// A cache lock (`locked` or `private` sharing).
    Lock(FileLock),
    /// The tmpfs of the step's secrets.
    Tmpfs(PathBuf),
    /// An ssh agent proxy.
    Agent(ssh::AgentProxy),
}

impl Drop for Keeper {
    fn drop(&mut self) {
        if let Keeper::Tmpfs(path) = self {
            let _ = rustix::mount::unmount(path.as_path(), rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// The step's scratch directory and what it keeps alive, undone in reverse order.
pub(super) struct Scratch {
    keepers: Vec<Keeper>,
    /// Short directories in the system temp dir for sockets (see `socket_path`).
    short: Vec<tempfile::TempDir>,
    dir: tempfile::TempDir,
    next: usize,
}

impl Scratch {
    pub(super) fn new(work: &Path) -> Result<Scratch, ExecError> {
        let dir = tempfile::Builder::new()
            .prefix("mounts-")
            .tempdir_in(work)
            .map_err(ExecError::fs("cannot create a directory in", work))?;
        Ok(Scratch {
            keepers: Vec::new(),
            short: Vec::new(),
            dir,
            next: 0,
        })
    }

    /// A new, empty directory named after `what`.
    pub(super) fn fresh(&mut self, what: &str) -> Result<PathBuf, ExecError> {
        self.next += 1;
        let path = self.dir.path().join(format!("{what}-{}", self.next));
        std::fs::create_dir(&path).map_err(ExecError::fs("cannot create", &path))?;
        Ok(path)
    }

    fn keep(&mut self, keeper: Keeper) {
        self.keepers.push(keeper);
    }

    pub(super) fn keep_overlay(&mut self, mount: OverlayMount) {
        self.keep(Keeper::Overlay(mount));
    }

    /// The tmpfs (mode 0700, mounted on first use) that holds secret files.
    fn secrets_dir(&mut self) -> Result<PathBuf, ExecError> {
        let path = self.dir.path().join("secrets");
        if self
            .keepers
            .iter()
            .any(|k| matches!(k, Keeper::Tmpfs(p) if *p == path))
        {
            return Ok(path);
        }
        std::fs::create_dir(&path).map_err(ExecError::fs("cannot create", &path))?;
        use rustix::mount::{mount, MountFlags};
        let data = format!("mode=0700,size={SECRETS_TMPFS_SIZE}");
        mount(
            "rbuild-secrets",
            &path,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            Some(std::ffi::CString::new(data).unwrap_or_default().as_c_str()),
        )
        .map_err(|e| ExecError::fs("cannot mount a tmpfs for secrets at", &path)(e.into()))?;
        self.keep(Keeper::Tmpfs(path.clone()));
        Ok(path)
    }

    /// A path for the `index`-th ssh socket, short enough for `sun_path` (108 bytes).
    fn socket_path(&mut self, index: usize) -> Result<PathBuf, ExecError> {
        let path = self.dir.path().join(format!("ssh-{index}.sock"));
        if path.as_os_str().len() < 100 {
            return Ok(path);
        }
        let short = tempfile::Builder::new()
            .prefix("rbuild-ssh-")
            .tempdir()
            .map_err(ExecError::fs(
                "cannot create a directory in",
                &std::env::temp_dir(),
            ))?;
        let path = short.path().join("agent.sock");
        self.short.push(short);
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        while let Some(keeper) = self.keepers.pop() {
            drop(keeper);
        }
    }
}
