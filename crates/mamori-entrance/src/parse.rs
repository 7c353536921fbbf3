//! Access-log line parsing: nginx/Apache `combined` and `common`, and JSON lines with
//! nginx variable names (or a custom field mapping).
//!
//! The parser works on bytes, never allocates for text formats, and never panics: every
//! problem is a [`ParseError`] the caller counts and skips.

use memchr::memchr;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The format of an access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// nginx/Apache combined: common + `"referer" "user-agent"`.
    Combined,
    /// NCSA common: `ip ident user [time] "request" status bytes`.
    Common,
    /// One JSON object per line (nginx `escape=json` style).
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Combined => "combined",
            LogFormat::Common => "common",
            LogFormat::Json => "json",
        }
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "combined" | "apache" | "nginx" => Ok(LogFormat::Combined),
            "common" | "clf" => Ok(LogFormat::Common),
            "json" | "jsonl" => Ok(LogFormat::Json),
            _ => Err(format!(
                "unknown log format `{s}`: use combined, common or json"
            )),
        }
    }
}

/// Which JSON keys hold which request field. Defaults are nginx variable names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonFields {
    pub time: String,
    pub remote_addr: String,
    pub method: String,
    pub uri: String,
    /// Optional: a full `"GET /x HTTP/1.1"` request line, used when `method`/`uri` are absent.
    pub request: String,
    pub status: String,
    pub bytes: String,
    pub referer: String,
    pub user_agent: String,
}

impl Default for JsonFields {
    fn default() -> Self {
        JsonFields {
            time: "time_local".into(),
            remote_addr: "remote_addr".into(),
            method: "request_method".into(),
            uri: "request_uri".into(),
            request: "request".into(),
            status: "status".into(),
            bytes: "body_bytes_sent".into(),
            referer: "http_referer".into(),
            user_agent: "http_user_agent".into(),
        }
    }
}

/// One parsed request. Text fields borrow from the line (or from [`Scratch`] for JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    pub ip: IpAddr,
    /// Unix seconds (UTC).
    pub time: i64,
    pub method: &'a [u8],
    /// The request target as logged (`/path?query`), not decoded.
    pub target: &'a [u8],
    pub status: u16,
    pub bytes: u64,
    pub referer: &'a [u8],
    pub user_agent: &'a [u8],
    pub format: LogFormat,
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty line")]
    Empty,
    #[error("bad client address")]
    Address,
    #[error("bad timestamp")]
    Time,
    #[error("bad request line")]
    Request,
    #[error("bad status")]
    Status,
    #[error("bad JSON")]
    Json,
}

/// Owned storage for JSON-decoded fields, reused between lines.
#[derive(Debug, Default)]
pub struct Scratch {
    method: String,
    target: String,
    referer: String,
    user_agent: String,
}

/// Parse one line (without its newline). `format = None` detects per line (`{` → JSON).
pub fn parse_line<'a>(
    line: &'a [u8],
    format: Option<LogFormat>,
    fields: &JsonFields,
    scratch: &'a mut Scratch,
) -> Result<Request<'a>, ParseError> {
    let line = trim(line);
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    match format {
        Some(LogFormat::Json) => parse_json(line, fields, scratch),
        Some(_) => parse_text(line),
        None if line[0] == b'{' => parse_json(line, fields, scratch),
        None => parse_text(line),
    }
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// Parse an address, folding IPv4-mapped IPv6 (`::ffff:1.2.3.4`) to IPv4.
pub fn parse_ip(b: &[u8]) -> Result<IpAddr, ParseError> {
    if b.is_empty() || b.len() > 45 {
        return Err(ParseError::Address);
    }
    let s = std::str::from_utf8(b).map_err(|_| ParseError::Address)?;
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    let ip: IpAddr = s.parse().map_err(|_| ParseError::Address)?;
    Ok(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    })
}

