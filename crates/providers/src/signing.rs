//! Private keys for client assertions (RFC 7523 §2.2 `private_key_jwt`): a PEM file read the trusted
//! way, the JWS algorithm it signs with, and the signature — by `ring`, the crypto rustls already
//! uses here (ECDSA P-256/P-384, RSA PKCS#1 v1.5 and PSS, Ed25519; no signing code of our own).
//!
//! The claims and the serialisation are built by [`protocol::ClientAssertionClaims`]; this module
//! adds only what needs the key or the system's random source.
//!
//! # Security
//!
//! The key file must be the user's own, mode `0600`, not a symbolic link
//! ([`read_secret_file`](crate::read_secret_file)). The key is parsed for one signature and
//! dropped; nothing here logs, formats or returns key material, and errors name the file and the
//! problem only.

use std::fmt;
use std::path::Path;

use context_harness_protocol as protocol;
use protocol::{ClientAssertionClaims, JwsAlgorithm};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;

use crate::error::{Error, ErrorCode, Result};

/// What `--private-key-file` names in messages.
const KEY_FILE: &str = "the private key file";

/// A private key loaded from a PEM file, able to sign with the algorithms of its kind. `Debug`
/// names the kind only.
pub(crate) enum SigningKey {
    /// An ECDSA key on P-256 (`ES256`).
    P256(EcdsaKeyPair),
    /// An ECDSA key on P-384 (`ES384`).
    P384(EcdsaKeyPair),
    /// An RSA key (`RS256`/`RS384`/`RS512`/`PS256`/`PS384`/`PS512`; ring refuses keys under 2048 bits).
    Rsa(RsaKeyPair),
    /// An Ed25519 key (`EdDSA`).
    Ed25519(Ed25519KeyPair),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.kind())
    }
}

