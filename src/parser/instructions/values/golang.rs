//! The Go standard-library behaviours the value parsers inherit from BuildKit.
//!
//! BuildKit's error messages and accepted inputs come straight from `strconv.ParseBool`,
//! `strconv.ParseUint`, `fmt`'s `%q` and `path.Clean`/`path.Base`. Reproducing them here
//! keeps each parser a direct reading of the BuildKit code it mirrors.

/// `strconv.ParseBool`: exactly these twelve spellings are accepted.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `strconv.ParseUint(s, radix, bits)` for radix 8 or 10: one or more digits of the radix,
/// no sign, no prefix, no underscores, and a value that fits in `bits` bits.
pub(crate) fn parse_uint(s: &str, radix: u32, bits: u32) -> Option<u64> {
    if s.is_empty() || !s.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let value = u64::from_str_radix(s, radix).ok()?;
    let max = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    (value <= max).then_some(value)
}

/// Go's `%q` quoting: the front end's exact `strconv.Quote`.
pub(crate) use crate::parser::quote::go_quote as quote;

/// Go's `path.Clean` (one implementation, shared with the .dockerignore engine).
pub fn clean_path(path: &str) -> String {
    crate::parser::ignore::go_clean(path)
}

/// Go's `path.Base`: the last element, trailing slashes ignored; `.` for `""`, `/` for all
/// slashes.
pub(crate) fn base_name(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_owned();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_bool_accepts_go_spellings_only() {
        for s in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(s), Some(true), "{s}");
        }
        for s in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(s), Some(false), "{s}");
        }
        for s in ["", "yes", "tRUE", " true", "2"] {
            assert_eq!(parse_bool(s), None, "{s}");
        }
    }

    #[test]
    fn parse_uint_checks_radix_sign_and_width() {
        assert_eq!(parse_uint("0755", 8, 32), Some(0o755));
        assert_eq!(parse_uint("8", 8, 32), None);
        assert_eq!(parse_uint("+1", 10, 32), None);
        assert_eq!(parse_uint("1_000", 10, 32), None);
        assert_eq!(parse_uint("", 10, 32), None);
        assert_eq!(parse_uint("4294967295", 10, 32), Some(u64::from(u32::MAX)));
        assert_eq!(parse_uint("4294967296", 10, 32), None);
        assert_eq!(parse_uint("65536", 10, 16), None);
        assert_eq!(parse_uint("٣", 10, 16), None);
    }

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote(""), r#""""#);
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("\t\n\u{1}\u{7f}"), r#""\t\n\x01\x7f""#);
        assert_eq!(quote("héllo 한"), "\"héllo 한\"");
        assert_eq!(quote("\u{a0}\u{feff}"), r#""\u00a0\ufeff""#);
    }

    #[test]
    fn clean_and_base_match_go() {
        let cases = [
            ("", "."),
            ("/", "/"),
            ("a/b/../c/.", "a/c"),
            ("/../a//b/", "/a/b"),
            ("../../a", "../../a"),
            ("a/..", "."),
            ("/cache/", "/cache"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "{input}");
        }
        assert_eq!(base_name("/run/secrets/token/"), "token");
        assert_eq!(base_name("token"), "token");
        assert_eq!(base_name("///"), "/");
        assert_eq!(base_name(""), ".");
    }
}
