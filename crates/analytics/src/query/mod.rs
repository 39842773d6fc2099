//! Typed queries over usage records: a metric, filters, a period and a shape (one figure, a
//! breakdown, a ranking, a comparison of two periods or groups, a trend), and their evaluation.
//!
//! This is the maths behind a person's question once the language layer (`agentwire-question`)
//! has turned it into a [`QuerySpec`]. It must not parse text or guess: names in a spec are the
//! tenant's own values, compared case-insensitively, and every figure comes from the records and
//! the price table. Days are UTC; periods are whole days, both ends included.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::record::UsageRecord;

mod eval;

pub use eval::{evaluate, evaluate_cancellable, is_success_status};

/// How latency-like values are summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    Mean,
    P50,
    P90,
    P95,
    P99,
}

impl Stat {
    const ALL: [(Stat, &'static str); 5] = [
        (Stat::Mean, "mean"),
        (Stat::P50, "p50"),
        (Stat::P90, "p90"),
        (Stat::P95, "p95"),
        (Stat::P99, "p99"),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("p50", |(_, n)| n)
    }

    fn percentile(self) -> Option<f64> {
        match self {
            Stat::Mean => None,
            Stat::P50 => Some(50.0),
            Stat::P90 => Some(90.0),
            Stat::P95 => Some(95.0),
            Stat::P99 => Some(99.0),
        }
    }
}

/// What is measured. Names (`as_str`) are the ones the corpus and the wire use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Metric {
    /// Dollars: billed cost when a record has one, else list price.
    Spend,
    /// Spend over the days of the period that lie within the data's span.
    SpendPerDay,
    Requests,
    InputTokens,
    OutputTokens,
    /// Input tokens read from the prompt cache.
    CachedTokens,
    TotalTokens,
    InputTokensPerRequest,
    OutputTokensPerRequest,
    TokensPerRequest,
    CostPerRequest,
    /// Request latency in ms.
    Latency(Stat),
    /// Time to first token in ms.
    Ttft(Stat),
    /// Requests whose status is not a success, over requests that have a status.
    ErrorRate,
    /// Cached input tokens over input tokens.
    CacheHitShare,
    /// The selection's spend over that of the whole (`QuerySpec::share_of`).
    ShareOfSpend,
    ShareOfRequests,
    ShareOfTokens,
}

const SIMPLE_METRICS: [(Metric, &str); 16] = [
    (Metric::Spend, "spend"),
    (Metric::SpendPerDay, "spend_per_day"),
    (Metric::Requests, "requests"),
    (Metric::InputTokens, "input_tokens"),
    (Metric::OutputTokens, "output_tokens"),
    (Metric::CachedTokens, "cached_tokens"),
    (Metric::TotalTokens, "total_tokens"),
    (Metric::InputTokensPerRequest, "input_tokens_per_request"),
    (Metric::OutputTokensPerRequest, "output_tokens_per_request"),
    (Metric::TokensPerRequest, "tokens_per_request"),
    (Metric::CostPerRequest, "cost_per_request"),
    (Metric::ErrorRate, "error_rate"),
    (Metric::CacheHitShare, "cache_hit_share"),
    (Metric::ShareOfSpend, "share_of_spend"),
    (Metric::ShareOfRequests, "share_of_requests"),
    (Metric::ShareOfTokens, "share_of_tokens"),
];

impl Metric {
    pub fn name(self) -> String {
        match self {
            Metric::Latency(s) => format!("latency_{}", s.as_str()),
            Metric::Ttft(s) => format!("ttft_{}", s.as_str()),
            other => SIMPLE_METRICS
                .iter()
                .find(|(m, _)| *m == other)
                .map_or_else(String::new, |(_, n)| (*n).to_string()),
        }
    }

    /// How a person reads it: "spend", "p95 latency", "output tokens per request".
    pub fn label(self) -> String {
        match self {
            Metric::Latency(Stat::Mean) => "average latency".to_string(),
            Metric::Latency(s) => format!("{} latency", s.as_str()),
            Metric::Ttft(Stat::Mean) => "average time to first token".to_string(),
            Metric::Ttft(s) => format!("{} time to first token", s.as_str()),
            Metric::SpendPerDay => "average daily spend".to_string(),
            other => other.name().replace('_', " "),
        }
    }

