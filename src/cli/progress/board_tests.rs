use std::time::Duration;

use super::*;

const PLAIN: Screen = Screen {
    width: 60,
    height: None,
    color: false,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `left`, then `right` ending in column 59 of [`PLAIN`] (the last one stays free).
fn aligned(left: &str, right: &str) -> String {
    aligned_in(59, left, right)
}

fn aligned_in(room: usize, left: &str, right: &str) -> String {
    format!("{left:<width$}{right}", width = room - right.len())
}

fn step(step: usize, text: &str) -> StepId {
    StepId {
        stage: 0,
        stage_name: None,
        step,
        steps: 3,
        text: text.to_owned(),
        line: step + 1,
    }
}

/// A one-stage build of `FROM busybox`, `ENV A=1`, `RUN make`, `COPY . /`: the FROM
/// done, the ENV shown, the RUN running with `output` lines so far.
fn building(output: usize) -> Board {
    let mut board = Board::default();
    let events = [
        BuildEvent::Planned {
            stages: 1,
            steps: 4,
        },
        BuildEvent::StepStarted {
            id: step(0, "FROM busybox"),
        },
        BuildEvent::StepFinished {
            id: step(0, "FROM busybox"),
            elapsed: ms(100),
            layer: false,
            commit: None,
            patched: None,
        },
        BuildEvent::StepMetadata {
            id: step(1, "ENV A=1"),
        },
        BuildEvent::StepStarted {
            id: step(2, "RUN make"),
        },
    ];
    for event in events {
        board.apply(event, ms(200));
    }
    for n in 1..=output {
        let line = format!("line {n}");
        board.apply(
            BuildEvent::StepLog {
                id: step(2, "RUN make"),
                line,
            },
            ms(300),
        );
    }
    board
}

#[test]
fn the_header_counts_steps_done_of_all_steps_and_says_how_it_ended() {
    let mut board = building(0);
    assert_eq!(board.lines(ms(1500), &PLAIN)[0], "[+] Building 1.5s (2/4)");
    let finished = BuildEvent::StepFinished {
        id: step(2, "RUN make"),
        elapsed: ms(900),
        layer: true,
        commit: None,
        patched: None,
    };
    board.apply(finished, ms(1100));
    board.apply(
        BuildEvent::StepCached {
            id: step(3, "COPY . /"),
            from: None,
        },
        ms(1100),
    );
    board.end(Outcome::Finished, ms(2000));
    // The time stops with the build.
    assert_eq!(
        board.lines(ms(9000), &PLAIN)[0],
        "[+] Building 2.0s (4/4) FINISHED"
    );
}

#[test]
fn steps_are_numbered_from_the_from_and_durations_are_right_aligned() {
    let board = building(0);
    let lines = board.lines(ms(1500), &PLAIN);
    assert_eq!(
        lines[1..],
        [
            aligned(" => [1/4] FROM busybox", "0.1s"),
            " => [2/4] ENV A=1".to_owned(),
            aligned(" => [3/4] RUN make", "1.3s"),
        ]
    );
    // The last column stays free: a full line would wrap on some terminals.
    assert!(lines.iter().all(|l| l.chars().count() <= 59), "{lines:#?}");
    let narrow = Screen { width: 20, ..PLAIN };
    let lines = board.lines(ms(1500), &narrow);
    assert_eq!(lines[1], " => [1/4] FRO… 0.1s");
}

#[test]
fn a_running_step_shows_its_last_lines_and_collapses_when_it_succeeds() {
    let mut board = building(8);
    let lines = board.lines(ms(400), &PLAIN);
    let output: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains(" # "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        output,
        [
            " => => # line 3",
            " => => # line 4",
            " => => # line 5",
            " => => # line 6",
            " => => # line 7",
            " => => # line 8"
        ]
    );
    let finished = BuildEvent::StepFinished {
        id: step(2, "RUN make"),
        elapsed: ms(900),
        layer: true,
        commit: None,
        patched: None,
    };
    board.apply(finished, ms(1100));
    let lines = board.lines(ms(1200), &PLAIN);
    assert!(!lines.iter().any(|l| l.contains("line ")), "{lines:#?}");
    assert_eq!(lines.len(), 4, "{lines:#?}");
}

#[test]
fn a_failed_step_keeps_all_its_output() {
    let mut board = building(8);
    let failed = BuildEvent::StepFailed {
        id: step(2, "RUN make"),
        error: "exit code: 2".into(),
    };
    board.apply(failed, ms(1200));
    board.end(Outcome::Failed, ms(1300));
    let lines = board.lines(ms(1300), &PLAIN);
    assert_eq!(lines[0], "[+] Building 1.3s (2/4) FAILED");
    assert_eq!(lines[3], aligned(" => ERROR [3/4] RUN make", "1.0s"));
    let output: Vec<&String> = lines.iter().filter(|l| l.contains(" # line")).collect();
    assert_eq!(output.len(), 8, "{lines:#?}");
    // The error itself is the final report's, printed once.
    assert!(!lines.iter().any(|l| l.contains("exit code")), "{lines:#?}");
}

#[test]
fn a_long_failing_log_keeps_its_end_and_says_what_was_left_out() {
    let mut board = building(KEPT_LINES + 3);
    let failed = BuildEvent::StepFailed {
        id: step(2, "RUN make"),
        error: "exit code: 2".into(),
    };
    board.apply(failed, ms(1200));
    let lines = board.lines(ms(1300), &PLAIN);
    let wide = Screen {
        width: 200,
        ..PLAIN
    };
    let note = &board.lines(ms(1300), &wide)[4];
    assert!(note.contains("3 earlier lines not shown"), "{note}");
    assert_eq!(lines.last().map(String::as_str), Some(" => => # line 503"));
    assert!(lines.iter().any(|l| l == " => => # line 4"));
    assert!(!lines.iter().any(|l| l == " => => # line 3"));
}

#[test]
fn an_interrupted_build_leaves_nothing_running() {
    let mut board = building(2);
    board.end(Outcome::Interrupted, ms(700));
    let lines = board.lines(ms(5000), &PLAIN);
    assert_eq!(lines[0], "[+] Building 0.7s (2/4) CANCELED");
    assert_eq!(lines[3], aligned(" => CANCELED [3/4] RUN make", "0.5s"));
    assert!(!lines.iter().any(|l| l.contains(" # ")), "{lines:#?}");
}

#[test]
fn a_pull_shows_a_byte_bar_per_blob() {
    let mut board = Board::default();
    let reference = "127.0.0.1:5000/busybox:latest".to_owned();
    let digest = format!("sha256:{}", "ab".repeat(32));
    board.apply(
        BuildEvent::PullStarted {
            reference: reference.clone(),
        },
        ms(0),
    );
    let progress = |done| BuildEvent::BlobProgress {
        digest: digest.clone(),
        done,
        total: 2_000_000,
    };
    board.apply(progress(500_000), ms(100));
    let wide = Screen { width: 80, ..PLAIN };
    let lines = board.lines(ms(300), &wide);
    // No count before the plan is made.
    assert_eq!(lines[0], "[+] Building 0.3s");
    assert_eq!(
        lines[1..],
        [
            aligned_in(79, " => pull 127.0.0.1:5000/busybox:latest", "0.3s"),
            aligned_in(
                79,
                " => => sha256:abababababab [=====>               ]",
                "500kB / 2MB"
            ),
        ]
    );
    board.apply(progress(2_000_000), ms(400));
    let pulled = BuildEvent::PullFinished {
        reference,
        digest: "sha256:cd".into(),
        blobs: 1,
        bytes: 2_000_000,
        elapsed: ms(450),
    };
    board.apply(pulled, ms(450));
    let lines = board.lines(ms(500), &PLAIN);
    assert_eq!(
        lines[1..],
        [
            aligned(" => pull 127.0.0.1:5000/busybox:latest", "0.5s"),
            aligned(" => => sha256:abababababab", "2MB done"),
        ]
    );
}

#[test]
fn a_live_view_taller_than_the_screen_drops_finished_entries_first() {
    let mut board = building(3);
    for n in 0..20 {
        let message = format!("note {n}");
        board.apply(BuildEvent::Note { message }, ms(300));
    }
    let screen = Screen {
        height: Some(10),
        ..PLAIN
    };
    let lines = board.lines(ms(400), &screen);
    assert_eq!(lines.len(), 9, "{lines:#?}");
    assert_eq!(lines[0], "[+] Building 0.4s (2/4)");
    // The running step and its output stay; the newest finished entries fill the rest.
    assert!(
        lines.iter().any(|l| l.starts_with(" => [3/4] RUN make")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l == " => => # line 3"), "{lines:#?}");
    assert_eq!(lines.last().map(String::as_str), Some("note 19"));
    assert!(!lines.iter().any(|l| l.contains("FROM")), "{lines:#?}");
}

#[test]
fn colour_only_adds_to_what_the_text_says() {
    let mut board = building(1);
    let colored = Screen {
        color: true,
        ..PLAIN
    };
    let lines = board.lines(ms(400), &colored);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("\x1b[2m => => # line 1\x1b[0m")
    );
    let failed = BuildEvent::StepFailed {
        id: step(2, "RUN make"),
        error: "exit code: 2".into(),
    };
    board.apply(failed, ms(500));
    let lines = board.lines(ms(600), &colored);
    assert!(
        lines[3].starts_with(" => \x1b[31mERROR\x1b[0m [3/4]"),
        "{lines:#?}"
    );
}

