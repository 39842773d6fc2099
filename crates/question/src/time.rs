//! Time expressions: "October", "Q3", "last week", "yesterday", "since Oct 1", "between Sep 5 and
//! Oct 10", "the past 14 days", "this month" — each a period of whole days relative to a reference
//! day (the data's last day, or today when the data is newer), with the kind of period it is so a
//! comparison can find "the one before".
//!
//! The rules are the ones tests/corpus/FORMAT.md states. This module must not read the clock.

use agentwire_analytics::query::Period;
use chrono::{Datelike, Duration, Months, NaiveDate};

use crate::text::{Token, day_number, number};

/// What kind of period an expression named, which decides what "the previous one" is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Day,
    /// A calendar week (Monday to Sunday), maybe cut at the reference day.
    Week,
    Month,
    Quarter,
    Year,
    /// N days ending on a day.
    Days(i64),
    /// N calendar months ending on a day.
    Months(u32),
    /// Explicit bounds.
    Range,
}

/// A time expression found in the question.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimeSpan {
    pub period: Period,
    pub kind: Kind,
    /// Token index where it starts (for ordering and "from A to B").
    pub at: usize,
    /// "the previous month", "the week before": relative to another period, not to today.
    pub relative: bool,
    /// Named with a "since" (from a day to the reference day).
    pub open_ended: bool,
    /// For "from A to B": A and B themselves (a question about change compares them).
    pub parts: Option<(Period, Period)>,
}

const MONTHS: [(&str, u32); 24] = [
    ("january", 1),
    ("jan", 1),
    ("february", 2),
    ("feb", 2),
    ("march", 3),
    ("mar", 3),
    ("april", 4),
    ("apr", 4),
    ("may", 5),
    ("june", 6),
    ("jun", 6),
    ("july", 7),
    ("jul", 7),
    ("august", 8),
    ("aug", 8),
    ("september", 9),
    ("sept", 9),
    ("october", 10),
    ("oct", 10),
    ("november", 11),
    ("nov", 11),
    ("december", 12),
    ("dec", 12),
    ("sep", 9),
];

fn month_word(w: &str) -> Option<u32> {
    MONTHS.iter().find(|(n, _)| *n == w).map(|(_, m)| *m)
}

fn first_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, 1)
}

fn last_of_month(first: NaiveDate) -> NaiveDate {
    first
        .checked_add_months(Months::new(1))
        .map_or(first, |d| d - Duration::days(1))
}

fn quarter_start(d: NaiveDate) -> NaiveDate {
    let m = (d.month() - 1) / 3 * 3 + 1;
    first_of_month(d.year(), m).unwrap_or(d)
}

fn week_start(d: NaiveDate) -> NaiveDate {
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

fn year_word(w: &str) -> Option<i32> {
    let w = w.trim_start_matches('\'');
    let n: i32 = w.parse().ok()?;
    match w.len() {
        4 if (2000..=2100).contains(&n) => Some(n),
        2 => Some(2000 + n),
        _ => None,
    }
}

/// The period before `p`, of the same kind: the previous calendar month for a month (also one
/// cut at the reference day), the previous 7 days for a 7-day window, and so on.
pub(crate) fn previous(p: Period, kind: Kind) -> Period {
    let back_months = |n: u32| {
        let first = p
            .first
            .checked_sub_months(Months::new(n))
            .unwrap_or(p.first);
        Period::new(first, p.first - Duration::days(1))
    };
    match kind {
        Kind::Day => Period::new(p.first - Duration::days(1), p.first - Duration::days(1)),
        Kind::Week => Period::new(p.first - Duration::days(7), p.first - Duration::days(1)),
        Kind::Month => back_months(1),
        Kind::Quarter => back_months(3),
        Kind::Year => back_months(12),
        Kind::Months(n) => back_months(n),
        Kind::Days(_) | Kind::Range => {
            let len = p.days();
            Period::new(p.first - Duration::days(len), p.first - Duration::days(1))
        }
    }
}

struct Reader<'a> {
    tokens: &'a [Token],
    reference: NaiveDate,
}

