//! Writing to stdout, and the text shapes more than one group of commands prints: money
//! in major units with its currency, table rows, statements.

use corridor::model::{Currency, format_minor_units, wire};
use corridor::pb;

/// Writes a line to stdout (through `say!`); a closed pipe ends the program quietly.
pub fn write_line(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

/// `1234.56 RUB`; an unknown currency as minor units, so nothing is hidden.
pub fn money(money: Option<&pb::Money>) -> String {
    let Some(money) = money else { return String::new() };
    match Currency::parse(&money.currency) {
        Ok(currency) => format!("{} {}", format_minor_units(money.minor_units, currency), currency),
        Err(_) => format!("{} minor units of {}", money.minor_units, money.currency),
    }
}

/// [`money`] of a bare amount in minor units and its currency code.
pub fn minor(minor_units: i64, currency: &str) -> String {
    money(Some(&pb::Money { minor_units, currency: currency.to_owned() }))
}

/// Cells padded to `widths`, two spaces apart, without trailing spaces.
pub fn table_row(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> =
        cells.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
    padded.join("  ").trim_end().to_owned()
}

/// A statement (a bank's or the hub's): opening balance, entries, closing balance.
pub fn statement_text(s: &pb::Statement) -> String {
    let mut text =
        format!("statement of {}\n  opening balance {}\n", s.account, money(s.opening_balance.as_ref()));
    for e in &s.entries {
        let direction = if e.direction == pb::EntryDirection::Crdt as i32 { "CRDT" } else { "DBIT" };
        text += &format!(
            "  {}  {direction}  {:>20}  {}\n",
            wire::format_unix_ms(e.booking_time_unix_ms),
            money(e.amount.as_ref()),
            e.uetr
        );
    }
    text + &format!("  closing balance {}\n", money(s.closing_balance.as_ref()))
}
