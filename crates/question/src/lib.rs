//! The language layer: a person's question, or a structured task, becomes a typed query over the
//! tenant's usage records, and the query decides the plan (which agents and tools run).
//!
//! Everything here is pure: no I/O, no async, no clock (the caller passes "today"), no randomness;
//! the same text, vocabulary and day always give the same query. It knows the tenant only through
//! a [`Vocabulary`] built from its records and the price table, and it computes no figures: the
//! maths is `agentwire_analytics::query` and `agentwire_analytics::whatif`.
//!
//! ```
//! use agentwire_question::{understand, Vocabulary, Intent};
//! use agentwire_analytics::query::Dimension;
//! use chrono::NaiveDate;
//!
//! let vocab = Vocabulary::from_lists(
//!     &[(Dimension::Team, &["search", "support"])],
//!     &[("claude-sonnet-4", "anthropic"), ("gpt-4o", "openai")],
//!     &[],
//!     Some((NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 11, 18).unwrap())),
//! );
//! let q = understand("What did the search team spend on Claude in October compared with September?",
//!     &vocab, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
//! assert_eq!(q.intent, Intent::Lookup);
//! assert_eq!(q.plan().agents(), ["data"]);
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod intent;
mod metric;
mod models;
mod names;
mod query;
mod shape;
mod suggest;
mod task;
mod text;
mod time;
mod understand;
mod vocabulary;
mod words;

pub use models::ModelName;
pub use names::{MatchKind, Unknown};
pub use query::{DEFAULT_DAYS, Intent, Plan, PlanStep, Query, Resolved, ReviewFocus};
pub use suggest::{example_questions, reply, unknown_sentence};
pub use task::{Task, understand_task};
pub use understand::understand;
pub use vocabulary::Vocabulary;
