//! The event feed (SPEC §9): pages of the event log, or a live follow of
//! it, filtered to what the caller can see.
//!
//! A follower subscribes to the hub before it reads the backlog, so
//! nothing committed in between is missed; ids at or below the last one
//! returned are skipped, so nothing is returned twice. A follower that
//! falls too far behind the live channel catches up from the database.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::Context;
use crate::domain::access::Caller;
use crate::error::Result;
use crate::hub::{Commit, Event};
use crate::store::event_log::{self, EventFilter};
use crate::store::Store;

/// Rows read from the log per catch-up round.
const PAGE: i64 = 500;

/// Up to `limit` events after `since`, oldest first.
pub async fn page(
    ctx: &Context,
    caller: &Caller,
    filter: EventFilter,
    since: i64,
    limit: i64,
) -> Result<Vec<Event>> {
    let caller = caller.clone();
    ctx.store
        .read(move |c| event_log::list(c, &caller, &filter, since, limit))
        .await
}

/// What a follower yields next.
pub enum Next {
    Event(Arc<Event>),
    /// Nothing happened for a while (a stream sends a keep-alive).
    Idle,
}

/// A live follow of the event log.
pub struct Follow {
    store: Store,
    caller: Caller,
    filter: EventFilter,
    live: broadcast::Receiver<Commit>,
    closing: watch::Receiver<bool>,
    identities: watch::Receiver<u64>,
    last: i64,
    /// Catch up from the database before reading the live channel.
    catching_up: bool,
    pending: VecDeque<Arc<Event>>,
    idle_after: Duration,
}

impl Follow {
    /// Moves `last` past `e` and queues it if the follower wants it; an
    /// event at or below `last` was seen already.
    fn admit(&mut self, e: &Arc<Event>) {
        if e.id > self.last {
            self.last = e.id;
            if self.filter.matches(&self.caller, e) {
                self.pending.push_back(e.clone());
            }
        }
    }

    /// Waits until `deadline` without taking events, then skips every
    /// event published so far: a stream that is over its rate sleeps
    /// through its quiet period instead of waking for each commit only to
    /// drop it. Returns the id skipped to, or `None` when the follow ends
    /// meanwhile (shutdown, or an agent changed).
    pub async fn skip_until(&mut self, deadline: tokio::time::Instant) -> Option<i64> {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = self.closing.changed() => return None,
            _ = self.identities.changed() => return None,
        }
        // A fresh receiver starts at the channel's tail: everything before
        // it is skipped, and everything after it has an id above `last`
        // or is dropped by the id check in `admit`.
        self.live = self.live.resubscribe();
        self.pending.clear();
        self.catching_up = false;
        self.last = self.last.max(self.store.hub().last_event_id());
        Some(self.last)
    }

    /// The next event if one is ready now, without waiting: a stream that
    /// got one from [`Follow::next`] sends what else a commit published in
    /// the same write, instead of waking once per event.
    pub fn ready(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.catching_up {
                return None;
            }
            match self.live.try_recv() {
                Ok(commit) => commit.iter().for_each(|e| self.admit(e)),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.catching_up = true;
                    return None;
                }
                Err(_) => return None,
            }
        }
    }
}

/// Follows the events after `since` (the newest when `None`); yields
/// [`Next::Idle`] after `idle_after` without one.
pub async fn follow(
    ctx: &Context,
    caller: &Caller,
    filter: EventFilter,
    since: Option<i64>,
    idle_after: Duration,
) -> Result<Follow> {
    let store = ctx.store.clone();
    // Subscribe first: anything committed after this is in the channel.
    let live = store.hub().subscribe();
    let closing = store.hub().closing();
    let identities = store.hub().identities();
    let last = match since {
        Some(s) => s,
        // The hub's count of the newest committed event: no read needed.
        None => store.hub().last_event_id(),
    };
    Ok(Follow {
        store,
        caller: caller.clone(),
        filter,
        live,
        closing,
        identities,
        last,
        catching_up: since.is_some(),
        pending: VecDeque::new(),
        idle_after,
    })
}

impl Follow {
    /// Reads committed events after `last` from the database.
    async fn catch_up(&mut self) -> Result<()> {
        let caller = self.caller.clone();
        let since = self.last;
        // Unfiltered by kind here so `last` advances over everything.
        let page = self
            .store
            .read(move |c| event_log::list(c, &caller, &EventFilter::default(), since, PAGE))
            .await?;
        if (page.len() as i64) < PAGE {
            self.catching_up = false;
        }
        for e in page {
            self.admit(&Arc::new(e));
        }
        Ok(())
    }

    /// The next event, [`Next::Idle`], or `None` when the follow ends: the
    /// server is shutting down, or an agent changed (the caller's rights
    /// may have: it should reconnect).
    pub async fn next(&mut self) -> Option<Next> {
        // One deadline for the whole call: commits the caller may not see
        // (or its filter drops) must not keep postponing the keep-alive.
        let idle_at = tokio::time::Instant::now() + self.idle_after;
        loop {
            if let Some(e) = self.ready() {
                return Some(Next::Event(e));
            }
            if *self.closing.borrow() {
                return None;
            }
            if self.catching_up {
                if let Err(e) = self.catch_up().await {
                    log::warn!("event stream catch-up failed: {e}");
                    return None;
                }
                continue;
            }
            tokio::select! {
                received = self.live.recv() => match received {
                    Ok(commit) => commit.iter().for_each(|e| self.admit(e)),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.catching_up = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep_until(idle_at) => return Some(Next::Idle),
                _ = self.closing.changed() => return None,
                _ = self.identities.changed() => return None,
            }
        }
    }
}

/// Up to `limit` events after `since` (the newest when `None`), oldest
/// first; when there are none and `wait` is not zero, waits that long for
/// the next one. Returns the events and the id to continue after.
pub async fn watch(
    ctx: &Context,
    caller: &Caller,
    filter: EventFilter,
    since: Option<i64>,
    limit: i64,
    wait: Duration,
) -> Result<(Vec<Event>, i64)> {
    let start = match since {
        Some(s) => s,
        None => ctx.store.hub().last_event_id(),
    };
    // Subscribed before the page is read: nothing committed in between is
    // missed.
    let mut follow = follow(ctx, caller, filter.clone(), Some(start), wait).await?;
    let events = page(ctx, caller, filter, start, limit).await?;
    if !events.is_empty() || wait.is_zero() {
        let last = events.last().map_or(start, |e| e.id);
        return Ok((events, last));
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok((Vec::new(), start));
        }
        match tokio::time::timeout(left, follow.next()).await {
            Ok(Some(Next::Event(e))) => {
                let id = e.id;
                return Ok((vec![Arc::unwrap_or_clone(e)], id));
            }
            Ok(Some(Next::Idle)) => continue,
            Ok(None) | Err(_) => return Ok((Vec::new(), start)),
        }
    }
}
