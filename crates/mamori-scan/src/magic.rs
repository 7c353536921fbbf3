//! Does the content match the extension? A `.jpg` that is text, or a real image with text
//! appended after its end, is how skimmers hide their stash (and PHP) in an upload folder.

/// What the first bytes and the structure say about a file with an image or font name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Magic {
    /// The extension is not one we check, or the content matches it.
    Ok,
    /// An image/font name but the content is text (`what`: "text" or "php").
    TextInBinaryName { ext: String, what: &'static str },
    /// A valid image followed by `len` bytes of text starting at `offset`.
    TextAppended {
        ext: String,
        format: &'static str,
        offset: usize,
        len: usize,
    },
}

/// The image formats we parse, by extension.
fn expected(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "jpg" | "jpeg" | "jpe" | "jfif" => "jpeg",
        "png" => "png",
        "gif" => "gif",
        "ico" | "cur" => "ico",
        "bmp" => "bmp",
        "webp" => "webp",
        "woff" | "woff2" | "ttf" | "otf" | "eot" => "font",
        _ => return None,
    })
}

/// Which image format the bytes start with, if any.
fn sniff(d: &[u8]) -> Option<&'static str> {
    if d.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else if d.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if d.starts_with(b"GIF87a") || d.starts_with(b"GIF89a") {
        Some("gif")
    } else if d.starts_with(&[0, 0, 1, 0]) || d.starts_with(&[0, 0, 2, 0]) {
        Some("ico")
    } else if d.starts_with(b"BM") && d.len() > 14 {
        Some("bmp")
    } else if d.len() > 12 && d.starts_with(b"RIFF") && &d[8..12] == b"WEBP" {
        Some("webp")
    } else if d.starts_with(b"wOFF")
        || d.starts_with(b"wOF2")
        || d.starts_with(&[0, 1, 0, 0])
        || d.starts_with(b"OTTO")
        || d.starts_with(b"true")
        || (d.len() > 35 && &d[34..36] == b"LP")
    {
        Some("font")
    } else {
        None
    }
}

