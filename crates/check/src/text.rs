//! Reading figures, dates and sentences out of an agent's Markdown answer.
//!
//! The quality score and the ground-truth checks need the same few readings: dollar amounts
//! (`$4,837.03`, `$4.8k`, `USD 1,200`), other figures with units (`27.4%`, `12,292,315 requests`),
//! calendar dates in the usual spellings, and the sentences they sit in.
//!
//! What it must not do: guess. A string that is not clearly a figure or a date is not one; an
//! amount is read at face value (no currency conversion).

use chrono::{Datelike as _, NaiveDate};

/// Stems that make a sentence one about an anomaly ("spiked", "unusual", "stands out").
pub const ANOMALY_WORDS: [&str; 11] = [
    "spike",
    "anomal",
    "unusual",
    "stands out",
    "surge",
    "jump",
    "peak",
    "above",
    "expected",
    "baseline",
    "outlier",
];

/// Sentences and list items of a Markdown text: split at line ends and at `. `, `! `, `? `.
/// Table rows count as one sentence each.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut current = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            current.push(c);
            if matches!(c, '.' | '!' | '?') && chars.peek().is_some_and(|n| n.is_whitespace()) {
                push_sentence(&mut out, &mut current);
            }
        }
        push_sentence(&mut out, &mut current);
    }
    out
}

fn push_sentence(out: &mut Vec<String>, current: &mut String) {
    let trimmed = current.trim();
    if !trimmed.is_empty() {
        out.push(trimmed.to_owned());
    }
    current.clear();
}

/// Reads a number at the start of `text` (`1,234.5`, `1234`, `.5`); returns it and its length.
fn leading_number(text: &str) -> Option<(f64, usize)> {
    let bytes = text.as_bytes();
    let mut end = 0;
    let mut digits = 0;
    let mut seen_dot = false;
    while end < bytes.len() {
        let b = bytes[end];
        if b.is_ascii_digit() {
            digits += 1;
        } else if b == b',' {
            // A thousands separator is followed by exactly three digits.
            let group = bytes.get(end + 1..end + 4);
            let next = bytes.get(end + 4);
            if digits == 0
                || seen_dot
                || !group.is_some_and(|g| g.iter().all(u8::is_ascii_digit))
                || next.is_some_and(u8::is_ascii_digit)
            {
                break;
            }
        } else if b == b'.' && !seen_dot && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
            seen_dot = true;
        } else {
            break;
        }
        end += 1;
    }
    if digits == 0 {
        return None;
    }
    let cleaned: String = text[..end].chars().filter(|c| *c != ',').collect();
    cleaned.parse().ok().map(|value| (value, end))
}

/// A multiplier suffix right after a number: `k`, `K`, `M`, `B`, `bn`, ` thousand`, ` million`,
/// ` billion`. Returns the factor and the suffix length.
fn suffix(text: &str) -> (f64, usize) {
    let lower = text.to_ascii_lowercase();
    for (word, factor) in [
        (" thousand", 1e3),
        (" million", 1e6),
        (" billion", 1e9),
        ("bn", 1e9),
        ("k", 1e3),
        ("m", 1e6),
        ("b", 1e9),
    ] {
        if let Some(rest) = lower.strip_prefix(word) {
            // A letter suffix must end the word (`5k,` yes; `5km` or `5 months` no).
            let after = rest.chars().next();
            if after.is_none_or(|c| !c.is_ascii_alphanumeric()) {
                return (factor, word.len());
            }
        }
    }
    (1.0, 0)
}

/// Every dollar amount in the text: `$1,234.56`, `$4.8k`, `$2 million`, `USD 1,200`,
/// `1,200 USD`, `1,200 dollars`. Negative signs are ignored (amounts are magnitudes).
pub fn money(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let (skip, prefix_len) = if rest.starts_with('$') {
            (false, 1)
        } else if rest.starts_with("USD ") || rest.starts_with("USD\u{a0}") {
            (false, 4)
        } else {
            (true, 0)
        };
        if !skip {
            let after = &rest[prefix_len..];
            let after_stars = after.trim_start_matches('*');
            let star_len = after.len() - after_stars.len();
            if let Some((value, len)) = leading_number(after_stars) {
                let (factor, suffix_len) = suffix(&after_stars[len..]);
                out.push(value * factor);
                at += prefix_len + star_len + len + suffix_len;
                continue;
            }
        }
        // A number followed by USD or dollars.
        if rest.starts_with(|c: char| c.is_ascii_digit())
            && !text[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '.' || c == ',')
            && let Some((value, len)) = leading_number(rest)
        {
            let (factor, suffix_len) = suffix(&rest[len..]);
            let tail = rest[len + suffix_len..].trim_start();
            if tail.starts_with("USD") || tail.to_ascii_lowercase().starts_with("dollars") {
                out.push(value * factor);
            }
            at += len + suffix_len;
            continue;
        }
        at += rest.chars().next().map_or(1, char::len_utf8);
    }
    out
}

