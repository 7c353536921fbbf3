//! 20-1.7 two-factor SSH login; 20-1.9 every authorized key owned by a named person, no
//! weak keys.

use crate::audit::{Ctx, Outcome};
use base64::Engine;
use mamori_core::tr;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Effective sshd settings (lower-case keys), first value wins as in sshd; `Match`
/// blocks are not evaluated.
pub fn parse_sshd_config(
    ctx: &Ctx,
    abs: &str,
    into: &mut BTreeMap<String, String>,
    depth: u8,
) -> Result<(), String> {
    let text = ctx.sys.read(abs).map_err(|e| format!("{abs}: {e}"))?;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (k, v) = match l.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                v.trim().trim_start_matches('=').trim().to_string(),
            ),
            None => continue,
        };
        if k == "match" {
            break;
        }
        if k == "include" && depth < 4 {
            for pat in v.split_whitespace() {
                let pat = if pat.starts_with('/') {
                    pat.to_string()
                } else {
                    format!("/etc/ssh/{pat}")
                };
                for f in glob_simple(ctx, &pat) {
                    let _ = parse_sshd_config(ctx, &f, into, depth + 1);
                }
            }
            continue;
        }
        into.entry(k).or_insert(v);
    }
    Ok(())
}

/// `dir/*.conf`-style globs (a `*` in the last component only).
fn glob_simple(ctx: &Ctx, pat: &str) -> Vec<String> {
    let Some((dir, file)) = pat.rsplit_once('/') else {
        return vec![];
    };
    if !file.contains('*') {
        return vec![pat.to_string()];
    }
    let (pre, suf) = file.split_once('*').unwrap_or((file, ""));
    ctx.sys
        .list(dir)
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.starts_with(pre) && n.ends_with(suf))
        .map(|n| format!("{dir}/{n}"))
        .collect()
}

#[allow(clippy::result_large_err)] // Outcome is the check's verdict, returned once per audit
fn settings(ctx: &Ctx) -> Result<(BTreeMap<String, String>, String), Outcome> {
    let lang = ctx.lang;
    if let Some(o) = ctx.sys.run("sshd", &["-T"])
        && o.status == Some(0)
        && !o.stdout.is_empty()
    {
        let m = o
            .stdout
            .lines()
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            })
            .fold(BTreeMap::new(), |mut m, (k, v)| {
                m.entry(k).or_insert(v);
                m
            });
        return Ok((m, "sshd -T".into()));
    }
    let cfg = "/etc/ssh/sshd_config";
    if !ctx.sys.exists(cfg) {
        return Err(Outcome::missing(
            tr!(
                lang,
                "no SSH server ({cfg} absent)",
                "SSH サーバーがありません ({cfg} なし)"
            ),
            cfg,
        ));
    }
    let mut m = BTreeMap::new();
    if let Err(e) = parse_sshd_config(ctx, cfg, &mut m, 0) {
        return Err(Outcome::na(
            tr!(
                lang,
                "sshd config unreadable: {e}",
                "sshd の設定を読めません: {e}"
            ),
            cfg,
        ));
    }
    Ok((m, cfg.into()))
}

const OTP_MODULES: &[&str] = &[
    "pam_google_authenticator",
    "pam_oath",
    "pam_duo",
    "pam_u2f",
    "pam_yubico",
    "pam_totp",
];

fn pam_otp(ctx: &Ctx) -> Option<&'static str> {
    let t = ctx.sys.read("/etc/pam.d/sshd").ok()?;
    OTP_MODULES.iter().copied().find(|m| {
        t.lines().any(|l| {
            let l = l.trim();
            !l.starts_with('#') && l.contains(m)
        })
    })
}

