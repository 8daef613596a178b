//! Webhooks and their delivery queue.
