//! The notices the gateway relays or makes — joint cases (one-stop parallel approval), deadline
//! notices, credit-list entries and credit matches — read and written once for every format,
//! spelt each bureau's way.
//!
//! A bureau's format says how it spells a notice in a [`Dialect`]: the element or key name of
//! every field, its code for every status and bureau, its item names, its date style, how it
//! writes a yes or no and (JSON) whether numbers are integers or strings. The reading and
//! writing themselves, and the rules of the canonical model (`schemas::joint`), are here, so a
//! format's notice support is its dialect, its header and one dispatch line each way; the
//! conformance kit checks every dialect like the rest of the format.
//!
//! The window bureau of a joint notice is the message's sender; the bureau a deadline notice or a
//! credit match is about is its sender too, and a credit-list entry's sender is its publisher.
//! A credit entry's fields are flat in its body (a removal is two fields, given both or
//! neither); a match notice's body is the entry's fields and the case's.

use std::borrow::Cow;

use schemas::credit::{CreditPart, parse_credit_version};
use schemas::joint::{JointPart, parse_deadline_days};
use schemas::model::parse_sequence;
use schemas::survey::parse_version;
use schemas::text::clean;
use schemas::{
    BranchStatus, BureauCaseId, BureauId, CanonicalField as F, CreditEntry, CreditList,
    CreditMatch, CreditRemoval, CreditText, DeadlineNotice, DeadlineState, DueDate, Event,
    FlowName, Item, JointBranch, JointCaseId, JointNotice, JointStatus, MessageId, Name,
    NativeValue, Normalizer, Organization, Payload, Problem, Project, ProjectCode, ShanghaiDate,
    ShanghaiTime,
};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

use crate::json::{Bounds, Obj, bounds};
use crate::vocabulary::{BureauSpelling, code_of, lookup};
use crate::xml::{Element, Fields, XmlWriter};

/// How dates are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateStyle {
    /// `2026-03-06`.
    Iso,
    /// `20260306`.
    Compact,
}

impl DateStyle {
    fn write(self, date: ShanghaiDate) -> String {
        match self {
            Self::Iso => date.to_string(),
            Self::Compact => date.format_compact(),
        }
    }

    fn parse(self, text: &str) -> Result<ShanghaiDate, Problem> {
        match self {
            Self::Iso => ShanghaiDate::parse_iso(text),
            Self::Compact => ShanghaiDate::parse_compact(text),
        }
    }
}

/// How a JSON format writes numbers and yes/no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonScalars {
    /// JSON integers and JSON booleans.
    Typed,
    /// Every value a JSON string (yes/no spelt by the dialect's `yes_no`).
    Strings,
    /// Numbers read as strings or integers and written as strings; yes/no as strings.
    Lenient,
}

/// The element (XML) or key (JSON) name of every field of the two notices. Branch fields reuse
/// the names of the fields they share with the joint case (`item`, `status`, `case_id`, `due`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names {
    /// The body of a joint notice (element or key).
    pub(crate) joint: &'static str,
    /// The body of a deadline notice.
    pub(crate) deadline: &'static str,
    pub(crate) joint_case_id: &'static str,
    pub(crate) flow: &'static str,
    pub(crate) version: &'static str,
    pub(crate) project_code: &'static str,
    pub(crate) project_name: &'static str,
    pub(crate) window_case_id: &'static str,
    pub(crate) status: &'static str,
    pub(crate) opened_on: &'static str,
    /// The due date; in XML its element carries `provisional` as an attribute.
    pub(crate) due: &'static str,
    pub(crate) provisional: &'static str,
    pub(crate) calendar: &'static str,
    /// XML: the element holding the branches (`None`: branches are direct children of the
    /// body); JSON: the array's key.
    pub(crate) branches: Option<&'static str>,
    /// XML: one branch's element.
    pub(crate) branch: &'static str,
    pub(crate) bureau: &'static str,
    pub(crate) item: &'static str,
    pub(crate) required: &'static str,
    pub(crate) case_id: &'static str,
    pub(crate) sequence: &'static str,
    pub(crate) state: &'static str,
    pub(crate) working_days: &'static str,
    /// The body of a credit-list entry.
    pub(crate) credit: &'static str,
    /// The body of a credit match notice.
    pub(crate) credit_match: &'static str,
    pub(crate) entry_id: &'static str,
    pub(crate) list: &'static str,
    pub(crate) subject_name: &'static str,
    pub(crate) credit_code: &'static str,
    pub(crate) measures: &'static str,
    pub(crate) issued_by: &'static str,
    pub(crate) legal_basis: &'static str,
    pub(crate) document_number: &'static str,
    pub(crate) valid_from: &'static str,
    pub(crate) valid_to: &'static str,
    pub(crate) removed_on: &'static str,
    pub(crate) removal_reason: &'static str,
    /// A match notice's publisher of the entry (a bureau code).
    pub(crate) publisher: &'static str,
}

/// How one format spells the notices.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    pub(crate) names: Names,
    /// How the format spells a bureau (as in its own header).
    pub(crate) bureaus: BureauSpelling,
    pub(crate) item_text: fn(Item) -> Cow<'static, str>,
    pub(crate) parse_item: fn(&str) -> Result<Item, Problem>,
    pub(crate) joint_statuses: &'static [(JointStatus, &'static str); 5],
    pub(crate) branch_statuses: &'static [(BranchStatus, &'static str); 7],
    pub(crate) states: &'static [(DeadlineState, &'static str); 2],
    pub(crate) lists: &'static [(CreditList, &'static str); 3],
    /// How yes and no are written (in XML always; in JSON unless [`JsonScalars::Typed`]).
    pub(crate) yes_no: &'static [(bool, &'static str); 2],
    pub(crate) dates: DateStyle,
    pub(crate) json: JsonScalars,
}

/// The header values the format's own header gave (each `None` when rejected).
pub(crate) struct Header {
    pub(crate) message_id: Option<MessageId>,
    pub(crate) source: Option<BureauId>,
    pub(crate) occurred_at: Option<ShanghaiTime>,
}

/// Parsed values of a joint notice, before the rules.
struct JointValues {
    joint_case_id: Option<JointCaseId>,
    flow: Option<FlowName>,
    version: Option<u32>,
    project_code: Option<ProjectCode>,
    project_name: Option<Name>,
    window_case_id: Option<BureauCaseId>,
    status: Option<JointStatus>,
    opened_on: Option<ShanghaiDate>,
    due: Option<DueDate>,
    calendar: Option<Name>,
    branches: Option<Vec<JointBranch>>,
}

