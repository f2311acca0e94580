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
            "CAP_SYS_ADMIN, sys_admin.",
            "Capabilities such as SYS_ADMIN, SYS_PTRACE, SYS_MODULE or NET_ADMIN reach past the "
            "container's namespaces.",
            "HostConfig.CapAdd; TaskTemplate.ContainerSpec.CapabilityAdd",
            "Remove the --cap-add."),
    RuleDoc("runtime.capabilities.drop-all", "runtime", "restricted",
            "Capabilities must be dropped: CapDrop must contain ALL.",
            "Least privilege: a process that needs no capability should hold none.",
            "HostConfig.CapDrop; TaskTemplate.ContainerSpec.CapabilityDrop",
            "Add --cap-drop ALL (and --cap-add NET_BIND_SERVICE if it binds a low port)."),
    RuleDoc("runtime.host-namespace", "runtime", "baseline, restricted",
            "No host PID, IPC, UTS, network, user or cgroup namespace.",
            "Sharing a host namespace shows and reaches the host's processes, IPC, hostname, "
            "interfaces or cgroups.",
            "HostConfig.PidMode, IpcMode, UTSMode, NetworkMode, UsernsMode, CgroupnsMode = host",
            "Remove --pid/--ipc/--uts/--network/--userns/--cgroupns host."),
    RuleDoc("runtime.host-path", "runtime", "baseline, restricted",
            "No host path is mounted: bind mounts through Binds, Mounts (type bind), a service's "
            "Mounts, or a local volume with o=bind / type=none and a device path.",
            "A host path lets the workload read or change the host's files (/, /etc, /root).",
            "HostConfig.Binds; HostConfig.Mounts[].Source; TaskTemplate.ContainerSpec.Mounts[].Source; "
            "volume DriverOpts.device",
            "Use a named volume."),
    RuleDoc("runtime.docker-socket", "runtime", "baseline, restricted",
            "The Docker socket (or /run, /var/run) is never mounted.",
            "Whoever holds the Docker socket controls the host, and bypasses Moorage.",
            "as runtime.host-path",
            "Talk to the engine through Moorage, never through its socket."),
    RuleDoc("runtime.devices", "runtime", "baseline, restricted",
            "No host devices and no device cgroup rules.",
            "A device node (a disk, /dev/mem, a GPU) is the host's hardware.",
            "HostConfig.Devices; HostConfig.DeviceCgroupRules",
            "Remove --device / --device-cgroup-rule."),
    RuleDoc("runtime.unconfined", "runtime", "baseline, restricted",
            "seccomp and AppArmor stay on; SELinux labelling stays on.",
            "seccomp=unconfined, apparmor=unconfined and label=disable turn off kernel confinement.",
            "HostConfig.SecurityOpt; TaskTemplate.ContainerSpec.Privileges.Seccomp/AppArmor",
            "Remove the --security-opt."),
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
    RuleDoc("network.host", "network", "", "The host network is not used.",
            "A workload on the host network can listen on and reach every host interface.",
            "HostConfig.NetworkMode; NetworkingConfig.EndpointsConfig; service Networks; network connect",
            "Use a user-defined network and publish ports."),
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
