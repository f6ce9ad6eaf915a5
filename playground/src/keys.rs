//! The Playground's signing keys: an RSA key (RS256) and a P-256 key (ES256),
//! published as a JWKS, rotated on demand. After a rotation the previous keys
//! stay in the JWKS (so tokens already issued keep verifying), or are
//! dropped at once when QA asks (an abrupt rotation).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One signing key and its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub jwk: Value,
    /// The private key's DER (PKCS#1 for RSA, PKCS#8 for EC), kept so a
    /// Playground that keeps its state can write it down.
    private_der: Vec<u8>,
}

/// A signing key as a Playground that keeps its state writes it down.
#[derive(Serialize, Deserialize)]
pub struct SavedKey {
    pub kid: String,
    /// `RS256` or `ES256`.
    pub alg: String,
    /// Base64url of the private key's DER.
    pub der: String,
}

fn kid() -> String {
    let bytes: [u8; 8] = rand::random();
    format!("pg-{}", B64URL.encode(bytes))
}

impl SigningKey {
    /// A fresh RSA 2048 key for RS256.
    pub fn rsa() -> Self {
        let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key generation");
        Self::from_rsa(&private, kid()).expect("a key just generated encodes")
    }

    fn from_rsa(private: &rsa::RsaPrivateKey, kid: String) -> Result<Self, String> {
        let der = private.to_pkcs1_der().map_err(|e| e.to_string())?;
        let n = B64URL.encode(private.n().to_bytes_be());
        let e = B64URL.encode(private.e().to_bytes_be());
        Ok(Self {
            jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}),
            decoding: DecodingKey::from_rsa_components(&n, &e).map_err(|e| e.to_string())?,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            private_der: der.as_bytes().to_vec(),
            alg: Algorithm::RS256,
            kid,
        })
    }

    /// A fresh P-256 key for ES256.
    pub fn ec() -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key generation");
        Self::from_ec(&pair, kid()).expect("a key just generated encodes")
    }

    fn from_ec(pair: &rcgen::KeyPair, kid: String) -> Result<Self, String> {
        let raw = pair.public_key_raw(); // 0x04 || x || y
        if raw.len() != 65 {
            return Err("not a P-256 key".into());
        }
        let x = B64URL.encode(&raw[1..33]);
        let y = B64URL.encode(&raw[33..65]);
        Ok(Self {
            jwk: json!({"kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": kid, "x": x, "y": y}),
            decoding: DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?,
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            private_der: pair.serialize_der(),
            alg: Algorithm::ES256,
            kid,
        })
    }

    /// The key as written down.
    pub fn save(&self) -> SavedKey {
        SavedKey {
            kid: self.kid.clone(),
            alg: format!("{:?}", self.alg),
            der: B64URL.encode(&self.private_der),
        }
    }

    /// A key written down by [`SigningKey::save`].
    pub fn load(saved: &SavedKey) -> Result<Self, String> {
        let der = B64URL
            .decode(&saved.der)
            .map_err(|e| format!("key {}: {e}", saved.kid))?;
        match saved.alg.as_str() {
            "RS256" => {
                let private =
                    rsa::RsaPrivateKey::from_pkcs1_der(&der).map_err(|e| format!("key {}: {e}", saved.kid))?;
                Self::from_rsa(&private, saved.kid.clone())
            }
            "ES256" => {
                let pair = rcgen::KeyPair::try_from(der.as_slice()).map_err(|e| format!("key {}: {e}", saved.kid))?;
                Self::from_ec(&pair, saved.kid.clone())
            }
            other => Err(format!("key {}: unknown algorithm '{other}'", saved.kid)),
        }
    }

    /// Sign `claims`, with the header's `typ` when given (else `JWT`).
    pub fn sign_typed(&self, typ: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        if let Some(t) = typ {
            header.typ = Some(t.to_owned());
        }
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing")
    }
}

