//! Hashing one file safely: opened with O_NOFOLLOW | O_NONBLOCK (a FIFO swapped in after
//! the listing can neither block nor redirect us), re-checked with fstat, read in chunks.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// What hashing produced.
#[derive(Debug, Clone)]
pub struct Hashed {
    pub blake3: [u8; 32],
    pub sha256: Option<[u8; 32]>,
    /// fstat of the opened file (consistent with the hashed content).
    pub meta: std::fs::Metadata,
    /// The content, when asked to keep it (text files under the copy limit).
    pub content: Option<Vec<u8>>,
}

#[derive(Debug)]
pub enum HashError {
    Io(std::io::Error),
    /// Not a regular file any more (replaced between listing and open).
    NotRegular,
    TooLarge(u64),
}

/// Whether bytes look like text (no NUL in the first 8 KiB).
pub fn looks_text(b: &[u8]) -> bool {
    !b[..b.len().min(8192)].contains(&0)
}

/// Hash `path`. `sha256` adds a SHA-256; `keep_up_to` keeps the content of a text file
/// up to that size.
pub fn hash_file(
    path: &Path,
    max_size: u64,
    sha256: bool,
    keep_up_to: Option<u64>,
) -> Result<Hashed, HashError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            // ELOOP: the path became a symlink.
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                HashError::NotRegular
            } else {
                HashError::Io(e)
            }
        })?;
    let meta = f.metadata().map_err(HashError::Io)?;
    if !meta.file_type().is_file() {
        return Err(HashError::NotRegular);
    }
    if meta.size() > max_size {
        return Err(HashError::TooLarge(meta.size()));
    }
    hash_open(f, meta, sha256, keep_up_to)
}

fn hash_open(
    mut f: File,
    meta: std::fs::Metadata,
    sha256: bool,
    keep_up_to: Option<u64>,
) -> Result<Hashed, HashError> {
    use sha2::Digest;
    let mut b3 = blake3::Hasher::new();
    let mut s2 = sha256.then(sha2::Sha256::new);
    let keep = keep_up_to.is_some_and(|k| meta.size() <= k);
    let mut content = keep.then(|| Vec::with_capacity(meta.size() as usize));
    // One read buffer per thread, reused for every file (a fresh 256 KiB buffer per file
    // was an mmap/munmap pair, or heap churn, for each of a shop's 100k files).
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < READ_BUF {
            buf.resize(READ_BUF, 0);
        }
        read_into(&mut f, &mut buf, &mut b3, s2.as_mut(), content.as_mut())
    })?;
    if let Some(c) = &content
        && !looks_text(c)
    {
        content = None;
    }
    Ok(Hashed {
        blake3: *b3.finalize().as_bytes(),
        sha256: s2.map(|s| s.finalize().into()),
        meta,
        content,
    })
}

const READ_BUF: usize = 256 * 1024;

fn read_into(
    f: &mut File,
    buf: &mut [u8],
    b3: &mut blake3::Hasher,
    mut s2: Option<&mut sha2::Sha256>,
    mut content: Option<&mut Vec<u8>>,
) -> Result<(), HashError> {
    use sha2::Digest;
    loop {
        let n = match f.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HashError::Io(e)),
        };
        b3.update(&buf[..n]);
        if let Some(s) = s2.as_deref_mut() {
            s.update(&buf[..n]);
        }
        if let Some(c) = content.as_deref_mut() {
            c.extend_from_slice(&buf[..n]);
        }
    }
    Ok(())
}

pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_keeps_text() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.php");
        std::fs::write(&p, b"<?php echo 1;").unwrap();
        let h = hash_file(&p, u64::MAX, true, Some(100)).unwrap();
        assert_eq!(h.blake3, *blake3::hash(b"<?php echo 1;").as_bytes());
        assert!(h.sha256.is_some());
        assert_eq!(h.content.as_deref(), Some(&b"<?php echo 1;"[..]));
        std::fs::write(&p, b"\x89PNG\0\0").unwrap();
        let h = hash_file(&p, u64::MAX, false, Some(100)).unwrap();
        assert!(h.content.is_none());
        assert!(matches!(
            hash_file(&p, 2, false, None),
            Err(HashError::TooLarge(6))
        ));
    }

    #[test]
    fn refuses_symlinks_and_fifos() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("t");
        std::fs::write(&t, b"x").unwrap();
        let l = d.path().join("l");
        std::os::unix::fs::symlink(&t, &l).unwrap();
        assert!(matches!(
            hash_file(&l, u64::MAX, false, None),
            Err(HashError::NotRegular)
        ));
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Must not block.
        assert!(matches!(
            hash_file(&fifo, u64::MAX, false, None),
            Err(HashError::NotRegular)
        ));
    }
}
