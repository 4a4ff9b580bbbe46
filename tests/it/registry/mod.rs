//! Real-registry test infrastructure: the CNCF registry (`docker-registry`) in its plain,
//! Basic-auth, TLS and token-auth setups, an in-process Docker token issuer with a
//! policy, a fault-injecting proxy, and a tiny OCI layout to push.
//!
//! Everything listens on `127.0.0.1` ports chosen at run time, lives in temporary
//! directories and stops when dropped, so tests can run in parallel. The self-tests
//! (`cargo test --test it registry_infra`) prove each piece against the real registry.
//!
//! Prerequisites (installed by `scripts/test.sh`): `docker-registry`, `htpasswd`
//! (apache2-utils), `openssl`, and for some tests `curl`, `skopeo`. Check them with
//! [`available`] and return early when it is false. Root is not needed.

// The push tests that use this infrastructure come later; until then some items are
// only used by the self-tests.
#![allow(dead_code)]

mod certs;
mod fault;
mod http;
mod jwt;
mod layout;
mod listener;
mod policy;
mod proxy;
mod server;
mod token;

#[cfg(test)]
mod proxy_test;
#[cfg(test)]
mod self_test;

// Re-exports for the push tests to come; not all are used by the self-tests yet.
#[allow(unused_imports)]
pub use fault::{Fault, Rule, RuleCounts, RuleId};
#[allow(unused_imports)]
pub use layout::{digest, oci_layout_of, tiny_oci_layout, Layout, TinyImage};
#[allow(unused_imports)]
pub use policy::{Access, Policy};
#[allow(unused_imports)]
pub use proxy::{FaultProxy, ProxiedRequest};
pub use server::Registry;
#[allow(unused_imports)]
pub use token::{TokenIssuer, TokenRequest};

/// Whether the registry, its helper tools and `extra` tools are installed; prints what
/// is missing (and fails under `CI`, like [`crate::support::have`]).
pub fn available(extra: &[&str]) -> bool {
    let base = [server::REGISTRY_BIN, "htpasswd", "openssl"];
    // Check every tool (no short-circuit), so the output lists all that are missing.
    let missing = base
        .iter()
        .chain(extra)
        .filter(|tool| !crate::support::have(tool))
        .count();
    missing == 0
}
