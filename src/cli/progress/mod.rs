//! Rendering build events: a live view on a terminal, plain lines in CI, JSON lines for
//! tools, or nothing. Everything goes to stderr; only data (digests, `--iidfile`) goes
//! to stdout.
//!
//! | file | owns |
//! |---|---|
//! | `plain.rs` | plain lines (`#STAGE.STEP ...`, as `docker build --progress=plain`) and JSON lines |
//! | `board.rs` | the terminal view's model: steps, pulls, exports and what lines show them, at a given width and height |
//! | `tty.rs` | drawing the board on the terminal (indicatif), redrawn a few times a second, and its last frame |
//! | `transfer.rs` | blob transfers of `rbuild push`/`pull` (and `build --push`): bars, lines, or nothing |
//!
//! Independent stages run at the same time, so the events of several steps interleave:
//! every plain line starts with its step's `#STAGE.STEP` and output lines also carry
//! the stage and step (`#1.2 [build 3/4] output`), JSON events carry the whole step id,
//! and the terminal view has one line per step, the running ones with their last output
//! lines below them. Steps are numbered as BuildKit numbers them: `[stage k/n]`, the
//! `FROM` is 1 and `n` counts it.

mod board;
mod plain;
mod transfer;
mod tty;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::ValueEnum;

use crate::executor::{BuildEvent, Reporter, StepId};

pub use transfer::TransferView;

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ProgressMode {
    /// `tty` on a terminal, `plain` otherwise.
    #[default]
    Auto,
    /// A live view.
    Tty,
    /// One line per event.
    Plain,
    /// One JSON object per event.
    Json,
    /// Nothing.
    Quiet,
}

impl ProgressMode {
    /// `Auto` decided: `Tty` when stderr is a terminal, else `Plain`.
    pub fn resolved(self) -> ProgressMode {
        match self {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Tty,
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        }
    }
}

/// How a build ended, for the last frame of the terminal view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Failed,
    /// Ctrl-C (or SIGTERM).
    Interrupted,
}

/// A build's progress output: the reporter the executor sends events to, finished
/// once the build is over (before anything else is printed).
pub enum Progress {
    Tty(tty::TtyReporter),
    Other(Box<dyn Reporter>),
}

impl Progress {
    /// The output for `mode`.
    pub fn start(mode: ProgressMode) -> Progress {
        match mode.resolved() {
            ProgressMode::Tty => Progress::Tty(tty::TtyReporter::start()),
            ProgressMode::Json => Progress::Other(Box::new(plain::JsonReporter)),
            ProgressMode::Quiet => Progress::Other(Box::new(crate::executor::NoReporter)),
            _ => Progress::Other(Box::new(plain::PlainReporter::default())),
        }
    }

    /// Where the executor sends its events.
    pub fn reporter(&self) -> &dyn Reporter {
        match self {
            Progress::Tty(t) => t,
            Progress::Other(r) => r.as_ref(),
        }
    }

    /// Ends the output: the terminal view draws its last frame (every step, the
    /// outcome in its header) and gives the terminal back.
    pub fn finish(self, outcome: Outcome) {
        if let Progress::Tty(t) = self {
            t.finish(outcome);
        }
    }
}

/// Clears the live terminal view, if one is drawn, leaving its last frame as a
/// cancelled build: for a process about to exit at once (a second Ctrl-C).
pub fn abandon() {
    tty::abandon_live();
}

/// The first line of a step's error: the progress line says what failed; the final
/// error report, printed once after the build, has the details (the last output).
fn first_line(error: &str) -> &str {
    error.lines().next().unwrap_or_default()
}

/// How many stages the Dockerfile has (0 until the plan says): the only stage of a
/// Dockerfile is shown without a name, as BuildKit shows it.
#[derive(Default)]
struct StageCount(AtomicUsize);

