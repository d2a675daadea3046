//! The file store and the compliance file store (call-flows.md "Web services"; issue 6).
//!
//! Files posted to rooms are stored once per content: `<dir>/<aa>/<sha256>` where `aa`
//! is the first two hex digits of the SHA-256 of the bytes (content-addressed: the same
//! bytes posted twice, or to two rooms, are stored once). The store's `files` table
//! maps (room, name) to the hash. Every uploaded file is also copied to the compliance
//! file store (same layout) so that the compliance record keeps the content even if the
//! file is later replaced.
//!
//! Writes go to a temporary file in the target directory, are synced, then renamed into
//! place: a crash leaves either no file or the whole file, never a torn one. A file
//! written for an upload whose batch then did not commit stays behind unreferenced
//! (content-addressed, so harmless; it is reused by the next upload of those bytes).
//!
//! The I/O is synchronous and runs on the core task, like SQLite (DESIGN.md: no
//! threads racing the simulated network); files are bounded by `[http] max_file_bytes`.

use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An upload written under a store's staging directory ([`FileStore::stage`]), not yet
/// in place: the web handler stages it before the core's turn, the core adopts it if
/// the upload is accepted, the handler removes what is left afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// SHA-256 of the content, 64 lower-case hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Where the staged copy is.
    pub path: PathBuf,
}

/// Longest file name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Checks a file name given by a client (XCCOS `fileUrl`, HTTP path segment). Errors:
/// why it is refused - empty, longer than [`MAX_NAME_BYTES`], `.` or containing `..`,
/// a path separator (`/`, `\`), a drive colon, or a control character.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the file name is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return Err("the file name is longer than 255 bytes");
    }
    if name.contains(['/', '\\']) {
        return Err("the file name contains a path separator");
    }
    if name == "." || name.contains("..") {
        return Err("the file name contains '..' or is '.'");
    }
    if name.contains(':') {
        return Err("the file name contains ':'");
    }
    if name.chars().any(char::is_control) {
        return Err("the file name contains a control character");
    }
    Ok(())
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A content-addressed directory of files (see the module docs).
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// The store rooted at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> FileStore {
        FileStore { dir: dir.into() }
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file with hash `sha256` (64 lower-case hex digits) lives. Errors:
    /// `InvalidInput` when `sha256` is not such a hash.
    pub fn path_of(&self, sha256: &str) -> io::Result<PathBuf> {
        let valid = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a SHA-256 hex digest: {sha256:?}"),
            ));
        }
        Ok(self.dir.join(&sha256[..2]).join(sha256))
    }

    /// Stores `bytes` under their SHA-256 (a no-op if already present) and returns the
    /// hash. Errors: the directory or the file could not be written.
    pub fn put(&self, bytes: &[u8]) -> io::Result<String> {
        let sha = sha256_hex(bytes);
        let path = self.path_of(&sha)?;
        if path.is_file() {
            return Ok(sha);
        }
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)?;
        let tmp = parent.join(format!(".{sha}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(sha)
    }

    /// Writes `bytes` (hashed here) and fsyncs them under the staging directory
    /// `<dir>/.incoming/` - before the core's turn, off its task (web handler) - for
    /// [`FileStore::adopt`] to move into place. Errors: the directory or the file could
    /// not be written.
    pub fn stage(&self, bytes: &[u8]) -> io::Result<Staged> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let sha256 = sha256_hex(bytes);
        let dir = self.dir.join(".incoming");
        std::fs::create_dir_all(&dir)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{sha256}.{n}.tmp"));
        let mut f = std::fs::File::create(&path)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(Staged {
            sha256,
            size: bytes.len() as u64,
            path,
        })
    }

    /// Moves a staged file into place (a rename; if the content is already stored the
    /// staged copy is removed). Errors: the rename failed.
    pub fn adopt(&self, staged: &Staged) -> io::Result<()> {
        let path = self.path_of(&staged.sha256)?;
        if path.is_file() {
            let _ = std::fs::remove_file(&staged.path);
            return Ok(());
        }
        std::fs::create_dir_all(path.parent().unwrap_or(&self.dir))?;
        std::fs::rename(&staged.path, &path)
    }

    /// Stores the file `from` (already stored elsewhere under `sha256`) here too: a hard
    /// link, or a copy (fsynced) where links are not possible. No-op if present.
    /// Errors: neither worked.
    pub fn link_from(&self, from: &Path, sha256: &str) -> io::Result<()> {
        let path = self.path_of(sha256)?;
        if path.is_file() {
            return Ok(());
        }
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)?;
        if std::fs::hard_link(from, &path).is_ok() {
            return Ok(());
        }
        let tmp = parent.join(format!(".{sha256}.tmp"));
        std::fs::copy(from, &tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)
    }

    /// The bytes stored under `sha256`. Errors: `NotFound`, or the read failed.
    pub fn get(&self, sha256: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path_of(sha256)?)
    }

    /// Whether a file with hash `sha256` is stored.
    pub fn contains(&self, sha256: &str) -> bool {
        self.path_of(sha256).is_ok_and(|p| p.is_file())
    }

    /// Number of files stored (for tests and tools; ignores temporary files).
    pub fn count(&self) -> usize {
        let Ok(dirs) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        dirs.flatten()
            .filter_map(|d| std::fs::read_dir(d.path()).ok())
            .flat_map(|files| files.flatten())
            .filter(|f| !f.file_name().to_string_lossy().starts_with('.'))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_separators_or_dotdot_are_refused() {
        for bad in [
            "", ".", "..", "../x", "a/b", "a\\b", "x..y", "c:evil", "a\nb", "a\0b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_name(&"a".repeat(256)).is_err());
        for good in [
            "report.txt",
            "Q3 plan (final).pdf",
            "ünïcode.md",
            ".profile",
        ] {
            assert_eq!(check_name(good), Ok(()), "{good:?} refused");
        }
    }

    #[test]
    fn staged_files_are_adopted_once_and_linked_into_a_second_store() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FileStore::new(dir.path().join("files"));
        let (a, b) = (fs.stage(b"hello").unwrap(), fs.stage(b"hello").unwrap());
        assert_ne!(a.path, b.path, "each upload has its own staged copy");
        assert_eq!(
            (a.sha256.as_str(), a.size),
            (sha256_hex(b"hello").as_str(), 5)
        );
        assert_eq!(fs.count(), 0, "staged is not stored");
        fs.adopt(&a).unwrap();
        fs.adopt(&b).unwrap();
        assert_eq!(fs.count(), 1);
        assert!(!a.path.exists() && !b.path.exists(), "no staged copy left");
        assert_eq!(fs.get(&a.sha256).unwrap(), b"hello");
        let other = FileStore::new(dir.path().join("compliance"));
        other
            .link_from(&fs.path_of(&a.sha256).unwrap(), &a.sha256)
            .unwrap();
        other
            .link_from(&fs.path_of(&a.sha256).unwrap(), &a.sha256)
            .unwrap();
        assert_eq!(
            (other.count(), other.get(&a.sha256).unwrap()),
            (1, b"hello".to_vec())
        );
    }

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FileStore::new(dir.path());
        let a = fs.put(b"hello").unwrap();
        assert_eq!(
            a,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(fs.put(b"hello").unwrap(), a);
        fs.put(b"other").unwrap();
        assert_eq!(fs.count(), 2);
        assert_eq!(fs.get(&a).unwrap(), b"hello");
        assert!(fs.path_of("../../etc/passwd").is_err());
        assert_eq!(
            fs.get(&"0".repeat(64)).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
