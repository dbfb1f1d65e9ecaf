//! Quantities with units, held as exact decimals in one canonical unit each.
//!
//! Bureaus write `12,000平方米`, `1.2公頃`, `3500萬元` or `11.6%`. The parsers accept exactly the
//! spellings listed for each unit and convert to the canonical unit with decimal arithmetic. A
//! decimal comma, a stray letter, a lost digit or an ambiguous unit is rejected, never repaired.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::normalize::Problem;
use crate::text::{all_digits, clean};

/// Parses an unsigned plain decimal: digits, optionally one `.` and more digits. No sign,
/// exponent, thousands separator or decimal comma: `11,6` could be 11.6 or 116, so it is refused.
pub fn parse_plain_decimal(text: &str) -> Result<Decimal, Problem> {
    const EXPECTED: Problem = Problem::BadFormat {
        expected: "a plain decimal number such as 1234.5 (no sign, separators or decimal comma)",
    };
    let (int, frac) = match text.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (text, None),
    };
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return Err(EXPECTED);
    }
    if text.len() > 24 {
        return Err(Problem::OutOfRange {
            min: "0",
            max: "10^20",
        });
    }
    Decimal::from_str(text).map_err(|_| EXPECTED)
}

/// Splits `1234.5平方米` into its number and unit at the first character that cannot belong to a
/// number; white space between them is allowed.
fn split_number_unit(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(text.len());
    (text[..end].trim_end(), text[end..].trim_start())
}

/// Checks the canonical precision and range, then normalizes the scale (so `1.50` and `1.5` are
/// one canonical value with one spelling).
fn canonical(value: Decimal, max_decimals: u32, max: Decimal) -> Result<Decimal, Problem> {
    let value = value.normalize();
    if value.scale() > max_decimals {
        return Err(Problem::TooPrecise { max_decimals });
    }
    if value > max {
        return Err(Problem::OutOfRange {
            min: "0",
            max: "the field's limit",
        });
    }
    Ok(value)
}

macro_rules! decimal_quantity {
    ($ty:ident, $unit_ty:ident, $canonical_unit:literal, $max_decimals:literal, $doc_name:literal) => {
        impl $ty {
            /// Decimal places kept in the canonical unit.
            pub const MAX_DECIMALS: u32 = $max_decimals;

            /// The value in the canonical unit.
            pub fn value(&self) -> Decimal {
                self.0
            }

            /// Builds a value from a number already in the canonical unit.
            pub fn from_canonical(value: Decimal) -> Result<Self, Problem> {
                if value.is_sign_negative() {
                    return Err(Problem::OutOfRange {
                        min: "0",
                        max: "the field's limit",
                    });
                }
                canonical(value, Self::MAX_DECIMALS, Self::LIMIT).map(Self)
            }

            /// Parses a number and a unit given as two native fields.
            pub fn from_number_and_unit(number: &str, unit: &str) -> Result<Self, Problem> {
                let unit = $unit_ty::parse(&clean(unit))?;
                let number = parse_plain_decimal(&clean(number))?;
                let value = number
                    .checked_mul(unit.factor())
                    .ok_or(Problem::OutOfRange {
                        min: "0",
                        max: "the field's limit",
                    })?;
                Self::from_canonical(value)
            }

            /// Parses a number in a unit fixed by the native format's specification.
            pub fn from_number_in(number: &str, unit: $unit_ty) -> Result<Self, Problem> {
                let number = parse_plain_decimal(&clean(number))?;
                let value = number
                    .checked_mul(unit.factor())
                    .ok_or(Problem::OutOfRange {
                        min: "0",
                        max: "the field's limit",
                    })?;
                Self::from_canonical(value)
            }

            /// Parses a number followed by its unit in one text, e.g. `1.2公頃`.
            pub fn parse(input: &str) -> Result<Self, Problem> {
                let text = clean(input);
                let (number, unit) = split_number_unit(&text);
                if unit.is_empty() {
                    return Err(Problem::UnknownUnit {
                        allowed: $unit_ty::ALLOWED,
                    });
                }
                Self::from_number_and_unit(number, unit)
            }

            /// The value expressed in `unit` (exact: every unit is a power of ten of the
            /// canonical one), without trailing zeros.
            pub fn in_unit(&self, unit: $unit_ty) -> Decimal {
                (self.0 / unit.factor()).normalize()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                parse_plain_decimal(&text)
                    .and_then(Self::from_canonical)
                    .map_err(|problem| serde::de::Error::custom(format!("{text:?}: {problem}")))
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": concat!("^[0-9]+(\\.[0-9]{1,", $max_decimals, "})?$"),
                    "description": concat!($doc_name, " in ", $canonical_unit,
                        ", as an exact decimal string with at most ", $max_decimals,
                        " decimal places."),
                })
            }
        }
    };
}

