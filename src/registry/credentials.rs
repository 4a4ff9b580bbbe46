//! Registry credentials where Docker and Podman keep them.
//!
//! Sources, first match wins: `$REGISTRY_AUTH_FILE`, then the containers `auth.json`
//! (`$XDG_RUNTIME_DIR/containers/auth.json`), then Docker's
//! `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`). In each file:
//! `credHelpers[registry]` (a `docker-credential-<name>` program), then
//! `auths[registry]` (`auth` = base64 `user:password`, or `identitytoken`), then
//! `credsStore` (a helper for every registry). Docker Hub is stored under
//! `https://index.docker.io/v1/`, and keys may carry a scheme or a path
//! (`https://registry.corp:5000/v2/`): they match by host.
//!
//! `login` writes Docker's `config.json` (through `credsStore` when one is set), as
//! `docker login` does; `logout` removes the entry. Secrets never reach `Debug` or
//! error messages.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Map, Value};

/// Docker Hub's key in `config.json`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A credential for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or token used as a password).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken`) for the token endpoint.
    IdentityToken { token: String },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credential::IdentityToken { .. } => f.write_str("IdentityToken(***)"),
        }
    }
}

/// Why credentials could not be read or written (never containing a secret).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("credential helper docker-credential-{helper} failed for {registry}: {reason}")]
    Helper {
        helper: String,
        registry: String,
        reason: String,
    },
}

/// Where credentials are looked up and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFiles {
    /// Files read before Docker's (`REGISTRY_AUTH_FILE`, containers `auth.json`).
    pub auth_files: Vec<PathBuf>,
    /// Docker's `config.json`: read last, written by `login`/`logout`.
    pub docker_config: PathBuf,
    /// Where `docker-credential-*` helpers are; `None`: looked up in `PATH`.
    pub helper_dir: Option<PathBuf>,
}

