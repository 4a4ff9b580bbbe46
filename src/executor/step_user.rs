//! The user a step runs as or gives files to (`USER`, `--chown`), resolved in the
//! `/etc/passwd` and `/etc/group` of the step's root.

use std::path::Path;

use super::copy;
use super::error::ExecError;
use super::users::{resolve_user, User};

/// `user` resolved in the root at `root`; an empty name is root, home `/root`.
pub fn user_in(root: &Path, user: &str) -> Result<User, ExecError> {
    if user.is_empty() {
        return Ok(User {
            home: Some("/root".into()),
            ..Default::default()
        });
    }
    Ok(resolve_user(
        user,
        &read_etc(root, "passwd"),
        &read_etc(root, "group"),
    )?)
}

/// uid and gid of `user` resolved in the root at `root`.
pub fn owner_in(root: &Path, user: &str) -> Result<(u32, u32), ExecError> {
    let u = user_in(root, user)?;
    Ok((u.uid, u.gid))
}

fn read_etc(root: &Path, name: &str) -> String {
    copy::host_path(root, &format!("/etc/{name}"), true)
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}
