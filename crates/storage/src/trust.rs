//! StrictModes for the home directory: refuse files and directories another local user could have
//! written, and never follow a symbolic link when opening a file.
//!
//! Like OpenSSH's `StrictModes` for `~/.ssh`, the home directory (`$CONTEXT_HARNESS_HOME`, default
//! `~/.context-harness`), its directories `tokens/`, `mcp/`, `registrations/`, `cache/`,
//! `cache/discovery/` and the file `providers.toml` must be owned by the effective user and not writable
//! by group or others; otherwise the program refuses to use them ([`Error::Untrusted`], naming the
//! path and the `chmod go-w PATH` / `chown USER PATH` that fixes it). A file that is not a regular
//! file (`lstat`) is refused without being opened; files are opened with `O_NOFOLLOW` (a symbolic link
//! is refused, not followed) and `O_NONBLOCK` (a FIFO cannot hang the open), and the opened descriptor
//! is checked with `fstat`: a regular file, owned by the effective user, not writable by group or
//! others. Checking the descriptor, not the path, leaves no window in which the file could be swapped
//! between check and use. Reads stop at [`MAX_FILE_BYTES`] ([`Error::TooLarge`]).
//!
//! [`read_trusted`] is the one way a file under the home directory is read; a tidy test in `xtask`
//! (`home_files_are_read_only_the_trusted_way`) fails on any other file read in production code.
//!
//! The parents of the home directory are not checked (a home under a sticky, root-owned `/tmp` is
//! fine). On platforms other than Unix these checks compile to nothing: files there inherit the ACL of
//! the user's profile directory.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::error::{Error, Result, TrustProblem};
use crate::layout;

/// The directories under the home directory that [`check_home`] checks (when they exist).
pub const HOME_DIRS: [&str; 5] = [
    layout::TOKENS_DIR,
    layout::MCP_DIR,
    layout::REGISTRATIONS_DIR,
    layout::CACHE_DIR,
    layout::DISCOVERY_CACHE_DIR,
];

/// The files directly under the home directory that [`check_home`] checks (when they exist).
pub const HOME_FILES: [&str; 1] = [layout::PROVIDERS_FILE];

/// Checks the home directory and the directories and files this program keeps in it
/// ([`HOME_DIRS`], [`HOME_FILES`]) the way OpenSSH's `StrictModes` checks `~/.ssh`: each that exists
/// must be owned by the effective user and not writable by group or others, and the files must be
/// regular files (not symbolic links). Missing ones are fine (nothing is read from them). Costs one
/// `stat` per path; does not change anything.
///
/// # Errors
///
/// [`Error::Untrusted`] naming the first offending path and the command that fixes it;
/// [`Error::Io`] when a path exists but cannot be examined.
pub fn check_home(home: &Path) -> Result<()> {
    if !check_dir(home)? {
        return Ok(());
    }
    for dir in HOME_DIRS {
        check_dir(&home.join(dir))?;
    }
    for file in HOME_FILES {
        drop(open_trusted(&home.join(file))?);
    }
    Ok(())
}

/// Checks that `dir`, if it exists, is a directory owned by the effective user and not writable by
/// group or others (following a symbolic link to it: the directory holding the link is checked by its
/// own caller). `Ok(false)` when it does not exist.
///
/// # Errors
///
/// [`Error::Untrusted`] with the fix; [`Error::Io`] when it cannot be examined.
pub fn check_dir(dir: &Path) -> Result<bool> {
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("examine", dir, e)),
    };
    if !meta.is_dir() {
        return Err(Error::untrusted(dir, TrustProblem::NotDirectory));
    }
    check_owner_mode(&meta, dir)?;
    Ok(true)
}

/// The most bytes [`read_trusted`] reads from one file under the home directory: 4 MiB. A larger
/// file is refused ([`Error::TooLarge`]) before anything is read.
///
/// The largest files this program writes there hold one HTTP response each (token files, recovery
/// files, client registrations, cached metadata), and the HTTP client reads at most 1 MiB of any
/// response; stored as pretty-printed JSON with a few fields of our own they stay well under 4 MiB.
/// `providers.toml` (hand-written), the `mcp/*.json` records and the `*.backend` records are a few
/// KiB at most. The cap keeps a planted huge file, or a device that never ends, from exhausting
/// memory: at most this many bytes plus one are ever read, whatever `fstat` says.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Opens `path` for reading if it is a file this user can trust: its directory passes [`check_dir`],
/// the path is a regular file (`lstat`: a symbolic link, FIFO, socket, device or directory is refused
/// without being opened), the open does not follow a symbolic link and cannot block
/// (`O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`), and the opened file (`fstat`, so a file swapped in after
/// the `lstat` is caught) is a regular file owned by the effective user and not writable by group or
/// others. `Ok(None)` when the file or its directory does not exist.
///
/// To read the file, use [`read_trusted`], which also caps its size.
///
/// # Errors
///
/// [`Error::Untrusted`] (symbolic link, not a regular file, foreign owner, group/other-writable, or
/// such a directory) with the fix; [`Error::Io`] when it cannot be opened or examined.
pub fn open_trusted(path: &Path) -> Result<Option<File>> {
    Ok(open_checked(path)?.map(|(file, _)| file))
}

