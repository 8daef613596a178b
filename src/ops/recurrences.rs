//! Recurrences (SPEC §10): templates that spawn a normal task on a real
//! calendar, and the scheduler's step that spawns them.

use std::sync::Arc;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use super::tasks::{check_labels, create_in, NewTask, MAX_CONTENT_CHARS};
use super::Context;
use crate::domain::access::Caller;
use crate::domain::calendar::{self, Frequency, Series};
use crate::domain::input::{self, check_len, check_non_blank, double_option, AgentRef, Id, Page};
use crate::error::{Error, Result};
use crate::store::recurrences::{self, Recurrence};
use crate::store::tasks::{Fields, JsonText};
use crate::store::{agents, projects, Tx};

/// A recurrence body as sent (the SDK's `recurrences.create/update`).
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct RecurrenceInput {
    content: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    project_id: Option<Option<Id>>,
    priority: Option<i64>,
    labels: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    assigned_to_agent_id: Option<Option<AgentRef>>,
    /// `daily`, `weekly`, `monthly` or `yearly`.
    rule_type: Option<String>,
    #[schema(minimum = 1, maximum = 1000)]
    interval: Option<i64>,
    /// An IANA time zone, e.g. `Europe/Berlin`.
    timezone: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    anchor_day: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    anchor_month: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    anchor_weekday: Option<Option<i64>>,
    /// `HH:MM`, in `timezone`.
    time_of_day: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    next_due_at: Option<Option<String>>,
    active: Option<bool>,
    skip_if_open: Option<bool>,
}

impl RecurrenceInput {
    /// Parses and checks a body: unknown rule, time zone or anchor → 422.
    pub fn parse(body: Value) -> Result<RecurrenceInput> {
        let r: RecurrenceInput = input::object(body)?;
        if let Some(c) = &r.content {
            check_non_blank("content", c, MAX_CONTENT_CHARS)?;
        }
        if let Some(Some(d)) = &r.description {
            check_len("description", d, 10_000)?;
        }
        if let Some(p) = r.priority {
            if !(1..=4).contains(&p) {
                return Err(Error::validation("priority", "must be 1, 2, 3 or 4"));
            }
        }
        if let Some(labels) = &r.labels {
            check_labels("labels", labels)?;
        }
        if let Some(t) = &r.rule_type {
            Frequency::parse(t).ok_or_else(|| {
                Error::validation("rule_type", "must be daily, weekly, monthly or yearly")
            })?;
        }
        if let Some(i) = r.interval {
            if !(1..=1000).contains(&i) {
                return Err(Error::validation("interval", "must be between 1 and 1000"));
            }
        }
        if let Some(tz) = &r.timezone {
            calendar::time_zone(tz)?;
        }
        for (field, value, range) in [
            ("anchor_day", r.anchor_day.flatten(), 1..=31),
            ("anchor_month", r.anchor_month.flatten(), 1..=12),
            ("anchor_weekday", r.anchor_weekday.flatten(), 0..=6),
        ] {
            if let Some(v) = value {
                if !range.contains(&v) {
                    return Err(Error::validation(
                        field,
                        format!("must be between {} and {}", range.start(), range.end()),
                    ));
                }
            }
        }
        if let Some(t) = &r.time_of_day {
            calendar::parse_time(t)
                .ok_or_else(|| Error::validation("time_of_day", "must be a time HH:MM"))?;
        }
        if let Some(Some(t)) = &r.next_due_at {
            calendar::parse_timestamp(t)
                .ok_or_else(|| Error::validation("next_due_at", "must be an RFC 3339 timestamp"))?;
        }
        Ok(r)
    }
}

/// The series of a recurrence, its time zone and time of day.
struct Schedule {
    series: Series,
    tz: TimeZone,
    time: jiff::civil::Time,
}

fn schedule(r: &Recurrence) -> Result<Schedule> {
    let frequency = Frequency::parse(&r.rule_type).ok_or_else(|| {
        Error::validation("rule_type", "must be daily, weekly, monthly or yearly")
    })?;
    let tz = calendar::time_zone(&r.timezone)?;
    let start = r
        .series_start
        .as_deref()
        .and_then(|d| d.parse::<Date>().ok())
        .ok_or_else(|| Error::internal(format!("recurrence {} has no series start", r.id)))?;
    let narrow = |v: Option<i64>| v.and_then(|v| i8::try_from(v).ok());
    let series = Series {
        frequency,
        interval: i32::try_from(r.interval).unwrap_or(1),
        start,
        anchor_day: narrow(r.anchor_day),
        anchor_month: narrow(r.anchor_month),
        anchor_weekday: narrow(r.anchor_weekday),
    };
    series.validate()?;
    let time = calendar::parse_time(&r.time_of_day)
        .ok_or_else(|| Error::validation("time_of_day", "must be a time HH:MM"))?;
    Ok(Schedule { series, tz, time })
}

