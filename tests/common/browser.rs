//! A small Chrome DevTools Protocol client for the browser tests: starts Debian's headless
//! `chromium` (found by `external::CHROMIUM`) with a fresh profile, opens one page and speaks to it over the protocol's
//! WebSocket (on loopback). It navigates, evaluates JavaScript, polls a condition with a
//! bounded timeout, types and clicks, takes a screenshot, and collects every console
//! error and uncaught exception the page reports. Blocking: call it from a plain thread
//! or `spawn_blocking`. The browser is killed when the `Browser` is dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Longest wait for the browser to start or to answer one command.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Size of the page's window, as on a projector.
const WINDOW: &str = "--window-size=1366,900";

/// A headless Chromium with one page open.
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    /// The page's session (flattened into the browser's connection).
    session: String,
    next_id: u64,
    errors: Vec<String>,
    /// The browser's own profile, removed after it.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts the browser at `chromium` and opens a blank page with the runtime, log and page
    /// domains on.
    pub fn launch(chromium: &Path) -> Result<Self, String> {
        let profile = tempfile::tempdir().map_err(|e| format!("profile directory: {e}"))?;
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                WINDOW,
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromium.display()))?;
        // Chromium names its WebSocket on stderr; the rest of stderr is drained (kept
        // for the error message if the address never comes) so that the browser never blocks.
        let stderr = child.stderr.take().expect("piped");
        let (found, address) = mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                match line.strip_prefix("DevTools listening on ") {
                    Some(url) => drop(found.send(Ok(url.trim().to_owned()))),
                    None if seen.len() < 40 => seen.push(line),
                    None => {}
                }
            }
            let _ = found.send(Err(seen.join("\n")));
        });
        let url = match address.recv_timeout(ANSWER_TIMEOUT) {
            Ok(Ok(url)) => url,
            Ok(Err(stderr)) => {
                let _ = child.kill();
                return Err(format!("{} exited without a DevTools address:\n{stderr}", chromium.display()));
            }
            Err(_) => {
                let _ = child.kill();
                return Err(format!("{} gave no DevTools address in {ANSWER_TIMEOUT:?}", chromium.display()));
            }
        };
        let host = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .ok_or_else(|| format!("unexpected DevTools address {url}"))?;
        let stream = TcpStream::connect(host).map_err(|e| format!("connecting to {host}: {e}"))?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(|e| e.to_string())?;
        let (socket, _) =
            tungstenite::client(url.as_str(), stream).map_err(|e| format!("WebSocket {url}: {e}"))?;
        let mut browser =
            Self { child, socket, session: String::new(), next_id: 0, errors: Vec::new(), _profile: profile };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }))?;
        let target_id = target["targetId"].clone();
        let attached =
            browser.call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }))?;
        browser.session = attached["sessionId"].as_str().ok_or("no session id")?.to_owned();
        for domain in ["Runtime", "Log", "Page"] {
            browser.call(&format!("{domain}.enable"), json!({}))?;
        }
        Ok(browser)
    }

    /// Sends one command (to the page once it is attached) and returns its result,
    /// noting every event that arrives meanwhile.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            command["sessionId"] = json!(self.session);
        }
        self.socket.send(Message::text(command.to_string())).map_err(|e| format!("{method}: {e}"))?;
        loop {
            let message = self.socket.read().map_err(|e| format!("{method}: no answer: {e}"))?;
            let Message::Text(text) = message else { continue };
            let message: Value = serde_json::from_str(&text).map_err(|e| format!("{method}: {e}"))?;
            if message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    return Err(format!("{method}: {error}"));
                }
                return Ok(message["result"].clone());
            }
            self.note(&message);
        }
    }

    /// Keeps the console errors and uncaught exceptions among the events.
    fn note(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") if params["type"] == "error" || params["type"] == "assert" => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|arg| match &arg["value"] {
                        Value::String(text) => text.clone(),
                        Value::Null => arg["description"].as_str().unwrap_or("?").to_owned(),
                        value => value.to_string(),
                    })
                    .collect();
                self.errors.push(format!("console.error: {}", args.join(" ")));
            }
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"].as_str().or(details["text"].as_str());
                self.errors.push(format!("uncaught exception: {}", text.unwrap_or("?")));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                let entry = &params["entry"];
                self.errors.push(format!(
                    "log error: {} {}",
                    entry["text"].as_str().unwrap_or("?"),
                    entry["url"].as_str().unwrap_or("")
                ));
            }
            _ => {}
        }
    }

    /// Every console error and uncaught exception the page reported so far.
    pub fn console_errors(&mut self) -> Result<Vec<String>, String> {
        // One round trip reads every event sent before it.
        self.call("Runtime.evaluate", json!({ "expression": "0" }))?;
        Ok(self.errors.clone())
    }

    /// Opens `url` and waits (bounded) until the document has loaded.
    pub fn navigate(&mut self, url: &str, timeout: Duration) -> Result<(), String> {
        let result = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(error) = result["errorText"].as_str() {
            return Err(format!("opening {url}: {error}"));
        }
        self.wait_until(
            &format!("location.href.startsWith({}) && document.readyState === 'complete'", json!(url)),
            timeout,
        )?;
        Ok(())
    }

    /// The value of the JavaScript `expression` (awaited when it is a promise), as JSON.
    pub fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let params = json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        let result = self.call("Runtime.evaluate", params)?;
        if let Some(details) = result.get("exceptionDetails") {
            let text = details["exception"]["description"].as_str().or(details["text"].as_str());
            return Err(format!("`{expression}` threw: {}", text.unwrap_or("?")));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Polls `expression` until it is truthy (returning its value), or fails after `timeout`
    /// with its last value.
    pub fn wait_until(&mut self, expression: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.eval(expression)?;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                return Err(format!("`{expression}` still {value} after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `text` into the input matched by `selector`, as a person would (input events).
    pub fn type_into(&mut self, selector: &str, text: &str) -> Result<(), String> {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({s}); if (!e) throw new Error('no ' + {s}); \
             e.focus(); e.value = {t}; e.dispatchEvent(new Event('input', {{ bubbles: true }})); \
             e.dispatchEvent(new Event('change', {{ bubbles: true }})); }})()",
            s = json!(selector),
            t = json!(text)
        ))?;
        Ok(())
    }

    /// Clicks the element matched by `selector`.
    pub fn click(&mut self, selector: &str) -> Result<(), String> {
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({s}); if (!e) throw new Error('no ' + {s}); e.click(); }})()",
            s = json!(selector)
        ))?;
        Ok(())
    }

    /// Saves a PNG of the page's window to `path`.
    pub fn screenshot(&mut self, path: &Path) -> Result<(), String> {
        self.capture(json!({ "format": "png" }), path)
    }

    /// Saves a PNG of the whole element matched by `selector` to `path`, however tall.
    pub fn screenshot_of(&mut self, selector: &str, path: &Path) -> Result<(), String> {
        let clip = self.eval(&format!(
            "(() => {{ const e = document.querySelector({s}); if (!e) throw new Error('no ' + {s}); \
             const r = e.getBoundingClientRect(); \
             return {{ x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height, scale: 1 }}; }})()",
            s = json!(selector)
        ))?;
        self.capture(json!({ "format": "png", "clip": clip, "captureBeyondViewport": true }), path)
    }

    fn capture(&mut self, params: Value, path: &Path) -> Result<(), String> {
        let shot = self.call("Page.captureScreenshot", params)?;
        let png = decode_base64(shot["data"].as_str().ok_or("no screenshot data")?)?;
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (as the protocol sends binary data), padding optional.
fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("not base64: {:?}", byte as char)),
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Ok(bytes)
}
