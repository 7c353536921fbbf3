//! Real-time watching: kernel events → re-hash the path → compare with the baseline →
//! findings, within milliseconds; responses (restore, deny) for critical files.
//!
//! Sources, best first: [`fan::Fanotify`] (whole filesystem, writer pid), then
//! [`ino::Inotify`] (no privileges needed), then polling sweeps. A queue overflow, a
//! restart or time spent down triggers a full sweep against the baseline: a change is
//! never missed, only reported late (`evidence.late = true`).

pub mod deny;
pub mod engine;
pub mod fan;
pub mod fpm;
pub mod ino;
pub mod respond;

use std::os::fd::RawFd;
use std::path::PathBuf;

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created, attributes changed, moved in.
    Changed,
    /// Written to (the file may still be open).
    Modified,
    /// Closed after writing: the moment to look.
    Closed,
    /// Deleted or moved away.
    Removed,
    /// The kernel queue overflowed: events were lost, sweep.
    Overflow,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub path: PathBuf,
    pub kind: EventKind,
    /// The process that caused it (fanotify only).
    pub writer: Option<Writer>,
}

/// The process behind an event, with what /proc said about it ([`process_info`]) when
/// the event was read: a script that writes and exits is gone by the time the path is
/// looked at.
#[derive(Debug, Clone)]
pub struct Writer {
    pub pid: i32,
    pub facts: std::sync::Arc<serde_json::Value>,
}

/// An event source the daemon polls.
pub trait Source {
    fn name(&self) -> &'static str;
    fn raw_fd(&self) -> RawFd;
    /// Read what is available (non-blocking after poll said readable).
    fn read(&mut self, out: &mut Vec<Event>) -> std::io::Result<()>;
}

/// Best-effort facts about a process, from /proc (it may already be gone).
pub fn process_info(pid: i32) -> serde_json::Value {
    let base = format!("/proc/{pid}");
    let exe = std::fs::read_link(format!("{base}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let cmdline = std::fs::read(format!("{base}/cmdline")).ok().map(|b| {
        let s: Vec<String> = b
            .split(|&c| c == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        mamori_core::pan::mask_pans(&s.join(" ")).into_owned()
    });
    let status = std::fs::read_to_string(format!("{base}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok())
    };
    let uid = field("Uid:");
    let user = uid.and_then(|u| {
        nix::unistd::User::from_uid(u.into())
            .ok()
            .flatten()
            .map(|u| u.name)
    });
    let ppid = field("PPid:");
    let parent_exe = ppid.and_then(|pp| {
        std::fs::read_link(format!("/proc/{pp}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    });
    serde_json::json!({
        "pid": pid, "exe": exe, "cmdline": cmdline, "uid": uid, "user": user,
        "ppid": ppid, "parent_exe": parent_exe,
    })
}
