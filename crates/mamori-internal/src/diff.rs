//! Unified diffs of text files against their known-good copies, capped for evidence.

/// A unified diff (3 lines of context) from `old` to `new`, at most `max_lines` lines.
pub fn unified(old: &[u8], new: &[u8], path: &str, max_lines: usize) -> String {
    let old = String::from_utf8_lossy(old);
    let new = String::from_utf8_lossy(new);
    let diff = similar::TextDiff::from_lines(old.as_ref(), new.as_ref());
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i == max_lines {
            let rest = text.lines().count() - max_lines;
            out.push_str(&format!("… ({rest} more lines)\n"));
            break;
        }
        // Long lines (minified JS) are cut so evidence stays readable.
        if line.chars().count() > 400 {
            out.extend(line.chars().take(400));
            out.push_str(" …");
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_change() {
        let d = unified(b"a\nb\nc\n", b"a\nB\nc\n", "x.php", 100);
        assert!(d.contains("--- a/x.php"));
        assert!(d.contains("-b\n+B"), "{d}");
    }

    #[test]
    fn caps_lines() {
        let old: String = (0..100).map(|i| format!("{i}\n")).collect();
        let d = unified(old.as_bytes(), b"", "x", 10);
        assert_eq!(d.lines().count(), 11);
        assert!(d.ends_with("more lines)\n"));
    }
}
