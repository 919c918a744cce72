//! The error for saving and loading token JSON.

use std::fmt;

/// The result type of this crate's JSON functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Saving or loading token JSON failed.
///
/// The message gives the category and position only. serde_json's own messages can quote the offending
/// value (which may be a token), so the underlying error is deliberately neither formatted in nor
/// returned from `source()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    line: usize,
    column: usize,
    missing_field: Option<String>,
}

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text is not JSON at all (a syntax error).
    Syntax,
    /// The text is JSON but not a token object: a required field is missing or has the wrong type.
    Data,
    /// The text ends in the middle of a JSON value (e.g. a truncated file).
    Eof,
    /// Saving: `issued_at` or `refresh_failed_at` is NaN or infinite, which JSON cannot represent.
    NonFiniteTime,
    /// Saving: the serializer failed for another reason.
    Serialize,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The 1-based line where parsing stopped (0 when not from parsing).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The 1-based column where parsing stopped (0 when not from parsing).
    pub fn column(&self) -> usize {
        self.column
    }

    /// The name of a required field that is missing, when that is the failure.
    pub fn missing_field(&self) -> Option<&str> {
        self.missing_field.as_deref()
    }

    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            line: 0,
            column: 0,
            missing_field: None,
        }
    }

    pub(crate) fn from_json(err: &serde_json::Error, reading: bool) -> Self {
        use serde_json::error::Category;
        let kind = match err.classify() {
            Category::Syntax => ErrorKind::Syntax,
            Category::Eof => ErrorKind::Eof,
            Category::Data => ErrorKind::Data,
            Category::Io if reading => ErrorKind::Syntax,
            Category::Io => ErrorKind::Serialize,
        };
        // "missing field `name`" is the one serde message that names no value, only a field.
        let missing_field = err
            .to_string()
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name)
            .filter(|name| {
                !name.is_empty()
                    && name.len() <= 64
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
            .map(str::to_owned);
        Self {
            kind,
            line: err.line(),
            column: err.column(),
            missing_field,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Syntax => f.write_str("token json has a syntax error")?,
            ErrorKind::Eof => f.write_str("token json ends early")?,
            ErrorKind::Data => match &self.missing_field {
                Some(name) => write!(f, "token json is missing the field `{name}`")?,
                None => f.write_str("token json has a missing or mistyped field")?,
            },
            ErrorKind::NonFiniteTime => {
                return f.write_str("token times must be finite numbers to be saved");
            }
            ErrorKind::Serialize => return f.write_str("token json could not be written"),
        }
        if self.line > 0 {
            write!(f, " at line {} column {}", self.line, self.column)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