fn parse_text(line: &[u8]) -> Result<Request<'_>, ParseError> {
    // ip ident user [time] "request" status bytes ["referer" "ua"]
    let sp = memchr(b' ', line).ok_or(ParseError::Address)?;
    let ip = parse_ip(&line[..sp])?;
    let lb = memchr(b'[', &line[sp..]).ok_or(ParseError::Time)? + sp;
    let rb = memchr(b']', &line[lb..]).ok_or(ParseError::Time)? + lb;
    let time = parse_clf_time(&line[lb + 1..rb]).ok_or(ParseError::Time)?;
    let rest = &line[rb + 1..];
    let q = memchr(b'"', rest).ok_or(ParseError::Request)?;
    let req_start = q + 1;
    // Find the closing quote: the first `"` followed by ` DDD`.
    let mut i = req_start;
    let req_end = loop {
        let Some(p) = memchr(b'"', &rest[i..]) else {
            return Err(ParseError::Request);
        };
        let p = p + i;
        let after = &rest[p + 1..];
        if after.len() >= 4
            && after[0] == b' '
            && after[1..4].iter().all(u8::is_ascii_digit)
            && (after.len() == 4 || after[4] == b' ')
        {
            break p;
        }
        i = p + 1;
    };
    let reqline = &rest[req_start..req_end];
    let (method, target) = split_request(reqline);
    let after = &rest[req_end + 2..];
    let status = parse_u16(&after[..3]).ok_or(ParseError::Status)?;
    let after = &after[3..];
    let after = after.strip_prefix(b" ").unwrap_or(after);
    let (bytes_f, after) = match memchr(b' ', after) {
        Some(p) => (&after[..p], &after[p + 1..]),
        None => (after, &after[after.len()..]),
    };
    let bytes = parse_u64(bytes_f).unwrap_or(0);
    let (referer, user_agent, format) = if after.first() == Some(&b'"') {
        let body = &after[1..];
        // referer ends at `" "`; UA is what remains up to the last quote.
        match memchr::memmem::find(body, b"\" \"") {
            Some(p) => {
                let ua = &body[p + 3..];
                let ua = match memchr::memrchr(b'"', ua) {
                    Some(e) => &ua[..e],
                    None => ua,
                };
                (&body[..p], ua, LogFormat::Combined)
            }
            None => {
                let r = match memchr(b'"', body) {
                    Some(e) => &body[..e],
                    None => body,
                };
                (r, &b""[..], LogFormat::Combined)
            }
        }
    } else {
        (&b""[..], &b""[..], LogFormat::Common)
    };
    Ok(Request {
        ip,
        time,
        method,
        target,
        status,
        bytes,
        referer,
        user_agent,
        format,
    })
}

fn split_request(reqline: &[u8]) -> (&[u8], &[u8]) {
    match memchr(b' ', reqline) {
        Some(p) => {
            let method = &reqline[..p];
            let rest = &reqline[p + 1..];
            let target = match memchr::memrchr(b' ', rest) {
                Some(e) if rest[e + 1..].starts_with(b"HTTP/") => &rest[..e],
                _ => rest,
            };
            (method, target)
        }
        // "-" or a garbage request: keep it as the target so classification sees it.
        None => (&b""[..], reqline),
    }
}

fn parse_u16(b: &[u8]) -> Option<u16> {
    if b.is_empty() || b.len() > 5 {
        return None;
    }
    let mut v: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    u16::try_from(v).ok()
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    Some(v)
}

fn month(b: &[u8]) -> Option<u32> {
    let m = match b {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    Some(m)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(v)
}

fn epoch(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32, off_secs: i64) -> Option<i64> {
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    Some(days * 86_400 + i64::from(h * 3600 + mi * 60 + s) - off_secs)
}

fn tz_offset(b: &[u8]) -> Option<i64> {
    // +0900, +09:00, Z
    match b {
        b"Z" | b"z" => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, rest @ ..] => {
            let mm = match rest {
                [b':', m1, m2] | [m1, m2] => num(&[*m1, *m2])?,
                [] => 0,
                _ => return None,
            };
            let hh = num(&[*h1, *h2])?;
            let v = i64::from(hh * 3600 + mm * 60);
            Some(if *sign == b'-' { -v } else { v })
        }
        _ => None,
    }
}

/// `10/Oct/2000:13:55:36 -0700` → Unix seconds.
pub fn parse_clf_time(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let d = num(&b[0..2])?;
    let mo = month(&b[3..6])?;
    let y = num(&b[7..11])?;
    let h = num(&b[12..14])?;
    let mi = num(&b[15..17])?;
    let s = num(&b[18..20])?;
    let off = match b.get(20..) {
        Some([b' ', tz @ ..]) => tz_offset(tz)?,
        Some([]) => 0,
        _ => return None,
    };
    epoch(y, mo, d, h, mi, s, off)
}

/// `2020-05-01T09:00:01+09:00` (fraction allowed) → Unix seconds.
pub fn parse_iso_time(b: &[u8]) -> Option<i64> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let y = num(&b[0..4])?;
    let mo = num(&b[5..7])?;
    let d = num(&b[8..10])?;
    let h = num(&b[11..13])?;
    let mi = num(&b[14..16])?;
    let s = num(&b[17..19])?;
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &rest[1 + n..];
    }
    let off = if rest.is_empty() { 0 } else { tz_offset(rest)? };
    epoch(y, mo, d, h, mi, s, off)
}

fn json_time(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::String(s) => {
            let b = s.as_bytes();
            parse_clf_time(b)
                .or_else(|| parse_iso_time(b))
                .or_else(|| s.parse::<f64>().ok().map(|f| f as i64))
        }
        // `$msec`: seconds with a fraction.
        serde_json::Value::Number(n) => n.as_f64().map(|f| f as i64),
        _ => None,
    }
}

fn json_str<'v>(obj: &'v serde_json::Map<String, serde_json::Value>, key: &str) -> &'v str {
    match obj.get(key) {
        Some(serde_json::Value::String(s)) => s.as_str(),
        _ => "",
    }
}

