//! The OCI distribution client: references, and (with issue 6) auth, pull and push.
//!
//! | file | owns |
//! |---|---|
//! | `reference.rs` | [`Reference`]: Docker's reference grammar and normalization |
//! | `credentials.rs` | [`CredentialFiles`]: `config.json` / `auth.json` / credential helpers, login and logout |

mod credentials;
mod reference;

pub use credentials::{Credential, CredentialError, CredentialFiles, DOCKER_HUB_AUTH_KEY};
pub use reference::{Reference, ReferenceError, DOCKER_HUB, DOCKER_HUB_API};
