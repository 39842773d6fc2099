//! The catalogue: every case of `agentwire check`, in one table.
//!
//! Each row of [`CATALOGUE`] is one case: its id (numbered by the PROTOCOL.md section it judges),
//! its title, MUST or SHOULD, its group, the rule as the contract states it, what it needs beyond
//! a reachable target, and the function that carries it out. Listing (`--list`), selection
//! (`--only`/`--skip`), the reports and the runner all read this table and nothing else.
//!
//! **Adding a case** is one row here and one function in its group's file under `cases/`
//! (`async fn my_case(ctx: &mut Ctx) -> OrOutcome<Outcome>`), named by the row's `run`. A new
//! group is a [`Group`] variant (title and key) and a file. Rows are in the order the cases run:
//! the grammar rules come last because they judge every run the cases before them collected;
//! `--list` and the reports sort by id.
//!
//! What it must not do: hold logic. A row names its function; how a case judges is in `cases/`,
//! and when a case runs or is skipped is in the runner.

use super::cases::common::{DATA_QUESTION, OPTIMIZATION_QUESTION};
use super::cases::{
    agui, auth, cluster, connectivity, execution, grammar_rules, ground_truth, isolation, quality,
    recovery, runs,
};
use super::context::Ctx;
use super::outcome::{OrOutcome, Outcome};
use crate::grammar::rules;
use crate::quality::Scenario;
use Group::{
    Agui, Authentication, Cluster, Connectivity, Execution, GroundTruth, Isolation, Quality,
    Recovery, Runs,
};
use Level::{Must, Should};
use Needs::{MainUser, Nothing, OtherNode, Secret};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;

/// MUST or SHOULD, as the contract words the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Must,
    Should,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Must => "MUST",
            Self::Should => "SHOULD",
        }
    }
}

/// Which part of the catalogue a case belongs to: a file under `cases/`, a section of the
/// Markdown report, a JUnit class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Connectivity,
    Authentication,
    Runs,
    Grammar,
    Recovery,
    Isolation,
    Execution,
    Quality,
    GroundTruth,
    Cluster,
    Agui,
}

impl Group {
    /// Every group, in the order reports show them.
    pub const ALL: [Group; 11] = [
        Self::Connectivity,
        Self::Authentication,
        Self::Runs,
        Self::Grammar,
        Self::Recovery,
        Self::Isolation,
        Self::Execution,
        Self::Quality,
        Self::GroundTruth,
        Self::Cluster,
        Self::Agui,
    ];

    /// The heading for people.
    pub fn title(self) -> &'static str {
        match self {
            Self::Connectivity => "Connectivity",
            Self::Authentication => "Authentication",
            Self::Runs => "Runs",
            Self::Grammar => "Event grammar",
            Self::Recovery => "Error recovery",
            Self::Isolation => "Isolation",
            Self::Execution => "Agent execution",
            Self::Quality => "Answer quality",
            Self::GroundTruth => "Ground truth",
            Self::Cluster => "Several nodes",
            Self::Agui => "AG-UI",
        }
    }

    /// The key for machines (JUnit class names, JSON): the serialized name.
    pub fn key(self) -> &'static str {
        match self {
            Self::Connectivity => "connectivity",
            Self::Authentication => "authentication",
            Self::Runs => "runs",
            Self::Grammar => "grammar",
            Self::Recovery => "recovery",
            Self::Isolation => "isolation",
            Self::Execution => "execution",
            Self::Quality => "quality",
            Self::GroundTruth => "ground_truth",
            Self::Cluster => "cluster",
            Self::Agui => "agui",
        }
    }
}

