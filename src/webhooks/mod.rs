//! Webhook delivery: signing, the private-address guard and the dispatcher.

pub mod dispatcher;
pub mod guard;
pub mod sign;