/// Builds the joint event from what was read, rejecting every rule it breaks at the path
/// `locate` gives.
fn joint_event(
    header: Header,
    values: JointValues,
    n: &mut Normalizer,
    locate: impl Fn(JointPart) -> NativeValue,
) -> Option<Event> {
    if !n.is_clean() {
        return None;
    }
    let notice = JointNotice {
        joint_case_id: values.joint_case_id?,
        flow: values.flow?,
        version: values.version?,
        project: Project {
            code: values.project_code?,
            name: values.project_name?,
        },
        window: header.source?,
        window_case_id: values.window_case_id?,
        status: values.status?,
        opened_on: values.opened_on?,
        due: values.due?,
        calendar: values.calendar?,
        branches: values.branches?,
    };
    for violation in notice.violations() {
        let at = locate(violation.part);
        n.reject(violation.field, at.path, at.text, violation.problem);
    }
    if !n.is_clean() {
        return None;
    }
    Some(Event::for_joint(
        header.message_id?,
        header.occurred_at?,
        notice,
    ))
}

/// Parsed values of a deadline notice.
struct DeadlineValues {
    case_id: Option<BureauCaseId>,
    sequence: Option<u64>,
    item: Option<Item>,
    project: Option<ProjectCode>,
    state: Option<DeadlineState>,
    working_days: Option<u16>,
    due: Option<DueDate>,
    calendar: Option<Name>,
    joint_case_id: Option<Option<JointCaseId>>,
}

fn deadline_event(
    header: Header,
    values: DeadlineValues,
    n: &mut Normalizer,
    item_at: impl FnOnce() -> NativeValue,
) -> Option<Event> {
    if !n.is_clean() {
        return None;
    }
    let source = header.source?;
    let notice = DeadlineNotice {
        item: values.item?,
        project: values.project?,
        state: values.state?,
        working_days: values.working_days?,
        due: values.due?,
        calendar: values.calendar?,
        joint_case_id: values.joint_case_id?,
    };
    if let Some((field, problem)) = notice.violation(source) {
        let at = item_at();
        n.reject(field, at.path, at.text, problem);
        return None;
    }
    Some(Event::for_deadline(
        header.message_id?,
        source,
        values.case_id?,
        values.sequence?,
        header.occurred_at?,
        notice,
    ))
}

fn yes_no(dialect: &Dialect, text: &str) -> Result<bool, Problem> {
    lookup(dialect.yes_no, text, "yes or no")
}

/// The dialect's code of a bureau.
fn bureau_code(dialect: &Dialect, bureau: BureauId) -> &'static str {
    dialect.bureaus.code(bureau)
}

// ---------------------------------------------------------------------------------------------
// XML

/// Reads the joint notice in `body` (at `path`), whose own attributes may be `attributes`.
pub(crate) fn read_joint_xml(
    dialect: &Dialect,
    body: &Element<'_>,
    path: &str,
    attributes: &[&str],
    header: Header,
    n: &mut Normalizer,
) -> Option<Event> {
    let d = &dialect.names;
    body.check_attributes(path, attributes, n);
    let mut single = vec![
        d.joint_case_id,
        d.flow,
        d.version,
        d.project_code,
        d.project_name,
        d.window_case_id,
        d.status,
        d.opened_on,
        d.due,
        d.calendar,
    ];
    let repeated: &[&str] = match d.branches {
        Some(container) => {
            single.push(container);
            &[]
        }
        None => &[d.branch],
    };
    body.check_children(path, &single, repeated, n);
    let at = |name: &str| format!("{path}/{name}");
    let text = |name: &str| body.text_of(name);
    let x = Fields {
        element: body,
        path: path.into(),
    };
    let values = JointValues {
        joint_case_id: x.read(n, F::JointCaseId, d.joint_case_id, JointCaseId::parse),
        flow: x.read(n, F::JointFlow, d.flow, FlowName::parse),
        version: n.field(
            F::JointVersion,
            || at(d.version),
            text(d.version),
            parse_version,
        ),
        project_code: x.read(n, F::JointProjectCode, d.project_code, ProjectCode::parse),
        project_name: x.read(n, F::JointProjectName, d.project_name, Name::parse),
        window_case_id: x.read(
            n,
            F::JointWindowCaseId,
            d.window_case_id,
            BureauCaseId::parse,
        ),
        status: x.read(n, F::JointStatus, d.status, |t| {
            lookup(dialect.joint_statuses, t, "joint case status")
        }),
        opened_on: x.read(n, F::JointOpenedOn, d.opened_on, |t| dialect.dates.parse(t)),
        due: read_due_xml(dialect, body.child(d.due), &at(d.due), F::JointDue, true, n)
            .and_then(|due| due),
        calendar: x.read(n, F::JointCalendar, d.calendar, Name::parse),
        branches: None,
    };
    let (branch_path, branches): (String, Vec<&Element<'_>>) = match d.branches {
        Some(container) => {
            let container_path = at(container);
            match body.child(container) {
                Some(list) => {
                    list.check_attributes(&container_path, &[], n);
                    list.check_children(&container_path, &[], &[d.branch], n);
                    (container_path, list.children_named(d.branch).collect())
                }
                None => {
                    n.reject(
                        F::JointBranches,
                        container_path.clone(),
                        "",
                        Problem::Missing,
                    );
                    (container_path, Vec::new())
                }
            }
        }
        None => (path.to_owned(), body.children_named(d.branch).collect()),
    };
    let mut read = Some(Vec::with_capacity(branches.len()));
    for (i, branch) in branches.iter().enumerate() {
        let bpath = format!("{branch_path}/{}[{}]", d.branch, i + 1);
        let one = read_branch_xml(dialect, branch, &bpath, n);
        read = read.zip(one).map(|(mut all, one)| {
            all.push(one);
            all
        });
    }
    let values = JointValues {
        branches: read,
        ..values
    };
    let branch_at = |i: usize, name: &str| {
        let element = branches.get(i).copied();
        NativeValue::new(
            format!("{branch_path}/{}[{}]/{name}", d.branch, i + 1),
            element.and_then(|e| e.text_of(name)).unwrap_or(""),
        )
    };
    joint_event(header, values, n, |part| match part {
        JointPart::Version => NativeValue::new(at(d.version), text(d.version).unwrap_or("")),
        JointPart::Due => NativeValue::new(at(d.due), text(d.due).unwrap_or("")),
        JointPart::Branches => {
            NativeValue::new(d.branches.map_or_else(|| path.to_owned(), &at), "")
        }
        JointPart::BranchItem(i) => branch_at(i, d.item),
        JointPart::BranchCaseId(i) => branch_at(i, d.case_id),
        JointPart::BranchDue(i) => branch_at(i, d.due),
    })
}

