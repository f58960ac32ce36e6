//! The dashboard in a real browser: the demo runs with its dashboard while headless
//! Chromium (Debian's `chromium`, installed by `.ci/run` when missing) opens it. The page
//! loads with no console error, shows every participant, its message counter rises while
//! payments flow, a search by UETR draws that payment's path and a click shows one of its
//! messages as ISO 20022 XML; a screenshot is kept in
//! `target/test-artifacts/`. A second test proves the browser harness itself on a page
//! served here: it sees the page change, types and clicks, and catches console errors.
//!
//! Without Chromium each test says on stderr that it skipped and how to install it, and
//! passes; under CI (or `CORRIDOR_REQUIRE_EXTERNAL=1`) it fails instead (`common/external.rs`).
//! The last two tests check that rule itself, by running this test binary again with no
//! Chromium to be found.

#[path = "common/browser.rs"]
mod browser;
#[path = "common/external.rs"]
mod external;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use browser::Browser;
use corridor::model::Uetr;
use corridor::sim::demo::{DEMO_BANKS, DemoConfig, render, run_demo};
use external::CHROMIUM;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Longest wait for anything the page should show.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the demo to reach a step (it runs on the same two cores as the browser).
const DEMO_TIMEOUT: Duration = Duration::from_secs(180);
/// Banks in the demo.
const BANKS: usize = 4;

/// `target/test-artifacts/` (under `$CARGO_TARGET_DIR` when set), created.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts that `path` is a PNG of some substance (a blank page compresses to a few hundred bytes).
fn assert_png(path: &std::path::Path, at_least: u64) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", path.display());
    assert!(bytes.len() as u64 >= at_least, "{} is only {} bytes", path.display(), bytes.len());
}

/// A page that counts, echoes a search into a list, and reports an error and throws on a click.
const HARNESS_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>harness</title></head>
<body><h1>Harness</h1><span id="count">0</span> <input id="q"> <button id="go">go</button><ol id="out"></ol>
<script>
let n = 0;
setInterval(() => { document.getElementById('count').textContent = ++n; }, 50);
document.getElementById('go').addEventListener('click', () => {
  const item = document.createElement('li');
  item.dataset.step = document.getElementById('q').value;
  item.textContent = item.dataset.step;
  document.getElementById('out').appendChild(item);
  console.error('clicked with', item.dataset.step);
  setTimeout(() => { throw new Error('boom'); }, 0);
});
</script></body></html>"#;

/// Serves `HARNESS_PAGE` to every request on a loopback port; returns its URL.
fn serve_harness_page() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{HARNESS_PAGE}",
                HARNESS_PAGE.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

