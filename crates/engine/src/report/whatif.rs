//! A what-if's answer: the scenario's monthly cost and saving first ("Moving the doc-summaries
//! feature from gemini-2.5-pro to gemini-2.5-flash-lite would cost $X a month instead of $Y: a
//! saving of $Z a month (N%)."), then the assumptions it rests on, then each model's move.
//!
//! Wording only, over `price_scenario`'s result; this module must not compute a figure.

use super::answer::{AnswerInput, plain};
use super::words::{Selection, list, money, provider_name, when};
use crate::findings::PricedScenario;
use crate::report::ComposedReport;
use agentwire_analytics::format;
use agentwire_analytics::whatif::{Change, WhatIf};
use serde_json::json;
use std::fmt::Write;

pub(crate) fn compose(input: &AnswerInput<'_>, priced: &PricedScenario) -> ComposedReport {
    let q = input.query;
    let mut lead = input.unknown_sentences();
    let sel = Selection::of(&priced.scenario.scope, &q.resolved);
    let scope = if sel.is_everything() {
        "all your traffic".to_owned()
    } else {
        let mut parts = sel.who.clone();
        if let Some(f) = &sel.feature {
            parts.push(f.clone());
        }
        let mut s = list(&parts);
        if !sel.on.is_empty() {
            s = if s.is_empty() {
                format!("your traffic on {}", list(&sel.on))
            } else {
                format!("{s}'s traffic on {}", list(&sel.on))
            };
        }
        if let Some(st) = &sel.status {
            s.push_str(&format!(" ({st})"));
        }
        s
    };
    let mut md = String::new();
    match (&priced.priced, &priced.error) {
        (Some(w), _) if w.requests == 0 => {
            let change = match &w.scenario.change {
                Change::ToModel(m) => format!("moving it to {m}"),
                Change::ToProvider(p) => format!("moving it to {}", provider_name(p)),
                Change::CheaperModel => "moving it to a cheaper model".to_owned(),
                Change::CachePrefix => "caching its shared prompt prefix".to_owned(),
            };
            lead.push(format!(
                "There is no traffic{} {}, so {change} changes nothing.",
                sel.after_noun(),
                when(priced.scenario.period, q.reference_day)
            ));
        }
        (Some(w), _) => {
            lead.push(headline(&scope, w));
            for s in &lead {
                let _ = writeln!(md, "{s}");
            }
            let _ = writeln!(md);
            let _ = writeln!(md, "Assumptions:\n");
            for a in &w.assumptions {
                let _ = writeln!(md, "- {a}");
            }
            let _ = writeln!(md);
            let _ = writeln!(
                md,
                "| Model today | Moves to | Requests | Today per month | Scenario per month |\n|---|---|---:|---:|---:|"
            );
            for m in &w.moves {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    m.from_model,
                    m.to_model.as_deref().unwrap_or("(stays)"),
                    format::count(m.requests),
                    money(m.current_monthly_usd),
                    money(m.scenario_monthly_usd)
                );
            }
            let _ = writeln!(md);
        }
        (None, error) => {
            lead.push(format!(
                "That scenario cannot be priced: {}.",
                error
                    .as_deref()
                    .unwrap_or("the price table does not cover it")
            ));
        }
    }
    if md.is_empty() {
        for s in &lead {
            let _ = writeln!(md, "{s}");
        }
        let _ = writeln!(md);
    }
    md.push_str(&input.reading_notes());
    let sentences = lead.iter().map(|s| plain(s)).collect();
    input.finish(
        md,
        sentences,
        "what_if",
        json!({
            "answer": lead.last().map(|s| plain(s)),
            "scenario": priced.scenario,
            "priced": priced.priced,
            "error": priced.error,
        }),
    )
}

/// "Moving X to Y would cost **$A a month** instead of **$B** today: a saving of **$C a month**
/// (N%)."
fn headline(scope: &str, w: &WhatIf) -> String {
    let moved: Vec<String> = w
        .moves
        .iter()
        .filter_map(|m| {
            m.to_model
                .as_ref()
                .map(|to| format!("{} → {to}", m.from_model))
        })
        .collect();
    let action = match &w.scenario.change {
        Change::ToModel(m) => format!("Moving {scope} to {m}"),
        Change::ToProvider(p) => format!(
            "Moving {scope} to {} ({})",
            provider_name(p),
            if moved.is_empty() {
                "nothing moves".to_owned()
            } else {
                list(&moved)
            }
        ),
        Change::CheaperModel => format!(
            "Moving {scope} to the cheapest model of its family in a lower tier ({})",
            if moved.is_empty() {
                "no cheaper model in the price table".to_owned()
            } else {
                list(&moved)
            }
        ),
        Change::CachePrefix => format!("Caching the shared prompt prefix of {scope}"),
    };
    let saving = w.monthly_saving_usd;
    let pct = if w.current_monthly_usd > 0.0 {
        saving / w.current_monthly_usd * 100.0
    } else {
        0.0
    };
    let outcome = if saving > 0.005 {
        format!("a saving of **{} a month** ({pct:.1}%)", money(saving))
    } else if saving < -0.005 {
        format!("**{} a month more** ({:.1}% more)", money(-saving), -pct)
    } else {
        "no saving".to_owned()
    };
    format!(
        "{action} would cost **{} a month** instead of **{}** today: {outcome}.",
        money(w.scenario_monthly_usd),
        money(w.current_monthly_usd)
    )
}
