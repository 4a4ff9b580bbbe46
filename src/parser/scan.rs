//! The line scanner: physical lines in, [`Node`]s out.
//!
//! Handles the UTF-8 BOM, CRLF, parser directives, comments (also inside continued
//! instructions), the escape token as line continuation, empty continuation lines (a
//! warning), heredoc bodies and the 65535-byte line limit, following BuildKit's parser.

use super::args::{parse_args, shape_of, Shape};
use super::directives::{Directive, DirectiveParser};
use super::error::{ErrorKind, ParseError, Result, Span};
use super::heredoc::heredocs_from_line;
use super::node::{Ast, Node, Warning};
use super::words::split_command;

/// The longest physical line BuildKit accepts, in bytes, without its newline.
pub const MAX_LINE: usize = 65535;

/// Parses Dockerfile text into the untyped tree.
pub fn parse_ast(text: &str) -> Result<Ast> {
    Scanner::new(text).run()
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    trim_newline(s).trim_start().starts_with('#')
}

/// Removes a trailing escape token (plus trailing blanks) that continues the line.
/// Returns the line and whether the instruction ends here.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line, true);
    };
    if before.ends_with(escape) {
        return (line, true);
    }
    (before, false)
}

struct Scanner<'a> {
    lines: Vec<&'a str>,
    next: usize,
    escape: char,
    directives: DirectiveParser,
    found: Vec<Directive>,
    warnings: Vec<Warning>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Scanner {
            lines: text.split_inclusive('\n').collect(),
            next: 0,
            escape: '\\',
            directives: DirectiveParser::default(),
            found: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The next physical line (newline included), checked against the size limit.
    fn read(&mut self) -> Result<Option<&'a str>> {
        let Some(&line) = self.lines.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        if trim_newline(line).len() > MAX_LINE || (line.len() > MAX_LINE && !line.ends_with('\n')) {
            return Err(ParseError::new(
                Span::new(self.next, self.next, 1),
                ErrorKind::LineTooLong,
            ));
        }
        Ok(Some(line))
    }

    /// Strips the newline (and leading blanks on an instruction's first line), feeds
    /// the directive scanner and blanks out comment lines.
    fn process(&mut self, raw: &'a str, strip_left: bool) -> Result<&'a str> {
        let mut token = trim_newline(raw);
        if strip_left {
            token = token.trim_start();
        }
        let span = Span::new(self.next, self.next, 1);
        match self.directives.parse_line(token) {
            Err(kind) => return Err(ParseError::new(span, kind)),
            Ok(Some(d)) => {
                if d.name == "escape" {
                    self.escape = match d.value.as_str() {
                        "\\" => '\\',
                        "`" => '`',
                        other => {
                            let kind = ErrorKind::InvalidEscape {
                                token: other.to_owned(),
                            };
                            return Err(ParseError::new(span, kind));
                        }
                    };
                }
                self.found.push(d);
            }
            Ok(None) => {}
        }
        Ok(if is_comment(token) { "" } else { token })
    }

    fn run(mut self) -> Result<Ast> {
        let mut children = Vec::new();
        let mut comments: Vec<String> = Vec::new();
        while let Some(raw) = self.read()? {
            let directives_before = self.found.len();
            let first = self.process(raw, true)?;
            if is_comment(raw) && self.found.len() == directives_before {
                let text = trim_newline(raw).trim_start()[1..].trim();
                if text.is_empty() {
                    comments.clear();
                } else {
                    comments.push(text.to_owned());
                }
            }
            let start = self.next;
            let (line, mut ended) = trim_continuation(first, self.escape);
            if ended && line.is_empty() {
                continue;
            }
            let mut logical = line.to_owned();
            let mut empty_continuation = false;
            while !ended {
                let Some(raw) = self.read()? else { break };
                let token = self.process(raw, false)?;
                if is_comment(raw) {
                    continue;
                }
                if token.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (part, end) = trim_continuation(token, self.escape);
                logical.push_str(part);
                ended = end;
            }
            if empty_continuation {
                self.warnings
                    .push(empty_continuation_warning(&logical, self.next));
            }
            let col = 1 + trim_newline(raw)
                .chars()
                .take_while(|c| c.is_whitespace())
                .count();
            let span = Span::new(start, self.next, col);
            let mut node =
                node_from_line(&logical, self.escape).map_err(|k| ParseError::new(span, k))?;
            node.start_line = start;
            node.col = col;
            node.comments = std::mem::take(&mut comments);
            if can_contain_heredoc(&node) && line.contains("<<") {
                self.read_heredocs(&mut node, line, span)?;
            }
            node.end_line = self.next;
            children.push(node);
        }
        if children.is_empty() {
            let span = Span::new(self.next.max(1), self.next.max(1), 1);
            return Err(ParseError::new(span, ErrorKind::NoInstructions));
        }
        Ok(Ast {
            children,
            escape: self.escape,
            directives: self.found,
            warnings: self.warnings,
        })
    }

    fn read_heredocs(&mut self, node: &mut Node, line: &str, span: Span) -> Result<()> {
        let docs = heredocs_from_line(line).map_err(|k| ParseError::new(span, k))?;
        for mut doc in docs {
            let mut terminated = false;
            while let Some(raw) = self.read()? {
                let mut candidate = trim_newline(raw);
                if doc.chomp {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == doc.name {
                    terminated = true;
                    break;
                }
                doc.content.push_str(raw);
            }
            if !terminated {
                let col = line
                    .find("<<")
                    .map_or(span.col, |at| span.col + line[..at].chars().count());
                let span = Span::new(span.line, self.next, col);
                return Err(ParseError::new(span, ErrorKind::UnterminatedHeredoc));
            }
            let target = match &mut node.sub {
                Some(sub) if node.keyword.eq_ignore_ascii_case("onbuild") => sub.as_mut(),
                _ => &mut *node,
            };
            target.heredocs.push(doc);
        }
        Ok(())
    }
}

fn empty_continuation_warning(logical: &str, line: usize) -> Warning {
    Warning {
        rule: "NoEmptyContinuation",
        short: format!("Empty continuation line found in: {logical}"),
        detail: "Empty continuation lines will become errors in a future release",
        url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/",
        line,
    }
}

fn can_contain_heredoc(node: &Node) -> bool {
    let node = match (&node.sub, node.name().as_str()) {
        (Some(sub), "onbuild") => sub.as_ref(),
        _ => node,
    };
    matches!(node.name().as_str(), "run" | "copy" | "add") && !node.json
}

/// Builds the node of one logical line (BuildKit's `newNodeFromLine`).
pub fn node_from_line(line: &str, escape: char) -> std::result::Result<Node, ErrorKind> {
    let cmd = split_command(line, escape);
    let name = cmd.keyword.to_ascii_lowercase();
    let shape = shape_of(&name);
    let mut node = Node {
        keyword: cmd.keyword,
        flags: cmd.flags,
        args: Vec::new(),
        sub: None,
        json: false,
        heredocs: Vec::new(),
        original: line.to_owned(),
        start_line: 0,
        end_line: 0,
        col: 1,
        comments: Vec::new(),
    };
    if shape == Shape::SubCommand {
        if !cmd.rest.is_empty() {
            node.sub = Some(Box::new(node_from_line(&cmd.rest, escape)?));
        }
        return Ok(node);
    }
    let args = parse_args(shape, &name, &cmd.rest, escape)?;
    node.args = args.values;
    node.json = args.json;
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ", false));
        assert_eq!(trim_continuation("a\\ \t", '\\'), ("a", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("a`", '`'), ("a", false));
    }

    #[test]
    fn parses_simple_file() {
        let ast = parse_ast("FROM a\nRUN x \\\n  # c\n  y\n").unwrap();
        assert_eq!(ast.dump(), "(from \"a\")\n(run \"x   y\")\n");
        assert_eq!(ast.children[1].start_line, 2);
        assert_eq!(ast.children[1].end_line, 4);
    }

    #[test]
    fn empty_file_is_an_error() {
        let err = parse_ast("# only a comment\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::NoInstructions);
    }
}
