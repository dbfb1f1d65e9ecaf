//! The rules of the canonical model that no single value shows, written once and checked where
//! a canonical value is built, whoever builds it: a bureau adapter decoding its native format,
//! or the gateway turning a publication's JSON metadata into a survey result.
//!
//! - **Survey versioning** ([`check_versioning`]): version 1 supersedes nothing; a version
//!   after 1 names the version it supersedes; no version supersedes itself. Reported under
//!   `survey.version`, at the caller's path of `supersedes` (where it is, or would be).
//! - **Figures given once** ([`FigureSet`]): no figure name twice in one survey result.
//!   Reported under `survey.figures`, at the caller's path of the repeated name.
//! - **A figure's value is in its figure's unit**, and **a file's media type is written as
//!   the parser writes it** (lower case): the parsers guarantee both when a value is read, so
//!   only a value assembled in code ([`SurveyNotice::violations`]) can break them.
//! - **The case lifecycle** ([`check_status_change`], from [`CaseStatus::can_become`]): no
//!   canonical value carries two statuses, so it applies where a case's previous status is
//!   known (the gateway's store), not to one event.
//!
//! A rule is reported the way every other problem is: into a [`Normalizer`], with the canonical
//! field, the caller's own path to the value and the offending text ([`NativeValue`]). Paths
//! are asked for only when a rule is broken, so the happy path builds no strings for them.
//!
//! Three ways in, all running the same rules:
//! - [`SurveyNoticeParts::build`] for a decoder holding values that may have failed to parse
//!   (`None`): it judges what can be judged, so one reply still lists every problem;
//! - [`SurveyNotice::check`] for a caller holding a finished notice and a [`Normalizer`];
//! - [`SurveyNotice::violations`] for a caller with no native document (an encoder).
//!
//! A caller that parsed a JSON metadata document with its own JSON pointers:
//!
//! ```
//! use schemas::rules::{FigureSet, NativeValue};
//! use schemas::{CanonicalField, FigureName, Normalizer};
//!
//! // {"figures": [{"name": "land_area", "value": "1200m2"}, {"name": "land_area", "value": "9m2"}]}
//! let figures = [("land_area", "1200m2"), ("land_area", "9m2")];
//! let mut n = Normalizer::new();
//! let mut set = FigureSet::new();
//! for (i, (name_text, value_text)) in figures.iter().enumerate() {
//!     let name = n.field(
//!         CanonicalField::SurveyFigure,
//!         || format!("/figures/{i}/name"),
//!         Some(name_text),
//!         |_| Ok(FigureName::LandArea), // the caller's own name parser
//!     );
//!     let value = name.and_then(|name| {
//!         n.field(
//!             CanonicalField::SurveyFigure,
//!             || format!("/figures/{i}/value"),
//!             Some(value_text),
//!             |t| name.parse_value(t),
//!         )
//!     });
//!     set.push(&mut n, name, value, || {
//!         NativeValue::new(format!("/figures/{i}/name"), *name_text)
//!     });
//! }
//! assert!(set.finish().is_none());
//! let error = &n.errors()[0];
//! assert_eq!(
//!     (error.field, error.path.as_str(), error.text.as_str()),
//!     (CanonicalField::SurveyFigure, "/figures/1/name", "land_area")
//! );
//! ```
//!
//! The same caller, once it has chosen the version and what it supersedes, checks the notice it
//! built before committing it: `notice.check(&mut n, |part| match part { NoticePart::Supersedes
//! => NativeValue::new("/supersedes", ...), NoticePart::FigureName(i) => ..., ... })`.

use crate::codes::{CreditCode, ProjectCode};
use crate::common::{Name, Organization};
use crate::model::CaseStatus;
use crate::normalize::{CanonicalField, Normalizer, Problem};
use crate::survey::{
    FigureName, FigureValue, FileRef, SurveyFigure, SurveyId, SurveyKind, SurveyNotice,
    SurveyResult, parse_media_type,
};
use crate::time::ShanghaiDate;

/// Where the caller read a value: its own path to it (XPath-like, a JSON pointer ...) and the
/// text as received (empty when the value is absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NativeValue {
    /// The caller's path to the value.
    pub path: String,
    /// The value's text as received.
    pub text: String,
}

