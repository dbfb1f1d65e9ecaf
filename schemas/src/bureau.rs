//! The bureaus connected to the exchange.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A city bureau whose system exchanges cases through the gateway. The id (`planning`, `water`,
/// ...) is the project's own; it appears in certificates (`urn:bureau:<id>`), configuration,
/// URLs and schema folders.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BureauId {
    /// 市規劃和自然資源局, Planning and Natural Resources.
    Planning,
    /// 市水務局, Water Authority.
    Water,
    /// 市交通委, Transport Commission.
    Transport,
    /// 市交警總隊, Traffic Police Corps.
    TrafficPolice,
    /// 市民防辦, Civil Defense Office.
    CivilDefense,
    /// 市綠化市容局, Greenery and City Appearance.
    Greenery,
    /// 市房管局, Housing Administration.
    Housing,
}

impl BureauId {
    /// Every bureau, in a fixed order.
    pub const ALL: [BureauId; 7] = [
        Self::Planning,
        Self::Water,
        Self::Transport,
        Self::TrafficPolice,
        Self::CivilDefense,
        Self::Greenery,
        Self::Housing,
    ];

    /// The project's id, e.g. `traffic_police`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planning => "planning",
            Self::Water => "water",
            Self::Transport => "transport",
            Self::TrafficPolice => "traffic_police",
            Self::CivilDefense => "civil_defense",
            Self::Greenery => "greenery",
            Self::Housing => "housing",
        }
    }

    /// The bureau's short Chinese name as its peers write it, e.g. `市規資局`.
    pub fn short_name_zh(self) -> &'static str {
        self.names().short_zh
    }

    /// How the bureau is named and coded: the one table every format's spelling of a bureau
    /// is taken from (each format picks which of these it writes).
    pub fn names(self) -> &'static BureauNames {
        match self {
            Self::Planning => &BureauNames {
                full_zh: "市規劃和自然資源局",
                short_zh: "市規資局",
                short_zh_simplified: "市规资局",
                initials: "GHZY",
                department_code: "SHGHZY",
                english: "Planning and Natural Resources",
            },
            Self::Water => &BureauNames {
                full_zh: "市水務局",
                short_zh: "市水務局",
                short_zh_simplified: "市水务局",
                initials: "SWJ",
                department_code: "SHSWJ",
                english: "Water Authority",
            },
            Self::Transport => &BureauNames {
                full_zh: "市交通委員會",
                short_zh: "市交通委",
                short_zh_simplified: "市交通委",
                initials: "JTW",
                department_code: "SHJTW",
                english: "Transport Commission",
            },
            Self::TrafficPolice => &BureauNames {
                full_zh: "市公安局交通警察總隊",
                short_zh: "市交警總隊",
                short_zh_simplified: "市交警总队",
                initials: "JJZD",
                department_code: "SHJJZD",
                english: "Traffic Police Corps",
            },
            Self::CivilDefense => &BureauNames {
                full_zh: "市民防辦公室",
                short_zh: "市民防辦",
                short_zh_simplified: "市民防办",
                initials: "MFB",
                department_code: "SHMFB",
                english: "Civil Defense Office",
            },
            Self::Greenery => &BureauNames {
                full_zh: "市綠化和市容管理局",
                short_zh: "市綠化市容局",
                short_zh_simplified: "市绿化市容局",
                initials: "LHSR",
                department_code: "SHLHSR",
                english: "Greenery and City Appearance",
            },
            Self::Housing => &BureauNames {
                full_zh: "市房屋管理局",
                short_zh: "市房管局",
                short_zh_simplified: "市房管局",
                initials: "FGJ",
                department_code: "SHFGJ",
                english: "Housing Administration",
            },
        }
    }
}

/// A bureau's names and codes. Data, not derived: the pinyin initials come from the
/// department's own abbreviation (規劃資源 → GHZY), not from its short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BureauNames {
    /// Its full name, traditional characters (市規劃和自然資源局).
    pub full_zh: &'static str,
    /// Its short name as its peers write it, traditional characters (市規資局).
    pub short_zh: &'static str,
    /// The same in simplified characters (市规资局).
    pub short_zh_simplified: &'static str,
    /// The pinyin initials of its abbreviation, upper case (GHZY).
    pub initials: &'static str,
    /// Its code in the city's department catalogue: `SH` and the initials (SHGHZY).
    pub department_code: &'static str,
    /// Its name in English.
    pub english: &'static str,
}

impl fmt::Display for BureauId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a bureau id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bureau id {0:?} (expected one of {ids})", ids = BureauId::ALL.map(BureauId::as_str).join(", "))]
pub struct UnknownBureau(pub String);

impl FromStr for BureauId {
    type Err = UnknownBureau;

    fn from_str(text: &str) -> Result<Self, UnknownBureau> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str() == text)
            .ok_or_else(|| UnknownBureau(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_serde() {
        for bureau in BureauId::ALL {
            assert_eq!(bureau.as_str().parse::<BureauId>(), Ok(bureau));
            let json = serde_json::to_value(bureau).unwrap();
            assert_eq!(json, bureau.as_str());
        }
        assert!("police".parse::<BureauId>().is_err());
        assert_eq!(
            "police".parse::<BureauId>().unwrap_err().to_string(),
            "unknown bureau id \"police\" (expected one of planning, water, transport, \
             traffic_police, civil_defense, greenery, housing)"
        );
    }

    #[test]
    fn every_spelling_of_a_bureau_names_one_bureau() {
        type Spelling = fn(&BureauNames) -> &'static str;
        let spellings: [(&str, Spelling); 6] = [
            ("full_zh", |n| n.full_zh),
            ("short_zh", |n| n.short_zh),
            ("short_zh_simplified", |n| n.short_zh_simplified),
            ("initials", |n| n.initials),
            ("department_code", |n| n.department_code),
            ("english", |n| n.english),
        ];
        for (name, spell) in spellings {
            let mut seen = std::collections::BTreeSet::new();
            for bureau in BureauId::ALL {
                let text = spell(bureau.names());
                assert!(!text.trim().is_empty(), "{bureau}: {name} is empty");
                assert!(seen.insert(text), "{name} {text:?} names two bureaus");
            }
        }
        for bureau in BureauId::ALL {
            let names = bureau.names();
            assert_eq!(
                names.department_code,
                format!("SH{}", names.initials),
                "{bureau}: the department code is SH and the initials"
            );
            assert_eq!(
                names.short_zh.chars().count(),
                names.short_zh_simplified.chars().count(),
                "{bureau}: the simplified short name spells the traditional one"
            );
        }
    }
}