fn read_branch_xml(
    dialect: &Dialect,
    branch: &Element<'_>,
    path: &str,
    n: &mut Normalizer,
) -> Option<JointBranch> {
    let d = &dialect.names;
    branch.check_attributes(path, &[], n);
    branch.check_children(
        path,
        &[d.bureau, d.item, d.required, d.status, d.case_id, d.due],
        &[],
        n,
    );
    let at = |name: &str| format!("{path}/{name}");
    let x = Fields {
        element: branch,
        path: path.into(),
    };
    let bureau = x.read(n, F::JointBranchBureau, d.bureau, |t| {
        dialect.bureaus.parse(t, "bureau code")
    });
    let item = x.read(n, F::JointBranchItem, d.item, dialect.parse_item);
    let required = x.read(n, F::JointBranchRequired, d.required, |t| {
        yes_no(dialect, t)
    });
    let status = x.read(n, F::JointBranchStatus, d.status, |t| {
        lookup(dialect.branch_statuses, t, "branch status")
    });
    let case_id = x.read_optional(n, F::JointBranchCaseId, d.case_id, BureauCaseId::parse);
    let due = read_due_xml(
        dialect,
        branch.child(d.due),
        &at(d.due),
        F::JointBranchDue,
        false,
        n,
    );
    Some(JointBranch {
        bureau: bureau?,
        item: item?,
        required: required?,
        status: status?,
        case_id: case_id?,
        due: due?,
    })
}

/// A due date element: the date as text, `provisional` as an attribute. `Some(None)` when it is
/// optional and absent.
fn read_due_xml(
    dialect: &Dialect,
    element: Option<&Element<'_>>,
    path: &str,
    field: F,
    required: bool,
    n: &mut Normalizer,
) -> Option<Option<DueDate>> {
    let Some(element) = element else {
        if required {
            n.reject(field, path, "", Problem::Missing);
            return None;
        }
        return Some(None);
    };
    element.check_attributes(path, &[dialect.names.provisional], n);
    let on = n.field(
        field,
        || path.to_owned(),
        Some(&element.text),
        |t| dialect.dates.parse(t),
    );
    let provisional = n.field(
        field,
        || format!("{path}/@{}", dialect.names.provisional),
        element.attribute(dialect.names.provisional),
        |t| yes_no(dialect, t),
    );
    Some(Some(DueDate {
        on: on?,
        provisional: provisional?,
    }))
}

/// Reads the deadline notice in `body` (at `path`).
pub(crate) fn read_deadline_xml(
    dialect: &Dialect,
    body: &Element<'_>,
    path: &str,
    attributes: &[&str],
    header: Header,
    n: &mut Normalizer,
) -> Option<Event> {
    let d = &dialect.names;
    body.check_attributes(path, attributes, n);
    body.check_children(
        path,
        &[
            d.case_id,
            d.sequence,
            d.item,
            d.project_code,
            d.state,
            d.working_days,
            d.due,
            d.calendar,
            d.joint_case_id,
        ],
        &[],
        n,
    );
    let at = |name: &str| format!("{path}/{name}");
    let text = |name: &str| body.text_of(name);
    let x = Fields {
        element: body,
        path: path.into(),
    };
    let values = DeadlineValues {
        case_id: x.read(n, F::CaseId, d.case_id, BureauCaseId::parse),
        sequence: x.read(n, F::Sequence, d.sequence, parse_sequence),
        item: x.read(n, F::DeadlineItem, d.item, dialect.parse_item),
        project: x.read(n, F::DeadlineProject, d.project_code, ProjectCode::parse),
        state: x.read(n, F::DeadlineState, d.state, |t| {
            lookup(dialect.states, t, "deadline state")
        }),
        working_days: x.read(
            n,
            F::DeadlineWorkingDays,
            d.working_days,
            parse_deadline_days,
        ),
        due: read_due_xml(
            dialect,
            body.child(d.due),
            &at(d.due),
            F::DeadlineDue,
            true,
            n,
        )
        .and_then(|due| due),
        calendar: x.read(n, F::DeadlineCalendar, d.calendar, Name::parse),
        joint_case_id: x.read_optional(
            n,
            F::DeadlineJointCaseId,
            d.joint_case_id,
            JointCaseId::parse,
        ),
    };
    deadline_event(header, values, n, || {
        NativeValue::new(at(d.item), text(d.item).unwrap_or(""))
    })
}

fn write_due_xml(dialect: &Dialect, w: &mut XmlWriter, due: &DueDate) {
    w.leaf_with(
        dialect.names.due,
        &[(
            dialect.names.provisional,
            code_of(dialect.yes_no, due.provisional),
        )],
        &dialect.dates.write(due.on),
    );
}

/// Writes the joint notice's body element (its children; the caller opened it, with whatever
/// attributes its format gives the body, and closes it).
pub(crate) fn write_joint_xml(dialect: &Dialect, w: &mut XmlWriter, notice: &JointNotice) {
    let d = &dialect.names;
    w.leaf(d.joint_case_id, notice.joint_case_id.as_str());
    w.leaf(d.flow, notice.flow.as_str());
    w.leaf(d.version, &notice.version.to_string());
    w.leaf(d.project_code, notice.project.code.as_str());
    w.leaf(d.project_name, notice.project.name.as_str());
    w.leaf(d.window_case_id, notice.window_case_id.as_str());
    w.leaf(d.status, code_of(dialect.joint_statuses, notice.status));
    w.leaf(d.opened_on, &dialect.dates.write(notice.opened_on));
    write_due_xml(dialect, w, &notice.due);
    w.leaf(d.calendar, notice.calendar.as_str());
    if let Some(container) = d.branches {
        w.open(container, &[]);
    }
    for branch in &notice.branches {
        w.open(d.branch, &[]);
        w.leaf(d.bureau, bureau_code(dialect, branch.bureau));
        w.leaf(d.item, &(dialect.item_text)(branch.item));
        w.leaf(d.required, code_of(dialect.yes_no, branch.required));
        w.leaf(d.status, code_of(dialect.branch_statuses, branch.status));
        w.leaf_opt(d.case_id, branch.case_id.as_ref().map(BureauCaseId::as_str));
        if let Some(due) = &branch.due {
            write_due_xml(dialect, w, due);
        }
        w.close(d.branch);
    }
    if let Some(container) = d.branches {
        w.close(container);
    }
}

