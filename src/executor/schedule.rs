//! Running a dependency graph of jobs (the stages a target needs) on a bounded number
//! of threads.
//!
//! [`run`] starts a job as soon as every job it depends on has finished, at most
//! `limit` at once, picking among the ready ones in the order given: with a limit of
//! one the jobs run exactly in that order, on the calling thread. A job reads the
//! values of the jobs it depends on through the shared [`Slots`] (each set once, when
//! its job finishes, before any dependent starts). A job may also name jobs it only
//! *reads* (a stage's `COPY --from`): it starts without them and [`Slots::wait`]s for
//! one when it needs it, as BuildKit runs a stage's steps up to the first that reads
//! another stage. That cannot deadlock: every job is listed after what it depends on
//! or reads, and a free thread always takes the first ready job, so the first
//! unfinished job is always ready and, once running, never waits.
//!
//! On the first failure (an error or a panic) the cancel flag is set, so running jobs
//! stop at their next check, no new job starts, and the running ones are waited for;
//! [`run`] then returns that first failure: the ones that follow (typically the
//! `interrupted` of the jobs the flag stopped) are consequences, not causes. A flag set
//! from outside (Ctrl-C) stops the schedule the same way.
//!
//! Owns no build logic: what a job does is the caller's closure.

use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its slot in the outputs.
    pub id: usize,
    /// Jobs that must finish before it starts.
    pub deps: Vec<usize>,
    /// Jobs it may wait for while it runs ([`Slots::wait`]).
    pub reads: Vec<usize>,
}

/// The values of finished jobs, as a running job sees them.
pub struct Slots<'a, T> {
    values: &'a [OnceLock<T>],
    /// Notified whenever a job ends (its value set, or the schedule stopping).
    signal: &'a (Mutex<()>, Condvar),
    cancel: &'a AtomicBool,
}