impl Reader<'_> {
    fn word(&self, i: usize) -> Option<&str> {
        self.tokens.get(i).map(|t| t.text.as_str())
    }

    /// The most recent `month` (of `year` when given) whose first day is on or before the
    /// reference day, cut at the reference day.
    fn month(&self, month: u32, year: Option<i32>) -> Option<Period> {
        let r = self.reference;
        let year = year.unwrap_or(if month <= r.month() {
            r.year()
        } else {
            r.year() - 1
        });
        let first = first_of_month(year, month)?;
        Some(Period::new(first, last_of_month(first).min(r.max(first))))
    }

    fn date(&self, month: u32, day: u32, year: Option<i32>) -> Option<NaiveDate> {
        let r = self.reference;
        match year {
            Some(y) => NaiveDate::from_ymd_opt(y, month, day),
            None => {
                let d = NaiveDate::from_ymd_opt(r.year(), month, day)?;
                if d > r {
                    NaiveDate::from_ymd_opt(r.year() - 1, month, day)
                } else {
                    Some(d)
                }
            }
        }
    }

    fn cut(&self, first: NaiveDate, last: NaiveDate) -> Period {
        Period::new(first, last.min(self.reference.max(first)))
    }

    /// A date or month at `i`: returns (period, kind, tokens used).
    fn absolute(&self, i: usize) -> Option<(Period, Kind, usize)> {
        let w = self.word(i)?;
        // 2026-10-01, 10/1, 10/1/2026
        if let Some(d) = self.numeric_date(w) {
            return Some((Period::new(d, d), Kind::Day, 1));
        }
        // "the 1st of October", "1 Oct", "1st October 2026"
        if let Some(day) = day_number(w) {
            let mut j = i + 1;
            if self.word(j) == Some("of") {
                j += 1;
            }
            if let Some(m) = self.word(j).and_then(month_word) {
                let year = self.word(j + 1).and_then(year_word);
                let used = j + 1 - i + usize::from(year.is_some());
                let d = self.date(m, day, year)?;
                return Some((Period::new(d, d), Kind::Day, used));
            }
            return None;
        }
        let m = month_word(w)?;
        // "may" is a month only where a month is expected.
        if w == "may" {
            let before = i.checked_sub(1).and_then(|b| self.word(b));
            let after = self.word(i + 1);
            let cue = matches!(
                before,
                Some(
                    "in" | "since"
                        | "during"
                        | "from"
                        | "of"
                        | "until"
                        | "through"
                        | "vs"
                        | "and"
                        | "to"
                        | "between"
                        | "for"
                )
            ) || after
                .is_some_and(|a| a.bytes().all(|b| b.is_ascii_digit()) || day_number(a).is_some());
            if !cue {
                return None;
            }
        }
        // "October 5", "Oct 5th 2026", "October 2026", "October '26"
        if let Some(day) = self.word(i + 1).and_then(day_number) {
            let year = self
                .word(i + 2)
                .filter(|x| x.len() == 4)
                .and_then(year_word);
            let d = self.date(m, day, year)?;
            return Some((
                Period::new(d, d),
                Kind::Day,
                2 + usize::from(year.is_some()),
            ));
        }
        let year = self
            .word(i + 1)
            .filter(|x| x.len() == 4 || x.starts_with('\''))
            .and_then(year_word);
        let p = self.month(m, year)?;
        Some((p, Kind::Month, 1 + usize::from(year.is_some())))
    }

    fn numeric_date(&self, w: &str) -> Option<NaiveDate> {
        if let Ok(d) = NaiveDate::parse_from_str(w, "%Y-%m-%d") {
            return Some(d);
        }
        let parts: Vec<&str> = w.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return None;
        }
        let m: u32 = parts[0].parse().ok()?;
        let d: u32 = parts[1].parse().ok()?;
        let y = parts.get(2).and_then(|y| year_word(y));
        self.date(m, d, y)
    }

    /// A quarter at `i`: "Q3", "Q3 2026", "third quarter", "the 3rd quarter of 2026".
    fn quarter(&self, i: usize) -> Option<(Period, usize)> {
        let w = self.word(i)?;
        let (q, mut used) = if let Some(n) = w.strip_prefix('q').and_then(|n| n.parse::<u32>().ok())
        {
            (n, 1)
        } else {
            let n = match w {
                "first" | "1st" => 1,
                "second" | "2nd" => 2,
                "third" | "3rd" => 3,
                "fourth" | "4th" => 4,
                _ => return None,
            };
            if !matches!(self.word(i + 1), Some("quarter" | "qtr")) {
                return None;
            }
            (n, 2)
        };
        if !(1..=4).contains(&q) {
            return None;
        }
        let mut j = i + used;
        if self.word(j) == Some("of") {
            j += 1;
        }
        let year = self.word(j).and_then(year_word);
        if year.is_some() {
            used = j + 1 - i;
        }
        let r = self.reference;
        let month = (q - 1) * 3 + 1;
        let year = year.unwrap_or(if month <= r.month() {
            r.year()
        } else {
            r.year() - 1
        });
        let first = first_of_month(year, month)?;
        let last = first.checked_add_months(Months::new(3))? - Duration::days(1);
        Some((self.cut(first, last), used))
    }

    /// "last/past/previous [N] unit", "this unit", "today", "yesterday", "ytd".
    fn relative(&self, i: usize) -> Option<(Period, Kind, usize, bool)> {
        let r = self.reference;
        let w = self.word(i)?;
        match w {
            "today" => return Some((Period::new(r, r), Kind::Day, 1, false)),
            "yesterday" => {
                let y = r - Duration::days(1);
                return Some((Period::new(y, y), Kind::Day, 1, false));
            }
            "ytd" => {
                return Some((
                    self.cut(first_of_month(r.year(), 1)?, r),
                    Kind::Year,
                    1,
                    false,
                ));
            }
            "mtd" => return Some((Period::new(r.with_day(1)?, r), Kind::Month, 1, false)),
            "qtd" => return Some((Period::new(quarter_start(r), r), Kind::Quarter, 1, false)),
            "wtd" => return Some((Period::new(week_start(r), r), Kind::Week, 1, false)),
            _ => {}
        }
        // "month to date", "year to date"
        if self.word(i + 1) == Some("to") && self.word(i + 2) == Some("date") {
            let p = match w {
                "month" => (Period::new(r.with_day(1)?, r), Kind::Month),
                "year" => (Period::new(first_of_month(r.year(), 1)?, r), Kind::Year),
                "quarter" => (Period::new(quarter_start(r), r), Kind::Quarter),
                "week" => (Period::new(week_start(r), r), Kind::Week),
                _ => return None,
            };
            return Some((p.0, p.1, 3, false));
        }
        if matches!(w, "this" | "current") {
            let (p, kind) = match self.word(i + 1)? {
                "week" => (Period::new(week_start(r), r), Kind::Week),
                "month" => (Period::new(r.with_day(1)?, r), Kind::Month),
                "quarter" => (Period::new(quarter_start(r), r), Kind::Quarter),
                "year" => (Period::new(first_of_month(r.year(), 1)?, r), Kind::Year),
                _ => return None,
            };
            return Some((p, kind, 2, false));
        }
        let lead = matches!(
            w,
            "last" | "past" | "previous" | "prior" | "preceding" | "trailing" | "recent"
        );
        if !lead {
            // "the month before", "a week earlier"
            if matches!(w, "week" | "month" | "quarter" | "year" | "day")
                && matches!(self.word(i + 1), Some("before" | "earlier" | "prior"))
                && i.checked_sub(1)
                    .and_then(|b| self.word(b))
                    .is_some_and(|b| matches!(b, "the" | "a"))
            {
                return Some((Period::new(r, r), Kind::Range, 2, true));
            }
            return None;
        }
        let rolling_article = i
            .checked_sub(1)
            .and_then(|b| self.word(b))
            .is_some_and(|b| b == "the");
        let mut j = i + 1;
        // "last 30d", "past 2w"
        if let Some(next) = self.word(j)
            && next.starts_with(|c: char| c.is_ascii_digit())
        {
            let digits: String = next.chars().take_while(char::is_ascii_digit).collect();
            let suffix = &next[digits.len()..];
            if let Ok(n) = digits.parse::<i64>()
                && n > 0
            {
                let days = match suffix {
                    "d" => Some(n),
                    "w" => Some(7 * n),
                    "h" => Some(1),
                    _ => None,
                };
                if let Some(days) = days {
                    let first = r - Duration::days(days - 1);
                    return Some((Period::new(first, r), Kind::Days(days), 2, false));
                }
            }
        }
        let n = self
            .word(j)
            .and_then(number)
            .filter(|n| *n > 0 && *n <= 3650);
        if n.is_some() {
            j += 1;
            if self.word(j) == Some("of") {
                j += 1;
            }
        }
        let unit = crate::text::singular(self.word(j)?);
        let used = j + 1 - i;
        // "the previous 7 days" after another period is relative to it.
        let relative = matches!(w, "previous" | "prior" | "preceding");
        match (n, unit.as_str()) {
            (Some(n), unit) => {
                let n64 = i64::from(n);
                let (p, kind) = match unit {
                    "day" => (Period::new(r - Duration::days(n64 - 1), r), Kind::Days(n64)),
                    "hour" => (Period::new(r, r), Kind::Days(1)),
                    "week" => (
                        Period::new(r - Duration::days(7 * n64 - 1), r),
                        Kind::Days(7 * n64),
                    ),
                    "month" => (
                        Period::new(r.checked_sub_months(Months::new(n))? + Duration::days(1), r),
                        Kind::Months(n),
                    ),
                    "quarter" => (
                        Period::new(
                            r.checked_sub_months(Months::new(3 * n))? + Duration::days(1),
                            r,
                        ),
                        Kind::Months(3 * n),
                    ),
                    "year" => (
                        Period::new(
                            r.checked_sub_months(Months::new(12 * n))? + Duration::days(1),
                            r,
                        ),
                        Kind::Months(12 * n),
                    ),
                    _ => return None,
                };
                Some((p, kind, used, relative))
            }
            (None, unit) => {
                // "past week" and "the last week" roll; "last week" is the calendar week before.
                let rolling = w == "past"
                    || w == "trailing"
                    || w == "recent"
                    || (rolling_article && w == "last");
                let (p, kind) = match (unit, rolling) {
                    ("day", _) => {
                        let y = r - Duration::days(1);
                        (Period::new(y, y), Kind::Day)
                    }
                    ("week", true) => (Period::new(r - Duration::days(6), r), Kind::Days(7)),
                    ("week", false) => {
                        let this = week_start(r);
                        (
                            Period::new(this - Duration::days(7), this - Duration::days(1)),
                            Kind::Week,
                        )
                    }
                    ("month", true) => (
                        Period::new(r.checked_sub_months(Months::new(1))? + Duration::days(1), r),
                        Kind::Months(1),
                    ),
                    ("month", false) => {
                        let first = r.with_day(1)?.checked_sub_months(Months::new(1))?;
                        (Period::new(first, last_of_month(first)), Kind::Month)
                    }
                    ("quarter", true) => (
                        Period::new(r.checked_sub_months(Months::new(3))? + Duration::days(1), r),
                        Kind::Months(3),
                    ),
                    ("quarter", false) => {
                        let first = quarter_start(r).checked_sub_months(Months::new(3))?;
                        let last = quarter_start(r) - Duration::days(1);
                        (Period::new(first, last), Kind::Quarter)
                    }
                    ("year", true) => (
                        Period::new(
                            r.checked_sub_months(Months::new(12))? + Duration::days(1),
                            r,
                        ),
                        Kind::Months(12),
                    ),
                    ("year", false) => {
                        let first = first_of_month(r.year() - 1, 1)?;
                        (
                            Period::new(first, first_of_month(r.year(), 1)? - Duration::days(1)),
                            Kind::Year,
                        )
                    }
                    _ => return None,
                };
                Some((p, kind, used, relative))
            }
        }
    }
}

