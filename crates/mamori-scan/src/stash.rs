//! The card-number stash finder (`data.card_stash`).
//!
//! A skimmer keeps what it steals in a file under the web root until the attacker fetches
//! it, usually disguised as an image or stylesheet, often encoded. This finds card
//! numbers (Luhn + issuer range + length, with space or hyphen separators) in the bytes as
//! they are, inside base64 and hex runs (also rot13'd or reversed base64), and reversed
//! digit strings; URL-encoding, PHP `serialize`, JSON and CSV keep the digits readable
//! and are recognised from the context. Public test numbers (gateway sandbox cards) and
//! dummy numbers are ignored, and a file is only reported when most of its card-shaped
//! numbers pass the Luhn check: order, tracking and invoice numbers pass it one time in
//! ten.
//!
//! Full numbers never leave this module: distinct numbers are counted by a keyed hash and
//! the samples are masked (first 6, last 4).

use base64::Engine as _;
use mamori_core::pan;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{BuildHasher, Hasher};

/// Tuning of the finder (`[scan]` settings).
#[derive(Debug, Clone)]
pub struct StashOptions {
    /// Distinct card numbers needed to report a file when none of them sits next to an
    /// expiry date or a card keyword.
    pub min_cards: usize,
    /// In documentation and test files (README, *.md, tests/…), where sandbox numbers
    /// are listed, this many distinct non-test numbers are needed.
    pub min_cards_docs: usize,
}

impl Default for StashOptions {
    fn default() -> Self {
        StashOptions {
            min_cards: 3,
            min_cards_docs: 10,
        }
    }
}

/// Publicly documented test card numbers (gateway sandboxes, card-scheme test cards).
const TEST_PANS: &[&str] = &[
    "4111111111111111",
    "4242424242424242",
    "4012888888881881",
    "4222222222222",
    "4000056655665556",
    "4000000000000002",
    "4000000000000010",
    "4000000000000028",
    "4000000000000036",
    "4000000000000044",
    "4000000000000069",
    "4000000000000077",
    "4000000000000093",
    "4000000000000101",
    "4000000000000119",
    "4000000000000127",
    "4000000000000341",
    "4000000000003055",
    "4000000000003063",
    "4000000000003220",
    "4000002500003155",
    "4000002760003184",
    "4000008260003178",
    "4000000760000002",
    "4000001240000000",
    "4000000000009995",
    "4000000000009987",
    "4000000000009979",
    "4917610000000000",
    "4917300800000000",
    "4484070000000000",
    "4444333322221111",
    "4035501000000008",
    "4131840000000003",
    "4988438843884305",
    "4166676667666746",
    "4646464646464644",
    "4012000033330026",
    "4012000077777777",
    "4005519200000004",
    "4009348888881881",
    "4217651111111119",
    "4500600000000061",
    "5555555555554444",
    "5200828282828210",
    "5105105105105100",
    "5454545454545454",
    "5555555555555557",
    "5500000000000004",
    "5431111111111111",
    "5424000000000015",
    "5101180000000007",
    "5555341244441115",
    "5577000055770004",
    "5136333333333335",
    "5185540000000019",
    "2223003122003222",
    "2223000048400011",
    "2222400070000005",
    "2222400010000008",
    "2221000000000009",
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "371144371144376",
    "370000000000002",
    "340000000000009",
    "341111111111111",
    "6011111111111117",
    "6011000990139424",
    "6011000400000000",
    "6011601160116611",
    "6011981111111113",
    "6445644564456445",
    "3530111333300000",
    "3566002020360505",
    "3566111111111113",
    "3528000000000007",
    "3569990010095841",
    "30569309025904",
    "38520000023237",
    "36227206271667",
    "36700102000000",
    "36148900647913",
    "3056930009020004",
    "6200000000000005",
    "6250941006528599",
    "6243030000000001",
    "6212345678901232",
];

/// How a number was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    Plain,
    Base64,
    Hex,
    Rot13Base64,
    ReversedBase64,
}

