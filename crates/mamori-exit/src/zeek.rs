//! Zeek log readers: `conn.log` and `dns.log`, in Zeek's TSV form (`#separator`,
//! `#fields`, `#types` headers; several header blocks per file are allowed) and in JSON
//! lines (`LogAscii::use_json=T`). Structural problems (no header, a header without a
//! required field, data before `#fields`) are errors naming the file and line; a bad
//! data line (truncated, wrong field count, unparsable address or time) is skipped and
//! counted.

use crate::error::ExitError;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// One outbound connection, from any source (Zeek or the live sampler).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnRecord {
    /// Seconds since the Unix epoch (first packet).
    pub ts: f64,
    pub orig_h: Option<IpAddr>,
    pub resp_h: IpAddr,
    pub resp_p: u16,
    /// `tcp`, `udp`, `icmp`, ...
    pub proto: String,
    /// Payload bytes sent by the originator (Zeek `orig_bytes`, else `orig_ip_bytes`).
    pub orig_bytes: u64,
    pub resp_bytes: u64,
    pub conn_state: Option<String>,
    pub local_orig: Option<bool>,
    pub local_resp: Option<bool>,
    /// SNI / HTTP Host when the log carries it (non-standard `host` column).
    pub host: Option<String>,
    /// Process that owned the socket (live sampler only).
    pub process: Option<crate::live::ProcInfo>,
}

/// One DNS answer set from `dns.log`.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsRecord {
    pub ts: f64,
    pub orig_h: Option<IpAddr>,
    pub query: String,
    pub answers: Vec<IpAddr>,
}

/// What a reader saw besides records.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ReadStats {
    pub lines: usize,
    pub records: usize,
    pub skipped: usize,
    /// The first few skipped lines: (line number, reason).
    pub skip_examples: Vec<(usize, String)>,
}

impl ReadStats {
    fn skip(&mut self, line: usize, why: String) {
        self.skipped += 1;
        if self.skip_examples.len() < 5 {
            self.skip_examples.push((line, why));
        }
    }
}

/// A data row: either a TSV line under a `#fields` header or a JSON object.
enum Row<'a> {
    Tsv {
        cols: &'a [&'a str],
        hdr: &'a Header,
    },
    Json(&'a Map<String, Value>),
}

struct Header {
    sep: String,
    set_sep: String,
    unset: String,
    empty: String,
    idx: HashMap<String, usize>,
    n: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            sep: "\t".into(),
            set_sep: ",".into(),
            unset: "-".into(),
            empty: "(empty)".into(),
            idx: HashMap::new(),
            n: 0,
        }
    }
}

impl Row<'_> {
    /// A scalar field; `None` when absent or unset.
    fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        match self {
            Row::Tsv { cols, hdr } => {
                let v = *cols.get(*hdr.idx.get(name)?)?;
                if v == hdr.unset {
                    None
                } else if v == hdr.empty {
                    Some(Cow::Borrowed(""))
                } else {
                    Some(Cow::Borrowed(v))
                }
            }
            Row::Json(m) => match m.get(name)? {
                Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                Value::Number(n) => Some(Cow::Owned(n.to_string())),
                Value::Bool(b) => Some(Cow::Borrowed(if *b { "T" } else { "F" })),
                _ => None,
            },
        }
    }

    /// A set/vector field as its elements.
    fn list(&self, name: &str) -> Vec<String> {
        match self {
            Row::Tsv { hdr, .. } => match self.get(name) {
                Some(v) if !v.is_empty() => {
                    v.split(hdr.set_sep.as_str()).map(str::to_string).collect()
                }
                _ => Vec::new(),
            },
            Row::Json(m) => match m.get(name) {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                Some(Value::String(s)) => vec![s.clone()],
                _ => Vec::new(),
            },
        }
    }
}

/// Decode Zeek's `\xHH` escapes in a `#separator` line.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1] == b'x'
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a Zeek time: epoch seconds, or RFC 3339 (JSON logs with ISO timestamps).
fn parse_ts(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return (v.is_finite() && v > 0.0).then_some(v);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp() as f64 + f64::from(d.timestamp_subsec_micros()) / 1e6)
}