/// What a case needs beyond a reachable target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing: it judges the HTTP surface, presents its own (bad) credentials, or judges what
    /// other cases collected.
    Nothing,
    /// The main user's credentials: skipped with an error once they were refused.
    MainUser,
    /// `--secret`, to mint tokens; the text says why a `--token` is not enough.
    Secret(&'static str),
    /// A second `--target` (another node of the same deployment) and the main user's
    /// credentials; the text says what the case does on that node.
    OtherNode(&'static str),
}

/// Why the multi-user cases need `--secret`.
const SEVERAL_USERS: &str = "this case acts as several users, and a --token is one user";

/// The function that carries a case out: it judges what it sees and returns the case's outcome
/// (`Err` when it ended early).
pub(crate) type CaseFn =
    for<'a> fn(&'a mut Ctx) -> Pin<Box<dyn Future<Output = OrOutcome<Outcome>> + Send + 'a>>;

/// One row of the catalogue.
#[derive(Debug)]
pub struct Case {
    /// Numbered by PROTOCOL.md section, e.g. `5.4`.
    pub id: &'static str,
    pub title: &'static str,
    pub level: Level,
    pub group: Group,
    /// The rule as the contract states it: what a failure is measured against.
    pub rule: &'static str,
    pub needs: Needs,
    pub(crate) run: CaseFn,
}

/// A case's description: its row without the function (for listings, progress and selection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CaseInfo {
    pub id: &'static str,
    pub title: &'static str,
    pub level: Level,
    pub group: Group,
    pub rule: &'static str,
    /// Whether the case needs `--secret`.
    pub needs_secret: bool,
}

impl Case {
    /// Every case, in the order they run.
    pub fn all() -> Vec<&'static Case> {
        CATALOGUE.iter().collect()
    }

    pub fn info(&self) -> CaseInfo {
        CaseInfo {
            id: self.id,
            title: self.title,
            level: self.level,
            group: self.group,
            rule: self.rule,
            needs_secret: matches!(self.needs, Needs::Secret(_)),
        }
    }

    /// The PROTOCOL.md section the case judges (`5` for `5.4`).
    pub fn section(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }
}

/// A row for one of the grammar rules of [`crate::grammar::rules`]: its id and title are the
/// rule's, and it judges every run the suite collected.
const fn grammar_rule(rule: &'static str, text: &'static str) -> Case {
    let (id, title) = rules::split(rule);
    Case {
        id,
        title,
        level: Level::Must,
        group: Group::Grammar,
        rule: text,
        needs: Needs::Nothing,
        run: |ctx| Box::pin(grammar_rules::judge(ctx)),
    }
}