pub fn two_factor(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let (m, source) = match settings(ctx) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let get = |k: &str, d: &str| {
        m.get(k)
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_else(|| d.to_string())
    };
    let methods = get("authenticationmethods", "any");
    let password = get("passwordauthentication", "yes") == "yes";
    let cr = get("challengeresponseauthentication", "yes");
    let kbd = get("kbdinteractiveauthentication", cr.as_str()) == "yes";
    let usepam = get("usepam", "no") == "yes";
    let otp = pam_otp(ctx);
    let details = serde_json::json!({
        "authenticationmethods": methods, "passwordauthentication": password,
        "kbdinteractiveauthentication": kbd, "usepam": usepam, "pam_otp_module": otp,
    });
    let lists: Vec<&str> = methods.split_whitespace().collect();
    let every_two = methods != "any"
        && !lists.is_empty()
        && lists.iter().all(|l| {
            let mut ms: Vec<&str> = l
                .split(',')
                .map(|x| x.split(':').next().unwrap_or(x))
                .collect();
            ms.sort();
            ms.dedup();
            ms.len() >= 2
        });
    if every_two {
        let o = otp.unwrap_or("-");
        return Outcome::pass(
            tr!(
                lang,
                "every login needs two factors (AuthenticationMethods {methods}; PAM OTP {o})",
                "すべてのログインで二要素が必要です (AuthenticationMethods {methods}、PAM OTP {o})"
            ),
            source,
        )
        .with_details(details);
    }
    if password || (kbd && usepam && otp.is_none()) {
        return Outcome::fail(
            tr!(lang, "SSH accepts a password alone (PasswordAuthentication/KbdInteractive on, no second factor)", "SSH がパスワードだけでログインを受け付けます (PasswordAuthentication/KbdInteractive が有効で二要素なし)"),
            source,
        )
        .with_details(details);
    }
    if let Some(o) = otp {
        return Outcome::warn(
            tr!(
                lang,
                "{o} is configured but AuthenticationMethods does not require it with the key",
                "{o} は設定されていますが AuthenticationMethods で鍵との併用が必須になっていません"
            ),
            source,
        )
        .with_details(details);
    }
    Outcome::warn(
        tr!(
            lang,
            "SSH uses keys only: one factor (no OTP in /etc/pam.d/sshd)",
            "SSH は公開鍵のみ (一要素) です (/etc/pam.d/sshd に OTP なし)"
        ),
        source,
    )
    .with_details(details)
}

/// One `authorized_keys` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthKey {
    pub user: String,
    pub file: String,
    pub key_type: String,
    pub fingerprint: String,
    pub bits: Option<u32>,
    pub comment: String,
}

fn read_u32(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let s = b.get(at..at + 4)?;
    let n = u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
    Some((at + 4, n))
}

/// Bits of the modulus of an `ssh-rsa` blob (DSA: of `p`).
pub fn key_bits(blob: &[u8]) -> Option<u32> {
    let (p, n) = read_u32(blob, 0)?;
    let ty = blob.get(p..p + n)?;
    let mut at = p + n;
    let skip = match ty {
        b"ssh-rsa" => 1, // e, then n
        b"ssh-dss" => 0, // p first
        _ => return None,
    };
    for _ in 0..skip {
        let (q, l) = read_u32(blob, at)?;
        at = q + l;
    }
    let (q, l) = read_u32(blob, at)?;
    let mpint = blob.get(q..q + l)?;
    let first = mpint.iter().position(|b| *b != 0)?;
    let bytes = (mpint.len() - first) as u32;
    Some(bytes * 8 - mpint[first].leading_zeros())
}

/// Parse an authorized_keys text.
pub fn parse_authorized_keys(user: &str, file: &str, text: &str) -> Vec<AuthKey> {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let toks: Vec<&str> = l.split_whitespace().collect();
        let Some(i) = toks
            .iter()
            .position(|t| t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-"))
        else {
            continue;
        };
        let Some(b64) = toks.get(i + 1) else { continue };
        let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            continue;
        };
        let fp = base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&blob));
        out.push(AuthKey {
            user: user.to_string(),
            file: file.to_string(),
            key_type: toks[i].to_string(),
            fingerprint: format!("SHA256:{fp}"),
            bits: key_bits(&blob),
            comment: toks.get(i + 2..).map(|c| c.join(" ")).unwrap_or_default(),
        });
    }
    out
}

