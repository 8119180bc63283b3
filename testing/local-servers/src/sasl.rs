//! The broker side of SASL PLAIN and SCRAM-SHA-256/512 (RFC 4616, RFC 5802,
//! RFC 7677), for the Kafka front (kafka_front.rs).
//!
//! Why our own: tansu 0.6 as shipped (dynostore storage only) keeps no SCRAM
//! credentials (its dynostore `user_scram_credential` answers "no such user"
//! for everyone, so every SCRAM login fails) and its PLAIN check accepts any
//! password. The client side under test is librdkafka's own SASL code, which
//! also checks the server's SCRAM signature, so a wrong server side here
//! would fail the tests rather than hide a bug.

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The mechanisms the front offers, by their SaslHandshake names.
pub const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// What Kafka brokers answer for any failed login (unknown user or wrong
/// password alike, so a client cannot probe for user names).
pub fn failure_message(mechanism: &str) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
    )
}

/// The next step of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes and wait for the client's next message.
    Continue(Vec<u8>),
    /// Logged in as the user; send these bytes (possibly empty).
    Done { user: String, reply: Vec<u8> },
    /// Refused.
    Failed,
}

#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// RFC 5802 `Hi()`: PBKDF2 with HMAC, one block.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut block = salt.to_vec();
        block.extend_from_slice(&1u32.to_be_bytes());
        let mut u = self.hmac(password, &block);
        let mut out = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &u);
            out.iter_mut().zip(&u).for_each(|(o, b)| *o ^= b);
        }
        out
    }
}

/// User name → password, if the user exists.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + Send + 'a>;

/// One login in progress.
pub struct Login<'a> {
    mechanism: &'static str,
    lookup: Lookup<'a>,
    state: State,
    /// Fixed salt and server nonce, for the RFC test vectors.
    fixed: Option<(Vec<u8>, String)>,
}

enum State {
    Start,
    /// Sent the server-first message of a SCRAM login.
    ScramFirstSent {
        hash: Hash,
        user: String,
        password: Option<String>,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        salt: Vec<u8>,
        iterations: u32,
    },
    Over,
}

const ITERATIONS: u32 = 4096;

impl<'a> Login<'a> {
    /// A login with `mechanism` (one of [`MECHANISMS`]), checking passwords
    /// with `lookup` (user name → password); `None` for other mechanisms.
    pub fn new(
        mechanism: &str,
        lookup: impl Fn(&str) -> Option<String> + Send + 'a,
    ) -> Option<Self> {
        let mechanism = *MECHANISMS.iter().find(|m| **m == mechanism)?;
        Some(Login {
            mechanism,
            lookup: Box::new(lookup),
            state: State::Start,
            fixed: None,
        })
    }

    /// The same login with a fixed salt and server nonce (test vectors).
    pub fn with_fixed_salt_and_nonce(mut self, salt: Vec<u8>, server_nonce: &str) -> Self {
        self.fixed = Some((salt, server_nonce.to_owned()));
        self
    }

    pub fn mechanism(&self) -> &'static str {
        self.mechanism
    }

    /// Handles the client's next message.
    pub fn step(&mut self, message: &[u8]) -> Step {
        match std::mem::replace(&mut self.state, State::Over) {
            State::Start => match self.mechanism {
                "PLAIN" => self.plain(message),
                "SCRAM-SHA-256" => self.scram_first(Hash::Sha256, message),
                _ => self.scram_first(Hash::Sha512, message),
            },
            first_sent @ State::ScramFirstSent { .. } => scram_final(first_sent, message),
            State::Over => Step::Failed,
        }
    }

    /// `authzid NUL authcid NUL password`.
    fn plain(&mut self, message: &[u8]) -> Step {
        let parts: Vec<&[u8]> = message.split(|b| *b == 0).collect();
        let [authzid, user, password] = parts.as_slice() else {
            return Step::Failed;
        };
        let (Ok(authzid), Ok(user), Ok(password)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(user),
            std::str::from_utf8(password),
        ) else {
            return Step::Failed;
        };
        let known = (self.lookup)(user);
        if (authzid.is_empty() || authzid == user) && known.as_deref() == Some(password) {
            Step::Done {
                user: user.to_owned(),
                reply: Vec::new(),
            }
        } else {
            Step::Failed
        }
    }

    /// client-first `n,,n=USER,r=NONCE` → server-first `r=NONCE+OURS,s=SALT,i=N`.
    fn scram_first(&mut self, hash: Hash, message: &[u8]) -> Step {
        let Ok(text) = std::str::from_utf8(message) else {
            return Step::Failed;
        };
        // gs2 header: no channel binding ("n") and no authzid, as Kafka wants.
        let Some(client_first_bare) = text.strip_prefix("n,,") else {
            return Step::Failed;
        };
        let mut user = None;
        let mut client_nonce = None;
        for attr in client_first_bare.split(',') {
            match attr.split_once('=') {
                Some(("n", v)) => user = Some(v.replace("=2C", ",").replace("=3D", "=")),
                Some(("r", v)) => client_nonce = Some(v.to_owned()),
                _ => {}
            }
        }
        let (Some(user), Some(client_nonce)) = (user, client_nonce) else {
            return Step::Failed;
        };
        let (salt, server_nonce) = match &self.fixed {
            Some((salt, nonce)) => (salt.clone(), nonce.clone()),
            None => (
                (0..16).map(|_| fastrand::u8(..)).collect(),
                (0..24).map(|_| fastrand::alphanumeric()).collect(),
            ),
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let iterations = ITERATIONS;
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        // An unknown user gets a normal challenge and fails at the proof,
        // like a wrong password.
        let password = (self.lookup)(&user);
        self.state = State::ScramFirstSent {
            hash,
            user,
            password,
            client_first_bare: client_first_bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
            salt,
            iterations,
        };
        Step::Continue(server_first.into_bytes())
    }
}

