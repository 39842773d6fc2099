//! Durations written the way people write them on a command line: `90s`, `30m`, `1h`, `7d`.

use std::time::Duration;

/// Parses `<whole number><s|m|h|d>`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("`{text}` is not a duration; write e.g. 90s, 30m, 1h or 7d");
    let unit = text.chars().last().ok_or_else(bad)?;
    let amount: u64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    if amount == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(
        amount.checked_mul(seconds).ok_or_else(bad)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "h", "1", "1y", "-1h", "0h", "1.5h"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
