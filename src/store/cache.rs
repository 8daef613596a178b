//! A cache of rendered tasks (the JSON of list, chain and event answers).
//!
//! Rendering a task reads its row, its agents, project, subtasks and
//! dependencies and serializes ~50 fields; a list of 1,000 tasks spent most
//! of its time there. Entries are dropped by the writer after every commit
//! that touched them (an SQLite update hook on the writer's connection sees
//! every changed `tasks` row; any change to `agents` or `projects` drops
//! everything), before the writer answers the request that made the change,
//! so a client always reads its own writes.
//!
//! A reader that rendered from an older snapshot must not put that stale
//! rendering back after the writer dropped it. Readers note the generation
//! before their snapshot begins and store only if no invalidation happened
//! since; invalidations bump the generation under the same lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// Entries kept at most (~1 KB each); past that the cache starts over.
const CAPACITY: usize = 50_000;

/// A rendered task, shared between the cache and answers.
#[derive(Clone, Debug)]
pub struct Rendered(pub Arc<RawValue>);

impl Serialize for Rendered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Rendered {
    pub fn json(&self) -> &str {
        self.0.get()
    }
}

#[derive(Default)]
struct Inner {
    generation: u64,
    entries: HashMap<i64, Rendered>,
}

#[derive(Default)]
pub struct RenderCache {
    inner: Mutex<Inner>,
}

/// What the writer's update hook collected during one commit.
#[derive(Default, Debug)]
pub struct Dirty {
    pub tasks: Vec<i64>,
    pub everything: bool,
}

impl Dirty {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && !self.everything
    }
}

impl RenderCache {
    /// Note this before a read snapshot begins; pass it to [`Self::store`].
    pub fn generation(&self) -> u64 {
        self.inner.lock().map_or(0, |i| i.generation)
    }

    pub fn get(&self, id: i64) -> Option<Rendered> {
        self.inner.lock().ok()?.entries.get(&id).cloned()
    }

    pub fn get_many(&self, ids: &[i64]) -> Vec<Option<Rendered>> {
        match self.inner.lock() {
            Ok(inner) => ids
                .iter()
                .map(|id| inner.entries.get(id).cloned())
                .collect(),
            Err(_) => vec![None; ids.len()],
        }
    }

    /// Stores renderings made from a snapshot taken after `generation` was
    /// read, unless something was invalidated since.
    pub fn store(&self, generation: u64, rendered: impl IntoIterator<Item = (i64, Rendered)>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            inner.entries.clear();
        }
        inner.entries.extend(rendered);
    }

    /// Drops what a commit changed (called by the writer after COMMIT).
    pub fn invalidate(&self, dirty: &Dirty) {
        if dirty.is_empty() {
            return;
        }
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            if dirty.everything {
                inner.entries.clear();
            } else {
                for id in &dirty.tasks {
                    inner.entries.remove(id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Rendered {
        Rendered(Arc::from(RawValue::from_string(s.to_string()).unwrap()))
    }

    #[test]
    fn a_rendering_from_before_an_invalidation_is_not_stored() {
        let cache = RenderCache::default();
        let before = cache.generation();
        cache.invalidate(&Dirty {
            tasks: vec![1],
            everything: false,
        });
        cache.store(before, [(1, r("{\"stale\":true}"))]);
        assert!(cache.get(1).is_none());
        let now = cache.generation();
        cache.store(now, [(1, r("{\"fresh\":true}"))]);
        assert_eq!(cache.get(1).unwrap().json(), "{\"fresh\":true}");
    }

    #[test]
    fn invalidation_drops_only_the_changed_tasks_unless_everything_changed() {
        let cache = RenderCache::default();
        let g = cache.generation();
        cache.store(g, [(1, r("1")), (2, r("2"))]);
        cache.invalidate(&Dirty {
            tasks: vec![1],
            everything: false,
        });
        assert!(cache.get(1).is_none() && cache.get(2).is_some());
        cache.invalidate(&Dirty {
            tasks: vec![],
            everything: true,
        });
        assert!(cache.get(2).is_none());
    }
}
