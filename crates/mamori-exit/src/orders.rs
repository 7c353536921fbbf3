//! Orders (checkout completions): the kit's `orders.jsonl`, or an nginx/Apache access
//! log (combined format or nginx JSON) whose checkout completions mark orders.

use crate::error::ExitError;
use std::path::Path;

/// Default request paths that mark a completed checkout in an access log:
/// EC-CUBE (`/shopping/complete`), Magento (`/checkout/onepage/success`),
/// WooCommerce (`/checkout/order-received/`), and the kit's demo shop
/// (`POST /shopping/checkout.php`, `POST /checkout/index.php`, `POST /checkout.php`).
pub const DEFAULT_CHECKOUT_PATHS: &[&str] = &[
    "/shopping/complete",
    "/checkout/onepage/success",
    "/checkout/order-received/",
    "POST /shopping/checkout.php",
    "POST /checkout/index.php",
    "POST /checkout.php",
];

/// Parsed order times (epoch seconds, sorted) and counts.
#[derive(Debug, Clone, Default)]
pub struct Orders {
    pub times: Vec<f64>,
    pub skipped: usize,
}

/// Read `orders.jsonl`: one JSON object per line with `ts` (epoch seconds) or `time`
/// (RFC 3339). Bad lines are skipped and counted; a file with lines but no usable order
/// is an error naming its first bad line.
pub fn read_orders_jsonl(path: &Path) -> Result<Orders, ExitError> {
    let text = std::fs::read(path).map_err(|e| ExitError::io(path, e))?;
    parse_orders_jsonl(path, &text)
}

/// [`read_orders_jsonl`] on bytes in memory.
pub fn parse_orders_jsonl(path: &Path, text: &[u8]) -> Result<Orders, ExitError> {
    let mut o = Orders::default();
    let mut first_bad = None;
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: Option<serde_json::Value> = serde_json::from_slice(raw).ok();
        let ts = v.as_ref().and_then(|v| {
            v.get("ts").and_then(serde_json::Value::as_f64).or_else(|| {
                v.get("time")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    .map(|d| d.timestamp_millis() as f64 / 1000.0)
            })
        });
        match ts {
            Some(t) if t.is_finite() && t > 0.0 => o.times.push(t),
            _ => {
                o.skipped += 1;
                first_bad.get_or_insert(i + 1);
            }
        }
    }
    if o.times.is_empty()
        && let Some(l) = first_bad
    {
        return Err(ExitError::format(
            path,
            l,
            "no usable order: expected JSON lines with `ts` (epoch seconds) or `time` (RFC 3339)",
        ));
    }
    o.times.sort_by(f64::total_cmp);
    Ok(o)
}

/// Read an access log and keep the times of checkout completions (2xx/3xx responses to
/// a request matching one of `checkout_paths`: `"/path/prefix"` or `"METHOD /path"`).
pub fn read_access_log(path: &Path, checkout_paths: &[String]) -> Result<Orders, ExitError> {
    let text = std::fs::read(path).map_err(|e| ExitError::io(path, e))?;
    Ok(parse_access_log(&text, checkout_paths))
}

/// [`read_access_log`] on bytes in memory. Lines that are not access-log lines are
/// skipped and counted.
pub fn parse_access_log(text: &[u8], checkout_paths: &[String]) -> Orders {
    let pats: Vec<(Option<&str>, &str)> = checkout_paths
        .iter()
        .map(|p| match p.split_once(' ') {
            Some((m, path)) => (Some(m), path),
            None => (None, p.as_str()),
        })
        .collect();
    let mut o = Orders::default();
    for raw in text.split(|&b| b == b'\n') {
        if raw.is_empty() {
            continue;
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            o.skipped += 1;
            continue;
        };
        let Some((ts, method, uri, status)) = access_fields(line) else {
            o.skipped += 1;
            continue;
        };
        if !(200..400).contains(&status) {
            continue;
        }
        let path = uri.split('?').next().unwrap_or(uri);
        let hit = pats
            .iter()
            .any(|(m, p)| m.is_none_or(|m| m.eq_ignore_ascii_case(method)) && path.starts_with(p));
        if hit {
            o.times.push(ts);
        }
    }
    o.times.sort_by(f64::total_cmp);
    o
}

