//! Pass/fail thresholds over the measured metrics, in k6's grammar.
//!
//! A threshold names a metric (optionally with tags) and a list of expressions:
//!
//! ```toml
//! [thresholds]
//! ttfe = ["p(95)<15000"]
//! quality = ["avg>0.7"]
//! "quality{scenario:capacity_planning}" = ["min>=0.6"]
//! isolation_leaks = ["count==0"]
//! ```
//!
//! Expression grammar (whitespace allowed between tokens):
//!
//! ```text
//! expr       = aggregate op number
//! aggregate  = "avg" | "min" | "max" | "med" | "count" | "rate" | "p(" number ")"
//! op         = "<" | "<=" | ">" | ">=" | "==" | "===" | "!="
//! metric_key = name [ "{" tag ":" value { "," tag ":" value } "}" ]
//! ```
//!
//! Trends take `avg`, `min`, `max`, `med`, `p(N)` and `count`; counters take `count`; rates take
//! `rate`. A threshold on a metric that got no data is reported as `no data`, never as a pass.
//!
//! What it must not do: accept what it cannot judge. Unknown metrics, aggregates that do not fit
//! the metric's kind, and unparsable numbers are [`ThresholdError`]s at load time (exit code 2),
//! because a silently ignored threshold is a check that cannot fail.

use crate::metrics::{self, MetricKind, MetricSet, Tags};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Why a threshold or threshold file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    #[error("threshold {expr:?}: {reason}")]
    Expression { expr: String, reason: String },
    #[error("metric {key:?}: {reason}")]
    Metric { key: String, reason: String },
    #[error("threshold file {path}: {reason}")]
    File { path: String, reason: String },
}

/// How values are summarised before comparing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregate {
    Avg,
    Min,
    Max,
    Med,
    Count,
    Rate,
    /// A percentile in (0, 100].
    Percentile(f64),
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Avg => f.write_str("avg"),
            Self::Min => f.write_str("min"),
            Self::Max => f.write_str("max"),
            Self::Med => f.write_str("med"),
            Self::Count => f.write_str("count"),
            Self::Rate => f.write_str("rate"),
            Self::Percentile(p) => write!(f, "p({p})"),
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Self::Lt => left < right,
            Self::Le => left <= right,
            Self::Gt => left > right,
            Self::Ge => left >= right,
            Self::Eq => left == right,
            Self::Ne => left != right,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }
}

/// One parsed expression, e.g. `p(95)<15000`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub aggregate: Aggregate,
    pub op: Op,
    pub value: f64,
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.aggregate, self.op.as_str(), self.value)
    }
}

/// A tiny cursor over the expression text.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn skip_space(&mut self) {
        while self.text[self.at..].starts_with(char::is_whitespace) {
            let step = self.text[self.at..]
                .chars()
                .next()
                .map_or(1, char::len_utf8);
            self.at += step;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn number(&mut self) -> Option<f64> {
        self.skip_space();
        let rest = &self.text[self.at..];
        let len = rest
            .char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_digit()
                    || *c == '.'
                    || *c == '_'
                    || ((*c == '-' || *c == '+') && *i == 0)
                    || *c == 'e'
                    || *c == 'E'
            })
            .map(|(i, c)| i + c.len_utf8())
            .last()?;
        let cleaned: String = rest[..len].chars().filter(|c| *c != '_').collect();
        let value: f64 = cleaned.parse().ok()?;
        value.is_finite().then(|| {
            self.at += len;
            value
        })
    }

    fn done(&mut self) -> bool {
        self.skip_space();
        self.at >= self.text.len()
    }
}

