//! Calendar dates in UTC, and ages in whole years: the little a birth-date check needs, written
//! out so the rule (which day a birthday falls on) is ours to read and test, with no date crate.

use std::fmt;

const SECONDS_PER_DAY: u64 = 86_400;

/// A proleptic Gregorian calendar date (no time of day, no time zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl CivilDate {
    /// The date, if it exists (month 1–12, day within the month, leap years counted).
    pub fn new(year: i32, month: u8, day: u8) -> Option<CivilDate> {
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if is_leap_year(year) => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days_in_month)
            .contains(&day)
            .then_some(CivilDate { year, month, day })
    }

    /// Parses exactly `YYYY-MM-DD` (ISO 8601 calendar date, as OIDC's `birthdate`), nothing
    /// looser: a date that reads two ways must not pass.
    pub fn parse_iso(text: &str) -> Option<CivilDate> {
        let bytes = text.as_bytes();
        let shape_ok = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shape_ok {
            return None;
        }
        let year = text[0..4].parse().ok()?;
        let month = text[5..7].parse().ok()?;
        let day = text[8..10].parse().ok()?;
        CivilDate::new(year, month, day)
    }

    /// The UTC date of an instant.
    pub fn from_unix_s(unix_s: u64) -> CivilDate {
        // At most about 2.1e14 days: i64 arithmetic below cannot overflow.
        let days = (unix_s / SECONDS_PER_DAY) as i64;
        civil_from_days(days)
    }

    /// Whole years from `self` to `later` (negative if `later` is earlier): the age on `later`
    /// of someone born on `self`. A birthday is reached on its month and day; someone born on
    /// 29 February turns a year older on 1 March in common years (the later of the two
    /// readings, so the rule never admits anyone early).
    pub fn whole_years_until(self, later: CivilDate) -> i64 {
        let years = i64::from(later.year) - i64::from(self.year);
        let before_birthday = (later.month, later.day) < (self.month, self.day);
        years - i64::from(before_birthday)
    }

    /// Midnight UTC at the start of this date, in Unix seconds (tests build instants with it).
    #[cfg(test)]
    pub(crate) fn unix_s_at_midnight(self) -> i64 {
        days_from_civil(self) * SECONDS_PER_DAY as i64
    }
}

impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days since 1970-01-01 to a civil date: Howard Hinnant's `civil_from_days`
/// (<https://howardhinnant.github.io/date_algorithms.html>). It counts in 400-year eras of
/// 146 097 days, with years starting on 1 March so that the leap day is the last day of a year.
fn civil_from_days(days: i64) -> CivilDate {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
                                            // [0, 399]
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    // [0, 365]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11]
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // [1, 31]
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    CivilDate {
        // Instants past year 2^31 are not real clocks: saturate rather than wrap.
        year: i32::try_from(year).unwrap_or(i32::MAX),
        month: month as u8,
        day: day as u8,
    }
}

/// The inverse of [`civil_from_days`], same reference.
#[cfg(test)]
fn days_from_civil(date: CivilDate) -> i64 {
    let year = i64::from(date.year) - i64::from(date.month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(date.month);
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(date.day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_fall_on_their_utc_dates() {
        assert_eq!(
            CivilDate::from_unix_s(0),
            CivilDate::new(1970, 1, 1).unwrap()
        );
        // 2000-02-29T23:59:59Z and the second after.
        assert_eq!(
            CivilDate::from_unix_s(951_868_799),
            CivilDate::new(2000, 2, 29).unwrap()
        );
        assert_eq!(
            CivilDate::from_unix_s(951_868_800),
            CivilDate::new(2000, 3, 1).unwrap()
        );
        assert_eq!(
            CivilDate::from_unix_s(1_735_689_600),
            CivilDate::new(2025, 1, 1).unwrap()
        );
    }

    #[test]
    fn every_day_for_three_centuries_round_trips() {
        let start = days_from_civil(CivilDate::new(1900, 1, 1).unwrap());
        let end = days_from_civil(CivilDate::new(2200, 12, 31).unwrap());
        let mut previous = civil_from_days(start - 1);
        for days in start..=end {
            let date = civil_from_days(days);
            assert_eq!(days_from_civil(date), days);
            assert!(date > previous, "{date} after {previous}");
            assert_eq!(CivilDate::new(date.year, date.month, date.day), Some(date));
            previous = date;
        }
    }

    #[test]
    fn iso_dates_parse_strictly() {
        assert_eq!(
            CivilDate::parse_iso("2004-02-29"),
            CivilDate::new(2004, 2, 29)
        );
        for bad in [
            "2003-02-29",
            "2004-2-29",
            "2004-02-29T00:00:00Z",
            "+004-02-29",
            "2004/02/29",
            "2004-13-01",
            "2004-00-10",
            "",
        ] {
            assert_eq!(CivilDate::parse_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_leap_day_birthday_is_reached_on_the_first_of_march_in_common_years() {
        let born = CivilDate::new(2004, 2, 29).unwrap();
        let feb_28 = CivilDate::new(2022, 2, 28).unwrap();
        let mar_1 = CivilDate::new(2022, 3, 1).unwrap();
        assert_eq!(born.whole_years_until(feb_28), 17);
        assert_eq!(born.whole_years_until(mar_1), 18);
    }
}