impl NativeValue {
    /// A path and a text.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    fn reject(self, n: &mut Normalizer, field: CanonicalField, problem: Problem) {
        n.reject(field, self.path, self.text, problem);
    }
}

/// The canonical field a broken versioning rule is reported under.
pub const VERSIONING_FIELD: CanonicalField = CanonicalField::SurveyVersion;
/// The canonical field a figure rule is reported under.
pub const FIGURES_FIELD: CanonicalField = CanonicalField::SurveyFigure;
/// The canonical field a file rule is reported under.
pub const FILES_FIELD: CanonicalField = CanonicalField::SurveyFile;

/// The versioning rule of survey results: version 1 supersedes nothing, a version after 1
/// names the version it supersedes, and no version supersedes itself.
///
/// Each argument is `None` when the caller could not read it (already reported); `supersedes`
/// is `Some(None)` when the notice names no superseded version. Only what was read is judged.
pub fn check_versioning(
    survey_id: Option<&SurveyId>,
    version: Option<u32>,
    supersedes: Option<Option<&SurveyId>>,
) -> Result<(), Problem> {
    let reason = match (version, supersedes) {
        (Some(1), Some(Some(_))) => "version 1 supersedes nothing",
        (Some(2..), Some(None)) => "a version after 1 names the version it supersedes",
        (_, Some(Some(old))) if survey_id == Some(old) => "a version cannot supersede itself",
        _ => return Ok(()),
    };
    Err(Problem::Inconsistent { reason })
}

/// No figure name twice in one survey result: `name` may not be one of `earlier`.
fn check_figure_given_once(earlier: &[FigureName], name: FigureName) -> Result<(), Problem> {
    if earlier.contains(&name) {
        return Err(Problem::Inconsistent {
            reason: "figure given more than once",
        });
    }
    Ok(())
}

/// A figure's value is in the unit of what the figure measures.
fn check_figure_unit(figure: &SurveyFigure) -> Result<(), Problem> {
    let unit = match figure.quantity {
        FigureValue::Area(_) => "m2",
        FigureValue::Length(_) => "m",
        FigureValue::Percent(_) => "%",
        FigureValue::Count(_) => "count",
    };
    let allowed = figure.name.unit_symbol();
    if unit != allowed {
        return Err(Problem::UnknownUnit { allowed });
    }
    Ok(())
}

/// A file's media type is written as [`parse_media_type`] writes it.
fn check_media_type(file: &FileRef) -> Result<(), Problem> {
    match parse_media_type(&file.media_type) {
        Ok(parsed) if parsed == file.media_type => Ok(()),
        Ok(_) => Err(Problem::BadFormat {
            expected: "a media type in lower case, such as application/pdf",
        }),
        Err(problem) => Err(problem),
    }
}

/// The case lifecycle: whether a case whose last status was `from` may report `to`
/// ([`CaseStatus::can_become`]), as a problem of `case.status` when it may not.
pub fn check_status_change(from: CaseStatus, to: CaseStatus) -> Result<(), Problem> {
    if from.can_become(to) {
        Ok(())
    } else if from.is_final() {
        Err(Problem::Inconsistent {
            reason: "the case has already reached a final status",
        })
    } else {
        Err(Problem::Inconsistent {
            reason: "the case lifecycle does not allow this change of status",
        })
    }
}

/// The figures of one survey result, read one at a time: a figure name given a second time is
/// rejected (under `survey.figures`, at the caller's path of the name) as it is pushed, so the
/// errors keep document order.
#[derive(Debug, Default)]
pub struct FigureSet {
    figures: Vec<SurveyFigure>,
    names: Vec<FigureName>,
    incomplete: bool,
}

impl FigureSet {
    /// No figures yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next figure of the document. `name` and `quantity` are `None` when the caller
    /// rejected them (or could not read the value without a name); `name_at` gives the path and
    /// text of the name, and is called only when the name repeats an earlier one.
    pub fn push(
        &mut self,
        n: &mut Normalizer,
        name: Option<FigureName>,
        quantity: Option<FigureValue>,
        name_at: impl FnOnce() -> NativeValue,
    ) {
        let Some(name) = name else {
            self.incomplete = true;
            return;
        };
        if let Err(problem) = check_figure_given_once(&self.names, name) {
            name_at().reject(n, FIGURES_FIELD, problem);
            self.incomplete = true;
            return;
        }
        self.names.push(name);
        match quantity {
            Some(quantity) => self.figures.push(SurveyFigure { name, quantity }),
            None => self.incomplete = true,
        }
    }

