//! The part of CloudFormation the runner needs to read `template.yaml` as
//! one deployment of it: YAML with the short-form intrinsic tags (`!Ref`,
//! `!If`, `!GetAtt`, ...), parameters (their defaults, or the values the
//! runner is given, as `sam deploy --parameter-overrides` gives them),
//! conditions, `Fn::If` and `AWS::NoValue`. Other intrinsics stay in their
//! long form (`{"Fn::GetAtt": [resource, attribute]}`) for the caller.

mod load;
mod overrides;

use std::collections::HashMap;

pub use load::load;
pub use overrides::parse_overrides;
use yaml_rust2::{Yaml, yaml::Hash};

/// The template as one deployment sees it.
#[derive(Debug)]
pub struct Deployment {
    parameters: HashMap<String, Yaml>,
    conditions: HashMap<String, bool>,
    /// The template's resources, resolved; resources whose `Condition` is
    /// false are absent.
    pub resources: Hash,
}

impl Deployment {
    /// Resolves `template` with `values` for its parameters (others keep
    /// their `Default`). A value for an unknown parameter, a parameter
    /// without a value, or a value outside `AllowedValues` / `MinValue` /
    /// `MaxValue` is an error, as `sam deploy` would make it.
    pub fn new(template: &Yaml, values: &[(String, String)]) -> Result<Self, String> {
        let declared = template["Parameters"]
            .as_hash()
            .cloned()
            .unwrap_or_default();
        for (name, _) in values {
            if declared.get(&Yaml::String(name.clone())).is_none() {
                return Err(format!("the template has no parameter {name}"));
            }
        }
        let mut parameters = HashMap::new();
        for (name, spec) in &declared {
            let Some(name) = name.as_str() else { continue };
            let given = values.iter().rev().find(|(n, _)| n == name);
            let value = match (given, &spec["Default"]) {
                (Some((_, v)), _) => v.clone(),
                (None, Yaml::BadValue) => continue, // required; Ref fails if used
                (None, d) => scalar_text(d).ok_or(format!("{name}: Default is not a scalar"))?,
            };
            parameters.insert(name.to_owned(), parameter_value(name, spec, &value)?);
        }
        let mut deployment = Deployment {
            parameters,
            conditions: HashMap::new(),
            resources: Hash::new(),
        };
        let definitions = template["Conditions"]
            .as_hash()
            .cloned()
            .unwrap_or_default();
        for name in definitions.keys().filter_map(Yaml::as_str) {
            deployment.condition(name, &definitions, &mut Vec::new())?;
        }
        let resources = template["Resources"]
            .as_hash()
            .ok_or("the template has no Resources")?;
        for (name, resource) in resources {
            if let Some(c) = resource["Condition"].as_str() {
                let on = *deployment
                    .conditions
                    .get(c)
                    .ok_or(format!("{name:?}: no condition {c}"))?;
                if !on {
                    continue;
                }
            }
            if let Some(resolved) = deployment.resolve(resource)? {
                deployment.resources.insert(name.clone(), resolved);
            }
        }
        Ok(deployment)
    }

    /// A resource's resolved `Properties`.
    pub fn properties(&self, resource: &str) -> Option<&Yaml> {
        let p = &self.resources.get(&Yaml::String(resource.to_owned()))?["Properties"];
        (!p.is_badvalue()).then_some(p)
    }

    /// A resource's `Type`.
    pub fn resource_type(&self, resource: &str) -> Option<&str> {
        self.resources.get(&Yaml::String(resource.to_owned()))?["Type"].as_str()
    }

    pub fn parameter(&self, name: &str) -> Option<&Yaml> {
        self.parameters.get(name)
    }

    fn condition(
        &mut self,
        name: &str,
        definitions: &Hash,
        visiting: &mut Vec<String>,
    ) -> Result<bool, String> {
        if let Some(value) = self.conditions.get(name) {
            return Ok(*value);
        }
        if visiting.iter().any(|n| n == name) {
            return Err(format!("condition {name} refers to itself"));
        }
        let definition = definitions
            .get(&Yaml::String(name.to_owned()))
            .ok_or(format!("no condition {name}"))?
            .clone();
        visiting.push(name.to_owned());
        let value = self.truth(&definition, definitions, visiting)?;
        visiting.pop();
        self.conditions.insert(name.to_owned(), value);
        Ok(value)
    }

