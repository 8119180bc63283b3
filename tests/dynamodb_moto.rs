//! An item written to moto with aws-sdk-dynamodb reads back identical.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use evidentsource_local_servers::{dynamodb_client, shared, unique_name};

#[tokio::test]
async fn write_and_read_an_item() {
    let client = dynamodb_client(&shared().dynamodb_endpoint);
    let table = unique_name("table");
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let item = [
        ("pk".to_string(), AttributeValue::S("db#accounts".into())),
        ("revision".to_string(), AttributeValue::N("150".into())),
        (
            "events".to_string(),
            AttributeValue::B(vec![0, 1, 2, 255].into()),
        ),
    ];
    client
        .put_item()
        .table_name(&table)
        .set_item(Some(item.clone().into()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .unwrap();

    let got = client
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("db#accounts".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(got.item, Some(item.into()));

    // The condition is enforced: a second put of the same key fails.
    let again = client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("db#accounts".into()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    let err = again.unwrap_err().into_service_error();
    assert!(err.is_conditional_check_failed_exception(), "{err:?}");

    client
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
}
