//! What a publisher sends to `POST /v1/surveys`: the metadata part (figures as native texts
//! with their units) and the files, as one `multipart/form-data` body.

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
