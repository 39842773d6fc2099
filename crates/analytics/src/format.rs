//! How figures are written for people: dollars, counts, percentages and token volumes.
//!
//! One place for the whole project, so that a lever's evidence, an agent's thinking step and the
//! final answer write `$12,345.67` the same way, and a test can find a figure in a text by
//! formatting the expected number with the same function. Dollars are always to the cent, under $1
//! too (`$0.15`, `$0.00`): the answers' readers and the checks that find figures in them read
//! money that way. This module must not import the rest of the crate: anything may format.

/// Dollars with thousands separators and cents: `$12,345.67`. Negative values get a leading `-`;
/// an amount that rounds to zero cents has none.
pub fn usd(value: f64) -> String {
    let cents = (value.abs() * 100.0).round();
    let whole = (cents / 100.0).trunc();
    let frac = (cents - whole * 100.0) as u64;
    let sign = if value < 0.0 && cents > 0.0 { "-" } else { "" };
    format!("{sign}${}.{frac:02}", count(whole as u64))
}

/// A whole number with thousands separators: `1,234,567`.
pub fn count(value: u64) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_to_the_cent() {
        assert_eq!(usd(12345.678), "$12,345.68");
        assert_eq!(usd(1234.567), "$1,234.57");
        assert_eq!(usd(2.5), "$2.50");
        assert_eq!(usd(0.15), "$0.15");
        assert_eq!(usd(0.004), "$0.00");
        assert_eq!(usd(-0.004), "$0.00");
        assert_eq!(usd(-5.5), "-$5.50");
        assert_eq!(usd(-0.5), "-$0.50");
        assert_eq!(usd(999.999), "$1,000.00");
    }

    #[test]
    fn counts_percentages_and_tokens() {
        assert_eq!(count(0), "0");
        assert_eq!(count(12), "12");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(pct_change(12.34), "+12.3%");
        assert_eq!(pct_change(-4.0), "-4.0%");
        assert_eq!(share(0.4123), "41.2%");
        assert_eq!(tokens(123_456_789), "123.5M");
        assert_eq!(tokens(56_700), "56.7K");
        assert_eq!(tokens(14_739_300_000), "14.7B");
    }
}
