//! Card numbers (PANs): recognise and mask them. mamori never prints, logs or stores a
//! full card number; every sink passes text through [`mask_pans`].

use std::borrow::Cow;

/// Luhn check over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// The card brand an issuer prefix and length belong to, if any.
pub fn brand(digits: &[u8]) -> Option<&'static str> {
    let n = digits.len();
    let p = |k: usize| -> u32 {
        digits[..k.min(n)]
            .iter()
            .fold(0u32, |a, d| a * 10 + u32::from(d - b'0'))
    };
    if !(13..=19).contains(&n) {
        return None;
    }
    match digits[0] {
        b'4' if matches!(n, 13 | 16 | 19) => Some("visa"),
        b'5' if (51..=55).contains(&p(2)) && n == 16 => Some("mastercard"),
        b'2' if (2221..=2720).contains(&p(4)) && n == 16 => Some("mastercard"),
        b'3' if matches!(p(2), 34 | 37) && n == 15 => Some("amex"),
        b'3' if (3528..=3589).contains(&p(4)) && (16..=19).contains(&n) => Some("jcb"),
        b'3' if (matches!(p(2), 36 | 38 | 39) || (300..=305).contains(&p(3)))
            && (14..=19).contains(&n) =>
        {
            Some("diners")
        }
        b'6' if (p(4) == 6011 || p(2) == 65 || (644..=649).contains(&p(3)))
            && (16..=19).contains(&n) =>
        {
            Some("discover")
        }
        b'6' if p(2) == 62 && (16..=19).contains(&n) => Some("unionpay"),
        _ => None,
    }
}

/// Whether `digits` looks like a real card number: known brand, right length, Luhn.
pub fn is_pan(digits: &[u8]) -> bool {
    brand(digits).is_some() && luhn_valid(digits)
}

/// Mask all but the first 6 and last 4 digits: `411111******1111`.
pub fn mask(digits: &[u8]) -> String {
    let n = digits.len();
    let mut s = String::with_capacity(n);
    for (i, d) in digits.iter().enumerate() {
        if i < 6 || i + 4 >= n {
            s.push(*d as char);
        } else {
            s.push('*');
        }
    }
    s
}

/// Replace every card number in `text` (digits, optionally grouped by single spaces or
/// hyphens) with its masked form. Returns the input unchanged (borrowed) when there is none.
///
/// A run of digit groups joined by single separators may hold a card number among other
/// numbers (`4111 1111 1111 1111 12/25`, `order 12 4111…`): from each group, the longest
/// span of whole groups that is a card number is masked. A number is never cut inside a
/// group of digits (a 20-digit ID is not a card number followed by digits).
pub fn mask_pans(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut last = 0usize;
    let mut i = 0usize;
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut digits: Vec<u8> = Vec::with_capacity(19);
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // The run: digit groups joined by single spaces or hyphens.
        groups.clear();
        let mut j = i;
        loop {
            let start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            groups.push((start, j));
            if j + 1 < b.len() && matches!(b[j], b' ' | b'-') && b[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        let mut g = 0;
        while g < groups.len() {
            digits.clear();
            let mut best: Option<usize> = None;
            for (k, &(s, e)) in groups.iter().enumerate().skip(g) {
                digits.extend_from_slice(&b[s..e]);
                if digits.len() > 19 {
                    break;
                }
                if digits.len() >= 13 && is_pan(&digits) {
                    best = Some(k);
                }
            }
            let Some(k) = best else {
                g += 1;
                continue;
            };
            let (start, end) = (groups[g].0, groups[k].1);
            let pan: Vec<u8> = b[start..end]
                .iter()
                .copied()
                .filter(u8::is_ascii_digit)
                .collect();
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[last..start]);
            o.push_str(&mask(&pan));
            last = end;
            g = k + 1;
        }
        i = j;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[last..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(luhn_valid(b"378282246310005"));
    }

    #[test]
    fn brands() {
        assert_eq!(brand(b"4111111111111111"), Some("visa"));
        assert_eq!(brand(b"5555555555554444"), Some("mastercard"));
        assert_eq!(brand(b"2223003122003222"), Some("mastercard"));
        assert_eq!(brand(b"378282246310005"), Some("amex"));
        assert_eq!(brand(b"3530111333300000"), Some("jcb"));
        assert_eq!(brand(b"1234567812345670"), None);
    }

    #[test]
    fn masks_in_text() {
        assert_eq!(
            mask_pans("card=4111111111111111&x=1"),
            "card=411111******1111&x=1"
        );
        assert_eq!(mask_pans("n: 4111 1111 1111 1111."), "n: 411111******1111.");
        assert_eq!(mask_pans("jcb 3530-1113-3330-0000"), "jcb 353011******0000");
        // Not Luhn-valid, a phone number, an order id: untouched and borrowed.
        assert!(matches!(
            mask_pans("order 4111111111111112"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(mask_pans("tel 03-1234-5678"), Cow::Borrowed(_)));
        // A longer digit string is not a card.
        assert_eq!(
            mask_pans("41111111111111110000000"),
            "41111111111111110000000"
        );
    }

    #[test]
    fn a_card_number_among_other_numbers_is_still_masked() {
        for (text, want) in [
            (" 4000000000000002 0", " 400000******0002 0"),
            ("4111111111111111 12/25 123", "411111******1111 12/25 123"),
            ("4111 1111 1111 1111 12 25", "411111******1111 12 25"),
            ("order 12 4111 1111 1111 1111", "order 12 411111******1111"),
            ("qty 3 4111111111111111", "qty 3 411111******1111"),
            (
                "4111111111111111 5555555555554444",
                "411111******1111 555555******4444",
            ),
            ("4111111111111111-12-25", "411111******1111-12-25"),
        ] {
            assert_eq!(mask_pans(text), want, "{text:?}");
        }
        // Never cut inside a group of digits: a 20-digit ID stays as it is.
        assert!(matches!(
            mask_pans("id 41111111111111110000"),
            Cow::Borrowed(_)
        ));
    }

    proptest::proptest! {
        /// Whatever surrounds a card number (other digits after a separator included),
        /// the full number never comes out.
        #[test]
        fn no_card_number_survives(
            before in "[0-9a-z /:-]{0,12}",
            after in "[0-9a-z /:-]{0,12}",
            sep in proptest::sample::select(vec!["", " ", "-"]),
            pan in proptest::sample::select(vec![
                "4111111111111111", "5555555555554444", "378282246310005",
                "3530111333300000", "4000000000000002", "6011111111111117",
            ]),
        ) {
            // The number stands on its own: not glued to a digit on either side.
            let before = if before.ends_with(|c: char| c.is_ascii_digit()) { format!("{before}x") } else { before };
            let after = if after.starts_with(|c: char| c.is_ascii_digit()) { format!("x{after}") } else { after };
            let grouped: String = pan
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(sep);
            let text = format!("{before}{grouped}{after}");
            let masked = mask_pans(&text);
            proptest::prop_assert!(!masked.contains(&grouped), "{text:?} -> {masked:?}");
        }
    }

    #[test]
    fn mask_shape() {
        assert_eq!(mask(b"4111111111111111"), "411111******1111");
    }
}