impl StageCount {
    /// Takes the count from a `Planned` event.
    fn observe(&self, event: &BuildEvent) {
        if let BuildEvent::Planned { stages, .. } = event {
            self.0.store(*stages, Ordering::Relaxed);
        }
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// `[stage k/n] TEXT`: the step as the start line shows it.
fn label(id: &StepId, stages: usize) -> String {
    format!("{} {}", tag(id, stages), id.text)
}

/// `[stage k/n]`: which stage and step a line belongs to, as BuildKit shows it: the
/// `FROM` is 1; a stage without a name is `stage-N`; the only stage of a Dockerfile
/// has no name, even one given with `AS`: `[k/n]`.
fn tag(id: &StepId, stages: usize) -> String {
    let (k, n) = id.position();
    match &id.stage_name {
        _ if stages == 1 => format!("[{k}/{n}]"),
        Some(name) => format!("[{name} {k}/{n}]"),
        None => format!("[stage-{} {k}/{n}]", id.stage),
    }
}

/// `label` on one line (a heredoc or a continued instruction spans several), so a
/// step never takes more than its own line.
fn one_line_label(id: &StepId, stages: usize) -> String {
    let label = label(id, stages);
    let mut lines = label.lines();
    let first = lines.next().unwrap_or_default().trim_end().to_owned();
    match lines.next() {
        Some(_) => format!("{first} ..."),
        None => first,
    }
}

/// A step's output line for the terminal, without what would move the cursor under
/// the view's feet: text a carriage return overwrites is dropped (as the terminal would
/// show it), escape sequences and other control characters removed, tabs made spaces.
fn clean_line(line: &str) -> String {
    let shown = line.trim_end_matches('\r');
    let shown = shown.rsplit('\r').next().unwrap_or_default();
    let mut clean = String::with_capacity(shown.len());
    let mut chars = shown.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => clean.push(' '),
            // CSI: ESC [ parameters... final byte in @..=~
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                for f in chars.by_ref() {
                    if ('@'..='~').contains(&f) {
                        break;
                    }
                }
            }
            c if c.is_control() => {}
            c => clean.push(c),
        }
    }
    clean
}

/// `sha256:` and the first 12 hex digits, as docker shortens layer digests.
fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

fn write_err(text: &str) {
    let mut err = std::io::stderr().lock();
    // Progress is best effort: a closed stderr must not fail the build.
    let _ = writeln!(err, "{text}");
}

/// `rbuild build --explain`: one line per step on standard output, `CACHED` or `MISS`
/// with the reasons below it.
#[derive(Default)]
pub struct ExplainReporter {
    stages: StageCount,
}

impl Reporter for ExplainReporter {
    fn event(&self, event: BuildEvent) {
        self.stages.observe(&event);
        let stages = self.stages.get();
        let text = match event {
            BuildEvent::StepCached { id, from } => {
                let from = from.map(|f| format!(" ({f})")).unwrap_or_default();
                format!(
                    "#{}.{} CACHED{from} {}",
                    id.stage,
                    id.step,
                    label(&id, stages)
                )
            }
            BuildEvent::CacheMiss { id, reasons } => {
                let mut text = format!("#{}.{} MISS   {}", id.stage, id.step, label(&id, stages));
                for reason in reasons {
                    text.push_str("\n       - ");
                    text.push_str(&reason);
                }
                text
            }
            BuildEvent::Note { message } => return write_err(&message),
            _ => return,
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn id(stage_name: Option<&str>, step: usize, text: &str) -> StepId {
        StepId {
            stage: 1,
            stage_name: stage_name.map(str::to_owned),
            step,
            steps: 3,
            text: text.to_owned(),
            line: 7,
        }
    }

    #[test]
    fn steps_are_numbered_as_buildkit_numbers_them() {
        assert_eq!(tag(&id(Some("build"), 0, "FROM a"), 2), "[build 1/4]");
        assert_eq!(tag(&id(Some("build"), 2, "RUN x"), 2), "[build 3/4]");
        assert_eq!(tag(&id(None, 3, "RUN x"), 2), "[stage-1 4/4]");
        assert_eq!(tag(&id(None, 1, "RUN x"), 1), "[2/4]");
        assert_eq!(tag(&id(Some("only"), 1, "RUN x"), 1), "[2/4]");
    }

    #[test]
    fn terminal_lines_stay_on_one_line() {
        let heredoc = id(Some("a"), 1, "RUN <<EOF\necho hi\nEOF");
        assert_eq!(one_line_label(&heredoc, 2), "[a 2/4] RUN <<EOF ...");
        assert_eq!(
            one_line_label(&id(Some("a"), 1, "RUN x"), 2),
            "[a 2/4] RUN x"
        );
        assert_eq!(
            clean_line("50%\r100% \u{1b}[1;32mdone\u{1b}[0m\tok\r"),
            "100% done ok"
        );
    }
}
