//! The dispatcher: one bounded queue and one worker thread per sink. `send` never
//! blocks; workers retry with exponential backoff; `shutdown` drains within a deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use mamori_core::{Finding, Lang, Severity, tr};

use crate::AlertError;
use crate::config::{AlertConfig, SinkConfig};
use crate::sink::{
    Sink, email::EmailSink, jsonl::JsonlSink, syslog::SyslogSink, webhook::WebhookSink,
};

/// Counters of one sink, for status output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStats {
    /// `alert.sink[N]`.
    pub key: String,
    /// `jsonl`, `syslog`, `email` or `webhook`.
    pub kind: &'static str,
    /// The `name` from the config, else `kind`.
    pub name: String,
    pub min_severity: Severity,
    /// Findings delivered.
    pub sent: u64,
    /// Findings given up on: every attempt failed, a permanent error, or still
    /// undelivered when `shutdown`'s deadline passed.
    pub failed: u64,
    /// Findings not queued because the queue was full.
    pub dropped: u64,
    /// Findings queued or in delivery right now.
    pub pending: u64,
    /// The last delivery error (in the dispatcher's language), if any.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    max_attempts: u32,
    initial: Duration,
    max: Duration,
}

/// What the workers share with the dispatcher.
#[derive(Debug, Default)]
struct Shared {
    /// Set once by `shutdown`: after it, workers abandon what is left.
    deadline: OnceLock<Instant>,
}

impl Shared {
    fn past_deadline(&self) -> bool {
        self.deadline.get().is_some_and(|d| Instant::now() >= *d)
    }
}

#[derive(Debug)]
struct SinkHandle {
    key: String,
    kind: &'static str,
    name: String,
    min_severity: Severity,
    tx: Option<Sender<Arc<Finding>>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl SinkHandle {
    fn stats(&self) -> SinkStats {
        let c = &self.counters;
        let (queued, sent, failed) = (
            c.queued.load(Ordering::Relaxed),
            c.sent.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
        );
        SinkStats {
            key: self.key.clone(),
            kind: self.kind,
            name: self.name.clone(),
            min_severity: self.min_severity,
            sent,
            failed,
            dropped: c.dropped.load(Ordering::Relaxed),
            pending: queued.saturating_sub(sent + failed),
            last_error: c.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
        }
    }
}

/// Sends findings to every configured sink without ever blocking the caller.
///
/// `Send + Sync`: share it (`Arc`) between detector threads.
#[derive(Debug)]
pub struct AlertDispatcher {
    sinks: Vec<SinkHandle>,
    lang: Lang,
    shared: Arc<Shared>,
    /// Dropped by `shutdown` to wake workers sleeping between retries.
    stop_tx: Option<Sender<()>>,
    done_rx: Receiver<()>,
}

impl AlertDispatcher {
    /// Check every sink's settings (reading password / header files now), then start
    /// one worker thread per sink. An empty config gives a dispatcher that does nothing.
    pub fn new(config: &AlertConfig, host: &str, lang: Lang) -> Result<Self, AlertError> {
        if config.queue_size == 0 || config.queue_size > 1_000_000 {
            return Err(AlertError::OutOfRange {
                key: "alert.queue_size".into(),
                range: "1..=1000000",
            });
        }
        if config.max_attempts == 0 || config.max_attempts > 100 {
            return Err(AlertError::OutOfRange {
                key: "alert.max_attempts".into(),
                range: "1..=100",
            });
        }
        if config.backoff_max_ms < config.backoff_initial_ms {
            return Err(AlertError::OutOfRange {
                key: "alert.backoff_max_ms".into(),
                range: ">= alert.backoff_initial_ms",
            });
        }
        let retry = Retry {
            max_attempts: config.max_attempts,
            initial: Duration::from_millis(config.backoff_initial_ms),
            max: Duration::from_millis(config.backoff_max_ms),
        };

        // Build every sink first so one bad entry starts no thread at all.
        let mut built: Vec<(String, &SinkConfig, Box<dyn Sink>)> = Vec::new();
        for (i, sc) in config.sinks.iter().enumerate() {
            let key = format!("alert.sink[{i}]");
            let sink: Box<dyn Sink> = match sc {
                SinkConfig::Jsonl(c) => Box::new(JsonlSink::new(c, &key, lang)?),
                SinkConfig::Syslog(c) => Box::new(SyslogSink::new(c, &key, host, lang)?),
                SinkConfig::Email(c) => Box::new(EmailSink::new(c, &key, host, lang)?),
                SinkConfig::Webhook(c) => Box::new(WebhookSink::new(c, &key, host, lang)?),
            };
            built.push((key, sc, sink));
        }

        let shared = Arc::new(Shared::default());
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();
        let mut sinks = Vec::new();
        for (key, sc, sink) in built {
            let (tx, rx) = crossbeam_channel::bounded::<Arc<Finding>>(config.queue_size);
            let counters = Arc::new(Counters::default());
            let name = sc.name().unwrap_or(sc.type_name()).to_string();
            let worker = Worker {
                label: format!("{key} ({name})"),
                sink,
                rx,
                stop_rx: stop_rx.clone(),
                done_tx: done_tx.clone(),
                counters: counters.clone(),
                shared: shared.clone(),
                retry,
                lang,
            };
            let thread = std::thread::Builder::new()
                .name(format!("mamori-alert-{}", sinks.len()))
                .spawn(move || worker.run())
                .map_err(|source| AlertError::Spawn {
                    key: key.clone(),
                    source,
                })?;
            sinks.push(SinkHandle {
                key,
                kind: sc.type_name(),
                name,
                min_severity: sc.min_severity(),
                tx: Some(tx),
                counters,
                thread: Some(thread),
            });
        }
        Ok(AlertDispatcher {
            sinks,
            lang,
            shared,
            stop_tx: Some(stop_tx),
            done_rx,
        })
    }

