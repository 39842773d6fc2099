//! Ground truth (section 5): questions about a data set the suite generated and uploaded into a
//! fresh tenant, so that the answer can be checked against what is known to be true (see
//! [`crate::truth`]).
//!
//! The tenant is set up once, by the first of these cases to run, and shared by the rest. A
//! question is a [`TruthQuestion`]: what to ask, how to score the answer's quality, how to judge
//! it against the truth, and what of our server's structured `report` to add as a note. Adding a
//! ground-truth case is one `TruthQuestion` here (with its judge in `truth` or `lookups`) and one
//! row. The lookups (`crate::lookups`) ask for one figure each, which must come early; the
//! structured task ([`task`]) is sent as `agent_execute` with fields and no question.
//!
//! What it must not do: let anything but the answer decide. Our server's `report` extras appear
//! in the note only; a deployment without them is judged the same.

use super::common::kind;
use crate::client::Credentials;
use crate::lookups;
use crate::quality::{self, Scenario};
use crate::suite::context::{Ctx, TruthSetup, User};
use crate::suite::outcome::{OrOutcome, Outcome};
use crate::suite::probe::{Probe, Request};
use crate::truth::{self, GroundTruth};
use serde_json::Value;

/// Why the ground-truth cases need `--secret`.
pub(crate) const FRESH_TENANT: &str =
    "ground truth uploads its data set into a fresh tenant, which only a minted token can name";

/// One question about the uploaded data set.
#[derive(Debug)]
pub(crate) struct TruthQuestion {
    /// What to ask, about the data set uploaded.
    pub question: fn(&GroundTruth) -> String,
    /// How the answer's quality is scored (filed as `quality{scenario:ground_truth}`); a lookup
    /// is judged by its figure alone.
    pub scenario: Option<Scenario>,
    /// The verdict on the answer: `Ok` with a note, `Err` with what it got wrong.
    pub judge: fn(&str, &GroundTruth) -> Result<String, String>,
    /// Our server's structured `report`, when present, as a note (`; report.x is ...`).
    pub report_note: fn(&Value) -> Option<String>,
}

pub(crate) const SPIKE_DAY: TruthQuestion = TruthQuestion {
    question: |_| {
        "Did our AI spend spike on any day in the last 30 days? Name the day and what drove it."
            .to_owned()
    },
    scenario: Some(Scenario::AnomalyDetection),
    judge: truth::check_spike_day,
    report_note: |report| {
        let first = report.get("anomalies")?.as_array()?.first()?;
        Some(format!(
            "; report.anomalies[0] starts {}",
            first.get("start").unwrap_or(&Value::Null)
        ))
    },
};

pub(crate) const ROUTING_SAVING: TruthQuestion = TruthQuestion {
    question: |_| {
        "How can we reduce our AI costs? Give each recommendation with its monthly savings."
            .to_owned()
    },
    scenario: Some(Scenario::CostOptimization),
    judge: truth::check_routing_saving,
    report_note: |report| {
        let saving = report.get("total_monthly_savings_usd")?.as_f64()?;
        Some(format!("; report.total_monthly_savings_usd {saving:.2}"))
    },
};

/// A lookup's figure in the answer's report, when our server's `report` carries it.
fn lookup_note(report: &Value) -> Option<String> {
    let value = report
        .get("lookup")?
        .get("result")?
        .get("value")?
        .as_f64()?;
    Some(format!("; report.lookup.result.value {value:.2}"))
}

/// A lookup question: its text and its judge, from one of `lookups`' builders.
macro_rules! lookup {
    ($builder:path) => {
        TruthQuestion {
            question: |t| $builder(t).question,
            scenario: None,
            judge: |answer, t| lookups::judge(answer, &$builder(t)),
            report_note: lookup_note,
        }
    };
}

pub(crate) const TEAM_MONTH_SPEND: TruthQuestion = lookup!(lookups::team_month_spend);
pub(crate) const TOP_TEAM: TruthQuestion = lookup!(lookups::top_team);
pub(crate) const MODEL_REQUESTS: TruthQuestion = lookup!(lookups::model_requests);
pub(crate) const WEEKS_COMPARED: TruthQuestion = lookup!(lookups::weeks_compared);
pub(crate) const MODELS_COMPARED: TruthQuestion = lookup!(lookups::models_compared);

