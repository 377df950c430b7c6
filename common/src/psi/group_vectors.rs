//! Known-answer vectors of the group operations, good and bad.
//!
//! External: RFC 9497 (OPRF), ciphersuite ristretto255-SHA512, mode OPRF,
//! test vectors 1 and 2: `BlindedElement = Blind · HashToGroup(Input)` with
//! the tag `HashToGroup-OPRFV1-\x00-ristretto255-SHA512`, and
//! `EvaluationElement = skS · BlindedElement`. They pin our
//! `expand_message_xmd`, the one-way map, blinding and the batch encoding.
//!
//! Our own: the fedseg tag of consortium `demo-consortium`, job `job-42`,
//! hashing `customer-0001` and `customer-0002`, then blinding with the
//! scalars 7 and 11. Computed once with this module's functions after the
//! RFC vectors passed (`cargo test -p fedseg-common --lib psi::group --
//! --nocapture print_fedseg_vectors --ignored` prints them) and pinned here.

use super::*;

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn scalar(n: u8) -> BlindingKey {
    let mut bytes = [0u8; 32];
    bytes[0] = n;
    BlindingKey::from_canonical_bytes(bytes).unwrap()
}

const OPRF_DST: &[u8] = b"HashToGroup-OPRFV1-\x00-ristretto255-SHA512";
const RFC9497_BLIND: &str = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706";
const RFC9497_SKS: &str = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e";

/// (input, BlindedElement, EvaluationElement) of RFC 9497 A.1.1 vectors 1 and 2.
const RFC9497: [(&str, &str, &str); 2] = [
    (
        "00",
        "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
        "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
    ),
    (
        "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
        "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
        "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
    ),
];

#[test]
fn rfc9497_hash_to_group_and_blinding() {
    let tag = HashTag::raw(OPRF_DST).unwrap();
    let blind_key = BlindingKey::from_canonical_bytes(hex32(RFC9497_BLIND)).unwrap();
    let sks = BlindingKey::from_canonical_bytes(hex32(RFC9497_SKS)).unwrap();
    let inputs: Vec<Vec<u8>> = RFC9497.iter().map(|v| hex::decode(v.0).unwrap()).collect();
    let blinded = hash_and_blind(&tag, &inputs, &blind_key);
    let evaluated = blind(&blinded, &sks).unwrap();
    for (i, (_, be, ee)) in RFC9497.iter().enumerate() {
        assert_eq!(hex::encode(blinded[i]), *be, "vector {}", i + 1);
        assert_eq!(hex::encode(evaluated[i]), *ee, "vector {}", i + 1);
        // The one-at-a-time path agrees with the batch encoding.
        let single = hash_to_group(&tag, &inputs[i]) * blind_key.scalar;
        assert_eq!(single.compress().to_bytes(), blinded[i]);
    }
}

/// `H(customer-0001)`, `H(customer-0002)` under the demo job's tag, then
/// each blinded with 7, then with 11 after 7.
const FEDSEG_H: [&str; 2] = [
    "0a2280bba9b75b46533490f4b30ff05ad5ac03fa72374e6f3f02ec7bcd91eb5e",
    "de93fad00633b7ad945f73d925c20fa12c8af5f69a555550ecd191ebb3575620",
];
const FEDSEG_7: [&str; 2] = [
    "14d7e5fb424a2cdfb745c8c32bfbbb4c0e3e9afb420b88ff8366007220e31d43",
    "28dd9eafb3ab2244890dd690836ef2d5d11fff0b833baa3fa19503784768f936",
];
const FEDSEG_77: [&str; 2] = [
    "96d9f2be94d27f3fda3d633801389b572a6d5bc88b9fb1678ce2297a5fbe5117",
    "dc429feb30e9990414749f3cb731cf785ea80ded146fee335aaee2e2bfcbe327",
];

fn demo_ids() -> [&'static [u8]; 2] {
    [b"customer-0001", b"customer-0002"]
}

#[test]
#[ignore = "prints the fedseg vectors for pinning"]
fn print_fedseg_vectors() {
    let tag = HashTag::for_job("demo-consortium", "job-42");
    for id in demo_ids() {
        println!(
            "H  {}",
            hex::encode(hash_to_group(&tag, id).compress().to_bytes())
        );
    }
    let seven = hash_and_blind(&tag, &demo_ids(), &scalar(7));
    let both = blind(&seven, &scalar(11)).unwrap();
    for (a, b) in seven.iter().zip(&both) {
        println!("7  {}\n77 {}", hex::encode(a), hex::encode(b));
    }
}

