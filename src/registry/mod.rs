//! The OCI distribution client: references, credentials and auth, pull and push.
//!
//! | file | owns |
//! |---|---|
//! | `reference.rs` | [`Reference`]: Docker's reference grammar and normalization |
//! | `challenge.rs` | [`Challenge`]: `WWW-Authenticate` parsing, token scopes |
//! | `credentials.rs` | [`CredentialFiles`]: `config.json` / `auth.json` / credential helpers, login and logout |
//! | `tls.rs` | rustls settings per registry: system roots, `certs.d` CAs and client certificates, `--tls-verify=false` |
//! | `auth.rs` | `Auth`: challenge answers, bearer tokens cached per scope set |
//! | `client.rs` | [`Client`]: connection pools, HTTP vs HTTPS, auth, retries with backoff |
//! | `repo/` | `Repo`: the API calls on one repository (manifests, blob HEAD; `blob_fetch.rs` GET into the store, `blob_upload.rs` mount and upload) |
//! | `artifact.rs` | [`fetch_manifest()`], [`fetch_blob()`], [`missing_blobs()`]: one manifest, one blob, which blobs are there (the build cache's) |
//! | `pull.rs` | [`pull()`]: reference -> platform manifest -> verified blobs in the store -> name |
//! | `lazy.rs` | [`fetch_lazy()`], [`fetch_image_blobs()`]: lazy blobs fetched on first use |
//! | `upload.rs` | [`push()`]: HEAD, mount or upload each blob, then the manifests |
//! | `sources.rs` | which repositories a blob came from (for cross-repository mounts) |
//! | `transfer.rs` | progress events (blob states, bytes moved), blobs moved a few at once |
//! | `error.rs` | [`RegistryError`]: errors a user can act on, never holding a secret |

mod artifact;
mod auth;
mod challenge;
mod client;
mod credentials;
mod error;
mod lazy;
mod parts;
mod pull;
mod reference;
mod repo;
mod sources;
mod tls;
mod transfer;
mod upload;

pub use artifact::{fetch_blob, fetch_manifest, missing_blobs};
pub use auth::Target;
pub use challenge::{parse_challenges, repository_scope, Challenge};
pub use client::{check, error_chain, Client, RegistryOptions, Retry};
pub use credentials::{Credential, CredentialError, CredentialFiles, Stored, DOCKER_HUB_AUTH_KEY};
pub use error::RegistryError;
pub use lazy::{fetch_image_blobs, fetch_lazy};
pub use pull::{name_pulled, platform_text, pull, pull_unnamed, Pulled};
pub use reference::{Reference, ReferenceError, DOCKER_HUB, DOCKER_HUB_API};
pub use repo::FetchedManifest;
pub use tls::TlsOptions;
pub use transfer::{BlobState, Progress, TransferEvent};
pub use upload::{push, push_onto, Pushed};
