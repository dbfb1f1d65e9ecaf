//! The layout holds: no import cycles between modules in any crate, and in `gateway` every
//! top-level module imports only from the modules below it in [`GATEWAY_LAYERS`] (in the spirit
//! of rust-analyzer's tidy tests: the rules of `ARCHITECTURE.md`, read off the source).
//!
//! A module's imports are the module paths its code names: `use` trees, and paths written
//! inline (`crate::…`, `super::…`, `self::…`, or a child module's name). `mod` declarations
//! are not imports; test code (`#[cfg(test)]` items and modules) is left out, since tests may
//! reach anywhere. Two graphs are checked for cycles: the crate's top-level modules, and the
//! files of each folder among themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The gateway's top-level modules, from the bottom up: each may import only from those before
/// it. Keep in step with `gateway/src/lib.rs` and `ARCHITECTURE.md`.
const GATEWAY_LAYERS: &[&str] = &[
    "testing",
    "clock",
    "vocabulary",
    "ids",
    "metrics",
    "workdays",
    "net",
    "config",
    "routing",
    "store",
    "audit",
    "ops",
    "delivery",
    "surveys",
    "credit",
    "flows",
    "http",
    "node",
    "sim",
    "ctl",
    "demo",
    "bench",
];

/// One crate's modules: module path (`a::b`, the root is empty) → the module paths it imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

