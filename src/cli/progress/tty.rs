//! Drawing the board on a terminal. Events only change the [`Board`]; a ticker thread
//! redraws it ten times a second (a chatty step costs no drawing per line) as the one
//! multi-line message of an indicatif bar, which rewrites those lines in place. At the
//! end the live lines are cleared and the last frame, every entry and the outcome, is
//! printed as ordinary lines: what stays on the screen never moves or spins again,
//! whether the build finished, failed or was interrupted.
//!
//! Nothing here hides the cursor, so a process that dies however it dies leaves the
//! terminal usable. While the view is live the terminal does not echo control keys:
//! the `^C` of a Ctrl-C would push the view down a line (its last line fills the
//! width), and the last frame would then leave a stale header above itself. Only
//! `ECHOCTL` is turned off (the key still interrupts), and put back with the last
//! frame; a process killed outright leaves just that off.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions, Termios};

use super::board::{Board, Screen};
use super::{write_err, Outcome};
use crate::executor::{BuildEvent, Reporter};

/// How often the live view is redrawn (the times in it move).
const TICK: Duration = Duration::from_millis(100);

/// The live view of this process, if one is drawn, for [`abandon_live`].
static LIVE: Mutex<Option<Weak<View>>> = Mutex::new(None);

/// The terminal reporter: the view and the thread that redraws it.
pub struct TtyReporter {
    view: Arc<View>,
    ticker: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
}

/// The board and where it is drawn.
struct View {
    board: Mutex<Board>,
    bar: ProgressBar,
    started: Instant,
    color: bool,
    /// The last frame is printed: nothing is drawn after it.
    over: AtomicBool,
    /// The terminal's modes before the view changed them.
    saved_modes: Option<Termios>,
}

impl TtyReporter {
    /// Starts the view and its ticker.
    pub fn start() -> TtyReporter {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(20));
        if let Ok(style) = ProgressStyle::with_template("{msg}") {
            bar.set_style(style);
        }
        let view = Arc::new(View {
            board: Mutex::new(Board::default()),
            bar,
            started: Instant::now(),
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            over: AtomicBool::new(false),
            saved_modes: quiet_control_keys(),
        });
        *lock(&LIVE) = Some(Arc::downgrade(&view));
        let (stop, stopped) = mpsc::channel::<()>();
        let drawn = Arc::clone(&view);
        let ticker = std::thread::Builder::new()
            .name("progress".to_owned())
            .spawn(move || {
                // Disconnected (the sender dropped): the view is over.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    drawn.draw();
                }
            })
            .ok()
            .map(|thread| (stop, thread));
        TtyReporter {
            view,
            ticker: Mutex::new(ticker),
        }
    }

    /// Stops the ticker and prints the last frame.
    pub fn finish(self, outcome: Outcome) {
        self.end(outcome);
    }

    fn end(&self, outcome: Outcome) {
        if let Some((stop, thread)) = lock(&self.ticker).take() {
            drop(stop);
            let _ = thread.join();
        }
        self.view.last_frame(outcome);
    }
}

impl Drop for TtyReporter {
    /// A view dropped without [`TtyReporter::finish`] (an early error) is over too.
    fn drop(&mut self) {
        self.end(Outcome::Failed);
    }
}

impl Reporter for TtyReporter {
    fn event(&self, event: BuildEvent) {
        let at = self.view.started.elapsed();
        lock(&self.view.board).apply(event, at);
    }
}

impl View {
    /// The live lines, fitted to the terminal as it is now (it may have been resized).
    fn draw(&self) {
        // Under the board's lock, as the last frame: nothing is drawn after it.
        let board = lock(&self.board);
        if self.over.load(Ordering::SeqCst) {
            return;
        }
        let (rows, cols) = console::Term::stderr().size();
        let screen = Screen {
            width: usize::from(cols),
            height: Some(usize::from(rows)),
            color: self.color,
        };
        let text = board.lines(self.started.elapsed(), &screen).join("\n");
        self.bar.set_message(text);
    }

    /// Clears the live lines and prints the whole board as it ended, once.
    fn last_frame(&self, outcome: Outcome) {
        let mut board = lock(&self.board);
        if self.over.swap(true, Ordering::SeqCst) {
            return;
        }
        let (_, cols) = console::Term::stderr().size();
        let screen = Screen {
            width: usize::from(cols),
            height: None,
            color: self.color,
        };
        board.end(outcome, self.started.elapsed());
        self.bar.finish_and_clear();
        if let Some(modes) = &self.saved_modes {
            let _ = tcsetattr(std::io::stderr(), OptionalActions::Now, modes);
        }
        write_err(&board.lines(Duration::ZERO, &screen).join("\n"));
    }
}

/// Turns off the echo of control keys on the terminal (stderr); returns the modes to
/// put back, `None` when nothing was changed.
fn quiet_control_keys() -> Option<Termios> {
    let saved = tcgetattr(std::io::stderr()).ok()?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHOCTL);
    tcsetattr(std::io::stderr(), OptionalActions::Now, &quiet).ok()?;
    Some(saved)
}

/// Ends the live view of this process, if any, as an interrupted build: its last frame
/// replaces the live lines. For a process about to exit without unwinding.
pub fn abandon_live() {
    let view = lock(&LIVE).as_ref().and_then(Weak::upgrade);
    if let Some(view) = view {
        view.last_frame(Outcome::Interrupted);
    }
}

/// A lock that a panicking holder did not make unusable: the view is best effort.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
