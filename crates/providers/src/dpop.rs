//! DPoP (RFC 9449; the MCP DPoP profile, SEP-1932): the key pair a DPoP-bound token set is tied
//! to, and the proofs it signs.
//!
//! One ECDSA P-256 key pair (`ES256`) per token record, made by `ring` from the system's random
//! source when a sign-in starts and kept with the tokens, in the same store (keyring or `0600`
//! file), under the key `dpop_key` as `{"alg": "ES256", "pkcs8": base64url(PKCS#8 DER)}`. A
//! refresh keeps the key (RFC 9449 §5: a refreshed token stays bound to it).
//!
//! # Security
//!
//! `Debug` names the algorithm only; nothing here logs, formats or returns the private key except
//! [`DpopKey::write`], which puts it in the token record the store keeps. A field of that name in a
//! token endpoint's answer is the server's text and is replaced before anything is stored.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64ct::{Base64UrlUnpadded, Encoding as _};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::tokens::OAuthTokens;

/// The key, among the tokens' extra fields, of the stored DPoP key.
const DPOP_KEY: &str = "dpop_key";

/// The one proof algorithm this client signs with (RFC 9449 §5.1; the MCP profile's default).
pub const DPOP_ALG: &str = "ES256";

/// The `typ` header of a DPoP proof (RFC 9449 §4.2).
const DPOP_TYP: &str = "dpop+jwt";

/// The `error` a server answers when it wants a nonce in the proof (RFC 9449 §8, §9).
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// The private key of a DPoP-bound token set (ECDSA P-256). Cheap to clone; `Debug` shows the
/// algorithm only; two keys are equal when their public keys are.
#[derive(Clone)]
pub struct DpopKey {
    inner: Arc<Inner>,
}

struct Inner {
    /// The PKCS#8 v1 document ring made: what is stored.
    pkcs8: Vec<u8>,
    pair: EcdsaKeyPair,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DpopKey({DPOP_ALG})")
    }
}

impl PartialEq for DpopKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner.pair.public_key().as_ref() == other.inner.pair.public_key().as_ref()
    }
}

impl Eq for DpopKey {}

fn key_error(what: &str) -> Error {
    Error::new(ErrorCode::AuthFailed, format!("DPoP: {what}"))
}

