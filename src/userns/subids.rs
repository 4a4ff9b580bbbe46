//! Subordinate ids: the ranges `/etc/subuid` or `/etc/subgid` grant a user, and the
//! user's name from `/etc/passwd` (both files may name the user or give the id).

/// A range of ids outside the namespace: `count` ids from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first id.
    pub start: u32,
    /// How many ids.
    pub count: u32,
}

/// The most ranges a map takes: the kernel's 340 lines, less the line of the user.
pub const MAX_RANGES: usize = 339;

/// The ranges of `text` (the format of `/etc/subuid`: `owner:start:count` lines) whose
/// owner is `name` or the decimal `id`, in file order (at most [`MAX_RANGES`]).
/// Comments and malformed lines are skipped, as `newuidmap` skips them. Several ranges
/// are usual in a container whose user namespace lacks the user's own id, such as
/// podman's image (`1:999` and `1001:64535` for the user 1000).
pub fn ranges(text: &str, name: Option<&str>, id: u32) -> Vec<Range> {
    let id = id.to_string();
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.trim().splitn(3, ':');
            let owner = fields.next()?;
            let start = fields.next()?.parse().ok()?;
            let count = fields.next()?.parse().ok()?;
            let mine = owner == id || Some(owner) == name;
            (mine && count > 0).then_some(Range { start, count })
        })
        .take(MAX_RANGES)
        .collect()
}

/// The name of the user with id `uid` in `passwd` (the format of `/etc/passwd`).
pub fn user_name(passwd: &str, uid: u32) -> Option<String> {
    let uid = uid.to_string();
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id == uid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranges_of_the_user_by_name_or_id() {
        let text = "# comment\nalice:100000:65536\nbob:165536:0\n2345:300000:10\n\
                    bob:bad:1\nbob:200000:65536\nbob:400000:5\n";
        let r = |start, count| Range { start, count };
        assert_eq!(ranges(text, Some("alice"), 1000), [r(100000, 65536)]);
        // An empty range and a malformed line are skipped; the others kept in order.
        assert_eq!(
            ranges(text, Some("bob"), 1001),
            [r(200000, 65536), r(400000, 5)]
        );
        assert_eq!(ranges(text, Some("carol"), 2345), [r(300000, 10)]);
        assert_eq!(ranges(text, Some("carol"), 7), []);
        assert_eq!(ranges(text, None, 7), []);
        let many = "u:1:1\n".repeat(400);
        assert_eq!(ranges(&many, Some("u"), 9).len(), MAX_RANGES);
    }

    #[test]
    fn the_name_of_a_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nci:x:2345:2345::/home/ci:/bin/sh\n";
        assert_eq!(user_name(passwd, 2345).as_deref(), Some("ci"));
        assert_eq!(user_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name(passwd, 1), None);
    }
}
