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

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Offset, Utc, Weekday};

use crate::model::Due;

/// Computes due times in one local time zone, with its days off.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    offset: Option<FixedOffset>,
    holidays: HashSet<NaiveDate>,
    workdays: HashSet<NaiveDate>,
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
        let offset = FixedOffset::east_opt(hours * 3600)
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

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.workdays.contains(&date) {
            return true;
        }
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&date)
    }

    /// When an item dispatched at `from` with limit `due` is due.
    pub fn due_at(&self, from: DateTime<Utc>, due: Due) -> DateTime<Utc> {
        match due {
            Due::Hours(hours) => from + Duration::hours(i64::from(hours)),
            Due::Minutes(minutes) => from + Duration::minutes(i64::from(minutes)),
            Due::WorkingDays(days) => {
                let mut local = from.with_timezone(&self.offset());
                let mut left = days;
                while left > 0 {
                    local += Duration::days(1);
                    if self.is_working_day(local.date_naive()) {
                        left -= 1;
                    }
                }
                local.with_timezone(&Utc)
            }
        }
    }
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
}