/// An area in square metres (㎡), at most two decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Area(Decimal);

/// The area units bureaus use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaUnit {
    /// ㎡, 平方米, m2, m².
    SquareMetre,
    /// 公頃 / 公顷: 10,000 ㎡.
    Hectare,
}

impl AreaUnit {
    const ALLOWED: &'static str = "㎡, 平方米, m2, m², 公頃, 公顷";

    fn parse(text: &str) -> Result<Self, Problem> {
        match text {
            "㎡" | "平方米" | "m2" | "m²" => Ok(Self::SquareMetre),
            "公頃" | "公顷" => Ok(Self::Hectare),
            _ => Err(Problem::UnknownUnit {
                allowed: Self::ALLOWED,
            }),
        }
    }

    fn factor(self) -> Decimal {
        match self {
            Self::SquareMetre => Decimal::ONE,
            Self::Hectare => Decimal::from(10_000),
        }
    }
}

impl Area {
    const LIMIT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
}
decimal_quantity!(Area, AreaUnit, "square metres", 2, "An area");

/// An amount of money in yuan (元), at most two decimal places (the fen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

/// The money units bureaus use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoneyUnit {
    /// 元.
    Yuan,
    /// 萬元 / 万元: 10,000 元.
    TenThousandYuan,
    /// 億元 / 亿元: 100,000,000 元.
    HundredMillionYuan,
}

impl MoneyUnit {
    const ALLOWED: &'static str = "元, 萬元, 万元, 億元, 亿元";

    fn parse(text: &str) -> Result<Self, Problem> {
        match text {
            "元" => Ok(Self::Yuan),
            "萬元" | "万元" => Ok(Self::TenThousandYuan),
            "億元" | "亿元" => Ok(Self::HundredMillionYuan),
            _ => Err(Problem::UnknownUnit {
                allowed: Self::ALLOWED,
            }),
        }
    }

    fn factor(self) -> Decimal {
        match self {
            Self::Yuan => Decimal::ONE,
            Self::TenThousandYuan => Decimal::from(10_000),
            Self::HundredMillionYuan => Decimal::from(100_000_000),
        }
    }
}

impl Money {
    // 10^16 yuan: far above any project, far below Decimal's 28 digits.
    const LIMIT: Decimal = Decimal::from_parts(1_874_919_424, 2_328_306, 0, false, 0);
}
decimal_quantity!(Money, MoneyUnit, "yuan", 2, "An amount of money");

/// A length in metres, at most two decimal places (building heights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Length(Decimal);

/// The length units bureaus use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthUnit {
    /// 米, m.
    Metre,
}

impl LengthUnit {
    const ALLOWED: &'static str = "米, m";

    fn parse(text: &str) -> Result<Self, Problem> {
        match text {
            "米" | "m" => Ok(Self::Metre),
            _ => Err(Problem::UnknownUnit {
                allowed: Self::ALLOWED,
            }),
        }
    }

    fn factor(self) -> Decimal {
        Decimal::ONE
    }
}

impl Length {
    const LIMIT: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);
}
decimal_quantity!(Length, LengthUnit, "metres", 2, "A length");

/// A percentage from 0 to 100, at most two decimal places (greening ratio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(Decimal);

/// The one unit of a percentage, for symmetry with the other quantities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PercentUnit {
    /// %, ％ (folded to %).
    Percent,
}

impl PercentUnit {
    const ALLOWED: &'static str = "%";

    fn parse(text: &str) -> Result<Self, Problem> {
        match text {
            "%" => Ok(Self::Percent),
            _ => Err(Problem::UnknownUnit {
                allowed: Self::ALLOWED,
            }),
        }
    }

    fn factor(self) -> Decimal {
        Decimal::ONE
    }
}

impl Percent {
    const LIMIT: Decimal = Decimal::ONE_HUNDRED;
}
decimal_quantity!(Percent, PercentUnit, "percent", 2, "A percentage");

