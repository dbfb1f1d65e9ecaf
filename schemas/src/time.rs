//! Dates and times in Shanghai time.
//!
//! The canonical form of an instant is RFC 3339 with the explicit offset `+08:00` and whole
//! seconds. A bureau format whose specification says its local times are Shanghai time may send
//! them without an offset, in a fixed layout the adapter names ([`LocalFormat`]); any other text
//! without an offset is ambiguous and rejected.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Timelike};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::normalize::Problem;
use crate::text::{clean, has_shape};

const SHANGHAI_OFFSET_SECONDS: i32 = 8 * 3600;

fn shanghai() -> FixedOffset {
    // 8 hours is within chrono's ±24 h range, so this cannot fail.
    FixedOffset::east_opt(SHANGHAI_OFFSET_SECONDS).unwrap_or_else(|| unreachable!())
}

/// The offset-free layouts bureau formats use for Shanghai local time, as their specifications
/// define them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalFormat {
    /// `2022-02-15 09:30:00`.
    DashedWithSpace,
    /// `20220215093000`.
    Compact,
    /// `2022/02/15 09:30`, minutes only (seconds are zero).
    SlashedMinutes,
}

impl LocalFormat {
    fn shape_and_pattern(self) -> (&'static str, &'static str) {
        match self {
            Self::DashedWithSpace => ("dddd-dd-dd dd:dd:dd", "%Y-%m-%d %H:%M:%S"),
            Self::Compact => ("dddddddddddddd", "%Y%m%d%H%M%S"),
            Self::SlashedMinutes => ("dddd/dd/dd dd:dd", "%Y/%m/%d %H:%M"),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::DashedWithSpace => "Shanghai local time as YYYY-MM-DD hh:mm:ss",
            Self::Compact => "Shanghai local time as YYYYMMDDhhmmss",
            Self::SlashedMinutes => "Shanghai local time as YYYY/MM/DD hh:mm",
        }
    }
}

/// An instant in Shanghai time (UTC+08:00, no daylight saving), to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShanghaiTime(DateTime<FixedOffset>);

impl ShanghaiTime {
    /// Parses RFC 3339 text that carries the explicit offset `+08:00`, to whole seconds.
    pub fn parse_rfc3339(input: &str) -> Result<Self, Problem> {
        let text = clean(input);
        if !has_shape(&text, "dddd-dd-ddTdd:dd:dd+dd:dd") {
            if has_shape(&text, "dddd-dd-ddTdd:dd:dd") || text.ends_with('Z') {
                return Err(Problem::NotShanghaiOffset);
            }
            return Err(Problem::BadFormat {
                expected: "RFC 3339 date-time YYYY-MM-DDThh:mm:ss+08:00",
            });
        }
        let parsed = DateTime::parse_from_rfc3339(&text).map_err(|_| Problem::NoSuchDate)?;
        // chrono reads second 60 as a leap second; no local layout can hold one, and the
        // canonical model counts whole seconds of Shanghai's civil time, which has none.
        if parsed.nanosecond() != 0 {
            return Err(Problem::NoSuchDate);
        }
        if parsed.offset().local_minus_utc() != SHANGHAI_OFFSET_SECONDS {
            return Err(Problem::NotShanghaiOffset);
        }
        Ok(Self(parsed))
    }

    /// Parses an offset-free Shanghai local time in the layout a bureau format's specification
    /// fixes.
    pub fn parse_local(input: &str, format: LocalFormat) -> Result<Self, Problem> {
        let text = clean(input);
        let (shape, pattern) = format.shape_and_pattern();
        if !has_shape(&text, shape) {
            return Err(Problem::BadFormat {
                expected: format.expected(),
            });
        }
        let naive =
            NaiveDateTime::parse_from_str(&text, pattern).map_err(|_| Problem::NoSuchDate)?;
        Self::from_local(naive)
    }

    /// Builds an instant from a Shanghai wall-clock time (whole seconds only).
    pub fn from_local(naive: NaiveDateTime) -> Result<Self, Problem> {
        // Second 60 (chrono's leap second) is no time in Shanghai.
        if naive.nanosecond() >= 1_000_000_000 {
            return Err(Problem::NoSuchDate);
        }
        if naive.nanosecond() != 0 {
            return Err(Problem::TooPrecise { max_decimals: 0 });
        }
        naive
            .and_local_timezone(shanghai())
            .single()
            .map(Self)
            .ok_or(Problem::NoSuchDate)
    }

    /// Formats in one of the local layouts (the offset is implied by the format's specification).
    pub fn format_local(&self, format: LocalFormat) -> String {
        self.0
            .naive_local()
            .format(format.shape_and_pattern().1)
            .to_string()
    }

    /// The wall-clock time in Shanghai.
    pub fn naive_local(&self) -> NaiveDateTime {
        self.0.naive_local()
    }

    /// The canonical text, e.g. `2022-02-15T09:30:00+08:00`.
    pub fn to_rfc3339(&self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

impl fmt::Display for ShanghaiTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%S%:z"))
    }
}

