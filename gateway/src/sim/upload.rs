//! What a publisher sends to `POST /v1/surveys`: the metadata part (figures as native texts
//! with their units) and the files, as one `multipart/form-data` body; and what a listing
//! department sends to `POST /v1/credit/entries`: one JSON entry per line.

/// A file to upload: its name, media type and content.
pub type UploadFile = (String, String, Vec<u8>);

/// A `multipart/form-data` body: the metadata part, then one part per file.
pub fn survey_upload(metadata: &serde_json::Value, files: &[UploadFile]) -> (String, Vec<u8>) {
    let boundary = format!("survey-{}", uuid::Uuid::now_v7().simple());
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(metadata.to_string().as_bytes());
    for (name, media_type, content) in files {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {media_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The metadata of a survey result as a publisher sends it: values with their units.
pub fn survey_metadata(result: &schemas::SurveyResult) -> serde_json::Value {
    let figures: Vec<serde_json::Value> = result
        .figures
        .iter()
        .map(|f| {
            let unit = match f.name.unit_symbol() {
                "count" => "",
                unit => unit,
            };
            serde_json::json!({
                "name": crate::vocabulary::name(&f.name),
                "value": format!("{}{unit}", schemas::FigureName::value_text(&f.quantity)),
            })
        })
        .collect();
    serde_json::json!({
        "project": result.project.as_str(),
        "kind": crate::vocabulary::name(&result.kind),
        "agency": {
            "name": result.agency.name.as_str(),
            "credit_code": result.agency.credit_code.as_str(),
        },
        "surveyed_on": result.surveyed_on.to_string(),
        "figures": figures,
    })
}

/// One line of a credit-list upload as a listing department writes it: `entry_id` at `version`
/// on `list` (`dishonest`, `key_supervision`, `red`), listing the enterprise `credit_code` from
/// `valid_from` (`YYYY-MM-DD`), with a subject name, measures, issuer, legal basis and document
/// number of the housing and construction commission.
pub fn credit_line(
    entry_id: &str,
    version: u32,
    list: &str,
    credit_code: &str,
    valid_from: &str,
) -> serde_json::Value {
    serde_json::json!({
        "entry_id": entry_id, "version": version, "list": list,
        "subject_name": "上海某某建设工程有限公司", "credit_code": credit_code,
        "measures": "限制参与政府投资项目招标；不适用容缺后补",
        "issued_by": "上海市住房和城乡建设管理委员会",
        "legal_basis": "《上海市社会信用条例》第三十条",
        "document_number": "沪建信〔2026〕12号",
        "valid_from": valid_from
    })
}

/// A credit-list upload's body (`application/x-ndjson`): one line per entry.
pub fn credit_upload(lines: &[serde_json::Value]) -> Vec<u8> {
    let mut body = Vec::new();
    for line in lines {
        body.extend_from_slice(line.to_string().as_bytes());
        body.push(b'\n');
    }
    body
}