#[test]
fn cache_misses_say_why_unless_only_the_parent_missed() {
    let mut board = building(0);
    let miss = |n, reason: &str| BuildEvent::CacheMiss {
        id: step(n, "COPY . /"),
        reasons: vec![reason.to_owned()],
    };
    board.apply(miss(3, "file a.txt changed (content)"), ms(300));
    let lines = board.lines(ms(400), &PLAIN);
    assert_eq!(
        lines.last().map(String::as_str),
        Some(" => => cache miss: file a.txt changed (content)")
    );
    let mut board = building(0);
    board.apply(miss(3, "parent step missed"), ms(300));
    let lines = board.lines(ms(400), &PLAIN);
    assert!(
        !lines.iter().any(|l| l.contains("cache miss")),
        "{lines:#?}"
    );
}

#[test]
fn what_still_runs_when_the_build_fails_failed_with_it() {
    let mut board = Board::default();
    let reference = "127.0.0.1:5000/missing:1".to_owned();
    board.apply(BuildEvent::PullStarted { reference }, ms(0));
    board.end(Outcome::Failed, ms(300));
    let lines = board.lines(ms(300), &PLAIN);
    assert_eq!(
        lines,
        [
            "[+] Building 0.3s FAILED".to_owned(),
            aligned(" => ERROR pull 127.0.0.1:5000/missing:1", "0.3s"),
        ]
    );
}

#[test]
fn a_hit_from_an_imported_cache_names_it() {
    let mut board = Board::default();
    board.apply(
        BuildEvent::StepCached {
            id: step(2, "RUN make"),
            from: Some("registry r/app:c".to_owned()),
        },
        ms(10),
    );
    let lines = board.lines(ms(20), &PLAIN);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(" => CACHED (registry r/app:c) [stage-0 3/4] RUN make")),
        "{lines:#?}"
    );
}
