//! The one table from a sub-agent to the function that does its work, shared by the supervisor
//! (its hand-offs) and `run_entry` (an agent addressed directly). It must not do any work itself.

use super::{actions, data, optimization, reporting, triage};
use crate::context::RunContext;
use crate::plan::Subagent;
use crate::stop::RunResult;

/// Runs one sub-agent's work; its one-line summary for `subagent_completed`.
pub(super) async fn work(ctx: &mut RunContext, agent: Subagent) -> RunResult<String> {
    match agent {
        Subagent::Triage => triage::work(ctx).await,
        Subagent::Data => data::work(ctx).await,
        Subagent::Optimization => optimization::work(ctx).await,
        Subagent::Actions => actions::work(ctx).await,
        Subagent::Reporting => reporting::work(ctx).await,
    }
}