impl Layer {
    fn as_str(self) -> &'static str {
        match self {
            Layer::Plain => "plain",
            Layer::Base64 => "base64",
            Layer::Hex => "hex",
            Layer::Rot13Base64 => "rot13+base64",
            Layer::ReversedBase64 => "reversed+base64",
        }
    }
}

/// What the finder saw in one file.
#[derive(Debug, Clone, Default)]
pub struct StashReport {
    /// Distinct card numbers (not test or dummy numbers).
    pub count: usize,
    /// Numbers of a card's shape (issuer prefix and length), valid or not.
    pub shaped: usize,
    /// Card-shaped numbers that pass the Luhn check (with repeats).
    pub valid: usize,
    /// Public test numbers seen (ignored).
    pub test_numbers: usize,
    /// Numbers next to an expiry date or a card keyword.
    pub with_context: usize,
    /// How they were stored: "plain", "base64", "hex", "serialize", "base64+serialize",
    /// "json", "urlencoded", "csv", "separated", "reversed"…
    pub encodings: BTreeSet<String>,
    /// Masked samples (first 6, last 4), at most 5.
    pub samples: Vec<String>,
    /// Count per brand.
    pub brands: BTreeMap<String, usize>,
}

impl StashReport {
    /// Whether this is a stash by the finder's rules.
    pub fn is_stash(&self, opts: &StashOptions, docs: bool) -> bool {
        if self.count == 0 || self.valid * 2 < self.shaped {
            return false;
        }
        if docs {
            return self.count >= opts.min_cards_docs.max(1);
        }
        self.count >= opts.min_cards.max(1) || self.with_context > 0
    }
}

struct Tally {
    report: StashReport,
    seen: HashSet<u64>,
    hasher: std::collections::hash_map::RandomState,
}

const MAX_DEPTH: usize = 2;
const MIN_B64_RUN: usize = 20;
const MIN_HEX_RUN: usize = 26;

impl Tally {
    fn new() -> Tally {
        Tally {
            report: StashReport::default(),
            seen: HashSet::new(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn key(&self, digits: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(digits);
        h.finish()
    }

    /// Count a card-shaped candidate that failed the Luhn check both ways.
    fn shaped_only(&mut self) {
        self.report.shaped += 1;
    }

    /// Count a candidate `judge` found valid.
    fn add(&mut self, digits: &[u8], layer: Layer, format: Option<&str>, context: bool) {
        let reversed: Vec<u8> = digits.iter().rev().copied().collect();
        let (pan_digits, reversed_used) = match judge(digits) {
            Judge::Valid { reversed: false } => (digits, false),
            Judge::Valid { reversed: true } => (&reversed[..], true),
            Judge::Shaped => return self.shaped_only(),
            Judge::No => return,
        };
        let r = &mut self.report;
        r.shaped += 1;
        r.valid += 1;
        if is_test_or_dummy(pan_digits) {
            r.test_numbers += 1;
            return;
        }
        if context {
            r.with_context += 1;
        }
        let mut enc = String::from(layer.as_str());
        if let Some(f) = format {
            enc = if layer == Layer::Plain {
                f.to_string()
            } else {
                format!("{enc}+{f}")
            };
        }
        if reversed_used {
            enc.push_str("+reversed");
        }
        r.encodings.insert(enc);
        let k = self.key(pan_digits);
        if self.seen.insert(k) {
            let r = &mut self.report;
            r.count += 1;
            let b = pan::brand(pan_digits).unwrap_or("unknown");
            *r.brands.entry(b.to_string()).or_default() += 1;
            if r.samples.len() < 5 {
                r.samples.push(pan::mask(pan_digits));
            }
        }
    }
}

enum Judge {
    No,
    Shaped,
    Valid { reversed: bool },
}

/// Is this digit string a card number (issuer range, length, Luhn), read forwards or
/// backwards?
fn judge(digits: &[u8]) -> Judge {
    let forward = pan::brand(digits).is_some();
    let reversed: Vec<u8> = digits.iter().rev().copied().collect();
    let backward = pan::brand(&reversed).is_some();
    if forward && pan::luhn_valid(digits) {
        Judge::Valid { reversed: false }
    } else if backward && pan::luhn_valid(&reversed) {
        Judge::Valid { reversed: true }
    } else if forward || backward {
        Judge::Shaped
    } else {
        Judge::No
    }
}

/// Test numbers and dummies: a listed sandbox number, or one whose middle digits are
/// nearly all the same (4012888888881881) or that repeats a short period (5105105105105100).
fn is_test_or_dummy(d: &[u8]) -> bool {
    if TEST_PANS.iter().any(|t| t.as_bytes() == d) {
        return true;
    }
    let mid = &d[6..d.len() - 1];
    let mut distinct = [false; 10];
    for b in mid {
        distinct[usize::from(b - b'0')] = true;
    }
    if distinct.iter().filter(|x| **x).count() <= 2 {
        return true;
    }
    (1..=4).any(|p| d.iter().skip(p).zip(d.iter()).all(|(a, b)| a == b))
        || d[..d.len() - 1].windows(2).all(|w| w[1] == w[0] + 1)
}

/// Analyse `data` (the whole file) for card numbers.
pub fn analyze(data: &[u8]) -> StashReport {
    let mut t = Tally::new();
    scan_layer(data, Layer::Plain, 0, &mut t);
    t.report
}

/// Whether a path looks like documentation or a test (where sandbox numbers live).
pub fn is_docs_or_test(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    matches!(ext, "md" | "markdown" | "rst" | "adoc" | "pod" | "rdoc")
        || name.starts_with("readme")
        || name.starts_with("changelog")
        || name.ends_with("test.php")
        || name.ends_with("tests.php")
        || name.contains(".test.")
        || name.contains(".spec.")
        || [
            "/test/",
            "/tests/",
            "/spec/",
            "/fixtures/",
            "/testdata/",
            "/__tests__/",
        ]
        .iter()
        .any(|d| lower.contains(d) || lower.starts_with(&d[1..]))
}

/// Byte classes, one table load per byte in the hot loops (the scanner reads every byte
/// of every file): bit 0 the base64 alphabets (standard and URL-safe), bit 1 digits.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'-' || b == b'_' {
            t[c] |= 1;
        }
        if b.is_ascii_digit() {
            t[c] |= 2;
        }
        c += 1;
    }
    t
};

