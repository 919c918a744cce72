//! The file store: one private JSON file per provider.

use std::path::{Path, PathBuf};

use context_harness_tokens::OAuthTokens;

use crate::error::{Error, Result};
use crate::fs::{read_private, remove_if_exists, tighten_dir, write_private_atomic};
use crate::{ProviderName, TokenStore};

/// Stores each provider's tokens in `<dir>/<provider>.json`, in the Python original's JSON format.
///
/// The directory is created 0700 and every file 0600 at creation; writes are atomic
/// ([`write_private_atomic`]). A directory or file another user could have written (group/other
/// write bits, another owner) or a symbolic link is refused with [`Error::Untrusted`]; group/other
/// *read* bits are tightened with a warning. A file that does not parse is reported as [`Error::Corrupt`] and is never deleted or
/// rewritten by a read. Concurrent writers in different processes should hold the provider's
/// [`ProviderLock`](crate::ProviderLock) around a read-modify-write; a plain save is atomic on its own.
///
/// Never touches D-Bus and never spawns threads.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// A store rooted at `dir` (usually `$CONTEXT_HARNESS_HOME/tokens`). Nothing is created until the
    /// first save.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory holding the token files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds `provider`'s tokens.
    pub fn path_for(&self, provider: &ProviderName) -> PathBuf {
        self.dir.join(format!("{}.json", provider.as_str()))
    }

    /// Whether a token file exists for `provider` (without reading or checking it).
    pub fn contains(&self, provider: &ProviderName) -> bool {
        self.path_for(provider).is_file()
    }
}

impl TokenStore for FileStore {
    fn save(&self, provider: &ProviderName, tokens: &OAuthTokens) -> Result<()> {
        let json = tokens.to_json().map_err(|e| Error::Encode {
            source: Box::new(e),
        })?;
        write_private_atomic(&self.path_for(provider), json.as_bytes())
    }

    fn load(&self, provider: &ProviderName) -> Result<Option<OAuthTokens>> {
        let path = self.path_for(provider);
        // Refuses a directory or file another user could have written, and a symbolic link.
        let Some(bytes) = read_private(&path)? else {
            return Ok(None);
        };
        tighten_dir(&self.dir);
        parse_tokens(&bytes, &path).map(Some)
    }

    fn delete(&self, provider: &ProviderName) -> Result<bool> {
        remove_if_exists(&self.path_for(provider))
    }

    fn name(&self) -> &'static str {
        "file"
    }

    fn location(&self, provider: &ProviderName) -> String {
        self.path_for(provider).display().to_string()
    }
}

/// Parses token JSON read from `path`; any failure is [`Error::Corrupt`] naming the file.
pub(crate) fn parse_tokens(bytes: &[u8], path: &Path) -> Result<OAuthTokens> {
    // A BOM, UTF-16 from another platform's editor: decoded in one place (`decode_text`).
    let text = crate::decode_text(bytes).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        source: format!("cannot be read as text: {e}").into(),
    })?;
    OAuthTokens::from_json(&text).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        source: Box::new(e),
    })
}