/// Check `data` against the extension of `path`.
pub fn check(path: &str, data: &[u8]) -> Magic {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((_, ext)) = name.rsplit_once('.') else {
        return Magic::Ok;
    };
    let ext = ext.to_ascii_lowercase();
    let Some(want) = expected(&ext) else {
        return Magic::Ok;
    };
    if data.len() < 16 {
        return Magic::Ok;
    }
    match sniff(data) {
        None => {
            let head = &data[..data.len().min(4096)];
            if text_share(head) >= 0.95 {
                let what = if find(head, b"<?php").is_some() || find(head, b"<?=").is_some() {
                    "php"
                } else {
                    "text"
                };
                Magic::TextInBinaryName { ext, what }
            } else {
                Magic::Ok
            }
        }
        Some(found) => {
            // Any image is fine under any image name (browsers sniff); look for text
            // after the image's end.
            let _ = want;
            let end = match found {
                "png" => png_end(data),
                "gif" => gif_end(data),
                "jpeg" => jpeg_end(data),
                _ => None,
            };
            match end {
                Some(e) if e < data.len() => {
                    let tail = &data[e..];
                    let trimmed = tail
                        .iter()
                        .filter(|b| !matches!(b, 0 | b'\n' | b'\r' | b' '))
                        .count();
                    let no_nul: Vec<u8> = tail.iter().copied().filter(|b| *b != 0).collect();
                    if trimmed >= 16 && text_share(&no_nul) >= 0.9 {
                        Magic::TextAppended {
                            ext,
                            format: found,
                            offset: e,
                            len: tail.len(),
                        }
                    } else {
                        Magic::Ok
                    }
                }
                _ => Magic::Ok,
            }
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    memchr::memmem::find(h, n)
}

fn text_share(d: &[u8]) -> f64 {
    if d.is_empty() {
        return 0.0;
    }
    let ok = d
        .iter()
        .filter(|&&b| (0x20..0x7f).contains(&b) || matches!(b, b'\n' | b'\r' | b'\t') || b >= 0x80)
        .count();
    ok as f64 / d.len() as f64
}

/// End of a PNG: after the IEND chunk's CRC.
fn png_end(d: &[u8]) -> Option<usize> {
    let mut p = 8usize;
    while p + 12 <= d.len() {
        let len = u32::from_be_bytes(d[p..p + 4].try_into().ok()?) as usize;
        let ty = &d[p + 4..p + 8];
        let next = p.checked_add(12)?.checked_add(len)?;
        if next > d.len() {
            return None;
        }
        if ty == b"IEND" {
            return Some(next);
        }
        p = next;
    }
    None
}

/// Skip GIF data sub-blocks starting at `p`; returns the offset after the terminator.
fn gif_sub_blocks(d: &[u8], mut p: usize) -> Option<usize> {
    loop {
        let n = *d.get(p)? as usize;
        p += 1;
        if n == 0 {
            return Some(p);
        }
        p += n;
    }
}

/// End of a GIF: after the trailer byte (0x3B).
fn gif_end(d: &[u8]) -> Option<usize> {
    let flags = *d.get(10)?;
    let mut p = 13usize;
    if flags & 0x80 != 0 {
        p += 3 * (1usize << ((flags & 0x07) + 1));
    }
    loop {
        match *d.get(p)? {
            0x3B => return Some(p + 1),
            0x21 => p = gif_sub_blocks(d, p + 2)?,
            0x2C => {
                let lf = *d.get(p + 9)?;
                p += 10;
                if lf & 0x80 != 0 {
                    p += 3 * (1usize << ((lf & 0x07) + 1));
                }
                p = gif_sub_blocks(d, p + 1)?;
            }
            _ => return None,
        }
    }
}

/// End of a JPEG: after the EOI marker that ends the last scan.
fn jpeg_end(d: &[u8]) -> Option<usize> {
    let mut p = 2usize;
    loop {
        // Marker segments until start-of-scan.
        while p < d.len() && d[p] != 0xFF {
            p += 1;
        }
        while p < d.len() && d[p] == 0xFF {
            p += 1;
        }
        let m = *d.get(p)?;
        p += 1;
        match m {
            0xD9 => return Some(p),
            0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let len = u16::from_be_bytes([*d.get(p)?, *d.get(p + 1)?]) as usize;
        p += len;
        if m == 0xDA {
            // Entropy-coded data: FF 00 and restart markers continue it.
            loop {
                let q = p + memchr::memchr(0xFF, d.get(p..)?)?;
                let n = *d.get(q + 1)?;
                match n {
                    0x00 | 0xD0..=0xD7 | 0xFF => p = q + 1,
                    0xD9 => return Some(q + 2),
                    _ => {
                        p = q;
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

    #[test]
    fn text_under_image_name() {
        assert_eq!(
            check("a/b.jpg", b"TARO|4539578763621486|11/28|123\n"),
            Magic::TextInBinaryName {
                ext: "jpg".into(),
                what: "text"
            }
        );
        assert!(matches!(
            check("x.png", b"<?php eval($_POST['x']); ?>\n\n"),
            Magic::TextInBinaryName { what: "php", .. }
        ));
        assert_eq!(
            check("x.css", b"body { color: red; } /* long */"),
            Magic::Ok
        );
    }

    #[test]
    fn gif_with_text_after_trailer() {
        assert_eq!(check("t.gif", GIF), Magic::Ok);
        let mut g = GIF.to_vec();
        g.extend_from_slice(b"{\"n\": \"TARO\", \"c\": \"4539578763621486\"}\n");
        assert!(matches!(
            check("t.gif", &g),
            Magic::TextAppended {
                format: "gif",
                offset: 43,
                ..
            }
        ));
    }

    #[test]
    fn png_and_jpeg_ends() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&[0, 0, 0, 0]);
        png.extend_from_slice(b"IEND");
        png.extend_from_slice(&[0xAE, 0x42, 0x60, 0x82]);
        png.extend_from_slice(&[0u8; 8]);
        assert_eq!(png_end(&png), Some(20));
        assert_eq!(check("a.png", &png), Magic::Ok);
        png.extend_from_slice(b"VEFSTyBJVE98NDUzOTU3ODc2MzYyMTQ4Nnw=\n");
        assert!(matches!(check("a.png", &png), Magic::TextAppended { .. }));

        // SOI, APP0 (len 4), SOS (len 2), data with FF 00 stuffing, EOI, then text.
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46];
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD9]);
        assert_eq!(jpeg_end(&j), Some(j.len()));
        j.extend_from_slice(b"HIROSHI|4539578763621486|08/27|418\n");
        assert!(matches!(
            check("b.jpeg", &j),
            Magic::TextAppended { format: "jpeg", .. }
        ));
    }
}
