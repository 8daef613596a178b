//! Domain rules that do not depend on HTTP or SQL: who may do what, the
//! task state machine, event kinds, key material, input parsing and
//! validation, time.

pub mod access;
pub mod calendar;
pub mod clock;
pub mod event_kind;
pub mod input;
pub mod keys;
pub mod lifecycle;
pub mod similarity;
