//! Multi-survey-in-one (多測合一): one surveying job's results, shared with every entitled bureau.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::codes::{ProjectCode, string_newtype_serde};
use crate::model::{Name, Organization};
use crate::normalize::Problem;
use crate::quantity::{Area, Count, Length, Percent};
use crate::text::clean;
use crate::time::ShanghaiDate;

/// The kinds of survey the reform merges into one job.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SurveyKind {
    /// 規劃核實測量: checks the building against its planning permit.
    PlanningVerification,
    /// 房產測繪: real-estate survey (property units and their areas).
    RealEstate,
    /// 人防面積測量: civil-defense area survey.
    CivilDefenseArea,
    /// 綠地測量: greening survey.
    Greening,
}

/// The key figures a survey result reports; each has one canonical unit.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // the names say it; units are in `FigureName::unit`
pub enum FigureName {
    LandArea,
    FloorAreaAboveGround,
    FloorAreaBelowGround,
    BuildingHeight,
    GreeningArea,
    GreeningRatio,
    CivilDefenseArea,
    PropertyUnits,
}

/// The value of one figure, in its canonical unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "unit", content = "value")]
pub enum FigureValue {
    /// Square metres.
    #[serde(rename = "m2")]
    Area(Area),
    /// Metres.
    #[serde(rename = "m")]
    Length(Length),
    /// Percent.
    #[serde(rename = "percent")]
    Percent(Percent),
    /// A whole count.
    #[serde(rename = "count")]
    Count(Count),
}

impl FigureName {
    /// Parses a figure's native text (number and unit) according to what the figure measures:
    /// `11,6%` for a greening ratio is rejected, not guessed.
    pub fn parse_value(self, text: &str) -> Result<FigureValue, Problem> {
        Ok(match self {
            Self::LandArea
            | Self::FloorAreaAboveGround
            | Self::FloorAreaBelowGround
            | Self::GreeningArea
            | Self::CivilDefenseArea => FigureValue::Area(Area::parse(text)?),
            Self::BuildingHeight => FigureValue::Length(Length::parse(text)?),
            Self::GreeningRatio => FigureValue::Percent(Percent::parse(text)?),
            Self::PropertyUnits => FigureValue::Count(Count::parse(text)?),
        })
    }
}

/// One figure of a survey result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyFigure {
    /// Which figure.
    pub name: FigureName,
    /// Its value and unit.
    pub quantity: FigureValue,
}

/// A lowercase hex SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// Parses 64 hex digits (upper case folded to lower).
    pub fn parse(input: &str) -> Result<Self, Problem> {
        let text = clean(input).to_ascii_lowercase();
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Problem::BadFormat {
                expected: "SHA-256 digest as 64 hex digits",
            });
        }
        Ok(Self(text))
    }

    /// The digest's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(
    Sha256Hex,
    "Sha256Hex",
    "^[0-9a-f]{64}$",
    "A SHA-256 digest in lowercase hex."
);

/// A file of a survey result (PDF, DWG, GML, XML ...), referenced by its content hash: the
/// gateway stores each distinct content once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// The file name as the agency gave it.
    pub name: Name,
    /// Its media type, e.g. `application/pdf`.
    pub media_type: String,
    /// SHA-256 of its content.
    pub sha256: Sha256Hex,
    /// Its size in bytes.
    pub size_bytes: u64,
}

/// The result of one surveying job for one project, published once and shared with every
/// bureau entitled to it. A correction is a new version that supersedes the previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyResult {
    /// The project surveyed.
    pub project: ProjectCode,
    /// What was surveyed.
    pub kind: SurveyKind,
    /// The surveying agency.
    pub agency: Organization,
    /// Version, from 1; a higher version supersedes a lower one.
    #[schemars(range(min = 1))]
    pub version: u32,
    /// When the survey was done.
    pub surveyed_on: ShanghaiDate,
    /// The key figures.
    pub figures: Vec<SurveyFigure>,
    /// The result's files.
    pub files: Vec<FileRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_parse_by_what_they_measure() {
        assert!(matches!(
            FigureName::GreeningRatio.parse_value("35.5%"),
            Ok(FigureValue::Percent(_))
        ));
        assert!(FigureName::GreeningRatio.parse_value("11,6%").is_err());
        assert!(matches!(
            FigureName::LandArea.parse_value("1.2公頃"),
            Ok(FigureValue::Area(a)) if a.value() == rust_decimal::Decimal::from(12_000)
        ));
        assert!(FigureName::BuildingHeight.parse_value("99.5米").is_ok());
        assert!(FigureName::BuildingHeight.parse_value("99.5㎡").is_err());
        assert!(FigureName::PropertyUnits.parse_value("55B個").is_err());
    }

    #[test]
    fn figure_serializes_with_its_unit() {
        let figure = SurveyFigure {
            name: FigureName::GreeningRatio,
            quantity: FigureName::GreeningRatio.parse_value("35.5%").unwrap(),
        };
        let json = serde_json::to_value(figure).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "greening_ratio", "quantity": {"unit": "percent", "value": "35.5"}})
        );
    }

    #[test]
    fn sha256() {
        assert!(Sha256Hex::parse(&"A".repeat(64)).is_ok());
        assert!(Sha256Hex::parse(&"g".repeat(64)).is_err());
        assert!(Sha256Hex::parse("abc").is_err());
    }
}
