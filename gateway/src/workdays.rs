//! Working days on the official Chinese calendar: the statutory time limits of the approvals
//! (one working day for the traffic police's road-works permit, six for a water connection …)
//! are counted in them. Pure: the calendar is data (`gateway/calendar/cn-workdays.toml`, or the
//! operator's `calendar.file`), one State Council General Office notice per year, and every
//! answer says whether it ran past the last year the data knows (then weekends alone are
//! counted, and the answer is *provisional* until the next notice is loaded).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;

/// The calendar shipped with the gateway.
pub const BUILTIN: &str = include_str!("../calendar/cn-workdays.toml");

/// What is wrong with a calendar file: the notice (or line) and the day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CalendarError(pub String);

/// One year's notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The year it rules.
    pub year: i32,
    /// Its document number (e.g. 国办发明电〔2025〕7号).
    pub document: String,
    /// When it was issued.
    pub issued: NaiveDate,
    /// Days off that would otherwise be working days, and holidays.
    pub rest: BTreeSet<NaiveDate>,
    /// Saturdays and Sundays made working days (调休上班).
    pub work: BTreeSet<NaiveDate>,
}

/// The calendar: the notices by year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    notices: BTreeMap<i32, Notice>,
}

/// A day counted on the calendar, and whether a year without a notice was crossed to reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// The day.
    pub date: NaiveDate,
    /// True when the count crossed a year the calendar has no notice for (weekends alone were
    /// taken off there): recompute once that year's notice is loaded.
    pub provisional: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    notice: Vec<NoticeFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoticeFile {
    year: i32,
    document: String,
    issued: String,
    #[serde(default)]
    rest: Vec<String>,
    #[serde(default)]
    work: Vec<String>,
}

fn date(text: &str, notice: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| CalendarError(format!("{notice}: {text:?} is not a date (YYYY-MM-DD)")))
}

