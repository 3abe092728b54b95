//! Working-day arithmetic for department deadlines (办结时限).
//!
//! Deadlines in working days are counted in the service's local time zone
//! (UTC+8 by default, the config key `timezone_offset_hours`): weekends and
//! public holidays do not count, and the item is due at the same local time
//! of day on the last working day. An item dispatched on a day off starts
//! counting on the next working day.
//!
//! The holiday calendar (config key `holidays_file`) is a text file, one date
//! per line, as the State Council publishes them each year:
//!
//! ```text
//! # 2026 National Day
//! 2026-10-01 holiday
//! 2026-10-02 holiday
//! 2026-10-10 workday    # a Saturday worked in exchange (调休)
//! 2026-10-03            # a bare date is a holiday
//! ```
//!
//! [`Calendar::due_at`] is total: it never panics and its cost does not grow
//! with the number of days. Working days are counted a week at a time (an
//! ordinary week has five), and only the holidays and worked weekend days
//! between the dispatch and the due day are looked at, found by range
//! queries on sorted sets: O(log h + the entries in that range) for a
//! holiday file of h entries, whatever the number of days. A due time past
//! the latest instant chrono can represent is that instant,
//! [`DateTime::<Utc>::MAX_UTC`] (the year 262142); the dispatch boundary
//! refuses such limits long before (`limits.max_due_working_days`).

use std::collections::BTreeSet;
use std::collections::btree_set;
use std::iter::Peekable;
use std::ops::Bound;
use std::path::Path;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Offset, TimeDelta, Utc, Weekday};

use crate::model::Due;

/// Computes due times in one local time zone, with its days off.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    offset: Option<FixedOffset>,
    /// Dates listed as holidays (bare or `holiday`), sorted for range
    /// queries. One on a weekend changes nothing.
    holidays: BTreeSet<NaiveDate>,
    /// Dates listed as `workday`, sorted. One on a weekday changes nothing
    /// unless the same date is also listed as a holiday (the workday wins).
    workdays: BTreeSet<NaiveDate>,
}

/// Why a holiday file was refused.
#[derive(Debug, thiserror::Error)]
pub enum HolidayFileError {
    /// The file could not be read.
    #[error("cannot read holiday file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not `YYYY-MM-DD [holiday|workday]`.
    #[error("holiday file line {line}: `{text}` is not `YYYY-MM-DD [holiday|workday]`")]
    Line {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

impl Calendar {
    /// A calendar for a zone `hours` east of UTC (-12..=14); out of range
    /// falls back to UTC+8. No holidays.
    pub fn new(hours: i32) -> Self {
        let offset = hours
            .checked_mul(3600)
            .and_then(FixedOffset::east_opt)
            .or_else(|| FixedOffset::east_opt(8 * 3600))
            .unwrap_or_else(|| Utc.fix());
        Calendar {
            offset: Some(offset),
            ..Calendar::default()
        }
    }

    /// Adds the days off and worked weekend days of a holiday file's text.
    pub fn with_holidays(mut self, text: &str) -> Result<Self, HolidayFileError> {
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let bad = || HolidayFileError::Line {
                line: index + 1,
                text: raw.trim().to_owned(),
            };
            let date = words
                .next()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .ok_or_else(bad)?;
            match (words.next(), words.next()) {
                (None | Some("holiday"), None) => {
                    self.holidays.insert(date);
                }
                (Some("workday"), None) => {
                    self.workdays.insert(date);
                }
                _ => return Err(bad()),
            }
        }
        Ok(self)
    }

    /// Reads a holiday file.
    pub fn with_holiday_file(self, path: &Path) -> Result<Self, HolidayFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| HolidayFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.with_holidays(&text)
    }

    fn offset(&self) -> FixedOffset {
        self.offset.unwrap_or_else(|| Utc.fix())
    }

    /// Minutes east of UTC of the calendar's local time (a plugin's
    /// `case-info.clock`).
    pub fn utc_offset_minutes(&self) -> i32 {
        self.offset().local_minus_utc() / 60
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.workdays.contains(&date) {
            return true;
        }
        is_weekday(date) && !self.holidays.contains(&date)
    }