fn json_num(obj: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<u64> {
    match obj.get(key)? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_json<'a>(
    line: &[u8],
    f: &JsonFields,
    scratch: &'a mut Scratch,
) -> Result<Request<'a>, ParseError> {
    let obj: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(line).map_err(|_| ParseError::Json)?;
    let ip = parse_ip(json_str(&obj, &f.remote_addr).as_bytes())?;
    let time = obj
        .get(&f.time)
        .and_then(json_time)
        .ok_or(ParseError::Time)?;
    let status = json_num(&obj, &f.status)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or(ParseError::Status)?;
    let bytes = json_num(&obj, &f.bytes).unwrap_or(0);
    scratch.method.clear();
    scratch.target.clear();
    let m = json_str(&obj, &f.method);
    let u = json_str(&obj, &f.uri);
    if !u.is_empty() {
        scratch.method.push_str(m);
        scratch.target.push_str(u);
    } else {
        let r = json_str(&obj, &f.request);
        if r.is_empty() {
            return Err(ParseError::Request);
        }
        let (mm, tt) = split_request(r.as_bytes());
        scratch.method.push_str(&String::from_utf8_lossy(mm));
        scratch.target.push_str(&String::from_utf8_lossy(tt));
    }
    scratch.referer.clear();
    scratch.referer.push_str(json_str(&obj, &f.referer));
    scratch.user_agent.clear();
    scratch.user_agent.push_str(json_str(&obj, &f.user_agent));
    Ok(Request {
        ip,
        time,
        method: scratch.method.as_bytes(),
        target: scratch.target.as_bytes(),
        status,
        bytes,
        referer: scratch.referer.as_bytes(),
        user_agent: scratch.user_agent.as_bytes(),
        format: LogFormat::Json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Request<'static>, ParseError> {
        let s: &'static mut Scratch = Box::leak(Box::default());
        let f: &'static JsonFields = Box::leak(Box::default());
        parse_line(
            Box::leak(line.as_bytes().to_vec().into_boxed_slice()),
            None,
            f,
            s,
        )
    }

    #[test]
    fn combined() {
        let r = p(r#"1.2.3.4 - - [01/May/2020:09:00:01 +0900] "GET /a?b=1 HTTP/1.1" 200 512 "https://x/" "Mozilla/5.0 (X)""#).unwrap();
        assert_eq!(r.ip.to_string(), "1.2.3.4");
        assert_eq!(r.time, 1_588_291_201);
        assert_eq!(r.method, b"GET");
        assert_eq!(r.target, b"/a?b=1");
        assert_eq!(r.status, 200);
        assert_eq!(r.bytes, 512);
        assert_eq!(r.referer, b"https://x/");
        assert_eq!(r.user_agent, b"Mozilla/5.0 (X)");
        assert_eq!(r.format, LogFormat::Combined);
    }

    #[test]
    fn common_v6_and_dash_bytes() {
        let r = p(r#"2001:db8::1 - bob [10/Oct/2000:13:55:36 -0700] "POST /login HTTP/1.0" 302 -"#)
            .unwrap();
        assert_eq!(r.format, LogFormat::Common);
        assert_eq!(r.bytes, 0);
        assert_eq!(r.time, 971_211_336);
        assert!(r.ip.is_ipv6());
    }

    #[test]
    fn quotes_inside_request_and_mapped_v4() {
        let r = p(r#"::ffff:10.0.0.1 - - [01/May/2020:09:00:01 +0000] "GET /?q="a" b HTTP/1.1" 404 1 "-" "ua \"x\"""#).unwrap();
        assert_eq!(r.ip.to_string(), "10.0.0.1");
        assert_eq!(r.target, br#"/?q="a" b"#);
        assert_eq!(r.status, 404);
    }

    #[test]
    fn json_line() {
        let r = p(r#"{"time_local":"2020-05-01T09:00:01+09:00","remote_addr":"1.2.3.4","request_method":"GET","request_uri":"/x?\"q\"","server_protocol":"HTTP/1.1","status":200,"body_bytes_sent":"10","http_referer":"-","http_user_agent":"ua"}"#).unwrap();
        assert_eq!(r.time, 1_588_291_201);
        assert_eq!(r.target, br#"/x?"q""#);
        assert_eq!(r.bytes, 10);
        assert_eq!(r.format, LogFormat::Json);
    }

    #[test]
    fn garbage_is_an_error() {
        for l in [
            "",
            "hello",
            "1.2.3.4 - - [bad] \"GET / HTTP/1.1\" 200 1",
            "999.1.1.1 - - [01/May/2020:09:00:01 +0900] \"GET / HTTP/1.1\" 200 1",
            "1.2.3.4 - - [01/May/2020:09:00:01 +0900] \"GET / HTTP/1.1",
            "{\"remote_addr\":1}",
            "{",
        ] {
            assert!(p(l).is_err(), "{l}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_iso_time(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_iso_time(b"2020-05-01T00:00:00.123+00:00"),
            Some(1_588_291_200)
        );
        assert_eq!(parse_clf_time(b"01/Jan/1970:09:00:00 +0900"), Some(0));
        assert_eq!(parse_clf_time(b"32/Jan/1970:09:00:00 +0900"), None);
    }
}
