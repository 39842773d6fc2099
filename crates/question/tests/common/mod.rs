//! Shared by the corpus tests: the generated data set and the independent computation.
#![allow(dead_code)]

pub mod corpus;
pub mod dataset;
pub mod reference;
