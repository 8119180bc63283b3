//! The stream event source's filter in `template.yaml` against the table's
//! schema: it must let through exactly the records [`classify`] publishes
//! (the head item's inserts and modifications), by the head item's sort
//! key, or head records are lost (a gap) or the function is invoked for
//! every chunk.

use evidentsource_stream_publisher::record::PUBLISHED_EVENT_NAMES;
use evidentsource_table_schema::{attribute, keys};
use serde_json::{Value, json};
use yaml_rust2::YamlLoader;

fn template_filters() -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let filters = &docs[0]["Resources"]["StreamPublisherEventSource"]["Properties"]["FilterCriteria"]
        ["Filters"];
    filters
        .as_vec()
        .expect("StreamPublisherEventSource has FilterCriteria.Filters")
        .iter()
        .map(|f| {
            let pattern = f["Pattern"]
                .as_str()
                .expect("a filter's Pattern is a string");
            serde_json::from_str(pattern).expect("a filter's Pattern is JSON")
        })
        .collect()
}

#[test]
fn the_stream_filter_is_the_head_items_changes() {
    let expected = json!({
        "eventName": PUBLISHED_EVENT_NAMES,
        "dynamodb": {"Keys": {attribute::SK: {"S": [keys::HEAD_SK]}}},
    });
    assert_eq!(template_filters(), vec![expected]);
}
