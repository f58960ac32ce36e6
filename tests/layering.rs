//! The house's layering (DESIGN.md, "Architecture"; the helper rules' "Layering"): the
//! model and the clock at the ground; crypto, ledger, store, the directory, tls and net
//! above them; the hub and the bank beside each other, meeting only on the wire
//! contract; the reconciler, then the simulations and the CLI on top. A lower room never
//! names a higher one, and the hub and the bank never name each other. Read from the
//! source: a `crate::ROOM` path in code (comments and literals aside) is a dependency,
//! as is a `super::` chain that climbs out of its room, and each name of a `{...}` group
//! at the crate root.

use std::path::{Path, PathBuf};

/// The rooms by height; a room may use rooms of its own height or lower, except the
/// nodes, which may not use each other.
const ROOMS: [(&str, u8); 18] = [
    ("model", 0),
    ("clock", 0),
    ("metrics", 0),
    ("pb", 0),
    ("crypto", 1),
    ("ledger", 1),
    ("store", 1),
    ("directory", 1),
    ("tls", 1),
    ("net", 1),
    ("iso20022", 1),
    ("hub", 2),
    ("bank", 2),
    ("reconcile", 3),
    ("sim", 4),
    ("fuzzing", 4),
    ("cli", 5),
    ("main", 5),
];

/// The nodes: the same height, and still strangers.
const NODES: [&str; 2] = ["hub", "bank"];

fn height(room: &str) -> Option<u8> {
    ROOMS.iter().find(|(name, _)| *name == room).map(|(_, height)| *height)
}

/// The room a source file belongs to: its first component under `src/`.
fn room_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next().expect("a file").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The module path of a source file under `src/`: `hub/session.rs` is `hub::session`,
/// `hub/mod.rs` is `hub`, `lib.rs` and `main.rs` are the crate root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("under src").with_extension("");
    let mut path: Vec<String> =
        relative.components().map(|part| part.as_os_str().to_string_lossy().into_owned()).collect();
    if path.last().is_some_and(|last| last == "mod") || path == ["lib"] || path == ["main"] {
        path.pop();
    }
    path
}

/// `text` with its comments and its string and character literals blanked (newlines
/// kept, so lines still count): what is left is code, whose braces and paths can be read.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut code = String::with_capacity(text.len());
    let blank = |code: &mut String, part: &[char]| {
        code.extend(part.iter().map(|c| if *c == '\n' { '\n' } else { ' ' }));
    };
    let mut at = 0;
    while at < chars.len() {
        let end = literal_or_comment_end(&chars, at);
        if end > at {
            blank(&mut code, &chars[at..end]);
            at = end;
        } else {
            code.push(chars[at]);
            at += 1;
        }
    }
    code
}

/// Where the comment or literal starting at `at` ends, or `at` if none starts there.
fn literal_or_comment_end(chars: &[char], at: usize) -> usize {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let next = |offset: usize| chars.get(at + offset).copied();
    let find = |from: usize, pattern: &[char]| {
        (from..chars.len())
            .find(|i| chars[*i..].starts_with(pattern))
            .map_or(chars.len(), |i| i + pattern.len())
    };
    match chars[at] {
        '/' if next(1) == Some('/') => (at..chars.len()).find(|i| chars[*i] == '\n').unwrap_or(chars.len()),
        '/' if next(1) == Some('*') => {
            let (mut depth, mut i) = (0, at);
            while i < chars.len() {
                if chars[i..].starts_with(&['/', '*']) {
                    (depth, i) = (depth + 1, i + 2);
                } else if chars[i..].starts_with(&['*', '/']) {
                    (depth, i) = (depth - 1, i + 2);
                    if depth == 0 {
                        return i;
                    }
                } else {
                    i += 1;
                }
            }
            i
        }
        '"' => string_end(chars, at),
        'b' | 'r' if at > 0 && is_ident(chars[at - 1]) => at,
        'b' if next(1) == Some('"') => string_end(chars, at + 1),
        'b' if next(1) == Some('r') => raw_string_end(chars, at + 1).unwrap_or(at),
        'r' => raw_string_end(chars, at).unwrap_or(at),
        '\'' if next(1) == Some('\\') => find(at + 2, &['\'']),
        '\'' if next(2) == Some('\'') => at + 3,
        _ => at,
    }
}

