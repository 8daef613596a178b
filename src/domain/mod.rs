//! Domain rules that do not depend on HTTP or SQL: who may do what, key
//! material, input parsing and validation, time.

pub mod access;
pub mod clock;
pub mod input;
pub mod keys;
pub mod similarity;