#[inline]
fn is_digit(b: u8) -> bool {
    CLASS[b as usize] & 2 != 0
}

#[inline]
fn is_b64(b: u8) -> bool {
    CLASS[b as usize] & 1 != 0
}

fn scan_layer(data: &[u8], layer: Layer, depth: usize, t: &mut Tally) {
    scan_digits(data, layer, t);
    if depth >= MAX_DEPTH {
        return;
    }
    // Runs of the base64 alphabet (hex is a subset): decode and look inside.
    let n = data.len();
    let mut i = 0;
    while i < n {
        match data[i..].iter().position(|&b| is_b64(b)) {
            Some(p) => i += p,
            None => break,
        }
        let start = i;
        i += data[i..].iter().position(|&b| !is_b64(b)).unwrap_or(n - i);
        let mut end = i;
        while i < n && data[i] == b'=' && i - end < 2 {
            i += 1;
        }
        let padded = i > end;
        if end - start < MIN_B64_RUN {
            continue;
        }
        let run = &data[start..end];
        if run.iter().all(u8::is_ascii_hexdigit) {
            if run.len() >= MIN_HEX_RUN && !run.iter().all(|b| is_digit(*b)) {
                let even = &run[..run.len() & !1];
                if let Some(dec) = hex_decode(even)
                    && mostly_text(&dec)
                {
                    scan_layer(&dec, Layer::Hex, depth + 1, t);
                }
            }
            continue;
        }
        // A plain word run (identifiers, prose) rarely decodes to text; the checks
        // below stay cheap either way.
        if padded {
            end = i;
        }
        let run = &data[start..end];
        if let Some(dec) = b64_text(run) {
            scan_layer(&dec, Layer::Base64, depth + 1, t);
        } else if let Some(dec) = b64_text(&rot13(run)) {
            scan_layer(&dec, Layer::Rot13Base64, depth + 1, t);
        } else {
            let rev: Vec<u8> = run.iter().rev().copied().collect();
            if let Some(dec) = b64_text(&rev) {
                scan_layer(&dec, Layer::ReversedBase64, depth + 1, t);
            }
        }
    }
}

