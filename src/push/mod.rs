//! The OCI distribution client: references, and (with issue 6) auth, pull and push.
//!
//! | file | owns |
//! |---|---|
//! | `reference.rs` | [`Reference`]: Docker's reference grammar and normalization |

mod reference;

pub use reference::{Reference, ReferenceError, DOCKER_HUB, DOCKER_HUB_API};
