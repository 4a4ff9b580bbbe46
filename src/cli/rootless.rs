//! The rootless start: an ordinary user's command that uses the store runs again as
//! root of a user namespace of its own (see [`crate::userns`]).

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use crate::userns::{self, Mapping, Plan};

/// Commands that touch neither the store nor files of other owners: they run as the
/// user, without a namespace.
const PLAIN_COMMANDS: [&str; 9] = [
    "parse",
    "completion",
    "man",
    "logout",
    "help",
    "-h",
    "--help",
    "-V",
    "--version",
];

/// Called first by `main` (single-threaded). In the namespace's child: finishes
/// entering it and returns `None` (the CLI runs). For a non-root user whose command
/// uses the store: runs the command in that child and returns its exit code. For
/// root, and for commands that use no store (`parse`, `completion`, `man`, `logout`,
/// help and version), returns `None`.
pub fn enter_user_namespace() -> Option<ExitCode> {
    match userns::enter_if_child() {
        Ok(true) => return None,
        Ok(false) => {}
        Err(e) => {
            super::write_stderr(&format!("error: cannot run rootless: {e}"));
            return Some(ExitCode::FAILURE);
        }
    }
    if rustix::process::geteuid().is_root() || !uses_store(std::env::args_os().collect()) {
        return None;
    }
    let plan = Plan::for_current_user();
    if let Mapping::Single { reason } = &plan.mapping {
        super::write_stderr(&single_id_note(&plan, reason));
    }
    match userns::run_child(&plan) {
        Ok(code) => Some(ExitCode::from(code)),
        Err(e) => {
            super::write_stderr(&format!("error: cannot run rootless: {e}"));
            Some(ExitCode::FAILURE)
        }
    }
}

/// In a rootless namespace, refuses a store `root` that belongs to another user (the
/// system store of root, say), whose files this user could not read or change.
pub(super) fn check_store_owner(root: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(root) else {
        return Ok(());
    };
    if !userns::active() || meta.uid() == 0 {
        return Ok(());
    }
    anyhow::bail!(
        "the store `{}` belongs to another user (this rootless rbuild runs as uid {}): \
         use a store of your own (the default is $XDG_DATA_HOME/rbuild, or pass --root), \
         or run as that store's owner (root for /var/lib/rbuild)",
        root.display(),
        real_uid().map_or_else(|| "?".to_owned(), |u| u.to_string())
    )
}

/// The user's uid outside the namespace (what 0 maps to in `/proc/self/uid_map`).
fn real_uid() -> Option<u32> {
    let map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    map.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == "0").then(|| words.next()?.parse().ok())?
    })
}

/// The one note of a build without subordinate ids: what it means and how to add them.
fn single_id_note(plan: &Plan, reason: &str) -> String {
    let user = plan.name.clone().unwrap_or_else(|| plan.uid.to_string());
    format!(
        "note: rootless without subordinate ids ({reason}): only your own id is mapped, \
         so every file of an image must belong to root (a file of another owner fails \
         its step); to add ids, as root: `usermod --add-subuids 100000-165535 \
         --add-subgids 100000-165535 {user}` (Debian: and `apt-get install uidmap`)"
    )
}

/// Whether the command line names a command that uses the store (the default `build`
/// included): the first argument after the global `--root` option.
fn uses_store(argv: Vec<OsString>) -> bool {
    let mut words = argv.into_iter().skip(1);
    while let Some(word) = words.next() {
        let word = word.to_string_lossy();
        if word == "--root" {
            words.next();
        } else if !word.starts_with("--root=") {
            return !PLAIN_COMMANDS.contains(&word.as_ref());
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_commands_are_told_from_plain_ones() {
        let argv = |words: &[&str]| {
            let mut v = vec![OsString::from("rbuild")];
            v.extend(words.iter().map(OsString::from));
            uses_store(v)
        };
        assert!(argv(&["-t", "a:1", "."]));
        assert!(argv(&["images"]));
        assert!(argv(&["--root", "/s", "push", "a:1"]));
        assert!(argv(&["--root=/s", "login", "r"]));
        assert!(!argv(&["parse", "Dockerfile"]));
        assert!(!argv(&["--root", "/s", "--version"]));
        assert!(!argv(&["completion", "bash"]));
        assert!(!argv(&[]));
    }
}
