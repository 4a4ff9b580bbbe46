//! The untyped syntax tree: one [`Node`] per instruction, as BuildKit's parser builds it.
//!
//! A node keeps the keyword as written, its flag words, its argument values (split the
//! way each instruction splits them), whether the arguments were a JSON array, heredoc
//! bodies, the line range and the comments just above it. [`Node::dump`] renders
//! BuildKit's AST dump format, which the conformance corpus compares byte for byte.

use serde::Serialize;

use super::quote::{go_quote, go_quote_list};

/// A heredoc attached to `RUN`, `COPY` or `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`EOF` for `<<'EOF'`).
    pub name: String,
    /// The body, verbatim, every line with its newline (tabs not yet stripped).
    pub content: String,
    /// Whether variables in the body are expanded (no part of the delimiter was quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body when it is used.
    pub chomp: bool,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 when absent.
    pub fd: u32,
}

/// One instruction line of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The instruction keyword as written (`FROM`, `copy`, ...).
    pub keyword: String,
    /// Leading `--flag` words, quotes removed.
    pub flags: Vec<String>,
    /// Argument values, split as the instruction splits them.
    pub args: Vec<String>,
    /// `ONBUILD`: the nested instruction.
    pub sub: Option<Box<Node>>,
    /// The arguments were given as a JSON array.
    pub json: bool,
    /// Heredoc bodies read after the line.
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined, comment lines removed).
    pub original: String,
    /// First physical line, 1-based.
    pub start_line: usize,
    /// Last physical line consumed (continuations and heredoc bodies included).
    pub end_line: usize,
    /// 1-based column of the keyword in the first line.
    pub col: usize,
    /// The `#` comment lines directly above the instruction, `#` and blanks removed.
    pub comments: Vec<String>,
}

impl Node {
    /// The keyword in lower case, the form instructions are matched on.
    pub fn name(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    /// BuildKit's `Node.Dump()` of this instruction (without the surrounding parens).
    pub fn dump(&self) -> String {
        let mut out = self.keyword.to_lowercase();
        if !self.flags.is_empty() {
            out.push(' ');
            out.push_str(&go_quote_list(&self.flags));
        }
        for arg in &self.args {
            out.push(' ');
            out.push_str(&go_quote(arg));
        }
        if let Some(sub) = &self.sub {
            out.push_str(" (");
            out.push_str(&sub.dump());
            out.push(')');
        }
        out.trim().to_owned()
    }
}

/// The parse result below the typed layer: all instructions plus parser metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ast {
    /// Instructions in file order.
    pub children: Vec<Node>,
    /// The escape token in effect (`\` or `` ` ``).
    pub escape: char,
    /// Parser directives found at the top.
    pub directives: Vec<super::directives::Directive>,
    /// Non-fatal findings (e.g. empty continuation lines).
    pub warnings: Vec<Warning>,
}

impl Ast {
    /// The whole tree in BuildKit's dump format, one `(...)` line per instruction.
    pub fn dump(&self) -> String {
        self.children
            .iter()
            .map(|n| format!("({})\n", n.dump()))
            .collect()
    }

    /// First line of the first instruction and last line of the last one.
    pub fn line_range(&self) -> (usize, usize) {
        let start = self.children.first().map_or(0, |n| n.start_line);
        let end = self.children.last().map_or(0, |n| n.end_line);
        (start, end)
    }
}

/// A non-fatal parser finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Rule name (`NoEmptyContinuation`).
    pub rule: &'static str,
    /// One-line description naming the instruction.
    pub short: String,
    /// Longer explanation.
    pub detail: &'static str,
    /// Documentation link.
    pub url: &'static str,
    /// 1-based line the warning refers to.
    pub line: usize,
}
