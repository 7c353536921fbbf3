//! fanotify in FID mode (`FAN_REPORT_DFID_NAME | FAN_REPORT_FID`), one filesystem mark
//! per watched filesystem: create, modify, close-write, attrib, moves and deletes, with
//! the writer's pid. Paths are rebuilt from directory handles (`open_by_handle_at`);
//! decisions per directory are cached, so events outside the roots or in ignored
//! directories cost a hash-map lookup.

use super::{Event, EventKind, Source, Writer};
use nix::libc;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MASK: u64 = libc::FAN_CREATE
    | libc::FAN_MODIFY
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_ATTRIB
    | libc::FAN_MOVED_FROM
    | libc::FAN_MOVED_TO
    | libc::FAN_DELETE
    | libc::FAN_DELETE_SELF
    | libc::FAN_MOVE_SELF
    | libc::FAN_ONDIR;

pub struct Fanotify {
    fd: OwnedFd,
    /// One open directory per watched filesystem, for `open_by_handle_at`.
    mounts: Vec<(libc::fsid_t, OwnedFd)>,
    roots: Vec<PathBuf>,
    /// Directory handle → resolved directory path (None: outside every root).
    dir_cache: HashMap<Vec<u8>, Option<PathBuf>>,
    buf: Vec<u8>,
    /// Writer pid → what /proc said, read when its first event arrived: a script that
    /// writes and exits is gone (or a zombie with no exe) by the time the path is looked
    /// at, so the facts are taken here. Kept for [`WRITER_TTL`].
    writers: HashMap<i32, (Instant, Arc<serde_json::Value>)>,
}

/// How long a writer's /proc facts are reused for its further events.
const WRITER_TTL: Duration = Duration::from_secs(2);

