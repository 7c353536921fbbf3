//! `type = "syslog"`: RFC 5424 (default) or RFC 3164 lines to the local syslog socket
//! (unix datagram, `/dev/log`) and, when configured, by UDP to `host:port`.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use mamori_core::{Finding, Lang, tr};

use super::{DeliveryError, Sink};
use crate::AlertError;
use crate::config::{Facility, SyslogConfig, SyslogFormat};
use crate::format::syslog_line;

#[derive(Debug)]
pub(crate) struct SyslogSink {
    host: String,
    lang: Lang,
    format: SyslogFormat,
    facility: Facility,
    json: bool,
    local: Option<PathBuf>,
    udp: Option<String>,
}

/// `host:port` with a port number; the host is resolved at each send.
fn valid_host_port(s: &str) -> bool {
    if s.parse::<SocketAddr>().is_ok() {
        return true;
    }
    match s.rsplit_once(':') {
        Some((h, p)) => !h.is_empty() && !h.contains(':') && p.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

impl SyslogSink {
    pub(crate) fn new(
        c: &SyslogConfig,
        key: &str,
        host: &str,
        lang: Lang,
    ) -> Result<Self, AlertError> {
        if c.local && c.socket.as_os_str().is_empty() {
            return Err(AlertError::Empty {
                key: format!("{key}.socket"),
            });
        }
        if let Some(u) = &c.udp
            && !valid_host_port(u)
        {
            return Err(AlertError::InvalidHostPort {
                key: format!("{key}.udp"),
                value: u.clone(),
            });
        }
        if !c.local && c.udp.is_none() {
            return Err(AlertError::Empty {
                key: format!("{key}.udp"),
            });
        }
        Ok(SyslogSink {
            host: host.to_string(),
            lang,
            format: c.format,
            facility: c.facility,
            json: c.json,
            local: c.local.then(|| c.socket.clone()),
            udp: c.udp.clone(),
        })
    }

    fn send_local(&self, path: &PathBuf, f: &Finding) -> Result<(), DeliveryError> {
        let lang = self.lang;
        let p = path.display();
        let line = syslog_line(f, &self.host, self.format, self.facility, self.json, false);
        let sock = UnixDatagram::unbound()
            .map_err(|e| DeliveryError::retry(tr!(lang, "socket: {e}", "ソケット作成失敗: {e}")))?;
        sock.send_to(line.as_bytes(), path).map_err(|e| {
            DeliveryError::retry(tr!(
                lang,
                "cannot send to {p}: {e}",
                "{p} に送信できません: {e}"
            ))
        })?;
        Ok(())
    }

    fn send_udp(&self, target: &str, f: &Finding) -> Result<(), DeliveryError> {
        let lang = self.lang;
        let line = syslog_line(f, &self.host, self.format, self.facility, self.json, true);
        let addrs: Vec<SocketAddr> = target
            .to_socket_addrs()
            .map_err(|e| {
                DeliveryError::retry(tr!(
                    lang,
                    "cannot resolve {target}: {e}",
                    "{target} の名前解決に失敗しました: {e}"
                ))
            })?
            .collect();
        let mut last = String::new();
        for addr in addrs {
            let bind: SocketAddr = if addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            match UdpSocket::bind(bind).and_then(|s| s.send_to(line.as_bytes(), addr)) {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(DeliveryError::retry(tr!(
            lang,
            "cannot send to {target}: {last}",
            "{target} に送信できません: {last}"
        )))
    }
}

impl Sink for SyslogSink {
    fn deliver(&mut self, f: &Finding) -> Result<(), DeliveryError> {
        // Both targets are tried; the finding counts as delivered only when every
        // configured target took it (a retry may then send a duplicate to one of them,
        // which syslog tolerates better than a loss).
        let local = self.local.as_ref().map(|p| self.send_local(p, f));
        let udp = self.udp.as_ref().map(|t| self.send_udp(t, f));
        match (local, udp) {
            (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
            _ => Ok(()),
        }
    }
}