fn hex_decode(s: &[u8]) -> Option<Vec<u8>> {
    let v = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.chunks_exact(2)
        .map(|p| Some(v(p[0])? << 4 | v(p[1])?))
        .collect()
}

fn rot13(s: &[u8]) -> Vec<u8> {
    s.iter()
        .map(|&c| match c {
            b'a'..=b'z' => (c - b'a' + 13) % 26 + b'a',
            b'A'..=b'Z' => (c - b'A' + 13) % 26 + b'A',
            _ => c,
        })
        .collect()
}

/// Decode a base64 run (standard or URL-safe alphabet, padding optional) if what comes
/// out is text; tries the alignments a run cut from its context may need.
fn b64_text(run: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const CFG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const STD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CFG);
    const URL: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CFG);
    let url = run.iter().any(|b| *b == b'-' || *b == b'_');
    let std = run.iter().any(|b| *b == b'+' || *b == b'/');
    if url && std {
        return None;
    }
    let engine = if url { &URL } else { &STD };
    let body_len = run.iter().take_while(|b| **b != b'=').count();
    for skip in [0usize, 1, 2, 3] {
        if body_len < skip + MIN_B64_RUN {
            break;
        }
        let body = &run[skip..body_len];
        let usable = body.len() - body.len() % 4;
        let tail = body.len() % 4;
        let take = if tail == 1 { usable } else { body.len() };
        let Ok(dec) = engine.decode(&body[..take]) else {
            continue;
        };
        if mostly_text(&dec) {
            return Some(dec);
        }
    }
    None
}

/// At least 90 % of the bytes are printable ASCII, tabs, newlines or valid UTF-8 text
/// (random bytes are not: most of them fail UTF-8).
fn mostly_text(d: &[u8]) -> bool {
    if d.is_empty() {
        return false;
    }
    // Stop as soon as more than a tenth is not text (most decodes of words are binary).
    let allowed = d.len() / 10;
    let mut bad = 0usize;
    for chunk in d.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
                bad += c.len_utf8();
            }
        }
        bad += chunk.invalid().len();
        if bad > allowed {
            return false;
        }
    }
    true
}