impl Serialize for ShanghaiTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ShanghaiTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text)
            .map_err(|problem| serde::de::Error::custom(format!("{text:?}: {problem}")))
    }
}

impl JsonSchema for ShanghaiTime {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ShanghaiTime".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\+08:00$",
            "description": "An instant in Shanghai time: RFC 3339, whole seconds, offset +08:00.",
        })
    }
}

/// A calendar date in Shanghai (survey dates, permit dates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShanghaiDate(NaiveDate);

impl ShanghaiDate {
    /// Parses `YYYY-MM-DD`.
    pub fn parse_iso(input: &str) -> Result<Self, Problem> {
        Self::parse_shaped(input, "dddd-dd-dd", "%Y-%m-%d", "date YYYY-MM-DD")
    }

    /// Parses `YYYYMMDD`.
    pub fn parse_compact(input: &str) -> Result<Self, Problem> {
        Self::parse_shaped(input, "dddddddd", "%Y%m%d", "date YYYYMMDD")
    }

    fn parse_shaped(
        input: &str,
        shape: &str,
        pattern: &str,
        expected: &'static str,
    ) -> Result<Self, Problem> {
        let text = clean(input);
        if !has_shape(&text, shape) {
            return Err(Problem::BadFormat { expected });
        }
        NaiveDate::parse_from_str(&text, pattern)
            .map(Self)
            .map_err(|_| Problem::NoSuchDate)
    }

    /// Builds a date from a chrono date.
    pub fn new(date: NaiveDate) -> Self {
        Self(date)
    }

    /// The date.
    pub fn get(self) -> NaiveDate {
        self.0
    }

    /// Formats as `YYYYMMDD`.
    pub fn format_compact(&self) -> String {
        self.0.format("%Y%m%d").to_string()
    }
}

impl fmt::Display for ShanghaiDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for ShanghaiDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ShanghaiDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_iso(&text)
            .map_err(|problem| serde::de::Error::custom(format!("{text:?}: {problem}")))
    }
}

impl JsonSchema for ShanghaiDate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ShanghaiDate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            "description": "A calendar date in Shanghai, YYYY-MM-DD.",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_requires_the_shanghai_offset() {
        let t = ShanghaiTime::parse_rfc3339("2022-02-15T09:30:00+08:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2022-02-15T09:30:00+08:00");
        assert_eq!(
            ShanghaiTime::parse_rfc3339("2022-02-15T09:30:00"),
            Err(Problem::NotShanghaiOffset)
        );
        assert_eq!(
            ShanghaiTime::parse_rfc3339("2022-02-15T01:30:00Z"),
            Err(Problem::NotShanghaiOffset)
        );
        assert_eq!(
            ShanghaiTime::parse_rfc3339("2022-02-15T09:30:00+09:00"),
            Err(Problem::NotShanghaiOffset)
        );
        assert_eq!(
            ShanghaiTime::parse_rfc3339("2022-02-30T09:30:00+08:00"),
            Err(Problem::NoSuchDate)
        );
        assert!(ShanghaiTime::parse_rfc3339("2022-02-15T09:30:00.5+08:00").is_err());
    }

    #[test]
    fn second_60_is_no_such_time_in_any_layout() {
        // Found by fuzzing: accepted in RFC 3339, then refused when written in a local layout.
        assert_eq!(
            ShanghaiTime::parse_rfc3339("2024-09-11T16:40:60+08:00"),
            Err(Problem::NoSuchDate)
        );
        assert_eq!(
            ShanghaiTime::parse_local("2024-09-11 16:40:60", LocalFormat::DashedWithSpace),
            Err(Problem::NoSuchDate)
        );
    }

    #[test]
    fn local_layouts_round_trip() {
        for (text, format) in [
            ("2022-02-15 09:30:00", LocalFormat::DashedWithSpace),
            ("20220215093000", LocalFormat::Compact),
            ("2022/02/15 09:30", LocalFormat::SlashedMinutes),
        ] {
            let t = ShanghaiTime::parse_local(text, format).unwrap();
            assert_eq!(t.to_rfc3339(), "2022-02-15T09:30:00+08:00");
            assert_eq!(t.format_local(format), text);
        }
        assert!(
            ShanghaiTime::parse_local("2022-2-15 09:30:00", LocalFormat::DashedWithSpace).is_err()
        );
        assert!(ShanghaiTime::parse_local("20221315093000", LocalFormat::Compact).is_err());
        assert!(ShanghaiTime::parse_local("２０２２0215093000", LocalFormat::Compact).is_ok());
    }

    #[test]
    fn dates() {
        assert_eq!(
            ShanghaiDate::parse_iso("2022-02-15").unwrap().to_string(),
            "2022-02-15"
        );
        assert_eq!(
            ShanghaiDate::parse_compact("20220215")
                .unwrap()
                .format_compact(),
            "20220215"
        );
        assert!(ShanghaiDate::parse_iso("2022-02-29").is_err());
    }
}