impl DpopKey {
    /// A new P-256 key pair from the system's random source.
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthFailed`] when the random source fails.
    pub fn generate() -> Result<Self> {
        let rng = SystemRandom::new();
        let alg = &sig::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .map_err(|_| key_error("cannot make a key pair"))?;
        Self::from_pkcs8(doc.as_ref().to_vec())
    }

    fn from_pkcs8(pkcs8: Vec<u8>) -> Result<Self> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|_| key_error("the stored key is not a P-256 key"))?;
        Ok(Self {
            inner: Arc::new(Inner { pkcs8, pair }),
        })
    }

    /// The key stored with `tokens`, if they are DPoP-bound and it is readable.
    pub fn from_tokens(tokens: &OAuthTokens) -> Option<Self> {
        let stored = tokens.extra.get(DPOP_KEY)?;
        if stored.get("alg").and_then(Value::as_str) != Some(DPOP_ALG) {
            return None;
        }
        let pkcs8 = stored.get("pkcs8").and_then(Value::as_str)?;
        Self::from_pkcs8(Base64UrlUnpadded::decode_vec(pkcs8).ok()?).ok()
    }

    /// Stores this key in `tokens`, replacing whatever the token endpoint's answer had there.
    pub fn write(&self, tokens: &mut OAuthTokens) {
        tokens.extra.insert(
            DPOP_KEY.to_owned(),
            json!({
                "alg": DPOP_ALG,
                "pkcs8": Base64UrlUnpadded::encode_string(&self.inner.pkcs8),
            }),
        );
    }

    /// Removes a field of the stored key's name from `tokens` (a token endpoint's answer).
    pub(crate) fn strip(tokens: &mut OAuthTokens) {
        tokens.extra.remove(DPOP_KEY);
    }

    /// The public key as a JWK (RFC 7518 §6.2.1): `kty` `EC`, `crv` `P-256`, `x`, `y`.
    pub fn public_jwk(&self) -> Value {
        // ring's public key is the uncompressed point: 0x04 || x || y, 32 bytes each.
        let point = self.inner.pair.public_key().as_ref();
        let x = point.get(1..33).unwrap_or_default();
        let y = point.get(33..65).unwrap_or_default();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": Base64UrlUnpadded::encode_string(x),
            "y": Base64UrlUnpadded::encode_string(y),
        })
    }

    /// A fresh DPoP proof (RFC 9449 §4.2) for one request: header `typ` `dpop+jwt`, `alg` `ES256`
    /// and the public `jwk`; claims a fresh random `jti`, `htm` = `method`, `htu` = `url` without
    /// its query and fragment, `iat` now, `nonce` when given and, on a request to a resource
    /// server, `ath` = base64url(SHA-256(`access_token`)).
    ///
    /// # Errors
    ///
    /// [`ErrorCode::AuthFailed`] when the random source fails.
    pub fn proof(
        &self,
        method: &str,
        url: &Url,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = json!({ "typ": DPOP_TYP, "alg": DPOP_ALG, "jwk": self.public_jwk() });
        let mut claims = json!({
            "jti": crate::signing::random_jti()?,
            "htm": method.to_ascii_uppercase(),
            "htu": htu.as_str(),
            "iat": iat,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = Value::from(nonce);
        }
        if let Some(token) = access_token {
            claims["ath"] = Value::from(access_token_hash(token));
        }
        let input = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
            Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
        );
        let signature = self
            .inner
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| key_error("cannot sign a proof"))?;
        Ok(crate::protocol::compact_jws(&input, signature.as_ref()))
    }
}

/// `ath` (RFC 9449 §4.2): base64url(SHA-256(the access token's ASCII)).
pub fn access_token_hash(access_token: &str) -> String {
    Base64UrlUnpadded::encode_string(
        ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes()).as_ref(),
    )
}

/// Whether `tokens` are DPoP-bound: the server issued them as `token_type` `DPoP` (RFC 9449 §5)
/// and their key is stored with them.
pub fn is_dpop_bound(tokens: &OAuthTokens) -> bool {
    tokens.token_type.eq_ignore_ascii_case("DPoP") && tokens.extra.contains_key(DPOP_KEY)
}

/// Whether `tokens` were issued as DPoP-bound (`token_type` `DPoP`, RFC 9449 §5) but no DPoP key
/// is stored with them: then they are useless — the resource server refuses a DPoP-bound token
/// presented as a Bearer token or without a proof signed by its key (RFC 9449 §7.1), and a proof
/// needs the key that is gone.
pub(crate) fn lost_key(tokens: &OAuthTokens) -> bool {
    tokens.token_type.eq_ignore_ascii_case("DPoP") && !tokens.extra.contains_key(DPOP_KEY)
}

/// Refuses tokens that lost their key (`token_type` `DPoP` but no DPoP key stored with them,
/// RFC 9449 §7.1: no proof can be made for them) as needing a new sign-in of `target`'s account.
/// `mcp status` shows such tokens as this error; the service's token getters refuse them with it.
///
/// # Errors
///
/// [`ErrorCode::AuthRequired`] naming the cause, for the tokens of `target`'s account.
pub fn check_key_kept(target: &crate::ProviderRef, tokens: &OAuthTokens) -> Result<()> {
    if !lost_key(tokens) {
        return Ok(());
    }
    let provider = target.as_str();
    let account = target.account();
    let whose = if account.is_default() {
        provider.to_owned()
    } else {
        format!("{provider} (account {account})")
    };
    Err(Error::new(
        ErrorCode::AuthRequired,
        format!(
            "the access token for {whose} is DPoP-bound (token_type DPoP, RFC 9449) but no DPoP key is stored with it: no server accepts it without a proof signed by that key; sign in again"
        ),
    )
    .with_step(crate::NextStep::SignIn {
        provider: provider.to_owned(),
    })
    .for_account(account))
}

/// Refuses a token endpoint's answer that says `token_type` `DPoP` though the request carried no
/// DPoP proof (no key is stored with `tokens`): RFC 9449 §5 binds a token to the key of the proof
/// that asked for it, so this token is bound to no key of ours and can never be presented (and a
/// Bearer use is refused by a conforming resource server, §7.1). Refused at once, with the server
/// named as the cause, rather than stored and then found useless by every later command.
///
/// # Errors
///
/// [`ErrorCode::AuthFailed`] for such an answer.
pub(crate) fn check_answer(tokens: &OAuthTokens) -> Result<()> {
    if !lost_key(tokens) {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::AuthFailed,
        "the authorization server answered token_type DPoP to a token request that carried no DPoP proof (RFC 9449 §5): the token is bound to no key of ours and cannot be used",
    )
    .with_hint(
        "the server's answer is wrong; if it offers DPoP, sign in with DPoP (without --no-dpop), else ask its operator",
    ))
}

/// Sends one request with a fresh proof of `key` (`send` gets the proof and sends it), and once
/// more with a new proof carrying the server's nonce when the answer asks for one: at a token
/// endpoint (no `access_token`) in its JSON body (RFC 9449 §8), at a resource server (a request
/// with the `access_token`, whose proof gets `ath`) in its `WWW-Authenticate` challenge (§9).
///
/// # Errors
///
/// As `send`; [`ErrorCode::AuthFailed`] when the random source fails.
pub(crate) async fn send_with_proof<F, Fut>(
    key: &DpopKey,
    method: &str,
    url: &Url,
    access_token: Option<&str>,
    send: F,
) -> Result<crate::http::RawResponse>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<crate::http::RawResponse>>,
{
    let raw = send(key.proof(method, url, None, access_token)?).await?;
    let challenges: &[String] = if access_token.is_some() {
        &raw.www_authenticate
    } else {
        &[]
    };
    let Some(nonce) = nonce_demand(raw.status, &raw.body, challenges, raw.dpop_nonce.as_deref())
        .map(str::to_owned)
    else {
        return Ok(raw);
    };
    tracing::debug!("the server asks for a DPoP nonce; retrying once with it");
    send(key.proof(method, url, Some(&nonce), access_token)?).await
}

/// Keeps the DPoP key of `old` on `new` (after a refresh or a renewal: the token stays bound to
/// the same key; a field of that name in the answer is the server's text).
pub(crate) fn carry_key(old: &OAuthTokens, new: &mut OAuthTokens) {
    new.extra.remove(DPOP_KEY);
    if let Some(value) = old.extra.get(DPOP_KEY) {
        new.extra.insert(DPOP_KEY.to_owned(), value.clone());
    }
}

/// The nonce a server asks for (RFC 9449 §8, §9): the `DPoP-Nonce` header's value when the answer
/// is an `use_dpop_nonce` error, in its JSON body (authorization server, HTTP 400) or its
/// `WWW-Authenticate` challenge (resource server, HTTP 401).
pub fn nonce_demand<'a>(
    status: u16,
    body: &[u8],
    www_authenticate: &[String],
    dpop_nonce: Option<&'a str>,
) -> Option<&'a str> {
    let nonce = dpop_nonce.filter(|n| !n.is_empty())?;
    let in_body = status == 400
        && serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| {
                v.get("error")
                    .and_then(Value::as_str)
                    .map(|e| e == USE_DPOP_NONCE)
            })
            .unwrap_or(false);
    let in_challenge = status == 401
        && www_authenticate.iter().any(|c| {
            c.contains(USE_DPOP_NONCE) && c.trim_start().to_ascii_lowercase().starts_with("dpop")
        });
    (in_body || in_challenge).then_some(nonce)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::tokens::AccessToken;

    fn decode(segment: &str) -> Value {
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(segment).unwrap()).unwrap()
    }

    /// A `DPoP` token without its key is refused as needing a sign-in of its account; a bound
    /// token with its key, and a Bearer token, are not.
    #[test]
    fn a_dpop_token_without_its_key_needs_a_sign_in() {
        let work = crate::storage::AccountName::new("work").unwrap();
        let target = crate::ProviderRef::parse("local")
            .unwrap()
            .with_account(work.clone());
        let mut tokens = OAuthTokens::new(AccessToken::new("at"), "dpop", SystemTime::now());
        assert!(lost_key(&tokens) && !is_dpop_bound(&tokens));
        let err = check_key_kept(&target, &tokens).unwrap_err();
        assert_eq!(err.code(), ErrorCode::AuthRequired);
        assert!(err.needs_sign_in());
        assert_eq!(err.account(), Some(&work));
        assert!(
            err.to_string()
                .starts_with("the access token for local (account work) is DPoP-bound"),
            "{err}"
        );
        DpopKey::generate().unwrap().write(&mut tokens);
        assert!(!lost_key(&tokens) && is_dpop_bound(&tokens));
        check_key_kept(&target, &tokens).unwrap();
        let bearer = OAuthTokens::new(AccessToken::new("at"), "Bearer", SystemTime::now());
        assert!(!lost_key(&bearer));
        check_key_kept(&target, &bearer).unwrap();
    }

    /// A proof verifies with the public key its own `jwk` header carries, and has the claims of
    /// RFC 9449 §4.2.
    #[test]
    fn a_proof_verifies_with_its_embedded_jwk_and_has_the_claims() {
        let key = DpopKey::generate().unwrap();
        let url = Url::parse("https://mcp.example.com/mcp?x=1#f").unwrap();
        let proof = key.proof("post", &url, Some("n-1"), Some("tok")).unwrap();
        let parts: Vec<&str> = proof.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert!(
            header["jwk"].get("d").is_none(),
            "no private part in the jwk"
        );
        let x = Base64UrlUnpadded::decode_vec(header["jwk"]["x"].as_str().unwrap()).unwrap();
        let y = Base64UrlUnpadded::decode_vec(header["jwk"]["y"].as_str().unwrap()).unwrap();
        let point = [&[4u8][..], &x, &y].concat();
        let signature = Base64UrlUnpadded::decode_vec(parts[2]).unwrap();
        sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, &point)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("the proof verifies with its jwk");
        let claims = decode(parts[1]);
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://mcp.example.com/mcp");
        assert_eq!(claims["nonce"], "n-1");
        // SHA-256("tok"), base64url.
        assert_eq!(claims["ath"], access_token_hash("tok"));
        assert_eq!(claims["ath"].as_str().unwrap().len(), 43);
        assert!(claims["iat"].as_u64().unwrap() > 1_700_000_000);
        let again = key.proof("POST", &url, None, None).unwrap();
        let claims2 = decode(again.split('.').nth(1).unwrap());
        assert_ne!(claims["jti"], claims2["jti"], "a fresh jti per proof");
        assert!(claims2.get("nonce").is_none() && claims2.get("ath").is_none());
    }

    #[test]
    fn the_key_round_trips_through_the_token_record() {
        let key = DpopKey::generate().unwrap();
        let mut tokens = OAuthTokens::new(AccessToken::new("at"), "DPoP", SystemTime::now());
        assert!(DpopKey::from_tokens(&tokens).is_none());
        key.write(&mut tokens);
        assert_eq!(DpopKey::from_tokens(&tokens), Some(key.clone()));
        assert!(is_dpop_bound(&tokens));
        assert_eq!(format!("{key:?}"), "DpopKey(ES256)");
        let stored = tokens.extra[DPOP_KEY]["pkcs8"].as_str().unwrap().to_owned();
        assert!(!format!("{tokens:?}").contains(&stored));
        let mut bearer = OAuthTokens::new(AccessToken::new("at"), "Bearer", SystemTime::now());
        carry_key(&tokens, &mut bearer);
        assert!(!is_dpop_bound(&bearer), "a Bearer answer is not bound");
    }

    #[test]
    fn nonce_demands() {
        let body = br#"{"error":"use_dpop_nonce"}"#;
        assert_eq!(nonce_demand(400, body, &[], Some("n")), Some("n"));
        assert_eq!(nonce_demand(400, body, &[], None), None);
        assert_eq!(
            nonce_demand(400, br#"{"error":"invalid_grant"}"#, &[], Some("n")),
            None
        );
        let challenge = vec![r#"DPoP error="use_dpop_nonce", resource_metadata="x""#.to_owned()];
        assert_eq!(nonce_demand(401, b"", &challenge, Some("r")), Some("r"));
        assert_eq!(nonce_demand(401, b"", &[], Some("r")), None);
    }
}
