//! The language layer: a person's question, or a structured task, becomes a typed query over the
//! tenant's usage records, and the query decides the plan (which agents and tools run).
//!
//! Everything here is pure: no I/O, no async, no clock (the caller passes "today"), no randomness;
//! the same text, vocabulary and day always give the same query. It knows the tenant only through
//! a [`Vocabulary`] built from its records and the price table, and it computes no figures: the
//! maths is `agentwire_analytics::query` and `agentwire_analytics::whatif`.

mod models;
mod text;
mod time;
mod vocabulary;

pub use vocabulary::{ModelName, Vocabulary};
