//! The small, self-contained HTML pages the browser sees.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::error::Error;
use crate::response::Rejection;

pub(crate) type Body = Full<Bytes>;

/// The page for a finished flow. Deliberately shows no `error_description`: until the caller
/// has checked `iss` (RFC 9207 §2.4) the text may come from a mix-up attacker.
pub(crate) fn outcome<T>(outcome: &Result<T, Error>) -> Response<Body> {
    match outcome {
        Ok(_) => page(
            StatusCode::OK,
            "Signed in",
            "Sign-in complete. You can close this tab and return to the terminal.",
        ),
        Err(Error::Cancelled { .. }) => page(
            StatusCode::OK,
            "Sign-in cancelled",
            "The authorization was denied or cancelled. You can close this tab and return to the \
             terminal.",
        ),
        Err(Error::Authorization { error, .. }) => page(
            StatusCode::OK,
            "Sign-in failed",
            &format!(
                "The authorization server returned the error <code>{}</code>. You can close this \
                 tab; the terminal has the details.",
                escape(truncate(error, 100))
            ),
        ),
        Err(other) => page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            &format!(
                "{}. You can close this tab and return to the terminal.",
                escape(&capitalise(&other.to_string()))
            ),
        ),
    }
}

/// The page for a rejected request to the redirect path; the flow keeps waiting.
pub(crate) fn rejected(rejection: Rejection) -> Response<Body> {
    match rejection {
        Rejection::StateMismatch => page(
            StatusCode::BAD_REQUEST,
            "Sign-in link not recognised",
            "This response does not belong to the sign-in in progress: its <code>state</code> is \
             missing or different. It may come from an old browser tab, or from another site \
             (possible CSRF), and was ignored. The sign-in in progress is still waiting; you can \
             close this tab and use the newest one.",
        ),
        Rejection::Malformed(reason) => page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in response",
            &format!(
                "This response cannot be read ({}) and was ignored. The sign-in in progress is \
                 still waiting; you can close this tab.",
                escape(reason)
            ),
        ),
    }
}

/// The page for a request after the flow has finished.
pub(crate) fn already_completed() -> Response<Body> {
    page(
        StatusCode::BAD_REQUEST,
        "Sign-in already finished",
        "This sign-in has already finished; a response can be used only once. You can close \
         this tab.",
    )
}

pub(crate) fn not_found() -> Response<Body> {
    page(
        StatusCode::NOT_FOUND,
        "Not found",
        "Nothing here. You can close this tab.",
    )
}

pub(crate) fn method_not_allowed() -> Response<Body> {
    let mut response = page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "Only GET and POST are accepted here. You can close this tab.",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

pub(crate) fn unsupported_media_type() -> Response<Body> {
    page(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Unsupported content type",
        "A sign-in response sent with POST must be a form (application/x-www-form-urlencoded). You can close this tab.",
    )
}

pub(crate) fn payload_too_large() -> Response<Body> {
    page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request too large",
        "This sign-in response is larger than any valid one. You can close this tab.",
    )
}

/// `message_html` must already be escaped where it holds outside text.
fn page(status: StatusCode, title: &str, message_html: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} - context-harness</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;\
         padding:0 1em;line-height:1.5;color:#222}}h1{{font-size:1.4em}}</style></head>\
         <body><h1>{title}</h1><p>{message_html}</p></body></html>\n",
        title = escape(title),
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Inline style only: nothing is loaded from anywhere, and the page cannot be framed.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'none'",
        ),
    );
    response
}

/// HTML-escapes text for element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn truncate(s: &str, max_chars: usize) -> &str {
    s.char_indices().nth(max_chars).map_or(s, |(i, _)| &s[..i])
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(truncate("hi", 5), "hi");
    }

    #[test]
    fn error_code_is_escaped_on_the_page() {
        let outcome: Result<(), Error> = Err(Error::Authorization {
            error: "<b>x</b>".into(),
            description: Some("call +1 555".into()),
            uri: None,
            iss: None,
        });
        let response = outcome_page_text(&outcome);
        assert!(response.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(!response.contains("<b>"));
        assert!(
            !response.contains("555"),
            "description is not shown before iss is checked"
        );
    }

    fn outcome_page_text(o: &Result<(), Error>) -> String {
        let response = outcome(o);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
        let body = response.into_body();
        let bytes = futures_body(body);
        let Ok(text) = String::from_utf8(bytes) else {
            panic!("the page body is not utf-8");
        };
        text
    }

    /// `Full` is ready at once, so one poll with a no-op waker collects it.
    fn futures_body(body: Body) -> Vec<u8> {
        use http_body_util::BodyExt as _;
        let mut fut = std::pin::pin!(body.collect());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Ok(collected)) => collected.to_bytes().to_vec(),
            _ => panic!("a Full body is ready at once"),
        }
    }
}
