//! A lookup's answer: the fact in one or two sentences ("The search team spent $1,234.56 on
//! Claude models (…) in October 2026, up 41.0% from $875.90 in September 2026."), then the table
//! that supports it, then how the question was read. A selection without records, or a period
//! outside the data, is said plainly — with where the usage is instead — never shown as a $0
//! table. A name the data does not have is said first, with the closest names it has.
//!
//! Wording only, over `run_query`'s result; this module must not compute a figure.

use super::answer::{AnswerInput, plain};
use super::words::{Selection, capitalise, change, figure, list, period_name, when};
use crate::findings::{Lookup, Relaxed};
use crate::report::ComposedReport;
use agentwire_analytics::query::{
    Comparison, Dimension, GroupBy, Metric, Order, Period, QueryResult, Row, Shape, TimeGrain,
};
use serde_json::json;
use std::fmt::Write;

/// Rows a table shows at most; the rest are counted.
const TABLE_ROWS: usize = 40;

pub(crate) fn compose(input: &AnswerInput<'_>, lookup: &Lookup) -> ComposedReport {
    let lead = lead(input, lookup);
    let mut md = String::new();
    for sentence in &lead {
        let _ = writeln!(md, "{sentence}");
    }
    let _ = writeln!(md);
    if !is_empty(&lookup.result) && within_data(&lookup.result, lookup.spec.period) {
        table(&mut md, input, lookup);
    }
    md.push_str(&input.reading_notes());
    if !lookup.result.unpriced_models.is_empty() {
        let _ = writeln!(
            md,
            "\n_{} {} no list price: their records count at their billed cost only._",
            list(&lookup.result.unpriced_models),
            if lookup.result.unpriced_models.len() == 1 {
                "has"
            } else {
                "have"
            }
        );
    }
    let sentences = lead.iter().map(|s| plain(s)).collect();
    input.finish(
        md,
        sentences,
        "lookup",
        json!({
            "answer": lead.first().map(|s| plain(s)),
            "result": lookup.result,
            "support": lookup.support,
            "without": lookup.without,
        }),
    )
}

fn is_empty(r: &QueryResult) -> bool {
    r.records == 0
        && r.previous.as_ref().is_none_or(|p| p.requests == 0)
        && r.rows.iter().all(|row| row.requests == 0)
}

/// Whether the period overlaps the data at all.
fn within_data(r: &QueryResult, period: Period) -> bool {
    match (r.data_first, r.data_last) {
        (Some(first), Some(last)) => Period::new(first, last).intersect(&period).is_some(),
        _ => false,
    }
}

