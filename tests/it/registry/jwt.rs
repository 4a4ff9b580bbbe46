//! Signed JSON Web Tokens in the form the CNCF registry's `token` auth accepts:
//! ES256 (ECDSA P-256, fixed-width `r||s` signature, RFC 7518 section 3.4), with the
//! signing certificate in the `x5c` header (standard base64 DER, RFC 7515 section 4.1.6).
//! The registry verifies that certificate against its `rootcertbundle`, then the signature.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::certs::SigningKey;

/// Signs token claims with the issuer's key.
pub struct Signer {
    key: EcdsaKeyPair,
    /// The encoded header, the same for every token.
    header: String,
    rng: SystemRandom,
}

impl Signer {
    /// A signer for `key`; panics when ring rejects the key (a broken openssl output).
    pub fn new(key: &SigningKey) -> Signer {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.pkcs8_der, &rng)
            .expect("ring accepts the P-256 PKCS#8 key made by openssl");
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [STANDARD.encode(&key.cert_der)],
        });
        Signer {
            key: pair,
            header: URL_SAFE_NO_PAD.encode(header.to_string()),
            rng,
        }
    }

    /// `header.claims.signature`, each part base64url without padding.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            self.header,
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, input.as_bytes())
            .expect("ECDSA signing with the system RNG");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    /// `n` random bytes as hex: token ids and refresh tokens.
    pub fn random_hex(&self, n: usize) -> String {
        let mut bytes = vec![0u8; n];
        self.rng.fill(&mut bytes).expect("system RNG");
        hex::encode(bytes)
    }
}

/// The claims of one token: who, for which service, which access, how long.
pub fn claims(
    issuer: &str,
    subject: &str,
    service: &str,
    access: &serde_json::Value,
    now: u64,
    expires_in: u64,
    jti: &str,
) -> serde_json::Value {
    serde_json::json!({
        "iss": issuer,
        "sub": subject,
        // distribution 2.8 reads `aud` as a single string (3.x also takes a list).
        "aud": service,
        "exp": now + expires_in,
        // A little slack: the registry has no leeway for `nbf` in 2.8.
        "nbf": now.saturating_sub(10),
        "iat": now,
        "jti": jti,
        "access": access,
    })
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix seconds as RFC 3339 (`issued_at`): the builder's own formatter.
pub fn rfc3339(unix: u64) -> String {
    rbuild::executor::rfc3339(i64::try_from(unix).expect("a date before 2262"))
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn registry_infra_rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800 + 3_661), "2024-05-01T13:01:01Z");
    }
}
