//! `media.fetch` against a loopback HTTP/1.1 server written here: plain
//! downloads, resume with `Range` after a dropped connection (within a run
//! and across runs), retries on 5xx, checksums, size limits, 404s, and
//! credentials kept out of messages.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::Harness;
use flow_media::MediaFetchKind;
use sha2::Digest;

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    range: Option<String>,
    authorization: Option<String>,
}

/// What the server answers.
struct Reply {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Close the connection after this many body bytes.
    drop_after: Option<usize>,
}

/// `body` as a file server would send it, honouring `Range: bytes=N-`.
fn file_reply(request: &Request, body: &[u8]) -> Reply {
    let start = request
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match start {
        Some(start) if start < body.len() => Reply {
            status: "206 Partial Content",
            headers: vec![(
                "Content-Range".to_string(),
                format!("bytes {start}-{}/{}", body.len() - 1, body.len()),
            )],
            body: body[start..].to_vec(),
            drop_after: None,
        },
        _ => Reply {
            status: "200 OK",
            headers: Vec::new(),
            body: body.to_vec(),
            drop_after: None,
        },
    }
}

type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// A loopback HTTP/1.1 server; `handler` gets each request and how many
/// came before it.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || serve(stream, &seen, &*handler));
            }
        });
        Self { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Request>>, handler: &Handler) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut request = Request {
        path,
        range: None,
        authorization: None,
    };
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "range" => request.range = Some(value.trim().to_string()),
                "authorization" => request.authorization = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(request.clone());
        seen.len() - 1
    };
    let reply = handler(&request, index);
    let mut stream = stream;
    let mut head = format!("HTTP/1.1 {}\r\nConnection: close\r\n", reply.status);
    if !reply.headers.iter().any(|(n, _)| n == "X-No-Length") {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let end = reply.drop_after.unwrap_or(reply.body.len());
    let _ = stream.write_all(&reply.body[..end]);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// `n` bytes that differ from one offset to the next.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

fn downloads(harness: &Harness) -> Vec<String> {
    std::fs::read_dir(harness.state_dir().join("downloads"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn downloads_a_file() {
    let body = payload(300_000);
    let served = body.clone();
    let server = Server::start(move |request, _| file_reply(request, &served));
    let harness = Harness::new(&MediaFetchKind, serde_json::Value::Null);
    let url = server.url("/media/talk%20one.mp3?token=1");
    let (result, out_dir) = harness.run(&url);
    let output = result.unwrap();
    let [output] = output.outputs.as_slice() else {
        panic!("one output expected: {output:?}");
    };
    assert_eq!(output.port, "media");
    assert_eq!(output.files, vec!["talk one.mp3".to_string()]);
    assert_eq!(std::fs::read(out_dir.join("talk one.mp3")).unwrap(), body);
    let value = output.value.as_ref().unwrap();
    assert_eq!(value["bytes"], 300_000);
    assert_eq!(value["sha256"], sha256(&body));
    assert_eq!(value["url"], url);
    assert_eq!(server.requests().len(), 1);
    assert!(server.requests()[0].range.is_none());
    // The partial file became the result: nothing is left behind.
    assert!(downloads(&harness).is_empty());
}

#[test]
fn resumes_after_the_connection_drops() {
    let body = payload(200_000);
    let half = body.len() / 2;
    let served = body.clone();
    let server = Server::start(move |request, index| {
        let mut reply = file_reply(request, &served);
        if index == 0 {
            reply.drop_after = Some(half);
        }
        reply
    });
    let harness = Harness::new(&MediaFetchKind, serde_json::Value::Null);
    let (result, out_dir) = harness.run(&server.url("/a.flac"));
    result.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].range, None);
    assert_eq!(requests[1].range, Some(format!("bytes={half}-")));
    assert_eq!(std::fs::read(out_dir.join("a.flac")).unwrap(), body);
}

#[test]
fn a_later_run_resumes_what_an_earlier_run_left() {
    let body = payload(100_000);
    let served = body.clone();
    let server = Server::start(move |request, index| {
        let mut reply = file_reply(request, &served);
        if index == 0 {
            reply.drop_after = Some(30_000);
        }
        reply
    });
    let config = serde_json::json!({ "retries": 0 });
    let mut harness = Harness::new(&MediaFetchKind, config.clone());
    let url = server.url("/b.wav");
    let reason = harness.fail(&url);
    assert!(
        reason.starts_with(&format!(
            "downloading `{url}` failed after 1 attempt: the connection"
        )),
        "{reason}"
    );
    assert!(
        reason.contains("the next run resumes from there"),
        "{reason}"
    );
    assert_eq!(downloads(&harness).len(), 1);
    // A new run (a new build of the stage on the same state directory).
    harness.rebuild(&MediaFetchKind, config);
    let (result, out_dir) = harness.run(&url);
    result.unwrap();
    assert_eq!(server.requests()[1].range, Some("bytes=30000-".to_string()));
    assert_eq!(std::fs::read(out_dir.join("b.wav")).unwrap(), body);
}

#[test]
fn retries_server_errors() {
    let body = payload(1000);
    let served = body.clone();
    let server = Server::start(move |request, index| {
        if index < 2 {
            Reply {
                status: "503 Service Unavailable",
                headers: Vec::new(),
                body: b"busy".to_vec(),
                drop_after: None,
            }
        } else {
            file_reply(request, &served)
        }
    });
    let harness = Harness::new(&MediaFetchKind, serde_json::Value::Null);
    let (result, out_dir) = harness.run(&server.url("/c.mp3"));
    result.unwrap();
    assert_eq!(server.requests().len(), 3);
    assert_eq!(std::fs::read(out_dir.join("c.mp3")).unwrap(), body);

    let always = Server::start(|_, _| Reply {
        status: "502 Bad Gateway",
        headers: Vec::new(),
        body: Vec::new(),
        drop_after: None,
    });
    let harness = Harness::new(&MediaFetchKind, serde_json::json!({ "retries": 1 }));
    let url = always.url("/d.mp3");
    assert_eq!(
        harness.fail(&url),
        format!("downloading `{url}` failed after 2 attempts: HTTP 502 Bad Gateway")
    );
}

#[test]
fn a_checksum_mismatch_fails_and_deletes_the_download() {
    let body = payload(5000);
    let served = body.clone();
    let server = Server::start(move |request, _| file_reply(request, &served));
    let wrong = "0".repeat(64);
    let harness = Harness::new(&MediaFetchKind, serde_json::json!({ "sha256": wrong }));
    let url = server.url("/e.ogg");
    assert_eq!(
        harness.fail(&url),
        format!(
            "sha256 mismatch for `{url}`: expected {wrong}, got {}; the download was deleted",
            sha256(&body)
        )
    );
    assert!(downloads(&harness).is_empty());
    // The right checksum passes.
    let right = sha256(&body).to_uppercase();
    let harness = Harness::new(&MediaFetchKind, serde_json::json!({ "sha256": right }));
    assert!(harness.run(&url).0.is_ok());
}

#[test]
fn the_size_limit_applies_with_and_without_a_length() {
    let body = payload(4096);
    let served = body.clone();
    let server = Server::start(move |request, _| {
        let mut reply = file_reply(request, &served);
        if request.path == "/unknown-length.bin" {
            reply
                .headers
                .push(("X-No-Length".to_string(), "1".to_string()));
        }
        reply
    });
    let harness = Harness::new(&MediaFetchKind, serde_json::json!({ "max_size": "1KiB" }));
    let url = server.url("/known-length.bin");
    assert_eq!(
        harness.fail(&url),
        format!("`{url}` is 4KiB, more than max_size 1KiB")
    );
    let url = server.url("/unknown-length.bin");
    assert_eq!(
        harness.fail(&url),
        format!("`{url}` is larger than max_size 1KiB")
    );
    assert!(downloads(&harness).is_empty());
    assert_eq!(server.requests().len(), 2, "a size limit is not retried");
}

#[test]
fn a_404_fails_at_once_without_showing_credentials() {
    let server = Server::start(|_, _| Reply {
        status: "404 Not Found",
        headers: Vec::new(),
        body: b"no such file".to_vec(),
        drop_after: None,
    });
    let harness = Harness::new(&MediaFetchKind, serde_json::Value::Null);
    let url = format!("http://me:s3cret@127.0.0.1:{}/missing.mp3", server.port);
    let reason = harness.fail(&url);
    assert_eq!(
        reason,
        format!("HTTP 404 Not Found for `{}`", server.url("/missing.mp3"))
    );
    assert!(!reason.contains("s3cret"));
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "a 404 is not retried");
    // The credentials went in the Authorization header ("me:s3cret").
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Basic bWU6czNjcmV0")
    );
}

