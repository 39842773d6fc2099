//! Answer quality (section 5): each business scenario's question, its answer scored by
//! [`crate::quality`] against the configured minimum.
//!
//! What it must not do: score anything but the run's own events, or pass an answer below the
//! minimum. The score is filed with the run (and the `quality` metric) whatever the verdict.

use crate::quality::{self, Scenario};
use crate::suite::context::Ctx;
use crate::suite::outcome::{OrOutcome, Outcome};
use crate::suite::probe::Request;

pub(crate) async fn scenario(ctx: &mut Ctx, scenario: Scenario) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    let request = Request::start_agent("supervisor", scenario.question());
    let collected = probe
        .run_to_end(
            &request,
            &format!("asking the {} question", scenario.name()),
        )
        .await?;
    let quality = quality::score(scenario, &collected.run.events);
    probe.file_quality(collected.run_id(), quality.score, scenario.name());
    probe.require_completed(&collected, "the run to score (no answer, quality 0)")?;
    let minimum = ctx.config.min_quality(scenario);
    let explained = format!(
        "quality {:.2} (minimum {minimum:.2}): {}",
        quality.score,
        quality.explain()
    );
    if quality.score < minimum {
        return Err(Outcome::fail(explained, collected.run.events));
    }
    probe.close().await;
    Ok(Outcome::pass(explained))
}
