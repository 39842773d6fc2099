//! The shape of the answer and the roles of names: grouping words, superlatives and limits,
//! comparison of periods or groups, trends, and the what-if target. It must not resolve names or
//! read time expressions (those come in already read).

use agentwire_analytics::query::{
    Comparison, Condition, Dimension, Group, GroupBy, Metric, Order, Period, QuerySpec, Shape,
    TimeGrain,
};
use agentwire_analytics::whatif::Change;
use chrono::NaiveDate;

use crate::names::Mention;
use crate::query::DEFAULT_DAYS;
use crate::query::Intent;
use crate::text::{number, singular};
use crate::time::{Kind, TimeSpan, previous};
use crate::words::Words;

/// Words that shape the answer.
#[derive(Default)]
pub(crate) struct ShapeWords {
    /// The grouping named ("by model", "which team", "per day").
    pub group: Option<GroupBy>,
    /// The group word was plural ("which models", "top features").
    pub plural: bool,
    pub order: Option<Order>,
    pub limit: Option<u32>,
    pub top: bool,
    pub compare: bool,
    pub trend: bool,
    pub change: bool,
    pub previous: bool,
    pub grain: Option<TimeGrain>,
    pub stat_said: bool,
    pub joined_periods: bool,
    /// The superlative as written ("best" orders by what is good for the metric).
    pub order_word: String,
    /// "month over month", "week over week": a comparison with the period before, or a trend.
    pub over: Option<TimeGrain>,
}

fn group_word(w: &str) -> Option<(GroupBy, bool)> {
    let plural = w.ends_with('s') && !matches!(w, "status" | "process");
    let g = match singular(w).as_str() {
        "model" | "llm" | "engine" => GroupBy::Dimension(Dimension::Model),
        "provider" | "vendor" => GroupBy::Dimension(Dimension::Provider),
        "team" | "department" | "dept" | "org" | "squad" => GroupBy::Dimension(Dimension::Team),
        "feature" | "workload" | "usecase" | "endpoint" | "app" | "application" | "product"
        | "pipeline" => GroupBy::Dimension(Dimension::Feature),
        "project" | "repo" => GroupBy::Dimension(Dimension::Project),
        "user" | "person" | "people" | "developer" | "engineer" | "who" | "whom" | "member"
        | "employee" => GroupBy::Dimension(Dimension::User),
        "status" | "statuse" | "outcome" => GroupBy::Dimension(Dimension::Status),
        "day" | "date" | "daily" => GroupBy::Time(TimeGrain::Day),
        "week" | "weekly" => GroupBy::Time(TimeGrain::Week),
        "month" | "monthly" => GroupBy::Time(TimeGrain::Month),
        _ => return None,
    };
    Some((g, plural || w == "people"))
}

