//! The route table: what the API serves, and which route a path is.

/// Every route the API serves, as (method, path template). The router
/// dispatches through this table (a path matches a template segment by
/// segment, `{name}` standing for any one segment), so a route exists only
/// here; `docs/openapi.yaml` documents exactly these
/// (`tools/local-runner/tests/openapi.rs` holds the two together).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/databases"),
    ("GET", "/databases/{name}"),
    ("DELETE", "/databases/{name}"),
    ("POST", "/databases/{name}/transactions"),
    ("POST", "/databases/{name}/query"),
    ("GET", "/databases/{name}/events"),
];

/// The template of [`ROUTES`] that `segments` (the path split at `/`) falls
/// under.
pub(crate) fn template_of(segments: &[&str]) -> Option<&'static str> {
    ROUTES.iter().map(|(_, t)| *t).find(|template| {
        let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(segments)
                .all(|(p, s)| *p == "{name}" || p == s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fall_under_their_template() {
        for (path, template) in [
            ("/databases", Some("/databases")),
            ("/databases/", Some("/databases")),
            ("/databases/accounts", Some("/databases/{name}")),
            ("/databases/accounts/", Some("/databases/{name}")),
            (
                "/databases/accounts/transactions",
                Some("/databases/{name}/transactions"),
            ),
            ("/databases/accounts/query", Some("/databases/{name}/query")),
            (
                "/databases/accounts/events",
                Some("/databases/{name}/events"),
            ),
            ("/databases/accounts/nothing", None),
            ("/databases/accounts/events/1", None),
            ("/", None),
            ("/other", None),
            ("/other/accounts", None),
        ] {
            let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
            assert_eq!(template_of(&segments), template, "{path}");
        }
    }

    #[test]
    fn every_route_has_a_template_of_its_own_shape() {
        for (method, template) in ROUTES {
            assert!(["GET", "POST", "DELETE"].contains(method), "{method}");
            let segments: Vec<&str> = template.trim_matches('/').split('/').collect();
            assert_eq!(template_of(&segments), Some(*template));
        }
    }
}