impl SigningKey {
    /// Reads and parses the PEM private key at `path`: PKCS#8 (`BEGIN PRIVATE KEY`: EC P-256 or
    /// P-384, RSA, Ed25519) or PKCS#1 (`BEGIN RSA PRIVATE KEY`). An SEC1 EC key (`BEGIN EC PRIVATE
    /// KEY`) or an encrypted one is refused with the command that converts it.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] when the file is missing, not the user's own `0600` regular file
    /// (see [`read_secret_file`](crate::read_secret_file)), or holds no usable private key.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let pem = crate::read_secret_file(path, KEY_FILE)?;
        let shown = path.display();
        let refuse = |why: &str, hint: &str| {
            Error::new(
                ErrorCode::ConfigInvalid,
                format!("{KEY_FILE} {shown}: {why}"),
            )
            .with_hint(hint.to_owned())
        };
        let to_pkcs8 = format!(
            "convert it to PKCS#8: `openssl pkcs8 -topk8 -nocrypt -in {shown} -out key.pk8.pem`"
        );
        let der = match PrivateKeyDer::from_pem_slice(pem.secret().as_bytes()) {
            Ok(der) => der,
            Err(_) if pem.secret().contains("ENCRYPTED PRIVATE KEY") => {
                return Err(refuse(
                    "the key is encrypted (a passphrase cannot be asked for here)",
                    &format!(
                        "decrypt it into a 0600 file: `openssl pkcs8 -in {shown} -out key.pk8.pem`"
                    ),
                ));
            }
            Err(_) => {
                return Err(refuse(
                    "it holds no PEM private key",
                    "give a PEM file that starts with `-----BEGIN PRIVATE KEY-----`",
                ));
            }
        };
        let rejected = |e: ring::error::KeyRejected| {
            refuse(
                &format!("the key is not usable ({e})"),
                "use an EC P-256/P-384, RSA (2048 bits or more) or Ed25519 key",
            )
        };
        let rng = SystemRandom::new();
        match der {
            PrivateKeyDer::Pkcs8(der) => {
                let der = der.secret_pkcs8_der();
                if let Ok(key) =
                    EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                {
                    return Ok(Self::P256(key));
                }
                if let Ok(key) =
                    EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng)
                {
                    return Ok(Self::P384(key));
                }
                if let Ok(key) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                    return Ok(Self::Ed25519(key));
                }
                RsaKeyPair::from_pkcs8(der).map(Self::Rsa).map_err(rejected)
            }
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der())
                .map(Self::Rsa)
                .map_err(rejected),
            PrivateKeyDer::Sec1(_) => Err(refuse("it is an SEC1 EC key", &to_pkcs8)),
            _ => Err(refuse("its key format is not supported", &to_pkcs8)),
        }
    }

    /// The key's kind, for messages: `EC P-256`, `EC P-384`, `RSA`, `Ed25519`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::P256(_) => "EC P-256",
            Self::P384(_) => "EC P-384",
            Self::Rsa(_) => "RSA",
            Self::Ed25519(_) => "Ed25519",
        }
    }

    /// Whether this key can sign with `alg`.
    pub(crate) fn supports(&self, alg: JwsAlgorithm) -> bool {
        use JwsAlgorithm as A;
        matches!(
            (self, alg),
            (Self::P256(_), A::Es256)
                | (Self::P384(_), A::Es384)
                | (
                    Self::Rsa(_),
                    A::Rs256 | A::Rs384 | A::Rs512 | A::Ps256 | A::Ps384 | A::Ps512
                )
                | (Self::Ed25519(_), A::EdDsa)
        )
    }

    /// The algorithm to sign with: `requested` when given (it must fit the key), else — when the
    /// authorization server lists `token_endpoint_auth_signing_alg_values_supported` — the first of
    /// the key's algorithms it lists, else the key's usual one (`ES256`, `ES384`, `RS256`, `EdDSA`).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] when `requested` does not fit the key, or the server lists
    /// algorithms and none fits it (or `requested` is not among them).
    pub(crate) fn algorithm(
        &self,
        requested: Option<JwsAlgorithm>,
        server: Option<&[String]>,
    ) -> Result<JwsAlgorithm> {
        let listed = |alg: JwsAlgorithm| server.is_none_or(|s| s.iter().any(|a| a == alg.as_str()));
        let server_list = || server.map(|s| s.join(", ")).unwrap_or_default();
        if let Some(alg) = requested {
            if !self.supports(alg) {
                return Err(Error::new(
                    ErrorCode::ConfigInvalid,
                    format!(
                        "the signing algorithm {alg} does not fit the {} key",
                        self.kind()
                    ),
                )
                .with_hint(format!(
                    "leave the signing algorithm unset to use the key's own ({})",
                    self.usual()
                )));
            }
            if !listed(alg) {
                return Err(Error::new(
                    ErrorCode::ConfigInvalid,
                    format!(
                        "the authorization server does not accept {alg} client assertions (it lists {})",
                        crate::terminal_text(&server_list())
                    ),
                )
                .with_hint("use a key and a signing algorithm the server lists"));
            }
            return Ok(alg);
        }
        if listed(self.usual()) {
            return Ok(self.usual());
        }
        JwsAlgorithm::ALL
            .into_iter()
            .find(|a| self.supports(*a) && listed(*a))
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::ConfigInvalid,
                    format!(
                        "the authorization server accepts no client assertion a {} key can sign (it lists {})",
                        self.kind(),
                        crate::terminal_text(&server_list())
                    ),
                )
                .with_hint("use a key of a kind the server lists")
            })
    }

    /// The algorithm this kind of key signs with by default.
    fn usual(&self) -> JwsAlgorithm {
        match self {
            Self::P256(_) => JwsAlgorithm::Es256,
            Self::P384(_) => JwsAlgorithm::Es384,
            Self::Rsa(_) => JwsAlgorithm::Rs256,
            Self::Ed25519(_) => JwsAlgorithm::EdDsa,
        }
    }

    /// Signs `claims` with `alg` and returns the compact JWS (RFC 7515 §7.1).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::ConfigInvalid`] when `alg` does not fit the key; [`ErrorCode::AuthFailed`]
    /// when the signature cannot be made (the random source failed).
    pub(crate) fn sign(&self, claims: &ClientAssertionClaims, alg: JwsAlgorithm) -> Result<String> {
        if !self.supports(alg) {
            return Err(Error::new(
                ErrorCode::ConfigInvalid,
                format!("{alg} does not fit the {} key", self.kind()),
            ));
        }
        let input = claims.signing_input(alg);
        let failed = |_| Error::new(ErrorCode::AuthFailed, "cannot sign the client assertion");
        let rng = SystemRandom::new();
        let signature = match self {
            Self::P256(key) | Self::P384(key) => key
                .sign(&rng, input.as_bytes())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            Self::Ed25519(key) => key.sign(input.as_bytes()).as_ref().to_vec(),
            Self::Rsa(key) => {
                let padding: &'static dyn sig::RsaEncoding = match alg {
                    JwsAlgorithm::Rs384 => &sig::RSA_PKCS1_SHA384,
                    JwsAlgorithm::Rs512 => &sig::RSA_PKCS1_SHA512,
                    JwsAlgorithm::Ps256 => &sig::RSA_PSS_SHA256,
                    JwsAlgorithm::Ps384 => &sig::RSA_PSS_SHA384,
                    JwsAlgorithm::Ps512 => &sig::RSA_PSS_SHA512,
                    _ => &sig::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(padding, &rng, input.as_bytes(), &mut out)
                    .map_err(failed)?;
                out
            }
        };
        Ok(protocol::compact_jws(&input, &signature))
    }
}