/// The days of `FIRST..LAST` (both included) or of one date.
fn days(text: &str, notice: &str) -> Result<Vec<NaiveDate>, CalendarError> {
    let Some((first, last)) = text.split_once("..") else {
        return Ok(vec![date(text, notice)?]);
    };
    let (first, last) = (date(first, notice)?, date(last, notice)?);
    if last < first {
        return Err(CalendarError(format!(
            "{notice}: {text:?} ends before it begins"
        )));
    }
    Ok(first.iter_days().take_while(|d| *d <= last).collect())
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

impl Calendar {
    /// Parses and checks a calendar file: every adjusted working day falls on a weekend, no day
    /// is both rest and work, every day falls in its notice's year, each year once.
    pub fn parse(text: &str) -> Result<Self, CalendarError> {
        let file: File =
            toml::from_str(text).map_err(|e| CalendarError(format!("not a calendar: {e}")))?;
        let mut notices = BTreeMap::new();
        for n in file.notice {
            let name = format!("{} ({})", n.document, n.year);
            let mut rest = BTreeSet::new();
            for text in &n.rest {
                rest.extend(days(text, &name)?);
            }
            let mut work = BTreeSet::new();
            for text in &n.work {
                work.extend(days(text, &name)?);
            }
            for day in rest.iter().chain(&work) {
                if day.year() != n.year {
                    return Err(CalendarError(format!("{name}: {day} is not in {}", n.year)));
                }
            }
            if let Some(day) = work.iter().find(|d| !is_weekend(**d)) {
                return Err(CalendarError(format!(
                    "{name}: the adjusted working day {day} is a {}, not a Saturday or Sunday",
                    day.weekday()
                )));
            }
            if let Some(day) = rest.intersection(&work).next() {
                return Err(CalendarError(format!(
                    "{name}: {day} is both a rest day and a working day"
                )));
            }
            let notice = Notice {
                year: n.year,
                issued: date(&n.issued, &name)?,
                document: n.document,
                rest,
                work,
            };
            if notices.insert(notice.year, notice).is_some() {
                return Err(CalendarError(format!(
                    "the year {} has two notices",
                    n.year
                )));
            }
        }
        if notices.is_empty() {
            return Err(CalendarError("the calendar has no notice".into()));
        }
        Ok(Self { notices })
    }

    /// The calendar shipped with the gateway.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN)
            .unwrap_or_else(|e| unreachable!("the shipped calendar is checked by its tests: {e}"))
    }

    /// The version a due date records: the document numbers of the notices it holds.
    pub fn version(&self) -> String {
        self.notices
            .values()
            .map(|n| n.document.as_str())
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// The last year with a notice.
    pub fn last_year(&self) -> i32 {
        self.notices.keys().next_back().copied().unwrap_or(i32::MIN)
    }

    /// Whether `day` is a working day, and whether that is provisional (no notice for its year:
    /// weekends alone are rest days).
    pub fn is_working_day(&self, day: NaiveDate) -> (bool, bool) {
        match self.notices.get(&day.year()) {
            Some(notice) => (
                notice.work.contains(&day) || (!is_weekend(day) && !notice.rest.contains(&day)),
                false,
            ),
            None => (!is_weekend(day), true),
        }
    }

    /// The `n`th working day after `day` (the day itself not counted: a limit starts on the
    /// working day after acceptance). `n` = 0 is `day`.
    pub fn add_working_days(&self, day: NaiveDate, n: u32) -> Counted {
        let mut counted = Counted {
            date: day,
            provisional: false,
        };
        let mut left = n;
        while left > 0 {
            let Some(next) = counted.date.succ_opt() else {
                break;
            };
            counted.date = next;
            let (working, provisional) = self.is_working_day(next);
            counted.provisional |= provisional;
            if working {
                left -= 1;
            }
        }
        counted
    }

    /// Working days in `(from, to]` — how many of a limit that started after `from` have passed
    /// at the end of `to` — and whether the count is provisional.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> (u32, bool) {
        let mut provisional = false;
        let mut n = 0u32;
        for day in from.iter_days().skip(1).take_while(|d| *d <= to) {
            let (working, unsure) = self.is_working_day(day);
            provisional |= unsure;
            n += u32::from(working);
        }
        (n, provisional)
    }

    /// True from 1 November of the calendar's last year on: next year's notice is due, and
    /// deadlines running into it are provisional (the gateway warns).
    pub fn next_year_due(&self, today: NaiveDate) -> bool {
        today.year() > self.last_year() || (today.year() == self.last_year() && today.month() >= 11)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// (accepted on, working days, due): the real 2025 and 2026 holidays with their adjusted
    /// Saturdays and Sundays.
    const DUE: &[(&str, u32, &str)] = &[
        // 2025 Spring Festival: 1/28–2/4 off, Sunday 1/26 and Saturday 2/8 worked.
        ("2025-01-24", 1, "2025-01-26"),
        ("2025-01-24", 2, "2025-01-27"),
        ("2025-01-24", 3, "2025-02-05"),
        ("2025-02-05", 3, "2025-02-08"),
        // 2025 National Day and Mid-Autumn: 10/1–10/8 off, Sunday 9/28 and Saturday 10/11 worked.
        ("2025-09-26", 1, "2025-09-28"),
        ("2025-09-26", 3, "2025-09-30"),
        ("2025-09-26", 4, "2025-10-09"),
        ("2025-09-26", 6, "2025-10-11"),
        // 2026 Spring Festival: 2/15–2/23 off, Saturdays 2/14 and 2/28 worked.
        ("2026-02-13", 1, "2026-02-14"),
        ("2026-02-13", 2, "2026-02-24"),
        ("2026-02-24", 4, "2026-02-28"),
        // 2026 Labour Day: 5/1–5/5 off; the road-works permit's one working day.
        ("2026-04-30", 1, "2026-05-06"),
        // 2026 National Day: 10/1–10/7 off, Sunday 9/20 and Saturday 10/10 worked.
        ("2026-09-18", 1, "2026-09-20"),
        ("2026-09-30", 1, "2026-10-08"),
        ("2026-09-30", 3, "2026-10-10"),
        // A water connection's six working days over New Year 2026 (1/1–1/3 off, 1/4 worked).
        ("2025-12-30", 6, "2026-01-08"),
        // Plain weeks.
        ("2025-03-07", 1, "2025-03-10"),
        ("2026-03-06", 5, "2026-03-13"),
    ];

    #[test]
    fn due_dates_follow_the_holidays_and_the_adjusted_working_days() {
        let calendar = Calendar::builtin();
        for &(accepted, n, due) in DUE {
            let counted = calendar.add_working_days(d(accepted), n);
            assert_eq!(counted.date, d(due), "{accepted} + {n} working days");
            assert!(!counted.provisional, "{accepted} + {n}");
            assert_eq!(
                calendar.working_days_between(d(accepted), d(due)),
                (n, false),
                "{accepted}..{due} counts {n}"
            );
        }
    }

    #[test]
    fn past_the_last_notice_weekends_alone_are_off_and_the_date_is_provisional() {
        let calendar = Calendar::builtin();
        assert_eq!(calendar.last_year(), 2026);
        let counted = calendar.add_working_days(d("2026-12-30"), 3);
        assert_eq!(
            counted.date,
            d("2027-01-04"),
            "1 January 2027 counted as a Friday"
        );
        assert!(counted.provisional);
        assert_eq!(calendar.is_working_day(d("2027-01-01")), (true, true));
        assert!(!calendar.add_working_days(d("2026-12-28"), 3).provisional);
        assert!(!calendar.next_year_due(d("2026-10-31")));
        assert!(calendar.next_year_due(d("2026-11-01")));
        assert_eq!(
            calendar.version(),
            "国办发明电〔2024〕12号 + 国办发明电〔2025〕7号"
        );
    }

    #[test]
    fn a_calendar_file_is_checked() {
        let notice = |rest: &str, work: &str| {
            format!(
                "[[notice]]\nyear = 2026\ndocument = \"X\"\nissued = \"2025-11-04\"\nrest = [{rest}]\nwork = [{work}]\n"
            )
        };
        let wednesday = Calendar::parse(&notice("", "\"2026-01-07\"")).unwrap_err();
        assert!(wednesday.0.contains("2026-01-07 is a Wed"), "{wednesday}");
        let both =
            Calendar::parse(&notice("\"2026-01-03..2026-01-04\"", "\"2026-01-04\"")).unwrap_err();
        assert!(both.0.contains("2026-01-04 is both"), "{both}");
        let elsewhere = Calendar::parse(&notice("\"2025-12-31\"", "")).unwrap_err();
        assert!(elsewhere.0.contains("not in 2026"), "{elsewhere}");
        let backwards = Calendar::parse(&notice("\"2026-01-05..2026-01-02\"", "")).unwrap_err();
        assert!(backwards.0.contains("ends before it begins"), "{backwards}");
        let twice = format!("{}{}", notice("", ""), notice("", ""));
        assert!(
            Calendar::parse(&twice)
                .unwrap_err()
                .0
                .contains("two notices")
        );
        assert!(Calendar::parse("").is_err());
    }
}
