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
}

impl BureauId {
    /// Every bureau, in a fixed order.
    pub const ALL: [BureauId; 6] = [
        Self::Planning,
        Self::Water,
        Self::Transport,
        Self::TrafficPolice,
        Self::CivilDefense,
        Self::Greenery,
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
        }
    }

    /// The bureau's short Chinese name as its peers write it, e.g. `市規資局`.
    pub fn short_name_zh(self) -> &'static str {
        match self {
            Self::Planning => "市規資局",
            Self::Water => "市水務局",
            Self::Transport => "市交通委",
            Self::TrafficPolice => "市交警總隊",
            Self::CivilDefense => "市民防辦",
            Self::Greenery => "市綠化市容局",
        }
    }
}

impl fmt::Display for BureauId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a bureau id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown bureau id {0:?} (expected one of planning, water, transport, traffic_police, civil_defense, greenery)"
)]
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
        assert!("housing".parse::<BureauId>().is_err());
    }
}
