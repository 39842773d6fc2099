//! Ground-truth lookups: questions about the ground-truth data set ([`crate::truth`]) that have
//! one right figure — a team's spend in a month, the team that spent the most, a model's requests,
//! two weeks compared, two models compared — and the judge that fails an answer that does not
//! state that figure early.
//!
//! Each question names its period in full (a calendar month wholly inside the data, or explicit
//! dates), so no reading of "last month" can make two right answers differ. The expected figures
//! are sums over the rows as generated, at list prices: computed here from the data set, never
//! from a deployment's code. "Early" is the answer's first three sentences (and at most its first
//! 600 characters): a long answer that reaches the figure late, or states it wrongly, fails.
//!
//! What it must not do: accept a shotgun of figures (more than six amounts in the opening), or a
//! figure without the name a ranking asks for.

use crate::text;
use crate::truth::{GroundTruth, Usage};
use chrono::{Datelike, Duration, NaiveDate};

/// How far a stated figure may be from the truth (list prices from another table may differ a
/// little; the data set's figures do not).
pub const TOLERANCE: f64 = 0.01;
/// The opening an answer must state its figure in.
const OPENING_SENTENCES: usize = 3;
const OPENING_CHARS: usize = 600;
/// More distinct amounts than this in the opening is a shotgun, not an answer.
const MAX_OPENING_FIGURES: usize = 6;

/// Dollars or a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Dollars,
    Count,
}

/// One figure the answer must state.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub what: String,
    pub value: f64,
    pub unit: Unit,
    /// A name that must be in the opening too (the team a ranking asks for).
    pub name: Option<String>,
}

/// A question and the figures that answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub question: String,
    pub expected: Vec<Expected>,
}