impl Schedule {
    /// The first due time strictly after `after`.
    fn next_after(&self, after: Timestamp) -> Result<Timestamp> {
        let mut d = calendar::local_date(after, &self.tz)
            .yesterday()
            .map_err(|e| Error::internal(e.to_string()))?;
        loop {
            d = self.series.next_after(d).ok_or_else(|| {
                Error::validation("rule_type", "no further occurrence in the calendar")
            })?;
            let t = calendar::instant(d, self.time, &self.tz)?;
            if t > after {
                return Ok(t);
            }
        }
    }
}

/// Applies `input` to `r` and settles its schedule: the series starts on
/// the first due date (in the recurrence's time zone) and keeps its time
/// of day; without `next_due_at`, the next due time is computed from now.
fn apply(tx: &Tx, r: &mut Recurrence, input: RecurrenceInput, creating: bool) -> Result<()> {
    let now = Timestamp::now();
    // The series as stored, to tell a re-sent value from a change.
    let series_before = (r.rule_type.clone(), r.interval, r.timezone.clone());
    let rule_changed = input.rule_type.is_some()
        || input.interval.is_some()
        || input.timezone.is_some()
        || input.anchor_day.is_some()
        || input.anchor_month.is_some()
        || input.anchor_weekday.is_some()
        || input.time_of_day.is_some();
    if let Some(v) = input.content {
        r.content = v;
    }
    if let Some(v) = input.description {
        r.description = v;
    }
    if let Some(v) = input.project_id {
        r.project_id = v.map(|i| i.0);
        if let Some(p) = r.project_id {
            if projects::brief(tx, p)?.is_none() {
                return Err(Error::validation("project_id", format!("no project {p}")));
            }
        }
    }
    if let Some(v) = input.priority {
        r.priority = v;
    }
    if let Some(v) = input.labels {
        r.labels = v;
    }
    if let Some(v) = input.assigned_to_agent_id {
        r.assigned_to_agent_id = v
            .map(|a| agents::resolve_active(tx, "assigned_to_agent_id", &a).map(|a| a.id))
            .transpose()?;
    }
    if let Some(v) = input.rule_type {
        r.rule_type = v;
    }
    if let Some(v) = input.interval {
        r.interval = v;
    }
    if let Some(v) = input.timezone {
        r.timezone = v;
    }
    if let Some(v) = input.anchor_day {
        r.anchor_day = v;
    }
    if let Some(v) = input.anchor_month {
        r.anchor_month = v;
    }
    if let Some(v) = input.anchor_weekday {
        r.anchor_weekday = v;
    }
    if let Some(v) = input.active {
        r.active = v;
    }
    if let Some(v) = input.skip_if_open {
        r.skip_if_open = v;
    }
    let tz = calendar::time_zone(&r.timezone)?;
    match input.next_due_at.flatten() {
        Some(t) => {
            let at = calendar::parse_timestamp(&t)
                .ok_or_else(|| Error::validation("next_due_at", "must be an RFC 3339 timestamp"))?;
            let next = calendar::format_timestamp(at);
            // Re-sending the stored date with the same series (a
            // whole-object PUT, perhaps of a date clamped to a short month)
            // changes nothing; a new date, rule, interval or time zone
            // starts the series over from it.
            let series_changed =
                (r.rule_type.clone(), r.interval, r.timezone.clone()) != series_before;
            if r.next_due_at.as_deref() != Some(next.as_str()) || series_changed {
                let local = at.to_zoned(tz.clone());
                r.series_start = Some(local.date().to_string());
                r.time_of_day = match &input.time_of_day {
                    Some(t) => t.clone(),
                    None => local.time().strftime("%H:%M").to_string(),
                };
                // A series moved to a new date goes on from it, unless the
                // body names the anchors too (derived below from the start).
                if input.anchor_day.is_none() {
                    r.anchor_day = None;
                }
                if input.anchor_month.is_none() {
                    r.anchor_month = None;
                }
                if input.anchor_weekday.is_none() {
                    r.anchor_weekday = None;
                }
                r.next_due_at = Some(next);
            } else if let Some(t) = &input.time_of_day {
                let time = calendar::parse_time(t)
                    .ok_or_else(|| Error::validation("time_of_day", "must be a time HH:MM"))?;
                if calendar::parse_time(&r.time_of_day) != Some(time) {
                    // A new time of day with the same date: the pending
                    // occurrence moves to it on its own (local) day, as the
                    // later ones will — or to the next occurrence, if that
                    // moment has passed (no instant spawn).
                    r.time_of_day = t.clone();
                    let moved = calendar::instant(calendar::local_date(at, &tz), time, &tz)?;
                    let next = if moved > now {
                        moved
                    } else {
                        schedule(r)?.next_after(now)?
                    };
                    r.next_due_at = Some(calendar::format_timestamp(next));
                }
            }
        }
        None if creating || rule_changed => {
            if let Some(t) = input.time_of_day {
                r.time_of_day = t;
            }
            if r.series_start.is_none() {
                r.series_start = Some(calendar::local_date(now, &tz).to_string());
            }
            let s = schedule(r)?;
            // Due from now on: today at the time of day if that is still
            // ahead, else the next date of the series.
            let before = now
                .checked_sub(jiff::SignedDuration::from_secs(1))
                .unwrap_or(now);
            r.next_due_at = Some(calendar::format_timestamp(s.next_after(before)?));
        }
        None => {}
    }
    // The anchors the series runs on, where the rule needs them.
    let start: Date = r
        .series_start
        .as_deref()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| Error::internal("series start"))?;
    match Frequency::parse(&r.rule_type) {
        Some(Frequency::Weekly) if r.anchor_weekday.is_none() => {
            r.anchor_weekday = Some(i64::from(start.weekday().to_monday_zero_offset()));
        }
        Some(Frequency::Monthly) if r.anchor_day.is_none() => {
            r.anchor_day = Some(i64::from(start.day()));
        }
        Some(Frequency::Yearly) => {
            r.anchor_day.get_or_insert(i64::from(start.day()));
            r.anchor_month.get_or_insert(i64::from(start.month()));
        }
        _ => {}
    }
    if let (Some(Frequency::Yearly), Some(month), Some(day)) =
        (Frequency::parse(&r.rule_type), r.anchor_month, r.anchor_day)
    {
        // Feb 29 is a date (it falls on Feb 28 in common years); Feb 30
        // or Apr 31 never is.
        let longest = i8::try_from(month)
            .ok()
            .and_then(|m| Date::new(2000, m, 1).ok())
            .map_or(31, |d| i64::from(d.days_in_month()));
        if day > longest {
            return Err(Error::validation(
                "anchor_day",
                format!("month {month} has no day {day}"),
            ));
        }
    }
    schedule(r)?;
    Ok(())
}