    /// Dollars (formatted as money).
    pub fn is_money(self) -> bool {
        matches!(
            self,
            Metric::Spend | Metric::SpendPerDay | Metric::CostPerRequest
        )
    }

    /// A fraction 0..=1 (formatted as a percentage).
    pub fn is_fraction(self) -> bool {
        matches!(
            self,
            Metric::ErrorRate
                | Metric::CacheHitShare
                | Metric::ShareOfSpend
                | Metric::ShareOfRequests
                | Metric::ShareOfTokens
        )
    }

    /// A sum over records (a group without records is 0, not unknown).
    pub fn is_additive(self) -> bool {
        matches!(
            self,
            Metric::Spend
                | Metric::Requests
                | Metric::InputTokens
                | Metric::OutputTokens
                | Metric::CachedTokens
                | Metric::TotalTokens
        )
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Metric, String> {
        if let Some((m, _)) = SIMPLE_METRICS.iter().find(|(_, n)| *n == s) {
            return Ok(*m);
        }
        let stat = |rest: &str| Stat::ALL.iter().find(|(_, n)| *n == rest).map(|(s, _)| *s);
        if let Some(s) = s.strip_prefix("latency_").and_then(stat) {
            return Ok(Metric::Latency(s));
        }
        if let Some(s) = s.strip_prefix("ttft_").and_then(stat) {
            return Ok(Metric::Ttft(s));
        }
        Err(format!("unknown metric `{s}`"))
    }
}

impl TryFrom<String> for Metric {
    type Error = String;
    fn try_from(s: String) -> Result<Metric, String> {
        s.parse()
    }
}

impl From<Metric> for String {
    fn from(m: Metric) -> String {
        m.name()
    }
}

/// A field of the usage record that selects or groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Model,
    Provider,
    Team,
    Feature,
    Project,
    User,
    Status,
}

impl Dimension {
    pub const ALL: [Dimension; 7] = [
        Dimension::Model,
        Dimension::Provider,
        Dimension::Team,
        Dimension::Feature,
        Dimension::Project,
        Dimension::User,
        Dimension::Status,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Model => "model",
            Dimension::Provider => "provider",
            Dimension::Team => "team",
            Dimension::Feature => "feature",
            Dimension::Project => "project",
            Dimension::User => "user",
            Dimension::Status => "status",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The record's value for this dimension, if it has one.
    pub fn value(self, r: &UsageRecord) -> Option<&str> {
        match self {
            Dimension::Model => Some(&r.model),
            Dimension::Provider => Some(&r.provider),
            Dimension::Team => r.team.as_deref(),
            Dimension::Feature => r.feature.as_deref(),
            Dimension::Project => r.project.as_deref(),
            Dimension::User => r.user_id.as_deref(),
            Dimension::Status => r.status.as_deref(),
        }
    }
}

/// Calendar buckets of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeGrain {
    Day,
    /// ISO weeks, Monday first, keyed by their Monday.
    Week,
    Month,
}

impl TimeGrain {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeGrain::Day => "day",
            TimeGrain::Week => "week",
            TimeGrain::Month => "month",
        }
    }

    /// The first day of the bucket holding `d`.
    pub fn bucket_start(self, d: NaiveDate) -> NaiveDate {
        match self {
            TimeGrain::Day => d,
            TimeGrain::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
            TimeGrain::Month => d.with_day(1).unwrap_or(d),
        }
    }

    /// The key of the bucket starting on `start`: `2026-10-05` for days and weeks, `2026-10`.
    pub fn key(self, start: NaiveDate) -> String {
        match self {
            TimeGrain::Month => format!("{:04}-{:02}", start.year(), start.month()),
            _ => start.format("%Y-%m-%d").to_string(),
        }
    }

    fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            TimeGrain::Day => start + Duration::days(1),
            TimeGrain::Week => start + Duration::days(7),
            TimeGrain::Month => start
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(start + Duration::days(31)),
        }
    }
}