pub(crate) fn read_shape_words(w: &mut Words<'_>) -> ShapeWords {
    let mut s = ShapeWords {
        stat_said: w.any(&[
            "p99", "p95", "p90", "p50", "99th", "95th", "90th", "50th", "median", "average", "avg",
            "mean", "typical", "tail",
        ]),
        ..ShapeWords::default()
    };
    let n = w.tokens.len();
    let mut order_at: Option<usize> = None;
    for i in 0..n {
        let t = w.tokens[i].text.clone();
        let (order, hint) = match t.as_str() {
            "most" | "highest" | "biggest" | "largest" | "max" | "maximum" | "greatest"
            | "heaviest" | "top" | "costliest" | "priciest" | "busiest" | "slowest" | "worst"
            | "leader" | "leading" | "longest" => (Some(Order::Most), true),
            "least" | "lowest" | "smallest" | "fewest" | "min" | "minimum" | "bottom"
            | "cheapest" | "fastest" | "quickest" | "quietest" | "best" | "shortest" => {
                (Some(Order::Least), true)
            }
            _ => (None, false),
        };
        if hint {
            // "most expensive" orders; "least expensive" too; "at most" does not.
            if i > 0 && w.tokens[i - 1].text == "at" {
                continue;
            }
            // "best" only orders when it says "most reliable" ("best latency").
            s.order = order;
            s.order_word = t.clone();
            s.top |= t == "top";
            order_at = Some(i);
            w.tokens[i].used = true;
            if let Some(next) = w.tokens.get(i + 1).map(|x| x.text.clone())
                && let Some(k) = number(&next).filter(|k| (2..=50).contains(k))
            {
                s.limit = Some(k);
                w.tokens[i + 1].used = true;
            }
            if i > 0
                && let Some(k) = number(&w.tokens[i - 1].text).filter(|k| (2..=50).contains(k))
                && !w.tokens[i - 1].used
            {
                s.limit = Some(k);
                w.tokens[i - 1].used = true;
            }
            break;
        }
    }
    if s.order.is_none() && w.any(&["rank", "ranked", "ranking", "leaderboard"]) {
        s.order = Some(Order::Most);
        s.top = true;
    }
    // "the 3 biggest", "5 most expensive" handled above; "top" may follow the number too.
    // The grouping: after "by/per/each/across/which/what/top", or a plural dimension word.
    let mut best: Option<(usize, GroupBy, bool)> = None;
    for i in 0..n {
        if w.tokens[i].used {
            continue;
        }
        let t = w.tokens[i].text.clone();
        let Some((g, plural)) = group_word(&t) else {
            continue;
        };
        let before = if i > 0 {
            w.tokens[i - 1].text.as_str()
        } else {
            ""
        };
        let before2 = if i > 1 {
            w.tokens[i - 2].text.as_str()
        } else {
            ""
        };
        let cue = matches!(
            before,
            "by" | "per"
                | "each"
                | "every"
                | "which"
                | "what"
                | "across"
                | "top"
                | "among"
                | "between"
        ) || matches!(
            before2,
            "by" | "per"
                | "each"
                | "which"
                | "what"
                | "across"
                | "top"
                | "among"
                | "broken"
                | "breakdown"
                | "split"
                | "grouped"
        ) || t == "who"
            || t == "whom"
            || (matches!(t.as_str(), "daily" | "weekly" | "monthly")
                && !w.any(&["average", "avg"]))
            || order_at.is_some_and(|o| i > o && i <= o + 4)
            || order_at.is_some_and(|o| {
                o > i && o <= i + 6 && (matches!(before, "the" | "our") || i == 0)
            })
            || (plural
                && matches!(
                    before,
                    "our" | "the" | "all" | "different" | "most" | "many"
                ));
        // "this month", "last week": time words already read as a period.
        if !cue || matches!(before, "this" | "last" | "past" | "next" | "previous") {
            continue;
        }
        // "per day" after an average is the metric's unit, not a grouping.
        if matches!(g, GroupBy::Time(TimeGrain::Day))
            && w.any(&["average", "avg"])
            && s.order.is_none()
        {
            continue;
        }
        let strength =
            usize::from(matches!(before, "by" | "per")) * 2 + usize::from(order_at.is_some());
        if best.as_ref().is_none_or(|(sb, _, _)| strength > *sb) {
            best = Some((strength, g, plural));
        }
        w.tokens[i].used = true;
    }
    if let Some((_, g, plural)) = best {
        s.group = Some(g);
        s.plural = plural;
    }
    s.compare = w.any(&[
        "vs",
        "versus",
        "compare",
        "compared",
        "comparing",
        "comparison",
        "against",
        "relative",
    ]) || w.any_phrase(&[
        "difference between",
        "differ from",
        "stack up",
        "than in",
        "than the",
        "than last",
        "than it",
    ]);
    s.previous = w.any_phrase(&[
        "previous",
        "prior",
        "preceding",
        "before that",
        "the month before",
        "the week before",
        "vs last",
        "versus last",
        "than last",
        "compared to last",
        "compared with last",
        "quarter over quarter",
        "from the previous",
        "the one before",
    ]);
    s.over = if w.any_phrase(&["month over month", "mom"]) {
        Some(TimeGrain::Month)
    } else if w.any_phrase(&["week over week", "wow"]) {
        Some(TimeGrain::Week)
    } else if w.any_phrase(&["day over day"]) {
        Some(TimeGrain::Day)
    } else {
        None
    };
    s.trend = w.starts(&["trend"])
        || w.any(&[
            "trajectory",
            "evolution",
            "evolve",
            "evolved",
            "growing",
            "grown",
        ])
        || w.any_phrase(&["over time", "going up", "going down", "been changing"])
        || w.any(&[
            "increasing",
            "decreasing",
            "rising",
            "falling",
            "climbing",
            "creeping",
        ])
        || (w.any(&["getting", "becoming"])
            && w.any(&[
                "more",
                "less",
                "cheaper",
                "expensive",
                "slower",
                "faster",
                "worse",
                "better",
                "bigger",
                "higher",
                "lower",
            ]));
    s.change = w.any(&[
        "change",
        "changed",
        "grow",
        "grew",
        "growing",
        "rise",
        "rose",
        "risen",
        "increase",
        "increased",
        "decrease",
        "decreased",
        "drop",
        "dropped",
        "fell",
        "fall",
        "up",
        "down",
        "higher",
        "lower",
        "more",
        "less",
        "jump",
        "jumped",
        "declined",
        "decline",
    ]);
    s.grain = if w.any(&["daily", "day-by-day"])
        || w.phrase("per day")
        || w.phrase("by day")
        || w.phrase("each day")
    {
        Some(TimeGrain::Day)
    } else if w.any(&["weekly"])
        || w.phrase("per week")
        || w.phrase("by week")
        || w.phrase("week over week")
        || w.phrase("each week")
    {
        Some(TimeGrain::Week)
    } else if w.any(&["monthly"])
        || w.phrase("per month")
        || w.phrase("by month")
        || w.phrase("month over month")
        || w.phrase("each month")
    {
        Some(TimeGrain::Month)
    } else {
        None
    };
    s.joined_periods = w.has("and") || w.has("through") || w.has("to");
    s
}