fn parse_bool(s: Option<Cow<'_, str>>) -> Option<bool> {
    match s.as_deref() {
        Some("T") | Some("true") => Some(true),
        Some("F") | Some("false") => Some(false),
        _ => None,
    }
}

fn parse_count(s: Option<Cow<'_, str>>) -> Result<Option<u64>, String> {
    match s {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .or_else(|_| {
                // JSON logs may write counts as floats (e.g. 12.0).
                v.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| Some(f as u64))
                    .ok_or(())
            })
            .map_err(|_| format!("bad count `{}`", clip(&v))),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Walk a Zeek log; `row` turns each data row into a record or a skip reason.
fn walk<T>(
    path: &Path,
    text: &[u8],
    required: &[&str],
    mut row: impl FnMut(&Row<'_>) -> Result<T, String>,
    out: &mut Vec<T>,
) -> Result<ReadStats, ExitError> {
    let mut st = ReadStats::default();
    let mut hdr = Header::default();
    let mut have_fields = false;
    let mut saw_header = false;
    let mut json_mode = false;
    let mut first_data_err: Option<(usize, String)> = None;
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let lineno = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            continue;
        }
        st.lines += 1;
        let Ok(line) = std::str::from_utf8(raw) else {
            st.skip(lineno, "not UTF-8".into());
            continue;
        };
        if let Some(d) = line.strip_prefix('#') {
            saw_header = true;
            if let Some(v) = d.strip_prefix("separator") {
                let v = unescape(v.trim_start_matches([' ', '\t']));
                if v.is_empty() {
                    return Err(ExitError::format(path, lineno, "empty #separator"));
                }
                hdr.sep = v;
                continue;
            }
            let mut parts = d.split(hdr.sep.as_str());
            let key = parts.next().unwrap_or("");
            let rest: Vec<&str> = parts.collect();
            match key {
                "set_separator" => {
                    if let Some(v) = rest.first().filter(|v| !v.is_empty()) {
                        hdr.set_sep = (*v).to_string();
                    }
                }
                "unset_field" => {
                    if let Some(v) = rest.first() {
                        hdr.unset = (*v).to_string();
                    }
                }
                "empty_field" => {
                    if let Some(v) = rest.first() {
                        hdr.empty = (*v).to_string();
                    }
                }
                "fields" => {
                    hdr.idx = rest
                        .iter()
                        .enumerate()
                        .map(|(i, f)| ((*f).to_string(), i))
                        .collect();
                    hdr.n = rest.len();
                    if let Some(m) = required.iter().find(|r| !hdr.idx.contains_key(**r)) {
                        return Err(ExitError::format(
                            path,
                            lineno,
                            format!(
                                "#fields header lacks required field `{m}` (is this the right Zeek log? separator is {:?})",
                                hdr.sep
                            ),
                        ));
                    }
                    have_fields = true;
                }
                _ => {}
            }
            continue;
        }
        let res = if line.trim_start().starts_with('{') {
            json_mode = true;
            match serde_json::from_str::<Map<String, Value>>(line) {
                Ok(m) => {
                    if let Some(r) = required.iter().find(|r| !m.contains_key(**r)) {
                        Err(format!("JSON record lacks `{r}`"))
                    } else {
                        row(&Row::Json(&m))
                    }
                }
                Err(e) => Err(format!("bad JSON: {e}")),
            }
        } else if !have_fields && json_mode {
            Err("not a JSON record".to_string())
        } else if !have_fields {
            if !saw_header && st.records == 0 {
                return Err(ExitError::format(
                    path,
                    lineno,
                    "not a Zeek log: expected `#separator`/`#fields` headers or JSON lines",
                ));
            }
            return Err(ExitError::format(
                path,
                lineno,
                "data line before the #fields header",
            ));
        } else {
            let cols: Vec<&str> = line.split(hdr.sep.as_str()).collect();
            if cols.len() != hdr.n {
                Err(format!(
                    "expected {} fields, found {} (truncated line?)",
                    hdr.n,
                    cols.len()
                ))
            } else {
                row(&Row::Tsv {
                    cols: &cols,
                    hdr: &hdr,
                })
            }
        };
        match res {
            Ok(r) => {
                out.push(r);
                st.records += 1;
            }
            Err(why) => {
                if first_data_err.is_none() {
                    first_data_err = Some((lineno, why.clone()));
                }
                st.skip(lineno, why);
            }
        }
    }
    if st.records == 0
        && let Some((l, why)) = first_data_err
    {
        return Err(ExitError::format(
            path,
            l,
            format!("no usable record in the file; first problem: {why}"),
        ));
    }
    Ok(st)
}

