//! Parsing a publication: the `metadata` part of `POST /v1/surveys` (JSON) and the name and
//! media type of each file part, normalized with the same strict rules as case data. Every
//! problem is collected with the JSON pointer of the offending value, so one answer lists them
//! all. Nothing here touches the store or the blobs.

use schemas::model::Name;
use schemas::rules::{FigureSet, NativeValue};
use schemas::survey::parse_media_type;
use schemas::{
    CanonicalField as F, CreditCode, FigureName, NormalizeError, Normalizer, Organization,
    Problem as ValueProblem, ProjectCode, ShanghaiDate, SurveyFigure, SurveyKind,
};
use serde::Deserialize;

use crate::vocabulary;

/// The largest `metadata` part accepted.
pub const MAX_METADATA_BYTES: usize = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataIn {
    project: String,
    kind: String,
    agency: AgencyIn,
    surveyed_on: String,
    figures: Vec<FigureIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgencyIn {
    name: String,
    credit_code: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FigureIn {
    name: String,
    value: String,
}

/// A publication's metadata, every value normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The project surveyed.
    pub project: ProjectCode,
    /// The kind of survey.
    pub kind: SurveyKind,
    /// The surveying agency.
    pub agency: Organization,
    /// When the survey was made.
    pub surveyed_on: ShanghaiDate,
    /// Its figures, each given once.
    pub figures: Vec<SurveyFigure>,
}

/// Why a metadata part is refused.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not the JSON document the endpoint expects (syntax, unknown or missing keys).
    #[error("metadata: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Values that do not normalize, each with its JSON pointer.
    #[error("{} value(s) rejected", .0.len())]
    Invalid(Vec<NormalizeError>),
}

/// A closed vocabulary by its canonical (serialized) name.
fn by_name<T: serde::de::DeserializeOwned>(
    text: &str,
    vocabulary: &'static str,
) -> Result<T, ValueProblem> {
    vocabulary::by_name(text.trim()).ok_or(ValueProblem::UnknownCode { vocabulary })
}

/// Parses and normalizes the metadata part.
pub fn parse_metadata(bytes: &[u8]) -> Result<Metadata, MetadataError> {
    let metadata: MetadataIn = serde_json::from_slice(bytes)?;
    let mut n = Normalizer::new();
    let project = n.field(
        F::SurveyProject,
        || "/project".into(),
        Some(&metadata.project),
        ProjectCode::parse,
    );
    let kind: Option<SurveyKind> = n.field(
        F::SurveyKind,
        || "/kind".into(),
        Some(&metadata.kind),
        |t| by_name(t, "survey kind"),
    );
    let agency_name = n.field(
        F::SurveyAgencyName,
        || "/agency/name".into(),
        Some(&metadata.agency.name),
        Name::parse,
    );
    let agency_code = n.field(
        F::SurveyAgencyCreditCode,
        || "/agency/credit_code".into(),
        Some(&metadata.agency.credit_code),
        CreditCode::parse,
    );
    let surveyed_on = n.field(
        F::SurveyedOn,
        || "/surveyed_on".into(),
        Some(&metadata.surveyed_on),
        ShanghaiDate::parse_iso,
    );
    // Figures given once: the canonical model's own rule, the same check every adapter runs.
    let mut figures = FigureSet::new();
    for (i, figure) in metadata.figures.iter().enumerate() {
        let name: Option<FigureName> = n.field(
            F::SurveyFigure,
            || format!("/figures/{i}/name"),
            Some(&figure.name),
            |t| by_name(t, "figure name"),
        );
        let value = name.and_then(|name| {
            n.field(
                F::SurveyFigure,
                || format!("/figures/{i}/value"),
                Some(&figure.value),
                |t| name.parse_value(t),
            )
        });
        figures.push(&mut n, name, value, || {
            NativeValue::new(format!("/figures/{i}/name"), &figure.name)
        });
    }
    let figures = figures.finish();
    match (
        project,
        kind,
        agency_name,
        agency_code,
        surveyed_on,
        figures,
    ) {
        (
            Some(project),
            Some(kind),
            Some(name),
            Some(credit_code),
            Some(surveyed_on),
            Some(figures),
        ) if n.is_clean() => Ok(Metadata {
            project,
            kind,
            agency: Organization { name, credit_code },
            surveyed_on,
            figures,
        }),
        _ => Err(MetadataError::Invalid(n.errors().to_vec())),
    }
}

/// A file part's name and media type, normalized; problems go to `n` under `/files/{index}`.
/// `None` when either is refused: such a part is not stored.
pub fn parse_file_part(
    n: &mut Normalizer,
    index: usize,
    file_name: Option<&str>,
    media_type: Option<&str>,
) -> Option<(Name, String)> {
    let name = n.field(
        F::SurveyFile,
        || format!("/files/{index}/name"),
        file_name,
        Name::parse,
    );
    let media_type = n.field(
        F::SurveyFile,
        || format!("/files/{index}/media_type"),
        media_type,
        parse_media_type,
    );
    Some((name?, media_type?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(figures: &str) -> String {
        format!(
            r#"{{"project": "2201-310115-04-01-123456", "kind": "planning_verification",
                "agency": {{"name": "上海市测绘院", "credit_code": "91350100M000100Y43"}},
                "surveyed_on": "2024-05-06", "figures": {figures}}}"#
        )
    }

    #[test]
    fn every_problem_is_listed_with_its_pointer() {
        let text = metadata(
            r#"[{"name": "greening_ratio", "value": "11,6%"}, {"name": "no_such", "value": "1"}]"#,
        );
        let Err(MetadataError::Invalid(errors)) = parse_metadata(text.as_bytes()) else {
            panic!("refused");
        };
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/figures/0/value", "/figures/1/name"], "{errors:?}");
    }

    #[test]
    fn a_figure_given_twice_is_refused_at_its_second_name() {
        let text = metadata(
            r#"[{"name": "land_area", "value": "1200m2"}, {"name": "land_area", "value": "9m2"}]"#,
        );
        let Err(MetadataError::Invalid(errors)) = parse_metadata(text.as_bytes()) else {
            panic!("refused");
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, F::SurveyFigure);
        assert_eq!(errors[0].path, "/figures/1/name");
    }

    #[test]
    fn unknown_keys_are_malformed() {
        let text = metadata("[]").replacen("\"kind\"", "\"extra\": 1, \"kind\"", 1);
        assert!(matches!(
            parse_metadata(text.as_bytes()),
            Err(MetadataError::Malformed(_))
        ));
    }
}
