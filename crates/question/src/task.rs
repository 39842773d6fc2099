//! Structured tasks (issue 10): clients that send an agent type and a `data` object of fields
//! instead of a question. The fields map onto the same typed [`Query`] a question becomes; the
//! task gets a readable description (recorded as the run's question), and fields this layer does
//! not use are listed so the answer can name them.
//!
//! Field mapping (docs/questions.md has the table):
//! - `optimization_target` / `goal` / `objective` / `target`: cost → cost review; latency or
//!   performance → p95 latency by model; capacity → capacity review;
//! - `analysis_type`: anomaly → anomaly review; capacity/forecast → capacity review; cost/spend →
//!   spend by model; performance/latency → p95 latency by model; usage → requests by feature;
//!   trend → spend trend; optimization → cost review;
//! - `task` (free text such as `comprehensive_system_analysis`): read like a question, an
//!   "analysis"/"review"/"audit" being the overview;
//! - `time_range` / `timeframe` / `period` / `window`: the period (`last_7_days`, `7d`, `Q3`,
//!   `{"start": "2026-10-01", "end": "2026-10-31"}`);
//! - `planning_horizon` (`6_months`, `90d`, a number of months) and `growth_projection` (1.3 =
//!   +30%): the capacity forecast;
//! - `monthly_spend` / `current_spend` (also inside `current_metrics`): the spend the client
//!   states, compared with what the data shows;
//! - `metrics`: the metric (`response_time`, `latency`, `error_rate`, `cost`, `tokens`, ...);
//! - `team`, `model`, `feature`, `project`, `user`, `provider`: filters, resolved like names in
//!   a question;
//! - `requirements` (`data_analysis`, `optimization_recommendations`, `implementation_plan`):
//!   the parts of the full review, which covers them;
//! - anything else (`priority`, `constraints`, `utilization_rate`, ...) is kept and reported as
//!   not used.
//!
//! This module must not do I/O or read the clock.

use agentwire_analytics::query::{
    Condition, Dimension, GroupBy, Metric, Period, Shape, Stat, TimeGrain,
};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::query::DEFAULT_DAYS;
use crate::query::{Intent, Query, ReviewFocus};
use crate::understand::understand;
use crate::vocabulary::Vocabulary;

/// A structured task, understood.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    /// What the task asks, in words; recorded as the run's question.
    pub description: String,
    /// The typed query the fields map onto (its `question` is the description).
    pub query: Query,
    /// The fields that steer the run (dotted paths for nested ones).
    pub used: Vec<String>,
    /// Fields kept as parameters but not used; the answer names them.
    pub unused: Vec<String>,
    /// `monthly_spend` / `current_spend` as stated by the client, in dollars.
    pub stated_monthly_spend: Option<f64>,
    /// `planning_horizon`, in months.
    pub horizon_months: Option<u32>,
    /// `growth_projection`: 1.3 means 30% more.
    pub growth: Option<f64>,
    /// Every metric `metrics` names that is understood, in the order given (the query's metric
    /// is the first).
    pub metrics: Vec<Metric>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_lowercase()),
        _ => None,
    }
}

/// `6_months`, `6 months`, `6m`, `90d`, `2_quarters`, `1y`, or a number of months.
fn horizon(v: &Value) -> Option<u32> {
    if let Some(n) = v.as_f64() {
        return (n > 0.0 && n <= 120.0).then_some(n.round() as u32);
    }
    let s = text(v)?.replace(['_', '-'], " ");
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    let n: u32 = digits.parse().ok()?;
    let unit = s[digits.len()..].trim();
    let months = match unit.trim_end_matches('s') {
        "m" | "mo" | "month" => n,
        "y" | "yr" | "year" => n * 12,
        "q" | "quarter" => n * 3,
        "w" | "week" => n.div_ceil(4),
        "d" | "day" => n.div_ceil(30),
        _ => return None,
    };
    (months > 0 && months <= 120).then_some(months)
}