    /// When an item dispatched at `from` with limit `due` is due.
    ///
    /// Never panics, and is never before `from`: a due time past the latest
    /// instant chrono can represent is [`DateTime::<Utc>::MAX_UTC`]. Hours
    /// and minutes are calendar time; working days are counted as the
    /// module documentation says, in time independent of their number.
    pub fn due_at(&self, from: DateTime<Utc>, due: Due) -> DateTime<Utc> {
        let later = match due {
            Due::Hours(hours) => TimeDelta::try_hours(i64::from(hours)),
            Due::Minutes(minutes) => TimeDelta::try_minutes(i64::from(minutes)),
            Due::WorkingDays(0) => return from,
            // A dispatch whose local date chrono cannot hold (hours from
            // either end of its range) saturates like any result past it.
            Due::WorkingDays(days) => {
                from.naive_utc()
                    .checked_add_offset(self.offset())
                    .and_then(|local| {
                        TimeDelta::try_days(self.days_until_working_day(local.date(), days))
                    })
            }
        };
        // Calendar days are whole days in a fixed offset, so adding them
        // keeps the local time of day.
        later
            .and_then(|later| from.checked_add_signed(later))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// How many calendar days after `start` its `n`th working day is
    /// (counting from the day after `start`; 0 for `n` = 0).
    ///
    /// Walks the listed dates after `start` in order, and between two of
    /// them (where every weekday works and no weekend day does) counts
    /// weekdays in closed form. It stops at the first listed date past the
    /// answer, so it looks at the entries in range and no others.
    fn days_until_working_day(&self, start: NaiveDate, n: u32) -> i64 {
        let origin = day_number(start);
        // Working days up to and including `cursor` are counted; `left` are
        // still to come.
        let mut cursor = origin;
        let mut left = i64::from(n);
        if left == 0 {
            return 0;
        }
        for (date, listed) in self.listed_after(start) {
            let weekday = is_weekday(date);
            let works = listed.workday || (weekday && !listed.holiday);
            if works == weekday {
                // A holiday on a weekend, a workday on a weekday: as usual.
                continue;
            }
            let at = day_number(date);
            let plain = weekdays_through(at - 1) - weekdays_through(cursor);
            if plain >= left {
                break;
            }
            left -= plain;
            cursor = at;
            if works {
                left -= 1;
                if left == 0 {
                    return at - origin;
                }
            }
        }
        nth_weekday(weekdays_through(cursor) + left) - origin
    }

    /// The dates after `start` listed as holidays or workdays, in order,
    /// each once with the lists it is on.
    fn listed_after(&self, start: NaiveDate) -> Listed<'_> {
        let after = (Bound::Excluded(start), Bound::Unbounded);
        Listed {
            holidays: self.holidays.range(after).peekable(),
            workdays: self.workdays.range(after).peekable(),
        }
    }
}

/// Which lists a date is on.
#[derive(Debug, Clone, Copy)]
struct OnLists {
    holiday: bool,
    workday: bool,
}

/// The merge of two sorted ranges of listed dates.
struct Listed<'a> {
    holidays: Peekable<btree_set::Range<'a, NaiveDate>>,
    workdays: Peekable<btree_set::Range<'a, NaiveDate>>,
}

impl Iterator for Listed<'_> {
    type Item = (NaiveDate, OnLists);

    fn next(&mut self) -> Option<Self::Item> {
        let date = match (self.holidays.peek(), self.workdays.peek()) {
            (Some(&&h), Some(&&w)) => h.min(w),
            (Some(&&h), None) => h,
            (None, Some(&&w)) => w,
            (None, None) => return None,
        };
        let lists = OnLists {
            holiday: self.holidays.next_if(|&&d| d == date).is_some(),
            workday: self.workdays.next_if(|&&d| d == date).is_some(),
        };
        Some((date, lists))
    }
}

fn is_weekday(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Days since Monday 0001-01-01 (proleptic Gregorian), so that a day's
/// number modulo 7 is its weekday counted from Monday. Every date chrono
/// holds is within ±2^27 of it, so the sums below, with at most 2^32
/// working days, stay far from i64's range.
fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - 1
}

/// Weekdays from day 0 through day `day` (for a day before day 0, minus
/// the weekdays from it to day 0). Only differences are used: the count
/// at `b` less the count at `a` is the weekdays after `a` through `b`.
fn weekdays_through(day: i64) -> i64 {
    5 * day.div_euclid(7) + (day.rem_euclid(7) + 1).min(5)
}

