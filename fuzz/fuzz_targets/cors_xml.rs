//! `from_xml` on arbitrary bytes: never panics; whatever parses survives a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use preflight_cors::CorsConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = CorsConfig::from_xml(data) {
        let xml = config.to_xml();
        let again = CorsConfig::from_xml(xml.as_bytes()).expect("to_xml output must parse");
        assert_eq!(again, config, "XML round trip changed the configuration");
        let json = CorsConfig::from_json(&config.to_json()).expect("to_json output must parse");
        assert_eq!(json, config, "JSON round trip changed the configuration");
    }
});