/// Writes the deadline notice's body element's children.
pub(crate) fn write_deadline_xml(
    dialect: &Dialect,
    w: &mut XmlWriter,
    event: &Event,
    notice: &DeadlineNotice,
) {
    let d = &dialect.names;
    w.leaf(d.case_id, event.case_id.as_str());
    w.leaf(d.sequence, &event.sequence.to_string());
    w.leaf(d.item, &(dialect.item_text)(notice.item));
    w.leaf(d.project_code, notice.project.as_str());
    w.leaf(d.state, code_of(dialect.states, notice.state));
    w.leaf(d.working_days, &notice.working_days.to_string());
    write_due_xml(dialect, w, &notice.due);
    w.leaf(d.calendar, notice.calendar.as_str());
    w.leaf_opt(
        d.joint_case_id,
        notice.joint_case_id.as_ref().map(JointCaseId::as_str),
    );
}

// ---------------------------------------------------------------------------------------------
// JSON

const VERSION_BOUNDS: Bounds = bounds!(1, 4294967295);
const SEQUENCE_BOUNDS: Bounds = bounds!(1, 999999999999999999);
const DAYS_BOUNDS: Bounds = bounds!(0, 366);

impl Dialect {
    fn json_number<T>(
        &self,
        obj: &Obj<'_>,
        n: &mut Normalizer,
        field: F,
        key: &str,
        bounds: Bounds,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        match self.json {
            JsonScalars::Typed => obj.integer(n, field, key, bounds, parse),
            JsonScalars::Strings => obj.string(n, field, key, parse),
            JsonScalars::Lenient => obj.string_or_integer(n, field, key, bounds, parse),
        }
    }

    fn json_bool(&self, obj: &Obj<'_>, n: &mut Normalizer, field: F, key: &str) -> Option<bool> {
        match self.json {
            JsonScalars::Typed => obj.boolean(n, field, key),
            JsonScalars::Strings | JsonScalars::Lenient => {
                obj.string(n, field, key, |t| yes_no(self, t))
            }
        }
    }

    fn number_value(&self, number: u64) -> Value {
        match self.json {
            JsonScalars::Typed => Value::from(number),
            JsonScalars::Strings | JsonScalars::Lenient => Value::from(number.to_string()),
        }
    }

    fn bool_value(&self, yes: bool) -> Value {
        match self.json {
            JsonScalars::Typed => Value::Bool(yes),
            JsonScalars::Strings | JsonScalars::Lenient => Value::from(code_of(self.yes_no, yes)),
        }
    }

    /// The due date's two keys: `due` and `provisional`; `Some(None)` when optional and absent.
    fn read_due_json(
        &self,
        obj: &Obj<'_>,
        n: &mut Normalizer,
        field: F,
        required: bool,
    ) -> Option<Option<DueDate>> {
        let d = &self.names;
        let present = obj.map.contains_key(d.due) || obj.map.contains_key(d.provisional);
        if !required && !present {
            return Some(None);
        }
        let on = obj.string(n, field, d.due, |t| self.dates.parse(t));
        let provisional = self.json_bool(obj, n, field, d.provisional);
        Some(Some(DueDate {
            on: on?,
            provisional: provisional?,
        }))
    }

    fn due_entries(&self, due: &DueDate, out: &mut Ordered) {
        out.push(self.names.due, self.dates.write(due.on));
        out.push(self.names.provisional, self.bool_value(due.provisional));
    }
}

/// Reads the joint notice in `body` (the object under the dialect's `joint` key).
pub(crate) fn read_joint_json(
    dialect: &Dialect,
    body: &Obj<'_>,
    header: Header,
    n: &mut Normalizer,
) -> Option<Event> {
    let d = &dialect.names;
    let branches_key = d.branches.unwrap_or("branches");
    body.check_keys(
        &[
            d.joint_case_id,
            d.flow,
            d.version,
            d.project_code,
            d.project_name,
            d.window_case_id,
            d.status,
            d.opened_on,
            d.due,
            d.provisional,
            d.calendar,
            branches_key,
        ],
        n,
    );
    let mut values = JointValues {
        joint_case_id: body.string(n, F::JointCaseId, d.joint_case_id, JointCaseId::parse),
        flow: body.string(n, F::JointFlow, d.flow, FlowName::parse),
        version: dialect.json_number(
            body,
            n,
            F::JointVersion,
            d.version,
            VERSION_BOUNDS,
            parse_version,
        ),
        project_code: body.string(n, F::JointProjectCode, d.project_code, ProjectCode::parse),
        project_name: body.string(n, F::JointProjectName, d.project_name, Name::parse),
        window_case_id: body.string(
            n,
            F::JointWindowCaseId,
            d.window_case_id,
            BureauCaseId::parse,
        ),
        status: body.string(n, F::JointStatus, d.status, |t| {
            lookup(dialect.joint_statuses, t, "joint case status")
        }),
        opened_on: body.string(n, F::JointOpenedOn, d.opened_on, |t| dialect.dates.parse(t)),
        due: dialect
            .read_due_json(body, n, F::JointDue, true)
            .and_then(|due| due),
        calendar: body.string(n, F::JointCalendar, d.calendar, Name::parse),
        branches: None,
    };
    let items = body.objects(branches_key, F::JointBranches, n);
    let mut branches = Some(Vec::new());
    let mut objects = Vec::new();
    match items {
        Some(items) => {
            for item in items {
                let one = item.as_ref().and_then(|branch| {
                    branch.check_keys(
                        &[
                            d.bureau,
                            d.item,
                            d.required,
                            d.status,
                            d.case_id,
                            d.due,
                            d.provisional,
                        ],
                        n,
                    );
                    let bureau = branch.string(n, F::JointBranchBureau, d.bureau, |t| {
                        dialect.bureaus.parse(t, "bureau code")
                    });
                    let item = branch.string(n, F::JointBranchItem, d.item, dialect.parse_item);
                    let required = dialect.json_bool(branch, n, F::JointBranchRequired, d.required);
                    let status = branch.string(n, F::JointBranchStatus, d.status, |t| {
                        lookup(dialect.branch_statuses, t, "branch status")
                    });
                    let case_id =
                        branch.string_opt(n, F::JointBranchCaseId, d.case_id, BureauCaseId::parse);
                    let due = dialect.read_due_json(branch, n, F::JointBranchDue, false);
                    Some(JointBranch {
                        bureau: bureau?,
                        item: item?,
                        required: required?,
                        status: status?,
                        case_id: case_id?,
                        due: due?,
                    })
                });
                branches = branches.zip(one).map(|(mut all, one)| {
                    all.push(one);
                    all
                });
                objects.push(item);
            }
        }
        None => branches = None,
    }
    values.branches = branches;
    let branch_at = |i: usize, key: &str| match objects.get(i) {
        Some(Some(branch)) => branch.native(key),
        _ => body.native(branches_key),
    };
    joint_event(header, values, n, |part| match part {
        JointPart::Version => body.native(d.version),
        JointPart::Due => body.native(d.due),
        JointPart::Branches => NativeValue::new(body.native(branches_key).path, ""),
        JointPart::BranchItem(i) => branch_at(i, d.item),
        JointPart::BranchCaseId(i) => branch_at(i, d.case_id),
        JointPart::BranchDue(i) => branch_at(i, d.due),
    })
}

