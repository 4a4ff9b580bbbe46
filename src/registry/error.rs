//! What can go wrong talking to a registry, worded so a user can act on it. No variant
//! carries a secret: credentials and tokens never reach an error, and URLs are shown
//! without their query (upload URLs carry opaque state).

use std::path::PathBuf;

use crate::digest::Digest;

/// A registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach {registry} ({url}): {reason}")]
    Connect {
        registry: String,
        url: String,
        reason: String,
    },
    #[error(
        "TLS with {registry} failed: {reason}\n  hint: if {registry} uses a private CA, put it at \
         /etc/docker/certs.d/{registry}/ca.crt or /etc/containers/certs.d/{registry}/ca.crt; \
         for a registry without TLS use --insecure-registry {registry} (or --tls-verify=false \
         to skip verification)"
    )]
    Tls { registry: String, reason: String },
    #[error(
        "{registry} asks for credentials to {action} {repository}\n  hint: log in with \
         `rbuild login {registry}` (or pass --creds USER:PASS)"
    )]
    AuthRequired {
        registry: String,
        repository: String,
        action: &'static str,
    },
    #[error(
        "{registry} rejected the credentials for {repository} ({detail})\n  hint: check them \
         with `rbuild login {registry}`"
    )]
    AuthRejected {
        registry: String,
        repository: String,
        detail: String,
    },
    #[error(
        "{registry} denied {action} access to {repository}{}",
        detail_suffix(detail)
    )]
    Denied {
        registry: String,
        repository: String,
        action: &'static str,
        detail: String,
    },
    #[error("the token service of {registry} failed: {reason}")]
    Token { registry: String, reason: String },
    #[error("{what} not found in {registry}{}", detail_suffix(detail))]
    NotFound {
        registry: String,
        what: String,
        detail: String,
    },
    #[error(
        "{registry} answered {status} to {method} {path}{}",
        detail_suffix(detail)
    )]
    Status {
        registry: String,
        method: String,
        path: String,
        status: u16,
        detail: String,
    },
    #[error(
        "{what} from {registry} has digest {actual}, not {expected}: the registry sent wrong \
         content (nothing was kept)"
    )]
    DigestMismatch {
        registry: String,
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what} from {registry} is {actual} bytes, not {expected} (nothing was kept)")]
    SizeMismatch {
        registry: String,
        what: String,
        expected: u64,
        actual: u64,
    },
    /// A chunked upload's `Range` that goes backwards, stands still or runs past what
    /// was sent: following it could loop forever.
    #[error("{registry} says the upload of {digest} holds {at} bytes, which does not follow from the {sent} sent")]
    UploadRange {
        registry: String,
        digest: Digest,
        at: u64,
        sent: u64,
    },
    #[error("cannot fetch layer {layer} of image {image} from {remote}: {reason}")]
    LazyFetch {
        image: String,
        layer: Digest,
        remote: String,
        reason: String,
    },
    #[error("{reference}: {reason}")]
    Unsupported { reference: String, reason: String },
    #[error("{reference} has no image for {wanted} (it has: {available})")]
    NoPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("cannot read {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("invalid registry option: {0}")]
    Option(String),
    #[error(transparent)]
    Reference(#[from] super::ReferenceError),
    #[error(transparent)]
    Credential(#[from] super::CredentialError),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error("interrupted")]
    Cancelled,
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// A URL as errors show it: without query or fragment.
pub fn display_url(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// The message of a registry's error body (`{"errors":[{"code","message"}]}`), short.
pub fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(parsed) = serde_json::from_slice::<Body>(body) {
        let parts: Vec<String> = parsed
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{} ({})", e.message, e.code),
                (true, false) => e.message.clone(),
                _ => e.code.clone(),
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies_are_summarized() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_detail(body), "manifest unknown (MANIFEST_UNKNOWN)");
        assert_eq!(error_detail(b"  plain text \n"), "plain text");
        assert_eq!(error_detail(&[b'x'; 500]).chars().count(), 201);
        assert_eq!(
            display_url("http://h/v2/a/blobs/uploads/x?_state=secret"),
            "http://h/v2/a/blobs/uploads/x"
        );
    }
}