fn errno_err(what: &str) -> std::io::Error {
    let e = std::io::Error::last_os_error();
    std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn fsid_eq(a: &libc::fsid_t, b: &libc::fsid_t) -> bool {
    // fsid_t is opaque in libc; compare its bytes.
    let sa = unsafe {
        std::slice::from_raw_parts(
            (a as *const libc::fsid_t).cast::<u8>(),
            std::mem::size_of::<libc::fsid_t>(),
        )
    };
    let sb = unsafe {
        std::slice::from_raw_parts(
            (b as *const libc::fsid_t).cast::<u8>(),
            std::mem::size_of::<libc::fsid_t>(),
        )
    };
    sa == sb
}

impl Fanotify {
    /// Set up marks for the filesystems holding `roots`. Fails (and the caller falls
    /// back) without CAP_SYS_ADMIN or on kernels older than 5.9.
    pub fn new(roots: &[PathBuf]) -> std::io::Result<Fanotify> {
        // SAFETY: plain syscall; the returned fd is owned below.
        let fd = unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_NOTIF
                    | libc::FAN_CLOEXEC
                    | libc::FAN_REPORT_DFID_NAME
                    | libc::FAN_REPORT_FID,
                (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32,
            )
        };
        if fd < 0 {
            return Err(errno_err("fanotify_init"));
        }
        // SAFETY: fd is a fresh, valid descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut mounts: Vec<(libc::fsid_t, OwnedFd)> = Vec::new();
        for r in roots {
            let dir = std::fs::File::open(r)?;
            let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
            // SAFETY: valid fd and out-pointer.
            if unsafe { libc::fstatfs(dir.as_raw_fd(), &mut sfs) } != 0 {
                return Err(errno_err("fstatfs"));
            }
            if mounts.iter().any(|(f, _)| fsid_eq(f, &sfs.f_fsid)) {
                continue;
            }
            let c = std::ffi::CString::new(r.as_os_str().as_bytes())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            // SAFETY: valid fd and NUL-terminated path.
            let rc = unsafe {
                libc::fanotify_mark(
                    fd.as_raw_fd(),
                    libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
                    MASK,
                    libc::AT_FDCWD,
                    c.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(errno_err("fanotify_mark"));
            }
            mounts.push((sfs.f_fsid, OwnedFd::from(dir)));
        }
        Ok(Fanotify {
            fd,
            mounts,
            roots: roots.to_vec(),
            dir_cache: HashMap::new(),
            buf: vec![0u8; 256 * 1024],
            writers: HashMap::new(),
        })
    }

    /// The writer's facts, read now or reused from its earlier event.
    fn writer(&mut self, pid: i32) -> Writer {
        let now = Instant::now();
        if let Some((at, v)) = self.writers.get(&pid)
            && now.duration_since(*at) < WRITER_TTL
        {
            return Writer {
                pid,
                facts: Arc::clone(v),
            };
        }
        if self.writers.len() >= 1024 {
            self.writers
                .retain(|_, (at, _)| now.duration_since(*at) < WRITER_TTL);
        }
        let v = Arc::new(super::process_info(pid));
        self.writers.insert(pid, (now, Arc::clone(&v)));
        Writer { pid, facts: v }
    }

    fn resolve_dir(&mut self, fsid: &libc::fsid_t, handle: &[u8]) -> Option<PathBuf> {
        if let Some(p) = self.dir_cache.get(handle) {
            return p.clone();
        }
        let mount = self
            .mounts
            .iter()
            .find(|(f, _)| fsid_eq(f, fsid))
            .map(|(_, m)| m.as_raw_fd())?;
        // Copy the handle into an aligned buffer: struct file_handle + f_handle bytes.
        let mut h = vec![0u64; handle.len().div_ceil(8) + 1];
        // SAFETY: h has room for handle.len() bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                handle.as_ptr(),
                h.as_mut_ptr().cast::<u8>(),
                handle.len(),
            )
        };
        // SAFETY: h holds a file_handle as the kernel gave it.
        let dfd = unsafe {
            libc::open_by_handle_at(mount, h.as_mut_ptr().cast(), libc::O_PATH | libc::O_CLOEXEC)
        };
        let resolved = if dfd >= 0 {
            // SAFETY: fresh fd we own.
            let dfd = unsafe { OwnedFd::from_raw_fd(dfd) };
            std::fs::read_link(format!("/proc/self/fd/{}", dfd.as_raw_fd())).ok()
        } else {
            None
        };
        // A directory deleted meanwhile resolves to None: not cached.
        let resolved = resolved?;
        let inside = self.roots.iter().any(|r| resolved.starts_with(r));
        let val = inside.then_some(resolved);
        if self.dir_cache.len() > 100_000 {
            self.dir_cache.clear();
        }
        self.dir_cache.insert(handle.to_vec(), val.clone());
        val
    }

    fn parse(&mut self, n: usize, out: &mut Vec<Event>) {
        let meta_len = std::mem::size_of::<libc::fanotify_event_metadata>();
        let mut off = 0usize;
        while off + meta_len <= n {
            // SAFETY: the kernel wrote whole records; read unaligned copies.
            let m: libc::fanotify_event_metadata =
                unsafe { std::ptr::read_unaligned(self.buf[off..].as_ptr().cast()) };
            let ev_len = m.event_len as usize;
            if ev_len < meta_len || off + ev_len > n {
                break;
            }
            if m.fd >= 0 {
                // FID mode gives no fds, but never leak one.
                // SAFETY: the kernel handed us this fd.
                drop(unsafe { OwnedFd::from_raw_fd(m.fd) });
            }
            let pid = (m.pid > 0).then_some(m.pid);
            if m.mask & libc::FAN_Q_OVERFLOW != 0 {
                out.push(Event {
                    path: PathBuf::new(),
                    kind: EventKind::Overflow,
                    writer: None,
                });
                off += ev_len;
                continue;
            }
            let is_dir = m.mask & libc::FAN_ONDIR != 0;
            let kind = if m.mask
                & (libc::FAN_DELETE
                    | libc::FAN_MOVED_FROM
                    | libc::FAN_DELETE_SELF
                    | libc::FAN_MOVE_SELF)
                != 0
            {
                EventKind::Removed
            } else if m.mask & libc::FAN_CLOSE_WRITE != 0 {
                EventKind::Closed
            } else if m.mask & libc::FAN_MODIFY != 0 {
                EventKind::Modified
            } else {
                EventKind::Changed
            };
            if is_dir
                && m.mask & (libc::FAN_MOVED_FROM | libc::FAN_MOVED_TO | libc::FAN_DELETE) != 0
            {
                // A directory moved or vanished: cached dir paths may be stale.
                self.dir_cache.clear();
            }
            // Info records follow the metadata.
            let mut ioff = off + m.metadata_len as usize;
            let end = off + ev_len;
            while ioff + 4 <= end {
                let info_type = self.buf[ioff];
                let info_len =
                    u16::from_ne_bytes([self.buf[ioff + 2], self.buf[ioff + 3]]) as usize;
                if info_len < 4 || ioff + info_len > end {
                    break;
                }
                if info_type == libc::FAN_EVENT_INFO_TYPE_DFID_NAME
                    || info_type == libc::FAN_EVENT_INFO_TYPE_DFID
                    || info_type == libc::FAN_EVENT_INFO_TYPE_FID
                {
                    let rec = &self.buf[ioff..ioff + info_len];
                    // header(4) fsid(8) file_handle{handle_bytes u32, handle_type i32, bytes}
                    if rec.len() >= 4 + 8 + 8 {
                        let mut fsid: libc::fsid_t = unsafe { std::mem::zeroed() };
                        // SAFETY: fsid_t is 8 bytes of plain data.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                rec[4..12].as_ptr(),
                                (&mut fsid as *mut libc::fsid_t).cast::<u8>(),
                                8,
                            )
                        };
                        let hb = u32::from_ne_bytes([rec[12], rec[13], rec[14], rec[15]]) as usize;
                        let hend = 12 + 8 + hb;
                        if hend <= rec.len() {
                            let handle = rec[12..hend].to_vec();
                            let name = if info_type == libc::FAN_EVENT_INFO_TYPE_DFID_NAME {
                                let tail = &rec[hend..];
                                let nul = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
                                Some(tail[..nul].to_vec())
                            } else {
                                None
                            };
                            if info_type != libc::FAN_EVENT_INFO_TYPE_FID
                                && let Some(dir) = self.resolve_dir(&fsid, &handle)
                            {
                                let path = match &name {
                                    Some(nm) if !nm.is_empty() && nm != b"." => {
                                        dir.join(OsStr::from_bytes(nm))
                                    }
                                    _ => dir,
                                };
                                let writer = pid.map(|p| self.writer(p));
                                out.push(Event { path, kind, writer });
                                break;
                            }
                        }
                    }
                }
                ioff += info_len;
            }
            off += ev_len;
        }
    }
}

impl Source for Fanotify {
    fn name(&self) -> &'static str {
        "fanotify"
    }

    fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn read(&mut self, out: &mut Vec<Event>) -> std::io::Result<()> {
        // SAFETY: buf is valid for its length.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted
                || e.kind() == std::io::ErrorKind::WouldBlock
            {
                return Ok(());
            }
            return Err(e);
        }
        self.parse(n as usize, out);
        Ok(())
    }
}

/// Whether `p` is inside one of `roots`.
pub fn under_any(p: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|r| p.starts_with(r))
}
