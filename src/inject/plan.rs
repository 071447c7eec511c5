//! Works out the minimal list of RFC 6902 `add` operations for a pod that is
//! switched on. Everything is computed against the raw JSON so that fields
//! unknown to us (or to any schema) are never touched: we only ever add a new
//! list or append to an existing one.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde_json::{json, Value};

use super::denial::{truncate, Denial};
use super::keys::VOLUME_NAME;
use super::shape::{field_str, object, opt_array, Object};
use crate::config::InjectConfig;

/// The only CSI driver whose volume counts as "our" socket volume.
pub(super) const CSI_DRIVER: &str = "csi.spiffe.io";
/// Kuma's injected data-plane container (regular or native sidecar).
pub(super) const SIDECAR_NAME: &str = "kuma-sidecar";
/// Tells kuma-dp to fetch its identity from the SPIRE agent.
pub(super) const SIDECAR_ENV: &str = "KUMA_DATAPLANE_RUNTIME_SPIRE_SUPPORTED";
/// Standard SPIFFE workload API variable for application containers.
pub(super) const APP_ENV: &str = "SPIFFE_ENDPOINT_SOCKET";
/// Warnings land in AdmissionResponse.warnings, which kubectl prints per line;
/// keep them short.
pub(super) const MAX_WARNING: usize = 120;
/// Names echoed inside warnings are cut so the whole warning fits.
const MAX_NAME_IN_WARNING: usize = 32;
/// Containers and init containers a pod may have for an injection to be planned. Pods this size
/// do not exist in practice, while a patch for each of 40 000 containers (which a 1 MiB pod can
/// list) would take around a hundred times the pod's own size in memory.
pub(super) const MAX_CONTAINERS: usize = 1000;

/// Result of planning; turned into an `InjectDecision` by the caller.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub ops: Vec<PatchOperation>,
    /// `list/name` of every container the patch touches.
    pub targets: Vec<String>,
    pub warnings: Vec<String>,
    /// A foreign volume already uses our name: nothing was planned.
    pub volume_conflict: bool,
    /// Our socket volume exists without `csi.readOnly: true`; the CSI driver
    /// refuses such volumes, and the add-only patch cannot fix them.
    pub not_read_only: bool,
    /// Target containers not blocked by a mount-path conflict.
    pub eligible: usize,
    /// The patch adds the socket volume.
    pub adds_volume: bool,
    /// `list/name` of every container the patch mounts the socket into.
    pub mounts: Vec<String>,
}

/// One container we intend to mount the socket into.
struct Target<'a> {
    list: &'static str,
    index: usize,
    container: &'a Object,
}

impl Target<'_> {
    /// Name for reports; a nameless container (invalid, but must not panic)
    /// is identified by its index.
    fn label(&self) -> String {
        match field_str_obj(self.container, "name") {
            Some(name) => format!("{}/{}", self.list, name),
            None => format!("{}/#{}", self.list, self.index),
        }
    }

    /// Dotted path used in denial messages, e.g. `spec.containers[1].env`; written only when a
    /// denial needs it, not for every container planned.
    fn field_path(&self, key: &'static str) -> FieldPath {
        FieldPath {
            list: self.list,
            index: self.index,
            key,
        }
    }

    /// Where the container is, as the pointer tokens after `spec`: its list and index.
    fn position(&self) -> (&'static str, String) {
        (self.list, self.index.to_string())
    }
}

/// A field of a container, as denial messages name it.
struct FieldPath {
    list: &'static str,
    index: usize,
    key: &'static str,
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spec.{}[{}].{}", self.list, self.index, self.key)
    }
}

fn field_str_obj<'a>(obj: &'a Object, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

/// State of the pod's `kuma-spire-agent-socket` volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VolumeState {
    Missing,
    Present,
    /// Our CSI volume, but without `csi.readOnly: true`.
    NotReadOnly,
    /// Same name, but not the CSI volume we would add: someone else owns it.
    Conflicting,
}

