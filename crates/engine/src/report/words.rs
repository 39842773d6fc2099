//! How the answers write figures, periods, windows and selections in plain
//! words: `$1,234.56`, `$0.003412` (a cost per request), `4.23%`, `1,234 ms`; "in October 2026",
//! "in the 30 days to 2026-11-25"; "the search team", "Claude models (claude-3-5-haiku,
//! claude-sonnet-4)", "failed requests".
//!
//! Wording only, from values already computed; this module must not compute a figure. Dollars of
//! a dollar or more and whole counts go through `analytics::format`, so every answer writes them
//! the same way.

use agentwire_analytics::format;
use agentwire_analytics::query::{Condition, Dimension, Metric, Period};
use agentwire_question::Resolved;
use chrono::{Datelike, NaiveDate};

/// A value of `metric` as a person reads it, precise enough to be checked (four significant
/// digits at least).
pub(crate) fn figure(metric: Metric, value: f64) -> String {
    if metric.is_money() {
        return money(value);
    }
    if metric.is_fraction() {
        let pct = value * 100.0;
        return if pct.abs() >= 10.0 || pct == 0.0 {
            format!("{pct:.1}%")
        } else {
            format!("{pct:.2}%")
        };
    }
    match metric {
        Metric::Latency(_) | Metric::Ttft(_) => {
            if value.abs() >= 100.0 {
                format!("{} ms", format::count(value.round().max(0.0) as u64))
            } else {
                format!("{value:.1} ms")
            }
        }
        Metric::InputTokensPerRequest
        | Metric::OutputTokensPerRequest
        | Metric::TokensPerRequest => decimal(value, 1),
        _ => format::count(value.round().max(0.0) as u64),
    }
}

/// Dollars: to the cent from a dollar up, else to four significant digits (`$0.003412`).
pub(crate) fn money(value: f64) -> String {
    if value.abs() >= 1.0 || value == 0.0 || !value.is_finite() {
        return format::usd(value);
    }
    let digits = (-value.abs().log10()).ceil().clamp(0.0, 8.0) as usize + 3;
    let sign = if value < 0.0 { "-" } else { "" };
    format!("{sign}${:.*}", digits, value.abs())
}

/// A number with thousands separators and `places` decimals: `1,234.5`.
pub(crate) fn decimal(value: f64, places: usize) -> String {
    let text = format!("{:.*}", places, value.abs());
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let whole = format::count(whole.parse().unwrap_or(0));
    let sign = if value < 0.0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{frac}")
    }
}

/// The change between two values in words: "up 41.0%", "down 3.2%", "unchanged".
pub(crate) fn change(pct: f64) -> String {
    if pct.abs() < 0.05 {
        "unchanged".to_owned()
    } else if pct > 0.0 {
        format!("up {pct:.1}%")
    } else {
        format!("down {:.1}%", -pct)
    }
}

fn month_name(m: u32) -> &'static str {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    NAMES[(m.clamp(1, 12) - 1) as usize]
}

fn month_end(d: NaiveDate) -> NaiveDate {
    let next = if d.month() == 12 {
        NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
    };
    next.and_then(|n| n.pred_opt()).unwrap_or(d)
}

/// A period as a name: "October 2026", "Q3 2026", "2026", "2026-11-24", "November 2026 to
/// 2026-11-25", "the 7 days to 2026-11-18", "2026-10-05 to 2026-10-11". `reference` is the day
/// time words were read from (the data's last day).
pub(crate) fn period_name(p: Period, reference: NaiveDate) -> String {
    let (a, b) = (p.first, p.last);
    if a == b {
        return a.to_string();
    }
    if a.day() == 1 && a.year() == b.year() {
        if a.month() == b.month() {
            return if b == month_end(a) {
                format!("{} {}", month_name(a.month()), a.year())
            } else {
                format!("{} {} to {b}", month_name(a.month()), a.year())
            };
        }
        let quarter_start = (a.month() - 1) % 3 == 0;
        if quarter_start && b.month() == a.month() + 2 && b == month_end(b) {
            return format!("Q{} {}", (a.month() - 1) / 3 + 1, a.year());
        }
        if a.month() == 1 && b.month() == 12 && b.day() == 31 {
            return a.year().to_string();
        }
    }
    // "the 30 days to 2026-11-25" for a rolling window; a period from the 1st of a month reads
    // better by its dates ("since September" is 2026-09-01 to 2026-11-25).
    if b == reference && a.day() != 1 {
        return format!("the {} days to {b}", p.days());
    }
    format!("{a} to {b}")
}

/// "in October 2026", "on 2026-11-24", "in the 30 days to 2026-11-25", "from 2026-10-05 to
/// 2026-10-11".
pub(crate) fn when(p: Period, reference: NaiveDate) -> String {
    let name = period_name(p, reference);
    if p.first == p.last {
        format!("on {name}")
    } else if name.contains(" to ") && !name.starts_with("the ") {
        format!("from {name}")
    } else {
        format!("in {name}")
    }
}

/// A provider as people write it.
pub(crate) fn provider_name(p: &str) -> String {
    match p.to_lowercase().as_str() {
        "openai" => "OpenAI".to_owned(),
        "anthropic" => "Anthropic".to_owned(),
        "google" | "gemini" | "vertex_ai" => "Google".to_owned(),
        "together_ai" | "together" => "Together AI".to_owned(),
        "azure" => "Azure".to_owned(),
        "mistral" => "Mistral".to_owned(),
        "groq" => "Groq".to_owned(),
        "deepseek" => "DeepSeek".to_owned(),
        "bedrock" => "Bedrock".to_owned(),
        other => other.to_owned(),
    }
}

