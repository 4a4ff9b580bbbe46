//! The terminal view, in a real terminal: `rbuild build` runs in a tmux pane (120x40,
//! a private tmux server per test, its socket in a temporary directory) and the screen is read with `capture-pane`, polled
//! until what a test waits for shows (no sleeps as synchronisation). A pull is caught
//! half-way by a proxy that holds the second half of the base's largest blob until the
//! test has seen its byte bar; a RUN waits for a file the test creates once it has seen
//! the step's output live.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::pushpull::base;
use crate::registry::{available, Fault, FaultProxy, Registry, Rule};
use crate::support::{busybox, have, rbuild_in, run_ok, TestContext};

/// How long a test waits for the screen to show something (CI runs on busy cores).
const PATIENCE: Duration = Duration::from_secs(180);

/// A tmux server of its own (its socket in a temporary directory), running one command
/// in a 120x40 pane; killed on drop.
struct Pane {
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Pane {
    /// Runs `script` under `sh` in a new pane. The shell traps SIGINT (a Ctrl-C is for
    /// rbuild, not for it: it goes on to print `DONE-<exit code>`), then waits.
    fn run(script: &str) -> Pane {
        let dir = tempfile::tempdir().expect("temp dir");
        let shell = format!("trap true INT; {script}; echo DONE-$?; exec sleep 3600");
        let pane = Pane {
            socket: dir.path().join("tmux"),
            _dir: dir,
        };
        pane.tmux(&[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "sh",
            "-c",
            &shell,
        ]);
        pane
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env("TERM", "xterm")
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen and the lines scrolled off it. Wrapped lines are not joined: the
    /// live view fills each of its lines to the width and lets the terminal wrap.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-S", "-200"])
    }

    /// [`Pane::screen`] with wrapped lines joined: the printed lines once the live view
    /// is gone (an error message may be wider than the screen).
    fn joined_screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-200"])
    }

