//! The mutual TLS of a link session (issue 23: "the link trusts the peer network's CA for
//! the peer hub's link certificate alone"; "refused across the link: a link certificate
//! from a third network's CA"). A real tonic server (the health service) listens with
//! network A's `link_server_config`, A linked to B, on a loopback socket; clients present
//! real certificates made by `tls::init` and `tls::link::init`. Only B's link certificate
//! gets through; the server says why it refused each of the others.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use corridor::model::{Amount, Bic, Currency, CurrencyPair, MessageType, Rate};
use corridor::tls::link::{self, LinkBundle, LinkConfig};
use corridor::tls::{self, NetworkDir, Role};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Bounds every wait on the server's word about a handshake; a stuck one fails the test.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(20);

const A_LINK: &str = "CBRFRUMMXXX";
const B_LINK: &str = "BMJIIRTHXXX";
const C_LINK: &str = "PBOCCNBJXXX";

fn bic(text: &str) -> Bic {
    Bic::parse(text).unwrap()
}

/// A network made by `tls::init` with two banks and a link identity.
fn network(root: &Path, name: &str, banks: [&str; 2], link_bic: &str, currency: &str) -> NetworkDir {
    let dir = root.join(name);
    tls::init(&dir, &banks.map(bic)).unwrap();
    link::init(&dir, bic(link_bic), name, Currency::parse(currency).unwrap()).unwrap();
    NetworkDir::new(dir)
}

/// The link from `own` to `peer`, added to `own`'s files and read back.
fn link(own: &NetworkDir, peer: &NetworkDir) -> LinkConfig {
    let (own_currency, peer_bundle) =
        (own.link_identity().unwrap().unwrap().currency, peer.link_bundle().unwrap());
    let config = LinkConfig {
        rate_out: (CurrencyPair::new(own_currency, peer_bundle.currency).unwrap(), Rate::parse("2").unwrap()),
        rate_in: (
            CurrencyPair::new(peer_bundle.currency, own_currency).unwrap(),
            Rate::parse("0.5").unwrap(),
        ),
        cap: Amount::parse("1000000", own_currency).unwrap(),
        accepts: vec![MessageType::Pacs008, MessageType::Pacs002],
        peer_url: None,
        peer: peer_bundle,
    };
    own.add_link(&config).unwrap();
    own.links().unwrap().into_iter().find(|l| l.peer.bic == config.peer.bic).unwrap()
}

/// A health server on a loopback port with `config`; every handshake's outcome (the
/// rustls error of a refused one) goes to the returned receiver. Stops when the sender of
/// the shutdown signal is dropped.
async fn serve(
    config: rustls::ServerConfig,
) -> (String, mpsc::UnboundedReceiver<Result<(), String>>, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (outcomes, outcomes_rx) = mpsc::unbounded_channel();
    let (connections, incoming) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, outcomes, connections) = (acceptor.clone(), outcomes.clone(), connections.clone());
            tokio::spawn(async move {
                match acceptor.accept(stream).await {
                    Ok(tls) => {
                        let _ = outcomes.send(Ok(()));
                        let _ = connections.send(Ok::<_, std::io::Error>(tls)).await;
                    }
                    Err(error) => {
                        let _ = outcomes.send(Err(error.to_string()));
                    }
                }
            });
        }
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(Server::builder().add_service(health).serve_with_incoming_shutdown(
        tokio_stream::wrappers::ReceiverStream::new(incoming),
        async {
            let _ = stopped.await;
        },
    ));
    (url, outcomes_rx, stop)
}

/// Connects with `tls` and asks for the server's health: `Ok` only if the whole exchange
/// succeeded.
async fn health_check(url: &str, tls: ClientTlsConfig) -> Result<(), String> {
    let channel = Endpoint::from_shared(url.to_owned())
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map_err(|e| format!("health check: {e}"))?;
    assert_eq!(response.into_inner().status, 1, "SERVING");
    Ok(())
}

/// The server's word on the next handshake.
async fn next_outcome(outcomes: &mut mpsc::UnboundedReceiver<Result<(), String>>) -> Result<(), String> {
    tokio::time::timeout(HANDSHAKE_WAIT, outcomes.recv())
        .await
        .expect("the server finished the handshake")
        .expect("the accept loop runs")
}

/// Whether a TLS error says the certificate was not issued by the trusted CA: an unknown
/// issuer, or, since every network's CA bears the same name, a signature that does not
/// verify under the CA of that name.
fn not_issued_by_the_trusted_ca(error: &str) -> bool {
    ["UnknownIssuer", "unknown issuer", "BadSignature", "bad signature"].iter().any(|s| error.contains(s))
}

/// A client that trusts A's link listener as a link client would, with `identity`.
fn client_of_a(a: &NetworkDir, identity: Option<Identity>) -> ClientTlsConfig {
    let ca = std::fs::read(a.root().join("ca.pem")).unwrap();
    let config = ClientTlsConfig::new()
        .domain_name(link::link_server_name(bic(A_LINK)))
        .ca_certificate(Certificate::from_pem(ca));
    match identity {
        Some(identity) => config.identity(identity),
        None => config,
    }
}