fn conn_row(r: &Row<'_>) -> Result<ConnRecord, String> {
    let ts = r
        .get("ts")
        .and_then(|v| parse_ts(&v))
        .ok_or("missing or bad `ts`")?;
    let resp_h = r
        .get("id.resp_h")
        .ok_or("missing `id.resp_h`")?
        .parse::<IpAddr>()
        .map_err(|_| "bad `id.resp_h` address".to_string())?;
    let resp_p = r
        .get("id.resp_p")
        .ok_or("missing `id.resp_p`")?
        .parse::<u16>()
        .map_err(|_| "bad `id.resp_p` port".to_string())?;
    let orig_h = r.get("id.orig_h").and_then(|v| v.parse::<IpAddr>().ok());
    let orig_bytes = match parse_count(r.get("orig_bytes"))? {
        Some(v) => v,
        None => parse_count(r.get("orig_ip_bytes"))?.unwrap_or(0),
    };
    let resp_bytes = match parse_count(r.get("resp_bytes"))? {
        Some(v) => v,
        None => parse_count(r.get("resp_ip_bytes"))?.unwrap_or(0),
    };
    Ok(ConnRecord {
        ts,
        orig_h,
        resp_h,
        resp_p,
        proto: r.get("proto").map(|s| s.into_owned()).unwrap_or_default(),
        orig_bytes,
        resp_bytes,
        conn_state: r.get("conn_state").map(|s| s.into_owned()),
        local_orig: parse_bool(r.get("local_orig")),
        local_resp: parse_bool(r.get("local_resp")),
        host: r
            .get("host")
            .filter(|h| !h.is_empty())
            .map(|s| s.to_ascii_lowercase()),
        process: None,
    })
}

fn dns_row(r: &Row<'_>) -> Result<DnsRecord, String> {
    let ts = r
        .get("ts")
        .and_then(|v| parse_ts(&v))
        .ok_or("missing or bad `ts`")?;
    let query = r
        .get("query")
        .map(|q| q.trim_end_matches('.').to_ascii_lowercase())
        .ok_or("missing `query`")?;
    let answers = r
        .list("answers")
        .iter()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .collect();
    Ok(DnsRecord {
        ts,
        orig_h: r.get("id.orig_h").and_then(|v| v.parse().ok()),
        query,
        answers,
    })
}

/// Parse a conn.log held in memory. `path` is only used in messages.
pub fn parse_conn_log(path: &Path, text: &[u8]) -> Result<(Vec<ConnRecord>, ReadStats), ExitError> {
    let mut out = Vec::new();
    let st = walk(
        path,
        text,
        &["ts", "id.resp_h", "id.resp_p"],
        conn_row,
        &mut out,
    )?;
    Ok((out, st))
}

/// Parse a dns.log held in memory.
pub fn parse_dns_log(path: &Path, text: &[u8]) -> Result<(Vec<DnsRecord>, ReadStats), ExitError> {
    let mut out = Vec::new();
    let st = walk(path, text, &["ts", "query", "answers"], dns_row, &mut out)?;
    Ok((out, st))
}

/// Read and parse a conn.log file.
pub fn read_conn_log(path: &Path) -> Result<(Vec<ConnRecord>, ReadStats), ExitError> {
    let text = std::fs::read(path).map_err(|e| ExitError::io(path, e))?;
    parse_conn_log(path, &text)
}

