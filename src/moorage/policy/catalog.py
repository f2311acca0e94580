"""What each built-in rule checks and why: the text of ``moorage policy explain``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RULES", "RuleDoc", "lookup"]


@dataclass(frozen=True)
class RuleDoc:
    id: str
    family: str
    packs: str  # "baseline, restricted" / "restricted" / "" (configured)
    checks: str
    why: str
    fields: str
    fix: str


_R = [
    RuleDoc("runtime.privileged", "runtime", "baseline, restricted",
            "The workload must not run privileged.",
            "Privileged mode gives every capability, every device and no confinement: root in the "
            "container is root on the host.",
            "HostConfig.Privileged; exec Privileged; (services can't ask for it)",
            "Remove --privileged and add only the capability the workload needs."),
    RuleDoc("runtime.capabilities", "runtime", "baseline, restricted",
            "Added capabilities must be in the allowed set: Docker's default set for baseline, only "
            "NET_BIND_SERVICE for restricted. ALL is never allowed. Any spelling counts: SYS_ADMIN, "
            "CAP_SYS_ADMIN, sys_admin, as the engine upper-cases them. HostConfig.Capabilities (API 1.40), "
            "which replaces the default set, is held to the same set.",
            "Capabilities such as SYS_ADMIN, SYS_PTRACE, SYS_MODULE or NET_ADMIN reach past the "
            "container's namespaces.",
            "HostConfig.CapAdd; HostConfig.Capabilities; TaskTemplate.ContainerSpec.CapabilityAdd",
            "Remove the --cap-add."),
    RuleDoc("runtime.capabilities.drop-all", "runtime", "restricted",
            "Capabilities must be dropped: CapDrop must contain ALL.",
            "Least privilege: a process that needs no capability should hold none.",
            "HostConfig.CapDrop; TaskTemplate.ContainerSpec.CapabilityDrop",
            "Add --cap-drop ALL (and --cap-add NET_BIND_SERVICE if it binds a low port)."),
    RuleDoc("runtime.host-namespace", "runtime", "baseline, restricted",
            "No host PID, IPC, UTS, network, user or cgroup namespace. The modes are an allow-list: "
            "PidMode empty or container:NAME; IpcMode empty, none, private, shareable or container:NAME; "
            "UTSMode and UsernsMode empty; CgroupnsMode empty or private; a build's networkmode not "
            "host or container:NAME.",
            "Sharing a host namespace shows and reaches the host's processes, IPC, hostname, "
            "interfaces or cgroups.",
            "HostConfig.PidMode, IpcMode, UTSMode, NetworkMode, UsernsMode, CgroupnsMode; build networkmode",
            "Remove --pid/--ipc/--uts/--network/--userns/--cgroupns host."),
    RuleDoc("runtime.host-path", "runtime", "baseline, restricted",
            "No host path is mounted: bind mounts through Binds, Mounts (type bind), a service's "
            "Mounts, or a local volume (created, or inline in a mount's DriverConfig) with o=bind, "
            "o=rbind or type=none and a device path.",
            "A host path lets the workload read or change the host's files (/, /etc, /root).",
            "HostConfig.Binds; HostConfig.Mounts[].Source; TaskTemplate.ContainerSpec.Mounts[].Source; "
            "volume DriverOpts.device; Mounts[].VolumeOptions.DriverConfig.Options.device",
            "Use a named volume."),
    RuleDoc("runtime.docker-socket", "runtime", "baseline, restricted",
            "The Docker socket (or /run, /var/run) is never mounted.",
            "Whoever holds the Docker socket controls the host, and bypasses Moorage.",
            "as runtime.host-path",
            "Talk to the engine through Moorage, never through its socket."),
    RuleDoc("runtime.devices", "runtime", "baseline, restricted",
            "No host devices, no device cgroup rules and no device requests (GPUs).",
            "A device node (a disk, /dev/mem, a GPU) is the host's hardware.",
            "HostConfig.Devices; HostConfig.DeviceCgroupRules; HostConfig.DeviceRequests",
            "Remove --device / --device-cgroup-rule / --gpus."),
    RuleDoc("runtime.unconfined", "runtime", "baseline, restricted",
            "seccomp and AppArmor stay on; SELinux labelling stays on; the system paths stay masked. "
            "Both separators count (seccomp=unconfined, seccomp:unconfined), and the bare word disable, "
            "which the engine reads as label=disable.",
            "seccomp=unconfined, apparmor=unconfined, label=disable and systempaths=unconfined turn off "
            "kernel confinement.",
            "HostConfig.SecurityOpt; TaskTemplate.ContainerSpec.Privileges.Seccomp.Mode, AppArmor.Mode, "
            "SELinuxContext.Disable",
            "Remove the --security-opt."),
    RuleDoc("runtime.security-opt", "runtime", "baseline, restricted",
            "Every security option is one baseline knows: no-new-privileges[=BOOL], apparmor=, seccomp=, "
            "label=. Keys are exact, as the engine reads them; anything else (credentialspec, a key in "
            "another case, a malformed entry) is refused.",
            "An allow-list: an option nobody has reviewed is refused rather than passed to the engine.",
            "HostConfig.SecurityOpt; TaskTemplate.ContainerSpec.Privileges.CredentialSpec",
            "Use only no-new-privileges, apparmor=docker-default, label=... or seccomp=PROFILE."),
    RuleDoc("runtime.seccomp-profile", "runtime", "baseline, restricted",
            "seccomp uses the engine's default profile, or a custom profile whose digest the policy "
            "lists in runtime.seccompProfiles (sha256 of the profile's JSON with insignificant "
            "whitespace removed, as the docker CLI sends it).",
            "A custom profile can allow every system call (defaultAction SCMP_ACT_ALLOW) and so turn "
            "seccomp off while looking confined.",
            "HostConfig.SecurityOpt seccomp=; TaskTemplate.ContainerSpec.Privileges.Seccomp",
            "Use the default profile, or ask the policy owner to list the profile's digest."),
    RuleDoc("runtime.apparmor-profile", "runtime", "baseline, restricted",
            "AppArmor uses docker-default (or the default) or a profile the policy lists in "
            "runtime.appArmorProfiles.",
            "A host profile may be unconfined in all but name.",
            "HostConfig.SecurityOpt apparmor=; TaskTemplate.ContainerSpec.Privileges.AppArmor.Mode",
            "Use apparmor=docker-default."),
    RuleDoc("runtime.selinux-label", "runtime", "baseline, restricted",
            "SELinux label options are user:, role:, level:, type: or filetype:, and a type is a "
            "confined container type (container_t, container_init_t, svirt_lxc_net_t, container_file_t, "
            "svirt_sandbox_file_t) or one the policy lists in runtime.selinuxTypes.",
            "Types such as spc_t or unconfined_t run the container unconfined on SELinux hosts.",
            "HostConfig.SecurityOpt label=; TaskTemplate.ContainerSpec.Privileges.SELinuxContext.Type",
            "Use a level (label=level:s0:c1,c2), or the container_t type."),
    RuleDoc("runtime.masked-paths", "runtime", "baseline, restricted",
            "MaskedPaths and ReadonlyPaths are absent or null (the engine's defaults), or lists that keep "
            "every default path.",
            "An empty list unmasks /proc/kcore, /proc/keys, /sys/firmware, and makes /proc/sys and "
            "/proc/sysrq-trigger writable: docker run --security-opt systempaths=unconfined.",
            "HostConfig.MaskedPaths; HostConfig.ReadonlyPaths",
            "Remove the lists (and --security-opt systempaths=unconfined)."),
    RuleDoc("runtime.mount", "runtime", "baseline, restricted",
            "A mount is of type volume or tmpfs (bind is runtime.host-path). npipe, cluster, image and "
            "unknown types are refused, as are bind options on a volume or tmpfs, and tmpfs options "
            "outside size, mode, uid, gid, nr_inodes, nr_blocks, huge and the plain mount flags.",
            "An allow-list: a mount type or option nobody has reviewed may reach the host.",
            "HostConfig.Mounts[].Type, BindOptions, TmpfsOptions; HostConfig.Tmpfs; "
            "TaskTemplate.ContainerSpec.Mounts[]",
            "Use --mount type=volume or type=tmpfs, or --tmpfs with size/mode options."),
    RuleDoc("runtime.volume-driver", "runtime", "baseline, restricted",
            "Volumes use the local driver: a volume's Driver, a container's VolumeDriver and a mount's "
            "DriverConfig.Name are empty or local. Cluster (CSI) volumes are refused.",
            "A volume plugin runs with the host's privileges and mounts whatever its options say.",
            "volume Driver, ClusterVolumeSpec; HostConfig.VolumeDriver; "
            "Mounts[].VolumeOptions.DriverConfig.Name",
            "Use the local driver."),
    RuleDoc("runtime.volume-options", "runtime", "baseline, restricted",
            "Local volume options are none, size=SIZE, or a tmpfs: type=tmpfs, device=tmpfs, o= only "
            "size, mode, uid, gid, nr_inodes, ro, rw, noexec, nosuid, nodev, noatime. Keys are exact, "
            "as the local driver reads them.",
            "The local driver runs mount(2) on the host with type, device and o: any disk "
            "(type=ext4,device=/dev/sda1), any host path (o=bind) or network share (type=nfs).",
            "volume DriverOpts; Mounts[].VolumeOptions.DriverConfig.Options (containers and services)",
            "Use a named volume without options, or a tmpfs volume."),
    RuleDoc("runtime.cgroup", "runtime", "baseline, restricted",
            "CgroupParent and Cgroup are empty (a build's cgroupparent too).",
            "A cgroup parent of the caller's choosing escapes the engine's limits and accounting; "
            "Cgroup=container:ID joins another container's cgroup.",
            "HostConfig.CgroupParent; HostConfig.Cgroup; build cgroupparent",
            "Remove --cgroup-parent."),
    RuleDoc("runtime.oci-runtime", "runtime", "baseline, restricted",
            "The OCI runtime is the default, runc or io.containerd.runc.v2 (or one the policy lists in "
            "runtime.runtimes); isolation is the default; no annotations; a service's task is a "
            "container, never a plugin.",
            "Another runtime, an annotation read by the runtime or its cgroup manager, or a plugin "
            "service changes how the host runs the workload.",
            "HostConfig.Runtime, Isolation, Annotations; TaskTemplate.Runtime, PluginSpec, "
            "ContainerSpec.Isolation; build isolation",
            "Remove --runtime / --isolation / --annotation."),
    RuleDoc("runtime.oom-score", "runtime", "baseline, restricted",
            "The OOM score adjustment is not negative.",
            "A negative score makes the kernel kill the host's own processes before the workload.",
            "HostConfig.OomScoreAdj; TaskTemplate.ContainerSpec.OomScoreAdj",
            "Remove --oom-score-adj or use 0 to 1000."),
    RuleDoc("runtime.log-driver", "runtime", "baseline, restricted",
            "The log driver is the daemon's default, json-file, local, journald or none (or one the "
            "policy lists in runtime.logDrivers), with only the shared options: max-size, max-file, "
            "compress, labels, labels-regex, env, env-regex, tag, mode, max-buffer-size.",
            "The engine runs log drivers on the host: syslog, gelf, fluentd and the like connect "
            "from there to any address or socket the options name.",
            "HostConfig.LogConfig; TaskTemplate.LogDriver",
            "Use the default log driver, with --log-opt max-size/max-file."),
    RuleDoc("runtime.sysctls", "runtime", "baseline, restricted",
            "Only the namespaced sysctls Kubernetes calls safe may be set.",
            "Other sysctls change the host kernel, or are not isolated per container.",
            "HostConfig.Sysctls; TaskTemplate.ContainerSpec.Sysctls",
            "Remove the --sysctl."),
    RuleDoc("runtime.no-new-privileges", "runtime", "restricted",
            "no-new-privileges is set.",
            "Without it a setuid binary in the image can gain privileges.",
            "HostConfig.SecurityOpt; TaskTemplate.ContainerSpec.Privileges.NoNewPrivileges",
            "Add --security-opt no-new-privileges (or declare the noNewPrivileges mutation)."),
    RuleDoc("runtime.non-root", "runtime", "restricted",
            "The workload runs as a non-zero uid. An exec may not ask for root.",
            "Root in a container is one kernel bug away from root on the host.",
            "User; exec User; TaskTemplate.ContainerSpec.User",
            "Set --user 1000 (or a USER in the image and --user with it)."),
    RuleDoc("runtime.read-only-rootfs", "runtime", "restricted",
            "The root filesystem is read-only.",
            "A writable root lets an intruder change binaries the workload runs.",
            "HostConfig.ReadonlyRootfs; TaskTemplate.ContainerSpec.ReadOnly",
            "Add --read-only, with --tmpfs for the paths that must be written."),
    RuleDoc("runtime.update-field", "runtime", "baseline, restricted",
            "docker update changes only what the engine applies: CpuShares, Memory, NanoCpus, CpuPeriod, "
            "CpuQuota, CpuRealtimePeriod, CpuRealtimeRuntime, CpusetCpus, CpusetMems, MemorySwap, "
            "MemoryReservation, KernelMemory, BlkioWeight, PidsLimit and RestartPolicy. Any other field "
            "set to a non-zero value is refused.",
            "The engines ignore the other fields today; a newer engine that starts honouring one "
            "(Devices, CgroupParent, Ulimits...) would change a running container past the create checks.",
            "container update body",
            "Recreate the container to change anything but its limits and restart policy."),
    RuleDoc("runtime.unknown-operation", "runtime", "baseline, restricted",
            "The operation is one the packs know: read by them, or known to carry nothing that reaches "
            "the host, or a read. Any other, including one Moorage can't classify, is refused, for "
            "administrators too.",
            "An allow-list of operations: an endpoint nobody has modelled is not passed.",
            "(operation)",
            "Use a documented Engine API endpoint; if this one is needed, ask for it to be modelled."),
    RuleDoc("build.network-mode", "build", "baseline, restricted",
            "A build's networkmode is empty, default, bridge or none (the first value, as the engine "
            "reads it). host is reported as runtime.host-namespace.",
            "RUN steps would share another container's network namespace (container:ID), or join a "
            "network tenancy can't see (a network name).",
            "build networkmode",
            "Build with --network default, bridge or none."),
    RuleDoc("build.cgroup-parent", "build", "baseline, restricted",
            "A build's cgroupparent is empty.",
            "Build steps would run under a host cgroup the caller picks, outside the engine's limits.",
            "build cgroupparent",
            "Remove --cgroup-parent."),
    RuleDoc("build.isolation", "build", "baseline, restricted",
            "A build's isolation is empty or default (any case, as the engine compares it).",
            "Only the default isolation exists on Linux; anything else is an option nobody has reviewed.",
            "build isolation",
            "Remove --isolation."),
    RuleDoc("build.security-opt", "build", "baseline, restricted",
            "A build carries no securityopt.",
            "Security options on a build change the confinement of its steps (20.10 on Linux refuses "
            "them too).",
            "build securityopt",
            "Remove --security-opt."),
    RuleDoc("build.grpc", "build", "baseline, restricted",
            "BuildKit's gRPC API (POST /grpc) is refused. The POST /session it pairs with is allowed.",
            "Inside that stream a client can grant its build steps the network.host entitlement, which "
            "the engine allows by default, and Moorage can't read the stream.",
            "(stream)",
            "Build with the classic API (DOCKER_BUILDKIT=0 docker build, docker-compose, the SDK); or an "
            "operator turns the engine's network-host entitlement off and grants an exception."),
    RuleDoc("build.remote", "build", "baseline, restricted",
            "A build's remote is empty (the context is the request body) or client-session (BuildKit's "
            "session streams it from the client).",
            "Any other remote is a URL or Git repository the engine fetches itself, from the host's "
            "network namespace: a request from the host to its loopback services and metadata "
            "addresses.",
            "build remote",
            "Send the build context from the client (docker build DIR, or a tarball on stdin)."),
    RuleDoc("images.import-url", "images", "baseline, restricted",
            "An image import (POST /images/create) takes its archive from the request body: fromSrc is "
            "empty (a pull) or -.",
            "Any other fromSrc is a URL the engine downloads itself, from the host's network namespace: "
            "a request from the host to its loopback services and metadata addresses.",
            "image create fromSrc",
            "Download the archive on the client and import it (docker import FILE, or curl URL | "
            "docker import -)."),
    RuleDoc("plugin.privilege", "plugin", "baseline, restricted",
            "Every privilege a plugin is granted (plugin pull and upgrade: each NAME=VALUE of the body; "
            "plugin enable: what the plugin's config needs, when admission has it) is listed in "
            "plugins.privileges, which is empty by default. A plugin that needs nothing passes.",
            "A plugin runs on the host with what it is granted: the host network, host namespaces, "
            "mounts, devices, capabilities.",
            "plugin pull/upgrade body [].Name, [].Value; plugin Config (enable)",
            "Use a plugin that needs no host access, or ask an operator to allow NAME=VALUE under "
            "plugins.privileges."),
    RuleDoc("plugin.create", "plugin", "baseline, restricted",
            "A plugin is not made from an uploaded archive (POST /plugins/create).",
            "Such a plugin gets whatever host access its config.json asks for, and the engine asks "
            "nobody to grant it.",
            "(body)",
            "Push the plugin to a registry and install it with docker plugin install, which grants its "
            "privileges explicitly."),
    RuleDoc("plugin.set", "plugin", "baseline, restricted",
            "Each plugin set entry changes a variable or the arguments: NAME.value=VALUE is allowed; "
            "NAME.source= (a mount) and NAME.path= (a device) are refused; a bare NAME=VALUE is allowed "
            "only when the plugin's config shows NAME is a variable or the arguments.",
            "A mount's source or a device's path repoints the plugin at a host path.",
            "plugin set body []",
            "Set environment variables as NAME.value=VALUE; plugin mounts and devices can't be changed."),
    RuleDoc("node.labels", "node", "baseline, restricted",
            "A node update carries the node's labels under io.moorage. exactly as they are: none added, "
            "changed or removed (without the node's current labels, none at all). Other labels, Role and "
            "Availability pass.",
            "Those labels are Moorage's, projected from enrolment and attestation: placement trusts them "
            "to decide where a workload class may run.",
            "node update Labels",
            "Keep the labels as they are; enrol and attest a node to earn them, revoke to withdraw."),
    RuleDoc("node.promote", "node", "baseline, restricted",
            "A node carrying an io.moorage.attested.* label is not promoted to manager.",
            "A manager can change the cluster (labels, CA, placement) it was attested in.",
            "node update Role=manager",
            "Revoke the node's attestation first, or promote another node."),
    RuleDoc("swarm.join", "swarm", "baseline, restricted",
            "The engine does not join a swarm.",
            "A node that joins a swarm runs whatever that swarm's managers schedule, past Moorage.",
            "swarm join RemoteAddrs",
            "Join nodes with Moorage's cluster enrolment, or ask for an exception."),
    RuleDoc("swarm.ca", "swarm", "baseline, restricted",
            "swarm init and update carry no SigningCAKey and no ExternalCAs. Everything else is left to "
            "RBAC.",
            "A root CA key the caller knows lets its holder mint swarm node certificates; an external CA "
            "issues them outside the swarm.",
            "swarm init Spec.CAConfig.SigningCAKey, ExternalCAs; swarm update CAConfig",
            "Let the swarm generate its own root CA (docker swarm ca --rotate); remove --external-ca."),
    RuleDoc("resources.memory-required", "resources", "", "A memory limit is set.",
            "An unlimited container can take the node's memory from everyone else.",
            "HostConfig.Memory; TaskTemplate.Resources.Limits.MemoryBytes", "Add --memory 512m."),
    RuleDoc("resources.cpus-required", "resources", "", "A CPU limit is set.",
            "An unlimited container can starve its neighbours.",
            "HostConfig.NanoCpus or CpuQuota; TaskTemplate.Resources.Limits.NanoCPUs", "Add --cpus 1."),
    RuleDoc("resources.pids-required", "resources", "", "A pids limit is set.",
            "A fork bomb takes the whole node.",
            "HostConfig.PidsLimit; TaskTemplate.Resources.Limits.Pids", "Add --pids-limit 256."),
    RuleDoc("resources.memory-max", "resources", "", "The memory limit is at most resources.max.memory.",
            "Keeps one workload from reserving a node.", "as memory-required", "Lower --memory."),
    RuleDoc("resources.cpus-max", "resources", "", "The CPU limit is at most resources.max.cpus.",
            "Keeps one workload from reserving a node.", "as cpus-required", "Lower --cpus."),
    RuleDoc("resources.pids-max", "resources", "", "The pids limit is at most resources.max.pids.",
            "Bounds the kernel resources one workload holds.", "as pids-required", "Lower --pids-limit."),
    RuleDoc("quota.containers", "quota", "",
            "The team's containers (any state), counted from the engine, stay within the quota.",
            "Shares an engine fairly between teams. Creates for one team are decided one at a time, "
            "so concurrent creates can't overshoot.",
            "(the team's live state)", "Remove containers you no longer need, or ask for more."),
    RuleDoc("quota.cpus", "quota", "", "The CPU limits of the team's containers stay within the quota.",
            "As quota.containers.", "(live state) + HostConfig.NanoCpus",
            "Lower --cpus or remove containers."),
    RuleDoc("quota.memory", "quota", "", "The memory limits of the team's containers stay within the quota.",
            "As quota.containers.", "(live state) + HostConfig.Memory",
            "Lower --memory or remove containers."),
    RuleDoc("quota.replicas", "quota", "",
            "The replicas of the team's services (global services count one per node) stay within the "
            "quota. Scaling down is always allowed.",
            "As quota.containers, for Swarm.", "Mode.Replicated.Replicas", "Scale down or remove services."),
    RuleDoc("quota.unknown", "quota", "", "The team's use could be counted.",
            "Fail closed: a quota that can't be counted can't be kept.", "(engine state)",
            "Retry; check the engine answers."),
    RuleDoc("images.registry", "images", "", "Images come from an allowed registry (or registry/path).",
            "Only images from registries you scan and sign reach your nodes.",
            "Image; TaskTemplate.ContainerSpec.Image; pull fromImage; push and tag names; build -t",
            "Use an image from an allowed registry (retag and push it there)."),
    RuleDoc("images.latest", "images", "", "No image is named by the latest tag, or by no tag.",
            "latest moves: what runs is not what was reviewed.", "as images.registry",
            "Name a version tag or a digest."),
    RuleDoc("images.digest", "images", "", "Images are pinned by digest (name@sha256:...) or by id.",
            "A digest names exactly the bytes that were scanned and signed.",
            "Image; TaskTemplate.ContainerSpec.Image; pull fromImage",
            "Use name@sha256:... (docker inspect --format '{{.RepoDigests}}' NAME)."),
    RuleDoc("images.unscanned", "images", "",
            "When any image-trust setting is on (signatures, vulnerabilities, packages, sbom, "
            "database), the image could be resolved and read.",
            "Fail closed: an image that can't be checked can't be trusted.",
            "Image; TaskTemplate.ContainerSpec.Image; pull fromImage",
            "Make the image reachable (pushed, or present on the engine) and retry."),
    RuleDoc("images.signature", "images", "",
            "The image has a valid cosign-compatible signature by one of the keys in "
            "images.signatures.keys (several for rotation).",
            "A signature by a trusted key shows the image is the one your pipeline built and approved.",
            "as images.unscanned",
            "Sign it: moorage image sign IMAGE --key KEY (a key the policy lists)."),
    RuleDoc("images.vulnerabilities", "images", "",
            "No unsuppressed vulnerability above images.vulnerabilities.maxSeverity (none..critical; "
            "unknown sorts lowest); with onlyFixed, only findings that have a fix count.",
            "Known vulnerabilities above the ceiling should not reach your nodes.",
            "as images.unscanned",
            "Upgrade the packages named (moorage image scan IMAGE lists them all)."),
    RuleDoc("images.package-forbidden", "images", "",
            "No installed package matches images.packages.forbidden (shell patterns, case-insensitive, "
            "or purl prefixes such as pkg:pypi/pyyaml).",
            "Some packages (debuggers, shells, known-bad libraries) have no place in production images.",
            "as images.unscanned",
            "Remove the package from the image."),
    RuleDoc("images.package-required", "images", "",
            "Every pattern in images.packages.required matches an installed package.",
            "Some packages (an agent, a CA bundle) must be in every image.",
            "as images.unscanned",
            "Install the package in the image."),
    RuleDoc("images.sbom", "images", "",
            "With sbom: required, a package database was found in the image, so an SBOM exists.",
            "An image whose packages can't be listed can't be checked for vulnerabilities or licences.",
            "as images.unscanned",
            "Build from a base image with a package database (dpkg, apk, rpm)."),
    RuleDoc("images.database-missing", "images", "",
            "A vulnerability database is loaded when the policy sets vulnerabilities or database.",
            "Fail closed: without a database, no vulnerability can be found.",
            "as images.unscanned",
            "Run moorage db update --from PATH|URL on the gateway host."),
    RuleDoc("images.database-stale", "images", "",
            "The vulnerability database is no older than images.database.maxAge.",
            "A stale database misses recent vulnerabilities. Use an audit-mode document to only warn.",
            "as images.unscanned",
            "Run moorage db update."),
    RuleDoc("network.host", "network", "baseline, restricted",
            "The host network is not used: refused by the packs, and by network.hostNetwork: false. "
            "host counts in any case, and so does the id (or an id prefix) of a host-driver network "
            "when admission knows the engine's networks. HostConfig.NetworkMode=host itself is "
            "reported as runtime.host-namespace.",
            "A workload on the host network can listen on and reach every host interface.",
            "HostConfig.NetworkMode; NetworkingConfig.EndpointsConfig keys; TaskTemplate.Networks[].Target "
            "and the deprecated top-level Networks[].Target; the network of network connect",
            "Use a user-defined network and publish ports."),
    RuleDoc("network.driver", "network", "baseline, restricted",
            "A network is created with the bridge or overlay driver (or the default), the default IPAM "
            "driver, and not from a config-only network (ConfigFrom).",
            "macvlan, ipvlan and plugin drivers reach the host's own interfaces; an IPAM plugin runs on "
            "the host; a config-only network brings driver settings the request doesn't show.",
            "network create Driver, IPAM.Driver, ConfigFrom",
            "Use the bridge driver (or overlay on a swarm), without --ipam-driver or --config-from."),
    RuleDoc("network.driver-option", "network", "baseline, restricted",
            "A network's driver options are only those that tune it: "
            "com.docker.network.bridge.enable_icc, com.docker.network.bridge.enable_ip_masquerade, "
            "com.docker.network.bridge.host_binding_ipv4, com.docker.network.driver.mtu, "
            "com.docker.network.container_iface_prefix, com.docker.network.enable_ipv6, encrypted.",
            "An allow-list: com.docker.network.bridge.name names an existing host bridge and attaches "
            "the network's containers to it; an option nobody has reviewed is refused.",
            "network create Options",
            "Remove the --opt."),
    RuleDoc("network.ingress", "network", "baseline, restricted",
            "A network is not created as the swarm's ingress network (Ingress: true).",
            "The ingress network carries every published port of the swarm.",
            "network create Ingress",
            "Leave the ingress network to operators."),
    RuleDoc("network.subnet", "network", "baseline, restricted",
            "A network's explicit IPAM settings (each IPAM.Config entry's Subnet, IPRange, Gateway and "
            "AuxiliaryAddresses) lie inside a pool listed in network.subnets. None is listed by default, "
            "so any explicit setting is refused; a network whose pool the engine picks passes.",
            "The engine checks a pool it picks against the host's routes, but not one the caller "
            "chooses (libnetwork requestPoolHelper): a subnet such as the host's DNS server/32 makes "
            "the host route that address into the bridge.",
            "network create IPAM.Config[].Subnet, IPRange, Gateway, AuxiliaryAddresses",
            "Omit --subnet, --ip-range, --gateway and --aux-address so the engine picks a free pool, or "
            "ask an operator to declare a pool under network.subnets."),
    RuleDoc("network.create", "network", "", "A team creates only networks whose names match its patterns.",
            "Keeps teams' networks apart and recognisable; {team} stands for the caller's team.",
            "network create Name", "Name the network to match the pattern."),
    RuleDoc("network.join", "network", "", "A team joins only networks matching its patterns.",
            "A workload on another team's network can reach its services.",
            "HostConfig.NetworkMode; NetworkingConfig.EndpointsConfig; service Networks[].Target; "
            "network connect", "Use one of your team's networks."),
    RuleDoc("network.publish-ip", "network", "", "Ports are published only on the allowed host IPs.",
            "A port on 0.0.0.0 is reachable from every network the host is on. Swarm ports listen on "
            "every address, so they count as 0.0.0.0.",
            "HostConfig.PortBindings[].HostIp; PublishAllPorts; EndpointSpec.Ports",
            "Publish as -p 127.0.0.1:HOSTPORT:PORT."),
    RuleDoc("network.publish-port", "network", "", "Published host ports are in the allowed ranges.",
            "Keeps workloads off ports the host's own services use.",
            "HostConfig.PortBindings[].HostPort; EndpointSpec.Ports[].PublishedPort", "Use a port in range."),
    RuleDoc("placement.class", "placement", "",
            "A service of a workload class (from its team, or its class label) carries the class's "
            "node constraints. They are added on create; an update may not drop or contradict them.",
            "Workloads such as pci may run only on nodes a security officer attested for the class.",
            "TaskTemplate.Placement.Constraints; Labels[placement.label]",
            "Keep the class's --constraint."),
]  # fmt: skip

RULES: dict[str, RuleDoc] = {r.id: r for r in _R}


def lookup(rule: str) -> RuleDoc | None:
    if rule in RULES:
        return RULES[rule]
    if rule.startswith(("custom.", "rego.")):
        family = rule.split(".", 1)[0]
        return RuleDoc(rule, family, "", f"The {family} rule {rule.split('.', 1)[1]} from a policy document.",
                       "Written by your organisation: see the policy document that defines it.",
                       "(request)", "See the rule's message.")  # fmt: skip
    return None