/// The what-if change, taking the target name out of the mentions.
pub(crate) fn what_if_change(w: &Words<'_>, mentions: &mut Vec<Mention>) -> Change {
    if w.starts(&["cach"])
        || w.any_phrase(&[
            "shared prefix",
            "prompt prefix",
            "system prompt",
            "system prompts",
        ])
    {
        return Change::CachePrefix;
    }
    let word = |i: usize| w.text(i).unwrap_or("");
    // "use Y instead of X", "replace X with Y", "X to Y", "onto Y", "with Y"
    let target_index = mentions.iter().enumerate().rev().find_map(|(k, m)| {
        if !matches!(m.dimension, Dimension::Model | Dimension::Provider) {
            return None;
        }
        let before = m.at.checked_sub(1).map_or("", word);
        let before2 = m.at.checked_sub(2).map_or("", word);
        let after = word(m.at + m.len);
        let to = matches!(before, "to" | "onto" | "into" | "with" | "for")
            && !matches!(before2, "spend" | "cost" | "costs");
        let used = matches!(before, "use" | "used" | "using" | "try" | "on")
            && (after == "instead" || w.has("instead") || m.priced_only);
        let instead = after == "instead";
        (to || used || instead || m.priced_only).then_some(k)
    });
    if let Some(k) = target_index {
        let m = mentions.remove(k);
        return match m.dimension {
            Dimension::Provider => Change::ToProvider(m.values[0].clone()),
            _ if m.values.len() == 1 => Change::ToModel(m.values[0].clone()),
            // A family as a target ("to Gemini"): the family's provider.
            _ => Change::CheaperModel,
        };
    }
    Change::CheaperModel
}

/// Two or more names of one dimension set against each other ("Claude vs GPT").
pub(crate) fn compare_groups(
    w: &Words<'_>,
    mentions: &mut Vec<Mention>,
    s: &ShapeWords,
) -> Option<(Vec<Group>, Vec<Mention>)> {
    let or_cue = w.has("or")
        && (w.any(&["which", "more", "less", "cheaper", "faster", "slower"])
            || w.starts(&["expensiv"]));
    if !(s.compare || or_cue || w.any_phrase(&["than", "and how"])) {
        return None;
    }
    for d in Dimension::ALL {
        let sides: Vec<usize> = (0..mentions.len())
            .filter(|&k| mentions[k].dimension == d && !mentions[k].priced_only)
            .collect();
        if sides.len() >= 2 {
            let groups: Vec<Group> = sides
                .iter()
                .map(|&k| {
                    let mut values = mentions[k].values.clone();
                    values.sort();
                    Group {
                        label: mentions[k].text.clone(),
                        conditions: vec![Condition::new(d, values)],
                    }
                })
                .collect();
            // The sides leave the filters but stay among the names read.
            let (sides, keep): (Vec<Mention>, Vec<Mention>) = mentions
                .drain(..)
                .partition(|m| m.dimension == d && !m.priced_only);
            *mentions = keep;
            return Some((groups, sides));
        }
    }
    None
}

