//! Word-level helpers of the line parser: the instruction keyword split, the leading
//! `--flag` words, and the quote-keeping word splitter used by `ENV`, `LABEL` and `ARG`.
//!
//! These mirror BuildKit's `splitCommand`, `extractBuilderFlags` and `parseWords`,
//! including their quirks (documented where they matter), because the AST dump and the
//! meaning of flags depend on them.

/// Go's `unicode.IsSpace` (the same set as Rust's `char::is_whitespace`).
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// BuildKit's `reWhitespace`: `[\t\v\f\r ]`.
pub fn is_field_separator(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits `s` on runs of [`is_field_separator`] characters, dropping empty pieces at the
/// ends (Go's `regexp.Split` on a trimmed string).
pub fn split_fields(s: &str) -> Vec<String> {
    s.split(is_field_separator)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Splits `s` once at the first run of field separators.
pub fn split_once_fields(s: &str) -> (&str, Option<&str>) {
    match s.find(is_field_separator) {
        None => (s, None),
        Some(i) => {
            let rest = s[i..].trim_start_matches(is_field_separator);
            (&s[..i], Some(rest))
        }
    }
}

/// The parts of a logical line: keyword as written, flag words, remaining text (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub keyword: String,
    pub flags: Vec<String>,
    pub rest: String,
}

/// Splits a logical line into keyword, flags and the rest of the arguments.
pub fn split_command(line: &str, escape: char) -> CommandLine {
    let line = line.trim();
    let (keyword, tail) = split_once_fields(line);
    let (rest, flags) = match tail {
        Some(tail) => extract_flags(tail, escape),
        None => (String::new(), Vec::new()),
    };
    CommandLine {
        keyword: keyword.to_owned(),
        flags,
        rest: rest.trim().to_owned(),
    }
}

/// Reads the leading `--name[=value]` words of `line`; returns the remaining text and
/// the flag words with quotes removed and escapes processed.
///
/// Quirk kept from BuildKit: the scan is byte by byte and each byte is taken as the code
/// point of the same value, so non-ASCII text inside a flag is encoded to UTF-8 twice (as
/// if it were Latin-1), and the bytes 0x85 and 0xA0 count as spaces.
pub fn extract_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let bytes = line.as_bytes();
    let rest_from = |pos: usize| String::from_utf8_lossy(&bytes[pos..]).into_owned();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut phase = Phase::Spaces;
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= bytes.len() {
        let at_end = pos == bytes.len();
        let ch = if at_end { '\0' } else { bytes[pos] as char };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            if ch != '-' || bytes.get(pos + 1) != Some(&b'-') {
                return (rest_from(pos), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        match phase {
            Phase::Word => {
                if is_space(ch) {
                    if word == "--" {
                        return (rest_from(pos), words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    phase = Phase::Spaces;
                } else if ch == '\'' || ch == '"' {
                    blank_ok = true;
                    phase = Phase::Quote(ch);
                } else if ch == escape {
                    if pos + 1 < bytes.len() {
                        pos += 1;
                        word.push(bytes[pos] as char);
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                } else if ch == escape {
                    if pos + 1 == bytes.len() {
                        phase = Phase::Word;
                    } else {
                        pos += 1;
                        word.push(bytes[pos] as char);
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Spaces => {}
        }
        pos += 1;
    }
    (String::new(), words)
}

/// BuildKit's `parseWords`: splits on whitespace outside quotes, keeping quotes and
/// escape tokens in the words (`a\ b` stays one word, `"x y"` keeps its quotes).
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut phase = Phase::Spaces;
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= chars.len() {
        let at_end = pos == chars.len();
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(chars[pos]) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        let ch = chars[pos];
        match phase {
            Phase::Word => {
                if is_space(ch) {
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    phase = Phase::Spaces;
                    pos += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    blank_ok = true;
                    phase = Phase::Quote(ch);
                }
                if ch == escape {
                    if pos + 1 == chars.len() {
                        pos += 1;
                        continue;
                    }
                    word.push(ch);
                    pos += 1;
                }
                word.push(chars[pos]);
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                }
                if ch == escape && quote != '\'' {
                    if pos + 1 == chars.len() {
                        phase = Phase::Word;
                        pos += 1;
                        continue;
                    }
                    word.push(ch);
                    pos += 1;
                }
                word.push(chars[pos]);
            }
            Phase::Spaces => {}
        }
        pos += 1;
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(s: &str) -> (String, Vec<String>) {
        extract_flags(s, '\\')
    }

    #[test]
    fn flags_stop_at_first_plain_word() {
        assert_eq!(
            flags("--a=1 --b x --c"),
            ("x --c".to_owned(), vec!["--a=1".into(), "--b".into()])
        );
        assert_eq!(flags("-- x"), (" x".to_owned(), vec![]));
        assert_eq!(
            flags("--x='a b' y"),
            ("y".to_owned(), vec!["--x=a b".into()])
        );
        assert_eq!(flags("--x=\"\" y").1, vec!["--x=".to_owned()]);
    }

    #[test]
    fn flags_reencode_non_ascii_like_buildkit() {
        assert_eq!(flags("--a=é x").1, vec!["--a=\u{c3}\u{a9}".to_owned()]);
    }

    #[test]
    fn flags_never_split_inside_a_char() {
        // U+0800 is E0 A0 80: the A0 byte counts as a space (BuildKit quirk).
        let (rest, _) = flags("--a=\u{800}x");
        assert!(rest.ends_with('x'));
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        assert_eq!(
            parse_words(r#"a\ b "c d" 'e\'"#, '\\'),
            [r"a\ b", r#""c d""#, r"'e\'"]
        );
        assert_eq!(parse_words("x\\", '\\'), ["x"]);
    }

    #[test]
    fn splits_command() {
        let c = split_command("  copy --from=a  src dst ", '\\');
        assert_eq!(c.keyword, "copy");
        assert_eq!(c.flags, ["--from=a"]);
        assert_eq!(c.rest, "src dst");
    }
}
