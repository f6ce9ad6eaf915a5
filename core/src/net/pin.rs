//! SPKI pins and the little DER they need. This module depends on nothing
//! else in the crate, so `profile`, `tls` and `error` can all use it without
//! importing each other.
//!
//! A pin is the SHA-256 of a DER `SubjectPublicKeyInfo`, written
//! `sha256/<base64>` (the notation of HPKP, RFC 7469). Certificates carry the
//! SPKI as a whole DER element (`SEQUENCE { algorithm, subjectPublicKey }`).
//! Trust anchors, as webpki stores them, keep only the *content* of that
//! SEQUENCE: [`Pin::of_spki_content`] wraps it again before hashing, so a pin
//! on a root CA is the same value whether it is computed from the root's
//! certificate or from the trust anchor.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A SHA-256 hash of a certificate's DER-encoded SubjectPublicKeyInfo,
/// written `sha256/<base64>` (the HPKP notation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pin(pub [u8; 32]);

impl Pin {
    /// The pin of a DER-encoded SubjectPublicKeyInfo (the whole SEQUENCE).
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Pin(Sha256::digest(spki_der).into())
    }

    /// The pin of an SPKI given without its outer SEQUENCE tag and length, as
    /// webpki's `TrustAnchor::subject_public_key_info` holds it.
    pub fn of_spki_content(content: &[u8]) -> Self {
        let mut whole = Vec::with_capacity(content.len() + 6);
        whole.push(0x30);
        push_der_length(&mut whole, content.len());
        whole.extend_from_slice(content);
        Self::of_spki(&whole)
    }

    /// The pin of a DER-encoded X.509 certificate's public key.
    pub fn of_certificate(cert_der: &[u8]) -> Result<Self, String> {
        spki_of_certificate(cert_der).map(Self::of_spki)
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256/{}", B64.encode(self.0))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Pin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let b64 = s
            .strip_prefix("sha256/")
            .ok_or_else(|| format!("'{s}' does not start with sha256/"))?;
        let bytes = B64
            .decode(b64)
            .map_err(|e| format!("'{s}' is not valid base64 ({e})"))?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("'{s}' decodes to {} bytes, a SHA-256 hash has 32", b.len()))?;
        Ok(Pin(hash))
    }
}

/// Append a DER definite length (X.690 section 8.1.3).
fn push_der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// One DER element: its tag, the whole element, its content, and what follows.
struct Der<'a> {
    tag: u8,
    whole: &'a [u8],
    rest: &'a [u8],
    content: &'a [u8],
}

/// Read one DER TLV from the front of `input`.
fn der_element(input: &[u8]) -> Option<Der<'_>> {
    let tag = *input.first()?;
    let first_len = *input.get(1)?;
    let (len, header) = if first_len & 0x80 == 0 {
        (first_len as usize, 2)
    } else {
        let n = (first_len & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some(Der {
        tag,
        whole: input.get(..end)?,
        content: input.get(header..end)?,
        rest: input.get(end..)?,
    })
}

/// The DER SubjectPublicKeyInfo inside a DER X.509 certificate (RFC 5280
/// section 4.1: it is the seventh field of `tbsCertificate`, or the sixth
/// when the optional version is absent).
pub fn spki_of_certificate(cert_der: &[u8]) -> Result<&[u8], String> {
    let bad = || "the certificate is not valid DER X.509".to_owned();
    let cert = der_element(cert_der).ok_or_else(bad)?;
    let tbs = der_element(cert.content).ok_or_else(bad)?;
    let mut field = der_element(tbs.content).ok_or_else(bad)?;
    if field.tag == 0xa0 {
        // skip [0] EXPLICIT version
        field = der_element(field.rest).ok_or_else(bad)?;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        field = der_element(field.rest).ok_or_else(bad)?;
    }
    if field.tag != 0x30 {
        return Err(bad());
    }
    Ok(field.whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_round_trips_and_rejects_garbage() {
        let pin = Pin::of_spki(b"\x30\x03\x02\x01\x05");
        assert_eq!(pin.to_string().parse::<Pin>().unwrap(), pin);
        assert!("sha1/AAAA".parse::<Pin>().is_err());
        assert!("sha256/AAAA".parse::<Pin>().is_err());
        assert!("sha256/!!!".parse::<Pin>().is_err());
    }

    #[test]
    fn content_is_rewrapped_in_a_sequence_of_the_right_length() {
        // Short form.
        let content = [0x02, 0x01, 0x05];
        assert_eq!(
            Pin::of_spki_content(&content),
            Pin::of_spki(&[0x30, 0x03, 0x02, 0x01, 0x05])
        );
        // Long forms: 0x81 for 128..=255 bytes, 0x82 for 256..=65535.
        for len in [0x7f, 0x80, 0xff, 0x100, 0x1234] {
            let content = vec![7u8; len];
            let mut whole = vec![0x30];
            match len {
                l if l < 0x80 => whole.push(l as u8),
                l if l <= 0xff => whole.extend([0x81, l as u8]),
                l => whole.extend([0x82, (l >> 8) as u8, l as u8]),
            }
            whole.extend(&content);
            assert_eq!(Pin::of_spki_content(&content), Pin::of_spki(&whole), "length {len}");
        }
    }

    #[test]
    fn truncated_der_is_refused() {
        assert!(Pin::of_certificate(b"\x30\x82\xff").is_err());
        assert!(Pin::of_certificate(&[]).is_err());
        assert!(Pin::of_certificate(&[0x30, 0x85, 1, 2, 3, 4, 5]).is_err());
    }
}