impl Expr {
    /// Parses `aggregate op number`.
    ///
    /// # Errors
    /// [`ThresholdError::Expression`] naming what was expected where.
    pub fn parse(text: &str) -> Result<Expr, ThresholdError> {
        let fail = |reason: &str| ThresholdError::Expression {
            expr: text.to_owned(),
            reason: reason.to_owned(),
        };
        let mut cur = Cursor { text, at: 0 };
        let aggregate = if cur.eat("p(") {
            let p = cur
                .number()
                .ok_or_else(|| fail("expected a percentile number after `p(`"))?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(fail("a percentile must be in (0, 100]"));
            }
            if !cur.eat(")") {
                return Err(fail("expected `)` after the percentile"));
            }
            Aggregate::Percentile(p)
        } else {
            let names = [
                ("avg", Aggregate::Avg),
                ("min", Aggregate::Min),
                ("max", Aggregate::Max),
                ("med", Aggregate::Med),
                ("count", Aggregate::Count),
                ("rate", Aggregate::Rate),
            ];
            names
                .iter()
                .find(|(name, _)| cur.eat(name))
                .map(|(_, agg)| *agg)
                .ok_or_else(|| {
                    fail("expected an aggregate: avg, min, max, med, count, rate or p(N)")
                })?
        };
        // Longest operators first so `<=` is not read as `<`.
        let ops = [
            ("===", Op::Eq),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let op = ops
            .iter()
            .find(|(token, _)| cur.eat(token))
            .map(|(_, op)| *op)
            .ok_or_else(|| fail("expected a comparison: <, <=, >, >=, == or !="))?;
        let value = cur
            .number()
            .ok_or_else(|| fail("expected a number after the comparison"))?;
        if !cur.done() {
            return Err(fail("unexpected text after the number"));
        }
        Ok(Expr {
            aggregate,
            op,
            value,
        })
    }
}

/// A metric name with an optional tag selector: `quality{scenario:cost_optimization}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricKey {
    pub name: String,
    pub tags: Tags,
}

impl fmt::Display for MetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.tags.is_empty() {
            let inner: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            write!(f, "{{{}}}", inner.join(","))?;
        }
        Ok(())
    }
}

impl MetricKey {
    /// Parses `name` or `name{key:value,...}` and checks the name against the catalogue.
    ///
    /// # Errors
    /// [`ThresholdError::Metric`] for an unknown name or a malformed selector.
    pub fn parse(text: &str) -> Result<MetricKey, ThresholdError> {
        let text = text.trim();
        let fail = |reason: String| ThresholdError::Metric {
            key: text.to_owned(),
            reason,
        };
        let (name, tags) = match text.split_once('{') {
            None => (text, Tags::new()),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .ok_or_else(|| fail("a tag selector must end with `}`".to_owned()))?;
                let mut tags = Tags::new();
                for pair in inner.split(',') {
                    let (key, value) = pair
                        .split_once(':')
                        .ok_or_else(|| fail(format!("tag {pair:?} must be key:value")))?;
                    let (key, value) = (key.trim(), value.trim());
                    if key.is_empty() || value.is_empty() {
                        return Err(fail(format!("tag {pair:?} must be key:value")));
                    }
                    tags.push((key.to_owned(), value.to_owned()));
                }
                (name.trim(), tags)
            }
        };
        if metrics::info(name).is_none() {
            let known: Vec<&str> = metrics::CATALOGUE.iter().map(|m| m.name).collect();
            return Err(fail(format!("unknown metric; known: {}", known.join(", "))));
        }
        Ok(MetricKey {
            name: name.to_owned(),
            tags,
        })
    }

    fn kind(&self) -> MetricKind {
        metrics::info(&self.name).map_or(MetricKind::Trend, |m| m.kind)
    }
}

fn fits(kind: MetricKind, aggregate: Aggregate) -> bool {
    match kind {
        MetricKind::Trend => !matches!(aggregate, Aggregate::Rate),
        MetricKind::Counter => matches!(aggregate, Aggregate::Count),
        MetricKind::Rate => matches!(aggregate, Aggregate::Rate),
    }
}

/// The thresholds in force: metric key -> expressions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thresholds {
    pub rules: BTreeMap<MetricKey, Vec<Expr>>,
}

/// The seed suite's numbers: connection within 10 s, first event within 15 s, completion within
/// 120 s, quality 0.7; and no isolation leak, ever.
pub const CHECK_DEFAULTS: [(&str, &str); 5] = [
    ("connect", "p(95)<10000"),
    ("ttfe", "p(95)<15000"),
    ("ttc", "p(95)<120000"),
    ("quality", "avg>0.7"),
    ("isolation_leaks", "count==0"),
];

/// `load`'s defaults: the seed numbers, no leak, no grammar violation.
pub const LOAD_DEFAULTS: [(&str, &str); 5] = [
    ("connect", "p(95)<10000"),
    ("ttfe", "p(95)<15000"),
    ("ttc", "p(95)<120000"),
    ("isolation_leaks", "count==0"),
    ("grammar_violations", "count==0"),
];