fn volume_state(volumes: Option<&[Value]>) -> VolumeState {
    let ours = volumes
        .unwrap_or_default()
        .iter()
        .find(|v| field_str(v, "name") == Some(VOLUME_NAME));
    match ours {
        None => VolumeState::Missing,
        Some(v) if !is_expected_volume(v) => VolumeState::Conflicting,
        Some(v) if !is_read_only(v.get("csi")) => VolumeState::NotReadOnly,
        Some(_) => VolumeState::Present,
    }
}

/// The driver decides whose volume it is: extra attributes set by someone
/// else do not make it a different volume. Read-only is checked apart.
fn is_expected_volume(volume: &Value) -> bool {
    volume
        .get("csi")
        .and_then(|csi| csi.get("driver"))
        .and_then(Value::as_str)
        == Some(CSI_DRIVER)
}

/// `readOnly: true` on a CSI volume source or a mount; absent means false.
fn is_read_only(entry: Option<&Value>) -> bool {
    entry
        .and_then(|e| e.get("readOnly"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// The volume object we add.
pub(super) fn volume_json() -> Value {
    json!({"name": VOLUME_NAME, "csi": {"driver": CSI_DRIVER, "readOnly": true}})
}

/// The mount object we add to each target container.
pub(super) fn mount_json(cfg: &InjectConfig) -> Value {
    json!({"name": VOLUME_NAME, "mountPath": cfg.mount_path, "readOnly": true})
}

/// `unix://<mount_path>/<socket_file_name>` without a doubled slash.
pub(super) fn socket_uri(cfg: &InjectConfig) -> String {
    format!(
        "unix://{}/{}",
        cfg.mount_path.trim_end_matches('/'),
        cfg.socket_file_name.trim_start_matches('/')
    )
}

/// Mount paths compare equal regardless of a trailing slash, as the kubelet
/// treats them.
fn same_path(a: &str, b: &str) -> bool {
    let norm = |p: &str| {
        let t = p.trim_end_matches('/');
        if t.is_empty() {
            "/".to_string()
        } else {
            t.to_string()
        }
    };
    norm(a) == norm(b)
}

/// Builds a JSON pointer from raw (unescaped) tokens; `Token::new` applies the
/// RFC 6901 escaping (`~` → `~0`, `/` → `~1`).
pub(super) fn pointer<S: AsRef<str>>(tokens: &[S]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().map(AsRef::as_ref))
}

fn add(tokens: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: pointer(tokens),
        value,
    })
}

/// Adds `item` to the list `base/key`: a one-element array when the list is
/// absent or null (add on an existing null member replaces it), an `/-`
/// append otherwise, so existing entries keep their order and are never
/// rewritten.
/// The tokens are borrowed, not collected into strings: a mutation adds a few of these.
fn append(base: &[&str], key: &str, existing: Option<&[Value]>, item: Value) -> PatchOperation {
    let mut tokens = Vec::with_capacity(base.len() + 2);
    tokens.extend_from_slice(base);
    tokens.push(key);
    match existing {
        None => add(&tokens, Value::Array(vec![item])),
        Some(_) => {
            tokens.push("-");
            add(&tokens, item)
        }
    }
}

/// Every entry of `list` whose name is `kuma-sidecar`; entries that are not
/// objects cannot be the sidecar and are skipped.
fn sidecars<'a>(list: &'static str, items: &'a [Value]) -> impl Iterator<Item = Target<'a>> {
    items.iter().enumerate().filter_map(move |(index, item)| {
        let container = item.as_object()?;
        (field_str_obj(container, "name") == Some(SIDECAR_NAME)).then_some(Target {
            list,
            index,
            container,
        })
    })
}