/// The opening sentences: unknown names, then the fact (or why there is none).
fn lead(input: &AnswerInput<'_>, l: &Lookup) -> Vec<String> {
    let q = input.query;
    let spec = &l.spec;
    let r = &l.result;
    let reference = q.reference_day;
    let mut out = input.unknown_sentences();
    let sel = Selection::of(&spec.conditions, &q.resolved);
    let span = match (r.data_first, r.data_last) {
        (Some(a), Some(b)) => Some(Period::new(a, b)),
        _ => None,
    };
    let Some(span) = span else {
        out.push("There is no usage data to look this up in.".to_owned());
        return out;
    };
    if span.intersect(&spec.period).is_none() {
        out.push(format!(
            "Your data covers {span}; {} lies outside it, so there is no figure for it.",
            period_name(spec.period, reference)
        ));
        return out;
    }
    if is_empty(r) {
        let compared = match &spec.shape {
            Shape::Compare {
                against: Comparison::Period(other),
                ..
            } => format!(" or {}", period_name(*other, reference)),
            _ => String::new(),
        };
        out.push(format!(
            "There is no usage{} {}{compared}: no records match, so there is no figure to give.",
            if sel.is_everything() {
                String::new()
            } else {
                sel.after_noun()
            },
            when(spec.period, reference),
        ));
        for relaxed in &l.without {
            let when = when(spec.period, reference);
            if let Some(s) = relaxed_sentence(relaxed, spec.metric, &q.resolved, &when) {
                out.push(s);
            }
        }
        return out;
    }
    if spec.period.first < span.first {
        out.push(format!(
            "Your data starts on {}, so this covers {} only.",
            span.first,
            Period::new(span.first, spec.period.last.min(span.last))
        ));
    }
    if !q.unknown.is_empty() {
        out.push("Without that name:".to_owned());
    }
    let metric = spec.metric;
    let whole = when(spec.period, reference);
    let sentence = match &spec.shape {
        Shape::Figure => figure_sentence(&sel, metric, r.value, &whole, split(l, metric)),
        Shape::Compare {
            against: Comparison::Period(other),
            ..
        } => {
            let mut s = figure_sentence(&sel, metric, r.value, &whole, None);
            s.pop();
            let other_name = period_name(*other, reference);
            match r.previous.as_ref().and_then(|p| p.value.map(|v| (v, p))) {
                Some((v, p)) if v.abs() > f64::EPSILON => {
                    let how = p.change_pct.map(change).unwrap_or_default();
                    format!("{s}, {how} from {} in {other_name}.", figure(metric, v))
                }
                Some((v, _)) => format!("{s}, against {} in {other_name}.", figure(metric, v)),
                None => format!("{s}; {other_name} has no figure to compare with."),
            }
        }
        Shape::Compare {
            against: Comparison::Groups(groups),
            ..
        } => {
            let names = group_names(groups);
            let sides: Vec<String> = r
                .rows
                .iter()
                .zip(&names)
                .map(|(row, name)| format!("{name} **{}**", value_text(metric, row.value)))
                .collect();
            let mut s = format!(
                "{}{} {whole}: {}.",
                capitalise(&metric.label()),
                sel.after_noun(),
                list(&sides)
            );
            if let ([a, b], [na, nb]) = (r.rows.as_slice(), names.as_slice())
                && let (Some(x), Some(y)) = (a.value, b.value)
                && x > 0.0
                && y > 0.0
            {
                let (hi, lo, ratio) = if x >= y {
                    (na, nb, x / y)
                } else {
                    (nb, na, y / x)
                };
                s.push_str(&format!(" {hi} is {ratio:.2} times {lo}."));
            }
            s
        }
        Shape::Breakdown {
            by: GroupBy::Dimension(d),
        } => breakdown_sentence(&sel, metric, r, *d, &whole),
        Shape::Breakdown {
            by: GroupBy::Time(grain),
        }
        | Shape::Trend { every: grain } => trend_sentence(&sel, metric, r, *grain, &whole, span),
        Shape::Ranking { by, order, limit } => {
            let rows = l.support.as_ref().map_or(&r.rows, |s| &s.rows);
            ranking_sentence(&sel, metric, rows, *by, *order, *limit, &whole)
        }
    };
    out.push(sentence);
    out
}

/// How each side of a comparison of groups is named: its one value ("gpt-4o"), or the
/// question's word with the values it stands for ("Claude (claude-3-5-haiku, claude-sonnet-4)").
fn group_names(groups: &[agentwire_analytics::query::Group]) -> Vec<String> {
    groups
        .iter()
        .map(|g| {
            let values: Vec<String> = g.conditions.iter().flat_map(|c| c.values.clone()).collect();
            match values.as_slice() {
                [one] => one.clone(),
                _ => format!("{} ({})", capitalise(&g.label), values.join(", ")),
            }
        })
        .collect()
}