/// Reads the deadline notice in `body`.
pub(crate) fn read_deadline_json(
    dialect: &Dialect,
    body: &Obj<'_>,
    header: Header,
    n: &mut Normalizer,
) -> Option<Event> {
    let d = &dialect.names;
    body.check_keys(
        &[
            d.case_id,
            d.sequence,
            d.item,
            d.project_code,
            d.state,
            d.working_days,
            d.due,
            d.provisional,
            d.calendar,
            d.joint_case_id,
        ],
        n,
    );
    let values = DeadlineValues {
        case_id: body.string(n, F::CaseId, d.case_id, BureauCaseId::parse),
        sequence: dialect.json_number(
            body,
            n,
            F::Sequence,
            d.sequence,
            SEQUENCE_BOUNDS,
            parse_sequence,
        ),
        item: body.string(n, F::DeadlineItem, d.item, dialect.parse_item),
        project: body.string(n, F::DeadlineProject, d.project_code, ProjectCode::parse),
        state: body.string(n, F::DeadlineState, d.state, |t| {
            lookup(dialect.states, t, "deadline state")
        }),
        working_days: dialect.json_number(
            body,
            n,
            F::DeadlineWorkingDays,
            d.working_days,
            DAYS_BOUNDS,
            parse_deadline_days,
        ),
        due: dialect
            .read_due_json(body, n, F::DeadlineDue, true)
            .and_then(|due| due),
        calendar: body.string(n, F::DeadlineCalendar, d.calendar, Name::parse),
        joint_case_id: body.string_opt(
            n,
            F::DeadlineJointCaseId,
            d.joint_case_id,
            JointCaseId::parse,
        ),
    };
    deadline_event(header, values, n, || body.native(d.item))
}

/// A JSON value written in the format's documented key order (serde_json's map sorts keys).
pub(crate) enum Json {
    /// A scalar.
    Value(Value),
    /// An object, keys in order.
    Object(Ordered),
    /// An array of objects.
    Objects(Vec<Ordered>),
}

/// A JSON object whose keys keep the order they are pushed in.
pub(crate) struct Ordered(pub(crate) Vec<(&'static str, Json)>);

impl Ordered {
    pub(crate) fn push(&mut self, key: &'static str, value: impl Into<Value>) {
        self.0.push((key, Json::Value(value.into())));
    }
}

impl Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(value) => value.serialize(serializer),
            Self::Object(object) => object.serialize(serializer),
            Self::Objects(objects) => objects.serialize(serializer),
        }
    }
}

impl Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The body of a joint notice as a JSON object, keys in the documented order.
pub(crate) fn write_joint_json(dialect: &Dialect, notice: &JointNotice) -> Ordered {
    let d = &dialect.names;
    let mut out = Ordered(Vec::with_capacity(13));
    out.push(d.joint_case_id, notice.joint_case_id.as_str());
    out.push(d.flow, notice.flow.as_str());
    out.push(d.version, dialect.number_value(u64::from(notice.version)));
    out.push(d.project_code, notice.project.code.as_str());
    out.push(d.project_name, notice.project.name.as_str());
    out.push(d.window_case_id, notice.window_case_id.as_str());
    out.push(d.status, code_of(dialect.joint_statuses, notice.status));
    out.push(d.opened_on, dialect.dates.write(notice.opened_on));
    dialect.due_entries(&notice.due, &mut out);
    out.push(d.calendar, notice.calendar.as_str());
    let branches = notice
        .branches
        .iter()
        .map(|branch| {
            let mut b = Ordered(Vec::with_capacity(7));
            b.push(d.bureau, bureau_code(dialect, branch.bureau));
            b.push(d.item, (dialect.item_text)(branch.item).into_owned());
            b.push(d.required, dialect.bool_value(branch.required));
            b.push(d.status, code_of(dialect.branch_statuses, branch.status));
            if let Some(case_id) = &branch.case_id {
                b.push(d.case_id, case_id.as_str());
            }
            if let Some(due) = &branch.due {
                dialect.due_entries(due, &mut b);
            }
            b
        })
        .collect();
    out.0
        .push((d.branches.unwrap_or("branches"), Json::Objects(branches)));
    out
}