#[test]
fn a_network_error_names_the_url_without_credentials() {
    // A port nothing listens on: bind one, then close it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let harness = Harness::new(&MediaFetchKind, serde_json::json!({ "retries": 0 }));
    let reason = harness.fail(&format!("http://me:s3cret@127.0.0.1:{port}/x.mp3"));
    assert!(
        reason.starts_with(&format!(
            "downloading `http://127.0.0.1:{port}/x.mp3` failed after 1 attempt: request failed: "
        )),
        "{reason}"
    );
    assert!(!reason.contains("s3cret"), "{reason}");
}

#[test]
fn local_files_pass_through_without_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.wav");
    std::fs::write(&path, b"RIFF").unwrap();
    let harness = Harness::new(&MediaFetchKind, serde_json::Value::Null);
    let (result, out_dir) = harness.run(path.to_str().unwrap());
    let output = result.unwrap();
    assert!(output.outputs[0].files.is_empty());
    assert_eq!(
        output.outputs[0].value,
        Some(serde_json::json!({ "path": path.to_str().unwrap(), "bytes": 4 }))
    );
    assert!(!out_dir.exists(), "nothing is written for a local file");
    let missing = dir.path().join("gone.wav");
    let reason = harness.fail(missing.to_str().unwrap());
    assert!(
        reason.starts_with(&format!("cannot read `{}`: ", missing.display())),
        "{reason}"
    );
}

#[test]
fn settings_are_checked() {
    use flow_engine::registry::StageKind;
    let problems = MediaFetchKind.check(&serde_json::json!({ "sha256": "abc" }));
    assert_eq!(problems[0].path, vec!["sha256"]);
    assert_eq!(problems[0].message, "`abc` is not a SHA-256 in hex");
    let problems = MediaFetchKind.check(&serde_json::json!({ "max_size": "4GiX" }));
    assert_eq!(problems[0].path, vec!["max_size"]);
    assert!(
        problems[0].message.contains("unknown size unit `GiX`"),
        "{problems:?}"
    );
}
