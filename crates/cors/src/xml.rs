//! The `CORSConfiguration` XML document (spec §1): parsing for PutBucketCors and
//! serialization for GetBucketCors.

use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

use crate::error::ConfigError;
use crate::model::{CorsConfig, CorsRule, MAX_DOCUMENT_BYTES, S3_NAMESPACE};

type Parsed<T> = Result<T, ConfigError>;

impl CorsConfig {
    /// Parses and validates a PutBucketCors body. The namespace is optional (the S3 one or
    /// none; any other is MalformedXML); the order of a rule's children is insignificant;
    /// unknown elements, DOCTYPEs and text outside the leaf elements are MalformedXML.
    /// Values are kept exactly as sent (no trimming), except `MaxAgeSeconds`, which is parsed as
    /// an integer with surrounding whitespace allowed.
    pub fn from_xml(body: &[u8]) -> Result<CorsConfig, ConfigError> {
        // Preflight choice (spec §12): over 64 KB → MalformedXML, as S3 does for other
        // over-limit XML bodies (e.g. DeleteObjects with more than 1000 keys).
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(ConfigError::malformed("document larger than 64 KB"));
        }
        let config = Parser::new(body).document()?;
        config.validate()?;
        Ok(config)
    }

    /// Parses without validating: for `cors lint`/`cors explain`, which must read documents
    /// S3 would reject (OPTIONS methods, wildcard ExposeHeaders, …) and report them. Only a
    /// document that is not a `CORSConfiguration` at all is an error. No size limit.
    pub fn from_xml_unchecked(body: &[u8]) -> Result<CorsConfig, ConfigError> {
        Parser::new(body).document()
    }

    /// Serializes for GetBucketCors: XML declaration, the namespaced root, only the members
    /// that are set, list order kept. Children follow the API reference's order
    /// (AllowedHeader, AllowedMethod, AllowedOrigin, ExposeHeader, ID, MaxAgeSeconds).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(128 + self.rules.len() * 128);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CORSConfiguration xmlns=\"");
        out.push_str(S3_NAMESPACE);
        out.push_str("\">");
        for rule in &self.rules {
            out.push_str("<CORSRule>");
            for v in &rule.allowed_headers {
                leaf(&mut out, "AllowedHeader", v);
            }
            for v in &rule.allowed_methods {
                leaf(&mut out, "AllowedMethod", v);
            }
            for v in &rule.allowed_origins {
                leaf(&mut out, "AllowedOrigin", v);
            }
            for v in &rule.expose_headers {
                leaf(&mut out, "ExposeHeader", v);
            }
            if let Some(id) = &rule.id {
                leaf(&mut out, "ID", id);
            }
            if let Some(age) = rule.max_age_seconds {
                leaf(&mut out, "MaxAgeSeconds", &age.to_string());
            }
            out.push_str("</CORSRule>");
        }
        out.push_str("</CORSConfiguration>");
        out
    }
}

impl CorsConfig {
    /// The same document as [`CorsConfig::to_xml`], indented for people (`cors preset`), with
    /// the children in the order the S3 user guide shows them.
    pub fn to_xml_pretty(&self) -> String {
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CORSConfiguration xmlns=\"{S3_NAMESPACE}\">\n"
        );
        for rule in &self.rules {
            out.push_str("  <CORSRule>\n");
            let mut line = |name: &str, value: &str| {
                out.push_str("    ");
                leaf(&mut out, name, value);
                out.push('\n');
            };
            if let Some(id) = &rule.id {
                line("ID", id);
            }
            for v in &rule.allowed_origins {
                line("AllowedOrigin", v);
            }
            for v in &rule.allowed_methods {
                line("AllowedMethod", v);
            }
            for v in &rule.allowed_headers {
                line("AllowedHeader", v);
            }
            for v in &rule.expose_headers {
                line("ExposeHeader", v);
            }
            if let Some(age) = rule.max_age_seconds {
                line("MaxAgeSeconds", &age.to_string());
            }
            out.push_str("  </CORSRule>\n");
        }
        out.push_str("</CORSConfiguration>\n");
        out
    }
}

fn leaf(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape_into(out, value);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// XML text escaping. `\r` is written as a character reference so that it survives the
/// line-ending normalisation of conforming parsers.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// The child elements of a `CORSRule`.
#[derive(Clone, Copy)]
enum Field {
    AllowedHeader,
    AllowedMethod,
    AllowedOrigin,
    ExposeHeader,
    Id,
    MaxAgeSeconds,
}

impl Field {
    fn from_name(name: &[u8]) -> Option<Field> {
        Some(match name {
            b"AllowedHeader" => Field::AllowedHeader,
            b"AllowedMethod" => Field::AllowedMethod,
            b"AllowedOrigin" => Field::AllowedOrigin,
            b"ExposeHeader" => Field::ExposeHeader,
            b"ID" => Field::Id,
            b"MaxAgeSeconds" => Field::MaxAgeSeconds,
            _ => return None,
        })
    }
}

/// One XML event, reduced to what the grammar needs.
enum Token {
    Open(Vec<u8>),
    Close,
    Text(String),
    /// Comments, processing instructions, the XML declaration.
    Ignorable,
    Eof,
}

struct Parser<'a> {
    reader: NsReader<&'a [u8]>,
}

