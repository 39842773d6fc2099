//! `compose_report`: the final answer, as Markdown and as the `report` JSON, composed from the
//! run's findings by `report::compose`. The tool only wraps the composer, so the reporting agent's
//! answer shows as a tool call like every other step; it must not add to the report.

use super::ToolOutput;
use crate::report::{ComposedReport, ReportInput, compose};
use crate::stop::RunResult;

pub fn compute(input: &ReportInput) -> RunResult<ToolOutput<ComposedReport>> {
    let composed = compose(input);
    let sections = composed
        .response
        .lines()
        .filter(|l| l.starts_with("### "))
        .count();
    let summary = format!(
        "report with {sections} section(s), {} characters",
        composed.response.len()
    );
    Ok(ToolOutput {
        value: composed,
        summary,
    })
}