impl CredentialFiles {
    /// The files the environment points at (see the module documentation).
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let mut auth_files = Vec::new();
        auth_files.extend(var("REGISTRY_AUTH_FILE"));
        if let Some(run) = var("XDG_RUNTIME_DIR") {
            auth_files.push(run.join("containers/auth.json"));
        }
        let docker_dir = var("DOCKER_CONFIG")
            .or_else(|| var("HOME").map(|h| h.join(".docker")))
            .unwrap_or_else(|| PathBuf::from("/root/.docker"));
        CredentialFiles {
            auth_files,
            docker_config: docker_dir.join("config.json"),
            helper_dir: None,
        }
    }

    /// The credential for `registry` (`docker.io`, `host:port`), if any source has one.
    pub fn get(&self, registry: &str) -> Result<Option<Credential>, CredentialError> {
        for path in self.auth_files.iter().chain([&self.docker_config]) {
            let Some(config) = read_json(path)? else {
                continue;
            };
            if let Some(found) = self.lookup(&config, registry)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Stores `username`/`password` for `registry` as docker does: through the
    /// registry's `credHelpers` program, else the `credsStore` one, else base64 in
    /// Docker's `config.json` (keeping everything else in the file). Says where.
    pub fn login(
        &self,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<Stored, CredentialError> {
        let path = &self.docker_config;
        let mut config = read_object(path)?;
        let key = config_key(registry);
        if let Some(helper) = helper_for(&config, registry) {
            let input = json!({"ServerURL": key, "Username": username, "Secret": password});
            self.helper(&helper, "store", registry, &input.to_string())?;
            return Ok(Stored::Helper(helper));
        }
        let auth = BASE64.encode(format!("{username}:{password}"));
        let mut auths = take_object(&mut config, "auths");
        auths.insert(key, json!({ "auth": auth }));
        config.insert("auths".to_owned(), Value::Object(auths));
        write_json(path, &Value::Object(config))?;
        Ok(Stored::File(path.clone()))
    }

    /// Removes the credential of `registry`; `false` when there was none.
    pub fn logout(&self, registry: &str) -> Result<bool, CredentialError> {
        let path = &self.docker_config;
        if read_json(path)?.is_none() {
            return Ok(false);
        }
        let mut config = read_object(path)?;
        let key = config_key(registry);
        if let Some(store) = config.get("credsStore").and_then(Value::as_str) {
            self.helper(store, "erase", registry, &key)?;
        }
        let mut auths = take_object(&mut config, "auths");
        let removed = auths.remove(&key).is_some();
        config.insert("auths".to_owned(), Value::Object(auths));
        write_json(path, &Value::Object(config))?;
        Ok(removed)
    }
}

/// The key `docker login` uses for `registry`.
fn config_key(registry: &str) -> String {
    if registry == super::DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

/// The host of a `config.json` key: `https://host:port/v2/` -> `host:port`.
fn key_host(key: &str) -> &str {
    let rest = key.split_once("://").map_or(key, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" => super::DOCKER_HUB,
        h => h,
    }
}

/// Where `login` put a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// With the `docker-credential-<name>` helper.
    Helper(String),
    /// Base64-encoded, unencrypted, in this `config.json`.
    File(std::path::PathBuf),
}

/// The helper that stores `registry`'s credential: its `credHelpers` entry, else
/// `credsStore`.
fn helper_for(config: &serde_json::Map<String, Value>, registry: &str) -> Option<String> {
    let per_registry = config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| h.iter().find(|(k, _)| key_host(k) == registry))
        .and_then(|(_, v)| v.as_str());
    per_registry
        .or_else(|| config.get("credsStore").and_then(Value::as_str))
        .map(str::to_owned)
}

impl CredentialFiles {
    fn lookup(
        &self,
        config: &Value,
        registry: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        if let Some(helpers) = config.get("credHelpers").and_then(Value::as_object) {
            if let Some(name) = helpers
                .iter()
                .find(|(k, _)| key_host(k) == registry)
                .and_then(|(_, v)| v.as_str())
            {
                return self.ask_helper(name, registry);
            }
        }
        if let Some(auths) = config.get("auths").and_then(Value::as_object) {
            if let Some((_, entry)) = auths.iter().find(|(k, _)| key_host(k) == registry) {
                if let Some(found) = from_entry(entry) {
                    return Ok(Some(found));
                }
            }
        }
        match config.get("credsStore").and_then(Value::as_str) {
            Some(store) => self.ask_helper(store, registry),
            None => Ok(None),
        }
    }

    fn ask_helper(
        &self,
        name: &str,
        registry: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        let server = config_key(registry);
        let out = match self.helper(name, "get", registry, &server) {
            Ok(out) => out,
            // Helpers answer "credentials not found" with a failure.
            Err(CredentialError::Helper { reason, .. }) if reason.contains("not found") => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let bad = |reason: &str| CredentialError::Helper {
            helper: name.to_owned(),
            registry: registry.to_owned(),
            reason: reason.to_owned(),
        };
        let value: Value =
            serde_json::from_slice(&out).map_err(|_| bad("its answer is not JSON"))?;
        let username = value
            .get("Username")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let secret = value
            .get("Secret")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if username == "<token>" {
            Credential::IdentityToken {
                token: secret.to_owned(),
            }
        } else {
            Credential::Basic {
                username: username.to_owned(),
                password: secret.to_owned(),
            }
        }))
    }

    /// Runs `docker-credential-<name> <action>` with `input` on stdin; its stdout.
    fn helper(
        &self,
        name: &str,
        action: &str,
        registry: &str,
        input: &str,
    ) -> Result<Vec<u8>, CredentialError> {
        let fail = |reason: String| CredentialError::Helper {
            helper: name.to_owned(),
            registry: registry.to_owned(),
            reason,
        };
        let program = format!("docker-credential-{name}");
        let program = match &self.helper_dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        let mut child = Command::new(program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot run it: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| fail(format!("cannot talk to it: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("cannot wait for it: {e}")))?;
        if !out.status.success() {
            // Helpers print their error on stdout; neither stream carries the secret asked
            // for, but keep only the first line.
            let text = String::from_utf8_lossy(if out.stdout.is_empty() {
                &out.stderr
            } else {
                &out.stdout
            })
            .lines()
            .next()
            .unwrap_or("failed")
            .to_owned();
            return Err(fail(text));
        }
        Ok(out.stdout)
    }
}

fn from_entry(entry: &Value) -> Option<Credential> {
    if let Some(token) = entry.get("identitytoken").and_then(Value::as_str) {
        if !token.is_empty() {
            return Some(Credential::IdentityToken {
                token: token.to_owned(),
            });
        }
    }
    let (username, password) = match entry.get("auth").and_then(Value::as_str) {
        Some(auth) if !auth.is_empty() => {
            let decoded = BASE64.decode(auth.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (u, p) = text.split_once(':')?;
            (u.to_owned(), p.to_owned())
        }
        _ => (
            entry.get("username")?.as_str()?.to_owned(),
            entry.get("password")?.as_str()?.to_owned(),
        ),
    };
    Some(Credential::Basic { username, password })
}

fn read_json(path: &Path) -> Result<Option<Value>, CredentialError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CredentialError::Read {
                path: path.to_owned(),
                reason: format!("not valid JSON ({e})"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CredentialError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Writes `value` to `path` (mode 0600, via a temporary file and rename).
fn write_json(path: &Path, value: &Value) -> Result<(), CredentialError> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| CredentialError::Write {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("json.rbuild-tmp");
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// The JSON object in `path` (empty when the file is missing or holds something else).
fn read_object(path: &Path) -> Result<Map<String, Value>, CredentialError> {
    Ok(match read_json(path)? {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    })
}

/// Removes and returns the object at `key` (empty when missing or not an object).
fn take_object(config: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match config.remove(key) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
