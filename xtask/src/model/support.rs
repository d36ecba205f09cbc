//! When the upstream base an image is built on stops getting fixes (`base_support_ends` in
//! images.toml), and what that means today: fine, a warning within `WARN_DAYS` of it, an error
//! after it, so that an end-of-life base cannot ship silently. Pure: "today" is given.

use std::time::{Duration, SystemTime};

/// How long before the end a warning starts.
pub const WARN_DAYS: u64 = 90;

const DAY: u64 = 24 * 60 * 60;

/// A date a base's support ends: the start of that day, UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportEnds {
    /// `YYYY-MM-DD`, as written.
    pub date: String,
    at: SystemTime,
}

impl SupportEnds {
    /// `date` as TOML writes a local date (`2027-11-01`); None when it is not one.
    pub fn parse(date: &str) -> Option<SupportEnds> {
        let well_formed = date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-';
        let at = humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).ok().filter(|_| well_formed)?;
        Some(SupportEnds { date: date.to_string(), at })
    }

    pub fn status(&self, now: SystemTime) -> Support {
        match self.at.duration_since(now) {
            Ok(left) if left >= Duration::from_secs(WARN_DAYS * DAY) => Support::Fine,
            Ok(left) => Support::EndsSoon { days: left.as_secs().div_ceil(DAY) },
            Err(past) => Support::Ended { days: past.duration().as_secs() / DAY },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    Fine,
    EndsSoon { days: u64 },
    Ended { days: u64 },
}

/// The message for `image`, whose base support ends on `ends`, when it is worth one.
pub fn message(image: &str, ends: &SupportEnds, now: SystemTime) -> Option<(Support, String)> {
    let status = ends.status(now);
    let text = match &status {
        Support::Fine => return None,
        Support::EndsSoon { days } => format!(
            "images.{image}.base_support_ends: support for its base ends on {} ({}): move it to a \
             supported release and update base_support_ends",
            ends.date,
            match days {
                0 => "today".to_string(),
                _ => format!("in {}", count_days(*days)),
            }
        ),
        Support::Ended { days } => format!(
            "images.{image}.base_support_ends: support for its base ended on {} ({}): it gets no \
             more fixes; move it to a supported release before publishing it again",
            ends.date,
            match days {
                0 => "today".to_string(),
                _ => format!("{} ago", count_days(*days)),
            }
        ),
    };
    Some((status, text))
}

/// `1 day`, `2 days`.
fn count_days(days: u64) -> String {
    match days {
        1 => "1 day".to_string(),
        n => format!("{n} days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str) -> SystemTime {
        humantime::parse_rfc3339(&format!("{date}T12:00:00Z")).unwrap()
    }

    #[test]
    fn fine_then_a_warning_within_ninety_days_then_an_error() {
        let ends = SupportEnds::parse("2027-11-01").unwrap();
        assert_eq!(ends.status(day("2026-11-29")), Support::Fine);
        assert_eq!(ends.status(day("2027-08-04")), Support::EndsSoon { days: 89 });
        assert_eq!(ends.status(day("2027-10-31")), Support::EndsSoon { days: 1 });
        assert_eq!(ends.status(day("2027-11-01")), Support::Ended { days: 0 });
        assert_eq!(ends.status(day("2027-11-11")), Support::Ended { days: 10 });
        let (_, text) = message("alpine", &ends, day("2027-11-11")).unwrap();
        assert!(
            text.starts_with("images.alpine.base_support_ends: support for its base ended on 2027-11-01"),
            "{text}"
        );
        assert!(message("alpine", &ends, day("2026-11-29")).is_none());
        let said = |date: &str| message("alpine", &ends, day(date)).unwrap().1;
        assert!(said("2027-11-01").contains("ended on 2027-11-01 (today)"), "{}", said("2027-11-01"));
        assert!(said("2027-11-02").contains("(1 day ago)"), "{}", said("2027-11-02"));
        assert!(said("2027-10-31").contains("(in 1 day)"), "{}", said("2027-10-31"));
        assert!(said("2027-11-11").contains("(10 days ago)"));
    }

    #[test]
    fn only_dates_parse() {
        assert!(SupportEnds::parse("2027-02-30").is_none());
        assert!(SupportEnds::parse("2027-11-01T00:00:00Z").is_none());
        assert!(SupportEnds::parse("next year").is_none());
        assert!(SupportEnds::parse("2027-1-01").is_none());
    }
}