/// A certificate and key from `network`'s CA that names `link_bic` as a link certificate
/// does: what a third network's CA could issue to pose as a peer.
fn forged_link_identity(network: &NetworkDir, link_bic: &str) -> Identity {
    let root = network.root();
    let ca_pem = std::fs::read_to_string(root.join("ca.pem")).unwrap();
    let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(root.join("ca.key")).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![tls::SERVER_NAME.to_owned()]).unwrap();
    let uri = format!("{}{link_bic}", tls::URI_LINK_PREFIX);
    params.subject_alt_names.push(rcgen::SanType::URI(uri.try_into().unwrap()));
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate = params.signed_by(&key, &issuer).unwrap();
    assert_eq!(link::link_bic_of_certificate(certificate.der()), Some(bic(link_bic)));
    Identity::from_pem(certificate.pem(), key.serialize_pem())
}

struct Networks {
    _temp: TempDir,
    a: NetworkDir,
    b: NetworkDir,
    c: NetworkDir,
}

/// A (RUB) linked to B (IRR) both ways; C (CNY) linked to A on its side only, so that C
/// has a link configuration to dial A with.
fn networks() -> Networks {
    let temp = tempfile::tempdir().unwrap();
    let a = network(temp.path(), "a", ["BANKRUMMXXX", "SBERRUMMXXX"], A_LINK, "RUB");
    let b = network(temp.path(), "b", ["BANKIRTHXXX", "MELIIRTHXXX"], B_LINK, "IRR");
    let c = network(temp.path(), "c", ["BANKCNBJXXX", "ICBKCNBJXXX"], C_LINK, "CNY");
    link(&a, &b);
    link(&b, &a);
    link(&c, &a);
    Networks { _temp: temp, a, b, c }
}

/// A's link listener lets B's link certificate in, and refuses, at the handshake, each
/// certificate that is not B's link certificate from B's CA: (b) a third network's link
/// certificate, (c) a bank certificate of B, (d) a certificate of the third network's CA
/// naming B's link BIC, and a client with no certificate at all. The server's reasons
/// show each was refused by the rule meant for it.
#[tokio::test]
async fn a_link_listener_admits_only_the_peer_link_certificate() {
    let Networks { a, b, c, _temp } = networks();
    let config = a.link_server_config(&a.links().unwrap()).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
    let (url, mut outcomes, _stop) = serve(config).await;

    // (a) B's link identity, dialling as the hub will.
    let b_to_a = b.links().unwrap().remove(0);
    health_check(&url, b.link_client_tls(&b_to_a).unwrap()).await.expect("B's link gets through");
    assert_eq!(next_outcome(&mut outcomes).await, Ok(()));

    // (b) C's link certificate, from C's CA: C is no peer of A's.
    let c_to_a = c.links().unwrap().remove(0);
    assert!(health_check(&url, c.link_client_tls(&c_to_a).unwrap()).await.is_err());
    let refusal = next_outcome(&mut outcomes).await.unwrap_err();
    assert!(refusal.contains(&format!("{C_LINK} is not a configured link peer")), "{refusal}");

    // (c) a bank certificate of B, from B's CA: no link URI.
    let bank = b.tls_identity(Role::Bank(bic("BANKIRTHXXX"))).unwrap();
    assert!(health_check(&url, client_of_a(&a, Some(bank))).await.is_err());
    let refusal = next_outcome(&mut outcomes).await.unwrap_err();
    assert!(refusal.contains("not a link certificate"), "{refusal}");

    // B's hub certificate is no link certificate either.
    let hub = b.tls_identity(Role::Hub).unwrap();
    assert!(health_check(&url, client_of_a(&a, Some(hub))).await.is_err());
    let refusal = next_outcome(&mut outcomes).await.unwrap_err();
    assert!(refusal.contains("not a link certificate"), "{refusal}");

    // (d) C's CA issuing a certificate that names B's link BIC: the chain is checked
    // against B's CA, which did not sign it (every network's CA has the same name, so
    // webpki finds B's as the issuer by name and its signature check fails).
    let forged = forged_link_identity(&c, B_LINK);
    assert!(health_check(&url, client_of_a(&a, Some(forged))).await.is_err());
    let refusal = next_outcome(&mut outcomes).await.unwrap_err();
    assert!(not_issued_by_the_trusted_ca(&refusal), "{refusal}");

    // A's own CA is not trusted on the link either: A's link certificate names A.
    let own = Identity::from_pem(
        std::fs::read(a.link_dir().join("link.crt")).unwrap(),
        std::fs::read(a.link_dir().join("link.key")).unwrap(),
    );
    assert!(health_check(&url, client_of_a(&a, Some(own))).await.is_err());
    let refusal = next_outcome(&mut outcomes).await.unwrap_err();
    assert!(refusal.contains(&format!("{A_LINK} is not a configured link peer")), "{refusal}");

    // No client certificate: client authentication is required.
    assert!(health_check(&url, client_of_a(&a, None)).await.is_err());
    let refusal = next_outcome(&mut outcomes).await.unwrap_err();
    assert!(refusal.to_lowercase().contains("certificate"), "{refusal}");

    // And B still gets through afterwards.
    health_check(&url, b.link_client_tls(&b_to_a).unwrap()).await.expect("B's link gets through again");
    assert_eq!(next_outcome(&mut outcomes).await, Ok(()));
}

