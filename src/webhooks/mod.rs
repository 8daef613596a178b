//! Webhook delivery: signing, the private-address guard and the dispatcher.
