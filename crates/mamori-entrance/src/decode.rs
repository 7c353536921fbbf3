//! URL decoding for detection: `%XX`, `%uXXXX`, `+` as space, repeated (double
//! encoding), ASCII-lowercased. The output is for matching only, never for display.

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// One decoding pass from `src` into `out` (cleared first). Returns whether anything changed.
fn decode_once(src: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut changed = false;
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        if c == b'%' {
            if let (Some(a), Some(b)) = (
                src.get(i + 1).copied().and_then(hex),
                src.get(i + 2).copied().and_then(hex),
            ) {
                out.push(a << 4 | b);
                i += 3;
                changed = true;
                continue;
            }
            if matches!(src.get(i + 1), Some(b'u' | b'U')) {
                let d: Option<Vec<u8>> = src
                    .get(i + 2..i + 6)
                    .map(|s| s.iter().map(|&c| hex(c)).collect::<Option<Vec<u8>>>())
                    .unwrap_or(None);
                if let Some(d) = d {
                    let cp = u32::from(d[0]) << 12
                        | u32::from(d[1]) << 8
                        | u32::from(d[2]) << 4
                        | u32::from(d[3]);
                    // Full-width ASCII (U+FF01..FF5E) folds to ASCII, as IIS did.
                    let ch = if (0xFF01..=0xFF5E).contains(&cp) {
                        char::from_u32(cp - 0xFEE0)
                    } else {
                        char::from_u32(cp)
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.unwrap_or('?').encode_utf8(&mut buf).as_bytes());
                    i += 6;
                    changed = true;
                    continue;
                }
            }
            out.push(c);
        } else if c == b'+' {
            out.push(b' ');
            changed = true;
        } else {
            out.push(c);
        }
        i += 1;
    }
    changed
}

/// Decode up to three times (double/triple encoding) and lowercase ASCII into `out`.
/// `tmp` is scratch space reused between calls.
pub fn normalize(src: &[u8], out: &mut Vec<u8>, tmp: &mut Vec<u8>) {
    out.clear();
    if !src.iter().any(|&c| c == b'%' || c == b'+') {
        out.extend(src.iter().map(u8::to_ascii_lowercase));
        return;
    }
    tmp.clear();
    tmp.extend_from_slice(src);
    for _ in 0..3 {
        if !decode_once(tmp, out) {
            break;
        }
        std::mem::swap(tmp, out);
        if !tmp.contains(&b'%') {
            break;
        }
    }
    out.clear();
    out.extend(tmp.iter().map(u8::to_ascii_lowercase));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        let (mut o, mut t) = (Vec::new(), Vec::new());
        normalize(s.as_bytes(), &mut o, &mut t);
        String::from_utf8_lossy(&o).into_owned()
    }

    #[test]
    fn decodes() {
        assert_eq!(n("/a%20B"), "/a b");
        assert_eq!(n("/a+b"), "/a b");
        assert_eq!(n("%253Cscript%253E"), "<script>");
        assert_eq!(n("%u003cSVG"), "<svg");
        assert_eq!(n("%uff1cx"), "<x");
        assert_eq!(n("%zz%"), "%zz%");
        assert_eq!(n("%E6%AF%8D"), "母");
        assert_eq!(n("%00"), "\0");
    }
}