/// [`open_trusted`], also returning the opened file's metadata (its `fstat`).
pub(crate) fn open_checked(path: &Path) -> Result<Option<(File, std::fs::Metadata)>> {
    if !check_dir(parent_dir(path))? {
        return Ok(None);
    }
    // Refuse what is not a regular file before opening it: opening a device can have effects of its
    // own (a tape rewinds, a modem hangs up), and a FIFO or link is refused below anyway.
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Error::untrusted(path, TrustProblem::Symlink));
        }
        Ok(meta) if !meta.is_file() => return Err(Error::untrusted(path, TrustProblem::NotFile)),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("examine", path, e)),
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(nofollow_flags());
    }
    let file = match opts.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            // ELOOP on Linux, EMLINK on FreeBSD, ...: ask the path itself what it is.
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::untrusted(path, TrustProblem::Symlink));
            }
            return Err(Error::io("open", path, e));
        }
    };
    let meta = check_open_file(&file, path)?;
    Ok(Some((file, meta)))
}

/// Reads a whole file with [`open_trusted`], at most [`MAX_FILE_BYTES`]: `Ok(None)` when it (or its
/// directory) does not exist.
///
/// This is the one way files under the home directory are read: records, registrations, cached
/// metadata, recovery files, `providers.toml` (a tidy test in `xtask` finds any other read).
///
/// # Errors
///
/// As [`open_trusted`]; [`Error::TooLarge`] when the file holds more than [`MAX_FILE_BYTES`] (nothing
/// past the cap is read); [`Error::Io`] when reading fails.
pub fn read_trusted(path: &Path) -> Result<Option<Vec<u8>>> {
    let Some((file, meta)) = open_checked(path)? else {
        return Ok(None);
    };
    read_capped(file, &meta, path).map(Some)
}

/// Reads the opened `file` (whose `fstat` is `meta`) to its end, refusing it with
/// [`Error::TooLarge`] past [`MAX_FILE_BYTES`]: by its size before reading, and by what it yields
/// (at most the cap plus one byte is read, so a file that grows or a size that lies cannot exhaust
/// memory).
pub(crate) fn read_capped(file: File, meta: &std::fs::Metadata, path: &Path) -> Result<Vec<u8>> {
    let too_large = || Error::TooLarge {
        path: path.to_path_buf(),
        limit: MAX_FILE_BYTES,
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_FILE_BYTES.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    if u64::try_from(buf.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(buf)
}

/// A file the platform provisions for this user and rotates in place — a workload identity token on
/// a Kubernetes projected volume, which the kubelet replaces by swapping a symbolic link — read with
/// the rules such a file can meet:
///
/// - symbolic links in `path` are resolved first (`realpath`), and everything below is checked on
///   the file they resolve to, which is opened without following links (`O_NOFOLLOW|O_NONBLOCK`)
///   and examined on the opened descriptor (`fstat`);
/// - that file is a regular file owned by the effective user or by root, and not writable by group
///   or others; the directory holding it is owned by the effective user or root and not writable by
///   group or others (so nobody else can have put it there or swap it);
/// - at most [`MAX_FILE_BYTES`] are read.
///
/// Returns the bytes, whether the file belongs to the effective user (else to root), and its
/// permission bits, so the caller can apply its own rule on who may read it (a file of the user's
/// own should be `0600`; a root-owned one is the platform's to protect). `Ok(None)` when the path
/// (or a link in it) leads nowhere.
///
/// # Errors
///
/// [`Error::Untrusted`] naming the resolved path or its directory and the problem;
/// [`Error::Io`] when it cannot be resolved, opened or read; [`Error::TooLarge`].
pub fn read_provisioned(path: &Path) -> Result<Option<(Vec<u8>, bool, u32)>> {
    let resolved = match std::fs::canonicalize(path) {
        Ok(resolved) => resolved,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("resolve", path, e)),
    };
    let dir = parent_dir(&resolved);
    let dir_meta = std::fs::metadata(dir).map_err(|e| Error::io("examine", dir, e))?;
    if !dir_meta.is_dir() {
        return Err(Error::untrusted(dir, TrustProblem::NotDirectory));
    }
    check_provisioned_owner_mode(&dir_meta, dir)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(nofollow_flags());
    }
    let file = match opts.open(&resolved) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &resolved, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io("examine", &resolved, e))?;
    if !meta.is_file() {
        return Err(Error::untrusted(&resolved, TrustProblem::NotFile));
    }
    check_provisioned_owner_mode(&meta, &resolved)?;
    let bytes = read_capped(file, &meta, &resolved)?;
    #[cfg(unix)]
    let (own, mode) = {
        use std::os::unix::fs::MetadataExt;
        let own = meta.uid() == rustix::process::geteuid().as_raw();
        (own, meta.mode() & 0o7777)
    };
    #[cfg(not(unix))]
    let (own, mode) = (true, 0o600);
    Ok(Some((bytes, own, mode)))
}