/// Every key in every user's authorized_keys (users from /etc/passwd, plus /root).
pub fn all_keys(ctx: &Ctx) -> Vec<AuthKey> {
    let mut homes: Vec<(String, String)> = ctx
        .sys
        .read("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.to_string(), f.get(5)?.to_string()))
        })
        .collect();
    homes.push(("root".into(), "/root".into()));
    homes.sort();
    homes.dedup();
    let mut seen_files = std::collections::BTreeSet::new();
    let mut keys = Vec::new();
    for (user, home) in homes {
        if home.is_empty() || home == "/" {
            continue;
        }
        for f in [".ssh/authorized_keys", ".ssh/authorized_keys2"] {
            let abs = format!("{}/{f}", home.trim_end_matches('/'));
            if !seen_files.insert(abs.clone()) {
                continue;
            }
            if let Ok(t) = ctx.sys.read(&abs) {
                keys.extend(parse_authorized_keys(&user, &abs, &t));
            }
        }
    }
    keys
}

pub fn keys_owned(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let keys = all_keys(ctx);
    if keys.is_empty() {
        return Outcome::missing(
            tr!(
                lang,
                "no authorized SSH keys found",
                "登録された SSH 公開鍵はありません"
            ),
            "~/.ssh/authorized_keys",
        );
    }
    let unknown: Vec<&AuthKey> = keys
        .iter()
        .filter(|k| !ctx.cfg.ssh_keys.contains_key(&k.fingerprint))
        .collect();
    let details = serde_json::json!({
        "keys": keys.iter().map(|k| serde_json::json!({
            "user": k.user, "file": k.file, "type": k.key_type, "fingerprint": k.fingerprint,
            "comment": k.comment, "owner": ctx.cfg.ssh_keys.get(&k.fingerprint),
        })).collect::<Vec<_>>(),
    });
    let n = keys.len();
    if unknown.is_empty() {
        Outcome::pass(
            tr!(
                lang,
                "all {n} SSH keys belong to a named person",
                "SSH 公開鍵 {n} 本すべての持ち主が登録されています"
            ),
            "~/.ssh/authorized_keys",
        )
        .with_details(details)
    } else {
        let u = unknown.len();
        let list = unknown
            .iter()
            .take(5)
            .map(|k| format!("{} {} ({})", k.user, k.fingerprint, k.comment))
            .collect::<Vec<_>>()
            .join("; ");
        Outcome::fail(
            tr!(
                lang,
                "{u} of {n} SSH keys have no named owner in [posture.ssh_keys]: {list}",
                "SSH 公開鍵 {n} 本のうち {u} 本は [posture.ssh_keys] に持ち主がありません: {list}"
            ),
            "~/.ssh/authorized_keys",
        )
        .with_details(details)
    }
}

pub fn weak_keys(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let keys = all_keys(ctx);
    if keys.is_empty() {
        return Outcome::missing(
            tr!(
                lang,
                "no authorized SSH keys found",
                "登録された SSH 公開鍵はありません"
            ),
            "~/.ssh/authorized_keys",
        );
    }
    let weak: Vec<String> = keys
        .iter()
        .filter(|k| {
            k.key_type == "ssh-dss" || (k.key_type == "ssh-rsa" && k.bits.unwrap_or(0) < 3072)
        })
        .map(|k| {
            format!(
                "{} {} {} bits {}",
                k.user,
                k.key_type,
                k.bits.unwrap_or(0),
                k.fingerprint
            )
        })
        .collect();
    if weak.is_empty() {
        Outcome::pass(
            tr!(
                lang,
                "no DSA or short RSA keys",
                "DSA 鍵や短い RSA 鍵はありません"
            ),
            "~/.ssh/authorized_keys",
        )
    } else {
        let list = weak.join("; ");
        Outcome::fail(
            tr!(
                lang,
                "weak SSH keys (DSA, RSA < 3072): {list}",
                "弱い SSH 鍵 (DSA、3072 ビット未満の RSA): {list}"
            ),
            "~/.ssh/authorized_keys",
        )
        .with_details(serde_json::json!({ "weak": weak }))
    }
}