/// The module path of a source file under `src`, or `None` for the binary's `main.rs`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    match last.as_str() {
        "lib.rs" | "mod.rs" => {}
        "main.rs" if parts.is_empty() => return None,
        name => parts.push(name.strip_suffix(".rs")?.to_owned()),
    }
    Some(parts.join("::"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("a source folder")
        .map(|e| e.expect("an entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code without comments, string and character literals (so `"a::b"` in SQL or a message
/// names nothing).
fn strip(code: &str) -> String {
    let bytes = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |end| end + 2);
        } else if let Some(hashes) = raw_string_start(rest) {
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            i += body
                + rest[body..]
                    .find(&close)
                    .map_or(rest.len() - body, |e| e + close.len());
            out.push_str("\"\"");
        } else if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if bytes[i] == b'\'' && char_literal_len(rest).is_some() {
            i += char_literal_len(rest).unwrap_or(1);
            out.push_str("' '");
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn raw_string_start(rest: &str) -> Option<usize> {
    let tail = rest.strip_prefix('r')?;
    let hashes = tail.len() - tail.trim_start_matches('#').len();
    tail[hashes..].starts_with('"').then_some(hashes)
}

/// The length of a character literal at the start of `rest` (`'a'`, `'\n'`, `'\u{1F}'`), or
/// `None` for a lifetime.
fn char_literal_len(rest: &str) -> Option<usize> {
    let mut chars = rest.char_indices().skip(1);
    let (_, first) = chars.next()?;
    if first == '\\' {
        return rest[2..].find('\'').map(|end| end + 3);
    }
    let (at, next) = chars.next()?;
    (next == '\'').then_some(at + 1)
}

/// The code without its test items: each `#[cfg(test)]` and the item after it.
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at + "#[cfg(test)]".len()..];
        // The item ends at its `;` (a declaration) or at the brace that closes its body.
        let end = match (item.find(';'), item.find('{')) {
            (Some(semi), Some(open)) if semi < open => semi + 1,
            (Some(semi), None) => semi + 1,
            (_, Some(open)) => {
                let mut depth = 0;
                let mut end = item.len();
                for (i, c) in item[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Expands a `use` tree (`a::{b, c::{d, e as f}, self}`) into its paths.
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree
        .replace(" as ", "@")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split('@').next().unwrap_or(&tree).to_owned()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.is_empty())
        .flat_map(|item| {
            expand_use(item)
                .into_iter()
                .map(|path| format!("{prefix}{path}"))
        })
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path of two or more segments written in the code, `use` trees expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut rest = code;
    // `use` trees.
    while let Some(at) = rest.find("use ") {
        let before_ok = rest[..at].chars().next_back().is_none_or(|c| !is_ident(c));
        let tail = &rest[at + 4..];
        if before_ok && let Some(end) = tail.find(';') {
            for path in expand_use(&tail[..end]) {
                found.push(path);
            }
        }
        rest = tail;
    }
    // Inline paths.
    let chars: Vec<(usize, char)> = code.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        let starts_word = c.is_alphabetic() || c == '_';
        let after_boundary = i == 0 || {
            let p = chars[i - 1].1;
            !is_ident(p) && p != ':'
        };
        if starts_word && after_boundary {
            let mut end = start;
            let mut j = i;
            while j < chars.len() && (is_ident(chars[j].1) || code[chars[j].0..].starts_with("::"))
            {
                if code[chars[j].0..].starts_with("::") {
                    j += 2;
                } else {
                    j += 1;
                }
                end = chars.get(j).map_or(code.len(), |c| c.0);
            }
            let path = code[start..end].trim_end_matches(':');
            if path.contains("::") {
                found.push(path.to_owned());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
        .into_iter()
        .map(|p| p.split("::").map(str::to_owned).collect())
        .collect()
}

/// Reads one crate's module graph.
fn graph_of(crate_dir: &Path) -> Graph {
    let src = crate_dir.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeMap::new();
    for file in &files {
        if let Some(module) = module_of(&src, file) {
            let code = std::fs::read_to_string(file).expect("a source file");
            modules.insert(module, without_tests(&strip(&code)));
        }
    }
    // Modules declared under `#[cfg(test)]` are test code as a whole.
    let declared: BTreeSet<String> = modules
        .iter()
        .flat_map(|(module, code)| {
            declared_children(code)
                .into_iter()
                .map(move |child| join(module, &child))
        })
        .collect();
    modules.retain(|module, _| module.is_empty() || declared.contains(module));
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(module, code)| {
            let children = declared_children(code);
            let imports = paths(code)
                .into_iter()
                .filter_map(|path| resolve(module, &children, &path, &known))
                .filter(|target| target != module && !target.is_empty())
                .collect();
            (module.clone(), imports)
        })
        .collect()
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}::{child}")
    }
}

/// The child modules a file declares (`mod x;`, `pub mod x;`, `pub(crate) mod x;`).
fn declared_children(code: &str) -> Vec<String> {
    code.split(';')
        .filter_map(|statement| {
            let words: Vec<&str> = statement.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "mod")?;
            let name = words.get(at + 1)?;
            (at + 2 == words.len() && name.chars().all(is_ident)).then(|| (*name).to_owned())
        })
        .collect()
}

/// The module a path names, as the longest known module it starts with.
fn resolve(
    module: &str,
    children: &[String],
    path: &[String],
    known: &BTreeSet<String>,
) -> Option<String> {
    let mut base: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_owned).collect()
    };
    let mut segments = path;
    match segments.first()?.as_str() {
        "crate" => {
            base.clear();
            segments = &segments[1..];
        }
        "self" => segments = &segments[1..],
        "super" => {
            while segments.first().is_some_and(|s| s == "super") {
                base.pop()?;
                segments = &segments[1..];
            }
        }
        first if children.iter().any(|c| c == first) => {}
        _ => return None,
    }
    let mut best = None;
    let mut candidate = base;
    let root = candidate.join("::");
    if known.contains(&root) {
        best = Some(root);
    }
    for segment in segments {
        candidate.push(segment.clone());
        let name = candidate.join("::");
        if known.contains(&name) {
            best = Some(name);
        } else {
            break;
        }
    }
    best
}

