//! How figures are written for people: dollars, counts, percentages and dates.
//!
//! One place, so that every thinking step and answer writes `$12,345.67` the same way and a test
//! can find a figure in the text by formatting the expected number with the same function.

/// Dollars with thousands separators and cents: `$12,345.67`. Negative values get a leading `-`.
pub fn usd(value: f64) -> String {
    let cents = (value.abs() * 100.0).round();
    let whole = (cents / 100.0).trunc();
    let frac = (cents - whole * 100.0) as u64;
    let sign = if value < 0.0 && cents > 0.0 { "-" } else { "" };
    format!("{sign}${}.{frac:02}", group(whole as u64))
}

/// A whole number with thousands separators: `1,234,567`.
pub fn count(value: u64) -> String {
    group(value)
}

/// A signed percentage with one decimal: `+12.3%`, `-4.0%`.
pub fn pct_change(value: f64) -> String {
    format!("{}{:.1}%", if value >= 0.0 { "+" } else { "" }, value)
}

/// A share in [0, 1] as a percentage with one decimal: `41.2%`.
pub fn share(value: f64) -> String {
    format!("{:.1}%", value * 100.0)
}

/// Large token counts in billions, millions or thousands: `14.7B`, `123.4M`, `56.7K`, `789`.
pub fn tokens(value: u64) -> String {
    if value >= 1_000_000_000 {
        format!("{:.1}B", value as f64 / 1e9)
    } else if value >= 1_000_000 {
        format!("{:.1}M", value as f64 / 1e6)
    } else if value >= 10_000 {
        format!("{:.1}K", value as f64 / 1e3)
    } else {
        value.to_string()
    }
}

/// An anomaly's drivers: `team growth (99.8%), feature email-drafts (99.8%)`.
pub fn drivers(contributors: &[agentwire_analytics::Contributor]) -> String {
    contributors
        .iter()
        .take(3)
        .map(|c| format!("{} {} ({})", c.dimension, c.key, share(c.share_of_excess)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn group(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(usd(12345.678), "$12,345.68");
        assert_eq!(usd(0.004), "$0.00");
        assert_eq!(usd(-5.5), "-$5.50");
        assert_eq!(usd(999.999), "$1,000.00");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(pct_change(12.34), "+12.3%");
        assert_eq!(pct_change(-4.0), "-4.0%");
        assert_eq!(share(0.4123), "41.2%");
        assert_eq!(tokens(123_456_789), "123.5M");
        assert_eq!(tokens(56_700), "56.7K");
        assert_eq!(tokens(14_739_300_000), "14.7B");
    }
}