/// (time, method, uri, status) from a combined-format or nginx-JSON line.
fn access_fields(line: &str) -> Option<(f64, &str, &str, u16)> {
    let line = line.trim_end_matches('\r');
    if line.starts_with('{') {
        return access_json(line);
    }
    let lb = line.find('[')?;
    let rb = lb + line[lb..].find(']')?;
    let ts = parse_clf_time(&line[lb + 1..rb])?;
    let rest = &line[rb + 1..];
    let q1 = rest.find('"')?;
    let rest = &rest[q1 + 1..];
    let q2 = rest.find('"')?;
    let req = &rest[..q2];
    let mut it = req.split(' ');
    let method = it.next()?;
    let uri = it.next()?;
    let status = rest[q2 + 1..].split_whitespace().next()?.parse().ok()?;
    Some((ts, method, uri, status))
}

fn access_json(line: &str) -> Option<(f64, &str, &str, u16)> {
    // Borrowed fields: nginx JSON logs escape only what JSON requires, and a line with
    // an escaped method or URI is not a checkout completion we could match anyway.
    #[derive(serde::Deserialize)]
    struct J<'a> {
        #[serde(borrow)]
        time_local: Option<&'a str>,
        #[serde(borrow)]
        time_iso8601: Option<&'a str>,
        #[serde(borrow)]
        request_method: Option<&'a str>,
        #[serde(borrow)]
        request_uri: Option<&'a str>,
        status: Option<serde_json::Value>,
    }
    let j: J<'_> = serde_json::from_str(line).ok()?;
    let ts = match (j.time_iso8601, j.time_local) {
        (Some(t), _) => chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.timestamp_millis() as f64 / 1000.0)?,
        (None, Some(t)) => parse_clf_time(t)?,
        _ => return None,
    };
    let status = match j.status? {
        serde_json::Value::Number(n) => u16::try_from(n.as_u64()?).ok()?,
        serde_json::Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    Some((ts, j.request_method?, j.request_uri?, status))
}

/// `10/Oct/2020:13:55:36 +0900` → epoch seconds.
fn parse_clf_time(s: &str) -> Option<f64> {
    chrono::DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S %z")
        .ok()
        .map(|d| d.timestamp() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_jsonl() {
        let s = b"{\"time\": \"2020-03-31T15:26:58.168Z\", \"ts\": 1585668418.167833}\n{\"time\":\"2020-03-31T15:00:00Z\"}\nbroken\n";
        let o = parse_orders_jsonl(Path::new("o"), s).unwrap();
        assert_eq!(o.times.len(), 2);
        assert_eq!(o.skipped, 1);
        assert!(o.times[0] < o.times[1]);
        let e = parse_orders_jsonl(Path::new("o"), b"\nbroken\n").unwrap_err();
        assert_eq!(
            e.to_string().split(':').take(2).collect::<Vec<_>>(),
            ["o", "2"]
        );
    }

    #[test]
    fn access_log_checkouts() {
        let pats: Vec<String> = DEFAULT_CHECKOUT_PATHS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let s = b"198.51.100.7 - - [31/Mar/2020:15:26:58 +0900] \"POST /shopping/checkout.php HTTP/1.1\" 200 512 \"-\" \"UA\"\n\
198.51.100.7 - - [31/Mar/2020:15:27:58 +0900] \"GET /shopping/checkout.php HTTP/1.1\" 200 512 \"-\" \"UA\"\n\
198.51.100.8 - - [31/Mar/2020:15:28:00 +0900] \"GET /shopping/complete?x=1 HTTP/1.1\" 302 0 \"-\" \"UA\"\n\
198.51.100.8 - - [31/Mar/2020:15:29:00 +0900] \"GET /shopping/complete HTTP/1.1\" 500 0 \"-\" \"UA\"\n\
garbage\n\
{\"time_local\":\"31/Mar/2020:15:30:00 +0900\",\"remote_addr\":\"x\",\"request_method\":\"POST\",\"request_uri\":\"/checkout.php\",\"status\":\"200\"}\n";
        let o = parse_access_log(s, &pats);
        assert_eq!(o.times.len(), 3);
        assert_eq!(o.skipped, 1);
        assert_eq!(o.times[0], 1585636018.0);
    }
}
