//! Go's lexical path functions (`path/filepath.Clean` and `Dir`) for `/`-separated paths.
//!
//! BuildKit cleans every pattern and derives the parent directories it matches from
//! `filepath.Dir`, so these must agree with Go byte for byte, including the odd cases
//! (`Dir("/")` is `/`, `Clean("")` is `.`, leading `..` are kept for relative paths).
//! Pure string functions: nothing here looks at a filesystem.

/// Go `filepath.Clean` on Unix: collapse `//`, drop `.`, resolve `..` lexically and drop
/// any trailing `/`. Returns `.` for a path that cleans to nothing.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    // A rooted path cannot climb above `/`; a relative one keeps the `..`.
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let body = parts.join("/");
    if rooted {
        format!("/{body}")
    } else if body.is_empty() {
        ".".to_owned()
    } else {
        body
    }
}

/// Go `filepath.Dir`: everything up to the last `/`, cleaned; `.` when there is no `/`.
pub(crate) fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".to_owned(),
    }
}

/// The parent prefixes BuildKit checks for `path`: each leading run of components of
/// `Dir(path)` (`a`, `a/b`, … for `a/b/c`). Empty when `Dir(path)` is `.`.
///
/// Mirrors `strings.Join(strings.Split(dir, "/")[:i+1], "/")`, so a rooted parent such as
/// `/x/y` yields `""`, `/x`, `/x/y`.
pub(crate) fn parent_prefixes(path: &str) -> Vec<String> {
    let parent = dir(path);
    if parent == "." {
        return Vec::new();
    }
    let mut out: Vec<String> = parent
        .match_indices('/')
        .map(|(i, _)| parent[..i].to_owned())
        .collect();
    out.push(parent);
    out
}

/// The first `n` `/`-separated components of `parent` joined again, or `None` when it
/// has fewer (the one prefix the legacy matcher checks).
pub(crate) fn leading_components(parent: &str, n: usize) -> Option<&str> {
    if n == 0 {
        return Some("");
    }
    let mut seen = 0;
    for (i, _) in parent.match_indices('/') {
        seen += 1;
        if seen == n {
            return Some(&parent[..i]);
        }
    }
    (seen + 1 == n).then_some(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("a//b/./c/", "a/b/c"),
            ("a/../..", ".."),
            ("../a/..", ".."),
            ("/../a", "/a"),
            ("!./foo", "!./foo"),
            ("!/", "!"),
            ("docs/", "docs"),
            ("**/", "**"),
            ("\\", "\\"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn dir_matches_go() {
        for (input, want) in [
            ("file", "."),
            ("file/", "file"),
            ("/", "/"),
            ("a/b/c", "a/b"),
            ("/any/path/there", "/any/path"),
            ("a/../b/c", "b"),
        ] {
            assert_eq!(dir(input), want, "dir({input:?})");
        }
    }

    #[test]
    fn parent_prefixes_follow_split_and_join() {
        assert_eq!(parent_prefixes("a/b/c"), ["a", "a/b"]);
        assert_eq!(
            parent_prefixes("/any/path/there"),
            ["", "/any", "/any/path"]
        );
        assert_eq!(parent_prefixes("/"), ["", "/"]);
        assert!(parent_prefixes("file").is_empty());
    }

    #[test]
    fn leading_components_counts_from_the_left() {
        assert_eq!(leading_components("a/b/c", 1), Some("a"));
        assert_eq!(leading_components("a/b/c", 3), Some("a/b/c"));
        assert_eq!(leading_components("a/b/c", 4), None);
        assert_eq!(leading_components("/x", 1), Some(""));
    }
}