/// With two peers, each peer's CA vouches for its own link BIC alone: a certificate from
/// C's CA (a peer, trusted for C) naming B's BIC is refused, while B and C each get in
/// with their own link certificates. A listener that trusted the union of its peers' CAs
/// would let C speak as B.
#[tokio::test]
async fn a_peer_ca_vouches_only_for_its_own_link_bic() {
    let Networks { a, b, c, _temp } = networks();
    link(&a, &c);
    let links = a.links().unwrap();
    assert_eq!(links.len(), 2);
    let (url, mut outcomes, _stop) = serve(a.link_server_config(&links).unwrap()).await;

    for (network, name) in [(&b, "B"), (&c, "C")] {
        let to_a = network.links().unwrap().remove(0);
        health_check(&url, network.link_client_tls(&to_a).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(next_outcome(&mut outcomes).await, Ok(()), "{name} gets in");
    }
    let c_as_b = forged_link_identity(&c, B_LINK);
    assert!(health_check(&url, client_of_a(&a, Some(c_as_b))).await.is_err());
    let refusal = next_outcome(&mut outcomes).await.unwrap_err();
    assert!(not_issued_by_the_trusted_ca(&refusal), "{refusal}");
    let c_as_c = forged_link_identity(&c, C_LINK);
    health_check(&url, client_of_a(&a, Some(c_as_c))).await.expect("C's CA vouches for C");
    assert_eq!(next_outcome(&mut outcomes).await, Ok(()));
}

/// The dialer trusts the peer's CA for the peer's link certificate alone: a server of
/// the peer's network presenting its bank certificate (from the very CA the link trusts)
/// is refused by the client, as is A's link listener when the client expects another CA.
#[tokio::test]
async fn a_link_dialer_accepts_only_the_peer_link_listener() {
    let Networks { a, b, c, _temp } = networks();
    let b_to_a = b.links().unwrap().remove(0);

    // A server of A's network with a bank certificate of A (same CA, no link name).
    let (url, mut outcomes, _stop) = serve(a.server_config(Role::Bank(bic("BANKRUMMXXX"))).unwrap()).await;
    let error = health_check(&url, b.link_client_tls(&b_to_a).unwrap()).await.unwrap_err();
    assert!(error.contains("NotValidForName") || error.to_lowercase().contains("name"), "{error}");
    assert!(next_outcome(&mut outcomes).await.is_err(), "the client broke off the handshake");

    // A's real link listener, dialled by a client that takes it for C's: wrong CA.
    let (url, mut outcomes, _stop) = serve(a.link_server_config(&a.links().unwrap()).unwrap()).await;
    let posing =
        LinkConfig { peer: LinkBundle { bic: bic(A_LINK), ..c.link_bundle().unwrap() }, ..b_to_a.clone() };
    let error = health_check(&url, b.link_client_tls(&posing).unwrap()).await.unwrap_err();
    assert!(not_issued_by_the_trusted_ca(&error), "{error}");
    assert!(next_outcome(&mut outcomes).await.is_err());

    // The real thing works.
    health_check(&url, b.link_client_tls(&b_to_a).unwrap()).await.unwrap();
    assert_eq!(next_outcome(&mut outcomes).await, Ok(()));
}

/// A listener needs at least one link to trust, and a network without a link identity has
/// no link certificate to serve or dial with.
#[test]
fn link_tls_needs_a_link_identity_and_a_link() {
    let temp = tempfile::tempdir().unwrap();
    let a = network(temp.path(), "a", ["BANKRUMMXXX", "SBERRUMMXXX"], A_LINK, "RUB");
    let error = a.link_server_config(&[]).unwrap_err().to_string();
    assert!(error.contains("no link is configured"), "{error}");
    let bare = temp.path().join("bare");
    tls::init(&bare, &[bic("BANKRUMMXXX"), bic("SBERRUMMXXX")]).unwrap();
    let bare = NetworkDir::new(bare);
    let b = network(temp.path(), "b", ["BANKIRTHXXX", "MELIIRTHXXX"], B_LINK, "IRR");
    let b_to_a = link(&b, &a);
    let error = bare.link_server_config(std::slice::from_ref(&b_to_a)).unwrap_err().to_string();
    assert!(error.contains("link init"), "{error}");
    let error = bare.link_client_tls(&b_to_a).unwrap_err().to_string();
    assert!(error.contains("link init"), "{error}");
}