/// client-final `c=biws,r=NONCE,p=PROOF` → server-final `v=SIGNATURE`.
fn scram_final(state: State, message: &[u8]) -> Step {
    let State::ScramFirstSent {
        hash,
        user,
        password,
        client_first_bare,
        server_first,
        nonce,
        salt,
        iterations,
    } = state
    else {
        return Step::Failed;
    };
    let Ok(text) = std::str::from_utf8(message) else {
        return Step::Failed;
    };
    let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
        return Step::Failed;
    };
    let mut channel_binding_ok = false;
    let mut nonce_ok = false;
    for attr in without_proof.split(',') {
        match attr.split_once('=') {
            // base64("n,,")
            Some(("c", v)) => channel_binding_ok = v == "biws",
            Some(("r", v)) => nonce_ok = v == nonce,
            _ => {}
        }
    }
    let (Some(password), true, true, Ok(proof)) =
        (password, channel_binding_ok, nonce_ok, B64.decode(proof))
    else {
        return Step::Failed;
    };
    let salted = hash.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.digest(&client_key);
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let client_signature = hash.hmac(&stored_key, auth_message.as_bytes());
    if proof.len() != client_signature.len() {
        return Step::Failed;
    }
    let recovered: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    if hash.digest(&recovered) != stored_key {
        return Step::Failed;
    }
    let server_key = hash.hmac(&salted, b"Server Key");
    let server_signature = hash.hmac(&server_key, auth_message.as_bytes());
    Step::Done {
        user,
        reply: format!("v={}", B64.encode(server_signature)).into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(name: &str) -> Option<String> {
        (name == "user").then(|| "pencil".to_owned())
    }

    /// RFC 7677 section 3: the SCRAM-SHA-256 exchange, byte for byte.
    #[test]
    fn rfc_7677_test_vector() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let mut login = Login::new("SCRAM-SHA-256", users)
            .unwrap()
            .with_fixed_salt_and_nonce(salt, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        let first = login.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            first,
            Step::Continue(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
                    .to_vec()
            )
        );
        let last = login.step(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        assert_eq!(
            last,
            Step::Done {
                user: "user".into(),
                reply: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()
            }
        );
    }

    #[test]
    fn a_wrong_proof_or_user_fails() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        for (first, last) in [
            // One character of the proof changed.
            (
                "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            ),
            // Unknown user, right proof for "user".
            (
                "n,,n=someone,r=rOprNGfwEbeRWgbNEkqO",
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            ),
        ] {
            let mut login = Login::new("SCRAM-SHA-256", users)
                .unwrap()
                .with_fixed_salt_and_nonce(salt.clone(), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
            assert!(matches!(login.step(first.as_bytes()), Step::Continue(_)));
            assert_eq!(login.step(last.as_bytes()), Step::Failed);
        }
    }

    #[test]
    fn plain_checks_the_password() {
        let mut ok = Login::new("PLAIN", users).unwrap();
        assert!(matches!(ok.step(b"\0user\0pencil"), Step::Done { .. }));
        let mut wrong = Login::new("PLAIN", users).unwrap();
        assert_eq!(wrong.step(b"\0user\0pen"), Step::Failed);
        assert!(Login::new("GSSAPI", users).is_none());
    }
}
