//! Any pattern list and path through the .dockerignore matcher: must never panic.
#![no_main]

use rbuild::parser::ignore::{read_all, IgnoreMatcher, MatchInfo};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (file, path) = text.split_once('\u{0}').unwrap_or((&text, "a/b/c"));
    let Ok(patterns) = read_all(file.as_bytes()) else { return };
    let Ok(matcher) = IgnoreMatcher::new(&patterns) else { return };
    let _ = matcher.matches(path);
    let mut info = MatchInfo::default();
    let mut prefix = String::new();
    for part in path.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        match matcher.matches_with_parent(&prefix, &info) {
            Ok((_, next)) => info = next,
            Err(_) => return,
        }
        let _ = matcher.can_skip_excluded_dir(&prefix);
    }
});
