//! Words: the question split into lower-case tokens, with the small helpers every reader shares
//! (singular forms, number words, fuzzy equality).
//!
//! This module only cuts and compares text; it must not know what a team or a month is.

/// One token of the question. `used` marks tokens another reader has already explained (a time
/// expression, a name), so they are not read twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub text: String,
    /// The token was glued to the previous one by `-`, `/` or `_` (as in `gpt-4o` or `doc-summaries`).
    pub joined: bool,
    pub used: bool,
}

/// Splits a question into tokens: lower case, punctuation dropped, possessive `'s` removed,
/// dates (`2026-10-01`, `10/1`, `10/1/2026`) and decimals (`2.5`) kept whole, other words split
/// at `-`, `/` and `_` (marked `joined`).
pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let lowered: String = text
        .chars()
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' | '`' => '\'',
            '\u{2013}' | '\u{2014}' => '-',
            c => c.to_lowercase().next().unwrap_or(c),
        })
        .collect();
    for raw in lowered.split(|c: char| {
        !(c.is_alphanumeric() || matches!(c, '-' | '/' | '.' | '\'' | '_' | '$' | '%' | '&' | '+'))
    }) {
        let raw = raw.trim_matches(|c: char| matches!(c, '.' | '\'' | '-' | '/' | '_' | '+'));
        if raw.is_empty() {
            continue;
        }
        let raw = raw
            .strip_suffix("'s")
            .or_else(|| raw.strip_suffix("s'"))
            .unwrap_or(raw);
        let raw: String = raw.chars().filter(|c| *c != '\'').collect();
        if is_date_token(&raw) {
            out.push(Token {
                text: raw,
                joined: false,
                used: false,
            });
            continue;
        }
        let mut first = true;
        for part in raw.split(['-', '/', '_']) {
            let part = part.trim_matches('.');
            if part.is_empty() {
                continue;
            }
            // "$1,000" and "45%" carry a unit we do not need; "e.g." is not a decimal.
            let mut pieces: Vec<String> = Vec::new();
            if part.contains('.') && !is_decimal(part) {
                pieces.extend(
                    part.split('.')
                        .filter(|p| !p.is_empty())
                        .map(str::to_string),
                );
            } else {
                pieces.push(part.to_string());
            }
            for piece in pieces {
                let (piece, percent) = match piece.strip_suffix('%') {
                    Some(p) => (p.to_string(), true),
                    None => (piece, false),
                };
                let piece = piece.trim_start_matches('$').to_string();
                if !piece.is_empty() {
                    out.push(Token {
                        text: piece,
                        joined: !first,
                        used: false,
                    });
                    first = false;
                }
                if percent {
                    out.push(Token {
                        text: "percent".to_string(),
                        joined: false,
                        used: false,
                    });
                }
            }
        }
    }
    out
}

fn is_decimal(s: &str) -> bool {
    let mut parts = s.split('.');
    let a = parts.next().unwrap_or("");
    let b = parts.next().unwrap_or("");
    parts.next().is_none()
        && !a.is_empty()
        && !b.is_empty()
        && a.bytes().all(|c| c.is_ascii_digit())
        && b.bytes().all(|c| c.is_ascii_alphanumeric())
        && b.bytes().next().is_some_and(|c| c.is_ascii_digit())
}

/// `2026-10-01`, `10/1`, `10/01/2026`, `1.10.2026`-style tokens that must not be split.
fn is_date_token(s: &str) -> bool {
    let sep = if s.contains('-') {
        '-'
    } else if s.contains('/') {
        '/'
    } else {
        return false;
    };
    let parts: Vec<&str> = s.split(sep).collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// A word's singular form, good enough for names and keywords: `summaries` → `summary`,
/// `boxes` → `box`, `teams` → `team`; short words and `ss` endings are left alone.
pub(crate) fn singular(word: &str) -> String {
    if word.len() <= 3 || word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        return word.to_string();
    }
    if let Some(stem) = word.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for ending in ["ches", "shes", "xes", "sses"] {
        if word.ends_with(ending) {
            return word[..word.len() - 2].to_string();
        }
    }
    match word.strip_suffix('s') {
        Some(stem) => stem.to_string(),
        None => word.to_string(),
    }
}

/// Whether two words are the same up to a typo: equal, or (for words of 5+ letters) one edit
/// apart, two for 8+ letters. Words with digits must match exactly.
///
/// Every token of a question is compared with every word of every model the price table knows,
/// so the cheap refusals come first and the edit distance last.
pub(crate) fn close(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let shortest = a.len().min(b.len());
    // Four-letter words are too close to each other ("save"/"dave") to forgive a typo.
    if shortest < 5 {
        return false;
    }
    let allowed = if shortest >= 8 { 2 } else { 1 };
    if a.len().abs_diff(b.len()) > allowed
        || a.bytes().any(|c| c.is_ascii_digit())
        || b.bytes().any(|c| c.is_ascii_digit())
        || (a.is_ascii() && b.is_ascii() && letters_apart(a, b) > 2 * allowed)
    {
        return false;
    }
    strsim::osa_distance(a, b) <= allowed
}

/// How many letters one word has that the other lacks, counted both ways. An edit changes it by
/// at most two (a substitution), so words further apart than two per edit allowed are not close:
/// a test without the edit distance's table. For ASCII (a byte is a character).
fn letters_apart(a: &str, b: &str) -> usize {
    let mut counts = [0i32; 128];
    for c in a.bytes() {
        counts[usize::from(c & 0x7f)] += 1;
    }
    for c in b.bytes() {
        counts[usize::from(c & 0x7f)] -= 1;
    }
    // Each letter's difference once: taken, then cleared.
    a.bytes()
        .chain(b.bytes())
        .map(|c| std::mem::take(&mut counts[usize::from(c & 0x7f)]).unsigned_abs() as usize)
        .sum()
}

/// A number written as digits or as a word ("three", "a couple").
pub(crate) fn number(word: &str) -> Option<u32> {
    if let Ok(n) = word.parse::<u32>() {
        return Some(n);
    }
    let n = match word {
        "a" | "an" | "one" | "single" => 1,
        "two" | "couple" | "pair" => 2,
        "three" | "few" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "fifteen" => 15,
        "twenty" => 20,
        "thirty" => 30,
        "ninety" => 90,
        _ => return None,
    };
    Some(n)
}

/// Ordinal suffixes removed: `1st` → 1, `22nd` → 22.
pub(crate) fn day_number(word: &str) -> Option<u32> {
    let digits = word
        .strip_suffix("st")
        .or_else(|| word.strip_suffix("nd"))
        .or_else(|| word.strip_suffix("rd"))
        .or_else(|| word.strip_suffix("th"))
        .unwrap_or(word);
    let n: u32 = digits.parse().ok()?;
    (1..=31).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            words("What's the search team's p95 on GPT-4o-mini since 2026-10-01?"),
            [
                "what",
                "the",
                "search",
                "team",
                "p95",
                "on",
                "gpt",
                "4o",
                "mini",
                "since",
                "2026-10-01"
            ]
        );
        assert_eq!(
            words("gemini-2.5-pro, 10/1 and 45%"),
            ["gemini", "2.5", "pro", "10/1", "and", "45", "percent"]
        );
        assert_eq!(words("e.g. $1,200"), ["e", "g", "1", "200"]);
        let t = tokenize("doc-summaries");
        assert!(!t[0].joined && t[1].joined);
    }

    /// `close` as first written: the filters in front of the edit distance change no answer.
    fn close_by_edit_distance(a: &str, b: &str) -> bool {
        if a == b {
            return true;
        }
        if a.bytes().any(|c| c.is_ascii_digit()) || b.bytes().any(|c| c.is_ascii_digit()) {
            return false;
        }
        let shortest = a.len().min(b.len());
        if shortest < 5 {
            return false;
        }
        let allowed = if shortest >= 8 { 2 } else { 1 };
        a.len().abs_diff(b.len()) <= allowed && strsim::osa_distance(a, b) <= allowed
    }

    proptest::proptest! {
        #[test]
        fn close_answers_as_the_edit_distance_does(
            word in "[a-f]{3,10}",
            odd in proptest::sample::select(vec!["", "", "", "é", "1"]),
            edits in proptest::collection::vec((0usize..12, "[a-gé2]"), 0..4),
        ) {
            // A word and a few random edits of it, so that close pairs are common; some with a
            // letter beyond ASCII or a digit.
            let a = format!("{word}{odd}");
            let mut b: Vec<char> = a.chars().collect();
            for (at, c) in &edits {
                let at = at % (b.len() + 1);
                match at % 3 {
                    0 if at < b.len() => b[at] = c.chars().next().unwrap_or('a'),
                    1 if at < b.len() => { b.remove(at); }
                    _ => b.insert(at, c.chars().next().unwrap_or('a')),
                }
            }
            let b: String = b.into_iter().collect();
            proptest::prop_assert_eq!(close(&a, &b), close_by_edit_distance(&a, &b), "{} {}", a, b);
        }
    }

    #[test]
    fn singulars_numbers_and_typos() {
        assert_eq!(singular("summaries"), "summary");
        assert_eq!(singular("teams"), "team");
        assert_eq!(singular("status"), "status");
        assert_eq!(singular("boxes"), "box");
        assert_eq!(number("three"), Some(3));
        assert_eq!(day_number("1st"), Some(1));
        assert!(close("claude", "cluade"));
        assert!(close("anthropic", "antrhopic"));
        assert!(!close("gpt", "gtp"), "short words must match exactly");
        assert!(!close("save", "dave"));
        assert!(!close("4o", "4.1"));
    }
}
