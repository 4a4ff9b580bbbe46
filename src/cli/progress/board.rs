//! The terminal view's model: the build as a header and one entry per step, pull,
//! layer unpacked, export and note, turned into the lines a terminal of a given width
//! and height shows. No terminal I/O here (`tty.rs` draws), so what is shown is
//! unit-tested: the header's counts, durations right-aligned, a step's output shown
//! while it runs, collapsed when it succeeds, kept when it fails.
//!
//! ```text
//! [+] Building 3.4s (3/5)
//!  => pull 127.0.0.1:5000/busybox:latest                          1.2s
//!  => => sha256:b08a42b53917 [=========>          ] 512.0kB / 1.03MB
//!  => [1/5] FROM 127.0.0.1:5000/busybox                           0.1s
//!  => CACHED [2/5] COPY . /src
//!  => [3/5] ENV A=1
//!  => [4/5] RUN make                                              2.0s
//!  => => # cc -c main.c
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use super::{clean_line, one_line_label, short_digest, Outcome};
use crate::cli::store_cmds::human_size;
use crate::executor::{BuildEvent, StepId};

/// Output lines shown below a running step.
pub const LIVE_LINES: usize = 6;
/// Output lines of a step kept in case it fails; earlier ones are only counted.
pub const KEPT_LINES: usize = 500;
/// Width of a byte progress bar, brackets excluded.
const BAR_WIDTH: usize = 20;

/// The screen the board is drawn on.
#[derive(Debug, Clone, Copy)]
pub struct Screen {
    /// Columns.
    pub width: usize,
    /// Rows the live view may take; `None` for the last frame, printed in full.
    pub height: Option<usize>,
    /// ANSI colours (not with `NO_COLOR`); nothing depends on them to be understood.
    pub color: bool,
}

/// What an entry stands for, to find it again when its next event comes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Step {
        stage: usize,
        step: usize,
    },
    Pull(String),
    Unpack(String),
    Export(String),
    /// An image written or named.
    Image,
    /// A note, shown as it is.
    Note,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Running {
        since: Duration,
    },
    /// Over; `took` is shown when there is one.
    Done {
        took: Option<Duration>,
    },
    /// Taken from the cache: the store's, or `from` an imported one.
    Cached {
        from: Option<String>,
    },
    Failed {
        took: Duration,
    },
    Cancelled {
        took: Duration,
    },
}

#[derive(Debug)]
struct Blob {
    digest: String,
    done: u64,
    total: u64,
}

#[derive(Debug)]
struct Entry {
    key: Key,
    label: String,
    state: State,
    /// Why a step was not taken from the cache (unless only "parent step missed").
    miss: Option<String>,
    /// The last [`KEPT_LINES`] output lines, and how many came before them.
    log: VecDeque<String>,
    dropped: usize,
    /// The blobs of a pull that moved.
    blobs: Vec<Blob>,
}

impl Entry {
    fn new(key: Key, label: String, state: State) -> Entry {
        Entry {
            key,
            label,
            state,
            miss: None,
            log: VecDeque::new(),
            dropped: 0,
            blobs: Vec::new(),
        }
    }

    fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// Ends a running entry as `end(time it took)`.
    fn stop(&mut self, at: Duration, end: impl FnOnce(Duration) -> State) {
        if let State::Running { since } = self.state {
            self.state = end(at.saturating_sub(since));
        }
    }

    fn push_log(&mut self, line: String) {
        if self.log.len() == KEPT_LINES {
            self.log.pop_front();
            self.dropped += 1;
        }
        self.log.push_back(line);
    }
}

/// The state of the whole build, as the terminal shows it.
#[derive(Debug, Default)]
pub struct Board {
    stages: usize,
    planned: usize,
    entries: Vec<Entry>,
    ended: Option<(Duration, Outcome)>,
}

impl Board {
    /// Takes in `event`, which happened `at` (since the view started).
    pub fn apply(&mut self, event: BuildEvent, at: Duration) {
        match event {
            BuildEvent::Planned { stages, steps } => {
                self.stages = stages;
                self.planned = steps;
            }
            BuildEvent::StepStarted { id } => {
                self.step(&id, at).state = State::Running { since: at };
            }
            BuildEvent::StepMetadata { id } => {
                self.step(&id, at).state = State::Done { took: None };
            }
            BuildEvent::StepCached { id, from } => {
                self.step(&id, at).state = State::Cached { from }
            }
            BuildEvent::CacheMiss { id, reasons } => {
                if reasons.iter().any(|r| r != "parent step missed") {
                    self.step(&id, at).miss = Some(reasons.join("; "));
                }
            }
            BuildEvent::StepLog { id, line } => self.step(&id, at).push_log(clean_line(&line)),
            BuildEvent::StepFinished { id, elapsed, .. } => {
                self.step(&id, at).state = State::Done {
                    took: Some(elapsed),
                };
            }
            BuildEvent::StepFailed { id, .. } => {
                self.step(&id, at).stop(at, |took| State::Failed { took });
            }
            BuildEvent::StepCancelled { id } => {
                self.step(&id, at)
                    .stop(at, |took| State::Cancelled { took });
            }
            other => self.apply_other(other, at),
        }
    }

