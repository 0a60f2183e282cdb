//! The dashboard's JavaScript is ES modules served from a fixed table compiled into the binary (src/api/web.rs).
//! Starting from the page, every module it loads, and every module those import in turn, answers 200 with a
//! JavaScript content type (browsers refuse a module served as anything else), so a module left out of the table
//! fails here instead of in a browser.

mod common;

use std::collections::{BTreeSet, VecDeque};

use common::{Server, client};
use reqwest::Url;

/// GETs `url`, checks it is served as `content_type` with the dashboard's asset headers, and returns the body.
async fn fetch(url: &Url, content_type: &str) -> String {
    let resp = client().get(url.clone()).send().await.expect("GET");
    assert_eq!(resp.status(), 200, "GET {url}");
    let header = |name: reqwest::header::HeaderName| {
        resp.headers()
            .get(&name)
            .map(|v| v.to_str().expect("header text").to_string())
            .unwrap_or_else(|| panic!("GET {url}: no {name} header"))
    };
    let ct = header(reqwest::header::CONTENT_TYPE);
    assert!(ct.starts_with(content_type), "GET {url}: content-type {ct}");
    assert_eq!(
        header(reqwest::header::X_CONTENT_TYPE_OPTIONS),
        "nosniff",
        "GET {url}"
    );
    assert_eq!(
        header(reqwest::header::CACHE_CONTROL),
        "no-cache",
        "GET {url}"
    );
    let body = resp.text().await.expect("body");
    assert!(!body.is_empty(), "GET {url}: empty");
    body
}

/// The `src` of each `<script type="module">` of a page.
fn module_scripts(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let tag_end = rest[start..].find('>').expect("a closed <script> tag") + start;
        let tag = &rest[start..tag_end];
        if tag.contains("type=\"module\"") || tag.contains("type='module'") {
            out.push(
                attribute(tag, "src")
                    .unwrap_or_else(|| panic!("a module script without src: {tag}")),
            );
        }
        rest = &rest[tag_end..];
    }
    out
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}="))? + name.len() + 2;
    quoted(&tag[at..])
}

/// The string a quoted literal at the start of `text` holds.
fn quoted(text: &str) -> Option<String> {
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &text[1..];
    Some(body[..body.find(quote)?].to_string())
}

/// The specifiers `source` imports: its static `import` declarations (`import … from '…'`, `import '…'`) and
/// re-exports (`export … from '…'`), each starting a line, as declarations may span lines. Dynamic `import()` is
/// refused: this does not follow it.
fn imports(source: &str) -> Vec<String> {
    assert!(
        !source.contains("import(") && !source.contains("import ("),
        "a dynamic import(), which this test does not follow"
    );
    let mut out = Vec::new();
    let mut statement: Option<String> = None;
    for line in source.lines() {
        let line = line.trim();
        if statement.is_none() && !declaration_start(line) {
            continue;
        }
        let s = statement.get_or_insert_with(String::new);
        s.push_str(line);
        s.push(' ');
        if let Some(spec) = specifier(s) {
            out.push(spec);
            statement = None;
        } else if line.ends_with(';') {
            // `export { a, b };` exports local names; an import without a specifier is not one this can read.
            assert!(
                !s.starts_with("import"),
                "cannot read the import declaration `{s}`"
            );
            statement = None;
        }
    }
    assert!(
        statement.is_none(),
        "an unfinished declaration: {statement:?}"
    );
    out
}

fn declaration_start(line: &str) -> bool {
    let after = |keyword: &str| {
        line.strip_prefix(keyword)
            .is_some_and(|rest| rest.starts_with([' ', '{', '*', '\'', '"']))
    };
    after("import")
        || (after("export") && {
            let rest = line["export".len()..].trim_start();
            rest.starts_with('{') || rest.starts_with('*')
        })
}

/// The module a (possibly partial) declaration names: after its last `from`, or right after `import`.
fn specifier(statement: &str) -> Option<String> {
    let from = statement
        .rmatch_indices("from")
        .find(|&(i, _)| {
            let before = statement[..i].chars().next_back();
            let after = statement[i + 4..].chars().next();
            before.is_some_and(|c| c == ' ' || c == '}' || c == '*')
                && after.is_some_and(|c| c == ' ' || c == '\'' || c == '"')
        })
        .map(|(i, _)| statement[i + 4..].trim_start());
    match from {
        Some(text) => quoted(text),
        None => quoted(statement.strip_prefix("import")?.trim_start()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_module_the_page_imports_is_served_as_javascript() {
    let server = Server::start();
    server.wait_ready().await;
    let page_url = Url::parse(&server.url("/")).expect("page URL");
    let page = fetch(&page_url, "text/html").await;
    let entries = module_scripts(&page);
    assert!(
        !entries.is_empty(),
        "the page loads no <script type=\"module\">:\n{page}"
    );

    let mut queue: VecDeque<(Url, String)> = entries
        .iter()
        .map(|src| (page_url.join(src).expect("script URL"), "/".to_string()))
        .collect();
    let mut served = BTreeSet::new();
    while let Some((url, importer)) = queue.pop_front() {
        if !served.insert(url.path().to_string()) {
            continue;
        }
        let resp = client().get(url.clone()).send().await.expect("GET");
        assert_eq!(
            resp.status(),
            200,
            "{importer} imports {url}, which is not served (missing from MODULES in src/api/web.rs?)"
        );
        let source = fetch(&url, "text/javascript").await;
        for spec in imports(&source) {
            assert!(
                spec.starts_with("./") || spec.starts_with("../") || spec.starts_with('/'),
                "{url} imports the bare specifier {spec:?}, which a browser cannot resolve without a bundler"
            );
            queue.push_back((url.join(&spec).expect("import URL"), url.path().to_string()));
        }
    }
    println!("modules served: {served:?}");
    assert!(
        served.contains("/js/main.js") && served.len() > 1,
        "the entry and what it imports: {served:?}"
    );

    // Anything not in the table is not served, the old single script included.
    for path in ["/js/missing.js", "/app.js", "/js/main.js.map"] {
        let resp = client().get(server.url(path)).send().await.expect("GET");
        assert_eq!(resp.status(), 404, "GET {path}");
    }
}

#[test]
fn the_import_reader_reads_the_forms_of_import() {
    let source = "// import nothing from './comment.js' (not at the start of a line)\n\
        import { a, b } from './one.js';\n\
        import {\n  c,\n  d,\n} from \"./two.js\";\n\
        import * as e from '../three.js';\n\
        import './four.js';\n\
        import f, { from } from '/five.js';\n\
        export { g } from './six.js';\n\
        export * from './seven.js';\n\
        export { h, i };\n\
        export function j() { return 'import x from \"./not.js\"'; }\n\
        const k = 1;\n";
    assert_eq!(
        imports(source),
        [
            "./one.js",
            "./two.js",
            "../three.js",
            "./four.js",
            "/five.js",
            "./six.js",
            "./seven.js"
        ]
    );
    assert_eq!(
        module_scripts(
            "<link href=x><script src=\"a.js\" defer></script><script type=\"module\" src=\"js/main.js\"></script>"
        ),
        ["js/main.js"]
    );
}
