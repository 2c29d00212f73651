use super::*;

fn model() -> ModelIdentity {
    ModelIdentity {
        encoder: "ge2e".into(),
        dim: 3,
        weights: "pip:resemblyzer==0.1.4#resemblyzer/pretrained.pt".into(),
    }
}

fn profile() -> VoiceProfile {
    let windows = vec![
        vec![1.0, 0.1, 0.0],
        vec![0.9, 0.0, 0.1],
        vec![1.0, 0.0, 0.0],
    ];
    VoiceProfile::from_windows("host", model(), &windows, Vec::new(), 3).unwrap()
}

#[test]
fn saves_and_loads_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let path = resolve("host", dir.path());
    assert_eq!(path, dir.path().join("voices/host.json"));
    let p = profile();
    p.save(&path).unwrap();
    assert_eq!(VoiceProfile::load(&path).unwrap(), p);
    assert!(p.spread.mean > 0.99 && p.spread.min <= p.spread.p10);
    assert!((p.score(&[2.0, 0.0, 0.0]) - 1.0).abs() < 0.01);
}

#[test]
fn a_missing_profile_says_how_to_make_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = VoiceProfile::load(&resolve("voices/guest.json", dir.path())).unwrap_err();
    assert!(matches!(err, ProfileError::NotFound { .. }));
    assert!(err.to_string().contains("flow enroll guest AUDIO"), "{err}");
}

#[test]
fn rejects_damaged_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, "{ not json").unwrap();
    assert!(matches!(
        VoiceProfile::load(&path),
        Err(ProfileError::Invalid { .. })
    ));
    let mut p = profile();
    p.centroid.push(0.0);
    std::fs::write(&path, serde_json::to_string(&p).unwrap()).unwrap();
    let err = VoiceProfile::load(&path).unwrap_err();
    assert!(err.to_string().contains("centroid has 4 values"), "{err}");
    let mut p = profile();
    p.centroid = vec![2.0, 0.0, 0.0];
    std::fs::write(&path, serde_json::to_string(&p).unwrap()).unwrap();
    assert!(VoiceProfile::load(&path).is_err());
}

#[test]
fn checks_the_model_of_the_embeddings() {
    let p = profile();
    assert!(p.check_compatible(3, None).is_ok());
    let cached = "/home/me/.cache/flow/models/resemblyzer-0.1.4/resemblyzer/pretrained.pt";
    assert!(p.check_compatible(3, Some(cached)).is_ok());
    assert!(p
        .check_compatible(3, Some("pip:resemblyzer==0.1.4#resemblyzer/pretrained.pt"))
        .is_ok());
    let err = p.check_compatible(192, None).unwrap_err();
    assert!(err.to_string().contains("enroll `host` again"), "{err}");
    assert!(p.check_compatible(3, Some("/models/ecapa.pt")).is_err());
}

#[test]
fn names_must_be_file_names() {
    assert!(check_name("chaffee").is_ok());
    assert!(check_name("dr.smith-2").is_ok());
    for bad in ["", ".hidden", "a/b", "a b", "../x"] {
        assert!(check_name(bad).is_err(), "{bad}");
    }
    let too_few = VoiceProfile::from_windows("host", model(), &[vec![1.0, 0.0, 0.0]], vec![], 3);
    assert!(matches!(too_few, Err(ProfileError::TooLittleSpeech { .. })));
}