/// The outcome of one expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdVerdict {
    Pass,
    Breached,
    /// The metric has no values (nothing was measured).
    NoData,
}

/// One expression judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdResult {
    pub metric: String,
    pub expression: String,
    pub observed: Option<f64>,
    pub verdict: ThresholdVerdict,
}

impl ThresholdVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Breached => "breached",
            Self::NoData => "no data",
        }
    }
}

impl ThresholdResult {
    /// One line of a terminal summary: `metric expression`, the verdict as given (plain or
    /// coloured), and the value observed.
    pub fn summary_line(&self, verdict: &str) -> String {
        format!(
            "  {:<40} {:<9} observed {}",
            format!("{} {}", self.metric, self.expression),
            verdict,
            self.observed
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
        )
    }
}

impl Thresholds {
    /// Builds thresholds from `(metric key, expression)` pairs.
    ///
    /// # Errors
    /// The first [`ThresholdError`] among them.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ThresholdError> {
        let mut out = Thresholds::default();
        for (key, expr) in pairs {
            out.push(MetricKey::parse(key)?, Expr::parse(expr)?)?;
        }
        Ok(out)
    }

    fn push(&mut self, key: MetricKey, expr: Expr) -> Result<(), ThresholdError> {
        if !fits(key.kind(), expr.aggregate) {
            return Err(ThresholdError::Expression {
                expr: expr.to_string(),
                reason: format!(
                    "{} is a {:?} metric; it takes {}",
                    key.name,
                    key.kind(),
                    match key.kind() {
                        MetricKind::Trend => "avg, min, max, med, p(N) or count",
                        MetricKind::Counter => "count",
                        MetricKind::Rate => "rate",
                    }
                ),
            });
        }
        self.rules.entry(key).or_default().push(expr);
        Ok(())
    }

    /// Replaces, per metric key, the rules here with those of `other` (a file over defaults, flags
    /// over a file).
    pub fn override_with(&mut self, other: Thresholds) {
        for (key, exprs) in other.rules {
            self.rules.insert(key, exprs);
        }
    }

    /// Reads the `[thresholds]` table of a TOML file.
    ///
    /// # Errors
    /// [`ThresholdError::File`] when it cannot be read or is not TOML of that shape, and the errors
    /// of its keys and expressions.
    pub fn from_toml_file(path: &Path) -> Result<Self, ThresholdError> {
        let text = std::fs::read_to_string(path).map_err(|err| ThresholdError::File {
            path: path.display().to_string(),
            reason: err.to_string(),
        })?;
        Self::from_toml(&text).map_err(|err| match err {
            ThresholdError::File { reason, .. } => ThresholdError::File {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Reads the `[thresholds]` table of a TOML document (other tables are left to their readers).
    ///
    /// # Errors
    /// As [`Thresholds::from_toml_file`].
    pub fn from_toml(text: &str) -> Result<Self, ThresholdError> {
        let file_error = |reason: String| ThresholdError::File {
            path: "<text>".to_owned(),
            reason,
        };
        let document: toml::Table = text
            .parse()
            .map_err(|err: toml::de::Error| file_error(err.to_string().trim_end().to_owned()))?;
        let Some(table) = document.get("thresholds") else {
            return Err(file_error(
                "no [thresholds] table (e.g. `[thresholds]` then `ttfe = [\"p(95)<15000\"]`)"
                    .to_owned(),
            ));
        };
        let table = table
            .as_table()
            .ok_or_else(|| file_error("`thresholds` must be a table".to_owned()))?;
        let mut out = Thresholds::default();
        for (key, value) in table {
            let exprs: Vec<&str> = match value {
                toml::Value::String(one) => vec![one.as_str()],
                toml::Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str().ok_or_else(|| {
                            file_error(format!("thresholds.{key}: every item must be a string"))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(file_error(format!(
                        "thresholds.{key} must be a list of strings such as [\"p(95)<15000\"]"
                    )));
                }
            };
            let parsed_key = MetricKey::parse(key)?;
            // A key repeated in another spelling (`quality` and `quality{}`) merges.
            out.rules.entry(parsed_key.clone()).or_default();
            for expr in exprs {
                out.push(parsed_key.clone(), Expr::parse(expr)?)?;
            }
        }
        Ok(out)
    }

    /// Parses a `--threshold` flag: `metric=expr` (several expressions separated by `;`).
    ///
    /// # Errors
    /// As [`Thresholds::from_pairs`], or a message when there is no `=`.
    pub fn from_flag(flag: &str) -> Result<Self, ThresholdError> {
        let (key, exprs) = flag
            .split_once('=')
            .filter(|(key, _)| !key.contains(['<', '>', '!']))
            .ok_or_else(|| ThresholdError::Expression {
                expr: flag.to_owned(),
                reason: "a --threshold is metric=expression, e.g. ttfe=p(95)<15000".to_owned(),
            })?;
        let mut out = Thresholds::default();
        let key = MetricKey::parse(key)?;
        for expr in exprs.split(';') {
            out.push(key.clone(), Expr::parse(expr)?)?;
        }
        Ok(out)
    }

    /// Judges every expression against the measurements.
    pub fn evaluate(&self, metrics: &MetricSet) -> Vec<ThresholdResult> {
        let mut out = Vec::new();
        for (key, exprs) in &self.rules {
            for expr in exprs {
                let observed = observe(metrics, key, expr.aggregate);
                let verdict = match observed {
                    None => ThresholdVerdict::NoData,
                    Some(value) if expr.op.holds(value, expr.value) => ThresholdVerdict::Pass,
                    Some(_) => ThresholdVerdict::Breached,
                };
                out.push(ThresholdResult {
                    metric: key.to_string(),
                    expression: expr.to_string(),
                    observed,
                    verdict,
                });
            }
        }
        out
    }
}

fn observe(metrics: &MetricSet, key: &MetricKey, aggregate: Aggregate) -> Option<f64> {
    match key.kind() {
        MetricKind::Trend => {
            let trend = metrics.trend(&key.name, &key.tags)?;
            match aggregate {
                Aggregate::Avg => trend.mean(),
                Aggregate::Min => trend.min(),
                Aggregate::Max => trend.max(),
                Aggregate::Med => trend.percentile(50.0),
                Aggregate::Percentile(p) => trend.percentile(p),
                Aggregate::Count => Some(trend.count() as f64),
                Aggregate::Rate => None,
            }
        }
        MetricKind::Counter => metrics.count(&key.name, &key.tags),
        MetricKind::Rate => metrics
            .rate(&key.name, &key.tags)
            .map(|(hits, total)| hits as f64 / total as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tags;
    use proptest::prelude::*;

    #[test]
    fn parses_the_k6_forms() {
        let e = Expr::parse("p(95)<15000").unwrap();
        assert_eq!(e.aggregate, Aggregate::Percentile(95.0));
        assert_eq!(e.op, Op::Lt);
        assert_eq!(e.value, 15000.0);
        assert_eq!(Expr::parse(" avg > 0.7 ").unwrap().op, Op::Gt);
        assert_eq!(Expr::parse("count==0").unwrap().op, Op::Eq);
        assert_eq!(Expr::parse("count===0").unwrap().op, Op::Eq);
        assert_eq!(Expr::parse("p(99.9)<=1_000").unwrap().value, 1000.0);
        assert_eq!(
            Expr::parse("rate>=0.99").unwrap().aggregate,
            Aggregate::Rate
        );
        assert_eq!(Expr::parse("med!=3").unwrap().op, Op::Ne);
    }

    #[test]
    fn refuses_what_it_cannot_judge() {
        for bad in [
            "",
            "p95<1",
            "p(0)<1",
            "p(101)<1",
            "avg 0.7",
            "avg>",
            "avg>abc",
            "avg>1 extra",
            "mean>1",
            "p(95<1",
        ] {
            assert!(Expr::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(MetricKey::parse("latency").is_err());
        assert!(MetricKey::parse("quality{scenario}").is_err());
        assert!(MetricKey::parse("quality{scenario:x").is_err());
        // A counter takes only count, a rate only rate.
        assert!(Thresholds::from_pairs([("isolation_leaks", "avg<1")]).is_err());
        assert!(Thresholds::from_pairs([("run_success", "count>1")]).is_err());
        assert!(Thresholds::from_pairs([("ttfe", "rate<1")]).is_err());
    }

    #[test]
    fn metric_keys_take_tag_selectors() {
        let key = MetricKey::parse("quality{scenario:cost_optimization}").unwrap();
        assert_eq!(key.name, "quality");
        assert_eq!(key.tags, tags(&[("scenario", "cost_optimization")]));
        assert_eq!(key.to_string(), "quality{scenario:cost_optimization}");
    }

    #[test]
    fn reads_a_toml_file_and_flags_override_per_metric() {
        let text = r#"
            [thresholds]
            ttfe = ["p(95)<15000", "max<20000"]
            "quality{scenario:capacity_planning}" = ["min>=0.6"]
            isolation_leaks = "count==0"
        "#;
        let mut t = Thresholds::from_pairs(CHECK_DEFAULTS).unwrap();
        t.override_with(Thresholds::from_toml(text).unwrap());
        let ttfe = MetricKey::parse("ttfe").unwrap();
        assert_eq!(t.rules[&ttfe].len(), 2);
        t.override_with(Thresholds::from_flag("ttfe=p(50)<100;max<200").unwrap());
        assert_eq!(t.rules[&ttfe][0].to_string(), "p(50)<100");
        assert!(Thresholds::from_toml("[other]\nx=1").is_err());
        assert!(Thresholds::from_toml("[thresholds]\nttfe = [1]").is_err());
        assert!(Thresholds::from_toml("[thresholds]\nnope = [\"avg<1\"]").is_err());
        assert!(Thresholds::from_toml("not toml at all [").is_err());
        assert!(Thresholds::from_flag("ttfe<5").is_err());
    }

    #[test]
    fn evaluation_passes_breaches_and_says_when_there_is_no_data() {
        let mut m = MetricSet::new();
        for v in [100.0, 200.0, 300.0] {
            m.record("ttfe", v, &Tags::new());
        }
        m.record("quality", 0.9, &tags(&[("scenario", "a")]));
        m.record("quality", 0.4, &tags(&[("scenario", "b")]));
        m.observe("isolation_leaks", &Tags::new());
        let t = Thresholds::from_pairs([
            ("ttfe", "max<250"),
            ("ttfe", "avg<250"),
            ("quality{scenario:a}", "avg>0.7"),
            ("quality{scenario:b}", "avg>0.7"),
            ("isolation_leaks", "count==0"),
            ("grammar_violations", "count==0"),
        ])
        .unwrap();
        let results = t.evaluate(&m);
        let verdict = |metric: &str, expr: &str| {
            results
                .iter()
                .find(|r| r.metric == metric && r.expression == expr)
                .unwrap()
                .verdict
        };
        assert_eq!(verdict("ttfe", "max<250"), ThresholdVerdict::Breached);
        assert_eq!(verdict("ttfe", "avg<250"), ThresholdVerdict::Pass);
        assert_eq!(
            verdict("quality{scenario:a}", "avg>0.7"),
            ThresholdVerdict::Pass
        );
        assert_eq!(
            verdict("quality{scenario:b}", "avg>0.7"),
            ThresholdVerdict::Breached
        );
        assert_eq!(
            verdict("isolation_leaks", "count==0"),
            ThresholdVerdict::Pass
        );
        assert_eq!(
            verdict("grammar_violations", "count==0"),
            ThresholdVerdict::NoData
        );
    }

    fn aggregate() -> impl Strategy<Value = Aggregate> {
        prop_oneof![
            Just(Aggregate::Avg),
            Just(Aggregate::Min),
            Just(Aggregate::Max),
            Just(Aggregate::Med),
            Just(Aggregate::Count),
            Just(Aggregate::Rate),
            (1u32..=1000).prop_map(|p| Aggregate::Percentile(f64::from(p) / 10.0)),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Lt),
            Just(Op::Le),
            Just(Op::Gt),
            Just(Op::Ge),
            Just(Op::Eq),
            Just(Op::Ne)
        ]
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(agg in aggregate(), op in op(), value in -1e9f64..1e9) {
            let expr = Expr { aggregate: agg, op, value };
            prop_assert_eq!(Expr::parse(&expr.to_string()).unwrap(), expr);
        }

        #[test]
        fn the_parser_never_panics(text in "\\PC{0,40}") {
            let _ = Expr::parse(&text);
            let _ = MetricKey::parse(&text);
            let _ = Thresholds::from_flag(&text);
        }

        #[test]
        fn near_misses_are_errors_not_guesses(prefix in "[a-z]{1,6}", value in 0u32..100000) {
            let text = format!("{prefix}<{value}");
            let known = ["avg", "min", "max", "med", "count", "rate"];
            prop_assert_eq!(Expr::parse(&text).is_ok(), known.contains(&prefix.as_str()));
        }
    }
}