/// What rows a breakdown, ranking or comparison has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "by")]
pub enum GroupBy {
    Dimension(Dimension),
    Time(TimeGrain),
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Dimension(d) => d.as_str(),
            GroupBy::Time(g) => g.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<GroupBy> {
        match s {
            "day" => Some(GroupBy::Time(TimeGrain::Day)),
            "week" => Some(GroupBy::Time(TimeGrain::Week)),
            "month" => Some(GroupBy::Time(TimeGrain::Month)),
            other => Dimension::parse(other).map(GroupBy::Dimension),
        }
    }
}

/// Records whose `dimension` is one of `values` (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub dimension: Dimension,
    pub values: Vec<String>,
}

impl Condition {
    pub fn new(dimension: Dimension, values: Vec<String>) -> Condition {
        Condition { dimension, values }
    }

    pub fn matches(&self, r: &UsageRecord) -> bool {
        match self.dimension.value(r) {
            Some(have) => self
                .values
                .iter()
                .any(|want| want.eq_ignore_ascii_case(have)),
            None => false,
        }
    }
}

/// Whole UTC days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl Period {
    pub fn new(first: NaiveDate, last: NaiveDate) -> Period {
        Period { first, last }
    }

    pub fn contains(&self, d: NaiveDate) -> bool {
        self.first <= d && d <= self.last
    }

    pub fn days(&self) -> i64 {
        (self.last - self.first).num_days() + 1
    }

    /// The half-open instant bounds `[start, end)`.
    pub fn bounds(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let at = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        (at(self.first), at(self.last + Duration::days(1)))
    }

    /// The overlap with another period, if any.
    pub fn intersect(&self, other: &Period) -> Option<Period> {
        let p = Period::new(self.first.max(other.first), self.last.min(other.last));
        (p.first <= p.last).then_some(p)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{} to {}", self.first, self.last)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    Most,
    Least,
}

/// One side of a comparison of groups ("Claude" vs "GPT").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub label: String,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// The other period (the query's own period is the one asked about).
    Period(Period),
    /// Two or more groups, in the order named.
    Groups(Vec<Group>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Shape {
    Figure,
    Breakdown {
        by: GroupBy,
    },
    Ranking {
        by: GroupBy,
        order: Order,
        limit: u32,
    },
    Compare {
        against: Comparison,
        by: Option<GroupBy>,
    },
    Trend {
        every: TimeGrain,
    },
}

impl Shape {
    pub fn name(&self) -> &'static str {
        match self {
            Shape::Figure => "figure",
            Shape::Breakdown { .. } => "breakdown",
            Shape::Ranking { .. } => "ranking",
            Shape::Compare { .. } => "compare",
            Shape::Trend { .. } => "trend",
        }
    }
}

/// A query the records can answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuerySpec {
    pub metric: Metric,
    /// All must hold.
    pub conditions: Vec<Condition>,
    pub period: Period,
    pub shape: Shape,
    /// For the share metrics: what the whole is (in the same period); empty is everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub share_of: Vec<Condition>,
}

impl QuerySpec {
    /// Whether a record is selected by the conditions and the period.
    pub fn selects(&self, r: &UsageRecord) -> bool {
        self.period.contains(r.timestamp.date_naive())
            && self.conditions.iter().all(|c| c.matches(r))
    }
}

/// One row of a breakdown, ranking, comparison or series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub key: String,
    /// None when the metric is undefined for the row (no requests, no latency data).
    pub value: Option<f64>,
    /// In a comparison of periods: the value in the other period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<f64>,
    pub requests: u64,
    pub cost_usd: f64,
}

/// The other side of a comparison of periods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Previous {
    pub period: Period,
    pub value: Option<f64>,
    pub requests: u64,
    pub cost_usd: f64,
    /// Percent change from this period to the query's (41.0 is +41%); None without a base.
    pub change_pct: Option<f64>,
}

/// A spec's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResult {
    pub metric: Metric,
    pub period: Period,
    /// The figure for the whole selection.
    pub value: Option<f64>,
    pub rows: Vec<Row>,
    pub previous: Option<Previous>,
    /// What the selection holds (in the query's period).
    pub records: u64,
    pub requests: u64,
    pub cost_usd: f64,
    /// The first and last day of the whole data set (not only the selection), for saying when a
    /// period lies outside it.
    pub data_first: Option<NaiveDate>,
    pub data_last: Option<NaiveDate>,
    /// Selected records priced at $0 because their model has no price.
    pub unpriced_models: Vec<String>,
}
