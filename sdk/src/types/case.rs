//! The case a call is for, and its clock.

use super::*;

/// The case's clock: the host's "now" for this call and the offset of the
/// host's local time zone. The call's WASI wall clock reads the same instant.
///
/// ```
/// use onething_sdk::Clock;
///
/// // 2026-12-03T17:30:00Z is already the 4th in Chongqing (UTC+8).
/// let now = Clock::new(1_796_319_000_000, 480);
/// assert_eq!(now.unix_ms(), 1_796_319_000_000);
/// assert_eq!(now.utc_offset_minutes(), 480);
/// assert_eq!(now.local_date(), (2026, 12, 4));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    unix_ms: i64,
    utc_offset_minutes: i32,
}

impl Clock {
    /// A clock at `unix_ms` (milliseconds since the Unix epoch, UTC) in a
    /// time zone `utc_offset_minutes` east of UTC (480 for UTC+8).
    pub fn new(unix_ms: i64, utc_offset_minutes: i32) -> Self {
        Clock {
            unix_ms,
            utc_offset_minutes,
        }
    }

    /// Milliseconds since the Unix epoch, UTC.
    pub fn unix_ms(&self) -> i64 {
        self.unix_ms
    }

    /// Minutes east of UTC of the host's local time.
    pub fn utc_offset_minutes(&self) -> i32 {
        self.utc_offset_minutes
    }

    /// Milliseconds since the epoch of the local wall clock (UTC shifted by
    /// the offset).
    fn local_ms(&self) -> i64 {
        self.unix_ms
            .saturating_add(i64::from(self.utc_offset_minutes).saturating_mul(60_000))
    }

    /// The local calendar date as (year, month 1–12, day 1–31).
    pub fn local_date(&self) -> (i32, u32, u32) {
        civil_from_days(self.local_ms().div_euclid(86_400_000))
    }

    /// Milliseconds since local midnight (0 to 86 399 999).
    pub fn local_ms_of_day(&self) -> u32 {
        // In range by `rem_euclid`.
        u32::try_from(self.local_ms().rem_euclid(86_400_000)).unwrap_or(0)
    }
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX }),
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

impl From<wit::CaseClock> for Clock {
    fn from(c: wit::CaseClock) -> Self {
        Clock::new(c.unix_ms, c.utc_offset_minutes)
    }
}

/// The case a call is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The case id.
    pub id: String,
    /// The scenario id.
    pub scenario: String,
    /// The applicant's id.
    pub applicant: String,
    subject: Option<String>,
    place: Option<String>,
    mode: Mode,
    clock: Clock,
    raw_state: String,
}

impl Case {
    /// A case, as a test would build one: no place, no subject, normal
    /// mode, the clock at the epoch (see the `with_*` builders).
    pub fn new(id: &str, scenario: &str, applicant: &str, state_json: &str) -> Self {
        Case {
            id: id.into(),
            scenario: scenario.into(),
            applicant: applicant.into(),
            subject: None,
            place: None,
            mode: Mode::Normal,
            clock: Clock::default(),
            raw_state: state_json.into(),
        }
    }

    /// The same case at `place` (for tests).
    pub fn with_place(mut self, place: &str) -> Self {
        self.place = Some(place.into());
        self
    }

    /// The same case about `subject` (for tests).
    pub fn with_subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The same case in `mode` (for tests).
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The same case with its clock at `now` (for tests).
    pub fn with_clock(mut self, now: Clock) -> Self {
        self.clock = now;
        self
    }

    /// Where the case is, as a place id (`cq/yubei/longxi/jinlong/g07`):
    /// from a `place` field, the reporting device's place, or an earlier
    /// outcome ([`Outcome::at_place`]); `None` until one of them says.
    ///
    /// ```
    /// use onething_sdk::Case;
    ///
    /// let case = Case::new("c1", "newborn", "500103199203150021", "{}");
    /// assert_eq!(case.place(), None);
    /// let case = case.with_place("cq/yuzhong");
    /// assert_eq!(case.place(), Some("cq/yuzhong"));
    /// ```
    pub fn place(&self) -> Option<&str> {
        self.place.as_deref()
    }

    /// The id number of the person the case is about, when the form has a
    /// [`Field::subject`] (the host has bound it to the applicant or to a
    /// mandate); `None` otherwise. It differs from `applicant` when an
    /// agent applies for someone who gave them a mandate (代办).
    ///
    /// ```
    /// use onething_sdk::Case;
    ///
    /// let case = Case::new("c1", "newborn", "500103199203150021", "{}");
    /// assert_eq!(case.subject(), None);
    /// assert_eq!(case.with_subject("500103202611200011").subject(), Some("500103202611200011"));
    /// ```
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The host's "now" for this call, and its local offset.
    ///
    /// ```
    /// use onething_sdk::{Case, Clock};
    ///
    /// let case = Case::new("c1", "newborn", "a", "{}").with_clock(Clock::new(0, 480));
    /// assert_eq!(case.now().local_date(), (1970, 1, 1));
    /// assert_eq!(case.now().local_ms_of_day(), 8 * 3_600_000);
    /// ```
    pub fn now(&self) -> Clock {
        self.clock
    }

    /// How the case's area is being run (always [`Mode::Normal`] on a host
    /// without the closed loop).
    ///
    /// ```
    /// use onething_sdk::{Case, Mode};
    ///
    /// let case = Case::new("c1", "ebike-charging", "device-7", "{}");
    /// assert_eq!(case.mode(), Mode::Normal);
    /// ```
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The plugin's state for the case, as the host keeps it (`{}` at first).
    pub fn raw_state(&self) -> &str {
        &self.raw_state
    }

    /// The plugin's state, deserialised; an empty state (`{}` or nothing)
    /// gives `T::default()`.
    pub fn state<T: DeserializeOwned + Default>(&self) -> Result<T, Error> {
        parse_state(&self.raw_state)
    }
}

/// Parses a stored state: empty (or `{}`) is the default.
pub(crate) fn parse_state<T: DeserializeOwned + Default>(raw: &str) -> Result<T, Error> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed == "{}" || trimmed == "null" {
        return Ok(T::default());
    }
    serde_json::from_str(trimmed)
        .map_err(|e| Error::Invalid(format!("the case's stored state cannot be read: {e}")))
}

impl From<wit::CaseInfo> for Case {
    fn from(c: wit::CaseInfo) -> Self {
        Case {
            id: c.id,
            scenario: c.scenario,
            applicant: c.applicant,
            subject: c.subject,
            place: c.place,
            mode: c.mode.into(),
            clock: c.clock.into(),
            raw_state: c.state,
        }
    }
}
