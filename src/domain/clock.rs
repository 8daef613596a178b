//! Timestamps: RFC 3339 UTC with millisecond precision, so that text order
//! is time order in SQL.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `2026-03-17T10:00:00.123Z`
pub fn format(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&fmt).unwrap_or_else(|_| t.to_string())
}

pub fn now_string() -> String {
    format(now())
}

pub fn today() -> Date {
    now().date()
}

pub fn format_date(d: Date) -> String {
    let fmt = format_description!("[year]-[month]-[day]");
    d.format(&fmt).unwrap_or_else(|_| d.to_string())
}

pub fn parse_date(s: &str) -> Option<Date> {
    let fmt = format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).ok()
}

pub fn parse_timestamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Adds `months` calendar months, clamping the day (Jan 31 + 1 = Feb 28/29);
/// `None` past the calendar's end.
pub fn add_months(d: Date, months: i64) -> Option<Date> {
    let total = i64::from(d.year()) * 12 + (d.month() as i64 - 1) + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = time::Month::try_from((total.rem_euclid(12) + 1) as u8).ok()?;
    let last = month.length(year);
    Date::from_calendar_date(year, month, d.day().min(last)).ok()
}
