//! The defaults BuildKit gives a parsed [`Mount`] when it dispatches the `RUN`.
//!
//! Mirrors `dockerfile2llb` (`dispatchRunMounts`, `dispatchSecret`, `dispatchSSH`) and the
//! LLB defaults behind them:
//!
//! * cache: id = `path.Clean(target)`, sharing `shared`, directory mode 0o755;
//! * secret: id = `source`, else `id`, else the base name of the target; file at the
//!   target, else `/run/secrets/<base of id>` unless `env=` asks for a variable only;
//!   mode 0o400;
//! * ssh: id `default`, socket at `/run/buildkit/ssh_agent.<N>` (N = position among the
//!   RUN's ssh mounts), mode 0o600, and no `source`;
//! * bind, cache, tmpfs: a relative (or missing) target is joined to the working directory,
//!   and a target of `/` is an error.

use super::error::{Error, Result};
use super::golang::{base_name, clean_path};
use super::mount::Mount;
use super::mount_type::{MountType, Sharing};

impl Mount {
    /// The cache id: `id=`, else the target cleaned as Go's `path.Clean` does.
    pub fn cache_id(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => clean_path(self.target.as_deref().unwrap_or_default()),
        }
    }

    /// The cache sharing mode, `shared` unless given.
    pub fn sharing_mode(&self) -> Sharing {
        self.sharing.unwrap_or_default()
    }

    /// The secret id: `source=`, else `id=`, else the base name of the target.
    pub fn secret_id(&self) -> String {
        match (&self.source, &self.id, &self.target) {
            (Some(source), _, _) => source.clone(),
            (None, Some(id), _) => id.clone(),
            (None, None, Some(target)) => base_name(target),
            (None, None, None) => String::new(),
        }
    }

    /// Where the secret file is mounted: the target, else `/run/secrets/<base of id>`; `None`
    /// for an `env=` secret without a target (it is then only an environment variable).
    pub fn secret_target(&self) -> Option<String> {
        match (&self.target, &self.env) {
            (Some(target), _) => Some(target.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(format!("/run/secrets/{}", base_name(&self.secret_id()))),
        }
    }

    /// The ssh agent id, `default` unless given.
    pub fn ssh_id(&self) -> &str {
        self.id.as_deref().unwrap_or("default")
    }

    /// The ssh socket path; `index` is this mount's 0-based position among the RUN's ssh
    /// mounts.
    pub fn ssh_target(&self, index: usize) -> String {
        match &self.target {
            Some(target) => target.clone(),
            None => format!("/run/buildkit/ssh_agent.{index}"),
        }
    }

    /// The file mode BuildKit uses: `mode=`, else 0o755 for a cache directory, 0o400 for a
    /// secret, 0o600 for an ssh socket; `None` for bind and tmpfs mounts.
    pub fn file_mode(&self) -> Option<u32> {
        let default = match self.kind {
            MountType::Cache => 0o755,
            MountType::Secret => 0o400,
            MountType::Ssh => 0o600,
            MountType::Bind | MountType::Tmpfs => return None,
        };
        Some(self.mode.unwrap_or(default))
    }

    /// The mount point of a bind, cache or tmpfs mount: an absolute target as written, a
    /// relative one joined to `workdir` and cleaned. A missing target therefore means the
    /// working directory, and fails with BuildKit's `invalid mount target "/"` when that is
    /// `/` (the only error: BuildKit has no separate "target required" check).
    pub fn resolve_target(&self, workdir: &str) -> Result<String> {
        let target = self.target.as_deref().unwrap_or_default();
        let resolved = if clean_path(target).starts_with('/') {
            target.to_owned()
        } else {
            clean_path(&format!("/{workdir}/{target}"))
        };
        if resolved == "/" {
            return Err(Error::InvalidMountTarget { target: resolved });
        }
        Ok(resolved)
    }

    /// The check BuildKit makes when it dispatches the RUN: ssh mounts take no `source`.
    pub fn check_dispatch(&self) -> Result<()> {
        if self.kind == MountType::Ssh && self.source.is_some() {
            return Err(Error::SshWithSource);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::instructions::values::mount::parse_mount;

    fn mount(value: &str) -> Mount {
        match parse_mount(value) {
            Ok(m) => m,
            Err(e) => panic!("{value}: {e}"),
        }
    }

    #[test]
    fn cache_defaults() {
        let m = mount("type=cache,target=/root/.cache/");
        assert!(!m.read_only);
        assert_eq!(m.cache_id(), "/root/.cache");
        assert_eq!(m.sharing_mode(), Sharing::Shared);
        assert_eq!(m.file_mode(), Some(0o755));
        let m = mount("type=cache,target=/c,id=go,sharing=LOCKED,mode=0700,uid=1000,gid=10,ro");
        assert_eq!(m.cache_id(), "go");
        assert_eq!(m.sharing_mode(), Sharing::Locked);
        assert_eq!((m.mode, m.uid, m.gid), (Some(0o700), Some(1000), Some(10)));
        assert_eq!(m.file_mode(), Some(0o700));
        assert!(m.read_only);
        assert_eq!(mount("type=cache,target=rel/../x").cache_id(), "x");
    }

    #[test]
    fn secret_defaults() {
        let m = mount("type=secret,id=aws");
        assert!(m.read_only);
        assert!(!m.required);
        assert_eq!(m.secret_id(), "aws");
        assert_eq!(m.secret_target().as_deref(), Some("/run/secrets/aws"));
        assert_eq!(m.file_mode(), Some(0o400));
        let m = mount("type=secret,target=/etc/token,required");
        assert_eq!(m.secret_id(), "token");
        assert_eq!(m.secret_target().as_deref(), Some("/etc/token"));
        assert!(m.required);
        let m = mount("type=secret,src=a/b,required=false");
        assert_eq!((m.secret_id().as_str(), m.required), ("a/b", false));
        assert_eq!(m.secret_target().as_deref(), Some("/run/secrets/b"));
        let m = mount("type=secret,id=tok,env=TOKEN");
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        assert_eq!(m.secret_target(), None);
        let m = mount("type=secret,id=tok,env=TOKEN,target=/t");
        assert_eq!(m.secret_target().as_deref(), Some("/t"));
        assert_eq!(mount("type=secret,id=tok,env=").env.as_deref(), Some(""));
    }

    #[test]
    fn ssh_defaults() {
        let m = mount("type=ssh");
        assert_eq!(m.ssh_id(), "default");
        assert_eq!(m.ssh_target(2), "/run/buildkit/ssh_agent.2");
        assert_eq!(m.file_mode(), Some(0o600));
        assert!(m.read_only);
        assert_eq!(m.check_dispatch(), Ok(()));
        let m = mount("type=ssh,id=gh,target=/s,required=true,mode=0666");
        assert_eq!((m.ssh_id(), m.ssh_target(0).as_str()), ("gh", "/s"));
        assert!(m.required);
        assert_eq!(m.file_mode(), Some(0o666));
        let with_source = mount("type=ssh,source=x");
        assert_eq!(
            with_source.check_dispatch().map_err(|e| e.to_string()),
            Err("ssh does not support source".to_owned())
        );
    }

    #[test]
    fn resolve_target_joins_workdir() {
        let resolve = |value: &str, workdir: &str| {
            mount(value)
                .resolve_target(workdir)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            resolve("target=/abs/../x", "/w"),
            Ok("/abs/../x".to_owned())
        );
        assert_eq!(resolve("target=rel", "/w"), Ok("/w/rel".to_owned()));
        assert_eq!(resolve("target=rel", "w/"), Ok("/w/rel".to_owned()));
        assert_eq!(resolve("type=cache", "/w"), Ok("/w".to_owned()));
        assert_eq!(
            resolve("type=cache", "/"),
            Err(r#"invalid mount target "/""#.to_owned())
        );
        assert_eq!(
            resolve("target=/", "/w"),
            Err(r#"invalid mount target "/""#.to_owned())
        );
        assert_eq!(
            resolve("target=..", "/"),
            Err(r#"invalid mount target "/""#.to_owned())
        );
    }
}