/// `POST /recurrences`: 201 with the recurrence and its first due time.
pub async fn create(ctx: &Context, caller: &Caller, input: RecurrenceInput) -> Result<Recurrence> {
    let content = input
        .content
        .clone()
        .ok_or_else(|| Error::validation("content", "is required"))?;
    let rule_type = input.rule_type.clone().ok_or_else(|| {
        Error::validation("rule_type", "is required: daily, weekly, monthly or yearly")
    })?;
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            let mut r = Recurrence {
                id: 0,
                content,
                description: None,
                project_id: None,
                priority: 2,
                labels: Vec::new(),
                assigned_to_agent_id: None,
                rule_type,
                interval: 1,
                timezone: "UTC".into(),
                anchor_day: None,
                anchor_month: None,
                anchor_weekday: None,
                time_of_day: "00:00".into(),
                series_start: None,
                next_due_at: None,
                last_spawned_at: None,
                active: true,
                skip_if_open: true,
                created_by_agent_id: caller.agent_id(),
                created_at: String::new(),
                updated_at: String::new(),
            };
            apply(tx, &mut r, input, true)?;
            let id = recurrences::insert(tx, &r)?;
            recurrences::require(tx, &caller, id)
        })
        .await
}

pub async fn list(ctx: &Context, caller: &Caller, page: Page) -> Result<Vec<Recurrence>> {
    let caller = caller.clone();
    ctx.store
        .read(move |c| recurrences::list(c, &caller, page.limit + 1, page.offset))
        .await
}

/// The next `n` due times of `r` from its `next_due_at` (a preview of the
/// calendar: `GET /recurrences/{id}?upcoming=N`).
pub fn upcoming(r: &Recurrence, n: usize) -> Result<Vec<String>> {
    let s = schedule(r)?;
    let Some(mut at) = r.next_due_at.as_deref().and_then(calendar::parse_timestamp) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(calendar::format_timestamp(at));
        at = s.next_after(at)?;
    }
    Ok(out)
}

pub async fn get(ctx: &Context, caller: &Caller, id: i64) -> Result<Recurrence> {
    let caller = caller.clone();
    ctx.store
        .read(move |c| recurrences::require(c, &caller, id))
        .await
}

/// Only its creator or an admin changes or deletes a recurrence.
fn may_change(caller: &Caller, r: &Recurrence) -> Result<()> {
    if caller.is_admin()
        || (r.created_by_agent_id.is_some() && r.created_by_agent_id == caller.agent_id())
    {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "only its creator or an admin changes recurrence {}",
            r.id
        )))
    }
}

