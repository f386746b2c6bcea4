//! Figures over interleaved rounds: the median and the range.

/// The median and the range of `v` (NaN ignored; all NaN for none).
pub fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    s.sort_unstable_by(f64::total_cmp);
    (s[(s.len() - 1) / 2], s[0], s[s.len() - 1])
}

/// `median [min-max]` of `v` divided by `unit`, with `digits` decimals; `-`
/// for no values.
pub fn cell(v: &[f64], unit: f64, digits: usize) -> String {
    let (m, lo, hi) = spread(v);
    if m.is_nan() {
        return "-".into();
    }
    let f = |x: f64| format!("{:.*}", digits, x / unit);
    format!("{} [{}-{}]", f(m), f(lo), f(hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        assert_eq!(spread(&[3.0, 1.0, f64::NAN, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(cell(&[1500.0, 500.0, 1000.0], 1000.0, 1), "1.0 [0.5-1.5]");
        assert_eq!(cell(&[f64::NAN], 1.0, 0), "-");
    }
}
