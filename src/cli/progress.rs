//! Rendering build events: a live view on a terminal (indicatif), plain lines in CI,
//! JSON lines for tools, or nothing. Everything goes to stderr; only data (digests,
//! `--iidfile`) goes to stdout.

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

fn label(id: &StepId) -> String {
    let stage = id
        .stage_name
        .clone()
        .unwrap_or_else(|| format!("stage-{}", id.stage));
    format!("[{stage} {}/{}] {}", id.step, id.steps, id.text)
}

fn write_err(text: &str) {
    let mut err = std::io::stderr().lock();
    // Progress is best effort: a closed stderr must not fail the build.
    let _ = writeln!(err, "{text}");
}

/// Plain lines, as `docker build --progress=plain` prints them.
struct PlainReporter;

impl Reporter for PlainReporter {
    fn event(&self, event: BuildEvent) {
        let line = match event {
            BuildEvent::StepStarted { id } => format!("#{}.{} {}", id.stage, id.step, label(&id)),
            BuildEvent::StepCached { id } => format!("#{}.{} CACHED", id.stage, id.step),
            BuildEvent::StepLog { id, line } => format!("#{}.{} {line}", id.stage, id.step),
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
                format!("#{}.{} ERROR: {error}", id.stage, id.step)
            }
            BuildEvent::ImageWritten { name, digest } => match name {
                Some(n) => format!("naming to {n} done ({digest})"),
                None => format!("writing image {digest} done"),
            },
            BuildEvent::Note { message } => message,
        };
        write_err(&line);
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

/// A spinner per running step, finished lines kept above.
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
}

impl Reporter for TtyReporter {
    fn event(&self, event: BuildEvent) {
        match event {
            BuildEvent::StepStarted { id } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                if let Ok(style) = ProgressStyle::with_template(" {spinner} {msg} {elapsed}") {
                    bar.set_style(style);
                }
                bar.set_message(label(&id));
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
                if let Ok(mut bars) = self.bars.lock() {
                    bars.push((Self::key(&id), bar));
                }
            }
            BuildEvent::StepCached { id } => {
                let _ = self.multi.println(format!(" => CACHED {}", label(&id)));
            }
            BuildEvent::StepLog { id, line } => {
                let _ = self
                    .multi
                    .println(format!("    {} | {line}", Self::key(&id)));
            }
            BuildEvent::StepFinished { id, elapsed, .. } => {
                if let Some(bar) = self.take(&id) {
                    bar.finish_and_clear();
                }
                let _ =
                    self.multi
                        .println(format!(" => {} {:.1}s", label(&id), elapsed.as_secs_f64()));
            }
            BuildEvent::StepFailed { id, error } => {
                if let Some(bar) = self.take(&id) {
                    bar.finish_and_clear();
                }
                let _ = self
                    .multi
                    .println(format!(" => ERROR {}: {error}", label(&id)));
            }
            other => PlainReporter.event(other),
        }
    }
}