/// Every number in the text that is not part of a date or a name (`2026-11-15`, `gpt-4o`,
/// `Q3`): `1,234,567`, `12.5`, `4.8k` (as 4800), `2 million`; dollar amounts too, without their
/// sign.
pub fn numbers(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let before = text[..at].chars().next_back();
        // A number starts a token: not inside a word, a name or a date.
        let starts = before
            .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '-' | '.' | ',' | '/' | ':')));
        if starts && let Some((value, len)) = leading_number(rest) {
            let after = rest[len..].chars().next();
            let (factor, suffix_len) = suffix(&rest[len..]);
            // `2026-11-15`, `10:30`, `11/15`: not figures.
            if !after.is_some_and(|c| matches!(c, '-' | ':' | '/')) {
                out.push(value * factor);
            }
            at += len + suffix_len;
            continue;
        }
        at += rest.chars().next().map_or(1, char::len_utf8);
    }
    out
}

/// Units that make a bare number a figure a reader can use.
const UNITS: [&str; 22] = [
    "%",
    " percent",
    " tokens",
    " token",
    " requests",
    " request",
    " calls",
    " records",
    " ms",
    " seconds",
    " s ",
    " days",
    " hours",
    " minutes",
    " per ",
    "/min",
    "/s",
    "/day",
    "/month",
    " rpm",
    " tpm",
    "x ",
];

/// Figures with a unit other than currency (`27.4%`, `4,183,227 requests`, `380 input tokens`).
pub fn unit_figures(text: &str) -> usize {
    let lower = text.to_ascii_lowercase();
    let mut count = 0;
    let mut at = 0;
    while at < lower.len() {
        let rest = &lower[at..];
        let boundary = !lower[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '.');
        if boundary
            && !lower[..at].ends_with('$')
            && let Some((_, len)) = leading_number(rest)
        {
            let (_, suffix_len) = suffix(&rest[len..]);
            let tail = &rest[len + suffix_len..];
            // Allow one qualifying word in between: `380 input tokens`, `1.5B output tokens`.
            let tail_one_word_on = tail
                .trim_start()
                .split_once(' ')
                .map(|(_, after)| format!(" {after}"));
            let has_unit = UNITS.iter().any(|unit| {
                tail.starts_with(unit)
                    || tail_one_word_on
                        .as_deref()
                        .is_some_and(|t| t.starts_with(unit) && unit.starts_with(' '))
            });
            if has_unit {
                count += 1;
            }
            at += len + suffix_len;
            continue;
        }
        at += rest.chars().next().map_or(1, char::len_utf8);
    }
    count
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Calendar dates in the text, in the spellings answers use: `2026-11-15`, `November 15`,
/// `Nov 15`, `15 November`, `15 Nov 2026`, `11/15`. Dates without a year take `year_hint`.
pub fn dates(text: &str, year_hint: i32) -> Vec<NaiveDate> {
    let mut out: Vec<NaiveDate> = Vec::new();
    let mut push = |date: NaiveDate| {
        if !out.contains(&date) {
            out.push(date);
        }
    };
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')' | '*' | '_' | '|'))
        .filter(|w| !w.is_empty())
        .collect();
    let month_of = |word: &str| -> Option<u32> {
        let word = word.trim_end_matches('.');
        if word.len() < 3 {
            return None;
        }
        MONTHS
            .iter()
            .position(|m| m.starts_with(word) && (word.len() >= 3))
            .and_then(|i| u32::try_from(i + 1).ok())
    };
    let day_of = |word: &str| -> Option<u32> {
        let word = word.trim_end_matches(['.', ':', ';']);
        let digits = word
            .trim_end_matches("st")
            .trim_end_matches("nd")
            .trim_end_matches("rd")
            .trim_end_matches("th");
        digits
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=31).contains(d) && digits.len() <= 2)
    };
    let year_of = |word: Option<&&str>| -> Option<i32> {
        let word = word?.trim_end_matches(['.', ':', ';']);
        (word.len() == 4)
            .then(|| word.parse::<i32>().ok())
            .flatten()
            .filter(|y| (1970..=2200).contains(y))
    };
    for (i, word) in words.iter().enumerate() {
        // ISO: 2026-11-15 (possibly inside a longer token such as 2026-11-15..2026-11-16).
        for piece in word.split("..") {
            let piece = piece.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-');
            if let Some(head) = piece.get(..10)
                && let Ok(date) = NaiveDate::parse_from_str(head, "%Y-%m-%d")
            {
                push(date);
            }
        }
        // US numeric: 11/15 or 11/15/2026.
        let parts: Vec<&str> = word.trim_end_matches(['.', ':', ';']).split('/').collect();
        if (2..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && let (Ok(m), Ok(d)) = (parts[0].parse::<u32>(), parts[1].parse::<u32>())
        {
            let year = parts
                .get(2)
                .and_then(|y| y.parse::<i32>().ok())
                .filter(|y| *y > 1970)
                .unwrap_or(year_hint);
            if let Some(date) = NaiveDate::from_ymd_opt(year, m, d) {
                push(date);
            }
        }
        // Month day [year] / day Month [year].
        if let Some(month) = month_of(word) {
            if let Some(day) = words.get(i + 1).and_then(|w| day_of(w)) {
                let year = year_of(words.get(i + 2)).unwrap_or(year_hint);
                if let Some(date) = NaiveDate::from_ymd_opt(year, month, day) {
                    push(date);
                }
            }
            if let Some(day) = i
                .checked_sub(1)
                .and_then(|j| words.get(j))
                .and_then(|w| day_of(w))
            {
                let year = year_of(words.get(i + 1)).unwrap_or(year_hint);
                if let Some(date) = NaiveDate::from_ymd_opt(year, month, day) {
                    push(date);
                }
            }
        }
    }
    out
}