/// The day on which [`weekdays_through`] reaches `count`: the first day
/// with that many weekdays through it.
fn nth_weekday(count: i64) -> i64 {
    7 * (count - 1).div_euclid(5) + (count - 1).rem_euclid(5)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::{Just, Strategy, any, prop_assert, prop_assert_eq, prop_oneof};

    fn beijing(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn five_working_days_from_a_tuesday_skip_the_weekend() {
        // Tuesday 2026-11-24 10:00 → Tuesday 2026-12-01 10:00.
        let cal = Calendar::new(8);
        let due = cal.due_at(beijing(2026, 11, 24, 10), Due::WorkingDays(5));
        assert_eq!(due, beijing(2026, 12, 1, 10));
    }

    #[test]
    fn a_saturday_dispatch_counts_from_monday() {
        // Saturday 2026-11-28 → Monday is day 1, Friday 2026-12-04 is day 5.
        let cal = Calendar::new(8);
        let due = cal.due_at(beijing(2026, 11, 28, 9), Due::WorkingDays(5));
        assert_eq!(due, beijing(2026, 12, 4, 9));
    }

    #[test]
    fn the_weekday_is_taken_in_local_time() {
        // Friday 23:30 in Beijing is still Friday 15:30 UTC; one working day
        // later is Monday in Beijing, not Saturday.
        let cal = Calendar::new(8);
        let friday_night = FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(2026, 11, 27, 23, 30, 0)
            .unwrap()
            .with_timezone(&Utc);
        let due = cal.due_at(friday_night, Due::WorkingDays(1));
        assert_eq!(
            due.with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
                .weekday(),
            Weekday::Mon
        );
    }

    #[test]
    fn national_day_and_its_worked_saturday_are_honoured() {
        // Dispatched Tuesday 2026-09-29. Oct 1-7 are off; Saturday Oct 10
        // is worked in exchange. Working days: 9/30 (1), 10/8 (2), 10/9 (3),
        // 10/10 (4), 10/12 (5).
        let holidays = "# National Day\n2026-10-01 holiday\n2026-10-02\n2026-10-05\n2026-10-06\n2026-10-07\n2026-10-10 workday\n";
        let cal = Calendar::new(8).with_holidays(holidays).unwrap();
        let due = cal.due_at(beijing(2026, 9, 29, 10), Due::WorkingDays(5));
        assert_eq!(due, beijing(2026, 10, 12, 10));
    }

    #[test]
    fn a_bad_holiday_line_is_named() {
        let err = Calendar::new(8)
            .with_holidays("2026-10-01\n2026-13-01 holiday\n")
            .unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = Calendar::new(8)
            .with_holidays("2026-10-01 party\n")
            .unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn hours_are_calendar_hours() {
        let cal = Calendar::new(8);
        let from = beijing(2026, 11, 28, 9);
        assert_eq!(cal.due_at(from, Due::Hours(3)), from + Duration::hours(3));
    }

    // ---- total, week-at-a-time arithmetic --------------------------------

    /// The day-by-day count the calendar did before it counted by weeks:
    /// the reference the fast count must equal.
    fn day_by_day(cal: &Calendar, from: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let mut local = from.with_timezone(&cal.offset());
        let mut left = days;
        while left > 0 {
            local += Duration::days(1);
            if cal.is_working_day(local.date_naive()) {
                left -= 1;
            }
        }
        local.with_timezone(&Utc)
    }

    /// A holiday file listing `around + offset` days for each entry, as a
    /// holiday (kind 0), a bare date (1) or a workday (2).
    fn holiday_file(around: NaiveDate, entries: &[(i64, u8)]) -> String {
        let mut text = String::from("# generated\n");
        for &(offset, kind) in entries {
            let Some(date) = around.checked_add_signed(Duration::days(offset)) else {
                continue;
            };
            let word = match kind {
                0 => " holiday",
                1 => "",
                _ => " workday",
            };
            text.push_str(&format!("{date}{word}\n"));
        }
        text
    }

    fn calendar(zone: i32, around: NaiveDate, entries: Option<&[(i64, u8)]>) -> Calendar {
        let cal = Calendar::new(zone);
        match entries {
            Some(entries) => cal.with_holidays(&holiday_file(around, entries)).unwrap(),
            None => cal,
        }
    }

    /// Any `u32`, with its edges and small values drawn often.
    fn any_count() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0u32),
            Just(1),
            Just(u32::MAX),
            0u32..2_000,
            any::<u32>()
        ]
    }

    fn due_of(kind: u8, n: u32) -> Due {
        match kind {
            0 => Due::WorkingDays(n),
            1 => Due::Hours(n),
            _ => Due::Minutes(n),
        }
    }

    #[test]
    fn the_largest_dues_saturate_at_the_latest_instant() {
        let cal = Calendar::new(8).with_holidays("2026-10-01\n").unwrap();
        let from = beijing(2026, 11, 24, 10);
        let max = DateTime::<Utc>::MAX_UTC;
        // u32::MAX hours are 490,000 years, working days 16 million.
        assert_eq!(cal.due_at(from, Due::Hours(u32::MAX)), max);
        assert_eq!(cal.due_at(from, Due::WorkingDays(u32::MAX)), max);
        // u32::MAX minutes (8,000 years) still fit.
        assert_eq!(
            cal.due_at(from, Due::Minutes(u32::MAX)),
            from + Duration::minutes(i64::from(u32::MAX))
        );
        // At the ends of chrono's range, in zones either side of UTC.
        for zone in [-12, 0, 8, 14] {
            let cal = Calendar::new(zone);
            for due in [Due::WorkingDays(1), Due::Hours(1), Due::Minutes(1)] {
                assert_eq!(cal.due_at(max, due), max);
                let min = DateTime::<Utc>::MIN_UTC;
                assert!(cal.due_at(min, due) > min);
            }
            assert_eq!(cal.due_at(max, Due::WorkingDays(0)), max);
        }
    }

    #[test]
    fn six_million_working_days_are_whole_weeks() {
        // 6,000,000 working days without holidays are 1,200,000 weeks.
        let cal = Calendar::new(8);
        let from = beijing(2026, 11, 24, 10);
        assert_eq!(
            cal.due_at(from, Due::WorkingDays(6_000_000)),
            from + Duration::weeks(1_200_000)
        );
    }

    #[test]
    fn a_workday_wins_over_a_holiday_and_weekend_holidays_change_nothing() {
        // Wednesday 2026-12-02 is both a holiday and a workday: it works.
        // Saturday 2026-12-05 is a holiday: it was off anyway.
        let cal = Calendar::new(8)
            .with_holidays("2026-12-02\n2026-12-02 workday\n2026-12-05 holiday\n")
            .unwrap();
        let from = beijing(2026, 12, 1, 10);
        assert_eq!(
            cal.due_at(from, Due::WorkingDays(1)),
            beijing(2026, 12, 2, 10)
        );
        assert_eq!(
            cal.due_at(from, Due::WorkingDays(3)),
            beijing(2026, 12, 4, 10)
        );
        assert_eq!(
            cal.due_at(from, Due::WorkingDays(4)),
            beijing(2026, 12, 7, 10)
        );
    }

    #[test]
    fn a_zone_far_out_of_range_falls_back_to_beijing() {
        let cal = Calendar::new(i32::MAX);
        let from = beijing(2026, 11, 27, 23);
        assert_eq!(
            cal.due_at(from, Due::WorkingDays(1)),
            beijing(2026, 11, 30, 23)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(512))]

        /// Every due of every kind over the whole u32 range, from any
        /// instant of 1970..2200, with and without holidays: no panic, never
        /// before the dispatch, and later for more.
        #[test]
        fn due_at_is_total_and_monotonic(
            kind in 0u8..3,
            a in any_count(),
            b in any_count(),
            seconds in 0i64..7_258_118_400,
            zone in prop_oneof![-12i32..=14, any::<i32>()],
            entries in proptest::option::of(proptest::collection::vec(
                (-400i64..40_000, 0u8..3),
                0..100,
            )),
        ) {
            let from = DateTime::from_timestamp(seconds, 0).unwrap();
            let cal = calendar(zone, from.date_naive(), entries.as_deref());
            let (fewer, more) = (a.min(b), a.max(b));
            let early = cal.due_at(from, due_of(kind, fewer));
            let late = cal.due_at(from, due_of(kind, more));
            let next = cal.due_at(from, due_of(kind, more.saturating_add(1)));
            prop_assert!(from <= early);
            prop_assert!(early <= late && late <= next);
            if fewer < more && late < DateTime::<Utc>::MAX_UTC {
                prop_assert!(early < late);
            }
            if kind == 1 && late < DateTime::<Utc>::MAX_UTC {
                prop_assert_eq!(late - from, Duration::hours(i64::from(more)));
            }
        }

        /// The week-at-a-time count equals the day-by-day count, with
        /// holidays and worked weekend days sparse and dense (several a
        /// week around the dispatch).
        #[test]
        fn working_days_equal_a_day_by_day_count(
            day in 0i64..(130 * 365),
            second_of_day in 0i64..86_400,
            zone in -12i32..=14,
            n in prop_oneof![0u32..20, 0u32..3_000],
            dense in proptest::collection::vec((-7i64..42, 0u8..3), 0..30),
            sparse in proptest::collection::vec((-30i64..5_000, 0u8..3), 0..200),
        ) {
            let from = DateTime::from_timestamp(631_152_000 + day * 86_400 + second_of_day, 0)
                .unwrap();
            let entries: Vec<_> = dense.into_iter().chain(sparse).collect();
            let cal = calendar(zone, from.date_naive(), Some(&entries));
            prop_assert_eq!(
                cal.due_at(from, Due::WorkingDays(n)),
                day_by_day(&cal, from, n)
            );
        }
    }
}
