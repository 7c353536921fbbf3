//! Bounded access to the system: capped reads under a (test-replaceable) root, and
//! external commands killed after a deadline.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Largest config or state file a check reads.
pub const MAX_READ: u64 = 64 << 20;

/// The host's file system as the checks see it: `/` in production, a temp tree in tests.
#[derive(Debug, Clone)]
pub struct Sys {
    pub root: PathBuf,
    pub commands: bool,
    pub timeout: Duration,
}

impl Sys {
    /// `abs` (an absolute host path) under the root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    pub fn exists(&self, abs: &str) -> bool {
        self.path(abs).exists()
    }

    /// Read a file (at most [`MAX_READ`] bytes) as lossy UTF-8.
    pub fn read(&self, abs: &str) -> std::io::Result<String> {
        read_capped(&self.path(abs))
    }

    /// Entries of a directory, sorted; empty when it cannot be read.
    pub fn list(&self, abs: &str) -> Vec<PathBuf> {
        list_dir(&self.path(abs))
    }

    /// Run `prog args…` when commands are allowed and `prog` is found on PATH (or under
    /// the root's /usr/sbin, /usr/bin, /sbin, /bin). Returns `None` when it is not run.
    /// Host-inspecting commands run only when auditing the real root `/`.
    pub fn run(&self, prog: &str, args: &[&str]) -> Option<CmdOutput> {
        if !self.commands || self.root != Path::new("/") {
            return None;
        }
        let exe = which(prog)?;
        run_with_timeout(Command::new(exe).args(args), self.timeout).ok()
    }
}

impl Sys {
    /// Run a client program (e.g. `mariadb`) whose answer does not depend on the root.
    pub fn run_client(&self, prog: &str, args: &[&str]) -> Option<std::io::Result<CmdOutput>> {
        if !self.commands {
            return None;
        }
        let exe = which(prog)?;
        Some(run_with_timeout(Command::new(exe).args(args), self.timeout))
    }
}

pub fn read_capped(p: &Path) -> std::io::Result<String> {
    let f = std::fs::File::open(p)?;
    let mut buf = Vec::new();
    f.take(MAX_READ).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub fn list_dir(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(p)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// An executable named `prog` on PATH or in the usual system directories.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for d in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        dirs.push(PathBuf::from(d));
    }
    dirs.into_iter().map(|d| d.join(prog)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

#[derive(Debug, Clone)]
pub struct CmdOutput {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

/// Run a command with no stdin, capture its output (capped), kill it after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> std::io::Result<CmdOutput> {
    use std::os::unix::process::CommandExt;
    // Own process group, so a timeout kills the command's children too (a grandchild
    // holding the output pipe open would otherwise keep us waiting).
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.take(MAX_READ).read_to_end(&mut b);
        }
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.take(1 << 20).read_to_end(&mut b);
        }
        b
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait()? {
            Some(s) => break s.code(),
            None if start.elapsed() >= timeout => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.kill();
                let _ = child.wait();
                timed_out = true;
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    Ok(CmdOutput {
        status,
        stdout,
        stderr,
        timed_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_killed_after_timeout() {
        let o = run_with_timeout(
            Command::new("sh").args(["-c", "echo hi; sleep 30"]),
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(o.timed_out);
        assert_eq!(o.status, None);
    }

    #[test]
    fn command_output_is_captured() {
        let o = run_with_timeout(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(20),
        )
        .unwrap();
        assert_eq!(o.stdout.trim(), "out");
        assert_eq!(o.stderr.trim(), "err");
        assert_eq!(o.status, Some(3));
    }
}
