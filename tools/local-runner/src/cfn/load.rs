//! YAML as CloudFormation writes it: the short-form intrinsic tags (`!Ref`,
//! `!If`, `!GetAtt`, ...) kept, as their long form.

use yaml_rust2::{
    Yaml,
    parser::{Event, MarkedEventReceiver, Parser, Tag},
    scanner::{Marker, TScalarStyle},
    yaml::Hash,
};

/// Reads YAML keeping CloudFormation's short-form tags as the long form
/// (`!If [c, a, b]` → `{"Fn::If": [c, a, b]}`); yaml-rust2's own loader
/// drops tags on sequences, which would make `!If` a plain list.
pub fn load(text: &str) -> Result<Yaml, String> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| e.to_string())?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    builder.doc.ok_or_else(|| "empty template".to_owned())
}

#[derive(Default)]
struct Builder {
    /// Open sequences and mappings, with their tags.
    stack: Vec<(Yaml, Option<Tag>)>,
    /// For each open mapping, the key read and waiting for its value.
    keys: Vec<Option<Yaml>>,
    doc: Option<Yaml>,
    error: Option<String>,
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, _mark: Marker) {
        match event {
            Event::SequenceStart(_, tag) => self.stack.push((Yaml::Array(Vec::new()), tag)),
            Event::MappingStart(_, tag) => {
                self.stack.push((Yaml::Hash(Hash::new()), tag));
                self.keys.push(None);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if matches!(event, Event::MappingEnd) {
                    self.keys.pop();
                }
                if let Some((node, tag)) = self.stack.pop() {
                    self.insert(tagged(node, tag));
                }
            }
            Event::Scalar(value, style, _, tag) => {
                let node = if style != TScalarStyle::Plain || tag.is_some() {
                    Yaml::String(value)
                } else {
                    Yaml::from_str(&value)
                };
                self.insert(tagged(node, tag));
            }
            Event::Alias(_) => {
                self.error
                    .get_or_insert_with(|| "YAML aliases are not supported".to_owned());
            }
            _ => {}
        }
    }
}

impl Builder {
    fn insert(&mut self, node: Yaml) {
        match self.stack.last_mut() {
            None => self.doc = Some(node),
            Some((Yaml::Array(items), _)) => items.push(node),
            Some((Yaml::Hash(map), _)) => {
                let key = self.keys.last_mut().expect("a mapping has a key slot");
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => {
                        map.insert(k, node);
                    }
                }
            }
            Some(_) => unreachable!("only sequences and mappings are open"),
        }
    }
}

/// `!Name value` as CloudFormation's long form.
fn tagged(node: Yaml, tag: Option<Tag>) -> Yaml {
    let Some(tag) = tag.filter(|t| t.handle == "!") else {
        return node;
    };
    let name = match tag.suffix.as_str() {
        "Ref" | "Condition" => tag.suffix.clone(),
        other => format!("Fn::{other}"),
    };
    let node = match (name.as_str(), node) {
        // `!GetAtt Resource.Attribute` is `[Resource, Attribute]`.
        ("Fn::GetAtt", Yaml::String(s)) => match s.split_once('.') {
            Some((resource, attribute)) => Yaml::Array(vec![
                Yaml::String(resource.to_owned()),
                Yaml::String(attribute.to_owned()),
            ]),
            None => Yaml::String(s),
        },
        (_, node) => node,
    };
    let mut map = Hash::new();
    map.insert(Yaml::String(name), node);
    Yaml::Hash(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Yaml {
        Yaml::Array(items.iter().map(|s| Yaml::String(s.to_string())).collect())
    }

    #[test]
    fn short_forms_become_long_forms() {
        let doc =
            load("a: !GetAtt Queue.Arn\nb: !Sub x\nc: !Ref P\nd: !If [C, 1, 2]\ne: '1'\nf: 1\n")
                .unwrap();
        assert_eq!(doc["a"]["Fn::GetAtt"], strings(&["Queue", "Arn"]));
        assert_eq!(doc["b"]["Fn::Sub"].as_str(), Some("x"));
        assert_eq!(doc["c"]["Ref"].as_str(), Some("P"));
        assert_eq!(doc["d"]["Fn::If"][0].as_str(), Some("C"));
        assert_eq!(doc["d"]["Fn::If"][1].as_i64(), Some(1));
        assert_eq!(doc["e"].as_str(), Some("1"));
        assert_eq!(doc["f"].as_i64(), Some(1));
        assert!(load("a: &x 1\nb: *x\n").unwrap_err().contains("aliases"));
    }
}