    /// The events that are not a step's.
    fn apply_other(&mut self, event: BuildEvent, at: Duration) {
        let running = State::Running { since: at };
        match event {
            BuildEvent::PullStarted { reference } => {
                let label = format!("pull {reference}");
                self.entries
                    .push(Entry::new(Key::Pull(reference), label, running));
            }
            BuildEvent::BlobProgress {
                digest,
                done,
                total,
            } => self.blob_progress(digest, done, total),
            BuildEvent::PullFinished {
                reference, elapsed, ..
            } => self.finish(&Key::Pull(reference), elapsed),
            BuildEvent::LayerUnpacking { digest, size } => {
                let label = format!("extracting {} {}", short_digest(&digest), human_size(size));
                self.entries
                    .push(Entry::new(Key::Unpack(digest), label, running));
            }
            BuildEvent::LayerUnpacked { digest, elapsed } => {
                self.finish(&Key::Unpack(digest), elapsed);
            }
            BuildEvent::ExportStarted { what } => {
                let label = format!("exporting {what}");
                self.entries
                    .push(Entry::new(Key::Export(what), label, running));
            }
            BuildEvent::ExportFinished { what, elapsed } => {
                self.finish(&Key::Export(what), elapsed);
            }
            BuildEvent::ImageWritten { name, id, .. } => {
                let label = match name {
                    Some(name) => format!("naming to {name} ({})", short_digest(&id)),
                    None => format!("writing image {id}"),
                };
                let done = State::Done { took: None };
                self.entries.push(Entry::new(Key::Image, label, done));
            }
            BuildEvent::Note { message } => {
                let done = State::Done { took: None };
                for line in message.lines() {
                    self.entries
                        .push(Entry::new(Key::Note, clean_line(line), done.clone()));
                }
            }
            // Steps are `apply`'s.
            _ => {}
        }
    }

    /// The build is over: nothing runs any more. An entry still running failed with
    /// the build (a pull the registry refused), else it was stopped.
    pub fn end(&mut self, outcome: Outcome, at: Duration) {
        for entry in &mut self.entries {
            entry.stop(at, |took| match outcome {
                Outcome::Failed => State::Failed { took },
                _ => State::Cancelled { took },
            });
        }
        self.ended = Some((at, outcome));
    }

    /// The entry of step `id`, added (running since `at`) when it is new.
    fn step(&mut self, id: &StepId, at: Duration) -> &mut Entry {
        let key = Key::Step {
            stage: id.stage,
            step: id.step,
        };
        let pos = match self.entries.iter().rposition(|e| e.key == key) {
            Some(pos) => pos,
            None => {
                let label = one_line_label(id, self.stages);
                let running = State::Running { since: at };
                self.entries.push(Entry::new(key, label, running));
                self.entries.len() - 1
            }
        };
        &mut self.entries[pos]
    }

    fn finish(&mut self, key: &Key, elapsed: Duration) {
        if let Some(entry) = self.entries.iter_mut().rev().find(|e| e.key == *key) {
            entry.state = State::Done {
                took: Some(elapsed),
            };
        }
    }

    /// Bytes of a blob of the pull under way (pulls happen one at a time, while the
    /// build is planned).
    fn blob_progress(&mut self, digest: String, done: u64, total: u64) {
        let pull = self
            .entries
            .iter_mut()
            .rev()
            .find(|e| matches!(e.key, Key::Pull(_)) && e.running());
        let Some(pull) = pull else { return };
        match pull.blobs.iter_mut().find(|b| b.digest == digest) {
            Some(blob) => (blob.done, blob.total) = (done, total),
            None => pull.blobs.push(Blob {
                digest,
                done,
                total,
            }),
        }
    }

    /// `[+] Building 3.4s (3/5)`: the time since the start, the steps over (done,
    /// cached or metadata) of all the steps, once the plan says how many (`FROM`
    /// images are pulled before); the outcome once the build ended.
    fn header(&self, now: Duration) -> String {
        let steps = self
            .entries
            .iter()
            .filter(|e| matches!(e.key, Key::Step { .. }));
        let (seen, done) = steps.fold((0, 0), |(seen, done), e| {
            let over = matches!(e.state, State::Done { .. } | State::Cached { .. });
            (seen + 1, done + usize::from(over))
        });
        let total = self.planned.max(seen);
        let outcome = match self.ended {
            Some((_, Outcome::Finished)) => " FINISHED",
            Some((_, Outcome::Failed)) => " FAILED",
            Some((_, Outcome::Interrupted)) => " CANCELED",
            None => "",
        };
        let secs = now.as_secs_f64();
        if total == 0 {
            return format!("[+] Building {secs:.1}s{outcome}");
        }
        format!("[+] Building {secs:.1}s ({done}/{total}){outcome}")
    }

