//! The `rbuild` binary: a thin shell around [`rbuild::cli::run`].

fn main() -> std::process::ExitCode {
    // Hidden helpers (the RUN sandbox) run before anything else: single-threaded.
    if let Some(code) = rbuild::reexec::dispatch() {
        return std::process::ExitCode::from(code);
    }
    // A non-root user's store commands run again in a user namespace of their own.
    if let Some(code) = rbuild::cli::enter_user_namespace() {
        return code;
    }
    fixed_mmap_threshold();
    rbuild::cli::run()
}

/// Allocations of 1 MiB and more (hash tables and lists of 100k-file trees) come from
/// `mmap` and go back to the system when freed, every time. glibc otherwise raises
/// that threshold as big blocks are freed, and later big blocks land in whichever
/// thread's arena asks first: the peak RSS of a 100k-file COPY edit then varied from
/// 93 to 109 MiB run to run with the same 75 MB heap peak; with the threshold fixed,
/// 89-90 MiB. Buffers below 1 MiB (the 256 KiB I/O pieces) stay in the arenas.
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
