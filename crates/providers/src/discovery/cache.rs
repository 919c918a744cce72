//! The cache of discovered metadata for configured providers that give only `issuer`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{AuthorizationServerMetadata, issuers_match};
use crate::error::{ErrorCode, Result};

#[derive(Serialize, Deserialize)]
struct CachedMetadata {
    fetched_at: f64,
    metadata: AuthorizationServerMetadata,
}

/// `home/cache/discovery`: where issuer metadata is cached (0600 JSON, one file per issuer).
pub(crate) fn metadata_cache_dir(home: &Path) -> PathBuf {
    home.join("cache").join("discovery")
}

fn cache_path(home: &Path, issuer: &str) -> Result<PathBuf> {
    let name = crate::provider_ref::issuer_name(
        issuer,
        ErrorCode::ConfigInvalid,
        "cannot name a cache file",
    )?;
    Ok(metadata_cache_dir(home).join(format!("{}.json", name.as_str())))
}

/// Cached metadata for `issuer` if present, for that issuer, and younger than `ttl`.
pub(crate) fn load_cached_metadata(
    home: &Path,
    issuer: &str,
    ttl: Duration,
) -> Option<AuthorizationServerMetadata> {
    let path = cache_path(home, issuer).ok()?;
    // A cache file another user could have planted is ignored (the metadata is fetched again).
    let bytes = match context_harness_storage::read_trusted(&path) {
        Ok(bytes) => bytes?,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the cached metadata");
            return None;
        }
    };
    let cached: CachedMetadata = serde_json::from_slice(&bytes).ok()?;
    let age = context_harness_tokens::unix_seconds(SystemTime::now()) - cached.fetched_at;
    (issuers_match(&cached.metadata.issuer, issuer) && (0.0..ttl.as_secs_f64()).contains(&age))
        .then_some(cached.metadata)
}

/// Writes `metadata` to the cache (0600, atomic). Failures are logged, not fatal.
pub(crate) fn store_cached_metadata(home: &Path, metadata: &AuthorizationServerMetadata) {
    let write = || -> std::result::Result<(), String> {
        let path = cache_path(home, &metadata.issuer).map_err(|e| e.to_string())?;
        let cached = CachedMetadata {
            fetched_at: context_harness_tokens::unix_seconds(SystemTime::now()),
            metadata: metadata.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&cached).map_err(|e| e.to_string())?;
        context_harness_storage::write_private_atomic(&path, &bytes).map_err(|e| e.to_string())
    };
    if let Err(e) = write() {
        tracing::warn!(error = %e, "could not cache the discovered metadata");
    }
}
