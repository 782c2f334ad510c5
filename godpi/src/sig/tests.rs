//! Byte-array fixtures for the signatures, positive and negative, most taken from
//! packets of nDPI's test captures (`../shared/pcaps/ndpi`).

use super::*;

fn run(_from_client: bool, proto: u8, cport: u16, sport: u16, p: &[u8]) -> Verdict {
    classify(&Ctx {
        proto,
        client_port: cport,
        server_port: sport,
        payload: p,
        own_first: None,
        other: None,
    })
}

#[test]
fn http_request_and_response() {
    assert_eq!(
        run(
            true,
            TCP,
            42170,
            80,
            b"GET / HTTP/1.1\r\nHost: google.com\r\n"
        ),
        Strong(l7::HTTP)
    );
    assert_eq!(
        run(false, TCP, 42170, 80, b"HTTP/1.1 301 Moved Permanently\r\n"),
        Strong(l7::HTTP)
    );
    assert_eq!(
        run(true, TCP, 42170, 80, b"GETX / HTTP/1.1\r\n"),
        Verdict::None
    );
}
