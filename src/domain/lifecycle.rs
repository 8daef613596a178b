//! A task's status as one state machine (SPEC §5, §8, §10), used by every
//! way a status changes: PUT, complete, fail, uncomplete, claim, release,
//! hand-off, delegation, dependency changes and lease expiry.
//!
//! The machine decides; the store records. Each [`Transition`] applied to
//! a task's [`State`] (and what its dependencies say) gives the next state
//! or a refusal (409) that says why, so no way in can, say, open a task
//! whose dependency is unfinished.

use serde_json::json;

use crate::error::{Error, Result};

/// `status` of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Open,
    InProgress,
    Claimed,
    Delegated,
    Blocked,
    Completed,
    Failed,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Open,
        Status::InProgress,
        Status::Claimed,
        Status::Delegated,
        Status::Blocked,
        Status::Completed,
        Status::Failed,
    ];

    /// Statuses a PUT may ask for; the others come from their endpoints.
    pub const SETTABLE: [Status; 3] = [Status::Open, Status::InProgress, Status::Blocked];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::Claimed => "claimed",
            Status::Delegated => "delegated",
            Status::Blocked => "blocked",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Completed or failed: left only through an explicit reopen.
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }

    /// Statuses from which a task can be claimed (when no live claim holds
    /// it): the work queue of SPEC §10. A delegated task's work lives in
    /// its children; blocked and finished tasks have none to do.
    ///
    /// The schema's `tasks.queued` column indexes the same rule; a test
    /// pins the two together.
    pub fn is_claimable(self) -> bool {
        matches!(self, Status::Open | Status::InProgress | Status::Claimed)
    }

    pub fn names() -> String {
        Status::ALL.map(Status::as_str).join(", ")
    }
}

/// Why a task is `blocked`: set by a person (no reason), or by its
/// dependencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedReason {
    WaitingOnDependencies,
    DependencyFailed,
}

impl BlockedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedReason::WaitingOnDependencies => "waiting_on_dependencies",
            BlockedReason::DependencyFailed => "dependency_failed",
        }
    }
    pub fn parse(s: &str) -> Option<BlockedReason> {
        match s {
            "waiting_on_dependencies" => Some(BlockedReason::WaitingOnDependencies),
            "dependency_failed" => Some(BlockedReason::DependencyFailed),
            _ => None,
        }
    }
}

/// What a task's dependencies say, as the store found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// Dependencies not completed (failed ones included), by id.
    pub unfinished: Vec<i64>,
    /// Of those, the failed ones.
    pub failed: Vec<i64>,
}

impl Dependencies {
    fn blocked_reason(&self) -> Option<BlockedReason> {
        if !self.failed.is_empty() {
            Some(BlockedReason::DependencyFailed)
        } else if !self.unfinished.is_empty() {
            Some(BlockedReason::WaitingOnDependencies)
        } else {
            None
        }
    }
}

/// The part of a task the machine looks at and changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    pub blocked_reason: Option<BlockedReason>,
    /// A claim whose lease has not run out holds the task.
    pub claimed: bool,
}

/// A way a task's status can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// A new task, optionally with the status its creator asked for.
    Create(Option<Status>),
    /// `PUT {"status": …}` with one of [`Status::SETTABLE`].
    Put(Status),
    Complete,
    Fail,
    /// `/uncomplete`: a completed or failed task opens again.
    Reopen,
    Claim,
    /// The holder (or an admin) gives the claim back, or its lease ran out.
    Release,
    /// The same task handed to another agent: open for them.
    HandOff,
    /// A child was delegated from this task: its work lives there now.
    DelegateChild,
    /// A dependency was added, removed, finished, failed or reopened.
    DependenciesChanged,
}

impl Transition {
    /// Transitions after which nobody holds the task's claim: the work is
    /// done, given up, handed to someone else or moved to the children.
    pub fn ends_claim(self) -> bool {
        matches!(
            self,
            Transition::Complete
                | Transition::Fail
                | Transition::Release
                | Transition::HandOff
                | Transition::DelegateChild
        )
    }
}

fn refuse(id: i64, why: String) -> Error {
    Error::conflict(format!("task {id}: {why}")).coded("invalid_transition")
}

impl State {
    /// A fresh task's state.
    pub fn new() -> State {
        State {
            status: Status::Open,
            blocked_reason: None,
            claimed: false,
        }
    }

