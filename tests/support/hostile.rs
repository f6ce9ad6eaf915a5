//! A misbehaving identity provider: real TLS on loopback with generated
//! certificates, answering each path the way a test tells it to. It streams
//! endless bodies, drips a byte a second, takes connections and says
//! nothing, answers crafted JSON, or presents whatever certificate chain it
//! is given (an attacker's, with the genuine certificate appended).

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use session_core::net::pin::Pin;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A CA and a leaf for 127.0.0.1 signed by it.
pub struct Pki {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    pub leaf_der: CertificateDer<'static>,
    pub leaf_key: PrivateKeyDer<'static>,
    pub leaf_pin: Pin,
    pub ca_pin: Pin,
}

impl Pki {
    /// A fresh PKI; `name` goes into the CA's common name.
    pub fn new(name: &str) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, format!("{name} CA"));
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let leaf = leaf.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            leaf_der: leaf.der().clone(),
            leaf_pin: Pin::of_spki(&leaf_key.public_key_der()),
            ca_pin: Pin::of_spki(&ca_key.public_key_der()),
            leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        }
    }
}

/// How the server answers a path.
#[derive(Clone)]
pub enum Behaviour {
    /// A complete answer.
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// 200, then chunks of zeros without end.
    Endless,
    /// 200 with a Content-Length, then one byte a second.
    Drip,
    /// Read the request and say nothing, ever.
    Silent,
}

impl Behaviour {
    /// 200 with a JSON body.
    pub fn json(body: serde_json::Value) -> Self {
        Behaviour::Answer {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }
}

/// What happens to a new connection before HTTP.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// A normal TLS handshake.
    Tls,
    /// Take the TCP connection and never start TLS.
    Stall,
}

/// A running misbehaving server. Dropping it stops it.
pub struct Hostile {
    pub port: u16,
    pub pki: Pki,
    /// Requests seen, by path.
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
    /// Bytes written to clients, all connections together.
    pub sent: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hostile {
    /// Serve `routes` (path → behaviour; anything else is 404) with `pki`'s
    /// leaf, presenting `chain` (leaf first) when given.
    pub async fn start(
        pki: Pki,
        chain: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
        handshake: Handshake,
        routes: Vec<(&str, Behaviour)>,
    ) -> Self {
        let routes: HashMap<String, Behaviour> = routes.into_iter().map(|(p, b)| (p.to_owned(), b)).collect();
        let (certs, key) =
            chain.unwrap_or_else(|| (vec![pki.leaf_der.clone(), pki.ca_der.clone()], pki.leaf_key.clone_key()));
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Default::default();
        let sent = Arc::new(AtomicUsize::new(0));
        let (h, s) = (hits.clone(), sent.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (acceptor, routes, hits, sent) = (acceptor.clone(), routes.clone(), h.clone(), s.clone());
                tokio::spawn(async move {
                    if handshake == Handshake::Stall {
                        // Hold the connection; never speak.
                        let _tcp = tcp;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let target = text.split(' ').nth(1).unwrap_or("/").to_owned();
                    let path = target.split('?').next().unwrap_or("/").to_owned();
                    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                    async fn write(
                        tls: &mut tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
                        bytes: Vec<u8>,
                        sent: &AtomicUsize,
                    ) -> std::io::Result<()> {
                        sent.fetch_add(bytes.len(), Ordering::Relaxed);
                        tls.write_all(&bytes).await
                    }
                    match routes.get(&path).cloned() {
                        None => {
                            let _ = write(
                                &mut tls,
                                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
                                &sent,
                            )
                            .await;
                        }
                        Some(Behaviour::Answer { status, headers, body }) => {
                            let mut out = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                            for (k, v) in headers {
                                out.push_str(&format!("{k}: {v}\r\n"));
                            }
                            out.push_str("connection: close\r\n\r\n");
                            let mut bytes = out.into_bytes();
                            bytes.extend(body);
                            let _ = write(&mut tls, bytes, &sent).await;
                            let _ = tls.shutdown().await;
                        }
                        Some(Behaviour::Endless) => {
                            let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                            if write(&mut tls, head.to_vec(), &sent).await.is_err() {
                                return;
                            }
                            let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
                            chunk.extend(std::iter::repeat_n(b' ', 64 * 1024));
                            chunk.extend(b"\r\n");
                            while write(&mut tls, chunk.clone(), &sent).await.is_ok() {}
                        }
                        Some(Behaviour::Drip) => {
                            let head =
                                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n";
                            if write(&mut tls, head.to_vec(), &sent).await.is_err() {
                                return;
                            }
                            loop {
                                if write(&mut tls, b" ".to_vec(), &sent).await.is_err() || tls.flush().await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                        Some(Behaviour::Silent) => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            drop(tls);
                        }
                    }
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
        Hostile {
            port,
            pki,
            hits,
            sent,
            task,
            dir,
        }
    }

    /// Stop listening (the port closes; the CA file stays).
    pub async fn stop(&self) {
        self.task.abort();
        while !self.task.is_finished() {
            tokio::task::yield_now().await;
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA file clients must trust.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// A FinHub profile (config text) pointing at this server, pinned to
    /// `pin`, with `extra` lines.
    pub fn finhub_config(&self, pin: &Pin, extra: &str) -> String {
        format!(
            "[profiles.hostile]\nprovider = \"finhub\"\nenvironment = \"integration\"\nbase_url = \"{}\"\ntenant_id = \"tenant-acme\"\naudience = \"session-manager\"\npins = [\"{pin}\"]\nca_file = \"{}\"\n{extra}\n",
            self.base_url(),
            self.ca_file().display()
        )
    }

    /// The profile of [`Hostile::finhub_config`], pinned to its leaf.
    pub fn finhub_profile(&self, extra: &str) -> session_core::Profile {
        session_core::Config::parse(
            &self.finhub_config(&self.pki.leaf_pin, extra),
            std::path::Path::new("/"),
        )
        .expect("a valid profile")
        .profile(Some("hostile"))
        .unwrap()
        .clone()
    }
}