    /// The lines to show `now`: the header, then every entry; a live view taller than
    /// the screen leaves out the oldest entries that are over, then the oldest lines.
    pub fn lines(&self, now: Duration, screen: &Screen) -> Vec<String> {
        let now = self.ended.map_or(now, |(at, _)| at);
        let mut blocks: Vec<(bool, Vec<String>)> = self
            .entries
            .iter()
            .map(|e| (e.running(), entry_lines(e, now, screen)))
            .collect();
        let mut lines = vec![self.header(now)];
        match screen.height {
            Some(height) => {
                // The header's line, and one for the cursor below the view.
                let room = height.saturating_sub(2);
                let mut total: usize = blocks.iter().map(|(_, b)| b.len()).sum();
                while total > room {
                    let Some(pos) = blocks.iter().position(|(running, _)| !running) else {
                        break;
                    };
                    total -= blocks.remove(pos).1.len();
                }
                let rest: Vec<String> = blocks.into_iter().flat_map(|(_, b)| b).collect();
                lines.extend(rest.into_iter().rev().take(room).rev());
            }
            None => lines.extend(blocks.into_iter().flat_map(|(_, b)| b)),
        }
        lines
    }
}

/// The lines of one entry: its line, then what it has below it (why it missed the
/// cache, its blobs, its last output while it runs, all of it kept if it failed).
fn entry_lines(entry: &Entry, now: Duration, screen: &Screen) -> Vec<String> {
    let room = screen.width.saturating_sub(1);
    let (word, took) = match &entry.state {
        State::Running { since } => (String::new(), Some(now.saturating_sub(*since))),
        State::Done { took } => (String::new(), *took),
        State::Cached { from: None } => ("CACHED ".to_owned(), None),
        State::Cached { from: Some(from) } => (format!("CACHED ({from}) "), None),
        State::Failed { took } => ("ERROR ".to_owned(), Some(*took)),
        State::Cancelled { took } => ("CANCELED ".to_owned(), Some(*took)),
    };
    let right = took.map_or_else(String::new, |t| format!("{:.1}s", t.as_secs_f64()));
    let head = match entry.key {
        Key::Note => fit(&entry.label, "", room),
        _ => fit(&format!(" => {word}{}", entry.label), &right, room),
    };
    let head = match (screen.color, word.as_str()) {
        (true, "ERROR ") => head.replacen("ERROR", "\x1b[31mERROR\x1b[0m", 1),
        (true, "CANCELED ") => head.replacen("CANCELED", "\x1b[33mCANCELED\x1b[0m", 1),
        _ => head,
    };
    let mut lines = vec![head];
    if let Some(miss) = &entry.miss {
        lines.push(fit(&format!(" => => cache miss: {miss}"), "", room));
    }
    lines.extend(entry.blobs.iter().map(|b| blob_line(b, room)));
    let dim = |line: String| match screen.color {
        true => format!("\x1b[2m{line}\x1b[0m"),
        false => line,
    };
    let output = |line: &String| fit(&format!(" => => # {line}"), "", room);
    match entry.state {
        State::Running { .. } => {
            let skip = entry.log.len().saturating_sub(LIVE_LINES);
            lines.extend(entry.log.iter().skip(skip).map(output).map(dim));
        }
        State::Failed { .. } => {
            if entry.dropped > 0 {
                let note = format!(
                    " => => # ... {} earlier lines not shown (--progress=plain shows every line)",
                    entry.dropped
                );
                lines.push(fit(&note, "", room));
            }
            lines.extend(entry.log.iter().map(output));
        }
        // Collapsed: a step that succeeded keeps only its line.
        _ => {}
    }
    lines
}

/// ` => => sha256:b08a42b53917 [=====>     ] 512.0kB / 1.03MB`, or `... 1.03MB done`.
fn blob_line(blob: &Blob, room: usize) -> String {
    let name = format!(" => => {}", short_digest(&blob.digest));
    if blob.total > 0 && blob.done >= blob.total {
        return fit(&name, &format!("{} done", human_size(blob.total)), room);
    }
    let filled = match blob.total {
        0 => 0,
        total => {
            let part = u128::from(blob.done) * BAR_WIDTH as u128 / u128::from(total);
            usize::try_from(part).unwrap_or(BAR_WIDTH).min(BAR_WIDTH)
        }
    };
    let bar = format!(
        "[{}>{}]",
        "=".repeat(filled),
        " ".repeat(BAR_WIDTH - filled)
    );
    let sizes = format!("{} / {}", human_size(blob.done), human_size(blob.total));
    fit(&format!("{name} {bar}"), &sizes, room)
}

/// `left` and `right` on one line of `room` columns: `right` at the right edge, `left`
/// cut (with `…`) where both would not fit with a space between them.
fn fit(left: &str, right: &str, room: usize) -> String {
    let right_width = console::measure_text_width(right);
    if right.is_empty() {
        return console::truncate_str(left, room, "…").into_owned();
    }
    let left = console::truncate_str(left, room.saturating_sub(right_width + 1), "…");
    let pad = room.saturating_sub(console::measure_text_width(&left) + right_width);
    format!("{left}{}{right}", " ".repeat(pad.max(1)))
}

#[cfg(test)]
#[path = "board_tests.rs"]
mod tests;
