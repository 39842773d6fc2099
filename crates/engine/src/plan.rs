//! The run's plan: which agents answer the request, decided once by the run's driver before
//! `agent_started` announces it, and carried by the run's context from then on.
//!
//! The supervisor hands off to the plan's agents in order; an agent addressed directly answers
//! alone; the triage agent reports the plan, it does not make one. [`RunPlan::new`] is the one
//! place a request becomes a plan: reading its words (`question.rs`) and choosing agents from what
//! was read. This module must not look at the tenant's data or emit events.

use crate::question::{Intent, Question};
use agentwire_protocol::AgentKind;

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

/// What a run will do, and the reading of the request it follows from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunPlan {
    pub entry: Entry,
    pub question: Question,
    /// The agents a review of this question needs, in order: the supervisor's hand-offs, and
    /// what triage reports as needed whoever was addressed.
    pub review: Vec<Subagent>,
}

impl RunPlan {
    /// Reads the request and plans the run for the agent it addressed.
    pub fn new(entry: AgentKind, user_request: &str) -> RunPlan {
        let question = Question::read(user_request);
        let review = agents_for(question.intent);
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
}

/// The agents a review of a question with this intent needs, in order.
fn agents_for(intent: Intent) -> Vec<Subagent> {
    use Subagent::*;
    match intent {
        Intent::CostOptimization | Intent::General => {
            vec![Triage, Data, Optimization, Actions, Reporting]
        }
        Intent::Spend => vec![Triage, Data, Optimization, Reporting],
        Intent::Anomaly => vec![Triage, Data, Actions, Reporting],
        Intent::Capacity | Intent::Performance => vec![Triage, Data, Reporting],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supervisor_announces_itself_and_the_agents_of_the_intent() {
        let plan = RunPlan::new(AgentKind::Supervisor, "Why did spend spike last week?");
        assert_eq!(plan.question.intent, Intent::Anomaly);
        assert_eq!(
            plan.announced(),
            ["supervisor", "triage", "data", "actions", "reporting"]
        );
        assert_eq!(
            plan.entry,
            Entry::Supervisor {
                agents: plan.review.clone()
            }
        );
        assert_eq!(plan.entry_agent(), AgentKind::Supervisor);
    }

    #[test]
    fn an_agent_addressed_directly_answers_alone() {
        for kind in AgentKind::ALL {
            let plan = RunPlan::new(kind, "How can we reduce our AI costs?");
            assert_eq!(plan.entry_agent(), kind);
            if kind != AgentKind::Supervisor {
                assert_eq!(plan.announced(), [kind.as_str()]);
                assert_eq!(plan.entry, Entry::Direct(Subagent::of(kind).unwrap()));
            }
            assert_eq!(
                plan.review,
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
