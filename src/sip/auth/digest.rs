//! The digest arithmetic of RFC 7616 section 3.4 (HA1, HA2 and the response, with the
//! `-sess` and `auth-int` variants), kept in one place so that the client's answer and the
//! server's check cannot compute it differently.

use std::fmt::Write as _;

use md5::{Digest, Md5};
use sha2::Sha256;

use super::{AuthError, Authorization, DigestAlgorithm, Qop};

impl DigestAlgorithm {
    /// Lowercase hex hash of `parts` joined with `:`, fed incrementally so that large
    /// bodies and secrets are not copied into a joined buffer.
    fn hash_joined(self, parts: &[&[u8]]) -> String {
        match self {
            Self::Md5 | Self::Md5Sess => hash_joined_with::<Md5>(parts),
            Self::Sha256 | Self::Sha256Sess => hash_joined_with::<Sha256>(parts),
        }
    }
}

impl Authorization {
    /// The response digest for these fields, per RFC 7616 section 3.4.
    pub(super) fn expected_response(
        &self,
        password: &str,
        method: &str,
        body: &[u8],
    ) -> Result<String, AuthError> {
        let alg = self.algorithm;
        let mut ha1 = alg.hash_joined(&[
            self.username.as_bytes(),
            self.realm.as_bytes(),
            password.as_bytes(),
        ]);
        if alg.is_session() {
            let cnonce = self.cnonce.as_deref().ok_or(AuthError::MissingParam {
                header: "authorization",
                param: "cnonce",
            })?;
            ha1 = alg.hash_joined(&[ha1.as_bytes(), self.nonce.as_bytes(), cnonce.as_bytes()]);
        }
        let ha2 = match self.qop {
            Some(Qop::AuthInt) => {
                let body_hash = alg.hash_joined(&[body]);
                alg.hash_joined(&[method.as_bytes(), self.uri.as_bytes(), body_hash.as_bytes()])
            }
            _ => alg.hash_joined(&[method.as_bytes(), self.uri.as_bytes()]),
        };
        let response = match self.qop {
            Some(qop) => {
                let (Some(cnonce), Some(nc)) = (self.cnonce.as_deref(), self.nc) else {
                    return Err(AuthError::MissingParam {
                        header: "authorization",
                        param: "cnonce",
                    });
                };
                let nc = format!("{nc:08x}");
                alg.hash_joined(&[
                    ha1.as_bytes(),
                    self.nonce.as_bytes(),
                    nc.as_bytes(),
                    cnonce.as_bytes(),
                    qop.as_str().as_bytes(),
                    ha2.as_bytes(),
                ])
            }
            None => alg.hash_joined(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()]),
        };
        Ok(response)
    }
}

fn hash_joined_with<D: Digest>(parts: &[&[u8]]) -> String {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest.iter() {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Compares without an early exit, so the time taken does not reveal how many leading
/// characters of a guessed response were right.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
