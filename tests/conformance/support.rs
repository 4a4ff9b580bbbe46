//! Shared helpers: locating the corpora, running every case of a JSON corpus, the
//! exceptions list and the pass/fail tally.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

/// The conformance folder, `../shared/conformance` relative to the repository root.
///
/// Panics (fails the test loudly) when it is missing: a silent skip would hide a
/// conformance regression.
pub fn dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("../shared/conformance");
    assert!(
        dir.join("README.md").is_file(),
        "conformance corpora not found at {}: clone ../shared beside the repository",
        dir.display()
    );
    dir
}

/// Reads a corpus file as UTF-8 text.
#[allow(dead_code)]
pub fn read(rel: &str) -> String {
    let path = dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Reads a corpus JSON file.
#[allow(dead_code)]
pub fn read_json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("parsing {rel}: {e}"))
}

/// Runs `check` on every case of a JSON corpus, naming each by its `name` (if any) and index.
pub fn run_json(corpus: &str, check: fn(&Value) -> Result<(), String>) {
    let json = read_json(corpus);
    let mut tally = Tally::new(corpus);
    for (i, case) in json["cases"].as_array().into_iter().flatten().enumerate() {
        let name = case["name"].as_str().unwrap_or("case");
        tally.check(&format!("{name}#{i}"), check(case));
    }
    tally.finish();
}

/// A JSON array of strings (absent or malformed: empty).
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Vector ids listed in `testdata/conformance-exceptions.txt` (`corpus/case  reason`).
pub fn exceptions() -> BTreeSet<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/conformance-exceptions.txt");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Counts passes and failures of one corpus and reports them.
pub struct Tally {
    corpus: String,
    passed: usize,
    failed: Vec<String>,
    excepted: usize,
    exceptions: BTreeSet<String>,
}

impl Tally {
    pub fn new(corpus: &str) -> Self {
        Tally {
            corpus: corpus.to_owned(),
            passed: 0,
            failed: Vec::new(),
            excepted: 0,
            exceptions: exceptions(),
        }
    }

    /// Records the outcome of vector `id`: `Ok(())` or `Err(description of the mismatch)`.
    pub fn check(&mut self, id: &str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(_) if self.exceptions.contains(&format!("{}/{id}", self.corpus)) => {
                self.excepted += 1
            }
            Err(why) => self.failed.push(format!("{id}: {why}")),
        }
    }

    /// Prints `N passed, M failed` and panics when any vector failed.
    pub fn finish(self) {
        for f in &self.failed {
            eprintln!("FAIL {}/{f}", self.corpus);
        }
        println!(
            "{}: {} passed, {} failed{}",
            self.corpus,
            self.passed,
            self.failed.len(),
            if self.excepted > 0 {
                format!(", {} excepted", self.excepted)
            } else {
                String::new()
            }
        );
        assert!(self.passed > 0, "{}: no vectors were run", self.corpus);
        assert!(
            self.failed.is_empty(),
            "{}: {} vectors failed",
            self.corpus,
            self.failed.len()
        );
    }
}
