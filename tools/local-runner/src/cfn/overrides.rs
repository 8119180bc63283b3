//! The template's parameters as the runner is given them.

/// `Name=Value` pairs separated by spaces or commas, as
/// `sam deploy --parameter-overrides` takes them (`Name=a,b` keeps the
/// comma when the value goes on: use spaces between pairs for lists).
pub fn parse_overrides(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for word in text.split_whitespace() {
        for part in word.split(',') {
            match part.split_once('=') {
                Some((name, value)) if !name.is_empty() => {
                    pairs.push((name.to_owned(), value.to_owned()));
                }
                // `Name=a,b`: `b` continues the previous value.
                None if !pairs.is_empty() && word.contains('=') => {
                    let last = pairs.last_mut().expect("checked");
                    last.1.push(',');
                    last.1.push_str(part);
                }
                _ => return Err(format!("{part:?} is not Name=Value")),
            }
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_read_like_sam_deploys() {
        type Read<'a> = Result<Vec<(&'a str, &'a str)>, &'a str>;
        let table: [(&str, Read); 5] = [
            ("", Ok(vec![])),
            ("A=1 B=x", Ok(vec![("A", "1"), ("B", "x")])),
            ("A=1,B=x", Ok(vec![("A", "1"), ("B", "x")])),
            ("A=s1,s2 B=", Ok(vec![("A", "s1,s2"), ("B", "")])),
            ("A", Err("\"A\" is not Name=Value")),
        ];
        for (text, expected) in table {
            let expected = expected.map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect::<Vec<_>>()
            });
            assert_eq!(
                parse_overrides(text),
                expected.map_err(str::to_owned),
                "{text}"
            );
        }
    }
}
