//! TLS for one registry, as Docker and Podman set it up: the system's roots plus the
//! registry's own directory under `/etc/docker/certs.d/HOST[:PORT]/` and
//! `/etc/containers/certs.d/HOST[:PORT]/` (`*.crt`: CA certificates; `NAME.cert` +
//! `NAME.key`: a client certificate), or no verification at all when asked
//! (`--tls-verify=false`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::RegistryError;

/// The system CA bundle (Debian's), unless `SSL_CERT_FILE` names another.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Where per-registry certificates are looked for, in order.
pub fn default_cert_dirs() -> Vec<PathBuf> {
    vec![
        PathBuf::from("/etc/docker/certs.d"),
        PathBuf::from("/etc/containers/certs.d"),
    ]
}

/// The TLS settings of a client.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// Verify server certificates (`--tls-verify`, default true).
    pub verify: bool,
    /// `certs.d` directories.
    pub cert_dirs: Vec<PathBuf>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            verify: true,
            cert_dirs: default_cert_dirs(),
        }
    }
}

/// What the `certs.d` directories hold for one registry.
#[derive(Debug, Default)]
struct RegistryCerts {
    cas: Vec<CertificateDer<'static>>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

/// The rustls configuration for `registry` (`host[:port]`).
pub fn client_config(registry: &str, options: &TlsOptions) -> Result<ClientConfig, RegistryError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Option(format!("TLS setup: {e}")))?;
    let certs = registry_certs(registry, &options.cert_dirs)?;
    let builder = if options.verify {
        let mut roots = RootCertStore::empty();
        let bundle = std::env::var_os("SSL_CERT_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(SYSTEM_BUNDLE));
        if let Ok(iter) = CertificateDer::pem_file_iter(&bundle) {
            // A bad entry in the system bundle is skipped, as every TLS stack does.
            let system: Vec<_> = iter.filter_map(Result::ok).collect();
            roots.add_parsable_certificates(system);
        }
        for ca in certs.cas {
            roots.add(ca).map_err(|e| RegistryError::Tls {
                registry: registry.to_owned(),
                reason: format!("a CA certificate in certs.d is not usable: {e}"),
            })?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    };
    match certs.client {
        Some((chain, key)) => {
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| RegistryError::Tls {
                    registry: registry.to_owned(),
                    reason: format!("the client certificate in certs.d is not usable: {e}"),
                })
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

fn registry_certs(registry: &str, dirs: &[PathBuf]) -> Result<RegistryCerts, RegistryError> {
    let mut out = RegistryCerts::default();
    for dir in dirs {
        let dir = dir.join(registry);
        let Ok(listing) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<PathBuf> = listing.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for path in &names {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => out.cas.extend(read_certs(path)?),
                Some("cert") if out.client.is_none() => {
                    let key = path.with_extension("key");
                    let key =
                        PrivateKeyDer::from_pem_file(&key).map_err(|e| RegistryError::File {
                            path: key.clone(),
                            reason: format!(
                                "the key of client certificate {}: {e}",
                                path.display()
                            ),
                        })?;
                    out.client = Some((read_certs(path)?, key));
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let failed = |reason: String| RegistryError::File {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| failed(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(e.to_string()))?;
    if certs.is_empty() {
        return Err(failed("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// `--tls-verify=false`: any certificate is accepted (signatures are still checked, so
/// the session is encrypted, just not authenticated).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_cert_dirs_give_the_system_roots() {
        let options = TlsOptions {
            verify: true,
            cert_dirs: vec![PathBuf::from("/nonexistent")],
        };
        assert!(client_config("registry.example:5000", &options).is_ok());
        let insecure = TlsOptions {
            verify: false,
            ..options
        };
        assert!(client_config("registry.example:5000", &insecure).is_ok());
    }

    #[test]
    fn a_bad_ca_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("reg:5000")).unwrap();
        std::fs::write(dir.path().join("reg:5000/ca.crt"), "not a certificate").unwrap();
        let options = TlsOptions {
            verify: true,
            cert_dirs: vec![dir.path().to_path_buf()],
        };
        let err = client_config("reg:5000", &options).unwrap_err().to_string();
        assert!(err.contains("ca.crt"), "{err}");
    }
}
