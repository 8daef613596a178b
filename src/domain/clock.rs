//! Timestamps: RFC 3339 UTC with millisecond precision, so that text order
//! is time order in SQL.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `2026-03-17T10:00:00.123Z`: UTC, milliseconds truncated.
///
/// Written digit by digit: every write stamps several of these on the
/// single writer thread, and `time`'s format description took ~1,900
/// instructions each (3 % of the writer's work per queue job, counted with
/// callgrind); this takes ~840, most of them finding the calendar date
/// and allocating the string. Years the fixed layout cannot
/// hold (before 0000; after 9999 if `time` ever holds them) go through
/// `time`'s formatter.
pub fn format(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let Some(year) = u16::try_from(t.year()).ok().filter(|y| *y <= 9999) else {
        return format_slow(t);
    };
    let mut out = String::with_capacity(24);
    for (n, width, then) in [
        (year, 4, '-'),
        (u16::from(u8::from(t.month())), 2, '-'),
        (u16::from(t.day()), 2, 'T'),
        (u16::from(t.hour()), 2, ':'),
        (u16::from(t.minute()), 2, ':'),
        (u16::from(t.second()), 2, '.'),
        (t.millisecond(), 3, 'Z'),
    ] {
        for place in (0..width).rev() {
            // A digit, below 10: the cast loses nothing.
            out.push(char::from(b'0' + (n / 10u16.pow(place) % 10) as u8));
        }
        out.push(then);
    }
    out
}

/// [`format`] through `time`'s format description (any year).
fn format_slow(t: OffsetDateTime) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn the_fast_format_writes_what_the_format_description_writes() {
        let start = OffsetDateTime::from_unix_timestamp(0).unwrap();
        let mut instants = vec![
            start,
            OffsetDateTime::from_unix_timestamp(-62_167_219_200).unwrap(), // 0000-01-01
            OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap() // 9999-12-31T23:59:59
                + Duration::nanoseconds(999_999_999),
            OffsetDateTime::from_unix_timestamp(951_782_400).unwrap(), // 2000-02-29
            now(),
        ];
        // Every few hours and odd nanoseconds over a few centuries.
        let mut t = OffsetDateTime::from_unix_timestamp(-5_000_000_000).unwrap();
        for i in 0..20_000i64 {
            t += Duration::seconds(523_463 + i) + Duration::nanoseconds(i * 7_919_111);
            instants.push(t);
        }
        for t in instants {
            assert_eq!(format(t), format_slow(t), "{t}");
        }
        // Another offset is shown in UTC.
        let berlin = start.to_offset(UtcOffset::from_hms(1, 0, 0).unwrap());
        assert_eq!(format(berlin), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn years_before_zero_still_format() {
        let early = OffsetDateTime::from_unix_timestamp(-62_167_219_201).unwrap(); // year -1
        assert_eq!(format(early), format_slow(early));
        assert!(
            format(early).starts_with("-0001-12-31T23:59:59"),
            "{}",
            format(early)
        );
    }
}