impl<T> Slots<'_, T> {
    /// The value of job `id` if it has finished (tests check dependencies with it).
    #[cfg(test)]
    pub fn get(&self, id: usize) -> Option<&T> {
        self.values.get(id)?.get()
    }

    /// The value of job `id`, waiting for it to finish; `None` if the schedule stops
    /// first (a failure, the cancel flag) or `id` has no slot.
    pub fn wait(&self, id: usize) -> Option<&T> {
        let slot = self.values.get(id)?;
        let (lock, ended) = self.signal;
        let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(value) = slot.get() {
                return Some(value);
            }
            if self.cancel.load(Ordering::SeqCst) {
                return None;
            }
            // The timeout only bounds how late a flag set from outside (Ctrl-C) is seen.
            guard = ended
                .wait_timeout(guard, std::time::Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Why a schedule did not run every job to completion.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError<E> {
    /// A job failed (the first one to).
    #[error("job {id} failed")]
    Job { id: usize, error: E },
    /// A job panicked; the panic message went to the panic hook.
    #[error("job {id} panicked")]
    Panicked { id: usize },
    /// The cancel flag was set from outside before every job started.
    #[error("cancelled")]
    Cancelled,
    /// A job depends on a job that is not scheduled, has no slot, or is part of a cycle.
    #[error("job {id} waits for job {dep}, which cannot finish before it")]
    Unsatisfiable { id: usize, dep: usize },
}

/// Runs `jobs` with at most `limit` at once; `work(id, slots)` runs job `id` and may
/// read the slots of its dependencies. Returns the slots (`slots` of them, indexed by
/// job id; unset for ids that are not jobs).
pub fn run<T, E, F>(
    jobs: &[Job],
    slots: usize,
    limit: NonZeroUsize,
    cancel: &AtomicBool,
    work: F,
) -> Result<Vec<Option<T>>, ScheduleError<E>>
where
    T: Send + Sync,
    E: Send,
    F: Fn(usize, &Slots<'_, T>) -> Result<T, E> + Sync,
{
    check(jobs, slots)?;
    let pool = Pool {
        jobs,
        work,
        cancel,
        outputs: (0..slots).map(|_| OnceLock::new()).collect(),
        state: Mutex::new(State {
            started: vec![false; jobs.len()],
            done: vec![false; slots],
            running: 0,
            failure: None,
        }),
        changed: Condvar::new(),
        signal: (Mutex::new(()), Condvar::new()),
    };
    let helpers = limit.get().min(jobs.len()).saturating_sub(1);
    std::thread::scope(|scope| {
        for n in 0..helpers {
            // A thread that cannot be spawned only means fewer at once: the calling
            // thread works too.
            let _ = std::thread::Builder::new()
                .name(format!("rbuild-stage-{n}"))
                .spawn_scoped(scope, || pool.worker());
        }
        pool.worker();
    });
    let state = pool
        .state
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(failure) = state.failure {
        return Err(failure);
    }
    if state.started.iter().any(|s| !s) {
        return Err(ScheduleError::Cancelled);
    }
    Ok(pool.outputs.into_iter().map(OnceLock::into_inner).collect())
}

/// Every dependency and every job read must be a job listed before the one that needs
/// it (which also rules out cycles): otherwise the schedule could never finish.
fn check<E>(jobs: &[Job], slots: usize) -> Result<(), ScheduleError<E>> {
    let mut seen = vec![false; slots];
    for job in jobs {
        if let Some(&dep) = job
            .deps
            .iter()
            .chain(&job.reads)
            .find(|&&d| !seen.get(d).copied().unwrap_or(false))
        {
            return Err(ScheduleError::Unsatisfiable { id: job.id, dep });
        }
        match seen.get_mut(job.id) {
            Some(s) if !*s => *s = true,
            _ => {
                return Err(ScheduleError::Unsatisfiable {
                    id: job.id,
                    dep: job.id,
                })
            }
        }
    }
    Ok(())
}

struct Pool<'a, T, E, F> {
    jobs: &'a [Job],
    work: F,
    cancel: &'a AtomicBool,
    outputs: Vec<OnceLock<T>>,
    state: Mutex<State<E>>,
    /// Signalled whenever a job finishes or fails.
    changed: Condvar,
    /// What [`Slots::wait`] waits on (apart from the state, which jobs never lock).
    signal: (Mutex<()>, Condvar),
}

struct State<E> {
    /// Per job (by position in `jobs`): whether it has been handed to a worker.
    started: Vec<bool>,
    /// Per slot: whether its job finished successfully.
    done: Vec<bool>,
    /// Jobs being worked on.
    running: usize,
    failure: Option<ScheduleError<E>>,
}

impl<T, E, F> Pool<'_, T, E, F>
where
    T: Send + Sync,
    E: Send,
    F: Fn(usize, &Slots<'_, T>) -> Result<T, E> + Sync,
{
    /// The state; a panic never happens while it is held (jobs run outside the lock),
    /// so a poisoned lock still holds consistent data.
    fn lock(&self) -> MutexGuard<'_, State<E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes ready jobs until none is left to start or the schedule stops.
    fn worker(&self) {
        let mut state = self.lock();
        loop {
            if state.failure.is_some() || self.cancel.load(Ordering::SeqCst) {
                return;
            }
            let ready = self.jobs.iter().enumerate().position(|(pos, job)| {
                !state.started[pos] && job.deps.iter().all(|&d| state.done[d])
            });
            if let Some(pos) = ready {
                state.started[pos] = true;
                state.running += 1;
                drop(state);
                let id = self.jobs[pos].id;
                let slots = Slots {
                    values: &self.outputs,
                    signal: &self.signal,
                    cancel: self.cancel,
                };
                let outcome = catch_unwind(AssertUnwindSafe(|| (self.work)(id, &slots)));
                state = self.lock();
                state.running -= 1;
                match outcome {
                    Ok(Ok(value)) => {
                        // invariant: each job runs once, so its slot is still empty.
                        let _ = self.outputs[id].set(value);
                        state.done[id] = true;
                    }
                    Ok(Err(error)) => self.fail(&mut state, ScheduleError::Job { id, error }),
                    Err(_) => self.fail(&mut state, ScheduleError::Panicked { id }),
                }
                self.changed.notify_all();
                let _ended = self.signal.0.lock().unwrap_or_else(PoisonError::into_inner);
                self.signal.1.notify_all();
                continue;
            }
            if state.started.iter().all(|&s| s) || state.running == 0 {
                // Nothing left to start, or nothing running that could make a job
                // ready (`check` makes the latter impossible).
                return;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Records the first failure and stops everything else.
    fn fail(&self, state: &mut State<E>, failure: ScheduleError<E>) {
        if state.failure.is_none() {
            state.failure = Some(failure);
        }
        self.cancel.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Barrier, Mutex};
    use std::time::Duration;

    fn job(id: usize, deps: &[usize]) -> Job {
        Job {
            id,
            deps: deps.to_vec(),
            reads: Vec::new(),
        }
    }

    fn limit(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mark {
        Start(usize),
        End(usize),
    }

    /// A diamond with a tail and an unrelated chain: 0 -> {1, 2} -> 3; 4 -> 5.
    fn graph() -> Vec<Job> {
        vec![
            job(0, &[]),
            job(4, &[]),
            job(1, &[0]),
            job(2, &[0]),
            job(5, &[4]),
            job(3, &[1, 2]),
        ]
    }

    #[test]
    fn a_job_starts_after_its_dependencies_end() {
        for n in [1, 2, 3, 8] {
            let marks = Mutex::new(Vec::new());
            let jobs = graph();
            let out = run(&jobs, 6, limit(n), &AtomicBool::new(false), |id, slots| {
                marks.lock().unwrap().push(Mark::Start(id));
                // Each job sees its dependencies' values.
                let sum: usize = jobs
                    .iter()
                    .find(|j| j.id == id)
                    .unwrap()
                    .deps
                    .iter()
                    .map(|&d| *slots.get(d).expect("dependency finished"))
                    .sum();
                std::thread::sleep(Duration::from_millis(2));
                marks.lock().unwrap().push(Mark::End(id));
                Ok::<_, ()>(sum + id)
            })
            .unwrap();
            // 3 + (1 + 0) + (2 + 0): each value is its id plus its dependencies' values.
            assert_eq!(out[3], Some(6));
            let marks = marks.into_inner().unwrap();
            let at = |m: Mark| marks.iter().position(|x| *x == m).unwrap();
            for j in &jobs {
                for &d in &j.deps {
                    assert!(at(Mark::End(d)) < at(Mark::Start(j.id)), "{n}: {marks:?}");
                }
            }
        }
    }

    #[test]
    fn one_at_a_time_follows_the_given_order() {
        let order = Mutex::new(Vec::new());
        let jobs = graph();
        run(&jobs, 6, limit(1), &AtomicBool::new(false), |id, _| {
            order.lock().unwrap().push(id);
            Ok::<_, ()>(())
        })
        .unwrap();
        let expected: Vec<usize> = jobs.iter().map(|j| j.id).collect();
        assert_eq!(order.into_inner().unwrap(), expected);
    }

    #[test]
    fn never_more_than_the_limit_at_once() {
        let jobs: Vec<Job> = (0..8).map(|i| job(i, &[])).collect();
        for n in [1, 2, 3] {
            let running = AtomicUsize::new(0);
            let most = AtomicUsize::new(0);
            run(&jobs, 8, limit(n), &AtomicBool::new(false), |_, _| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, ()>(())
            })
            .unwrap();
            assert!(most.load(Ordering::SeqCst) <= n);
        }
    }

    #[test]
    fn independent_jobs_run_at_the_same_time() {
        // Both jobs wait for each other: this ends only if they overlap.
        let meet = Barrier::new(2);
        let jobs = [job(0, &[]), job(1, &[]), job(2, &[0, 1])];
        let out = run(&jobs, 3, limit(2), &AtomicBool::new(false), |id, _| {
            if id < 2 {
                meet.wait();
            }
            Ok::<_, ()>(id)
        })
        .unwrap();
        assert_eq!(out, vec![Some(0), Some(1), Some(2)]);
    }

    #[test]
    fn the_first_failure_wins_and_stops_the_rest() {
        let cancel = AtomicBool::new(false);
        let ran = Mutex::new(Vec::new());
        // 0 fails; 1 runs meanwhile and stops when it sees the flag ("interrupted");
        // 2 needs 0 and never starts.
        let jobs = [job(1, &[]), job(0, &[]), job(2, &[0])];
        let result = run(&jobs, 3, limit(2), &cancel, |id, _| {
            ran.lock().unwrap().push(id);
            match id {
                0 => Err("boom"),
                1 => {
                    while !cancel.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err("interrupted")
                }
                _ => Ok(()),
            }
        });
        assert!(
            matches!(
                result,
                Err(ScheduleError::Job {
                    id: 0,
                    error: "boom"
                })
            ),
            "{result:?}"
        );
        assert!(cancel.load(Ordering::SeqCst));
        assert!(!ran.into_inner().unwrap().contains(&2));
    }

    #[test]
    fn a_panic_is_a_failure_not_a_hang() {
        let jobs = [job(0, &[]), job(1, &[0])];
        let result = run(&jobs, 2, limit(2), &AtomicBool::new(false), |id, _| {
            if id == 0 {
                panic!("job 0 broke");
            }
            Ok::<_, ()>(())
        });
        assert!(matches!(result, Err(ScheduleError::Panicked { id: 0 })));
    }

    #[test]
    fn a_set_flag_starts_nothing() {
        let jobs = [job(0, &[])];
        let result = run(&jobs, 1, limit(4), &AtomicBool::new(true), |_, _| {
            Ok::<_, ()>(())
        });
        assert!(matches!(result, Err(ScheduleError::Cancelled)));
    }

    #[test]
    fn an_impossible_graph_is_an_error() {
        let never = |_: usize, _: &Slots<'_, ()>| -> Result<(), ()> { unreachable!() };
        let cancel = AtomicBool::new(false);
        for jobs in [
            vec![job(0, &[1]), job(1, &[0])],
            vec![job(0, &[7])],
            vec![job(0, &[]), job(0, &[])],
            vec![job(9, &[])],
            vec![reader(0, &[], &[1]), job(1, &[])],
        ] {
            let result = run(&jobs, 2, limit(2), &cancel, never);
            assert!(
                matches!(result, Err(ScheduleError::Unsatisfiable { .. })),
                "{jobs:?}"
            );
        }
    }

    fn reader(id: usize, deps: &[usize], reads: &[usize]) -> Job {
        Job {
            reads: reads.to_vec(),
            ..job(id, deps)
        }
    }

    #[test]
    fn a_reader_starts_before_what_it_reads_ends_and_waits_for_its_value() {
        // Job 0 ends only once job 1 has started: both must run at once.
        let started = AtomicBool::new(false);
        let jobs = [job(0, &[]), reader(1, &[], &[0])];
        let out = run(&jobs, 2, limit(2), &AtomicBool::new(false), |id, slots| {
            if id == 0 {
                while !started.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                return Ok::<_, ()>(10);
            }
            started.store(true, Ordering::SeqCst);
            Ok(slots.wait(0).copied().unwrap_or(0) + 1)
        })
        .unwrap();
        assert_eq!(out, [Some(10), Some(11)]);
    }

    #[test]
    fn a_reader_waiting_for_a_failed_job_stops_and_the_failure_wins() {
        let jobs = [job(0, &[]), reader(1, &[], &[0])];
        let result = run(&jobs, 2, limit(2), &AtomicBool::new(false), |id, slots| {
            if id == 0 {
                std::thread::sleep(Duration::from_millis(50));
                return Err("broken");
            }
            slots.wait(0).copied().ok_or("interrupted").map(|v: u8| v)
        });
        assert!(
            matches!(
                result,
                Err(ScheduleError::Job {
                    id: 0,
                    error: "broken"
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn readers_never_deadlock_whatever_the_limit() {
        // Each job reads the two before it; job 5 also starts FROM job 2.
        let jobs = [
            job(0, &[]),
            reader(1, &[], &[0]),
            reader(2, &[], &[0, 1]),
            reader(3, &[], &[1, 2]),
            reader(4, &[], &[2, 3]),
            reader(5, &[2], &[3, 4]),
        ];
        for n in [1, 2, 3, 8] {
            let out = run(&jobs, 6, limit(n), &AtomicBool::new(false), |id, slots| {
                let job = jobs.iter().find(|j| j.id == id).unwrap();
                let mut sum = 1;
                for &r in job.deps.iter().chain(&job.reads) {
                    sum += slots.wait(r).copied().ok_or(())?;
                }
                Ok::<usize, ()>(sum)
            })
            .unwrap();
            assert_eq!(
                out,
                [Some(1), Some(2), Some(4), Some(7), Some(12), Some(24)],
                "{n}"
            );
        }
    }
}