impl<'a> Parser<'a> {
    fn new(body: &'a [u8]) -> Self {
        let mut reader = NsReader::from_reader(body);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.trim_text(false);
        Self { reader }
    }

    fn next(&mut self) -> Parsed<Token> {
        let (ns, event) = self
            .reader
            .read_resolved_event()
            .map_err(|e| ConfigError::malformed(format!("not well-formed: {e}")))?;
        let namespaced_ok = |ns: &ResolveResult| match ns {
            ResolveResult::Unbound => true,
            ResolveResult::Bound(Namespace(n)) => *n == S3_NAMESPACE.as_bytes(),
            ResolveResult::Unknown(_) => false,
        };
        Ok(match event {
            Event::Start(e) => {
                if !namespaced_ok(&ns) {
                    return Err(ConfigError::malformed("element in a foreign namespace"));
                }
                Token::Open(e.local_name().as_ref().to_vec())
            }
            Event::End(_) => Token::Close,
            Event::Text(t) => Token::Text(
                t.unescape()
                    .map_err(|e| ConfigError::malformed(format!("bad text: {e}")))?
                    .into_owned(),
            ),
            Event::CData(c) => Token::Text(
                c.decode()
                    .map_err(|e| ConfigError::malformed(format!("bad CDATA: {e}")))?
                    .into_owned(),
            ),
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => Token::Ignorable,
            Event::DocType(_) => return Err(ConfigError::malformed("DOCTYPE not allowed")),
            // Expanded into Start + End by the reader configuration.
            Event::Empty(_) => return Err(ConfigError::malformed("unexpected empty element")),
            Event::Eof => Token::Eof,
        })
    }

    /// document := misc* <CORSConfiguration> rule* </CORSConfiguration> misc*
    fn document(&mut self) -> Parsed<CorsConfig> {
        loop {
            match self.next()? {
                Token::Open(name) if name == b"CORSConfiguration" => break,
                Token::Open(_) => {
                    return Err(ConfigError::malformed("root is not CORSConfiguration"));
                }
                Token::Text(t) if is_blank(&t) => {}
                Token::Ignorable => {}
                _ => return Err(ConfigError::malformed("content before the root element")),
            }
        }
        let mut config = CorsConfig::default();
        loop {
            match self.next()? {
                Token::Open(name) if name == b"CORSRule" => config.rules.push(self.rule()?),
                Token::Open(_) => {
                    return Err(ConfigError::malformed(
                        "unknown element in CORSConfiguration",
                    ));
                }
                Token::Close => break,
                Token::Text(t) if is_blank(&t) => {}
                Token::Ignorable => {}
                _ => return Err(ConfigError::malformed("text in CORSConfiguration")),
            }
        }
        loop {
            match self.next()? {
                Token::Eof => return Ok(config),
                Token::Text(t) if is_blank(&t) => {}
                Token::Ignorable => {}
                _ => return Err(ConfigError::malformed("content after the root element")),
            }
        }
    }

    fn rule(&mut self) -> Parsed<CorsRule> {
        let mut rule = CorsRule::default();
        loop {
            match self.next()? {
                Token::Open(name) => {
                    let field = Field::from_name(&name)
                        .ok_or_else(|| ConfigError::malformed("unknown element in CORSRule"))?;
                    let value = self.leaf_text()?;
                    store(&mut rule, field, value)?;
                }
                Token::Close => return Ok(rule),
                Token::Text(t) if is_blank(&t) => {}
                Token::Ignorable => {}
                _ => return Err(ConfigError::malformed("text in CORSRule")),
            }
        }
    }

    /// The text of a leaf element, up to and including its end tag.
    fn leaf_text(&mut self) -> Parsed<String> {
        let mut text = String::new();
        loop {
            match self.next()? {
                Token::Text(t) => text.push_str(&t),
                Token::Ignorable => {}
                Token::Close => return Ok(text),
                Token::Open(_) | Token::Eof => {
                    return Err(ConfigError::malformed("element inside a value"));
                }
            }
        }
    }
}