    /// Records an entry of the figure list that is no figure at all (an array element that is
    /// not an object), which the caller has rejected.
    pub fn push_unreadable(&mut self) {
        self.incomplete = true;
    }

    /// The figures in document order, or `None` when any of them was rejected.
    pub fn finish(self) -> Option<Vec<SurveyFigure>> {
        (!self.incomplete).then_some(self.figures)
    }
}

/// The values of a survey notice as a decoder read them, each `None` when it was rejected (or
/// missing) and the [`Normalizer`] holds why; `supersedes` is `Some(None)` when absent.
/// [`build`](Self::build) applies the rules and assembles the notice.
#[derive(Debug, Default)]
pub struct SurveyNoticeParts {
    /// This version's id.
    pub survey_id: Option<SurveyId>,
    /// The version it supersedes (`Some(None)`: none).
    pub supersedes: Option<Option<SurveyId>>,
    /// The project surveyed.
    pub project: Option<ProjectCode>,
    /// What was surveyed.
    pub kind: Option<SurveyKind>,
    /// The agency's name.
    pub agency_name: Option<Name>,
    /// The agency's credit code.
    pub agency_credit_code: Option<CreditCode>,
    /// The version.
    pub version: Option<u32>,
    /// When the survey was done.
    pub surveyed_on: Option<ShanghaiDate>,
    /// The figures, already checked for repeated names.
    pub figures: FigureSet,
    /// The files, `None` when any was rejected.
    pub files: Option<Vec<FileRef>>,
}

impl SurveyNoticeParts {
    /// Applies the versioning rule to what was read (a broken rule is rejected under
    /// `survey.version` at `supersedes_at`, which is called only then), and returns the notice
    /// when nothing at all was rejected into `n`.
    pub fn build(
        self,
        n: &mut Normalizer,
        supersedes_at: impl FnOnce() -> NativeValue,
    ) -> Option<SurveyNotice> {
        let supersedes = self.supersedes.as_ref().map(Option::as_ref);
        if let Err(problem) = check_versioning(self.survey_id.as_ref(), self.version, supersedes) {
            supersedes_at().reject(n, VERSIONING_FIELD, problem);
        }
        if !n.is_clean() {
            return None;
        }
        Some(SurveyNotice {
            survey_id: self.survey_id?,
            supersedes: self.supersedes?,
            result: SurveyResult {
                project: self.project?,
                kind: self.kind?,
                agency: Organization {
                    name: self.agency_name?,
                    credit_code: self.agency_credit_code?,
                },
                version: self.version?,
                surveyed_on: self.surveyed_on?,
                figures: self.figures.finish()?,
                files: self.files?,
            },
        })
    }
}

/// The part of a survey notice a broken rule is reported against; the caller maps it to its
/// own path and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticePart {
    /// `supersedes`, or where it belongs when the notice has none.
    Supersedes,
    /// The name of `result.figures[i]`.
    FigureName(usize),
    /// The value of `result.figures[i]`.
    FigureValue(usize),
    /// The media type of `result.files[i]`.
    FileMediaType(usize),
}

/// A rule a finished value breaks: the canonical field, the part, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The canonical field it is reported under.
    pub field: CanonicalField,
    /// Where in the notice.
    pub part: NoticePart,
    /// What is wrong.
    pub problem: Problem,
}