    /// A condition function's value.
    fn truth(
        &mut self,
        node: &Yaml,
        definitions: &Hash,
        visiting: &mut Vec<String>,
    ) -> Result<bool, String> {
        let (function, argument) = single_entry(node).ok_or("a condition is not a function")?;
        let args = || argument.as_vec().cloned().unwrap_or_default();
        match function {
            "Condition" => {
                let name = argument.as_str().ok_or("Condition names no condition")?;
                self.condition(name, definitions, visiting)
            }
            "Fn::Equals" => match args().as_slice() {
                [a, b] => Ok(self.text(a)? == self.text(b)?),
                _ => Err("Fn::Equals takes two values".to_owned()),
            },
            "Fn::Not" => match args().as_slice() {
                [a] => Ok(!self.truth(a, definitions, visiting)?),
                _ => Err("Fn::Not takes one condition".to_owned()),
            },
            "Fn::And" | "Fn::Or" => {
                let mut values = Vec::new();
                for a in args() {
                    values.push(self.truth(&a, definitions, visiting)?);
                }
                Ok(if function == "Fn::And" {
                    values.iter().all(|v| *v)
                } else {
                    values.iter().any(|v| *v)
                })
            }
            other => Err(format!("{other} is not a condition function")),
        }
    }

    /// A value compared by `Fn::Equals`, as text.
    fn text(&self, node: &Yaml) -> Result<String, String> {
        match self.resolve(node)? {
            Some(value) => scalar_text(&value).ok_or_else(|| format!("{value:?} is not a scalar")),
            None => Err("AWS::NoValue in Fn::Equals".to_owned()),
        }
    }

    /// `node` with parameters, `Fn::If` and `AWS::NoValue` resolved (None:
    /// no value).
    pub fn resolve(&self, node: &Yaml) -> Result<Option<Yaml>, String> {
        if let Some((function, argument)) = single_entry(node) {
            match function {
                "Ref" => {
                    let name = argument.as_str().unwrap_or_default();
                    if name == "AWS::NoValue" {
                        return Ok(None);
                    }
                    if let Some(value) = self.parameters.get(name) {
                        return Ok(Some(value.clone()));
                    }
                    // A resource or a pseudo parameter: left for the caller.
                    return Ok(Some(node.clone()));
                }
                "Fn::If" => {
                    let [condition, yes, no] = argument.as_vec().map(Vec::as_slice).unwrap_or(&[])
                    else {
                        return Err("Fn::If takes a condition and two values".to_owned());
                    };
                    let name = condition.as_str().unwrap_or_default();
                    let on = self
                        .conditions
                        .get(name)
                        .ok_or(format!("Fn::If: no condition {name}"))?;
                    return self.resolve(if *on { yes } else { no });
                }
                "Fn::Join" | "Fn::Split" | "Fn::Select" => {
                    let resolved = self.resolve(argument)?.unwrap_or(Yaml::BadValue);
                    if let Some(value) = list_function(function, &resolved) {
                        return Ok(Some(value));
                    }
                    let mut map = Hash::new();
                    map.insert(Yaml::String(function.to_owned()), resolved);
                    return Ok(Some(Yaml::Hash(map)));
                }
                _ => {}
            }
        }
        Ok(Some(match node {
            Yaml::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(self.resolve(item)?);
                }
                Yaml::Array(out)
            }
            Yaml::Hash(map) => {
                let mut out = Hash::new();
                for (k, v) in map {
                    if let Some(v) = self.resolve(v)? {
                        out.insert(k.clone(), v);
                    }
                }
                Yaml::Hash(out)
            }
            other => other.clone(),
        }))
    }
}

/// `Fn::Join`, `Fn::Split` or `Fn::Select` of resolved arguments; None
/// when they are not all known (e.g. a resource's `Ref`).
fn list_function(function: &str, argument: &Yaml) -> Option<Yaml> {
    let [first, second] = argument.as_vec()?.as_slice() else {
        return None;
    };
    match function {
        "Fn::Join" => {
            let parts: Option<Vec<String>> = second.as_vec()?.iter().map(scalar_text).collect();
            Some(Yaml::String(parts?.join(first.as_str()?)))
        }
        "Fn::Split" => Some(Yaml::Array(
            second
                .as_str()?
                .split(first.as_str()?)
                .map(|s| Yaml::String(s.to_owned()))
                .collect(),
        )),
        "Fn::Select" => {
            let index: usize = scalar_text(first)?.parse().ok()?;
            second.as_vec()?.get(index).cloned()
        }
        _ => None,
    }
}