/// Parses a whole number, optionally followed by one of `measure_words` (個, 項, 套 ...).
fn parse_whole(input: &str, measure_words: &[&str]) -> Result<u64, Problem> {
    let text = clean(input);
    let digits = measure_words
        .iter()
        .find_map(|word| text.strip_suffix(word))
        .unwrap_or(&text)
        .trim_end();
    if !all_digits(digits) {
        return Err(Problem::BadFormat {
            expected: "a whole number written in digits",
        });
    }
    if digits.len() > 12 {
        return Err(Problem::OutOfRange {
            min: "0",
            max: "10^12",
        });
    }
    digits.parse().map_err(|_| Problem::BadFormat {
        expected: "a whole number written in digits",
    })
}

/// A count of things (projects, property units), written in digits with an optional measure
/// word: `733個`, `12套`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Count(pub u32);

impl Count {
    const MEASURE_WORDS: &'static [&'static str] =
        &["個", "个", "項", "项", "套", "件", "戶", "户"];

    /// Parses a count: `55B個`, `13日個` and `近口項` are all rejected.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        let value = parse_whole(input, Self::MEASURE_WORDS)?;
        u32::try_from(value)
            .map(Count)
            .map_err(|_| Problem::OutOfRange {
                min: "0",
                max: "4294967295",
            })
    }
}

/// A statutory time limit in working days (工作日): weekends and public holidays excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct WorkingDays(u16);

impl JsonSchema for WorkingDays {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WorkingDays".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "minimum": 1,
            "maximum": 365,
            "description": "A statutory time limit in working days (weekends and public holidays excluded).",
        })
    }
}

impl WorkingDays {
    /// Builds a time limit of 1 to 365 working days.
    pub fn new(days: u16) -> Result<Self, Problem> {
        if (1..=365).contains(&days) {
            Ok(Self(days))
        } else {
            Err(Problem::OutOfRange {
                min: "1",
                max: "365",
            })
        }
    }

    /// The number of working days.
    pub fn get(self) -> u16 {
        self.0
    }

    /// Parses `13`, `13個工作日` or `13工作日`. A bare `日` or `天` is refused: a statutory limit
    /// in calendar days cannot be turned into working days without a calendar and a start date.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        let text = clean(input);
        let digits = ["個工作日", "个工作日", "工作日"]
            .iter()
            .find_map(|suffix| text.strip_suffix(suffix))
            .unwrap_or(&text);
        if digits.ends_with('日') || digits.ends_with('天') {
            return Err(Problem::AmbiguousUnit {
                hint: "日/天 may be calendar days; send working days as a number or N個工作日",
            });
        }
        let value = parse_whole(digits, &[])?;
        u16::try_from(value)
            .map_err(|_| Problem::OutOfRange {
                min: "1",
                max: "365",
            })
            .and_then(Self::new)
    }
}

impl TryFrom<u16> for WorkingDays {
    type Error = Problem;
    fn try_from(days: u16) -> Result<Self, Problem> {
        Self::new(days)
    }
}