/// The period asked about and, for a comparison of periods, the other one.
pub(crate) fn periods(
    w: &Words<'_>,
    times: &[TimeSpan],
    reference: NaiveDate,
    s: &ShapeWords,
    default_period: Period,
) -> (Option<Period>, Option<Period>) {
    let mut absolute: Vec<&TimeSpan> = times.iter().filter(|t| !t.relative).collect();
    let mut relative = times.iter().any(|t| t.relative);
    if absolute.is_empty() {
        // "the previous month" alone is just last month.
        absolute = times.iter().take(1).collect();
        relative = false;
    }
    let over_matches = |t: &TimeSpan| match s.over {
        Some(TimeGrain::Month) => t.kind == Kind::Month,
        Some(TimeGrain::Week) => matches!(t.kind, Kind::Week | Kind::Days(7)),
        Some(TimeGrain::Day) => t.kind == Kind::Day,
        None => false,
    };
    match absolute.as_slice() {
        [] => {
            if s.previous && !s.trend {
                return (
                    None,
                    Some(previous(default_period, Kind::Days(DEFAULT_DAYS))),
                );
            }
            (None, None)
        }
        [one] if one.parts.is_some() && s.change && !s.trend => {
            // "how did X change from September to October": October against September.
            let (a, b) = one.parts.unwrap_or((one.period, one.period));
            (Some(b), Some(a))
        }
        [one] => {
            let wants_previous = relative
                || s.previous
                || over_matches(one)
                || (s.change
                    && !s.trend
                    && !one.open_ended
                    && w.any(&["did", "has", "was", "is", "how"])
                    && !w.any(&["which", "what", "who"]));
            if wants_previous && (!s.trend || over_matches(one)) {
                (Some(one.period), Some(previous(one.period, one.kind)))
            } else {
                (Some(one.period), None)
            }
        }
        [a, b, ..] => {
            let from_to = w
                .tokens
                .get(a.at.wrapping_sub(1))
                .is_some_and(|t| t.text == "from")
                && s.change;
            if s.compare || from_to || s.change {
                if from_to {
                    (Some(b.period), Some(a.period))
                } else {
                    (Some(a.period), Some(b.period))
                }
            } else {
                // "in September and October": one period covering both.
                let first = a.period.first.min(b.period.first);
                let last = a.period.last.max(b.period.last).min(reference.max(first));
                (Some(Period::new(first, last)), None)
            }
        }
    }
}

fn default_grain(p: &Period) -> TimeGrain {
    match p.days() {
        d if d <= 31 => TimeGrain::Day,
        d if d <= 92 => TimeGrain::Week,
        _ => TimeGrain::Month,
    }
}

pub(crate) fn shape(
    s: &ShapeWords,
    groups: Option<Vec<Group>>,
    other: Option<Period>,
    spec: &QuerySpec,
    intent: Intent,
) -> Shape {
    if intent != Intent::Lookup {
        return Shape::Figure;
    }
    if let Some(groups) = groups {
        return Shape::Compare {
            against: Comparison::Groups(groups),
            by: None,
        };
    }
    if let Some(other) = other {
        return Shape::Compare {
            against: Comparison::Period(other),
            by: s.group.filter(|g| matches!(g, GroupBy::Dimension(_))),
        };
    }
    if s.trend || s.over.is_some() {
        let every = s
            .over
            .or(s.grain)
            .unwrap_or_else(|| default_grain(&spec.period));
        return Shape::Trend { every };
    }
    if let Some(order) = s.order
        && (s.group.is_some() || s.top)
    {
        let by = s.group.unwrap_or(GroupBy::Dimension(Dimension::Model));
        let limit = s.limit.unwrap_or(if s.plural { 5 } else { 1 });
        return Shape::Ranking { by, order, limit };
    }
    if let Some(by) = s.group {
        return Shape::Breakdown { by };
    }
    if let Some(g) = s.grain
        && spec.metric != Metric::SpendPerDay
    {
        return Shape::Breakdown {
            by: GroupBy::Time(g),
        };
    }
    Shape::Figure
}
