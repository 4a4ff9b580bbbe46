//! Reading a `.dockerignore` file into its pattern list (moby/patternmatcher's
//! `ignorefile.ReadAll`).
//!
//! Rules: a UTF-8 byte-order mark at the start is dropped; lines end at `\n` (a `\r`
//! before it is dropped); a line whose *first byte* is `#` is a comment (checked before
//! trimming, so ` #x` is a pattern); lines are trimmed and blank ones skipped; a leading
//! `!` is split off and the rest trimmed again; the rest is cleaned like Go's
//! `filepath.Clean` and loses one leading `/` (patterns are relative to the context); the
//! `!` is put back. A bare `!` is kept: the matcher rejects it.
//!
//! Deviation: upstream works on bytes, so a non-UTF-8 pattern line is accepted and
//! compared bytewise. rbuild reports it as [`Error::InvalidUtf8`] with its line number
//! instead of guessing an encoding; comment lines may hold any bytes.

use super::error::{Error, Result};
use super::path::clean;

/// Parses the content of an ignore file into patterns, in file order.
pub fn read_all(content: &[u8]) -> Result<Vec<String>> {
    let content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    let mut patterns = Vec::new();
    for (index, line) in content.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'#') {
            continue;
        }
        let text = std::str::from_utf8(line).map_err(|_| Error::InvalidUtf8 { line: index + 1 })?;
        patterns.extend(normalize(text));
    }
    Ok(patterns)
}

/// One non-comment line to its pattern, or `None` if it is blank.
fn normalize(line: &str) -> Option<String> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return None;
    }
    let (invert, body) = match trimmed.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, trimmed),
    };
    let mut pattern = if body.is_empty() {
        String::new()
    } else {
        clean(body)
    };
    if pattern.len() > 1 && pattern.starts_with('/') {
        pattern.remove(0);
    }
    Some(if invert {
        format!("!{pattern}")
    } else {
        pattern
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_example() {
        let input = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        assert_eq!(
            read_all(input.as_bytes()).unwrap(),
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
    }

    #[test]
    fn bom_crlf_and_comment_position() {
        let input = b"\xEF\xBB\xBF# c\r\n #not-a-comment\r\n/\r\n./a/../b/\n";
        assert_eq!(read_all(input).unwrap(), ["#not-a-comment", "/", "b"]);
    }

    #[test]
    fn non_utf8_patterns_are_reported_with_their_line() {
        assert_eq!(
            read_all(b"# caf\xe9\nok\nbad\xff\n"),
            Err(Error::InvalidUtf8 { line: 3 })
        );
    }
}