impl SurveyNotice {
    /// Every rule of [this module](crate::rules) the notice breaks, in the notice's order
    /// (figures, files, then versioning). Empty for every notice a decoder or the sample
    /// generator builds.
    pub fn violations(&self) -> Vec<Violation> {
        let result = &self.result;
        let mut violations = Vec::new();
        let mut names = Vec::with_capacity(result.figures.len());
        for (i, figure) in result.figures.iter().enumerate() {
            if let Err(problem) = check_figure_given_once(&names, figure.name) {
                violations.push(Violation {
                    field: FIGURES_FIELD,
                    part: NoticePart::FigureName(i),
                    problem,
                });
            }
            names.push(figure.name);
            if let Err(problem) = check_figure_unit(figure) {
                violations.push(Violation {
                    field: FIGURES_FIELD,
                    part: NoticePart::FigureValue(i),
                    problem,
                });
            }
        }
        for (i, file) in result.files.iter().enumerate() {
            if let Err(problem) = check_media_type(file) {
                violations.push(Violation {
                    field: FILES_FIELD,
                    part: NoticePart::FileMediaType(i),
                    problem,
                });
            }
        }
        if let Err(problem) = check_versioning(
            Some(&self.survey_id),
            Some(result.version),
            Some(self.supersedes.as_ref()),
        ) {
            violations.push(Violation {
                field: VERSIONING_FIELD,
                part: NoticePart::Supersedes,
                problem,
            });
        }
        violations
    }

    /// Rejects into `n` every rule the notice breaks, at the path and text `locate` gives for
    /// the part (called only for a broken rule). True when the notice breaks none.
    pub fn check(&self, n: &mut Normalizer, locate: impl Fn(NoticePart) -> NativeValue) -> bool {
        let violations = self.violations();
        for violation in &violations {
            locate(violation.part).reject(n, violation.field, violation.problem.clone());
        }
        violations.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(digit: char) -> SurveyId {
        SurveyId::parse(&format!("sv-{}", digit.to_string().repeat(32))).unwrap()
    }

    fn notice(version: u32, supersedes: Option<SurveyId>) -> SurveyNotice {
        SurveyNotice {
            survey_id: id('a'),
            supersedes,
            result: SurveyResult {
                project: ProjectCode::parse("2201-310115-04-01-123456").unwrap(),
                kind: SurveyKind::RealEstate,
                agency: Organization {
                    name: Name::parse("上海測繪院").unwrap(),
                    credit_code: CreditCode::parse("91350100M000100Y43").unwrap(),
                },
                version,
                surveyed_on: ShanghaiDate::parse_iso("2023-05-06").unwrap(),
                figures: vec![SurveyFigure {
                    name: FigureName::GreeningRatio,
                    quantity: FigureName::GreeningRatio.parse_value("35.5%").unwrap(),
                }],
                files: Vec::new(),
            },
        }
    }

    fn reason(result: Result<(), Problem>) -> Option<&'static str> {
        match result {
            Err(Problem::Inconsistent { reason }) => Some(reason),
            _ => None,
        }
    }

    #[test]
    fn versioning() {
        let (a, b) = (id('a'), id('b'));
        assert_eq!(check_versioning(Some(&a), Some(1), Some(None)), Ok(()));
        assert_eq!(check_versioning(Some(&a), Some(2), Some(Some(&b))), Ok(()));
        assert_eq!(
            reason(check_versioning(Some(&a), Some(1), Some(Some(&b)))),
            Some("version 1 supersedes nothing")
        );
        assert_eq!(
            reason(check_versioning(Some(&a), Some(3), Some(None))),
            Some("a version after 1 names the version it supersedes")
        );
        assert_eq!(
            reason(check_versioning(Some(&a), Some(2), Some(Some(&a)))),
            Some("a version cannot supersede itself")
        );
        // Judged without the version too; nothing judged without what it needs.
        assert!(check_versioning(Some(&a), None, Some(Some(&a))).is_err());
        assert_eq!(check_versioning(None, Some(2), None), Ok(()));
        assert_eq!(check_versioning(None, None, Some(Some(&a))), Ok(()));
    }

    #[test]
    fn parts_report_versioning_at_the_callers_path() {
        let parts = SurveyNoticeParts {
            survey_id: Some(id('a')),
            supersedes: Some(Some(id('b'))),
            version: Some(1),
            ..SurveyNoticeParts::default()
        };
        let mut n = Normalizer::new();
        assert!(
            parts
                .build(&mut n, || NativeValue::new("/s/supersedes", "sv-b"))
                .is_none()
        );
        let error = &n.errors()[0];
        assert_eq!(error.field, CanonicalField::SurveyVersion);
        assert_eq!(
            (error.path.as_str(), error.text.as_str()),
            ("/s/supersedes", "sv-b")
        );
    }