    /// Polls the screen until `done` holds; panics with the screen after [`PATIENCE`].
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the command to end; the screen then (with its `DONE-<code>`), wrapped
    /// lines joined.
    fn wait_done(&self) -> String {
        self.wait_for("the command to end", |s| {
            s.lines().any(|l| l.starts_with("DONE-"))
        });
        self.joined_screen()
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// `rbuild --root ROOT build CONTEXT` as a shell command line.
fn build_command(root: &Path, context: &Path) -> String {
    format!(
        "{} --root {} build {}",
        env!("CARGO_BIN_EXE_rbuild"),
        root.display(),
        context.display()
    )
}

/// Whether `line` is the view's header: `[+] Building 1.2s (3/5)`, then what ended it
/// (`[+] Building 1.2s` while the plan is not made yet).
fn is_header(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("[+] Building ") else {
        return false;
    };
    let rest = rest.trim_end();
    if let Some(secs) = rest.strip_suffix('s') {
        return secs.parse::<f64>().is_ok();
    }
    let Some((secs, counts)) = rest.split_once("s (") else {
        return false;
    };
    let counted = counts
        .split_once(')')
        .and_then(|(c, _)| c.split_once('/'))
        .is_some_and(|(done, all)| done.parse::<u32>().is_ok() && all.parse::<u32>().is_ok());
    secs.parse::<f64>().is_ok() && counted
}

/// Whether `line` ends with a duration such as `12.3s`, after a space.
fn ends_with_duration(line: &str) -> bool {
    line.rsplit_once(' ')
        .and_then(|(_, last)| last.strip_suffix('s'))
        .is_some_and(|secs| secs.parse::<f64>().is_ok())
}

/// A byte bar of a blob under way: ` => => sha256:<12 hex> [==>   ] 1.2MB / 3.4MB`.
fn is_byte_bar(line: &str) -> bool {
    line.starts_with(" => => sha256:")
        && line.contains(" [")
        && line.contains("] ")
        && line.contains(" / ")
        && !line.ends_with(" done")
}

/// The digest of the largest layer of stored image `name`.
fn largest_layer(root: &Path, name: &str) -> String {
    let out = rbuild_in(root, &["inspect", name], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect json");
    let layers = v["manifest"]["layers"].as_array().expect("layers");
    let largest = layers
        .iter()
        .max_by_key(|l| l["size"].as_u64().unwrap_or(0))
        .expect("a layer");
    largest["digest"].as_str().expect("digest").to_owned()
}

/// A busybox image `base:1` in `t`'s store, a registry with a fault proxy in front of
/// it, and the digest of the image's largest layer; `None` when the machine lacks what
/// they need.
fn base_behind_a_proxy() -> Option<(TestContext, Registry, FaultProxy, String)> {
    if !available(&[]) || !have("tmux") {
        return None;
    }
    let t = base("base:1")?;
    let reg = Registry::plain();
    let layer = largest_layer(&t.root(), "base:1");
    let proxy = FaultProxy::to(&reg);
    Some((t, reg, proxy, layer))
}

#[test]
fn a_pull_shows_byte_bars_and_a_successful_run_collapses_its_output() {
    let Some((t, reg, proxy, layer)) = base_behind_a_proxy() else {
        return;
    };
    run_ok(
        &t.root(),
        &["push", "base:1", &format!("{}/tty/base:1", reg.host())],
        &[],
    );
    proxy.add(
        Rule::new(Fault::StallBody)
            .method("GET")
            .path_contains(&format!("/blobs/{layer}")),
    );
    // The RUN prints a line, then waits for a file the test makes once it saw it.
    let child = TestContext::new(
        &format!(
            "FROM {}/tty/base:1\n\
             RUN --mount=type=bind,target=/ctx echo live-line; \
             while [ ! -e /ctx/go ]; do sleep 0.1; done; echo after-go\n",
            proxy.host()
        ),
        &[],
    );
    let pane = Pane::run(&build_command(&child.root(), &child.context()));
    let screen = pane.wait_for("a byte bar mid-pull", |s| s.lines().any(is_byte_bar));
    let header = screen.lines().find(|l| l.starts_with("[+] Building"));
    assert!(header.is_some_and(is_header), "the header:\n{screen}");
    assert!(
        screen.contains(&format!(" => pull {}/tty/base:1", proxy.host())),
        "{screen}"
    );
    proxy.resume_stalled();
    let running = pane.wait_for("the RUN's output, live", |s| {
        s.lines().any(|l| l == " => => # live-line")
    });
    assert!(
        running
            .lines()
            .any(|l| l.starts_with(" => [2/2] RUN --mount")),
        "{running}"
    );
    std::fs::write(child.context().join("go"), "").expect("write go");
    let screen = pane.wait_done();
    assert!(screen.contains("DONE-0"), "the build succeeded:\n{screen}");
    let headers: Vec<&str> = screen.lines().filter(|l| l.starts_with("[+] ")).collect();
    assert!(
        headers.len() == 1 && headers[0].ends_with(" (2/2) FINISHED") && is_header(headers[0]),
        "one header, the last frame's:\n{screen}"
    );
    assert!(
        !screen.lines().any(|l| l.starts_with(" => => # ")),
        "a step that succeeded collapses its output:\n{screen}"
    );
    // Durations end at the same column, the last but one of the 120.
    let run = screen
        .lines()
        .find(|l| l.starts_with(" => [2/2] RUN --mount"))
        .unwrap_or_else(|| panic!("the RUN's line:\n{screen}"));
    assert_eq!(run.chars().count(), 119, "{run:?}");
    assert!(ends_with_duration(run), "{run:?}");
    let from = screen
        .lines()
        .find(|l| l.starts_with(" => [1/2] FROM "))
        .unwrap_or_else(|| panic!("the FROM's line:\n{screen}"));
    assert_eq!(from.chars().count(), 119, "{from:?}");
    assert!(ends_with_duration(from), "{from:?}");
    assert!(
        screen.contains(&format!(" => => {}", &layer[..19])),
        "the blob's line stays:\n{screen}"
    );
}

#[test]
fn a_failed_run_keeps_all_its_output_and_the_error_is_printed_once() {
    if !have("tmux") {
        return;
    }
    let Some(t) = busybox(
        "FROM base\nRUN for i in 1 2 3 4 5 6 7 8 9 10; do echo fail-line-$i; done; exit 3\n",
        &[],
    ) else {
        return;
    };
    let pane = Pane::run(&build_command(&t.root(), &t.context()));
    let screen = pane.wait_done();
    assert!(screen.contains("DONE-1"), "the build failed:\n{screen}");
    let header = screen.lines().find(|l| l.starts_with("[+] "));
    assert!(
        header.is_some_and(|h| is_header(h) && h.ends_with(" FAILED")),
        "{screen}"
    );
    let error_line = screen
        .lines()
        .position(|l| l.starts_with(" => ERROR [stage-1 2/2] RUN for i in"))
        .unwrap_or_else(|| panic!("the failed step:\n{screen}"));
    // Every line of its output below it, more than the live view shows.
    let kept: Vec<&str> = screen
        .lines()
        .skip(error_line + 1)
        .take_while(|l| l.starts_with(" => => "))
        .filter(|l| l.starts_with(" => => # fail-line-"))
        .collect();
    let expected: Vec<String> = (1..=10)
        .map(|i| format!(" => => # fail-line-{i}"))
        .collect();
    assert_eq!(kept, expected, "{screen}");
    assert_eq!(
        screen.matches("did not complete successfully").count(),
        1,
        "the error is printed once:\n{screen}"
    );
}

#[test]
fn ctrl_c_leaves_a_clean_screen_and_the_prompt() {
    if !have("tmux") {
        return;
    }
    let Some(t) = busybox("FROM base\nRUN echo sleeping; sleep 60\n", &[]) else {
        return;
    };
    let pane = Pane::run(&build_command(&t.root(), &t.context()));
    pane.wait_for("the RUN sleeping", |s| {
        s.lines().any(|l| l == " => => # sleeping")
    });
    pane.tmux(&["send-keys", "C-c"]);
    let screen = pane.wait_done();
    assert!(screen.contains("DONE-130"), "interrupted:\n{screen}");
    let headers: Vec<&str> = screen.lines().filter(|l| l.starts_with("[+] ")).collect();
    assert!(
        headers.len() == 1 && headers[0].ends_with(" CANCELED"),
        "only the last frame's header, no live one left behind:\n{screen}"
    );
    assert!(
        screen
            .lines()
            .any(|l| l.starts_with(" => CANCELED [stage-1 2/2] RUN echo sleeping")),
        "{screen}"
    );
    // Nothing of the live view is left: no output tail, no spinner glyph.
    assert!(!screen.contains(" => => # sleeping"), "{screen}");
    let spinners = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏', '|', '\\'];
    let tail: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = tail.iter().rev().take(4);
    for line in last {
        assert!(!line.starts_with(spinners), "{screen}");
    }
    assert_eq!(
        tail.last(),
        Some(&"DONE-130"),
        "the shell goes on:\n{screen}"
    );
}

#[test]
fn a_push_shows_a_bar_per_moving_blob_then_a_line_and_nothing_with_q() {
    let Some((t, reg, proxy, layer)) = base_behind_a_proxy() else {
        return;
    };
    // The upload of the largest layer waits, unread, until the test saw its bar.
    proxy.add(Rule::new(Fault::Hold).method("PUT").path_contains(&layer));
    let dest = format!("{}/tty/pushed:1", proxy.host());
    let pane = Pane::run(&format!(
        "{} --root {} push base:1 {dest}",
        env!("CARGO_BIN_EXE_rbuild"),
        t.root().display()
    ));
    let short = &layer[..19];
    let bar = format!(" => {short} [");
    pane.wait_for("the layer's bar", |s| {
        s.lines().any(|l| l.starts_with(&bar))
    });
    proxy.resume_stalled();
    let joined = pane.wait_done();
    assert!(joined.contains("DONE-0"), "pushed:\n{joined}");
    assert!(
        joined.contains(&format!("pushed {dest}: sha256:")),
        "{joined}"
    );
    // indicatif fills its lines to the width: unjoined, trimmed, they are lines again.
    let screen = pane.screen();
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!(" => {short} ")) && l.ends_with(" done")),
        "the bar became a line:\n{screen}"
    );
    assert!(
        !lines.iter().any(|l| l.contains(" [")),
        "no bar left:\n{screen}"
    );
    // Not a terminal: lines; `-q`: the digest only.
    let again = format!("{}/tty/again:1", reg.host());
    let out = rbuild_in(&t.root(), &["push", "-q", "base:1", &again], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "-q prints nothing"
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sha256:"));
}