/// Finds the time expressions, marks their tokens used, and merges "between A and B", "from A to
/// B" and "since A" into ranges.
pub(crate) fn find_times(tokens: &mut [Token], reference: NaiveDate) -> Vec<TimeSpan> {
    let mut spans: Vec<(TimeSpan, usize)> = Vec::new();
    {
        let reader = Reader { tokens, reference };
        let mut i = 0;
        while i < tokens.len() {
            if let Some((period, kind, used, relative)) = reader.relative(i) {
                spans.push((
                    TimeSpan {
                        period,
                        kind,
                        at: i,
                        relative,
                        open_ended: false,
                        parts: None,
                    },
                    used,
                ));
                i += used;
                continue;
            }
            if let Some((period, used)) = reader.quarter(i) {
                spans.push((
                    TimeSpan {
                        period,
                        kind: Kind::Quarter,
                        at: i,
                        relative: false,
                        open_ended: false,
                        parts: None,
                    },
                    used,
                ));
                i += used;
                continue;
            }
            if let Some((period, kind, used)) = reader.absolute(i) {
                spans.push((
                    TimeSpan {
                        period,
                        kind,
                        at: i,
                        relative: false,
                        open_ended: false,
                        parts: None,
                    },
                    used,
                ));
                i += used;
                continue;
            }
            // "in 2026", "during 2025"
            if let Some(y) = reader.word(i).filter(|w| w.len() == 4).and_then(year_word)
                && i.checked_sub(1)
                    .and_then(|b| reader.word(b))
                    .is_some_and(|b| matches!(b, "in" | "during" | "for" | "of" | "year"))
                && let (Some(first), Some(next)) = (first_of_month(y, 1), first_of_month(y + 1, 1))
            {
                let p = reader.cut(first, next - Duration::days(1));
                spans.push((
                    TimeSpan {
                        period: p,
                        kind: Kind::Year,
                        at: i,
                        relative: false,
                        open_ended: false,
                        parts: None,
                    },
                    1,
                ));
                i += 1;
                continue;
            }
            i += 1;
        }
    }
    for (s, used) in &spans {
        for t in tokens.iter_mut().skip(s.at).take(*used) {
            t.used = true;
        }
    }
    let texts: Vec<String> = tokens.iter().map(|t| t.text.clone()).collect();
    let word = |i: usize| texts.get(i).map(String::as_str);
    let mut out: Vec<TimeSpan> = Vec::new();
    let mut k = 0;
    while k < spans.len() {
        let (s, used) = &spans[k];
        let before = s.at.checked_sub(1).and_then(word);
        let end = s.at + used;
        if let Some((next, _)) = spans.get(k + 1) {
            let joiner = word(end);
            let range = (matches!(before, Some("between")) && joiner == Some("and"))
                || (matches!(before, Some("from"))
                    && matches!(joiner, Some("to" | "until" | "through" | "thru" | "till")))
                || (next.at == end + 1
                    && matches!(joiner, Some("to" | "through" | "thru" | "until"))
                    && s.kind == Kind::Day);
            if range && next.at == end + 1 && next.period.last >= s.period.first && !next.relative {
                if let Some(t) = tokens.get_mut(end) {
                    t.used = true;
                }
                if let Some(t) = s.at.checked_sub(1).and_then(|b| tokens.get_mut(b)) {
                    t.used = true;
                }
                out.push(TimeSpan {
                    period: Period::new(s.period.first, next.period.last),
                    kind: Kind::Range,
                    at: s.at,
                    relative: false,
                    open_ended: false,
                    parts: Some((s.period, next.period)),
                });
                k += 2;
                continue;
            }
        }
        let mut s = s.clone();
        if matches!(before, Some("since" | "after")) && !s.relative {
            s.period = Period::new(s.period.first, reference.max(s.period.first));
            s.kind = Kind::Range;
            s.open_ended = true;
            if let Some(t) = s.at.checked_sub(1).and_then(|b| tokens.get_mut(b)) {
                t.used = true;
            }
        }
        out.push(s);
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    fn spans(text: &str) -> Vec<(NaiveDate, NaiveDate)> {
        let mut t = tokenize(text);
        find_times(&mut t, d(11, 18))
            .into_iter()
            .map(|s| (s.period.first, s.period.last))
            .collect()
    }

    #[test]
    fn named_months_quarters_and_dates() {
        assert_eq!(spans("in October"), [(d(10, 1), d(10, 31))]);
        assert_eq!(spans("november"), [(d(11, 1), d(11, 18))]);
        assert_eq!(
            spans("december"),
            [(
                NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(),
                NaiveDate::from_ymd_opt(2025, 12, 31).unwrap()
            )]
        );
        assert_eq!(spans("Q3"), [(d(7, 1), d(9, 30))]);
        assert_eq!(spans("q4 2026"), [(d(10, 1), d(11, 18))]);
        assert_eq!(spans("on 2026-10-05"), [(d(10, 5), d(10, 5))]);
        assert_eq!(spans("on oct 5th"), [(d(10, 5), d(10, 5))]);
        assert_eq!(spans("since Oct 1"), [(d(10, 1), d(11, 18))]);
        assert_eq!(spans("between Sep 5 and Oct 10"), [(d(9, 5), d(10, 10))]);
        assert_eq!(spans("from september to october"), [(d(9, 1), d(10, 31))]);
        assert_eq!(spans("what may we spend"), []);
        assert_eq!(spans("in may"), [(d(5, 1), d(5, 31))]);
    }

    #[test]
    fn relative_periods() {
        assert_eq!(spans("yesterday"), [(d(11, 17), d(11, 17))]);
        assert_eq!(spans("last week"), [(d(11, 9), d(11, 15))]);
        assert_eq!(spans("past week"), [(d(11, 12), d(11, 18))]);
        assert_eq!(spans("in the last week"), [(d(11, 12), d(11, 18))]);
        assert_eq!(spans("this week"), [(d(11, 16), d(11, 18))]);
        assert_eq!(spans("last month"), [(d(10, 1), d(10, 31))]);
        assert_eq!(spans("this month"), [(d(11, 1), d(11, 18))]);
        assert_eq!(spans("last 7 days"), [(d(11, 12), d(11, 18))]);
        assert_eq!(spans("past two weeks"), [(d(11, 5), d(11, 18))]);
        assert_eq!(spans("last 3 months"), [(d(8, 19), d(11, 18))]);
        assert_eq!(spans("last 30d"), [(d(10, 20), d(11, 18))]);
        assert_eq!(spans("last quarter"), [(d(7, 1), d(9, 30))]);
        assert_eq!(spans("ytd"), [(d(1, 1), d(11, 18))]);
        assert_eq!(spans("this month vs last"), [(d(11, 1), d(11, 18))]);
    }

    #[test]
    fn previous_periods() {
        let oct = Period::new(d(10, 1), d(10, 31));
        assert_eq!(previous(oct, Kind::Month), Period::new(d(9, 1), d(9, 30)));
        let mtd = Period::new(d(11, 1), d(11, 18));
        assert_eq!(previous(mtd, Kind::Month), Period::new(d(10, 1), d(10, 31)));
        let week = Period::new(d(11, 12), d(11, 18));
        assert_eq!(
            previous(week, Kind::Days(7)),
            Period::new(d(11, 5), d(11, 11))
        );
    }
}