/// "a, b and c".
pub(crate) fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A selection in words, for a sentence's subject and its qualifiers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    /// "the search team", "project atlas", "user alice"; empty when no one is named.
    pub who: Vec<String>,
    /// "the doc-summaries feature".
    pub feature: Option<String>,
    /// "Claude models (claude-3-5-haiku, claude-sonnet-4)", "gpt-4o", "Anthropic models".
    pub on: Vec<String>,
    /// "failed requests (error, timeout)".
    pub status: Option<String>,
}

impl Selection {
    /// The words for `conditions`, using how the question named them (`resolved`) where a family
    /// or brand stood for several values.
    pub fn of(conditions: &[Condition], resolved: &[Resolved]) -> Selection {
        let mut s = Selection::default();
        for c in conditions {
            let values = c.values.clone();
            let named = resolved
                .iter()
                .find(|r| r.dimension == c.dimension && sorted(&r.values) == sorted(&values));
            match c.dimension {
                Dimension::Team => s.who.push(if values.len() == 1 {
                    format!("the {} team", values[0])
                } else {
                    format!("the {} teams", list(&values))
                }),
                Dimension::Project => s.who.push(format!(
                    "project{} {}",
                    if values.len() > 1 { "s" } else { "" },
                    list(&values)
                )),
                Dimension::User => s.who.push(format!(
                    "user{} {}",
                    if values.len() > 1 { "s" } else { "" },
                    list(&values)
                )),
                Dimension::Feature => {
                    s.feature = Some(if values.len() == 1 {
                        format!("the {} feature", values[0])
                    } else {
                        format!("the {} features", list(&values))
                    })
                }
                Dimension::Model => s.on.push(match named {
                    Some(r) if values.len() > 1 => {
                        format!("{} models ({})", capitalise(&r.text), values.join(", "))
                    }
                    _ => list(&values),
                }),
                Dimension::Provider => s.on.push(format!(
                    "{} models",
                    list(&values.iter().map(|v| provider_name(v)).collect::<Vec<_>>())
                )),
                Dimension::Status => {
                    let failed = values
                        .iter()
                        .all(|v| !agentwire_analytics::query::is_success_status(v));
                    s.status = Some(if failed && values.len() > 1 {
                        format!("failed requests ({})", values.join(", "))
                    } else {
                        format!("requests with status {}", list(&values))
                    });
                }
            }
        }
        s
    }

    pub fn is_everything(&self) -> bool {
        self.who.is_empty() && self.feature.is_none() && self.on.is_empty() && self.status.is_none()
    }

    /// The subject of a spend sentence: "The search team", "The doc-summaries feature", "You".
    pub fn subject(&self) -> String {
        if !self.who.is_empty() {
            capitalise(&list(&self.who))
        } else if let Some(f) = &self.feature {
            capitalise(f)
        } else {
            "You".to_owned()
        }
    }

    /// What follows the subject: " on Claude models (…) for the chatbot feature in failed
    /// requests" (the feature only when it is not the subject).
    pub fn qualifiers(&self) -> String {
        let mut out = String::new();
        if !self.on.is_empty() {
            out.push_str(&format!(" on {}", list(&self.on)));
        }
        if !self.who.is_empty()
            && let Some(f) = &self.feature
        {
            out.push_str(&format!(" for {f}"));
        }
        if let Some(st) = &self.status {
            out.push_str(&format!(" in {st}"));
        }
        out
    }

    /// The whole selection after a noun: " for the search team on Claude models (…)", or "" for
    /// everything.
    pub fn after_noun(&self) -> String {
        let mut parts: Vec<String> = self.who.clone();
        if let Some(f) = &self.feature {
            parts.push(f.clone());
        }
        let mut out = if parts.is_empty() {
            String::new()
        } else {
            format!(" for {}", list(&parts))
        };
        if !self.on.is_empty() {
            out.push_str(&format!(" on {}", list(&self.on)));
        }
        if let Some(st) = &self.status {
            out.push_str(&format!(" in {st}"));
        }
        out
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// The first letter in capitals.
pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A day, or a window of days.
pub(super) fn window(start: impl ToString, end: impl ToString) -> String {
    let (start, end) = (start.to_string(), end.to_string());
    if start == end {
        start
    } else {
        format!("{start} to {end}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentwire_analytics::query::Stat;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    #[test]
    fn figures_keep_four_significant_digits() {
        assert_eq!(figure(Metric::Spend, 1234.567), "$1,234.57");
        assert_eq!(figure(Metric::CostPerRequest, 0.0034123), "$0.003412");
        assert_eq!(figure(Metric::ErrorRate, 0.04231), "4.23%");
        assert_eq!(figure(Metric::CacheHitShare, 0.4231), "42.3%");
        assert_eq!(figure(Metric::Latency(Stat::P95), 1234.4), "1,234 ms");
        assert_eq!(figure(Metric::OutputTokensPerRequest, 1812.34), "1,812.3");
        assert_eq!(figure(Metric::Requests, 123_456.0), "123,456");
    }

    #[test]
    fn periods_read_as_people_name_them() {
        let r = d(11, 25);
        assert_eq!(
            period_name(Period::new(d(10, 1), d(10, 31)), r),
            "October 2026"
        );
        assert_eq!(period_name(Period::new(d(7, 1), d(9, 30)), r), "Q3 2026");
        assert_eq!(
            period_name(Period::new(d(11, 1), d(11, 25)), r),
            "November 2026 to 2026-11-25"
        );
        assert_eq!(
            when(Period::new(d(10, 27), d(11, 25)), r),
            "in the 30 days to 2026-11-25"
        );
        assert_eq!(
            when(Period::new(d(10, 5), d(10, 11)), r),
            "from 2026-10-05 to 2026-10-11"
        );
        assert_eq!(when(Period::new(d(11, 24), d(11, 24)), r), "on 2026-11-24");
    }
}