/// The one `(function, argument)` of `{"Fn::X": argument}`.
fn single_entry(node: &Yaml) -> Option<(&str, &Yaml)> {
    let map = node.as_hash()?;
    if map.len() != 1 {
        return None;
    }
    let (k, v) = map.iter().next()?;
    let k = k.as_str()?;
    (k == "Ref" || k == "Condition" || k.starts_with("Fn::")).then_some((k, v))
}

fn scalar_text(node: &Yaml) -> Option<String> {
    match node {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A parameter's value checked against its declaration; a `Number` is an
/// integer (the runner reads no fractional parameter), a
/// `CommaDelimitedList` a list.
fn parameter_value(name: &str, spec: &Yaml, value: &str) -> Result<Yaml, String> {
    if let Some(allowed) = spec["AllowedValues"].as_vec()
        && !allowed
            .iter()
            .any(|a| scalar_text(a).as_deref() == Some(value))
    {
        return Err(format!("{name}: {value:?} is not one of its AllowedValues"));
    }
    match spec["Type"].as_str() {
        Some("Number") => {}
        Some("CommaDelimitedList") => {
            return Ok(Yaml::Array(
                value
                    .split(',')
                    .map(|s| Yaml::String(s.trim().to_owned()))
                    .collect(),
            ));
        }
        _ => return Ok(Yaml::String(value.to_owned())),
    }
    // CloudFormation's Number is an integer or a decimal (a threshold such
    // as 0.05); bounds compare as numbers either way.
    let text = value.trim();
    let (n, yaml) = match text.parse::<i64>() {
        Ok(i) => (i as f64, Yaml::Integer(i)),
        Err(_) => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => (f, Yaml::Real(text.to_owned())),
            _ => return Err(format!("{name}: {value:?} is not a number")),
        },
    };
    let bound = |key: &str| spec[key].as_i64().map(|b| b as f64).or(spec[key].as_f64());
    if let Some(min) = bound("MinValue")
        && n < min
    {
        return Err(format!("{name}: {text} is below its MinValue {min}"));
    }
    if let Some(max) = bound("MaxValue")
        && n > max
    {
        return Err(format!("{name}: {text} is above its MaxValue {max}"));
    }
    Ok(yaml)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Mode:
    Type: String
    Default: OnDemand
    AllowedValues: [OnDemand, Provisioned]
  Retries:
    Type: Number
    Default: 10
    MinValue: 0
    MaxValue: 10000
  Cluster:
    Type: String
    Default: ""
  Required:
    Type: String
  Subnets:
    Type: CommaDelimitedList
    Default: ""
Conditions:
  Provisioned: !Equals [!Ref Mode, Provisioned]
  Msk: !Not [!Equals [!Ref Cluster, ""]]
  Both: !And [!Condition Provisioned, !Condition Msk]
  Either: !Or [!Condition Provisioned, !Condition Msk]
  InVpc: !Not [!Equals [!Join ["", !Ref Subnets], ""]]
  Second: !Not [!Equals [!Select [1, !Split [",", !Join [",", [!Join [",", !Ref Subnets], "", ""]]]], ""]]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Condition: Provisioned
  Source:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      BatchSize: 100
      Quoted: "100"
      MaximumRetryAttempts: !If [Provisioned, !Ref Retries, !Ref AWS::NoValue]
      Both: !If [Both, yes, no]
      Either: !If [Either, "yes", "no"]
      Destination: !If
        - Provisioned
        - OnFailure:
            Destination: !GetAtt Queue.Arn
        - !Ref AWS::NoValue
      List: [a, !If [Msk, b, !Ref AWS::NoValue], c]
      Name: !Sub "${AWS::StackName}-x"
      Vpc: !If [InVpc, !If [Second, two, one], none]
      Joined: !Join [",", [!Ref Queue, x]]
"#;

    fn deploy(values: &[(&str, &str)]) -> Result<Deployment, String> {
        let values: Vec<(String, String)> = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Deployment::new(&load(TEMPLATE).unwrap(), &values)
    }

    fn property(d: &Deployment, key: &str) -> Yaml {
        d.properties("Source").unwrap()[key].clone()
    }

    fn strings(items: &[&str]) -> Yaml {
        Yaml::Array(items.iter().map(|s| Yaml::String(s.to_string())).collect())
    }

    #[test]
    fn conditions_choose_values_and_resources() {
        // (overrides, MaximumRetryAttempts, Both, Either, Queue exists, List)
        type Row<'a> = (
            &'a [(&'a str, &'a str)],
            Yaml,
            &'a str,
            &'a str,
            bool,
            &'a [&'a str],
        );
        let table: [Row; 4] = [
            (&[], Yaml::BadValue, "no", "no", false, &["a", "c"]),
            (
                &[("Mode", "Provisioned")],
                Yaml::Integer(10),
                "no",
                "yes",
                true,
                &["a", "c"],
            ),
            (
                &[
                    ("Mode", "Provisioned"),
                    ("Retries", "2"),
                    ("Cluster", "arn"),
                ],
                Yaml::Integer(2),
                "yes",
                "yes",
                true,
                &["a", "b", "c"],
            ),
            (
                &[("Cluster", "arn")],
                Yaml::BadValue,
                "no",
                "yes",
                false,
                &["a", "b", "c"],
            ),
        ];
        for (values, retries, both, either, queue, list) in table {
            let d = deploy(values).unwrap();
            assert_eq!(property(&d, "MaximumRetryAttempts"), retries, "{values:?}");
            assert_eq!(property(&d, "Both").as_str(), Some(both), "{values:?}");
            assert_eq!(property(&d, "Either").as_str(), Some(either), "{values:?}");
            assert_eq!(d.resource_type("Queue").is_some(), queue, "{values:?}");
            assert_eq!(property(&d, "List"), strings(list), "{values:?}");
            assert_eq!(
                property(&d, "Destination")["OnFailure"]["Destination"]["Fn::GetAtt"],
                if queue {
                    strings(&["Queue", "Arn"])
                } else {
                    Yaml::BadValue
                },
                "{values:?}"
            );
            // Untouched: plain values and other intrinsics.
            assert_eq!(property(&d, "BatchSize").as_i64(), Some(100));
            assert_eq!(property(&d, "Quoted").as_str(), Some("100"));
            assert_eq!(
                property(&d, "Name")["Fn::Sub"].as_str(),
                Some("${AWS::StackName}-x")
            );
        }
    }

    #[test]
    fn lists_are_joined_split_and_selected() {
        let table = [
            ("", "none"),
            ("s1", "one"),
            ("s1,s2", "two"),
            ("s1, s2,s3", "two"),
        ];
        for (subnets, vpc) in table {
            let d = deploy(&[("Subnets", subnets)]).unwrap();
            assert_eq!(property(&d, "Vpc").as_str(), Some(vpc), "{subnets:?}");
        }
        // A resource's Ref is not known: the function stays.
        let d = deploy(&[]).unwrap();
        assert_eq!(
            property(&d, "Joined")["Fn::Join"][1][0]["Ref"].as_str(),
            Some("Queue")
        );
    }

    #[test]
    fn bad_values_are_refused_as_sam_deploy_refuses_them() {
        let table: [(&[(&str, &str)], &str); 7] = [
            (
                &[("Mode", "Sometimes")],
                "Mode: \"Sometimes\" is not one of its AllowedValues",
            ),
            (&[("Retries", "-1")], "Retries: -1 is below its MinValue 0"),
            (
                &[("Retries", "10001")],
                "Retries: 10001 is above its MaxValue 10000",
            ),
            (&[("Retries", "ten")], "Retries: \"ten\" is not a number"),
            (&[("Retries", "inf")], "Retries: \"inf\" is not a number"),
            (
                &[("Retries", "-0.5")],
                "Retries: -0.5 is below its MinValue 0",
            ),
            (&[("Nope", "1")], "the template has no parameter Nope"),
        ];
        for (values, error) in table {
            assert_eq!(deploy(values).unwrap_err(), error, "{values:?}");
        }
    }
}
