//! Heredoc words (`<<EOF`, `<<-EOF`, `3<<'EOF'`) in `RUN`, `COPY` and `ADD` lines.
//!
//! Recognition follows BuildKit: the line is split into words with the shell lexer in
//! raw mode; a word `[fd]<<[-]NAME` starts a heredoc (a separate `<<` or `<<-` word is
//! joined with the next word, so `<< EOF` works). The name is the delimiter with quotes
//! removed; if any part of it was quoted, the body is not expanded.

use super::error::ErrorKind;
use super::node::Heredoc;
use super::shell::{EnvList, Lex};

/// Parses one word as a heredoc start. `Ok(None)` when it is not one.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, ErrorKind> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match after.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, after),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    // An fd too large for u32 is treated as 0, as Go's ignored ParseUint error does.
    let fd = word[..digits].parse::<u32>().unwrap_or(0);
    let env = EnvList::default();
    let mut lex = Lex::new('\\');
    lex.skip_unset_env = true;
    let words = lex
        .process_words(rest, &env)
        .map_err(|source| ErrorKind::Heredoc { source })?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    lex.raw_quotes = true;
    let raw = lex
        .process_words(rest, &env)
        .map_err(|source| ErrorKind::Heredoc { source })?;
    let [raw_name] = raw.as_slice() else {
        return Err(ErrorKind::HeredocInconsistent {
            word: rest.to_owned(),
        });
    };
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Ok(Some(Heredoc {
        name: name.clone(),
        content: String::new(),
        expand: quotes(name) == quotes(raw_name),
        chomp,
        fd,
    }))
}

/// The heredocs started on `line`, in order.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ErrorKind> {
    let mut lex = Lex::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    // Like BuildKit, a line the lexer cannot split has no heredocs.
    let words = lex
        .process_words(line, &EnvList::default())
        .unwrap_or_default();
    let mut docs = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let mut word = words[i].clone();
        let bare = word.trim_start_matches(|c: char| c.is_ascii_digit());
        if (bare == "<<" || bare == "<<-") && i + 1 < words.len() {
            word = format!("{word} {}", words[i + 1]);
            i += 1;
        }
        if let Some(doc) = parse_heredoc(&word)? {
            docs.push(doc);
        }
        i += 1;
    }
    Ok(docs)
}

/// Removes the leading tabs of every line of a `<<-` heredoc body.
pub fn chomp_tabs(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(word: &str) -> Option<String> {
        parse_heredoc(word).unwrap().map(|h| h.name)
    }

    #[test]
    fn recognises_heredoc_words() {
        assert_eq!(name("<<EOF").as_deref(), Some("EOF"));
        assert_eq!(name("<<-'EOF'").as_deref(), Some("EOF"));
        assert_eq!(name("<<EOF sh"), None);
        assert_eq!(name("<<<EOF"), None);
        assert!(parse_heredoc("<<'EOF").is_err());
        let doc = parse_heredoc("3<<\"E\"").unwrap().unwrap();
        assert_eq!((doc.fd, doc.expand), (3, false));
    }

    #[test]
    fn joins_separate_operator() {
        let names: Vec<_> = heredocs_from_line("RUN << -EOF <<- X")
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(names, ["-EOF", "X"]);
    }

    #[test]
    fn chomps_tabs() {
        assert_eq!(chomp_tabs("\thello\n\t\tworld\n"), "hello\nworld\n");
    }
}