#[test]
fn the_browser_harness_reads_types_clicks_and_catches_console_errors() {
    let Some(chromium) =
        CHROMIUM.require("the_browser_harness_reads_types_clicks_and_catches_console_errors")
    else {
        return;
    };
    let url = serve_harness_page();
    let mut browser = Browser::launch(&chromium).unwrap_or_else(|e| panic!("{e}"));
    browser.navigate(&url, PAGE_TIMEOUT).unwrap();
    assert_eq!(browser.console_errors().unwrap(), Vec::<String>::new());
    assert_eq!(browser.eval("document.title").unwrap(), json!("harness"));

    // The counter rises: read it, then wait (bounded) until it is higher.
    let first = browser.eval("Number(document.getElementById('count').textContent)").unwrap();
    let first = first.as_u64().unwrap();
    browser
        .wait_until(&format!("Number(document.getElementById('count').textContent) > {first}"), PAGE_TIMEOUT)
        .unwrap();

    browser.type_into("#q", "settled").unwrap();
    browser.click("#go").unwrap();
    browser
        .wait_until("document.querySelector('#out [data-step=\"settled\"]') !== null", PAGE_TIMEOUT)
        .unwrap();
    // Both the console.error and the exception thrown afterwards are caught.
    let deadline = std::time::Instant::now() + PAGE_TIMEOUT;
    let errors = loop {
        let errors = browser.console_errors().unwrap();
        if errors.len() >= 2 || std::time::Instant::now() >= deadline {
            break errors;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(errors.iter().any(|e| e == "console.error: clicked with settled"), "{errors:#?}");
    assert!(errors.iter().any(|e| e.starts_with("uncaught exception: Error: boom")), "{errors:#?}");
    assert!(browser.eval("document.querySelector('#nothing').click()").is_err());

    let shot = artifacts().join("harness.png");
    browser.screenshot(&shot).unwrap();
    assert_png(&shot, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_demo_live_in_headless_chromium() {
    let Some(chromium) = CHROMIUM.require("the_dashboard_shows_the_demo_live_in_headless_chromium") else {
        return;
    };
    let hold = CancellationToken::new();
    let config = DemoConfig {
        banks: BANKS,
        payments: 60,
        seed: 9,
        dashboard: Some("127.0.0.1:0".parse().unwrap()),
        // Payments flow for several seconds, so that the page sees its counters rise.
        pace: Duration::from_millis(100),
        // The network stays up after the reconciliation until the browser is done.
        hold: Some(hold.clone()),
        ..DemoConfig::default()
    };
    // The browser runs on its own thread and hears the demo's progress lines.
    let (lines, heard) = std::sync::mpsc::channel::<String>();
    let browser_side = tokio::task::spawn_blocking(move || {
        // Whatever happens, even a panic, the demo is then let go.
        let _release = hold.drop_guard();
        drive_the_dashboard(&chromium, &heard)
    });
    let mut progress = Vec::new();
    let summary = run_demo(&config, &mut |step: &str| {
        progress.push(step.to_owned());
        let _ = lines.send(step.to_owned());
    })
    .await;
    drop(lines);
    let checked = browser_side.await.unwrap();
    let summary = summary.unwrap_or_else(|e| panic!("the demo failed: {e}\n{progress:#?}"));
    assert!(summary.ok(), "{}", render(&summary));
    if let Err(error) = checked {
        panic!("{error}\nthe demo's progress:\n{}", progress.join("\n"));
    }
}

/// Waits (bounded) for a progress line `pick` accepts; returns what it picked out.
fn hear<T>(
    heard: &std::sync::mpsc::Receiver<String>,
    what: &str,
    pick: impl Fn(&str) -> Option<T>,
) -> Result<T, String> {
    let deadline = std::time::Instant::now() + DEMO_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = heard.recv_timeout(left).map_err(|e| format!("the demo never said {what}: {e}"))?;
        if let Some(found) = pick(&line) {
            return Ok(found);
        }
    }
}

/// Everything the browser checks, in order; an error says which check failed.
fn drive_the_dashboard(
    chromium: &std::path::Path,
    heard: &std::sync::mpsc::Receiver<String>,
) -> Result<(), String> {
    // Started before the network, so that it is ready when the payments flow.
    let mut browser = Browser::launch(chromium)?;
    let url = hear(heard, "its dashboard's address", |line| {
        line.strip_prefix("Dashboard: ").map(|url| url.trim().to_owned())
    })?;
    browser.navigate(&url, PAGE_TIMEOUT)?;

    // Every participant, each shown connected once its bank is up.
    let mut expected: Vec<&str> = DEMO_BANKS[..BANKS].iter().map(|(bic, ..)| *bic).collect();
    expected.sort();
    let shown = browser.wait_until(
        &format!(
            "(() => {{ const shown = [...document.querySelectorAll('#participants [data-bic]')]; \
             return shown.length === {BANKS} && shown.every(e => e.dataset.connected === 'true') \
             && shown.map(e => e.dataset.bic).sort(); }})()"
        ),
        DEMO_TIMEOUT,
    );
    let shown = shown.map_err(|e| format!("not every participant is shown connected: {e}"))?;
    if shown != json!(expected) {
        return Err(format!("participants shown {shown}, expected {expected:?}"));
    }

    // The message counter rises while payments flow.
    let total = "Number(document.querySelector('#messages-total').textContent.replace(/[^0-9]/g, ''))";
    let first = browser.eval(total)?.as_u64().ok_or("#messages-total is not a number")?;
    browser
        .wait_until(&format!("{total} > {first}"), PAGE_TIMEOUT)
        .map_err(|e| format!("#messages-total did not rise from {first}: {e}"))?;
    let second = browser.eval(total)?.as_u64().unwrap_or(0);
    browser
        .wait_until(&format!("{total} > {second}"), PAGE_TIMEOUT)
        .map_err(|e| format!("#messages-total did not rise again from {second}: {e}"))?;

    // A payment that settled (the one whose recall the receiver refuses stays settled):
    // searching its UETR draws its path.
    let uetr = hear(heard, "a settled payment's UETR", |line| {
        if !line.contains("recalls payment") || !line.contains("CUST") {
            return None;
        }
        line.split_whitespace().find_map(|word| Uetr::parse(word).ok()).map(|uetr| uetr.to_string())
    })?;
    browser.type_into("#search-uetr", &uetr)?;
    browser.click("#search-button")?;
    let steps = browser
        .wait_until(
            &format!(
                "(() => {{ const s = document.querySelector('#sequence'); \
                 const steps = [...s.querySelectorAll('[data-step]')].map(e => e.dataset.step); \
                 return s.dataset.uetr === {uetr} && steps.includes('settled') && steps; }})()",
                uetr = json!(uetr)
            ),
            PAGE_TIMEOUT,
        )
        .map_err(|e| format!("searching {uetr} drew no settled path: {e}"))?;
    for step in ["submitted", "acknowledged", "delivered", "status_reported", "settled"] {
        if !steps.as_array().is_some_and(|s| s.contains(&json!(step))) {
            return Err(format!("the path of {uetr} lacks {step}: {steps}"));
        }
    }
    show_a_messages_xml(&mut browser, &uetr)?;

    // The last reconciliation, once the demo posts it, is clean.
    browser
        .wait_until("document.querySelector('#reconciliation').dataset.clean === 'true'", DEMO_TIMEOUT)
        .map_err(|e| format!("#reconciliation never showed a clean reconciliation: {e}"))?;
    // By then the receiver has refused the recall: searching again draws that too.
    browser.click("#search-button")?;
    browser
        .wait_until(
            "[...document.querySelectorAll('#sequence [data-step]')].some(e => e.dataset.step === 'recall_answered')",
            PAGE_TIMEOUT,
        )
        .map_err(|e| format!("searching {uetr} again drew no answer to its recall: {e}"))?;

    let errors = browser.console_errors()?;
    if !errors.is_empty() {
        return Err(format!("the dashboard logged errors: {errors:#?}"));
    }
    // Two pictures: the top of the page (participants, counters, flow) and the payment's path.
    let top = artifacts().join("dashboard.png");
    browser.eval("window.scrollTo(0, 0)")?;
    browser.screenshot(&top)?;
    let path = artifacts().join("dashboard-payment.png");
    browser.screenshot_of("section:has(#sequence)", &path)?;
    for shot in [top, path] {
        // A page with this much on it is tens of kilobytes; a blank one a few hundred bytes.
        assert_png(&shot, 20_000);
        println!("screenshot: {}", shot.display());
    }
    Ok(())
}

/// Under the path, a button per message the hub relayed; a click on the pacs.002's shows
/// its ISO 20022 XML in `#message-xml` as text (no element parsed out of it), about this
/// payment (issue 20, "Teaching").
fn show_a_messages_xml(browser: &mut Browser, uetr: &str) -> Result<(), String> {
    let button = "#payment-messages [data-type=\"pacs.002\"]";
    browser
        .wait_until(&format!("document.querySelector({}) !== null", json!(button)), PAGE_TIMEOUT)
        .map_err(|e| format!("no pacs.002 button under the path of {uetr}: {e}"))?;
    browser.click(button)?;
    let shown = browser
        .wait_until(
            "(() => { const v = document.querySelector('#message-xml'); \
             return !v.hidden && v.dataset.messageId && v.children.length === 0 && v.textContent; })()",
            PAGE_TIMEOUT,
        )
        .map_err(|e| format!("clicking the pacs.002 of {uetr} showed no XML: {e}"))?;
    let text = shown.as_str().unwrap_or_default();
    if !text.contains("pacs.002.001.10") || !text.contains(&format!("<OrgnlUETR>{uetr}</OrgnlUETR>")) {
        return Err(format!("#message-xml does not show the pacs.002 of {uetr}: {text}"));
    }
    Ok(())
}

/// Runs this test binary's harness test again, alone, where no Chromium can be found: no
/// `$CHROMIUM`, and a `PATH` of one empty directory. `extra` adds to its environment.
fn harness_test_without_chromium(extra: &[(&str, &str)]) -> std::process::Output {
    let empty = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "the_browser_harness_reads_types_clicks_and_catches_console_errors"])
        .env("PATH", empty.path())
        .env_remove("CHROMIUM")
        .env_remove("CI")
        .env_remove("CORRIDOR_REQUIRE_EXTERNAL");
    for (name, value) in extra {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// The first-hour rule: on a fresh machine without Chromium, `cargo test` passes and says the
/// browser test skipped, why, and how to install what it needs: on stderr, past the test
/// harness's capture, so that a plain `cargo test` shows it.
#[test]
fn without_chromium_the_browser_test_skips_and_says_how_to_install_it() {
    let run = harness_test_without_chromium(&[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}\n{}", String::from_utf8_lossy(&run.stdout));
    assert!(stderr.contains("SKIPPED: `chromium` is not installed"), "{stderr}");
    assert!(stderr.contains("apt-get install -y --no-install-recommends chromium"), "{stderr}");
}

/// Under CI, or with `CORRIDOR_REQUIRE_EXTERNAL=1`, a missing Chromium fails the test, saying
/// what to install, so that CI never passes a browser test it did not run.
#[test]
fn under_ci_a_missing_chromium_fails_the_browser_test() {
    for required in [("CI", "true"), ("CORRIDOR_REQUIRE_EXTERNAL", "1")] {
        let run = harness_test_without_chromium(&[required]);
        // The harness reports a failed test's panic on stdout, with the test's output.
        let said =
            format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
        assert!(!run.status.success(), "{required:?}: {said}");
        assert!(
            said.contains("FAILED: CI (or CORRIDOR_REQUIRE_EXTERNAL=1) requires"),
            "{required:?}: {said}"
        );
        assert!(said.contains("apt-get install -y --no-install-recommends chromium"), "{required:?}: {said}");
    }
    // `CI=false` (or `0`, or empty) is no CI.
    assert!(!external::required(Some("false".into()), None));
    assert!(!external::required(Some(String::new()), Some("0".into())));
    assert!(external::required(Some("1".into()), None));
}