/// The split of a figure into its supporting rows, when a filter named several values ("Claude"
/// → its models), for the parenthesis after the figure.
fn split(l: &Lookup, metric: Metric) -> Option<String> {
    let support = l.support.as_ref()?;
    let GroupBy::Dimension(d) = support.by else {
        return None;
    };
    let several = l
        .spec
        .conditions
        .iter()
        .any(|c| c.dimension == d && c.values.len() > 1);
    let rows: Vec<&Row> = support.rows.iter().filter(|r| r.requests > 0).collect();
    if !several || rows.len() < 2 || rows.len() > 5 {
        return None;
    }
    Some(
        rows.iter()
            .map(|r| format!("{} {}", r.key, value_text(metric, r.value)))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn value_text(metric: Metric, v: Option<f64>) -> String {
    v.map_or_else(|| "no figure".to_owned(), |v| figure(metric, v))
}

/// One figure in a sentence: "The search team spent **$1,234.56** on Claude models in October
/// 2026 (…).", "The p95 latency for … in … was **1,234 ms**."
fn figure_sentence(
    sel: &Selection,
    metric: Metric,
    value: Option<f64>,
    when: &str,
    split: Option<String>,
) -> String {
    let split = split.map(|s| format!(" ({s})")).unwrap_or_default();
    let Some(v) = value else {
        return format!(
            "The records{} {when} hold no {} (nothing was recorded for it).",
            sel.after_noun(),
            metric.label()
        );
    };
    let v = figure(metric, v);
    match metric {
        Metric::Spend => format!(
            "{} spent **{v}**{} {when}{split}.",
            sel.subject(),
            sel.qualifiers()
        ),
        Metric::Requests => format!(
            "{} made **{v}** requests{} {when}{split}.",
            sel.subject(),
            sel.qualifiers()
        ),
        m if m.is_additive() => format!(
            "{}{} {when}: **{v}**{split}.",
            capitalise(&m.label()),
            sel.after_noun()
        ),
        m => format!(
            "The {}{} {when} was **{v}**{split}.",
            m.label(),
            sel.after_noun()
        ),
    }
}

fn plural(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Dimension(Dimension::Model) => "models",
        GroupBy::Dimension(Dimension::Provider) => "providers",
        GroupBy::Dimension(Dimension::Team) => "teams",
        GroupBy::Dimension(Dimension::Feature) => "features",
        GroupBy::Dimension(Dimension::Project) => "projects",
        GroupBy::Dimension(Dimension::User) => "users",
        GroupBy::Dimension(Dimension::Status) => "statuses",
        GroupBy::Time(g) => match g {
            agentwire_analytics::query::TimeGrain::Day => "days",
            agentwire_analytics::query::TimeGrain::Week => "weeks",
            agentwire_analytics::query::TimeGrain::Month => "months",
        },
    }
}

fn breakdown_sentence(
    sel: &Selection,
    metric: Metric,
    r: &QueryResult,
    d: Dimension,
    when: &str,
) -> String {
    let rows: Vec<&Row> = r.rows.iter().filter(|x| x.value.is_some()).collect();
    let head = format!(
        "{} by {}{} {when}",
        capitalise(&metric.label()),
        d.as_str(),
        sel.after_noun()
    );
    if metric.is_additive() {
        let shown: Vec<String> = rows
            .iter()
            .take(3)
            .map(|x| format!("{} **{}**", x.key, value_text(metric, x.value)))
            .collect();
        let more = rows.len().saturating_sub(3);
        format!(
            "{head} totals **{}**: {}{}.",
            value_text(metric, r.value),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )
    } else {
        match (rows.first(), rows.last()) {
            (Some(hi), Some(lo)) if rows.len() > 1 => format!(
                "{head}: highest {} at **{}**, lowest {} at **{}**; **{}** overall.",
                hi.key,
                value_text(metric, hi.value),
                lo.key,
                value_text(metric, lo.value),
                value_text(metric, r.value)
            ),
            (Some(only), _) => format!(
                "{head}: {} at **{}**.",
                only.key,
                value_text(metric, only.value)
            ),
            _ => format!("{head}: no {} is recorded.", metric.label()),
        }
    }
}

fn trend_sentence(
    sel: &Selection,
    metric: Metric,
    r: &QueryResult,
    grain: TimeGrain,
    when: &str,
    span: Period,
) -> String {
    // What the buckets cover: the period within the data.
    let covered = r.period.intersect(&span).unwrap_or(r.period);
    let points: Vec<(&str, f64)> = r
        .rows
        .iter()
        .filter_map(|x| x.value.map(|v| (x.key.as_str(), v)))
        .collect();
    let head = format!(
        "{} by {}{} {when}",
        capitalise(&metric.label()),
        grain.as_str(),
        sel.after_noun()
    );
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return format!("{head}: no {} is recorded.", metric.label());
    };
    let hi = points
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .copied()
        .unwrap_or(*first);
    let lo = points
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .copied()
        .unwrap_or(*first);
    // A bucket the period (or the data) cuts short is marked, and a change between buckets of
    // different lengths is not stated.
    let partial_start = grain.bucket_start(covered.first) != covered.first;
    let partial_end = !matches!(grain, TimeGrain::Day)
        && grain.bucket_start(covered.last + chrono::Duration::days(1))
            == grain.bucket_start(covered.last);
    let mark = |key: &str, partial: bool, from: bool| {
        if !partial {
            format!("({key})")
        } else if from {
            format!("({key}, partial: from {})", covered.first)
        } else {
            format!("({key}, partial: to {})", covered.last)
        }
    };
    let mut s = format!(
        "{head} went from **{}** {} to **{}** {}",
        figure(metric, first.1),
        mark(first.0, partial_start && first.0 == r.rows[0].key, true),
        figure(metric, last.1),
        mark(
            last.0,
            partial_end && r.rows.last().is_some_and(|x| x.key == last.0),
            false
        )
    );
    if first.1.abs() > f64::EPSILON && !partial_start && !partial_end {
        s.push_str(&format!(
            ", {}",
            change((last.1 - first.1) / first.1 * 100.0)
        ));
    }
    s.push_str(&format!(
        "; highest **{}** ({}), lowest {} ({}).",
        figure(metric, hi.1),
        hi.0,
        figure(metric, lo.1),
        lo.0
    ));
    if let Some(v) = r.value
        && metric.is_additive()
    {
        s.push_str(&format!(" Total: **{}**.", figure(metric, v)));
    }
    s
}

