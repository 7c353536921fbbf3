//! Database listening on a public address (card guideline / 20-1.1), from
//! `/proc/net/tcp` and `/proc/net/tcp6`.

use crate::audit::{Ctx, Outcome};
use mamori_core::tr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const DB_PORTS: &[(u16, &str)] = &[
    (3306, "MySQL/MariaDB"),
    (5432, "PostgreSQL"),
    (6379, "Redis"),
    (11211, "memcached"),
];

fn parse_addr(hex: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = hex.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let ip = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(a, 16).ok()?.swap_bytes(),
        )),
        32 => {
            let mut b = [0u8; 16];
            for (i, w) in (0..4).map(|i| &a[i * 8..i * 8 + 8]).enumerate() {
                let v = u32::from_str_radix(w, 16).ok()?.swap_bytes();
                b[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Listening sockets `(ip, port)` in a /proc/net/tcp{,6} text.
pub fn listeners(text: &str) -> Vec<(IpAddr, u16)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(3) == Some(&"0A")).then(|| parse_addr(f.get(1)?))?
        })
        .collect()
}

fn is_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => v.is_loopback(),
        IpAddr::V6(v) => v.is_loopback() || v.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    }
}

pub fn db_public(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    let mut text = String::new();
    let mut read_any = false;
    for p in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(t) = ctx.sys.read(p) {
            read_any = true;
            text.push_str(&t);
            text.push('\n');
        }
    }
    if !read_any {
        return Outcome::na(
            tr!(
                lang,
                "/proc/net/tcp is unreadable",
                "/proc/net/tcp を読めません"
            ),
            "/proc/net/tcp",
        );
    }
    let mut public = Vec::new();
    let mut local = Vec::new();
    for (ip, port) in listeners(&text) {
        if let Some((_, name)) = DB_PORTS.iter().find(|(p, _)| *p == port) {
            let s = format!("{name} {ip}:{port}");
            if is_local(&ip) {
                local.push(s)
            } else {
                public.push(s)
            }
        }
    }
    public.sort();
    public.dedup();
    local.sort();
    local.dedup();
    let details = serde_json::json!({"public": public, "loopback": local});
    if !public.is_empty() {
        let l = public.join(", ");
        Outcome::fail(
            tr!(
                lang,
                "database listens on a non-loopback address: {l}",
                "データベースがループバック以外のアドレスで待ち受けています: {l}"
            ),
            "/proc/net/tcp{,6}",
        )
        .with_details(details)
    } else if local.is_empty() {
        Outcome::pass(
            tr!(
                lang,
                "no database port listening",
                "待ち受け中のデータベースポートはありません"
            ),
            "/proc/net/tcp{,6}",
        )
        .with_details(details)
    } else {
        Outcome::pass(
            tr!(
                lang,
                "databases listen on loopback only",
                "データベースはループバックのみで待ち受けています"
            ),
            "/proc/net/tcp{,6}",
        )
        .with_details(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_proc_net_tcp() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   100        0 1 1 0 100 0 0 10 0\n   1: 00000000:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   100        0 1 1 0 100 0 0 10 0\n";
        let l = listeners(t);
        assert_eq!(
            l,
            vec![
                ("127.0.0.1".parse().unwrap(), 3306),
                ("0.0.0.0".parse().unwrap(), 5432)
            ]
        );
        let t6 = "h\n 0: 00000000000000000000000001000000:0CEA 00000000000000000000000000000000:0000 0A x\n";
        assert_eq!(listeners(t6), vec![("::1".parse().unwrap(), 3306)]);
    }
}
