//! Rendering build events: a live view on a terminal (indicatif), plain lines in CI,
//! JSON lines for tools, or nothing. Everything goes to stderr; only data (digests,
//! `--iidfile`) goes to stdout.
//!
//! Independent stages run at the same time, so the events of several steps interleave:
//! every plain line starts with its step's `#STAGE.STEP` and output lines also carry
//! the stage and step (`#1.2 [build 2/3] output`), JSON events carry the whole step id,
//! and the terminal view has one spinner line per running step, output printed above
//! them with the same tag.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::executor::{BuildEvent, Reporter, StepId};

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

/// Builds the reporter for `mode`.
pub fn reporter(mode: ProgressMode) -> Box<dyn Reporter> {
    let mode = match mode {
        ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Tty,
        ProgressMode::Auto => ProgressMode::Plain,
        m => m,
    };
    match mode {
        ProgressMode::Tty => Box::new(TtyReporter::new()),
        ProgressMode::Json => Box::new(JsonReporter),
        ProgressMode::Quiet => Box::new(crate::executor::NoReporter),
        _ => Box::new(PlainReporter),
    }
}

/// The first line of a step's error: the progress line says what failed; the final
/// error report, printed once after the build, has the details (the last output).
fn first_line(error: &str) -> &str {
    error.lines().next().unwrap_or_default()
}

/// `[stage k/n] TEXT`: the step as the start line and the terminal view show it.
fn label(id: &StepId) -> String {
    format!("{} {}", tag(id), id.text)
}

/// `[stage k/n]`: which stage and step a line belongs to.
fn tag(id: &StepId) -> String {
    let stage = id
        .stage_name
        .clone()
        .unwrap_or_else(|| format!("stage-{}", id.stage));
    format!("[{stage} {}/{}]", id.step, id.steps)
}

fn write_err(text: &str) {
    let mut err = std::io::stderr().lock();
    // Progress is best effort: a closed stderr must not fail the build.
    let _ = writeln!(err, "{text}");
}

/// `rbuild build --explain`: one line per step on standard output, `CACHED` or `MISS`
/// with the reasons below it.
pub struct ExplainReporter;