/// Where the string literal whose opening quote is at `quote` ends.
fn string_end(chars: &[char], quote: usize) -> usize {
    let mut i = quote + 1;
    while i < chars.len() && chars[i] != '"' {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    (i + 1).min(chars.len())
}

/// Where the raw string literal (`r"..."`, `r#"..."#`) whose `r` is at `r` ends, if one
/// starts there.
fn raw_string_end(chars: &[char], r: usize) -> Option<usize> {
    let hashes = chars[r + 1..].iter().take_while(|c| **c == '#').count();
    if chars.get(r + 1 + hashes) != Some(&'"') {
        return None;
    }
    let mut close = vec!['"'];
    close.extend(std::iter::repeat_n('#', hashes));
    let from = r + 2 + hashes;
    Some(
        (from..chars.len())
            .find(|i| chars[*i..].starts_with(&close))
            .map_or(chars.len(), |i| i + close.len()),
    )
}

/// The code's tokens with their line numbers (from 1): identifiers, `::` and single
/// punctuation.
fn tokens(code: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let (mut tokens, mut line, mut at) = (Vec::new(), 1, 0);
    while at < chars.len() {
        let c = chars[at];
        if c == '\n' {
            line += 1;
            at += 1;
        } else if c.is_whitespace() {
            at += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let length = chars[at..].iter().take_while(|c| c.is_alphanumeric() || **c == '_').count();
            tokens.push((chars[at..at + length].iter().collect(), line));
            at += length;
        } else if chars[at..].starts_with(&[':', ':']) {
            tokens.push(("::".into(), line));
            at += 2;
        } else {
            tokens.push((c.to_string(), line));
            at += 1;
        }
    }
    tokens
}

/// Every room named in `text`, the source of the module `module`, with its line: a
/// `crate::ROOM` path, a `super::` chain that climbs to the crate root and goes on into
/// a room (or stays in a room: then that one), and each name of a `{...}` group there.
/// Comments and literals are not code; inline `mod NAME { .. }` blocks move `super`.
fn rooms_named(module: &[&str], text: &str) -> Vec<(String, usize)> {
    let tokens = tokens(&code_only(text));
    let token = |i: usize| tokens.get(i).map_or("", |(t, _)| t.as_str());
    let mut inline: Vec<(usize, String)> = Vec::new();
    let (mut depth, mut named) = (0, Vec::new());
    for (i, (word, line)) in tokens.iter().enumerate() {
        match word.as_str() {
            "{" => {
                depth += 1;
                if i >= 2 && token(i - 2) == "mod" {
                    inline.push((depth, token(i - 1).to_owned()));
                }
            }
            "}" => {
                if inline.last().is_some_and(|(at, _)| *at == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            "crate" | "super" if token(i + 1) == "::" && (i == 0 || token(i - 1) != "::") => {
                let mut path: Vec<String> = module.iter().map(|m| m.to_string()).collect();
                path.extend(inline.iter().map(|(_, name)| name.clone()));
                let mut next = i;
                if word == "crate" {
                    (path, next) = (Vec::new(), i + 2);
                }
                while token(next) == "super" && token(next + 1) == "::" {
                    path.pop();
                    next += 2;
                }
                let rooms = match path.first() {
                    Some(room) => vec![room.clone()],
                    None => names_at(&tokens, next),
                };
                named.extend(rooms.into_iter().map(|room| (room, *line)));
            }
            _ => {}
        }
    }
    named
}

/// The name at token `at` of a path at the crate root, or each first name of the
/// `{...}` group there (`self` and globs name no room).
fn names_at(tokens: &[(String, usize)], at: usize) -> Vec<String> {
    let is_name = |t: &str| t.starts_with(|c: char| c.is_alphabetic() || c == '_') && t != "self";
    let Some((first, _)) = tokens.get(at) else { return Vec::new() };
    if first != "{" {
        return if is_name(first) { vec![first.clone()] } else { Vec::new() };
    }
    let (mut depth, mut names, mut item_start) = (0, Vec::new(), true);
    for (token, _) in &tokens[at..] {
        match token.as_str() {
            "{" => depth += 1,
            "}" if depth == 1 => break,
            "}" => depth -= 1,
            "," if depth == 1 => item_start = true,
            name if depth == 1 && item_start => {
                item_start = false;
                if is_name(name) {
                    names.push(name.to_owned());
                }
            }
            _ => {}
        }
    }
    names
}

/// Why `from` may not name `to`, if it may not.
fn breaks_layering(from: &str, to: &str) -> Option<String> {
    if from == to {
        return None;
    }
    let (Some(from_height), Some(to_height)) = (height(from), height(to)) else {
        return Some(format!("{from} or {to} is a room the layering does not know: add it to ROOMS"));
    };
    if NODES.contains(&from) && NODES.contains(&to) {
        return Some("the hub and the bank meet only on the wire contract".into());
    }
    (to_height > from_height).then(|| format!("{from} is below {to}"))
}

#[test]
fn no_room_names_a_room_above_it_and_the_nodes_never_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    for file in &files {
        let room = room_of(&src, file);
        if room == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable");
        let module = module_of(&src, file);
        let module: Vec<&str> = module.iter().map(String::as_str).collect();
        for (named, line) in rooms_named(&module, &text) {
            if let Some(why) = breaks_layering(&room, &named) {
                broken.push(format!("{}:{line}: {named} ({why})", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

/// The checker itself: it sees a dependency where one is, and none in a comment or a
/// string.
#[test]
fn the_checker_sees_paths_in_code_and_not_in_comments() {
    let named = |module: &[&str], text: &str| -> Vec<String> {
        rooms_named(module, text).into_iter().map(|(room, _)| room).collect()
    };
    assert_eq!(named(&["hub"], "    let now = crate::bank::unix_ms_now(); // crate::sim"), ["bank"]);
    assert!(named(&["hub"], "/// See [`crate::sim::demo`].").is_empty());
    assert!(named(&["hub"], "use mycrate::hub;").is_empty());
    assert!(
        named(&["hub"], r#"let text = "crate::sim"; /* crate::cli /* nested */ crate::cli */"#).is_empty()
    );
    assert!(
        named(&["hub"], r##"let text = r#"crate::sim"#; let c = '"'; fn f<'a>(x: &'a str) {}"##).is_empty()
    );
    assert!(
        named(&["hub"], r###"let bytes = br##"crate::sim"##; let e = '\''; let s = "\"crate::cli";"###)
            .is_empty()
    );
    assert_eq!(named(&["hub"], "let c = b'x'; crate::bank::f() // crate::sim"), ["bank"]);
    assert!(breaks_layering("hub", "bank").is_some());
    assert!(breaks_layering("tls", "bank").is_some());
    assert!(breaks_layering("reconcile", "sim").is_some());
    assert!(breaks_layering("sim", "hub").is_none());
    assert!(breaks_layering("hub", "unknown").is_some());
}

/// A `super::` chain is resolved from the file's module (and the inline modules it is
/// in): from inside the hub, `super::super::bank` is the bank, while `super::state`
/// stays in the hub; from a test module in `clock.rs`, `super::Clock` is the clock.
#[test]
fn the_checker_resolves_super_chains_from_the_files_module() {
    let named = |module: &[&str], text: &str| -> Vec<(String, usize)> { rooms_named(module, text) };
    assert_eq!(named(&["hub", "session"], "use super::super::bank::Bank;"), [("bank".into(), 1)]);
    assert_eq!(named(&["hub", "session"], "use super::state::HubState;"), [("hub".into(), 1)]);
    assert_eq!(named(&["hub"], "use super::bank;"), [("bank".into(), 1)]);
    let clock = "pub enum Clock {}\n#[cfg(test)]\nmod tests {\n    use super::Clock;\n    use super::super::sim;\n}\nuse super::tls;";
    assert_eq!(
        named(&["clock"], clock),
        [("clock".into(), 4), ("sim".into(), 5), ("tls".into(), 7)],
        "inside `mod tests` super is the file's module; after its block, the crate root again"
    );
    assert!(breaks_layering("hub", &named(&["hub", "session"], "super::super::bank::f()")[0].0).is_some());
}

/// A grouped path names every room in its group, however it is laid out, and nested
/// groups name only their first segment.
#[test]
fn the_checker_reads_the_names_in_a_group() {
    let named = |module: &[&str], text: &str| -> Vec<String> {
        rooms_named(module, text).into_iter().map(|(room, _)| room).collect()
    };
    assert_eq!(named(&["sim"], "use crate::{bank, hub};"), ["bank", "hub"]);
    assert_eq!(
        named(
            &["tls"],
            "use crate::{\n    self,\n    bank::{Bank, BankConfig},\n    hub::{self, Hub},\n    model::*,\n};"
        ),
        ["bank", "hub", "model"]
    );
    assert_eq!(named(&["hub", "session"], "use super::super::{bank::Bank, clock};"), ["bank", "clock"]);
    assert!(named(&["sim"], "use crate::*;").is_empty());
}