/// The body of a deadline notice as a JSON object.
pub(crate) fn write_deadline_json(
    dialect: &Dialect,
    event: &Event,
    notice: &DeadlineNotice,
) -> Ordered {
    let d = &dialect.names;
    let mut out = Ordered(Vec::with_capacity(10));
    out.push(d.case_id, event.case_id.as_str());
    out.push(d.sequence, dialect.number_value(event.sequence));
    out.push(d.item, (dialect.item_text)(notice.item).into_owned());
    out.push(d.project_code, notice.project.as_str());
    out.push(d.state, code_of(dialect.states, notice.state));
    out.push(
        d.working_days,
        dialect.number_value(u64::from(notice.working_days)),
    );
    dialect.due_entries(&notice.due, &mut out);
    out.push(d.calendar, notice.calendar.as_str());
    if let Some(id) = &notice.joint_case_id {
        out.push(d.joint_case_id, id.as_str());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Credit-list entries and match notices, for XML and JSON alike

/// Where a credit body's fields are read from: an XML element's children or a JSON object's
/// keys.
trait CreditSource {
    fn text<T>(
        &self,
        n: &mut Normalizer,
        field: F,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T>;
    fn optional<T>(
        &self,
        n: &mut Normalizer,
        field: F,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<Option<T>>;
    fn number<T>(
        &self,
        n: &mut Normalizer,
        field: F,
        name: &str,
        bounds: Bounds,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T>;
    fn native(&self, name: &str) -> NativeValue;
}

impl CreditSource for Fields<'_, '_> {
    fn text<T>(
        &self,
        n: &mut Normalizer,
        field: F,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        self.read(n, field, name, parse)
    }
    fn optional<T>(
        &self,
        n: &mut Normalizer,
        field: F,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        self.read_optional(n, field, name, parse)
    }
    fn number<T>(
        &self,
        n: &mut Normalizer,
        field: F,
        name: &str,
        _: Bounds,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        self.read(n, field, name, parse)
    }
    fn native(&self, name: &str) -> NativeValue {
        NativeValue::new(
            format!("{}/{name}", self.path),
            self.element.text_of(name).unwrap_or(""),
        )
    }
}

/// A JSON body with the dialect that says how its numbers are written.
struct JsonCredit<'o, 'a> {
    dialect: &'o Dialect,
    obj: &'o Obj<'a>,
}

impl CreditSource for JsonCredit<'_, '_> {
    fn text<T>(
        &self,
        n: &mut Normalizer,
        field: F,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        self.obj.string(n, field, name, parse)
    }
    fn optional<T>(
        &self,
        n: &mut Normalizer,
        field: F,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        self.obj.string_opt(n, field, name, parse)
    }
    fn number<T>(
        &self,
        n: &mut Normalizer,
        field: F,
        name: &str,
        bounds: Bounds,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        self.dialect
            .json_number(self.obj, n, field, name, bounds, parse)
    }
    fn native(&self, name: &str) -> NativeValue {
        self.obj.native(name)
    }
}

/// The names of an entry's fields, in the documented order.
fn credit_entry_names(d: &Names) -> [&'static str; 13] {
    [
        d.entry_id,
        d.version,
        d.list,
        d.subject_name,
        d.credit_code,
        d.measures,
        d.issued_by,
        d.legal_basis,
        d.document_number,
        d.valid_from,
        d.valid_to,
        d.removed_on,
        d.removal_reason,
    ]
}

/// The names of a match notice's fields: the case's, then the entry's.
fn credit_match_names(d: &Names) -> Vec<&'static str> {
    let mut names = vec![d.case_id, d.sequence, d.item, d.project_code, d.publisher];
    names.extend(credit_entry_names(d));
    names
}

/// Reads an entry's fields and checks its rules, each broken one at its field.
fn read_credit_entry(
    dialect: &Dialect,
    src: &impl CreditSource,
    n: &mut Normalizer,
) -> Option<CreditEntry> {
    let d = &dialect.names;
    let entry_id = src.text(n, F::CreditEntryId, d.entry_id, BureauCaseId::parse);
    let version = src.number(
        n,
        F::CreditVersion,
        d.version,
        VERSION_BOUNDS,
        parse_credit_version,
    );
    let list = src.text(n, F::CreditList, d.list, |t| {
        lookup(dialect.lists, t, "credit list")
    });
    let subject_name = src.text(n, F::CreditSubjectName, d.subject_name, Name::parse);
    let credit_code = src.text(
        n,
        F::CreditSubjectCode,
        d.credit_code,
        schemas::CreditCode::parse,
    );
    let measures = src.text(n, F::CreditMeasures, d.measures, CreditText::parse);
    let issued_by = src.text(n, F::CreditIssuedBy, d.issued_by, Name::parse);
    let legal_basis = src.text(n, F::CreditLegalBasis, d.legal_basis, CreditText::parse);
    let document_number = src.text(n, F::CreditDocumentNumber, d.document_number, Name::parse);
    let valid_from = src.text(n, F::CreditValidFrom, d.valid_from, |t| {
        dialect.dates.parse(t)
    });
    let valid_to = src.optional(n, F::CreditValidTo, d.valid_to, |t| dialect.dates.parse(t));
    let removed_on = src.optional(n, F::CreditRemovedOn, d.removed_on, |t| {
        dialect.dates.parse(t)
    });
    let reason = src.optional(
        n,
        F::CreditRemovalReason,
        d.removal_reason,
        CreditText::parse,
    );
    let removal = match (removed_on, reason) {
        (Some(Some(on)), Some(Some(reason))) => Some(Some(CreditRemoval { on, reason })),
        (Some(None), Some(None)) => Some(None),
        (Some(Some(_)), Some(None)) => {
            let at = src.native(d.removal_reason);
            n.reject(F::CreditRemovalReason, at.path, "", Problem::Missing);
            None
        }
        (Some(None), Some(Some(_))) => {
            let at = src.native(d.removed_on);
            n.reject(F::CreditRemovedOn, at.path, "", Problem::Missing);
            None
        }
        _ => None,
    };
    let entry = CreditEntry {
        entry_id: entry_id?,
        version: version?,
        list: list?,
        subject: Organization {
            name: subject_name?,
            credit_code: credit_code?,
        },
        measures: measures?,
        issued_by: issued_by?,
        legal_basis: legal_basis?,
        document_number: document_number?,
        valid_from: valid_from?,
        valid_to: valid_to?,
        removal: removal?,
    };
    for violation in entry.violations() {
        let at = src.native(match violation.part {
            CreditPart::ValidTo => d.valid_to,
            CreditPart::RemovedOn => d.removed_on,
        });
        n.reject(violation.field, at.path, at.text, violation.problem);
    }
    Some(entry)
}

/// Reads a credit-list entry's body into its event (the header's sender is the publisher).
fn read_credit(
    dialect: &Dialect,
    src: &impl CreditSource,
    header: Header,
    n: &mut Normalizer,
) -> Option<Event> {
    let entry = read_credit_entry(dialect, src, n);
    if !n.is_clean() {
        return None;
    }
    Some(Event::for_credit(
        header.message_id?,
        header.source?,
        header.occurred_at?,
        entry?,
    ))
}

/// Reads a match notice's body into its event (the header's sender is the case's bureau).
fn read_credit_match(
    dialect: &Dialect,
    src: &impl CreditSource,
    header: Header,
    n: &mut Normalizer,
) -> Option<Event> {
    let d = &dialect.names;
    let case_id = src.text(n, F::CaseId, d.case_id, BureauCaseId::parse);
    let sequence = src.number(n, F::Sequence, d.sequence, SEQUENCE_BOUNDS, parse_sequence);
    let item = src.text(n, F::CreditMatchItem, d.item, dialect.parse_item);
    let project = src.text(n, F::CreditMatchProject, d.project_code, ProjectCode::parse);
    let publisher = src.text(n, F::CreditPublisher, d.publisher, |t| {
        dialect.bureaus.parse(t, "bureau code")
    });
    let entry = read_credit_entry(dialect, src, n);
    if !n.is_clean() {
        return None;
    }
    Some(Event::for_credit_match(
        header.message_id?,
        header.source?,
        case_id?,
        sequence?,
        header.occurred_at?,
        CreditMatch {
            publisher: publisher?,
            entry: entry?,
            item: item?,
            project: project?,
        },
    ))
}

/// A credit body's fields are plain values: an attribute on any is refused at its path.
fn check_leaf_attributes(body: &Element<'_>, path: &str, n: &mut Normalizer) {
    for child in &body.children {
        child.check_attributes(&format!("{path}/{}", child.name), &[], n);
    }
}

/// Reads the credit-list entry in `body` (at `path`).
pub(crate) fn read_credit_xml(
    dialect: &Dialect,
    body: &Element<'_>,
    path: &str,
    attributes: &[&str],
    header: Header,
    n: &mut Normalizer,
) -> Option<Event> {
    body.check_attributes(path, attributes, n);
    body.check_children(path, &credit_entry_names(&dialect.names), &[], n);
    check_leaf_attributes(body, path, n);
    let src = Fields {
        element: body,
        path: path.into(),
    };
    read_credit(dialect, &src, header, n)
}

/// Reads the credit match notice in `body` (at `path`).
pub(crate) fn read_credit_match_xml(
    dialect: &Dialect,
    body: &Element<'_>,
    path: &str,
    attributes: &[&str],
    header: Header,
    n: &mut Normalizer,
) -> Option<Event> {
    body.check_attributes(path, attributes, n);
    body.check_children(path, &credit_match_names(&dialect.names), &[], n);
    check_leaf_attributes(body, path, n);
    let src = Fields {
        element: body,
        path: path.into(),
    };
    read_credit_match(dialect, &src, header, n)
}

/// Reads the credit-list entry in `body` (the object under the dialect's `credit` key).
pub(crate) fn read_credit_json(
    dialect: &Dialect,
    body: &Obj<'_>,
    header: Header,
    n: &mut Normalizer,
) -> Option<Event> {
    body.check_keys(&credit_entry_names(&dialect.names), n);
    read_credit(dialect, &JsonCredit { dialect, obj: body }, header, n)
}

/// Reads the credit match notice in `body`.
pub(crate) fn read_credit_match_json(
    dialect: &Dialect,
    body: &Obj<'_>,
    header: Header,
    n: &mut Normalizer,
) -> Option<Event> {
    body.check_keys(&credit_match_names(&dialect.names), n);
    read_credit_match(dialect, &JsonCredit { dialect, obj: body }, header, n)
}

/// Where a credit body's fields are written: XML leaves or JSON keys.
trait CreditSink {
    fn text(&mut self, name: &'static str, text: &str);
    fn number(&mut self, name: &'static str, number: u64);
}

impl CreditSink for XmlWriter {
    fn text(&mut self, name: &'static str, text: &str) {
        self.leaf(name, text);
    }
    fn number(&mut self, name: &'static str, number: u64) {
        self.leaf(name, &number.to_string());
    }
}

struct JsonSink<'d> {
    dialect: &'d Dialect,
    out: Ordered,
}

impl CreditSink for JsonSink<'_> {
    fn text(&mut self, name: &'static str, text: &str) {
        self.out.push(name, text);
    }
    fn number(&mut self, name: &'static str, number: u64) {
        let value = self.dialect.number_value(number);
        self.out.push(name, value);
    }
}

fn write_credit_entry(dialect: &Dialect, out: &mut impl CreditSink, entry: &CreditEntry) {
    let d = &dialect.names;
    out.text(d.entry_id, entry.entry_id.as_str());
    out.number(d.version, u64::from(entry.version));
    out.text(d.list, code_of(dialect.lists, entry.list));
    out.text(d.subject_name, entry.subject.name.as_str());
    out.text(d.credit_code, entry.subject.credit_code.as_str());
    out.text(d.measures, entry.measures.as_str());
    out.text(d.issued_by, entry.issued_by.as_str());
    out.text(d.legal_basis, entry.legal_basis.as_str());
    out.text(d.document_number, entry.document_number.as_str());
    out.text(d.valid_from, &dialect.dates.write(entry.valid_from));
    if let Some(to) = entry.valid_to {
        out.text(d.valid_to, &dialect.dates.write(to));
    }
    if let Some(removal) = &entry.removal {
        out.text(d.removed_on, &dialect.dates.write(removal.on));
        out.text(d.removal_reason, removal.reason.as_str());
    }
}

fn write_credit_match(
    dialect: &Dialect,
    out: &mut impl CreditSink,
    event: &Event,
    notice: &CreditMatch,
) {
    let d = &dialect.names;
    out.text(d.case_id, event.case_id.as_str());
    out.number(d.sequence, event.sequence);
    out.text(d.item, &(dialect.item_text)(notice.item));
    out.text(d.project_code, notice.project.as_str());
    out.text(d.publisher, bureau_code(dialect, notice.publisher));
    write_credit_entry(dialect, out, &notice.entry);
}

/// Writes the body element's children of a credit-list entry or match notice (the caller opened
/// the body, named by the dialect's `credit` or `credit_match`, and closes it).
pub(crate) fn write_credit_xml(dialect: &Dialect, w: &mut XmlWriter, event: &Event) {
    match &event.payload {
        Payload::Credit(entry) => write_credit_entry(dialect, w, entry),
        Payload::CreditMatch(notice) => write_credit_match(dialect, w, event, notice),
        _ => {}
    }
}

/// The body of a credit-list entry or match notice as a JSON object.
pub(crate) fn write_credit_json(dialect: &Dialect, event: &Event) -> Ordered {
    let mut sink = JsonSink {
        dialect,
        out: Ordered(Vec::with_capacity(18)),
    };
    match &event.payload {
        Payload::Credit(entry) => write_credit_entry(dialect, &mut sink, entry),
        Payload::CreditMatch(notice) => write_credit_match(dialect, &mut sink, event, notice),
        _ => {}
    }
    sink.out
}

/// Reads the notice under `key` of a JSON format, whichever of the four the key names (a key
/// that names none is read as a deadline notice, whose body then fails its checks).
pub(crate) fn read_notice_json(
    dialect: &Dialect,
    key: &str,
    body: &Obj<'_>,
    header: Header,
    n: &mut Normalizer,
) -> Option<Event> {
    let d = &dialect.names;
    if key == d.joint {
        read_joint_json(dialect, body, header, n)
    } else if key == d.credit {
        read_credit_json(dialect, body, header, n)
    } else if key == d.credit_match {
        read_credit_match_json(dialect, body, header, n)
    } else {
        read_deadline_json(dialect, body, header, n)
    }
}

/// The body key and body of a notice event in a JSON format; `None` for a case or a survey
/// notice, which each format writes itself.
pub(crate) fn write_notice_json(
    dialect: &Dialect,
    event: &Event,
) -> Option<(&'static str, Ordered)> {
    let d = &dialect.names;
    Some(match &event.payload {
        Payload::Joint(notice) => (d.joint, write_joint_json(dialect, notice)),
        Payload::Deadline(notice) => (d.deadline, write_deadline_json(dialect, event, notice)),
        Payload::Credit(_) => (d.credit, write_credit_json(dialect, event)),
        Payload::CreditMatch(_) => (d.credit_match, write_credit_json(dialect, event)),
        Payload::Case(_) | Payload::Survey(_) => return None,
    })
}

/// The gateway's own API spells an entry with the canonical names and codes (what
/// `POST /v1/credit/entries` takes, one entry per line): snake_case keys, canonical list codes,
/// ISO dates, JSON integers. Only its credit names are read; the rest complete the dialect.
const CANONICAL: Dialect = Dialect {
    names: Names {
        joint: "joint",
        deadline: "deadline",
        joint_case_id: "joint_case_id",
        flow: "flow",
        version: "version",
        project_code: "project",
        project_name: "project_name",
        window_case_id: "window_case_id",
        status: "status",
        opened_on: "opened_on",
        due: "due",
        provisional: "provisional",
        calendar: "calendar",
        branches: Some("branches"),
        branch: "branch",
        bureau: "bureau",
        item: "item",
        required: "required",
        case_id: "case_id",
        sequence: "sequence",
        state: "state",
        working_days: "working_days",
        credit: "credit",
        credit_match: "credit_match",
        entry_id: "entry_id",
        list: "list",
        subject_name: "subject_name",
        credit_code: "credit_code",
        measures: "measures",
        issued_by: "issued_by",
        legal_basis: "legal_basis",
        document_number: "document_number",
        valid_from: "valid_from",
        valid_to: "valid_to",
        removed_on: "removed_on",
        removal_reason: "removal_reason",
        publisher: "publisher",
    },
    bureaus: BureauSpelling::Id,
    item_text: item_code,
    parse_item: Item::parse_code,
    joint_statuses: &[
        (JointStatus::Open, "open"),
        (JointStatus::Approved, "approved"),
        (JointStatus::Rejected, "rejected"),
        (JointStatus::Withdrawn, "withdrawn"),
        (JointStatus::Terminated, "terminated"),
    ],
    branch_statuses: &[
        (BranchStatus::Waiting, "waiting"),
        (BranchStatus::Submitted, "submitted"),
        (BranchStatus::Accepted, "accepted"),
        (BranchStatus::SupplementRequested, "supplement_requested"),
        (BranchStatus::Approved, "approved"),
        (BranchStatus::Rejected, "rejected"),
        (BranchStatus::Withdrawn, "withdrawn"),
    ],
    states: &[
        (DeadlineState::Approaching, "approaching"),
        (DeadlineState::Passed, "passed"),
    ],
    lists: &[
        (CreditList::Dishonest, "dishonest"),
        (CreditList::KeySupervision, "key_supervision"),
        (CreditList::Red, "red"),
    ],
    yes_no: &[(true, "true"), (false, "false")],
    dates: DateStyle::Iso,
    json: JsonScalars::Typed,
};

/// Reads one entry of a bulk upload (one line of `POST /v1/credit/entries`): a JSON object with
/// the canonical names, strict like every format (a key given twice, an unknown key, a wrong
/// type, a value out of its rules: each refused at its JSON pointer).
pub fn read_credit_upload(line: &[u8]) -> Result<CreditEntry, crate::DecodeError> {
    let value = crate::json::parse_upload(line)?;
    let mut n = Normalizer::new();
    let entry = Obj::root(&value, &mut n).and_then(|obj| {
        obj.check_keys(&credit_entry_names(&CANONICAL.names), &mut n);
        read_credit_entry(
            &CANONICAL,
            &JsonCredit {
                dialect: &CANONICAL,
                obj: &obj,
            },
            &mut n,
        )
    });
    n.finish(|| entry).map_err(crate::DecodeError::Invalid)
}

/// The canonical upload line of `entry` (what [`read_credit_upload`] reads back).
pub fn write_credit_upload(entry: &CreditEntry) -> String {
    let mut sink = JsonSink {
        dialect: &CANONICAL,
        out: Ordered(Vec::with_capacity(13)),
    };
    write_credit_entry(&CANONICAL, &mut sink, entry);
    serde_json::to_string(&sink.out).unwrap_or_default()
}

/// The item's canonical snake_case code, for dialects that write it.
pub(crate) fn item_code(item: Item) -> Cow<'static, str> {
    Cow::Borrowed(item.code())
}

/// The item's canonical code in upper case.
pub(crate) fn item_code_upper(item: Item) -> Cow<'static, str> {
    Cow::Owned(item.code().to_ascii_uppercase())
}

/// Parses an item's code in upper case (`CIVIL_DEFENSE_DESIGN_REVIEW`).
pub(crate) fn parse_item_code_upper(text: &str) -> Result<Item, Problem> {
    let text = clean(text);
    if text.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(Problem::UnknownCode {
            vocabulary: "item code (upper case)",
        });
    }
    Item::parse_code(&text.to_ascii_lowercase())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every table of a dialect names every value once, and no two values alike.
    pub(crate) fn dialect_tables_are_complete(dialect: &Dialect) {
        fn distinct<T: Copy + PartialEq + std::fmt::Debug>(
            table: &[(T, &'static str)],
            all: &[T],
            what: &str,
        ) {
            for value in all {
                assert_eq!(
                    table.iter().filter(|(v, _)| v == value).count(),
                    1,
                    "the {what} table names {value:?} once"
                );
            }
            for (i, (_, code)) in table.iter().enumerate() {
                assert!(
                    !table[..i].iter().any(|(_, c)| c == code),
                    "the {what} table spells {code:?} twice"
                );
            }
        }
        distinct(dialect.joint_statuses, &JointStatus::ALL, "joint status");
        distinct(dialect.branch_statuses, &BranchStatus::ALL, "branch status");
        distinct(dialect.states, &DeadlineState::ALL, "deadline state");
        distinct(dialect.lists, &CreditList::ALL, "credit list");
        distinct(dialect.yes_no, &[true, false], "yes/no");
        for item in Item::ALL {
            assert_eq!(
                (dialect.parse_item)(&(dialect.item_text)(item)),
                Ok(item),
                "item {item:?} reads back"
            );
        }
    }
}
