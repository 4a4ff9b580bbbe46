//! Tests of `ids.rs`: image IDs recorded and read, lookups by ID or digest (whole,
//! bare hex, prefix, ambiguous), and the images without a name.

use super::*;
use crate::store::testutil::{image_in, store_with_image};
use crate::store::ImageName;

fn name(s: &str) -> ImageName {
    ImageName::parse(s).unwrap()
}

#[test]
fn the_id_is_the_config_digest_recorded_in_the_entry() {
    let (_d, store, desc) = store_with_image(b"layer");
    let id = store.image_id(&desc).unwrap();
    let manifest: Manifest =
        crate::image::decode_json(&store.read_blob(&desc.digest).unwrap()).unwrap();
    assert_eq!(id, manifest.config.digest);
    store.set_name(&name("app:1"), &desc).unwrap();
    let entry = &store.read_index().unwrap().manifests[0];
    assert_eq!(recorded_id(entry), Some(id));
    // Handed out without the store's annotations.
    assert_eq!(store.list().unwrap()[0].descriptor, desc);
    assert_eq!(store.list().unwrap()[0].id, Some(id));
    for reference in [id.to_string(), id.hex(), id.hex()[..7].to_owned()] {
        assert_eq!(
            store.resolve(&reference).unwrap(),
            Some(desc.clone()),
            "{reference}"
        );
    }
    for reference in [desc.digest.to_string(), desc.digest.hex()[..9].to_owned()] {
        assert_eq!(
            store.resolve(&reference).unwrap(),
            Some(desc.clone()),
            "{reference}"
        );
    }
    // An index's ID is its own digest.
    let index = Descriptor::new(media_types::OCI_INDEX, Digest::of(b"i"), 1);
    assert_eq!(store.image_id(&index).unwrap(), index.digest);
}

#[test]
fn entries_without_a_recorded_id_are_found_by_reading_their_manifest() {
    let (_d, store, desc) = store_with_image(b"layer");
    let id = store.image_id(&desc).unwrap();
    // As another tool (or an older rbuild) writes it: a name, no ID.
    let mut entry = desc.clone();
    entry
        .annotations
        .insert(crate::store::REF_NAME_ANNOTATION.into(), "old:1".into());
    store
        .update_index(|index| {
            index.manifests.push(entry);
            Ok(())
        })
        .unwrap();
    assert_eq!(store.list().unwrap()[0].id, None);
    assert_eq!(store.resolve(&id.hex()[..12]).unwrap(), Some(desc));
}

#[test]
fn a_prefix_of_several_images_is_an_error_listing_them() {
    let (_d, store, _) = store_with_image(b"unused");
    let mut by_first: BTreeMap<u8, BTreeSet<Digest>> = BTreeMap::new();
    for i in 0..20 {
        let desc = image_in(&store, format!("layer {i}").as_bytes());
        store.set_name(&name(&format!("app:{i}")), &desc).unwrap();
        let id = store.image_id(&desc).unwrap();
        for hex in [id.hex(), desc.digest.hex()] {
            by_first
                .entry(hex.as_bytes()[0])
                .or_default()
                .insert(desc.digest);
        }
    }
    // 20 images, 16 first digits: some digit starts two of them.
    let (first, images) = by_first.iter().find(|(_, s)| s.len() > 1).unwrap();
    let prefix = (*first as char).to_string();
    let err = store.resolve(&prefix).unwrap_err();
    match &err {
        Error::AmbiguousId {
            count, candidates, ..
        } => {
            assert_eq!(*count, images.len());
            assert!(candidates.contains("app:"), "{candidates}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("give more digits"), "{err}");
    // A name wins over a prefix.
    let named = image_in(&store, b"named");
    store.set_name(&name(&prefix), &named).unwrap();
    assert_eq!(store.resolve(&prefix).unwrap(), Some(named));
}

#[test]
fn images_without_a_name_are_listed_and_found_until_named_or_pruned() {
    let (dir, store, first) = store_with_image(b"one");
    let second = image_in(&store, b"two");
    store.add_unnamed(&first).unwrap();
    store.add_unnamed(&second).unwrap();
    store.add_unnamed(&first).unwrap();
    let listed: Vec<Descriptor> = store
        .list_unnamed()
        .unwrap()
        .into_iter()
        .map(|u| u.descriptor)
        .collect();
    assert_eq!(
        listed,
        [first.clone(), second.clone()],
        "newest first, once"
    );
    let id = store.image_id(&second).unwrap();
    assert_eq!(
        store.resolve(&id.hex()[..10]).unwrap(),
        Some(second.clone())
    );
    assert!(store.list().unwrap().is_empty(), "no name");
    assert_eq!(store.image_roots(&[]).unwrap().images, 0, "not a gc root");
    // Named: no longer unnamed (and not recorded again).
    store.set_name(&name("one:1"), &first).unwrap();
    store.add_unnamed(&first).unwrap();
    assert_eq!(store.list_unnamed().unwrap().len(), 1);
    // Its config pruned: gone from the list.
    let config = dir.path().join("blobs/sha256").join(id.hex());
    std::fs::remove_file(config).unwrap();
    assert!(store.list_unnamed().unwrap().is_empty());
    assert_eq!(store.resolve(&id.hex()[..10]).unwrap(), None);
    // Removed by digest.
    let third = image_in(&store, b"three");
    store.add_unnamed(&third).unwrap();
    assert!(store.remove_unnamed(&third.digest).unwrap());
    assert!(!store.remove_unnamed(&third.digest).unwrap());
    assert!(store.list_unnamed().unwrap().is_empty());
}
