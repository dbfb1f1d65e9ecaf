//! Canonical names of closed vocabularies (items, stages, event kinds, survey kinds, figure
//! names): the serialized name of a value, e.g. `construction_planning_permit`. Configuration,
//! routing explanations, store columns, metric labels and the demo all speak these names, so
//! they are read here once, from the canonical model's own serialization.

/// A value's canonical (serialized) name, e.g. `construction_planning_permit`.
pub fn name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::from("?"),
    }
}

/// A value of a closed vocabulary by its canonical name; `None` for a name it does not have.
pub fn by_name<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::{Item, SurveyKind};

    #[test]
    fn names_round_trip_and_strangers_are_none() {
        let item = Item::ConstructionPlanningPermit;
        assert_eq!(name(&item), "construction_planning_permit");
        assert_eq!(by_name::<Item>(&name(&item)), Some(item));
        assert_eq!(by_name::<SurveyKind>("no_such_kind"), None);
    }
}