/// A fresh random `jti` (RFC 7519 §4.1.7): 128 bits from the system's CSPRNG, as 32 hex digits.
///
/// # Errors
///
/// [`ErrorCode::AuthFailed`] when the random source fails.
pub(crate) fn random_jti() -> Result<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).map_err(|_| {
        Error::new(
            ErrorCode::AuthFailed,
            "cannot draw a random JWT id for the client assertion",
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::PermissionsExt as _;

    use base64ct::{Base64, Base64UrlUnpadded, Encoding as _};
    use ring::signature::{KeyPair as _, UnparsedPublicKey};

    use super::*;

    /// Writes `der` as a PEM file of `label` (mode 0600) and returns the directory and the path.
    fn pem_file(label: &str, der: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let body = Base64::encode_string(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let text = format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        );
        let path = dir.path().join("key.pem");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        (dir, path)
    }

    fn claims() -> ClientAssertionClaims {
        ClientAssertionClaims::new("svc", "https://as.example", 1_700_000_000, "j").unwrap()
    }

    /// Verifies a compact JWS with `verifier` and the public key.
    fn verify(jws: &str, verifier: &'static dyn sig::VerificationAlgorithm, public: &[u8]) {
        let (input, signature) = jws.rsplit_once('.').unwrap();
        let signature = Base64UrlUnpadded::decode_vec(signature).unwrap();
        UnparsedPublicKey::new(verifier, public)
            .verify(input.as_bytes(), &signature)
            .expect("the signature verifies with the public key");
    }

    #[test]
    fn es256_and_eddsa_assertions_verify_with_the_public_key() {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let (_dir, path) = pem_file("PRIVATE KEY", pkcs8.as_ref());
        let key = SigningKey::load(&path).unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey(EC P-256)");
        let alg = key.algorithm(None, None).unwrap();
        assert_eq!(alg, JwsAlgorithm::Es256);
        let jws = key.sign(&claims(), alg).unwrap();
        let public = match &key {
            SigningKey::P256(k) => k.public_key().as_ref().to_vec(),
            _ => unreachable!(),
        };
        verify(&jws, &sig::ECDSA_P256_SHA256_FIXED, &public);

        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let (_dir, path) = pem_file("PRIVATE KEY", pkcs8.as_ref());
        let key = SigningKey::load(&path).unwrap();
        let jws = key.sign(&claims(), JwsAlgorithm::EdDsa).unwrap();
        let SigningKey::Ed25519(k) = &key else {
            unreachable!()
        };
        verify(&jws, &sig::ED25519, k.public_key().as_ref());
    }

    #[test]
    fn the_algorithm_fits_the_key_and_the_server_list() {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let (_dir, path) = pem_file("PRIVATE KEY", pkcs8.as_ref());
        let key = SigningKey::load(&path).unwrap();
        let list = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(key.algorithm(Some(JwsAlgorithm::Rs256), None).is_err());
        assert!(
            key.algorithm(Some(JwsAlgorithm::Es256), Some(&list(&["RS256"])))
                .is_err()
        );
        assert!(
            key.algorithm(None, Some(&list(&["RS256", "PS256"])))
                .is_err()
        );
        assert_eq!(
            key.algorithm(None, Some(&list(&["RS256", "ES256"])))
                .unwrap(),
            JwsAlgorithm::Es256
        );
        assert!(key.sign(&claims(), JwsAlgorithm::Ps256).is_err());
    }

    #[test]
    fn unusable_key_files_are_refused_without_their_content() {
        let (_dir, path) = pem_file("EC PRIVATE KEY", b"\x30\x03\x02\x01\x01");
        let err = SigningKey::load(&path).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ConfigInvalid);
        assert!(err.to_string().contains("SEC1"), "{err}");
        assert!(err.hint().unwrap_or_default().contains("openssl pkcs8"));

        let (_dir, path) = pem_file("PRIVATE KEY", b"\x30\x03\x02\x01\x01");
        let err = SigningKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("not usable"), "{err}");

        let (dir, path) = pem_file("PRIVATE KEY", b"x");
        std::fs::write(&path, "not a key").unwrap();
        let err = SigningKey::load(&path).unwrap_err();
        assert!(err.to_string().contains("no PEM private key"), "{err}");
        // Group-readable: refused before it is parsed.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = SigningKey::load(&path).unwrap_err();
        assert!(
            err.hint().unwrap_or_default().contains("chmod 600"),
            "{err}"
        );
        drop(dir);
    }

    #[test]
    fn jwt_ids_are_fresh() {
        let (a, b) = (random_jti().unwrap(), random_jti().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }
}
