use chrono::{DateTime, Utc};
use cloudevents::{AttributesWriter, Data, Event, event::ExtensionValue};
use rdkafka::message::{Headers, Message};

use crate::{CE_PREFIX, CONTENT_TYPE, DecodeError, ext};

/// Decodes a message from rdkafka (borrowed or owned) into a CloudEvent.
pub fn decode_message<M: Message>(message: &M) -> Result<Event, DecodeError> {
    let headers = message.headers();
    let iter = headers
        .into_iter()
        .flat_map(|h| h.iter())
        .map(|h| (h.key, h.value));
    decode(iter, message.payload())
}

/// Decodes binary-mode headers and value into a CloudEvent.
///
/// Headers that are neither `ce_*` nor `content-type` are ignored (they
/// belong to the transport). A null or empty value means no data.
pub fn decode<'a>(
    headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    value: Option<&[u8]>,
) -> Result<Event, DecodeError> {
    let mut content_type: Option<&str> = None;
    // (attribute name, value); few enough that a linear scan beats a map.
    let mut attributes: Vec<(&str, &str)> = Vec::with_capacity(12);

    for (key, raw) in headers {
        let name = if key == CONTENT_TYPE {
            None
        } else if let Some(name) = key.strip_prefix(CE_PREFIX) {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(DecodeError::InvalidAttributeName {
                    header: key.to_owned(),
                });
            }
            Some(name)
        } else {
            continue;
        };
        let raw = raw.ok_or_else(|| DecodeError::NullHeader {
            header: key.to_owned(),
        })?;
        let text = std::str::from_utf8(raw).map_err(|_| DecodeError::NotUtf8 {
            header: key.to_owned(),
        })?;
        let duplicate = match name {
            None => content_type.replace(text).is_some(),
            Some(name) => {
                let seen = attributes.iter().any(|(n, _)| *n == name);
                attributes.push((name, text));
                seen
            }
        };
        if duplicate {
            return Err(DecodeError::DuplicateHeader {
                header: key.to_owned(),
            });
        }
    }

    let take = |name: &str| attributes.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let required = |header: &'static str| -> Result<&str, DecodeError> {
        let value =
            take(&header[CE_PREFIX.len()..]).ok_or(DecodeError::MissingHeader { header })?;
        if value.is_empty() {
            return Err(DecodeError::EmptyValue {
                header,
                value: value.to_owned(),
            });
        }
        Ok(value)
    };

    let specversion = required("ce_specversion")?;
    if specversion != "1.0" {
        return Err(DecodeError::UnsupportedSpecVersion {
            value: specversion.to_owned(),
        });
    }
    let mut event = Event::default();
    event.set_id(required("ce_id")?);
    event.set_source(required("ce_source")?);
    event.set_type(required("ce_type")?);
    event.set_time(take("time").map(|t| parse_time("ce_time", t)).transpose()?);
    event.set_subject(take("subject"));

    let datacontenttype = match (take("datacontenttype"), content_type) {
        (Some(ce), Some(ct)) if ce != ct => {
            return Err(DecodeError::ConflictingContentType {
                content_type: ct.to_owned(),
                datacontenttype: ce.to_owned(),
            });
        }
        (ce, ct) => ce.or(ct),
    };
    event.set_datacontenttype(datacontenttype);

    let dataschema = take("dataschema")
        .map(|s| {
            url::Url::parse(s).map_err(|_| DecodeError::BadUri {
                header: "ce_dataschema".into(),
                value: s.to_owned(),
            })
        })
        .transpose()?;
    event.set_dataschema(dataschema);

    const CORE: [&str; 8] = [
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "datacontenttype",
        "dataschema",
        "subject",
    ];
    for (name, value) in attributes.iter().filter(|(n, _)| !CORE.contains(n)) {
        if ext::U64_EXTENSIONS.contains(name) {
            ext::parse_u64(&format!("{CE_PREFIX}{name}"), value)?;
        }
        event.set_extension(name, ExtensionValue::String((*value).to_owned()));
    }

    if let Some(value) = value.filter(|v| !v.is_empty()) {
        event.set_data_unchecked(Data::Binary(value.to_vec()));
    }
    Ok(event)
}

fn parse_time(header: &str, value: &str) -> Result<DateTime<Utc>, DecodeError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DecodeError::BadTime {
            header: header.to_owned(),
            value: value.to_owned(),
        })
}
