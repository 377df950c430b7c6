//! Every sample config in `deploy/` loads with the real config loaders, and
//! the deployment files refer only to configs that exist.

use std::path::{Path, PathBuf};

use fedseg_common::analyst::AnalystConfig;
use fedseg_coordinator::config::{CoordinatorConfig, Job};
use fedseg_participant::config::ParticipantConfig;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

#[test]
fn every_sample_config_loads() {
    let config = deploy().join("config");
    let coordinator = CoordinatorConfig::load(&config.join("coordinator.toml")).unwrap();
    assert!(coordinator.metrics_listen.is_some());
    let job = Job::load(&config.join("job.toml")).unwrap();
    assert_eq!(job.id, "segmentation-2026-11");
    assert!(
        job.config.purpose.is_some(),
        "a submitted job states its purpose"
    );
    let analyst = AnalystConfig::load(&config.join("analyst.toml")).unwrap();
    assert!(coordinator.analysts.contains(&analyst.id));
    let mut participants = 0;
    for entry in std::fs::read_dir(&config).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("participant-") {
            let p = ParticipantConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(p.data.is_some(), "{name} names its tables");
            assert!(
                p.id == "bank-d" || coordinator.participants.contains(&p.id),
                "{name}: {} is not listed by the coordinator",
                p.id
            );
            participants += 1;
        }
    }
    assert_eq!(participants, 4);
}

#[test]
fn deployment_files_mount_configs_that_exist() {
    let deploy = deploy();
    for file in ["compose.yaml", "k8s/kustomization.yaml"] {
        let text = std::fs::read_to_string(deploy.join(file)).unwrap();
        let base = deploy.join(file).parent().unwrap().to_path_buf();
        for reference in text
            .split(|c: char| c.is_whitespace() || c == '=' || c == ':' || c == '"')
            .filter(|w| w.ends_with(".toml") && (w.starts_with("./") || w.starts_with("../")))
        {
            assert!(base.join(reference).exists(), "{file} mounts {reference}");
        }
    }
    // The coordinator is a long-running job service: no job is baked in.
    for file in [
        "compose.yaml",
        "k8s/coordinator.yaml",
        "k8s/kustomization.yaml",
    ] {
        let text = std::fs::read_to_string(deploy.join(file)).unwrap();
        assert!(
            text.contains("serve") || file.ends_with("kustomization.yaml"),
            "{file}"
        );
        assert!(
            !text.contains("\"--job\"") && !text.contains("job.toml=../"),
            "{file} bakes in a job"
        );
    }
    for file in ["coordinator.Dockerfile", "participant.Dockerfile"] {
        let text = std::fs::read_to_string(deploy.join(file)).unwrap();
        assert_eq!(
            text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM")),
            2,
            "{file} is multi-stage"
        );
        assert!(text.contains("USER fedseg"), "{file} does not run as root");
    }
}
