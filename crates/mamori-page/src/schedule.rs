//! The scheduled check for `watch`: every `[page] interval` seconds (default hourly), load
//! every configured page, compare with its approved inventory, deliver findings. The
//! browser runs only during a check; nothing stays resident between checks.

use crate::{CheckOutcome, Loader, PageConfig, check_url};
use mamori_core::store::{Key, Store};
use mamori_core::{Finding, Lang};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the scheduled check reports.
#[derive(Debug)]
pub enum PageEvent {
    /// A finding (deliver it like any other: store, alerts, output).
    Finding(Box<Finding>),
    /// A page that could not be checked this time: one localized line.
    Error { url: String, message: String },
    /// A round finished.
    Round { pages: usize, findings: usize },
}

/// Where the scheduled check reads approved inventories.
#[derive(Debug, Clone)]
pub struct StorePaths {
    pub db: PathBuf,
    pub key: PathBuf,
}

/// A running scheduled check. Dropping it (or [`ScheduledCheck::stop`]) stops it after
/// the page being loaded, if any.
pub struct ScheduledCheck {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ScheduledCheck {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ScheduledCheck {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One round over `cfg.urls`, events to `on_event`. Used by the scheduler; callable on
/// its own.
pub fn run_round(
    cfg: &PageConfig,
    store: &Store,
    host: &str,
    lang: Lang,
    on_event: &dyn Fn(PageEvent),
) {
    round(cfg, store, host, lang, on_event, &AtomicBool::new(false));
}

fn round(
    cfg: &PageConfig,
    store: &Store,
    host: &str,
    lang: Lang,
    on_event: &dyn Fn(PageEvent),
    stop: &AtomicBool,
) {
    let mut loader = match Loader::new(cfg, false) {
        Ok(l) => l,
        Err(e) => {
            for u in &cfg.urls {
                on_event(PageEvent::Error {
                    url: u.clone(),
                    message: e.localized(lang),
                });
            }
            return;
        }
    };
    let mut n = 0;
    for url in &cfg.urls {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match check_url(&mut loader, store, url, lang, host) {
            Ok(CheckOutcome::Checked { findings, .. } | CheckOutcome::Tampered { findings }) => {
                n += findings.len();
                for f in findings {
                    on_event(PageEvent::Finding(Box::new(f)));
                }
            }
            Ok(CheckOutcome::NotApproved) => on_event(PageEvent::Error {
                url: url.clone(),
                message: crate::not_approved_message(url, lang),
            }),
            Err(e) => on_event(PageEvent::Error {
                url: url.clone(),
                message: e.localized(lang),
            }),
        }
    }
    on_event(PageEvent::Round {
        pages: cfg.urls.len(),
        findings: n,
    });
}

/// Start checking `cfg.urls` every `cfg.interval` seconds on a thread, the first round
/// after `first_after`. Nothing is started when no URL is configured (returns `None`).
pub fn start_scheduled_checks(
    cfg: PageConfig,
    store: StorePaths,
    host: &str,
    lang: Lang,
    first_after: Duration,
    on_event: impl Fn(PageEvent) + Send + 'static,
) -> Option<ScheduledCheck> {
    if cfg.urls.is_empty() {
        return None;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let host = host.to_string();
    let thread = std::thread::Builder::new()
        .name("mamori-page".into())
        .spawn(move || {
            let interval = Duration::from_secs(cfg.interval);
            let mut next = Instant::now() + first_after;
            loop {
                while Instant::now() < next {
                    if st.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                next = Instant::now() + interval;
                let opened =
                    Key::load_or_create(&store.key).and_then(|k| Store::open(&store.db, k));
                match opened {
                    Ok(s) => round(&cfg, &s, &host, lang, &on_event, &st),
                    Err(e) => {
                        for u in &cfg.urls {
                            on_event(PageEvent::Error {
                                url: u.clone(),
                                message: e.localized(lang),
                            });
                        }
                    }
                }
            }
        })
        .ok()?;
    Some(ScheduledCheck {
        stop,
        thread: Some(thread),
    })
}