const MONTHS: [&str; 12] = [
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

/// The last calendar month wholly inside the data: (its name, first day, last day).
fn whole_month(t: &GroundTruth) -> (String, NaiveDate, NaiveDate) {
    let last = t.last.date_naive();
    let this_month = last.with_day(1).unwrap_or(last);
    let end = this_month.pred_opt().unwrap_or(last);
    let start = end.with_day(1).unwrap_or(end);
    let name = format!("{} {}", MONTHS[end.month0() as usize], end.year());
    (name, start, end)
}

fn days(t: &GroundTruth, first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = &Usage> {
    t.usage
        .iter()
        .filter(move |u| (first..=last).contains(&u.at.date_naive()))
}

fn spend(t: &GroundTruth, first: NaiveDate, last: NaiveDate, keep: impl Fn(&Usage) -> bool) -> f64 {
    days(t, first, last)
        .filter(|u| keep(u))
        .map(|u| u.cost)
        .sum()
}

fn dollars(what: String, value: f64) -> Expected {
    Expected {
        what,
        value,
        unit: Unit::Dollars,
        name: None,
    }
}

/// "How much did the support team spend in November 2026?"
pub fn team_month_spend(t: &GroundTruth) -> Lookup {
    let (month, first, last) = whole_month(t);
    let team = t.routing_team;
    Lookup {
        question: format!("How much did the {team} team spend in {month}?"),
        expected: vec![dollars(
            format!("the {team} team's spend in {month}"),
            spend(t, first, last, |u| u.team == team),
        )],
    }
}

/// "Which team spent the most in November 2026?"
pub fn top_team(t: &GroundTruth) -> Lookup {
    let (month, first, last) = whole_month(t);
    let mut teams: Vec<(&str, f64)> = Vec::new();
    for u in days(t, first, last) {
        match teams.iter_mut().find(|(name, _)| *name == u.team) {
            Some(entry) => entry.1 += u.cost,
            None => teams.push((u.team, u.cost)),
        }
    }
    teams.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (team, cost) = teams.first().copied().unwrap_or(("", 0.0));
    Lookup {
        question: format!("Which team spent the most in {month}?"),
        expected: vec![Expected {
            what: format!("the top team's spend in {month} ({team})"),
            value: cost,
            unit: Unit::Dollars,
            name: Some(team.to_owned()),
        }],
    }
}

/// "How many requests went to gpt-4o-mini in November 2026?"
pub fn model_requests(t: &GroundTruth) -> Lookup {
    let (month, first, last) = whole_month(t);
    let model = "gpt-4o-mini";
    let requests: u64 = days(t, first, last)
        .filter(|u| u.model == model)
        .map(|u| u.requests)
        .sum();
    Lookup {
        question: format!("How many requests went to {model} in {month}?"),
        expected: vec![Expected {
            what: format!("requests to {model} in {month}"),
            value: requests as f64,
            unit: Unit::Count,
            name: None,
        }],
    }
}

/// The spike's team over the week around the spike day, against the week before, by date.
pub fn weeks_compared(t: &GroundTruth) -> Lookup {
    let team = t.spike_team;
    let (a, b) = (
        t.spike_day - Duration::days(3),
        t.spike_day + Duration::days(3),
    );
    let (c, d) = (a - Duration::days(7), a - Duration::days(1));
    Lookup {
        question: format!(
            "How much did the {team} team spend from {a} to {b} compared with {c} to {d}?"
        ),
        expected: vec![
            dollars(
                format!("the {team} team's spend from {a} to {b}"),
                spend(t, a, b, |u| u.team == team),
            ),
            dollars(
                format!("the {team} team's spend from {c} to {d}"),
                spend(t, c, d, |u| u.team == team),
            ),
        ],
    }
}

/// "Which cost more in November 2026, gpt-4o or claude-sonnet-4?"
pub fn models_compared(t: &GroundTruth) -> Lookup {
    let (month, first, last) = whole_month(t);
    let pair = ["gpt-4o", "claude-sonnet-4"];
    Lookup {
        question: format!("Which cost more in {month}, {} or {}?", pair[0], pair[1]),
        expected: pair
            .iter()
            .map(|m| {
                dollars(
                    format!("spend on {m} in {month}"),
                    spend(t, first, last, |u| u.model == *m),
                )
            })
            .collect(),
    }
}

/// The answer's opening: its first sentences, at most [`OPENING_CHARS`] characters.
pub fn opening(answer: &str) -> String {
    let joined = text::sentences(answer)
        .into_iter()
        .take(OPENING_SENTENCES)
        .collect::<Vec<_>>()
        .join(" ");
    joined.chars().take(OPENING_CHARS).collect()
}

/// Whether the answer states every expected figure in its opening; `Err` says what it stated
/// instead.
///
/// # Errors
/// A sentence for the report naming the missing figure, where the answer stated it if it did
/// later, and what its opening held.
pub fn judge(answer: &str, lookup: &Lookup) -> Result<String, String> {
    let open = opening(answer);
    let amounts = text::money(&open);
    let mut distinct: Vec<f64> = Vec::new();
    for a in &amounts {
        if !distinct.iter().any(|d| (d - a).abs() < 0.005) {
            distinct.push(*a);
        }
    }
    if distinct.len() > MAX_OPENING_FIGURES {
        return Err(format!(
            "the answer opens with {} different amounts; a shotgun of figures is not an answer",
            distinct.len()
        ));
    }
    let stated = |text: &str, e: &Expected| -> bool {
        let found = match e.unit {
            Unit::Dollars => text::money(text),
            Unit::Count => text::numbers(text),
        };
        found.iter().any(|v| text::within(*v, e.value, TOLERANCE))
    };
    let show = |e: &Expected| match e.unit {
        Unit::Dollars => format!("${:.2}", e.value),
        Unit::Count => format!("{:.0}", e.value),
    };
    let named = |text: &str, e: &Expected| {
        e.name
            .as_ref()
            .is_none_or(|n| text.to_lowercase().contains(&n.to_lowercase()))
    };
    for e in &lookup.expected {
        if named(&open, e) && stated(&open, e) {
            continue;
        }
        let later = if named(answer, e) && stated(answer, e) {
            " (the answer states it later, not in its first sentences)"
        } else {
            ""
        };
        if !named(&open, e) {
            return Err(format!(
                "the answer's opening does not name {}{later}; the truth is {} at {}",
                e.name.as_deref().unwrap_or_default(),
                e.what,
                show(e)
            ));
        }
        let held: Vec<String> = match e.unit {
            Unit::Dollars => amounts.iter().map(|a| format!("${a:.2}")).collect(),
            Unit::Count => text::numbers(&open)
                .iter()
                .map(|n| format!("{n:.0}"))
                .collect(),
        };
        return Err(format!(
            "the answer's opening does not state {} = {} within {:.0}%{later}; it states {}",
            e.what,
            show(e),
            TOLERANCE * 100.0,
            if held.is_empty() {
                "no such figure".to_owned()
            } else {
                held.join(", ")
            }
        ));
    }
    let figures: Vec<String> = lookup.expected.iter().map(show).collect();
    Ok(format!(
        "the answer opens with {} ({})",
        figures.join(" and "),
        lookup
            .expected
            .iter()
            .map(|e| e.what.clone())
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

/// The structured task of issue 10 a client sends with `agent_execute`: a cost review with a
/// stated monthly spend and two fields the analysis has no use for.
pub fn task_fields() -> serde_json::Value {
    serde_json::json!({
        "optimization_target": "cost_reduction",
        "current_metrics": {"monthly_spend": 25000, "utilization_rate": 0.73},
        "constraints": {"max_performance_impact": 0.05}
    })
}

/// Whether the answer to [`task_fields`] compares the stated $25,000 with the data's monthly
/// spend and names the fields it did not use.
///
/// # Errors
/// A sentence for the report saying which of the three is missing.
pub fn judge_task(answer: &str, t: &GroundTruth) -> Result<String, String> {
    let amounts = text::money(answer);
    if !amounts.iter().any(|a| text::within(*a, 25_000.0, 0.001)) {
        return Err(
            "the answer does not state the monthly spend the task gave ($25,000.00)".into(),
        );
    }
    // A deployment may take the 30 days to the last record or to the last whole day.
    let tolerance = 0.05;
    if !amounts
        .iter()
        .any(|a| text::within(*a, t.monthly_spend, tolerance))
    {
        return Err(format!(
            "the answer does not state the monthly spend the data shows (${:.2} over the last 30 days, within {:.0}%) beside the stated $25,000.00",
            t.monthly_spend,
            tolerance * 100.0
        ));
    }
    let lower = answer.to_lowercase();
    let unnamed: Vec<&str> = ["utilization_rate", "max_performance_impact"]
        .into_iter()
        .filter(|f| !lower.contains(f))
        .collect();
    if !unnamed.is_empty() {
        return Err(format!(
            "the answer does not name the task's fields it did not use: {}",
            unnamed.join(", ")
        ));
    }
    Ok(format!(
        "the answer compares the stated $25,000.00 with the data's ${:.2} a month and names the unused fields",
        t.monthly_spend
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone as _, Utc};

    fn truth() -> GroundTruth {
        crate::truth::generate(Utc.with_ymd_and_hms(2026, 12, 4, 9, 10, 0).unwrap(), 5)
    }

    #[test]
    fn questions_name_whole_periods_inside_the_data() {
        let t = truth();
        let q = team_month_spend(&t);
        assert_eq!(
            q.question,
            "How much did the support team spend in November 2026?"
        );
        // 2,000 requests an hour of 600 in + 20 out on gpt-4o: $3.40 an hour, 720 hours.
        assert!((q.expected[0].value - 3.4 * 720.0).abs() < 1e-6, "{q:?}");
        let top = top_team(&t);
        assert_eq!(top.expected[0].name.as_deref(), Some("support"));
        let w = weeks_compared(&t);
        assert!(
            w.question
                .contains(&(t.spike_day - Duration::days(3)).to_string())
        );
        assert!(
            w.expected[0].value > w.expected[1].value,
            "the spike week costs more"
        );
        assert!(model_requests(&t).expected[0].value > 3_000_000.0);
        assert_eq!(models_compared(&t).expected.len(), 2);
    }

    #[test]
    fn the_figure_must_come_early_and_right() {
        let t = truth();
        let q = team_month_spend(&t);
        let right = format!(
            "The support team spent **${}** in November 2026.",
            "2,448.00"
        );
        assert!(judge(&right, &q).is_ok(), "{:?}", judge(&right, &q));
        let wrong = judge("The support team spent $3,100.00 in November 2026.", &q).unwrap_err();
        assert!(
            wrong.contains("$2448.00") && wrong.contains("$3100.00"),
            "{wrong}"
        );
        let late = format!(
            "## Spend analysis\nWe looked at costs. Spend, tokens and requests were analysed. \
             Recommendations follow. {right}"
        );
        let err = judge(&late, &q).unwrap_err();
        assert!(err.contains("states it later"), "{err}");
        let top = top_team(&t);
        let unnamed = format!("The top team spent ${:.2}.", top.expected[0].value);
        assert!(
            judge(&unnamed, &top)
                .unwrap_err()
                .contains("does not name support")
        );
        let counts = model_requests(&t);
        let n = counts.expected[0].value;
        let said = format!("gpt-4o-mini served {} requests in November 2026.", n as u64);
        assert!(judge(&said, &counts).is_ok());
        let shotgun = "Spend: $1, $2, $3, $4, $5, $6, $7 and $2,448.00.";
        assert!(judge(shotgun, &q).unwrap_err().contains("shotgun"));
    }

    #[test]
    fn the_task_answer_compares_and_names_unused_fields() {
        let t = truth();
        let good = format!(
            "You state $25,000.00 a month; the data shows ${:.2}. Not used: current_metrics.utilization_rate, constraints.max_performance_impact.",
            t.monthly_spend
        );
        assert!(judge_task(&good, &t).is_ok(), "{:?}", judge_task(&good, &t));
        assert!(judge_task("You spend $25,000.00 a month.", &t).is_err());
        let unnamed = format!(
            "You state $25,000.00; the data shows ${:.2}.",
            t.monthly_spend
        );
        assert!(
            judge_task(&unnamed, &t)
                .unwrap_err()
                .contains("utilization_rate")
        );
    }
}
