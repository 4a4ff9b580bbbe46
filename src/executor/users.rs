//! `USER name[:group]` and `--chown=user[:group]` resolved in the image's own
//! `/etc/passwd` and `/etc/group` (never the host's), with supplementary groups.
//!
//! Numeric ids are accepted without an entry, as Docker does. Errors use runc's and
//! BuildKit's wording ("unable to find user app: no matching entries in passwd file").

/// A resolved user: ids and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the primary group first, then the groups `/etc/group`
    /// lists the user in (only for `USER name`, not `name:group`). Docker puts the
    /// primary group there since 20.10.18 (CVE-2022-36109), containerd since 1.6.18
    /// (CVE-2023-25173): without it a process keeps no group it could drop, and
    /// `id` prints `groups=1000(app)` as it does under Docker.
    pub additional_gids: Vec<u32>,
    /// The home directory, when the passwd entry gives one.
    pub home: Option<String>,
}

/// Why a user or group cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {name}: no matching entries in passwd file")]
    NoUser { name: String },
    #[error("unable to find group {name}: no matching entries in group file")]
    NoGroup { name: String },
    #[error("invalid user specification {spec:?}")]
    Invalid { spec: String },
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let (name, uid, gid) = (f.first()?, f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?);
            Some(PasswdEntry {
                name,
                uid,
                gid,
                home: f.get(5).copied().unwrap_or_default(),
            })
        })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let members = f.get(3).map(|m| {
                m.split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .collect()
            });
            Some(GroupEntry {
                name: f.first()?,
                gid: f.get(2)?.parse().ok()?,
                members: members.unwrap_or_default(),
            })
        })
}

/// Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`, ...) against the image's
/// passwd and group file contents (empty when the files are missing).
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<User, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() || group_part == Some("") {
        return Err(UserError::Invalid {
            spec: spec.to_owned(),
        });
    }
    let entry =
        passwd_entries(passwd).find(|e| e.name == user_part || e.uid.to_string() == user_part);
    let mut user = match (&entry, user_part.parse::<u32>()) {
        (Some(e), _) => User {
            uid: e.uid,
            gid: e.gid,
            additional_gids: Vec::new(),
            home: Some(e.home.to_owned()),
        },
        (None, Ok(uid)) => User {
            uid,
            gid: 0,
            ..Default::default()
        },
        (None, Err(_)) => {
            return Err(UserError::NoUser {
                name: user_part.to_owned(),
            })
        }
    };
    let mut extra = Vec::new();
    match (group_part, &entry) {
        (Some(g), _) => user.gid = resolve_group(g, group)?,
        // Membership groups only when the primary group comes from passwd.
        (None, Some(e)) => {
            extra = group_entries(group)
                .filter(|g| g.members.contains(&e.name) && g.gid != user.gid)
                .map(|g| g.gid)
                .collect();
            extra.sort_unstable();
            extra.dedup();
        }
        (None, None) => {}
    }
    user.additional_gids = std::iter::once(user.gid).chain(extra).collect();
    Ok(user)
}

/// Resolves a group name or numeric gid.
pub fn resolve_group(spec: &str, group: &str) -> Result<u32, UserError> {
    if let Some(g) = group_entries(group).find(|g| g.name == spec) {
        return Ok(g.gid);
    }
    spec.parse::<u32>().map_err(|_| UserError::NoGroup {
        name: spec.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\n";

    #[test]
    fn resolves_names_and_numbers() {
        let u = resolve_user("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.as_slice()),
            (1000, 1000, &[1000, 10, 29][..])
        );
        assert_eq!(u.home.as_deref(), Some("/home/app"));
        let u = resolve_user("app:wheel", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 10, vec![10]));
        let u = resolve_user("4242:4243", "", "").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (4242, 4243, vec![4243]));
        let u = resolve_user("1000", PASSWD, GROUP).unwrap();
        assert_eq!((u.gid, u.additional_gids), (1000, vec![1000, 10, 29]));
        let u = resolve_user("root", PASSWD, GROUP).unwrap();
        assert_eq!(u.additional_gids, [0]);
    }

    #[test]
    fn missing_names_are_errors() {
        let err = resolve_user("nobody", PASSWD, GROUP).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert!(matches!(
            resolve_user("app:nogroup", PASSWD, GROUP),
            Err(UserError::NoGroup { .. })
        ));
        assert!(matches!(
            resolve_user(":1", PASSWD, GROUP),
            Err(UserError::Invalid { .. })
        ));
    }
}