#[test]
fn fedseg_tag_hash_and_blinding_are_pinned() {
    let tag = HashTag::for_job("demo-consortium", "job-42");
    let seven = hash_and_blind(&tag, &demo_ids(), &scalar(7));
    let both = blind(&seven, &scalar(11)).unwrap();
    for (i, id) in demo_ids().iter().enumerate() {
        let h = hash_to_group(&tag, id).compress().to_bytes();
        assert_eq!(hex::encode(h), FEDSEG_H[i]);
        assert_eq!(hex::encode(seven[i]), FEDSEG_7[i]);
        assert_eq!(hex::encode(both[i]), FEDSEG_77[i]);
    }
    // Blinding commutes: 11 then 7 is 7 then 11, which is what lets every
    // party blind every list in any order.
    let eleven = hash_and_blind(&tag, &demo_ids(), &scalar(11));
    assert_eq!(blind(&eleven, &scalar(7)).unwrap(), both);
    // And the inverse undoes it.
    assert_eq!(blind(&both, &scalar(11).inverse()).unwrap(), seven);
}

#[test]
fn another_tag_gives_another_point() {
    let id = b"customer-0001";
    let base = hash_to_group(&HashTag::for_job("demo-consortium", "job-42"), id);
    for tag in [
        HashTag::for_job("demo-consortium", "job-43"),
        HashTag::for_job("other-consortium", "job-42"),
        // Length prefixes keep ("demo-consortiu", "mjob-42") apart.
        HashTag::for_job("demo-consortiu", "mjob-42"),
        HashTag::raw(OPRF_DST).unwrap(),
    ] {
        assert_ne!(hash_to_group(&tag, id), base);
    }
    assert_eq!(
        hash_to_group(&HashTag::for_job("demo-consortium", "job-42"), id),
        base
    );
    assert!(HashTag::raw(b"").is_none());
    assert!(HashTag::raw(&[b'x'; 256]).is_none());
}

/// Encodings that must be refused: RFC 9496 A.2 style non-canonical field
/// elements (p itself, and with the top bit set), a negative field element
/// (s = 1, odd), and the identity, which no hashed id ever is.
const BAD_POINTS: [&str; 4] = [
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
];

#[test]
fn bad_encodings_are_refused_with_their_index() {
    let tag = HashTag::for_job("demo-consortium", "job-42");
    let good = hash_and_blind(&tag, &demo_ids(), &scalar(7));
    for bad in BAD_POINTS {
        assert!(decode(&hex32(bad)).is_none(), "{bad}");
        let mut list = vec![good[0]; BATCH + 3];
        list[BATCH + 1] = hex32(bad);
        assert_eq!(
            blind(&list, &scalar(3)),
            Err(InvalidPoint { index: BATCH + 1 })
        );
        assert_eq!(
            par_blind(&list.repeat(2), &scalar(3), 2),
            Err(InvalidPoint { index: BATCH + 1 })
        );
    }
}

#[test]
fn parallel_and_serial_agree() {
    let tag = HashTag::for_job("demo-consortium", "job-42");
    let ids: Vec<String> = (0..(3 * BATCH + 17)).map(|i| format!("c{i}")).collect();
    let serial = hash_and_blind(&tag, &ids, &scalar(5));
    assert_eq!(par_hash_and_blind(&tag, &ids, &scalar(5), 2), serial);
    assert_eq!(par_hash_and_blind(&tag, &ids, &scalar(5), 3), serial);
    assert_eq!(
        par_blind(&serial, &scalar(9), 2).unwrap(),
        blind(&serial, &scalar(9)).unwrap()
    );
}

#[test]
fn keys_are_not_printed() {
    assert_eq!(format!("{:?}", scalar(7)), "BlindingKey(..)");
    assert!(BlindingKey::from_canonical_bytes([0u8; 32]).is_none());
    // The group order is not a canonical scalar.
    let ell = hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    assert!(BlindingKey::from_canonical_bytes(ell).is_none());
}
