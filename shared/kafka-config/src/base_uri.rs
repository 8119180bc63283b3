use crate::EnvError;

/// `BASE_URI` (docs/contract.md §3): the base of every `ce_source`, an absolute
/// http(s) URI without a query; a trailing `/` is dropped.
pub fn base_uri_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<String, EnvError> {
    let base_uri = lookup("BASE_URI")
        .map(|v| v.trim().trim_end_matches('/').to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| EnvError::new("BASE_URI", "is required (e.g. https://api.example.com)"))?;
    match url::Url::parse(&base_uri) {
        Ok(u) if u.has_host() && matches!(u.scheme(), "http" | "https") && u.query().is_none() => {
            Ok(base_uri)
        }
        _ => Err(EnvError::new(
            "BASE_URI",
            format!("{base_uri:?} is not an absolute http(s) URI without a query"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        let get = |v: &'static str| base_uri_from_lookup(move |_| Some(v.to_owned()));
        assert_eq!(
            get("https://api.example.com/").unwrap(),
            "https://api.example.com"
        );
        assert_eq!(
            get("http://127.0.0.1:3000").unwrap(),
            "http://127.0.0.1:3000"
        );
        for bad in ["", "api.example.com", "ftp://x", "https://x/?q=1"] {
            assert_eq!(get(bad).unwrap_err().var, "BASE_URI", "{bad}");
        }
        assert!(base_uri_from_lookup(|_| None).is_err());
    }
}
