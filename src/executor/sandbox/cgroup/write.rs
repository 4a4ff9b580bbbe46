//! One write to a cgroup file: what the per-version rules (`v1.rs`, `v2.rs`) produce
//! and `step.rs` carries out.

/// One write to a cgroup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Write {
    /// The file, in the step's cgroup directory.
    pub file: &'static str,
    /// What is written.
    pub value: String,
    /// Skipped when the kernel has no such file (a default, not a flag's value).
    pub optional: bool,
}

impl Write {
    pub(super) fn new(file: &'static str, value: impl Into<String>) -> Write {
        Write {
            file,
            value: value.into(),
            optional: false,
        }
    }

    pub(super) fn optional(self) -> Write {
        Write {
            optional: true,
            ..self
        }
    }
}

/// Test helpers of the per-version rules: writes as plain tuples, easy to compare.
#[cfg(test)]
pub(super) mod testutil {
    use super::Write;

    /// `(file, value, optional)` of each write.
    pub(in super::super) fn tuples(writes: Vec<Write>) -> Vec<(String, String, bool)> {
        writes
            .into_iter()
            .map(|w| (w.file.to_owned(), w.value, w.optional))
            .collect()
    }

    /// One expected write.
    pub(in super::super) fn w(file: &str, value: &str, optional: bool) -> (String, String, bool) {
        (file.into(), value.into(), optional)
    }
}