/// `PUT /recurrences/{id}`: `{"active": false}` pauses it; a changed rule
/// is due again from now.
pub async fn update(
    ctx: &Context,
    caller: &Caller,
    id: i64,
    input: Result<RecurrenceInput>,
) -> Result<Recurrence> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            // SPEC §2's order of checks: 404, then 403, then the body's 422.
            let mut r = recurrences::require(tx, &caller, id)?;
            may_change(&caller, &r)?;
            apply(tx, &mut r, input?, false)?;
            recurrences::update(tx, &r)?;
            recurrences::require(tx, &caller, id)
        })
        .await
}

/// `DELETE /recurrences/{id}`: the spawned tasks stay.
pub async fn delete(ctx: &Context, caller: &Caller, id: i64) -> Result<()> {
    let caller = caller.clone();
    ctx.store
        .write(move |tx| {
            let r = recurrences::require(tx, &caller, id)?;
            may_change(&caller, &r)?;
            recurrences::delete(tx, id)
        })
        .await
}

/// Who a recurrence's tasks are created by: its creator while active, the
/// project otherwise.
fn creator(tx: &Tx, r: &Recurrence) -> Result<Caller> {
    let agent = match r.created_by_agent_id {
        Some(id) => agents::get(tx, id)?.filter(|a| a.active),
        None => None,
    };
    Ok(agent.map_or(Caller::Project, |a| Caller::Agent(Arc::new(a.identity()))))
}

/// Spawns recurrence `id`'s instance if it is due (skipping while one is
/// still open, if `skip_if_open`), then moves `next_due_at` past now: a
/// server that was down across several due times spawns one instance,
/// not a burst. Returns whether it spawned.
fn spawn_one(tx: &Tx, id: i64, max_context: usize) -> Result<bool> {
    let now = Timestamp::now();
    let Some(mut r) = recurrences::get(tx, id)? else {
        return Ok(false);
    };
    let due = r.next_due_at.as_deref().and_then(calendar::parse_timestamp);
    let Some(due) = due.filter(|d| *d <= now && r.active) else {
        return Ok(false);
    };
    let s = schedule(&r)?;
    let spawn = !(r.skip_if_open && recurrences::has_open_instance(tx, id)?);
    if spawn {
        let caller = creator(tx, &r)?;
        let fields = Fields {
            content: r.content.clone(),
            description: r.description.clone(),
            project_id: r
                .project_id
                .filter(|p| projects::brief(tx, *p).ok().flatten().is_some()),
            priority: r.priority,
            labels: JsonText(serde_json::to_string(&r.labels)?),
            due_date: Some(calendar::local_date(due, &s.tz).to_string()),
            ..Fields::default()
        };
        let new = NewTask {
            fields,
            assignee: r.assigned_to_agent_id.map(AgentRef::Id),
            recurrence_id: Some(id),
            ..NewTask::default()
        };
        create_in(tx, &caller, new, Some("recurrence"), max_context)?;
        r.last_spawned_at = Some(calendar::format_timestamp(now));
    }
    r.next_due_at = Some(calendar::format_timestamp(s.next_after(now.max(due))?));
    recurrences::update(tx, &r)?;
    Ok(spawn)
}

/// The scheduler's step: spawns every due recurrence, each in a write of
/// its own (one that cannot spawn — its assignee deactivated, say — is
/// logged and moved on, not retried in a loop).
pub fn spawn_due(ctx: &Context) -> Result<usize> {
    let now = calendar::format_timestamp(Timestamp::now());
    let due = ctx.store.read_blocking(|c| recurrences::due(c, &now))?;
    let max = ctx.max_context_bytes();
    let mut spawned = 0;
    for r in due {
        let id = r.id;
        match ctx.store.write_blocking(move |tx| spawn_one(tx, id, max)) {
            Ok(true) => spawned += 1,
            Ok(false) => {}
            Err(e) => {
                log::warn!("recurrence {id} could not spawn: {e}");
                let skip = ctx.store.write_blocking(move |tx| {
                    let Some(mut r) = recurrences::get(tx, id)? else {
                        return Ok(());
                    };
                    let s = schedule(&r)?;
                    r.next_due_at =
                        Some(calendar::format_timestamp(s.next_after(Timestamp::now())?));
                    recurrences::update(tx, &r)
                });
                if let Err(e) = skip {
                    log::warn!("recurrence {id} could not be moved on: {e}; pausing it");
                    let _ = ctx.store.write_blocking(move |tx| {
                        if let Some(mut r) = recurrences::get(tx, id)? {
                            r.active = false;
                            recurrences::update(tx, &r)?;
                        }
                        Ok(())
                    });
                }
            }
        }
    }
    Ok(spawned)
}