    /// Whether the task is in a claim queue at all (the assignee rule of
    /// SPEC §10 is the caller's part: unassigned or assigned to them).
    pub fn is_claimable(&self) -> bool {
        self.status.is_claimable() && !self.claimed
    }

    /// Applies `transition` to task `id`, whose dependencies are `deps`.
    /// The claim ends with every transition but [`Transition::Claim`] that
    /// moves the task out of the claimed state.
    pub fn apply(self, id: i64, transition: Transition, deps: &Dependencies) -> Result<State> {
        let waiting = deps.blocked_reason();
        // Where a task goes when it is free to be worked on again.
        let open_unless_blocked = |claimed: bool| match waiting {
            Some(reason) => State {
                status: Status::Blocked,
                blocked_reason: Some(reason),
                claimed,
            },
            None => State {
                status: Status::Open,
                blocked_reason: None,
                claimed,
            },
        };
        let finished_refusal = |what: &str| {
            refuse(
                id,
                format!(
                    "it is {}; reopen it with /uncomplete before {what}",
                    self.status.as_str()
                ),
            )
        };
        match transition {
            Transition::Create(asked) => {
                if waiting.is_some() {
                    return Ok(open_unless_blocked(false));
                }
                Ok(State {
                    status: asked.unwrap_or(Status::Open),
                    blocked_reason: None,
                    claimed: false,
                })
            }
            Transition::Put(asked) => {
                if self.status.is_finished() {
                    return Err(finished_refusal("changing its status"));
                }
                if !Status::SETTABLE.contains(&asked) {
                    return Err(refuse(
                        id,
                        format!("status {} is set by its own endpoint", asked.as_str()),
                    ));
                }
                if asked != Status::Blocked && !deps.unfinished.is_empty() {
                    return Err(Error::conflict_with(
                        format!(
                            "task {id} stays blocked until its dependencies complete: {}",
                            join_ids(&deps.unfinished)
                        ),
                        json!({ "blocking_task_ids": deps.unfinished }),
                    )
                    .coded("blocked_by_dependencies"));
                }
                if self.claimed && asked == Status::Open {
                    return Err(refuse(
                        id,
                        "a live claim holds it; release the claim to open it again".into(),
                    ));
                }
                Ok(State {
                    status: asked,
                    // Blocked by hand, or still blocked by its dependencies.
                    blocked_reason: if asked == Status::Blocked {
                        waiting
                    } else {
                        None
                    },
                    claimed: self.claimed,
                })
            }
            Transition::Complete => Ok(State {
                status: Status::Completed,
                blocked_reason: None,
                claimed: false,
            }),
            Transition::Fail => {
                if self.status == Status::Completed {
                    return Err(finished_refusal("failing it"));
                }
                Ok(State {
                    status: Status::Failed,
                    blocked_reason: None,
                    claimed: false,
                })
            }
            Transition::Reopen => {
                if !self.status.is_finished() {
                    return Err(refuse(
                        id,
                        format!("it is {}, not completed or failed", self.status.as_str()),
                    ));
                }
                Ok(open_unless_blocked(false))
            }
            Transition::Claim => {
                if self.claimed {
                    return Err(refuse(id, "not claimable: a live claim holds it".into()));
                }
                if !self.status.is_claimable() {
                    let why = match self.status {
                        Status::Delegated => "it is delegated: its work lives in its children",
                        Status::Blocked => "it is blocked",
                        Status::Completed => "it is completed",
                        _ => "it is failed",
                    };
                    return Err(refuse(id, format!("not claimable: {why}")));
                }
                Ok(State {
                    status: Status::Claimed,
                    blocked_reason: None,
                    claimed: true,
                })
            }
            Transition::Release => {
                if self.status == Status::Claimed {
                    Ok(open_unless_blocked(false))
                } else {
                    Ok(State {
                        claimed: false,
                        ..self
                    })
                }
            }
            Transition::HandOff => {
                if self.status.is_finished() {
                    return Err(finished_refusal("handing it off"));
                }
                Ok(open_unless_blocked(false))
            }
            Transition::DelegateChild => {
                if self.status.is_finished() {
                    return Err(finished_refusal("delegating from it"));
                }
                Ok(State {
                    status: Status::Delegated,
                    blocked_reason: None,
                    claimed: false,
                })
            }
            Transition::DependenciesChanged => {
                let follows_dependencies = matches!(
                    self.status,
                    Status::Open | Status::InProgress | Status::Blocked
                );
                if !follows_dependencies {
                    return Ok(self);
                }
                match waiting {
                    Some(reason) => Ok(State {
                        status: Status::Blocked,
                        blocked_reason: Some(reason),
                        claimed: self.claimed,
                    }),
                    // Blocked by dependencies that are now all done.
                    None if self.status == Status::Blocked && self.blocked_reason.is_some() => {
                        Ok(State {
                            status: Status::Open,
                            blocked_reason: None,
                            claimed: self.claimed,
                        })
                    }
                    None => Ok(self),
                }
            }
        }
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

fn join_ids(ids: &[i64]) -> String {
    ids.iter()
        .map(|i| format!("#{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: Status) -> State {
        State {
            status,
            blocked_reason: None,
            claimed: status == Status::Claimed,
        }
    }

    fn waiting_on(ids: &[i64]) -> Dependencies {
        Dependencies {
            unfinished: ids.to_vec(),
            failed: Vec::new(),
        }
    }

    #[test]
    fn a_put_cannot_open_a_task_whose_dependency_is_unfinished() {
        let blocked = State {
            status: Status::Blocked,
            blocked_reason: Some(BlockedReason::WaitingOnDependencies),
            claimed: false,
        };
        for asked in [Status::Open, Status::InProgress] {
            let err = blocked
                .apply(9, Transition::Put(asked), &waiting_on(&[3, 4]))
                .unwrap_err();
            assert_eq!(err.code(), "blocked_by_dependencies", "{asked:?}");
            assert!(err.to_string().contains("#3, #4"), "{err}");
        }
        let open = blocked
            .apply(9, Transition::Put(Status::Open), &Dependencies::default())
            .unwrap();
        assert_eq!(open.status, Status::Open);
    }

    #[test]
    fn only_open_and_in_progress_tasks_without_a_live_claim_are_claimable() {
        for status in Status::ALL {
            let s = State {
                status,
                blocked_reason: None,
                claimed: false,
            };
            let claimed = s.apply(1, Transition::Claim, &Dependencies::default());
            assert_eq!(
                claimed.is_ok(),
                matches!(status, Status::Open | Status::InProgress | Status::Claimed),
                "{status:?}"
            );
        }
        let held = state(Status::Claimed);
        assert!(held
            .apply(1, Transition::Claim, &Dependencies::default())
            .is_err());
    }

    #[test]
    fn releasing_or_reopening_lands_on_blocked_when_a_dependency_is_unfinished() {
        let deps = waiting_on(&[2]);
        let released = state(Status::Claimed)
            .apply(1, Transition::Release, &deps)
            .unwrap();
        assert_eq!(released.status, Status::Blocked);
        assert!(!released.claimed);
        let reopened = state(Status::Completed)
            .apply(1, Transition::Reopen, &deps)
            .unwrap();
        assert_eq!(reopened.status, Status::Blocked);
        let failed_dep = Dependencies {
            unfinished: vec![2],
            failed: vec![2],
        };
        let s = state(Status::Open)
            .apply(1, Transition::DependenciesChanged, &failed_dep)
            .unwrap();
        assert_eq!(s.blocked_reason, Some(BlockedReason::DependencyFailed));
    }

    #[test]
    fn finished_tasks_refuse_everything_but_reopen_and_complete() {
        for status in [Status::Completed, Status::Failed] {
            let s = state(status);
            let none = Dependencies::default();
            for t in [
                Transition::Put(Status::Open),
                Transition::HandOff,
                Transition::DelegateChild,
                Transition::Claim,
            ] {
                assert!(s.apply(1, t, &none).is_err(), "{status:?} {t:?}");
            }
            assert!(s.apply(1, Transition::Reopen, &none).is_ok());
            assert!(s.apply(1, Transition::Complete, &none).is_ok());
        }
    }

    #[test]
    fn dependency_changes_leave_claimed_delegated_and_finished_tasks_alone() {
        for status in [
            Status::Claimed,
            Status::Delegated,
            Status::Completed,
            Status::Failed,
        ] {
            let s = state(status);
            assert_eq!(
                s.apply(1, Transition::DependenciesChanged, &waiting_on(&[5]))
                    .unwrap(),
                s
            );
        }
    }
}
