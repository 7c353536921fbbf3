//! `deny`: fanotify permission events refuse to open a critical file whose content no
//! longer matches the baseline, so the shop fails closed instead of skimming.
//!
//! Safety rules, because a permission listener can hang a system:
//! * the listener thread does nothing but answer; every answer is written before the
//!   next event is read, and any internal error answers ALLOW;
//! * opens by mamori itself are always allowed (it must read to hash and restore);
//! * only the directories of critical files are marked, never mamori's own directories;
//! * verified opens are cached by (device, inode, ctime, size), so the hot path is one
//!   `fstat` and a hash-map lookup; a write changes ctime and forces a re-check.

use nix::libc;
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// A refused open, for the daemon to report.
#[derive(Debug, Clone)]
pub struct Denied {
    pub path: PathBuf,
    pub pid: i32,
}

/// What the listener guards: absolute path → baseline BLAKE3.
pub type Guarded = HashMap<PathBuf, [u8; 32]>;

/// Shared with the daemon: the guarded set (replaced after an approval) and a switch
/// (off during a deploy).
#[derive(Clone)]
pub struct DenyState {
    pub guarded: Arc<RwLock<Guarded>>,
    pub active: Arc<AtomicBool>,
}

pub struct DenyGuard {
    pub marked_dirs: usize,
    pub thread: std::thread::JoinHandle<()>,
}

fn mark(fd: i32, dir: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: valid fd and NUL-terminated path.
    let rc = unsafe {
        libc::fanotify_mark(
            fd,
            libc::FAN_MARK_ADD,
            libc::FAN_OPEN_PERM | libc::FAN_OPEN_EXEC_PERM | libc::FAN_EVENT_ON_CHILD,
            libc::AT_FDCWD,
            c.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Start guarding. `private` are mamori's own directories: refused as mark targets.
pub fn start(
    state: DenyState,
    private: &[PathBuf],
    max_size: u64,
    on_deny: crossbeam_channel::Sender<Denied>,
) -> std::io::Result<DenyGuard> {
    // SAFETY: plain syscall; fd owned below.
    let fd = unsafe {
        libc::fanotify_init(
            libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC,
            (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut dirs: Vec<PathBuf> = state
        .guarded
        .read()
        .map_err(|_| std::io::Error::other("deny state poisoned"))?
        .keys()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut marked = 0;
    for d in &dirs {
        if private.iter().any(|p| d.starts_with(p)) {
            continue;
        }
        mark(fd.as_raw_fd(), d)?;
        marked += 1;
    }
    let me = std::process::id() as i32;
    let thread = std::thread::Builder::new()
        .name("mamori-deny".into())
        .spawn(move || listen(fd, state, me, max_size, on_deny))?;
    Ok(DenyGuard {
        marked_dirs: marked,
        thread,
    })
}

fn respond(group: i32, fd: i32, allow: bool) {
    let r = libc::fanotify_response {
        fd,
        response: if allow {
            libc::FAN_ALLOW
        } else {
            libc::FAN_DENY
        },
    };
    // SAFETY: writing a plain struct to the group fd.
    unsafe {
        libc::write(
            group,
            (&r as *const libc::fanotify_response).cast(),
            std::mem::size_of::<libc::fanotify_response>(),
        )
    };
}

/// Whether the opened file (fd from the kernel) still has the baseline content.
fn verify(file: &mut std::fs::File, want: &[u8; 32], max_size: u64) -> std::io::Result<bool> {
    let m = file.metadata()?;
    if m.len() > max_size {
        return Ok(false);
    }
    let mut h = blake3::Hasher::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().as_bytes() == want)
}

fn listen(
    group: OwnedFd,
    state: DenyState,
    me: i32,
    max_size: u64,
    on_deny: crossbeam_channel::Sender<Denied>,
) {
    let g = group.as_raw_fd();
    let meta_len = std::mem::size_of::<libc::fanotify_event_metadata>();
    let mut buf = vec![0u8; 64 * 1024];
    // (dev, ino, ctime_ns, size) → verdict
    let mut cache: HashMap<(u64, u64, i64, u64), bool> = HashMap::new();
    loop {
        // SAFETY: buf valid for its length.
        let n = unsafe { libc::read(g, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        let n = n as usize;
        let mut off = 0;
        while off + meta_len <= n {
            // SAFETY: the kernel wrote whole records.
            let m: libc::fanotify_event_metadata =
                unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
            let len = (m.event_len as usize).max(meta_len);
            off += len;
            if m.fd < 0 {
                continue;
            }
            // SAFETY: the kernel handed us this fd; File closes it.
            let mut file = unsafe { std::fs::File::from_raw_fd(m.fd) };
            let mut allow = true;
            if m.pid != me && state.active.load(Ordering::Relaxed) {
                let path = std::fs::read_link(format!("/proc/self/fd/{}", m.fd)).ok();
                let want = path
                    .as_ref()
                    .and_then(|p| state.guarded.read().ok().and_then(|g| g.get(p).copied()));
                if let Some(want) = want.as_ref() {
                    allow = match file.metadata() {
                        Ok(md) => {
                            let key = (
                                md.dev(),
                                md.ino(),
                                md.ctime() * 1_000_000_000 + md.ctime_nsec(),
                                md.len(),
                            );
                            match cache.get(&key) {
                                Some(v) => *v,
                                None => {
                                    // Any error: allow (never wedge the system).
                                    let v = verify(&mut file, want, max_size).unwrap_or(true);
                                    if cache.len() > 10_000 {
                                        cache.clear();
                                    }
                                    cache.insert(key, v);
                                    v
                                }
                            }
                        }
                        Err(_) => true,
                    };
                    if !allow && let Some(p) = path {
                        let _ = on_deny.try_send(Denied {
                            path: p,
                            pid: m.pid,
                        });
                    }
                }
            }
            respond(g, m.fd, allow);
            drop(file);
        }
    }
}