/// Whether two amounts agree within `relative` (e.g. 0.10 for 10 %) of `truth`.
pub fn within(value: f64, truth: f64, relative: f64) -> bool {
    (value - truth).abs() <= relative * truth.abs().max(f64::MIN_POSITIVE)
}

/// Lower-case words of a text (letters and digits).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether a sentence contains any of the stems (lower-case substring match).
pub fn mentions(sentence: &str, stems: &[&str]) -> bool {
    let lower = sentence.to_lowercase();
    stems.iter().any(|stem| lower.contains(stem))
}

/// The year of a date, for date hints.
pub fn year(date: NaiveDate) -> i32 {
    date.year()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_dollar_amounts_in_their_usual_forms() {
        assert_eq!(money("saves **$4,837.03 per month**"), vec![4837.03]);
        assert_eq!(money("$4.8k and $2 million"), vec![4800.0, 2_000_000.0]);
        assert_eq!(
            money("USD 1,200 or 300 dollars or 5 USD"),
            vec![1200.0, 300.0, 5.0]
        );
        assert_eq!(money("($2.50 vs $0.150 per million)"), vec![2.5, 0.15]);
        assert_eq!(money("$1,23 is not grouped"), vec![1.0]);
        assert!(money("no money here, 1,234 requests").is_empty());
        assert_eq!(money("$5km"), vec![5.0]);
    }

    #[test]
    fn reads_numbers_but_not_dates_or_names() {
        assert_eq!(
            numbers("made **1,234,567** requests on gpt-4o from 2026-11-01, 4.8k more, $12.50"),
            vec![1_234_567.0, 4800.0, 12.5]
        );
        assert!(numbers("Q3 2026-11-15 10:30 11/15").is_empty());
    }

    #[test]
    fn counts_figures_with_units() {
        assert_eq!(unit_figures("+27.4% vs 12,292,315 requests"), 2);
        assert_eq!(unit_figures("averaged 380 input and 28 output tokens"), 1);
        assert_eq!(unit_figures("1.5B output tokens"), 1);
        assert_eq!(unit_figures("$5 and 7 apples"), 0);
    }

    #[test]
    fn reads_dates_in_the_usual_spellings() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 15).unwrap();
        for text in [
            "on 2026-11-15 spend rose",
            "largest 2026-11-15..2026-11-15: $4,724",
            "on November 15 spend rose",
            "on Nov 15, 2026 spend rose",
            "on 15 November 2026",
            "on the 15th of... no; Nov. 15th",
            "on 11/15 spend rose",
            "**2026-11-15**: $4,724.36",
        ] {
            assert!(dates(text, 2026).contains(&d), "{text}");
        }
        assert!(dates("may be 15 things", 2026).is_empty() || !dates("may be", 2026).contains(&d));
        assert!(dates("2026-13-45 is no date", 2026).is_empty());
    }

    #[test]
    fn splits_sentences_without_breaking_decimals() {
        let s = sentences("Spend was $4,837.03. It rose 3.5% today!\n- step one\n\n| a | b |");
        assert_eq!(
            s,
            vec![
                "Spend was $4,837.03.",
                "It rose 3.5% today!",
                "- step one",
                "| a | b |"
            ]
        );
    }

    #[test]
    fn within_is_relative_to_the_truth() {
        assert!(within(2200.0, 2301.12, 0.10));
        assert!(!within(2000.0, 2301.12, 0.10));
    }

    proptest! {
        #[test]
        fn readers_never_panic(text in "\\PC{0,200}") {
            let _ = money(&text);
            let _ = numbers(&text);
            let _ = unit_figures(&text);
            let _ = dates(&text, 2026);
            let _ = sentences(&text);
        }

        #[test]
        fn formatted_amounts_read_back(cents in 0u64..10_000_000_000) {
            let value = cents as f64 / 100.0;
            let whole = (cents / 100).to_string();
            let mut grouped = String::new();
            for (i, c) in whole.chars().enumerate() {
                if i > 0 && (whole.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            let text = format!("saves ${grouped}.{:02} per month", cents % 100);
            let read = money(&text);
            prop_assert_eq!(read.len(), 1);
            prop_assert!((read[0] - value).abs() < 0.005);
        }
    }
}
