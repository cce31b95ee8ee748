//! Podman: every container has a `conmon` monitor started with the container's id (`-c`), name
//! (`-n`) and bundle (`-b <storage root>/overlay-containers/ID/userdata`) on its command line,
//! and the container's init process is conmon's child. The image comes from c/storage's
//! `overlay-containers/containers.json` under that storage root (the `image-name` of the
//! container's metadata), read in conmon's root and only when root owns it — a rootless Podman's
//! storage is its user's, and its containers keep no image name here. A container whose init
//! shares conmon's network namespace runs with the host's network (`--network=host`).

use super::super::super::rooted::Root;
use super::super::discover::Discovery;
use super::{argv, limit, option, Placed};
use crate::facts::{Container, Limit, Runtime};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Every container with a running conmon.
pub fn read(discovery: &Discovery, limits: &mut Vec<Limit>) -> Vec<Placed> {
    let mut placed = Vec::new();
    for conmon in discovery.processes.values().filter(|p| p.name == "conmon") {
        let argv = argv(conmon.pid);
        let Some(ids) = ids(&argv) else {
            continue;
        };
        let Some(init) = discovery
            .processes
            .values()
            .filter(|p| p.ppid == conmon.pid)
            .min_by_key(|p| p.pid)
        else {
            continue;
        };
        let image = if conmon.uid == 0 {
            image(conmon.pid, &ids, limits)
        } else {
            None
        };
        placed.push(Placed {
            netns: init.netns,
            container: Container {
                runtime: Runtime::Podman,
                id: ids.id,
                name: ids.name,
                image,
                pod: None,
                network_mode: None,
                shares_namespace: init.netns == conmon.netns,
                pid: Some(init.pid),
            },
        });
    }
    placed
}

/// What conmon's command line says about its container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConmonIds {
    /// `-c ID` / `--cid ID`.
    pub id: String,
    /// `-n NAME` / `--name NAME`.
    pub name: Option<String>,
    /// The c/storage root the bundle (`-b`) is under.
    pub storage: Option<PathBuf>,
}

/// The container's id, name and storage root from conmon's command line.
pub fn ids(argv: &[String]) -> Option<ConmonIds> {
    let id = option(argv, &["-c", "--cid"])?.to_string();
    let name = option(argv, &["-n", "--name"]).map(str::to_string);
    let storage = option(argv, &["-b", "--bundle"]).and_then(|bundle| storage_root(bundle, &id));
    Some(ConmonIds { id, name, storage })
}

/// `<root>` of a bundle `<root>/overlay-containers/<id>/userdata` (any `<driver>-containers`).
fn storage_root(bundle: &str, id: &str) -> Option<PathBuf> {
    let bundle = Path::new(bundle);
    let container_dir = bundle.parent().filter(|_| bundle.ends_with("userdata"))?;
    let containers = container_dir.parent().filter(|_| container_dir.ends_with(id))?;
    let driver_dir = containers.file_name()?.to_str()?;
    driver_dir
        .ends_with("-containers")
        .then(|| containers.parent().map(Path::to_path_buf))?
}

/// The image of container `ids` from its storage's `containers.json`, read in conmon's root.
fn image(conmon: u32, ids: &ConmonIds, limits: &mut Vec<Limit>) -> Option<String> {
    let storage = ids.storage.as_ref()?;
    let root = Root::of_process(conmon).ok()?;
    let path = storage.join("overlay-containers/containers.json");
    match root.read_root_file(&path) {
        Ok(Some(bytes)) => image_name(&bytes, &ids.id),
        Ok(None) => None,
        Err(why) => {
            limits.push(limit("podman", why));
            None
        }
    }
}

/// The `image-name` c/storage's `containers.json` records for container `id`.
pub fn image_name(containers_json: &[u8], id: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Entry {
        id: String,
        #[serde(default)]
        metadata: String,
    }
    #[derive(Deserialize)]
    struct Metadata {
        #[serde(rename = "image-name")]
        image_name: Option<String>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(containers_json).ok()?;
    let entry = entries.into_iter().find(|e| e.id == id)?;
    let metadata: Metadata = serde_json::from_str(&entry.metadata).ok()?;
    metadata.image_name.filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/podman/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn conmon_names_the_container_and_its_storage() {
        let argv = crate::collect::owners::parse_cmdline(&fixture("conmon.cmdline"));
        let ids = ids(&argv).expect("conmon's ids");
        assert_eq!(ids.name.as_deref(), Some("lw-pod"));
        assert_eq!(ids.id.len(), 64);
        let storage = ids.storage.expect("the storage root");
        assert!(storage.ends_with("root"), "{}", storage.display());
        assert_eq!(super::ids(&["conmon".to_string()]), None);
    }

    #[test]
    fn the_image_is_the_one_the_container_was_created_from() {
        let argv = crate::collect::owners::parse_cmdline(&fixture("conmon.cmdline"));
        let id = ids(&argv).expect("ids").id;
        let containers = fixture("containers.json");
        assert_eq!(image_name(&containers, &id).as_deref(), Some("localhost/lw-busybox:1"));
        assert_eq!(image_name(&containers, "another"), None);
        assert_eq!(image_name(b"{}", &id), None);
    }

    #[test]
    fn bundles_elsewhere_give_no_storage_root() {
        assert_eq!(storage_root("/srv/x/userdata", "abc"), None);
        assert_eq!(storage_root("/srv/overlay-containers/other/userdata", "abc"), None);
        assert_eq!(
            storage_root("/var/lib/containers/storage/overlay-containers/abc/userdata", "abc"),
            Some(PathBuf::from("/var/lib/containers/storage"))
        );
    }
}
