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

/// The PKI as a Playground that keeps its state writes it down.
#[derive(serde::Serialize, serde::Deserialize, Clone)]
pub struct SavedPki {
    pub extra: Vec<std::net::IpAddr>,
    pub ca_pem: String,
    pub ca_der: String,
    pub leaf_der: String,
    pub leaf_key: String,
    pub leaf_pin: String,
    pub backup_pin: String,
}

pub struct Pki {
    /// The addresses the leaf names besides 127.0.0.1.
    pub extra: Vec<std::net::IpAddr>,
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
            extra: extra.to_vec(),
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            leaf_der: leaf_cert.der().clone(),
            leaf_pin: pin(&leaf_key.public_key_der()),
            backup_pin: pin(&backup.public_key_der()),
            leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        })
    }

    /// The PKI as written down (the CA's key is not: nothing is signed with
    /// it after start).
    pub fn save(&self) -> SavedPki {
        SavedPki {
            extra: self.extra.clone(),
            ca_pem: self.ca_pem.clone(),
            ca_der: B64.encode(&self.ca_der),
            leaf_der: B64.encode(&self.leaf_der),
            leaf_key: B64.encode(self.leaf_key.secret_der()),
            leaf_pin: self.leaf_pin.clone(),
            backup_pin: self.backup_pin.clone(),
        }
    }

    /// A PKI written down by [`Pki::save`].
    pub fn load(saved: &SavedPki) -> Result<Self, String> {
        let der = |what: &str, b64: &str| B64.decode(b64).map_err(|e| format!("{what}: {e}"));
        Ok(Self {
            extra: saved.extra.clone(),
            ca_pem: saved.ca_pem.clone(),
            ca_der: CertificateDer::from(der("the CA certificate", &saved.ca_der)?),
            leaf_der: CertificateDer::from(der("the certificate", &saved.leaf_der)?),
            leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der("the certificate's key", &saved.leaf_key)?)),
            leaf_pin: saved.leaf_pin.clone(),
            backup_pin: saved.backup_pin.clone(),
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
