//! Working-day arithmetic for department deadlines (办结时限).
//!
//! Deadlines in working days are counted in the service's local time zone
//! (UTC+8 by default, the config key `timezone_offset_hours`): weekends do not
//! count, and the item is due at the same local time of day on the last
//! working day. An item dispatched on a weekend starts counting on Monday.
//! Public holidays come with the holiday calendar of the deadlines work.

use chrono::{DateTime, Datelike, Duration, FixedOffset, Offset, Utc, Weekday};

use crate::model::Due;

/// Computes due times in one local time zone.
#[derive(Debug, Clone, Copy)]
pub struct Calendar {
    offset: FixedOffset,
}

impl Calendar {
    /// A calendar for a zone `hours` east of UTC (-12..=14); out of range
    /// falls back to UTC+8.
    pub fn new(hours: i32) -> Self {
        let offset = FixedOffset::east_opt(hours * 3600)
            .or_else(|| FixedOffset::east_opt(8 * 3600))
            .unwrap_or_else(|| Utc.fix());
        Calendar { offset }
    }

    /// When an item dispatched at `from` with limit `due` is due.
    pub fn due_at(&self, from: DateTime<Utc>, due: Due) -> DateTime<Utc> {
        match due {
            Due::Hours(hours) => from + Duration::hours(i64::from(hours)),
            Due::WorkingDays(days) => {
                let mut local = from.with_timezone(&self.offset);
                let mut left = days;
                while left > 0 {
                    local += Duration::days(1);
                    if is_working_day(local.weekday()) {
                        left -= 1;
                    }
                }
                local.with_timezone(&Utc)
            }
        }
    }
}

fn is_working_day(day: Weekday) -> bool {
    !matches!(day, Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

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
    fn hours_are_calendar_hours() {
        let cal = Calendar::new(8);
        let from = beijing(2026, 11, 28, 9);
        assert_eq!(cal.due_at(from, Due::Hours(3)), from + Duration::hours(3));
    }
}
