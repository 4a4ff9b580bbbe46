//! The `rbuild` binary: a thin shell around [`rbuild::cli::run`].

fn main() -> std::process::ExitCode {
    // Hidden helpers (the RUN sandbox) run before anything else: single-threaded.
    if let Some(code) = rbuild::reexec::dispatch() {
        return std::process::ExitCode::from(code);
    }
    rbuild::cli::run()
}