/// The catalogue, in the order the cases run.
static CATALOGUE: &[Case] = &[
    // ---------------------------------------------------------------- connectivity (sections 1, 7)
    Case {
        id: "7.1",
        title: "GET /health answers healthy",
        level: Must,
        group: Connectivity,
        rule: "GET /health (and /api/health) answers 200 {\"status\":\"healthy\",...,\"checks\":{...}}",
        needs: Nothing,
        run: |ctx| Box::pin(connectivity::health(ctx)),
    },
    Case {
        id: "7.2",
        title: "liveness and readiness answer 200",
        level: Must,
        group: Connectivity,
        rule: "GET /health/live and GET /health/ready answer 200 while the deployment serves",
        needs: Nothing,
        run: |ctx| Box::pin(connectivity::live_ready(ctx)),
    },
    Case {
        id: "1.1",
        title: "WebSocket at /ws connects with a Bearer token",
        level: Must,
        group: Connectivity,
        rule: "GET /ws upgrades; with valid credentials the server sends connection_established with connection_id, user_id (the token's sub), protocol agentwire.v1, the agents and limits",
        needs: MainUser,
        run: |ctx| Box::pin(connectivity::connect(ctx)),
    },
    Case {
        id: "1.2",
        title: "JSON ping gets pong",
        level: Must,
        group: Connectivity,
        rule: "{\"type\":\"ping\"} is answered with {\"type\":\"pong\"}",
        needs: MainUser,
        run: |ctx| Box::pin(connectivity::ping(ctx)),
    },
    Case {
        id: "1.3",
        title: "agentwire.v1 is selected, jwt.* never echoed",
        level: Must,
        group: Connectivity,
        rule: "if the client offers agentwire.v1 the server selects it; it never echoes a jwt.* item and selects nothing when agentwire.v1 was not offered",
        needs: MainUser,
        run: |ctx| Box::pin(connectivity::subprotocol(ctx)),
    },
    Case {
        id: "1.4",
        title: "binary frames are refused, the socket keeps serving",
        level: Must,
        group: Connectivity,
        rule: "binary frames are refused with error INVALID_MESSAGE; a bad message never closes the connection",
        needs: MainUser,
        run: |ctx| Box::pin(connectivity::binary_refused(ctx)),
    },
    // ------------------------------------------------------------------------ authentication (2)
    Case {
        id: "2.1",
        title: "a jwt.<token> subprotocol item authenticates",
        level: Must,
        group: Authentication,
        rule: "a subprotocol item jwt.<base64url(JWT), unpadded> authenticates the connection",
        needs: MainUser,
        run: |ctx| Box::pin(auth::good_token(ctx, auth::Presented::Subprotocol)),
    },
    Case {
        id: "2.2",
        title: "a first-frame authenticate authenticates",
        level: Must,
        group: Authentication,
        rule: "a first frame {\"type\":\"authenticate\",\"token\":...} authenticates a connection opened without credentials",
        needs: MainUser,
        run: |ctx| Box::pin(auth::good_token(ctx, auth::Presented::FirstFrame)),
    },
    Case {
        id: "2.3",
        title: "without credentials only ping and authenticate are served",
        level: Must,
        group: Authentication,
        rule: "no credentials at the upgrade: the upgrade succeeds; until authenticate succeeds only ping and authenticate are served, anything else gets error AUTH_REQUIRED",
        needs: MainUser,
        run: |ctx| Box::pin(auth::auth_required(ctx)),
    },
    Case {
        id: "2.4",
        title: "a forged token is refused with HTTP 401",
        level: Must,
        group: Authentication,
        rule: "credentials presented at the upgrade and invalid (bad signature): HTTP 401 with {\"error_code\":\"AUTH_FAILED\",\"message\":...}",
        needs: Nothing,
        run: |ctx| Box::pin(auth::bad_token(ctx, auth::BadToken::Forged)),
    },
    Case {
        id: "2.5",
        title: "an expired token is refused with HTTP 401",
        level: Must,
        group: Authentication,
        rule: "credentials presented at the upgrade and expired: HTTP 401 with {\"error_code\":\"AUTH_FAILED\",...}",
        needs: Secret(
            "an expired token must be signed with the deployment's key, which a --token does not give",
        ),
        run: |ctx| Box::pin(auth::bad_token(ctx, auth::BadToken::Expired)),
    },
    Case {
        id: "2.6",
        title: "an alg:none token is refused with HTTP 401",
        level: Must,
        group: Authentication,
        rule: "credentials with alg: none: HTTP 401 with {\"error_code\":\"AUTH_FAILED\",...}",
        needs: Nothing,
        run: |ctx| Box::pin(auth::bad_token(ctx, auth::BadToken::AlgNone)),
    },
    // ------------------------------------------------------------------------------ runs (3, 4)
    Case {
        id: "3.4",
        title: "replies carry the request's id as request_id",
        level: Must,
        group: Group::Grammar,
        rule: "a reply to a client message carries that message's id as request_id",
        needs: MainUser,
        run: |ctx| Box::pin(grammar_rules::request_ids(ctx)),
    },
    Case {
        id: "4.1",
        title: "start_agent gets run_accepted before the run's first event",
        level: Must,
        group: Runs,
        rule: "on acceptance the server replies run_accepted with request_id, run_id and thread_id before the run's first event",
        needs: MainUser,
        run: |ctx| Box::pin(runs::run_accepted(ctx)),
    },
    Case {
        id: "4.2",
        title: "agent aliases and message aliases start runs",
        level: Must,
        group: Runs,
        rule: "agent_type accepts canonical names and aliases (unified_data_agent, optimization_agent); agent_execute and user_message start runs like start_agent",
        needs: MainUser,
        run: |ctx| Box::pin(runs::aliases(ctx)),
    },
    Case {
        id: "4.3",
        title: "an unknown agent is AGENT_NOT_FOUND and starts no run",
        level: Must,
        group: Runs,
        rule: "unknown agent_type: error AGENT_NOT_FOUND, and no run is created",
        needs: MainUser,
        run: |ctx| Box::pin(runs::unknown_agent(ctx)),
    },
    Case {
        id: "4.4",
        title: "several runs at once on one connection",
        level: Must,
        group: Runs,
        rule: "one connection may run several runs at once (different threads)",
        needs: MainUser,
        run: |ctx| Box::pin(runs::several_runs(ctx)),
    },
    Case {
        id: "4.5",
        title: "a second run on a busy thread is RUN_CONFLICT",
        level: Should,
        group: Runs,
        rule: "a second start_agent on a thread whose run is still going gets error RUN_CONFLICT (default policy; enqueue is configurable)",
        needs: MainUser,
        run: |ctx| Box::pin(runs::run_conflict(ctx)),
    },
    Case {
        id: "4.6",
        title: "cancel ends the run with agent_cancelled",
        level: Must,
        group: Runs,
        rule: "cancel stops the run and all its tools and sub-agents; terminal agent_cancelled, nothing after it",
        needs: MainUser,
        run: |ctx| Box::pin(runs::cancel(ctx)),
    },
    Case {
        id: "4.7",
        title: "one user on several sockets at once",
        level: Must,
        group: Isolation,
        rule: "a user may hold several connections at once; each gets its own runs complete, and no other user's data",
        needs: MainUser,
        run: |ctx| Box::pin(isolation::one_user_many_sockets(ctx)),
    },
    // ------------------------------------------------------------------- recovery (5.10, 6)
    Case {
        id: "6.1",
        title: "malformed JSON, then a good request on the same socket",
        level: Must,
        group: Recovery,
        rule: "a frame that is not JSON gets error INVALID_MESSAGE; a bad message never closes the connection, and the next good request is served",
        needs: MainUser,
        run: |ctx| Box::pin(recovery::malformed(ctx)),
    },
    Case {
        id: "6.2",
        title: "an unknown message type is UNKNOWN_MESSAGE_TYPE",
        level: Must,
        group: Recovery,
        rule: "a message whose type is not in section 4 gets error UNKNOWN_MESSAGE_TYPE; the connection stays open",
        needs: MainUser,
        run: |ctx| Box::pin(recovery::unknown_type(ctx)),
    },
    Case {
        id: "5.10",
        title: "resume after a disconnect: no gap, no duplicate",
        level: Must,
        group: Recovery,
        rule: "resume replays the run's events with seq > after_seq, then follows it live: across a reconnect the client loses nothing and sees nothing twice",
        needs: MainUser,
        run: |ctx| Box::pin(recovery::resume(ctx)),
    },
    // ------------------------------------------------------------------------- isolation (6, 7)
    Case {
        id: "6.3",
        title: "resume or cancel of another user's run is RUN_NOT_FOUND",
        level: Must,
        group: Isolation,
        rule: "cancel/resume of a run that belongs to another user: error RUN_NOT_FOUND, and none of its events",
        needs: Secret(SEVERAL_USERS),
        run: |ctx| Box::pin(isolation::resume_other(ctx)),
    },
    Case {
        id: "6.4",
        title: "concurrent users are isolated",
        level: Must,
        group: Isolation,
        rule: "nothing a client sends can affect another user's connections or runs: no socket ever sees another user's run_id or request",
        needs: Secret(SEVERAL_USERS),
        run: |ctx| Box::pin(isolation::users_isolated(ctx)),
    },
    Case {
        id: "7.3",
        title: "run events over HTTP are owner-only",
        level: Must,
        group: Isolation,
        rule: "GET /api/runs/{run_id}/events answers the run's owner only; no token: 401; another user: 404",
        needs: Secret(SEVERAL_USERS),
        run: |ctx| Box::pin(isolation::run_events_owner_only(ctx)),
    },
    // ------------------------------------------------------------------------- execution (5)
    Case {
        id: "5.11",
        title: "the data agent completes a run",
        level: Must,
        group: Execution,
        rule: "a run of the data agent (unified_data_agent) ends with agent_completed carrying a response",
        needs: MainUser,
        run: |ctx| Box::pin(execution::agent_completes(ctx, "data", DATA_QUESTION)),
    },
    Case {
        id: "5.12",
        title: "the optimization agent completes a run",
        level: Must,
        group: Execution,
        rule: "a run of the optimization agent ends with agent_completed carrying a response",
        needs: MainUser,
        run: |ctx| {
            Box::pin(execution::agent_completes(
                ctx,
                "optimization",
                OPTIMIZATION_QUESTION,
            ))
        },
    },
    Case {
        id: "5.9",
        title: "a supervisor run hands off to other agents",
        level: Should,
        group: Execution,
        rule: "a run is executed by its entry agent, which may hand off to others: agent_handoff events and events from at least two distinct agents",
        needs: MainUser,
        run: |ctx| Box::pin(execution::handoffs(ctx)),
    },
    Case {
        id: "5.13",
        title: "performance: runs in sequence all complete",
        level: Must,
        group: Execution,
        rule: "runs one after another on one connection all complete; their latencies are judged by the thresholds",
        needs: MainUser,
        run: |ctx| Box::pin(execution::performance(ctx)),
    },
    // ----------------------------------------------------------------------- quality (5)
    Case {
        id: "5.14",
        title: "quality: cost optimization",
        level: Must,
        group: Quality,
        rule: "the answer names concrete recommendations with monthly savings and implementation steps, grounded in what its tools found",
        needs: MainUser,
        run: |ctx| Box::pin(quality::scenario(ctx, Scenario::CostOptimization)),
    },
    Case {
        id: "5.15",
        title: "quality: anomaly detection",
        level: Must,
        group: Quality,
        rule: "the answer names the anomalous day with figures, grounded in what its tools found",
        needs: MainUser,
        run: |ctx| Box::pin(quality::scenario(ctx, Scenario::AnomalyDetection)),
    },
    Case {
        id: "5.16",
        title: "quality: capacity planning",
        level: Must,
        group: Quality,
        rule: "the answer gives volumes with a time base and a forward-looking figure, grounded in what its tools found",
        needs: MainUser,
        run: |ctx| Box::pin(quality::scenario(ctx, Scenario::CapacityPlanning)),
    },
    // ------------------------------------------------------------------- ground truth (5)
    Case {
        id: "5.17",
        title: "ground truth: the planted spike's day is named",
        level: Must,
        group: GroundTruth,
        rule: "on an uploaded data set with a planted daily spike, the answer names that day as anomalous",
        needs: Secret(ground_truth::FRESH_TENANT),
        run: |ctx| Box::pin(ground_truth::ask(ctx, &ground_truth::SPIKE_DAY)),
    },
    Case {
        id: "5.18",
        title: "ground truth: the routing saving is within 10%",
        level: Must,
        group: GroundTruth,
        rule: "on an uploaded data set with a known routing opportunity, the answer states a monthly saving within 10% of the truth at list prices",
        needs: Secret(ground_truth::FRESH_TENANT),
        run: |ctx| Box::pin(ground_truth::ask(ctx, &ground_truth::ROUTING_SAVING)),
    },
    Case {
        id: "5.19",
        title: "ground truth: a team's spend in a month, stated early",
        level: Must,
        group: GroundTruth,
        rule: "asked what a team spent in a calendar month of the uploaded data, the answer states the figure (within 1%) in its first three sentences",
        needs: Secret(ground_truth::FRESH_TENANT),
        run: |ctx| Box::pin(ground_truth::ask(ctx, &ground_truth::TEAM_MONTH_SPEND)),
    },
    Case {
        id: "5.20",
        title: "ground truth: the team that spent the most, stated early",
        level: Must,
        group: GroundTruth,
        rule: "asked which team spent the most in a month, the answer names it with its spend (within 1%) in its first three sentences",
        needs: Secret(ground_truth::FRESH_TENANT),
        run: |ctx| Box::pin(ground_truth::ask(ctx, &ground_truth::TOP_TEAM)),
    },
    Case {
        id: "5.21",
        title: "ground truth: a model's requests, stated early",
        level: Must,
        group: GroundTruth,
        rule: "asked how many requests went to a model in a month, the answer states the count (within 1%) in its first three sentences",
        needs: Secret(ground_truth::FRESH_TENANT),
        run: |ctx| Box::pin(ground_truth::ask(ctx, &ground_truth::MODEL_REQUESTS)),
    },
    Case {
        id: "5.22",
        title: "ground truth: two periods compared, both figures early",
        level: Must,
        group: GroundTruth,
        rule: "asked to compare a team's spend over two date ranges, the answer states both figures (within 1%) in its first three sentences",
        needs: Secret(ground_truth::FRESH_TENANT),
        run: |ctx| Box::pin(ground_truth::ask(ctx, &ground_truth::WEEKS_COMPARED)),
    },
    Case {
        id: "5.23",
        title: "ground truth: two models compared, both figures early",
        level: Must,
        group: GroundTruth,
        rule: "asked which of two models cost more in a month, the answer states both models' spend (within 1%) in its first three sentences",
        needs: Secret(ground_truth::FRESH_TENANT),
        run: |ctx| Box::pin(ground_truth::ask(ctx, &ground_truth::MODELS_COMPARED)),
    },
    Case {
        id: "5.24",
        title: "ground truth: a structured agent_execute task runs",
        level: Must,
        group: GroundTruth,
        rule: "agent_execute with a task's fields and no question (issue 10) runs to agent_completed, compares the stated monthly spend with the data's (within 5%) and names the fields it did not use",
        needs: Secret(ground_truth::FRESH_TENANT),
        run: |ctx| Box::pin(ground_truth::task(ctx)),
    },
    // -------------------------------------------- several nodes (4, 5, 7): two or more targets
    Case {
        id: "5.25",
        title: "resume on another node: no gap, no duplicate",
        level: Must,
        group: Cluster,
        rule: "a run started on one node and resumed on another after a disconnect replays the events with seq > after_seq and follows it live there: nothing lost, nothing twice",
        needs: OtherNode("it resumes on the second node a run started on the first"),
        run: |ctx| Box::pin(cluster::resume_elsewhere(ctx)),
    },
    Case {
        id: "4.8",
        title: "cancel sent to another node ends the run with agent_cancelled",
        level: Must,
        group: Cluster,
        rule: "a cancel for a run executing on one node, sent to another node, ends the run with agent_cancelled and nothing after it",
        needs: OtherNode("it cancels through the second node a run executing on the first"),
        run: |ctx| Box::pin(cluster::cancel_elsewhere(ctx)),
    },
    Case {
        id: "7.4",
        title: "a run's events read from another node are the events sent",
        level: Must,
        group: Cluster,
        rule: "GET /api/runs/{run_id}/events on any node answers the run's events exactly as the node that ran it sent them",
        needs: OtherNode("it reads from the second node a run that ran on the first"),
        run: |ctx| Box::pin(cluster::history_elsewhere(ctx)),
    },
    // --------------------------------------------- AG-UI (7): skipped where /api/agui is absent
    Case {
        id: "7.5",
        title: "AG-UI: a run's event stream follows AG-UI's rules",
        level: Must,
        group: Agui,
        rule: "POST /api/agui with a RunAgentInput answers 200 text/event-stream; every event is `id: <seq>` (ids increasing) and `data: <JSON>` with an AG-UI type; RUN_STARTED first, then RUN_FINISHED (the report as result) or RUN_ERROR last and nothing after it; every START closed before RUN_FINISHED and no CONTENT/ARGS/END for anything not open; the tool calls and the answer text are in it",
        needs: MainUser,
        run: |ctx| Box::pin(agui::stream(ctx)),
    },
    Case {
        id: "7.6",
        title: "AG-UI: resume by Last-Event-ID is byte-identical",
        level: Must,
        group: Agui,
        rule: "GET /api/agui/runs/{run_id}/events with Last-Event-ID: N returns the events with id > N, byte for byte as first delivered (without the header, all of them), then follows the run to its end",
        needs: MainUser,
        run: |ctx| Box::pin(agui::resume(ctx)),
    },
    Case {
        id: "7.7",
        title: "AG-UI: refusals are JSON errors with their codes",
        level: Must,
        group: Agui,
        rule: "no or bad token: 401; a body that is not a RunAgentInput: 400 INVALID_MESSAGE; an unknown agent: 404 AGENT_NOT_FOUND; resume or cancel of an unknown run, or of another user's: 404 RUN_NOT_FOUND, the same answer",
        needs: MainUser,
        run: |ctx| Box::pin(agui::refusals(ctx)),
    },
    // ------------------------------------- grammar (3, 5): last, over every run collected above
    grammar_rule(
        rules::TYPE_AND_TIMESTAMP,
        "every server frame has a top-level string type and an RFC 3339 UTC timestamp",
    ),
    grammar_rule(
        rules::TIMESTAMP_MILLIS,
        "timestamps have millisecond precision, e.g. 2026-11-26T18:04:05.123Z",
    ),
    grammar_rule(
        rules::RUN_EVENT_FIELDS,
        "run events also carry run_id, thread_id, seq and agent",
    ),
    grammar_rule(
        rules::ONE_STARTED_FIRST,
        "exactly one agent_started, and it is the run's first event",
    ),
    grammar_rule(
        rules::ONE_TERMINAL_LAST,
        "exactly one terminal event (agent_completed, agent_error or agent_cancelled), last; nothing after it",
    ),
    grammar_rule(
        rules::SEQ_CONTIGUOUS,
        "seq starts at 1 and is contiguous within the run",
    ),
    grammar_rule(
        rules::TOOL_PAIRS,
        "every tool_executing is followed by its tool_completed (same tool_call_id) before the terminal event",
    ),
    grammar_rule(
        rules::CRITICAL_EVENTS,
        "a completed run contains at least one agent_thinking, one tool pair and the agent_completed",
    ),
    grammar_rule(
        rules::EVENT_FIELDS,
        "each event type carries the fields of the section 5 table",
    ),
    grammar_rule(
        rules::ONE_RUN,
        "a run's events share one run_id (and one thread_id)",
    ),
    grammar_rule(
        rules::RUN_EVENT_TYPES,
        "a run consists of the event types of the section 5 grammar",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_numbered_by_section() {
        let mut ids: Vec<&str> = CATALOGUE.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CATALOGUE.len(), "duplicate case ids");
        for case in CATALOGUE {
            let section: u32 = case.section().parse().unwrap();
            assert!((1..=7).contains(&section), "{}", case.id);
            assert!(
                !case.title.is_empty() && !case.rule.is_empty(),
                "{}",
                case.id
            );
        }
    }

    #[test]
    fn every_grammar_rule_has_its_row_and_they_run_last() {
        let first_rule = CATALOGUE.len() - rules::ALL.len();
        for (row, rule) in CATALOGUE[first_rule..].iter().zip(rules::ALL) {
            assert_eq!(format!("{} {}", row.id, row.title), rule);
            assert_eq!(row.group, Group::Grammar);
        }
        for row in &CATALOGUE[..first_rule] {
            assert!(!rules::ALL.iter().any(|r| rules::split(r).0 == row.id));
        }
    }

    #[test]
    fn group_keys_are_the_serialized_names() {
        for group in Group::ALL {
            assert_eq!(serde_json::to_value(group).unwrap(), group.key());
        }
        for case in CATALOGUE {
            assert!(Group::ALL.contains(&case.group));
        }
    }
}
