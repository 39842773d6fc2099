//! From a question's words to a [`Query`]: which intent, which metric, which names (as filters,
//! comparison sides or what-if targets), which period, which shape.
//!
//! The readers run in a fixed order over the tokens — time, metric phrases, names, then the
//! words that shape the answer — and each marks the tokens it explained, so a word is read once.
//! Everything is a rule over words; nothing here computes a figure or reads the clock.

use agentwire_analytics::query::{
    Condition, Dimension, GroupBy, Metric, Order, Period, QuerySpec, Shape, Stat,
};
use chrono::{Duration, NaiveDate};

use crate::intent::{decide_intent, intent_cues};
use crate::metric::{read_metric, share_base_position};
use crate::names::{Mention, find_names};
use crate::query::{DEFAULT_DAYS, Intent, Query, Resolved};
use crate::shape::{compare_groups, periods, read_shape_words, shape, what_if_change};
use crate::text::tokenize;
use crate::time::find_times;
use crate::vocabulary::Vocabulary;
use crate::words::Words;

/// Reads a question against a tenant's vocabulary. `today` is the day it is asked; time words
/// are read against the data's last day when that is earlier.
pub fn understand(question: &str, vocab: &Vocabulary, today: NaiveDate) -> Query {
    let reference = vocab.span().map_or(today, |s| s.last.min(today));
    let mut tokens = tokenize(question);
    let mut assumed: Vec<String> = Vec::new();
    let times = find_times(&mut tokens, reference);
    let mut w = Words {
        tokens: &mut tokens,
    };
    let (metric, metric_said) = read_metric(&mut w);
    let share_base_at = share_base_position(&w);
    let (mentions, unknown) = find_names(w.tokens, vocab);
    // Intent words inside a name do not count ("doc-summaries" is not a summary request).
    let mut cue_tokens = w.tokens.clone();
    for m in &mentions {
        for t in cue_tokens.iter_mut().skip(m.at).take(m.len) {
            t.text.clear();
        }
    }
    let intent_hint = intent_cues(&Words {
        tokens: &mut cue_tokens,
    });
    let shape_words = read_shape_words(&mut w);
    let domain = metric_said
        || !times.is_empty()
        || !mentions.is_empty()
        || !unknown.is_empty()
        || shape_words
            .group
            .is_some_and(|g| g != GroupBy::Dimension(Dimension::User) || !w.has("who"))
        || intent_hint.review.is_some()
        || intent_hint.what_if;
    let mut intent_hint = intent_hint;
    intent_hint.strong = metric_said || !mentions.is_empty() || !unknown.is_empty();
    let intent = decide_intent(&w, &intent_hint, domain);
    let mut metric = metric;
    let mut shape_words = shape_words;
    if !metric_said {
        metric = match shape_words.order_word.as_str() {
            "busiest" | "quietest" => Metric::Requests,
            "slowest" | "fastest" | "quickest" => Metric::Latency(Stat::P50),
            _ => metric,
        };
    }
    if matches!(shape_words.order_word.as_str(), "best" | "worst") {
        // Best is low for what costs or slows, high for what helps.
        let low_is_good = !matches!(metric, Metric::CacheHitShare | Metric::CachedTokens);
        let best = shape_words.order_word == "best";
        shape_words.order = Some(if best == low_is_good {
            Order::Least
        } else {
            Order::Most
        });
    }

    let default_period = Period::new(reference - Duration::days(DEFAULT_DAYS - 1), reference);
    let mut spec = QuerySpec {
        metric,
        conditions: Vec::new(),
        period: default_period,
        shape: Shape::Figure,
        share_of: Vec::new(),
    };
    let mut query = Query {
        question: question.to_string(),
        intent,
        spec: spec.clone(),
        change: None,
        resolved: Vec::new(),
        unknown: Vec::new(),
        assumed: Vec::new(),
        reference_day: reference,
    };
    if intent.is_reply() {
        return query;
    }

    // Names: what-if targets first, then comparison sides, then filters.
    let mut mentions = mentions;
    let mut change = None;
    if intent == Intent::WhatIf {
        change = Some(what_if_change(&w, &mut mentions));
    }
    let (groups, sides) = match compare_groups(&w, &mut mentions, &shape_words) {
        Some((g, sides)) => (Some(g), sides),
        None => (None, Vec::new()),
    };
    for m in &mentions {
        if m.priced_only {
            continue;
        }
        if let Some(c) = spec
            .conditions
            .iter_mut()
            .find(|c| c.dimension == m.dimension)
        {
            for v in &m.values {
                if !c.values.contains(v) {
                    c.values.push(v.clone());
                }
            }
            c.values.sort();
        } else {
            let mut values = m.values.clone();
            values.sort();
            spec.conditions.push(Condition::new(m.dimension, values));
        }
        if let Some(at) = share_base_at
            && m.at >= at
            && m.at <= at + 3
        {
            let mut values = m.values.clone();
            values.sort();
            spec.share_of.push(Condition::new(m.dimension, values));
        }
    }
    spec.conditions.sort_by_key(|c| c.dimension);
    let mut unknown = unknown;
    for m in mentions.iter().filter(|m| m.priced_only) {
        // A model the price table knows but the data does not, named outside a what-if target.
        let data: Vec<String> = vocab.models().iter().map(|x| x.name.clone()).collect();
        unknown.push(crate::names::Unknown {
            text: m.text.clone(),
            dimension: Some(m.dimension),
            closest: crate::names::closest(&m.values[0], &data),
            at: m.at,
        });
    }
    unknown.sort_by_key(|u| u.at);
    let mut read: Vec<&Mention> = mentions.iter().chain(sides.iter()).collect();
    read.sort_by_key(|m| m.at);
    let resolved: Vec<Resolved> = read
        .into_iter()
        .filter(|m| !m.priced_only)
        .map(|m| Resolved {
            text: m.text.clone(),
            dimension: m.dimension,
            values: m.values.clone(),
            how: m.how,
            note: m.note.clone(),
        })
        .collect();

    // Period and comparison of periods.
    let (period, other) = periods(&w, &times, reference, &shape_words, default_period);
    spec.period = period.unwrap_or_else(|| {
        assumed.push(format!(
            "No period named: the {DEFAULT_DAYS} days to {reference} (the last day of the data)."
        ));
        default_period
    });
    if reference < today {
        assumed.push(format!(
            "Time words are read from {reference}, the last day of the data."
        ));
    }

    spec.shape = shape(&shape_words, groups, other, &spec, intent);
    if let Metric::Latency(_) | Metric::Ttft(_) = spec.metric
        && !shape_words.stat_said
    {
        assumed.push("No statistic named: the median (p50).".to_string());
    }
    query.intent = intent;
    if intent == Intent::WhatIf {
        spec.metric = Metric::Spend;
    }
    query.spec = spec;
    query.change = change;
    query.resolved = resolved;
    query.unknown = unknown;
    query.assumed = assumed;
    query
}