/// A key ring as written down.
#[derive(Serialize, Deserialize)]
pub struct SavedRing {
    pub rsa: Option<SavedKey>,
    pub ec: SavedKey,
    pub previous: Vec<SavedKey>,
}

/// The current keys and the previous generation.
pub struct KeyRing {
    /// `None` while it is being generated (see [`KeyRing::ec_first`]).
    pub rsa: Option<SigningKey>,
    pub ec: SigningKey,
    previous: Vec<SigningKey>,
}

impl KeyRing {
    pub fn generate() -> Self {
        Self {
            rsa: Some(SigningKey::rsa()),
            ec: SigningKey::ec(),
            previous: Vec::new(),
        }
    }

    /// Only the EC key; the caller adds the RSA key with [`KeyRing::set_rsa`]
    /// once generated (RSA generation takes 0.1 to 0.4 s, which an ES256
    /// Playground need not wait for).
    pub fn ec_first() -> Self {
        Self {
            rsa: None,
            ec: SigningKey::ec(),
            previous: Vec::new(),
        }
    }

    /// Add the RSA key generated in the background.
    pub fn set_rsa(&mut self, key: SigningKey) {
        self.rsa.get_or_insert(key);
    }

    /// Replace the current keys. With `keep_old` the old ones stay
    /// published for one more generation; without, they are gone.
    pub fn rotate(&mut self, fresh: KeyRing, keep_old: bool) {
        let old_ec = std::mem::replace(&mut self.ec, fresh.ec);
        let old_rsa = std::mem::replace(&mut self.rsa, fresh.rsa);
        self.previous = if keep_old {
            old_rsa.into_iter().chain(Some(old_ec)).collect()
        } else {
            Vec::new()
        };
    }

    /// The keys as written down (current first, then the previous ones).
    pub fn save(&self) -> SavedRing {
        SavedRing {
            rsa: self.rsa.as_ref().map(SigningKey::save),
            ec: self.ec.save(),
            previous: self.previous.iter().map(SigningKey::save).collect(),
        }
    }

    /// Keys written down by [`KeyRing::save`].
    pub fn load(saved: &SavedRing) -> Result<Self, String> {
        Ok(Self {
            rsa: saved.rsa.as_ref().map(SigningKey::load).transpose()?,
            ec: SigningKey::load(&saved.ec)?,
            previous: saved.previous.iter().map(SigningKey::load).collect::<Result<_, _>>()?,
        })
    }

    /// The key that signs with `alg` (EC until an RSA key exists).
    pub fn signer(&self, alg: Algorithm) -> &SigningKey {
        match (&self.rsa, alg) {
            (Some(rsa), Algorithm::RS256) => rsa,
            _ => &self.ec,
        }
    }

    fn all(&self) -> impl Iterator<Item = &SigningKey> {
        self.rsa.iter().chain([&self.ec]).chain(self.previous.iter())
    }

    /// The published key set.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.all().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    /// Verify a token the Playground issued. With `now` (the Playground's
    /// clock, offset or not), an expired one is refused; without, it is
    /// accepted (logout may end an expired session).
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now: Option<i64>,
    ) -> Result<serde_json::Map<String, Value>, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        let kid = header.kid.ok_or("the token has no kid")?;
        let key = self
            .all()
            .find(|k| k.kid == kid)
            .ok_or_else(|| format!("unknown kid '{kid}'"))?;
        let mut validation = jsonwebtoken::Validation::new(key.alg);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        // Expiry against the Playground's own clock, which QA may offset.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| format!("token rejected: {e}"))?;
        if let Some(now) = now {
            let exp = claims
                .get("exp")
                .and_then(Value::as_i64)
                .ok_or("token rejected: no exp")?;
            // Through its `exp` second, as jsonwebtoken's own check with no
            // leeway does (times have whole seconds).
            if now > exp {
                return Err("token rejected: ExpiredSignature".into());
            }
        }
        Ok(claims)
    }
}
