//! `--secret` on the command line and `RUN --mount=type=secret` in a step.
//!
//! A secret's bytes are read when a step asks for them and written only to a tmpfs
//! mounted in the build's own mount namespace (never to the store's disk); the file is
//! bind-mounted read-only at the target and the tmpfs is unmounted when the step ends.
//! The value never enters a layer (the mount-point stub is removed after the step), the
//! image config, the cache key or the progress output.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::super::error::ExecError;
use crate::parser::instructions::values::Mount as MountSpec;

/// Where the value of a `--secret` comes from (a path or a variable name, never the
/// value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the host (`src=PATH`).
    File(PathBuf),
    /// An environment variable of the rbuild process (`env=VAR`).
    Env(String),
}

/// One `--secret id=ID,src=PATH|env=VAR`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: String,
    pub source: SecretSource,
}

// Only names, never values: a `Debug` of the options must not leak anything.
impl std::fmt::Debug for SecretSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            SecretSource::File(p) => write!(f, "secret {} from file {}", self.id, p.display()),
            SecretSource::Env(v) => write!(f, "secret {} from ${v}", self.id),
        }
    }
}

/// Why a `--secret` or `--ssh` value is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {flag} {value:?}: {reason}")]
pub struct FlagError {
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

impl SecretSpec {
    /// Parses `id=ID[,src=PATH|source=PATH][,env=VAR][,type=file|env]` as `docker
    /// buildx build --secret` does. Without `src` or `env`, the variable named `ID` is
    /// used when it is set, else the file named `ID`.
    pub fn parse(value: &str) -> Result<SecretSpec, FlagError> {
        let bad = |reason: &str| FlagError {
            flag: "--secret",
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        for field in value.split(',') {
            let (key, val) = field
                .split_once('=')
                .ok_or_else(|| bad(&format!("field {field:?} is not key=value")))?;
            match key.trim().to_ascii_lowercase().as_str() {
                "id" => id = Some(val.to_owned()),
                "src" | "source" => src = Some(val.to_owned()),
                "env" => env = Some(val.to_owned()),
                "type" => kind = Some(val.to_ascii_lowercase()),
                other => return Err(bad(&format!("unknown key {other:?}"))),
            }
        }
        let id = id
            .filter(|i| !i.is_empty())
            .ok_or_else(|| bad("id= is required"))?;
        let source = match (kind.as_deref(), src, env) {
            (Some("env"), Some(v), None) | (_, None, Some(v)) => SecretSource::Env(v),
            (Some("env"), None, None) => SecretSource::Env(id.clone()),
            (Some("file") | None, Some(p), None) => SecretSource::File(p.into()),
            (Some("file"), None, None) => SecretSource::File(id.clone().into()),
            (None, None, None) if std::env::var_os(&id).is_some() => SecretSource::Env(id.clone()),
            (None, None, None) => SecretSource::File(id.clone().into()),
            (Some("file" | "env") | None, Some(_), Some(_)) => {
                return Err(bad("give either src= or env=, not both"))
            }
            (Some(other), _, _) => {
                return Err(bad(&format!("unknown type {other:?} (file or env)")))
            }
        };
        Ok(SecretSpec { id, source })
    }

    /// The secret's bytes.
    fn read(&self) -> Result<Vec<u8>, ExecError> {
        match &self.source {
            SecretSource::File(path) => fs::read(path).map_err(|e| ExecError::Secret {
                id: self.id.clone(),
                reason: format!("cannot read {}: {e}", path.display()),
            }),
            SecretSource::Env(var) => std::env::var_os(var)
                .map(std::os::unix::ffi::OsStringExt::into_vec)
                .ok_or_else(|| ExecError::Secret {
                    id: self.id.clone(),
                    reason: format!("environment variable {var} is not set"),
                }),
        }
    }
}

/// A secret resolved for one step.
pub(super) enum Resolved {
    /// Not given and not required: the mount is skipped, as in BuildKit.
    Skip,
    /// The secret's value.
    Value(Vec<u8>),
}

/// Looks the secret of `spec` up among `secrets`.
pub(super) fn resolve(spec: &MountSpec, secrets: &[SecretSpec]) -> Result<Resolved, ExecError> {
    let id = spec.secret_id();
    match secrets.iter().rev().find(|s| s.id == id) {
        Some(secret) => Ok(Resolved::Value(secret.read()?)),
        None if spec.required => Err(ExecError::Secret {
            reason: format!("it is required but was not given (pass it with --secret id={id},src=PATH or --secret id={id},env=VAR)"),
            id,
        }),
        None => Ok(Resolved::Skip),
    }
}

/// The name of the variable an `env=` secret sets (`env=` alone: the secret id).
pub(super) fn env_name(spec: &MountSpec) -> Option<String> {
    spec.env.as_ref().map(|name| {
        if name.is_empty() {
            spec.secret_id()
        } else {
            name.clone()
        }
    })
}

/// Writes `value` as file `name` in `dir` (a tmpfs) with the mount's owner and mode.
pub(super) fn write_file(
    dir: &Path,
    name: &str,
    value: &[u8],
    spec: &MountSpec,
) -> Result<PathBuf, ExecError> {
    let path = dir.join(name);
    fs::write(&path, value).map_err(ExecError::fs("cannot write secret file", &path))?;
    std::os::unix::fs::chown(
        &path,
        Some(spec.uid.unwrap_or(0)),
        Some(spec.gid.unwrap_or(0)),
    )
    .map_err(ExecError::fs("cannot change owner of", &path))?;
    let mode = spec.file_mode().unwrap_or(0o400);
    fs::set_permissions(&path, fs::Permissions::from_mode(mode))
        .map_err(ExecError::fs("cannot set mode of", &path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_secret_flags() {
        let s = SecretSpec::parse("id=tok,src=/run/tok").unwrap();
        assert_eq!(s.id, "tok");
        assert_eq!(s.source, SecretSource::File("/run/tok".into()));
        let s = SecretSpec::parse("id=tok,env=TOKEN").unwrap();
        assert_eq!(s.source, SecretSource::Env("TOKEN".into()));
        let s = SecretSpec::parse("type=env,id=tok,src=TOKEN").unwrap();
        assert_eq!(s.source, SecretSource::Env("TOKEN".into()));
        let s = SecretSpec::parse("id=RBUILD_SURELY_UNSET_VAR_X").unwrap();
        assert_eq!(
            s.source,
            SecretSource::File("RBUILD_SURELY_UNSET_VAR_X".into())
        );
        assert!(SecretSpec::parse("src=/x").is_err());
        assert!(SecretSpec::parse("id=a,src=/x,env=Y").is_err());
        assert!(SecretSpec::parse("id=a,type=blob,src=/x").is_err());
        assert!(SecretSpec::parse("id=a,colour=red").is_err());
    }

    #[test]
    fn debug_never_shows_values() {
        let s = SecretSpec::parse("id=tok,env=TOKEN").unwrap();
        assert_eq!(format!("{s:?}"), "secret tok from $TOKEN");
    }

    #[test]
    fn env_name_defaults_to_the_id() {
        let m =
            crate::parser::instructions::values::parse_mount("type=secret,id=tok,env=").unwrap();
        assert_eq!(env_name(&m).as_deref(), Some("tok"));
        let m =
            crate::parser::instructions::values::parse_mount("type=secret,id=tok,env=T").unwrap();
        assert_eq!(env_name(&m).as_deref(), Some("T"));
    }
}
