//! Real-registry test infrastructure: the CNCF registry (`docker-registry`) in its plain,
//! Basic-auth, TLS and token-auth setups, an in-process Docker token issuer with a
//! policy, a fault-injecting proxy, OCI layouts made by hand (`layout.rs`), and pushes
//! of their images through the registry API, byte for byte (`push.rs`).
//!
//! Everything listens on `127.0.0.1` ports chosen at run time, lives in temporary
//! directories and stops when dropped, so tests can run in parallel. The self-tests
//! (`cargo test --test it registry_infra`) prove each piece against the real registry.
//!
//! Prerequisites (installed by `scripts/test.sh`): `docker-registry`, `htpasswd`
//! (apache2-utils), `openssl`, and for some tests `curl`, `skopeo`. Check them with
//! [`available`] and return early when it is false. Root is not needed.

mod certs;
mod fault;
mod http;
mod jwt;
mod layout;
mod listener;
mod policy;
mod proxy;
mod push;
mod server;
mod token;

#[cfg(test)]
mod proxy_test;
#[cfg(test)]
mod self_test;

pub use fault::{Fault, Rule, RuleId};
pub use layout::{
    add_image, blob_path, digest, oci_layout_of, put_blob, tag_manifest, tiny_oci_layout,
    TinyImage, OCI_MANIFEST,
};
pub use policy::Policy;
pub use proxy::FaultProxy;
pub use push::{http_client, push_raw, put_manifest, upload};
pub use server::Registry;
pub use token::TokenIssuer;

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
