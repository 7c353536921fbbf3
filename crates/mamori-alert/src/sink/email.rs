//! `type = "email"`: one plain-text mail per finding over SMTP, STARTTLS required
//! (rustls), subject and body in the configured language, card numbers masked.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport};
use mamori_core::{Finding, Lang, tr};

use super::{DeliveryError, Secret, Sink, read_secret};
use crate::AlertError;
use crate::config::EmailConfig;
use crate::format::{email_body, one_line_text};

pub(crate) struct EmailSink {
    host: String,
    lang: Lang,
    server: String,
    port: u16,
    starttls: bool,
    from: Mailbox,
    to: Vec<Mailbox>,
    username: Option<String>,
    password: Option<Secret>,
    transport: SmtpTransport,
}

impl std::fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSink")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("starttls", &self.starttls)
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            )
            .field("username", &self.username)
            .field("password", &self.password)
            .finish_non_exhaustive()
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`.
fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn mailbox(value: &str, key: String) -> Result<Mailbox, AlertError> {
    value
        .parse::<Mailbox>()
        .map_err(|e| AlertError::InvalidAddress {
            key,
            value: value.to_string(),
            detail: e.to_string(),
        })
}

impl EmailSink {
    pub(crate) fn new(
        c: &EmailConfig,
        key: &str,
        host: &str,
        lang: Lang,
    ) -> Result<Self, AlertError> {
        let server = c.host.trim();
        if server.is_empty() {
            return Err(AlertError::Empty {
                key: format!("{key}.host"),
            });
        }
        if c.port == 0 {
            return Err(AlertError::OutOfRange {
                key: format!("{key}.port"),
                range: "1..=65535",
            });
        }
        if !c.starttls && !is_loopback(server) {
            return Err(AlertError::InsecureSmtp {
                key: format!("{key}.starttls"),
                host: server.to_string(),
            });
        }
        let from = mailbox(&c.from, format!("{key}.from"))?;
        if c.to.is_empty() {
            return Err(AlertError::Empty {
                key: format!("{key}.to"),
            });
        }
        let to =
            c.to.iter()
                .enumerate()
                .map(|(i, t)| mailbox(t, format!("{key}.to[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
        let password = match (&c.username, &c.password_file) {
            (Some(_), Some(p)) => Some(read_secret(p, format!("{key}.password_file"))?),
            (None, None) => None,
            _ => {
                return Err(AlertError::CredentialsIncomplete {
                    key: format!("{key}.username"),
                });
            }
        };
        if c.timeout_secs == 0 {
            return Err(AlertError::OutOfRange {
                key: format!("{key}.timeout_secs"),
                range: ">= 1",
            });
        }

        let tls = if c.starttls {
            let mut params = TlsParameters::builder(server.to_string());
            if let Some(ca) = &c.ca_file {
                let ca_key = format!("{key}.ca_file");
                let pem = std::fs::read(ca).map_err(|e| AlertError::CaFile {
                    key: ca_key.clone(),
                    path: ca.clone(),
                    detail: e.to_string(),
                })?;
                let bad = |detail: String| AlertError::CaFile {
                    key: ca_key.clone(),
                    path: ca.clone(),
                    detail,
                };
                if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                    return Err(bad("no PEM certificate".into()));
                }
                let cert = Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|e| AlertError::CaFile {
                key: format!("{key}.ca_file"),
                path: c.ca_file.clone().unwrap_or_default(),
                detail: e.to_string(),
            })?;
            Tls::Required(params)
        } else {
            Tls::None
        };

        // EHLO name: the host name when it is a plausible domain, else a literal.
        let hello = if !host.is_empty()
            && host
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.')
        {
            ClientId::Domain(host.to_string())
        } else {
            ClientId::Domain("localhost".into())
        };
        let mut builder = SmtpTransport::builder_dangerous(server)
            .port(c.port)
            .tls(tls)
            .hello_name(hello)
            .timeout(Some(Duration::from_secs(c.timeout_secs)));
        if let (Some(user), Some(pass)) = (&c.username, &password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.0.clone()));
        }
        Ok(EmailSink {
            host: host.to_string(),
            lang,
            server: server.to_string(),
            port: c.port,
            starttls: c.starttls,
            from,
            to,
            username: c.username.clone(),
            password,
            transport: builder.build(),
        })
    }

    /// The mail for one finding (public to the crate for tests).
    pub(crate) fn message(&self, f: &Finding) -> Result<Message, String> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(one_line_text(f, &self.host, self.lang))
            .header(ContentType::TEXT_PLAIN);
        for t in &self.to {
            b = b.to(t.clone());
        }
        let body = Body::new_with_encoding(
            email_body(f, &self.host, self.lang),
            ContentTransferEncoding::Base64,
        )
        .map_err(|_| "body encoding".to_string())?;
        b.body(body).map_err(|e| e.to_string())
    }
}

impl Sink for EmailSink {
    fn deliver(&mut self, f: &Finding) -> Result<(), DeliveryError> {
        let lang = self.lang;
        let server = format!("{}:{}", self.server, self.port);
        let msg = self.message(f).map_err(|e| {
            DeliveryError::permanent(tr!(
                lang,
                "cannot build the mail: {e}",
                "メールを作成できません: {e}"
            ))
        })?;
        match self.transport.send(&msg) {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = tr!(
                    lang,
                    "SMTP {server}: {e}",
                    "SMTP {server} への送信に失敗しました: {e}"
                );
                if e.is_permanent() {
                    Err(DeliveryError::permanent(text))
                } else {
                    Err(DeliveryError::retry(text))
                }
            }
        }
    }
}
