//! The Playground's PKI: a CA and a leaf for 127.0.0.1 and localhost,
//! generated at start, plus a spare key whose pin serves as the backup pin.

use crate::Mode;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub struct Pki {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    leaf_der: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
    pub leaf_pin: String,
    pub backup_pin: String,
}

/// `sha256/<base64>` of a DER SubjectPublicKeyInfo.
pub fn pin(spki_der: &[u8]) -> String {
    format!("sha256/{}", B64.encode(Sha256::digest(spki_der)))
}

impl Pki {
    /// `extra`: addresses the leaf names besides 127.0.0.1.
    pub fn generate(extra: &[std::net::IpAddr]) -> Result<Self, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Session Manager Playground CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;
        let leaf_key = KeyPair::generate()?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
        leaf.subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)));
        leaf.subject_alt_names
            .extend(extra.iter().map(|ip| SanType::IpAddress(*ip)));
        leaf.distinguished_name
            .push(DnType::CommonName, "Session Manager Playground");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;
        let backup = KeyPair::generate()?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            leaf_der: leaf_cert.der().clone(),
            leaf_pin: pin(&leaf_key.public_key_der()),
            backup_pin: pin(&backup.public_key_der()),
            leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        })
    }

    /// The server config: TLS 1.3 only in production mode.
    pub fn server_config(&self, mode: Mode) -> Result<Arc<ServerConfig>, rustls::Error> {
        let versions: &[&rustls::SupportedProtocolVersion] = match mode {
            Mode::Production => &[&rustls::version::TLS13],
            Mode::Playground => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.leaf_der.clone(), self.ca_der.clone()],
                self.leaf_key.clone_key(),
            )?;
        // HTTP/1.1 only: one protocol, whose header and idle timeouts the
        // server sets (see server::serve).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