impl From<WorkingDays> for u16 {
    fn from(days: WorkingDays) -> u16 {
        days.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn areas_in_every_unit() {
        assert_eq!(Area::parse("1234.5㎡").unwrap().value(), dec("1234.5"));
        assert_eq!(
            Area::parse("1234.50 平方米").unwrap().value(),
            dec("1234.5")
        );
        assert_eq!(Area::parse("１２００m2").unwrap().value(), dec("1200"));
        assert_eq!(Area::parse("1.2公頃").unwrap().value(), dec("12000"));
        assert_eq!(Area::parse("0.000001公顷").unwrap().value(), dec("0.01"));
        assert_eq!(
            Area::parse("0.0000001公頃"),
            Err(Problem::TooPrecise { max_decimals: 2 })
        );
        assert!(matches!(
            Area::parse("12畝"),
            Err(Problem::UnknownUnit { .. })
        ));
        assert!(matches!(
            Area::parse("1200"),
            Err(Problem::UnknownUnit { .. })
        ));
        let area = Area::parse("1.2公頃").unwrap();
        assert_eq!(area.in_unit(AreaUnit::Hectare), dec("1.2"));
    }

    #[test]
    fn money_in_every_unit() {
        assert_eq!(Money::parse("3500萬元").unwrap().value(), dec("35000000"));
        assert_eq!(Money::parse("1.25億元").unwrap().value(), dec("125000000"));
        assert_eq!(Money::parse("99.99元").unwrap().value(), dec("99.99"));
        assert_eq!(
            Money::parse("1.234567万元").unwrap().value(),
            dec("12345.67")
        );
        assert_eq!(
            Money::parse("0.001元"),
            Err(Problem::TooPrecise { max_decimals: 2 })
        );
        let money = Money::parse("3500萬元").unwrap();
        assert_eq!(money.in_unit(MoneyUnit::HundredMillionYuan), dec("0.35"));
    }

    #[test]
    fn corrupted_figures_from_the_seed_are_rejected() {
        // "9Z00億元": a letter where a digit belongs.
        assert!(matches!(
            Money::parse("9Z00億元"),
            Err(Problem::UnknownUnit { .. } | Problem::BadFormat { .. })
        ));
        // "11,6%": a decimal comma; 11.6 or 116 cannot be told apart.
        assert!(matches!(
            Percent::parse("11,6%"),
            Err(Problem::BadFormat { .. })
        ));
        assert_eq!(Percent::parse("11.6%").unwrap().value(), dec("11.6"));
        // "55B個": a letter inside a count.
        assert!(matches!(
            Count::parse("55B個"),
            Err(Problem::BadFormat { .. })
        ));
        // "近口項": the count was lost entirely.
        assert!(matches!(
            Count::parse("近口項"),
            Err(Problem::BadFormat { .. })
        ));
        // "13日個": a unit character where a digit belongs.
        assert!(matches!(
            Count::parse("13日個"),
            Err(Problem::BadFormat { .. })
        ));
        // "13日": calendar days are not working days.
        assert!(matches!(
            WorkingDays::parse("13日"),
            Err(Problem::AmbiguousUnit { .. })
        ));
        assert_eq!(Count::parse("733個"), Ok(Count(733)));
    }

    #[test]
    fn percent_range_and_working_days() {
        assert!(matches!(
            Percent::parse("100.5%"),
            Err(Problem::OutOfRange { .. })
        ));
        assert_eq!(WorkingDays::parse("６個工作日").unwrap().get(), 6);
        assert_eq!(WorkingDays::parse("1").unwrap().get(), 1);
        assert!(WorkingDays::parse("0").is_err());
        assert!(WorkingDays::parse("13天").is_err());
        assert!(WorkingDays::parse("-3").is_err());
    }

    #[test]
    fn plain_decimal_refuses_signs_separators_and_exponents() {
        for bad in [
            "", ".", "1.", ".5", "-1", "+1", "1e3", "1,000", "1 000", "0x10", "1.2.3",
        ] {
            assert!(parse_plain_decimal(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn serde_uses_exact_decimal_strings() {
        let area = Area::parse("1234.50㎡").unwrap();
        assert_eq!(serde_json::to_string(&area).unwrap(), "\"1234.5\"");
        let back: Area = serde_json::from_str("\"1234.5\"").unwrap();
        assert_eq!(back, area);
        assert!(serde_json::from_str::<Area>("\"1234.555\"").is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,24}") {
            let _ = Area::parse(&s);
            let _ = Money::parse(&s);
            let _ = Percent::parse(&s);
            let _ = Count::parse(&s);
            let _ = WorkingDays::parse(&s);
        }

        #[test]
        fn money_round_trips_through_every_unit(fen in 0u64..10_000_000_000_000u64) {
            let money = Money::from_canonical(Decimal::new(fen as i64, 2)).unwrap();
            for unit in [MoneyUnit::Yuan, MoneyUnit::TenThousandYuan, MoneyUnit::HundredMillionYuan] {
                let text = money.in_unit(unit).to_string();
                prop_assert_eq!(Money::from_number_in(&text, unit).unwrap(), money);
            }
        }

        #[test]
        fn area_round_trips_through_hectares(centi in 0u64..100_000_000_000u64) {
            let area = Area::from_canonical(Decimal::new(centi as i64, 2)).unwrap();
            let text = area.in_unit(AreaUnit::Hectare).to_string();
            prop_assert_eq!(Area::from_number_in(&text, AreaUnit::Hectare).unwrap(), area);
        }
    }
}
