//! SRTP and SRTCP unprotect over any bytes, in every profile: a typed error leaves the buffer
//! as it was, and a packet that did unprotect comes out no longer than it went in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use srtpd::srtp::{MasterKey, SrtcpContext, SrtpContext, SrtpOptions, SrtpProfile};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, packet)) = data.split_first() else {
        return;
    };
    let profile = SrtpProfile::ALL[usize::from(choice) % SrtpProfile::ALL.len()];
    let key = MasterKey::new(
        profile,
        &vec![0x42; profile.key_len()],
        &vec![0x24; profile.salt_len()],
    )
    .expect("a key of the profile's lengths");
    let options = SrtpOptions::default();

    let mut rtp = SrtpContext::new(profile, &key, &options).expect("a context");
    let mut buf = packet.to_vec();
    match rtp.unprotect(&mut buf) {
        Ok(n) => assert!(n <= packet.len()),
        Err(_) => assert_eq!(buf, packet, "a refused packet is left as it came"),
    }
    // Again: now the stream may exist, and the same packet is a replay or a forgery.
    let mut again = packet.to_vec();
    if rtp.unprotect(&mut again).is_err() {
        assert_eq!(again, packet);
    }

    let mut rtcp = SrtcpContext::new(profile, &key, &options).expect("a context");
    let mut buf = packet.to_vec();
    match rtcp.unprotect(&mut buf) {
        Ok(n) => assert!(n <= packet.len()),
        Err(_) => assert_eq!(buf, packet, "a refused packet is left as it came"),
    }
});
