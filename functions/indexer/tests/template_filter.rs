//! The indexer's event source filter in `template.yaml` against the
//! table's schema: the head item's changes (the publisher's filter, the
//! same names) and active heads only, or the indexer misses commits or is
//! invoked for every chunk and tombstone.

use evidentsource_table_schema::{HeadState, attribute, keys, stream};
use serde_json::{Value, json};
use yaml_rust2::YamlLoader;

fn template_filters(source: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    docs[0]["Resources"][source]["Properties"]["FilterCriteria"]["Filters"]
        .as_vec()
        .unwrap_or_else(|| panic!("{source} has FilterCriteria.Filters"))
        .iter()
        .map(|f| serde_json::from_str(f["Pattern"].as_str().unwrap()).unwrap())
        .collect()
}

#[test]
fn the_indexer_filter_is_the_active_head_items_changes() {
    let expected = json!({
        "eventName": stream::HEAD_CHANGE_EVENT_NAMES,
        "dynamodb": {
            "Keys": {attribute::SK: {"S": [keys::HEAD_SK]}},
            "NewImage": {attribute::STATE: {"S": [HeadState::Active.as_str()]}},
        },
    });
    assert_eq!(template_filters("IndexerEventSource"), vec![expected]);
}