fn ranking_sentence(
    sel: &Selection,
    metric: Metric,
    rows: &[Row],
    by: GroupBy,
    order: Order,
    limit: u32,
    when: &str,
) -> String {
    let ranked: Vec<&Row> = rows.iter().filter(|x| x.value.is_some()).collect();
    let word = match (order, counts(metric)) {
        (Order::Most, true) => "most",
        (Order::Least, true) => "least",
        (Order::Most, false) => "highest",
        (Order::Least, false) => "lowest",
    };
    let dim = by.as_str();
    let Some(top) = ranked.first() else {
        return format!(
            "No {} has a {}{} {when}.",
            dim,
            metric.label(),
            sel.after_noun()
        );
    };
    if limit <= 1 {
        let mut s = format!(
            "The {dim} with the {word} {}{} {when} is **{}** at **{}**",
            metric.label(),
            sel.after_noun(),
            top.key,
            value_text(metric, top.value)
        );
        if let Some(next) = ranked.get(1) {
            s.push_str(&format!(
                ", then {} at {}",
                next.key,
                value_text(metric, next.value)
            ));
        }
        s.push('.');
        return s;
    }
    let shown: Vec<String> = ranked
        .iter()
        .take(limit as usize)
        .map(|x| format!("**{}** {}", x.key, value_text(metric, x.value)))
        .collect();
    let fewer = if (shown.len() as u32) < limit {
        format!(" (only {} have any)", shown.len())
    } else {
        String::new()
    };
    format!(
        "The {} {} with the {word} {}{} {when}{fewer}: {}.",
        shown.len(),
        plural(by),
        metric.label(),
        sel.after_noun(),
        list(&shown)
    )
}

/// Whether "most" reads right for the metric (amounts), rather than "highest" (rates, times).
fn counts(metric: Metric) -> bool {
    metric.is_additive()
        || matches!(
            metric,
            Metric::SpendPerDay
                | Metric::InputTokensPerRequest
                | Metric::OutputTokensPerRequest
                | Metric::TokensPerRequest
        )
}

