//! The `rbuild` binary: a thin shell around [`rbuild::cli::run`].

fn main() -> std::process::ExitCode {
    rbuild::cli::run()
}
