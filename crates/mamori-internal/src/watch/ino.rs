//! The inotify fallback (no CAP_SYS_ADMIN, e.g. not root): one watch per directory,
//! added *before* the directory is listed so nothing created in between slips through;
//! ignored directories get no watch at all. No writer pid is available here.

use super::{Event, EventKind, Source};
use crate::rules::RootRules;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify as NixInotify, WatchDescriptor};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Inotify {
    ino: NixInotify,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    rules: Vec<Arc<RootRules>>,
    /// Set when watches could not be added (limit reached): the caller sweeps.
    pub degraded: Option<String>,
}

fn flags() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_DONT_FOLLOW
}

impl Inotify {
    pub fn new(rules: &[Arc<RootRules>]) -> std::io::Result<Inotify> {
        let ino = NixInotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(std::io::Error::from)?;
        let mut me = Inotify {
            ino,
            dirs: HashMap::new(),
            rules: rules.to_vec(),
            degraded: None,
        };
        let mut sink = Vec::new();
        for r in rules {
            me.add_tree(&r.root.clone(), &mut sink, false);
        }
        Ok(me)
    }

    pub fn watches(&self) -> usize {
        self.dirs.len()
    }

    fn ignored(&self, p: &Path) -> bool {
        self.rules.iter().any(|r| {
            p.strip_prefix(&r.root)
                .map(|rel| r.is_ignored(rel, true))
                .unwrap_or(false)
        })
    }

    /// Watch `dir` and everything below; with `report`, emit events for what is
    /// already inside (a directory created or moved in after we started).
    fn add_tree(&mut self, dir: &Path, out: &mut Vec<Event>, report: bool) {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            if self.ignored(&d) {
                continue;
            }
            match self.ino.add_watch(&d, flags() | AddWatchFlags::IN_ONLYDIR) {
                Ok(wd) => {
                    self.dirs.insert(wd, d.clone());
                }
                Err(e) => {
                    if e == nix::errno::Errno::ENOSPC {
                        self.degraded = Some(format!(
                            "inotify watch limit reached at {} (raise fs.inotify.max_user_watches)",
                            d.display()
                        ));
                    }
                    continue;
                }
            }
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if is_dir {
                    stack.push(p.clone());
                }
                if report {
                    out.push(Event {
                        path: p,
                        kind: EventKind::Changed,
                        writer: None,
                    });
                }
            }
        }
    }
}

impl Source for Inotify {
    fn name(&self) -> &'static str {
        "inotify"
    }

    fn raw_fd(&self) -> RawFd {
        self.ino.as_fd().as_raw_fd()
    }

    fn read(&mut self, out: &mut Vec<Event>) -> std::io::Result<()> {
        let events = match self.ino.read_events() {
            Ok(ev) => ev,
            Err(nix::errno::Errno::EAGAIN) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut new_dirs = Vec::new();
        for ev in events {
            if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                out.push(Event {
                    path: PathBuf::new(),
                    kind: EventKind::Overflow,
                    writer: None,
                });
                continue;
            }
            let Some(dir) = self.dirs.get(&ev.wd).cloned() else {
                continue;
            };
            if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                self.dirs.remove(&ev.wd);
                continue;
            }
            let path = match &ev.name {
                Some(n) => dir.join(n),
                None => dir.clone(),
            };
            let is_dir = ev.mask.contains(AddWatchFlags::IN_ISDIR);
            let kind = if ev.mask.intersects(
                AddWatchFlags::IN_DELETE
                    | AddWatchFlags::IN_MOVED_FROM
                    | AddWatchFlags::IN_DELETE_SELF,
            ) {
                EventKind::Removed
            } else if ev.mask.contains(AddWatchFlags::IN_CLOSE_WRITE) {
                EventKind::Closed
            } else if ev.mask.contains(AddWatchFlags::IN_MODIFY) {
                EventKind::Modified
            } else {
                EventKind::Changed
            };
            if is_dir
                && ev
                    .mask
                    .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
            {
                new_dirs.push(path.clone());
            }
            out.push(Event {
                path,
                kind,
                writer: None,
            });
        }
        for d in new_dirs {
            self.add_tree(&d, out, true);
        }
        Ok(())
    }
}
