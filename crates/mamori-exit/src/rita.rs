//! RITA-style beacon score (activecm/rita v5 formulas, re-implemented from the
//! description in `shared/research/exit.md` §1; no RITA code is copied).
//!
//! Score = 0.25·ts + 0.25·ds + 0.25·dur + 0.25·hist over one window. The dispersion
//! terms use MAD/median, so jitter is tolerated proportionally (uniform ±30 % jitter on
//! the interval gives a timestamp score of ≈ 0.9).

/// The four sub-scores and the total.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BeaconScore {
    pub score: f64,
    pub ts: f64,
    pub ds: f64,
    pub dur: f64,
    pub hist: f64,
    /// Median interval between connections, seconds.
    pub period_s: f64,
    /// MAD of the intervals divided by their median (0 = perfectly regular).
    pub jitter: f64,
    pub conns: usize,
}

fn r3(x: f64) -> f64 {
    (x * 1000.0 + 0.5).floor() / 1000.0
}

/// Median of a sorted slice (non-empty).
fn median_sorted(s: &[f64]) -> f64 {
    let n = s.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn quartiles(s: &[f64]) -> (f64, f64, f64) {
    let n = s.len();
    let (c1, c2) = if n.is_multiple_of(2) {
        (n / 2, n / 2)
    } else {
        ((n - 1) / 2, (n - 1) / 2 + 1)
    };
    (
        median_sorted(&s[..c1]),
        median_sorted(s),
        median_sorted(&s[c2..]),
    )
}

fn mad(s: &[f64], m: f64) -> f64 {
    let mut d: Vec<f64> = s.iter().map(|x| (x - m).abs()).collect();
    d.sort_by(f64::total_cmp);
    median_sorted(&d)
}

/// (Bowley skew score + MAD score) / 2 on a sorted list; also returns (median, mad).
fn stat_score(s: &[f64], default_mad: f64) -> (f64, f64, f64) {
    let (q1, q2, q3) = quartiles(s);
    let den = q3 - q1;
    let skew = if den >= 10.0 && q2 != q1 && q2 != q3 {
        (q1 + q3 - 2.0 * q2) / den
    } else {
        0.0
    };
    let m = q2;
    let d = mad(s, m);
    let mut ms = default_mad;
    if m >= 1.0 {
        ms = (m - d) / m;
    }
    if ms.is_nan() || ms < 0.0 {
        ms = 0.0;
    }
    (r3((1.0 - skew.abs() + ms) / 2.0), m, d)
}

/// Score connections (`ts` integer seconds, sorted; `bytes` per connection) over the
/// window `[wmin, wmax)`. `None` when there is too little to score (fewer than 4
/// distinct timestamps or 3 non-zero intervals).
pub fn score(ts: &[i64], bytes: &[f64], wmin: i64, wmax: i64) -> Option<BeaconScore> {
    if ts.len() < 4 || bytes.len() < 3 || wmax <= wmin {
        return None;
    }
    let mut deltas: Vec<f64> = ts
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64)
        .filter(|d| *d > 0.0)
        .collect();
    if deltas.len() < 3 {
        return None;
    }
    deltas.sort_by(f64::total_cmp);
    let (t, period, dmad) = stat_score(&deltas, 1.0);
    let mut b = bytes.to_vec();
    b.sort_by(f64::total_cmp);
    let (d, _, _) = stat_score(&b, 0.0);

    // Histogram over 24 bins.
    let step = (wmax - wmin) as f64 / 24.0;
    let mut h = [0u32; 24];
    for &x in ts {
        let i = (((x - wmin) as f64) / step).floor();
        let i = i.clamp(0.0, 23.0) as usize;
        h[i] += 1;
    }
    let bars = h.iter().filter(|&&x| x > 0).count();
    let largest = f64::from(h.iter().copied().max().unwrap_or(0));
    let bin_size = (largest * 0.05).ceil().max(1.0);
    let mut freq: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    for &x in &h {
        if x > 0 {
            *freq
                .entry((f64::from(x) / bin_size).floor() as u64)
                .or_default() += 1;
        }
    }
    let mut longest = 0usize;
    let mut cur = 0usize;
    for i in 0..48 {
        if h[i % 24] > 0 {
            cur += 1;
        } else {
            longest = longest.max(cur);
            cur = 0;
        }
    }
    let longest = longest.max(cur).min(24);
    let mean = h.iter().map(|&x| f64::from(x)).sum::<f64>() / 24.0;
    let sd = (h
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / 24.0)
        .sqrt();
    let cv = if mean > 0.0 { sd / mean } else { f64::INFINITY };
    let cv_score = if cv > 1.0 { 0.0 } else { r3(1.0 - cv) };
    let mut bim = 0.0;
    if bars >= 11 {
        let mut top: Vec<u32> = freq.values().copied().collect();
        top.sort_unstable_by(|a, b| b.cmp(a));
        top.extend([0, 0]);
        bim = f64::from(top[0] + top[1]) / (bars.saturating_sub(1).max(1)) as f64;
    }
    let hist = cv_score.max(r3(bim).min(1.0));

    let first = ts[0];
    let last = ts[ts.len() - 1];
    let dur = if bars < 6 || last <= first {
        0.0
    } else {
        let cov =
            ((((last - first) as f64) / ((wmax - wmin) as f64) * 1000.0).ceil() / 1000.0).min(1.0);
        let cons = (((longest as f64) / 12.0 * 1000.0).ceil() / 1000.0).min(1.0);
        cov.max(cons)
    };
    Some(BeaconScore {
        score: r3(0.25 * (t + d + dur + hist)),
        ts: t,
        ds: d,
        dur,
        hist,
        period_s: period,
        jitter: if period > 0.0 { dmad / period } else { 0.0 },
        conns: ts.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic PRNG (xorshift) so tests need no extra crate.
    fn rng(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn jittered_beacon_scores_high() {
        let mut s = 7u64;
        let mut t = 0.0;
        let (mut ts, mut b) = (vec![], vec![]);
        while t < 86400.0 {
            ts.push(t as i64);
            b.push(200.0 + 500.0 * rng(&mut s));
            t += 600.0 * (0.7 + 0.6 * rng(&mut s));
        }
        let sc = score(&ts, &b, 0, 86400).unwrap();
        assert!(sc.ts >= 0.8, "{sc:?}");
        assert!(sc.score >= 0.7, "{sc:?}");
        assert!((sc.period_s - 600.0).abs() < 60.0);
    }

    #[test]
    fn poisson_traffic_scores_low_on_timing() {
        let mut s = 11u64;
        let mut t = 0.0;
        let (mut ts, mut b) = (vec![], vec![]);
        while t < 86400.0 {
            ts.push(t as i64);
            b.push(300.0 + 600.0 * rng(&mut s));
            t += -1800.0 * (1.0 - rng(&mut s)).ln();
        }
        let sc = score(&ts, &b, 0, 86400).unwrap();
        assert!(sc.ts < 0.75, "{sc:?}");
    }

    #[test]
    fn too_few_is_none() {
        assert!(score(&[1, 2, 3], &[1.0, 2.0, 3.0], 0, 10).is_none());
        assert!(score(&[1, 1, 1, 1, 1], &[1.0; 5], 0, 10).is_none());
    }
}