/// Picks the containers to mount into and the env var they get: Kuma's
/// sidecar(s) when present, otherwise every application container (the pod
/// has not been through Kuma's injector yet).
fn select_targets<'a>(
    spec: &'a Object,
    cfg: &InjectConfig,
) -> Result<(Vec<Target<'a>>, (&'static str, String)), Denial> {
    let containers = opt_array(spec, "containers", "spec.containers")?.unwrap_or_default();
    let inits = opt_array(spec, "initContainers", "spec.initContainers")?.unwrap_or_default();
    let count = containers.len() + inits.len();
    if count > MAX_CONTAINERS {
        return Err(Denial::TooManyContainers {
            count,
            max: MAX_CONTAINERS,
        });
    }
    let found: Vec<Target> = sidecars("containers", containers)
        .chain(sidecars("initContainers", inits))
        .collect();
    if !found.is_empty() {
        return Ok((found, (SIDECAR_ENV, "true".to_string())));
    }
    let apps = containers
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let container = object(item, format_args!("spec.containers[{index}]"))?;
            Ok(Target {
                list: "containers",
                index,
                container,
            })
        })
        .collect::<Result<Vec<_>, Denial>>()?;
    Ok((apps, (APP_ENV, socket_uri(cfg))))
}

/// Plans one container: mount + env, each only if missing. A container that
/// already has a different volume at our mount path is left alone, because
/// two mounts at one path make the kubelet reject the pod.
fn plan_container(
    target: &Target,
    cfg: &InjectConfig,
    env: &(&'static str, String),
    plan: &mut Plan,
) -> Result<(), Denial> {
    let mounts = opt_array(
        target.container,
        "volumeMounts",
        target.field_path("volumeMounts"),
    )?;
    let envs = opt_array(target.container, "env", target.field_path("env"))?;
    let existing_mount = mounts
        .unwrap_or_default()
        .iter()
        .find(|m| field_str(m, "name") == Some(VOLUME_NAME));
    // A mount of the socket volume counts whatever its own readOnly says: the CSI driver sees
    // only the volume's csi.readOnly (checked in `plan`), and serves a read-only socket dir.
    let has_mount = existing_mount.is_some();
    if !has_mount {
        let taken = mounts
            .unwrap_or_default()
            .iter()
            .find(|m| field_str(m, "mountPath").is_some_and(|p| same_path(p, &cfg.mount_path)));
        if let Some(other) = taken {
            plan.warnings.push(path_taken_warning(target, other, cfg));
            return Ok(());
        }
    }
    plan.eligible += 1;
    let has_env = envs
        .unwrap_or_default()
        .iter()
        .any(|e| field_str(e, "name") == Some(env.0));
    if has_mount && has_env {
        return Ok(());
    }
    let (list, index) = target.position();
    let base = ["spec", list, &index];
    let label = target.label();
    if !has_mount {
        plan.ops
            .push(append(&base, "volumeMounts", mounts, mount_json(cfg)));
        plan.mounts.push(label.clone());
    }
    if !has_env {
        let var = json!({"name": env.0, "value": env.1});
        plan.ops.push(append(&base, "env", envs, var));
    }
    plan.targets.push(label);
    Ok(())
}

fn path_taken_warning(target: &Target, other: &Value, cfg: &InjectConfig) -> String {
    let other_name = field_str(other, "name").unwrap_or("another volume");
    let msg = format!(
        "{} already mounts {} at {}; SPIRE socket not mounted there",
        truncate(&target.label(), MAX_NAME_IN_WARNING),
        truncate(other_name, MAX_NAME_IN_WARNING),
        truncate(&cfg.mount_path, MAX_NAME_IN_WARNING),
    );
    truncate(&msg, MAX_WARNING)
}

fn volume_conflict_warning() -> String {
    format!("volume {VOLUME_NAME} exists but is not a {CSI_DRIVER} CSI volume; nothing injected")
}

fn writable_volume_warning() -> String {
    format!("volume {VOLUME_NAME} lacks csi.readOnly: true, which {CSI_DRIVER} requires; nothing injected")
}

/// Plans the whole pod spec.
pub(super) fn plan(spec: &Object, cfg: &InjectConfig) -> Result<Plan, Denial> {
    let volumes = opt_array(spec, "volumes", "spec.volumes")?;
    let state = volume_state(volumes);
    match state {
        VolumeState::Conflicting => {
            return Ok(Plan {
                volume_conflict: true,
                warnings: vec![volume_conflict_warning()],
                ..Plan::default()
            })
        }
        // Not replaced (the patch only adds); mounting a volume the CSI driver
        // refuses would not help either, so nothing is planned.
        VolumeState::NotReadOnly => {
            return Ok(Plan {
                not_read_only: true,
                warnings: vec![writable_volume_warning()],
                ..Plan::default()
            })
        }
        VolumeState::Missing | VolumeState::Present => {}
    }
    let (targets, env) = select_targets(spec, cfg)?;
    let mut plan = Plan::default();
    for target in &targets {
        plan_container(target, cfg, &env, &mut plan)?;
    }
    // The volume is only worth adding when some container will mount it.
    if state == VolumeState::Missing && plan.eligible > 0 {
        plan.ops
            .insert(0, append(&["spec"], "volumes", volumes, volume_json()));
        plan.adds_volume = true;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_escapes_tilde_and_slash() {
        assert_eq!(pointer(&["spec", "a/b~c", "0"]).as_str(), "/spec/a~1b~0c/0");
        assert_eq!(
            pointer(&["spec", "volumes", "-"]).as_str(),
            "/spec/volumes/-"
        );
    }

    #[test]
    fn socket_uri_has_no_double_slash() {
        let mut cfg = InjectConfig::default();
        assert_eq!(socket_uri(&cfg), "unix:///run/spire/sockets/socket");
        cfg.mount_path = "/spire/".into();
        cfg.socket_file_name = "agent.sock".into();
        assert_eq!(socket_uri(&cfg), "unix:///spire/agent.sock");
    }

    #[test]
    fn same_path_ignores_trailing_slash() {
        assert!(same_path("/run/spire/sockets/", "/run/spire/sockets"));
        assert!(same_path("/", "//"));
        assert!(!same_path("/run/spire", "/run/spire/sockets"));
    }

    #[test]
    fn volume_state_table() {
        let ok = volume_json();
        let foreign = json!({"name": VOLUME_NAME, "hostPath": {"path": "/run/spire"}});
        let other_driver = json!({"name": VOLUME_NAME, "csi": {"driver": "x"}});
        assert_eq!(volume_state(None), VolumeState::Missing);
        assert_eq!(
            volume_state(Some(&[json!("junk"), json!({"name": "a"})])),
            VolumeState::Missing
        );
        assert_eq!(volume_state(Some(&[ok])), VolumeState::Present);
        for csi in [
            json!({"driver": CSI_DRIVER}),
            json!({"driver": CSI_DRIVER, "readOnly": false}),
            json!({"driver": CSI_DRIVER, "readOnly": "true"}),
        ] {
            let writable = json!({"name": VOLUME_NAME, "csi": csi});
            assert_eq!(volume_state(Some(&[writable])), VolumeState::NotReadOnly);
        }
        assert_eq!(volume_state(Some(&[foreign])), VolumeState::Conflicting);
        assert_eq!(
            volume_state(Some(&[other_driver])),
            VolumeState::Conflicting
        );
    }

    #[test]
    fn pods_with_too_many_containers_are_refused_before_planning() {
        let many = |n: usize| {
            let containers: Vec<Value> = (0..n).map(|i| json!({"name": format!("c{i}")})).collect();
            let spec = json!({"containers": containers});
            plan(spec.as_object().unwrap(), &InjectConfig::default())
        };
        assert_eq!(many(MAX_CONTAINERS).unwrap().targets.len(), MAX_CONTAINERS);
        assert_eq!(
            many(MAX_CONTAINERS + 1).unwrap_err(),
            Denial::TooManyContainers {
                count: MAX_CONTAINERS + 1,
                max: MAX_CONTAINERS
            }
        );
    }

    #[test]
    fn warnings_are_bounded() {
        let container = json!({"name": "c".repeat(500)});
        let target = Target {
            list: "containers",
            index: 0,
            container: container.as_object().unwrap(),
        };
        let cfg = InjectConfig {
            mount_path: "/p".repeat(300),
            ..InjectConfig::default()
        };
        let w = path_taken_warning(&target, &json!({"name": "v".repeat(300)}), &cfg);
        assert!(w.chars().count() <= MAX_WARNING, "{w}");
        assert!(volume_conflict_warning().chars().count() <= MAX_WARNING);
        assert!(writable_volume_warning().chars().count() <= MAX_WARNING);
    }
}
