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
