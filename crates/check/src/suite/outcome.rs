//! What a case comes to, and the small vocabulary cases use to stop early.
//!
//! A case function returns [`OrOutcome<Outcome>`]: `Ok` when it ran to its end, `Err` when it
//! stopped early with its outcome (a failure, an error or a skip). Inside a case,
//! `OrFail::or_fail` (in `probe`) turns a client error into a failure that names what was being done and
//! carries the probe's transcript, and [`ensure!`] fails the case unless a condition holds.
//!
//! What it must not do: decide anything on its own. It only carries what a case observed; a
//! failure always has its reason, and its transcript is never left out (only shortened for
//! display, by [`abbreviate`]).

use crate::client::ClientError;
use serde::Serialize;
use serde_json::{Value, json};

/// A case's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// The deployment broke the rule.
    Fail,
    /// The case could not be carried out (the target was unreachable, the credentials were
    /// refused, a step before the judged one failed). Counts as a failure.
    Error,
    /// Not run, with the reason (deselected, or needs what the configuration does not give).
    Skipped,
}

/// A case's result before the runner adds the case's id and rule.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub transcript: Vec<Value>,
}

/// A value to go on with, or the outcome that ends the case here.
pub(crate) type OrOutcome<T> = Result<T, Outcome>;

impl Outcome {
    pub fn pass(note: impl Into<Option<String>>) -> Self {
        Self {
            verdict: Verdict::Pass,
            reason: note.into(),
            transcript: Vec::new(),
        }
    }

    pub fn fail(reason: impl Into<String>, transcript: Vec<Value>) -> Self {
        Self {
            verdict: Verdict::Fail,
            reason: Some(reason.into()),
            transcript,
        }
    }

    pub fn error(reason: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Error,
            reason: Some(reason.into()),
            transcript: Vec::new(),
        }
    }

    pub fn skip(reason: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Skipped,
            reason: Some(reason.into()),
            transcript: Vec::new(),
        }
    }
}

/// For a connection that had to succeed: a failure saying `what` failed, and why.
pub(crate) fn could_not(what: &str) -> impl FnOnce(ClientError) -> Outcome + '_ {
    move |err| Outcome::fail(format!("{what}: {err}"), Vec::new())
}

/// Fails the case, with the probe's transcript, unless `cond` holds.
macro_rules! ensure {
    ($probe:expr, $cond:expr, $($reason:tt)+) => {
        if !$cond {
            return Err($crate::suite::outcome::Outcome::fail(
                format!($($reason)+),
                $probe.transcript_with_backlog(),
            ));
        }
    };
}
pub(crate) use ensure;

/// Shortens long strings in a frame for display (answers and data can be kilobytes).
pub(crate) fn abbreviate(frame: &Value) -> Value {
    match frame {
        Value::String(s) if s.chars().count() > 200 => {
            let cut: String = s.chars().take(197).collect();
            Value::String(format!("{cut}..."))
        }
        Value::Array(items) if items.len() > 8 => {
            let mut out: Vec<Value> = items.iter().take(8).map(abbreviate).collect();
            out.push(json!(format!("... {} more", items.len() - 8)));
            Value::Array(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(abbreviate).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), abbreviate(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