/// A cycle in `edges`, if there is one, as the list of its nodes.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(cycle) = visit(next, edges, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node.as_str())
            && let Some(cycle) = visit(node, edges, &mut state, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

/// The graph between the children of `folder` (the folder's own file included, as itself):
/// deeper modules count as the child they are in.
fn folder_graph(graph: &Graph, folder: &str) -> BTreeMap<String, BTreeSet<String>> {
    let depth = if folder.is_empty() {
        0
    } else {
        folder.split("::").count()
    };
    let member = |module: &str| -> Option<String> {
        let inside =
            folder.is_empty() || module == folder || module.starts_with(&format!("{folder}::"));
        if !inside {
            return None;
        }
        let parts: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
        Some(
            parts
                .iter()
                .take(depth + 1)
                .copied()
                .collect::<Vec<_>>()
                .join("::"),
        )
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, imports) in graph {
        let Some(from) = member(module) else { continue };
        for target in imports {
            if let Some(to) = member(target)
                && to != from
            {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

fn folders(graph: &Graph) -> BTreeSet<String> {
    graph
        .keys()
        .filter_map(|m| m.rsplit_once("::").map(|(parent, _)| parent.to_owned()))
        .chain(std::iter::once(String::new()))
        .collect()
}

/// Every cycle problem of a crate's graph, in words.
fn cycles(name: &str, graph: &Graph) -> Vec<String> {
    folders(graph)
        .into_iter()
        .filter_map(|folder| {
            find_cycle(&folder_graph(graph, &folder))
                .map(|cycle| format!("{name}: import cycle {}", cycle.join(" -> ")))
        })
        .collect()
}

/// Every import of a gateway top-level module from one at or above its own layer.
fn layer_violations(graph: &Graph) -> Vec<String> {
    let rank = |module: &str| {
        let top = module.split("::").next().unwrap_or("");
        GATEWAY_LAYERS.iter().position(|l| *l == top)
    };
    let mut problems = Vec::new();
    // The crate root only declares the modules and hands names on.
    for (module, imports) in graph.iter().filter(|(m, _)| !m.is_empty()) {
        let Some(from) = rank(module) else {
            problems.push(format!(
                "gateway::{module} is in no layer of GATEWAY_LAYERS"
            ));
            continue;
        };
        for target in imports {
            match rank(target) {
                Some(to) if to < from => {}
                Some(to) if to == from => {}
                _ => problems.push(format!(
                    "gateway::{module} imports gateway::{target}, which is not below it"
                )),
            }
        }
    }
    problems
}

#[test]
fn no_module_imports_from_a_layer_above_it_and_no_crate_has_a_cycle() {
    let root = workspace();
    let mut problems = Vec::new();
    for name in ["schemas", "adapters", "gateway"] {
        let graph = graph_of(&root.join(name));
        assert!(graph.len() > 5, "{name}: read its modules");
        problems.extend(cycles(name, &graph));
        if name == "gateway" {
            problems.extend(layer_violations(&graph));
            let tops: BTreeSet<&str> = graph
                .keys()
                .filter(|m| !m.is_empty() && !m.contains("::"))
                .map(String::as_str)
                .collect();
            let layers: BTreeSet<&str> = GATEWAY_LAYERS.iter().copied().collect();
            if tops != layers {
                problems.push(format!(
                    "GATEWAY_LAYERS must list exactly the top-level modules {tops:?}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself sees what it must: a cycle through `super`, a `use` tree, an inline path
/// and a child module, and an import from a higher layer; not a path inside a string, a comment
/// or test code.
#[test]
fn the_checker_finds_cycles_and_upward_imports() {
    let dir = std::env::temp_dir().join(format!("layout-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "pub mod clock;\npub mod store;\npub mod http;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("clock.rs"),
        "// crate::http::x is a comment\nconst Q: &str = \"crate::http::y\";\n\
         #[cfg(test)]\nmod tests { use crate::http::Thing; }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("http.rs"),
        "use crate::{clock::now, store::Store};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("store/mod.rs"),
        "pub mod sqlite;\nfn f() { sqlite::open(); }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("store/sqlite.rs"),
        "use super::Store;\nfn g() { crate::http::router(); }\n",
    )
    .unwrap();
    let graph = graph_of(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(graph["clock"].is_empty(), "{graph:?}");
    assert_eq!(
        graph["http"],
        BTreeSet::from(["clock".to_owned(), "store".to_owned()])
    );
    let problems = cycles("fake", &graph);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("store -> store::sqlite -> store"))
    );
    assert!(problems.iter().any(|p| p.contains("http -> store -> http")));
    assert!(
        layer_violations(&graph)
            .iter()
            .any(|p| p.contains("gateway::store::sqlite imports gateway::http"))
    );
}
