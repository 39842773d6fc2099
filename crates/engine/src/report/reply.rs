//! The short reply to a greeting, a question outside the usage data, or one usage records cannot
//! answer: what the agents can answer, with three example questions made from the tenant's own
//! teams, models and features (`agentwire_question::reply`). No figures, no sections.

use super::answer::{AnswerInput, plain};
use crate::report::ComposedReport;
use agentwire_question::{example_questions, reply};
use serde_json::json;

pub(crate) fn compose(input: &AnswerInput<'_>) -> ComposedReport {
    let text = reply(input.query, input.vocab);
    let first = text
        .split_inclusive(['.', '!', '?'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let examples = example_questions(input.vocab);
    input.finish(
        format!("{text}\n"),
        vec![plain(&first)],
        "reply",
        json!({
            "kind": input.query.intent.name(),
            "examples": examples,
        }),
    )
}
