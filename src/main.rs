//! The `corridor` command line: parse, set up tracing, call the library.

fn main() {
    println!("corridor {}", env!("CARGO_PKG_VERSION"));
}