/// [`read_provisioned`]'s rule for the file and its directory: owned by the effective user or root,
/// not writable by group or others.
fn check_provisioned_owner_mode(meta: &std::fs::Metadata, path: &Path) -> Result<()> {
    owner_mode_rule(meta, path, true)
}

/// Checks an opened file (`fstat` on its descriptor): a regular file, owned by the effective user, not
/// writable by group or others. Returns its metadata.
pub(crate) fn check_open_file(file: &File, path: &Path) -> Result<std::fs::Metadata> {
    let meta = file.metadata().map_err(|e| Error::io("examine", path, e))?;
    if !meta.is_file() {
        return Err(Error::untrusted(path, TrustProblem::NotFile));
    }
    check_owner_mode(&meta, path)?;
    Ok(meta)
}

/// `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY` for `OpenOptionsExt::custom_flags`: no symbolic link is
/// followed, a FIFO cannot block the open, and a terminal never becomes the controlling one.
#[cfg(unix)]
pub(crate) fn nofollow_flags() -> i32 {
    let flags =
        rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    // The flag bits are small positive constants; fall back to no flags rather than wrap.
    i32::try_from(flags.bits()).unwrap_or(0)
}

/// The home directory's rule: owned by the effective user, not writable by group or others.
fn check_owner_mode(meta: &std::fs::Metadata, path: &Path) -> Result<()> {
    owner_mode_rule(meta, path, false)
}

/// Owned by the effective user (or by root when `root_too`), not writable by group or others.
#[cfg(unix)]
fn owner_mode_rule(meta: &std::fs::Metadata, path: &Path, root_too: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let expected = rustix::process::geteuid().as_raw();
    if meta.uid() != expected && !(root_too && meta.uid() == 0) {
        return Err(Error::untrusted(
            path,
            TrustProblem::Owner {
                owner: meta.uid(),
                expected,
            },
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Error::untrusted(path, TrustProblem::Writable { mode }));
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_mode_rule(_meta: &std::fs::Metadata, _path: &Path, _root_too: bool) -> Result<()> {
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_read_stops_at_the_cap_even_when_the_size_lies() {
        // The size of an empty file, the bytes of a device that never ends: the read stops one byte
        // past the cap instead of filling memory.
        let empty = tempfile::NamedTempFile::new().unwrap();
        let small = empty.as_file().metadata().unwrap();
        assert_eq!(small.len(), 0);
        let endless = File::open("/dev/zero").unwrap();
        let err = read_capped(endless, &small, Path::new("/dev/zero")).unwrap_err();
        assert!(err.is_too_large(), "{err:?}");
        // A file whose size is honest and small is read whole.
        std::fs::write(empty.path(), b"{}").unwrap();
        let meta = empty.as_file().metadata().unwrap();
        let bytes = read_capped(File::open(empty.path()).unwrap(), &meta, empty.path()).unwrap();
        assert_eq!(bytes, b"{}");
    }

    #[test]
    fn a_provisioned_file_is_read_through_links_but_not_when_others_may_write_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        // The projected-volume layout: token -> ..data/token, ..data -> ..2026_01_01/.
        let real = dir.path().join("..2026_01_01");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(real.join("token"), b"jwt").unwrap();
        std::fs::set_permissions(real.join("token"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::os::unix::fs::symlink("..2026_01_01", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/token", dir.path().join("token")).unwrap();
        let (bytes, own, mode) = read_provisioned(&dir.path().join("token"))
            .unwrap()
            .unwrap();
        assert_eq!((bytes.as_slice(), own, mode), (&b"jwt"[..], true, 0o600));
        assert!(
            read_provisioned(&dir.path().join("gone"))
                .unwrap()
                .is_none()
        );
        // Writable by others: refused, naming the file the link leads to.
        std::fs::set_permissions(real.join("token"), std::fs::Permissions::from_mode(0o622))
            .unwrap();
        let err = read_provisioned(&dir.path().join("token")).unwrap_err();
        assert!(err.to_string().contains("..2026_01_01"), "{err}");
        // In a directory others may write: refused.
        std::fs::set_permissions(real.join("token"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(read_provisioned(&dir.path().join("token")).is_err());
    }
}
