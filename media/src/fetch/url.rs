//! The little URL handling `media.fetch` needs: split off credentials
//! (never shown in messages), name the downloaded file, recognise video
//! pages.

/// An absolute URL, split where `media.fetch` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// `http`, `https`, … (lower case).
    pub scheme: String,
    /// `user:password` before the `@`, still percent-encoded.
    userinfo: Option<String>,
    /// `host` or `host:port`.
    authority: String,
    /// The path and query (starting with `/`, or empty), without the
    /// fragment.
    rest: String,
}

impl Url {
    /// Parses `text` as `scheme://[userinfo@]host[:port][/path][?query][#fragment]`.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (scheme, after) = text.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return None;
        }
        let after = after.split('#').next().unwrap_or("");
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        let (userinfo, authority) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user.to_string()), host),
            None => (None, authority),
        };
        if authority.is_empty() {
            return None;
        }
        Some(Self {
            scheme: scheme.to_ascii_lowercase(),
            userinfo,
            authority: authority.to_string(),
            rest: rest.to_string(),
        })
    }

    /// The URL without credentials: what requests go to and messages show.
    pub(crate) fn public(&self) -> String {
        let rest = if self.rest.is_empty() {
            "/"
        } else {
            &self.rest
        };
        format!("{}://{}{rest}", self.scheme, self.authority)
    }

    /// The host name, lower case, without the port.
    pub(crate) fn host(&self) -> String {
        let host = match self.authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => &self.authority,
        };
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase()
    }

    /// An `Authorization: Basic …` value for credentials in the URL.
    pub(crate) fn basic_auth(&self) -> Option<String> {
        let userinfo = self.userinfo.as_ref()?;
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let plain = format!("{}:{}", percent_decode(user), percent_decode(password));
        Some(format!("Basic {}", base64(plain.as_bytes())))
    }

    /// The file name for the download: the last segment of the path,
    /// decoded, with anything unsafe in a file name replaced by `_`
    /// (`download` when the path has none).
    pub(crate) fn file_name(&self) -> String {
        let path = self.rest.split('?').next().unwrap_or("");
        let last = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
        let decoded = percent_decode(last);
        let safe: String = decoded
            .chars()
            .map(|c| {
                if c == '/' || c == '\\' || c.is_control() || c == ':' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let safe = safe.trim_matches(|c: char| c == '.' || c.is_whitespace());
        if safe.is_empty() {
            "download".to_string()
        } else {
            safe.chars().take(200).collect()
        }
    }

    /// Whether this is a page of a video site that needs `yt-dlp`.
    pub(crate) fn is_video_page(&self) -> bool {
        let host = self.host();
        ["youtube.com", "youtu.be", "vimeo.com"]
            .iter()
            .any(|site| host == *site || host.ends_with(&format!(".{site}")))
    }
}

/// `text` with the credentials of any URL in it removed: for messages.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '`')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(i) => out.push_str(&authority[i + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_off_credentials() {
        let url = Url::parse("https://me:s%40cret@Example.com:8443/a/b%20c.mp3?x=1#frag").unwrap();
        assert_eq!(url.public(), "https://Example.com:8443/a/b%20c.mp3?x=1");
        assert_eq!(url.host(), "example.com");
        assert_eq!(url.file_name(), "b c.mp3");
        assert_eq!(
            url.basic_auth().unwrap(),
            format!("Basic {}", base64(b"me:s@cret"))
        );
        assert_eq!(base64(b"me:s@cret"), "bWU6c0BjcmV0");
    }

    #[test]
    fn redacts_credentials_in_text() {
        assert_eq!(
            redact("cannot fetch `https://me:pw@host/x.mp3`: refused"),
            "cannot fetch `https://host/x.mp3`: refused"
        );
        assert_eq!(redact("http://host/a@b"), "http://host/a@b");
    }

    #[test]
    fn names_files_and_spots_video_pages() {
        assert_eq!(Url::parse("http://h/").unwrap().file_name(), "download");
        assert_eq!(Url::parse("http://h/..").unwrap().file_name(), "download");
        assert!(Url::parse("https://www.youtube.com/watch?v=x")
            .unwrap()
            .is_video_page());
        assert!(Url::parse("https://youtu.be/x").unwrap().is_video_page());
        assert!(!Url::parse("https://notyoutube.com/x")
            .unwrap()
            .is_video_page());
    }
}