/// A byte that glues a digit run to a word (`id_4111…`, `v4111…x`).
#[inline]
fn glued(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Find numbers of 13–19 digits, possibly in groups separated by single spaces or
/// hyphens, not glued to letters or other digits, and add the card-shaped ones. A run of
/// groups may hold several numbers (`4111… 5105… 3782…`, `PAN CVV`): from each group, the
/// shortest span of 13–19 digits that is a valid card number is taken.
fn scan_digits(data: &[u8], layer: Layer, t: &mut Tally) {
    let n = data.len();
    let mut i = 0;
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut digits: Vec<u8> = Vec::with_capacity(24);
    while i < n {
        // Fast skip to the next digit.
        match data[i..].iter().position(|b| is_digit(*b)) {
            Some(p) => i += p,
            None => break,
        }
        let start = i;
        if start > 0 && (glued(data[start - 1]) || data[start - 1] == b'.') {
            while i < n && is_digit(data[i]) {
                i += 1;
            }
            continue;
        }
        groups.clear();
        loop {
            let gs = i;
            while i < n && is_digit(data[i]) {
                i += 1;
            }
            groups.push((gs, i));
            if i + 1 < n && (data[i] == b' ' || data[i] == b'-') && is_digit(data[i + 1]) {
                i += 1;
            } else {
                break;
            }
        }
        let end = i;
        if end < n
            && (glued(data[end]) || (data[end] == b'.' && end + 1 < n && is_digit(data[end + 1])))
        {
            groups.pop();
        }
        let mut g = 0;
        while g < groups.len() {
            let mut len = 0;
            let mut found = None;
            let mut shaped = false;
            for e in g..groups.len() {
                len += groups[e].1 - groups[e].0;
                if len > 19 {
                    break;
                }
                if len < 13 {
                    continue;
                }
                digits.clear();
                for &(a, b) in &groups[g..=e] {
                    digits.extend_from_slice(&data[a..b]);
                }
                match judge(&digits) {
                    Judge::Valid { .. } => {
                        found = Some(e);
                        break;
                    }
                    Judge::Shaped => shaped = true,
                    Judge::No => {}
                }
            }
            match found {
                Some(e) => {
                    let (s0, e0) = (groups[g].0, groups[e].1);
                    let format = context_format(data, s0, e0, e > g);
                    let ctx = has_card_context(data, s0, e0);
                    t.add(&digits, layer, format, ctx);
                    g = e + 1;
                }
                None => {
                    if shaped {
                        t.shaped_only();
                    }
                    g += 1;
                }
            }
        }
    }
}

/// How the number is framed: PHP serialize (`s:16:"…"`), JSON, URL-encoded form data,
/// CSV, or digits in groups.
fn context_format(data: &[u8], start: usize, end: usize, separated: bool) -> Option<&'static str> {
    let before = &data[start.saturating_sub(8)..start];
    let after = &data[end..(end + 2).min(data.len())];
    if separated {
        return Some("separated");
    }
    if before.ends_with(b"\"") {
        // s:16:"4111…"  (serialize) or "c": "4111…" (JSON)
        let b = &before[..before.len() - 1];
        if b.ends_with(b":")
            && b.iter().rev().skip(1).take_while(|c| is_digit(**c)).count() > 0
            && b.windows(2).any(|w| w == b"s:")
        {
            return Some("serialize");
        }
        if b.ends_with(b": ") || b.ends_with(b":") || b.ends_with(b",") || b.ends_with(b"[") {
            return Some("json");
        }
    }
    if before.ends_with(b"=")
        && (after.first() == Some(&b'&')
            || after.is_empty()
            || after[0] == b'\n'
            || after[0] == b'\r')
    {
        return Some("urlencoded");
    }
    if before.ends_with(b",") || after.first() == Some(&b',') {
        return Some("csv");
    }
    None
}

