//! The run's plan: which agents answer the request, decided once by the run's driver before
//! `agent_started` announces it, and carried by the run's context from then on.
//!
//! The plan follows the typed query (`question.rs`): a lookup is answered by the data agent's
//! `run_query` alone, a what-if by the optimization agent's `price_scenario`, a greeting or a
//! question the data cannot answer by a short reply, and the broad questions (cut costs, why did
//! spend spike, will we hit our limits, a report) by the full review. Triage comes first in every
//! supervisor run, to show how the question was read. The supervisor hands off to the plan's
//! agents in order; an agent addressed directly answers alone. [`RunPlan::new`] is the one place a
//! request becomes a plan, and [`RunPlan::ground`] the one place it is read again once the
//! tenant's names are known. This module must not look at records or emit events.

use crate::question::{Question, Request};
use crate::tenant::TenantData;
use agentwire_protocol::AgentKind;
use agentwire_question::{Intent, ReviewFocus};
use chrono::NaiveDate;

/// An agent the supervisor can hand off to: every agent but the supervisor itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subagent {
    Triage,
    Data,
    Optimization,
    Actions,
    Reporting,
}

impl Subagent {
    /// The sub-agent an entry agent is, or `None` for the supervisor.
    pub fn of(kind: AgentKind) -> Option<Subagent> {
        match kind {
            AgentKind::Supervisor => None,
            AgentKind::Triage => Some(Subagent::Triage),
            AgentKind::Data => Some(Subagent::Data),
            AgentKind::Optimization => Some(Subagent::Optimization),
            AgentKind::Actions => Some(Subagent::Actions),
            AgentKind::Reporting => Some(Subagent::Reporting),
        }
    }

    pub fn kind(self) -> AgentKind {
        match self {
            Subagent::Triage => AgentKind::Triage,
            Subagent::Data => AgentKind::Data,
            Subagent::Optimization => AgentKind::Optimization,
            Subagent::Actions => AgentKind::Actions,
            Subagent::Reporting => AgentKind::Reporting,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.kind().as_str()
    }
}

/// Who answers a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry {
    /// The supervisor hands off to these agents, in order.
    Supervisor { agents: Vec<Subagent> },
    /// An agent addressed directly gathers what it needs and answers alone.
    Direct(Subagent),
}

/// What kind of answer the run gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A fact from the records, then its table.
    Lookup,
    /// A scenario's monthly cost and saving.
    WhatIf,
    /// What the agents can answer, with example questions; no data tool.
    Reply,
    /// The full review.
    Review,
}

/// What a run will do, and the reading of the request it follows from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunPlan {
    pub entry: Entry,
    pub question: Question,
    /// The agents this question needs, in order: the supervisor's hand-offs, and what triage
    /// reports as needed whoever was addressed.
    pub review: Vec<Subagent>,
}

impl RunPlan {
    /// Plans the run of a request read as `question`, for the agent it addressed.
    pub fn new(entry: AgentKind, question: Question) -> RunPlan {
        let review = agents_for(question.query.intent);
        let entry = match Subagent::of(entry) {
            None => Entry::Supervisor {
                agents: review.clone(),
            },
            Some(agent) => Entry::Direct(agent),
        };
        RunPlan {
            entry,
            question,
            review,
        }
    }

    /// Reads the request again against the snapshot the run answers from, when the first
    /// reading was made without it (before the data was loaded, or against a snapshot the run's
    /// admission found stale: another node's upload), and lets the plan follow the new reading.
    pub fn ground(&mut self, request: &Request, data: &TenantData, today: NaiveDate) {
        if self.question.read_with == Some(data.generation) {
            return;
        }
        let entry = self.entry_agent();
        let question = Question::read(request, &data.vocab, today, Some(data.generation));
        *self = RunPlan::new(entry, question);
    }

    /// What kind of answer the run gives.
    pub fn answer(&self) -> Answer {
        match self.question.query.intent {
            Intent::Lookup => Answer::Lookup,
            Intent::WhatIf => Answer::WhatIf,
            Intent::Review(_) => Answer::Review,
            Intent::Greeting | Intent::OutOfScope | Intent::Unanswerable => Answer::Reply,
        }
    }