/// Generates the data set and uploads it into a fresh tenant.
async fn setup(ctx: &Ctx) -> TruthSetup {
    let tenant = format!("check-gt-{}", ctx.run_tag);
    let Some(user) = ctx.other_user("gt", Some(tenant.clone())) else {
        return TruthSetup::Skip(format!("needs --secret: {FRESH_TENANT}"));
    };
    let seed = u64::from_str_radix(&ctx.run_tag, 16).unwrap_or(1);
    let data = truth::generate(chrono::Utc::now(), seed);
    let auth = format!("Bearer {}", user.token);
    let answer = ctx
        .target
        .http
        .request(
            "POST",
            "/api/usage",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "text/csv"),
            ],
            data.csv.clone().into_bytes(),
            ctx.config.completion_timeout,
        )
        .await;
    match answer {
        Ok(answer) if (200..300).contains(&answer.status) => TruthSetup::Ready {
            user,
            truth: Box::new(data),
        },
        Ok(answer) if answer.status == 404 || answer.status == 405 => TruthSetup::Skip(format!(
            "the deployment does not accept POST /api/usage (HTTP {}); ground truth needs it to load its data set",
            answer.status
        )),
        Ok(answer) => TruthSetup::Fail(format!(
            "uploading the ground-truth data set ({} rows) into tenant {tenant} was refused: HTTP {}: {}",
            data.rows,
            answer.status,
            answer.text().chars().take(400).collect::<String>()
        )),
        Err(err) => TruthSetup::Fail(format!("uploading the ground-truth data set: {err}")),
    }
}

/// The ground-truth tenant's user and data set, set up by the first case that needs them.
async fn tenant(ctx: &mut Ctx) -> OrOutcome<(User, Box<GroundTruth>)> {
    if ctx.truth.is_none() {
        let setup = setup(ctx).await;
        ctx.truth = Some(setup);
    }
    match &ctx.truth {
        Some(TruthSetup::Ready { user, truth }) => Ok((user.clone(), truth.clone())),
        Some(TruthSetup::Skip(reason)) => Err(Outcome::skip(reason.clone())),
        Some(TruthSetup::Fail(reason)) => Err(Outcome::error(reason.clone())),
        None => Err(Outcome::error("ground truth was not set up")),
    }
}

/// Asks `question` as the ground-truth tenant's user and judges the answer against the truth.
pub(crate) async fn ask(ctx: &mut Ctx, question: &TruthQuestion) -> OrOutcome<Outcome> {
    let (user, data) = tenant(ctx).await?;
    let mut probe = Probe::connect(ctx, &user, Credentials::Bearer(user.token.clone()))
        .await
        .map_err(|err| Outcome::error(format!("connecting as the ground-truth user: {err}")))?;
    let collected = probe
        .run_to_end(
            &Request::start_agent("supervisor", &(question.question)(&data)),
            "asking about the uploaded data",
        )
        .await?;
    if let Some(scenario) = question.scenario {
        let quality = quality::score(scenario, &collected.run.events);
        probe.file_quality(collected.run_id(), quality.score, "ground_truth");
    }
    probe.require_completed(&collected, "the run on the uploaded data")?;
    let answer = collected.run.response().unwrap_or_default();
    let report_note = collected
        .run
        .events
        .iter()
        .find(|e| kind(e) == "agent_completed")
        .and_then(|e| e.get("report"))
        .and_then(question.report_note)
        .unwrap_or_default();
    match (question.judge)(answer, &data) {
        Ok(note) => {
            probe.close().await;
            Ok(Outcome::pass(format!("{note}{report_note}")))
        }
        Err(reason) => Err(Outcome::fail(
            format!("{reason}{report_note}"),
            collected.run.events,
        )),
    }
}

/// Sends issue 10's structured task (`agent_execute` with fields and no question) as the
/// ground-truth tenant's user: it must run to `agent_completed`, compare the stated monthly spend
/// with the data's, and name the fields it did not use.
pub(crate) async fn task(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let (user, data) = tenant(ctx).await?;
    let mut probe = Probe::connect(ctx, &user, Credentials::Bearer(user.token.clone()))
        .await
        .map_err(|err| Outcome::error(format!("connecting as the ground-truth user: {err}")))?;
    let collected = probe
        .run_to_end(
            &Request::task("optimization_agent", lookups::task_fields()).of_agent("optimization"),
            "running a structured task on the uploaded data",
        )
        .await?;
    probe.require_completed(&collected, "the structured task's run")?;
    let answer = collected.run.response().unwrap_or_default();
    match lookups::judge_task(answer, &data) {
        Ok(note) => {
            probe.close().await;
            Ok(Outcome::pass(note))
        }
        Err(reason) => Err(Outcome::fail(reason, collected.run.events)),
    }
}