fn metric_name(s: &str) -> Option<Metric> {
    Some(match s.replace(['-', ' '], "_").as_str() {
        "response_time" | "latency" | "latency_p95" | "p95" => Metric::Latency(Stat::P95),
        "latency_p50" | "median_latency" => Metric::Latency(Stat::P50),
        "latency_p99" | "p99" => Metric::Latency(Stat::P99),
        "ttft" | "time_to_first_token" => Metric::Ttft(Stat::P95),
        "error_rate" | "errors" | "failure_rate" => Metric::ErrorRate,
        "cost" | "spend" | "costs" => Metric::Spend,
        "tokens" | "token_usage" | "total_tokens" => Metric::TotalTokens,
        "requests" | "throughput" | "request_count" | "volume" => Metric::Requests,
        "cache_hit_rate" | "cache_hit_share" => Metric::CacheHitShare,
        "cost_per_request" => Metric::CostPerRequest,
        _ => return None,
    })
}

/// Maps a structured task onto a typed query. `agent` is the canonical agent name (`supervisor`,
/// `data`, `optimization`, ...) or an alias.
pub fn understand_task(
    agent: &str,
    fields: &Map<String, Value>,
    vocab: &Vocabulary,
    today: NaiveDate,
) -> Task {
    // Time first, so the rest is read over the right period: reuse the question reader on the
    // time words ("last_7_days" → "last 7 days").
    let mut used: Vec<String> = Vec::new();
    let mut unused: Vec<String> = Vec::new();
    let mut time_words = String::new();
    let mut explicit: Option<Period> = None;
    for key in ["time_range", "timeframe", "period", "window", "date_range"] {
        let Some(v) = fields.get(key) else { continue };
        used.push(key.to_string());
        match v {
            Value::Object(o) => {
                let day = |k: &str| {
                    o.get(k).and_then(Value::as_str).and_then(|s| {
                        NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok()
                    })
                };
                if let (Some(a), Some(b)) = (
                    day("start").or_else(|| day("from")),
                    day("end").or_else(|| day("to")),
                ) {
                    explicit = Some(Period::new(a.min(b), a.max(b)));
                }
            }
            Value::String(s) => {
                let s = s.replace(['_', '-'], " ");
                // "7d", "30d", "2w" as the protocol's timeframe.
                let compact = s.trim().to_lowercase();
                let digits: String = compact.chars().take_while(char::is_ascii_digit).collect();
                let spelled = match compact.get(digits.len()..) {
                    Some("d") if !digits.is_empty() => format!("last {digits} days"),
                    Some("w") if !digits.is_empty() => format!("last {digits} weeks"),
                    Some("m") if !digits.is_empty() => format!("last {digits} months"),
                    Some("h") if !digits.is_empty() => "today".to_string(),
                    _ => compact.clone(),
                };
                time_words = spelled;
            }
            _ => {}
        }
    }

    // What the task is about.
    let agent = agent.trim().to_lowercase();
    let mut intent: Option<Intent> = None;
    let mut metric: Option<Metric> = None;
    let mut shape = Shape::Figure;
    let mut what = String::new();
    for key in ["optimization_target", "goal", "objective", "target"] {
        if let Some(t) = fields.get(key).and_then(text) {
            used.push(key.to_string());
            if t.contains("cost") || t.contains("spend") || t.contains("sav") {
                intent = Some(Intent::Review(ReviewFocus::Cost));
                what = format!("{} ({})", "cost optimization", t.replace('_', " "));
            } else if t.contains("latency") || t.contains("perf") || t.contains("speed") {
                intent = Some(Intent::Lookup);
                metric = Some(Metric::Latency(Stat::P95));
                shape = Shape::Breakdown {
                    by: GroupBy::Dimension(Dimension::Model),
                };
                what = "performance: p95 latency by model".to_string();
            } else if t.contains("capacity") || t.contains("throughput") || t.contains("scal") {
                intent = Some(Intent::Review(ReviewFocus::Capacity));
                what = "capacity".to_string();
            } else {
                intent = Some(Intent::Review(ReviewFocus::Cost));
                what = format!("optimization ({})", t.replace('_', " "));
            }
        }
    }
    if let Some(t) = fields.get("analysis_type").and_then(text) {
        used.push("analysis_type".to_string());
        let label = t.replace('_', " ");
        if t.contains("anomal") || t.contains("spike") || t.contains("outlier") {
            intent = Some(Intent::Review(ReviewFocus::Anomaly));
        } else if t.contains("capacity") || t.contains("forecast") || t.contains("planning") {
            intent = Some(Intent::Review(ReviewFocus::Capacity));
        } else if t.contains("optimi") || t.contains("saving") {
            intent = Some(Intent::Review(ReviewFocus::Cost));
        } else if t.contains("perf") || t.contains("latency") {
            intent = Some(Intent::Lookup);
            metric = Some(Metric::Latency(Stat::P95));
            shape = Shape::Breakdown {
                by: GroupBy::Dimension(Dimension::Model),
            };
        } else if t.contains("trend") {
            intent = Some(Intent::Lookup);
            shape = Shape::Trend {
                every: TimeGrain::Day,
            };
        } else if t.contains("usage") {
            intent = Some(Intent::Lookup);
            metric = Some(Metric::Requests);
            shape = Shape::Breakdown {
                by: GroupBy::Dimension(Dimension::Feature),
            };
        } else if t.contains("cost") || t.contains("spend") {
            intent = Some(Intent::Lookup);
            shape = Shape::Breakdown {
                by: GroupBy::Dimension(Dimension::Model),
            };
        } else {
            intent = Some(Intent::Review(ReviewFocus::Overview));
        }
        what = label;
    }
    if let Some(t) = fields.get("task").and_then(text) {
        used.push("task".to_string());
        let words = t.replace(['_', '-'], " ");
        if intent.is_none() {
            let q = understand(&words, vocab, today);
            intent = Some(match q.intent {
                Intent::Lookup | Intent::Greeting | Intent::OutOfScope | Intent::Unanswerable => {
                    Intent::Review(ReviewFocus::Overview)
                }
                other => other,
            });
        }
        if what.is_empty() {
            what = words;
        }
    }
    let stated = fields
        .get("monthly_spend")
        .map(|_| "monthly_spend")
        .or_else(|| fields.get("current_spend").map(|_| "current_spend"));
    let mut stated_monthly_spend = stated.and_then(|k| fields.get(k)).and_then(Value::as_f64);
    if let Some(k) = stated {
        used.push(k.to_string());
    }
    let mut horizon_months = None;
    if let Some(v) = fields.get("planning_horizon") {
        used.push("planning_horizon".to_string());
        horizon_months = horizon(v);
    }
    let growth = fields
        .get("growth_projection")
        .and_then(Value::as_f64)
        .filter(|g| g.is_finite() && *g > 0.0);
    if fields.contains_key("growth_projection") {
        used.push("growth_projection".to_string());
    }
    if horizon_months.is_some() || growth.is_some() {
        if intent.is_none() || matches!(intent, Some(Intent::Lookup)) {
            intent = Some(Intent::Review(ReviewFocus::Capacity));
        }
        if what.is_empty() {
            what = "capacity forecast".to_string();
        }
    }
    let mut metrics: Vec<Metric> = Vec::new();
    if let Some(Value::Array(ms)) = fields.get("metrics") {
        used.push("metrics".to_string());
        for m in ms.iter().filter_map(text).filter_map(|m| metric_name(&m)) {
            if !metrics.contains(&m) {
                metrics.push(m);
            }
        }
        if metric.is_none() {
            metric = metrics.first().copied();
        }
    }
    // Filters, resolved as a question's names would be.
    let mut conditions: Vec<Condition> = Vec::new();
    let mut name_words: Vec<String> = Vec::new();
    for key in ["team", "model", "feature", "project", "user", "provider"] {
        if let Some(v) = fields.get(key).and_then(Value::as_str) {
            used.push(key.to_string());
            name_words.push(format!("{key} {v}"));
        }
    }
    let names_query =
        (!name_words.is_empty()).then(|| understand(&name_words.join(" and "), vocab, today));
    if let Some(q) = &names_query {
        conditions = q.spec.conditions.clone();
    }
    // Nested objects: their known fields are used, the rest named.
    for (key, v) in fields {
        if used.contains(key) {
            continue;
        }
        match (key.as_str(), v) {
            ("current_metrics", Value::Object(o)) => {
                for (k, inner) in o {
                    if matches!(k.as_str(), "monthly_spend" | "current_spend" | "spend")
                        && inner.as_f64().is_some()
                    {
                        stated_monthly_spend = inner.as_f64();
                        used.push(format!("current_metrics.{k}"));
                    } else {
                        unused.push(format!("current_metrics.{k}"));
                    }
                }
            }
            ("requirements", Value::Object(o)) => {
                for k in o.keys() {
                    used.push(format!("requirements.{k}"));
                }
                if intent.is_none() {
                    intent = Some(Intent::Review(ReviewFocus::Overview));
                }
            }
            (_, Value::Object(o)) => {
                for k in o.keys() {
                    unused.push(format!("{key}.{k}"));
                }
            }
            _ => unused.push(key.clone()),
        }
    }
    // The agent addressed decides what nothing else did.
    let intent = intent.unwrap_or(match agent.as_str() {
        "optimization" | "optimization_agent" | "actions" => Intent::Review(ReviewFocus::Cost),
        "data" | "unified_data_agent" | "data_agent" => Intent::Lookup,
        _ => Intent::Review(ReviewFocus::Overview),
    });
    if what.is_empty() {
        what = match intent {
            Intent::Lookup => "spend".to_string(),
            Intent::Review(f) => format!("{} review", f.as_str()),
            other => other.name().to_string(),
        };
    }

    let base = understand(
        if time_words.is_empty() {
            "spend"
        } else {
            &time_words
        },
        vocab,
        today,
    );
    let mut spec = base.spec.clone();
    if let Some(p) = explicit {
        spec.period = p;
    }
    spec.metric = metric.unwrap_or(Metric::Spend);
    spec.conditions = conditions;
    spec.shape = if intent == Intent::Lookup {
        shape
    } else {
        Shape::Figure
    };
    let mut assumed = base.assumed.clone();
    if time_words.is_empty() && explicit.is_none() {
        assumed.retain(|a| !a.starts_with("No period"));
        assumed.push(format!(
            "No time range given: the {DEFAULT_DAYS} days to {}.",
            base.reference_day
        ));
    }

    let agent_label = match agent.as_str() {
        "optimization" | "optimization_agent" => "Optimization",
        "data" | "unified_data_agent" | "data_agent" => "Data",
        "supervisor" | "supervisor_agent" => "Supervisor",
        "triage" | "triage_agent" => "Triage",
        "actions" | "actions_agent" => "Actions",
        "reporting" | "reporting_agent" => "Reporting",
        other => other,
    };
    let mut description = format!("{agent_label} task: {what}");
    if !spec.conditions.is_empty() {
        let c: Vec<String> = spec
            .conditions
            .iter()
            .map(crate::query::condition_text)
            .collect();
        description.push_str(&format!(" for {}", c.join(", ")));
    }
    // Dates only when they mean something: against the data's days, or given by the client.
    let dated = vocab.span().is_some() || explicit.is_some();
    let window = match (time_words.is_empty(), dated) {
        (false, true) => format!("{time_words} ({})", spec.period),
        (false, false) => time_words.clone(),
        (true, true) => spec.period.to_string(),
        (true, false) => String::new(),
    };
    if !window.is_empty() {
        if matches!(intent, Intent::Review(ReviewFocus::Capacity)) && !time_words.is_empty() {
            description.push_str(&format!(", history {window}"));
        } else {
            description.push_str(&format!(", {window}"));
        }
    }
    if matches!(spec.metric, Metric::Spend) || metric.is_none() {
    } else {
        description.push_str(&format!(", metric {}", spec.metric.label()));
    }
    if let Some(h) = horizon_months {
        description.push_str(&format!(", forecast {h} months ahead"));
    }
    if let Some(g) = growth {
        description.push_str(&format!(" at {g}x growth"));
    }
    if let Some(s) = stated_monthly_spend {
        description.push_str(&format!(
            ", stated monthly spend {} to compare with the data",
            agentwire_analytics::format::usd(s)
        ));
    }
    let mut unknown = names_query.map(|q| q.unknown).unwrap_or_default();
    unknown.sort_by(|a, b| a.text.cmp(&b.text));
    let query = Query {
        question: description.clone(),
        intent,
        spec,
        change: None,
        resolved: Vec::new(),
        unknown,
        assumed,
        reference_day: base.reference_day,
    };
    used.sort();
    used.dedup();
    unused.sort();
    Task {
        description,
        query,
        used,
        unused,
        stated_monthly_spend,
        horizon_months,
        growth,
        metrics,
    }
}
