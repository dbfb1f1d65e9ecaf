//! Multi-survey-in-one (多測合一): one surveying job's results, shared with every entitled bureau.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::codes::{ProjectCode, string_newtype_serde};
use crate::common::{BureauCaseId, Name, Organization, parse_sequence};
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

impl SurveyKind {
    /// Every kind.
    pub const ALL: [SurveyKind; 4] = [
        Self::PlanningVerification,
        Self::RealEstate,
        Self::CivilDefenseArea,
        Self::Greening,
    ];

    /// A two-letter code, used in series ids.
    pub fn short_code(self) -> &'static str {
        match self {
            Self::PlanningVerification => "PV",
            Self::RealEstate => "RE",
            Self::CivilDefenseArea => "CD",
            Self::Greening => "GR",
        }
    }
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
    /// Every figure.
    pub const ALL: [FigureName; 8] = [
        Self::LandArea,
        Self::FloorAreaAboveGround,
        Self::FloorAreaBelowGround,
        Self::BuildingHeight,
        Self::GreeningArea,
        Self::GreeningRatio,
        Self::CivilDefenseArea,
        Self::PropertyUnits,
    ];

    /// The figure's value in its canonical unit, as text without the unit (`1234.5`).
    pub fn value_text(value: &FigureValue) -> String {
        match value {
            FigureValue::Area(a) => a.to_string(),
            FigureValue::Length(l) => l.to_string(),
            FigureValue::Percent(p) => p.to_string(),
            FigureValue::Count(c) => c.0.to_string(),
        }
    }

    /// The canonical unit's symbol: `m2`, `m`, `%` or `count`.
    pub fn unit_symbol(self) -> &'static str {
        match self {
            Self::LandArea
            | Self::FloorAreaAboveGround
            | Self::FloorAreaBelowGround
            | Self::GreeningArea
            | Self::CivilDefenseArea => "m2",
            Self::BuildingHeight => "m",
            Self::GreeningRatio => "%",
            Self::PropertyUnits => "count",
        }
    }

    /// Parses a value given in the canonical unit without the unit (`1234.5` for an area in
    /// square metres, `35.5` for a ratio in percent, `120` for a count).
    pub fn parse_canonical(self, number: &str) -> Result<FigureValue, Problem> {
        let with_unit = match self.unit_symbol() {
            "m2" => format!("{number}m2"),
            "m" => format!("{number}m"),
            "%" => format!("{number}%"),
            _ => number.to_owned(),
        };
        self.parse_value(&with_unit)
    }

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

/// The gateway's id of one published version of a survey result (`sv-` and 32 hex digits);
/// it is fetched at `/v1/surveys/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SurveyId(String);

impl SurveyId {
    /// Parses `sv-` followed by 32 lowercase hex digits.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        crate::common::prefixed_hex_id(
            input,
            "sv-",
            "survey id sv- followed by 32 lowercase hex digits",
        )
        .map(Self)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_serde!(
    SurveyId,
    "SurveyId",
    "^sv-[0-9a-f]{32}$",
    "The gateway's id of one published version of a survey result."
);

/// Parses a survey version: digits, 1 to 4294967295.
pub fn parse_version(input: &str) -> Result<u32, Problem> {
    let version = parse_sequence(input)?;
    u32::try_from(version).map_err(|_| Problem::OutOfRange {
        min: "1",
        max: "4294967295",
    })
}

/// Parses a file size in bytes: digits only (at most 20).
pub fn parse_size(input: &str) -> Result<u64, Problem> {
    let text = clean(input);
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::BadFormat {
            expected: "a size in bytes written in digits",
        });
    }
    text.parse().map_err(|_| Problem::OutOfRange {
        min: "0",
        max: "18446744073709551615",
    })
}

/// A media type such as `application/pdf` or `image/vnd.dwg`.
pub fn parse_media_type(input: &str) -> Result<String, Problem> {
    let text = clean(input).to_ascii_lowercase();
    let token = |t: &str| {
        !t.is_empty()
            && t.len() <= 64
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match text.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => Ok(text),
        _ => Err(Problem::BadFormat {
            expected: "a media type such as application/pdf",
        }),
    }
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

/// What an entitled bureau receives about a published survey result: the result (with only
/// the figures that bureau may see) and where to fetch it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyNotice {
    /// This version's id; `GET /v1/surveys/{id}` returns it, its files are under it.
    pub survey_id: SurveyId,
    /// The version this one supersedes, if it is a correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<SurveyId>,
    /// The result, its figures filtered to the receiver's entitlement.
    pub result: SurveyResult,
}

impl SurveyNotice {
    /// The id of the series of versions of one project's survey kind, used as the event's
    /// case id: `SV-<project code>-<kind code>`.
    pub fn series_id(&self) -> BureauCaseId {
        let text = format!(
            "SV-{}-{}",
            self.result.project.as_str(),
            self.result.kind.short_code()
        );
        BureauCaseId::parse(&text)
            .unwrap_or_else(|_| unreachable!("project codes and kind codes make valid case ids"))
    }
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