/// Read and parse a dns.log file.
pub fn read_dns_log(path: &Path) -> Result<(Vec<DnsRecord>, ReadStats), ExitError> {
    let text = std::fs::read(path).map_err(|e| ExitError::io(path, e))?;
    parse_dns_log(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDR: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\n";

    fn p(s: &str) -> Result<(Vec<ConnRecord>, ReadStats), ExitError> {
        parse_conn_log(Path::new("conn.log"), s.as_bytes())
    }

    #[test]
    fn parses_tsv_and_ipv6() {
        let s = format!(
            "{HDR}1585666803.0\tC1\t203.0.113.10\t46870\t198.51.100.50\t443\ttcp\tssl\t0.2\t712\t23000\tSF\tT\tF\n1585666804.5\tC2\t2001:db8::1\t5000\t2001:db8::2\t443\ttcp\t-\t-\t-\t-\tS0\tT\tF\n"
        );
        let (r, st) = p(&s).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(st.skipped, 0);
        assert_eq!(r[0].orig_bytes, 712);
        assert_eq!(r[0].local_orig, Some(true));
        assert_eq!(r[1].resp_h, "2001:db8::2".parse::<IpAddr>().unwrap());
        assert_eq!(r[1].orig_bytes, 0);
    }

    #[test]
    fn truncated_line_is_skipped_and_counted() {
        let s = format!(
            "{HDR}1585666803.0\tC1\t203.0.113.10\t46870\t198.51.100.50\t443\ttcp\tssl\t0.2\t712\t23000\tSF\tT\tF\n1585666804.0\tC2\t203.0.113.10\t4687"
        );
        let (r, st) = p(&s).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(st.skipped, 1);
        assert_eq!(st.skip_examples[0].0, 9);
    }

    #[test]
    fn wrong_header_is_an_error_with_line() {
        let s = "#separator \\x09\n#fields\tts\tuid\tquery\n1.0\tC\tx\n";
        let e = p(s).unwrap_err().to_string();
        assert!(e.starts_with("conn.log:2:"), "{e}");
        assert!(e.contains("id.resp_h"), "{e}");
        let e = p("hello world\n").unwrap_err().to_string();
        assert!(e.starts_with("conn.log:1:"), "{e}");
    }

    #[test]
    fn all_bad_is_an_error() {
        let s = format!("{HDR}x\ty\n");
        let e = p(&s).unwrap_err().to_string();
        assert!(e.contains("conn.log:8:"), "{e}");
        // JSON first, then a stray text line: skipped, not fatal.
        let (r, st) = p("{\"ts\":1.0,\"id.resp_h\":\"192.0.2.1\",\"id.resp_p\":1}\nxx\n").unwrap();
        assert_eq!((r.len(), st.skipped), (1, 1));
    }

    #[test]
    fn json_lines() {
        let s = r#"{"ts":1585666803.0,"uid":"C1","id.orig_h":"203.0.113.10","id.orig_p":1,"id.resp_h":"198.51.100.50","id.resp_p":443,"proto":"tcp","orig_bytes":10,"local_orig":true}
{"ts":"2020-03-31T15:00:04.000000Z","id.resp_h":"192.0.2.1","id.resp_p":80}
{"ts":1.0,"id.resp_h":"nope","id.resp_p":80}
not json
"#;
        let (r, st) = p(s).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(st.skipped, 2);
        assert_eq!(r[0].local_orig, Some(true));
        assert!((r[1].ts - 1585666804.0).abs() < 1e-6);
    }

    #[test]
    fn dns_answers() {
        let s = "#separator \\x09\n#set_separator\t,\n#fields\tts\tquery\tanswers\n1.5\tWWW.Example.\tcname.example,192.0.2.1,2001:db8::5\n";
        let (r, _) = parse_dns_log(Path::new("dns.log"), s.as_bytes()).unwrap();
        assert_eq!(r[0].query, "www.example");
        assert_eq!(r[0].answers.len(), 2);
    }
}
