//! The OCI distribution client: references, and (with issue 6) auth, pull and push.
//!
//! | file | owns |
//! |---|---|
//! | `reference.rs` | [`Reference`]: Docker's reference grammar and normalization |
//! | `challenge.rs` | [`Challenge`]: `WWW-Authenticate` parsing, token scopes |
//! | `credentials.rs` | [`CredentialFiles`]: `config.json` / `auth.json` / credential helpers, login and logout |

mod challenge;
mod credentials;
mod reference;

pub use challenge::{parse_challenges, repository_scope, Challenge};
pub use credentials::{Credential, CredentialError, CredentialFiles, DOCKER_HUB_AUTH_KEY};
pub use reference::{Reference, ReferenceError, DOCKER_HUB, DOCKER_HUB_API};
