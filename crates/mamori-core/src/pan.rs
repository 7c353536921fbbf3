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
pub fn mask_pans(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut last = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        // Collect a run of digits with single separators between them.
        let start = i;
        let mut digits: Vec<u8> = Vec::with_capacity(19);
        let mut j = i;
        let mut end = i;
        while j < b.len() {
            if b[j].is_ascii_digit() {
                digits.push(b[j]);
                j += 1;
                end = j;
            } else if (b[j] == b' ' || b[j] == b'-')
                && j + 1 < b.len()
                && b[j + 1].is_ascii_digit()
                && !digits.is_empty()
            {
                j += 1;
            } else {
                break;
            }
            if digits.len() > 19 {
                break;
            }
        }
        if (13..=19).contains(&digits.len())
            && is_pan(&digits)
            && !(end < b.len() && b[end].is_ascii_digit())
        {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[last..start]);
            o.push_str(&mask(&digits));
            last = end;
            i = end;
        } else {
            // Skip past this digit run so overlapping windows are not rescanned.
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
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
    fn mask_shape() {
        assert_eq!(mask(b"4111111111111111"), "411111******1111");
    }
}
