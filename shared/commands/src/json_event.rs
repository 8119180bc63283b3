//! CloudEvents in the CloudEvents JSON format (as the HTTP API takes them)
//! → the CloudEvents protobuf format (as commands carry and storage keeps
//! them). One home for the conversion: the HTTP function and the client's
//! async submit both use it, so an event means the same on either path.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::DateTime;
use evidentsource_domain::{Error, quote};
use evidentsource_proto::{
    Timestamp,
    cloudevents::{
        CloudEvent,
        cloud_event::{CloudEventAttributeValue, Data, cloud_event_attribute_value::Attr},
    },
};
use serde_json::Value;

/// Whether data of this content type is JSON (none means JSON, as in the
/// CloudEvents JSON format).
pub fn is_json(content_type: Option<&str>) -> bool {
    match content_type {
        None => true,
        Some(ct) => {
            let ct = ct.split(';').next().unwrap_or("").trim();
            ct == "application/json" || ct == "text/json" || ct.ends_with("+json")
        }
    }
}

/// One event in the CloudEvents JSON format → the CloudEvents protobuf format.
pub fn cloudevent_from_json(value: Value) -> Result<CloudEvent, Error> {
    let Value::Object(mut fields) = value else {
        return Err(Error::invalid_argument(
            "",
            "must be a JSON object (a CloudEvent)",
        ));
    };
    let mut string = |name: &str, required: bool| -> Result<Option<String>, Error> {
        match fields.remove(name) {
            None | Some(Value::Null) if !required => Ok(None),
            None | Some(Value::Null) => Err(Error::invalid_argument(name, "is required")),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::invalid_argument(name, "must be a string")),
        }
    };
    let spec_version = string("specversion", true)?.unwrap_or_default();
    let id = string("id", true)?.unwrap_or_default();
    let source = string("source", true)?.unwrap_or_default();
    let r#type = string("type", true)?.unwrap_or_default();
    let subject = string("subject", false)?;
    let time = string("time", false)?;
    let datacontenttype = string("datacontenttype", false)?;
    let dataschema = string("dataschema", false)?;
    let data_base64 = string("data_base64", false)?;
    let data = fields.remove("data");

    let mut attributes = BTreeMap::new();
    let mut put = |name: &str, attr: Attr| {
        attributes.insert(
            name.to_owned(),
            CloudEventAttributeValue { attr: Some(attr) },
        );
    };
    if let Some(s) = subject {
        put("subject", Attr::CeString(s));
    }
    if let Some(t) = time {
        let parsed = DateTime::parse_from_rfc3339(&t).map_err(|_| {
            Error::invalid_argument(
                "time",
                format!("{} is not an RFC 3339 timestamp", quote(&t)),
            )
        })?;
        put(
            "time",
            Attr::CeTimestamp(Timestamp {
                seconds: parsed.timestamp(),
                nanos: parsed.timestamp_subsec_nanos() as i32,
            }),
        );
    }
    if let Some(ct) = &datacontenttype {
        put("datacontenttype", Attr::CeString(ct.clone()));
    }
    if let Some(s) = dataschema {
        put("dataschema", Attr::CeUri(s));
    }
    for (name, value) in fields {
        let attr = match value {
            Value::String(s) => Attr::CeString(s),
            Value::Bool(b) => Attr::CeBoolean(b),
            Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
                Some(i) => Attr::CeInteger(i),
                None => {
                    return Err(Error::invalid_argument(
                        name,
                        "CloudEvents integers are 32-bit; send larger numbers as strings",
                    ));
                }
            },
            _ => {
                return Err(Error::invalid_argument(
                    name,
                    "extension attributes are strings, booleans or integers",
                ));
            }
        };
        put(&name, attr);
    }

    let data = match (data, data_base64) {
        (Some(Value::Null) | None, None) => None,
        (Some(d), Some(_)) if !d.is_null() => {
            return Err(Error::invalid_argument(
                "data_base64",
                "an event has data or data_base64, not both",
            ));
        }
        (_, Some(b64)) => {
            Some(Data::BinaryData(STANDARD.decode(b64.as_bytes()).map_err(
                |_| Error::invalid_argument("data_base64", "is not valid base64"),
            )?))
        }
        (Some(Value::String(s)), None) if !is_json(datacontenttype.as_deref()) => {
            Some(Data::TextData(s))
        }
        (Some(d), None) => Some(Data::TextData(d.to_string())),
    };
    Ok(CloudEvent {
        id,
        source,
        spec_version,
        r#type,
        attributes,
        data,
    })
}
