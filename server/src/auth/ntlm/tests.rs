//! Known vectors: [MS-NLMP] 4.2.4 (NTLMv2) and a real Office Communicator 2007 R2 /
//! OCS 2007 R2 exchange (the one SIPE's sip-sec-ntlm-tests.c replays): its
//! AUTHENTICATE_MESSAGE, password `Pa$$word`, and the SIP signatures of a REGISTER
//! and of its 200 OK.

use super::*;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// The AUTHENTICATE_MESSAGE `msg`, parsed, for `(user, domain)`.
fn authenticate(msg: &[u8], (user, domain): (&str, &str)) -> Authenticate {
    let auth = Authenticate::parse(msg).unwrap();
    assert_eq!((auth.user.as_str(), auth.domain.as_str()), (user, domain));
    auth
}

#[test]
fn ms_nlmp_4_2_4_ntlmv2_vectors() {
    // 4.2.2.1.2 NTOWFv1 of "Password", 4.2.4.1.1 NTOWFv2.
    let nt = nt_hash("Password");
    assert_eq!(hex::encode(nt), "a4f49c406510bdcab6824ee7c30fd852");
    let key_nt = ntowf_v2(&nt, "User", "Domain");
    assert_eq!(hex::encode(key_nt), "0c868a403bfd7a93a3001ef22ef02e3f");
    // 4.2.4.2.2: NTProofStr over the server challenge and the client's blob.
    let server_challenge: [u8; 8] = unhex("0123456789abcdef").try_into().unwrap();
    let blob = unhex(
        "01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000\
         02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000",
    );
    let proof = hmac_md5(&key_nt, &[&server_challenge, &blob]);
    assert_eq!(hex::encode(proof), "68cd0ab851e51c96aabc927bebef6a1c");
    // 4.2.4.1.2 SessionBaseKey, 4.2.4.2.3 EncryptedSessionKey (RandomSessionKey 0x55 x 16).
    let base = hmac_md5(&key_nt, &[&proof]);
    assert_eq!(hex::encode(base), "8de40ccadbc14a82f15cb0ad0de95ca3");
    let mut session = [0x55u8; 16];
    rc4k(&base, &mut session);
    assert_eq!(hex::encode(session), "c5dad2544fc9799094ce1ce90bc9d03e");
    // The AUTHENTICATE_MESSAGE of 4.2.4.3 verifies with the password and gives the
    // client keys of 4.2.4.1.4/5.
    let msg = unhex(
        "4e544c4d5353500003000000180018006c00000054005400840000000c000c00480000000800080054\
         000000100010005c00000010001000d8000000358288e20501280a0000000f44006f006d00610069\
         006e00550073006500720043004f004d005000550054004500520086c35097ac9cec102554764a57cc\
         cc19aaaaaaaaaaaaaaaa68cd0ab851e51c96aabc927bebef6a1c010100000000000000000000000000\
         00aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e0001000c0053006500720076\
         00650072000000000000000000c5dad2544fc9799094ce1ce90bc9d03e",
    );
    let auth = authenticate(&msg, ("User", "Domain"));
    let keys = verify(&auth, &server_challenge, &nt).unwrap();
    assert_eq!(
        hex::encode(keys.client_sign),
        "4788dc861b4782f35d43fd98fe1a2d39"
    );
    assert_eq!(
        hex::encode(keys.client_seal),
        "59f600973cc4960a25480a7c196e4c58"
    );
    // 4.2.4.4 checksum (without the RC4 of a connection-oriented handle).
    let mut plaintext = Vec::new();
    for c in "Plaintext".encode_utf16() {
        plaintext.extend_from_slice(&c.to_le_bytes());
    }
    let sig = mac(
        keys.flags & !NEGOTIATE_KEY_EXCH,
        &keys.client_sign,
        &keys.client_seal,
        0,
        &plaintext,
    );
    assert_eq!(hex::encode(sig), "0100000070352851f256430900000000");
    // A wrong password is refused.
    assert_eq!(
        verify(&auth, &server_challenge, &nt_hash("password")),
        Err(NtlmError::WrongCredentials)
    );
}

