//! The quality of an answer: a score in [0, 1], the weighted mean of named assertions.
//!
//! Two families of assertions. **Answer assertions** read the final answer
//! (`agent_completed.response`): length, figures with units and currency, concrete recommendations
//! with savings, implementation steps, and per scenario a dated anomaly or a capacity figure.
//! **Evidence assertions** read the run's own events: the dollar figures of the answer must be
//! grounded in what the tools returned (`tool_completed.result` and `.data`), tools must have run,
//! and the reasoning (`agent_thinking`) must show steps with figures.
//!
//! The weights are set so that the answer assertions alone stay below the 0.7 threshold in every
//! scenario (at most 0.53): an answer stuffed with keywords and invented numbers, with no tool
//! behind it, cannot pass. A deployment that also fakes its tool events is caught by the
//! ground-truth mode ([`crate::truth`]), which compares the figures with the truth.
//!
//! What it must not do: reward length or keywords on their own, read our server's `report`
//! extras (any deployment is judged by the contract's fields), or score a run that did not
//! complete above zero.

use crate::text;
use serde::Serialize;
use serde_json::Value;

/// The business scenarios of the seed suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    CostOptimization,
    AnomalyDetection,
    CapacityPlanning,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [
        Self::CostOptimization,
        Self::AnomalyDetection,
        Self::CapacityPlanning,
    ];

    /// The tag value used in metrics (`quality{scenario:cost_optimization}`).
    pub fn name(self) -> &'static str {
        match self {
            Self::CostOptimization => "cost_optimization",
            Self::AnomalyDetection => "anomaly_detection",
            Self::CapacityPlanning => "capacity_planning",
        }
    }

    /// What the suite asks.
    pub fn question(self) -> &'static str {
        match self {
            Self::CostOptimization => {
                "How can we reduce our AI costs? Give concrete recommendations with their monthly savings and the steps to implement them."
            }
            Self::AnomalyDetection => {
                "Did anything unusual happen to our AI spend in the last 30 days? Name the day and what drove it."
            }
            Self::CapacityPlanning => {
                "Plan our capacity: how many requests and tokens do we run per day, how fast is that growing, and what will we need next month?"
            }
        }
    }

    /// The scenario's weights, in assertion order of [`score`].
    fn weights(self) -> &'static [(&'static str, f64)] {
        match self {
            Self::CostOptimization => &[
                (ANSWER_LENGTH, 1.0),
                (FIGURES_WITH_UNITS, 1.0),
                (RECOMMENDATIONS_WITH_SAVINGS, 1.5),
                (IMPLEMENTATION_STEPS, 1.0),
                (GROUNDED_FIGURES, 2.0),
                (TOOLS_USED, 1.0),
                (REASONING_SHOWN, 1.0),
            ],
            Self::AnomalyDetection => &[
                (ANSWER_LENGTH, 1.0),
                (FIGURES_WITH_UNITS, 1.0),
                (DATED_ANOMALY, 1.5),
                (GROUNDED_FIGURES, 2.0),
                (TOOLS_USED, 1.0),
                (REASONING_SHOWN, 1.0),
            ],
            Self::CapacityPlanning => &[
                (ANSWER_LENGTH, 1.0),
                (FIGURES_WITH_UNITS, 1.0),
                (CAPACITY_FIGURES, 1.5),
                (GROUNDED_FIGURES, 2.0),
                (TOOLS_USED, 1.0),
                (REASONING_SHOWN, 1.0),
            ],
        }
    }
}

pub const ANSWER_LENGTH: &str = "answer_length";
pub const FIGURES_WITH_UNITS: &str = "figures_with_units";
pub const RECOMMENDATIONS_WITH_SAVINGS: &str = "recommendations_with_savings";
pub const IMPLEMENTATION_STEPS: &str = "implementation_steps";
pub const DATED_ANOMALY: &str = "dated_anomaly";
pub const CAPACITY_FIGURES: &str = "capacity_figures";
pub const GROUNDED_FIGURES: &str = "grounded_figures";
pub const TOOLS_USED: &str = "tools_used";
pub const REASONING_SHOWN: &str = "reasoning_shown";

/// The assertions that read the answer text only; the rest read the run's events.
pub const ANSWER_ONLY: [&str; 6] = [
    ANSWER_LENGTH,
    FIGURES_WITH_UNITS,
    RECOMMENDATIONS_WITH_SAVINGS,
    IMPLEMENTATION_STEPS,
    DATED_ANOMALY,
    CAPACITY_FIGURES,
];

/// An answer this long (characters) earns the full length credit.
const FULL_LENGTH_CHARS: usize = 400;

