//! Keys and certificates for the test registries, made with the `openssl` CLI: a CA and
//! a server certificate for `127.0.0.1`/`localhost` (TLS), and the token issuer's
//! self-signed P-256 signing certificate (the registry's `rootcertbundle`).
//!
//! Everything is written into a caller's temporary directory; nothing is installed
//! system-wide. P-256 keys throughout: generating them is instant, unlike RSA.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA and a server certificate signed by it, all PEM files.
pub struct ServerTls {
    /// The CA certificate clients trust (`curl --cacert`, `certs.d/HOST/ca.crt`).
    pub ca_cert: PathBuf,
    /// The server certificate, for IP `127.0.0.1` and DNS `localhost`.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// The token issuer's signing key and its self-signed certificate.
pub struct SigningKey {
    /// The certificate, PEM: the registry's `rootcertbundle`.
    pub cert_pem: PathBuf,
    /// The same certificate, DER: goes into each token's `x5c` header.
    pub cert_der: Vec<u8>,
    /// The private key as unencrypted PKCS#8 DER, as `ring` reads it.
    pub pkcs8_der: Vec<u8>,
}

/// Makes a CA and a server certificate in `dir`.
pub fn server_tls(dir: &Path) -> ServerTls {
    let [ca_key, ca_cert, key, csr, ext, cert] = [
        "ca.key",
        "ca.crt",
        "registry.key",
        "registry.csr",
        "server-ext.cnf",
        "registry.crt",
    ]
    .map(|name| dir.join(name));
    let p256 = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(&format!(
        "req -x509 {p256} -days 2 -subj /CN=rbuild-test-CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
         -keyout {} -out {}",
        path(&ca_key),
        path(&ca_cert)
    ));
    openssl(&format!(
        "req {p256} -subj /CN=127.0.0.1 -keyout {} -out {}",
        path(&key),
        path(&csr)
    ));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n\
         basicConstraints=CA:FALSE\n",
    )
    .expect("write the server certificate extensions");
    openssl(&format!(
        "x509 -req -in {} -CA {} -CAkey {} -CAcreateserial -days 2 -extfile {} -out {}",
        path(&csr),
        path(&ca_cert),
        path(&ca_key),
        path(&ext),
        path(&cert)
    ));
    ServerTls { ca_cert, cert, key }
}

/// Makes a P-256 signing key and a self-signed certificate for it in `dir`.
pub fn signing_key(dir: &Path) -> SigningKey {
    let [key_pem, cert_pem, key_der, cert_der] =
        ["token.key", "token.crt", "token.pk8", "token.der"].map(|name| dir.join(name));
    // `ecparam -genkey` puts the public key into the ECPrivateKey, which ring requires.
    openssl(&format!(
        "ecparam -name prime256v1 -genkey -noout -out {}",
        path(&key_pem)
    ));
    openssl(&format!(
        "req -x509 -new -key {} -days 2 -subj /CN=rbuild-test-token-issuer -out {}",
        path(&key_pem),
        path(&cert_pem)
    ));
    openssl(&format!(
        "pkcs8 -topk8 -nocrypt -in {} -outform DER -out {}",
        path(&key_pem),
        path(&key_der)
    ));
    openssl(&format!(
        "x509 -in {} -outform DER -out {}",
        path(&cert_pem),
        path(&cert_der)
    ));
    SigningKey {
        cert_der: std::fs::read(&cert_der).expect("read the token certificate"),
        pkcs8_der: std::fs::read(&key_der).expect("read the token key"),
        cert_pem,
    }
}

/// Runs `openssl ARGS` (split on whitespace); panics with its stderr when it fails.
fn openssl(args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .output()
        .expect("run openssl (package openssl)");
    assert!(
        out.status.success(),
        "openssl {args} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Temporary paths are ASCII without spaces (the arguments are split on whitespace).
fn path(p: &Path) -> &str {
    let s = p.to_str().expect("temporary paths are UTF-8");
    assert!(
        !s.contains(char::is_whitespace),
        "temporary path with a space: {s}"
    );
    s
}
