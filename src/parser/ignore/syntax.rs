//! Pattern syntax check with Go `filepath.Match` rules (Unix flavour, `\` escapes).
//!
//! BuildKit validates each pattern by calling `filepath.Match(pattern, ".")` and keeping
//! only its error. Go validates the whole pattern whatever the name, so this reduces to a
//! pure syntax check: the pattern is cut into chunks at `*` outside brackets, and each
//! chunk must have complete escapes and well-formed `[...]` classes whose members are not
//! a bare `-` or `]` (Go's `getEsc`). Ranges are *not* ordered here: `[z-a]` passes and
//! only fails later, when the generated regular expression is compiled (see
//! [`super::re2`]).

use super::error::PatternErrorKind;

/// Checks `pattern` as Go's `filepath.Match` would, returning the first syntax error.
pub(super) fn validate(pattern: &str) -> Result<(), PatternErrorKind> {
    let mut rest = pattern;
    while !rest.is_empty() {
        rest = rest.trim_start_matches('*');
        let (chunk, tail) = split_chunk(rest);
        check_chunk(chunk)?;
        rest = tail;
    }
    Ok(())
}

/// Go's `scanChunk`: the text up to the first `*` that is not inside brackets, where a
/// `\` hides the byte after it. The bracket tracking is deliberately as naive as Go's.
fn split_chunk(pattern: &str) -> (&str, &str) {
    let bytes = pattern.as_bytes();
    let mut in_range = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    // invariant: `i` is the index of an ASCII `*` or the length, both char boundaries.
    pattern.split_at_checked(i).unwrap_or((pattern, ""))
}

/// Go's `matchChunk` syntax rules, without the matching.
fn check_chunk(chunk: &str) -> Result<(), PatternErrorKind> {
    let mut rest = chunk;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '[' => rest = check_class(rest)?,
            '\\' => {
                let escaped = rest
                    .chars()
                    .next()
                    .ok_or(PatternErrorKind::TrailingBackslash)?;
                rest = &rest[escaped.len_utf8()..];
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks the body of a class after its `[`, returning the text after the closing `]`.
fn check_class(body: &str) -> Result<&str, PatternErrorKind> {
    let mut rest = body.strip_prefix('^').unwrap_or(body);
    let mut members = 0;
    loop {
        if members > 0 {
            if let Some(after) = rest.strip_prefix(']') {
                return Ok(after);
            }
        }
        rest = class_member(rest)?;
        if let Some(after) = rest.strip_prefix('-') {
            rest = class_member(after)?;
        }
        members += 1;
    }
}

/// Go's `getEsc`: one (possibly escaped) class member, which must be followed by more text.
fn class_member(text: &str) -> Result<&str, PatternErrorKind> {
    let mut chars = text.chars();
    match chars.next() {
        None => return Err(PatternErrorKind::UnterminatedClass),
        Some(ch @ ('-' | ']')) => return Err(PatternErrorKind::MisplacedInClass { ch }),
        Some('\\') => {
            chars.next().ok_or(PatternErrorKind::UnterminatedClass)?;
        }
        Some(_) => {}
    }
    let rest = chars.as_str();
    if rest.is_empty() {
        return Err(PatternErrorKind::UnterminatedClass);
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_go_accepts() {
        for p in [
            "abc",
            "*",
            "a*b?c",
            "[a-z]",
            "[^a-z]",
            "[\\]a]",
            "[\\-]",
            "[x\\-]",
            "[Local-Only]",
            "[z-a]",
            "[a*]",
            "**/x",
            "a\\*b",
            "[a-ζ]*",
            "\\d",
        ] {
            assert_eq!(validate(p), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        use PatternErrorKind::*;
        for (p, want) in [
            ("[", UnterminatedClass),
            ("[^", UnterminatedClass),
            ("[^bc", UnterminatedClass),
            ("a[", UnterminatedClass),
            ("[]a]", MisplacedInClass { ch: ']' }),
            ("[-]", MisplacedInClass { ch: '-' }),
            ("[x-]", MisplacedInClass { ch: ']' }),
            ("[-x]", MisplacedInClass { ch: '-' }),
            ("[a-b-c]", MisplacedInClass { ch: '-' }),
            ("\\", TrailingBackslash),
            ("a*\\", TrailingBackslash),
            ("*[a", UnterminatedClass),
        ] {
            assert_eq!(validate(p), Err(want), "{p:?}");
        }
    }

    #[test]
    fn chunks_split_at_stars_outside_brackets() {
        assert_eq!(split_chunk("ab*c"), ("ab", "*c"));
        assert_eq!(split_chunk("[*]x*"), ("[*]x", "*"));
        assert_eq!(split_chunk("a\\*b"), ("a\\*b", ""));
    }
}
