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
    rbuild::cli::run()
}