/// One named assertion's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assertion {
    pub name: &'static str,
    pub weight: f64,
    /// In [0, 1].
    pub score: f64,
    /// What was found, for the report.
    pub detail: String,
}

/// A scored answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    pub scenario: Scenario,
    /// The weighted mean of the assertions, in [0, 1].
    pub score: f64,
    pub assertions: Vec<Assertion>,
}

impl Quality {
    /// One line per assertion: `name 0.80 x2.0 (detail)`.
    pub fn explain(&self) -> String {
        self.assertions
            .iter()
            .map(|a| format!("{} {:.2} x{} ({})", a.name, a.score, a.weight, a.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What the scorer reads from a run's events.
struct Evidence<'a> {
    response: Option<&'a str>,
    /// Numbers anywhere in tool outputs (`result` text and `data` JSON).
    tool_numbers: Vec<f64>,
    /// Distinct tools with a matched `ok` pair.
    tools_ok: Vec<String>,
    thinking: Vec<&'a str>,
}

fn type_of(event: &Value) -> &str {
    event.get("type").and_then(Value::as_str).unwrap_or("")
}

fn gather(events: &[Value]) -> Evidence<'_> {
    let response = events
        .iter()
        .find(|e| type_of(e) == "agent_completed")
        .and_then(|e| e.get("response"))
        .and_then(Value::as_str);
    let mut tool_numbers = Vec::new();
    let mut executing: Vec<(&str, &str)> = Vec::new();
    let mut tools_ok: Vec<String> = Vec::new();
    for event in events {
        match type_of(event) {
            "tool_executing" => {
                if let (Some(id), Some(tool)) = (
                    event.get("tool_call_id").and_then(Value::as_str),
                    event.get("tool").and_then(Value::as_str),
                ) {
                    executing.push((id, tool));
                }
            }
            "tool_completed" => {
                if let Some(result) = event.get("result").and_then(Value::as_str) {
                    tool_numbers.extend(text::money(result));
                    tool_numbers.extend(plain_numbers(result));
                }
                if let Some(data) = event.get("data") {
                    json_numbers(data, &mut tool_numbers);
                }
                let id = event.get("tool_call_id").and_then(Value::as_str);
                let ok = event.get("status").and_then(Value::as_str) == Some("ok");
                if let Some((_, tool)) = executing.iter().find(|(open, _)| Some(*open) == id)
                    && ok
                    && !tools_ok.iter().any(|t| t == tool)
                {
                    tools_ok.push((*tool).to_owned());
                }
            }
            _ => {}
        }
    }
    let thinking = events
        .iter()
        .filter(|e| type_of(e) == "agent_thinking")
        .filter_map(|e| e.get("message").and_then(Value::as_str))
        .collect();
    Evidence {
        response,
        tool_numbers,
        tools_ok,
        thinking,
    }
}

/// Numbers in free text (with thousands separators), for matching against an answer.
fn plain_numbers(text: &str) -> Vec<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .filter_map(|piece| {
            let cleaned: String = piece
                .trim_matches(|c| c == '.' || c == ',')
                .chars()
                .filter(|c| *c != ',')
                .collect();
            cleaned.parse::<f64>().ok()
        })
        .collect()
}

fn json_numbers(value: &Value, out: &mut Vec<f64>) {
    match value {
        Value::Number(n) => out.extend(n.as_f64()),
        Value::String(s) => out.extend(text::money(s)),
        Value::Array(items) => items.iter().for_each(|v| json_numbers(v, out)),
        Value::Object(map) => map.values().for_each(|v| json_numbers(v, out)),
        _ => {}
    }
}

/// Whether an answer's amount matches a tool's number: to the cent, or within 0.5 % for amounts
/// the answer rounded (`$4.8k`).
fn grounded(amount: f64, tool_numbers: &[f64]) -> bool {
    tool_numbers
        .iter()
        .any(|n| (amount - n).abs() <= 0.011 || text::within(amount, *n, 0.005))
}

const ACTION_VERBS: [&str; 20] = [
    "route",
    "switch",
    "move",
    "migrate",
    "use ",
    "cache",
    "batch",
    "cap ",
    "limit",
    "reduce",
    "enable",
    "consolidate",
    "negotiate",
    "commit",
    "downgrade",
    "replace",
    "shorten",
    "trim",
    "set max",
    "turn off",
];
const SAVING_WORDS: [&str; 4] = ["sav", "cut", "lower", "reduc"];
/// Beside [`text::ANOMALY_WORDS`], a rise ("spend rose 40% on the 14th") reads as an anomaly
/// sentence in an answer.
const RISE_WORDS: [&str; 1] = ["rose"];
const VOLUME_WORDS: [&str; 3] = ["request", "token", "call"];
const RATE_WORDS: [&str; 14] = [
    "per second",
    "per minute",
    "per hour",
    "per day",
    "per week",
    "per month",
    "/min",
    "/s",
    "/day",
    "rpm",
    "tpm",
    "daily",
    "a day",
    "in the last",
];
const CAPACITY_WORDS: [&str; 7] = [
    "request",
    "token",
    "call",
    "limit",
    "capacity",
    "headroom",
    "throughput",
];
const FORWARD_WORDS: [&str; 14] = [
    "forecast",
    "project",
    "next month",
    "next week",
    "next quarter",
    "run-rate",
    "run rate",
    "will reach",
    "will hit",
    "will need",
    "expected to",
    "headroom",
    "rate limit",
    "at this rate",
];

/// Scores a run's answer for a scenario. A run without `agent_completed` scores 0.
pub fn score(scenario: Scenario, events: &[Value]) -> Quality {
    let evidence = gather(events);
    let Some(response) = evidence.response else {
        return Quality {
            scenario,
            score: 0.0,
            assertions: scenario
                .weights()
                .iter()
                .map(|(name, weight)| Assertion {
                    name,
                    weight: *weight,
                    score: 0.0,
                    detail: "the run did not complete with a response".to_owned(),
                })
                .collect(),
        };
    };
    let sentences = text::sentences(response);
    let assertions: Vec<Assertion> = scenario
        .weights()
        .iter()
        .map(|(name, weight)| {
            let (score, detail) = assess(name, response, &sentences, &evidence);
            Assertion {
                name,
                weight: *weight,
                score: score.clamp(0.0, 1.0),
                detail,
            }
        })
        .collect();
    let total_weight: f64 = assertions.iter().map(|a| a.weight).sum();
    let weighted: f64 = assertions.iter().map(|a| a.weight * a.score).sum();
    Quality {
        scenario,
        score: if total_weight > 0.0 {
            weighted / total_weight
        } else {
            0.0
        },
        assertions,
    }
}

fn assess(
    name: &str,
    response: &str,
    sentences: &[String],
    evidence: &Evidence<'_>,
) -> (f64, String) {
    match name {
        ANSWER_LENGTH => {
            let chars = response.chars().count();
            let words = text::words(response);
            let mut distinct = words.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let variety = if words.is_empty() {
                0.0
            } else {
                distinct.len() as f64 / words.len() as f64
            };
            // A long answer that repeats itself is padding, not length.
            if words.len() > 50 && variety < 0.2 {
                return (
                    0.0,
                    format!(
                        "{chars} characters but only {:.0}% distinct words",
                        variety * 100.0
                    ),
                );
            }
            (
                chars as f64 / FULL_LENGTH_CHARS as f64,
                format!("{chars} characters"),
            )
        }
        FIGURES_WITH_UNITS => {
            let mut amounts = text::money(response);
            amounts.sort_by(f64::total_cmp);
            amounts.dedup();
            let units = text::unit_figures(response);
            let score =
                0.5 * (amounts.len().min(3) as f64 / 3.0) + 0.5 * (units.min(2) as f64 / 2.0);
            (
                score,
                format!(
                    "{} distinct dollar amounts, {units} other figures with units",
                    amounts.len()
                ),
            )
        }
        RECOMMENDATIONS_WITH_SAVINGS => {
            let concrete = sentences.iter().filter(|s| {
                text::mentions(s, &ACTION_VERBS)
                    && text::mentions(s, &SAVING_WORDS)
                    && !text::money(s).is_empty()
            });
            let count = concrete.count();
            if count > 0 {
                (
                    1.0,
                    format!("{count} recommendation(s) with a dollar saving"),
                )
            } else if sentences
                .iter()
                .any(|s| text::mentions(s, &ACTION_VERBS) && text::mentions(s, &SAVING_WORDS))
            {
                (0.5, "recommendations without a dollar saving".to_owned())
            } else {
                (0.0, "no recommendation with a saving".to_owned())
            }
        }
        IMPLEMENTATION_STEPS => {
            let numbered = response
                .lines()
                .filter(|line| {
                    let line = line.trim_start();
                    let digits = line.chars().take_while(char::is_ascii_digit).count();
                    digits > 0 && matches!(line[digits..].chars().next(), Some('.' | ')'))
                })
                .count();
            let plan_heading = response.lines().any(|line| {
                let lower = line.to_lowercase();
                (line.trim_start().starts_with('#') || lower.trim_start().starts_with("**"))
                    && ["plan", "step", "implement", "rollout", "next"]
                        .iter()
                        .any(|w| lower.contains(w))
            });
            let bullets = response
                .lines()
                .filter(|line| {
                    let t = line.trim_start();
                    t.starts_with("- ") || t.starts_with("* ")
                })
                .count();
            let steps = if plan_heading {
                numbered.max(bullets)
            } else {
                numbered
            };
            (
                steps.min(3) as f64 / 3.0,
                format!(
                    "{numbered} numbered item(s){}",
                    if plan_heading {
                        format!(", a plan heading and {bullets} bullet(s)")
                    } else {
                        String::new()
                    }
                ),
            )
        }
        DATED_ANOMALY => {
            let dated: Vec<&String> = sentences
                .iter()
                .filter(|s| {
                    (text::mentions(s, &text::ANOMALY_WORDS) || text::mentions(s, &RISE_WORDS))
                        && !text::dates(s, 2000).is_empty()
                })
                .collect();
            if !dated.is_empty() {
                (1.0, format!("{} dated anomaly sentence(s)", dated.len()))
            } else if !text::dates(response, 2000).is_empty() {
                (
                    0.5,
                    "dates, but not in a sentence about an anomaly".to_owned(),
                )
            } else {
                (0.0, "no date named".to_owned())
            }
        }
        CAPACITY_FIGURES => {
            let volume = sentences.iter().any(|s| {
                text::mentions(s, &VOLUME_WORDS)
                    && text::mentions(s, &RATE_WORDS)
                    && text::unit_figures(s) + text::money(s).len() > 0
            });
            // Forward-looking about capacity: volumes, limits or headroom, not just spend.
            let forward = sentences.iter().any(|s| {
                text::mentions(s, &FORWARD_WORDS)
                    && text::mentions(s, &CAPACITY_WORDS)
                    && text::unit_figures(s) > 0
            });
            (
                0.5 * f64::from(u8::from(volume)) + 0.5 * f64::from(u8::from(forward)),
                format!(
                    "volume with a time base: {}; forward-looking figure: {}",
                    yes_no(volume),
                    yes_no(forward)
                ),
            )
        }
        GROUNDED_FIGURES => {
            let mut amounts = text::money(response);
            amounts.sort_by(f64::total_cmp);
            amounts.dedup();
            if amounts.is_empty() {
                return (0.0, "no dollar amounts to ground".to_owned());
            }
            let found: Vec<f64> = amounts
                .iter()
                .copied()
                .filter(|a| grounded(*a, &evidence.tool_numbers))
                .collect();
            let missing: Vec<String> = amounts
                .iter()
                .filter(|a| !found.contains(a))
                .take(5)
                .map(|a| format!("${a:.2}"))
                .collect();
            (
                found.len() as f64 / amounts.len() as f64,
                format!(
                    "{} of {} dollar amounts appear in tool results{}",
                    found.len(),
                    amounts.len(),
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!("; not found: {}", missing.join(", "))
                    }
                ),
            )
        }
        TOOLS_USED => {
            let n = evidence.tools_ok.len();
            (
                match n {
                    0 => 0.0,
                    1 => 0.5,
                    _ => 1.0,
                },
                if n == 0 {
                    "no tool completed ok".to_owned()
                } else {
                    format!("{n} tool(s) ok: {}", evidence.tools_ok.join(", "))
                },
            )
        }
        REASONING_SHOWN => {
            let steps = evidence.thinking.len();
            let with_figures = evidence
                .thinking
                .iter()
                .filter(|m| m.chars().any(|c| c.is_ascii_digit()))
                .count();
            (
                0.5 * (steps.min(2) as f64 / 2.0) + 0.5 * f64::from(u8::from(with_figures > 0)),
                format!("{steps} reasoning step(s), {with_figures} with figures"),
            )
        }
        _ => (0.0, "unknown assertion".to_owned()),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn run(response: &str, tool_result: &str, data: Value, thinking: &[&str]) -> Vec<Value> {
        let mut events = vec![json!({"type": "agent_started"})];
        for message in thinking {
            events.push(json!({"type": "agent_thinking", "message": message}));
        }
        events
            .push(json!({"type": "tool_executing", "tool": "usage_summary", "tool_call_id": "c1"}));
        events.push(
            json!({"type": "tool_completed", "tool": "usage_summary", "tool_call_id": "c1",
                           "status": "ok", "result": tool_result, "data": data}),
        );
        events.push(json!({"type": "tool_executing", "tool": "recommend", "tool_call_id": "c2"}));
        events.push(json!({"type": "tool_completed", "tool": "recommend", "tool_call_id": "c2",
                           "status": "ok", "result": "1 recommendation", "data": {"monthly_savings_usd": 4837.03}}));
        events.push(json!({"type": "agent_completed", "response": response}));
        events
    }

    const GOOD: &str = "## Cost optimization\n\
        Spend over the last 30 days was $28,716.13 across 12,292,315 requests, +27.4% vs the month before.\n\
        gpt-4o costs $5,145.78 for intent-classifier traffic averaging 380 input and 28 output tokens.\n\n\
        ### Recommendations\n\
        1. Route intent-classifier from gpt-4o to gpt-4o-mini: saves $4,837.03 per month.\n\n\
        ### Implementation plan\n\
        1. Put the route behind a feature flag.\n\
        2. Shadow-evaluate 500 requests and compare answers.\n\
        3. Ramp to 100% over a week while watching accuracy.\n";

    #[test]
    fn a_grounded_answer_with_tools_and_reasoning_scores_high() {
        let events = run(
            GOOD,
            "$28,716.13 over 12,292,315 requests",
            json!({"cost_usd": 5145.78}),
            &[
                "Spend rose 27.4% in the last 30 days",
                "gpt-4o is 17.9% of spend",
            ],
        );
        let q = score(Scenario::CostOptimization, &events);
        assert!(q.score > 0.9, "{}: {}", q.score, q.explain());
    }

    #[test]
    fn keyword_stuffing_without_evidence_stays_below_the_threshold() {
        let stuffed = format!(
            "{}\nsavings spike anomaly forecast next month per day requests tokens 45% 12 requests\n\
             Route everything to cheaper models and save $9,999.00 per month on 2026-11-03 spike.\n",
            GOOD.replace("4,837.03", "9,999.00")
        );
        let events = vec![
            json!({"type": "agent_started"}),
            json!({"type": "agent_completed", "response": stuffed}),
        ];
        for scenario in Scenario::ALL {
            let q = score(scenario, &events);
            assert!(q.score < 0.7, "{scenario:?}: {} ({})", q.score, q.explain());
        }
    }

    #[test]
    fn invented_figures_are_not_grounded() {
        let events = run(GOOD, "nothing numeric", json!({}), &["thinking 1"]);
        let q = score(Scenario::CostOptimization, &events);
        let grounded = q
            .assertions
            .iter()
            .find(|a| a.name == GROUNDED_FIGURES)
            .unwrap();
        // Only $4,837.03 is in the recommend tool's data.
        assert!(grounded.score < 0.5, "{}", grounded.detail);
    }

    #[test]
    fn a_run_that_did_not_complete_scores_zero() {
        let events = vec![
            json!({"type": "agent_started"}),
            json!({"type": "agent_error"}),
        ];
        assert_eq!(score(Scenario::AnomalyDetection, &events).score, 0.0);
    }

    #[test]
    fn anomaly_answers_need_a_dated_anomaly() {
        let answer = "2026-11-15 stands out: $4,724.36 spent against $377.26 expected, driven by team growth. \
                      Over the last 30 days spend averaged $957.20 per day across 400,000 requests.";
        let events = run(
            answer,
            "peak $4,724.36 on 2026-11-15",
            json!({"expected": 377.26, "avg": 957.2}),
            &["2026-11-15 stands out at $4,724.36"],
        );
        let q = score(Scenario::AnomalyDetection, &events);
        let dated = q
            .assertions
            .iter()
            .find(|a| a.name == DATED_ANOMALY)
            .unwrap();
        assert_eq!(dated.score, 1.0);
        assert!(q.score > 0.8, "{}", q.explain());
    }

    proptest! {
        /// Whatever the answer says, without tool events and reasoning the score cannot reach 0.7.
        #[test]
        fn answer_text_alone_never_reaches_the_threshold(answer in "\\PC{0,600}", extra in "[ a-z0-9$%.,\n-]{0,400}") {
            let response = format!("{answer}\n{GOOD}\n{extra}");
            let events = vec![
                json!({"type": "agent_started"}),
                json!({"type": "agent_completed", "response": response}),
            ];
            for scenario in Scenario::ALL {
                prop_assert!(score(scenario, &events).score < 0.7);
            }
        }
    }

    #[test]
    fn answer_only_weights_are_below_the_threshold_in_every_scenario() {
        for scenario in Scenario::ALL {
            let total: f64 = scenario.weights().iter().map(|(_, w)| w).sum();
            let answer_only: f64 = scenario
                .weights()
                .iter()
                .filter(|(name, _)| ANSWER_ONLY.contains(name))
                .map(|(_, w)| w)
                .sum();
            assert!(answer_only / total < 0.7, "{scenario:?}");
        }
    }
}
