//! Private, atomic file writing and permission checks.
//!
//! On Unix, directories are created 0700 and files 0600 at `open` time (never chmod-after-write);
//! existing ones that another user could have written are refused ([`crate::trust`]), readable ones
//! are tightened with a warning. On other platforms (Windows)
//! files inherit the ACL of the user's profile directory, which is private to the user by default;
//! the mode handling below compiles to nothing there.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

use crate::error::{Error, Result};
use crate::trust::parent_dir;

/// Mode of directories this crate creates.
#[cfg(unix)]
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of files this crate creates.
#[cfg(unix)]
pub(crate) const FILE_MODE: u32 = 0o600;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically and privately.
///
/// The bytes go to a new temporary file in the same directory, created with mode 0600 at `open`
/// (`O_CREAT|O_EXCL`, so never through an existing file or symlink); the file is flushed with
/// `fsync`, renamed over `path`, and the directory is `fsync`ed so the rename itself is durable.
/// A reader (or a crash at any moment) therefore sees either the old content or the new content,
/// never a mix. A missing parent directory is created with mode 0700; an existing one with
/// group/other permission bits is tightened to 0700 (with a warning).
///
/// Used for token files and reusable for any other private JSON (e.g. dynamic client registrations).
///
/// # Errors
///
/// [`Error::Io`] when the directory cannot be created or the file cannot be written, synced or
/// renamed. The temporary file is removed on failure (a crash can leave one behind, named
/// `.<file>.tmp.<pid>.<n>`; it never replaces the real file).
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    ensure_private_dir(dir)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| {
            Error::io(
                "write",
                path,
                io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
            )
        })?
        .to_string_lossy()
        .into_owned();

    let (tmp_path, mut file) = create_temp(dir, &file_name)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", &tmp_path, e));
    drop(file);
    let renamed = written.and_then(|()| {
        fs::rename(&tmp_path, path).map_err(|e| Error::io("rename into place", path, e))
    });
    if let Err(err) = renamed {
        let _ = fs::remove_file(&tmp_path);
        return Err(err);
    }
    sync_dir(dir)?;
    remove_stale_temps(dir, &file_name);
    Ok(())
}

/// Removes temporary files for `file_name` left behind by writers that died (e.g. were killed)
/// mid-write, so no stray copy of a secret lingers. Only files whose writer process no longer exists
/// are removed, which is knowable only where `/proc` exists; elsewhere they stay (they are 0600 and
/// never read).
fn remove_stale_temps(dir: &Path, file_name: &str) {
    #[cfg(target_os = "linux")]
    {
        let prefix = format!(".{file_name}.tmp.");
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            // Exactly `<pid>.<n>`, as `create_temp` names it: `.{name}.tmp.` is also how the
            // temporary files of longer names begin (account `a.json.tmp.5`'s file
            // `local@a.json.tmp.5.json` against `local@a.json`), and those are not ours.
            let Some((pid, n)) = rest.split_once('.') else {
                continue;
            };
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(pid) || !digits(n) {
                continue;
            }
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (dir, file_name);
}

fn create_temp(dir: &Path, file_name: &str) -> Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut last_err = None;
    for _ in 0..16 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{file_name}.tmp.{pid}.{n}"));
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        opts.mode(FILE_MODE);
        match opts.open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some((tmp, e)),
            Err(e) => return Err(Error::io("create", tmp, e)),
        }
    }
    let (tmp, e) = last_err.unwrap_or_else(|| {
        (
            dir.to_path_buf(),
            io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary name"),
        )
    });
    Err(Error::io("create", tmp, e))
}

/// `fsync` a directory so that renames and unlinks in it are durable (no-op off Unix).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates `dir` (and missing parents) with mode 0700; an existing one must be trusted
/// ([`check_dir`](crate::check_dir): owned by the effective user, not group/other-writable) and is
/// tightened to 0700 (with a warning) when group or others may read it.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(DIR_MODE);
    builder
        .create(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    crate::trust::check_dir(dir)?;
    tighten_dir(dir);
    Ok(())
}

/// If `dir` exists, is trusted and has group/other read or search bits, chmod it to 0700 and warn. Errors only warn: the caller's
/// own operation reports anything that really fails.
pub(crate) fn tighten_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = fs::metadata(dir) {
        let mode = meta.permissions().mode() & 0o777;
        // Only a directory that passes `check_dir` (ours, not writable by others) is tightened here; a
        // writable or foreign one is refused by the caller's check instead of being quietly repaired.
        if meta.is_dir() && mode & 0o077 != 0 && crate::trust::check_dir(dir).is_ok() {
            let result = fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE));
            report_tightening(
                dir,
                "token directory",
                "accessible to",
                mode,
                DIR_MODE,
                result,
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Warns that `what` at `path` had group/other bits (`mode`) and was tightened to `to`, or could
/// not be (`result`); `access` says what others could do (`"readable by"`).
#[cfg(unix)]
fn report_tightening(
    path: &Path,
    what: &str,
    access: &str,
    mode: u32,
    to: u32,
    result: io::Result<()>,
) {
    match result {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            "{what} was {access} other users (mode {mode:o}); tightened to {to:o}"
        ),
        Err(err) => tracing::warn!(
            path = %path.display(),
            error = %err,
            "{what} is {access} other users (mode {mode:o}) and could not be tightened"
        ),
    }
}

/// If the open `file` has group/other bits, chmod it (through the descriptor) to 0600 and warn.
pub(crate) fn tighten_file(file: &File, path: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = file.metadata() {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let result = file.set_permissions(fs::Permissions::from_mode(FILE_MODE));
            report_tightening(path, "token file", "readable by", mode, FILE_MODE, result);
        }
    }
    #[cfg(not(unix))]
    let _ = (file, path);
}

/// Removes `path`; `Ok(false)` when it was not there. Syncs the directory after a removal.
pub(crate) fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(parent_dir(path))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Reads a small private file through [`open_trusted`](crate::open_trusted) (no symbolic link, owned
/// by the effective user, not group/other-writable) and at most
/// [`MAX_FILE_BYTES`](crate::MAX_FILE_BYTES), as [`read_trusted`](crate::read_trusted): `Ok(None)`
/// when absent; group/other-readable permissions are tightened to 0600 first.
pub(crate) fn read_private(path: &Path) -> Result<Option<Vec<u8>>> {
    let Some((file, meta)) = crate::trust::open_checked(path)? else {
        return Ok(None);
    };
    tighten_file(&file, path);
    crate::trust::read_capped(file, &meta, path).map(Some)
}
