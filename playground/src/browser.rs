//! A scripted browser for tests and QA scripts: it follows redirects, keeps
//! the Playground's cookies, fills in the Playground's sign-in page, and
//! delivers the final redirect to the app's loopback listener, as a person's
//! browser would. It trusts the Playground's CA and nothing else.

use crate::Playground;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where a visit ended.
#[derive(Debug, Clone)]
pub struct Visit {
    pub status: u16,
    pub url: String,
    pub body: String,
}

/// What to do on the Playground's sign-in page.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Do not touch the page.
    Look,
    SignIn {
        username: &'a str,
        password: &'a str,
    },
    Cancel,
}

/// A browser with a cookie jar.
pub struct Browser {
    http: reqwest::Client,
    cookies: Mutex<HashMap<String, String>>,
}

impl Browser {
    /// A browser that trusts `pg`'s CA.
    pub fn for_playground(pg: &Playground) -> Self {
        Self::trusting(std::path::Path::new(&pg.info().ca_cert))
    }

    /// A browser that trusts the CA in the PEM file `ca_cert` (a Playground
    /// running elsewhere, such as the one inside the desktop app).
    pub fn trusting(ca_cert: &std::path::Path) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_cert).expect("the CA file") {
            roots.add(cert.expect("a PEM certificate")).expect("a usable CA");
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        Self {
            http,
            cookies: Mutex::new(HashMap::new()),
        }
    }

    /// The HTTP client underneath (redirects not followed), for calls a
    /// test makes itself, such as the admin API with its token.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Forget every cookie (a fresh browser profile).
    pub fn clear_cookies(&self) {
        self.cookies.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().unwrap_or_else(|e| e.into_inner());
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&self, response: &reqwest::Response) {
        let mut jar = self.cookies.lock().unwrap_or_else(|e| e.into_inner());
        for v in response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let first = v.split(';').next().unwrap_or_default();
            if let Some((k, value)) = first.split_once('=') {
                if value.is_empty() || v.contains("Max-Age=0") {
                    jar.remove(k.trim());
                } else {
                    jar.insert(k.trim().to_owned(), value.to_owned());
                }
            }
        }
    }

    /// Send one request, then follow redirects with GET.
    async fn go(&self, mut request: reqwest::RequestBuilder, mut url: String) -> Result<Visit, String> {
        for _ in 0..10 {
            let response = request
                .header("cookie", self.cookie_header())
                .send()
                .await
                .map_err(|e| format!("{url}: {}", chain(&e)))?;
            self.keep_cookies(&response);
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("{url}: a redirect without location"))?;
                url = reqwest::Url::parse(&url)
                    .and_then(|base| base.join(location))
                    .map_err(|e| format!("{url}: bad location {location}: {e}"))?
                    .to_string();
                request = self.http.get(&url);
                continue;
            }
            let body = response.text().await.map_err(|e| format!("{url}: {e}"))?;
            return Ok(Visit { status, url, body });
        }
        Err(format!("{url}: too many redirects"))
    }

    /// Open `url`; on the Playground's sign-in page, do `action`, and on
    /// its consent page, allow (after `SignIn`) or deny (`Cancel`). A page
    /// that submits its form by script (Session Manager's sign-out page) is
    /// submitted, as a browser with scripts on does.
    pub async fn open(&self, url: &str, action: Action<'_>) -> Result<Visit, String> {
        let mut visit = self.go(self.http.get(url), url.to_owned()).await?;
        if let Some((get, target, fields)) = auto_submitted_form(&visit.body) {
            let request = if get {
                self.http.get(&target).query(&fields)
            } else {
                self.http.post(&target).form(&fields)
            };
            visit = self.go(request, target.clone()).await?;
        }
        // At most a sign-in page and then a consent page.
        for _ in 0..2 {
            let Some(tx) = hidden_tx(&visit.body) else {
                return Ok(visit);
            };
            let consent = visit.body.contains("data-page=\"consent\"");
            let fields: Vec<(&str, &str)> = match (action, consent) {
                (Action::Look, _) => return Ok(visit),
                (Action::SignIn { .. }, true) => vec![("tx", tx.as_str()), ("action", "allow")],
                (Action::SignIn { username, password }, false) => vec![
                    ("tx", tx.as_str()),
                    ("username", username),
                    ("password", password),
                    ("action", "sign_in"),
                ],
                (Action::Cancel, true) => vec![("tx", tx.as_str()), ("action", "deny")],
                (Action::Cancel, false) => vec![("tx", tx.as_str()), ("action", "cancel")],
            };
            let post = reqwest::Url::parse(&visit.url)
                .and_then(|u| u.join("authorize"))
                .map_err(|e| e.to_string())?
                .to_string();
            visit = self.go(self.http.post(&post).form(&fields), post.clone()).await?;
        }
        Ok(visit)
    }

    /// On the device verification page `url` (RFC 8628), enter `user_code`,
    /// sign in as `username` and allow, or deny when `allow` is false.
    pub async fn verify_device(
        &self,
        url: &str,
        user_code: &str,
        username: &str,
        password: &str,
        allow: bool,
    ) -> Result<Visit, String> {
        let page = self.go(self.http.get(url), url.to_owned()).await?;
        if !page.body.contains("data-page=\"device\"") {
            return Err(format!("{url} is not the device verification page: {}", page.body));
        }
        let fields = [
            ("user_code", user_code),
            ("username", username),
            ("password", password),
            ("action", if allow { "allow" } else { "deny" }),
        ];
        self.go(self.http.post(&page.url).form(&fields), page.url.clone()).await
    }

    /// Sign in on the page `url` leads to and deliver the result to the app.
    pub async fn sign_in(&self, url: &str, username: &str, password: &str) -> Result<Visit, String> {
        self.open(url, Action::SignIn { username, password }).await
    }
}

/// The transaction id of the Playground's sign-in form.
fn hidden_tx(body: &str) -> Option<String> {
    let start = body.find("name=\"tx\" value=\"")? + "name=\"tx\" value=\"".len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

/// A form's hidden fields, values unescaped.
pub type Fields = Vec<(String, String)>;

/// Whether a form the page submits by script (`….submit()`) is a GET, its
/// action and its hidden fields.
pub fn auto_submitted_form(body: &str) -> Option<(bool, String, Fields)> {
    if !body.contains(".submit()") {
        return None;
    }
    let form = &body[body.find("<form")?..];
    let form = &form[..form.find("</form>")?];
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let start = tag.find(&key)? + key.len();
        Some(unescape(&tag[start..start + tag[start..].find('"')?]))
    };
    let tag = &form[..form.find('>')?];
    let action = attr(tag, "action")?;
    let get = attr(tag, "method").is_some_and(|m| m.eq_ignore_ascii_case("get"));
    let fields = form
        .split("<input")
        .skip(1)
        .filter_map(|input| Some((attr(input, "name")?, attr(input, "value")?)))
        .collect();
    Some((get, action, fields))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// An error with its causes ("error sending request" alone hides whether
/// TLS, the connection or the address failed).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}
