//! Hidden re-exec entry points: the one table of `argv[0]` names under which this
//! binary runs as a helper instead of as `rbuild`.
//!
//! A helper is started as `/proc/self/exe` with one of these names as `argv[0]`
//! (buildah's `reexec` pattern). `src/main.rs` calls [`dispatch`] before anything
//! else runs, so a helper starts single-threaded, with no runtime and no CLI parsing;
//! that is what makes it safe for the sandbox to `fork` and `unshare` there. The unit
//! test binary reaches the same table through an `.init_array` hook
//! (`executor/sandbox/sys/test_hook.rs`).

/// A helper's entry point; returns the process exit code.
type Entry = fn() -> u8;

/// `(argv[0], entry point)`.
const ENTRIES: &[(&str, Entry)] = &[
    (
        crate::executor::sandbox::HELPER_ARGV0,
        crate::executor::sandbox::helper_main,
    ),
    (
        crate::executor::sandbox::NETNS_HOLDER_ARGV0,
        crate::executor::sandbox::netns_holder_main,
    ),
];

/// If this process was started as a helper, runs it and returns its exit code.
pub fn dispatch() -> Option<u8> {
    let arg0 = std::env::args_os().next()?;
    dispatch_name(arg0.as_encoded_bytes())
}

/// Runs the entry registered under `arg0`, if any.
pub(crate) fn dispatch_name(arg0: &[u8]) -> Option<u8> {
    ENTRIES
        .iter()
        .find(|(name, _)| name.as_bytes() == arg0)
        .map(|(_, entry)| entry())
}