fn store(rule: &mut CorsRule, field: Field, value: String) -> Parsed<()> {
    match field {
        Field::AllowedHeader => rule.allowed_headers.push(value),
        Field::AllowedMethod => rule.allowed_methods.push(value),
        Field::AllowedOrigin => rule.allowed_origins.push(value),
        Field::ExposeHeader => rule.expose_headers.push(value),
        Field::Id => {
            if rule.id.replace(value).is_some() {
                return Err(ConfigError::malformed("more than one ID"));
            }
        }
        Field::MaxAgeSeconds => {
            // spec §2: non-numeric → MalformedXML (schema type check).
            let age = value
                .trim_matches(|c: char| c.is_ascii_whitespace())
                .parse::<i64>()
                .map_err(|_| ConfigError::malformed("MaxAgeSeconds is not an integer"))?;
            if rule.max_age_seconds.replace(age).is_some() {
                return Err(ConfigError::malformed("more than one MaxAgeSeconds"));
            }
        }
    }
    Ok(())
}

fn is_blank(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

    fn parse(s: &str) -> Result<CorsConfig, ConfigError> {
        CorsConfig::from_xml(s.as_bytes())
    }

    fn code(s: &str) -> &'static str {
        parse(s).unwrap_err().code()
    }

    #[test]
    fn parses_with_and_without_namespace_in_any_child_order() {
        let a = format!(
            "<?xml version=\"1.0\"?>\n<CORSConfiguration xmlns=\"{NS}\">\n  <CORSRule>\n    <MaxAgeSeconds>3000</MaxAgeSeconds><ID>r1</ID>\n    <ExposeHeader>ETag</ExposeHeader><AllowedOrigin>*</AllowedOrigin>\n    <AllowedMethod>GET</AllowedMethod><AllowedHeader>*</AllowedHeader><AllowedMethod>PUT</AllowedMethod>\n  </CORSRule>\n</CORSConfiguration>\n"
        );
        let c = parse(&a).unwrap();
        assert_eq!(c.rules.len(), 1);
        let r = &c.rules[0];
        assert_eq!(r.id.as_deref(), Some("r1"));
        assert_eq!(r.allowed_methods, ["GET", "PUT"]);
        assert_eq!(r.allowed_origins, ["*"]);
        assert_eq!(r.allowed_headers, ["*"]);
        assert_eq!(r.expose_headers, ["ETag"]);
        assert_eq!(r.max_age_seconds, Some(3000));
        let b = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><ID>r1</ID><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule></CORSConfiguration>";
        assert_eq!(parse(b).unwrap(), c);
        // A prefixed S3 namespace is the same document.
        let p = format!(
            "<s3:CORSConfiguration xmlns:s3=\"{NS}\"><s3:CORSRule><s3:AllowedOrigin>*</s3:AllowedOrigin><s3:AllowedMethod>GET</s3:AllowedMethod></s3:CORSRule></s3:CORSConfiguration>"
        );
        assert_eq!(parse(&p).unwrap().rules[0].allowed_methods, ["GET"]);
    }

    #[test]
    fn values_kept_verbatim() {
        let c = parse("<CORSConfiguration><CORSRule><AllowedOrigin>http://test.com:80</AllowedOrigin><AllowedOrigin></AllowedOrigin><AllowedOrigin/><AllowedMethod>GET</AllowedMethod><AllowedHeader>x-AMZ-server-SIDE-encryption</AllowedHeader><ID>a &amp; b</ID></CORSRule></CORSConfiguration>").unwrap();
        let r = &c.rules[0];
        assert_eq!(r.allowed_origins, ["http://test.com:80", "", ""]);
        assert_eq!(r.allowed_headers, ["x-AMZ-server-SIDE-encryption"]);
        assert_eq!(r.id.as_deref(), Some("a & b"));
        assert_eq!(r.max_age_seconds, None);
        assert!(r.expose_headers.is_empty());
    }

    #[test]
    fn malformed_documents() {
        for bad in [
            "",
            "not xml",
            "<CORSConfiguration>",
            "<CORSConfiguration></CORSConfiguration>",
            "<CORSConfiguration><CORSRule></CORSRule></CORSConfiguration>",
            "<CORSConfiguration><CORSRule/></CORSConfiguration>",
            "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>ten</MaxAgeSeconds></CORSRule></CORSConfiguration>",
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>99999999999999999999</MaxAgeSeconds></CORSRule></CORSConfiguration>",
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><Bogus>x</Bogus></CORSRule></CORSConfiguration>",
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><ID>a</ID><ID>b</ID></CORSRule></CORSConfiguration>",
            "<CORSConfiguration><CORSRule><AllowedOrigin><x/></AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
            "<CORSConfiguration>text<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration><CORSConfiguration/>",
            "<Other><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></Other>",
            "<CORSConfiguration xmlns=\"urn:other\"><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
            "<!DOCTYPE x [<!ENTITY e \"GET\">]><CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>&e;</AllowedMethod></CORSRule></CORSConfiguration>",
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></Wrong></CORSConfiguration>",
        ] {
            assert_eq!(code(bad), "MalformedXML", "{bad}");
            assert_eq!(
                parse(bad).unwrap_err().message(),
                "The XML you provided was not well-formed or did not validate against our published schema"
            );
        }
        assert_eq!(
            CorsConfig::from_xml(b"\xff\xfe<").unwrap_err().code(),
            "MalformedXML"
        );
    }

    #[test]
    fn invalid_requests() {
        let e = parse("<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedMethod>MYMETHOD</AllowedMethod><AllowedOrigin>*</AllowedOrigin><AllowedOrigin>https://test.com</AllowedOrigin></CORSRule></CORSConfiguration>").unwrap_err();
        assert_eq!(e.code(), "InvalidRequest");
        assert_eq!(
            e.message(),
            "Found unsupported HTTP method in CORS config. Unsupported method is MYMETHOD"
        );
        let e = parse("<CORSConfiguration><CORSRule><AllowedOrigin>example.com</AllowedOrigin><AllowedMethod></AllowedMethod></CORSRule></CORSConfiguration>").unwrap_err();
        assert_eq!(e.code(), "InvalidRequest");
        assert_eq!(
            e.message(),
            "Found unsupported HTTP method in CORS config. Unsupported method is "
        );
    }

    #[test]
    fn max_age_whitespace_and_sign() {
        let c = parse("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds> -1 </MaxAgeSeconds></CORSRule></CORSConfiguration>").unwrap();
        assert_eq!(c.rules[0].max_age_seconds, Some(-1));
    }

    #[test]
    fn choice_document_size_limit_is_65536_bytes() {
        let head = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>";
        let tail = "</CORSConfiguration>";
        let pad = |n: usize| {
            format!(
                "{head}<!--{}-->{tail}",
                "x".repeat(n - head.len() - tail.len() - 7)
            )
        };
        assert!(parse(&pad(65536)).is_ok());
        assert_eq!(code(&pad(65537)), "MalformedXML");
    }

    #[test]
    fn choice_too_many_rules_in_xml_is_invalid_request() {
        let rule = "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>";
        let doc = |n: usize| format!("<CORSConfiguration>{}</CORSConfiguration>", rule.repeat(n));
        assert!(parse(&doc(100)).is_ok());
        assert_eq!(code(&doc(101)), "InvalidRequest");
    }

    #[test]
    fn to_xml_exact_output() {
        let c = CorsConfig {
            rules: vec![CorsRule {
                id: Some("<r&\"1\">".into()),
                allowed_origins: vec!["https://a.com".into(), "*".into()],
                allowed_methods: vec!["PUT".into(), "GET".into()],
                allowed_headers: vec!["x-AMZ-*".into()],
                expose_headers: vec!["ETag".into()],
                max_age_seconds: Some(3000),
            }],
        };
        assert_eq!(
            c.to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><CORSRule><AllowedHeader>x-AMZ-*</AllowedHeader><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedOrigin>https://a.com</AllowedOrigin><AllowedOrigin>*</AllowedOrigin><ExposeHeader>ETag</ExposeHeader><ID>&lt;r&amp;&quot;1&quot;&gt;</ID><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule></CORSConfiguration>"
        );
        assert_eq!(parse(&c.to_xml()).unwrap(), c);
    }

    #[test]
    fn to_xml_pretty_parses_back() {
        let c = parse("<CORSConfiguration><CORSRule><ID>a&amp;b</ID><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><AllowedHeader>x</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>5</MaxAgeSeconds></CORSRule></CORSConfiguration>").unwrap();
        let x = c.to_xml_pretty();
        assert!(
            x.contains("\n    <AllowedOrigin>*</AllowedOrigin>\n"),
            "{x}"
        );
        assert_eq!(parse(&x).unwrap(), c);
    }

    #[test]
    fn to_xml_omits_unset_members() {
        let c = parse("<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>").unwrap();
        let x = c.to_xml();
        assert!(
            !x.contains("AllowedHeader")
                && !x.contains("<ID>")
                && !x.contains("MaxAge")
                && !x.contains("Expose")
        );
    }

    #[test]
    fn round_trip_odd_characters() {
        let c = CorsConfig {
            rules: vec![CorsRule {
                id: Some(" a\r\n\tb ]]> ' ".into()),
                allowed_origins: vec!["".into(), "https://ü.example".into()],
                allowed_methods: vec!["GET".into()],
                ..Default::default()
            }],
        };
        assert_eq!(parse(&c.to_xml()).unwrap(), c);
    }
}
