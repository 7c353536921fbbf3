//! The live egress source of `mamori watch`: conntrack events joined with /proc
//! ([`crate::conntrack`]) or /proc polling alone ([`crate::live::Sampler`]), chosen by
//! `[exit] live_source`, behind one interface.

use crate::config::{ExitConfig, LiveSource};
use crate::conntrack::{ConntrackOptions, ConntrackSource};
use crate::error::ExitError;
use crate::live::{self, Sampler};
use crate::zeek::ConnRecord;
use mamori_core::{Lang, tr};
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// What a live source reports.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A connection started (or was first seen): feed [`crate::Detector::observe_conn`].
    Opened(ConnRecord),
    /// A connection ended with its byte totals (`ts` = when it ended): feed
    /// [`crate::Detector::observe_bytes`].
    Closed(ConnRecord),
}

/// Something the operator should be told about a live source (once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `auto`: conntrack could not be opened; /proc polling runs instead.
    Fallback { why: String },
    /// `nf_conntrack_acct` is off: flows carry no byte counts.
    AcctOff { why: Option<String> },
    /// mamori turned `nf_conntrack_acct` on (`live_enable_acct = true`).
    AcctEnabled,
    /// The kernel dropped conntrack events (socket buffer overflow).
    EventsLost,
    /// conntrack tracks nothing in this namespace (at start: no flow tracked;
    /// confirmed: /proc saw connections that conntrack did not report).
    CtIdle { confirmed: bool, proc_only: u64 },
    /// Reading the socket tables of /proc failed: flows are still seen, but their process
    /// may be unknown until a sweep succeeds.
    SweepFailed { why: String },
}

impl Notice {
    /// A warning (something is missed) rather than a note.
    pub fn is_warning(&self) -> bool {
        !matches!(self, Notice::AcctEnabled)
    }

    pub fn message(&self, lang: Lang) -> String {
        match self {
            Notice::Fallback { why } => tr!(
                lang,
                "conntrack events are not available ({why}); polling /proc instead",
                "conntrack のイベントを使えません ({why})。/proc のポーリングで監視します"
            ),
            Notice::AcctOff { why: None } => tr!(
                lang,
                "conntrack byte accounting is off (net.netfilter.nf_conntrack_acct = 0): byte counts of outbound flows are unknown and egress.volume gets nothing from the live source; turn it on with `sysctl -w net.netfilter.nf_conntrack_acct=1` (persist it in /etc/sysctl.d) or let mamori do it with `live_enable_acct = true` in [exit]",
                "conntrack のバイト計数が無効です (net.netfilter.nf_conntrack_acct = 0)。外向き通信のバイト数は不明で、egress.volume はリアルタイム監視からは判定できません。`sysctl -w net.netfilter.nf_conntrack_acct=1` (/etc/sysctl.d で永続化) で有効にするか、[exit] に `live_enable_acct = true` を設定してください"
            ),
            Notice::AcctOff { why: Some(w) } => tr!(
                lang,
                "could not turn on conntrack byte accounting ({w}): byte counts of outbound flows are unknown",
                "conntrack のバイト計数を有効にできませんでした ({w})。外向き通信のバイト数は不明です"
            ),
            Notice::AcctEnabled => tr!(
                lang,
                "turned on conntrack byte accounting (net.netfilter.nf_conntrack_acct = 1, as live_enable_acct asks): flows starting from now carry byte counts",
                "live_enable_acct の設定により conntrack のバイト計数を有効にしました (net.netfilter.nf_conntrack_acct = 1)。これから始まる通信にバイト数が付きます"
            ),
            Notice::EventsLost => tr!(
                lang,
                "conntrack events were lost (socket buffer overflow): connections in that burst may be unreported; the /proc sweep still reports those that stay open",
                "conntrack のイベントが失われました (ソケットバッファあふれ)。その間の接続は報告されないことがあります。開いたままの接続は /proc の走査で報告されます"
            ),
            Notice::CtIdle {
                confirmed: false, ..
            } => tr!(
                lang,
                "conntrack tracks no flow in this network namespace yet: the kernel tracks only when a firewall rule uses conntrack (nft `ct`, iptables `-m conntrack`/`state`, NAT, Docker, mamori's egress policy); until then the /proc sweep is what reports connections",
                "このネットワーク名前空間では conntrack がまだ通信を追跡していません。conntrack を使うファイアウォール規則 (nft の `ct`、iptables の `-m conntrack`/`state`、NAT、Docker、mamori の送信許可ポリシー) があるときだけ追跡されます。それまでは /proc の走査が接続を報告します"
            ),
            Notice::CtIdle {
                confirmed: true,
                proc_only,
            } => tr!(
                lang,
                "conntrack reported none of the {proc_only} outbound connection(s) /proc saw: no firewall rule uses conntrack in this namespace, so short connections and UDP sent with sendto are missed; add a rule that uses it (e.g. nft `ct state new counter` in an output chain) or apply mamori's egress policy",
                "/proc で見えた {proc_only} 件の外向き接続を conntrack は一つも報告しませんでした。この名前空間には conntrack を使うファイアウォール規則がないため、短い接続や sendto の UDP は見逃されます。conntrack を使う規則 (出力チェーンに nft の `ct state new counter` など) を追加するか、mamori の送信許可ポリシーを適用してください"
            ),
            Notice::SweepFailed { why } => tr!(
                lang,
                "reading the socket tables in /proc failed ({why}): outbound flows are still reported, but their process may be unknown until it works again; check that mamori runs as root",
                "/proc のソケット表を読めませんでした ({why})。外向き通信は引き続き報告しますが、復旧するまでプロセスが不明になることがあります。mamori が root で動いているか確認してください"
            ),
        }
    }
}