/// A card keyword shortly before the number, or an expiry date (MM/YY, MM/YYYY, MMYY)
/// shortly after it, in the same record.
fn has_card_context(data: &[u8], start: usize, end: usize) -> bool {
    let before = &data[start.saturating_sub(32)..start];
    let lower: Vec<u8> = before.iter().map(u8::to_ascii_lowercase).collect();
    let line_start = lower
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    let lower = &lower[line_start..];
    if [&b"card"[..], b"cc_", b"ccnum", b"pan", b"number"]
        .iter()
        .any(|k| lower.windows(k.len()).any(|w| w == *k))
    {
        return true;
    }
    let after = &data[end..(end + 48).min(data.len())];
    let after = match after.iter().position(|b| *b == b'\n') {
        Some(p) => &after[..p],
        None => after,
    };
    // MM/YY or MM/YYYY, bounded by non-digits.
    after.windows(5).enumerate().any(|(k, w)| {
        let month = (w[0] == b'0' && (b'1'..=b'9').contains(&w[1]))
            || (w[0] == b'1' && (b'0'..=b'2').contains(&w[1]));
        let shape = month && (w[2] == b'/' || w[2] == b'-') && is_digit(w[3]) && is_digit(w[4]);
        let before_ok = k == 0 || !is_digit(after[k - 1]);
        let tail = after.get(k + 5..).unwrap_or(&[]);
        let after_ok = tail.first().is_none_or(|b| !is_digit(*b))
            || (tail.len() >= 2
                && is_digit(tail[0])
                && is_digit(tail[1])
                && tail.get(2).is_none_or(|b| !is_digit(*b)));
        shape && before_ok && after_ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    // Luhn-valid, non-test numbers made for these tests.
    const A: &str = "4539578763621486";
    const B: &str = "5425233430109903";
    const C: &str = "374245455400126";

    fn report(s: &[u8]) -> StashReport {
        analyze(s)
    }

    #[test]
    fn plain_lines_with_expiry() {
        let r = report(format!("TARO|{A}|11/28|123\nHANAKO|{B}|01/30|456\n").as_bytes());
        assert_eq!(r.count, 2);
        assert_eq!(r.with_context, 2);
        assert!(r.is_stash(&StashOptions::default(), false));
        assert_eq!(r.samples[0], "453957******1486");
        assert!(!format!("{r:?}").contains(A), "full number kept");
    }

    #[test]
    fn separators_and_amex_grouping() {
        let r = report(b"X  4539 5787 6362 1486  06/31\nY  3742 4545 5400 126  11/29\n");
        assert_eq!(r.count, 2);
        assert!(r.encodings.contains("separated"));
    }

    #[test]
    fn base64_hex_serialize_reversed_rot13() {
        let ser = format!("a:1:{{s:11:\"card_number\";s:16:\"{A}\";}}");
        let b64 = STANDARD.encode(&ser);
        let r = report(format!("/*{b64}*/\n").as_bytes());
        assert_eq!(r.count, 1);
        assert!(
            r.encodings.contains("base64+serialize"),
            "{:?}",
            r.encodings
        );

        let hex: String = format!("N;{B};12/30")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        let r = report(hex.as_bytes());
        assert_eq!(r.count, 1);
        assert!(r.encodings.contains("hex"));

        let rev: String = format!("x|{C}|05/29").chars().rev().collect();
        let r = report(rev.as_bytes());
        assert_eq!(r.count, 1);
        assert!(r.encodings.iter().any(|e| e.ends_with("reversed")));

        let rot = rot13(STANDARD.encode(format!("n={A}&e=11/28")).as_bytes());
        let r = report(&rot);
        assert_eq!(r.count, 1);
        assert!(
            r.encodings.contains("rot13+base64+urlencoded"),
            "{:?}",
            r.encodings
        );

        let revb64: Vec<u8> = STANDARD
            .encode(format!("{B}|01/27|x"))
            .bytes()
            .rev()
            .collect();
        let r = report(&revb64);
        assert_eq!(r.count, 1, "{r:?}");
    }

    #[test]
    fn test_numbers_and_non_luhn_ids_are_not_stashes() {
        let readme = b"| Visa | 4111 1111 1111 1111 |\n| MC | 5555555555554444 |\n| JCB | 3530111333300000 |\n4012888888881881 5105105105105100 378282246310005\n";
        let r = report(readme);
        assert_eq!(r.count, 0);
        assert!(r.test_numbers >= 6);
        assert!(!r.is_stash(&StashOptions::default(), true));

        // Order numbers with card-like prefixes: Luhn passes about one in ten.
        let mut s = String::new();
        let mut x: u64 = 4_000_000_000_000_000;
        let mut pass = 0;
        for _ in 0..200 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407)
                % 10u64.pow(15);
            let n = format!("4{x:015}");
            pass += usize::from(pan::is_pan(n.as_bytes()));
            s.push_str(&format!("{n},2020-07-01,1200\n"));
        }
        assert!(pass > 0, "the generator should make some Luhn-valid ids");
        let r = report(s.as_bytes());
        assert!(!r.is_stash(&StashOptions::default(), false), "{r:?}");
    }

    #[test]
    fn digits_inside_words_and_long_numbers_are_ignored() {
        let r = report(format!("id_{A} v{B}x 1{C}0 {A}12345").as_bytes());
        assert_eq!(r.shaped, 0, "{r:?}");
    }

    #[test]
    fn docs_paths() {
        assert!(is_docs_or_test("app/Plugin/CardPayment/README.md"));
        assert!(is_docs_or_test("x/Tests/CardValidatorTest.php"));
        assert!(is_docs_or_test("tests/a.php"));
        assert!(!is_docs_or_test("html/upload/temp/tmp_0923.txt"));
        assert!(!is_docs_or_test("var/export/customers.csv"));
    }

    #[test]
    fn dummy_numbers() {
        assert!(is_test_or_dummy(b"4012888888881881"));
        assert!(is_test_or_dummy(b"5105105105105100"));
        assert!(!is_test_or_dummy(A.as_bytes()));
    }
}
