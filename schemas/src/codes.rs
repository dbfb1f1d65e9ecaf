//! National identifiers: the investment project code and the unified social credit code.

use crate::district::District;
use crate::normalize::Problem;
use crate::text::{clean, has_shape};

/// A national investment project code (投資項目統一代碼), `YYMM-DDDDDD-II-TT-NNNNNN`: year and
/// month of registration, the 6-digit administrative division, industry, project type, serial.
///
/// The division must be Shanghai's (310000) or one of its 16 districts: this exchange carries
/// Shanghai projects only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectCode(String);

impl ProjectCode {
    /// The shape the code must have, `d` standing for a digit.
    const SHAPE: &'static str = "dddd-dddddd-dd-dd-dddddd";

    /// Parses a project code strictly (full-width digits folded, white space trimmed).
    pub fn parse(input: &str) -> Result<Self, Problem> {
        let text = clean(input);
        if !has_shape(&text, Self::SHAPE) {
            return Err(Problem::BadFormat {
                expected: "project code YYMM-DDDDDD-II-TT-NNNNNN",
            });
        }
        let month: u8 = text[2..4].parse().map_err(|_| Problem::NoSuchDate)?;
        if !(1..=12).contains(&month) {
            return Err(Problem::BadFormat {
                expected: "project code whose month (characters 3-4) is 01-12",
            });
        }
        let division = &text[5..11];
        if division != "310000" && District::from_gb2260(division).is_none() {
            return Err(Problem::UnknownCode {
                vocabulary: "Shanghai division code (310000 or a district's GB/T 2260 code)",
            });
        }
        Ok(Self(text.into_owned()))
    }

    /// The code's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 6-digit administrative division the project was registered in.
    pub fn division(&self) -> &str {
        &self.0[5..11]
    }
}

/// An 18-character unified social credit code (統一社會信用代碼) of GB 32100-2015, whose last
/// character is a check character over the first 17.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreditCode(String);

impl CreditCode {
    /// The 31 characters a credit code is written in (no I, O, S, V, Z); a character's value is
    /// its index.
    const ALPHABET: &'static [u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    /// Weights of positions 1..=17: 3^(i-1) mod 31.
    const WEIGHTS: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];

    /// Parses a credit code strictly: full-width folded, every character from the code's
    /// alphabet in upper case as GB 32100-2015 and every bureau's schema write it (a lower-case
    /// letter is refused, not upper-cased), positions 3-8 an administrative division (digits),
    /// and the check character right.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        let text = clean(input).into_owned();
        if text.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(Problem::BadFormat {
                expected: "unified social credit code in upper case (GB 32100-2015)",
            });
        }
        if text.len() != 18 || !text.is_ascii() {
            return Err(Problem::BadFormat {
                expected: "18-character unified social credit code",
            });
        }
        let values: Option<Vec<u32>> = text.bytes().map(Self::value_of).collect();
        let Some(values) = values else {
            return Err(Problem::BadFormat {
                expected: "unified social credit code in digits and ABCDEFGHJKLMNPQRTUWXY",
            });
        };
        if !text[2..8].bytes().all(|b| b.is_ascii_digit()) {
            return Err(Problem::BadFormat {
                expected: "unified social credit code with a 6-digit division at positions 3-8",
            });
        }
        let expected = Self::check_character(&values[..17]);
        let found = char::from(text.as_bytes()[17]);
        if expected != found {
            return Err(Problem::BadCheckCharacter { expected, found });
        }
        Ok(Self(text))
    }

    /// Computes the check character of the first 17 characters' values.
    fn check_character(values: &[u32]) -> char {
        let sum: u32 = values.iter().zip(Self::WEIGHTS).map(|(v, w)| v * w).sum();
        let check = (31 - sum % 31) % 31;
        char::from(Self::ALPHABET[check as usize])
    }

    fn value_of(byte: u8) -> Option<u32> {
        Self::ALPHABET
            .iter()
            .position(|&c| c == byte)
            .map(|i| i as u32)
    }

    /// Completes 17 valid characters with their check character. Used by sample generators,
    /// which must produce codes that pass [`CreditCode::parse`].
    pub fn with_check_character(first17: &str) -> Result<Self, Problem> {
        let values: Option<Vec<u32>> = first17.bytes().map(Self::value_of).collect();
        match values {
            Some(values) if values.len() == 17 => {
                let check = Self::check_character(&values);
                Self::parse(&format!("{first17}{check}"))
            }
            _ => Err(Problem::BadFormat {
                expected: "17 characters of the credit code alphabet",
            }),
        }
    }

    /// The code's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_serde {
    ($ty:ident, $name:literal, $pattern:literal, $description:literal) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Self::parse(&text)
                    .map_err(|problem| serde::de::Error::custom(format!("{text:?}: {problem}")))
            }
        }

        impl ::schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                ::schemars::json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "description": $description,
                })
            }
        }
    };
}
pub(crate) use string_newtype_serde;

string_newtype_serde!(
    ProjectCode,
    "ProjectCode",
    "^[0-9]{2}(0[1-9]|1[0-2])-31[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{6}$",
    "National investment project code YYMM-DDDDDD-II-TT-NNNNNN with a Shanghai division."
);
string_newtype_serde!(
    CreditCode,
    "CreditCode",
    "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$",
    "Unified social credit code (GB 32100-2015), check character verified by the gateway."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_published_credit_code() {
        // A code printed on a real Fujian business licence, often quoted as the standard's example.
        assert!(CreditCode::parse("91350100M000100Y43").is_ok());
        // Full-width forms fold to the same code.
        assert_eq!(
            CreditCode::parse("９１350100Ｍ000100Ｙ43").map(|c| c.0),
            Ok("91350100M000100Y43".to_owned())
        );
        // Lower case is another spelling than the standard's and every bureau schema's: refused.
        for lower in [
            "91350100m000100y43",
            "91350100M000100y43",
            "９１350100ｍ000100Y43",
        ] {
            assert_eq!(
                CreditCode::parse(lower),
                Err(Problem::BadFormat {
                    expected: "unified social credit code in upper case (GB 32100-2015)"
                }),
                "{lower}"
            );
        }
    }

    #[test]
    fn rejects_wrong_check_character_and_alphabet() {
        assert_eq!(
            CreditCode::parse("91350100M000100Y44"),
            Err(Problem::BadCheckCharacter {
                expected: '3',
                found: '4'
            })
        );
        assert!(matches!(
            CreditCode::parse("91350100M000100I43"),
            Err(Problem::BadFormat { .. })
        ));
        assert!(CreditCode::parse("9135010").is_err());
    }

    #[test]
    fn generated_check_characters_verify() {
        let code = CreditCode::with_check_character("91310115MA1K4ABCD").unwrap();
        assert_eq!(CreditCode::parse(code.as_str()), Ok(code));
    }

    #[test]
    fn project_codes() {
        let code = ProjectCode::parse("2201-310115-04-01-123456").unwrap();
        assert_eq!(code.division(), "310115");
        assert!(ProjectCode::parse("２２０１-310115-04-01-123456").is_ok());
        assert!(ProjectCode::parse("2213-310115-04-01-123456").is_err());
        assert!(ProjectCode::parse("2201-320115-04-01-123456").is_err());
        assert!(ProjectCode::parse("2201-310115-04-01-12345").is_err());
        assert!(ProjectCode::parse("2201-310115-04-01-12345X").is_err());
    }
}