    #[test]
    fn parts_build_a_valid_notice_without_asking_for_paths() {
        let want = notice(2, Some(id('b')));
        let mut figures = FigureSet::new();
        let mut n = Normalizer::new();
        for figure in &want.result.figures {
            figures.push(&mut n, Some(figure.name), Some(figure.quantity), || {
                unreachable!("no rule is broken")
            });
        }
        let result = &want.result;
        let parts = SurveyNoticeParts {
            survey_id: Some(want.survey_id.clone()),
            supersedes: Some(want.supersedes.clone()),
            project: Some(result.project.clone()),
            kind: Some(result.kind),
            agency_name: Some(result.agency.name.clone()),
            agency_credit_code: Some(result.agency.credit_code.clone()),
            version: Some(result.version),
            surveyed_on: Some(result.surveyed_on),
            figures,
            files: Some(Vec::new()),
        };
        let built = parts.build(&mut n, || unreachable!("no rule is broken"));
        assert_eq!(built, Some(want));
        assert!(n.is_clean());
    }

    #[test]
    fn a_repeated_figure_name_is_rejected_even_when_its_value_is_not_read() {
        let mut set = FigureSet::new();
        let mut n = Normalizer::new();
        let ratio = FigureName::GreeningRatio;
        set.push(&mut n, Some(ratio), None, NativeValue::default);
        set.push(&mut n, Some(ratio), None, || {
            NativeValue::new("/f/1/n", "LDL")
        });
        assert!(set.finish().is_none());
        assert_eq!(n.errors().len(), 1);
        assert_eq!(n.errors()[0].path, "/f/1/n");
        assert_eq!(n.errors()[0].field, CanonicalField::SurveyFigure);
    }

    #[test]
    fn finished_notices_report_every_broken_rule_with_the_callers_locations() {
        assert!(notice(1, None).violations().is_empty());
        let mut bad = notice(1, Some(id('a')));
        let height = FigureName::BuildingHeight;
        bad.result.figures.push(SurveyFigure {
            name: height,
            quantity: FigureName::LandArea.parse_value("12m2").unwrap(),
        });
        bad.result.figures.push(bad.result.figures[0]);
        bad.result.files.push(FileRef {
            name: Name::parse("a.pdf").unwrap(),
            media_type: "Application/PDF".into(),
            sha256: crate::survey::Sha256Hex::parse(&"a".repeat(64)).unwrap(),
            size_bytes: 1,
        });
        let parts: Vec<_> = bad.violations().iter().map(|v| (v.part, v.field)).collect();
        assert_eq!(
            parts,
            [
                (NoticePart::FigureValue(1), CanonicalField::SurveyFigure),
                (NoticePart::FigureName(2), CanonicalField::SurveyFigure),
                (NoticePart::FileMediaType(0), CanonicalField::SurveyFile),
                (NoticePart::Supersedes, CanonicalField::SurveyVersion),
            ]
        );
        let mut n = Normalizer::new();
        let clean = bad.check(&mut n, |part| match part {
            NoticePart::Supersedes => NativeValue::new("/supersedes", "sv-a"),
            NoticePart::FigureName(i) => NativeValue::new(format!("/figures/{i}/name"), ""),
            NoticePart::FigureValue(i) => NativeValue::new(format!("/figures/{i}/value"), ""),
            NoticePart::FileMediaType(i) => NativeValue::new(format!("/files/{i}/type"), ""),
        });
        assert!(!clean);
        let paths: Vec<_> = n.errors().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/figures/1/value",
                "/figures/2/name",
                "/files/0/type",
                "/supersedes"
            ]
        );
    }

    #[test]
    fn status_changes_follow_the_lifecycle() {
        use CaseStatus::*;
        assert_eq!(check_status_change(Submitted, Accepted), Ok(()));
        assert_eq!(
            reason(check_status_change(Approved, Withdrawn)),
            Some("the case has already reached a final status")
        );
        assert!(check_status_change(Submitted, Approved).is_err());
    }
}
