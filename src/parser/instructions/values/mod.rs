//! Small value parsers of the typed instruction layer: pure functions from the (already
//! expanded) text of an instruction argument or flag to a typed value.
//!
//! Each file owns one kind of value and mirrors the BuildKit code that reads it:
//!
//! | file | value | BuildKit |
//! |---|---|---|
//! | [`expose`] | `EXPOSE` port specs | `dockerfile2llb` `parsePortSpecs` |
//! | [`duration`] | Go durations, `HEALTHCHECK --interval` & co. | `time.ParseDuration`, `parseOptInterval` |
//! | [`device`] | `RUN --device=` | `instructions.ParseDevice` |
//! | [`mount`] | `RUN --mount=` | `instructions` `parseMount`; `mount_defaults`: the dispatch defaults |
//! | [`gitref`] | git URLs for `ADD` and git contexts | `dfgitutil.ParseGitRef`, `FragmentFormat` |
//! | [`network`], [`security`] | `RUN --network=`, `RUN --security=` | `commands_runnetwork.go`, `commands_runsecurity.go` |
//!
//! Support files: [`error`] (the one error type), `golang` (the Go standard-library
//! behaviours these parsers depend on: `strconv`, `%q`, `path.Clean`), `csv` (BuildKit's
//! single-line CSV reader), `size` (tmpfs sizes, `--keep-storage`), `suggest` (the "did you mean"
//! hint), `mount_type` (the words of `--mount`, shared with [`error`]), `giturl` (the
//! subset of Go's `net/url` that git references need) and `redact` (credentials masked in
//! URLs before they are shown or kept: [`redact_url_credentials`]).
//!
//! Not owned here: variable expansion (callers pass expanded text), flag splitting, and
//! anything that needs the filesystem or the build state.
//!
//! Invariants: no parser panics on any input (a property test feeds arbitrary strings to
//! each), and every error is an [`Error`] whose `Display` is BuildKit's message.

mod csv;
pub mod device;
pub mod duration;
pub mod error;
pub mod expose;
pub mod gitref;
mod giturl;
mod golang;
pub mod mount;
mod mount_defaults;
mod mount_type;
pub mod network;
mod redact;
pub mod security;
mod size;
mod suggest;

pub use device::{parse_device, Device};
pub use duration::{parse_go_duration, parse_opt_interval, GoDuration};
pub use error::{CsvError, Error, FileInfoField, PortError, Result};
pub use expose::{parse_port_spec, parse_ports, PortKey, Protocol};
pub use gitref::{fragment_format, is_git_ref, parse_git_ref, GitMtime, GitRef};
pub use golang::clean_path;
pub use mount::{parse_mount, Mount};
pub use mount_type::{MountType, Sharing};
pub use network::Network;
pub use redact::redact_url_credentials;
pub use security::Security;
pub use size::ram_in_bytes;
pub(crate) use suggest::closest;

#[cfg(test)]
mod tests {
    //! Robustness: every parser accepts arbitrary text without panicking.
    //!
    //! The case count defaults to 64 per parser so CI stays fast; `PROPTEST_CASES`
    //! overrides it (proptest reads the variable into `Config::default()`).

    use super::*;
    use proptest::prelude::*;

    fn config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64);
        ProptestConfig::with_cases(cases)
    }

    /// Arbitrary Unicode plus strings built from the characters the parsers treat specially.
    fn input() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "[a-z0-9=,\"/:.#?&%\\[\\]@+ \\-_µ]{0,40}",]
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn no_parser_panics(s in input()) {
            let _ = parse_port_spec(&s);
            let _ = parse_go_duration(&s);
            let _ = parse_opt_interval("interval", &s);
            let _ = parse_device(&s);
            let _ = s.parse::<Network>();
            let _ = s.parse::<Security>();
            if let Ok(Some(r)) = parse_git_ref(&s) {
                let _ = r.fragment_form(true);
            }
            let _ = fragment_format(&s, true);
            if let Ok(m) = parse_mount(&s) {
                let _ = (m.cache_id(), m.secret_id(), m.secret_target(), m.ssh_target(0));
                let _ = m.resolve_target("/work");
            }
        }
    }
}