    /// The agent that answers the request and emits the run's first and last events.
    pub fn entry_agent(&self) -> AgentKind {
        match &self.entry {
            Entry::Supervisor { .. } => AgentKind::Supervisor,
            Entry::Direct(agent) => agent.kind(),
        }
    }

    /// The agents `agent_started.plan` announces: the supervisor and those it hands off to, or
    /// the agent addressed.
    pub fn announced(&self) -> Vec<String> {
        match &self.entry {
            Entry::Supervisor { agents } => std::iter::once(AgentKind::Supervisor.as_str())
                .chain(agents.iter().map(|a| a.as_str()))
                .map(str::to_owned)
                .collect(),
            Entry::Direct(agent) => vec![agent.as_str().to_owned()],
        }
    }

    /// The plan in words: "data runs run_query", for the supervisor's and triage's steps.
    pub fn describe(&self) -> String {
        let plan = self.question.query.plan();
        if plan.steps.is_empty() {
            return "a short reply, no data tool".to_owned();
        }
        plan.steps
            .iter()
            .map(|s| format!("{} ({})", s.agent, s.tools.join(", ")))
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

/// The agents a question with this intent needs, in order.
fn agents_for(intent: Intent) -> Vec<Subagent> {
    use Subagent::*;
    match intent {
        Intent::Lookup => vec![Triage, Data],
        Intent::WhatIf => vec![Triage, Optimization],
        Intent::Greeting | Intent::OutOfScope | Intent::Unanswerable => vec![Triage],
        Intent::Review(ReviewFocus::Cost | ReviewFocus::Overview) => {
            vec![Triage, Data, Optimization, Actions, Reporting]
        }
        Intent::Review(ReviewFocus::Anomaly) => vec![Triage, Data, Actions, Reporting],
        Intent::Review(ReviewFocus::Capacity) => vec![Triage, Data, Reporting],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentwire_analytics::PriceTable;
    use agentwire_question::Vocabulary;

    fn plan(entry: AgentKind, text: &str) -> RunPlan {
        let vocab = Vocabulary::from_records(&[], &PriceTable::embedded());
        let request = Request {
            agent: entry,
            text: text.into(),
            task: None,
        };
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        RunPlan::new(entry, Question::read(&request, &vocab, today, None))
    }

    #[test]
    fn the_supervisor_announces_itself_and_the_agents_of_the_question() {
        let p = plan(AgentKind::Supervisor, "Why did spend spike last week?");
        assert_eq!(
            p.announced(),
            ["supervisor", "triage", "data", "actions", "reporting"]
        );
        assert_eq!(
            p.entry,
            Entry::Supervisor {
                agents: p.review.clone()
            }
        );
        assert_eq!(p.entry_agent(), AgentKind::Supervisor);
        let p = plan(AgentKind::Supervisor, "What's our p95 latency by model?");
        assert_eq!(p.answer(), Answer::Lookup);
        assert_eq!(p.announced(), ["supervisor", "triage", "data"]);
        assert_eq!(p.describe(), "data (run_query)");
        let p = plan(AgentKind::Supervisor, "hello");
        assert_eq!(p.answer(), Answer::Reply);
        assert_eq!(p.announced(), ["supervisor", "triage"]);
    }

    #[test]
    fn an_agent_addressed_directly_answers_alone() {
        for kind in AgentKind::ALL {
            let p = plan(kind, "How can we reduce our AI costs?");
            assert_eq!(p.entry_agent(), kind);
            if kind != AgentKind::Supervisor {
                assert_eq!(p.announced(), [kind.as_str()]);
                assert_eq!(p.entry, Entry::Direct(Subagent::of(kind).unwrap()));
            }
            assert_eq!(
                p.review,
                [
                    Subagent::Triage,
                    Subagent::Data,
                    Subagent::Optimization,
                    Subagent::Actions,
                    Subagent::Reporting
                ]
            );
        }
    }
}
