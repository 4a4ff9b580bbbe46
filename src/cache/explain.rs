//! Why a step missed: the inputs of every step of the last build of a Dockerfile's
//! stage are kept (`<store>/cache/builds/<sha256 of Dockerfile path and stage>.json`),
//! and a miss is explained by comparing the step's inputs now with those of the step at
//! the same position then.
//!
//! Input names carry their kind, which decides the wording: `instruction`, `base`,
//! `arg:NAME`, `env`, `file:PATH`, `url:URL`, `git:REMOTE#REF` (the commit), `user`,
//! `workdir`, `shell`, `network`, `mount:N`, `option:NAME`.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{CacheError, Result};
use super::key::{CacheKey, Inputs};
use crate::digest::Digest;
use crate::store::Store;

/// The inputs of one step, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInputs {
    /// The instruction as written (for the report).
    pub text: String,
    pub key: CacheKey,
    pub inputs: Inputs,
}

/// The steps of one stage in one build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageLog {
    pub steps: Vec<StepInputs>,
}

/// Where the logs of `dockerfile`'s stages live.
pub struct BuildLogs<'a> {
    store: &'a Store,
    dir: PathBuf,
}

impl<'a> BuildLogs<'a> {
    pub fn new(store: &'a Store) -> Self {
        BuildLogs {
            dir: store.cache_dir().join("builds"),
            store,
        }
    }

    fn path(&self, dockerfile: &str, stage: &str) -> PathBuf {
        let id = Digest::of(format!("{dockerfile}\0{stage}").as_bytes());
        self.dir.join(format!("{}.json", id.hex()))
    }

    /// The step keys of the last build's log of `stage` (a small file beside the log,
    /// so a build whose keys did not change neither reads nor rewrites the log).
    pub fn load_keys(&self, dockerfile: &str, stage: &str) -> Vec<CacheKey> {
        let path = self.path(dockerfile, stage).with_extension("keys");
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    }

    /// The last build's log of `stage` of `dockerfile` (empty if none or unreadable).
    pub fn load(&self, dockerfile: &str, stage: &str) -> StageLog {
        // Streamed: the log of a 100k-file COPY is 10 MB of JSON, not held beside what
        // it decodes to.
        fs::File::open(self.path(dockerfile, stage))
            .ok()
            .and_then(|f| serde_json::from_reader(std::io::BufReader::new(f)).ok())
            .unwrap_or_default()
    }

    /// Keeps `log` as the last build of `stage` of `dockerfile`.
    pub fn save(&self, dockerfile: &str, stage: &str, log: &StageLog) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|source| CacheError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let bytes = serde_json::to_vec(log).map_err(|e| CacheError::Encode {
            reason: e.to_string(),
        })?;
        let dest = self.path(dockerfile, stage);
        crate::store::layout::write_atomic(self.store.work_dir(), &dest, &bytes)?;
        let keys: String = log.steps.iter().map(|s| format!("{}\n", s.key)).collect();
        let keys_path = dest.with_extension("keys");
        crate::store::layout::write_atomic(self.store.work_dir(), &keys_path, keys.as_bytes())?;
        Ok(())
    }
}

/// The reasons `now` missed, given the same step of the last build (`None`: no earlier
/// build of this stage, or it had fewer steps) and whether the parent step missed.
pub fn explain<'a>(
    before: Option<&'a StepInputs>,
    now: &'a StepInputs,
    parent_missed: bool,
) -> Vec<String> {
    let Some(before) = before else {
        let first = if parent_missed {
            "parent step missed"
        } else {
            "no earlier build of this step"
        };
        return vec![first.to_owned()];
    };
    if before.key == now.key {
        return vec!["the result was removed from the cache (pruned or damaged)".to_owned()];
    }
    // The parent first, then what changed in this step itself.
    let mut reasons = Vec::new();
    if parent_missed {
        reasons.push("parent step missed".to_owned());
    }
    // Both sides sorted by name and walked together: a COPY of 100k files has as many
    // inputs, so no maps of them.
    let sorted = |inputs: &'a Inputs| -> Vec<(&'a str, &'a str)> {
        let mut v: Vec<_> = inputs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        v.sort_unstable();
        v
    };
    let (old_inputs, new_inputs) = (sorted(&before.inputs), sorted(&now.inputs));
    let (mut old, mut new) = (old_inputs.iter().peekable(), new_inputs.iter().peekable());
    loop {
        let (name, o, n) = match (old.peek(), new.peek()) {
            (None, None) => break,
            (Some(&&(a, va)), Some(&&(b, vb))) if a == b => {
                old.next();
                new.next();
                (a, Some(va), Some(vb))
            }
            (Some(&&(a, va)), Some(&&(b, _))) if a < b => {
                old.next();
                (a, Some(va), None)
            }
            (Some(&&(a, va)), None) => {
                old.next();
                (a, Some(va), None)
            }
            (_, Some(&&(b, vb))) => {
                new.next();
                (b, None, Some(vb))
            }
        };
        if o != n {
            reasons.push(describe(name, o, n));
        }
    }
    if reasons.is_empty() {
        reasons.push("the cache key format changed".to_owned());
    }
    reasons
}