/// The running live source.
#[derive(Debug)]
pub enum Source {
    Proc(Sampler),
    Conntrack(Box<ConntrackSource>),
}

impl Source {
    /// Open the source `cfg.live_source` asks for. `auto` falls back to /proc (with a
    /// [`Notice::Fallback`]); `conntrack` fails when conntrack cannot be opened.
    pub fn open(cfg: &ExitConfig) -> Result<(Source, Vec<Notice>), ExitError> {
        let opts = ConntrackOptions {
            interval: Duration::from_millis(cfg.live_interval_ms),
            enable_acct: cfg.live_enable_acct,
            ..ConntrackOptions::default()
        };
        Source::open_with(cfg.live_source, &opts)
    }

    /// [`Source::open`] with explicit paths (tests in their own namespace).
    pub fn open_with(
        kind: LiveSource,
        opts: &ConntrackOptions,
    ) -> Result<(Source, Vec<Notice>), ExitError> {
        let mut notices = Vec::new();
        if kind != LiveSource::Proc {
            match ConntrackSource::open(opts) {
                Ok(mut c) => {
                    notices.extend(c.take_notices());
                    return Ok((Source::Conntrack(Box::new(c)), notices));
                }
                Err(e) if kind == LiveSource::Conntrack => return Err(e),
                Err(e) => notices.push(Notice::Fallback {
                    why: e
                        .to_string()
                        .trim_start_matches("live sampler: ")
                        .to_string(),
                }),
            }
        }
        if !live::available(&opts.net_dir) {
            return Err(ExitError::Live(format!(
                "{} is not readable",
                opts.net_dir.display()
            )));
        }
        Ok((Source::Proc(Sampler::with_net_dir(&opts.net_dir)), notices))
    }

    /// `conntrack` or `proc`.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Proc(_) => "proc",
            Source::Conntrack(_) => "conntrack",
        }
    }

    /// What happened since the last call.
    pub fn poll(&mut self) -> Result<Vec<LiveEvent>, ExitError> {
        match self {
            Source::Proc(s) => Ok(s.poll()?.into_iter().map(LiveEvent::Opened).collect()),
            Source::Conntrack(c) => c.poll(),
        }
    }

    /// A descriptor that becomes readable when the source has something (conntrack).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Source::Proc(_) => None,
            Source::Conntrack(c) => Some(c.fd()),
        }
    }

    /// Things to tell the operator since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        match self {
            Source::Proc(_) => Vec::new(),
            Source::Conntrack(c) => c.take_notices(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_falls_back_to_proc_and_conntrack_refuses() {
        // A namespace whose kernel sends no conntrack events.
        let sys = tempfile::tempdir().unwrap();
        std::fs::write(sys.path().join("nf_conntrack_events"), "0\n").unwrap();
        let opts = ConntrackOptions {
            sysctl_dir: sys.path().to_path_buf(),
            ..ConntrackOptions::default()
        };
        let (s, notices) = Source::open_with(LiveSource::Auto, &opts).unwrap();
        assert_eq!(s.name(), "proc");
        assert!(s.fd().is_none());
        let [Notice::Fallback { why }] = notices.as_slice() else {
            panic!("{notices:?}")
        };
        assert!(why.contains("nf_conntrack_events = 0"), "{why}");
        let m = notices[0].message(Lang::En);
        assert!(m.contains("polling /proc instead"), "{m}");
        let e = Source::open_with(LiveSource::Conntrack, &opts).unwrap_err();
        assert!(e.to_string().contains("nf_conntrack_events"), "{e}");
        let (s, notices) = Source::open_with(LiveSource::Proc, &opts).unwrap();
        assert_eq!((s.name(), notices.len()), ("proc", 0));
        // Every notice has a message in both languages.
        for n in [
            Notice::AcctOff { why: None },
            Notice::AcctEnabled,
            Notice::EventsLost,
            Notice::CtIdle {
                confirmed: true,
                proc_only: 3,
            },
            Notice::SweepFailed {
                why: "permission denied".into(),
            },
        ] {
            assert!(!n.message(Lang::Ja).is_empty());
            assert_ne!(n.message(Lang::En), n.message(Lang::Ja));
        }
    }
}