/// Office Communicator 2007 R2 against OCS 2007 R2 (connectionless, datagram, key
/// exchange): the server's view of the handshake and of both signatures.
#[test]
fn ocs_2007_r2_exchange_verifies_and_signs() {
    let type3 = unhex(
        "4E544C4D53535000030000001800180072000000C600C6008A0000000A000A00480000000800080052\
         000000180018005A0000001000100050010000558298620502CE0E0000000F43004F0053004D004F00\
         550073006500720043004F0053004D004F002D004F00430053002D0052003200A1E92EFE4E078BF7C5\
         C0049ACC6166C2D6AE875CB0FDAA418DC0C800AE76ECA606D2B9FBEBD04731010100000000000059519A\
         1727B9CA01D6AE875CB0FDAA410000000002000A0043004F0053004D004F000100180043004F0053004D\
         004F002D004F00430053002D00520032000400160063006F0073006D006F002E006C006F00630061006C\
         000300300063006F0073006D006F002D006F00630073002D00720032002E0063006F0073006D006F002E\
         006C006F00630061006C000500160063006F0073006D006F002E006C006F00630061006C000000000000\
         00000031CB739E1CA80A498591E8AE797115E4",
    );
    let auth = authenticate(&type3, ("User", "COSMO"));
    assert_ne!(auth.flags & NEGOTIATE_DATAGRAM, 0);
    let challenge: [u8; 8] = unhex("DD1BAAF4E7E218D1").try_into().unwrap();
    let keys = verify(&auth, &challenge, &nt_hash("Pa$$word")).unwrap();
    let request = "<NTLM><13317733><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local>\
        <4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52>\
        <sip:user@cosmo.local><><><><>";
    let sig = mac(
        keys.flags,
        &keys.client_sign,
        &keys.client_seal,
        SIP_SEQUENCE,
        request.as_bytes(),
    );
    assert_eq!(hex::encode(sig), "0100000029618e9651b65a7764000000");
    let response = "<NTLM><9616454F><1><SIP Communications Service><cosmo-ocs-r2.cosmo.local>\
        <4037df9284354df39065195bd57a4b14><3><REGISTER><sip:user@cosmo.local><3e49177a52>\
        <sip:user@cosmo.local><5E61CCD925D17E043D9A74835A88F664><><><7200><200>";
    let sig = mac(
        keys.flags,
        &keys.server_sign,
        &keys.server_seal,
        SIP_SEQUENCE,
        response.as_bytes(),
    );
    assert_eq!(hex::encode_upper(sig), "01000000E615438A917661BE64000000");
    assert_eq!(
        verify(&auth, &[0; 8], &nt_hash("Pa$$word")),
        Err(NtlmError::WrongCredentials),
        "another challenge"
    );
}

#[test]
fn challenge_message_is_well_formed_and_bad_input_is_refused() {
    let m = challenge_message([1, 2, 3, 4, 5, 6, 7, 8], "PCHAT", "contoso.com");
    assert_eq!(&m[..8], b"NTLMSSP\0");
    assert_eq!(
        u32::from_le_bytes(m[20..24].try_into().unwrap()),
        CHALLENGE_FLAGS
    );
    assert_eq!(&m[24..32], &[1, 2, 3, 4, 5, 6, 7, 8]);
    let info = field(&m, 40).unwrap();
    assert!(info.ends_with(&[0, 0, 0, 0]), "MsvAvEOL last");
    assert!(
        Authenticate::parse(&m).is_err(),
        "a CHALLENGE is not an AUTHENTICATE"
    );
    assert!(Authenticate::parse(b"NTLMSSP\0").is_err());
    let mut bad = vec![0u8; 64];
    bad[..8].copy_from_slice(b"NTLMSSP\0");
    bad[8] = 3;
    bad[60] = 1;
    bad[20..28].copy_from_slice(&[10, 0, 10, 0, 0xff, 0xff, 0, 0]);
    assert_eq!(
        Authenticate::parse(&bad),
        Err(NtlmError::Malformed("field out of bounds"))
    );
}