/// Where the usage is when the selection has none: the same question without one filter.
fn relaxed_sentence(
    relaxed: &Relaxed,
    metric: Metric,
    resolved: &[agentwire_question::Resolved],
    when: &str,
) -> Option<String> {
    let rows: Vec<String> = relaxed
        .result
        .rows
        .iter()
        .filter(|r| r.requests > 0)
        .map(|r| format!("{} ({})", r.key, value_text(metric, r.value)))
        .collect();
    if rows.is_empty() {
        return None;
    }
    let dropped = &relaxed.dropped;
    let sel = Selection::of(&relaxed.kept, resolved);
    let mut figure = figure_sentence(&sel, metric, relaxed.result.value, when, None);
    figure.pop();
    // The sentence continues after a colon.
    if let Some(rest) = figure.strip_prefix("The ") {
        figure = format!("the {rest}");
    } else if let Some(rest) = figure.strip_prefix("You ") {
        figure = format!("you {rest}");
    }
    Some(format!(
        "Without the {} filter ({}): {figure}, {} {}.",
        dropped.dimension.as_str(),
        list(&dropped.values),
        if counts(metric) {
            "most on"
        } else {
            "highest for"
        },
        list(&rows)
    ))
}

fn table(md: &mut String, input: &AnswerInput<'_>, l: &Lookup) {
    let metric = l.spec.metric;
    let reference = input.query.reference_day;
    let label = capitalise(&metric.label());
    let spend_column = !matches!(metric, Metric::Spend);
    let named: Vec<Row>;
    let (rows, by, previous): (&[Row], Option<GroupBy>, Option<Period>) = match &l.spec.shape {
        Shape::Figure => match &l.support {
            Some(s) if s.rows.len() > 1 => (&s.rows, Some(s.by), None),
            _ => return,
        },
        Shape::Compare {
            against: Comparison::Period(other),
            by,
        } => match (&l.support, by) {
            (_, Some(by)) => (&l.result.rows, Some(*by), Some(*other)),
            (Some(s), None) => (&s.rows, Some(s.by), Some(*other)),
            _ => return,
        },
        Shape::Compare {
            against: Comparison::Groups(groups),
            ..
        } => {
            named = l
                .result
                .rows
                .iter()
                .zip(group_names(groups))
                .map(|(row, key)| Row { key, ..row.clone() })
                .collect();
            (&named, None, None)
        }
        Shape::Ranking { by, .. } => (
            l.support.as_ref().map_or(&l.result.rows, |s| &s.rows),
            Some(*by),
            None,
        ),
        Shape::Breakdown { by } => (&l.result.rows, Some(*by), None),
        Shape::Trend { every } => (&l.result.rows, Some(GroupBy::Time(*every)), None),
    };
    let key = by.map_or("Group".to_owned(), |b| capitalise(b.as_str()));
    match previous {
        Some(other) => {
            let _ = writeln!(
                md,
                "| {key} | {} | {} | Change |\n|---|---:|---:|---:|",
                period_name(other, reference),
                period_name(l.spec.period, reference)
            );
            for row in rows.iter().take(TABLE_ROWS) {
                let delta = match (row.value, row.previous) {
                    (Some(v), Some(p)) if p.abs() > f64::EPSILON => {
                        super::words::change((v - p) / p * 100.0)
                    }
                    _ => "-".to_owned(),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {delta} |",
                    row.key,
                    value_text(metric, row.previous),
                    value_text(metric, row.value)
                );
            }
        }
        None => {
            if spend_column {
                let _ = writeln!(
                    md,
                    "| {key} | {label} | Requests | Spend |\n|---|---:|---:|---:|"
                );
            } else {
                let _ = writeln!(md, "| {key} | {label} | Requests |\n|---|---:|---:|");
            }
            for row in rows.iter().take(TABLE_ROWS) {
                let mut line = format!(
                    "| {} | {} | {} |",
                    row.key,
                    value_text(metric, row.value),
                    agentwire_analytics::format::count(row.requests)
                );
                if spend_column {
                    line.push_str(&format!(" {} |", super::words::money(row.cost_usd)));
                }
                let _ = writeln!(md, "{line}");
            }
        }
    }
    if rows.len() > TABLE_ROWS {
        let _ = writeln!(md, "| _{} more_ | | | |", rows.len() - TABLE_ROWS);
    }
    let _ = writeln!(md);
}
