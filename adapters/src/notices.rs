//! The gateway's own notices — joint cases (one-stop parallel approval) and deadline notices —
//! read and written once for every format, spelt each bureau's way.
//!
//! A bureau's format says how it spells a notice in a [`Dialect`]: the element or key name of
//! every field, its code for every status and bureau, its item names, its date style, how it
//! writes a yes or no and (JSON) whether numbers are integers or strings. The reading and
//! writing themselves, and the rules of the canonical model (`schemas::joint`), are here, so a
//! format's notice support is its dialect, its header and one dispatch line each way; the
//! conformance kit checks every dialect like the rest of the format.
//!
//! The window bureau of a joint notice is the message's sender; the bureau a deadline notice is
//! about is its sender too.

use std::borrow::Cow;

use schemas::joint::{JointPart, parse_deadline_days};
use schemas::model::parse_sequence;
use schemas::survey::parse_version;
use schemas::text::clean;
use schemas::{
    BranchStatus, BureauCaseId, BureauId, CanonicalField as F, DeadlineNotice, DeadlineState,
    DueDate, Event, FlowName, Item, JointBranch, JointCaseId, JointNotice, JointStatus, MessageId,
    Name, NativeValue, Normalizer, Problem, Project, ProjectCode, ShanghaiDate, ShanghaiTime,
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
