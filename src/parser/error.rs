//! Parse errors: what is wrong, and where (`Dockerfile:LINE:COL`).
//!
//! Every error the front end reports is a [`Located`] kind: the 1-based line range of the
//! instruction and a column inside its first line, so the CLI can print the offending
//! line with a caret under the culprit. This file holds the envelope and the kinds of the
//! untyped layer ([`ErrorKind`], reported by [`ParseError`]); the typed layer above
//! (`instructions`) wraps them in its own kind, next to its instruction errors.

use std::fmt;

use super::shell;

/// A position in the Dockerfile: lines are 1-based, `col` is a 1-based column (in
/// characters) inside `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Span {
    /// First physical line of the construct.
    pub line: usize,
    /// Last physical line of the construct (equal to `line` for one-line constructs).
    pub end_line: usize,
    /// Column of the culprit inside `line`, 1-based.
    pub col: usize,
}

impl Span {
    /// A span covering lines `line..=end_line`, pointing at column `col` of the first.
    pub fn new(line: usize, end_line: usize, col: usize) -> Self {
        Span {
            line,
            end_line: end_line.max(line),
            col: col.max(1),
        }
    }
}

/// What went wrong while reading a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("invalid escape token '{token}' does not match ` or \\")]
    InvalidEscape { token: String },
    #[error("only one {name} parser directive can be used")]
    DuplicateDirective { name: String },
    #[error("dockerfile line greater than max allowed size of 65535")]
    LineTooLong,
    #[error("file with no instructions")]
    NoInstructions,
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    #[error("{keyword} must have two arguments")]
    MissingValue { keyword: String },
    #[error("Syntax error - can't find = in {}. Must be of the form: name=value", super::quote::go_quote(.word))]
    MissingEquals { word: String },
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    #[error("invalid heredoc: {source}")]
    Heredoc { source: shell::Error },
    #[error("internal lexing of heredoc produced inconsistent results: {word}")]
    HeredocInconsistent { word: String },
}

/// An error of the untyped layer ([`crate::parser::parse_ast`]), with its location.
pub type ParseError = Located<ErrorKind>;

/// An error of kind `K` with its location in the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<K> {
    /// The name the Dockerfile is shown under (`Dockerfile`, or the `-f` path).
    pub file: String,
    /// Where the error is.
    pub span: Span,
    /// What is wrong.
    pub kind: K,
}

impl<K> Located<K> {
    /// An error in the default-named `Dockerfile` at `span`.
    pub fn new(span: Span, kind: impl Into<K>) -> Self {
        Located {
            file: "Dockerfile".to_owned(),
            span,
            kind: kind.into(),
        }
    }

    /// Renames the file the error is reported in.
    pub fn in_file(mut self, file: &str) -> Self {
        self.file = file.to_owned();
        self
    }

    /// The same error with its kind converted (to the kind of a layer above).
    pub fn map_kind<L>(self, f: impl FnOnce(K) -> L) -> Located<L> {
        Located {
            file: self.file,
            span: self.span,
            kind: f(self.kind),
        }
    }
}

impl<K: fmt::Display> Located<K> {
    /// The error with the offending source line and a caret under the culprit:
    ///
    /// ```text
    /// Dockerfile:3:1: unknown instruction: FORM
    ///   3 | FORM scratch
    ///     | ^
    /// ```
    pub fn render(&self, source: &str) -> String {
        let mut out = self.to_string();
        let Some(text) = source.lines().nth(self.span.line.saturating_sub(1)) else {
            return out;
        };
        let text = text.trim_end_matches('\r').trim_start_matches('\u{feff}');
        let number = self.span.line.to_string();
        let pad = " ".repeat(number.len());
        let caret_at: String = text
            .chars()
            .take(self.span.col.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!("\n {number} | {text}\n {pad} | {caret_at}^"));
        out
    }
}

impl<K: fmt::Display> fmt::Display for Located<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.span.line, self.span.col, self.kind
        )
    }
}

impl<K: std::error::Error> std::error::Error for Located<K> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

/// Result of the untyped layer.
pub type Result<T, E = ParseError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_and_caret() {
        let err = ParseError::new(Span::new(2, 2, 5), ErrorKind::UnterminatedHeredoc);
        let text = err.render("FROM x\nRUN <<EOF\n");
        assert_eq!(
            text,
            "Dockerfile:2:5: unterminated heredoc\n 2 | RUN <<EOF\n   |     ^"
        );
    }
}