fn describe(name: &str, old: Option<&str>, new: Option<&str>) -> String {
    let (kind, what) = name.split_once(':').unwrap_or((name, ""));
    match (kind, old, new) {
        ("file", None, Some(_)) => format!("file {what} added"),
        ("file", Some(_), None) => format!("file {what} removed"),
        ("file", Some(o), Some(n)) => format!("file {what} changed ({})", file_change(o, n)),
        ("arg", o, n) => format!(
            "ARG {what}: {} -> {}",
            o.unwrap_or("(unset)"),
            n.unwrap_or("(unset)")
        ),
        ("base", ..) => "base image digest changed".to_owned(),
        ("base-stage", ..) => "the stage it is built FROM changed".to_owned(),
        ("base-context", ..) => format!("build context {what} changed"),
        ("url", ..) => format!("the content at {what} changed"),
        ("git", Some(o), Some(n)) => format!("git repository {what} moved: commit {o} -> {n}"),
        ("git", None, Some(n)) => format!("git repository {what} added (commit {n})"),
        ("git", Some(_), None) => format!("git repository {what} removed"),
        ("instruction", ..) => "instruction text changed".to_owned(),
        ("source", ..) => format!("{what} changed"),
        (_, o, n) => format!(
            "{name}: {} -> {}",
            o.unwrap_or("(none)"),
            n.unwrap_or("(none)")
        ),
    }
}

/// File inputs are `TYPE MODE OWNER DIGEST-OR-TARGET`: say which part changed.
fn file_change(old: &str, new: &str) -> &'static str {
    let o: Vec<&str> = old.splitn(4, ' ').collect();
    let n: Vec<&str> = new.splitn(4, ' ').collect();
    match (o.as_slice(), n.as_slice()) {
        ([t1, ..], [t2, ..]) if t1 != t2 => "type",
        ([_, m1, ..], [_, m2, ..]) if m1 != m2 => "mode",
        ([_, _, u1, ..], [_, _, u2, ..]) if u1 != u2 => "owner",
        _ => "content",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(key: &[u8], inputs: &[(&str, &str)]) -> StepInputs {
        StepInputs {
            text: "RUN x".into(),
            key: Digest::of(key),
            inputs: inputs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn explains_each_kind_of_change() {
        let before = step(
            b"1",
            &[
                ("instruction", "COPY . ."),
                ("arg:VERSION", "1"),
                ("file:src/main.rs", "f 644 0:0 sha256:aa"),
                ("file:gone.txt", "f 644 0:0 sha256:bb"),
                ("file:mode.sh", "f 644 0:0 sha256:cc"),
            ],
        );
        let now = step(
            b"2",
            &[
                ("instruction", "COPY . ."),
                ("arg:VERSION", "2"),
                ("file:src/main.rs", "f 644 0:0 sha256:ab"),
                ("file:new.txt", "f 644 0:0 sha256:dd"),
                ("file:mode.sh", "f 755 0:0 sha256:cc"),
            ],
        );
        assert_eq!(
            explain(Some(&before), &now, false),
            [
                "ARG VERSION: 1 -> 2",
                "file gone.txt removed",
                "file mode.sh changed (mode)",
                "file new.txt added",
                "file src/main.rs changed (content)",
            ]
        );
        let with_parent = explain(Some(&before), &now, true);
        assert_eq!(with_parent[0], "parent step missed");
        assert_eq!(with_parent[1], "ARG VERSION: 1 -> 2");
        let same_inputs = step(b"3", &[("instruction", "COPY . .")]);
        let before_same = step(b"4", &[("instruction", "COPY . .")]);
        assert_eq!(
            explain(Some(&before_same), &same_inputs, true),
            ["parent step missed"]
        );
        assert_eq!(
            explain(None, &now, false),
            ["no earlier build of this step"]
        );
        let base = explain(
            Some(&step(b"1", &[("base", "sha256:1")])),
            &step(b"2", &[("base", "sha256:2")]),
            false,
        );
        assert_eq!(base, ["base image digest changed"]);
        let text = explain(
            Some(&step(b"1", &[("instruction", "RUN a")])),
            &step(b"2", &[("instruction", "RUN b")]),
            false,
        );
        assert_eq!(text, ["instruction text changed"]);
        let git = explain(
            Some(&step(b"1", &[("git:git://h/r.git#main", "aaa")])),
            &step(b"2", &[("git:git://h/r.git#main", "bbb")]),
            false,
        );
        assert_eq!(
            git,
            ["git repository git://h/r.git#main moved: commit aaa -> bbb"]
        );
    }

    #[test]
    fn logs_round_trip_per_dockerfile_and_stage() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let logs = BuildLogs::new(&store);
        let log = StageLog {
            steps: vec![step(b"1", &[("instruction", "RUN a")])],
        };
        logs.save("/ctx/Dockerfile", "build", &log).unwrap();
        assert_eq!(logs.load("/ctx/Dockerfile", "build"), log);
        assert_eq!(
            logs.load_keys("/ctx/Dockerfile", "build"),
            [Digest::of(b"1")]
        );
        assert_eq!(logs.load("/ctx/Dockerfile", "other"), StageLog::default());
    }
}
