//! The house's layering (DESIGN.md, "Architecture"; the helper rules' "Layering"): the
//! model and the clock at the ground; crypto, ledger, store, the directory, tls and net
//! above them; the hub and the bank beside each other, meeting only on the wire
//! contract; the reconciler, then the simulations and the CLI on top. A lower room never
//! names a higher one, and the hub and the bank never name each other. Read from the
//! source: a `crate::ROOM` path in code (comments aside) is a dependency.

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

/// Every `crate::ROOM` named in `line` outside a comment.
fn rooms_named(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    code.match_indices("crate::")
        .filter(|(at, _)| !code[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(at, _)| {
            let rest = &code[at + "crate::".len()..];
            rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
        })
        .collect()
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
        for (number, line) in text.lines().enumerate() {
            for named in rooms_named(line) {
                if let Some(why) = breaks_layering(&room, &named) {
                    broken.push(format!("{}:{}: crate::{named} ({why})", file.display(), number + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

/// The checker itself: it sees a dependency where one is, and none in a comment.
#[test]
fn the_checker_sees_paths_in_code_and_not_in_comments() {
    assert_eq!(rooms_named("    let now = crate::bank::unix_ms_now(); // crate::sim"), ["bank"]);
    assert!(rooms_named("/// See [`crate::sim::demo`].").is_empty());
    assert!(rooms_named("use mycrate::hub;").is_empty());
    assert!(breaks_layering("hub", "bank").is_some());
    assert!(breaks_layering("tls", "bank").is_some());
    assert!(breaks_layering("reconcile", "sim").is_some());
    assert!(breaks_layering("sim", "hub").is_none());
    assert!(breaks_layering("hub", "unknown").is_some());
}