    /// Whether any sink is configured.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Queue `finding` for every sink whose `min_severity` it reaches. Never blocks: a
    /// full queue drops the finding for that sink, counts it, and says so on stderr (the
    /// 1st, 2nd, 4th, 8th … drop of each sink, so a flood cannot flood stderr too).
    pub fn send(&self, finding: &Finding) {
        let mut shared: Option<Arc<Finding>> = None;
        for s in &self.sinks {
            if finding.severity < s.min_severity {
                continue;
            }
            let Some(tx) = &s.tx else { continue };
            let f = shared
                .get_or_insert_with(|| Arc::new(finding.clone()))
                .clone();
            match tx.try_send(f) {
                Ok(()) => {
                    s.counters.queued.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    let n = s.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_power_of_two() {
                        let (key, name, lang) = (&s.key, &s.name, self.lang);
                        eprintln!(
                            "{}",
                            tr!(
                                lang,
                                "mamori: warning: alert queue of {key} ({name}) is full; {n} finding(s) dropped so far",
                                "mamori: 警告: {key} ({name}) のアラート送信キューが満杯です。これまでに {n} 件を破棄しました"
                            )
                        );
                    }
                }
            }
        }
    }

    /// Counters of every sink, in config order.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.sinks.iter().map(SinkHandle::stats).collect()
    }

    /// Stop accepting findings, let the workers deliver what is queued until `timeout`
    /// has passed, then give up on the rest (counted as failed). Returns the final
    /// counters. Workers still stuck in a network call at the deadline are left to end
    /// on their own (their own timeouts bound that).
    pub fn shutdown(mut self, timeout: Duration) -> Vec<SinkStats> {
        let deadline = Instant::now() + timeout;
        let _ = self.shared.deadline.set(deadline);
        for s in &mut self.sinks {
            s.tx = None; // disconnect: workers finish the queue and exit
        }
        self.stop_tx = None; // wake workers waiting between retries
        let mut running = self.sinks.iter().filter(|s| s.thread.is_some()).count();
        while running > 0 {
            match self.done_rx.recv_deadline(deadline) {
                Ok(()) => running -= 1,
                Err(_) => break,
            }
        }
        for s in &mut self.sinks {
            if s.thread.as_ref().is_some_and(JoinHandle::is_finished)
                && let Some(t) = s.thread.take()
            {
                let _ = t.join();
            }
        }
        self.stats()
    }
}

struct Worker {
    label: String,
    sink: Box<dyn Sink>,
    rx: Receiver<Arc<Finding>>,
    stop_rx: Receiver<()>,
    done_tx: Sender<()>,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
    retry: Retry,
    lang: Lang,
}

impl Worker {
    fn run(mut self) {
        while let Ok(f) = self.rx.recv() {
            if self.shared.past_deadline() {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.deliver(&f);
        }
        let _ = self.done_tx.send(());
    }

    /// Wait `d`, or less if shutdown's deadline comes first. Returns false when there is
    /// no time left.
    fn pause(&self, d: Duration) -> bool {
        if let Some(deadline) = self.shared.deadline.get() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(d.min(left));
            return true;
        }
        match self.stop_rx.recv_timeout(d) {
            // Shutdown began while waiting: wait on within its deadline.
            Err(RecvTimeoutError::Disconnected) | Ok(()) => match self.shared.deadline.get() {
                Some(_) => self.pause(d),
                None => {
                    // Dispatcher dropped without shutdown: keep the normal pace.
                    std::thread::sleep(d);
                    true
                }
            },
            Err(RecvTimeoutError::Timeout) => true,
        }
    }

    fn deliver(&mut self, f: &Finding) {
        let mut delay = self.retry.initial;
        let mut attempt = 1u32;
        loop {
            match self.sink.deliver(f) {
                Ok(()) => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    if let Ok(mut last) = self.counters.last_error.lock() {
                        *last = Some(e.msg.clone());
                    }
                    let last = e.permanent
                        || attempt >= self.retry.max_attempts
                        || self.shared.past_deadline();
                    if last || !self.pause(delay) {
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                        let (label, id, msg, lang) = (&self.label, &f.id, &e.msg, self.lang);
                        eprintln!(
                            "{}",
                            tr!(
                                lang,
                                "mamori: warning: {label}: finding {id} not delivered after {attempt} attempt(s): {msg}",
                                "mamori: 警告: {label}: 検知 {id} を {attempt} 回試みましたが送信できませんでした: {msg}"
                            )
                        );
                        return;
                    }
                    attempt += 1;
                    delay = (delay * 2).min(self.retry.max);
                }
            }
        }
    }
}