impl Reporter for ExplainReporter {
    fn event(&self, event: BuildEvent) {
        let text = match event {
            BuildEvent::StepCached { id } => {
                format!("#{}.{} CACHED {}", id.stage, id.step, label(&id))
            }
            BuildEvent::CacheMiss { id, reasons } => {
                let mut text = format!("#{}.{} MISS   {}", id.stage, id.step, label(&id));
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

/// Plain lines, as `docker build --progress=plain` prints them.
struct PlainReporter;

/// The plain line for `event`.
fn plain_line(event: BuildEvent) -> String {
    match event {
        BuildEvent::StepStarted { id } => format!("#{}.{} {}", id.stage, id.step, label(&id)),
        BuildEvent::StepCached { id } => format!(
            "#{}.{} {}\n#{}.{} CACHED",
            id.stage,
            id.step,
            label(&id),
            id.stage,
            id.step
        ),
        BuildEvent::CacheMiss { id, reasons } => format!(
            "#{}.{} cache miss: {}",
            id.stage,
            id.step,
            reasons.join("; ")
        ),
        BuildEvent::StepLog { id, line } => {
            format!("#{}.{} {} {line}", id.stage, id.step, tag(&id))
        }
        BuildEvent::StepFinished { id, elapsed, layer } => {
            let note = if layer { "" } else { " (no layer)" };
            format!(
                "#{}.{} DONE {:.2}s{note}",
                id.stage,
                id.step,
                elapsed.as_secs_f64()
            )
        }
        BuildEvent::StepFailed { id, error } => {
            format!("#{}.{} ERROR: {}", id.stage, id.step, first_line(&error))
        }
        BuildEvent::StepCancelled { id } => format!("#{}.{} CANCELED", id.stage, id.step),
        BuildEvent::ImageWritten { name, digest } => match name {
            Some(n) => format!("naming to {n} done ({digest})"),
            None => format!("writing image {digest} done"),
        },
        BuildEvent::LayerUnpacking { digest, size } => {
            let size = super::store_cmds::human_size(size);
            format!("unpacking {} ({size})", short_digest(&digest))
        }
        BuildEvent::LayerUnpacked { digest, elapsed } => format!(
            "unpacked {} in {:.2}s",
            short_digest(&digest),
            elapsed.as_secs_f64()
        ),
        BuildEvent::Note { message } => message,
    }
}

/// `sha256:` and the first 12 hex digits, as docker shortens layer digests.
fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

impl Reporter for PlainReporter {
    fn event(&self, event: BuildEvent) {
        // One `writeln!` on the locked stderr per event: lines never mix.
        write_err(&plain_line(event));
    }
}

/// One JSON object per line.
struct JsonReporter;

impl Reporter for JsonReporter {
    fn event(&self, event: BuildEvent) {
        if let Ok(text) = serde_json::to_string(&event) {
            write_err(&text);
        }
    }
}

/// A spinner line per running step (several when stages run in parallel), finished
/// steps and output kept above them. indicatif draws the spinners and prints above them
/// under one lock, so concurrent steps do not garble the view.
struct TtyReporter {
    multi: MultiProgress,
    bars: Mutex<Vec<(String, ProgressBar)>>,
}

impl TtyReporter {
    fn new() -> Self {
        TtyReporter {
            multi: MultiProgress::new(),
            bars: Mutex::new(Vec::new()),
        }
    }

    fn key(id: &StepId) -> String {
        format!("{}.{}", id.stage, id.step)
    }

    fn take(&self, id: &StepId) -> Option<ProgressBar> {
        let mut bars = self.bars.lock().ok()?;
        let pos = bars.iter().position(|(k, _)| *k == Self::key(id))?;
        Some(bars.remove(pos).1)
    }

    fn println(&self, text: String) {
        let _ = self.multi.println(text);
    }
}

/// `label` on one line (a heredoc or a continued instruction spans several), so a
/// spinner never takes more than its own line.
fn one_line_label(id: &StepId) -> String {
    let label = label(id);
    let mut lines = label.lines();
    let first = lines.next().unwrap_or_default().trim_end().to_owned();
    match lines.next() {
        Some(_) => format!("{first} ..."),
        None => first,
    }
}

/// A step's output line for the terminal: tagged with its step, without what would
/// move the cursor under the spinners' feet. Text a carriage return overwrites is
/// dropped (as the terminal would show it), escape sequences and other control
/// characters removed, tabs made spaces.
fn tty_log_line(id: &StepId, line: &str) -> String {
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
    format!("    {} | {clean}", tag(id))
}

impl Reporter for TtyReporter {
    fn event(&self, event: BuildEvent) {
        match event {
            BuildEvent::StepStarted { id } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                // `wide_msg` is cut to the terminal's width: a long instruction never
                // wraps (a wrapped line would not be redrawn in place).
                if let Ok(style) =
                    ProgressStyle::with_template(" {spinner} {elapsed:>4} {wide_msg}")
                {
                    bar.set_style(style);
                }
                bar.set_message(one_line_label(&id));
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
                if let Ok(mut bars) = self.bars.lock() {
                    bars.push((Self::key(&id), bar));
                }
            }
            BuildEvent::StepCached { id } => {
                self.println(format!(" => CACHED {}", one_line_label(&id)));
            }
            BuildEvent::StepLog { id, line } => self.println(tty_log_line(&id, &line)),
            BuildEvent::StepFinished { id, elapsed, .. } => {
                if let Some(bar) = self.take(&id) {
                    bar.finish_and_clear();
                }
                let text = one_line_label(&id);
                self.println(format!(" => {text} {:.1}s", elapsed.as_secs_f64()));
            }
            BuildEvent::StepFailed { id, error } => {
                if let Some(bar) = self.take(&id) {
                    bar.finish_and_clear();
                }
                let error = first_line(&error);
                self.println(format!(" => ERROR {}: {error}", one_line_label(&id)));
            }
            BuildEvent::StepCancelled { id } => {
                if let Some(bar) = self.take(&id) {
                    bar.finish_and_clear();
                }
                self.println(format!(" => CANCELED {}", one_line_label(&id)));
            }
            // Above the spinners of steps still running, not through them.
            other => self.multi.suspend(|| PlainReporter.event(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(stage_name: Option<&str>, text: &str) -> StepId {
        StepId {
            stage: 1,
            stage_name: stage_name.map(str::to_owned),
            step: 2,
            steps: 3,
            text: text.to_owned(),
            line: 7,
        }
    }

    #[test]
    fn plain_lines_name_their_stage_and_step() {
        let build = id(Some("build"), "RUN make");
        let started = plain_line(BuildEvent::StepStarted { id: build.clone() });
        assert_eq!(started, "#1.2 [build 2/3] RUN make");
        let log = plain_line(BuildEvent::StepLog {
            id: build.clone(),
            line: "cc -o app".into(),
        });
        assert_eq!(log, "#1.2 [build 2/3] cc -o app");
        let done = plain_line(BuildEvent::StepFinished {
            id: build,
            elapsed: std::time::Duration::from_millis(1500),
            layer: false,
        });
        assert_eq!(done, "#1.2 DONE 1.50s (no layer)");
        let unnamed = plain_line(BuildEvent::StepLog {
            id: id(None, "RUN x"),
            line: "out".into(),
        });
        assert_eq!(unnamed, "#1.2 [stage-1 2/3] out");
    }

    #[test]
    fn terminal_lines_stay_on_one_line() {
        let heredoc = id(Some("a"), "RUN <<EOF\necho hi\nEOF");
        assert_eq!(one_line_label(&heredoc), "[a 2/3] RUN <<EOF ...");
        assert_eq!(one_line_label(&id(Some("a"), "RUN x")), "[a 2/3] RUN x");
        assert_eq!(
            tty_log_line(&heredoc, "50%\r100% \u{1b}[1;32mdone\u{1b}[0m\tok\r"),
            "    [a 2/3] | 100% done ok"
        );
    }
}
