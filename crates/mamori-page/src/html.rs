//! The served HTML, read without running it (plain-HTTP mode): scripts, forms and their
//! inputs, iframes, a `<meta>` CSP.

use lol_html::html_content::Element;
use lol_html::{HtmlRewriter, Settings, element, text};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct HtmlScript {
    /// The `src` attribute as written (not resolved).
    pub src: Option<String>,
    pub integrity: Option<String>,
    /// Inline text (empty for external scripts).
    pub text: String,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct HtmlInput {
    pub name: String,
    pub id: String,
    pub autocomplete: String,
    pub formaction: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct HtmlForm {
    pub id: String,
    pub name: String,
    pub action: Option<String>,
    pub method: String,
    pub inputs: Vec<HtmlInput>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct HtmlPage {
    pub scripts: Vec<HtmlScript>,
    pub forms: Vec<HtmlForm>,
    /// Inputs outside any form.
    pub loose_inputs: Vec<HtmlInput>,
    pub iframes: Vec<String>,
    pub meta_csp: Option<String>,
    pub base_href: Option<String>,
}

/// Script `type`s a browser executes.
pub fn is_js_type(t: Option<&str>) -> bool {
    match t.map(|t| t.trim().to_ascii_lowercase()) {
        None => true,
        Some(t) => {
            t.is_empty()
                || t == "module"
                || t.ends_with("/javascript")
                || t.ends_with("/ecmascript")
                || t == "text/jscript"
                || t.starts_with("text/javascript")
        }
    }
}

#[derive(Default)]
struct State {
    page: HtmlPage,
    /// Index into `page.forms` of the open form.
    open_form: Option<usize>,
    /// Index into `page.scripts` of the open inline script.
    open_script: Option<usize>,
}

fn attr(el: &Element, name: &str) -> Option<String> {
    el.get_attribute(name)
}

/// Parse HTML bytes (UTF-8 or ASCII-compatible; invalid bytes are replaced).
pub fn parse(html: &[u8]) -> HtmlPage {
    let st = Rc::new(RefCell::new(State::default()));
    let (s1, s2, s3, s4, s5, s6, s7) = (
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
    );
    let handlers = vec![
        element!("script", move |el| {
            let ty = attr(el, "type");
            if !is_js_type(ty.as_deref()) {
                return Ok(());
            }
            let mut s = s1.borrow_mut();
            let src = attr(el, "src");
            let inline = src.is_none();
            s.page.scripts.push(HtmlScript {
                src,
                integrity: attr(el, "integrity"),
                text: String::new(),
            });
            s.open_script = inline.then(|| s.page.scripts.len() - 1);
            Ok(())
        }),
        text!("script", move |t| {
            let mut s = s2.borrow_mut();
            if let Some(i) = s.open_script {
                s.page.scripts[i].text.push_str(t.as_str());
                if t.last_in_text_node() {
                    s.open_script = None;
                }
            }
            Ok(())
        }),
        element!("form", move |el| {
            let idx = {
                let mut s = s3.borrow_mut();
                s.page.forms.push(HtmlForm {
                    id: attr(el, "id").unwrap_or_default(),
                    name: attr(el, "name").unwrap_or_default(),
                    action: attr(el, "action"),
                    method: attr(el, "method")
                        .unwrap_or_else(|| "get".into())
                        .to_ascii_lowercase(),
                    inputs: Vec::new(),
                });
                let idx = s.page.forms.len() - 1;
                s.open_form = Some(idx);
                idx
            };
            let s = s3.clone();
            if let Some(handlers) = el.end_tag_handlers() {
                handlers.push(Box::new(move |_end| {
                    let mut s = s.borrow_mut();
                    if s.open_form == Some(idx) {
                        s.open_form = None;
                    }
                    Ok(())
                }));
            }
            Ok(())
        }),
        element!("input, select, textarea, button", move |el| {
            let mut s = s4.borrow_mut();
            let input = HtmlInput {
                name: attr(el, "name").unwrap_or_default(),
                id: attr(el, "id").unwrap_or_default(),
                autocomplete: attr(el, "autocomplete").unwrap_or_default(),
                formaction: attr(el, "formaction"),
            };
            let owner = attr(el, "form");
            let target = match owner {
                Some(id) => s.page.forms.iter().position(|f| f.id == id),
                None => s.open_form,
            };
            match target {
                Some(i) => s.page.forms[i].inputs.push(input),
                None => s.page.loose_inputs.push(input),
            }
            Ok(())
        }),
        element!("iframe, frame", move |el| {
            let src = attr(el, "src").unwrap_or_else(|| {
                if el.has_attribute("srcdoc") {
                    "about:srcdoc".into()
                } else {
                    String::new()
                }
            });
            s5.borrow_mut().page.iframes.push(src);
            Ok(())
        }),
        element!("meta[http-equiv]", move |el| {
            let eq = attr(el, "http-equiv").unwrap_or_default();
            if eq.eq_ignore_ascii_case("content-security-policy")
                && let Some(c) = attr(el, "content")
            {
                let mut s = s6.borrow_mut();
                s.page.meta_csp = Some(match s.page.meta_csp.take() {
                    Some(prev) => format!("{prev}, {c}"),
                    None => c,
                });
            }
            Ok(())
        }),
        element!("base[href]", move |el| {
            let mut s = s7.borrow_mut();
            if s.page.base_href.is_none() {
                s.page.base_href = attr(el, "href");
            }
            Ok(())
        }),
    ];
    let mut settings = Settings::new();
    for h in handlers {
        settings = settings.append_element_content_handler(h);
    }
    let mut rw = HtmlRewriter::new(settings, |_: &[u8]| {});
    // The handlers never fail; a malformed document is parsed as browsers parse it.
    let _ = rw.write(html);
    let _ = rw.end();
    Rc::try_unwrap(st)
        .map(|c| c.into_inner().page)
        .unwrap_or_else(|rc| rc.borrow().page.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_scripts_forms_frames() {
        let p = parse(
            br#"<!doctype html><html><head>
<meta http-equiv="Content-Security-Policy" content="script-src 'self'">
<script src="/a.js" integrity="sha256-x"></script>
<script>var a = "</div>"; if (a < 1) {}</script>
<script type="application/ld+json">{"@type":"Product"}</script>
</head><body>
<form id="pay" action="/pay" method="POST">
 <input name="card_number" autocomplete="cc-number"><input name="qty">
 <button formaction="https://elsewhere.example/x">go</button>
</form>
<input name="cvv" id="cvv">
<iframe src="https://psp.example/frame"></iframe><iframe srcdoc="<p>x</p>"></iframe>
</body></html>"#,
        );
        assert_eq!(p.scripts.len(), 2, "{p:?}");
        assert_eq!(p.scripts[0].src.as_deref(), Some("/a.js"));
        assert_eq!(p.scripts[0].integrity.as_deref(), Some("sha256-x"));
        assert_eq!(p.scripts[1].text, "var a = \"</div>\"; if (a < 1) {}");
        assert_eq!(p.forms.len(), 1);
        assert_eq!(p.forms[0].method, "post");
        assert_eq!(p.forms[0].inputs.len(), 3);
        assert_eq!(
            p.forms[0].inputs[2].formaction.as_deref(),
            Some("https://elsewhere.example/x")
        );
        assert_eq!(p.loose_inputs.len(), 1);
        assert_eq!(p.iframes, vec!["https://psp.example/frame", "about:srcdoc"]);
        assert_eq!(p.meta_csp.as_deref(), Some("script-src 'self'"));
    }
}
